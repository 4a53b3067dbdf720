//! Crash tests for Redis delivery, with real processes:
//! - a worker in a child process (this test binary in "child mode") is
//!   SIGKILLed mid-handling; another worker takes its pending entries over
//!   and every event is handled;
//! - `redis-server` (`appendfsync always`) is SIGKILLed under load and
//!   restarted; every event that was answered 200 is handled.
#![cfg(feature = "redis")]

#[path = "delivery_support/mod.rs"]
mod delivery;
#[path = "redis_support/mod.rs"]
mod redis_support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use delivery::{event, post, wait_until, AppendIds, Probe, RawConn, TempDir};
use redis_support::*;
use wasenderapi::redis::{RedisOptions, RedisWorker};

const ENV_URL: &str = "WASENDER_REDIS_CHILD_URL";
const ENV_OUT: &str = "WASENDER_REDIS_CHILD_OUT";
/// How long the child's handler works on each event.
const CHILD_HANDLER_TIME: Duration = Duration::from_millis(40);

/// Fault-test options: a short claim time, so that takeovers happen quickly.
fn fault_options(url: String) -> RedisOptions {
    RedisOptions::new(url)
        .connect_timeout(Duration::from_millis(300))
        .command_timeout(Duration::from_millis(500))
        .block_time(Duration::from_millis(100))
        .claim_idle(Duration::from_millis(600))
        .handler_retries(fast_retries())
}

/// Child mode: returns at once unless started by a parent test below.
#[test]
fn child_worker_main() {
    let (Some(url), Some(out)) = (std::env::var(ENV_URL).ok(), std::env::var_os(ENV_OUT)) else {
        return;
    };
    let handler = AppendIds::open(out, CHILD_HANDLER_TIME);
    let _worker = RedisWorker::builder(fault_options(url), handler)
        .handler_threads(2)
        .consumer_name("child")
        .spawn()
        .expect("child worker starts");
    // Runs until the parent kills it.
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| l.trim_end().to_owned())
        .collect()
}

#[test]
fn a_killed_workers_pending_entries_are_taken_over_and_handled() {
    let server = RedisServer::start();
    let options = fault_options(server.url());
    let listener = listener(options.clone());
    let ids: Vec<String> = (0..40).map(|i| format!("k-{i}")).collect();
    let mut conn = RawConn::open(listener.local_addr()).expect("connect");
    for id in &ids {
        assert_eq!(
            conn.post_signed(&event(id, "hi")).expect("answer").status,
            200
        );
    }

    let dir = TempDir::new("redis-child");
    let out = dir.join("handled.txt");
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_worker_main",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_URL, server.url())
        .env(ENV_OUT, &out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child worker");
    let started = wait_until(Duration::from_secs(15), || lines(&out).len() >= 6);
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
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    assert!(started, "the child worker handled nothing");
    assert!(mid, "the child held no pending entry when it was killed");
    let by_child: HashSet<String> = lines(&out).into_iter().collect();
    assert!(
        by_child.len() < ids.len(),
        "the child finished before the kill"
    );

    let probe = Arc::new(Probe::default());
    let survivor = worker(options.clone(), &probe, "survivor");
    let all_handled = wait_until(Duration::from_secs(15), || {
        let handled: HashSet<String> = probe.handled().into_iter().collect();
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

/// Streams events to `addr` from `senders` threads until `stop` is set,
/// reconnecting after errors; returns the ids answered 200.
fn stream(
    addr: SocketAddr,
    senders: usize,
    stop: &Arc<AtomicBool>,
    unavailable: &Arc<AtomicU64>,
) -> Vec<thread::JoinHandle<Vec<String>>> {
    (0..senders)
        .map(|t| {
            let stop = Arc::clone(stop);
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
                        None => RawConn::open(addr),
                    };
                    let Ok(mut open) = open else {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let id = format!("load-t{t}-{n}");
                    match open.post_signed(&event(&id, "x")) {
                        Ok(answer) if answer.status == 200 => acked.push(id),
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
    let mut server = RedisServer::start_with(Persistence::Always);
    let options = fault_options(server.url());
    let listener = listener(options.clone());
    let probe = Arc::new(Probe::default());
    let worker = worker(options.clone(), &probe, "w1");

    let stop = Arc::new(AtomicBool::new(false));
    let unavailable = Arc::new(AtomicU64::new(0));
    let senders = stream(listener.local_addr(), 3, &stop, &unavailable);
    thread::sleep(Duration::from_millis(400));
    server.kill();
    thread::sleep(Duration::from_millis(300));
    let refused_while_down = unavailable.load(Ordering::Relaxed);
    server.restart();
    thread::sleep(Duration::from_millis(400));
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
    wait_handled(&probe, &acked, Duration::from_secs(20));
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
    wait_handled(&probe, &["after".to_owned()], Duration::from_secs(10));
    drop(worker);
    drop(listener);
}
