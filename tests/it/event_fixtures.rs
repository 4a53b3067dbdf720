//! Every documented payload parses to its variant, round-trips losslessly,
//! dispatches to the right handler method and gives the right accessor values.

use std::sync::Mutex;

use serde_json::Value;
use wasenderapi::event::EventData;
use wasenderapi::event::*;
use wasenderapi::handler::dispatch;
use wasenderapi::*;

use crate::support::fixtures::{event_fixtures, fixture, fixtures_dir};
use crate::support::SECRET;

fn client() -> WebhookVerifier {
    WebhookVerifier::with_secret(SECRET)
}

fn handle(name: &str) -> WasenderWebhookEvent {
    client()
        .handle_webhook_event(&fixture(name), Some(SECRET))
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
    let names: Vec<String> = event_fixtures().into_iter().map(|(n, _)| n).collect();
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
    for (name, body) in event_fixtures() {
        let event = client().handle_webhook_event(&body, Some(SECRET)).unwrap();
        let received: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), received, "{name}");
        // And through bytes again.
        let bytes = serde_json::to_vec(&event).unwrap();
        let again = parse_event(&bytes).unwrap();
        assert_eq!(again, event, "{name}");
    }
}

/// What one handler call saw: the event type its method is for, and what the
/// typed wrapper's accessors said (to compare with the enum's).
#[derive(Debug, Clone, PartialEq)]
struct Hit {
    method_for: String,
    session_id: Option<String>,
    messages: usize,
}

/// Records which handler method was called. A new catalogue entry needs its
/// method here, or `every_catalogued_type_has_a_sample_that_decodes_and_dispatches` fails.
#[derive(Default)]
struct Recorder(Mutex<Vec<Hit>>);

impl Recorder {
    fn hit<D: EventData>(
        &self,
        method_for: &'static str,
        e: &WebhookEvent<D>,
    ) -> Result<(), String> {
        self.0.lock().unwrap().push(Hit {
            method_for: method_for.to_owned(),
            session_id: e.session_id().map(str::to_owned),
            messages: e.messages().len(),
        });
        Ok(())
    }

    fn methods_called(self) -> Vec<String> {
        self.0
            .into_inner()
            .unwrap()
            .into_iter()
            .map(|h| h.method_for)
            .collect()
    }
}

impl WebhookHandler for Recorder {
    type Error = String;
    fn on_messages_upsert(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("messages.upsert", e)
    }
    fn on_messages_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("messages.received", e)
    }
    fn on_messages_personal_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("messages-personal.received", e)
    }
    fn on_messages_group_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("messages-group.received", e)
    }
    fn on_messages_newsletter_received(
        &self,
        e: &WebhookEvent<MessagesData>,
    ) -> Result<(), String> {
        self.hit("messages-newsletter.received", e)
    }
    fn on_message_sent(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        self.hit("message.sent", e)
    }
    fn on_messages_update(&self, e: &WebhookEvent<OneOrMany<MessageUpdate>>) -> Result<(), String> {
        self.hit("messages.update", e)
    }
    fn on_messages_delete(&self, e: &WebhookEvent<MessagesDelete>) -> Result<(), String> {
        self.hit("messages.delete", e)
    }
    fn on_messages_reaction(
        &self,
        e: &WebhookEvent<OneOrMany<MessageReaction>>,
    ) -> Result<(), String> {
        self.hit("messages.reaction", e)
    }
    fn on_message_receipt_update(
        &self,
        e: &WebhookEvent<OneOrMany<ReceiptUpdate>>,
    ) -> Result<(), String> {
        self.hit("message-receipt.update", e)
    }
    fn on_session_status(&self, e: &WebhookEvent<SessionStatusData>) -> Result<(), String> {
        self.hit("session.status", e)
    }
    fn on_qrcode_updated(&self, e: &WebhookEvent<QrCodeData>) -> Result<(), String> {
        self.hit("qrcode.updated", e)
    }
    fn on_chats_upsert(&self, e: &WebhookEvent<OneOrMany<Chat>>) -> Result<(), String> {
        self.hit("chats.upsert", e)
    }
    fn on_chats_update(&self, e: &WebhookEvent<OneOrMany<Chat>>) -> Result<(), String> {
        self.hit("chats.update", e)
    }
    fn on_chats_delete(&self, e: &WebhookEvent<OneOrMany<String>>) -> Result<(), String> {
        self.hit("chats.delete", e)
    }
    fn on_contacts_upsert(&self, e: &WebhookEvent<OneOrMany<Contact>>) -> Result<(), String> {
        self.hit("contacts.upsert", e)
    }
    fn on_contacts_update(&self, e: &WebhookEvent<OneOrMany<Contact>>) -> Result<(), String> {
        self.hit("contacts.update", e)
    }
    fn on_groups_upsert(&self, e: &WebhookEvent<OneOrMany<GroupMetadata>>) -> Result<(), String> {
        self.hit("groups.upsert", e)
    }
    fn on_groups_update(&self, e: &WebhookEvent<OneOrMany<GroupMetadata>>) -> Result<(), String> {
        self.hit("groups.update", e)
    }
    fn on_group_participants_update(
        &self,
        e: &WebhookEvent<OneOrMany<GroupParticipantsUpdate>>,
    ) -> Result<(), String> {
        self.hit("group-participants.update", e)
    }
    fn on_call(&self, e: &WebhookEvent<CallData>) -> Result<(), String> {
        self.hit("call", e)
    }
    fn on_poll_results(&self, e: &WebhookEvent<PollResults>) -> Result<(), String> {
        self.hit("poll.results", e)
    }
    fn on_unknown(&self, e: &WebhookEvent<Value>) -> Result<(), String> {
        self.hit("unknown", e)
    }
}

#[test]
fn every_catalogued_name_dispatches_to_exactly_its_method() {
    for kind in WasenderWebhookEventType::KNOWN {
        let body = format!(r#"{{"event":"{}","data":{{}}}}"#, kind.as_str());
        let event = client()
            .handle_webhook_event(body.as_bytes(), Some(SECRET))
            .unwrap();
        assert_eq!(&event.event_type(), kind);
        let recorder = Recorder::default();
        dispatch(&recorder, &event).unwrap();
        assert_eq!(recorder.methods_called(), [kind.as_str()]);
    }
    let event = parse_event(br#"{"event":"brand.new","data":{"x":1}}"#).unwrap();
    let recorder = Recorder::default();
    dispatch(&recorder, &event).unwrap();
    assert_eq!(recorder.methods_called(), ["unknown"]);
}

/// The documented payloads (`tests/fixtures/*.json`) and the shapes PROTOCOL.md
/// describes for events without a documented payload (`tests/fixtures/shapes/*.json`).
fn samples() -> Vec<(String, Vec<u8>)> {
    let shapes = fixtures_dir().join("shapes");
    let mut out = event_fixtures();
    for entry in std::fs::read_dir(&shapes).expect("tests/fixtures/shapes") {
        let path = entry.unwrap().path();
        let name = format!("shapes/{}", path.file_name().unwrap().to_string_lossy());
        out.push((name, std::fs::read(&path).unwrap()));
    }
    out
}

#[test]
fn every_catalogued_type_has_a_sample_that_decodes_and_dispatches() {
    let mut covered = Vec::new();
    for (name, body) in samples() {
        let event = parse_event(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let kind = event.event_type();
        assert!(kind.is_known(), "{name}: {kind} is not in the catalogue");
        let received: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            received.get("data").is_some(),
            "{name}: a sample carries data"
        );
        assert!(
            event.extra().get("data").is_none(),
            "{name}: data did not fit its type"
        );
        assert_eq!(serde_json::to_value(&event).unwrap(), received, "{name}");

        let recorder = Recorder::default();
        dispatch(&recorder, &event).unwrap();
        let hits = recorder.0.into_inner().unwrap();
        let expected = Hit {
            method_for: kind.as_str().to_owned(),
            session_id: event.session_id().map(str::to_owned),
            messages: event.messages().len(),
        };
        assert_eq!(
            hits,
            [expected],
            "{name}: the method called, or what the typed event and the enum say, differ"
        );
        covered.push(kind);
    }
    let missing: Vec<&str> = WasenderWebhookEventType::KNOWN
        .iter()
        .filter(|kind| !covered.contains(kind))
        .map(WasenderWebhookEventType::as_str)
        .collect();
    assert!(
        missing.is_empty(),
        "catalogued event types without a sample in tests/fixtures/ or tests/fixtures/shapes/: {missing:?}"
    );
}

#[test]
fn messages_received_accessors() {
    let event = handle("messages.received.json");
    assert_eq!(event.timestamp_secs(), Some(1_633_456_789));
    let [m] = event.messages() else {
        panic!("one message")
    };
    assert_eq!(m.id(), Some("3EB0X123456789"));
    assert_eq!(m.text(), Some("Hello, I have a question"));
    assert_eq!(m.sender_phone().as_deref(), Some("1234567890"));
    assert_eq!(m.chat_jid(), Some("1234567890@s.whatsapp.net"));
    assert!(!m.is_from_me());
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
    assert_eq!(media.file_length_bytes(), Some(12345));
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
    assert_eq!(event.timestamp_secs(), Some(1_747_775_431));
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
    assert_eq!(update.status_parsed(), Some(MessageStatus::Sent));
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
    assert_eq!(event.timestamp_secs(), Some(1_234_567_890));
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
        e.data.as_ref().unwrap().status_parsed(),
        Some(SessionStatus::Connected)
    );
    assert_eq!(event.session_id(), Some("YOUR_SESSION_API_KEY"));
    assert_eq!(event.timestamp_secs(), None);

    let event = handle("session.status.timestamp-envelope.json");
    assert_eq!(event.session_id(), Some("session-id-123"));
    assert_eq!(event.timestamp_secs(), Some(1_633_456_789));
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
    assert_eq!(call.date_secs(), Some(1_758_576_840));

    let WasenderWebhookEvent::ChatsUpsert(e) = handle("chats.upsert.json") else {
        panic!()
    };
    let [chat] = e.data.as_ref().unwrap().as_slice() else {
        panic!()
    };
    assert_eq!(chat.unread_count_parsed(), Some(2));
    assert_eq!(chat.conversation_timestamp_secs(), Some(1_633_456_789));
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
