//! What happens to messages already sent: status updates, deletions,
//! reactions and receipts.

use super::message::MessageKey;
use super::wire::{wire_object, NumberOrString, OneOrMany};

/// A message's delivery status. Accepts WhatsApp's numbers 0–5 and names
/// (`"delivered"`, `"DELIVERY_ACK"`, …) in any case; anything else is kept as `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageStatus {
    /// 0: failed.
    Error,
    /// 1: waiting to be sent.
    Pending,
    /// 2: received by the server.
    Sent,
    /// 3: delivered to the device.
    Delivered,
    /// 4: read.
    Read,
    /// 5: played (voice notes).
    Played,
    /// A value this crate does not know, as received.
    Unknown(String),
}

impl MessageStatus {
    /// Interprets a raw wire value.
    pub fn from_raw(raw: &NumberOrString) -> Self {
        match raw {
            NumberOrString::Number(n) => match n.as_u64() {
                Some(code) => Self::from_code(code),
                None => Self::Unknown(n.to_string()),
            },
            NumberOrString::String(s) => s.parse().unwrap_or_else(|_| Self::Unknown(s.clone())),
        }
    }

    fn from_code(code: u64) -> Self {
        match code {
            0 => Self::Error,
            1 => Self::Pending,
            2 => Self::Sent,
            3 => Self::Delivered,
            4 => Self::Read,
            5 => Self::Played,
            other => Self::Unknown(other.to_string()),
        }
    }

    /// WhatsApp's numeric code (0–5), if known.
    pub fn code(&self) -> Option<u8> {
        Some(match self {
            Self::Error => 0,
            Self::Pending => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Read => 4,
            Self::Played => 5,
            Self::Unknown(_) => return None,
        })
    }

    /// A lowercase name: `error`, `pending`, `sent`, `delivered`, `read`, `played`, or the unknown value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Error => "error",
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Unknown(raw) => raw,
        }
    }
}

impl std::str::FromStr for MessageStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if let Ok(code) = trimmed.parse::<u64>() {
            return Ok(Self::from_code(code));
        }
        Ok(match trimmed.to_ascii_lowercase().as_str() {
            "error" | "failed" => Self::Error,
            "pending" => Self::Pending,
            "sent" | "server_ack" | "serverack" => Self::Sent,
            "delivered" | "delivery_ack" | "deliveryack" => Self::Delivered,
            "read" | "seen" => Self::Read,
            "played" => Self::Played,
            _ => Self::Unknown(s.to_owned()),
        })
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
