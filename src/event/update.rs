//! What happens to messages already sent: status updates, deletions,
//! reactions and receipts.

use super::message::MessageKey;
use super::status::MessageStatus;
use super::wire::{wire_object, NumberOrString, OneOrMany};

wire_object! {
    /// The `update` of a `messages.update` item.
    pub struct StatusUpdate {
        /// The new status: 0–5 or a name.
        /// [`MessageUpdate::status_parsed`] reads it.
        "status" => status: NumberOrString,
    }
}

wire_object! {
    /// One item of `messages.update`: a message's new status.
    pub struct MessageUpdate {
        /// The message.
        "key" => key: MessageKey,
        /// What changed.
        "update" => update: StatusUpdate,
    }
}

impl MessageUpdate {
    /// The WhatsApp id of the message whose status changed (`key.id`).
    pub fn id(&self) -> Option<&str> {
        self.key.as_ref()?.id.as_deref()
    }

    /// The new status (`update.status`), parsed, if the update carries one.
    pub fn status_parsed(&self) -> Option<MessageStatus> {
        self.update
            .as_ref()?
            .status
            .as_ref()
            .map(MessageStatus::from_raw)
    }
}

wire_object! {
    /// The `data` of `messages.delete`.
    pub struct MessagesDelete {
        /// The deleted messages' keys.
        "keys" => keys: OneOrMany<MessageKey>,
    }
}

wire_object! {
    /// A reaction (`reaction` of a `messages.reaction` item).
    pub struct Reaction {
        /// The emoji; empty when the reaction was removed.
        "text" => text: String,
        /// The message reacted to.
        "key" => key: MessageKey,
        /// When, in milliseconds.
        "senderTimestampMs" => sender_timestamp_ms: NumberOrString,
    }
}

wire_object! {
    /// One item of `messages.reaction`.
    pub struct MessageReaction {
        /// The reaction message's key (who reacted, where).
        "key" => key: MessageKey,
        /// The reaction.
        "reaction" => reaction: Reaction,
    }
}

impl MessageReaction {
    /// The emoji.
    pub fn emoji(&self) -> Option<&str> {
        self.reaction.as_ref()?.text.as_deref()
    }
    /// The id of the message reacted to.
    pub fn target_id(&self) -> Option<&str> {
        self.reaction.as_ref()?.key.as_ref()?.id.as_deref()
    }
}

wire_object! {
    /// A receipt: who received or read a message, and when.
    pub struct Receipt {
        /// The recipient's JID.
        "userJid" => user_jid: String,
        /// When it was received.
        "receiptTimestamp" => receipt_timestamp: NumberOrString,
        /// When it was read.
        "readTimestamp" => read_timestamp: NumberOrString,
        /// When it was played.
        "playedTimestamp" => played_timestamp: NumberOrString,
        /// A status, as some SDKs send it.
        "status" => status: NumberOrString,
        /// A timestamp, as some SDKs send it.
        "t" => t: NumberOrString,
    }
}

wire_object! {
    /// One item of `message-receipt.update`. The docs nest it under `message`
    /// (`{message: {key, receipt}}`), SDKs send `{key, receipt}`: both are read;
    /// use [`ReceiptUpdate::key`] and [`ReceiptUpdate::receipt`].
    pub struct ReceiptUpdate {
        /// The message (flat shape).
        "key" => key: MessageKey,
        /// The receipt (flat shape).
        "receipt" => receipt: Receipt,
        /// The nested shape.
        "message" => message: Box<ReceiptUpdate>,
    }
}

impl ReceiptUpdate {
    /// The message's key, from either shape.
    pub fn key(&self) -> Option<&MessageKey> {
        self.key
            .as_ref()
            .or_else(|| self.message.as_ref()?.key.as_ref())
    }
    /// The receipt, from either shape.
    pub fn receipt(&self) -> Option<&Receipt> {
        self.receipt
            .as_ref()
            .or_else(|| self.message.as_ref()?.receipt.as_ref())
    }
}
