//! [`RedisWorker`]: reads the stream with a consumer group and runs the
//! handler on its own threads.
//!
//! One reader thread ([`reading`](super::reading)) fetches entries, never
//! more than there are idle handler threads, recording a handler call as
//! begun for each; handler threads ([`handling`](super::handling)) run them
//! through the shared attempts loop and retry or dead-letter; an acker
//! thread ([`acking`](super::acking)) acknowledges handled entries in
//! batches.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::connection::Connector;
use super::options::{host_name, invalid, RedisOptions, DEFAULT_GROUP, HANDED_BACK_CONSUMER};
use super::state::{
    Acks, Local, RedisWorkerStats, Scripts, Settings, Shared, StopState, WorkerCounters,
};
use super::{acking, handling, reading};
use crate::error::Result;

use crate::handler::{
    DeadLetter, DeadLetterHook, HandlerRetryPolicy, IntoSharedHandler, ThreadGroup, WebhookHandler,
    DEFAULT_DRAIN_TIMEOUT,
};

/// The fewest handler threads a worker starts when not set with
/// [`RedisWorkerBuilder::handler_threads`] (it starts the available
/// parallelism when that is more): a worker reads at most one entry per idle
/// thread per round trip to Redis, so quick handlers need a few threads to
/// keep up.
pub const DEFAULT_WORKER_HANDLER_THREADS: usize = 16;

/// Runs a [`WebhookHandler`] on the events that listeners added to the Redis
/// stream: reads with a consumer group, acknowledges (`XACK`) each entry only
/// after the handler returned `Ok`, retries failures with backoff, moves an
/// entry to the dead-letter stream after the last attempt, and takes over
/// entries that crashed or stuck workers left pending. Run as many workers,
/// in as many processes and on as many machines, as you like. The
/// [module docs](super) describe what it does with Redis; the
/// [operations guide](crate::guide#what-redis-delivery-guarantees) what it
/// guarantees.
///
/// Like the listener, it is stopped with [`shutdown`](Self::shutdown), a
/// [`WorkerShutdownHandle`] and [`join`](Self::join), or
/// `run_until_signal` (feature `signals`); dropping it stops it
/// gracefully too.
///
/// # Examples
///
/// A worker with four handler threads, stopped from another thread (it needs
/// a Redis server, so this example is only compiled):
///
/// ```no_run
/// use std::time::Duration;
/// use wasenderapi::handler::HandlerRetryPolicy;
/// use wasenderapi::redis::{RedisOptions, RedisWorker};
/// use wasenderapi::{WebhookEvent, WebhookHandler};
/// use wasenderapi::event::MessagesData;
///
/// struct Bot;
/// impl WebhookHandler for Bot {
///     type Error = String;
///     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
///         for m in event.messages() {
///             println!("{:?} says {:?}", m.sender_phone(), m.text());
///         }
///         Ok(())
///     }
/// }
///
/// let worker = RedisWorker::builder(RedisOptions::new("redis://127.0.0.1:6379/"), Bot)
///     .handler_threads(4)
///     .handler_retries(HandlerRetryPolicy::default().max_attempts(8))
///     .consumer_name("worker-a")
///     .spawn()?;
/// let stop = worker.shutdown_handle(); // e.g. for an admin endpoint
/// # stop.shutdown();
/// let stats = worker.join(); // returns once stopped: finishes calls in progress
/// println!("handled {}", stats.handled);
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
pub struct RedisWorker {
    shared: Arc<Shared>,
    threads: Option<Threads>,
    drain_timeout: Duration,
}

struct Threads {
    reader: ThreadGroup,
    handlers: ThreadGroup,
    acker: ThreadGroup,
}

impl std::fmt::Debug for RedisWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWorker")
            .field("consumer", &self.shared.consumer)
            .field("group", &self.shared.group)
            .field("events_key", &self.shared.events_key)
            .field("handler_threads", &self.shared.threads)
            .field("drain_timeout", &self.drain_timeout)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Stops a [`RedisWorker`] from another thread (a signal handler, an admin
/// endpoint). Cheap to clone. Made by [`RedisWorker::shutdown_handle`].
#[derive(Clone)]
pub struct WorkerShutdownHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WorkerShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerShutdownHandle")
            .field("consumer", &self.shared.consumer)
            .finish_non_exhaustive()
    }
}

impl WorkerShutdownHandle {
    /// Starts a graceful stop and returns at once: no more entries are
    /// fetched or begun from now on; the thread blocked in
    /// [`RedisWorker::join`] then finishes it (see [`RedisWorker::shutdown`]).
    pub fn shutdown(&self) {
        self.shared.request_stop(false);
    }

    /// Like [`shutdown`](Self::shutdown), and stops waiting for handler
    /// calls in progress, also when a graceful stop is already under way
    /// (what the second SIGTERM does under
    /// `run_until_signal`): calls still
    /// running are left behind and their entries stay pending on this
    /// consumer, to be taken over after the claim idle time.
    pub fn shutdown_now(&self) {
        self.shared.request_stop(true);
    }
}

/// Configures and starts a [`RedisWorker`]. Made by [`RedisWorker::builder`].
///
/// The setters shared with the listener's builder have the same names and
/// meanings: [`handler_threads`](Self::handler_threads),
/// [`handler_retries`](Self::handler_retries),
/// [`drain_timeout`](Self::drain_timeout),
/// [`on_dead_letter`](Self::on_dead_letter). Every setter documents its default.
pub struct RedisWorkerBuilder<H> {
    redis: RedisOptions,
    handler: Arc<H>,
    group: String,
    consumer: Option<String>,
    handler_threads: usize,
    retry: HandlerRetryPolicy,
    drain_timeout: Duration,
    on_dead_letter: Option<DeadLetterHook>,
    claim_idle: Duration,
    block_time: Duration,
    trim_interval: Option<Duration>,
    forget_idle_consumers: Duration,
}

impl<H> std::fmt::Debug for RedisWorkerBuilder<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWorkerBuilder")
            .field("redis", &self.redis)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("handler_threads", &self.handler_threads)
            .field("retry", &self.retry)
            .field("drain_timeout", &self.drain_timeout)
            .field("claim_idle", &self.claim_idle)
            .field("block_time", &self.block_time)
            .field("trim_interval", &self.trim_interval)
            .field("forget_idle_consumers", &self.forget_idle_consumers)
            .finish_non_exhaustive()
    }
}

impl RedisWorker {
    /// Starts configuring a worker that reads the stream on the Redis
    /// described by `redis` and hands each event to `handler`.
    ///
    /// `handler` is the handler itself, or an `Arc` of it when you keep a
    /// reference too ([`IntoSharedHandler`]).
    pub fn builder<H: WebhookHandler + 'static>(
        redis: RedisOptions,
        handler: impl IntoSharedHandler<H>,
    ) -> RedisWorkerBuilder<H> {
        RedisWorkerBuilder {
            redis,
            handler: handler.into_shared(),
            group: DEFAULT_GROUP.to_owned(),
            consumer: None,
            handler_threads: DEFAULT_WORKER_HANDLER_THREADS
                .max(thread::available_parallelism().map_or(1, |n| n.get())),
            retry: HandlerRetryPolicy::default(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            on_dead_letter: None,
            claim_idle: Duration::from_secs(60),
            block_time: Duration::from_secs(2),
            trim_interval: Some(Duration::from_secs(10)),
            forget_idle_consumers: Duration::from_secs(600),
        }
    }

    /// This worker's consumer name in the group.
    pub fn consumer_name(&self) -> &str {
        &self.shared.consumer
    }

    /// The counters as they are now.
    pub fn stats(&self) -> RedisWorkerStats {
        self.shared.counters.snapshot()
    }

    /// A handle that stops this worker from another thread.
    pub fn shutdown_handle(&self) -> WorkerShutdownHandle {
        WorkerShutdownHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops gracefully, joins every thread and returns the final counters:
    ///
    /// 1. no more entries are fetched, and no fetched entry is begun;
    /// 2. handler calls in progress finish, for up to the
    ///    [drain timeout](RedisWorkerBuilder::drain_timeout) counted from
    ///    step 1, and are acknowledged; a call still running then is left
    ///    behind (its entry stays pending on this consumer, to be taken
    ///    over after the claim idle time);
    /// 3. what the worker still holds — entries waiting to be retried, and
    ///    any fetched and not begun — is handed back: the other workers
    ///    take the first over once their backoff has passed, the others at
    ///    once;
    /// 4. the worker removes itself from the consumer group (unless a call
    ///    was left behind in step 2).
    ///
    /// Takes at most the drain timeout, or the block time plus the command
    /// timeout when that is longer, plus a few commands.
    pub fn shutdown(mut self) -> RedisWorkerStats {
        self.shared.request_stop(false);
        self.finish();
        self.stats()
    }

    /// Blocks until the worker is stopped through a [`WorkerShutdownHandle`]
    /// (or a signal, under `run_until_signal`),
    /// then finishes the graceful stop like [`shutdown`](Self::shutdown)
    /// and returns the final counters.
    pub fn join(mut self) -> RedisWorkerStats {
        self.shared.wait_for_stop_request();
        self.finish();
        self.stats()
    }

    /// Runs until SIGTERM or SIGINT (Ctrl-C), then stops gracefully like
    /// [`shutdown`](Self::shutdown) and returns the final counters (feature
    /// `signals`, Unix). A second signal stops at once
    /// ([`WorkerShutdownHandle::shutdown_now`]). The handlers are installed
    /// by this call and removed before it returns (see
    /// `WebhookListener::run_until_signal`, which works the same way).
    ///
    /// Errors: [`WasenderError::Io`](crate::WasenderError::Io) when the
    /// handlers cannot be installed; the worker is then stopped.
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
    pub fn run_until_signal(self) -> Result<RedisWorkerStats> {
        let graceful = self.shutdown_handle();
        let now = self.shutdown_handle();
        let watch = crate::signals::SignalWatch::start(
            self.drain_timeout,
            move || graceful.shutdown(),
            move || now.shutdown_now(),
        )?;
        let stats = self.join();
        watch.stop();
        Ok(stats)
    }

    /// The graceful stop's steps, once: see [`shutdown`](Self::shutdown).
    fn finish(&mut self) {
        let Some(threads) = self.threads.take() else {
            return;
        };
        let shared = &self.shared;
        let began = shared.stop_requested_at().unwrap_or_else(Instant::now);
        let connector = &shared.connector;
        // The reader may be blocked in a read for the block time, then waits
        // for its reply up to the command timeout.
        let reader_deadline = Instant::now()
            + shared.settings.block_time
            + connector.command_timeout()
            + connector.connect_timeout();
        let reader_left = threads.reader.join_by(reader_deadline);
        let stragglers = threads.handlers.join_by(began + self.drain_timeout);
        if stragglers > 0 {
            log::warn!(
                "{stragglers} handler thread(s) still inside the handler at the drain deadline; \
                 their entries stay pending on {} and are taken over after the claim idle time",
                shared.consumer
            );
        }
        shared.close_acks();
        let acker_deadline = Instant::now()
            + acking::TRIES * (connector.command_timeout() + connector.connect_timeout());
        threads.acker.join_by(acker_deadline);
        let holding = reader_left + stragglers;
        handling::hand_back(shared, holding == 0);
        log::info!("Redis worker {} stopped: {}", shared.consumer, self.stats());
    }
}

impl Drop for RedisWorker {
    fn drop(&mut self) {
        self.shared.request_stop(false);
        self.finish();
    }
}

impl<H: WebhookHandler + 'static> RedisWorkerBuilder<H> {
    /// The consumer group the worker reads with (default [`DEFAULT_GROUP`],
    /// `wasender`). Created, starting at the beginning of the stream, by the
    /// first worker that finds it missing. Workers of one group share the
    /// events; another group gets every event again.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// This worker's consumer name in the group (default: host name and
    /// process id, `host-1234`). Names must differ between workers running
    /// at the same time, and may not be [`HANDED_BACK_CONSUMER`]. Entries a
    /// stopped or crashed worker left pending are taken over after the
    /// claim idle time, by any worker (this one restarted under the same
    /// name included).
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// Threads running the handler (default [`DEFAULT_WORKER_HANDLER_THREADS`],
    /// 16, or the available parallelism when that is more). A worker never
    /// holds more entries than it has idle threads: each read and takeover
    /// asks for at most that many, so no entry waits in one worker while
    /// another could run it, and a crash takes down no entry that had not
    /// begun. The price is throughput: each read is a round trip to Redis
    /// (with `appendfsync always`, an `fsync`), and brings at most one entry
    /// per idle thread. Idle threads cost little, so give a worker with quick
    /// handlers many (on a 2-core VM with `appendfsync always`, about 540
    /// events/s per thread: 2,100/s with 4 threads, 6,500/s with 16, 22,000/s
    /// with 64).
    pub fn handler_threads(mut self, threads: usize) -> Self {
        self.handler_threads = threads;
        self
    }

    /// How a failing handler is called again (default
    /// [`HandlerRetryPolicy::default`]: 5 attempts, 100 ms doubling up to
    /// 30 s), the same policy as the listener's queued modes. Attempts are
    /// handler calls that began, recorded in Redis as each begins, so they
    /// survive worker restarts, and a call cut short by a crash counts too:
    /// an event that crashes every worker that runs it ends in the dead
    /// letters instead of crashing them forever. Its longest backoff must
    /// be shorter than [`claim_idle`](Self::claim_idle), or another worker
    /// would take the entry over during the wait.
    pub fn handler_retries(mut self, policy: HandlerRetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long a graceful stop waits for handler calls in progress,
    /// counted from the moment it begins (default
    /// [`DEFAULT_DRAIN_TIMEOUT`], 30 s: the same setting, with the same
    /// meaning, as the listener's). Calls still running then are left
    /// behind; their entries stay pending and are taken over.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Called with each event this worker dead-lettered (default: none), on
    /// the handler thread, once the letter is in the dead-letter stream. A
    /// panic in the hook is caught and logged.
    pub fn on_dead_letter(mut self, hook: impl Fn(&DeadLetter) + Send + Sync + 'static) -> Self {
        self.on_dead_letter = Some(Arc::new(hook));
        self
    }

    /// How long an entry must sit pending on a consumer, untouched, before
    /// another worker takes it over (default 60 s): a crashed or stuck
    /// worker's entries are handled elsewhere. Set it above your slowest
    /// handler call, or a slow call is taken over and run twice, and above
    /// the longest backoff of [`handler_retries`](Self::handler_retries).
    pub fn claim_idle(mut self, idle: Duration) -> Self {
        self.claim_idle = idle;
        self
    }

    /// How long one wait for new entries lasts (`XREAD … BLOCK`, default
    /// 2 s). Also bounds how long a stop waits for the reader.
    pub fn block_time(mut self, time: Duration) -> Self {
        self.block_time = time;
        self
    }

    /// How often acknowledged history is trimmed from the stream
    /// (`XTRIM <events> MINID ~ <oldest entry not yet acknowledged>`; default
    /// every 10 s). `None` keeps every entry (trim it yourself). Only this
    /// worker's group is considered: if other consumer groups read the same
    /// stream, turn this off.
    pub fn trim_interval(mut self, interval: Option<Duration>) -> Self {
        self.trim_interval = interval;
        self
    }

    /// Consumers of the group that hold no pending entry and have been idle
    /// this long are removed from it (default 10 minutes): workers that
    /// died or were killed, once their entries were taken over, do not pile
    /// up in `XINFO CONSUMERS`. A consumer holding entries is never removed
    /// (that would drop them); a live worker removed while it had nothing
    /// to do is added back by its next read.
    pub fn forget_idle_consumers(mut self, idle: Duration) -> Self {
        self.forget_idle_consumers = idle;
        self
    }

    /// Starts the reader and the handler threads, returning at once. Redis
    /// need not be up: the worker connects (and creates the consumer group
    /// if it is missing) as soon as it can, and reconnects whenever the
    /// connection is lost, logging the outage.
    ///
    /// Errors: [`WasenderError::InvalidArgument`](crate::WasenderError::InvalidArgument)
    /// for unusable options: see [`RedisOptions`]; zero handler threads,
    /// block time or claim idle time; an empty group or consumer name, or
    /// [`HANDED_BACK_CONSUMER`]; a longest backoff not shorter than the
    /// claim idle time. [`WasenderError::Io`](crate::WasenderError::Io)
    /// when a thread cannot be started.
    pub fn spawn(self) -> Result<RedisWorker> {
        self.redis.validate()?;
        let consumer = self
            .consumer
            .unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id()));
        if self.handler_threads == 0 || self.block_time.is_zero() || self.claim_idle.is_zero() {
            return invalid(
                "the worker's handler_threads, block_time and claim_idle must be above zero"
                    .to_owned(),
            );
        }
        if self.group.is_empty() || consumer.is_empty() || consumer == HANDED_BACK_CONSUMER {
            return invalid(format!(
                "the worker needs a group and a consumer name, other than {HANDED_BACK_CONSUMER:?}"
            ));
        }
        if self.retry.longest_backoff() >= self.claim_idle {
            return invalid(format!(
                "the handler retries' max_backoff ({:?}) must be shorter than claim_idle ({:?}), \
                 or other workers take entries over while they wait to be retried",
                self.retry.longest_backoff(),
                self.claim_idle
            ));
        }
        let handlers = ThreadGroup::new();
        let shared = Arc::new(Shared {
            connector: Connector::new(&self.redis)?,
            events_key: self.redis.events_key(),
            dead_key: self.redis.dead_key(),
            attempts_key: self.redis.attempts_key(),
            group: self.group,
            consumer,
            threads: self.handler_threads,
            settings: Settings {
                retry: self.retry,
                claim_idle: self.claim_idle,
                block_time: self.block_time,
                trim_interval: self.trim_interval,
                forget_idle_consumers: self.forget_idle_consumers,
            },
            local: Mutex::new(Local::default()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            stop: Mutex::new(StopState::default()),
            stop_changed: Condvar::new(),
            hurry: handlers.hurry_handle(),
            acks: Mutex::new(Acks::default()),
            acks_changed: Condvar::new(),
            counters: WorkerCounters::default(),
            scripts: Scripts::default(),
            on_dead_letter: self.on_dead_letter,
        });
        let mut worker = RedisWorker {
            shared: Arc::clone(&shared),
            threads: Some(Threads {
                reader: ThreadGroup::new(),
                handlers,
                acker: ThreadGroup::new(),
            }),
            drain_timeout: self.drain_timeout,
        };
        if let Err(e) = start_threads(&shared, &self.handler, &mut worker) {
            shared.request_stop(false);
            worker.finish();
            return Err(e.into());
        }
        log::info!(
            "Redis worker {} reading {} (group {}) with {} handler thread(s)",
            shared.consumer,
            shared.events_key,
            shared.group,
            shared.threads
        );
        Ok(worker)
    }
}

fn start_threads<H: WebhookHandler + 'static>(
    shared: &Arc<Shared>,
    handler: &Arc<H>,
    worker: &mut RedisWorker,
) -> std::io::Result<()> {
    let Some(threads) = worker.threads.as_mut() else {
        return Ok(());
    };
    for i in 0..shared.threads {
        let thread_shared = Arc::clone(shared);
        let handler = Arc::clone(handler);
        threads
            .handlers
            .spawn(format!("wasender-redis-handler-{i}"), move || {
                handling::run(&thread_shared, &*handler)
            })?;
    }
    let acker_shared = Arc::clone(shared);
    threads
        .acker
        .spawn("wasender-redis-acker".to_owned(), move || {
            acking::run(&acker_shared)
        })?;
    let reader_shared = Arc::clone(shared);
    threads
        .reader
        .spawn("wasender-redis-reader".to_owned(), move || {
            reading::run(&reader_shared)
        })
}
