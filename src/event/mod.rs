//! Typed, lenient, lossless webhook events.
//!
//! [`WasenderWebhookEvent`] has one variant per event of the catalogue (plus
//! `Unknown`); each holds a [`WebhookEvent`](crate::WebhookEvent) with the envelope (`event`,
//! `timestamp`, `sessionId`, unknown members) and the typed `data`.
//! Serialising an event gives back the JSON that was received.
//!
//! # Fields are the wire, accessors say what they give
//!
//! Every public field holds a JSON member exactly as received, named after it
//! (`messageTimestamp` → `message_timestamp`), so serialisation stays lossless.
//! A method never shares a field's name while returning a different type:
//!
//! - A method named like a field gives that field's value, borrowed, or taken
//!   from whichever of the protocol's alternative shapes was sent:
//!   [`WebhookEvent::session_id`](crate::WebhookEvent::session_id) (`sessionId`, else `data.session_id`),
//!   [`Contact::jid`] (`jid`, else `id`), [`MessagesData::messages`] (array,
//!   object or flat), [`ReceiptUpdate::key`], [`WebhookEvent::data`](crate::WebhookEvent::data).
//! - A method that converts the raw value names what it gives:
//!   `_secs` for Unix seconds ([`WebhookEvent::timestamp_secs`](crate::WebhookEvent::timestamp_secs),
//!   [`WebhookMessage::timestamp_secs`], [`Chat::conversation_timestamp_secs`],
//!   [`CallInfo::date_secs`]), `_bytes` for sizes ([`MediaMessage::file_length_bytes`]),
//!   `_parsed` for a value parsed into a type of this crate or a number
//!   ([`WebhookMessage::status_parsed`], [`SessionStatusData::status_parsed`],
//!   [`GroupParticipantsUpdate::action_parsed`], [`Chat::unread_count_parsed`]),
//!   and, with the cargo feature `jiff`, `_jiff` for a `jiff::Timestamp`
//!   (`timestamp_jiff()`, milliseconds kept).
//! - `is_` for a flag read leniently (`true`, `"true"` or `1`):
//!   [`MessageKey::is_from_me`], [`WebhookMessage::is_from_me`].
//!
//! ```
//! use wasenderapi::{event::MessageStatus, WasenderWebhookEvent};
//!
//! let body = br#"{"event":"message.sent","timestamp":"1633456789","data":{"key":{"id":"A1"},"status":3}}"#;
//! let event = WasenderWebhookEvent::from_slice(body)?;
//! assert_eq!(event.timestamp_secs(), Some(1_633_456_789)); // the raw value is a string
//! let message = &event.messages()[0];
//! assert_eq!(message.status_parsed(), Some(MessageStatus::Delivered));
//! assert_eq!(serde_json::to_value(message.status.as_ref()).unwrap(), serde_json::json!(3));
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
//!
//! # Adding an event
//!
//! Everything per event comes from one list, `with_catalogue!` in
//! `src/event/catalogue.rs`: the [`WasenderWebhookEventType`](crate::WasenderWebhookEventType) and
//! [`WasenderWebhookEvent`] variants, the accepted names, the decoder, the
//! [`WebhookHandler`](crate::WebhookHandler) method and the [`dispatch`](crate::handler::dispatch) arm.
//!
//! 1. Write the entry: a doc line, then
//!    `Variant = "canonical.name" | "alias" => fn on_canonical_name(DataType),`
//!    (the method is `on_` + the canonical name with `.` and `-` turned into `_`).
//! 2. The data type: reuse one, or declare it with `wire_object!` in the module
//!    of its concern (`OneOrMany<T>` when it may come as an array), re-export it
//!    here, and implement [`EventData`] for it in `catalogue.rs` (override
//!    `session_id` or `messages` if the data carries them).
//! 3. The test: add the documented payload to `tests/fixtures/` (or a shape from
//!    PROTOCOL.md to `tests/fixtures/shapes/`) and give the recorder in
//!    `tests/it/event_fixtures.rs` the new method.
//!    `every_catalogued_type_has_a_sample_that_decodes_and_dispatches` fails
//!    until both exist; `handler::tests` check the method name.

mod call;
mod catalogue;
mod chat;
mod contact;
pub(crate) mod envelope;
mod group;
mod message;
mod poll;
mod session;
mod status;
mod time;
mod update;
pub(crate) mod wire;

pub use call::{CallData, CallInfo};
pub(crate) use catalogue::with_catalogue;
pub use catalogue::EventData;
pub use chat::Chat;
pub use contact::Contact;
pub use envelope::parse_event;
// The envelope types are the crate root's: `crate::WasenderWebhookEvent`, …
pub(crate) use envelope::WasenderWebhookEvent;
pub use group::{
    GroupMetadata, GroupParticipantsUpdate, Participant, ParticipantAction, ParticipantInfo,
};
pub use message::{
    phone_from_jid, ContactMessage, ExtendedTextMessage, LocationMessage, Media, MediaKind,
    MediaMessage, MessageContent, MessageKey, MessageWrapper, MessagesData, ProtocolMessage,
    ReactionMessage, WebhookMessage,
};
pub use poll::{PollOption, PollResults};
pub use session::{QrCodeData, SessionStatus, SessionStatusData};
pub use status::MessageStatus;
pub use update::{
    MessageReaction, MessageUpdate, MessagesDelete, Reaction, Receipt, ReceiptUpdate, StatusUpdate,
};
pub use wire::{NumberOrString, OneOrMany};
