//! What the listener logs, read through the binary's captured log: the
//! start and stop lines, one debug line per event, and rejected requests at
//! `warn`, rate-limited under a flood, the rest summed up when the listener
//! stops. No line may hold the secret or a signature.
//!
//! Every listener running beside this test logs into the same capture, so
//! the test reads only its own lines: those naming its listener's address
//! or its client's, those of its event's session, and those logged by its
//! own thread (the listener starts and stops on the caller's thread).

use std::sync::Arc;
use std::time::Duration;

use log::Level;

use crate::support::listener::builder;
use crate::support::logs::{Line, Watch};
use crate::support::{signature, Conn, Recorder, SECRET};

/// The listener's documented rate: at most 10 rejection lines a second.
const REJECTION_WARNINGS_PER_SECOND: u64 = 10;

/// A `messages.received` event of a session no other test uses, so that
/// its debug line (which shows the session's first four characters) is ours.
fn event_of_our_session(id: &str) -> Vec<u8> {
    serde_json::json!({
        "event": "messages.received",
        "timestamp": 1_700_000_000,
        "sessionId": "LOGT-0123456789abcdef",
        "data": {"messages": {
            "key": {"id": id, "fromMe": false, "remoteJid": "15551234567@s.whatsapp.net"},
            "messageBody": "hello"
        }}
    })
    .to_string()
    .into_bytes()
}

/// The K of a "suppressed K more rejection(s)" line.
fn suppressed(line: &Line) -> Option<u64> {
    let rest = line.text.strip_prefix("suppressed ")?;
    rest.split(' ').next()?.parse().ok()
}

#[test]
fn the_listener_logs_start_events_rate_limited_rejections_and_stop() {
    let watch = Watch::start();
    let me = std::thread::current().id();

    let recorder = Arc::new(Recorder::default());
    let listener = builder(recorder)
        .idle_timeout(Duration::from_secs(5))
        .spawn()
        .unwrap();
    let addr = listener.local_addr();

    // Start: address, path, mode, threads, the number of secrets, never the secret.
    let start = watch
        .lines()
        .into_iter()
        .find(|l| l.level == Level::Info && l.text.starts_with("webhook listener on"))
        .filter(|l| l.text.contains(&format!("http://{addr}/webhook")))
        .expect("a start line naming our address");
    assert_eq!(start.thread, me, "logged by the caller of spawn");
    assert!(start.text.contains("inline delivery"), "{}", start.text);
    assert!(start.text.contains("1 secret(s)"), "{}", start.text);

    // One debug line per event: type, masked session, status, time.
    let mut conn = Conn::open(addr);
    let peer = format!("from {}:", conn.stream().local_addr().unwrap());
    let ours = |l: &Line| l.text.contains(&peer);
    let good = event_of_our_session("OK-1");
    assert_eq!(conn.post_signed(&good).status, 200);
    let event_line = watch
        .lines()
        .into_iter()
        .find(|l| l.level == Level::Debug && l.text.contains("(session LOGT…)"))
        .expect("a debug line for the event");
    assert!(
        event_line
            .text
            .starts_with("webhook messages.received (session LOGT…): 200 handled in "),
        "{}",
        event_line.text
    );

    // Rejections of every kind are logged the same way (the bucket is full).
    assert_eq!(conn.post("/nowhere", b"", None).status, 404);
    let bad = event_of_our_session("BAD");
    assert_eq!(conn.post("/webhook", &bad, None).status, 401);
    let logged = |what: &str| {
        watch
            .lines()
            .iter()
            .filter(|l| l.level == Level::Warn && ours(l) && l.text.starts_with(what))
            .count()
    };
    assert_eq!(logged("rejected POST /nowhere "), 1);
    assert_eq!(logged("rejected POST /webhook "), 1);

    // A flood of badly signed requests: at most N warn lines a second.
    let flood = 200;
    let flood_started = std::time::Instant::now();
    for _ in 0..flood {
        let reply = conn.post("/webhook", &bad, Some("v1,not-the-signature"));
        assert_eq!(reply.status, 401);
    }
    let flood_time = flood_started.elapsed();
    let logged_in_flood = logged("rejected POST /webhook ") - 1;
    let seconds = flood_time.as_secs() + 1;
    assert!(
        logged_in_flood as u64 <= REJECTION_WARNINGS_PER_SECOND * seconds,
        "{logged_in_flood} rejection lines for {flood} rejections in {flood_time:?}"
    );
    assert!(logged_in_flood > 0);
    let line = watch
        .lines()
        .into_iter()
        .find(|l| ours(l) && l.text.starts_with("rejected POST /webhook "))
        .expect("a rejection line");
    assert!(line.text.contains(": 401 "), "{}", line.text);

    let stats = listener.shutdown();
    let lines = watch.lines();
    // A summary line is ours when our thread logged it (at the stop) or
    // when the next line of its thread is one of our rejections (a refill
    // during the flood: the summary comes right before the line it lets through).
    let next_of_thread = |at: usize| {
        lines[at + 1..]
            .iter()
            .find(|l| l.thread == lines[at].thread)
    };
    let mut at_refill = 0;
    let mut at_stop = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let Some(n) = suppressed(line) else { continue };
        if line.thread == me {
            at_stop.push(n);
        } else if next_of_thread(at).is_some_and(&ours) {
            at_refill += n;
        }
    }
    // Every rejection is logged or counted in a summary, and what no
    // refill summed up is summed up, once, when the listener stops.
    let logged_all = lines
        .iter()
        .filter(|l| l.level == Level::Warn && ours(l) && l.text.starts_with("rejected "))
        .count() as u64;
    let left_at_stop = stats.rejected() - logged_all - at_refill;
    assert!(left_at_stop + at_refill > 0, "a summary line: {lines:#?}");
    assert_eq!(
        at_stop,
        if left_at_stop > 0 {
            vec![left_at_stop]
        } else {
            vec![]
        },
        "the stop sums up the {left_at_stop} rejection(s) no line told of ({} rejected, \
         {logged_all} logged, {at_refill} in refill summaries)",
        stats.rejected()
    );
    let stop = lines
        .iter()
        .find(|l| {
            l.thread == me
                && l.level == Level::Info
                && l.text.starts_with("webhook listener stopped")
        })
        .expect("a stop line");
    assert!(
        stop.text.contains(&format!(
            "{} request(s), 1 event(s) handled",
            stats.received
        )),
        "{}",
        stop.text
    );
    assert!(
        stop.text
            .contains(&format!("{} rejected", stats.rejected())),
        "{}",
        stop.text
    );

    // No line of any listener holds the secret or a signature.
    for line in &lines {
        assert!(
            !line.text.contains(SECRET),
            "the secret was logged: {line:?}"
        );
        assert!(!line.text.contains(&signature(&good)), "{line:?}");
        assert!(
            !line.text.contains("not-the-signature"),
            "a signature was logged: {line:?}"
        );
    }
}
