//! Every documented payload parses to its variant, round-trips losslessly,
//! dispatches to the right handler method and gives the right accessor values.

mod common;

use std::sync::Mutex;

use serde_json::Value;
use wasenderapi::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn client() -> WasenderSyncClient {
    WasenderSyncClient::new("api-key").with_webhook_secret(SECRET)
}

fn handle(name: &str) -> WasenderWebhookEvent {
    client()
        .handle_webhook_event(&common::fixture(name), Some(SECRET))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_fixture_parses_to_its_variant() {
    let expected = [
        ("call.json", WasenderWebhookEventType::Call),
        ("chats.upsert.json", WasenderWebhookEventType::ChatsUpsert),
        (
            "contacts.upsert.json",
            WasenderWebhookEventType::ContactsUpsert,
        ),
        (
            "message-receipt.update.json",
            WasenderWebhookEventType::MessageReceiptUpdate,
        ),
        (
            "messages-newsletter.received.flat.json",
            WasenderWebhookEventType::MessagesNewsletterReceived,
        ),
        (
            "messages-newsletter.received.messages-object.json",
            WasenderWebhookEventType::MessagesNewsletterReceived,
        ),
        (
            "messages-personal.received.json",
            WasenderWebhookEventType::MessagesPersonalReceived,
        ),
        (
            "messages.reaction.json",
            WasenderWebhookEventType::MessagesReaction,
        ),
        (
            "messages.received.json",
            WasenderWebhookEventType::MessagesReceived,
        ),
        (
            "messages.update.json",
            WasenderWebhookEventType::MessagesUpdate,
        ),
        (
            "messages.upsert.image.json",
            WasenderWebhookEventType::MessagesUpsert,
        ),
        (
            "messages.upsert.json",
            WasenderWebhookEventType::MessagesUpsert,
        ),
        (
            "qrcode.updated.json",
            WasenderWebhookEventType::QrcodeUpdated,
        ),
        (
            "session.status.sessionId-envelope.json",
            WasenderWebhookEventType::SessionStatus,
        ),
        (
            "session.status.timestamp-envelope.json",
            WasenderWebhookEventType::SessionStatus,
        ),
    ];
    let names: Vec<String> = common::event_fixtures()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names.len(),
        expected.len(),
        "a fixture has no expectation: {names:?}"
    );
    for (name, kind) in expected {
        let event = handle(name);
        assert_eq!(event.event_type(), kind, "{name}");
        // Everything modelled was decoded into typed data: nothing fell back to raw.
        assert!(
            event.extra().get("data").is_none(),
            "{name}: data did not fit its type"
        );
    }
}

#[test]
fn every_fixture_round_trips_losslessly() {
    for (name, body) in common::event_fixtures() {
        let event = client().handle_webhook_event(&body, Some(SECRET)).unwrap();
        let received: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), received, "{name}");
        // And through bytes again.
        let bytes = serde_json::to_vec(&event).unwrap();
        let again = parse_event(&bytes).unwrap();
        assert_eq!(again, event, "{name}");
    }
}

/// Records which handler method was called.
#[derive(Default)]
struct Recorder(Mutex<Vec<&'static str>>);

impl Recorder {
    fn hit(&self, name: &'static str) -> Result<(), String> {
        self.0.lock().unwrap().push(name);
        Ok(())
    }
}

impl WebhookHandler for Recorder {
    type Error = String;
    fn on_messages_upsert(&self, _: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("messages.upsert")
    }
    fn on_messages_received(&self, _: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("messages.received")
    }
    fn on_messages_personal_received(&self, _: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("messages-personal.received")
    }
    fn on_messages_group_received(&self, _: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("messages-group.received")
    }
    fn on_messages_newsletter_received(
        &self,
        _: &WebhookEvent<MessagesData>,
    ) -> Result<(), String> {
        self.hit("messages-newsletter.received")
    }
    fn on_message_sent(&self, _: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("message.sent")
    }
    fn on_messages_update(&self, _: &WebhookEvent<OneOrMany<MessageUpdate>>) -> Result<(), String> {
        self.hit("messages.update")
    }
    fn on_messages_delete(&self, _: &WebhookEvent<MessagesDelete>) -> Result<(), String> {
        self.hit("messages.delete")
    }
    fn on_messages_reaction(
        &self,
        _: &WebhookEvent<OneOrMany<MessageReaction>>,
    ) -> Result<(), String> {
        self.hit("messages.reaction")
    }
    fn on_message_receipt_update(
        &self,
        _: &WebhookEvent<OneOrMany<ReceiptUpdate>>,
    ) -> Result<(), String> {
        self.hit("message-receipt.update")
    }
    fn on_session_status(&self, _: &WebhookEvent<SessionStatusData>) -> Result<(), String> {
        self.hit("session.status")
    }
    fn on_qrcode_updated(&self, _: &WebhookEvent<QrCodeData>) -> Result<(), String> {
        self.hit("qrcode.updated")
    }
    fn on_chats_upsert(&self, _: &WebhookEvent<OneOrMany<Chat>>) -> Result<(), String> {
        self.hit("chats.upsert")
    }
    fn on_chats_update(&self, _: &WebhookEvent<OneOrMany<Chat>>) -> Result<(), String> {
        self.hit("chats.update")
    }
    fn on_chats_delete(&self, _: &WebhookEvent<OneOrMany<String>>) -> Result<(), String> {
        self.hit("chats.delete")
    }
    fn on_contacts_upsert(&self, _: &WebhookEvent<OneOrMany<Contact>>) -> Result<(), String> {
        self.hit("contacts.upsert")
    }
    fn on_contacts_update(&self, _: &WebhookEvent<OneOrMany<Contact>>) -> Result<(), String> {
        self.hit("contacts.update")
    }
    fn on_groups_upsert(&self, _: &WebhookEvent<OneOrMany<GroupMetadata>>) -> Result<(), String> {
        self.hit("groups.upsert")
    }
    fn on_groups_update(&self, _: &WebhookEvent<OneOrMany<GroupMetadata>>) -> Result<(), String> {
        self.hit("groups.update")
    }
    fn on_group_participants_update(
        &self,
        _: &WebhookEvent<OneOrMany<GroupParticipantsUpdate>>,
    ) -> Result<(), String> {
        self.hit("group-participants.update")
    }
    fn on_call(&self, _: &WebhookEvent<CallData>) -> Result<(), String> {
        self.hit("call")
    }
    fn on_poll_results(&self, _: &WebhookEvent<PollResults>) -> Result<(), String> {
        self.hit("poll.results")
    }
    fn on_unknown(&self, _: &WebhookEvent<Value>) -> Result<(), String> {
        self.hit("unknown")
    }
}

#[test]
fn every_catalogued_name_dispatches_to_exactly_its_method() {
    assert_eq!(WasenderWebhookEventType::KNOWN.len(), 22);
    for kind in WasenderWebhookEventType::KNOWN {
        let body = format!(r#"{{"event":"{}","data":{{}}}}"#, kind.as_str());
        let event = client()
            .handle_webhook_event(body.as_bytes(), Some(SECRET))
            .unwrap();
        assert_eq!(&event.event_type(), kind);
        let recorder = Recorder::default();
        dispatch(&recorder, &event).unwrap();
        assert_eq!(*recorder.0.lock().unwrap(), vec![kind.as_str()]);
    }
    let event = parse_event(br#"{"event":"brand.new","data":{"x":1}}"#).unwrap();
    let recorder = Recorder::default();
    event.dispatch_to(&recorder).unwrap();
    assert_eq!(*recorder.0.lock().unwrap(), vec!["unknown"]);
}

#[test]
fn every_fixture_dispatches_to_its_method() {
    for (name, body) in common::event_fixtures() {
        let event = parse_event(&body).unwrap();
        let recorder = Recorder::default();
        dispatch(&recorder, &event).unwrap();
        assert_eq!(
            *recorder.0.lock().unwrap(),
            vec![event.event_type().as_str()],
            "{name}"
        );
    }
}

#[test]
fn messages_received_accessors() {
    let event = handle("messages.received.json");
    assert_eq!(event.timestamp(), Some(1_633_456_789));
    let [m] = event.messages() else {
        panic!("one message")
    };
    assert_eq!(m.id(), Some("3EB0X123456789"));
    assert_eq!(m.text(), Some("Hello, I have a question"));
    assert_eq!(m.sender_phone().as_deref(), Some("1234567890"));
    assert_eq!(m.chat_jid(), Some("1234567890@s.whatsapp.net"));
    assert!(!m.from_me());
    assert!(!m.is_group());
    assert!(m.media().is_none());
    assert_eq!(
        m.key.as_ref().unwrap().sender_lid.as_deref(),
        Some("555555555@lid")
    );
}

#[test]
fn messages_upsert_array_accessors() {
    let event = handle("messages.upsert.json");
    let [m] = event.messages() else {
        panic!("one message")
    };
    assert_eq!(m.id(), Some("message-id-123"));
    assert_eq!(m.text(), Some("Hello!"));
    assert_eq!(m.sender_phone().as_deref(), Some("5551234567"));
}

#[test]
fn flat_image_message_exposes_media_and_caption() {
    let event = handle("messages.upsert.image.json");
    let [m] = event.messages() else {
        panic!("one message")
    };
    assert_eq!(m.text(), Some("Check out this image!"));
    let media = m.media().expect("an image");
    assert_eq!(media.kind, MediaKind::Image);
    assert_eq!(media.mimetype(), Some("image/jpeg"));
    assert_eq!(media.file_length(), Some(12345));
    assert_eq!(media.message.media_key.as_deref(), Some("SBqPa+ZHCoVLDdb"));
    // No cleaned phone field: the digits of the phone JID.
    assert_eq!(m.sender_phone().as_deref(), Some("1234567890"));
}

#[test]
fn newsletter_both_shapes() {
    for (name, id, text) in [
        (
            "messages-newsletter.received.flat.json",
            "message-id-newsletter-789",
            "Big announcement coming tomorrow!",
        ),
        (
            "messages-newsletter.received.messages-object.json",
            "message-id-newsletter-456",
            "Hey Good News!",
        ),
    ] {
        let event = handle(name);
        let [m] = event.messages() else {
            panic!("{name}: one message")
        };
        assert_eq!(m.id(), Some(id));
        assert_eq!(m.text(), Some(text));
        assert!(m.chat_jid().unwrap().ends_with("@newsletter"));
        assert_eq!(m.sender_phone(), None, "a channel has no phone");
    }
}

#[test]
fn personal_message_accessors() {
    let event = handle("messages-personal.received.json");
    let [m] = event.messages() else {
        panic!("one message")
    };
    assert_eq!(m.text(), Some("Hi there, I wanted to ask about my order."));
    assert_eq!(m.sender_phone().as_deref(), Some("1234567890"));
}

#[test]
fn messages_update_status_and_millisecond_timestamp() {
    let event = handle("messages.update.json");
    assert_eq!(event.timestamp(), Some(1_747_775_431));
    assert_eq!(
        event.timestamp_raw().and_then(NumberOrString::as_i64),
        Some(1_747_775_431_467)
    );
    assert_eq!(event.session_id(), Some("your_api_key"));
    let WasenderWebhookEvent::MessagesUpdate(e) = &event else {
        panic!()
    };
    let [update] = e.data.as_ref().unwrap().as_slice() else {
        panic!("one update")
    };
    assert_eq!(update.status(), Some(MessageStatus::Sent));
    assert_eq!(
        update.key.as_ref().unwrap().id.as_deref(),
        Some("34874643876")
    );
    assert!(event.messages().is_empty());
}

#[test]
fn receipt_update_documented_nesting() {
    let event = handle("message-receipt.update.json");
    let WasenderWebhookEvent::MessageReceiptUpdate(e) = &event else {
        panic!()
    };
    let [r] = e.data.as_ref().unwrap().as_slice() else {
        panic!("one receipt")
    };
    assert_eq!(r.key().unwrap().id.as_deref(), Some("message_id_here"));
    assert_eq!(
        r.receipt().unwrap().user_jid.as_deref(),
        Some("participant_jid_here")
    );
    assert_eq!(event.timestamp(), Some(1_234_567_890));
}

#[test]
fn reaction_accessors() {
    let event = handle("messages.reaction.json");
    let WasenderWebhookEvent::MessagesReaction(e) = &event else {
        panic!()
    };
    let [r] = e.data.as_ref().unwrap().as_slice() else {
        panic!("one reaction")
    };
    assert_eq!(r.emoji(), Some("👍"));
    assert_eq!(r.target_id(), Some("message-id-123"));
    assert_eq!(
        r.key.as_ref().unwrap().sender_phone().as_deref(),
        Some("1234567890")
    );
}

#[test]
fn session_status_both_envelopes() {
    let event = handle("session.status.sessionId-envelope.json");
    let WasenderWebhookEvent::SessionStatus(e) = &event else {
        panic!()
    };
    assert_eq!(
        e.data.as_ref().unwrap().status(),
        Some(SessionStatus::Connected)
    );
    assert_eq!(event.session_id(), Some("YOUR_SESSION_API_KEY"));
    assert_eq!(event.timestamp(), None);

    let event = handle("session.status.timestamp-envelope.json");
    assert_eq!(event.session_id(), Some("session-id-123"));
    assert_eq!(event.timestamp(), Some(1_633_456_789));
}

#[test]
fn qrcode_call_chats_contacts() {
    let WasenderWebhookEvent::QrcodeUpdated(e) = handle("qrcode.updated.json") else {
        panic!()
    };
    assert_eq!(
        e.data.unwrap().qr.as_deref(),
        Some("2@67576ghf/RMXr8A2IP3/...")
    );

    let WasenderWebhookEvent::Call(e) = handle("call.json") else {
        panic!()
    };
    let call = e.data.unwrap().call.unwrap();
    assert_eq!(call.from.as_deref(), Some("1234567890@s.whatsapp.net"));
    assert!(call.video());
    assert_eq!(call.is_group, Some(false));
    assert_eq!(call.status.as_deref(), Some("offer"));
    assert_eq!(call.date_seconds(), Some(1_758_576_840));

    let WasenderWebhookEvent::ChatsUpsert(e) = handle("chats.upsert.json") else {
        panic!()
    };
    let [chat] = e.data.as_ref().unwrap().as_slice() else {
        panic!()
    };
    assert_eq!(chat.unread_count(), Some(2));
    assert_eq!(chat.conversation_timestamp(), Some(1_633_456_789));
    assert_eq!(chat.name.as_deref(), Some("Contact Name"));

    let WasenderWebhookEvent::ContactsUpsert(e) = handle("contacts.upsert.json") else {
        panic!()
    };
    let [contact] = e.data.as_ref().unwrap().as_slice() else {
        panic!()
    };
    assert_eq!(contact.jid(), Some("1234567890"));
    assert_eq!(contact.display_name(), Some("Contact Name"));
    assert_eq!(
        contact.verified_name.as_deref(),
        Some("Verified Business Name")
    );
}
