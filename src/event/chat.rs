//! Chats: `chats.upsert`, `chats.update`, `chats.delete`.

use super::time::timestamp_secs;
use super::wire::{wire_object, NumberOrString};

wire_object! {
    /// A chat, as `chats.upsert` / `chats.update` carry it.
    pub struct Chat {
        /// The chat JID (documented examples also show bare digits).
        "id" => id: String,
        /// The chat's name.
        "name" => name: String,
        /// Last activity (seconds; number or string).
        "conversationTimestamp" => conversation_timestamp: NumberOrString,
        /// Unread messages.
        "unreadCount" => unread_count: NumberOrString,
        /// Whether the chat is archived.
        "archived" => archived: bool,
        /// Whether the chat is pinned (a timestamp in some versions).
        "pinned" => pinned: NumberOrString,
        /// Mute-until timestamp.
        "muteEndTime" => mute_end_time: NumberOrString,
    }
}

impl Chat {
    /// `conversationTimestamp` in Unix seconds.
    pub fn conversation_timestamp_secs(&self) -> Option<i64> {
        self.conversation_timestamp
            .as_ref()
            .and_then(timestamp_secs)
    }
    /// `unreadCount` as a number, whether sent as a number or a string.
    pub fn unread_count_parsed(&self) -> Option<u64> {
        self.unread_count.as_ref().and_then(NumberOrString::as_u64)
    }
}
