//! Stopping on signals, over real processes: a child process (this test
//! binary in "child mode") runs a listener with `run_until_signal()` (or
//! `shutdown_on_signals(true)` and `join()`); the parent puts it under load
//! with several keep-alive connections posting signed events, sends SIGTERM
//! (or SIGINT) with the `kill` command, and checks:
//! - the child exits with status 0 within the drain timeout;
//! - every event answered 200 was handled: its id is in the child's output
//!   file, or (durable mode) a restarted child on the same journal hands it
//!   over;
//! - a second signal during the drain stops at once.
#![cfg(all(feature = "signals", target_os = "linux"))]

#[path = "delivery_support/mod.rs"]
mod delivery;
#[path = "process_support/mod.rs"]
mod process;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use delivery::{event, wait_until, AppendIds, RawConn, TempDir, SECRET};
use process::{publish, spawn_child, ChildListener};
use wasenderapi::listener::DeliveryMode;
use wasenderapi::{WebhookListener, WebhookVerifier};

const CHILD_TEST: &str = "child_main";
const ENV_OUT: &str = "WASENDER_SIGNAL_CHILD_OUT";
const ENV_STATS: &str = "WASENDER_SIGNAL_CHILD_STATS";
const ENV_MODE: &str = "WASENDER_SIGNAL_CHILD_MODE";
const ENV_JOURNAL: &str = "WASENDER_SIGNAL_CHILD_JOURNAL";
const ENV_HANDLER_MS: &str = "WASENDER_SIGNAL_CHILD_HANDLER_MS";
const ENV_DRAIN_MS: &str = "WASENDER_SIGNAL_CHILD_DRAIN_MS";
const ENV_BUILDER_OPTION: &str = "WASENDER_SIGNAL_CHILD_BUILDER_OPTION";

fn env_ms(name: &str, default: u64) -> Duration {
    let ms = std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_millis(ms)
}

/// Child mode: returns at once unless started by a parent test below. Runs a
/// listener until a signal stops it, then writes its final counters.
#[test]
fn child_main() {
    let (Some(out), Some(stats_file), Some(mode)) = (
        std::env::var_os(ENV_OUT),
        std::env::var_os(ENV_STATS),
        std::env::var(ENV_MODE).ok(),
    ) else {
        return;
    };
    let handler = AppendIds::open(out, env_ms(ENV_HANDLER_MS, 0));
    let mode = match mode.as_str() {
        "inline" => DeliveryMode::Inline,
        "queued" => DeliveryMode::queued(4096),
        "durable" => {
            let journal = std::env::var_os(ENV_JOURNAL).expect("journal directory");
            DeliveryMode::durable(PathBuf::from(journal)).with_capacity(4096)
        }
        other => panic!("unknown mode {other}"),
    };
    let builder = WebhookListener::builder(WebhookVerifier::with_secret(SECRET), handler)
        .bind("127.0.0.1:0")
        .workers(4)
        .handler_threads(1)
        .idle_timeout(Duration::from_secs(5))
        .delivery_mode(mode)
        .drain_timeout(env_ms(ENV_DRAIN_MS, 5_000));
    let stats = if std::env::var_os(ENV_BUILDER_OPTION).is_some() {
        let listener = builder
            .shutdown_on_signals(true)
            .spawn()
            .expect("child starts");
        publish(listener.local_addr(), listener.stats().recovered);
        listener.join()
    } else {
        let listener = builder.spawn().expect("child starts");
        publish(listener.local_addr(), listener.stats().recovered);
        listener
            .run_until_signal()
            .expect("signal handlers installed")
    };
    let summary = format!(
        "handled={} dropped={} queued={} received={} recovered={}",
        stats.handled, stats.dropped, stats.queued, stats.received, stats.recovered
    );
    std::fs::write(stats_file, summary).expect("write the child's stats");
}

/// One child configuration, on its own directory.
struct Scenario {
    dir: TempDir,
    mode: &'static str,
    drain: Duration,
}

impl Scenario {
    fn new(mode: &'static str, drain: Duration) -> Self {
        Self {
            dir: TempDir::new(&format!("signals-{mode}")),
            mode,
            drain,
        }
    }

    fn spawn(&self, handler_ms: u64) -> ChildListener {
        self.spawn_with(handler_ms, false)
    }

    fn spawn_with(&self, handler_ms: u64, builder_option: bool) -> ChildListener {
        let mut envs = vec![
            (ENV_OUT, self.dir.join("handled.txt").display().to_string()),
            (ENV_STATS, self.dir.join("stats.txt").display().to_string()),
            (ENV_MODE, self.mode.to_owned()),
            (ENV_JOURNAL, self.dir.join("journal").display().to_string()),
            (ENV_HANDLER_MS, handler_ms.to_string()),
            (ENV_DRAIN_MS, self.drain.as_millis().to_string()),
        ];
        if builder_option {
            envs.push((ENV_BUILDER_OPTION, "1".to_owned()));
        }
        let _ = std::fs::remove_file(self.dir.join("stats.txt"));
        let mut child = spawn_child(CHILD_TEST, self.dir.path(), &envs, None);
        child.wait_for_signal_handlers();
        child
    }

    /// How often each id was handled, from the child's output file.
    fn handled(&self) -> HashMap<String, u32> {
        let text = std::fs::read_to_string(self.dir.join("handled.txt")).unwrap_or_default();
        let mut counts = HashMap::new();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            *counts.entry(line.trim_end().to_owned()).or_insert(0) += 1;
        }
        counts
    }

    /// The child's final counters, by name.
    fn stats(&self) -> HashMap<String, u64> {
        let text = std::fs::read_to_string(self.dir.join("stats.txt")).expect("child stats");
        text.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.parse().expect("a number")))
            .collect()
    }

    /// The ids in `acked` that are not in the output file.
    /// Enough events got through (at least 20), and every one answered 200 was handled.
    fn assert_every_200_handled(&self, acked: &[String]) {
        assert!(
            acked.len() >= 20,
            "too few events got through: {}",
            acked.len()
        );
        let missing = self.missing(acked);
        assert!(
            missing.is_empty(),
            "answered 200 but not handled: {missing:?}"
        );
    }

    fn missing<'a>(&self, acked: &'a [String]) -> Vec<&'a String> {
        let handled = self.handled();
        acked
            .iter()
            .filter(|id| !handled.contains_key(*id))
            .collect()
    }
}

/// `senders` threads post signed events on keep-alive connections until
/// `stop` is set or the listener stops taking connections; each returns the
/// ids answered 200.
fn load(
    addr: SocketAddr,
    tag: &str,
    senders: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<Vec<String>>> {
    (0..senders)
        .map(|t| {
            let stop = Arc::clone(stop);
            let tag = format!("{tag}-t{t}");
            thread::spawn(move || {
                let mut acked = Vec::new();
                let mut n = 0;
                // A closed connection is opened again until the listener refuses.
                while let Ok(mut conn) = RawConn::open(addr) {
                    while !stop.load(Ordering::Relaxed) {
                        let id = format!("{tag}-{n}");
                        n += 1;
                        match conn.post_signed(&event(&id, "x")) {
                            Ok(answer) if answer.status == 200 => acked.push(id),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                acked
            })
        })
        .collect()
}

/// Puts `child` under load for `load_time`, sends `signal`, and returns the
/// acknowledged ids and how long the child took to exit after the signal.
fn signal_under_load(
    child: &mut ChildListener,
    tag: &str,
    load_time: Duration,
    signal: &str,
    exit_within: Duration,
) -> (Vec<String>, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let senders = load(child.addr, tag, 4, &stop);
    thread::sleep(load_time);
    child.signal(signal);
    let exit = child.wait_exit(exit_within);
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = senders
        .into_iter()
        .flat_map(|s| s.join().expect("sender thread"))
        .collect();
    let (status, took) = exit
        .unwrap_or_else(|| panic!("the child did not exit within {exit_within:?} of SIG{signal}"));
    assert!(status.success(), "the child exited with {status}");
    (acked, took)
}

#[test]
fn sigterm_under_load_in_durable_mode_exits_0_and_a_restart_hands_over_the_rest() {
    let scenario = Scenario::new("durable", Duration::from_millis(800));
    // A slow handler behind one thread: a backlog builds up that the drain cannot finish.
    let mut child = scenario.spawn(5);
    let (acked, took) = signal_under_load(
        &mut child,
        "durable",
        Duration::from_millis(500),
        "TERM",
        scenario.drain + Duration::from_secs(2),
    );
    assert!(
        acked.len() >= 50,
        "too few events got through: {}",
        acked.len()
    );
    let first = scenario.stats();
    let handled_first = scenario.handled().len();
    let left = scenario.missing(&acked).len();

    // A new child on the same journal replays what the drain left.
    let mut child = scenario.spawn(0);
    let recovered = child.recovered;
    let caught_up = wait_until(Duration::from_secs(10), || {
        scenario.missing(&acked).is_empty()
    });
    child.signal("TERM");
    let (status, _) = child
        .wait_exit(Duration::from_secs(5))
        .expect("second child exits");
    assert!(status.success(), "the second child exited with {status}");
    let missing = scenario.missing(&acked);
    assert!(
        caught_up && missing.is_empty(),
        "{} of {} acknowledged events never handled, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        recovered >= left as u64,
        "the restart replayed {recovered} events but {left} acknowledged ones were unhandled"
    );
    eprintln!(
        "durable SIGTERM: exit 0 after {took:?} (drain timeout {:?}); {} acknowledged, {handled_first} \
         handled before the stop, {left} left in the journal, {recovered} replayed by the restart \
         (first child: {first:?})",
        scenario.drain,
        acked.len()
    );
}

#[test]
fn sigterm_under_load_in_inline_mode_exits_0_having_handled_every_200() {
    let scenario = Scenario::new("inline", Duration::from_secs(3));
    let mut child = scenario.spawn(2);
    let (acked, took) = signal_under_load(
        &mut child,
        "inline",
        Duration::from_millis(300),
        "TERM",
        scenario.drain + Duration::from_secs(2),
    );
    scenario.assert_every_200_handled(&acked);
    let stats = scenario.stats();
    assert_eq!(stats["handled"], acked.len() as u64, "{stats:?}");
    eprintln!(
        "inline SIGTERM: exit 0 after {took:?}; {} acknowledged and handled",
        acked.len()
    );
}

#[test]
fn sigterm_under_load_in_memory_mode_drains_the_queue_before_exiting() {
    // A backlog of about a second of work, well within the drain timeout.
    let scenario = Scenario::new("queued", Duration::from_secs(10));
    let mut child = scenario.spawn(1);
    let (acked, took) = signal_under_load(
        &mut child,
        "queued",
        Duration::from_millis(100),
        "TERM",
        scenario.drain + Duration::from_secs(2),
    );
    scenario.assert_every_200_handled(&acked);
    let stats = scenario.stats();
    assert_eq!((stats["dropped"], stats["queued"]), (0, acked.len() as u64));
    eprintln!(
        "in-memory SIGTERM: exit 0 after {took:?}; {} acknowledged and handled",
        acked.len()
    );
}

/// Posts `n` events one after the other; all must be acknowledged.
fn post_events(addr: SocketAddr, tag: &str, n: usize) -> Vec<String> {
    let mut conn = RawConn::open(addr).expect("connect");
    (0..n)
        .map(|i| {
            let id = format!("{tag}-{i}");
            let answer = conn.post_signed(&event(&id, "x")).expect("an answer");
            assert_eq!(answer.status, 200, "{answer:?}");
            id
        })
        .collect()
}

/// Sends SIGTERM, checks the child is still draining a little later, sends
/// it again, and returns how long the child took to exit after the second.
fn two_sigterms(child: &mut ChildListener) -> Duration {
    child.signal("TERM");
    thread::sleep(Duration::from_millis(300));
    assert!(child.running(), "the child should still be draining");
    child.signal("TERM");
    let (status, took) = child
        .wait_exit(Duration::from_secs(5))
        .expect("the child exits after the second signal");
    assert!(status.success(), "the child exited with {status}");
    took
}

#[test]
fn a_second_sigterm_stops_at_once_and_durable_events_wait_in_the_journal() {
    let scenario = Scenario::new("durable", Duration::from_secs(30));
    let mut child = scenario.spawn(200);
    let acked = post_events(child.addr, "slow", 10);
    let started = Instant::now();
    let took = two_sigterms(&mut child);
    assert!(
        took < Duration::from_millis(1500),
        "{took:?} after the second SIGTERM"
    );
    let left = scenario.missing(&acked).len();
    assert!(left > 0, "a 200 ms handler cannot have finished 10 events");

    let child = scenario.spawn(0);
    assert_eq!(
        child.recovered, left as u64,
        "every unhandled event is replayed"
    );
    assert!(
        wait_until(Duration::from_secs(10), || scenario
            .missing(&acked)
            .is_empty()),
        "the restart hands over every event left: {:?}",
        scenario.missing(&acked)
    );
    eprintln!(
        "durable, two SIGTERMs: exit 0 {took:?} after the second ({:?} after the first, drain \
         timeout {:?}); {left} of 10 events left in the journal and replayed",
        started.elapsed(),
        scenario.drain
    );
}

#[test]
fn a_second_sigterm_drops_the_in_memory_queue_and_counts_it() {
    let scenario = Scenario::new("queued", Duration::from_secs(30));
    let mut child = scenario.spawn(200);
    let acked = post_events(child.addr, "mem", 10);
    let took = two_sigterms(&mut child);
    assert!(
        took < Duration::from_millis(1500),
        "{took:?} after the second SIGTERM"
    );
    let stats = scenario.stats();
    let handled = scenario.handled().len() as u64;
    assert!(stats["dropped"] > 0, "{stats:?}");
    assert_eq!(stats["handled"], handled, "{stats:?}");
    assert_eq!(
        stats["handled"] + stats["dropped"],
        acked.len() as u64,
        "every acknowledged event is handled or counted as dropped: {stats:?}"
    );
}

#[test]
fn sigint_stops_a_listener_built_with_shutdown_on_signals() {
    let scenario = Scenario::new("inline", Duration::from_secs(5));
    let mut child = scenario.spawn_with(0, true);
    let acked = post_events(child.addr, "int", 3);
    child.signal("INT");
    let (status, took) = child
        .wait_exit(Duration::from_secs(5))
        .expect("the child exits on SIGINT");
    assert!(status.success(), "the child exited with {status}");
    assert!(scenario.missing(&acked).is_empty());
    assert_eq!(scenario.stats()["handled"], 3);
    eprintln!("inline, SIGINT with shutdown_on_signals: exit 0 after {took:?}");
}
