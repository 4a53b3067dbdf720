//! Redis delivery over real loopback HTTP and a real `redis-server`:
//! listeners add verified events to the stream (deduplicated across
//! listeners), workers handle them, failures end in the dead-letter stream
//! and come back when requeued, and a Redis that is down is answered 503.
#![cfg(feature = "redis")]

#[path = "delivery_support/mod.rs"]
mod delivery;
#[path = "redis_support/mod.rs"]
mod redis_support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use delivery::{event, post, wait_until, Probe, RawConn};
use redis_support::*;
use wasenderapi::redis::{HandlerRetryPolicy, RedisDeadLetters, RedisOptions};

#[test]
fn an_event_sent_to_two_listeners_is_added_once_and_handled_once() {
    let server = RedisServer::start();
    let options = server.options();
    let listeners = [listener(options.clone()), listener(options.clone())];
    let probe = Arc::new(Probe::default());
    let workers = [
        worker(options.clone(), &probe, "w1"),
        worker(options.clone(), &probe, "w2"),
    ];

    // 200 events; every fifth goes to both listeners at the same moment.
    let ids: Vec<String> = (0..200).map(|i| format!("dup-{i}")).collect();
    let senders: Vec<_> = [0usize, 1]
        .into_iter()
        .map(|side| {
            let addr = listeners[side].local_addr();
            let ids = ids.clone();
            thread::spawn(move || {
                let mut conn = RawConn::open(addr).expect("connect");
                let mut statuses = Vec::new();
                for (i, id) in ids.iter().enumerate() {
                    if i % 5 == 0 || i % 2 == side {
                        let answer = conn.post_signed(&event(id, "hi")).expect("an answer");
                        statuses.push((id.clone(), answer.status, answer.body));
                    }
                }
                statuses
            })
        })
        .collect();
    let mut answers = Vec::new();
    for sender in senders {
        answers.extend(sender.join().expect("sender"));
    }
    assert!(
        answers.iter().all(|(_, status, _)| *status == 200),
        "{answers:?}"
    );
    let duplicates = answers
        .iter()
        .filter(|(_, _, body)| body.contains(r#""duplicate":true"#))
        .count();
    assert_eq!(duplicates, 40, "each doubly sent event is a duplicate once");
    assert_eq!(server.entries_added(&options.events_key()), 200);

    wait_handled(&probe, &ids, Duration::from_secs(10));
    thread::sleep(Duration::from_millis(200));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for id in probe.handled() {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    let stats: Vec<_> = workers.into_iter().map(|w| w.shutdown()).collect();
    assert_eq!(handled_total(&stats), 200);
    let listener_stats: Vec<_> = listeners.into_iter().map(|l| l.shutdown()).collect();
    assert_eq!(listener_stats.iter().map(|s| s.queued).sum::<u64>(), 200);
    assert_eq!(
        listener_stats.iter().map(|s| s.deduplicated).sum::<u64>(),
        40
    );
}

#[test]
fn a_failing_event_is_dead_lettered_after_the_last_attempt_then_requeued_and_handled_once() {
    let server = RedisServer::start();
    let options = server
        .options()
        .handler_retries(fast_retries().max_attempts(3));
    let listener = listener(options.clone());
    let probe = Arc::new(Probe::default());
    probe.failing.store(true, Ordering::SeqCst);
    let worker = worker(options.clone(), &probe, "w1");

    let body = event("poison-1", "flaky");
    assert_eq!(post(listener.local_addr(), &body).status, 200);

    let mut dead = RedisDeadLetters::connect(&options).expect("dead-letter tools");
    assert!(
        wait_until(Duration::from_secs(10), || dead.count().unwrap_or(0) == 1),
        "the event never reached the dead-letter stream"
    );
    assert_eq!(probe.attempts("poison-1"), 3);
    let letters = dead.list(None, 10).expect("list");
    let letter = &letters[0];
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.body, body);
    assert_eq!(letter.event, "messages.received");
    assert!(letter.error.contains("fails for now"), "{letter:?}");
    assert_eq!(letter.consumer, "w1");
    assert!(!letter.original_id.is_empty() && letter.dead_ms >= letter.received_ms);
    assert_eq!(server.pending(&options.events_key(), "wasender"), 0);

    // Fixed: requeue it, twice; it is added back once and handled once.
    probe.failing.store(false, Ordering::SeqCst);
    let requeued = dead.requeue(&letter.id).expect("requeue");
    assert!(requeued.is_some());
    assert_eq!(dead.requeue(&letter.id).expect("requeue again"), None);
    assert_eq!(dead.requeue_all().expect("requeue all"), 0);
    wait_handled(&probe, &["poison-1".to_owned()], Duration::from_secs(10));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(probe.count("poison-1"), 1);
    assert_eq!(dead.count().expect("count"), 0);
    let stats = worker.shutdown();
    assert_eq!(
        (stats.dead_lettered, stats.retried, stats.handled),
        (1, 2, 1)
    );
    drop(listener);
}

#[test]
fn an_entry_whose_body_is_not_an_event_is_dead_lettered_at_once() {
    let server = RedisServer::start();
    let options = server.options();
    let probe = Arc::new(Probe::default());
    let worker = worker(options.clone(), &probe, "w1");
    let _: String = server.query(&["XADD", &options.events_key(), "*", "body", "not json"]);
    let mut dead = RedisDeadLetters::connect(&options).expect("dead-letter tools");
    assert!(wait_until(Duration::from_secs(10), || dead
        .count()
        .unwrap_or(0)
        == 1));
    let letter = dead.list(None, 1).expect("list").remove(0);
    assert_eq!(letter.attempts, 1);
    assert!(letter.error.contains("not an event"), "{letter:?}");
    assert_eq!(dead.purge().expect("purge"), 1);
    assert_eq!(dead.count().expect("count"), 0);
    drop(worker);
}

#[test]
fn with_redis_stopped_the_listener_answers_503_and_never_200() {
    let mut server = RedisServer::start();
    let listener = listener(server.options());
    let addr = listener.local_addr();
    assert_eq!(post(addr, &event("before", "hi")).status, 200);
    server.kill();
    let mut conn = RawConn::open(addr).expect("connect");
    for i in 0..10 {
        let answer = conn
            .post_signed(&event(&format!("down-{i}"), "hi"))
            .expect("an answer");
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.retry_after.as_deref(), Some("1"));
    }
    let stats = listener.shutdown();
    assert_eq!((stats.queued, stats.rejected_unavailable), (1, 10));
}

#[test]
fn after_a_redis_restart_the_first_event_is_accepted_on_a_new_connection() {
    let mut server = RedisServer::start();
    let listener = listener(server.options());
    let addr = listener.local_addr();
    assert_eq!(post(addr, &event("before-restart", "hi")).status, 200);
    server.restart();
    // The pooled connection died with the old process: retried on a new one.
    let answer = post(addr, &event("after-restart", "hi"));
    assert_eq!(answer.status, 200, "{answer:?}");
    let stats = listener.shutdown();
    assert_eq!((stats.queued, stats.rejected_unavailable), (2, 0));
}

#[test]
fn a_redis_out_of_memory_answers_503_until_it_has_room_again() {
    let server = RedisServer::start();
    let listener = listener(server.options());
    let addr = listener.local_addr();
    let _: String = server.query(&["CONFIG", "SET", "maxmemory", "1"]);
    let answer = post(addr, &event("oom", "hi"));
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    let _: String = server.query(&["CONFIG", "SET", "maxmemory", "0"]);
    // Nothing of the refused try remains: the retry is added, not a duplicate.
    let answer = post(addr, &event("oom", "hi"));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(!answer.body.contains("duplicate"), "{answer:?}");
    let stats = listener.shutdown();
    assert_eq!((stats.queued, stats.rejected_unavailable), (1, 1));
}

#[test]
fn a_redis_that_stops_answering_gets_503_after_the_command_timeout() {
    let server = RedisServer::start();
    let options = server
        .options()
        .connect_timeout(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(300));
    let listener = listener(options);
    let addr = listener.local_addr();
    assert_eq!(post(addr, &event("warm", "hi")).status, 200);
    server.signal("STOP");
    let started = std::time::Instant::now();
    let answer = post(addr, &event("stalled", "hi"));
    let waited = started.elapsed();
    server.signal("CONT");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
    // The stalled try may or may not have been added once Redis resumed; the
    // retry is answered 200 either way (added, or a duplicate of it).
    let answer = post(addr, &event("stalled", "hi"));
    assert_eq!(answer.status, 200, "{answer:?}");
    drop(listener);
}

#[test]
fn too_few_replicas_for_wait_answers_503_and_the_retry_is_added_again() {
    let server = RedisServer::start();
    let options: RedisOptions = server.options().wait_replicas(1, Duration::from_millis(50));
    let listener = listener(options.clone());
    let body = event("unreplicated", "hi");
    for _ in 0..2 {
        let answer = post(listener.local_addr(), &body);
        assert_eq!(answer.status, 503, "{answer:?}");
    }
    // The dedupe key was removed after each failed WAIT: both tries were added
    // (handled twice rather than lost).
    assert_eq!(server.entries_added(&options.events_key()), 2);
    drop(listener);
}

#[test]
fn acknowledged_history_is_trimmed_and_pending_entries_are_kept() {
    let server = RedisServer::start();
    let _: String = server.query(&["CONFIG", "SET", "stream-node-max-entries", "10"]);
    let options = server.options();
    let listener = listener(options.clone());
    let mut conn = RawConn::open(listener.local_addr()).expect("connect");
    let ids: Vec<String> = (0..60).map(|i| format!("trim-{i}")).collect();
    for id in &ids {
        assert_eq!(
            conn.post_signed(&event(id, "hi")).expect("answer").status,
            200
        );
    }
    // One event blocks its handler: it stays pending and must not be trimmed.
    assert_eq!(
        conn.post_signed(&event("held", "block"))
            .expect("answer")
            .status,
        200
    );
    let probe = Arc::new(Probe::default());
    let worker = worker(options.clone(), &probe, "w1");
    wait_handled(&probe, &ids, Duration::from_secs(10));
    let key = options.events_key();
    assert!(
        wait_until(Duration::from_secs(5), || server
            .query::<u64>(&["XLEN", &key])
            <= 11),
        "acknowledged entries were not trimmed"
    );
    assert_eq!(server.pending(&key, "wasender"), 1);
    probe.open_gate();
    wait_handled(&probe, &["held".to_owned()], Duration::from_secs(10));
    let stats = worker.shutdown();
    assert!(stats.trimmed >= 50, "{stats:?}");
    drop(listener);
}

#[test]
fn attempts_are_counted_by_redis_so_they_survive_a_worker_restart() {
    let server = RedisServer::start();
    let options = server
        .options()
        .handler_retries(
            HandlerRetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(300))
                .max_backoff(Duration::from_millis(400)),
        )
        .claim_idle(Duration::from_millis(800));
    let listener = listener(options.clone());
    let probe = Arc::new(Probe::default());
    probe.failing.store(true, Ordering::SeqCst);
    let first = worker(options.clone(), &probe, "first");
    assert_eq!(
        post(listener.local_addr(), &event("restarted", "flaky")).status,
        200
    );
    assert!(wait_until(Duration::from_secs(10), || probe
        .attempts("restarted")
        == 1));
    // Stopped while waiting to retry: the entry stays pending, its count at 1.
    let stats = first.shutdown();
    assert_eq!(stats.left_pending, 1, "{stats:?}");

    let second = worker(options.clone(), &probe, "second");
    let mut dead = RedisDeadLetters::connect(&options).expect("dead-letter tools");
    assert!(wait_until(Duration::from_secs(10), || dead
        .count()
        .unwrap_or(0)
        == 1));
    assert_eq!(
        probe.attempts("restarted"),
        3,
        "3 attempts in all, across both workers"
    );
    assert_eq!(dead.list(None, 1).expect("list")[0].attempts, 3);
    let stats = second.shutdown();
    assert_eq!((stats.claimed, stats.dead_lettered), (1, 1), "{stats:?}");
    drop(listener);
}

#[test]
fn a_graceful_stop_releases_fetched_entries_to_other_workers_at_once() {
    let server = RedisServer::start();
    // A claim time far longer than the test: only a release explains a quick takeover.
    let options = server.options().claim_idle(Duration::from_secs(60));
    let listener = listener(options.clone());
    let ids: Vec<String> = (0..12).map(|i| format!("held-{i}")).collect();
    let mut conn = RawConn::open(listener.local_addr()).expect("connect");
    for id in &ids {
        assert_eq!(
            conn.post_signed(&event(id, "slow5"))
                .expect("answer")
                .status,
            200
        );
    }
    let probe = Arc::new(Probe::default());
    let first = wasenderapi::redis::RedisWorker::builder(options.clone(), Arc::clone(&probe))
        .handler_threads(1)
        .prefetch(20)
        .consumer_name("first")
        .spawn()
        .expect("worker starts");
    assert!(wait_until(Duration::from_secs(10), || !probe
        .handled()
        .is_empty()));
    let stats = first.shutdown();
    assert!(stats.left_pending >= 5, "{stats:?}");

    let second = worker(options, &probe, "second");
    wait_handled(&probe, &ids, Duration::from_secs(5));
    let stats = second.shutdown();
    assert!(stats.claimed >= 5, "{stats:?}");
    assert_eq!(stats.dead_lettered, 0);
    drop(listener);
}

#[test]
fn entries_fetched_ahead_are_not_taken_over_however_long_they_wait() {
    let server = RedisServer::start();
    let options = server.options(); // claim idle 800 ms
    let listener = listener(options.clone());
    let ids: Vec<String> = (0..12).map(|i| format!("ahead-{i}")).collect();
    let mut conn = RawConn::open(listener.local_addr()).expect("connect");
    for id in &ids {
        assert_eq!(
            conn.post_signed(&event(id, "slow12"))
                .expect("answer")
                .status,
            200
        );
    }
    // One thread, 120 ms per event: the last entry fetched waits ~1.3 s,
    // longer than the claim idle time, while another worker looks for idle entries.
    let probe = Arc::new(Probe::default());
    let hoarder = wasenderapi::redis::RedisWorker::builder(options.clone(), Arc::clone(&probe))
        .handler_threads(1)
        .prefetch(20)
        .consumer_name("hoarder")
        .spawn()
        .expect("worker starts");
    assert!(wait_until(Duration::from_secs(10), || !probe
        .handled()
        .is_empty()));
    let other = wasenderapi::redis::RedisWorker::builder(options, Arc::clone(&probe))
        .handler_threads(1)
        .prefetch(0)
        .consumer_name("other")
        .spawn()
        .expect("worker starts");
    wait_handled(&probe, &ids, Duration::from_secs(10));
    let other = other.shutdown();
    let hoarder = hoarder.shutdown();
    for id in &ids {
        assert_eq!(probe.count(id), 1, "{id} handled more than once");
    }
    assert_eq!(
        (other.claimed, hoarder.handled),
        (0, 12),
        "{other:?} {hoarder:?}"
    );
    drop(listener);
}
