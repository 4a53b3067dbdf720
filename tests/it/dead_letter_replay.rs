//! Dead letters are replayable: an event that failed every attempt is
//! requeued — offline with `JournalDir` on a stopped listener's directory, or
//! through a running listener (durable and in-memory) — and handled exactly
//! once, past the dedupe window; a second requeue adds nothing; purge empties
//! the list.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use wasenderapi::handler::HandlerRetryPolicy;
use wasenderapi::journal::{JournalDir, Requeue};
use wasenderapi::listener::DeliveryMode;
use wasenderapi::listener::WebhookListenerBuilder;
use wasenderapi::{WebhookListener, WebhookVerifier};

use crate::support::{event, post, wait_until, Recorder, TempDir, SECRET};

const WAIT: Duration = Duration::from_secs(10);

fn builder(recorder: &Arc<Recorder>) -> WebhookListenerBuilder<Recorder> {
    WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Arc::clone(recorder))
        .bind("127.0.0.1:0")
        .handler_threads(1)
        .dedupe(100)
        .handler_retries(
            HandlerRetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(5)),
        )
}

fn durable(recorder: &Arc<Recorder>, dir: &Path) -> WebhookListener {
    builder(recorder)
        .delivery_mode(DeliveryMode::durable(dir))
        .spawn()
        .expect("a durable listener")
}

/// Posts `id` as a `flaky` event while the handler fails, and waits until
/// the listener has dead-lettered it.
fn poison(listener: &WebhookListener, recorder: &Recorder, id: &str) {
    recorder.failing.store(true, Ordering::SeqCst);
    let before = listener.stats().dead_lettered;
    assert_eq!(post(listener.local_addr(), &event(id, "flaky")).status, 200);
    assert!(wait_until(WAIT, || listener.stats().dead_lettered == before + 1));
}

#[test]
fn a_dead_letter_requeued_offline_is_handled_once_at_the_next_start() {
    let tmp = TempDir::new("replay-offline");
    let dir = tmp.join("journal");
    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir);
    poison(&listener, &recorder, "P1");
    assert_eq!(recorder.attempts("P1"), 2);
    listener.shutdown();

    // The handler is fixed; the listener is stopped.
    recorder.failing.store(false, Ordering::SeqCst);
    {
        let journal = JournalDir::open(&dir).expect("open the stopped journal");
        let letters = journal.dead_letters().expect("list");
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].event_id().as_deref(), Some("P1"));
        assert_eq!(letters[0].requeued_as, None);
        let info = journal.stats().expect("stats");
        assert_eq!((info.pending, info.dead_letters, info.requeued), (0, 1, 0));

        assert_eq!(journal.requeue(Requeue::EventId("P1".into())).unwrap(), 1);
        assert_eq!(
            journal.requeue(Requeue::All).unwrap(),
            0,
            "already requeued"
        );
        assert_eq!(
            journal
                .requeue(Requeue::Seq(
                    letters[0].id.seq().expect("a listener letter")
                ))
                .unwrap(),
            0
        );
        let info = journal.stats().expect("stats");
        assert_eq!((info.pending, info.dead_letters, info.requeued), (1, 0, 1));
    }

    // The event's key is in dedupe.log: a requeued event gets past it.
    let listener = durable(&recorder, &dir);
    assert_eq!(listener.stats().recovered, 1);
    assert!(wait_until(WAIT, || recorder.count("P1") == 1));
    let resend = post(listener.local_addr(), &event("P1", "flaky"));
    assert!(resend.is_duplicate(), "{resend:?}");
    assert!(wait_until(WAIT, || listener.stats().queue_depth == 0));
    listener.shutdown();

    let listener = durable(&recorder, &dir);
    assert_eq!(listener.stats().recovered, 0, "handled, so done");
    listener.shutdown();
    assert_eq!(recorder.count("P1"), 1, "handled exactly once");

    let journal = JournalDir::open(&dir).expect("reopen");
    assert_eq!(journal.purge().expect("purge"), 1);
    assert!(journal.dead_letters().expect("list").is_empty());
    assert_eq!(journal.requeue(Requeue::All).expect("requeue"), 0);
}

#[test]
fn a_dead_letter_requeued_on_a_running_durable_listener_is_handled_once() {
    let tmp = TempDir::new("replay-running");
    let dir = tmp.join("journal");
    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir);
    poison(&listener, &recorder, "R1");

    // Requeued while still failing: dead-lettered again, under its new seq.
    let first = listener.dead_letters().expect("list")[0]
        .id
        .seq()
        .expect("a listener letter");
    assert_eq!(
        listener.requeue_dead_letters(Requeue::Seq(first)).unwrap(),
        1
    );
    assert!(wait_until(WAIT, || listener.stats().dead_lettered == 2));
    let letters = listener.dead_letters().expect("list");
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].requeued_as, letters[1].id.seq());
    assert_eq!(letters[1].requeued_as, None);

    recorder.failing.store(false, Ordering::SeqCst);
    assert_eq!(listener.requeue_dead_letters(Requeue::All).unwrap(), 1);
    assert!(wait_until(WAIT, || recorder.count("R1") == 1));
    assert_eq!(listener.requeue_dead_letters(Requeue::All).unwrap(), 0);
    assert_eq!(
        listener
            .requeue_dead_letters(Requeue::EventId("R1".into()))
            .unwrap(),
        0
    );
    assert!(wait_until(WAIT, || listener.stats().queue_depth == 0));
    assert_eq!(listener.purge_dead_letters().expect("purge"), 2);
    assert!(listener.dead_letters().expect("list").is_empty());
    listener.shutdown();

    let listener = durable(&recorder, &dir);
    assert_eq!(listener.stats().recovered, 0);
    listener.shutdown();
    assert_eq!(recorder.count("R1"), 1, "handled exactly once");
    assert!(JournalDir::open(&dir)
        .and_then(|j| j.dead_letters())
        .expect("list")
        .is_empty());
}

#[test]
fn in_memory_dead_letters_are_listed_requeued_once_and_purged() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(&recorder)
        .delivery_mode(DeliveryMode::queued(16))
        .spawn()
        .expect("a queued listener");
    poison(&listener, &recorder, "M1");
    poison(&listener, &recorder, "M2");
    let letters = listener.dead_letters().expect("list");
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].event_id().as_deref(), Some("M2"));

    recorder.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        listener
            .requeue_dead_letters(Requeue::EventId("M2".into()))
            .unwrap(),
        1
    );
    assert_eq!(listener.requeue_dead_letters(Requeue::All).unwrap(), 1);
    assert_eq!(listener.requeue_dead_letters(Requeue::All).unwrap(), 0);
    assert!(wait_until(WAIT, || recorder.count("M1") == 1
        && recorder.count("M2") == 1));
    assert!(wait_until(WAIT, || listener.stats().queue_depth == 0));
    let letters = listener.dead_letters().expect("list");
    assert!(letters.iter().all(|l| l.requeued_as.is_some()));
    assert_eq!(listener.purge_dead_letters().expect("purge"), 2);
    assert!(listener.dead_letters().expect("list").is_empty());
    let stats = listener.shutdown();
    assert_eq!((stats.dead_lettered, stats.dropped), (2, 0));
    assert_eq!((recorder.count("M1"), recorder.count("M2")), (1, 1));
}

#[test]
fn an_inline_listener_has_no_dead_letters() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(&recorder).spawn().expect("an inline listener");
    assert!(listener.dead_letters().expect("list").is_empty());
    assert_eq!(listener.requeue_dead_letters(Requeue::All).unwrap(), 0);
    assert_eq!(listener.purge_dead_letters().unwrap(), 0);
    listener.shutdown();
}
