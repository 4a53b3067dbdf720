//! Shutdown is bounded: the drain timeout caps the wait for a handler that
//! does not return, and `ShutdownHandle::shutdown_now` (what a second
//! SIGTERM does) stops waiting at once. A request left behind is never
//! answered 200.
#![cfg(feature = "listener")]

#[path = "listener_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use wasenderapi::WebhookListener;

/// A listener with `drain_timeout` whose inline handler is blocked inside
/// one request (event `STUCK`); the client thread returns the reply, if any.
fn stuck_in_an_inline_handler(
    drain_timeout: Duration,
) -> (
    WebhookListener,
    Arc<Recorder>,
    std::thread::JoinHandle<Option<Reply>>,
) {
    let (recorder, started) = Recorder::gated();
    let listener = builder(Arc::clone(&recorder))
        .drain_timeout(drain_timeout)
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let client = std::thread::spawn(move || {
        let mut conn = Conn::open(addr);
        conn.send(&post_request(&event("STUCK", "block")));
        conn.try_read_reply()
    });
    started
        .recv_timeout(Duration::from_secs(5))
        .expect("handler started");
    (listener, recorder, client)
}

#[test]
fn the_drain_timeout_bounds_a_shutdown_waiting_on_an_inline_handler() {
    let (listener, recorder, client) = stuck_in_an_inline_handler(Duration::from_millis(300));
    let t = Instant::now();
    let stats = listener.shutdown();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "shutdown took {took:?} with a 300 ms drain timeout"
    );
    assert_eq!(stats.handled, 0);
    // The handler left behind may still finish; a 200 then means it did.
    recorder.release(1);
    if let Some(reply) = client.join().unwrap() {
        if reply.status == 200 {
            assert_eq!(recorder.count("STUCK"), 1, "a 200 only for a handled event");
        }
    }
}

#[test]
fn shutdown_now_stops_waiting_for_an_inline_handler_at_once() {
    let (listener, recorder, client) = stuck_in_an_inline_handler(Duration::from_secs(30));
    let handle = listener.shutdown_handle();
    let runner = std::thread::spawn(move || listener.join());
    handle.shutdown();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !runner.is_finished(),
        "a graceful shutdown waits for the handler"
    );
    let t = Instant::now();
    handle.shutdown_now();
    let stats = runner.join().unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?} after shutdown_now",
        t.elapsed()
    );
    assert_eq!(stats.handled, 0);
    recorder.release(1);
    let _ = client.join().unwrap();
}

/// A signed POST of `body` to `/webhook`, as raw bytes.
fn post_request(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         X-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        signature(body),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}
