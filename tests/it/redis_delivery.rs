//! Redis delivery over real loopback HTTP and a real `redis-server`:
//! listeners add verified events to the stream (deduplicated across
//! listeners), workers handle them, failures end in the dead-letter stream
//! and come back when requeued, and a Redis that is down is answered 503.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use wasenderapi::handler::{DeadLetter, HandlerRetryPolicy, LastCall};
use wasenderapi::redis::{RedisAppenderOptions, RedisDeadLetters, HANDED_BACK_CONSUMER};

use crate::support::redis::{
    consumers, fast_retries, handled_total, listener, wait_handled, worker, worker_builder,
    RedisServer,
};
use crate::support::{event, post, wait_until, Conn, Recorder};

#[test]
fn an_event_sent_to_two_listeners_is_added_once_and_handled_once() {
    let server = RedisServer::start();
    let options = server.options();
    let listeners = [listener(options.clone()), listener(options.clone())];
    let recorder = Arc::new(Recorder::default());
    let workers = [
        worker(options.clone(), &recorder, "w1"),
        worker(options.clone(), &recorder, "w2"),
    ];

    // 200 events; every fifth goes to both listeners at the same moment.
    let ids: Vec<String> = (0..200).map(|i| format!("dup-{i}")).collect();
    let senders: Vec<_> = [0usize, 1]
        .into_iter()
        .map(|side| {
            let addr = listeners[side].local_addr();
            let ids = ids.clone();
            thread::spawn(move || {
                let mut conn = Conn::open(addr);
                let mut statuses = Vec::new();
                for (i, id) in ids.iter().enumerate() {
                    if i % 5 == 0 || i % 2 == side {
                        let answer = conn.post_signed(&event(id, "hi"));
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

    wait_handled(&recorder, &ids, Duration::from_secs(10));
    // Counted once the workers stopped: nothing can be handled any more.
    let stats: Vec<_> = workers.into_iter().map(|w| w.shutdown()).collect();
    let counts = recorder.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
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
    let options = server.options();
    let listener = listener(options.clone());
    let recorder = Arc::new(Recorder::default());
    recorder.failing.store(true, Ordering::SeqCst);
    let hooked: Arc<Mutex<Vec<DeadLetter>>> = Arc::default();
    let sink = Arc::clone(&hooked);
    let worker = worker_builder(options.clone(), &recorder, "w1")
        .handler_retries(fast_retries().max_attempts(3))
        .on_dead_letter(move |letter| sink.lock().unwrap().push(letter.clone()))
        .spawn()
        .expect("a worker starts");

    let body = event("poison-1", "flaky");
    assert_eq!(post(listener.local_addr(), &body).status, 200);

    let mut dead = RedisDeadLetters::connect(&options).expect("dead-letter tools");
    assert!(
        wait_until(Duration::from_secs(10), || dead.count().unwrap_or(0) == 1),
        "the event never reached the dead-letter stream"
    );
    assert_eq!(recorder.attempts("poison-1"), 3);
    let letters = dead.list(None, 10).expect("list");
    let letter = &letters[0];
    assert_eq!((letter.attempts, letter.last_call), (3, LastCall::Failed));
    assert_eq!(letter.payload, body);
    assert_eq!(letter.event_name().as_deref(), Some("messages.received"));
    assert_eq!(letter.event_id().as_deref(), Some("poison-1"));
    assert!(letter.error.contains("fails for now"), "{letter:?}");
    assert!(
        letter
            .to_string()
            .starts_with("3 handler calls began; the last returned an error: "),
        "{letter}"
    );
    assert_eq!(letter.worker.as_deref(), Some("w1"));
    let wasenderapi::handler::DeadLetterId::Entry { id, original_id } = &letter.id else {
        panic!("a Redis letter has an entry id: {letter:?}");
    };
    assert!(!original_id.is_empty() && id != original_id);
    assert!(letter
        .received_unix_ms
        .is_some_and(|r| letter.time_unix_ms >= r));
    assert_eq!(server.pending(&options.events_key(), "wasender"), 0);
    assert!(
        wait_until(Duration::from_secs(5), || hooked.lock().unwrap().len() == 1),
        "the on_dead_letter hook was not called"
    );
    assert_eq!(
        &hooked.lock().unwrap()[0],
        letter,
        "the hook saw the listed letter"
    );

    // Fixed: requeue it, twice; it is added back once and handled once.
    recorder.failing.store(false, Ordering::SeqCst);
    let entry_id = letter.id.entry_id().expect("a Redis letter");
    let requeued = dead.requeue(entry_id).expect("requeue");
    assert!(requeued.is_some());
    assert_eq!(dead.requeue(entry_id).expect("requeue again"), None);
    assert_eq!(dead.requeue_all().expect("requeue all"), 0);
    wait_handled(&recorder, &["poison-1".to_owned()], Duration::from_secs(10));
    assert!(wait_until(Duration::from_secs(5), || server
        .pending(&options.events_key(), "wasender")
        == 0));
    assert_eq!(recorder.count("poison-1"), 1);
    assert_eq!(dead.count().expect("count"), 0);
    let stats = worker.shutdown();
    assert_eq!(
        (stats.dead_lettered, stats.retried, stats.handled),
        (1, 2, 1)
    );
    // Every attempt record was forgotten with its entry.
    assert_eq!(server.query::<u64>(&["HLEN", &options.attempts_key()]), 0);
    drop(listener);
}

#[test]
fn an_entry_whose_body_is_not_an_event_is_dead_lettered_at_once_without_a_call() {
    let server = RedisServer::start();
    let options = server.options();
    let recorder = Arc::new(Recorder::default());
    let worker = worker(options.clone(), &recorder, "w1");
    let _: String = server.query(&["XADD", &options.events_key(), "*", "body", "not json"]);
    let mut dead = RedisDeadLetters::connect(&options).expect("dead-letter tools");
    assert!(wait_until(Duration::from_secs(10), || dead
        .count()
        .unwrap_or(0)
        == 1));
    let letter = dead.list(None, 1).expect("list").remove(0);
    assert_eq!((letter.attempts, letter.last_call), (0, LastCall::NotBegun));
    assert!(letter.error.contains("not an event"), "{letter:?}");
    assert!(
        letter.to_string().starts_with("no handler call began: "),
        "{letter}"
    );
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
    let mut conn = Conn::open(addr);
    for i in 0..10 {
        let answer = conn.post_signed(&event(&format!("down-{i}"), "hi"));
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.header("retry-after"), Some("1"));
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
    assert_eq!(answer.header("retry-after"), Some("1"));
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
    let options =
        RedisAppenderOptions::new(server.options()).wait_replicas(1, Duration::from_millis(50));
    let listener = listener(options.clone());
    let body = event("unreplicated", "hi");
    for _ in 0..2 {
        let answer = post(listener.local_addr(), &body);
        assert_eq!(answer.status, 503, "{answer:?}");
    }
    // The dedupe key was removed after each failed WAIT: both tries were added
    // (handled twice rather than lost).
    assert_eq!(server.entries_added(&options.redis().events_key()), 2);
    drop(listener);
}

#[test]
fn acknowledged_history_is_trimmed_and_pending_entries_are_kept() {
    let server = RedisServer::start();
    let _: String = server.query(&["CONFIG", "SET", "stream-node-max-entries", "10"]);
    let options = server.options();
    let listener = listener(options.clone());
    let mut conn = Conn::open(listener.local_addr());
    let ids: Vec<String> = (0..60).map(|i| format!("trim-{i}")).collect();
    for id in &ids {
        assert_eq!(conn.post_signed(&event(id, "hi")).status, 200);
    }
    // One event blocks its handler: it stays pending and must not be trimmed.
    assert_eq!(conn.post_signed(&event("held", "block")).status, 200);
    let recorder = Arc::new(Recorder::default());
    let worker = worker(options.clone(), &recorder, "w1");
    wait_handled(&recorder, &ids, Duration::from_secs(10));
    let key = options.events_key();
    assert!(
        wait_until(Duration::from_secs(5), || server
            .query::<u64>(&["XLEN", &key])
            <= 11),
        "acknowledged entries were not trimmed"
    );
    assert_eq!(server.pending(&key, "wasender"), 1);
    recorder.open_gate();
    wait_handled(&recorder, &["held".to_owned()], Duration::from_secs(10));
    let stats = worker.shutdown();
    assert!(stats.trimmed >= 50, "{stats:?}");
    drop(listener);
}

#[test]
fn attempts_are_counted_in_redis_so_they_survive_a_worker_restart() {
    let server = RedisServer::start();
    let options = server.options();
    let retries = HandlerRetryPolicy::default()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(300))
        .max_backoff(Duration::from_millis(400));
    let listener = listener(options.clone());
    let recorder = Arc::new(Recorder::default());
    recorder.failing.store(true, Ordering::SeqCst);
    let first = worker_builder(options.clone(), &recorder, "first")
        .handler_retries(retries.clone())
        .spawn()
        .expect("a worker starts");
    assert_eq!(
        post(listener.local_addr(), &event("restarted", "flaky")).status,
        200
    );
    assert!(wait_until(Duration::from_secs(10), || recorder
        .attempts("restarted")
        == 1));
    // Stopped while waiting to retry: the entry is handed back, one call begun.
    let stats = first.shutdown();
    assert_eq!(stats.handed_back, 1, "{stats:?}");

    let second = worker_builder(options.clone(), &recorder, "second")
        .handler_retries(retries)
        .spawn()
        .expect("a worker starts");
    let mut dead = RedisDeadLetters::connect(&options).expect("dead-letter tools");
    assert!(wait_until(Duration::from_secs(10), || dead
        .count()
        .unwrap_or(0)
        == 1));
    assert_eq!(
        recorder.attempts("restarted"),
        3,
        "3 calls in all, across both workers"
    );
    assert_eq!(dead.list(None, 1).expect("list")[0].attempts, 3);
    let stats = second.shutdown();
    assert_eq!((stats.claimed, stats.dead_lettered), (1, 1), "{stats:?}");
    drop(listener);
}

#[test]
fn a_graceful_stop_hands_back_what_waits_for_a_retry_and_leaves_the_group() {
    let server = RedisServer::start();
    let options = server.options();
    let key = options.events_key();
    // A claim time far longer than the test: only a hand-back explains a quick takeover.
    let retries = HandlerRetryPolicy::default()
        .initial_backoff(Duration::from_millis(1500))
        .max_backoff(Duration::from_secs(2));
    let listener = listener(options.clone());
    let recorder = Arc::new(Recorder::default());
    let first = worker_builder(options.clone(), &recorder, "first")
        .claim_idle(Duration::from_secs(60))
        .handler_retries(retries.clone())
        .spawn()
        .expect("a worker starts");
    assert_eq!(
        post(listener.local_addr(), &event("retry-me", "fail1")).status,
        200
    );
    assert!(wait_until(Duration::from_secs(10), || recorder
        .attempts("retry-me")
        == 1));
    let stats = first.shutdown();
    assert_eq!(stats.handed_back, 1, "{stats:?}");
    // The stopped worker left the group; what it held waits on the hand-back consumer.
    assert_eq!(
        consumers(&server, &key, "wasender"),
        [(HANDED_BACK_CONSUMER.to_owned(), 1)]
    );

    let second = worker_builder(options, &recorder, "second")
        .claim_idle(Duration::from_secs(60))
        .handler_retries(retries)
        .spawn()
        .expect("a worker starts");
    // Claimable once its backoff is over; found at the next takeover scan
    // (a quarter of the claim time, at most 10 s).
    wait_handled(&recorder, &["retry-me".to_owned()], Duration::from_secs(20));
    assert_eq!(
        recorder.attempts("retry-me"),
        2,
        "the failed call, then one more"
    );
    // The emptied hand-back consumer is removed as an idle one.
    assert!(
        wait_until(Duration::from_secs(10), || consumers(
            &server, &key, "wasender"
        )
        .iter()
        .all(|(name, _)| name == "second")),
        "{:?}",
        consumers(&server, &key, "wasender")
    );
    let stats = second.shutdown();
    assert_eq!((stats.claimed, stats.handled), (1, 1), "{stats:?}");
    assert_eq!(consumers(&server, &key, "wasender"), []);
    drop(listener);
}

#[test]
fn a_worker_holds_no_more_entries_than_it_has_idle_handler_threads() {
    let server = RedisServer::start();
    let options = server.options();
    let key = options.events_key();
    let listener = listener(options.clone());
    let ids: Vec<String> = (0..12).map(|i| format!("held-{i}")).collect();
    let mut conn = Conn::open(listener.local_addr());
    for id in &ids {
        assert_eq!(conn.post_signed(&event(id, "slow5")).status, 200);
    }
    let recorder = Arc::new(Recorder::default());
    let worker = worker(options, &recorder, "w1"); // 2 handler threads
                                                   // Pending entries not handled yet: begun, or fetched and waiting (handled
                                                   // ones may stay pending a moment, until their batched XACK lands).
    let mut most = 0;
    let done = wait_until(Duration::from_secs(15), || {
        let pending = pending_message_ids(&server, &key);
        let handled = recorder.handled();
        let held = pending.iter().filter(|id| !handled.contains(id)).count();
        most = most.max(held);
        handled.len() == ids.len()
    });
    assert!(done, "not every event was handled");
    assert!(most <= 2, "the worker held {most} entries at once");
    assert!(most >= 1, "never saw an entry held");
    let stats = worker.shutdown();
    assert_eq!((stats.read, stats.handled, stats.claimed), (12, 12, 0));
    drop(listener);
}

#[test]
fn a_worker_is_stopped_through_its_handle_and_join() {
    let server = RedisServer::start();
    let options = server.options();
    let recorder = Arc::new(Recorder::default());
    let worker = worker(options.clone(), &recorder, "joined");
    let debug = format!("{worker:?}");
    assert!(
        debug.contains("joined") && debug.contains("{wasender}:events"),
        "{debug}"
    );
    let handle = worker.shutdown_handle();
    let stopper = thread::spawn(move || {
        // Gives `join` below time to be waiting when the stop comes (the
        // input of this test; nothing is asserted of this pause).
        thread::sleep(Duration::from_millis(100));
        handle.shutdown();
    });
    let stats = worker.join();
    stopper.join().expect("the stopping thread");
    assert_eq!(stats.in_flight, 0);
    assert_eq!(consumers(&server, &options.events_key(), "wasender"), []);
}

/// The message ids of the entries pending in group `wasender` of `key`
/// (none before the worker created the group).
fn pending_message_ids(server: &RedisServer, key: &str) -> Vec<String> {
    let reply = redis::cmd("XPENDING")
        .arg(key)
        .arg("wasender")
        .arg("-")
        .arg("+")
        .arg(100)
        .query::<redis::streams::StreamPendingCountReply>(&mut server.connection());
    let pending = match reply {
        Ok(pending) => pending,
        Err(e) if e.code() == Some("NOGROUP") => return Vec::new(),
        Err(e) => panic!("XPENDING failed: {e}"),
    };
    pending
        .ids
        .iter()
        .filter_map(|p| {
            let range: redis::streams::StreamRangeReply =
                server.query(&["XRANGE", key, &p.id, &p.id]);
            let entry = range.ids.into_iter().next()?;
            let body: String = entry.get("body")?;
            let json: serde_json::Value = serde_json::from_str(&body).ok()?;
            Some(json["data"]["messages"]["key"]["id"].as_str()?.to_owned())
        })
        .collect()
}
