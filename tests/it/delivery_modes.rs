//! Delivery modes over loopback: inline vs queued answers, a full queue,
//! draining at shutdown, the journal's replay (also after a torn write),
//! retries, dead letters, and dedupe (also across a restart).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasenderapi::handler::{DeadLetter, HandlerRetryPolicy};
use wasenderapi::journal::DeadLetters;
use wasenderapi::listener::WebhookListenerBuilder;
use wasenderapi::listener::{DeliveryMode, ListenerStats};
use wasenderapi::{WasenderError, WebhookListener, WebhookVerifier};

use crate::support::{event, post, wait_until, Conn, Recorder, TempDir, SECRET};

const WAIT: Duration = Duration::from_secs(10);

fn builder(recorder: &Arc<Recorder>) -> WebhookListenerBuilder<Recorder> {
    WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Arc::clone(recorder))
        .bind("127.0.0.1:0")
        .workers(2)
        .idle_timeout(Duration::from_millis(300))
        .request_timeout(Duration::from_secs(2))
        .handler_retries(
            HandlerRetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(20)),
        )
}

fn queued(recorder: &Arc<Recorder>, capacity: usize) -> WebhookListenerBuilder<Recorder> {
    builder(recorder).delivery_mode(DeliveryMode::queued(capacity))
}

fn durable(recorder: &Arc<Recorder>, dir: &TempDir) -> WebhookListenerBuilder<Recorder> {
    builder(recorder).delivery_mode(DeliveryMode::durable(dir.path()).with_capacity(256))
}

#[test]
fn queued_mode_answers_before_the_handler_runs() {
    let recorder = Arc::new(Recorder::default());
    let listener = queued(&recorder, 16).handler_threads(1).spawn().unwrap();
    let addr = listener.local_addr();
    let answer = post(addr, &event("Q1", "block"));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("messages.received"), "{answer:?}");
    assert!(
        recorder.handled().is_empty(),
        "answered before the handler ran"
    );
    assert!(wait_until(WAIT, || listener.stats().queued == 1));
    recorder.open_gate();
    assert!(wait_until(WAIT, || recorder.count("Q1") == 1));
    assert!(wait_until(WAIT, || listener.stats().queue_depth == 0));
    let stats = listener.shutdown();
    assert_eq!((stats.queued, stats.handled, stats.received), (1, 1, 1));
}

#[test]
fn inline_mode_is_unchanged_and_answers_500_without_retrying() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(&recorder).spawn().unwrap();
    let addr = listener.local_addr();
    assert_eq!(post(addr, &event("I1", "x")).status, 200);
    assert_eq!(recorder.count("I1"), 1, "handled before the answer");
    assert_eq!(post(addr, &event("I2", "fail")).status, 500);
    assert_eq!(recorder.attempts("I2"), 1);
    let stats = listener.shutdown();
    assert_eq!(
        (stats.handled, stats.handler_errors, stats.queued),
        (1, 1, 0)
    );
}

#[test]
fn a_full_queue_answers_503_and_recovers_when_drained() {
    let recorder = Arc::new(Recorder::default());
    let listener = queued(&recorder, 2).handler_threads(1).spawn().unwrap();
    let addr = listener.local_addr();
    assert_eq!(post(addr, &event("F1", "block")).status, 200);
    assert_eq!(post(addr, &event("F2", "x")).status, 200);
    let full = post(addr, &event("F3", "x"));
    assert_eq!(full.status, 503, "{full:?}");
    assert_eq!(full.header("retry-after"), Some("1"));
    // Counted once the answer is written: poll.
    assert!(wait_until(WAIT, || listener.stats().rejected_saturated == 1));
    recorder.open_gate();
    assert!(wait_until(WAIT, || listener.stats().queue_depth == 0));
    assert_eq!(
        post(addr, &event("F3", "x")).status,
        200,
        "the sender's retry"
    );
    assert!(wait_until(WAIT, || recorder.count("F3") == 1));
    let stats = listener.shutdown();
    assert_eq!(recorder.handled().len(), 3);
    assert_eq!((stats.queued, stats.handled, stats.dropped), (3, 3, 0));
}

#[test]
fn shutdown_drains_the_memory_queue() {
    let recorder = Arc::new(Recorder::default());
    let listener = queued(&recorder, 64).handler_threads(1).spawn().unwrap();
    let addr = listener.local_addr();
    let mut conn = Conn::open(addr);
    for i in 0..20 {
        let answer = conn.post_signed(&event(&format!("D{i}"), "slow1"));
        assert_eq!(answer.status, 200);
    }
    let stats = listener.shutdown();
    assert_eq!(
        recorder.handled().len(),
        20,
        "every queued event handled before shutdown returned"
    );
    assert_eq!(
        (stats.handled, stats.dropped, stats.queue_depth),
        (20, 0, 0)
    );
}

#[test]
fn the_drain_deadline_drops_and_counts_what_is_left_in_memory() {
    let recorder = Arc::new(Recorder::default());
    let listener = queued(&recorder, 64)
        .handler_threads(1)
        .drain_timeout(Duration::from_millis(150))
        .spawn()
        .unwrap();
    let mut conn = Conn::open(listener.local_addr());
    for i in 0..20 {
        assert_eq!(
            conn.post_signed(&event(&format!("M{i}"), "slow10")).status,
            200
        );
    }
    let started = Instant::now();
    let stats = listener.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(stats.dropped >= 5, "{stats:?}");
    assert_eq!(stats.handled + stats.dropped, 20, "{stats:?}");
    assert_eq!(stats.queue_depth, 0);
}

#[test]
fn durable_shutdown_leaves_the_rest_in_the_journal_and_a_restart_replays_it() {
    let dir = TempDir::new("leave");
    let first = Arc::new(Recorder::default());
    let listener = durable(&first, &dir)
        .handler_threads(1)
        .drain_timeout(Duration::from_millis(100))
        .spawn()
        .unwrap();
    let mut conn = Conn::open(listener.local_addr());
    let ids: Vec<String> = (0..10).map(|i| format!("J{i}")).collect();
    for id in &ids {
        assert_eq!(conn.post_signed(&event(id, "slow10")).status, 200);
    }
    let stats = listener.shutdown();
    let done_first = first.handled();
    assert!(done_first.len() < 10, "the deadline left some: {stats:?}");
    assert_eq!(stats.dropped, 0, "nothing is dropped in durable mode");

    let second = Arc::new(Recorder::default());
    let listener = durable(&second, &dir).spawn().unwrap();
    assert_eq!(listener.stats().recovered, 10 - done_first.len() as u64);
    assert!(wait_until(WAIT, || first.handled().len()
        + second.handled().len()
        == 10));
    let stats = listener.shutdown();
    let mut all = done_first;
    all.extend(second.handled());
    all.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        all, expected,
        "each event handled exactly once across the restart"
    );
    assert_eq!(stats.queued, 0);

    // Everything is done now: a third start replays nothing.
    let third = Arc::new(Recorder::default());
    let listener = durable(&third, &dir).spawn().unwrap();
    assert_eq!(listener.stats().recovered, 0);
    listener.shutdown();
}

#[test]
fn a_journal_torn_mid_record_replays_every_intact_event_in_order() {
    let dir = TempDir::new("torn");
    {
        // Six events left in the journal with no done marker: each attempt
        // fails, and the shutdown interrupts the retry backoff.
        let recorder = Arc::new(Recorder::default());
        recorder.failing.store(true, Ordering::SeqCst);
        let listener = durable(&recorder, &dir)
            .handler_threads(1)
            .handler_retries(
                HandlerRetryPolicy::default()
                    .max_attempts(5)
                    .initial_backoff(Duration::from_secs(20)),
            )
            .spawn()
            .unwrap();
        for i in 0..6 {
            let answer = post(listener.local_addr(), &event(&format!("T{i}"), "flaky"));
            assert_eq!(answer.status, 200);
        }
        assert!(wait_until(WAIT, || recorder.attempts("T0") == 1));
        listener.shutdown();
    }
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .max()
        .expect("a segment");
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 7).unwrap(); // cuts the last record in half
    drop(file);

    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir).handler_threads(1).spawn().unwrap();
    assert_eq!(listener.stats().recovered, 5);
    assert!(wait_until(WAIT, || recorder.handled().len() == 5));
    assert_eq!(
        recorder.handled(),
        ["T0", "T1", "T2", "T3", "T4"],
        "replayed in order"
    );
    // The journal goes on accepting after the damaged tail was cut off.
    assert_eq!(post(listener.local_addr(), &event("T9", "x")).status, 200);
    assert!(wait_until(WAIT, || recorder.count("T9") == 1));
    listener.shutdown();
}

#[test]
fn failures_are_retried_with_backoff_then_dead_lettered_to_the_hook() {
    let recorder = Arc::new(Recorder::default());
    let letters: Arc<Mutex<Vec<DeadLetter>>> = Arc::default();
    let sink = Arc::clone(&letters);
    let listener = queued(&recorder, 16)
        .on_dead_letter(move |letter| sink.lock().unwrap().push(letter.clone()))
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let recovers = event("R1", "fail2");
    let fails = event("R2", "fail");
    let panics = event("R3", "panic");
    for body in [&recovers, &fails, &panics] {
        assert_eq!(
            post(addr, body).status,
            200,
            "queued: answered before the handler"
        );
    }
    assert!(wait_until(WAIT, || letters.lock().unwrap().len() == 2));
    assert!(wait_until(WAIT, || recorder.count("R1") == 1));
    let stats = listener.shutdown();
    assert_eq!(recorder.attempts("R1"), 3, "failed twice, then succeeded");
    assert_eq!(recorder.attempts("R2"), 3);
    assert_eq!(
        recorder.attempts("R3"),
        3,
        "a panic counts as a failure and is retried"
    );
    let letters = letters.lock().unwrap();
    let failed = letters
        .iter()
        .find(|l| l.payload == fails)
        .expect("R2 dead-lettered");
    assert_eq!(failed.attempts, 3);
    assert!(failed.error.contains("always fails"), "{failed:?}");
    let panicked = letters
        .iter()
        .find(|l| l.payload == panics)
        .expect("R3 dead-lettered");
    assert!(panicked.error.contains("panic"), "{panicked:?}");
    assert_eq!(stats.dead_lettered, 2);
    assert_eq!(stats.retried, 6);
    assert_eq!(
        (stats.handled, stats.handler_errors, stats.handler_panics),
        (1, 5, 3)
    );
}

#[test]
fn durable_dead_letters_go_to_the_file_and_are_not_replayed() {
    let dir = TempDir::new("dead");
    let recorder = Arc::new(Recorder::default());
    let hooked = Arc::new(Mutex::new(0));
    let count = Arc::clone(&hooked);
    let listener = durable(&recorder, &dir)
        .on_dead_letter(move |_| *count.lock().unwrap() += 1)
        .spawn()
        .unwrap();
    let body = event("DL1", "fail");
    assert_eq!(post(listener.local_addr(), &body).status, 200);
    assert!(wait_until(WAIT, || *hooked.lock().unwrap() == 1));
    listener.shutdown();
    let letters = DeadLetters::read(dir.join("dead-letters.jsonl")).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].payload.as_slice(), letters[0].attempts),
        (body.as_slice(), 3)
    );

    let again = Arc::new(Recorder::default());
    let listener = durable(&again, &dir).spawn().unwrap();
    assert_eq!(listener.stats().recovered, 0, "a dead letter is done with");
    listener.shutdown();
    assert_eq!(again.attempts("DL1"), 0);
}

#[test]
fn shutdown_interrupts_a_retry_backoff() {
    let long_backoff = HandlerRetryPolicy::default()
        .max_attempts(5)
        .initial_backoff(Duration::from_secs(20));
    // Durable: given up at once, left in the journal, retried at the next start.
    let dir = TempDir::new("backoff");
    let recorder = Arc::new(Recorder::default());
    recorder.failing.store(true, Ordering::SeqCst);
    let listener = durable(&recorder, &dir)
        .handler_retries(long_backoff.clone())
        .spawn()
        .unwrap();
    let stats = first_attempt_then_shutdown(listener, &recorder, "B1");
    assert_eq!((stats.dropped, stats.queue_depth), (0, 0));
    let again = Arc::new(Recorder::default());
    let listener = durable(&again, &dir).spawn().unwrap();
    assert!(
        wait_until(WAIT, || again.count("B1") == 1),
        "replayed and handled"
    );
    listener.shutdown();

    // In memory: given up at the drain deadline, counted as dropped.
    let recorder = Arc::new(Recorder::default());
    recorder.failing.store(true, Ordering::SeqCst);
    let listener = queued(&recorder, 8)
        .handler_retries(long_backoff)
        .drain_timeout(Duration::from_millis(200))
        .spawn()
        .unwrap();
    let stats = first_attempt_then_shutdown(listener, &recorder, "B2");
    assert_eq!((stats.dropped, stats.queue_depth), (1, 0));
}

/// Posts a failing event, waits for its first attempt, then shuts down: the
/// long retry backoff must not hold the shutdown up.
fn first_attempt_then_shutdown(
    listener: WebhookListener,
    recorder: &Recorder,
    id: &str,
) -> ListenerStats {
    assert_eq!(post(listener.local_addr(), &event(id, "flaky")).status, 200);
    assert!(wait_until(WAIT, || recorder.attempts(id) == 1));
    let started = Instant::now();
    let stats = listener.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    stats
}

#[test]
fn dedupe_suppresses_repeats_in_every_mode() {
    let dir = TempDir::new("dedupe-modes");
    for mode in [
        DeliveryMode::Inline,
        DeliveryMode::queued(16),
        DeliveryMode::durable(dir.path()),
    ] {
        let recorder = Arc::new(Recorder::default());
        let listener = builder(&recorder)
            .delivery_mode(mode.clone())
            .dedupe(100)
            .spawn()
            .unwrap();
        let addr = listener.local_addr();
        assert_eq!(post(addr, &event("U1", "x")).status, 200);
        let again = post(addr, &event("U1", "another body, same message id"));
        assert_eq!(again.status, 200, "{mode:?}");
        assert!(again.is_duplicate(), "{again:?}");
        assert!(wait_until(WAIT, || recorder.count("U1") == 1));
        let stats = listener.shutdown();
        assert_eq!(recorder.count("U1"), 1, "{mode:?}");
        assert_eq!(stats.deduplicated, 1, "{mode:?}");
    }
}

#[test]
fn inline_dedupe_lets_the_retry_of_a_failed_event_through() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(&recorder).dedupe(100).spawn().unwrap();
    let addr = listener.local_addr();
    assert_eq!(post(addr, &event("X1", "fail1")).status, 500);
    assert_eq!(
        post(addr, &event("X1", "fail1")).status,
        200,
        "not a duplicate"
    );
    assert_eq!(recorder.count("X1"), 1);
    assert_eq!(listener.shutdown().deduplicated, 0);
}

#[test]
fn durable_dedupe_survives_a_restart() {
    let dir = TempDir::new("dedupe-restart");
    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir).dedupe(1000).spawn().unwrap();
    assert_eq!(post(listener.local_addr(), &event("S1", "x")).status, 200);
    assert!(wait_until(WAIT, || recorder.count("S1") == 1));
    listener.shutdown();

    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir).dedupe(1000).spawn().unwrap();
    let again = post(listener.local_addr(), &event("S1", "x"));
    assert!(again.is_duplicate(), "{again:?}");
    assert_eq!(post(listener.local_addr(), &event("S2", "x")).status, 200);
    assert!(wait_until(WAIT, || recorder.count("S2") == 1));
    let stats = listener.shutdown();
    assert_eq!(recorder.count("S1"), 0);
    assert_eq!(stats.deduplicated, 1);

    // Control: without dedupe the same event is handled again.
    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir).spawn().unwrap();
    assert_eq!(post(listener.local_addr(), &event("S1", "x")).status, 200);
    assert!(wait_until(WAIT, || recorder.count("S1") == 1));
    listener.shutdown();
}

#[test]
fn invalid_delivery_settings_are_refused() {
    let recorder = Arc::new(Recorder::default());
    let file = TempDir::new("not-a-dir");
    let not_a_dir = file.join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    for built in [
        queued(&recorder, 0).spawn(),
        queued(&recorder, 4).handler_threads(0).spawn(),
        builder(&recorder).dedupe(0).spawn(),
    ] {
        assert!(
            matches!(built, Err(WasenderError::InvalidArgument(_))),
            "{built:?}"
        );
    }
    let built = builder(&recorder)
        .delivery_mode(DeliveryMode::durable(&not_a_dir))
        .spawn();
    assert!(
        matches!(&built, Err(WasenderError::Journal { path, .. }) if *path == not_a_dir),
        "{built:?}"
    );
}
