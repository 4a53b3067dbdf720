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

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::delivery::{key_of, Delivered, Delivery};
use super::limits::{join_before, Deadline};
use super::mode::HandlerRetryPolicy;
use super::stats::{Counters, Event};
use super::workers::panic_message;
use crate::event::{parse_event, WasenderWebhookEvent};
use crate::handler::{dispatch, WebhookHandler};
use crate::journal::{DeadLetter, DeadLetters, DedupeWindow, Journal, JournalOptions, Seq};
use crate::sync::{lock, wait, wait_timeout};

/// The hook called with every dead letter.
pub(crate) type DeadLetterHook = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

/// The dead-letter file's name in the journal directory.
pub(crate) const DEAD_LETTER_FILE: &str = "dead-letters.jsonl";
/// The dedupe window's file name in the journal directory.
pub(crate) const DEDUPE_FILE: &str = "dedupe.log";

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

/// One event on its way to the handler.
struct Item {
    seq: Seq,
    body: Vec<u8>,
    /// Parsed on the request path; `None` for a replayed event (parsed by the handler thread).
    event: Option<WasenderWebhookEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepting and handling.
    Running,
    /// Shutdown began: no new events; handle what is queued.
    Draining,
    /// The drain deadline passed: take nothing more.
    Stopped,
}

struct State {
    /// Events replayed from the journal; handed out before `items`.
    backlog: VecDeque<Item>,
    items: VecDeque<Item>,
    /// Slots promised to requests still writing to the journal.
    reserved: usize,
    /// Events taken by a handler thread and not finished.
    busy: usize,
    capacity: usize,
    phase: Phase,
    /// Shutdown was told to stop waiting for the drain (the second signal).
    hurried: bool,
}

impl State {
    fn idle(&self) -> bool {
        self.backlog.is_empty() && self.items.is_empty() && self.busy == 0 && self.reserved == 0
    }
}

struct Queue {
    state: Mutex<State>,
    /// Phase changes and progress towards idle (the drain and retry waits).
    changed: Condvar,
    /// An item was queued: wakes one waiting handler thread (not all of them).
    available: Condvar,
}

/// A promised queue slot; given back when dropped unused.
struct Slot<'a> {
    queue: &'a Queue,
    used: bool,
}

impl Slot<'_> {
    /// Queues `item`; `false` (and the slot given back) when shutdown has
    /// already stopped taking events from the queue, so nobody would handle it.
    fn push(mut self, item: Item) -> bool {
        let mut s = lock(&self.queue.state);
        s.reserved -= 1;
        self.used = true;
        let phase = s.phase;
        if phase != Phase::Stopped {
            s.items.push_back(item);
        }
        drop(s);
        if phase == Phase::Running {
            self.queue.available.notify_one();
        } else {
            self.queue.wake_all();
        }
        phase != Phase::Stopped
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.used {
            let mut s = lock(&self.queue.state);
            s.reserved -= 1;
            let running = s.phase == Phase::Running;
            drop(s);
            if !running {
                self.queue.wake_all();
            }
        }
    }
}

impl Queue {
    fn new(capacity: usize, backlog: VecDeque<Item>) -> Self {
        Self {
            state: Mutex::new(State {
                backlog,
                items: VecDeque::new(),
                reserved: 0,
                busy: 0,
                capacity,
                phase: Phase::Running,
                hurried: false,
            }),
            changed: Condvar::new(),
            available: Condvar::new(),
        }
    }

    /// A slot for one more event, or `None` when the queue is full or closing.
    /// Replayed events do not count against the capacity: they are in memory already.
    fn reserve(&self) -> Option<Slot<'_>> {
        let mut s = lock(&self.state);
        if s.phase != Phase::Running || s.items.len() + s.busy + s.reserved >= s.capacity {
            return None;
        }
        s.reserved += 1;
        Some(Slot {
            queue: self,
            used: false,
        })
    }

    /// The next event to handle; `None` once the queue is drained at shutdown or stopped.
    fn next(&self) -> Option<Item> {
        let mut s = lock(&self.state);
        loop {
            if s.phase == Phase::Stopped {
                return None;
            }
            if let Some(item) = s.backlog.pop_front().or_else(|| s.items.pop_front()) {
                s.busy += 1;
                return Some(item);
            }
            if s.phase == Phase::Draining && s.reserved == 0 {
                return None;
            }
            s = wait(&self.available, s);
        }
    }

    /// A handler thread finished an event.
    fn finished(&self) {
        let mut s = lock(&self.state);
        s.busy -= 1;
        let running = s.phase == Phase::Running;
        drop(s);
        if !running {
            // Only the drain waits for the queue to become idle.
            self.changed.notify_all();
        }
    }

    /// Waits on `changed` for at most `left`.
    fn wait_changed<'a>(&self, s: MutexGuard<'a, State>, left: Duration) -> MutexGuard<'a, State> {
        wait_timeout(&self.changed, s, left).0
    }

    /// Wakes every waiter: after a phase change, or progress while draining.
    fn wake_all(&self) {
        self.changed.notify_all();
        self.available.notify_all();
    }

    /// Sleeps `delay` before a retry. Returns `false` when woken early because
    /// the event must be abandoned: from the start of shutdown when it is safe
    /// in the journal, else from the drain deadline.
    fn backoff(&self, delay: Duration, durable: bool) -> bool {
        let abandon = |phase: Phase| match phase {
            Phase::Running => false,
            Phase::Draining => durable,
            Phase::Stopped => true,
        };
        let until = Deadline::after(delay);
        let mut s = lock(&self.state);
        loop {
            if abandon(s.phase) {
                return false;
            }
            let Some(left) = until.remaining() else {
                return true;
            };
            s = self.wait_changed(s, left);
        }
    }
}

/// What the queued modes keep on disk (durable mode only).
struct Store {
    journal: Journal,
    dead_letters: DeadLetters,
}

struct Core<H> {
    handler: Arc<H>,
    queue: Queue,
    store: Option<Store>,
    dedupe: Option<DedupeWindow>,
    retry: HandlerRetryPolicy,
    on_dead_letter: Option<DeadLetterHook>,
    counters: Arc<Counters>,
    /// Sequence numbers for the in-memory mode (arrival order since start).
    next_seq: AtomicU64,
}

/// Delivery through a bounded queue to handler threads, in memory or durable.
pub(crate) struct QueuedDelivery<H> {
    core: Arc<Core<H>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl<H: WebhookHandler + 'static> QueuedDelivery<H> {
    /// Opens the journal (durable mode), queues what it recovered, and starts
    /// the handler threads.
    pub fn start(
        handler: Arc<H>,
        config: QueuedConfig,
        counters: Arc<Counters>,
    ) -> crate::Result<Self> {
        let (store, recovered) = match &config.journal_dir {
            Some(dir) => {
                let (store, recovered) = open_store(dir, config.max_record_size)?;
                (Some(store), recovered)
            }
            None => (None, Vec::new()),
        };
        let dedupe = match (config.dedupe_capacity, &config.journal_dir) {
            (None, _) => None,
            (Some(cap), Some(dir)) => Some(DedupeWindow::open(dir.join(DEDUPE_FILE), cap)?),
            (Some(cap), None) => Some(DedupeWindow::new(cap)),
        };
        let mut backlog = VecDeque::with_capacity(recovered.len());
        for (seq, body) in recovered {
            // Replayed without verifying again (the secret may have rotated) and
            // without a dedupe check: it was checked when it arrived. Its key is
            // remembered, so the sender's resend is suppressed.
            let event = parse_event(&body).ok();
            if let (Some(dedupe), Some(event)) = (&dedupe, &event) {
                dedupe.check_and_insert(&key_of(event, &body));
            }
            backlog.push_back(Item { seq, body, event });
        }
        let replayed = backlog.len() as u64;
        if replayed > 0 {
            log::info!("replaying {replayed} event(s) not handled before the last stop");
            counters.count(Event::Recovered, replayed);
            counters.queue_grew(replayed);
        }
        let core = Arc::new(Core {
            handler,
            queue: Queue::new(config.capacity, backlog),
            store,
            dedupe,
            retry: config.retry,
            on_dead_letter: config.on_dead_letter,
            counters,
            next_seq: AtomicU64::new(1),
        });
        let delivery = Self {
            core: Arc::clone(&core),
            threads: Mutex::new(Vec::new()),
        };
        for i in 0..config.handler_threads {
            let core = Arc::clone(&core);
            let spawned = thread::Builder::new()
                .name(format!("wasender-handler-{i}"))
                .spawn(move || core.run());
            match spawned {
                Ok(thread) => lock(&delivery.threads).push(thread),
                Err(e) => {
                    // Stop the threads already started before failing.
                    delivery.stop_now();
                    return Err(e.into());
                }
            }
        }
        Ok(delivery)
    }

    fn stop_now(&self) {
        lock(&self.core.queue.state).phase = Phase::Stopped;
        self.core.queue.wake_all();
        for thread in lock(&self.threads).drain(..) {
            let _ = thread.join();
        }
    }
}

/// Events found pending in the journal, oldest first.
type Pending = Vec<(Seq, Vec<u8>)>;

fn open_store(dir: &Path, max_record_size: usize) -> crate::Result<(Store, Pending)> {
    let options = JournalOptions::default()
        .max_record_size(u32::try_from(max_record_size).unwrap_or(u32::MAX));
    let (journal, recovery) = Journal::open(dir, options)?;
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
    Ok((
        Store {
            journal,
            dead_letters,
        },
        recovery.pending,
    ))
}

impl<H: WebhookHandler + 'static> Delivery for QueuedDelivery<H> {
    fn deliver(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered {
        self.core.accept(event, body)
    }

    fn hurry(&self) {
        lock(&self.core.queue.state).hurried = true;
        self.core.queue.wake_all();
    }

    fn failure(&self) -> Option<String> {
        self.core.store.as_ref()?.journal.failure()
    }

    fn finish(&self, deadline: Deadline) {
        let core = &self.core;
        let queue = &core.queue;
        let mut s = lock(&queue.state);
        s.phase = Phase::Draining;
        queue.wake_all();
        let waiting = s.backlog.len() + s.items.len() + s.busy;
        if waiting > 0 {
            log::info!("draining {waiting} queued event(s) before stopping");
        }
        while !s.idle() && !s.hurried {
            let Some(left) = deadline.remaining() else {
                break;
            };
            s = queue.wait_changed(s, left);
        }
        s.phase = Phase::Stopped;
        let state = &mut *s;
        let left: Vec<Item> = state
            .backlog
            .drain(..)
            .chain(state.items.drain(..))
            .collect();
        let busy = s.busy;
        let why = if s.hurried {
            "stopping at once"
        } else {
            "drain deadline passed"
        };
        drop(s);
        queue.wake_all();
        if !left.is_empty() {
            let n = left.len() as u64;
            core.counters.queue_shrank(n);
            if core.store.is_some() {
                log::warn!("{why}: {n} event(s) left in the journal, replayed at the next start");
            } else {
                core.counters.count(Event::Dropped, n);
                log::error!("{why}: {n} queued event(s) dropped unhandled (in-memory queue)");
            }
        }
        if busy > 0 {
            log::warn!("{why}: {busy} handler call(s) still running");
        }
        let threads: Vec<JoinHandle<()>> = lock(&self.threads).drain(..).collect();
        let grace = Deadline::after(STRAGGLER_WAIT);
        let stragglers = threads
            .into_iter()
            .map(|thread| join_before(thread, grace))
            .filter(|joined| !joined)
            .count();
        if stragglers > 0 {
            log::warn!("{stragglers} handler thread(s) left running inside the handler");
        }
        if let Some(store) = &core.store {
            if let Err(e) = store.journal.sync() {
                core.journal_error("final journal sync", &e);
            }
        }
        if let Some(dedupe) = &core.dedupe {
            if let Err(e) = dedupe.sync() {
                core.journal_error("final dedupe sync", &e);
            }
        }
    }
}

impl<H> Drop for QueuedDelivery<H> {
    fn drop(&mut self) {
        // Normally `finish` ran already; this only stops threads of a listener
        // that failed to start.
        lock(&self.core.queue.state).phase = Phase::Stopped;
        self.core.queue.wake_all();
    }
}

impl<H: WebhookHandler + 'static> Core<H> {
    /// The request path: returns once the event is queued (and durable), or refused.
    fn accept(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered {
        let key = self.dedupe.as_ref().map(|_| key_of(&event, body));
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

    fn journal_error(&self, what: &str, error: &std::io::Error) {
        self.counters.count(Event::JournalError, 1);
        log::error!("journal error while {what}: {error}");
    }

    /// A handler thread: take events until the queue is drained or stopped.
    fn run(&self) {
        while let Some(item) = self.queue.next() {
            let finished = self.handle(item);
            if finished {
                self.counters.queue_shrank(1);
            }
            self.queue.finished();
        }
    }

    /// Runs the handler with retries; returns `false` when the event was
    /// abandoned to shutdown (it is then accounted for here).
    fn handle(&self, item: Item) -> bool {
        let event = match item.event {
            Some(event) => event,
            None => match parse_event(&item.body) {
                Ok(event) => event,
                Err(e) => {
                    let error = format!("the journaled event no longer parses: {e}");
                    self.dead_letter(item.seq, item.body, error, 0);
                    return true;
                }
            },
        };
        let mut attempt: u32 = 1;
        loop {
            let call = || dispatch(&*self.handler, &event);
            let error = match catch_unwind(AssertUnwindSafe(|| self.counters.time_handler(call))) {
                Ok(Ok(())) => {
                    self.counters.count(Event::Handled, 1);
                    self.mark_done(item.seq);
                    return true;
                }
                Ok(Err(e)) => {
                    self.counters.count(Event::HandlerError, 1);
                    e.to_string()
                }
                Err(panic) => {
                    self.counters.count(Event::HandlerPanic, 1);
                    format!("the handler panicked: {}", panic_message(panic.as_ref()))
                }
            };
            if attempt >= self.retry.attempts() {
                self.dead_letter(item.seq, item.body, error, attempt);
                return true;
            }
            let delay = self.retry.backoff(attempt);
            log::warn!(
                "webhook {} (#{}) failed on attempt {attempt}: {error}; retrying in {delay:?}",
                event.event_name(),
                item.seq
            );
            if !self.queue.backoff(delay, self.store.is_some()) {
                self.abandon(item.seq);
                return false;
            }
            self.counters.count(Event::Retried, 1);
            attempt += 1;
        }
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

    fn dead_letter(&self, seq: Seq, body: Vec<u8>, error: String, attempts: u32) {
        let letter = DeadLetter::new(seq, body, error, attempts);
        log::error!(
            "webhook event #{seq} dead-lettered after {attempts} attempt(s): {}",
            letter.error
        );
        if let Some(store) = &self.store {
            if let Err(e) = store.dead_letters.record(&letter) {
                // Not marked done: it stays in the journal rather than be lost.
                self.journal_error("writing a dead letter", &e);
                return;
            }
            self.mark_done(seq);
        }
        self.counters.count(Event::DeadLettered, 1);
        if let Some(hook) = &self.on_dead_letter {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook(&letter))) {
                log::error!(
                    "the on_dead_letter hook panicked: {}",
                    panic_message(panic.as_ref())
                );
            }
        }
    }
}
