//! A large backlog is replayed in bounded memory: 200,000 events pending in
//! the journal at start are handed to the handler in order by a durable
//! listener with a small queue, in a child process (this test binary again)
//! whose peak RSS (`VmHWM`) is reported and bounded.
//!
//! The backlog is written straight to segment files in the documented
//! on-disk format (see `wasenderapi::journal`), without an `fsync` per event,
//! so that writing it takes well under a second.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasenderapi::event::MessagesData;
use wasenderapi::journal::JournalDir;
use wasenderapi::listener::DeliveryMode;
use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};

use crate::support::process::{child_command, peak_rss_kib, test_name};
use crate::support::{event, heavy, wait_until, TempDir, SECRET};

const BACKLOG: u64 = 200_000;
/// The child's queue capacity: what bounds its memory, whatever the backlog.
const CAPACITY: usize = 16;
/// Peak RSS allowed to the child. Streaming, it peaks at about 28 MiB (the
/// pending index, one segment read at open, the test binary); loading the
/// whole backlog at once, as the replay did before, peaked at 242 MiB.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

const ENV_DIR: &str = "WASENDER_BACKLOG_CHILD_DIR";
const ENV_REPORT: &str = "WASENDER_BACKLOG_CHILD_REPORT";

/// Segment files as the journal writes them: `<20-digit first seq>.wal`, the
/// header `WSJRNL` + version 1, then records `WJR1 | crc32c | seq | kind | len | payload`.
fn write_backlog(dir: &Path, events: u64) {
    const SEGMENT_SIZE: usize = 8 * 1024 * 1024;
    fs::create_dir_all(dir).expect("create the journal dir");
    let mut segment: Vec<u8> = Vec::with_capacity(SEGMENT_SIZE + 4096);
    let mut first_seq = 1;
    let flush = |segment: &mut Vec<u8>, first_seq: u64| {
        fs::write(dir.join(format!("{first_seq:020}.wal")), &segment).expect("write a segment");
        segment.clear();
    };
    for seq in 1..=events {
        if segment.is_empty() {
            first_seq = seq;
            segment.extend_from_slice(b"WSJRNL");
            segment.extend_from_slice(&1u16.to_le_bytes());
        }
        let payload = backlog_event(seq);
        let mut body = Vec::with_capacity(13);
        body.extend_from_slice(&seq.to_le_bytes());
        body.push(1);
        body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&body), &payload);
        segment.extend_from_slice(b"WJR1");
        segment.extend_from_slice(&crc.to_le_bytes());
        segment.extend_from_slice(&body);
        segment.extend_from_slice(&payload);
        if segment.len() >= SEGMENT_SIZE {
            flush(&mut segment, first_seq);
        }
    }
    if !segment.is_empty() {
        flush(&mut segment, first_seq);
    }
}

/// The body of backlog event `seq`: a `messages.received` event with
/// message id `b<seq>`, as `support::event` builds it (written out here
/// because building 200,000 of them through `serde_json` takes seconds in a
/// debug build).
fn backlog_event(seq: u64) -> Vec<u8> {
    format!(
        r#"{{"data":{{"messages":{{"key":{{"cleanedSenderPn":"15551234567","fromMe":false,"id":"b{seq:06}","remoteJid":"15551234567@s.whatsapp.net"}},"messageBody":"backlog"}}}},"event":"messages.received","sessionId":"sess-0123456789abcdef","timestamp":1700000000}}"#
    )
    .into_bytes()
}

/// The child's handler: checks that events come in seq order and counts them.
struct InOrder {
    handled: AtomicU64,
    out_of_order: AtomicU64,
    last: Mutex<u64>,
}

impl WebhookHandler for InOrder {
    type Error = String;

    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
        for m in event.data().iter().flat_map(|d| d.messages()) {
            let n: u64 = m
                .id()
                .and_then(|id| id.strip_prefix('b'))
                .and_then(|n| n.parse().ok())
                .ok_or("not a backlog event")?;
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if n != *last + 1 {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            *last = n;
            self.handled.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Child mode: returns at once unless started by the parent test below.
#[test]
fn child_replays_the_backlog() {
    let (Some(dir), Some(report)) = (std::env::var_os(ENV_DIR), std::env::var_os(ENV_REPORT))
    else {
        return;
    };
    let handler = std::sync::Arc::new(InOrder {
        handled: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        last: Mutex::new(0),
    });
    let started = Instant::now();
    let listener = WebhookListener::builder(
        WebhookVerifier::with_secret(SECRET),
        std::sync::Arc::clone(&handler),
    )
    .bind("127.0.0.1:0")
    .handler_threads(1)
    .delivery_mode(DeliveryMode::durable(PathBuf::from(dir)).with_capacity(CAPACITY))
    .spawn()
    .expect("the child listener starts");
    let recovered = listener.stats().recovered;
    // Reported either way: the parent says what is missing.
    wait_until(Duration::from_secs(60), || {
        handler.handled.load(Ordering::Relaxed) >= BACKLOG
    });
    let elapsed = started.elapsed();
    let stats = listener.shutdown();
    let line = format!(
        "{} {} {} {} {} {}\n",
        recovered,
        handler.handled.load(Ordering::Relaxed),
        handler.out_of_order.load(Ordering::Relaxed),
        stats.queue_depth,
        peak_rss_kib(std::process::id()),
        elapsed.as_millis()
    );
    let mut file = fs::File::create(report).expect("create the report");
    file.write_all(line.as_bytes()).expect("write the report");
}

#[test]
fn a_200k_backlog_is_replayed_in_order_in_bounded_memory() {
    let _heavy = heavy::exclusive();
    let same: [serde_json::Value; 2] = [
        serde_json::from_slice(&backlog_event(7)).expect("JSON"),
        serde_json::from_slice(&event("b000007", "backlog")).expect("JSON"),
    ];
    assert_eq!(same[0], same[1], "backlog_event is the usual test event");
    let dir = TempDir::new("backlog");
    let journal = dir.join("journal");
    let started = Instant::now();
    write_backlog(&journal, BACKLOG);
    let written = started.elapsed();
    let report = dir.join("report");
    let status = child_command(&test_name(module_path!(), "child_replays_the_backlog"))
        .env(ENV_DIR, &journal)
        .env(ENV_REPORT, &report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run the child");
    assert!(status.success(), "the child failed: {status}");
    let text = fs::read_to_string(&report).expect("the child's report");
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("a number"))
        .collect();
    let [recovered, handled, out_of_order, depth, peak_kib, millis] = fields[..] else {
        panic!("a malformed report: {text:?}");
    };
    eprintln!(
        "backlog of {BACKLOG} events (written in {written:?}): replayed in {millis} ms with \
         capacity {CAPACITY}; child peak RSS (VmHWM) {peak_kib} KiB ({:.1} MiB)",
        peak_kib as f64 / 1024.0
    );
    assert_eq!(recovered, BACKLOG, "every event was pending at start");
    assert_eq!(handled, BACKLOG, "every event was handled");
    assert_eq!(out_of_order, 0, "events came in seq order");
    assert_eq!(depth, 0, "the queue is empty at the end");
    assert!(
        peak_kib < RSS_LIMIT_KIB,
        "peak RSS {peak_kib} KiB is over {RSS_LIMIT_KIB} KiB: the backlog is not streamed"
    );
    let info = JournalDir::open(&journal)
        .and_then(|j| j.stats())
        .expect("journal stats");
    assert_eq!(info.pending, 0, "{info:#?}");
}
