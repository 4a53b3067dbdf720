//! The listener against a bare tiny_http server, under the same loopback load.
//!
//! Both servers get the same signed `messages.received` fixture over
//! keep-alive connections from the same in-process load generator; the bare
//! server only reads the body and answers 200, the listener verifies, decodes
//! and dispatches to a no-op handler. Prints requests/s, p50 and p99 latency
//! for both, and the throughput ratio (goal: listener ≥ 0.8 × bare, p99 < 2 ms).
//!
//! A third server runs in the same rounds: the listener with
//! [`metrics(true)`](wasenderapi::listener::WebhookListenerBuilder::metrics), scraped
//! ten times a second while it is under load, and the ratio metrics on / off
//! is printed too.
//!
//! `cargo bench -p wasenderapi-benches --bench listener`; `BENCH_SECONDS` sets
//! each round's length (default 2). `--bench servers` compares the listener
//! with axum.

#[path = "support/load.rs"]
mod load;

use std::convert::Infallible;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use load::{BareServer, Limit, Round};
use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const CONNECTIONS: usize = 4;
const WORKERS: usize = 4;

struct Noop;
impl WebhookHandler for Noop {
    type Error = Infallible;
}

/// One server under test.
struct Contender {
    name: &'static str,
    addr: SocketAddr,
    /// Scrape `GET /metrics` while it is under load.
    scraped: bool,
    best: Option<Round>,
}

/// Scrapes `GET /metrics` on `addr` every 100 ms until `stop`; returns the scrapes made.
fn scrape_until(addr: SocketAddr, stop: &AtomicBool) -> u64 {
    let mut scrapes = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut stream = TcpStream::connect(addr).expect("connect for a scrape");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .expect("send a scrape");
        let mut reader = BufReader::new(stream);
        assert_eq!(load::read_response(&mut reader), 200, "a scrape failed");
        let _ = reader.read_to_end(&mut Vec::new());
        scrapes += 1;
        thread::sleep(Duration::from_millis(100));
    }
    scrapes
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let length = Duration::from_secs_f64(seconds);
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/messages.received.json"
    ))
    .expect("fixture");
    let requests = Arc::new(vec![load::signed_request("/webhook", SECRET, &body)]);
    let load = |addr, length| load::run(addr, &requests, CONNECTIONS, Limit::Time(length));

    let bare_server = BareServer::start(WORKERS);
    let listener = WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Noop)
        .bind("127.0.0.1:0")
        .workers(WORKERS)
        .spawn()
        .expect("listener starts");
    let mut contenders = vec![
        Contender {
            name: "bare tiny_http",
            addr: bare_server.addr,
            scraped: false,
            best: None,
        },
        Contender {
            name: "WebhookListener",
            addr: listener.local_addr(),
            scraped: false,
            best: None,
        },
    ];
    let metered = WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Noop)
        .bind("127.0.0.1:0")
        .workers(WORKERS)
        .metrics(true)
        .spawn()
        .expect("listener with metrics starts");
    contenders.push(Contender {
        name: "listener + metrics",
        addr: metered.local_addr(),
        scraped: true,
        best: None,
    });

    println!(
        "{CONNECTIONS} keep-alive connections, {WORKERS} workers each, {}-byte signed event, {seconds} s per round",
        body.len()
    );
    // Warm up every server (threads, caches, allocator).
    for c in &contenders {
        load(c.addr, Duration::from_millis(300));
    }

    let mut scrapes = 0;
    for round in 1..=2 {
        for c in &mut contenders {
            let stop = AtomicBool::new(false);
            let r = thread::scope(|scope| {
                let scraper = c
                    .scraped
                    .then(|| scope.spawn(|| scrape_until(c.addr, &stop)));
                let r = load(c.addr, length);
                stop.store(true, Ordering::Relaxed);
                if let Some(scraper) = scraper {
                    scrapes += scraper.join().expect("scraper thread");
                }
                r
            });
            println!("{}", r.line(&format!("{} (round {round})", c.name)));
            if c.best
                .as_ref()
                .is_none_or(|b| r.per_second() > b.per_second())
            {
                c.best = Some(r);
            }
        }
    }
    let best = |i: usize| contenders[i].best.as_ref().expect("every contender ran");
    let (bare, ours) = (best(0), best(1));
    println!(
        "best rounds: listener / bare = {:.2} ({:.0} / {:.0} req/s); listener p99 {:.2} ms (goal: ratio >= 0.80, p99 < 2 ms)",
        ours.per_second() / bare.per_second(),
        ours.per_second(),
        bare.per_second(),
        ours.latency.quantile(0.99).as_secs_f64() * 1e3
    );
    let metered_round = best(2);
    println!(
        "best rounds: metrics on / off = {:.2} ({:.0} / {:.0} req/s), on / bare = {:.2}; metrics-on p99 {:.2} ms; {scrapes} scrapes under load",
        metered_round.per_second() / ours.per_second(),
        metered_round.per_second(),
        ours.per_second(),
        metered_round.per_second() / bare.per_second(),
        metered_round.latency.quantile(0.99).as_secs_f64() * 1e3
    );
    let stats = listener.shutdown();
    println!(
        "listener stats: handled {}, rejected {}",
        stats.handled,
        stats.rejected()
    );
    let stats = metered.shutdown();
    println!(
        "listener + metrics stats: handled {}, rejected {}, scrapes {}",
        stats.handled,
        stats.rejected(),
        stats.metrics_scrapes
    );
    bare_server.stop();
}
