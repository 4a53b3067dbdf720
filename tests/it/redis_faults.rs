//! Crash tests for Redis delivery, with real processes:
//! - a worker in a child process (this test binary in "child mode") is
//!   SIGKILLed mid-handling; another worker takes its pending entries over
//!   and every event is handled;
//! - the crash loop: a child worker whose handler aborts the process on one
//!   event, restarted each time it dies: only that event is dead-lettered
//!   (after as many handler calls as attempts), every other is handled, and
//!   no consumer is left in the group;
//! - `redis-server` (`appendfsync always`) is SIGKILLed under load and
//!   restarted; every event that was answered 200 is handled.

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wasenderapi::event::MessagesData;
use wasenderapi::handler::{HandlerRetryPolicy, LastCall};
use wasenderapi::redis::{RedisAppender, RedisDeadLetters, RedisOptions, RedisWorker};
use wasenderapi::{WebhookEvent, WebhookHandler};

use crate::support::handlers::complete_lines;
use crate::support::process::{
    child_command, say, test_name, wait_for_stdin_eof, wait_to_be_killed, ChildProcess,
};
use crate::support::redis::{
    consumers, fast_retries, listener, wait_handled, worker, Persistence, RedisServer,
};
use crate::support::{
    event, heavy, post, wait_for, wait_until, AppendIds, Conn, Recorder, TempDir,
};

/// Child mode: `killed` (a worker the parent SIGKILLs) or `crash-loop` (a
/// worker whose handler aborts the process on one event).
const ENV_ROLE: &str = "WASENDER_REDIS_CHILD_ROLE";
const ENV_URL: &str = "WASENDER_REDIS_CHILD_URL";
/// The child's output: a file (`killed`) or a directory (`crash-loop`).
const ENV_OUT: &str = "WASENDER_REDIS_CHILD_OUT";
/// The crash-loop child's consumer name.
const ENV_NAME: &str = "WASENDER_REDIS_CHILD_NAME";
/// How long the child's handler works on each event.
const CHILD_HANDLER_TIME: Duration = Duration::from_millis(40);
/// The message id whose handler call aborts the crash-loop child.
const CRASHING_ID: &str = "crash";
/// How long the load may take to reach each step of the Redis kill test.
const LOAD_WAIT: Duration = Duration::from_secs(15);

/// Fault-test connection options.
fn fault_options(url: String) -> RedisOptions {
    RedisOptions::new(url)
        .connect_timeout(Duration::from_millis(300))
        .command_timeout(Duration::from_millis(500))
}

/// Child mode: returns at once unless started by a parent test below.
#[test]
fn child_worker_main() {
    let (Ok(role), Ok(url), Some(out)) = (
        std::env::var(ENV_ROLE),
        std::env::var(ENV_URL),
        std::env::var_os(ENV_OUT),
    ) else {
        return;
    };
    match role.as_str() {
        "killed" => {
            // A short claim time, so that takeovers happen quickly.
            let handler = AppendIds::open(out, CHILD_HANDLER_TIME);
            let _worker = RedisWorker::builder(fault_options(url), handler)
                .handler_threads(2)
                .consumer_name("child")
                .block_time(Duration::from_millis(100))
                .claim_idle(Duration::from_millis(600))
                .handler_retries(fast_retries())
                .spawn()
                .expect("child worker starts");
            wait_to_be_killed();
        }
        "crash-loop" => {
            let name = std::env::var(ENV_NAME).expect("the child's consumer name");
            let worker = RedisWorker::builder(fault_options(url), CrashOn::open(out.into()))
                .handler_threads(4)
                .consumer_name(name)
                // The default attempts (5); backoffs short enough for the claim time.
                .handler_retries(
                    HandlerRetryPolicy::default().max_backoff(Duration::from_millis(200)),
                )
                .block_time(Duration::from_millis(100))
                .claim_idle(Duration::from_secs(1))
                .forget_idle_consumers(Duration::from_millis(300))
                .drain_timeout(Duration::from_secs(5))
                .spawn()
                .expect("child worker starts");
            say("started");
            // Runs until it aborts, or until the parent closes our stdin.
            wait_for_stdin_eof();
            let stats = worker.shutdown();
            say(&format!("stats {stats:?}"));
        }
        other => panic!("unknown child role {other:?}"),
    }
}

/// The crash-loop child's handler: notes each call as it begins (`began`
/// in its directory), aborts the process on [`CRASHING_ID`] (as a segfault
/// or the OOM killer would end it: no unwinding, no cleanup), else works a
/// little and notes the event handled (`handled`). Lines are single
/// `O_APPEND` writes, so they survive the abort.
struct CrashOn {
    began: Mutex<std::fs::File>,
    handled: Mutex<std::fs::File>,
}

impl CrashOn {
    fn open(dir: PathBuf) -> Self {
        let append = |name: &str| {
            Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(name))
                    .expect("the child's output file opens"),
            )
        };
        Self {
            began: append("began"),
            handled: append("handled"),
        }
    }
}

impl WebhookHandler for CrashOn {
    type Error = io::Error;

    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> io::Result<()> {
        for m in event.messages() {
            let id = m.id().unwrap_or("?");
            let line = format!("{id}\n");
            self.began.lock().unwrap().write_all(line.as_bytes())?;
            if id == CRASHING_ID {
                std::process::abort();
            }
            // The work of a handler (slow on purpose).
            thread::sleep(Duration::from_millis(20));
            self.handled.lock().unwrap().write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

#[test]
fn a_killed_workers_pending_entries_are_taken_over_and_handled() {
    let _heavy = heavy::shared();
    let server = RedisServer::start();
    let options = fault_options(server.url());
    let listener = listener(options.clone());
    let ids: Vec<String> = (0..40).map(|i| format!("k-{i}")).collect();
    let mut conn = Conn::open(listener.local_addr());
    for id in &ids {
        assert_eq!(conn.post_signed(&event(id, "hi")).status, 200);
    }

    let dir = TempDir::new("redis-child");
    let out = dir.join("handled.txt");
    let mut command = child_command(&test_name(module_path!(), "child_worker_main"));
    command
        .env(ENV_ROLE, "killed")
        .env(ENV_URL, server.url())
        .env(ENV_OUT, &out);
    let mut child = ChildProcess::spawn("the killed worker", command);
    let started = wait_until(Duration::from_secs(15), || complete_lines(&out).len() >= 6);
    let pending_on_child = || {
        let summary: redis::streams::StreamPendingReply =
            server.query(&["XPENDING", &options.events_key(), "wasender"]);
        match summary {
            redis::streams::StreamPendingReply::Data(data) => data
                .consumers
                .iter()
                .any(|c| c.name == "child" && c.pending > 0),
            _ => false,
        }
    };
    // Mid-handling: the child holds entries it has not acknowledged.
    let mid = pending_on_child();
    child.kill();
    assert!(started, "the child worker handled nothing");
    assert!(mid, "the child held no pending entry when it was killed");
    let by_child: HashSet<String> = complete_lines(&out).into_iter().collect();
    assert!(
        by_child.len() < ids.len(),
        "the child finished before the kill"
    );

    let recorder = Arc::new(Recorder::default());
    let survivor = worker(options.clone(), &recorder, "survivor");
    let all_handled = wait_until(Duration::from_secs(15), || {
        let handled: HashSet<String> = recorder.handled().into_iter().collect();
        ids.iter()
            .all(|id| handled.contains(id) || by_child.contains(id))
    });
    assert!(all_handled, "some events were never handled");
    let stats = survivor.shutdown();
    assert!(
        stats.claimed >= 1,
        "the survivor took nothing over: {stats:?}"
    );
    assert_eq!(server.pending(&options.events_key(), "wasender"), 0);
    eprintln!(
        "worker kill: child handled {}, survivor handled {} (claimed {})",
        by_child.len(),
        stats.handled,
        stats.claimed
    );
    drop(listener);
}

/// The crash loop (issue 14): an event whose handler aborts the process,
/// 20 events queued, 4 handler threads, the default attempts, and the worker
/// restarted whenever it dies. Attempts count handler calls that began, and
/// an entry whose call never answered runs alone: so the crashing event is
/// dead-lettered after 5 calls (5 crashes), and only it; the events that ran
/// beside it the first time are handled; no event that no handler began is
/// dead-lettered; and the dead workers, like the last one, leave the group.
#[test]
fn a_crash_loop_dead_letters_only_the_crashing_event() {
    let _heavy = heavy::shared();
    const EVENTS: usize = 20;
    const MAX_RESTARTS: usize = 12;
    let server = RedisServer::start();
    let options = fault_options(server.url());
    let key = options.events_key();
    let appender = RedisAppender::connect(options.clone()).expect("an appender");
    let ids: Vec<String> = (0..EVENTS)
        .map(|i| {
            if i == 5 {
                CRASHING_ID.to_owned()
            } else {
                format!("ev-{i:02}")
            }
        })
        .collect();
    for id in &ids {
        let body = event(id, "hi");
        let parsed = wasenderapi::WasenderWebhookEvent::from_slice(&body).expect("an event");
        appender.append(&parsed, &body).expect("appended");
    }
    let dir = TempDir::new("crash-loop");
    let others: Vec<&String> = ids.iter().filter(|id| *id != CRASHING_ID).collect();
    let mut dead = RedisDeadLetters::connect(&options).expect("dead-letter tools");
    let all_done = |dead: &mut RedisDeadLetters| {
        let handled: HashSet<String> = complete_lines(&dir.join("handled")).into_iter().collect();
        dead.count().unwrap_or(0) >= 1 && others.iter().all(|id| handled.contains(*id))
    };

    let started = Instant::now();
    let mut crashes = 0;
    let mut names = Vec::new();
    let (live, live_name) = loop {
        let name = format!("crash-w{}", names.len() + 1);
        names.push(name.clone());
        // Its stdin piped: closing it stops the worker gracefully.
        let mut command = child_command(&test_name(module_path!(), "child_worker_main"));
        command
            .env(ENV_ROLE, "crash-loop")
            .env(ENV_URL, server.url())
            .env(ENV_OUT, dir.path())
            .env(ENV_NAME, &name);
        let mut child = ChildProcess::spawn(&name, command);
        let mut exit = None;
        let finished = wait_until(Duration::from_secs(30), || {
            exit = child.exited();
            exit.is_some() || all_done(&mut dead)
        });
        assert!(finished, "{name} neither died nor finished the work");
        match exit {
            None => break (child, name),
            Some(status) => {
                assert!(!status.success(), "{name} exited on its own: {status}");
                crashes += 1;
                assert!(
                    crashes <= MAX_RESTARTS,
                    "the worker keeps dying: {crashes} crashes"
                );
            }
        }
    };

    // Every dead worker is removed from the group once its entries were
    // taken over; then the last one leaves as it stops.
    assert!(
        wait_until(Duration::from_secs(10), || consumers(
            &server, &key, "wasender"
        )
        .iter()
        .all(|(name, _)| *name == live_name)),
        "dead workers left in the group: {:?}",
        consumers(&server, &key, "wasender")
    );
    let stopped = format!("{live_name} stopped {}", live.stop());
    let left = consumers(&server, &key, "wasender");
    assert!(left.is_empty(), "consumers left after the run: {left:?}");
    assert_eq!(server.pending(&key, "wasender"), 0);
    assert_eq!(
        server.query::<u64>(&["HLEN", &options.attempts_key()]),
        0,
        "attempt records left"
    );

    let letters = dead.list(None, 100).expect("list");
    let began: HashSet<String> = complete_lines(&dir.join("began")).into_iter().collect();
    for letter in &letters {
        let id = letter.event_id().unwrap_or_default();
        assert!(
            began.contains(&id),
            "{id} was dead-lettered but no handler began it: {letter}"
        );
    }
    assert_eq!(
        letters.len(),
        1,
        "only the crashing event is dead-lettered: {letters:?}"
    );
    let letter = &letters[0];
    assert_eq!(letter.event_id().as_deref(), Some(CRASHING_ID));
    assert_eq!((letter.attempts, letter.last_call), (5, LastCall::NoAnswer));
    assert!(
        letter
            .to_string()
            .starts_with("5 handler calls began; the last ended without an answer"),
        "{letter}"
    );
    assert_eq!(
        crashes, 5,
        "each of the 5 calls of the crashing event killed a worker"
    );
    let crash_calls = complete_lines(&dir.join("began"))
        .iter()
        .filter(|id| *id == CRASHING_ID)
        .count();
    assert_eq!(crash_calls, 5, "handler calls of the crashing event");
    let handled: HashSet<String> = complete_lines(&dir.join("handled")).into_iter().collect();
    let missing: Vec<&&String> = others.iter().filter(|id| !handled.contains(**id)).collect();
    assert!(missing.is_empty(), "events never handled: {missing:?}");
    // An event that ran beside the crashing one is run once more, alone; no
    // other event began more than twice.
    let all_began = complete_lines(&dir.join("began"));
    for id in &others {
        let calls = all_began.iter().filter(|b| b == id).count();
        assert!(calls <= 2, "{id} began {calls} times");
    }
    eprintln!(
        "crash loop: {EVENTS} events, {crashes} crashes over {} worker runs, 1 dead letter \
         ({letter}), {} handler calls began in all, {stopped}, {:.2?}",
        names.len(),
        complete_lines(&dir.join("began")).len(),
        started.elapsed()
    );
}

/// Sets its flag when dropped: the senders stop even when a check panics.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Streams events to `addr` from `senders` threads until `stop` is set,
/// reconnecting after errors, counting the answers 200 in `acked_so_far`
/// and the 503s in `unavailable`; returns the ids answered 200.
fn stream(
    addr: SocketAddr,
    senders: usize,
    stop: &Arc<AtomicBool>,
    acked_so_far: &Arc<AtomicUsize>,
    unavailable: &Arc<AtomicU64>,
) -> Vec<thread::JoinHandle<Vec<String>>> {
    (0..senders)
        .map(|t| {
            let stop = Arc::clone(stop);
            let acked_so_far = Arc::clone(acked_so_far);
            let unavailable = Arc::clone(unavailable);
            thread::spawn(move || {
                let mut acked = Vec::new();
                let mut conn = None;
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let open = match conn.take() {
                        Some(open) => Ok(open),
                        None => Conn::try_open(addr),
                    };
                    // The senders' pace after a failure (the input, not a wait).
                    let Ok(mut open) = open else {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let id = format!("load-t{t}-{n}");
                    match open.try_post_signed(&event(&id, "x")) {
                        Ok(answer) if answer.status == 200 => {
                            acked.push(id);
                            acked_so_far.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(answer) if answer.status == 503 => {
                            unavailable.fetch_add(1, Ordering::Relaxed);
                            thread::sleep(Duration::from_millis(2));
                        }
                        Ok(answer) => panic!("unexpected answer {answer:?}"),
                        Err(_) => continue,
                    }
                    conn = Some(open);
                }
                acked
            })
        })
        .collect()
}

#[test]
fn sigkill_of_redis_under_load_loses_no_acknowledged_event() {
    let _heavy = heavy::shared();
    let mut server = RedisServer::start_with(Persistence::Always);
    let options = fault_options(server.url());
    let listener = listener(options.clone());
    let recorder = Arc::new(Recorder::default());
    let worker = worker(options.clone(), &recorder, "w1");

    let stop = Arc::new(AtomicBool::new(false));
    let acked_so_far = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicU64::new(0));
    let senders = stream(listener.local_addr(), 3, &stop, &acked_so_far, &unavailable);
    let _stop_senders = StopOnDrop(Arc::clone(&stop));
    // Killed under load, once events are acknowledged; restarted once the
    // listener refused some while it was down; stopped once events are
    // acknowledged again.
    let acked_now = || acked_so_far.load(Ordering::Relaxed);
    wait_for("30 events acknowledged", LOAD_WAIT, || acked_now() >= 30);
    server.kill();
    wait_for("a request refused while Redis is down", LOAD_WAIT, || {
        unavailable.load(Ordering::Relaxed) > 0
    });
    let refused_while_down = unavailable.load(Ordering::Relaxed);
    server.restart();
    let before_restart = acked_now();
    wait_for(
        "30 more events acknowledged after the restart",
        LOAD_WAIT,
        || acked_now() >= before_restart + 30,
    );
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for sender in senders {
        acked.extend(sender.join().expect("sender"));
    }
    assert!(
        refused_while_down > 0,
        "no request was refused while Redis was down"
    );
    assert!(
        acked.len() >= 50,
        "too few events got through: {}",
        acked.len()
    );

    let started = Instant::now();
    wait_handled(&recorder, &acked, Duration::from_secs(20));
    eprintln!(
        "Redis kill: {} acknowledged, {refused_while_down} refused while down, all handled {:?} \
         after the load stopped",
        acked.len(),
        started.elapsed()
    );
    // One more event after everything: the pipeline still works end to end.
    assert_eq!(
        post(listener.local_addr(), &event("after", "x")).status,
        200
    );
    wait_handled(&recorder, &["after".to_owned()], Duration::from_secs(10));
    drop(worker);
    drop(listener);
}
