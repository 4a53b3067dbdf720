//! The scale-out headline test (issue 10), over real loopback HTTP and real
//! processes: two listener processes in Redis delivery mode and three
//! worker processes share one private `redis-server` (`appendonly yes`,
//! `appendfsync always`).
//!
//! The parent posts 10,000 signed, distinct events from several client
//! threads on keep-alive connections; one event in ten goes to both
//! listeners at about the same moment. It checks that every request is
//! answered 200 (each doubly sent event answered `"duplicate":true` by
//! exactly one listener), that the stream has exactly one entry per distinct
//! event (`XINFO STREAM … entries-added`), that the workers together handle
//! every event exactly once, spread over at least two of them, and that once
//! Redis is stopped a signed event is answered 503, never 200.
//!
//! The children are this test binary run again with `--exact` on
//! [`child_main`] does nothing unless [`ENV_ROLE`] is set. A child runs
//! until its stdin is closed (so a parent that dies, however it dies, takes
//! its children with it), then stops gracefully and prints its counters.
//! The parent stops children that did not stop that way with SIGTERM, then
//! SIGKILL, from a drop guard (also when a check panics).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use wasenderapi::redis::{RedisAppenderOptions, RedisOptions, RedisWorker};
use wasenderapi::{WasenderSyncClient, WebhookListener};

use crate::support::handlers::complete_lines;
use crate::support::process::{child_command, say, test_name, wait_for_stdin_eof, ChildProcess};
use crate::support::redis::{consumers, Persistence, RedisServer};
use crate::support::{event, heavy, wait_until, AppendIds, Conn, TempDir, SECRET};

/// Distinct events posted.
const EVENTS: usize = 10_000;
/// Every this many events, one is sent to both listeners.
const BOTH_EVERY: usize = 10;
/// Client threads (each with one keep-alive connection) per listener.
const CLIENTS_PER_LISTENER: usize = 3;
/// Worker processes, and handler threads in each.
const WORKERS: usize = 3;
const HANDLER_THREADS: usize = 2;
/// How long the workers may take to handle everything once the posting is done.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Child mode: `listener` or `worker`.
const ENV_ROLE: &str = "WASENDER_SCALE_OUT_ROLE";
const ENV_URL: &str = "WASENDER_SCALE_OUT_URL";
/// The child's name: the listener id or the worker's consumer name.
const ENV_NAME: &str = "WASENDER_SCALE_OUT_NAME";
/// A worker's output file: one line `<message id>` per handled event.
const ENV_OUT: &str = "WASENDER_SCALE_OUT_FILE";

/// The connection options both roles use: the defaults, except that the
/// command timeout is generous: with `appendfsync always` and two cores
/// shared with compilers, a slow `fsync` must not turn into a 503.
fn child_options(url: &str) -> RedisOptions {
    RedisOptions::new(url)
        .connect_timeout(Duration::from_secs(1))
        .command_timeout(Duration::from_secs(5))
}

/// Child mode: returns at once unless started by the parent test below.
#[test]
fn child_main() {
    let (Ok(role), Ok(url), Ok(name)) = (
        std::env::var(ENV_ROLE),
        std::env::var(ENV_URL),
        std::env::var(ENV_NAME),
    ) else {
        return;
    };
    let options = child_options(&url);
    match role.as_str() {
        "listener" => {
            let client = WasenderSyncClient::builder("test-api-key")
                .webhook_secret(SECRET)
                .build();
            let listener = WebhookListener::redis_builder(
                client,
                RedisAppenderOptions::new(options).listener_id(name),
            )
            .bind("127.0.0.1:0")
            .workers(2)
            .spawn()
            .expect("the child listener starts");
            say(&format!("listening {}", listener.local_addr()));
            wait_for_stdin_eof();
            let s = listener.shutdown();
            say(&format!(
                "stats queued={} deduplicated={} rejected_unavailable={} received={}",
                s.queued, s.deduplicated, s.rejected_unavailable, s.received
            ));
        }
        "worker" => {
            let out = std::env::var_os(ENV_OUT).expect("the worker's output file");
            // Timings that keep the test quick; the claim idle time stays
            // long (no process dies here).
            let worker = RedisWorker::builder(options, AppendIds::open(out, Duration::ZERO))
                .handler_threads(HANDLER_THREADS)
                .consumer_name(name)
                .drain_timeout(Duration::from_secs(5))
                .block_time(Duration::from_millis(200))
                .claim_idle(Duration::from_secs(60))
                .trim_interval(Some(Duration::from_secs(1)))
                .spawn()
                .expect("the child worker starts");
            say("started");
            wait_for_stdin_eof();
            let s = worker.shutdown();
            say(&format!(
                "stats read={} claimed={} handled={} retried={} redis_errors={} trimmed={} \
                 handed_back={}",
                s.read, s.claimed, s.handled, s.retried, s.redis_errors, s.trimmed, s.handed_back
            ));
        }
        other => panic!("unknown child role {other:?}"),
    }
}

/// A child of role `role` called `name`, on the Redis at `url`; a worker
/// writes the ids it handled to `out`.
fn spawn_child(role: &str, name: &str, url: &str, out: Option<&Path>) -> ChildProcess {
    let mut command = child_command(&test_name(module_path!(), "child_main"));
    command
        .env(ENV_ROLE, role)
        .env(ENV_URL, url)
        .env(ENV_NAME, name);
    if let Some(out) = out {
        command.env(ENV_OUT, out);
    }
    ChildProcess::spawn(name, command)
}

/// Stops a child gracefully (see [`ChildProcess::stop`]) and returns its counters.
fn stop_gracefully(child: ChildProcess) -> HashMap<String, u64> {
    child
        .stop()
        .split_whitespace()
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn message_id(i: usize) -> String {
    format!("scale-{i:05}")
}

fn sent_to_both(i: usize) -> bool {
    i.is_multiple_of(BOTH_EVERY)
}

/// Which listeners event `i` goes to: both for one in [`BOTH_EVERY`], the
/// others alternately by tens (so that both listeners get as many requests).
fn sent_to(i: usize, side: usize) -> bool {
    sent_to_both(i) || (i / BOTH_EVERY) % 2 == side
}

/// One answer as the parent saw it.
struct Answered {
    event: usize,
    status: u16,
    duplicate: bool,
    body: String,
}

/// Posts the events of `indices` in order, on one keep-alive connection.
fn post_all(addr: SocketAddr, indices: Vec<usize>) -> Vec<Answered> {
    let mut conn = Conn::open(addr);
    indices
        .into_iter()
        .map(|i| {
            let answer = conn
                .try_post_signed(&event(&message_id(i), "hi"))
                .unwrap_or_else(|e| panic!("event {i} to {addr}: no answer ({e})"));
            Answered {
                event: i,
                status: answer.status,
                duplicate: answer.is_duplicate(),
                body: answer.body,
            }
        })
        .collect()
}

#[test]
fn two_listener_and_three_worker_processes_add_and_handle_every_event_once() {
    let _heavy = heavy::exclusive();
    let started = Instant::now();
    let mut server = RedisServer::start_with(Persistence::Always);
    let url = server.url();
    let fsync: Vec<String> = server.query(&["CONFIG", "GET", "appendfsync"]);
    assert_eq!(
        fsync,
        ["appendfsync", "always"],
        "the server fsyncs every write"
    );
    let events_key = child_options(&url).events_key();
    let dir = TempDir::new("scale-out");

    // Spawn all five, then wait for them: they start side by side.
    let listeners: Vec<ChildProcess> = ["listener-a", "listener-b"]
        .into_iter()
        .map(|name| spawn_child("listener", name, &url, None))
        .collect();
    let outputs: Vec<PathBuf> = (1..=WORKERS)
        .map(|n| dir.join(&format!("worker-{n}.txt")))
        .collect();
    let workers: Vec<ChildProcess> = outputs
        .iter()
        .enumerate()
        .map(|(n, out)| spawn_child("worker", &format!("worker-{}", n + 1), &url, Some(out)))
        .collect();
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| {
            l.expect_line("listening", Duration::from_secs(30))
                .parse()
                .expect("a listener address")
        })
        .collect();
    for worker in &workers {
        worker.expect_line("started", Duration::from_secs(30));
    }
    let ready = started.elapsed();

    // Post: CLIENTS_PER_LISTENER threads per listener, each walking its
    // share of that listener's events in order, so that the two copies of a
    // doubly sent event arrive at about the same moment.
    let posting = Instant::now();
    let clients: Vec<_> = addrs
        .iter()
        .enumerate()
        .flat_map(|(side, &addr)| {
            let mine: Vec<usize> = (0..EVENTS).filter(|&i| sent_to(i, side)).collect();
            (0..CLIENTS_PER_LISTENER).map(move |t| {
                let share: Vec<usize> = mine
                    .iter()
                    .copied()
                    .skip(t)
                    .step_by(CLIENTS_PER_LISTENER)
                    .collect();
                thread::spawn(move || post_all(addr, share))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.join().expect("a client thread"));
    }
    let posted = posting.elapsed();

    let both = (0..EVENTS).filter(|&i| sent_to_both(i)).count();
    assert_eq!(answers.len(), EVENTS + both, "every request was sent once");
    let not_ok: Vec<_> = answers
        .iter()
        .filter(|a| a.status != 200)
        .map(|a| (a.event, a.status, &a.body))
        .take(5)
        .collect();
    assert!(
        not_ok.is_empty(),
        "requests not answered 200, e.g. {not_ok:?}"
    );
    let mut copies: HashMap<usize, (usize, usize)> = HashMap::new();
    for a in &answers {
        let (sent, duplicates) = copies.entry(a.event).or_default();
        *sent += 1;
        *duplicates += usize::from(a.duplicate);
    }
    assert_eq!(copies.len(), EVENTS);
    for (&i, &(sent, duplicates)) in &copies {
        let expected = if sent_to_both(i) { (2, 1) } else { (1, 0) };
        assert_eq!(
            (sent, duplicates),
            expected,
            "event {i}: (copies sent, answered duplicate)"
        );
    }
    assert_eq!(
        server.entries_added(&events_key),
        EVENTS as u64,
        "one stream entry per distinct event"
    );

    // Drain: every id in some worker's file, and nothing pending any more.
    let draining = Instant::now();
    let ids: HashSet<String> = (0..EVENTS).map(message_id).collect();
    let line_bytes = (message_id(0).len() + 1) as u64;
    let drained = wait_until(DRAIN_DEADLINE, || {
        // The files' sizes are cheap to watch; the ids are compared once
        // every line can be there.
        let bytes: u64 = outputs
            .iter()
            .map(|o| std::fs::metadata(o).map_or(0, |m| m.len()))
            .sum();
        bytes >= line_bytes * EVENTS as u64 && {
            let seen: HashSet<String> = outputs.iter().flat_map(|o| complete_lines(o)).collect();
            ids.iter().all(|id| seen.contains(id))
        }
    });
    let handled_after = draining.elapsed();
    let acked = wait_until(Duration::from_secs(10), || {
        server.pending(&events_key, "wasender") == 0
    });
    let worker_stats: Vec<HashMap<String, u64>> =
        workers.into_iter().map(stop_gracefully).collect();
    // Each worker left the group as it stopped.
    let left = consumers(&server, &events_key, "wasender");
    assert!(
        left.is_empty(),
        "consumers left after a graceful stop: {left:?}"
    );
    // Read after the workers stopped: nothing can be appended any more.
    let per_worker: Vec<Vec<String>> = outputs.iter().map(|o| complete_lines(o)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in per_worker.iter().flatten() {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()))
        .take(5)
        .collect();
    assert!(
        drained && missing.is_empty(),
        "events not handled within {DRAIN_DEADLINE:?}, e.g. {missing:?}"
    );
    assert!(acked, "entries still pending after every event was handled");
    // Exactly once, not just at least once: no process dies here and the
    // claim idle time (60 s) is far longer than the test, so the only ways
    // to a second delivery the module docs list (a worker dying before its
    // XACK, Redis losing an XACK, a takeover, an XACK that cannot reach
    // Redis) cannot happen.
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "events handled more than once: {twice:?}");
    let strange: Vec<_> = counts
        .keys()
        .filter(|id| !ids.contains(**id))
        .take(5)
        .collect();
    assert!(strange.is_empty(), "unknown ids handled: {strange:?}");
    let busy = per_worker.iter().filter(|w| !w.is_empty()).count();
    assert!(busy >= 2, "only {busy} worker(s) handled events");
    let handled_by: Vec<usize> = per_worker.iter().map(Vec::len).collect();
    for (n, stats) in worker_stats.iter().enumerate() {
        assert_eq!(
            stats.get("handled").copied(),
            Some(handled_by[n] as u64),
            "worker-{}: counters {stats:?} against its file",
            n + 1
        );
        assert_eq!(stats.get("claimed").copied(), Some(0), "{stats:?}");
        assert_eq!(stats.get("retried").copied(), Some(0), "{stats:?}");
    }

    // Redis down: a signed event is answered 503 by both listeners, never 200.
    server.kill();
    for &addr in &addrs {
        let mut conn = Conn::open(addr);
        for n in 0..3 {
            let answer = conn.post_signed(&event(&format!("after-redis-stopped-{n}"), "hi"));
            assert_eq!(answer.status, 503, "with Redis down: {answer:?}");
            assert_eq!(answer.header("retry-after"), Some("1"), "{answer:?}");
        }
    }
    let listener_stats: Vec<HashMap<String, u64>> =
        listeners.into_iter().map(stop_gracefully).collect();
    let sum = |key: &str| -> u64 {
        listener_stats
            .iter()
            .map(|s| s.get(key).copied().unwrap_or(0))
            .sum()
    };
    assert_eq!(sum("queued"), EVENTS as u64, "{listener_stats:?}");
    assert_eq!(sum("deduplicated"), both as u64, "{listener_stats:?}");
    assert_eq!(sum("rejected_unavailable"), 6, "{listener_stats:?}");

    let requests = answers.len();
    let per_listener = |key: &str| -> Vec<u64> {
        listener_stats
            .iter()
            .map(|s| s.get(key).copied().unwrap_or(0))
            .collect()
    };
    eprintln!(
        "scale-out: 2 listener + {WORKERS} worker processes ready in {ready:.2?}; \
         {requests} requests ({EVENTS} distinct, {both} to both listeners) from {} keep-alive \
         clients answered in {posted:.2?} ({:.0} requests/s, {:.0} distinct events/s); \
         listeners queued {:?}, deduplicated {:?}; all handled {handled_after:.2?} after the \
         last answer, by workers {handled_by:?}; total {:.2?}",
        2 * CLIENTS_PER_LISTENER,
        requests as f64 / posted.as_secs_f64(),
        EVENTS as f64 / posted.as_secs_f64(),
        per_listener("queued"),
        per_listener("deduplicated"),
        started.elapsed()
    );
}
