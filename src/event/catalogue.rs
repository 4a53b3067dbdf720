//! The catalogue of webhook events: the one list every per-event item is
//! generated from, and [`EventData`], what every event's `data` can tell.
//!
//! [`with_catalogue!`] hands the list to a macro of the caller's. Two callers
//! exist: `envelope.rs` builds the type enum, the event enum and the decoder;
//! `handler.rs` builds the `WebhookHandler` methods and the `dispatch` arms.

use serde_json::Value;

use super::{
    CallData, MessagesData, MessagesDelete, OneOrMany, PollResults, QrCodeData, SessionStatusData,
    WebhookMessage,
};

/// Calls `$callback! { … }` with every catalogued event, one entry each:
///
/// ```text
/// /// Doc line (shown on the enum variants and on the handler method).
/// Variant = "canonical.name" | "alias" … => fn handler_method(DataType),
/// ```
///
/// The data types are written as `crate::event` re-exports them, so a caller
/// imports `crate::event::*`. Callers match the entries with the same pattern:
///
/// ```text
/// $( $(#[$doc:meta])* $variant:ident = $name:literal $(| $alias:literal)* => fn $method:ident($data:ty), )*
/// ```
macro_rules! with_catalogue {
    ($callback:ident) => {
        $callback! {
            /// Every message, incoming and outgoing.
            MessagesUpsert = "messages.upsert" => fn on_messages_upsert(MessagesData),
            /// An incoming message.
            MessagesReceived = "messages.received" | "messages.recieved" | "message.received"
                => fn on_messages_received(MessagesData),
            /// An incoming one-to-one message.
            MessagesPersonalReceived = "messages-personal.received" | "message.personal.received"
                => fn on_messages_personal_received(MessagesData),
            /// An incoming group message (`key.participant` is the sender).
            MessagesGroupReceived = "messages-group.received" | "message.group.received"
                => fn on_messages_group_received(MessagesData),
            /// A channel (newsletter) post.
            MessagesNewsletterReceived = "messages-newsletter.received" | "message.newsletter.received"
                => fn on_messages_newsletter_received(MessagesData),
            /// A message sent from the session.
            MessageSent = "message.sent" => fn on_message_sent(MessagesData),
            /// Message status changes (sent, delivered, read, …).
            MessagesUpdate = "messages.update" => fn on_messages_update(OneOrMany<MessageUpdate>),
            /// Messages deleted.
            MessagesDelete = "messages.delete" => fn on_messages_delete(MessagesDelete),
            /// Reactions to messages.
            MessagesReaction = "messages.reaction" => fn on_messages_reaction(OneOrMany<MessageReaction>),
            /// Group message receipts.
            MessageReceiptUpdate = "message-receipt.update"
                => fn on_message_receipt_update(OneOrMany<ReceiptUpdate>),
            /// The session's connection state changed.
            SessionStatus = "session.status" => fn on_session_status(SessionStatusData),
            /// A new QR code to scan.
            QrcodeUpdated = "qrcode.updated" => fn on_qrcode_updated(QrCodeData),
            /// Chats created.
            ChatsUpsert = "chats.upsert" => fn on_chats_upsert(OneOrMany<Chat>),
            /// Chats changed.
            ChatsUpdate = "chats.update" => fn on_chats_update(OneOrMany<Chat>),
            /// Chats deleted (their ids).
            ChatsDelete = "chats.delete" => fn on_chats_delete(OneOrMany<String>),
            /// Contacts created.
            ContactsUpsert = "contacts.upsert" => fn on_contacts_upsert(OneOrMany<Contact>),
            /// Contacts changed.
            ContactsUpdate = "contacts.update" => fn on_contacts_update(OneOrMany<Contact>),
            /// Groups joined or created.
            GroupsUpsert = "groups.upsert" => fn on_groups_upsert(OneOrMany<GroupMetadata>),
            /// Group metadata changed.
            GroupsUpdate = "groups.update" => fn on_groups_update(OneOrMany<GroupMetadata>),
            /// Participants added, removed, promoted or demoted.
            GroupParticipantsUpdate = "group-participants.update"
                => fn on_group_participants_update(OneOrMany<GroupParticipantsUpdate>),
            /// An incoming call.
            Call = "call" | "call.received" => fn on_call(CallData),
            /// Poll votes.
            PollResults = "poll.results" => fn on_poll_results(PollResults),
        }
    };
}
pub(crate) use with_catalogue;

/// What the typed `data` of any event can tell, whatever its event type.
///
/// [`WebhookEvent::session_id`](crate::WebhookEvent::session_id) and
/// [`WebhookEvent::messages`](crate::WebhookEvent::messages) read through it,
/// as do the same accessors on [`WasenderWebhookEvent`](super::WasenderWebhookEvent),
/// so the typed wrapper and the enum always agree. Implemented by every data
/// type of the catalogue (and `serde_json::Value`, the data of unknown events);
/// it cannot be implemented outside this crate.
pub trait EventData: sealed::Sealed {
    /// The session id carried inside `data` (`data.session_id` on
    /// `session.status`); `None` for data that carries none.
    fn session_id(&self) -> Option<&str> {
        None
    }

    /// The messages carried inside `data`; empty for data that carries none.
    fn messages(&self) -> &[WebhookMessage] {
        &[]
    }
}

mod sealed {
    /// Keeps [`EventData`](super::EventData) implementable only in this crate.
    pub trait Sealed {}
}

// Every catalogued data type, and `Value` (the data of unknown events). A type
// missing here fails to compile where the enum's accessors are generated.
impl sealed::Sealed for MessagesData {}
impl EventData for MessagesData {
    fn messages(&self) -> &[WebhookMessage] {
        MessagesData::messages(self)
    }
}

impl sealed::Sealed for SessionStatusData {}
impl EventData for SessionStatusData {
    fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }
}

impl sealed::Sealed for MessagesDelete {}
impl EventData for MessagesDelete {}

impl sealed::Sealed for QrCodeData {}
impl EventData for QrCodeData {}

impl sealed::Sealed for CallData {}
impl EventData for CallData {}

impl sealed::Sealed for PollResults {}
impl EventData for PollResults {}

impl<T> sealed::Sealed for OneOrMany<T> {}
impl<T> EventData for OneOrMany<T> {}

impl sealed::Sealed for Value {}
impl EventData for Value {}
