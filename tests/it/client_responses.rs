//! Documented REST answers decode into the typed results, unknown members
//! are kept, and send results carry the rate-limit headers.

use serde_json::json;
use wasenderapi::event::{MessageStatus, SessionStatus};

use crate::support::fixtures::{rest_fixture, rest_json};
use crate::support::rest::{Reply, TestServer};

fn serve(fixture: &str) -> TestServer {
    TestServer::always(Reply::json(200, &rest_fixture(fixture)))
}

#[test]
fn send_result_has_the_message_and_rate_limit_headers() {
    let server = TestServer::always(
        Reply::json(200, &rest_fixture("send-message.response.json"))
            .header("X-RateLimit-Limit", "256")
            .header("X-RateLimit-Remaining", "255")
            .header("X-RateLimit-Reset", "1751297488"),
    );
    let sent = server.client().send_text("+123456789", "hi").expect("sent");
    assert_eq!(sent.msg_id(), Some(100000));
    assert_eq!(sent.message.jid.as_deref(), Some("+123456789"));
    assert_eq!(sent.message.status.as_deref(), Some("in_progress"));
    let limits = sent.rate_limit.expect("rate-limit headers");
    assert_eq!(limits.limit, Some(256));
    assert_eq!(limits.remaining, Some(255));
    assert_eq!(limits.reset, Some(1751297488));
}

#[test]
fn send_result_without_rate_limit_headers_has_none() {
    let server = serve("send-message.response.json");
    let sent = server.client().send_text("+1", "hi").expect("sent");
    assert!(sent.rate_limit.is_none());
}

#[test]
fn message_info_decodes_status_key_and_content() {
    let server = serve("messages.info.response.json");
    let info = server.client().get_message_info(100000).expect("info");
    assert_eq!(info.status_parsed(), Some(MessageStatus::Sent));
    assert_eq!(info.timestamp_secs(), Some(1751297488));
    assert_eq!(
        info.key.as_ref().and_then(|k| k.id.as_deref()),
        Some("EN82FV0387IVR54JTE2R1")
    );
    assert_eq!(info.message.as_ref().and_then(|m| m.text()), Some("quoted"));
    assert_eq!(
        serde_json::to_value(&info).expect("serialises"),
        rest_json("messages.info.response.json")["data"],
        "lossless"
    );
}

#[test]
fn contacts_list_decodes_every_documented_member() {
    let server = serve("contacts.list.response.json");
    let contacts = server.client().get_contacts().expect("contacts");
    assert_eq!(contacts.len(), 1);
    let c = &contacts.items[0];
    assert_eq!(c.jid(), Some("1234567890"));
    assert_eq!(c.display_name(), Some("Contact Name"));
    assert_eq!(c.verified_name.as_deref(), Some("Verified Business Name"));
    assert_eq!(
        c.img_url.as_deref(),
        Some("https://profile.pic.url/image.jpg")
    );
    assert!(c.extra.is_empty());
}

#[test]
fn paginated_contacts_expose_pagination() {
    let server = TestServer::always(Reply::json(
        200,
        r#"{"success":true,"data":{"items":[{"jid":"1"},{"jid":"2"}],"pagination":{"page":1,"totalPages":2,"total":3}}}"#,
    ));
    let page = server.client().get_contacts_page(1, 2).expect("page");
    assert_eq!(page.len(), 2);
    let pagination = page.pagination.expect("pagination");
    assert_eq!(pagination.has_next_page(), Some(true));
}

#[test]
fn group_metadata_decodes_participants() {
    let server = serve("groups.metadata.response.json");
    let group = server
        .client()
        .get_group_metadata("123456789-987654321@g.us")
        .expect("metadata");
    assert_eq!(group.subject.as_deref(), Some("Group Subject"));
    let participants = group.participants.expect("participants");
    assert_eq!(participants.len(), 2);
    assert_eq!(participants[0].jid(), Some("123456789"));
    assert_eq!(participants[0].is_admin(), Some(true));
}

#[test]
fn group_participants_accept_strings_and_objects() {
    let server = TestServer::always(Reply::json(
        200,
        r#"{"success":true,"data":["1@s.whatsapp.net",{"jid":"2@s.whatsapp.net","isAdmin":true}]}"#,
    ));
    let participants = server
        .client()
        .get_group_participants("1@g.us")
        .expect("participants");
    assert_eq!(participants[0].jid(), Some("1@s.whatsapp.net"));
    assert_eq!(participants[1].is_admin(), Some(true));
}

#[test]
fn status_decodes_without_a_success_wrapper() {
    let server = serve("status.response.json");
    let status = server.client().get_status().expect("status");
    assert_eq!(status.status_parsed(), Some(SessionStatus::Connected));
}

#[test]
fn decrypt_media_answer_gives_the_public_url() {
    let server = serve("decrypt-media.response.json");
    let body = rest_json("decrypt-media.request.json");
    let decrypted = server.client().decrypt_media_json(&body).expect("decrypt");
    assert_eq!(
        decrypted.url(),
        Some("https://www.wasenderapi.com/api/decrypted-media/YOUR_UNIQUE_MESSAGE_ID")
    );
}

#[test]
fn presence_answer_is_kept_as_action_data() {
    let server = serve("send-presence-update.response.json");
    let result = server
        .client()
        .send_presence_update(
            "1234567890@s.whatsapp.net",
            wasenderapi::client::PresenceType::Composing,
            None,
        )
        .expect("presence");
    assert_eq!(result.success, Some(true));
    assert_eq!(
        result.data,
        Some(json!({"jid": "1234567890@s.whatsapp.net", "type": "composing"}))
    );
}

#[test]
fn session_list_keeps_nulls_and_never_debug_prints_secrets() {
    let server = serve("whatsapp-sessions.list.response.json");
    let client = server.client_builder().personal_access_token("pat").build();
    let sessions = client.get_all_whatsapp_sessions().expect("sessions");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.items[0].session_id(), Some(1));
    assert_eq!(
        sessions.items[1].status_parsed(),
        Some(SessionStatus::Disconnected)
    );
    assert_eq!(
        sessions.items[1].extra.get("webhook_url"),
        Some(&serde_json::Value::Null)
    );
    assert_eq!(
        serde_json::to_value(&sessions.items).expect("serialises"),
        rest_json("whatsapp-sessions.list.response.json")["data"]
    );
}

#[test]
fn created_session_exposes_its_secrets_only_on_request() {
    let server = serve("whatsapp-sessions.create.response.json");
    let client = server.client_builder().personal_access_token("pat").build();
    let session = client
        .create_whatsapp_session(
            &wasenderapi::client::SessionSettings::new().name("Business WhatsApp"),
        )
        .expect("created");
    let key = session.api_key.as_ref().expect("api key");
    assert_eq!(
        key.expose(),
        "75075a7bf6417bff59e76fb7205382c2dc74cf1769e76f382c2dc74cf176c0bf"
    );
    let debug = format!("{session:?}");
    assert!(!debug.contains("75075a7bf"), "{debug}");
    assert!(!debug.contains("fb61be92"), "{debug}");
    assert_eq!(
        session.webhook_events,
        Some(vec!["message".to_owned(), "group_update".to_owned()])
    );
}

#[test]
fn connect_and_qrcode_decode_the_qr() {
    let server = TestServer::replies(vec![
        Reply::json(
            200,
            &rest_fixture("whatsapp-sessions.connect.response.json"),
        ),
        Reply::json(200, &rest_fixture("whatsapp-sessions.qrcode.response.json")),
    ]);
    let client = server.client_builder().personal_access_token("pat").build();
    let connect = client.connect_whatsapp_session(1, false).expect("connect");
    assert_eq!(connect.status_parsed(), Some(SessionStatus::NeedScan));
    assert_eq!(
        connect.qr_code.as_deref(),
        Some("2@DTMUHeYfa9/RMXr8A2IP3/...")
    );
    let qr = client.get_whatsapp_session_qr_code(1).expect("qr");
    assert_eq!(qr.qr_code.as_deref(), Some("2@DfzdTHeYfa9/RMXr8A2IP3/...."));
}

#[test]
fn unknown_members_are_kept() {
    let server = TestServer::always(Reply::json(
        200,
        r#"{"success":true,"data":{"msgId":"7","jid":"+1","status":"queued","queuePosition":3}}"#,
    ));
    let sent = server.client().send_text("+1", "hi").expect("sent");
    assert_eq!(sent.msg_id(), Some(7), "a numeric string id is read too");
    assert_eq!(sent.message.extra.get("queuePosition"), Some(&json!(3)));
}
