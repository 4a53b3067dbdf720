//! From a webhook event to an API call in one step: decrypting and
//! downloading received media, replying, marking as read.

use serde_json::{json, Value};
use wasenderapi::event::WebhookMessage;
use wasenderapi::WasenderError;

use crate::support::fixtures::fixture;
use crate::support::rest::{assert_json_body, assert_request, Reply, TestServer};

/// The messages of a webhook fixture, as the client's user gets them.
fn messages_of(name: &str) -> Vec<WebhookMessage> {
    let body = fixture(name);
    let client = wasenderapi::WasenderSyncClient::builder("k")
        .webhook_secret("s")
        .build();
    let event = client
        .handle_webhook_event(&body, Some("s"))
        .expect("fixture is a valid event");
    event.messages().to_vec()
}

#[test]
fn decrypt_media_file_builds_the_documented_body_from_a_webhook_message() {
    let message = messages_of("messages.upsert.image.json")
        .into_iter()
        .next()
        .expect("one message");
    let raw: Value =
        serde_json::from_slice(&fixture("messages.upsert.image.json")).expect("fixture JSON");
    let server = TestServer::always(Reply::json(200, r#"{"publicUrl":"https://x/decrypted"}"#));
    let decrypted = server
        .client()
        .decrypt_media_file(&message)
        .expect("decrypt");
    assert_eq!(decrypted.url(), Some("https://x/decrypted"));
    let r = server.single();
    assert_request(&r, "POST", "/decrypt-media");
    assert_json_body(
        &r,
        json!({"data": {"messages": {
            "key": {"id": "message-id-123"},
            "message": {"imageMessage": raw["data"]["message"]["imageMessage"].clone()}
        }}}),
    );
}

#[test]
fn decrypt_media_file_unwraps_ephemeral_and_document_with_caption() {
    let message: WebhookMessage = serde_json::from_value(json!({
        "key": {"id": "EPH1", "remoteJid": "1@s.whatsapp.net", "fromMe": false},
        "message": {"ephemeralMessage": {"message": {"documentWithCaptionMessage": {"message": {
            "documentMessage": {"url": "https://mmg/d.enc", "mimetype": "application/pdf",
                "fileName": "a.pdf", "mediaKey": "K", "fileLength": {"low": 5}}
        }}}}}
    }))
    .expect("message");
    let server = TestServer::always(Reply::json(200, r#"{"publicUrl":"https://x/d"}"#));
    server
        .client()
        .decrypt_media_file(&message)
        .expect("decrypt");
    assert_json_body(
        &server.single(),
        json!({"data": {"messages": {"key": {"id": "EPH1"}, "message": {"documentMessage": {
            "url": "https://mmg/d.enc", "mimetype": "application/pdf", "fileName": "a.pdf",
            "mediaKey": "K", "fileLength": {"low": 5}
        }}}}}),
    );
}

#[test]
fn decrypt_media_file_rejects_messages_without_media_before_sending() {
    let message: WebhookMessage =
        serde_json::from_value(json!({"key": {"id": "T"}, "message": {"conversation": "hi"}}))
            .expect("message");
    let server = TestServer::always(Reply::json(200, "{}"));
    assert!(matches!(
        server.client().decrypt_media_file(&message),
        Err(WasenderError::InvalidArgument(_))
    ));
    assert!(server.finish().is_empty());
}

#[test]
fn download_media_fetches_the_decrypted_bytes_without_credentials() {
    let image = vec![0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    let served = image.clone();
    let server = TestServer::start(move |_, request| {
        if request.path() == "/api/decrypt-media" {
            let host = request.header("host").unwrap_or_default().to_owned();
            Reply::json(
                200,
                &json!({"publicUrl": format!("http://{host}/media/message-id-123.jpg")})
                    .to_string(),
            )
        } else {
            Reply::raw(200, "image/jpeg", &served)
        }
    });
    let message = messages_of("messages.upsert.image.json").remove(0);
    let bytes = server.client().download_media(&message).expect("download");
    assert_eq!(bytes, image);
    let rs = server.requests();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[1].method, "GET");
    assert_eq!(rs[1].path(), "/media/message-id-123.jpg");
    assert_eq!(
        rs[1].header("authorization"),
        None,
        "no credentials leave for the media URL"
    );
}

/// A server whose `/decrypt-media` points at `/media/big.mp4?token=abc` on
/// itself, which answers with `media`.
fn media_server(media: Reply) -> TestServer {
    TestServer::start(move |_, request| {
        if request.path() == "/api/decrypt-media" {
            let host = request.header("host").unwrap_or_default().to_owned();
            Reply::json(
                200,
                &json!({"publicUrl": format!("http://{host}/media/big.mp4?token=abc")}).to_string(),
            )
        } else {
            media.clone()
        }
    })
}

#[test]
fn download_media_refuses_a_declared_size_over_the_limit() {
    let server = media_server(Reply::raw(200, "video/mp4", &[0u8; 4096]));
    let message = messages_of("messages.upsert.image.json").remove(0);
    let err = server
        .client_builder()
        .max_download_size(1024)
        .build()
        .download_media(&message)
        .expect_err("too big");
    match &err {
        WasenderError::MediaTooLarge {
            url,
            limit,
            declared,
            ..
        } => {
            assert!(
                url.ends_with("/media/big.mp4"),
                "the URL without its query: {url}"
            );
            assert_eq!(*limit, 1024);
            assert_eq!(*declared, Some(4096));
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("1024") && text.contains("4096"), "{text}");
    assert!(!text.contains("token"), "{text}");
    assert_eq!(err.status_code(), None);
    assert_eq!(
        server.finish().len(),
        2,
        "an oversized file is not fetched again"
    );
}

#[test]
fn download_media_stops_an_undeclared_body_at_the_limit() {
    let server = media_server(Reply::raw(200, "video/mp4", &[0u8; 4096]).chunked());
    let message = messages_of("messages.upsert.image.json").remove(0);
    let err = server
        .client_builder()
        .max_download_size(1024)
        .build()
        .download_media(&message)
        .expect_err("too big");
    assert!(
        matches!(
            err,
            WasenderError::MediaTooLarge {
                limit: 1024,
                declared: None,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn download_media_accepts_a_file_of_exactly_the_limit() {
    let server = media_server(Reply::raw(200, "video/mp4", &[7u8; 1024]).chunked());
    let message = messages_of("messages.upsert.image.json").remove(0);
    let bytes = server
        .client_builder()
        .max_download_size(1024)
        .build()
        .download_media(&message)
        .expect("at the limit");
    assert_eq!(bytes.len(), 1024);
}

#[test]
fn download_media_errors_name_the_url_without_its_query() {
    let server = media_server(Reply::raw(404, "text/plain", b"gone"));
    let message = messages_of("messages.upsert.image.json").remove(0);
    let err = server.client().download_media(&message).expect_err("404");
    match &err {
        WasenderError::Api {
            endpoint, status, ..
        } => {
            assert_eq!(*status, 404);
            assert!(endpoint.starts_with("GET http://127.0.0.1:"), "{endpoint}");
            assert!(endpoint.ends_with("/media/big.mp4"), "{endpoint}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_decrypt_answer_without_a_url_is_a_decode_error_of_that_call() {
    let server = TestServer::always(Reply::json(200, r#"{"success":true,"data":{}}"#));
    let message = messages_of("messages.upsert.image.json").remove(0);
    let err = server
        .client()
        .download_media(&message)
        .expect_err("no URL");
    match &err {
        WasenderError::Decode {
            endpoint, status, ..
        } => {
            assert_eq!(endpoint, "POST /decrypt-media");
            assert_eq!(*status, 200);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.finish().len(), 1, "nothing to download");
}

#[test]
fn reply_text_answers_in_the_same_chat() {
    let server = TestServer::always(Reply::json(
        200,
        r#"{"success":true,"data":{"msgId":5,"jid":"+1234567890","status":"in_progress"}}"#,
    ));
    let client = server.client();
    for message in messages_of("messages.received.json") {
        client.reply_text(&message, "Got it").expect("reply");
    }
    let r = server.single();
    assert_request(&r, "POST", "/send-message");
    let body = r.json();
    assert_eq!(body["text"], "Got it");
    let to = body["to"].as_str().expect("to");
    assert!(to.starts_with('+') || to.contains('@'), "recipient {to}");
}

#[test]
fn reply_text_in_a_group_goes_to_the_group() {
    let message: WebhookMessage = serde_json::from_value(json!({
        "key": {"id": "G1", "remoteJid": "120363@g.us", "participant": "5@s.whatsapp.net"},
        "messageBody": "hello"
    }))
    .expect("message");
    let server = TestServer::always(Reply::json(200, r#"{"success":true,"data":{"msgId":1}}"#));
    server
        .client()
        .reply_text(&message, "hi all")
        .expect("reply");
    assert_json_body(
        &server.single(),
        json!({"to": "120363@g.us", "text": "hi all"}),
    );
}

#[test]
fn mark_message_as_read_uses_the_webhook_key() {
    let server = TestServer::always(Reply::json(
        200,
        r#"{"success":true,"data":{"status":"read"}}"#,
    ));
    let message = messages_of("messages.upsert.image.json").remove(0);
    server
        .client()
        .mark_message_as_read(&message)
        .expect("read");
    assert_json_body(
        &server.single(),
        json!({"key": {"id": "message-id-123", "remoteJid": "1234567890@s.whatsapp.net", "fromMe": false}}),
    );
}
