//! Result types shared by several API areas: send results, rate limits,
//! plain action results; and how a [`Secret`] in a response is decoded.

use crate::event::wire::{wire_object, Lenient};
use crate::event::NumberOrString;
pub(crate) use crate::secret::Secret;

/// The rate-limit headers of a response (`X-RateLimit-Limit`,
/// `X-RateLimit-Remaining`, `X-RateLimit-Reset`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimitInfo {
    /// Requests allowed in the current window.
    pub limit: Option<u64>,
    /// Requests left in the current window.
    pub remaining: Option<u64>,
    /// When the window resets, as sent (a Unix timestamp in seconds).
    pub reset: Option<u64>,
}

wire_object! {
    /// What `/send-message` answers in `data`: `{msgId, jid, status}`.
    ///
    /// `msgId` is the REST id used by [`edit_message`](crate::WasenderSyncClient::edit_message),
    /// [`delete_message`](crate::WasenderSyncClient::delete_message) and `replyTo`;
    /// it is not the webhook's `key.id`.
    pub struct SentMessage {
        /// The REST message id (an integer, kept as sent).
        "msgId" => msg_id: NumberOrString,
        /// The recipient as the API understood it.
        "jid" => jid: String,
        /// The delivery state, e.g. `in_progress`.
        "status" => status: String,
    }
}

impl SentMessage {
    /// The REST message id as a number.
    pub fn id(&self) -> Option<u64> {
        self.msg_id.as_ref().and_then(NumberOrString::as_u64)
    }
}

/// The result of sending a message: what the API answered, and the rate-limit
/// headers that came with it.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SendResult {
    /// The `data` of the answer.
    pub message: SentMessage,
    /// The `X-RateLimit-*` headers, when the API sent any.
    pub rate_limit: Option<RateLimitInfo>,
}

impl SendResult {
    /// The REST message id (`data.msgId`).
    pub fn msg_id(&self) -> Option<u64> {
        self.message.id()
    }
}

wire_object! {
    /// The whole answer of a call that performs an action (edit, delete, block,
    /// leave, settings, …): `{success, message?, data?}`. An empty answer
    /// (`204 No Content`) gives a value with every field `None`.
    pub struct ActionResult {
        /// Whether the API reports success.
        "success" => success: bool,
        /// A human-readable confirmation.
        "message" => message: String,
        /// The `data` member, whatever its shape.
        "data" => data: serde_json::Value,
    }
}

// A secret in a response (an API key, a webhook secret) decodes leniently, by value.
impl Lenient for Secret {
    fn from_string(s: String) -> Result<Self, String> {
        Ok(Self::from(s))
    }
}

crate::event::wire::by_value_field!(Secret);

/// A JSON object of extra request members, merged into a request body
/// (for fields the API gained after this crate was written).
pub(crate) type Extra = serde_json::Map<String, serde_json::Value>;
