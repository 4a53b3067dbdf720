//! The client's webhook side: it holds a [`WebhookVerifier`] and delegates to it.

use super::WasenderSyncClient;
use crate::error::WasenderError;
use crate::event::WasenderWebhookEvent;
use crate::signature::verifier::WebhookVerifier;

impl WasenderSyncClient {
    /// The webhook verifier in use.
    pub fn webhook_verifier(&self) -> &WebhookVerifier {
        &self.webhook
    }

    /// Verifies a webhook request and decodes its body into a typed event:
    /// [`WebhookVerifier::handle_webhook_event`] with this client's secrets and
    /// scheme.
    ///
    /// `body` is the raw request body, exactly as received; `signature` is the
    /// `X-Webhook-Signature` header value (`None` if absent). The signature is
    /// checked in constant time against every configured secret *before* the
    /// body is parsed; then the body is decoded in one pass.
    ///
    /// Errors map to HTTP statuses through [`WasenderError::status_code`]:
    /// 401 for a missing or wrong signature, 400 for a body that is empty, not
    /// UTF-8, not JSON, or not an event object, 500 when no secret is configured.
    pub fn handle_webhook_event(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<WasenderWebhookEvent, WasenderError> {
        self.webhook.handle_webhook_event(body, signature)
    }

    /// Only verifies the signature of a webhook request
    /// ([`WebhookVerifier::verify`]).
    pub fn verify_webhook_signature(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), WasenderError> {
        self.webhook.verify(body, signature)
    }
}

impl From<WasenderSyncClient> for WebhookVerifier {
    /// The client's webhook verifier (its secrets and scheme).
    fn from(client: WasenderSyncClient) -> Self {
        client.webhook
    }
}

impl From<&WasenderSyncClient> for WebhookVerifier {
    /// A copy of the client's webhook verifier (its secrets and scheme).
    fn from(client: &WasenderSyncClient) -> Self {
        client.webhook.clone()
    }
}
