//! [`WasenderSyncClient`] itself: its parts and how it is made.

use std::fmt;
use std::time::Duration;

use super::builder::WasenderSyncClientBuilder;
use super::transport;
use super::{RetryPolicy, DEFAULT_BASE_URL};
use crate::secret::Secret;
use crate::signature::verifier::WebhookVerifier;

/// The WasenderAPI client: holds the session API key and the webhook secret(s),
/// and calls the REST API.
///
/// Cheap to clone and `Send + Sync`: share one across threads (wrap it in an
/// `Arc` or clone it); clones share one `ureq` agent and so one connection
/// pool. Its `Debug` output never shows a key or secret.
///
/// REST calls are blocking. Defaults: base URL [`DEFAULT_BASE_URL`], 30 s per
/// call, 10 s to connect, user agent [`USER_AGENT`](super::USER_AGENT), and [`RetryPolicy::default`]
/// (429s waited out up to 10 s; network errors and 5xx retried only for requests
/// that are safe to repeat, never a send); [`WasenderSyncClient::builder`]
/// changes them.
///
/// A receive-only app needs no client: a [`WebhookVerifier`] verifies and
/// decodes events on its own, and the client hands its verifier to anything
/// that takes one (`From<WasenderSyncClient> for WebhookVerifier`).
///
/// # Examples
///
/// Configured once, it verifies webhooks with no network at all:
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::WasenderSyncClient;
///
/// let client = WasenderSyncClient::builder("api-key")
///     .webhook_secret("secret")
///     .timeout(Duration::from_secs(10))
///     .build();
/// let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
/// let event = client.handle_webhook_event(body, Some("secret"))?;
/// assert_eq!(event.event_type().as_str(), "session.status");
/// assert!(!format!("{client:?}").contains("api-key")); // never printed
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
///
/// Sending and replying call the API (so this one is only compiled):
///
/// ```no_run
/// use wasenderapi::client::Message;
/// use wasenderapi::event::WebhookMessage;
/// use wasenderapi::WasenderSyncClient;
///
/// fn answer(client: &WasenderSyncClient, incoming: &WebhookMessage) -> wasenderapi::Result<()> {
///     if let Some(text) = incoming.text() {
///         client.reply_text(incoming, &format!("You said: {text}"))?;
///     }
///     Ok(())
/// }
///
/// let client = WasenderSyncClient::new(std::env::var("WASENDER_API_KEY").unwrap_or_default());
/// let sent = client.send_text("+1234567890", "Hello from Rust")?;
/// println!("msgId {:?}", sent.msg_id());
/// client.send(&Message::image("+1234567890", "https://example.com/a.jpg").caption("Look"))?;
/// # let _ = answer;
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
#[derive(Clone)]
pub struct WasenderSyncClient {
    pub(crate) api_key: Secret,
    pub(crate) personal_access_token: Option<Secret>,
    pub(crate) base_url: String,
    pub(crate) webhook: WebhookVerifier,
    pub(crate) http: transport::HttpSettings,
}

impl WasenderSyncClient {
    /// Starts configuring a client for the session whose API key is
    /// `api_key`: webhook secrets, timeouts, retries, base URL.
    pub fn builder(api_key: impl Into<String>) -> WasenderSyncClientBuilder {
        WasenderSyncClientBuilder::new(api_key)
    }

    /// A client for the session whose API key is `api_key`, with every
    /// default (and no webhook secret: see [`builder`](Self::builder)).
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: Secret::new(api_key),
            personal_access_token: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            webhook: WebhookVerifier::default(),
            http: transport::HttpSettings::default(),
        }
    }

    /// The REST base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
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
        f.debug_struct("WasenderSyncClient")
            .field("api_key", &self.api_key)
            .field("personal_access_token", &self.personal_access_token)
            .field("base_url", &self.base_url)
            .field("webhook", &self.webhook)
            .field("http", &self.http)
            .finish()
    }
}
