//! Error statuses, retries, network failures and odd bodies, against a real
//! local HTTP server.

use std::error::Error as _;
use std::time::{Duration, Instant};

use wasenderapi::client::RetryPolicy;
use wasenderapi::{WasenderError, WasenderSyncClient};

use crate::support::fixtures::rest_fixture;
use crate::support::rest::{fast_retries, Reply, TestServer};

fn sent() -> Reply {
    Reply::json(200, &rest_fixture("send-message.response.json"))
}

#[test]
fn unauthorized_is_an_api_error_with_the_message() {
    let server = TestServer::always(Reply::json(
        401,
        &rest_fixture("error.401.session-api-key-missing.json"),
    ));
    let err = server.client().get_status().expect_err("401");
    match &err {
        WasenderError::Api {
            endpoint,
            status,
            message,
            ..
        } => {
            assert_eq!(endpoint, "GET /status");
            assert_eq!(*status, 401);
            assert_eq!(message, "API key is required");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.status_code(), Some(401));
    assert_eq!(
        err.to_string(),
        "WasenderAPI answered 401 to GET /status: API key is required"
    );
    assert_eq!(server.requests().len(), 1, "4xx is not retried");
}

#[test]
fn validation_errors_carry_the_field_map() {
    let server = TestServer::always(Reply::json(
        422,
        r#"{"success":false,"message":"The given data was invalid.","errors":{"to":["The to field is required."],"text":["The text must be a string.","Too long."]}}"#,
    ));
    match server.client().send_text("", "x") {
        Err(WasenderError::Api { status, errors, .. }) => {
            assert_eq!(status, 422);
            assert_eq!(errors["to"], vec!["The to field is required."]);
            assert_eq!(errors["text"].len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rate_limited_send_waits_retry_after_then_succeeds() {
    let server = TestServer::replies(vec![
        Reply::json(429, r#"{"message":"Slow down","retry_after":1}"#),
        sent(),
    ]);
    let client = server
        .client_builder()
        .retry_policy(fast_retries().max_wait(Duration::from_secs(2)))
        .build();
    let started = Instant::now();
    let result = client
        .send_text("+1", "hi")
        .expect("second attempt succeeds");
    let waited = started.elapsed();
    assert_eq!(result.msg_id(), Some(100000));
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}"
    );
    let rs = server.requests();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].body, rs[1].body, "the same message was re-sent");
}

#[test]
fn retry_after_header_is_honoured() {
    let server = TestServer::replies(vec![
        Reply::json(429, r#"{"message":"Slow down"}"#).header("Retry-After", "1"),
        Reply::json(200, r#"{"status":"connected"}"#),
    ]);
    let client = server
        .client_builder()
        .retry_policy(fast_retries().max_wait(Duration::from_secs(2)))
        .build();
    let started = Instant::now();
    client.get_status().expect("second attempt succeeds");
    assert!(started.elapsed() >= Duration::from_millis(950));
}

#[test]
fn rate_limit_longer_than_max_wait_fails_at_once_with_retry_after() {
    let server = TestServer::always(Reply::json(
        429,
        &rest_fixture("error.429.trial-rate-limit.json"),
    ));
    let started = Instant::now();
    let err = server.client().send_text("+1", "hi").expect_err("429");
    assert!(started.elapsed() < Duration::from_secs(5));
    match err {
        WasenderError::Api {
            status,
            retry_after,
            message,
            ..
        } => {
            assert_eq!(status, 429);
            assert_eq!(retry_after, Some(Duration::from_secs(60)));
            assert!(message.starts_with("You are on a free trial"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn rate_limit_retries_are_bounded() {
    let server = TestServer::always(Reply::json(429, r#"{"message":"no","retry_after":0}"#));
    let client = server
        .client_builder()
        .retry_policy(fast_retries().max_retries(3))
        .build();
    assert!(client.get_status().is_err());
    assert_eq!(server.requests().len(), 4, "1 attempt + 3 retries");
}

#[test]
fn server_error_on_get_is_retried() {
    let server = TestServer::replies(vec![
        Reply::json(500, r#"{"success":false,"message":"Server Error"}"#),
        Reply::json(200, r#"{"status":"connected"}"#),
    ]);
    let status = server.client().get_status().expect("retried");
    assert_eq!(status.status.as_deref(), Some("connected"));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn server_error_on_send_is_not_resent_by_default() {
    let server = TestServer::replies(vec![Reply::json(502, "{}"), sent()]);
    let err = server.client().send_text("+1", "hi").expect_err("502");
    assert_eq!(err.status_code(), Some(502));
    assert_eq!(
        server.requests().len(),
        1,
        "a send is never repeated blindly"
    );
}

#[test]
fn server_error_on_send_is_resent_when_opted_in() {
    let server = TestServer::replies(vec![Reply::json(503, "{}"), sent()]);
    let client = server
        .client_builder()
        .retry_policy(fast_retries().retry_non_idempotent(true))
        .build();
    client.send_text("+1", "hi").expect("retried");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn no_retry_policy_returns_the_first_failure() {
    let server = TestServer::replies(vec![Reply::json(500, "{}"), Reply::json(200, "{}")]);
    let client = server
        .client_builder()
        .retry_policy(RetryPolicy::none())
        .build();
    assert!(client.get_status().is_err());
    assert_eq!(server.requests().len(), 1);
}

/// A base URL on a local port nobody listens on.
fn refused_base_url() -> String {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    format!("http://127.0.0.1:{port}/api")
}

#[test]
fn connection_refused_is_a_network_error_naming_the_call() {
    let client = WasenderSyncClient::builder("secret-api-key")
        .base_url(refused_base_url())
        .retry_policy(fast_retries())
        .build();
    let err = client.send_text("+1", "hi").expect_err("refused");
    match &err {
        WasenderError::Network { endpoint, .. } => assert_eq!(endpoint, "POST /send-message"),
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("network error on POST /send-message: "),
        "{text}"
    );
    assert!(!text.contains("secret-api-key"), "{text}");
    assert_eq!(err.status_code(), None);
}

#[test]
fn network_errors_keep_the_ureq_error_as_source() {
    let client = WasenderSyncClient::builder("k")
        .base_url(refused_base_url())
        .retry_policy(RetryPolicy::none())
        .build();
    let err = client.get_status().expect_err("refused");
    assert!(matches!(err, WasenderError::Network { .. }), "{err:?}");
    let source = err.source().expect("a network error has a source");
    assert!(
        source.downcast_ref::<ureq::Error>().is_some(),
        "source is not a ureq::Error: {source:?}"
    );
}

#[test]
fn slow_answers_time_out_and_sends_are_not_repeated() {
    let server = TestServer::always(sent().delayed(Duration::from_millis(1200)));
    let client = server
        .client_builder()
        .timeout(Duration::from_millis(300))
        .build();
    let err = client.send_text("+1", "hi").expect_err("too slow");
    match &err {
        WasenderError::Timeout {
            endpoint, reason, ..
        } => {
            assert_eq!(endpoint, "POST /send-message");
            assert!(reason.contains("300ms"), "names the limit: {reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.finish().len(), 1);
}

#[test]
fn timeouts_keep_the_ureq_timeout_as_source() {
    let server = TestServer::always(sent().delayed(Duration::from_millis(1200)));
    let client = server
        .client_builder()
        .timeout(Duration::from_millis(300))
        .retry_policy(RetryPolicy::none())
        .build();
    let err = client.get_status().expect_err("too slow");
    let source = err.source().expect("a timeout has a source");
    match source.downcast_ref::<ureq::Error>() {
        Some(ureq::Error::Timeout(_)) => {}
        other => panic!("source is not a ureq timeout: {other:?} ({err:?})"),
    }
    drop(server.finish());
}

#[test]
fn slow_gets_time_out_and_are_retried() {
    let server = TestServer::replies(vec![
        Reply::json(200, r#"{"status":"connected"}"#).delayed(Duration::from_millis(1500)),
        Reply::json(200, r#"{"status":"connected"}"#),
    ]);
    let client = server
        .client_builder()
        .timeout(Duration::from_millis(500))
        .build();
    client.get_status().expect("the retry is fast");
    assert_eq!(server.finish().len(), 2);
}

#[test]
fn non_json_success_is_a_decode_error_with_a_snippet() {
    let server = TestServer::always(Reply::raw(200, "text/html", b"<html>maintenance</html>"));
    let err = server.client().get_status().expect_err("not JSON");
    match &err {
        WasenderError::Decode {
            endpoint,
            status,
            snippet,
            ..
        } => {
            assert_eq!(endpoint, "GET /status");
            assert_eq!(*status, 200);
            assert_eq!(snippet, "<html>maintenance</html>");
        }
        other => panic!("unexpected {other:?}"),
    }
    let source = err.source().expect("the JSON error is kept");
    let json = source
        .downcast_ref::<serde_json::Error>()
        .expect("a serde_json error");
    assert_eq!((json.line(), json.column()), (1, 1));
}

#[test]
fn success_of_the_wrong_shape_is_a_decode_error_with_the_json_error() {
    let server = TestServer::always(Reply::json(200, r#"{"data":"connected"}"#));
    let err = server
        .client()
        .get_status()
        .expect_err("status is not a string");
    assert!(
        matches!(&err, WasenderError::Decode { endpoint, .. } if endpoint == "GET /status"),
        "{err:?}"
    );
    assert!(err.source().is_some_and(|s| s.is::<serde_json::Error>()));
}

#[test]
fn non_json_error_is_an_api_error_with_the_reason() {
    let server = TestServer::always(Reply::raw(404, "text/html", b"<html>Not Found</html>"));
    match server.client().get_contact_info("1") {
        Err(WasenderError::Api {
            status, message, ..
        }) => {
            assert_eq!(status, 404);
            assert_eq!(message, "Not Found");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn no_content_is_an_empty_success() {
    let server = TestServer::always(Reply::empty(204));
    let client = server.client_builder().personal_access_token("pat").build();
    let deleted = client.delete_whatsapp_session(3).expect("204 is success");
    assert_eq!(deleted.success, None);
    let blocked = client.block_contact("1").expect("204 is success");
    assert!(blocked.extra.is_empty());
    let info = client.get_message_info(1).expect("204 decodes to empty");
    assert!(info.status_parsed().is_none());
}

#[test]
fn personal_access_token_calls_fail_before_any_request_without_one() {
    let server = TestServer::always(Reply::json(200, "{}"));
    let client = server.client();
    assert!(matches!(
        client.get_all_whatsapp_sessions(),
        Err(WasenderError::MissingPersonalAccessToken { endpoint }) if endpoint == "GET /whatsapp-sessions"
    ));
    assert!(matches!(
        client.regenerate_api_key(1),
        Err(WasenderError::MissingPersonalAccessToken { endpoint })
            if endpoint == "POST /whatsapp-sessions/1/regenerate-api-key"
    ));
    assert!(matches!(
        server
            .client_builder()
            .personal_access_token("")
            .build()
            .get_whatsapp_session_qr_code(1),
        Err(WasenderError::MissingPersonalAccessToken { .. })
    ));
    assert!(server.finish().is_empty(), "nothing was sent");
}

#[test]
fn unauthorized_personal_token_is_reported() {
    let server = TestServer::always(Reply::json(
        401,
        &rest_fixture("error.401.personal-access-token.json"),
    ));
    let client = server.client_builder().personal_access_token("bad").build();
    let err = client.get_all_whatsapp_sessions().expect_err("401");
    assert!(matches!(err, WasenderError::Api { status: 401, .. }));
    assert!(!err.to_string().contains("bad"));
}

#[test]
fn debug_never_shows_credentials() {
    let client = WasenderSyncClient::builder("secret-api-key")
        .personal_access_token("secret-pat")
        .webhook_secret("secret-hook")
        .build();
    let debug = format!("{client:?}");
    for secret in ["secret-api-key", "secret-pat", "secret-hook"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn the_client_is_send_sync_and_clones_share_the_agent() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<WasenderSyncClient>();
    let server = TestServer::always(Reply::json(200, r#"{"status":"connected"}"#));
    let client = server.client();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.get_status().map(|s| s.status))
        })
        .collect();
    for t in threads {
        assert_eq!(
            t.join().expect("thread").expect("status").as_deref(),
            Some("connected")
        );
    }
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn an_invalid_base_url_is_an_invalid_request_and_nothing_is_sent() {
    let client = WasenderSyncClient::builder("secret-api-key")
        .base_url("http://exa mple/api")
        .build();
    let err = client.get_status().expect_err("not a URL");
    match &err {
        WasenderError::InvalidRequest { endpoint, .. } => assert_eq!(endpoint, "GET /status"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.source().is_some());
    assert!(!err.to_string().contains("secret-api-key"));
}

#[test]
fn a_content_type_that_cannot_be_a_header_is_an_invalid_request() {
    let server = TestServer::always(Reply::json(200, "{}"));
    let err = server
        .client()
        .upload_media_file(b"x", "image/png\r\nX-Injected: 1")
        .expect_err("bad header");
    match &err {
        WasenderError::InvalidRequest { endpoint, .. } => assert_eq!(endpoint, "POST /upload"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.source().is_some_and(|s| s.is::<ureq::http::Error>()));
    assert!(server.finish().is_empty(), "nothing was sent");
}

#[test]
fn an_api_key_that_cannot_be_a_header_is_refused_without_showing_it() {
    let server = TestServer::always(Reply::json(200, "{}"));
    let client = WasenderSyncClient::builder("secret\nkey")
        .base_url(server.base_url())
        .build();
    let err = client.get_status().expect_err("bad key");
    assert!(
        matches!(err, WasenderError::InvalidRequest { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("API key") && !text.contains("secret"),
        "{text}"
    );
    assert!(server.finish().is_empty(), "nothing was sent");
}
