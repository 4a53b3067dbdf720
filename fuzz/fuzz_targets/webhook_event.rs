//! Fuzzes `WebhookVerifier::handle_webhook_event`: no input may panic, and every accepted event
//! must serialise back to exactly the JSON that was received.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasenderapi::WebhookVerifier;
use wasenderapi::signature::SignatureScheme;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the signature case; the rest is the body.
    let (choice, body) = match data.split_first() {
        Some((c, rest)) => (*c, rest),
        None => (0, data),
    };
    let header = match choice % 4 {
        0 => Some(SECRET.to_owned()),
        1 => None,
        2 => Some(String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned()),
        _ => Some(wasenderapi::signature::sign_webhook(SignatureScheme::HmacSha256, SECRET, body)),
    };
    let verifier = if choice % 4 == 3 {
        let mut hmac = WebhookVerifier::new(SignatureScheme::HmacSha256);
        hmac.add_secret(SECRET);
        hmac
    } else {
        WebhookVerifier::with_secret(SECRET)
    };
    match verifier.handle_webhook_event(body, header.as_deref()) {
        Ok(event) => {
            let received: serde_json::Value =
                serde_json::from_slice(body).expect("an accepted body is JSON");
            let written = serde_json::to_value(&event).expect("events serialise");
            assert_eq!(written, received, "lossless round trip");
            for m in event.messages() {
                let _ = (m.id(), m.text(), m.sender_phone(), m.media(), m.timestamp_secs());
            }
            let _ = (event.timestamp_secs(), event.session_id(), event.event_type().as_str());
        }
        Err(err) => {
            let status = err.status_code().expect("webhook errors map to a status");
            assert!(status == 400 || status == 401, "{status}");
            assert!(!err.to_string().contains(SECRET), "secret leaked");
        }
    }
});
