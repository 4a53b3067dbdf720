//! The listener against a bare tiny_http server, under the same loopback load.
//!
//! Both servers get the same signed `messages.received` fixture over
//! keep-alive connections from the same in-process load generator; the bare
//! server only reads the body and answers 200, the listener verifies, decodes
//! and dispatches to a no-op handler. Prints requests/s, p50 and p99 latency
//! for both, and the throughput ratio (goal: listener ≥ 0.8 × bare, p99 < 2 ms).
//!
//! `cargo bench --bench listener`; `BENCH_SECONDS` sets each round's length (default 2).

#[path = "support/load.rs"]
mod load;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use load::{Limit, Round};
use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const CONNECTIONS: usize = 4;
const WORKERS: usize = 4;

struct Noop;
impl WebhookHandler for Noop {
    type Error = Infallible;
}

/// A tiny_http server that reads each body and answers 200, on `WORKERS` threads.
fn bare_tiny_http() -> (
    SocketAddr,
    Arc<tiny_http::Server>,
    Vec<thread::JoinHandle<()>>,
) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let addr = server.server_addr().to_ip().expect("ip address");
    let workers = (0..WORKERS)
        .map(|_| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                while let Ok(mut request) = server.recv() {
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let _ = request.respond(tiny_http::Response::from_string(r#"{"status":"ok"}"#));
                }
            })
        })
        .collect();
    (addr, server, workers)
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let length = Duration::from_secs_f64(seconds);
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/messages.received.json"
    ))
    .expect("fixture");
    let requests = Arc::new(vec![load::signed_request("/webhook", SECRET, &body)]);
    let load = |addr, length| load::run(addr, &requests, CONNECTIONS, Limit::Time(length));

    let (bare_addr, bare_server, bare_workers) = bare_tiny_http();
    let listener = WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Noop)
        .bind("127.0.0.1:0")
        .workers(WORKERS)
        .spawn()
        .expect("listener starts");
    let listener_addr = listener.local_addr();

    println!(
        "{CONNECTIONS} keep-alive connections, {WORKERS} workers each, {}-byte signed event, {seconds} s per round",
        body.len()
    );
    // Warm up both (threads, caches, allocator).
    load(bare_addr, Duration::from_millis(300));
    load(listener_addr, Duration::from_millis(300));

    let mut best: [Option<Round>; 2] = [None, None];
    for round in 1..=2 {
        let bare = load(bare_addr, length);
        println!("{}", bare.line(&format!("bare tiny_http (round {round})")));
        let ours = load(listener_addr, length);
        println!("{}", ours.line(&format!("WebhookListener (round {round})")));
        for (slot, r) in best.iter_mut().zip([bare, ours]) {
            let better = match slot {
                Some(b) => r.per_second() > b.per_second(),
                None => true,
            };
            if better {
                *slot = Some(r);
            }
        }
    }
    let [Some(bare), Some(ours)] = best else {
        unreachable!("two rounds ran");
    };
    println!(
        "best rounds: listener / bare = {:.2} ({:.0} / {:.0} req/s); listener p99 {:.2} ms (goal: ratio >= 0.80, p99 < 2 ms)",
        ours.per_second() / bare.per_second(),
        ours.per_second(),
        bare.per_second(),
        ours.latency.quantile(0.99).as_secs_f64() * 1e3
    );
    let stats = listener.shutdown();
    println!(
        "listener stats: handled {}, rejected {}",
        stats.handled,
        stats.rejected()
    );
    for _ in 0..WORKERS {
        bare_server.unblock();
    }
    for worker in bare_workers {
        let _ = worker.join();
    }
}
