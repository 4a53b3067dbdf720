//! Calls: `call` (alias `call.received`).

use super::time::timestamp_secs;
use super::wire::{loose_bool, wire_object, NumberOrString};

wire_object! {
    /// A call offer or state change.
    pub struct CallInfo {
        /// The call id.
        "id" => id: String,
        /// The caller's JID.
        "from" => from: String,
        /// The chat the call belongs to.
        "chatId" => chat_id: String,
        /// When (ISO 8601 string in the docs; numbers accepted).
        "date" => date: NumberOrString,
        /// Whether it is a group call.
        "isGroup" => is_group: bool,
        /// Whether it is a video call.
        "isVideo" => is_video: bool,
        /// `offer`, `ringing`, `timeout`, `reject`, `accept`, `terminate`, …
        "status" => status: String,
        /// Whether it was received while offline.
        "offline" => offline: bool,
        /// For group calls, the group JID.
        "groupJid" => group_jid: String,
    }
}

impl CallInfo {
    /// `date` as Unix seconds (RFC 3339 strings and s/ms numbers).
    pub fn date_secs(&self) -> Option<i64> {
        self.date.as_ref().and_then(timestamp_secs)
    }
    /// Whether it is a video call (accepts `"true"` too).
    pub fn video(&self) -> bool {
        self.is_video
            .or_else(|| self.extra.get("isVideo").and_then(loose_bool))
            .unwrap_or(false)
    }
}

wire_object! {
    /// The `data` of `call`.
    pub struct CallData {
        /// The call.
        "call" => call: CallInfo,
    }
}
