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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wasenderapi::listener::DeliveryMode;
use wasenderapi::{WebhookListener, WebhookVerifier};

use crate::support::handlers::line_counts;
use crate::support::http::refuses_connections;
use crate::support::process::{child_command, say_listening, test_name, ChildListener};
use crate::support::{event, heavy, wait_for, wait_until, AppendIds, Conn, TempDir, SECRET};

/// How long the load may take to build up, and a child to show it drains.
const WAIT: Duration = Duration::from_secs(15);
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
        say_listening(listener.local_addr(), listener.stats().recovered);
        listener.join()
    } else {
        let listener = builder.spawn().expect("child starts");
        say_listening(listener.local_addr(), listener.stats().recovered);
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
        let mut command = child_command(&test_name(module_path!(), "child_main"));
        command
            .env(ENV_OUT, self.dir.join("handled.txt"))
            .env(ENV_STATS, self.dir.join("stats.txt"))
            .env(ENV_MODE, self.mode)
            .env(ENV_JOURNAL, self.dir.join("journal"))
            .env(ENV_HANDLER_MS, handler_ms.to_string())
            .env(ENV_DRAIN_MS, self.drain.as_millis().to_string());
        if builder_option {
            command.env(ENV_BUILDER_OPTION, "1");
        }
        let _ = std::fs::remove_file(self.dir.join("stats.txt"));
        let mut child = ChildListener::spawn(&format!("the {} child", self.mode), command);
        child.wait_for_signal_handlers();
        child
    }

    /// How often each id was handled, from the child's output file.
    fn handled(&self) -> HashMap<String, u32> {
        line_counts(&self.dir.join("handled.txt"))
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
/// `stop` is set or the listener stops taking connections, counting the
/// answers 200 in `acked_so_far`; each returns the ids answered 200.
fn load(
    addr: SocketAddr,
    tag: &str,
    senders: usize,
    stop: &Arc<AtomicBool>,
    acked_so_far: &Arc<AtomicUsize>,
) -> Vec<thread::JoinHandle<Vec<String>>> {
    (0..senders)
        .map(|t| {
            let stop = Arc::clone(stop);
            let acked_so_far = Arc::clone(acked_so_far);
            let tag = format!("{tag}-t{t}");
            thread::spawn(move || {
                let mut acked = Vec::new();
                let mut n = 0;
                // A closed connection is opened again until the listener refuses.
                while let Ok(mut conn) = Conn::try_open(addr) {
                    while !stop.load(Ordering::Relaxed) {
                        let id = format!("{tag}-{n}");
                        n += 1;
                        match conn.try_post_signed(&event(&id, "x")) {
                            Ok(answer) if answer.status == 200 => {
                                acked.push(id);
                                acked_so_far.fetch_add(1, Ordering::Relaxed);
                            }
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

/// Puts `child` under load until `acked` events were answered 200, sends
/// `signal` (the load goes on), and returns the acknowledged ids and how
/// long the child took to exit after the signal.
fn signal_under_load(
    child: &mut ChildListener,
    tag: &str,
    acked: usize,
    signal: &str,
    exit_within: Duration,
) -> (Vec<String>, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked_so_far = Arc::new(AtomicUsize::new(0));
    let senders = load(child.addr, tag, 4, &stop, &acked_so_far);
    let loaded = wait_until(WAIT, || acked_so_far.load(Ordering::Relaxed) >= acked);
    if !loaded {
        stop.store(true, Ordering::Relaxed);
    }
    assert!(
        loaded,
        "only {} of {acked} events answered 200 within {WAIT:?}",
        acked_so_far.load(Ordering::Relaxed)
    );
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
    let _heavy = heavy::shared();
    let scenario = Scenario::new("durable", Duration::from_millis(800));
    // A slow handler behind one thread: a backlog builds up that the drain cannot finish.
    let mut child = scenario.spawn(5);
    let (acked, took) = signal_under_load(
        &mut child,
        "durable",
        300,
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
    let _heavy = heavy::shared();
    let scenario = Scenario::new("inline", Duration::from_secs(3));
    let mut child = scenario.spawn(2);
    let (acked, took) = signal_under_load(
        &mut child,
        "inline",
        100,
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
    let _heavy = heavy::shared();
    // A backlog of up to half a second of work, well within the drain timeout.
    let scenario = Scenario::new("queued", Duration::from_secs(10));
    let mut child = scenario.spawn(1);
    let (acked, took) = signal_under_load(
        &mut child,
        "queued",
        500,
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
    let mut conn = Conn::open(addr);
    (0..n)
        .map(|i| {
            let id = format!("{tag}-{i}");
            let answer = conn.post_signed(&event(&id, "x"));
            assert_eq!(answer.status, 200, "{answer:?}");
            id
        })
        .collect()
}

/// Sends SIGTERM, checks that the child drains (it refuses new connections,
/// then handles one more event) and is still running, sends it again, and
/// returns how long the child took to exit after the second.
fn two_sigterms(scenario: &Scenario, child: &mut ChildListener) -> Duration {
    child.signal("TERM");
    let addr = child.addr;
    wait_for("the child to stop taking connections", WAIT, || {
        refuses_connections(addr)
    });
    let handled = scenario.handled().len();
    wait_for("the child to handle an event while draining", WAIT, || {
        scenario.handled().len() > handled
    });
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
    let _heavy = heavy::shared();
    let scenario = Scenario::new("durable", Duration::from_secs(30));
    let mut child = scenario.spawn(200);
    let acked = post_events(child.addr, "slow", 10);
    let started = Instant::now();
    let took = two_sigterms(&scenario, &mut child);
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
    let _heavy = heavy::shared();
    let scenario = Scenario::new("queued", Duration::from_secs(30));
    let mut child = scenario.spawn(200);
    let acked = post_events(child.addr, "mem", 10);
    let took = two_sigterms(&scenario, &mut child);
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
    let _heavy = heavy::shared();
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
