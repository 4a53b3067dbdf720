//! [`WasenderSyncClientBuilder`]: the client's settings, named as the
//! listener's and the worker's builders name theirs.

use std::time::Duration;

use super::{RetryPolicy, WasenderSyncClient};
use crate::secret::Secret;
use crate::signature::SignatureScheme;

/// Configures a [`WasenderSyncClient`]. Made by
/// [`WasenderSyncClient::builder`]; every setter documents its default.
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::client::RetryPolicy;
/// use wasenderapi::WasenderSyncClient;
///
/// let client = WasenderSyncClient::builder("session-api-key")
///     .webhook_secret("webhook-secret")
///     .timeout(Duration::from_secs(10))
///     .retry_policy(RetryPolicy::default().max_retries(5))
///     .build();
/// assert_eq!(client.timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct WasenderSyncClientBuilder {
    client: WasenderSyncClient,
}

impl WasenderSyncClientBuilder {
    pub(crate) fn new(api_key: impl Into<String>) -> Self {
        Self {
            client: WasenderSyncClient::new(api_key),
        }
    }

    /// The REST base URL (default
    /// [`DEFAULT_BASE_URL`](super::DEFAULT_BASE_URL)); a trailing `/` is ignored.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.client.base_url = url.trim_end_matches('/').to_owned();
        self
    }

    /// The Personal Access Token used by the account (`/whatsapp-sessions`)
    /// endpoints (default none: those calls fail with
    /// [`MissingPersonalAccessToken`](crate::WasenderError::MissingPersonalAccessToken)).
    pub fn personal_access_token(mut self, token: impl Into<String>) -> Self {
        self.client.personal_access_token = Some(Secret::new(token));
        self
    }

    /// The limit for one API call, from connecting to the last byte of the
    /// answer (default 30 s). A call that exceeds it fails with
    /// [`WasenderError::Timeout`](crate::WasenderError::Timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.client.http.timeout = timeout;
        self.client.http.reset_agent();
        self
    }

    /// The limit for opening a connection: DNS, TCP and TLS (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.client.http.connect_timeout = timeout;
        self.client.http.reset_agent();
        self
    }

    /// The limit for downloading one media file in
    /// [`download_media`](WasenderSyncClient::download_media) (default 120 s).
    pub fn download_timeout(mut self, timeout: Duration) -> Self {
        self.client.http.download_timeout = timeout;
        self
    }

    /// The largest media file
    /// [`download_media`](WasenderSyncClient::download_media) accepts, in
    /// bytes (default 100 MiB).
    pub fn max_download_size(mut self, bytes: u64) -> Self {
        self.client.http.max_download_bytes = bytes;
        self
    }

    /// How failed calls are retried (default [`RetryPolicy::default`]: 429s
    /// waited out up to 10 s; network errors and 5xx retried only for
    /// requests that are safe to repeat, never a send).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.client.http.retry = policy;
        self
    }

    /// A webhook secret (the value shown in the dashboard) the client
    /// verifies events with (default none). Call it again to accept several
    /// while rotating; an empty secret is ignored.
    pub fn webhook_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.client.webhook.add_secret(secret);
        self
    }

    /// Several webhook secrets at once (rotation).
    pub fn webhook_secrets<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        for secret in secrets {
            self.client.webhook.add_secret(secret);
        }
        self
    }

    /// The signature scheme (default [`SignatureScheme::SharedSecret`],
    /// WasenderAPI's).
    pub fn signature_scheme(mut self, scheme: SignatureScheme) -> Self {
        self.client.webhook.set_scheme(scheme);
        self
    }

    /// The client.
    pub fn build(self) -> WasenderSyncClient {
        self.client
    }
}
