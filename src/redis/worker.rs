//! [`RedisWorker`]: reads the stream with a consumer group and runs the
//! handler on its own threads.
//!
//! One reader thread fetches entries (`XAUTOCLAIM` for abandoned ones, then
//! `XREADGROUP … >` for new ones), at most as many as there are handler
//! threads plus the prefetch, and reads again once half of that room is free. Handler threads run the handler ([`handling`](super::handling))
//! and retry or dead-letter; an acker thread ([`acking`](super::acking))
//! acknowledges handled entries in batches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ::redis::{Connection, Script};

use super::acking;
use super::connection::Connector;
use super::entry::Entry;
use super::handling::{self, DEAD_LETTER_SCRIPT};
use super::options::{host_name, RedisOptions};
use super::reading;
use crate::error::{Result, WasenderError};
use crate::handler::{IntoSharedHandler, WebhookHandler};
use crate::sync::{lock, wait, wait_timeout};

/// How long [`RedisWorker::shutdown`] waits for handler calls in progress
/// when not set with [`RedisWorkerBuilder::drain_timeout`].
pub const DEFAULT_WORKER_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a [`WebhookHandler`] on the events that listeners added to the Redis
/// stream: reads with a consumer group, acknowledges (`XACK`) each entry only
/// after the handler returned `Ok`, retries failures with backoff, moves an
/// entry to the dead-letter stream after the last attempt, and takes over
/// entries that crashed or stuck workers left pending. Run as many workers,
/// in as many processes and on as many machines, as you like. See the
/// [module docs](super) for the guarantees.
///
/// ```no_run
/// use std::time::Duration;
/// use wasenderapi::redis::{HandlerRetryPolicy, RedisOptions, RedisWorker};
/// use wasenderapi::{WebhookEvent, WebhookHandler};
/// use wasenderapi::event::MessagesData;
///
/// struct Bot;
/// impl WebhookHandler for Bot {
///     type Error = String;
///     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
///         for m in event.data().iter().flat_map(|d| d.messages()) {
///             println!("{:?} says {:?}", m.sender_phone(), m.text());
///         }
///         Ok(())
///     }
/// }
///
/// let options = RedisOptions::new("redis://127.0.0.1:6379/")
///     .handler_retries(HandlerRetryPolicy::default().max_attempts(8));
/// let worker = RedisWorker::builder(options, Bot)
///     .handler_threads(4)
///     .consumer_name("worker-a")
///     .spawn()?;
/// std::thread::sleep(Duration::from_secs(60));
/// let stats = worker.shutdown(); // finishes calls in progress; the rest stays pending
/// println!("handled {}", stats.handled);
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
pub struct RedisWorker {
    shared: Arc<Shared>,
    threads: Option<Threads>,
    drain_timeout: Duration,
    /// Set by a second signal: stop waiting for handler calls in progress.
    urgent: Arc<AtomicBool>,
}

struct Threads {
    reader: Option<JoinHandle<()>>,
    acker: Option<JoinHandle<()>>,
    handlers: Vec<JoinHandle<()>>,
}

/// Configures and starts a [`RedisWorker`]. Made by [`RedisWorker::builder`].
pub struct RedisWorkerBuilder<H> {
    options: RedisOptions,
    handler: Arc<H>,
    handler_threads: usize,
    prefetch: Option<usize>,
    consumer: Option<String>,
    drain_timeout: Duration,
}

impl<H> std::fmt::Debug for RedisWorkerBuilder<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWorkerBuilder")
            .field("options", &self.options)
            .field("handler_threads", &self.handler_threads)
            .field("prefetch", &self.prefetch)
            .field("consumer", &self.consumer)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisWorker {
    /// Starts configuring a worker that reads the stream described by
    /// `options` and hands each event to `handler`.
    ///
    /// `handler` is the handler itself, or an `Arc` of it when you keep a
    /// reference too ([`IntoSharedHandler`](crate::listener::IntoSharedHandler)).
    pub fn builder<H: WebhookHandler + 'static>(
        options: RedisOptions,
        handler: impl IntoSharedHandler<H>,
    ) -> RedisWorkerBuilder<H> {
        RedisWorkerBuilder {
            options,
            handler: handler.into_shared(),
            handler_threads: thread::available_parallelism().map_or(4, |n| n.get()),
            prefetch: None,
            consumer: None,
            drain_timeout: DEFAULT_WORKER_DRAIN_TIMEOUT,
        }
    }

    /// This worker's consumer name in the group.
    pub fn consumer_name(&self) -> &str {
        &self.shared.consumer
    }

    /// The counters as they are now.
    pub fn stats(&self) -> RedisWorkerStats {
        self.shared.counters.snapshot(&self.shared)
    }

    /// Stops gracefully and returns the final counters: no more entries are
    /// read, handler calls in progress finish (for up to the drain timeout)
    /// and are acknowledged. Entries fetched but not started stay pending in
    /// Redis, released: marked idle (and their delivery count restored) so
    /// that other workers take them over at their next look. Entries waiting
    /// to be retried stay pending too, and are taken over after the claim
    /// idle time. Takes at most the block time plus the drain timeout.
    pub fn shutdown(mut self) -> RedisWorkerStats {
        self.stop();
        self.stats()
    }

    /// Runs until SIGTERM or SIGINT (Ctrl-C), then stops gracefully like
    /// [`shutdown`](Self::shutdown) and returns the final counters (feature
    /// `signals`, Unix). A second signal stops at once: handler calls still
    /// in progress are left behind and their entries stay pending, to be
    /// taken over by another worker after the claim idle time.
    ///
    /// ```no_run
    /// use wasenderapi::redis::{RedisOptions, RedisWorker};
    /// # struct Bot;
    /// # impl wasenderapi::WebhookHandler for Bot { type Error = std::convert::Infallible; }
    /// let worker = RedisWorker::builder(RedisOptions::new("redis://127.0.0.1:6379/"), Bot).spawn()?;
    /// let stats = worker.run_until_signal()?; // `kill -TERM <pid>` or Ctrl-C
    /// println!("handled {}", stats.handled);
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    #[cfg(all(feature = "signals", unix))]
    pub fn run_until_signal(mut self) -> Result<RedisWorkerStats> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let urgent = Arc::clone(&self.urgent);
        let tx = std::sync::Mutex::new(tx);
        let watch = crate::signals::SignalWatch::start(
            self.drain_timeout,
            move || {
                let _ = lock(&tx).send(());
            },
            move || urgent.store(true, Ordering::Release),
        )?;
        // A closed channel (cannot happen while `watch` lives) also stops.
        let _ = rx.recv();
        self.stop();
        watch.stop();
        Ok(self.stats())
    }

    fn stop(&mut self) {
        let Some(threads) = self.threads.take() else {
            return;
        };
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::Release);
        shared.changed.notify_all();
        if let Some(reader) = threads.reader {
            let _ = reader.join();
        }
        let deadline = Instant::now() + self.drain_timeout;
        let mut stragglers = 0;
        for thread in threads.handlers {
            while !thread.is_finished()
                && Instant::now() < deadline
                && !self.urgent.load(Ordering::Acquire)
            {
                thread::sleep(Duration::from_millis(2));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                stragglers += 1;
            }
        }
        if stragglers > 0 {
            log::warn!(
                "{stragglers} handler thread(s) still inside the handler at the drain deadline; \
                 their entries stay pending"
            );
        }
        shared.close_acks();
        if let Some(acker) = threads.acker {
            let _ = acker.join();
        }
        let left: Vec<Job> = lock(&shared.local).waiting.drain(..).collect();
        if !left.is_empty() {
            let n = left.len() as u64;
            shared.counters.left_pending.fetch_add(n, Ordering::Relaxed);
            handling::release(shared, &left);
            log::info!("{n} fetched entries not started: released to the other workers");
        }
        if stragglers == 0 {
            handling::forget_consumer_if_idle(shared);
        }
        log::info!("Redis worker {} stopped", shared.consumer);
    }
}

impl Drop for RedisWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<H: WebhookHandler + 'static> RedisWorkerBuilder<H> {
    /// Threads running the handler (default: the available parallelism).
    pub fn handler_threads(mut self, threads: usize) -> Self {
        self.handler_threads = threads;
        self
    }

    /// Entries fetched ahead of the handler threads (default: 8 per handler
    /// thread). Each read then brings up to this many more entries than
    /// there are idle threads, which is what makes a worker fast: every read
    /// is a round trip (and, with `appendfsync always`, an `fsync`). Entries
    /// waiting here are kept from looking abandoned (their idle time is
    /// refreshed every third of the claim idle time), so they are not taken
    /// over however long they wait, but they are not available to other
    /// workers either: with slow handlers and several workers, lower it (0
    /// fetches only for idle threads). At a graceful stop, fetched entries
    /// not yet started are released to the other workers at once.
    pub fn prefetch(mut self, entries: usize) -> Self {
        self.prefetch = Some(entries);
        self
    }

    /// This worker's consumer name in the group (default: host name and
    /// process id, `host-1234`). Names must differ between workers running
    /// at the same time. Entries a stopped or crashed worker left pending
    /// are taken over after the claim idle time, by any worker (this one
    /// restarted under the same name included).
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// How long [`RedisWorker::shutdown`] waits for handler calls in progress
    /// (default [`DEFAULT_WORKER_DRAIN_TIMEOUT`], 30 s). Calls still running
    /// then are left behind; their entries stay pending and are taken over.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Starts the reader and the handler threads, returning at once. Redis
    /// need not be up: the worker connects (and creates the consumer group
    /// if it is missing) as soon as it can, and reconnects whenever the
    /// connection is lost, logging the outage.
    ///
    /// Errors: [`WasenderError::InvalidArgument`] for unusable options (see
    /// [`RedisOptions`]; `max_backoff` must be shorter than `claim_idle`),
    /// zero handler threads or an empty consumer name;
    /// [`WasenderError::Io`] when a thread cannot be started.
    pub fn spawn(self) -> Result<RedisWorker> {
        self.options.validate_worker()?;
        let consumer = self
            .consumer
            .unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id()));
        if self.handler_threads == 0 || consumer.is_empty() {
            return Err(WasenderError::InvalidArgument(
                "Redis worker: handler_threads must be at least 1 and the consumer name non-empty"
                    .to_owned(),
            ));
        }
        let shared = Arc::new(Shared {
            connector: Connector::new(&self.options)?,
            events_key: self.options.events_key(),
            dead_key: self.options.dead_key(),
            options: self.options,
            consumer,
            threads: self.handler_threads,
            capacity: self.handler_threads
                + self
                    .prefetch
                    .unwrap_or_else(|| self.handler_threads.saturating_mul(8)),
            local: Mutex::new(Local::default()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            acks: Mutex::new(Acks::default()),
            acks_changed: Condvar::new(),
            counters: Counters::default(),
            dead_letter_script: Script::new(DEAD_LETTER_SCRIPT),
        });
        let mut worker = RedisWorker {
            shared: Arc::clone(&shared),
            threads: None,
            drain_timeout: self.drain_timeout,
            urgent: Arc::new(AtomicBool::new(false)),
        };
        let started = start_threads(&shared, &self.handler);
        let threads = match started {
            Ok(threads) => threads,
            Err((e, partial)) => {
                worker.threads = Some(partial);
                worker.stop();
                return Err(e.into());
            }
        };
        worker.threads = Some(threads);
        log::info!(
            "Redis worker {} reading {} (group {}) with {} handler thread(s)",
            shared.consumer,
            shared.events_key,
            shared.options.group,
            shared.threads
        );
        Ok(worker)
    }
}

type Started = std::result::Result<Threads, (std::io::Error, Threads)>;

fn start_threads<H: WebhookHandler + 'static>(shared: &Arc<Shared>, handler: &Arc<H>) -> Started {
    let mut threads = Threads {
        reader: None,
        acker: None,
        handlers: Vec::with_capacity(shared.threads),
    };
    for i in 0..shared.threads {
        let thread_shared = Arc::clone(shared);
        let handler = Arc::clone(handler);
        let spawned = thread::Builder::new()
            .name(format!("wasender-redis-handler-{i}"))
            .spawn(move || handling::run(&thread_shared, &*handler));
        match spawned {
            Ok(thread) => threads.handlers.push(thread),
            Err(e) => return Err((e, threads)),
        }
    }
    let acker_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("wasender-redis-acker".to_owned())
        .spawn(move || acking::run(&acker_shared));
    match spawned {
        Ok(acker) => threads.acker = Some(acker),
        Err(e) => return Err((e, threads)),
    }
    let reader_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("wasender-redis-reader".to_owned())
        .spawn(move || reading::run(&reader_shared));
    match spawned {
        Ok(reader) => {
            threads.reader = Some(reader);
            Ok(threads)
        }
        Err(e) => Err((e, threads)),
    }
}

/// What the reader and the handler threads share.
pub(crate) struct Shared {
    pub options: RedisOptions,
    pub connector: Connector,
    pub events_key: String,
    pub dead_key: String,
    pub consumer: String,
    pub threads: usize,
    /// Entries held at most: handler threads plus the prefetch.
    pub capacity: usize,
    pub local: Mutex<Local>,
    /// Entries fetched, threads freed, or stopping.
    pub changed: Condvar,
    pub stopping: AtomicBool,
    /// Entries handled and waiting to be acknowledged by the acker thread.
    pub acks: Mutex<Acks>,
    pub acks_changed: Condvar,
    pub counters: Counters,
    pub dead_letter_script: Script,
}

/// Ids waiting for the acker; `closed` once no handler thread will add more.
#[derive(Default)]
pub(crate) struct Acks {
    pub ids: Vec<String>,
    pub closed: bool,
}

/// One fetched entry and how many times Redis has delivered it.
pub(crate) struct Job {
    pub entry: Entry,
    pub deliveries: u64,
}

/// Entries fetched and not yet taken by a handler thread, and the threads busy.
#[derive(Default)]
pub(crate) struct Local {
    pub waiting: VecDeque<Job>,
    pub busy: usize,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Waits until there is room to fetch — nothing waiting, or at least
    /// half the capacity free — or until `until`, and returns how many
    /// entries fit (0 at `until`); `None` once stopping.
    pub fn free_slots(&self, until: Instant) -> Option<usize> {
        let mut local = lock(&self.local);
        loop {
            if self.stopping() {
                return None;
            }
            let taken = local.busy + local.waiting.len();
            let free = self.capacity.saturating_sub(taken);
            if free > 0 && (local.waiting.is_empty() || free * 2 >= self.capacity) {
                return Some(free);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Some(0);
            }
            local = wait_timeout(&self.changed, local, left).0;
        }
    }

    /// The ids of the entries fetched and not yet started.
    pub fn waiting_ids(&self) -> Vec<String> {
        lock(&self.local)
            .waiting
            .iter()
            .map(|job| job.entry.id.clone())
            .collect()
    }

    /// Forgets fetched entries that another consumer took over meanwhile.
    pub fn drop_waiting(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        lock(&self.local)
            .waiting
            .retain(|job| !ids.contains(&job.entry.id));
        self.changed.notify_all();
    }

    /// Hands fetched entries to the handler threads.
    pub fn push(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        lock(&self.local).waiting.extend(jobs);
        self.changed.notify_all();
    }

    /// The next entry for a handler thread; `None` once stopping (what is
    /// still waiting stays pending in Redis).
    pub fn next_job(&self) -> Option<Job> {
        let mut local = lock(&self.local);
        loop {
            if self.stopping() {
                return None;
            }
            if let Some(job) = local.waiting.pop_front() {
                local.busy += 1;
                return Some(job);
            }
            local = wait(&self.changed, local);
        }
    }

    /// A handler thread finished an entry.
    pub fn job_done(&self) {
        lock(&self.local).busy -= 1;
        self.changed.notify_all();
    }

    /// Hands the id of an entry the handler returned `Ok` for to the acker.
    pub fn acknowledge(&self, id: String) {
        lock(&self.acks).ids.push(id);
        self.acks_changed.notify_one();
    }

    /// No more acknowledgements: the acker sends what it has, then stops.
    fn close_acks(&self) {
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

    /// A connection, reusing `slot`'s when it is there.
    pub fn connection<'a>(
        &self,
        slot: &'a mut Option<Connection>,
    ) -> std::result::Result<&'a mut Connection, ::redis::RedisError> {
        if slot.is_none() {
            *slot = Some(self.connector.connect()?);
        }
        Ok(slot.as_mut().expect("the connection was just set"))
    }
}

/// A snapshot of a worker's counters, from [`RedisWorker::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisWorkerStats {
    /// New entries read (`XREADGROUP … >`).
    pub read: u64,
    /// Entries taken over from idle consumers (`XAUTOCLAIM`).
    pub claimed: u64,
    /// Handler calls that returned `Ok`; the entry was then acknowledged.
    pub handled: u64,
    /// Handler calls that returned an error.
    pub handler_errors: u64,
    /// Handler calls that panicked.
    pub handler_panics: u64,
    /// Attempts after a failure (the first attempt not counted).
    pub retried: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
    /// Redis commands that failed (the worker reconnects and carries on).
    pub redis_errors: u64,
    /// Entries of the stream removed by trimming acknowledged history.
    pub trimmed: u64,
    /// Entries this worker held when it stopped (fetched and not started, or
    /// waiting to be retried), left pending for others.
    pub left_pending: u64,
    /// Pending entries found deleted from the stream before they were
    /// handled (trimmed by `max_stream_len`, or deleted by hand): lost.
    pub deleted_unhandled: u64,
    /// Handler calls in progress (or waiting to be retried) now.
    pub in_flight: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub read: AtomicU64,
    pub claimed: AtomicU64,
    pub handled: AtomicU64,
    pub handler_errors: AtomicU64,
    pub handler_panics: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub redis_errors: AtomicU64,
    pub trimmed: AtomicU64,
    pub left_pending: AtomicU64,
    pub deleted_unhandled: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self, shared: &Shared) -> RedisWorkerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RedisWorkerStats {
            read: get(&self.read),
            claimed: get(&self.claimed),
            handled: get(&self.handled),
            handler_errors: get(&self.handler_errors),
            handler_panics: get(&self.handler_panics),
            retried: get(&self.retried),
            dead_lettered: get(&self.dead_lettered),
            redis_errors: get(&self.redis_errors),
            trimmed: get(&self.trimmed),
            left_pending: get(&self.left_pending),
            deleted_unhandled: get(&self.deleted_unhandled),
            in_flight: lock(&shared.local).busy as u64,
        }
    }
}
