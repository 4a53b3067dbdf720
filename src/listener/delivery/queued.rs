//! The queued delivery modes: a bounded queue between the connection threads
//! (which verify, parse, optionally journal, and answer) and the handler threads
//! (which run the handler with retries, then mark the event done or
//! dead-letter it).
//!
//! In durable mode the request path is: dedupe lookup (a duplicate is answered
//! 200), reserve a queue slot (none free: 503 before anything is written),
//! append to the journal (fsynced, group-committed; an error: 503), insert the
//! dedupe key (lost a race with the same event: mark the new record done and
//! answer 200 as a duplicate), enqueue, answer 200. A key is only ever inserted
//! after its event is durable, so a duplicate answer never hides an event that
//! could still be lost.
//!
//! Events replayed from the journal (the backlog at start, requeued dead
//! letters) reach the handler threads through the queue's feed (queue.rs),
//! read back in small batches, ahead of new events.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::super::stats::{Counters, Event};
use super::queue::{Item, Queue, Refill, Slot, REPLAY_BATCH, REPLAY_BATCH_BYTES};
use super::Deadline;
use super::{Delivered, Delivery, Then};
use crate::event::{parse_event, WasenderWebhookEvent};
pub(crate) use crate::handler::DeadLetterHook;
use crate::handler::{
    report_dead_letter, run_attempts, Attempts, DeadLetter, DeadLetterId, Ended, HandlerFailure,
    HandlerRetryPolicy, LastCall, ThreadGroup, WebhookHandler,
};
use crate::journal::open_journal;
use crate::journal::{
    self, DeadLetters, DedupeWindow, Journal, JournalOptions, Requeue, Seq, DEAD_LETTER_FILE,
    DEDUPE_FILE,
};
use crate::sync::lock;

/// How many dead letters the in-memory queued mode keeps for
/// [`WebhookListener::dead_letters`](crate::WebhookListener::dead_letters)
/// and requeueing; past it, the oldest is forgotten (with a warning).
/// Durable mode keeps every one in `dead-letters.jsonl`.
pub(crate) const MEMORY_DEAD_LETTER_LIMIT: usize = 1000;

/// How long shutdown waits for handler threads still inside the handler after
/// the drain deadline before leaving them behind.
const STRAGGLER_WAIT: Duration = Duration::from_millis(500);

/// Everything the queued modes are configured with.
pub(crate) struct QueuedConfig {
    pub capacity: usize,
    pub journal_dir: Option<PathBuf>,
    pub max_record_size: usize,
    pub handler_threads: usize,
    pub retry: HandlerRetryPolicy,
    pub dedupe_capacity: Option<usize>,
    pub on_dead_letter: Option<DeadLetterHook>,
}

/// What the queued modes keep on disk (durable mode only).
struct Store {
    dead_letters: DeadLetters,
    /// Declared last so that it is dropped last: it holds the directory's lock.
    journal: Journal,
}

struct Core<H> {
    handler: Arc<H>,
    queue: Queue,
    dedupe: Option<DedupeWindow>,
    store: Option<Store>,
    /// The in-memory mode's dead letters, newest last, at most
    /// [`MEMORY_DEAD_LETTER_LIMIT`].
    memory_letters: Mutex<VecDeque<DeadLetter>>,
    retry: HandlerRetryPolicy,
    on_dead_letter: Option<DeadLetterHook>,
    counters: Arc<Counters>,
    /// Sequence numbers for the in-memory mode (arrival order since start).
    next_seq: AtomicU64,
    /// Replayed events read from the journal at once: at most the capacity.
    replay_batch: usize,
}

/// Delivery through a bounded queue to handler threads, in memory or durable.
pub(crate) struct QueuedDelivery<H> {
    core: Arc<Core<H>>,
    /// The handler threads; taken by the first `finish`.
    threads: Mutex<Option<ThreadGroup>>,
    /// Durable mode: the thread that leads the journal's commits, so that
    /// no request waits for an `fsync` on a worker.
    committer: Mutex<Option<JoinHandle<()>>>,
}

impl<H: WebhookHandler + 'static> QueuedDelivery<H> {
    /// Opens the journal (durable mode), feeds what it recovered to the
    /// queue, and starts the handler threads.
    pub fn start(
        handler: Arc<H>,
        config: QueuedConfig,
        counters: Arc<Counters>,
    ) -> crate::error::Result<Self> {
        let (store, backlog) = match &config.journal_dir {
            Some(dir) => {
                let (store, backlog) = open_store(dir, config.max_record_size)?;
                (Some(store), backlog)
            }
            None => (None, Backlog::default()),
        };
        let dedupe = match (config.dedupe_capacity, &config.journal_dir) {
            (None, _) => None,
            (Some(cap), Some(dir)) => Some(DedupeWindow::open(dir.join(DEDUPE_FILE), cap)?),
            (Some(cap), None) => Some(DedupeWindow::new(cap)),
        };
        if let (Some(store), Some(dedupe)) = (&store, &dedupe) {
            remember_backlog_keys(&store.journal, &backlog, dedupe);
        }
        let queue = Queue::new(config.capacity, Arc::clone(&counters));
        if backlog.count > 0 {
            log::info!(
                "replaying {} event(s) not handled before the last stop",
                backlog.count
            );
            counters.count(Event::Recovered, backlog.count);
            counters.queue_grew(backlog.count);
            queue.feed(backlog.seqs, backlog.count);
        }
        let core = Arc::new(Core {
            handler,
            queue,
            dedupe,
            store,
            memory_letters: Mutex::new(VecDeque::new()),
            retry: config.retry,
            on_dead_letter: config.on_dead_letter,
            counters,
            next_seq: AtomicU64::new(1),
            replay_batch: config.capacity.clamp(1, REPLAY_BATCH),
        });
        let mut threads = ThreadGroup::new();
        for i in 0..config.handler_threads {
            let thread_core = Arc::clone(&core);
            let run = move || thread_core.run();
            if let Err(e) = threads.spawn(format!("wasender-handler-{i}"), run) {
                // Stop the threads already started before failing.
                core.queue.stop();
                threads.join_by(Instant::now() + STRAGGLER_WAIT);
                return Err(e.into());
            }
        }
        let committer = match &core.store {
            Some(_) => {
                let thread_core = Arc::clone(&core);
                let spawned = thread::Builder::new()
                    .name("wasender-journal-commit".to_owned())
                    .spawn(move || {
                        if let Some(store) = &thread_core.store {
                            store.journal.serve_commits();
                        }
                    });
                match spawned {
                    Ok(thread) => Some(thread),
                    Err(e) => {
                        core.queue.stop();
                        threads.join_by(Instant::now() + STRAGGLER_WAIT);
                        return Err(e.into());
                    }
                }
            }
            None => None,
        };
        Ok(Self {
            core,
            threads: Mutex::new(Some(threads)),
            committer: Mutex::new(committer),
        })
    }

    /// Stops the journal's committer thread once what it has to commit is
    /// committed.
    fn stop_committer(&self) {
        let Some(thread) = lock(&self.committer).take() else {
            return;
        };
        if let Some(store) = &self.core.store {
            store.journal.stop_serving_commits();
        }
        let _ = thread.join();
    }
}

/// The events found pending in the journal at start: `count` of them, with
/// seqs in `seqs`.
#[derive(Default)]
struct Backlog {
    seqs: Range<u64>,
    count: u64,
}

fn open_store(dir: &Path, max_record_size: usize) -> crate::error::Result<(Store, Backlog)> {
    let options = JournalOptions::default()
        .max_record_size(u32::try_from(max_record_size).unwrap_or(u32::MAX));
    let (journal, recovery) = open_journal(dir, options)?;
    if !recovery.is_clean() {
        let bytes: u64 = recovery.corruption.iter().map(|c| c.len).sum();
        log::warn!(
            "journal {}: skipped {} damaged range(s), {bytes} bytes (a torn write from a crash?); \
             the intact events are replayed",
            dir.display(),
            recovery.corruption.len()
        );
    }
    let dead_letters = DeadLetters::open(dir.join(DEAD_LETTER_FILE))?;
    let backlog = Backlog {
        seqs: 0..recovery.backlog_end.0,
        count: recovery.pending,
    };
    Ok((
        Store {
            dead_letters,
            journal,
        },
        backlog,
    ))
}

/// Puts the dedupe key of every backlog event in the window, reading them
/// in batches, so that the sender's resend of one is suppressed even when
/// its key aged out of `dedupe.log` or never reached the disk (power loss).
/// Replayed events themselves are never deduplicated: they were checked when
/// they arrived.
fn remember_backlog_keys(journal: &Journal, backlog: &Backlog, dedupe: &DedupeWindow) {
    if backlog.count == 0 {
        return;
    }
    let mut from = backlog.seqs.start;
    loop {
        let batch = journal.read_pending(
            Seq(from)..Seq(backlog.seqs.end),
            REPLAY_BATCH * 4,
            REPLAY_BATCH_BYTES,
        );
        for (_, body) in batch.events {
            let Ok(body) = body else {
                continue; // Reported when the handler thread reads it.
            };
            if let Ok(event) = parse_event(&body) {
                dedupe.check_and_insert(&event.dedupe_key(&body));
            }
        }
        if batch.exhausted {
            break;
        }
        from = batch.next.0;
    }
}

impl<H: WebhookHandler + 'static> Delivery for QueuedDelivery<H> {
    fn deliver(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered {
        self.core.accept(event, body)
    }

    fn answers_later(&self) -> bool {
        self.core.store.is_some()
    }

    fn deliver_then(&self, event: WasenderWebhookEvent, body: &[u8], then: Then) {
        match &self.core.store {
            Some(_) => Core::accept_durable_then(&self.core, event, body, then),
            None => then(self.core.accept(event, body)),
        }
    }

    fn hurry(&self) {
        self.core.queue.hurry();
    }

    fn failure(&self) -> Option<String> {
        self.core.store.as_ref()?.journal.failure()
    }

    fn finish(&self, deadline: Deadline) {
        let core = &self.core;
        let left = core.queue.drain(deadline);
        let why = if left.hurried {
            "stopping at once"
        } else {
            "drain deadline passed"
        };
        if left.events > 0 {
            let n = left.events;
            core.counters.queue_shrank(n);
            if core.store.is_some() {
                log::warn!("{why}: {n} event(s) left in the journal, replayed at the next start");
            } else {
                core.counters.count(Event::Dropped, n);
                log::error!("{why}: {n} queued event(s) dropped unhandled (in-memory queue)");
            }
        }
        if left.busy > 0 {
            log::warn!("{why}: {} handler call(s) still running", left.busy);
        }
        let stragglers = lock(&self.threads).take().map_or(0, |threads| {
            threads.join_by(Instant::now() + STRAGGLER_WAIT)
        });
        if stragglers > 0 {
            log::warn!("{stragglers} handler thread(s) left running inside the handler");
        }
        // Appends still being committed are answered first.
        self.stop_committer();
        if let Some(dedupe) = &core.dedupe {
            if let Err(e) = dedupe.sync() {
                core.journal_error("final dedupe sync", &e);
            }
        }
        if let Some(store) = &core.store {
            // With no thread left to write, the directory is released now,
            // even if parts of the listener outlive it (a ShutdownHandle).
            let closed = if stragglers == 0 {
                store.journal.close()
            } else {
                log::warn!(
                    "journal {} stays locked until the handler thread(s) return",
                    store.journal.dir().display()
                );
                store.journal.sync()
            };
            if let Err(e) = closed {
                core.journal_error("final journal sync", &e);
            }
        }
    }

    fn dead_letters(&self) -> crate::error::Result<Vec<DeadLetter>> {
        match &self.core.store {
            Some(store) => store.dead_letters.list(),
            None => Ok(lock(&self.core.memory_letters).iter().cloned().collect()),
        }
    }

    fn requeue_dead_letters(&self, which: &Requeue) -> crate::error::Result<usize> {
        match &self.core.store {
            Some(store) => self.core.requeue_durable(store, which),
            None => Ok(self.core.requeue_in_memory(which)),
        }
    }

    fn purge_dead_letters(&self) -> crate::error::Result<usize> {
        match &self.core.store {
            Some(store) => journal::purge(&store.dead_letters),
            None => {
                let mut letters = lock(&self.core.memory_letters);
                let purged = letters.len();
                letters.clear();
                Ok(purged)
            }
        }
    }
}

impl<H> Drop for QueuedDelivery<H> {
    fn drop(&mut self) {
        // Normally `finish` ran already; this only stops threads of a listener
        // that failed to start.
        self.core.queue.stop();
        if let Some(thread) = lock(&self.committer).take() {
            if let Some(store) = &self.core.store {
                store.journal.stop_serving_commits();
            }
            let _ = thread.join();
        }
    }
}

/// A queue slot held for an event whose append is being committed: given
/// back if it is not used.
struct Pending<H: WebhookHandler + 'static> {
    core: Arc<Core<H>>,
    used: bool,
}

impl<H: WebhookHandler + 'static> Drop for Pending<H> {
    fn drop(&mut self) {
        if !self.used {
            self.core.queue.release_reserved();
        }
    }
}

impl<H: WebhookHandler + 'static> Pending<H> {
    /// The append is on disk (or failed): the second half of
    /// [`Core::accept_durable`], on the thread that committed it.
    fn appended(
        mut self,
        appended: std::io::Result<Seq>,
        event: WasenderWebhookEvent,
        body: Vec<u8>,
        key: Option<String>,
    ) -> Delivered {
        let core = Arc::clone(&self.core);
        let seq = match appended {
            Ok(seq) => seq,
            Err(e) => {
                core.journal_error("appending an event", &e);
                return Delivered::Unavailable(e.to_string());
            }
        };
        // Inserted only now that the event is durable (see the module docs).
        if let (Some(dedupe), Some(key)) = (&core.dedupe, &key) {
            if !dedupe.check_and_insert(key) {
                // The same event arrived concurrently and won.
                drop(self);
                core.mark_done(seq);
                return Delivered::Duplicate;
            }
        }
        self.used = true;
        core.counters.queue_grew(1);
        let queued = core.queue.push_reserved(Item {
            seq,
            body,
            event: Some(event),
        });
        core.queued(queued, seq)
    }
}

impl<H: WebhookHandler + 'static> Core<H> {
    /// The request path: returns once the event is queued (and durable), or refused.
    fn accept(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered {
        let key = self.dedupe.as_ref().map(|_| event.dedupe_key(body));
        match &self.store {
            None => self.accept_in_memory(event, body, key),
            Some(store) => self.accept_durable(store, event, body, key),
        }
    }

    fn accept_in_memory(
        &self,
        event: WasenderWebhookEvent,
        body: &[u8],
        key: Option<String>,
    ) -> Delivered {
        if let (Some(dedupe), Some(key)) = (&self.dedupe, &key) {
            if !dedupe.check_and_insert(key) {
                return Delivered::Duplicate;
            }
        }
        let delivered = match self.queue.reserve() {
            Some(slot) => {
                let seq = Seq(self.next_seq.fetch_add(1, Ordering::Relaxed));
                self.enqueue(slot, seq, event, body)
            }
            None => Delivered::Busy,
        };
        if let (Delivered::Busy, Some(dedupe), Some(key)) = (&delivered, &self.dedupe, &key) {
            dedupe.remove(key);
        }
        delivered
    }

    fn accept_durable(
        &self,
        store: &Store,
        event: WasenderWebhookEvent,
        body: &[u8],
        key: Option<String>,
    ) -> Delivered {
        if let (Some(dedupe), Some(key)) = (&self.dedupe, &key) {
            if dedupe.contains(key) {
                return Delivered::Duplicate;
            }
        }
        let Some(slot) = self.queue.reserve() else {
            return Delivered::Busy;
        };
        let seq = match store.journal.append(body) {
            Ok(seq) => seq,
            Err(e) => {
                self.journal_error("appending an event", &e);
                return Delivered::Unavailable(e.to_string());
            }
        };
        // Inserted only now that the event is durable (see the module docs).
        if let (Some(dedupe), Some(key)) = (&self.dedupe, &key) {
            if !dedupe.check_and_insert(key) {
                // The same event arrived concurrently and won.
                drop(slot);
                if let Err(e) = store.journal.mark_done(seq) {
                    self.journal_error("marking a duplicate done", &e);
                }
                return Delivered::Duplicate;
            }
        }
        self.enqueue(slot, seq, event, body)
    }

    /// [`accept_durable`](Self::accept_durable) without waiting for the
    /// `fsync`: the event is written now, and `then` is called once it is on
    /// disk, from the journal's committer thread.
    fn accept_durable_then(core: &Arc<Self>, event: WasenderWebhookEvent, body: &[u8], then: Then) {
        let Some(store) = &core.store else {
            return then(Delivered::Unavailable("no journal".to_owned()));
        };
        let key = core.dedupe.as_ref().map(|_| event.dedupe_key(body));
        if let (Some(dedupe), Some(key)) = (&core.dedupe, &key) {
            if dedupe.contains(key) {
                return then(Delivered::Duplicate);
            }
        }
        if !core.queue.reserve_slot() {
            return then(Delivered::Busy);
        }
        let pending = Pending {
            core: Arc::clone(core),
            used: false,
        };
        let owned = body.to_vec();
        store.journal.append_then(body, move |appended| {
            then(pending.appended(appended, event, owned, key));
        });
    }

    /// Puts an accepted event in its reserved slot: the request is answered
    /// 200. When the drain has already ended (its deadline passed while this
    /// request was being stored), a durable event stays in the journal for
    /// the next start (still 200: it is on disk); an in-memory one is refused
    /// (503), never acknowledged and then lost.
    fn enqueue(
        &self,
        slot: Slot<'_>,
        seq: Seq,
        event: WasenderWebhookEvent,
        body: &[u8],
    ) -> Delivered {
        self.counters.queue_grew(1);
        let queued = slot.push(Item {
            seq,
            body: body.to_vec(),
            event: Some(event),
        });
        self.queued(queued, seq)
    }

    /// What to answer for an event put in its slot (`queued`), or refused
    /// because the drain has ended (see [`enqueue`](Self::enqueue)).
    fn queued(&self, queued: bool, seq: Seq) -> Delivered {
        if queued {
            return Delivered::Queued;
        }
        self.counters.queue_shrank(1);
        if self.store.is_some() {
            log::info!(
                "event #{seq} stored as the drain ended: left in the journal for the next start"
            );
            Delivered::Queued
        } else {
            Delivered::Busy
        }
    }

    /// Reads the next batch of replayed events from the journal, from `seqs`.
    fn refill(&self, seqs: Range<u64>) -> Refill {
        let Some(store) = &self.store else {
            return Refill {
                items: Vec::new(),
                failed: 0,
                next: seqs.end,
                exhausted: true,
            };
        };
        let batch = store.journal.read_pending(
            Seq(seqs.start)..Seq(seqs.end),
            self.replay_batch,
            REPLAY_BATCH_BYTES,
        );
        let mut items = Vec::with_capacity(batch.events.len());
        let mut failed = 0;
        for (seq, body) in batch.events {
            match body {
                Ok(body) => items.push(Item {
                    seq,
                    body,
                    event: None,
                }),
                Err(e) => {
                    failed += 1;
                    self.journal_error(
                        &format!("reading event #{seq} back (it stays in the journal)"),
                        &e,
                    );
                }
            }
        }
        Refill {
            items,
            failed,
            next: batch.next.0,
            exhausted: batch.exhausted,
        }
    }

    /// Requeues dead letters into the running listener's journal: they are
    /// fed to the handler threads ahead of new events.
    fn requeue_durable(&self, store: &Store, which: &Requeue) -> crate::error::Result<usize> {
        let seqs = journal::requeue(&store.journal, &store.dead_letters, which)?;
        let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
            return Ok(0);
        };
        let count = seqs.len() as u64;
        self.counters.queue_grew(count);
        if !self.queue.feed(first.0..last.0 + 1, count) {
            self.counters.queue_shrank(count);
            log::warn!("{count} requeued event(s) left in the journal: the listener is stopping");
        }
        Ok(seqs.len())
    }

    /// Requeues dead letters kept in memory: they go to the handler threads
    /// ahead of new events, past the queue's capacity (they are in memory
    /// already, and at most [`MEMORY_DEAD_LETTER_LIMIT`]).
    fn requeue_in_memory(&self, which: &Requeue) -> usize {
        let mut letters = lock(&self.memory_letters);
        let mut items = Vec::new();
        for letter in letters.iter_mut() {
            if letter.requeued_as.is_some() || !which.matches(letter) {
                continue;
            }
            let seq = Seq(self.next_seq.fetch_add(1, Ordering::Relaxed));
            letter.requeued_as = Some(seq.0);
            items.push(Item {
                seq,
                body: letter.payload.clone(),
                event: None,
            });
        }
        drop(letters);
        let count = items.len();
        if count == 0 {
            return 0;
        }
        self.counters.queue_grew(count as u64);
        if let Err(items) = self.queue.replay(items) {
            let n = items.len() as u64;
            self.counters.queue_shrank(n);
            self.counters.count(Event::Dropped, n);
            log::error!("{n} requeued event(s) dropped: the listener is stopping");
        }
        log::info!("requeued {count} dead letter(s) kept in memory");
        count
    }

    fn journal_error(&self, what: &str, error: &std::io::Error) {
        self.counters.count(Event::JournalError, 1);
        log::error!("journal error while {what}: {error}");
    }

    /// A handler thread: take events until the queue is drained or stopped.
    fn run(&self) {
        while let Some(item) = self.queue.next(&|seqs| self.refill(seqs)) {
            let finished = self.handle(item);
            if finished {
                self.counters.queue_shrank(1);
            }
            self.queue.finished();
        }
    }

    /// Runs the handler with retries ([`run_attempts`]); returns `false`
    /// when the event was abandoned to shutdown (it is then accounted for here).
    fn handle(&self, item: Item) -> bool {
        let event = match item.event {
            Some(event) => event,
            None => match parse_event(&item.body) {
                Ok(event) => event,
                Err(e) => {
                    let error = format!("the journaled event no longer parses: {e}");
                    self.dead_letter(item.seq, item.body, 0, LastCall::NotBegun, error);
                    return true;
                }
            },
        };
        let mut run = Run {
            core: self,
            seq: item.seq,
            body: Some(item.body),
        };
        let what = format!("#{}", item.seq);
        !matches!(
            run_attempts(&*self.handler, &event, &self.retry, 1, &what, &mut run),
            Ended::Left
        )
    }

    fn mark_done(&self, seq: Seq) {
        if let Some(store) = &self.store {
            if let Err(e) = store.journal.mark_done(seq) {
                // It stays pending: handled again after a restart (at-least-once).
                self.journal_error("marking an event done", &e);
            }
        }
    }

    /// An event waiting to retry when shutdown gave up on it.
    fn abandon(&self, seq: Seq) {
        self.counters.queue_shrank(1);
        if self.store.is_some() {
            log::info!("event #{seq} left in the journal at shutdown; retried at the next start");
        } else {
            self.counters.count(Event::Dropped, 1);
            log::error!(
                "event #{seq} dropped at shutdown while waiting to retry (in-memory queue)"
            );
        }
    }

    fn dead_letter(
        &self,
        seq: Seq,
        body: Vec<u8>,
        attempts: u32,
        last_call: LastCall,
        error: String,
    ) {
        let letter =
            DeadLetter::given_up(DeadLetterId::Seq(seq.0), body, attempts, last_call, error);
        match &self.store {
            Some(store) => {
                if let Err(e) = store.dead_letters.record(&letter) {
                    // Not marked done: it stays in the journal rather than be lost.
                    log::error!("webhook event #{seq} could not be dead-lettered: {letter}");
                    self.journal_error("writing a dead letter", &e);
                    return;
                }
                self.mark_done(seq);
            }
            None => {
                let mut letters = lock(&self.memory_letters);
                if letters.len() >= MEMORY_DEAD_LETTER_LIMIT {
                    if let Some(old) = letters.pop_front() {
                        log::warn!(
                            "forgetting dead letter {} (in-memory queue: only the last \
                             {MEMORY_DEAD_LETTER_LIMIT} are kept)",
                            old.id
                        );
                    }
                }
                letters.push_back(letter.clone());
            }
        }
        self.counters.count(Event::DeadLettered, 1);
        report_dead_letter(&letter, self.on_dead_letter.as_ref());
    }
}

/// One event's way through [`run_attempts`] in the queued modes: attempts
/// are counted in memory, waits end early at shutdown, dead letters go to
/// the file (durable) or the in-memory list.
struct Run<'a, H> {
    core: &'a Core<H>,
    seq: Seq,
    /// Taken by the dead letter.
    body: Option<Vec<u8>>,
}

impl<H: WebhookHandler + 'static> Attempts for Run<'_, H> {
    fn call(
        &mut self,
        call: &mut dyn FnMut() -> Result<(), HandlerFailure>,
    ) -> Result<(), HandlerFailure> {
        self.core.counters.time_handler(call)
    }

    fn handled(&mut self, _call: u32) {
        self.core.counters.count(Event::Handled, 1);
        self.core.mark_done(self.seq);
    }

    fn failed(&mut self, _call: u32, failure: &HandlerFailure) {
        let kind = if failure.panicked {
            Event::HandlerPanic
        } else {
            Event::HandlerError
        };
        self.core.counters.count(kind, 1);
    }

    fn wait(&mut self, delay: Duration) -> bool {
        let waited = self.core.queue.backoff(delay, self.core.store.is_some());
        if !waited {
            self.core.abandon(self.seq);
        }
        waited
    }

    fn begin(&mut self, _call: u32) -> bool {
        self.core.counters.count(Event::Retried, 1);
        true
    }

    fn give_up(&mut self, attempts: u32, last_call: LastCall, error: String) {
        let body = self.body.take().unwrap_or_default();
        self.core
            .dead_letter(self.seq, body, attempts, last_call, error);
    }
}
