//! The whole space of shapes PROTOCOL.md describes, beyond the fixtures:
//! nothing real is refused, nothing is lost, accessors see through the quirks.

use serde_json::{json, Value};
use wasenderapi::event::*;
use wasenderapi::{WasenderWebhookEvent, WasenderWebhookEventType};

fn parse(value: &Value) -> WasenderWebhookEvent {
    let bytes = serde_json::to_vec(value).unwrap();
    let event = parse_event(&bytes).unwrap_or_else(|e| panic!("{value}: {e}"));
    assert_eq!(&serde_json::to_value(&event).unwrap(), value, "lossless");
    event
}

fn one_message(event: &WasenderWebhookEvent) -> &WebhookMessage {
    match event.messages() {
        [m] => m,
        other => panic!("expected one message, got {}", other.len()),
    }
}

#[test]
fn messages_as_array_object_or_flat_all_yield_messages() {
    let msg = json!({"key": {"id": "A1", "remoteJid": "1@s.whatsapp.net"}, "messageBody": "hi"});
    let array = parse(
        &json!({"event": "messages.upsert", "data": {"messages": [msg.clone(), msg.clone()]}}),
    );
    assert_eq!(array.messages().len(), 2);
    let object = parse(&json!({"event": "messages.upsert", "data": {"messages": msg.clone()}}));
    assert_eq!(one_message(&object).id(), Some("A1"));
    let flat = parse(&json!({"event": "messages.upsert", "data": msg}));
    assert_eq!(one_message(&flat).text(), Some("hi"));
    let absent = parse(&json!({"event": "messages.upsert", "data": {}}));
    assert!(absent.messages().is_empty());
    let no_data = parse(&json!({"event": "messages.upsert"}));
    assert!(no_data.messages().is_empty());
}

#[test]
fn every_message_event_and_alias_carries_messages() {
    for name in [
        "messages.upsert",
        "messages.received",
        "messages.recieved",
        "message.received",
        "messages-personal.received",
        "message.personal.received",
        "messages-group.received",
        "message.group.received",
        "messages-newsletter.received",
        "message.newsletter.received",
        "message.sent",
    ] {
        let event = parse(
            &json!({"event": name, "data": {"key": {"id": "X"}, "message": {"conversation": "t"}}}),
        );
        assert!(event.event_type().is_known(), "{name}");
        assert_eq!(event.event_name(), name, "original spelling kept");
        assert_eq!(one_message(&event).text(), Some("t"), "{name}");
    }
}

#[test]
fn aliases_map_to_canonical_variants() {
    let cases = [
        ("call.received", WasenderWebhookEventType::Call),
        (
            "messages.recieved",
            WasenderWebhookEventType::MessagesReceived,
        ),
        (
            "message.group.received",
            WasenderWebhookEventType::MessagesGroupReceived,
        ),
    ];
    for (alias, kind) in cases {
        assert_eq!(WasenderWebhookEventType::from(alias), kind);
        let event = parse(&json!({"event": alias, "data": {}}));
        assert_eq!(event.event_type(), kind);
        assert_eq!(event.event_type().as_str(), kind.as_str());
        assert_eq!(event.event_name(), alias);
    }
    assert_eq!(
        "call"
            .parse::<WasenderWebhookEventType>()
            .unwrap()
            .to_string(),
        "call"
    );
}

#[test]
fn unknown_event_keeps_name_and_data() {
    let body = json!({"event": "labels.association", "timestamp": 5, "data": {"label": {"id": 7}}, "new": [1]});
    let event = parse(&body);
    assert_eq!(
        event.event_type(),
        WasenderWebhookEventType::Unknown("labels.association".into())
    );
    assert_eq!(event.event_type().as_str(), "labels.association");
    let WasenderWebhookEvent::Unknown(e) = &event else {
        panic!()
    };
    assert_eq!(e.data, Some(json!({"label": {"id": 7}})));
}

#[test]
fn data_before_event_is_still_typed() {
    let body = br#"{"data":{"messages":{"key":{"id":"Z"},"messageBody":"late"}},"event":"messages.received"}"#;
    let event = parse_event(body).unwrap();
    assert_eq!(
        event.event_type(),
        WasenderWebhookEventType::MessagesReceived
    );
    assert_eq!(one_message(&event).text(), Some("late"));
}

#[test]
fn timestamps_as_seconds_milliseconds_strings_or_missing() {
    for (raw, secs) in [
        (json!(1633456789), Some(1633456789)),
        (json!(1747775431467_u64), Some(1747775431)),
        (json!("1633456789"), Some(1633456789)),
        (json!("1747775431467"), Some(1747775431)),
        (json!(1633456789.5), Some(1633456789)),
        (json!("2025-09-22T21:34:00Z"), Some(1758576840)),
        (json!("2025-09-22T21:34:00.250Z"), Some(1758576840)),
        (json!("2025-09-22T23:34:00+02:00"), Some(1758576840)),
        (json!("2025-09-22T21:34:00"), Some(1758576840)),
        (json!("2025-02-31T21:34:00Z"), None),
        (json!("2025-09-22T23:34:00+02:00junk"), None),
        (json!("not a time"), None),
        (json!(null), None),
    ] {
        let event = parse(
            &json!({"event": "session.status", "timestamp": raw, "data": {"status": "connected"}}),
        );
        assert_eq!(event.timestamp_secs(), secs, "{raw}");
    }
    let event = parse(&json!({"event": "session.status", "data": {}}));
    assert_eq!(event.timestamp_secs(), None);
}

#[test]
fn number_as_string_stays_a_string_and_the_reverse() {
    let body = json!({"event": "messages.upsert", "data": {"messages": [{
        "key": {"id": 12345, "fromMe": "false", "remoteJid": "1@s.whatsapp.net"},
        "messageTimestamp": "1633456789",
        "message": {"imageMessage": {"fileLength": 12345, "seconds": "3"}}
    }]}});
    let event = parse(&body);
    let m = one_message(&event);
    assert_eq!(m.timestamp_secs(), Some(1633456789));
    assert!(!m.is_from_me());
    assert_eq!(m.media().unwrap().file_length_bytes(), Some(12345));
    // An id sent as a number is kept (as a number) in `extra`.
    assert_eq!(m.key.as_ref().unwrap().extra.get("id"), Some(&json!(12345)));
}

#[test]
fn nulls_and_missing_fields_never_fail() {
    let body = json!({"event": "messages.received", "timestamp": null, "sessionId": null, "data": {"messages": {
        "key": null, "message": null, "messageBody": null, "pushName": null
    }}});
    let event = parse(&body);
    assert!(event.session_id().is_none());
    let m = one_message(&event);
    assert_eq!(m.id(), None);
    assert_eq!(m.text(), None);
    assert_eq!(m.sender_phone(), None);
}

#[test]
fn unexpected_shapes_are_kept_verbatim() {
    for data in [json!("a string"), json!(42), json!([1, 2]), json!(true)] {
        let event = parse(&json!({"event": "session.status", "data": data}));
        let WasenderWebhookEvent::SessionStatus(e) = &event else {
            panic!()
        };
        assert!(e.data.is_none());
        assert_eq!(e.raw_data(), Some(&data));
    }
    // One mis-shaped element keeps the whole array verbatim.
    let event = parse(&json!({"event": "chats.upsert", "data": [{"id": "a"}, 7, {"id": "b"}]}));
    let WasenderWebhookEvent::ChatsUpsert(e) = &event else {
        panic!()
    };
    assert!(e.data.is_none());
}

#[test]
fn objects_where_arrays_were_documented() {
    let event = parse(
        &json!({"event": "chats.upsert", "data": {"id": "1@s.whatsapp.net", "unreadCount": "3"}}),
    );
    let WasenderWebhookEvent::ChatsUpsert(e) = &event else {
        panic!()
    };
    let chats = e.data.as_ref().unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats.as_slice()[0].unread_count_parsed(), Some(3));

    let event = parse(&json!({"event": "messages.update", "data": [
        {"key": {"id": "a"}, "update": {"status": "delivered"}},
        {"key": {"id": "b"}, "update": {"status": 4}},
        {"key": {"id": "c"}, "update": {"status": "PLAYED"}},
        {"key": {"id": "d"}, "update": {"status": 9}},
        {"key": {"id": "e"}, "update": {"status": "DELIVERY_ACK"}}
    ]}));
    let WasenderWebhookEvent::MessagesUpdate(e) = &event else {
        panic!()
    };
    let statuses: Vec<_> = e
        .data
        .as_ref()
        .unwrap()
        .iter()
        .map(|u| u.status_parsed().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            MessageStatus::Delivered,
            MessageStatus::Read,
            MessageStatus::Played,
            MessageStatus::Unknown("9".into()),
            MessageStatus::Delivered
        ]
    );
    for (code, status) in (0..=5).zip([
        MessageStatus::Error,
        MessageStatus::Pending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Played,
    ]) {
        assert_eq!(
            MessageStatus::from_raw(&NumberOrString::Number(code.into())),
            status
        );
        assert_eq!(status.code(), Some(code as u8));
    }
}

#[test]
fn receipts_in_sdk_array_shape() {
    let event = parse(&json!({"event": "message-receipt.update", "data": [
        {"key": {"id": "m1", "remoteJid": "g@g.us"}, "receipt": {"userJid": "u@s.whatsapp.net", "status": "read", "t": 1}}
    ]}));
    let WasenderWebhookEvent::MessageReceiptUpdate(e) = &event else {
        panic!()
    };
    let r = &e.data.as_ref().unwrap().as_slice()[0];
    assert_eq!(r.key().unwrap().id.as_deref(), Some("m1"));
    assert_eq!(
        r.receipt().unwrap().user_jid.as_deref(),
        Some("u@s.whatsapp.net")
    );
}

#[test]
fn participants_as_strings_or_objects() {
    let event = parse(&json!({"event": "group-participants.update", "data": {
        "jid": "123@g.us", "action": "PROMOTE",
        "participants": ["1@s.whatsapp.net", {"jid": "2@s.whatsapp.net", "isAdmin": true, "isSuperAdmin": false}, {"id": "3@lid", "admin": "admin"}]
    }}));
    let WasenderWebhookEvent::GroupParticipantsUpdate(e) = &event else {
        panic!()
    };
    let update = &e.data.as_ref().unwrap().as_slice()[0];
    assert_eq!(update.group_jid(), Some("123@g.us"));
    assert_eq!(update.action_parsed(), Some(ParticipantAction::Promote));
    let jids: Vec<_> = update
        .participants()
        .iter()
        .map(|p| p.jid().unwrap())
        .collect();
    assert_eq!(jids, ["1@s.whatsapp.net", "2@s.whatsapp.net", "3@lid"]);
    let admins: Vec<_> = update
        .participants()
        .iter()
        .map(Participant::is_admin)
        .collect();
    assert_eq!(admins, [None, Some(true), Some(true)]);

    let event = parse(
        &json!({"event": "groups.upsert", "data": [{"id": "9@g.us", "subject": "S", "participants": [{"id": "1@s.whatsapp.net", "admin": null}], "announce": false}]}),
    );
    let WasenderWebhookEvent::GroupsUpsert(e) = &event else {
        panic!()
    };
    let group = &e.data.as_ref().unwrap().as_slice()[0];
    assert_eq!(group.jid(), Some("9@g.us"));
    assert_eq!(group.participants.as_ref().unwrap().len(), 1);
}

#[test]
fn group_message_sender_is_the_participant() {
    let event = parse(
        &json!({"event": "messages-group.received", "data": {"messages": {
            "key": {"id": "G1", "remoteJid": "120363@g.us", "participant": "777@lid",
                    "participantPn": "4915551234@s.whatsapp.net", "cleanedParticipantPn": "4915551234"},
            "message": {"extendedTextMessage": {"text": "hello group"}}
        }}}),
    );
    let m = one_message(&event);
    assert!(m.is_group());
    assert_eq!(m.sender_phone().as_deref(), Some("4915551234"));
    assert_eq!(m.sender_jid(), Some("777@lid"));
    assert_eq!(m.text(), Some("hello group"));

    // Without the cleaned field, the digits of participantPn.
    let event = parse(&json!({"event": "messages-group.received", "data": {
        "key": {"remoteJid": "1@g.us", "participant": "4915551234:12@s.whatsapp.net"}}}));
    assert_eq!(
        one_message(&event).sender_phone().as_deref(),
        Some("4915551234")
    );
}

#[test]
fn lid_chat_without_phone_fields_has_no_phone() {
    let event = parse(
        &json!({"event": "messages.received", "data": {"messages": {"key": {"remoteJid": "555@lid"}}}}),
    );
    assert_eq!(one_message(&event).sender_phone(), None);
    let event = parse(
        &json!({"event": "messages.received", "data": {"messages": {"key": {"remoteJid": "555@lid", "senderPn": "31612345678@s.whatsapp.net"}}}}),
    );
    assert_eq!(
        one_message(&event).sender_phone().as_deref(),
        Some("31612345678")
    );
}

#[test]
fn text_unwraps_ephemeral_view_once_edited_and_captions() {
    let cases = [
        json!({"ephemeralMessage": {"message": {"extendedTextMessage": {"text": "eph"}}}}),
        json!({"viewOnceMessageV2": {"message": {"imageMessage": {"caption": "eph"}}}}),
        json!({"viewOnceMessage": {"message": {"ephemeralMessage": {"message": {"conversation": "eph"}}}}}),
        json!({"documentWithCaptionMessage": {"message": {"documentMessage": {"caption": "eph", "fileName": "a.pdf"}}}}),
        json!({"editedMessage": {"message": {"protocolMessage": {"type": 14, "editedMessage": {"conversation": "eph"}}}}}),
        json!({"videoMessage": {"caption": "eph"}}),
    ];
    for content in cases {
        let event = parse(
            &json!({"event": "messages.upsert", "data": {"key": {"id": "1"}, "message": content}}),
        );
        assert_eq!(one_message(&event).text(), Some("eph"), "{content}");
    }
    let event = parse(
        &json!({"event": "messages.upsert", "data": {"key": {"id": "1"}, "message": {
        "viewOnceMessageV2Extension": {"message": {"audioMessage": {"ptt": true, "mimetype": "audio/ogg", "fileLength": "99"}}}}}}),
    );
    let media = one_message(&event).media().unwrap();
    assert_eq!(media.kind, MediaKind::Audio);
    assert_eq!(media.file_length_bytes(), Some(99));
    assert_eq!(media.message.ptt, Some(true));
}

#[test]
fn message_body_wins_but_empty_body_falls_back() {
    let event = parse(
        &json!({"event": "messages.upsert", "data": {"messageBody": "", "message": {"conversation": "c"}}}),
    );
    assert_eq!(one_message(&event).text(), Some("c"));
}

#[test]
fn unknown_fields_are_kept_at_every_level() {
    let body = json!({
        "event": "messages.upsert", "webhookId": "w1", "timestamp": 1,
        "data": {"messages": [{"key": {"id": "1", "newKeyField": [1]}, "brandNew": {"a": null},
                 "message": {"pollCreationMessageV3": {"name": "Q", "options": [{"optionName": "A"}]},
                             "conversation": "x"}}], "cursor": "c"}
    });
    parse(&body);
}

#[test]
fn numbers_beyond_i64_survive() {
    let body = json!({"event": "poll.results", "timestamp": u64::MAX, "data": {"big": u64::MAX, "neg": i64::MIN, "f": 1.5e300}});
    let event = parse(&body);
    assert_eq!(
        event.timestamp_raw().and_then(NumberOrString::as_u64),
        Some(u64::MAX)
    );
}

#[test]
fn misc_events_decode() {
    let event =
        parse(&json!({"event": "messages.delete", "data": {"keys": [{"id": "a"}, {"id": "b"}]}}));
    let WasenderWebhookEvent::MessagesDelete(e) = &event else {
        panic!()
    };
    assert_eq!(e.data.as_ref().unwrap().keys.as_ref().unwrap().len(), 2);

    let event = parse(&json!({"event": "chats.delete", "data": ["1@s.whatsapp.net", "2@g.us"]}));
    let WasenderWebhookEvent::ChatsDelete(e) = &event else {
        panic!()
    };
    assert_eq!(
        e.data.as_ref().unwrap().as_slice(),
        ["1@s.whatsapp.net", "2@g.us"]
    );

    let event = parse(
        &json!({"event": "poll.results", "data": {"key": {"id": "p"}, "pollResult": [{"name": "Yes", "voters": ["1@s.whatsapp.net"]}, {"name": "No", "voters": []}]}}),
    );
    let WasenderWebhookEvent::PollResults(e) = &event else {
        panic!()
    };
    let options = e.data.as_ref().unwrap().options();
    assert_eq!(options.len(), 2);
    assert_eq!(options[0].voters.as_ref().unwrap().len(), 1);

    for (raw, status) in [
        ("CONNECTED", SessionStatus::Connected),
        ("need_scan", SessionStatus::NeedScan),
        ("LOGGED_OUT", SessionStatus::LoggedOut),
        ("weird", SessionStatus::Unknown("weird".into())),
    ] {
        let event =
            parse(&json!({"event": "session.status", "data": {"status": raw, "reason": "x"}}));
        let WasenderWebhookEvent::SessionStatus(e) = &event else {
            panic!()
        };
        assert_eq!(e.data.as_ref().unwrap().status_parsed(), Some(status));
    }
}

#[test]
fn escaped_keys_and_duplicate_members_do_not_break_decoding() {
    let body = br#"{"event":"messages.upsert","data":{"messages":{"k\u0065y":{"id":"esc"},"messageBody":"a","messageBody":"b"}}}"#;
    let event = parse_event(body).unwrap();
    let m = one_message(&event);
    assert_eq!(m.id(), Some("esc"));
    assert_eq!(m.text(), Some("b"));
}

#[test]
fn typed_session_status_reads_the_session_id_inside_data() {
    let event = parse(
        &json!({"event": "session.status", "data": {"status": "connected", "session_id": "in-data"}}),
    );
    let WasenderWebhookEvent::SessionStatus(e) = &event else {
        panic!()
    };
    assert_eq!(
        e.session_id, None,
        "the field is the envelope's `sessionId` as received"
    );
    assert_eq!(e.session_id(), Some("in-data"));
    assert_eq!(event.session_id(), Some("in-data"));

    let event = parse(
        &json!({"event": "session.status", "sessionId": "envelope", "data": {"session_id": "in-data"}}),
    );
    let WasenderWebhookEvent::SessionStatus(e) = &event else {
        panic!()
    };
    assert_eq!(e.session_id(), Some("envelope"), "the envelope's id wins");
    assert_eq!(event.session_id(), Some("envelope"));
}

#[test]
fn typed_message_events_and_the_enum_list_the_same_messages() {
    let event = parse(
        &json!({"event": "message.sent", "data": {"key": {"id": "S1"}, "status": "SERVER_ACK"}}),
    );
    let WasenderWebhookEvent::MessageSent(e) = &event else {
        panic!()
    };
    assert_eq!(e.messages(), event.messages());
    assert_eq!(e.messages()[0].id(), Some("S1"));
    let event = parse(&json!({"event": "chats.upsert", "data": [{"id": "1@s.whatsapp.net"}]}));
    assert!(event.messages().is_empty());
}

#[test]
fn raw_fields_keep_the_wire_value_and_parsed_accessors_say_so() {
    let event = parse(
        &json!({"event": "message.sent", "timestamp": "1747775431467", "data": {
        "key": {"id": "S1", "fromMe": "true"}, "status": 3, "messageTimestamp": "1633456789"}}),
    );
    let WasenderWebhookEvent::MessageSent(e) = &event else {
        panic!()
    };
    assert_eq!(
        e.timestamp,
        Some(NumberOrString::String("1747775431467".into()))
    );
    assert_eq!(e.timestamp_secs(), Some(1_747_775_431));
    let m = &e.messages()[0];
    assert_eq!(m.status, Some(NumberOrString::Number(3.into())));
    assert_eq!(m.status_parsed(), Some(MessageStatus::Delivered));
    assert_eq!(m.timestamp_secs(), Some(1_633_456_789));
    assert!(m.is_from_me());

    let event = parse(&json!({"event": "session.status", "data": {"status": "NEED_SCAN"}}));
    let WasenderWebhookEvent::SessionStatus(e) = &event else {
        panic!()
    };
    let data = e.data().unwrap();
    assert_eq!(data.status.as_deref(), Some("NEED_SCAN"));
    assert_eq!(data.status_parsed(), Some(SessionStatus::NeedScan));
}

#[test]
fn message_update_has_an_id_like_its_siblings() {
    let event = parse(&json!({"event": "messages.update", "data": [
        {"key": {"id": "U1", "remoteJid": "1@s.whatsapp.net"}, "update": {"status": 4}},
        {"update": {"status": 4}}
    ]}));
    let WasenderWebhookEvent::MessagesUpdate(e) = &event else {
        panic!()
    };
    let ids: Vec<_> = e
        .data
        .as_ref()
        .unwrap()
        .iter()
        .map(MessageUpdate::id)
        .collect();
    assert_eq!(ids, [Some("U1"), None]);
}

#[cfg(feature = "jiff")]
#[test]
fn jiff_timestamps_on_events_and_messages() {
    let event = parse(
        &json!({"event": "messages.upsert", "timestamp": 1747775431467_u64, "data": {
        "key": {"id": "J1"}, "messageTimestamp": "2025-09-22T23:34:00.5+02:00"}}),
    );
    let at = event.timestamp_jiff().unwrap();
    assert_eq!(at.as_millisecond(), 1_747_775_431_467);
    let WasenderWebhookEvent::MessagesUpsert(e) = &event else {
        panic!()
    };
    assert_eq!(e.timestamp_jiff(), Some(at));
    let sent = e.messages()[0].timestamp_jiff().unwrap();
    assert_eq!(sent.as_millisecond(), 1_758_576_840_500);
    assert_eq!(sent.to_string(), "2025-09-22T21:34:00.5Z");
}

#[test]
fn a_mis_shaped_element_keeps_its_whole_array_at_every_level() {
    // Objects are decoded in place in their arrays; an element that does not
    // fit after some that did must still leave the array exactly as received.
    let cases = [
        json!({"event": "messages.upsert", "data": {"messages": [
            {"key": {"id": "a"}, "messageBody": "x"}, "oops", {"key": {"id": "b"}}]}}),
        json!({"event": "messages.upsert", "data": {"messages": [{"key": {"id": "a"}}, null]}}),
        json!({"event": "messages.update", "data": [{"key": {"id": "a"}}, [1]]}),
        json!({"event": "chats.delete", "data": ["1@s.whatsapp.net", 5]}),
        json!({"event": "poll.results", "data": {"key": {"id": "p"}, "pollResult": [
            {"name": "yes", "voters": ["1@s.whatsapp.net", 2]}, false]}}),
        json!({"event": "group-participants.update", "data": {"jid": "g@g.us", "participants": [
            "1@s.whatsapp.net", {"jid": "2@s.whatsapp.net", "isAdmin": true}, 3]}}),
    ];
    for case in cases {
        let event = parse(&case);
        assert!(event.messages().is_empty(), "{case}");
    }
    // Where the element fits, the typed value is there and nothing is in `extra`.
    let event = parse(
        &json!({"event": "poll.results", "data": {"key": {"id": "p"}, "pollResult": [
        {"name": "yes", "voters": ["1@s.whatsapp.net"]}, {"name": "no", "voters": []}]}}),
    );
    let WasenderWebhookEvent::PollResults(e) = &event else {
        panic!()
    };
    let data = e.data.as_ref().unwrap();
    assert_eq!(data.options().len(), 2);
    assert!(data.extra.is_empty());
    let event = parse(
        &json!({"event": "poll.results", "data": {"key": {"id": "p"}, "pollResult": [
        {"name": "yes"}, 7]}}),
    );
    let WasenderWebhookEvent::PollResults(e) = &event else {
        panic!()
    };
    let data = e.data.as_ref().unwrap();
    assert!(data.poll_result.is_none());
    assert_eq!(data.extra["pollResult"], json!([{"name": "yes"}, 7]));
}

#[test]
fn one_or_many_data_of_any_shape_is_typed_or_kept() {
    // A single object, an array, and every scalar: typed when it fits, else
    // kept verbatim in `extra["data"]`.
    let one = parse(&json!({"event": "messages.reaction", "data": {
        "key": {"id": "r"}, "reaction": {"text": "👍", "key": {"id": "t"}}}}));
    let WasenderWebhookEvent::MessagesReaction(e) = &one else {
        panic!()
    };
    let reactions = e.data.as_ref().unwrap();
    assert!(matches!(reactions, OneOrMany::One(_)));
    assert_eq!(reactions.as_slice()[0].emoji(), Some("👍"));
    assert_eq!(reactions.as_slice()[0].target_id(), Some("t"));
    for raw in [
        json!(null),
        json!(3),
        json!(-2.5),
        json!(true),
        json!("text"),
    ] {
        let event = parse(&json!({"event": "messages.reaction", "data": raw}));
        let WasenderWebhookEvent::MessagesReaction(e) = &event else {
            panic!()
        };
        assert!(e.data.is_none(), "{raw}");
        assert_eq!(e.raw_data(), Some(&raw));
    }
    // A string is one chat id for chats.delete.
    let event = parse(&json!({"event": "chats.delete", "data": "1@s.whatsapp.net"}));
    let WasenderWebhookEvent::ChatsDelete(e) = &event else {
        panic!()
    };
    assert_eq!(e.data, Some(OneOrMany::One("1@s.whatsapp.net".to_owned())));
}

#[test]
fn repeated_members_keep_the_last_value_wherever_it_lands() {
    // The last value of a repeated member wins, whether it fits (then `extra`
    // forgets an earlier one that did not) or not (then the field is empty).
    let body = br#"{"event":"messages.upsert","data":{"key":7,"key":{"id":"k"},"message":{"conversation":"c"},"message":[1]}}"#;
    let event = parse_event(body).unwrap();
    let WasenderWebhookEvent::MessagesUpsert(e) = &event else {
        panic!()
    };
    let flat = &e.data.as_ref().unwrap().flat;
    assert_eq!(flat.key.as_ref().and_then(|k| k.id.as_deref()), Some("k"));
    assert!(flat.message.is_none());
    assert_eq!(flat.extra.get("message"), Some(&json!([1])));
    assert!(!flat.extra.contains_key("key"));
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        json!({"event": "messages.upsert", "data": {"key": {"id": "k"}, "message": [1]}})
    );
    // Envelope and by-value members behave the same.
    let body = br#"{"event":"messages.update","timestamp":"x","timestamp":5,"sessionId":1,"data":{"key":{"id":"a"},"update":{"status":2,"status":null}}}"#;
    let event = parse_event(body).unwrap();
    let WasenderWebhookEvent::MessagesUpdate(e) = &event else {
        panic!()
    };
    assert_eq!(event.timestamp_secs(), Some(5));
    assert!(!e.extra.contains_key("timestamp"));
    assert!(e.session_id.is_none());
    assert_eq!(e.extra.get("sessionId"), Some(&json!(1)));
    let update = &e.data.as_ref().unwrap().as_slice()[0];
    let status = update.update.as_ref().unwrap();
    assert!(status.status.is_none());
    assert_eq!(status.extra.get("status"), Some(&Value::Null));
}
