//! Every row of the listener's response table, over real loopback HTTP.

use std::sync::Arc;
use std::time::Duration;

use crate::support::fixtures::event_fixtures;
use crate::support::http::exchange;
use crate::support::listener::{builder, start};
use crate::support::{event, signature, wait_for, Conn, Recorder, SECRET};

#[test]
fn verified_event_is_handled_and_answered_200_with_its_name() {
    let (listener, recorder) = start();
    let mut conn = Conn::open(listener.local_addr());
    let reply = conn.post_signed(&event("ID-1", "hello"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "success", "event": "messages.received"})
    );
    assert_eq!(recorder.count("ID-1"), 1);
    let stats = listener.shutdown();
    assert_eq!((stats.received, stats.handled), (1, 1));
}

#[test]
fn every_fixture_is_answered_200() {
    let (listener, _) = start();
    let mut conn = Conn::open(listener.local_addr());
    let mut count = 0;
    for (name, body) in event_fixtures() {
        let reply = conn.post_signed(&body);
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        count += 1;
    }
    assert!(count >= 10);
    assert_eq!(listener.shutdown().handled, count);
}

#[test]
fn unknown_event_is_handled_and_answered_200() {
    let (listener, recorder) = start();
    let body = br#"{"event":"brand.new-event","data":{"x":1}}"#;
    let reply = Conn::open(listener.local_addr()).post_signed(body);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["event"], "brand.new-event");
    assert_eq!(
        recorder.unknown_events(),
        vec!["brand.new-event".to_owned()]
    );
    listener.shutdown();
}

#[test]
fn missing_signature_is_401() {
    let (listener, recorder) = start();
    let reply = Conn::open(listener.local_addr()).post("/webhook", &event("A", "x"), None);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["status"], "error");
    assert_eq!(recorder.total(), 0);
    assert_eq!(listener.shutdown().rejected_signature, 1);
}

#[test]
fn wrong_signature_is_401_and_the_answer_reveals_no_secret() {
    let (listener, recorder) = start();
    let reply = Conn::open(listener.local_addr()).post(
        "/webhook",
        &event("A", "x"),
        Some("not-the-secret"),
    );
    assert_eq!(reply.status, 401);
    assert!(!reply.body.contains(SECRET));
    assert!(!reply.body.contains("not-the-secret"));
    assert_eq!(recorder.total(), 0);
    listener.shutdown();
}

#[test]
fn signature_header_name_is_case_insensitive() {
    let (listener, _) = start();
    let body = event("A", "x");
    let raw = format!(
        "POST /webhook HTTP/1.1\r\nHost: test\r\nx-webhook-signature: {}\r\ncontent-length: {}\r\n\r\n",
        signature(&body),
        body.len()
    );
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(&body);
    assert_eq!(exchange(listener.local_addr(), &bytes).status, 200);
    listener.shutdown();
}

#[test]
fn bodies_that_are_not_events_are_400() {
    let (listener, recorder) = start();
    let mut conn = Conn::open(listener.local_addr());
    let cases: [(&str, &[u8]); 5] = [
        ("empty", b""),
        ("not UTF-8", b"{\"event\":\"x\xff\"}"),
        ("not JSON", b"{not json"),
        ("not an object", b"[1,2,3]"),
        ("no event name", br#"{"data":{}}"#),
    ];
    for (what, body) in cases {
        let reply = conn.post_signed(body);
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert_eq!(reply.json()["status"], "error", "{what}");
    }
    assert_eq!(recorder.total(), 0);
    assert_eq!(listener.shutdown().rejected_body, 5);
}

#[test]
fn deeply_nested_json_is_400_without_stack_overflow() {
    let (listener, _) = start();
    let depth = 200_000;
    let mut body = br#"{"event":"x","data":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.push(b'}');
    let reply = Conn::open(listener.local_addr()).post_signed(&body);
    assert_eq!(reply.status, 400, "{}", reply.body);
    // And the listener is still serving.
    assert_eq!(
        Conn::open(listener.local_addr())
            .post_signed(&event("B", "x"))
            .status,
        200
    );
    listener.shutdown();
}

#[test]
fn other_paths_are_404() {
    let (listener, recorder) = start();
    let mut conn = Conn::open(listener.local_addr());
    let reply = conn.post("/other", &event("A", "x"), Some(SECRET));
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["status"], "error");
    let reply = exchange(listener.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(reply.status, 404);
    assert_eq!(recorder.total(), 0);
    assert_eq!(listener.shutdown().rejected_path, 2);
}

#[test]
fn other_methods_on_the_webhook_path_are_405_with_allow_post() {
    let (listener, _) = start();
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let raw = format!("{method} /webhook HTTP/1.1\r\nHost: x\r\n\r\n");
        let reply = exchange(listener.local_addr(), raw.as_bytes());
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
    }
    assert_eq!(listener.shutdown().rejected_method, 5);
}

#[test]
fn query_string_does_not_change_the_route() {
    let (listener, _) = start();
    let reply = Conn::open(listener.local_addr()).post(
        "/webhook?source=wasender",
        &event("Q", "x"),
        Some(SECRET),
    );
    assert_eq!(reply.status, 200);
    listener.shutdown();
}

#[test]
fn healthz_is_200_for_get_and_head() {
    let (listener, _) = start();
    let reply = exchange(
        listener.local_addr(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
    let mut conn = Conn::open(listener.local_addr());
    conn.send(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let head_reply = conn.read_head_reply();
    assert_eq!(head_reply.status, 200);
    // The connection is still usable: no stray body bytes were sent.
    conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(conn.read_reply().status, 200);
    assert_eq!(listener.shutdown().health_checks, 3);
}

#[test]
fn content_length_over_the_limit_is_413_before_reading_the_body() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(recorder).max_body_bytes(1024).spawn().unwrap();
    // The header alone decides: no body is sent at all.
    let reply = exchange(
        listener.local_addr(),
        b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n",
    );
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(listener.shutdown().rejected_too_large, 1);
}

#[test]
fn absurd_content_length_is_413_and_the_process_survives() {
    // tiny_http 0.12 aborts the process on this request (it allocates the declared length).
    let (listener, _) = start();
    for length in [
        "100000000000000",
        "18446744073709551615",
        "99999999999999999999999999",
    ] {
        let raw =
            format!("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nabc");
        assert_eq!(
            exchange(listener.local_addr(), raw.as_bytes()).status,
            413,
            "{length}"
        );
    }
    assert_eq!(
        Conn::open(listener.local_addr())
            .post_signed(&event("after", "x"))
            .status,
        200
    );
    listener.shutdown();
}

#[test]
fn chunked_body_over_the_limit_is_413_while_reading() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(recorder).max_body_bytes(1000).spawn().unwrap();
    let mut conn = Conn::open(listener.local_addr());
    conn.send(b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = format!("{:x}\r\n{}\r\n", 600, "a".repeat(600));
    conn.send(chunk.as_bytes());
    conn.send(chunk.as_bytes());
    let reply = conn.read_reply();
    assert_eq!(reply.status, 413);
    assert_eq!(listener.shutdown().rejected_too_large, 1);
}

#[test]
fn chunked_body_within_the_limit_is_handled() {
    let (listener, recorder) = start();
    let body = event("CHUNKED", "x");
    let (a, b) = body.split_at(body.len() / 2);
    let raw = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Signature: {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        signature(&body),
        a.len(),
        String::from_utf8_lossy(a),
        b.len(),
        String::from_utf8_lossy(b)
    );
    assert_eq!(exchange(listener.local_addr(), raw.as_bytes()).status, 200);
    assert_eq!(recorder.count("CHUNKED"), 1);
    listener.shutdown();
}

#[test]
fn expect_100_continue_is_honoured() {
    let (listener, recorder) = start();
    let body = event("CONT", "x");
    let mut conn = Conn::open(listener.local_addr());
    conn.send(
        format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nX-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n",
            signature(&body),
            body.len()
        )
        .as_bytes(),
    );
    let interim = conn.read_reply();
    assert_eq!(interim.status, 100);
    conn.send(&body);
    assert_eq!(conn.read_reply().status, 200);
    assert_eq!(recorder.count("CONT"), 1);
    listener.shutdown();
}

#[test]
fn handler_error_is_500_without_its_text() {
    let (listener, _) = start();
    let reply = Conn::open(listener.local_addr()).post_signed(&event("E", "fail"));
    assert_eq!(reply.status, 500);
    assert!(!reply.body.contains("always fails"));
    assert_eq!(listener.shutdown().handler_errors, 1);
}

#[test]
fn handler_panic_is_500() {
    let (listener, _) = start();
    let reply = Conn::open(listener.local_addr()).post_signed(&event("P", "panic"));
    assert_eq!(reply.status, 500);
    assert!(!reply.body.contains("on purpose"));
    assert_eq!(listener.shutdown().handler_panics, 1);
}

#[test]
fn saturated_listener_answers_503_with_retry_after() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .workers(1)
        .queue_capacity(1)
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    // One event occupies the only worker...
    let first =
        std::thread::spawn(move || Conn::open(addr).post_signed(&event("B1", "block")).status);
    recorder.wait_blocked(1);
    // ...then of two more, one fills the queue and the other is turned away.
    let second = std::thread::spawn(move || Conn::open(addr).post_signed(&event("B2", "x")));
    let third = std::thread::spawn(move || Conn::open(addr).post_signed(&event("B3", "x")));
    let mut waiting = vec![second, third];
    wait_for(
        "one request answered while the worker is busy",
        Duration::from_secs(5),
        || waiting.iter().any(|t| t.is_finished()),
    );
    let first_done = waiting
        .iter()
        .position(|t| t.is_finished())
        .expect("a finished request");
    let turned_away = waiting.remove(first_done).join().unwrap();
    assert_eq!(turned_away.status, 503);
    assert_eq!(turned_away.header("retry-after"), Some("1"));
    recorder.release(1);
    assert_eq!(first.join().unwrap(), 200);
    assert_eq!(waiting.pop().unwrap().join().unwrap().status, 200);
    let stats = listener.shutdown();
    assert_eq!((stats.handled, stats.rejected_saturated), (2, 1));
}

#[test]
fn at_the_connection_cap_the_longest_idle_connection_makes_room() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .max_connections(2)
        .max_connections_per_peer(2)
        .idle_timeout(Duration::from_secs(30))
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let mut a = Conn::open(addr);
    let mut b = Conn::open(addr);
    assert_eq!(a.post_signed(&event("C1", "x")).status, 200);
    // Input, not a wait: `a` idle clearly longer than `b`. (Without it, a
    // thread preempted between writing `a`'s answer and filing `a` as idle
    // could file it after `b`: the ages would differ by microseconds.)
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(b.post_signed(&event("C2", "x")).status, 200);
    // Both idle now, `a` the longest: a newcomer is served, and `a` goes.
    let mut c = Conn::open(addr);
    assert_eq!(c.post_signed(&event("C3", "x")).status, 200);
    assert!(
        a.is_closed_within(Duration::from_secs(2)),
        "the oldest idle one was shed"
    );
    assert_eq!(
        b.post_signed(&event("C4", "x")).status,
        200,
        "the other one stays"
    );
    assert_eq!(recorder.total(), 4);
    listener.shutdown();
}

#[test]
fn when_every_connection_is_being_processed_a_newcomer_gets_503() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .max_connections(1)
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let busy =
        std::thread::spawn(move || Conn::open(addr).post_signed(&event("B", "block")).status);
    recorder.wait_blocked(1);
    let mut c = Conn::open(addr);
    let reply = c.read_reply();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    recorder.release(1);
    assert_eq!(busy.join().unwrap(), 200);
    let stats = listener.shutdown();
    assert_eq!((stats.handled, stats.rejected_saturated), (1, 1));
}

#[test]
fn malformed_requests_are_400_431_or_505() {
    let (listener, _) = start();
    let addr = listener.local_addr();
    assert_eq!(exchange(addr, b"NONSENSE\r\n\r\n").status, 400);
    assert_eq!(exchange(addr, b"GET /healthz HTTP/2.0\r\n\r\n").status, 505);
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(exchange(addr, big.as_bytes()).status, 431);
    let smuggle = b"POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(exchange(addr, smuggle).status, 400);
    assert_eq!(listener.shutdown().rejected_malformed, 4);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let (listener, recorder) = start();
    let mut conn = Conn::open(listener.local_addr());
    for i in 0..20 {
        let reply = conn.post_signed(&event(&format!("K{i}"), "x"));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), Some("keep-alive"));
    }
    assert_eq!(recorder.total(), 20);
    listener.shutdown();
}

#[test]
fn connection_close_is_honoured() {
    let (listener, _) = start();
    let body = event("CLOSE", "x");
    let raw = format!(
        "POST /webhook HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n{}",
        signature(&body),
        body.len(),
        String::from_utf8_lossy(&body)
    );
    let mut conn = Conn::open(listener.local_addr());
    conn.send(raw.as_bytes());
    let reply = conn.read_reply();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(conn.is_closed_within(Duration::from_secs(2)));
    listener.shutdown();
}

/// Reads whatever the server sends until it closes the connection (or 2 s pass).
fn read_to_close(conn: &mut Conn) -> bool {
    conn.is_closed_within(Duration::from_secs(2))
}

#[test]
fn rfc_9112_host_and_transfer_encoding_rules_over_a_socket() {
    let (listener, _) = start();
    let addr = listener.local_addr();
    for raw in [
        &b"GET /healthz HTTP/1.1\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST /webhook HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let mut conn = Conn::open(addr);
        conn.send(raw);
        let reply = conn.read_reply();
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(raw));
        assert_eq!(reply.header("connection"), Some("close"));
        assert!(read_to_close(&mut conn), "closed after the 400");
    }
    // HTTP/1.0 needs no Host.
    assert_eq!(exchange(addr, b"GET /healthz HTTP/1.0\r\n\r\n").status, 200);
    assert_eq!(listener.shutdown().rejected_malformed, 3);
}

#[test]
fn an_absolute_form_target_is_served() {
    let (listener, recorder) = start();
    let body = event("ABS", "x");
    let mut raw = format!(
        "POST http://receiver.example/webhook HTTP/1.1\r\nHost: receiver.example\r\nX-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        signature(&body),
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    assert_eq!(exchange(listener.local_addr(), &raw).status, 200);
    assert_eq!(recorder.count("ABS"), 1);
    listener.shutdown();
}

#[test]
fn expect_continue_gets_100_only_for_a_signed_webhook() {
    let (listener, recorder) = start();
    let addr = listener.local_addr();
    let body = event("CONT", "x");
    let head = |signature: Option<&str>| {
        let mut head = format!(
            "POST /webhook HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(signature) = signature {
            head.push_str(&format!("X-Webhook-Signature: {signature}\r\n"));
        }
        head.push_str("\r\n");
        head
    };
    let mut conn = Conn::open(addr);
    conn.send(head(Some(&signature(&body))).as_bytes());
    assert_eq!(conn.read_head_reply().status, 100, "told to go on");
    conn.send(&body);
    assert_eq!(conn.read_reply().status, 200);
    assert_eq!(recorder.count("CONT"), 1);
    // No signature: the final answer at once, and the body is never wanted.
    let mut conn = Conn::open(addr);
    conn.send(head(None).as_bytes());
    let reply = conn.read_reply();
    assert_eq!(reply.status, 401);
    assert!(read_to_close(&mut conn));
    listener.shutdown();
}

#[test]
fn chunk_extensions_are_bounded_per_request() {
    let (listener, recorder) = start();
    let body = event("EXT", "x");
    let mut raw = format!(
        "POST /webhook HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nX-Webhook-Signature: {}\r\n\r\n",
        signature(&body)
    )
    .into_bytes();
    // One byte per chunk, each with a 900-byte extension: 5 chunks pass 4 KiB.
    for byte in &body[..5] {
        raw.extend_from_slice(format!("1;x={}\r\n", "e".repeat(900)).as_bytes());
        raw.push(*byte);
        raw.extend_from_slice(b"\r\n");
    }
    let reply = exchange(listener.local_addr(), &raw);
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("chunk extensions"), "{}", reply.body);
    assert_eq!(recorder.total(), 0);
    listener.shutdown();
}
