//! Soak and load: at least 1,000,000 signed events through the listener, with
//! throughput, p99 and resident memory reported per 100,000; then the queued
//! durable mode's throughput as a ratio of inline mode, on the same run.
//!
//! Run: `cargo bench -p wasenderapi-benches --bench soak`. `SOAK_EVENTS` (default 1,000,000) and
//! `RATIO_EVENTS` (default 100,000) change the counts; `SOAK_CONNECTIONS`
//! (default 8) and `RATIO_CONNECTIONS` (default 32) the number of keep-alive
//! client connections. `SOAK_MODE` (`inline`, `queued` or `durable`) picks
//! the delivery mode of the soak. Group commit shares one fsync among the appends that
//! are in flight together, so the durable mode's ratio grows with concurrent
//! senders; run the ratio at several values to see the curve.

#[path = "support/load.rs"]
mod load;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use load::{Histogram, Limit};
use wasenderapi::event::MessagesData;
use wasenderapi::listener::DeliveryMode;
use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// Request workers in every mode. Verification and decoding are CPU-bound, but
/// in durable mode a worker waits for the journal's fsync: more workers give the
/// group commit more appends to share one fsync.
const WORKERS: usize = 16;
/// Handler threads in the queued modes: the no-op handler needs few, and fewer
/// threads sleep and wake less often.
const HANDLER_THREADS: usize = 2;

/// Counts the message events it is handed (the load sends only those).
#[derive(Default)]
struct Counter(AtomicU64);

impl WebhookHandler for Counter {
    type Error = Infallible;
    fn on_messages_received(&self, _: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn on_messages_upsert(&self, _: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn requests() -> Arc<Vec<Vec<u8>>> {
    // Message events, each with its own id, so every request is distinct.
    let mut out = Vec::new();
    for i in 0..64 {
        let body = format!(
            r#"{{"event":"messages.received","timestamp":1733456789,"data":{{"messages":{{"key":{{"id":"SOAK{i:04}","fromMe":false,"remoteJid":"5511999998888@s.whatsapp.net","cleanedSenderPn":"5511999998888"}},"messageBody":"soak message {i}","message":{{"conversation":"soak message {i}"}}}}}}}}"#
        );
        out.push(load::signed_request("/webhook", SECRET, body.as_bytes()));
    }
    // And the documented upserts (array and flat image shapes).
    for body in load::fixture_bodies() {
        if body.windows(17).any(|w| w == b"\"messages.upsert\"") {
            out.push(load::signed_request("/webhook", SECRET, &body));
        }
    }
    Arc::new(out)
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::with_secret(SECRET)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasender-soak-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The listener under test, counting into `counter`.
fn start(counter: &Arc<Counter>, mode: DeliveryMode) -> WebhookListener {
    WebhookListener::builder(verifier(), Arc::clone(counter))
        .bind("127.0.0.1:0")
        .workers(WORKERS)
        .handler_threads(HANDLER_THREADS)
        .delivery_mode(mode)
        .spawn()
        .expect("start the listener")
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn soak(requests: &Arc<Vec<Vec<u8>>>, connections: usize, total: u64, mode_name: &str) {
    let counter = Arc::new(Counter::default());
    let journal = temp_dir("soak-journal");
    let mode = match mode_name {
        "queued" => DeliveryMode::queued(4096),
        "durable" => DeliveryMode::durable(&journal),
        _ => DeliveryMode::Inline,
    };
    let listener = start(&counter, mode);
    let pool = load::Pool::connect(listener.local_addr(), requests, connections);
    pool.run(20_000); // warm-up
    let rss_start = load::rss_kib();
    println!(
        "soak: {total} events over {connections} keep-alive connections, {mode_name} delivery"
    );
    println!("  memory after warm-up: {}", mib(rss_start));
    let batch = 100_000.min(total);
    let mut sent = 0;
    let mut all = Histogram::new();
    let started = Instant::now();
    while sent < total {
        let n = batch.min(total - sent);
        let round = pool.run(n);
        sent += round.requests;
        all.merge(&round.latency);
        println!(
            "  {:>8} {}   rss {}",
            sent,
            round.line(""),
            mib(load::rss_kib())
        );
    }
    let elapsed = started.elapsed();
    let rss_end = load::rss_kib();
    drop(pool);
    let stats = listener.shutdown();
    let _ = std::fs::remove_dir_all(&journal);
    println!(
        "  total: {} events in {:.1} s = {:.0} events/s, p50 {} µs, p99 {} µs, p99.9 {} µs",
        sent,
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        all.quantile(0.5).as_micros(),
        all.quantile(0.99).as_micros(),
        all.quantile(0.999).as_micros()
    );
    println!(
        "  memory: start {}, end {} ({:+.1} MiB)",
        mib(rss_start),
        mib(rss_end),
        match (rss_start, rss_end) {
            (Some(a), Some(b)) => (b as f64 - a as f64) / 1024.0,
            _ => 0.0,
        }
    );
    let handled = counter.0.load(Ordering::Relaxed);
    println!(
        "  handled {handled} (+20000 warm-up), listener stats: received {} handled {}",
        stats.received, stats.handled
    );
    assert_eq!(
        handled,
        sent + 20_000,
        "every answered event was handled exactly once"
    );
}

fn mode_round(
    requests: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    events: u64,
    mode: DeliveryMode,
    name: &str,
) -> load::Round {
    let counter = Arc::new(Counter::default());
    let listener = start(&counter, mode);
    let round = load::run(
        listener.local_addr(),
        requests,
        connections,
        Limit::Count(events),
    );
    listener.shutdown();
    assert_eq!(
        counter.0.load(Ordering::Relaxed),
        round.requests,
        "{name}: every event handled"
    );
    println!("  {}", round.line(name));
    round
}

fn ratio(requests: &Arc<Vec<Vec<u8>>>, connections: usize, events: u64) {
    println!(
        "\nratio: {events} events per mode, {connections} connections, two alternating rounds"
    );
    let mut inline = 0.0;
    let mut durable = 0.0;
    let mut queued = 0.0;
    for round in 0..2 {
        inline += mode_round(
            requests,
            connections,
            events,
            DeliveryMode::Inline,
            "inline",
        )
        .per_second();
        queued += mode_round(
            requests,
            connections,
            events,
            DeliveryMode::queued(4096),
            "queued (memory)",
        )
        .per_second();
        let dir = temp_dir(&format!("durable{round}"));
        durable += mode_round(
            requests,
            connections,
            events,
            DeliveryMode::durable(&dir),
            "queued durable (journal)",
        )
        .per_second();
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "  queued (memory) / inline = {:.2}; queued durable / inline = {:.2} (goal >= 0.5)",
        queued / inline,
        durable / inline
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let connections = env_count("SOAK_CONNECTIONS", 8) as usize;
    let requests = requests();
    let mode = std::env::var("SOAK_MODE").unwrap_or_else(|_| "inline".to_owned());
    soak(
        &requests,
        connections,
        env_count("SOAK_EVENTS", 1_000_000),
        &mode,
    );
    let ratio_connections = env_count("RATIO_CONNECTIONS", 32) as usize;
    ratio(
        &requests,
        ratio_connections,
        env_count("RATIO_EVENTS", 100_000),
    );
}
