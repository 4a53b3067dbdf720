//! [`WasenderSyncClient`]: webhook verification, and (with the `client`
//! feature) the blocking REST API.
//!
//! The REST methods live in one file per API area: `messages` (sending,
//! editing, read receipts, presence, replying to a webhook message), `media`
//! (upload, decrypt, download), `contacts`, `groups` and `sessions`;
//! `transport` holds the shared `ureq` agent, authentication, retries and
//! error mapping.

use std::fmt;
#[cfg(feature = "client")]
use std::time::Duration;

use crate::signature::{SignatureScheme, WebhookVerifier};

#[cfg(feature = "client")]
mod contacts;
#[cfg(feature = "client")]
mod groups;
#[cfg(feature = "client")]
mod media;
#[cfg(feature = "client")]
mod messages;
#[cfg(feature = "client")]
mod response;
#[cfg(feature = "client")]
mod retry;
#[cfg(feature = "client")]
mod sessions;
#[cfg(feature = "client")]
mod transport;
#[cfg(feature = "client")]
mod types;

#[cfg(feature = "client")]
pub use contacts::{OnWhatsApp, Page, Pagination, ProfilePicture};
#[cfg(feature = "client")]
pub use groups::{GroupInviteLink, GroupSettings};
#[cfg(feature = "client")]
pub use media::{DecryptedMedia, UploadedMedia};
#[cfg(feature = "client")]
pub use messages::{Message, MessageInfo, PresenceType};
#[cfg(feature = "client")]
pub use retry::RetryPolicy;
#[cfg(feature = "client")]
pub use sessions::{
    RegeneratedApiKey, SessionConnection, SessionSettings, SessionUser, WhatsAppSession,
};
#[cfg(feature = "client")]
pub use transport::USER_AGENT;
#[cfg(feature = "client")]
pub use types::{ActionResult, RateLimitInfo, Secret, SendResult, SentMessage};

/// The default REST base URL.
pub const DEFAULT_BASE_URL: &str = "https://www.wasenderapi.com/api";

/// The WasenderAPI client: holds the session API key and the webhook secret(s),
/// and (with the `client` feature) calls the REST API.
///
/// Cheap to clone and `Send + Sync`: share one across threads (wrap it in an
/// `Arc` or clone it); clones share one `ureq` agent and so one connection
/// pool. Its `Debug` output never shows a key or secret.
///
#[cfg_attr(
    feature = "client",
    doc = "REST calls are blocking. Defaults: base URL [`DEFAULT_BASE_URL`], 30 s per
call, 10 s to connect, user agent [`USER_AGENT`], and [`RetryPolicy::default`]
(429s waited out up to 10 s; network errors and 5xx retried only for requests
that are safe to repeat, never a send).

"
)]
/// ```
/// use wasenderapi::WasenderSyncClient;
/// let client = WasenderSyncClient::new("api-key").with_webhook_secret("secret");
/// let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
/// let event = client.handle_webhook_event(body, Some("secret")).unwrap();
/// assert_eq!(event.event_type().as_str(), "session.status");
/// ```
#[derive(Clone)]
pub struct WasenderSyncClient {
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) api_key: String,
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) personal_access_token: Option<String>,
    pub(crate) base_url: String,
    pub(crate) webhook: WebhookVerifier,
    #[cfg(feature = "client")]
    pub(crate) http: transport::HttpSettings,
}

impl WasenderSyncClient {
    /// A client for the session whose API key is `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            personal_access_token: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            webhook: WebhookVerifier::default(),
            #[cfg(feature = "client")]
            http: transport::HttpSettings::default(),
        }
    }

    /// Adds a webhook secret (the value shown in the dashboard). Call it again to
    /// accept several secrets while rotating; empty secrets are ignored.
    pub fn with_webhook_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.webhook.add_secret(secret);
        self
    }

    /// Adds several webhook secrets at once (rotation).
    pub fn with_webhook_secrets<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        for secret in secrets {
            self.webhook.add_secret(secret);
        }
        self
    }

    /// Chooses the signature scheme (default: [`SignatureScheme::SharedSecret`]).
    pub fn with_signature_scheme(mut self, scheme: SignatureScheme) -> Self {
        self.webhook.set_scheme(scheme);
        self
    }

    /// The webhook verifier in use.
    pub fn webhook_verifier(&self) -> &WebhookVerifier {
        &self.webhook
    }

    /// Sets the REST base URL (default [`DEFAULT_BASE_URL`]); a trailing `/` is ignored.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.base_url = url.trim_end_matches('/').to_owned();
        self
    }

    /// Sets the Personal Access Token used by the account (`/whatsapp-sessions`) endpoints.
    pub fn with_personal_access_token(mut self, token: impl Into<String>) -> Self {
        self.personal_access_token = Some(token.into());
        self
    }

    /// The REST base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

#[cfg(feature = "client")]
impl WasenderSyncClient {
    /// Sets the limit for one API call, from connecting to the last byte of
    /// the answer (default 30 s). A call that exceeds it fails with
    /// [`WasenderError::Timeout`](crate::WasenderError::Timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http.timeout = timeout;
        self.http.reset_agent();
        self
    }

    /// Sets the limit for opening a connection: DNS, TCP and TLS (default 10 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.http.connect_timeout = timeout;
        self.http.reset_agent();
        self
    }

    /// Sets the limit for downloading one media file in
    /// [`download_media`](Self::download_media) (default 120 s).
    pub fn with_download_timeout(mut self, timeout: Duration) -> Self {
        self.http.download_timeout = timeout;
        self
    }

    /// Sets the largest media file [`download_media`](Self::download_media)
    /// accepts, in bytes (default 100 MiB).
    pub fn with_max_download_size(mut self, bytes: u64) -> Self {
        self.http.max_download_bytes = bytes;
        self
    }

    /// Sets the retry policy (default [`RetryPolicy::default`](crate::RetryPolicy)).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.http.retry = policy;
        self
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.http.retry
    }

    /// The per-call timeout in use.
    pub fn timeout(&self) -> Duration {
        self.http.timeout
    }
}

impl fmt::Debug for WasenderSyncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("WasenderSyncClient");
        out.field("api_key", &"[redacted]")
            .field(
                "personal_access_token",
                &self.personal_access_token.as_ref().map(|_| "[redacted]"),
            )
            .field("base_url", &self.base_url)
            .field("webhook", &self.webhook);
        #[cfg(feature = "client")]
        out.field("http", &self.http);
        out.finish()
    }
}
