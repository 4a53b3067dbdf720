//! Property tests: no input panics, decoding is lossless for every event object,
//! and only the right secret verifies.

use proptest::prelude::*;
use serde_json::{Map, Value};
use wasenderapi::event::*;
use wasenderapi::signature::{sign_webhook, SignatureScheme};
use wasenderapi::*;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e12f64..1.0e12).prop_map(Value::from),
        "[a-zA-Z0-9@._ -]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("1633456789"),
            Just("1747775431467"),
            Just("delivered"),
            Just("1@s.whatsapp.net"),
            Just("2@g.us"),
            Just("3@lid")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    let keys = prop_oneof![
        Just("key"),
        Just("id"),
        Just("fromMe"),
        Just("remoteJid"),
        Just("participant"),
        Just("cleanedSenderPn"),
        Just("senderPn"),
        Just("messages"),
        Just("message"),
        Just("messageBody"),
        Just("conversation"),
        Just("extendedTextMessage"),
        Just("text"),
        Just("imageMessage"),
        Just("caption"),
        Just("fileLength"),
        Just("ephemeralMessage"),
        Just("viewOnceMessageV2"),
        Just("editedMessage"),
        Just("protocolMessage"),
        Just("update"),
        Just("status"),
        Just("participants"),
        Just("jid"),
        Just("action"),
        Just("receipt"),
        Just("call"),
        Just("pollResult"),
        Just("voters"),
        Just("keys"),
        Just("reaction"),
        Just("qr"),
        Just("unknownField"),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn event_name() -> impl Strategy<Value = String> {
    let known: Vec<String> = WasenderWebhookEventType::KNOWN
        .iter()
        .map(|k| k.as_str().to_owned())
        .chain(["call.received", "messages.recieved", "mystery.event"].map(String::from))
        .collect();
    prop::sample::select(known)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), sig in proptest::option::of("[ -~]{0,40}")) {
        let client = WebhookVerifier::with_secret("s");
        let _ = client.handle_webhook_event(&body, sig.as_deref());
        let _ = client.handle_webhook_event(&body, Some("s"));
        let _ = parse_event(&body);
    }

    #[test]
    fn arbitrary_event_objects_decode_losslessly(
        name in event_name(),
        data in json_value(),
        timestamp in json_value(),
        extra in json_value(),
        data_first in any::<bool>(),
    ) {
        let mut object = Map::new();
        if data_first { object.insert("data".into(), data.clone()); }
        object.insert("event".into(), Value::String(name.clone()));
        object.insert("timestamp".into(), timestamp);
        object.insert("other".into(), extra);
        if !data_first { object.insert("data".into(), data); }
        let value = Value::Object(object);
        let body = serde_json::to_vec(&value).unwrap();
        let event = parse_event(&body).expect("every event object decodes");
        prop_assert_eq!(event.event_name(), name.as_str());
        // "Received JSON" is what serde_json reads from the body (floats within its precision).
        let received: Value = serde_json::from_slice(&body).unwrap();
        prop_assert_eq!(serde_json::to_value(&event).unwrap(), received);
        // Accessors never panic on any shape.
        let _ = (event.timestamp_secs(), event.session_id(), event.event_type().as_str());
        for m in event.messages() {
            let _ = (m.id(), m.text(), m.sender_phone(), m.chat_jid(), m.is_from_me(), m.is_group(), m.media(), m.timestamp_secs(), m.status_parsed());
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        let _ = parse_event(&body);
    }

    #[test]
    fn only_the_right_secret_verifies(secret in "[!-~][ -~]{0,38}[!-~]", other in "[ -~]{0,40}", body in prop::collection::vec(any::<u8>(), 0..64)) {
        let client = WebhookVerifier::with_secret(&secret);
        let event = br#"{"event":"x"}"#;
        prop_assert!(client.handle_webhook_event(event, Some(&secret)).is_ok());
        let result = client.handle_webhook_event(event, Some(&other));
        prop_assert_eq!(result.is_ok(), other.trim() == secret.trim());

        let hmac = WebhookVerifier::with_secret(&secret).with_scheme(SignatureScheme::HmacSha256);
        let good = sign_webhook(SignatureScheme::HmacSha256, &secret, &body);
        prop_assert!(hmac.verify(&body, Some(&good)).is_ok());
        if other != secret {
            let bad = sign_webhook(SignatureScheme::HmacSha256, &other, &body);
            prop_assert!(hmac.verify(&body, Some(&bad)).is_err());
        }
    }
}
