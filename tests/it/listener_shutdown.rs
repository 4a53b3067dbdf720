//! Shutdown is bounded: the drain timeout caps the wait for a handler that
//! does not return, and `ShutdownHandle::shutdown_now` (what a second
//! SIGTERM does) stops waiting at once. A request left behind is never
//! answered 200.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasenderapi::WebhookListener;

use crate::support::http::{post_request, refuses_connections};
use crate::support::listener::builder;
use crate::support::{event, signature, wait_for, Conn, Recorder, Response};

const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

/// A listener with `drain_timeout` whose inline handler is blocked inside
/// one request (event `STUCK`); the client thread returns the reply, if any.
fn stuck_in_an_inline_handler(
    drain_timeout: Duration,
) -> (
    WebhookListener,
    Arc<Recorder>,
    std::thread::JoinHandle<Option<Response>>,
) {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .idle_timeout(Duration::from_secs(5))
        .drain_timeout(drain_timeout)
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let client = std::thread::spawn(move || {
        let mut conn = Conn::open(addr);
        let body = event("STUCK", "block");
        conn.send(&post_request("/webhook", &body, Some(&signature(&body))));
        conn.try_read_reply()
    });
    recorder.wait_blocked(1);
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
    let addr = listener.local_addr();
    // Opened (and served, so surely taken in) before the shutdown, so still
    // served while it drains.
    let mut probe = Conn::open(addr);
    probe.send(HEALTH_REQUEST);
    assert_eq!(probe.read_reply().status, 200);
    let handle = listener.shutdown_handle();
    let runner = std::thread::spawn(move || listener.join());
    handle.shutdown();
    // A graceful shutdown waits for the handler: new connections are
    // refused, and the listener says it is draining.
    wait_for("the shutdown to begin", Duration::from_secs(5), || {
        refuses_connections(addr)
    });
    probe.send(HEALTH_REQUEST);
    let health = probe.read_reply();
    assert_eq!(
        (health.status, health.json()["reason"].as_str()),
        (503, Some("draining")),
        "{health:?}"
    );
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
