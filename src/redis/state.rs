//! What a worker's threads share: its settings, scripts, counters, the
//! handler threads' job slots and the acknowledgements in flight. The threads
//! themselves live in `reading`, `handling` and `acking`; `worker` starts and
//! stops them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ::redis::{Script, Value};

use super::connection::Connector;
use super::entry::Entry;
use super::options::HANDED_BACK_CONSUMER;
use super::scripts;
use crate::handler::counters::{self, counters};
use crate::handler::{DeadLetterHook, HandlerRetryPolicy, Hurry, LastCall};
use crate::sync::{lock, wait, wait_timeout};

counters! {
    /// A snapshot of a worker's counters, from [`RedisWorker::stats`](super::RedisWorker::stats).
    pub struct RedisWorkerStats / WorkerCounters {
        /// New entries read (`XREADGROUP … >`), each handed to a handler
        /// thread at once.
        read,
        /// Entries taken over from consumers that left them idle past the
        /// claim idle time (this worker's own earlier life included).
        claimed,
        /// Of those, entries whose last call never answered, run alone
        /// ([module docs](super#what-the-workers-do)).
        run_alone,
        /// Handler calls that returned `Ok`; the entry was then acknowledged.
        handled,
        /// Handler calls that returned an error.
        handler_errors,
        /// Handler calls that panicked.
        handler_panics,
        /// Handler calls after a failure (the first call not counted).
        retried,
        /// Entries moved to the dead-letter stream.
        dead_lettered,
        /// Redis commands that failed (the worker reconnects and carries on).
        redis_errors,
        /// Entries of the stream removed by trimming acknowledged history.
        trimmed,
        /// Entries this worker held when it stopped (waiting to be retried,
        /// or fetched and not begun), handed back to the other workers.
        handed_back,
        /// Pending entries found deleted from the stream before they were
        /// handled (trimmed by `max_stream_len`, or deleted by hand): lost.
        deleted_unhandled,
        /// Idle consumers with nothing pending (workers that died or
        /// stopped) this worker removed from the group.
        consumers_removed,
        /// Handler calls in progress (or waiting to be retried) now.
        in_flight,
    }
}

/// The worker's timing and retry settings, from its builder.
pub(crate) struct Settings {
    pub retry: HandlerRetryPolicy,
    pub claim_idle: Duration,
    pub block_time: Duration,
    pub trim_interval: Option<Duration>,
    pub forget_idle_consumers: Duration,
}

/// The worker's scripts, loaded on first use.
pub(crate) struct Scripts {
    pub fetch: Script,
    pub take_over: Script,
    pub begin_again: Script,
    pub dead_letter: Script,
    pub acknowledge: Script,
    pub hand_back: Script,
    pub forget_idle_consumers: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            fetch: Script::new(scripts::FETCH),
            take_over: Script::new(scripts::TAKE_OVER),
            begin_again: Script::new(scripts::BEGIN_AGAIN),
            dead_letter: Script::new(scripts::DEAD_LETTER),
            acknowledge: Script::new(scripts::ACKNOWLEDGE),
            hand_back: Script::new(scripts::HAND_BACK),
            forget_idle_consumers: Script::new(scripts::FORGET_IDLE_CONSUMERS),
        }
    }
}

/// What the reader, the handler threads and the acker share.
pub(crate) struct Shared {
    pub connector: Connector,
    pub events_key: String,
    pub dead_key: String,
    pub attempts_key: String,
    pub group: String,
    pub consumer: String,
    pub threads: usize,
    pub settings: Settings,
    pub local: Mutex<Local>,
    /// Entries fetched, threads freed, a call run alone answered, or stopping.
    pub changed: Condvar,
    pub stopping: AtomicBool,
    // The stop request: set through `request_stop`, read through its siblings.
    pub stop: Mutex<StopState>,
    pub stop_changed: Condvar,
    /// Cuts the wait for the handler threads short (`shutdown_now`).
    pub hurry: Hurry,
    /// Entries handled and waiting to be acknowledged by the acker thread.
    pub acks: Mutex<Acks>,
    pub acks_changed: Condvar,
    pub counters: WorkerCounters,
    pub scripts: Scripts,
    pub on_dead_letter: Option<DeadLetterHook>,
}

#[derive(Default)]
pub(crate) struct StopState {
    /// When a stop was first asked for.
    requested: Option<Instant>,
}

/// Ids waiting for the acker (or the reader's next script); `closed` once
/// no handler thread will add more.
#[derive(Default)]
pub(crate) struct Acks {
    pub ids: Vec<String>,
    pub closed: bool,
    /// The acker is sending a batch it took.
    pub sending: bool,
}

/// One entry fetched for a handler thread.
pub(crate) struct Job {
    pub entry: Entry,
    /// Handler calls begun for it, the one this job begins included (for
    /// an exhausted entry: all of them).
    pub begun: u32,
    pub kind: JobKind,
}

/// What a handler thread does with a [`Job`].
pub(crate) enum JobKind {
    /// Run it (a new entry, or one taken over whose last call answered).
    Go,
    /// Run it while nothing else runs in this worker: its last call never
    /// answered, so its process may have died of it.
    Alone,
    /// Dead-letter it without another call: every attempt began already.
    Exhausted {
        /// Calls that answered; fewer than `begun` when the last never did.
        ended: u32,
        /// How the last answered call ended, and what it said.
        last: Option<LastCall>,
        error: String,
    },
}

/// An entry to hand back at the stop: see [`Shared::hold_for_hand_back`].
pub(crate) struct HandBack {
    pub id: String,
    /// The idle time to give it: the claim idle time once it may run again.
    pub idle: Duration,
    /// Its recorded call never began: take it back.
    pub uncount: bool,
}

/// Entries fetched and not yet taken by a handler thread, the threads busy,
/// and what is to be handed back.
#[derive(Default)]
pub(crate) struct Local {
    pub waiting: VecDeque<Job>,
    pub busy: usize,
    /// A call that must run alone is in progress (or about to begin).
    pub alone: bool,
    pub hand_back: Vec<HandBack>,
}

impl Local {
    /// Handler threads neither busy nor promised a fetched entry.
    pub fn idle_threads(&self, threads: usize) -> usize {
        threads.saturating_sub(self.busy + self.waiting.len())
    }

    /// Nothing runs and nothing waits: a call may run alone.
    pub fn quiet(&self) -> bool {
        self.busy == 0 && self.waiting.is_empty()
    }
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Starts a stop (once; `urgent` also cuts the drain short).
    pub(crate) fn request_stop(&self, urgent: bool) {
        {
            let mut stop = lock(&self.stop);
            stop.requested.get_or_insert_with(Instant::now);
        }
        self.stopping.store(true, Ordering::Release);
        // Taken and released so that no waiter misses the flag between its
        // check and its wait.
        drop(lock(&self.local));
        self.changed.notify_all();
        self.stop_changed.notify_all();
        if urgent {
            self.hurry.hurry();
        }
    }

    pub(crate) fn stop_requested_at(&self) -> Option<Instant> {
        lock(&self.stop).requested
    }

    pub(crate) fn wait_for_stop_request(&self) {
        let mut stop = lock(&self.stop);
        while stop.requested.is_none() {
            stop = wait(&self.stop_changed, stop);
        }
    }

    /// Waits until `ready` holds for the local state, the worker stops, or
    /// `until` passes.
    pub fn wait_until(&self, until: Instant, ready: impl Fn(&Local) -> bool) {
        let mut local = lock(&self.local);
        while !self.stopping() && !ready(&local) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            local = wait_timeout(&self.changed, local, left).0;
        }
    }

    /// Hands fetched entries to the handler threads; an entry to run alone
    /// marks the worker busy with it from now.
    pub fn push(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let mut local = lock(&self.local);
        if jobs.iter().any(|j| matches!(j.kind, JobKind::Alone)) {
            local.alone = true;
        }
        local.waiting.extend(jobs);
        drop(local);
        self.changed.notify_all();
    }

    /// The next entry for a handler thread; `None` once stopping (what is
    /// still waiting is handed back at the stop).
    pub fn next_job(&self) -> Option<Job> {
        let mut local = lock(&self.local);
        loop {
            if self.stopping() {
                return None;
            }
            if let Some(job) = local.waiting.pop_front() {
                local.busy += 1;
                counters::add(&self.counters.in_flight, 1);
                return Some(job);
            }
            local = wait(&self.changed, local);
        }
    }

    /// The call that had to run alone answered (or ended): others may begin.
    pub fn alone_ended(&self) {
        lock(&self.local).alone = false;
        self.changed.notify_all();
    }

    /// A handler thread finished an entry.
    pub fn job_done(&self, alone: bool) {
        let mut local = lock(&self.local);
        local.busy -= 1;
        if alone {
            local.alone = false;
        }
        drop(local);
        counters::sub(&self.counters.in_flight, 1);
        self.changed.notify_all();
    }

    /// Keeps `entry` to be handed back at the stop.
    pub fn hold_for_hand_back(&self, entry: HandBack) {
        lock(&self.local).hand_back.push(entry);
    }

    /// Hands the id of an entry the handler returned `Ok` for to the acker.
    pub fn acknowledge(&self, id: String) {
        let mut acks = lock(&self.acks);
        if acks.closed {
            // A call left behind at the stop returned late: the entry stays
            // pending and is handled again after a takeover.
            log::warn!("entry {id} handled after the worker stopped: not acknowledged");
            return;
        }
        acks.ids.push(id);
        drop(acks);
        self.acks_changed.notify_one();
    }

    /// No more acknowledgements: the acker sends what it has, then stops.
    pub(crate) fn close_acks(&self) {
        lock(&self.acks).closed = true;
        self.acks_changed.notify_all();
    }

    /// Sleeps `delay`; `false` when woken early because the worker is stopping.
    pub fn sleep_unless_stopping(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        let mut local = lock(&self.local);
        loop {
            if self.stopping() {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            local = wait_timeout(&self.changed, local, left).0;
        }
    }

    /// Runs the hand-back script (see [`scripts::HAND_BACK`]) for
    /// `entries`, leaving the group when `leave` and nothing is pending.
    pub fn run_hand_back(
        &self,
        connection: &mut super::connection::LazyConnection,
        entries: &[HandBack],
        leave: bool,
    ) -> ::redis::RedisResult<(u64, bool)> {
        let mut invocation = self.scripts.hand_back.key(&self.events_key);
        invocation
            .key(&self.attempts_key)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(HANDED_BACK_CONSUMER)
            .arg(u8::from(leave));
        for entry in entries {
            invocation
                .arg(&entry.id)
                .arg(millis(entry.idle))
                .arg(u8::from(entry.uncount));
        }
        let (handed, removed): (u64, u8) = connection.run(|c| invocation.invoke(c))?;
        Ok((handed, removed == 1))
    }
}

/// Whether a script's reply is the "not ours" zero.
pub(crate) fn is_zero(value: &Value) -> bool {
    matches!(value, Value::Int(0))
}

/// A duration in whole milliseconds, as Redis commands take it.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
