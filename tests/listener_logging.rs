//! What the listener logs, read through a `log::Log` installed once for this
//! test binary: the start and stop lines, one debug line per event, and
//! rejected requests at `warn`, rate-limited under a flood. No line may hold
//! the secret or a signature.
//!
//! One test only: the logger is global to the process.
#![cfg(feature = "listener")]

#[path = "listener_support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};
use support::*;

/// The listener's documented rate: at most 10 rejection lines a second.
const REJECTION_WARNINGS_PER_SECOND: u64 = 10;

/// Every record this process logs, as `(level, message)`.
struct Capture(Mutex<Vec<(Level, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        if record.target().starts_with("wasenderapi") {
            let line = record.args().to_string();
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((record.level(), line));
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn lines() -> Vec<(Level, String)> {
    CAPTURE.0.lock().unwrap().clone()
}

fn count(level: Level, needle: &str) -> usize {
    lines()
        .iter()
        .filter(|(l, m)| *l == level && m.contains(needle))
        .count()
}

/// The K of every "suppressed K more rejection(s)" line.
fn suppressed_total() -> u64 {
    lines()
        .iter()
        .filter_map(|(_, m)| m.strip_prefix("suppressed "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn the_listener_logs_start_events_rate_limited_rejections_and_stop() {
    log::set_logger(&CAPTURE).expect("the only logger of this binary");
    log::set_max_level(LevelFilter::Debug);

    let recorder = Arc::new(Recorder::default());
    let listener = builder(recorder)
        .idle_timeout(Duration::from_secs(5))
        .spawn()
        .unwrap();
    let addr = listener.local_addr();

    // Start: address, path, mode, threads, the number of secrets, never the secret.
    let start = lines()
        .into_iter()
        .find(|(l, m)| *l == Level::Info && m.starts_with("webhook listener on"))
        .expect("a start line");
    assert!(
        start.1.contains(&format!("http://{addr}/webhook")),
        "{}",
        start.1
    );
    assert!(start.1.contains("inline delivery"), "{}", start.1);
    assert!(start.1.contains("1 secret(s)"), "{}", start.1);

    // One debug line per event: type, masked session, status, time.
    let mut conn = Conn::open(addr);
    assert_eq!(conn.post_signed(&event("OK-1", "hello")).status, 200);
    let event_line = lines()
        .into_iter()
        .find(|(l, m)| *l == Level::Debug && m.starts_with("webhook messages.received"))
        .expect("a debug line for the event");
    assert!(
        event_line.1.contains("(session sess…): 200 handled in "),
        "{}",
        event_line.1
    );

    // A flood of badly signed requests: at most N warn lines a second.
    let flood = 200;
    let flood_started = Instant::now();
    let bad = event("BAD", "x");
    for _ in 0..flood {
        let reply = conn.post("/webhook", &bad, Some("v1,not-the-signature"));
        assert_eq!(reply.status, 401);
    }
    let flood_time = flood_started.elapsed();
    let logged = count(Level::Warn, "rejected POST /webhook from 127.0.0.1:");
    let seconds = flood_time.as_secs() + 1;
    assert!(
        logged as u64 <= REJECTION_WARNINGS_PER_SECOND * seconds,
        "{logged} rejection lines for {flood} rejections in {flood_time:?}"
    );
    assert!(logged > 0);
    let line = lines()
        .into_iter()
        .find(|(_, m)| m.starts_with("rejected POST /webhook"))
        .unwrap();
    assert!(line.1.contains(": 401 "), "{}", line.1);

    // After a second, the next rejection first says how many were left out.
    std::thread::sleep(Duration::from_millis(1100));
    let reply = conn.post("/webhook", &bad, None);
    assert_eq!(reply.status, 401);
    assert!(count(Level::Warn, "suppressed ") >= 1, "a summary line");

    // Other rejections are logged the same way (within the fresh bucket).
    assert_eq!(conn.post("/nowhere", b"", None).status, 404);
    assert_eq!(
        count(Level::Warn, "rejected POST /nowhere from 127.0.0.1:"),
        1
    );

    let stats = listener.shutdown();
    // Every rejection is either logged or counted in a summary line.
    let logged = count(Level::Warn, "rejected ") as u64;
    assert_eq!(
        logged + suppressed_total(),
        stats.rejected(),
        "{:#?}",
        lines()
    );
    let stop = lines()
        .into_iter()
        .find(|(l, m)| *l == Level::Info && m.starts_with("webhook listener stopped"))
        .expect("a stop line");
    assert!(
        stop.1.contains(&format!(
            "{} request(s), 1 event(s) handled",
            stats.received
        )),
        "{}",
        stop.1
    );
    assert!(
        stop.1.contains(&format!("{} rejected", stats.rejected())),
        "{}",
        stop.1
    );

    for (_, line) in lines() {
        assert!(!line.contains(SECRET), "the secret was logged: {line}");
        assert!(
            !line.contains(&signature(&event("OK-1", "hello"))),
            "{line}"
        );
        assert!(
            !line.contains("not-the-signature"),
            "a signature was logged: {line}"
        );
    }
}
