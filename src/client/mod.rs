//! [`WasenderSyncClient`]: webhook verification, and (with the `client`
//! feature) the blocking REST API.

use std::fmt;

use crate::signature::{SignatureScheme, WebhookVerifier};

/// The default REST base URL.
pub const DEFAULT_BASE_URL: &str = "https://www.wasenderapi.com/api";

/// The WasenderAPI client: holds the session API key and the webhook secret(s).
///
/// Cheap to clone and `Send + Sync`: share one across threads (wrap it in an
/// `Arc` or clone it). Its `Debug` output never shows a key or secret.
///
/// ```
/// use wasenderapi::WasenderSyncClient;
/// let client = WasenderSyncClient::new("api-key").with_webhook_secret("secret");
/// let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
/// let event = client.handle_webhook_event(body, Some("secret")).unwrap();
/// assert_eq!(event.event_type().as_str(), "session.status");
/// ```
#[derive(Clone)]
pub struct WasenderSyncClient {
    pub(crate) api_key: String,
    pub(crate) personal_access_token: Option<String>,
    pub(crate) base_url: String,
    pub(crate) webhook: WebhookVerifier,
}

impl WasenderSyncClient {
    /// A client for the session whose API key is `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            personal_access_token: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            webhook: WebhookVerifier::default(),
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

impl fmt::Debug for WasenderSyncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasenderSyncClient")
            .field("api_key", &"[redacted]")
            .field(
                "personal_access_token",
                &self.personal_access_token.as_ref().map(|_| "[redacted]"),
            )
            .field("base_url", &self.base_url)
            .field("webhook", &self.webhook)
            .finish()
    }
}
