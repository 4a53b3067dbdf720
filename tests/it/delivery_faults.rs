//! Crash tests: a child process (this test binary, in "child mode") runs the
//! listener in durable mode while the parent streams signed events to it over
//! loopback and SIGKILLs it at random moments, several rounds in a row.
//!
//! What is checked, exactly:
//! - **at-least-once**: every event that was answered 200 is handled (its id
//!   is in the child's output file) once the last incarnation has caught up;
//! - **with dedupe**: the parent also re-sends every acknowledged event, and
//!   re-sends a batch of old ones after each restart; an event is handled more
//!   than once only when a kill caught it between its handler returning and
//!   its done marker being written, so the number of events handled twice is
//!   at most `kills × handler threads`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use wasenderapi::listener::DeliveryMode;
use wasenderapi::{WebhookListener, WebhookVerifier};

use crate::support::handlers::line_counts;
use crate::support::process::{
    child_command, say_listening, test_name, wait_to_be_killed, ChildListener,
};
use crate::support::{event, heavy, wait_until, AppendIds, Conn, TempDir, SECRET};

const ENV_JOURNAL: &str = "WASENDER_FAULT_CHILD_JOURNAL";
const ENV_OUT: &str = "WASENDER_FAULT_CHILD_OUT";
const ENV_DEDUPE: &str = "WASENDER_FAULT_CHILD_DEDUPE";
const CHILD_HANDLER_THREADS: usize = 2;

/// How long the child's handler works on each event.
const CHILD_HANDLER_TIME: Duration = Duration::from_millis(2);

/// Child mode: returns at once unless started by a parent test below.
#[test]
fn child_main() {
    let (Some(journal), Some(out)) = (std::env::var_os(ENV_JOURNAL), std::env::var_os(ENV_OUT))
    else {
        return;
    };
    let verifier = WebhookVerifier::with_secret(SECRET);
    let handler = AppendIds::open(out, CHILD_HANDLER_TIME);
    let mut builder = WebhookListener::builder(verifier, handler)
        .bind("127.0.0.1:0")
        .workers(4)
        .handler_threads(CHILD_HANDLER_THREADS)
        .delivery_mode(DeliveryMode::durable(PathBuf::from(journal)).with_capacity(4096));
    if std::env::var_os(ENV_DEDUPE).is_some() {
        builder = builder.dedupe(100_000);
    }
    let listener = builder.spawn().expect("child listener starts");
    say_listening(listener.local_addr(), listener.stats().recovered);
    wait_to_be_killed();
}

/// A cheap pseudo-random sequence (xorshift), seeded from the clock.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self(nanos | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Scenario {
    dir: TempDir,
    dedupe: bool,
}

impl Scenario {
    /// Starts a child (its address, and how many events it replays, with it).
    fn spawn_child(&self) -> ChildListener {
        let mut command = child_command(&test_name(module_path!(), "child_main"));
        command
            .env(ENV_JOURNAL, self.dir.join("journal"))
            .env(ENV_OUT, self.dir.join("handled.txt"));
        if self.dedupe {
            command.env(ENV_DEDUPE, "1");
        }
        ChildListener::spawn("the durable child", command)
    }

    /// How often each id was handled (a line without its newline was cut
    /// by the kill before the handler returned).
    fn handled(&self) -> HashMap<String, u32> {
        line_counts(&self.dir.join("handled.txt"))
    }
}

/// Streams events from `senders` threads until `stop` is set or the child dies;
/// returns the ids answered 200. With `resend`, each acknowledged event is sent
/// again at once (a duplicate the listener must suppress).
fn stream(
    addr: SocketAddr,
    round: usize,
    senders: usize,
    resend: bool,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<Vec<String>>> {
    (0..senders)
        .map(|t| {
            let stop = Arc::clone(stop);
            thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(mut conn) = Conn::try_open(addr) else {
                    return acked;
                };
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("r{round}-t{t}-{n}");
                    let body = event(&id, "x");
                    match conn.try_post_signed(&body) {
                        Ok(answer) if answer.status == 200 => acked.push(id),
                        Ok(_) => continue,
                        Err(_) => break,
                    }
                    if resend && conn.try_post_signed(&body).is_err() {
                        break;
                    }
                }
                acked
            })
        })
        .collect()
}

fn resend_old(addr: SocketAddr, ids: &[String]) {
    let Ok(mut conn) = Conn::try_open(addr) else {
        return;
    };
    for id in ids {
        let answer = conn.post_signed(&event(id, "x"));
        assert_eq!(answer.status, 200);
        assert!(
            answer.is_duplicate(),
            "{id} was acknowledged before, so it is a duplicate: {answer:?}"
        );
    }
}

fn run(dedupe: bool, rounds: usize) {
    let scenario = Scenario {
        dir: TempDir::new(if dedupe { "kill-dedupe" } else { "kill" }),
        dedupe,
    };
    let mut rng = Rng::new();
    let mut acked: Vec<String> = Vec::new();
    let mut replayed = 0;
    for round in 0..rounds {
        let mut child = scenario.spawn_child();
        let addr = child.addr;
        replayed += child.recovered;
        if dedupe && !acked.is_empty() {
            let start = acked.len().saturating_sub(20);
            resend_old(addr, &acked[start..]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let senders = stream(addr, round, 2, dedupe, &stop);
        // The kill comes at a random moment of the stream: the sleep is the input.
        thread::sleep(Duration::from_millis(60 + rng.below(300)));
        child.kill();
        stop.store(true, Ordering::Relaxed);
        for sender in senders {
            acked.extend(sender.join().expect("sender thread"));
        }
    }
    assert!(
        acked.len() >= 20 * rounds,
        "too few events got through: {}",
        acked.len()
    );

    // A last incarnation catches up on what the journal still holds.
    let mut child = scenario.spawn_child();
    let addr = child.addr;
    replayed += child.recovered;
    let caught_up = wait_until(Duration::from_secs(15), || {
        let handled = scenario.handled();
        acked.iter().all(|id| handled.contains_key(id))
    });
    if dedupe {
        let start = acked.len().saturating_sub(50);
        resend_old(addr, &acked[start..]);
    }
    child.kill();

    let handled = scenario.handled();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !handled.contains_key(*id))
        .collect();
    assert!(
        caught_up && missing.is_empty(),
        "{} of {} acknowledged events never handled, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let acked_set: HashSet<&String> = acked.iter().collect();
    let twice: Vec<(&String, &u32)> = handled.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "kill test (dedupe {dedupe}): {rounds} kills, {} acknowledged, {replayed} replayed at restarts, \
         {} handled, {} handled more than once",
        acked_set.len(),
        handled.len(),
        twice.len()
    );
    if dedupe {
        // Kills = rounds, plus the final one (which only ever hits idle handlers, but counts).
        let bound = (rounds + 1) * CHILD_HANDLER_THREADS;
        assert!(
            twice.len() <= bound,
            "{} events handled more than once (at most {bound} allowed: those caught by a kill \
             between handler and done marker): {:?}",
            twice.len(),
            &twice[..twice.len().min(10)]
        );
    }
}

#[test]
fn sigkill_never_loses_an_acknowledged_event() {
    let _heavy = heavy::shared();
    run(false, 4);
}

#[test]
fn sigkill_with_dedupe_handles_each_event_once_outside_the_crash_window() {
    let _heavy = heavy::shared();
    run(true, 4);
}
