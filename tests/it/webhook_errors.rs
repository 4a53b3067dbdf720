//! The error table of `handle_webhook_event`: each failure has its own variant,
//! HTTP status and actionable message, and verification comes before parsing.

use wasenderapi::signature::{sign_webhook, SignatureScheme};
use wasenderapi::*;

use crate::support::SECRET;

const EVENT: &[u8] = br#"{"event":"session.status","data":{"status":"connected"}}"#;

fn client() -> WebhookVerifier {
    WebhookVerifier::with_secret(SECRET)
}

#[test]
fn error_table() {
    let c = client();
    let cases: Vec<(&[u8], Option<&str>, u16, &str)> = vec![
        (EVENT, None, 401, "missing webhook signature"),
        (EVENT, Some(""), 401, "missing webhook signature"),
        (EVENT, Some("wrong"), 401, "invalid webhook signature"),
        (b"", Some(SECRET), 400, "empty request body"),
        (b"  \n", Some(SECRET), 400, "empty request body"),
        (
            b"{\"event\":\"a\xff\"}",
            Some(SECRET),
            400,
            "not valid UTF-8",
        ),
        (b"{\"event\":", Some(SECRET), 400, "not valid JSON"),
        (
            b"{\"event\":\"x\"} trailing",
            Some(SECRET),
            400,
            "not valid JSON",
        ),
        (b"[1,2]", Some(SECRET), 400, "not a webhook event"),
        (b"[1,2]", Some(SECRET), 400, "it is an array"),
        (b"\"str\"", Some(SECRET), 400, "not a webhook event"),
        (b"\"str\"", Some(SECRET), 400, "it is a string"),
        (b" 42 ", Some(SECRET), 400, "it is a number"),
        (b"null", Some(SECRET), 400, "it is null"),
        (b"false", Some(SECRET), 400, "it is a boolean"),
        // Not an object, and not JSON either: said to be not JSON (issue 15).
        (b"[1,2", Some(SECRET), 400, "not valid JSON"),
        (b"[", Some(SECRET), 400, "not valid JSON"),
        (b"[1,]", Some(SECRET), 400, "not valid JSON"),
        (b"\"unterminated", Some(SECRET), 400, "not valid JSON"),
        (b"tru", Some(SECRET), 400, "not valid JSON"),
        (b"nul", Some(SECRET), 400, "not valid JSON"),
        (b"42x", Some(SECRET), 400, "not valid JSON"),
        (b"hello", Some(SECRET), 400, "not valid JSON"),
        // An object the decoder refuses early, but whose rest is not JSON.
        (b"{\"event\":7,", Some(SECRET), 400, "not valid JSON"),
        (b"{\"event\":7} x", Some(SECRET), 400, "not valid JSON"),
        (b"{\"data\":{}} x", Some(SECRET), 400, "not valid JSON"),
        (b"{\"data\":{}", Some(SECRET), 400, "not valid JSON"),
        (b"{\"data\":{}}", Some(SECRET), 400, "no `event` member"),
        (
            b"{\"event\":7}",
            Some(SECRET),
            400,
            "`event` member is not a string",
        ),
    ];
    for (body, sig, status, text) in cases {
        let err = c
            .handle_webhook_event(body, sig)
            .expect_err("must be rejected");
        assert_eq!(err.status_code(), Some(status), "{err}");
        assert!(
            err.to_string().contains(text),
            "{err:?} should mention {text:?}"
        );
        assert!(
            !err.to_string().contains(SECRET),
            "the secret leaked: {err}"
        );
        // The listener answers this text to the sender: a refused body also
        // says what to send instead, and a body that is not JSON is never
        // called JSON.
        if status == 400 {
            assert!(err.to_string().contains("send "), "{err} says what to do");
        }
        if text == "not valid JSON" {
            assert!(
                matches!(err, WasenderError::InvalidJson { .. }),
                "{body:?}: {err:?}"
            );
            assert!(!err.to_string().contains("is JSON"), "{err}");
        }
    }
}

#[test]
fn a_body_that_is_not_json_reports_where_it_breaks() {
    // The position is that of the first mistake in the whole body, not of
    // the first thing that is not an event.
    for (body, at) in [
        (&b"[1,2"[..], (1, 4)),
        (b"[\n  1,\n  2,\n]", (4, 1)),
        (b"{\"event\":7,\n  \"data\": }", (2, 11)),
        (b"\n\n  \"abc", (3, 6)),
    ] {
        match client().handle_webhook_event(body, Some(SECRET)) {
            Err(WasenderError::InvalidJson { line, column, .. }) => {
                assert_eq!((line, column), at, "{:?}", String::from_utf8_lossy(body))
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
}

#[test]
fn variants_are_distinct() {
    let c = client();
    assert!(matches!(
        c.handle_webhook_event(EVENT, None),
        Err(WasenderError::MissingSignature)
    ));
    assert!(matches!(
        c.handle_webhook_event(EVENT, Some("x")),
        Err(WasenderError::InvalidSignature)
    ));
    assert!(matches!(
        c.handle_webhook_event(b"", Some(SECRET)),
        Err(WasenderError::EmptyBody)
    ));
    assert!(matches!(
        c.handle_webhook_event(b"{\"a\":\"\xc3\x28\"}", Some(SECRET)),
        Err(WasenderError::BodyNotUtf8 { valid_up_to: 6 })
    ));
    match c.handle_webhook_event(b"{\n  \"event\": tru }", Some(SECRET)) {
        Err(WasenderError::InvalidJson { line, column, .. }) => assert_eq!((line, column), (2, 15)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.handle_webhook_event(b"42", Some(SECRET)),
        Err(WasenderError::NotAnEvent { .. })
    ));
    let no_secret = WebhookVerifier::new(SignatureScheme::SharedSecret);
    let err = no_secret
        .handle_webhook_event(EVENT, Some("anything"))
        .unwrap_err();
    assert!(matches!(err, WasenderError::SecretNotConfigured));
    assert_eq!(err.status_code(), Some(500));
}

#[test]
fn signature_is_checked_before_the_body() {
    // A malformed body with a bad signature is a signature error, not a body error.
    let err = client()
        .handle_webhook_event(b"not json", Some("bad"))
        .unwrap_err();
    assert!(matches!(err, WasenderError::InvalidSignature));
    let err = client().handle_webhook_event(b"", None).unwrap_err();
    assert!(matches!(err, WasenderError::MissingSignature));
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    for depth in [200usize, 100_000] {
        let mut body = String::from(r#"{"event":"x","data":"#);
        body.push_str(&"[".repeat(depth));
        body.push_str(&"]".repeat(depth));
        body.push('}');
        let err = client()
            .handle_webhook_event(body.as_bytes(), Some(SECRET))
            .unwrap_err();
        assert!(matches!(err, WasenderError::InvalidJson { .. }), "{err}");
        assert!(err.to_string().contains("recursion limit"), "{err}");
        // Deep, but not necessarily invalid: the text says which.
        assert!(err.to_string().contains("deeper than 128 levels"), "{err}");
        assert!(!err.to_string().contains("not valid JSON"), "{err}");
    }
    let mut body = String::from(r#"{"event":"messages.upsert","data":{"message":"#);
    body.push_str(&r#"{"ephemeralMessage":{"message":"#.repeat(120));
    body.push_str("{}");
    body.push_str(&"}}".repeat(120));
    body.push_str("}}");
    assert!(client()
        .handle_webhook_event(body.as_bytes(), Some(SECRET))
        .is_err());
}

#[test]
fn rotation_accepts_every_configured_secret() {
    let c = WebhookVerifier::with_secret("old").with_additional_secret("new");
    assert!(c.handle_webhook_event(EVENT, Some("old")).is_ok());
    assert!(c.handle_webhook_event(EVENT, Some("new")).is_ok());
    assert!(c.handle_webhook_event(EVENT, Some("older")).is_err());
}

#[test]
fn hmac_scheme_verifies_the_raw_body() {
    let c = WebhookVerifier::with_secret("hmac-key").with_scheme(SignatureScheme::HmacSha256);
    let sig = sign_webhook(SignatureScheme::HmacSha256, "hmac-key", EVENT);
    assert!(c.handle_webhook_event(EVENT, Some(&sig)).is_ok());
    // The same JSON re-serialised differently no longer verifies: the raw bytes count.
    let reformatted = br#"{"event": "session.status", "data": {"status": "connected"}}"#;
    assert!(matches!(
        c.handle_webhook_event(reformatted, Some(&sig)),
        Err(WasenderError::InvalidSignature)
    ));
    // The shared secret itself is not accepted under HMAC.
    assert!(c.handle_webhook_event(EVENT, Some("hmac-key")).is_err());
}

#[cfg(feature = "client")]
#[test]
fn client_is_send_sync_and_debug_redacts() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<WasenderSyncClient>();
    assert_send_sync::<WebhookVerifier>();
    assert_send_sync::<WasenderWebhookEvent>();
    assert_send_sync::<WasenderError>();
    let c = WasenderSyncClient::builder("my-api-key-123")
        .webhook_secret("my-webhook-secret-456")
        .personal_access_token("my-pat-789")
        .build();
    let debug = format!("{c:?}");
    for secret in ["my-api-key-123", "my-webhook-secret-456", "my-pat-789"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}
