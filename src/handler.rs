//! The [`WebhookHandler`] trait and [`dispatch`].

use serde_json::Value;

use crate::event::{
    CallData, Chat, Contact, GroupMetadata, GroupParticipantsUpdate, MessageReaction,
    MessageUpdate, MessagesData, MessagesDelete, OneOrMany, PollResults, QrCodeData, ReceiptUpdate,
    SessionStatusData, WasenderWebhookEvent, WebhookEvent,
};

/// Receives typed webhook events: one method per event type, each doing
/// nothing by default. Implement the ones you need.
///
/// Methods are named `on_` + the canonical event name with `.` and `-` turned
/// into `_`. Returning an error tells the listener to answer 500 (inline
/// delivery), so the sender may retry.
///
/// ```
/// use wasenderapi::{WebhookHandler, WebhookEvent, MessagesData};
///
/// struct Bot;
/// impl WebhookHandler for Bot {
///     type Error = std::convert::Infallible;
///     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
///         for m in event.data.iter().flat_map(|d| d.messages()) {
///             println!("{:?}: {:?}", m.sender_phone(), m.text());
///         }
///         Ok(())
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait WebhookHandler: Send + Sync {
    /// The error your methods return; shown in logs (so keep secrets out of it).
    type Error: std::fmt::Display;

    /// `messages.upsert`: every message, incoming and outgoing.
    fn on_messages_upsert(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `messages.received`: an incoming message.
    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `messages-personal.received`: an incoming one-to-one message.
    fn on_messages_personal_received(
        &self,
        event: &WebhookEvent<MessagesData>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `messages-group.received`: an incoming group message.
    fn on_messages_group_received(
        &self,
        event: &WebhookEvent<MessagesData>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `messages-newsletter.received`: a channel post.
    fn on_messages_newsletter_received(
        &self,
        event: &WebhookEvent<MessagesData>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `message.sent`: a message sent from the session.
    fn on_message_sent(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `messages.update`: status changes.
    fn on_messages_update(
        &self,
        event: &WebhookEvent<OneOrMany<MessageUpdate>>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `messages.delete`: deletions.
    fn on_messages_delete(&self, event: &WebhookEvent<MessagesDelete>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `messages.reaction`: reactions.
    fn on_messages_reaction(
        &self,
        event: &WebhookEvent<OneOrMany<MessageReaction>>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `message-receipt.update`: group receipts.
    fn on_message_receipt_update(
        &self,
        event: &WebhookEvent<OneOrMany<ReceiptUpdate>>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `session.status`: connection state.
    fn on_session_status(
        &self,
        event: &WebhookEvent<SessionStatusData>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `qrcode.updated`: a QR code to scan.
    fn on_qrcode_updated(&self, event: &WebhookEvent<QrCodeData>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `chats.upsert`.
    fn on_chats_upsert(&self, event: &WebhookEvent<OneOrMany<Chat>>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `chats.update`.
    fn on_chats_update(&self, event: &WebhookEvent<OneOrMany<Chat>>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `chats.delete`: the deleted chats' ids.
    fn on_chats_delete(&self, event: &WebhookEvent<OneOrMany<String>>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `contacts.upsert`.
    fn on_contacts_upsert(
        &self,
        event: &WebhookEvent<OneOrMany<Contact>>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `contacts.update`.
    fn on_contacts_update(
        &self,
        event: &WebhookEvent<OneOrMany<Contact>>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `groups.upsert`.
    fn on_groups_upsert(
        &self,
        event: &WebhookEvent<OneOrMany<GroupMetadata>>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `groups.update`.
    fn on_groups_update(
        &self,
        event: &WebhookEvent<OneOrMany<GroupMetadata>>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `group-participants.update`.
    fn on_group_participants_update(
        &self,
        event: &WebhookEvent<OneOrMany<GroupParticipantsUpdate>>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `call` (alias `call.received`).
    fn on_call(&self, event: &WebhookEvent<CallData>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// `poll.results`.
    fn on_poll_results(&self, event: &WebhookEvent<PollResults>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Any event this crate does not know yet, with its name and data intact.
    fn on_unknown(&self, event: &WebhookEvent<Value>) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Routes one event to exactly one method of `handler`.
pub fn dispatch<H: WebhookHandler + ?Sized>(
    handler: &H,
    event: &WasenderWebhookEvent,
) -> Result<(), H::Error> {
    use WasenderWebhookEvent as E;
    match event {
        E::MessagesUpsert(e) => handler.on_messages_upsert(e),
        E::MessagesReceived(e) => handler.on_messages_received(e),
        E::MessagesPersonalReceived(e) => handler.on_messages_personal_received(e),
        E::MessagesGroupReceived(e) => handler.on_messages_group_received(e),
        E::MessagesNewsletterReceived(e) => handler.on_messages_newsletter_received(e),
        E::MessageSent(e) => handler.on_message_sent(e),
        E::MessagesUpdate(e) => handler.on_messages_update(e),
        E::MessagesDelete(e) => handler.on_messages_delete(e),
        E::MessagesReaction(e) => handler.on_messages_reaction(e),
        E::MessageReceiptUpdate(e) => handler.on_message_receipt_update(e),
        E::SessionStatus(e) => handler.on_session_status(e),
        E::QrcodeUpdated(e) => handler.on_qrcode_updated(e),
        E::ChatsUpsert(e) => handler.on_chats_upsert(e),
        E::ChatsUpdate(e) => handler.on_chats_update(e),
        E::ChatsDelete(e) => handler.on_chats_delete(e),
        E::ContactsUpsert(e) => handler.on_contacts_upsert(e),
        E::ContactsUpdate(e) => handler.on_contacts_update(e),
        E::GroupsUpsert(e) => handler.on_groups_upsert(e),
        E::GroupsUpdate(e) => handler.on_groups_update(e),
        E::GroupParticipantsUpdate(e) => handler.on_group_participants_update(e),
        E::Call(e) => handler.on_call(e),
        E::PollResults(e) => handler.on_poll_results(e),
        E::Unknown(e) => handler.on_unknown(e),
    }
}

impl WasenderWebhookEvent {
    /// Routes this event to `handler` (same as [`dispatch`]).
    pub fn dispatch_to<H: WebhookHandler + ?Sized>(&self, handler: &H) -> Result<(), H::Error> {
        dispatch(handler, self)
    }
}
