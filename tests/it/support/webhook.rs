//! Signed webhook events as WasenderAPI sends them.

use wasenderapi::signature::{sign_webhook, SignatureScheme};

/// The webhook secret of every test listener and child process.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A `messages.received` event carrying message `id` with `text` (which
/// steers [`Recorder`](super::Recorder)).
pub fn event(id: &str, text: &str) -> Vec<u8> {
    serde_json::json!({
        "event": "messages.received",
        "timestamp": 1_700_000_000,
        "sessionId": "sess-0123456789abcdef",
        "data": {"messages": {
            "key": {"id": id, "fromMe": false, "remoteJid": "15551234567@s.whatsapp.net", "cleanedSenderPn": "15551234567"},
            "messageBody": text
        }}
    })
    .to_string()
    .into_bytes()
}

/// The `X-Webhook-Signature` value for `body` under [`SECRET`].
pub fn signature(body: &[u8]) -> String {
    sign_webhook(SignatureScheme::SharedSecret, SECRET, body)
}
