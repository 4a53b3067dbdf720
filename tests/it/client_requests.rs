//! Every REST method sends the documented method, path, query, credentials,
//! content type and JSON body (checked on a real local HTTP server).

use serde_json::json;
use wasenderapi::client::{GroupSettings, Message, PresenceType, SessionSettings};
use wasenderapi::event::ParticipantAction;
use wasenderapi::WasenderError;

use crate::support::fixtures::{rest_fixture, rest_json};
use crate::support::rest::{assert_json_body, assert_request, Reply, TestServer};

fn ok() -> Reply {
    Reply::json(200, r#"{"success":true,"data":{}}"#)
}

fn sent() -> Reply {
    Reply::json(
        200,
        r#"{"success":true,"data":{"msgId":1,"jid":"+1","status":"in_progress"}}"#,
    )
}

#[test]
fn send_text_posts_the_documented_body() {
    let server = TestServer::always(sent());
    server
        .client()
        .send_text("+1234567890", "Hello, this is your requested update.")
        .expect("sent");
    let r = server.single();
    assert_request(&r, "POST", "/send-message");
    assert_json_body(&r, rest_json("send-message.text.request.json"));
}

#[test]
fn send_media_kinds_use_their_url_members_and_caption_as_text() {
    let server = TestServer::always(sent());
    let client = server.client();
    client
        .send_image("+1", "https://x/i.jpg", Some("pic"))
        .expect("image");
    client
        .send_video("+1", "https://x/v.mp4", None)
        .expect("video");
    client
        .send_document("+1", "https://x/d.pdf", "d.pdf", Some("doc"))
        .expect("document");
    client.send_audio("+1", "https://x/a.mp3").expect("audio");
    client
        .send_sticker("+1", "https://x/s.webp")
        .expect("sticker");
    let bodies: Vec<_> = server.requests().iter().map(|r| r.json()).collect();
    assert_eq!(
        bodies,
        vec![
            json!({"to": "+1", "imageUrl": "https://x/i.jpg", "text": "pic"}),
            json!({"to": "+1", "videoUrl": "https://x/v.mp4"}),
            json!({"to": "+1", "documentUrl": "https://x/d.pdf", "fileName": "d.pdf", "text": "doc"}),
            json!({"to": "+1", "audioUrl": "https://x/a.mp3"}),
            json!({"to": "+1", "stickerUrl": "https://x/s.webp"}),
        ]
    );
    for r in server.requests() {
        assert_request(&r, "POST", "/send-message");
    }
}

#[test]
fn send_contact_location_and_poll_nest_their_objects() {
    let server = TestServer::always(sent());
    let client = server.client();
    client.send_contact("+1", "Ann", "+2").expect("contact");
    client
        .send_location("+1", 37.5, -122.25, Some("HQ"), Some("1 Main St"))
        .expect("location");
    client
        .send_poll("123@g.us", "Lunch?", &["Pizza", "Sushi"], false)
        .expect("poll");
    let bodies: Vec<_> = server.requests().iter().map(|r| r.json()).collect();
    assert_eq!(
        bodies[0],
        json!({"to": "+1", "contact": {"name": "Ann", "phone": "+2"}})
    );
    assert_eq!(
        bodies[1],
        json!({"to": "+1", "location": {"latitude": 37.5, "longitude": -122.25, "name": "HQ", "address": "1 Main St"}})
    );
    assert_eq!(
        bodies[2],
        json!({"to": "123@g.us", "poll": {"question": "Lunch?", "options": ["Pizza", "Sushi"], "multiSelect": false}})
    );
}

#[test]
fn send_carries_reply_to_mentions_view_once_and_extra_fields() {
    let server = TestServer::always(sent());
    let message = Message::image("123@g.us", "https://x/i.jpg")
        .caption("look @2")
        .reply_to(100000)
        .mentions(["2@s.whatsapp.net"])
        .view_once(true)
        .with_field("linkPreview", false);
    server.client().send(&message).expect("sent");
    assert_json_body(
        &server.single(),
        json!({
            "to": "123@g.us", "imageUrl": "https://x/i.jpg", "text": "look @2",
            "replyTo": 100000, "mentions": ["2@s.whatsapp.net"], "viewOnce": true,
            "linkPreview": false
        }),
    );
}

#[test]
fn message_management_uses_msg_id_paths() {
    let server = TestServer::always(ok());
    let client = server.client();
    client.edit_message(42, "fixed").expect("edit");
    client.delete_message(42).expect("delete");
    client.get_message_info(42).expect("info");
    client.resend_message(42).expect("resend");
    let rs = server.requests();
    assert_request(&rs[0], "PUT", "/messages/42");
    assert_json_body(&rs[0], json!({"text": "fixed"}));
    assert_request(&rs[1], "DELETE", "/messages/42");
    assert!(rs[1].body.is_empty());
    assert_request(&rs[2], "GET", "/messages/42/info");
    assert!(rs[2].body.is_empty());
    assert_request(&rs[3], "POST", "/messages/42/resend");
}

#[test]
fn mark_as_read_sends_the_key() {
    let server = TestServer::always(Reply::json(
        200,
        &rest_fixture("messages.read.response.json"),
    ));
    let key: wasenderapi::event::MessageKey =
        serde_json::from_value(rest_json("messages.read.request.json")["key"].clone())
            .expect("key");
    let result = server.client().mark_as_read(&key).expect("read");
    let r = server.single();
    assert_request(&r, "POST", "/messages/read");
    assert_json_body(&r, rest_json("messages.read.request.json"));
    assert_eq!(result.success, Some(true));
    assert_eq!(result.data, Some(json!({"status": "read"})));
}

#[test]
fn presence_update_sends_jid_type_and_optional_delay() {
    let server = TestServer::always(ok());
    let client = server.client();
    client
        .send_presence_update("1234567890@s.whatsapp.net", PresenceType::Composing, None)
        .expect("presence");
    client
        .send_presence_update("1@s.whatsapp.net", PresenceType::Unavailable, Some(1500))
        .expect("presence");
    let rs = server.requests();
    assert_request(&rs[0], "POST", "/send-presence-update");
    assert_json_body(&rs[0], rest_json("send-presence-update.request.json"));
    assert_json_body(
        &rs[1],
        json!({"jid": "1@s.whatsapp.net", "type": "unavailable", "delayMs": 1500}),
    );
}

#[test]
fn upload_sends_raw_bytes_with_their_content_type() {
    let server = TestServer::always(Reply::json(
        200,
        r#"{"success":true,"publicUrl":"https://x/u"}"#,
    ));
    let png = [0x89u8, b'P', b'N', b'G', 0, 1, 2];
    let uploaded = server
        .client()
        .upload_media_file(&png, "image/png")
        .expect("upload");
    assert_eq!(uploaded.url(), Some("https://x/u"));
    let r = server.single();
    assert_request(&r, "POST", "/upload");
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.body, png);
}

#[test]
fn upload_base64_uses_the_documented_json_shapes() {
    let server = TestServer::always(Reply::json(
        200,
        r#"{"success":true,"data":{"publicUrl":"https://x/u"}}"#,
    ));
    let client = server.client();
    let data_url = rest_json("upload.request.base64-dataurl.json")["base64"]
        .as_str()
        .expect("string")
        .to_owned();
    client
        .upload_media_base64(&data_url, None)
        .expect("data url");
    client
        .upload_media_base64("iVBORw0KGgoAAAANSUhEUgA...", Some("image/png"))
        .expect("mimetype");
    client
        .upload_media_bytes_as_base64(b"hi", "text/plain")
        .expect("bytes");
    let rs = server.requests();
    assert_json_body(&rs[0], rest_json("upload.request.base64-dataurl.json"));
    assert_json_body(&rs[1], rest_json("upload.request.base64-mimetype.json"));
    assert_json_body(&rs[2], json!({"mimetype": "text/plain", "base64": "aGk="}));
    assert!(matches!(
        client.upload_media_base64("aGk=", None),
        Err(WasenderError::InvalidArgument(_))
    ));
    assert_eq!(server.requests().len(), 3, "invalid input sends nothing");
}

#[test]
fn on_whatsapp_and_contacts_paths() {
    let server = TestServer::always(ok());
    let client = server.client();
    client
        .check_if_on_whatsapp("+1234567890")
        .expect("on-whatsapp");
    client.get_contacts().expect("contacts");
    client.get_contacts_page(2, 50).expect("page");
    client
        .get_contact_info("1234567890@s.whatsapp.net")
        .expect("info");
    client
        .get_contact_profile_picture("1234567890")
        .expect("picture");
    client.block_contact("1234567890").expect("block");
    client.unblock_contact("1234567890").expect("unblock");
    let rs = server.requests();
    assert_request(&rs[0], "GET", "/on-whatsapp/+1234567890");
    assert_request(&rs[1], "GET", "/contacts");
    assert_eq!(rs[1].query(), "");
    assert_request(&rs[2], "GET", "/contacts");
    assert_eq!(rs[2].query(), "paginated=true&page=2&limit=50");
    assert_request(&rs[3], "GET", "/contacts/1234567890@s.whatsapp.net");
    assert_request(&rs[4], "GET", "/contacts/1234567890/profile-picture");
    assert_request(&rs[5], "POST", "/contacts/1234567890/block");
    assert_eq!(rs[5].header("content-length"), Some("0"));
    assert_request(&rs[6], "POST", "/contacts/1234567890/unblock");
}

#[test]
fn path_segments_are_percent_encoded() {
    let server = TestServer::always(ok());
    server.client().get_contact_info("a/b c").expect("info");
    assert_eq!(server.single().path(), "/api/contacts/a%2Fb%20c");
}

#[test]
fn group_calls_use_the_documented_paths_and_bodies() {
    let server = TestServer::always(ok());
    let client = server.client();
    let g = "123-456@g.us";
    client.get_groups().expect("list");
    client.create_group("Team", &["+1", "+2"]).expect("create");
    client.get_group_metadata(g).expect("metadata");
    client.get_group_participants(g).expect("participants");
    client.add_group_participants(g, &["+3"]).expect("add");
    client
        .remove_group_participants(g, &["+3"])
        .expect("remove");
    client
        .update_group_participants(g, &ParticipantAction::Promote, &["+2"])
        .expect("update");
    client
        .update_group_settings(g, &GroupSettings::new().announce(true).restrict(false))
        .expect("settings");
    client.leave_group(g).expect("leave");
    client.get_group_invite_link(g).expect("invite link");
    client.get_group_invite_info("AbCd").expect("invite info");
    client.accept_group_invite("AbCd").expect("accept");
    client.get_group_profile_picture(g).expect("picture");
    let rs = server.requests();
    let shape: Vec<(&str, &str)> = rs.iter().map(|r| (r.method.as_str(), r.path())).collect();
    assert_eq!(
        shape,
        vec![
            ("GET", "/api/groups"),
            ("POST", "/api/groups"),
            ("GET", "/api/groups/123-456@g.us/metadata"),
            ("GET", "/api/groups/123-456@g.us/participants"),
            ("POST", "/api/groups/123-456@g.us/participants/add"),
            ("POST", "/api/groups/123-456@g.us/participants/remove"),
            ("PUT", "/api/groups/123-456@g.us/participants/update"),
            ("PUT", "/api/groups/123-456@g.us/settings"),
            ("POST", "/api/groups/123-456@g.us/leave"),
            ("GET", "/api/groups/123-456@g.us/invite-link"),
            ("GET", "/api/groups/invite/AbCd"),
            ("POST", "/api/groups/invite/accept"),
            ("GET", "/api/groups/123-456@g.us/picture"),
        ]
    );
    for r in &rs {
        assert_request(r, &r.method, r.path().trim_start_matches("/api"));
    }
    assert_json_body(
        &rs[1],
        json!({"name": "Team", "participants": ["+1", "+2"]}),
    );
    assert_json_body(&rs[4], json!({"participants": ["+3"]}));
    assert_json_body(&rs[5], json!({"participants": ["+3"]}));
    assert_json_body(&rs[6], json!({"action": "promote", "participants": ["+2"]}));
    assert_json_body(&rs[7], json!({"announce": true, "restrict": false}));
    assert_json_body(&rs[11], json!({"code": "AbCd"}));
}

#[test]
fn session_calls_use_the_personal_access_token_and_documented_paths() {
    let server = TestServer::always(ok());
    let client = server
        .client_builder()
        .personal_access_token("test-pat")
        .build();
    let settings = SessionSettings::new()
        .name("Sample Name")
        .phone_number("Sample Phone_number")
        .account_protection(true)
        .log_messages(true)
        .webhook_url("Sample Webhook_url")
        .webhook_enabled(true)
        .webhook_events(["number1", "number2"]);
    client.get_all_whatsapp_sessions().expect("list");
    client.create_whatsapp_session(&settings).expect("create");
    client.get_whatsapp_session_details(7).expect("details");
    client
        .update_whatsapp_session(7, &SessionSettings::new().log_messages(false))
        .expect("update");
    client.delete_whatsapp_session(7).expect("delete");
    client.connect_whatsapp_session(7, false).expect("connect");
    client
        .connect_whatsapp_session(7, true)
        .expect("connect image");
    client.get_whatsapp_session_qr_code(7).expect("qr");
    client.disconnect_whatsapp_session(7).expect("disconnect");
    client.regenerate_api_key(7).expect("regenerate");
    let rs = server.requests();
    let shape: Vec<(&str, &str, &str)> = rs
        .iter()
        .map(|r| (r.method.as_str(), r.path(), r.query()))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("GET", "/api/whatsapp-sessions", ""),
            ("POST", "/api/whatsapp-sessions", ""),
            ("GET", "/api/whatsapp-sessions/7", ""),
            ("PUT", "/api/whatsapp-sessions/7", ""),
            ("DELETE", "/api/whatsapp-sessions/7", ""),
            ("POST", "/api/whatsapp-sessions/7/connect", ""),
            ("POST", "/api/whatsapp-sessions/7/connect", "qrAsImage=true"),
            ("GET", "/api/whatsapp-sessions/7/qrcode", ""),
            ("POST", "/api/whatsapp-sessions/7/disconnect", ""),
            ("POST", "/api/whatsapp-sessions/7/regenerate-api-key", ""),
        ]
    );
    for r in &rs {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer test-pat"),
            "{}",
            r.url
        );
    }
    assert_json_body(&rs[1], rest_json("whatsapp-sessions.create.request.json"));
    assert_json_body(&rs[3], json!({"log_messages": false}));
}

#[test]
fn status_and_user_use_the_api_key() {
    let server = TestServer::always(Reply::json(200, &rest_fixture("status.response.json")));
    let client = server
        .client_builder()
        .personal_access_token("test-pat")
        .build();
    client.get_status().expect("status");
    client.get_session_user_info().expect("user");
    let rs = server.requests();
    assert_request(&rs[0], "GET", "/status");
    assert_request(&rs[1], "GET", "/user");
}

#[test]
fn decrypt_media_json_posts_the_given_body() {
    let server = TestServer::always(Reply::json(
        200,
        &rest_fixture("decrypt-media.response.json"),
    ));
    let body = rest_json("decrypt-media.request.json");
    server.client().decrypt_media_json(&body).expect("decrypt");
    let r = server.single();
    assert_request(&r, "POST", "/decrypt-media");
    assert_json_body(&r, body);
}
