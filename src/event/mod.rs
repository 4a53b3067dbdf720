//! Typed, lenient, lossless webhook events.
//!
//! [`WasenderWebhookEvent`] has one variant per event of the catalogue (plus
//! `Unknown`); each holds a [`WebhookEvent`] with the envelope (`event`,
//! `timestamp`, `sessionId`, unknown members) and the typed `data`.
//! Serialising an event gives back the JSON that was received.

mod call;
mod chat;
mod contact;
mod envelope;
mod group;
mod message;
mod poll;
mod session;
pub(crate) mod wire;

pub use call::{CallData, CallInfo};
pub use chat::Chat;
pub use contact::Contact;
pub use envelope::{parse_event, WasenderWebhookEvent, WasenderWebhookEventType, WebhookEvent};
pub use group::{
    GroupMetadata, GroupParticipantsUpdate, Participant, ParticipantAction, ParticipantInfo,
};
pub use message::{
    phone_from_jid, ContactMessage, ExtendedTextMessage, LocationMessage, Media, MediaKind,
    MediaMessage, MessageContent, MessageKey, MessageReaction, MessageStatus, MessageUpdate,
    MessageWrapper, MessagesData, MessagesDelete, ProtocolMessage, Reaction, ReactionMessage,
    Receipt, ReceiptUpdate, StatusUpdate, WebhookMessage,
};
pub use poll::{PollOption, PollResults};
pub use session::{QrCodeData, SessionStatus, SessionStatusData};
pub use wire::{NumberOrString, OneOrMany};
