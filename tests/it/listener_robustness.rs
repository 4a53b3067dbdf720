//! Slow and stalled clients, handler panics: none of them hold up anyone else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasenderapi::listener::WebhookListenerBuilder;

use crate::support::listener::{builder, start};
use crate::support::{event, wait_for, Conn, Recorder};

/// Timeouts long enough that "served before the stalled client timed out" is
/// unambiguous even on a loaded machine.
fn slow_timeouts(builder: WebhookListenerBuilder<Recorder>) -> WebhookListenerBuilder<Recorder> {
    builder
        .idle_timeout(Duration::from_millis(1000))
        .request_timeout(Duration::from_millis(1500))
}

#[test]
fn stalled_headers_do_not_block_other_requests_and_time_out() {
    let recorder = Arc::new(Recorder::default());
    let listener = slow_timeouts(builder(recorder).workers(1)).spawn().unwrap();
    let addr = listener.local_addr();
    let mut stalled = Conn::open(addr);
    stalled.send(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Le");
    let started = Instant::now();
    assert_eq!(Conn::open(addr).post_signed(&event("OK", "x")).status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "served while another client stalls"
    );
    let reply = stalled.try_read_reply();
    if let Some(reply) = reply {
        assert_eq!(reply.status, 408);
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(listener.shutdown().timed_out, 1);
}

#[test]
fn body_that_never_finishes_frees_the_connection_and_never_holds_a_worker() {
    let recorder = Arc::new(Recorder::default());
    // One worker: if the stalled body held it, the second request could not be served.
    let listener = slow_timeouts(builder(recorder).workers(1)).spawn().unwrap();
    let addr = listener.local_addr();
    let mut liar = Conn::open(addr);
    // Content-Length promises 5000 bytes; 10 arrive.
    liar.send(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Signature: s\r\nContent-Length: 5000\r\n\r\n0123456789");
    let started = Instant::now();
    assert_eq!(Conn::open(addr).post_signed(&event("OK", "x")).status, 200);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(liar.read_reply().status, 408);
    assert!(started.elapsed() < Duration::from_secs(3));
    let stats = listener.shutdown();
    assert_eq!((stats.timed_out, stats.handled), (1, 1));
}

#[test]
fn trickling_client_is_cut_off_at_the_request_deadline() {
    let (listener, _) = start(); // read timeout 200 ms, request deadline 400 ms
    let mut conn = Conn::open(listener.local_addr());
    let started = Instant::now();
    conn.send(b"POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n");
    // One byte every 50 ms (the client is slow on purpose) never trips the
    // read timeout, only the deadline.
    let mut writer = conn.stream().try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(50));
            if std::io::Write::write_all(&mut writer, b"x").is_err() {
                return;
            }
        }
    });
    let reply = conn.read_reply();
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 408);
    assert!(
        elapsed >= Duration::from_millis(350),
        "cut off early, after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "cut off late, after {elapsed:?}"
    );
    trickler.join().unwrap();
    assert_eq!(listener.shutdown().timed_out, 1);
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_read_timeout() {
    let (listener, _) = start();
    let mut conn = Conn::open(listener.local_addr());
    assert_eq!(conn.post_signed(&event("I", "x")).status, 200);
    let started = Instant::now();
    assert!(conn.is_closed_within(Duration::from_secs(2)));
    assert!(started.elapsed() >= Duration::from_millis(150));
    let stats = listener.shutdown();
    // Idling between requests is not a timed-out request.
    assert_eq!((stats.timed_out, stats.aborted), (0, 0));
}

#[test]
fn handler_panic_is_isolated_and_the_worker_keeps_serving() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder)).workers(1).spawn().unwrap();
    let mut conn = Conn::open(listener.local_addr());
    for round in 0..3 {
        assert_eq!(
            conn.post_signed(&event(&format!("P{round}"), "panic"))
                .status,
            500
        );
        assert_eq!(
            conn.post_signed(&event(&format!("OK{round}"), "x")).status,
            200
        );
    }
    assert_eq!(recorder.total(), 3);
    let stats = listener.shutdown();
    assert_eq!((stats.handler_panics, stats.handled), (3, 3));
}

#[test]
fn client_that_vanishes_mid_body_is_counted_as_aborted() {
    let (listener, _) = start();
    let mut conn = Conn::open(listener.local_addr());
    conn.send(b"POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nhalf");
    drop(conn);
    wait_for(
        "the vanished client counted",
        Duration::from_secs(2),
        || listener.stats().aborted > 0,
    );
    assert_eq!(listener.shutdown().aborted, 1);
}
