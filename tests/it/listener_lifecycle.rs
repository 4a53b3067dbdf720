//! Binding, port 0, shutdown (also while busy), drop, join.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasenderapi::signature::SignatureScheme;
use wasenderapi::{WasenderError, WebhookListener, WebhookVerifier};

use crate::support::http::refuses_connections;
use crate::support::listener::{builder, start, verifier};
use crate::support::{event, signature, wait_for, Conn, Recorder, SECRET};

#[test]
fn port_zero_binds_a_free_port() {
    let (a, _) = start();
    let (b, _) = start();
    assert_ne!(a.local_addr().port(), 0);
    assert_ne!(a.local_addr().port(), b.local_addr().port());
    assert_eq!(
        Conn::open(a.local_addr())
            .post_signed(&event("A", "x"))
            .status,
        200
    );
    a.shutdown();
    b.shutdown();
}

#[test]
fn an_address_in_use_is_a_bind_error_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let recorder = Arc::new(Recorder::default());
    let result = builder(recorder).bind(addr.as_str()).spawn();
    match result {
        Err(WasenderError::Bind {
            addr: named,
            source,
        }) => {
            assert_eq!(named, addr);
            assert_eq!(source.kind(), ErrorKind::AddrInUse);
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[test]
fn an_address_in_use_given_as_a_socket_address_is_named_too() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let recorder = Arc::new(Recorder::default());
    let error = builder(recorder).bind(addr).spawn().unwrap_err();
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
}

#[test]
fn an_unresolvable_address_is_a_bind_error_naming_it() {
    let recorder = Arc::new(Recorder::default());
    let result = builder(recorder).bind("not an address").spawn();
    assert!(
        matches!(&result, Err(WasenderError::Bind { addr, .. }) if addr == "not an address"),
        "{result:?}"
    );
}

/// Spawning with `verifier` is refused because it holds no secret.
fn assert_refused_without_secret(verifier: impl Into<WebhookVerifier>) {
    let result = WebhookListener::builder(verifier, Arc::new(Recorder::default()))
        .bind("127.0.0.1:0")
        .spawn();
    assert!(
        matches!(result, Err(WasenderError::SecretNotConfigured)),
        "{result:?}"
    );
}

#[test]
fn a_verifier_without_a_secret_fails_at_spawn() {
    assert_refused_without_secret(WebhookVerifier::new(SignatureScheme::SharedSecret));
}

#[cfg(feature = "client")]
#[test]
fn a_client_without_a_webhook_secret_fails_at_spawn() {
    assert_refused_without_secret(wasenderapi::WasenderSyncClient::new("api-key"));
}

#[cfg(feature = "client")]
#[test]
fn a_client_verifies_with_its_webhook_secret() {
    let recorder = Arc::new(Recorder::default());
    let client = wasenderapi::WasenderSyncClient::builder("api-key")
        .webhook_secret(SECRET)
        .build();
    let listener = WebhookListener::builder(client, Arc::clone(&recorder))
        .bind("127.0.0.1:0")
        .spawn()
        .unwrap();
    let reply = Conn::open(listener.local_addr()).post_signed(&event("CLIENT", "x"));
    assert_eq!(reply.status, 200);
    listener.shutdown();
    assert_eq!(recorder.total(), 1);
}

#[test]
fn invalid_settings_are_refused() {
    let recorder = Arc::new(Recorder::default());
    for built in [
        builder(Arc::clone(&recorder)).workers(0).spawn(),
        builder(Arc::clone(&recorder)).event_loops(0).spawn(),
        builder(Arc::clone(&recorder)).path("webhook").spawn(),
        builder(Arc::clone(&recorder)).max_body_bytes(0).spawn(),
        builder(Arc::clone(&recorder)).queue_capacity(0).spawn(),
        builder(Arc::clone(&recorder))
            .idle_timeout(Duration::ZERO)
            .spawn(),
    ] {
        assert!(
            matches!(built, Err(WasenderError::InvalidArgument(_))),
            "{built:?}"
        );
    }
}

#[test]
fn an_existing_tcp_listener_can_be_used() {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let recorder = Arc::new(Recorder::default());
    let listener = builder(recorder).listener(socket).spawn().unwrap();
    assert_eq!(listener.local_addr(), addr);
    assert_eq!(Conn::open(addr).post_signed(&event("L", "x")).status, 200);
    listener.shutdown();
}

#[test]
fn custom_path_is_served_and_the_default_is_not() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(recorder).path("/hooks/wasender").spawn().unwrap();
    let mut conn = Conn::open(listener.local_addr());
    let body = event("C", "x");
    assert_eq!(
        conn.post("/hooks/wasender", &body, Some(&signature(&body)))
            .status,
        200
    );
    assert_eq!(
        conn.post("/webhook", &body, Some(&signature(&body))).status,
        404
    );
    listener.shutdown();
}

#[test]
fn shutdown_stops_accepting() {
    let (listener, _) = start();
    let addr = listener.local_addr();
    let stats = listener.shutdown();
    assert_eq!(stats.in_flight, 0);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

#[test]
fn drop_shuts_down() {
    let (listener, _) = start();
    let addr = listener.local_addr();
    drop(listener);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

#[test]
fn shutdown_while_busy_lets_in_flight_requests_finish() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder)).spawn().unwrap();
    let addr = listener.local_addr();
    let client = std::thread::spawn(move || Conn::open(addr).post_signed(&event("BUSY", "block")));
    recorder.wait_blocked(1);
    // The handler is let go once the shutdown has begun (new connections
    // are refused), and says when.
    let releaser = {
        let recorder = Arc::clone(&recorder);
        std::thread::spawn(move || {
            wait_for("the shutdown to begin", Duration::from_secs(5), || {
                refuses_connections(addr)
            });
            recorder.release(1);
            Instant::now()
        })
    };
    let stats = listener.shutdown();
    let returned = Instant::now();
    let released = releaser.join().unwrap();
    // shutdown waited for the handler, and the client got its answer.
    assert!(
        returned > released,
        "shutdown returned before the handler was let go"
    );
    let reply = client.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(
        (stats.handled, stats.in_flight, stats.open_connections),
        (1, 0, 0)
    );
    assert_eq!(recorder.count("BUSY"), 1);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

#[test]
fn idle_connections_do_not_delay_shutdown() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(recorder)
        .idle_timeout(Duration::from_secs(30))
        .spawn()
        .unwrap();
    let mut idle = Conn::open(listener.local_addr());
    assert_eq!(idle.post_signed(&event("IDLE", "x")).status, 200);
    let _half_open = Conn::open(listener.local_addr());
    let t = Instant::now();
    listener.shutdown();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(idle.is_closed_within(Duration::from_secs(1)));
}

#[test]
fn join_returns_after_a_shutdown_handle_is_used() {
    let (listener, _) = start();
    let addr = listener.local_addr();
    let handle = listener.shutdown_handle();
    let runner = std::thread::spawn(move || listener.join());
    assert_eq!(Conn::open(addr).post_signed(&event("J", "x")).status, 200);
    handle.shutdown();
    handle.shutdown(); // idempotent
    let stats = runner.join().unwrap();
    assert_eq!(stats.handled, 1);
}

#[test]
fn listener_on_the_wildcard_address_shuts_down() {
    let recorder = Arc::new(Recorder::default());
    let listener = WebhookListener::builder(verifier(), recorder)
        .bind("0.0.0.0:0")
        .spawn()
        .unwrap();
    let port = listener.local_addr().port();
    let t = Instant::now();
    listener.shutdown();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
