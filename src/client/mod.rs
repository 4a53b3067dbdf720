//! [`WasenderSyncClient`]: the blocking REST API (feature `client`), and the
//! webhook secrets it verifies events with.
//!
//! The REST methods live in one file per API area: `messages` (sending,
//! editing, read receipts, presence, replying to a webhook message), `media`
//! (upload, decrypt, download), `contacts`, `groups` and `sessions`;
//! `transport` holds the shared `ureq` agent, authentication, retries and
//! error mapping; `webhook` delegates to the client's [`WebhookVerifier`](crate::WebhookVerifier).

mod builder;
mod contacts;
mod groups;
mod media;
mod messages;
mod response;
mod retry;
mod sessions;
pub(crate) mod sync_client;
mod transport;
mod types;
mod webhook;

pub use builder::WasenderSyncClientBuilder;
// Public at the crate root only: `crate::WasenderSyncClient`.
pub use contacts::{OnWhatsApp, Page, Pagination, ProfilePicture};
pub use groups::{GroupInviteLink, GroupSettings};
pub use media::{DecryptedMedia, UploadedMedia};
pub use messages::{Message, MessageInfo, PresenceType};
pub use retry::RetryPolicy;
pub use sessions::{
    RegeneratedApiKey, SessionConnection, SessionSettings, SessionUser, WhatsAppSession,
};
pub(crate) use sync_client::WasenderSyncClient;
pub use transport::USER_AGENT;
pub use types::{ActionResult, RateLimitInfo, SendResult, SentMessage};

/// The default REST base URL.
pub const DEFAULT_BASE_URL: &str = "https://www.wasenderapi.com/api";
