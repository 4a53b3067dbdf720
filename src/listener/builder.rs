//! [`WebhookListenerBuilder`]: where the listener listens and the bounds it keeps.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::delivery::{Delivery, InlineDelivery};
use super::limits::{default_queue_capacity, Limits};
use super::mode::{DeliveryMode, HandlerRetryPolicy, DEFAULT_DRAIN_TIMEOUT};
use super::queued::{DeadLetterHook, QueuedConfig, QueuedDelivery};
use super::server::{Shared, WebhookListener};
use super::stats::{Counters, ListenerStats};
use super::workers::{spawn_workers, Processor};
use crate::error::{Result, WasenderError};
use crate::handler::WebhookHandler;
use crate::journal::{DeadLetter, DedupeWindow};
use crate::WebhookVerifier;

/// The address bound when [`bind`](WebhookListenerBuilder::bind) is not called.
pub const DEFAULT_BIND: &str = "0.0.0.0:3000";
/// The webhook path when [`path`](WebhookListenerBuilder::path) is not called.
pub const DEFAULT_PATH: &str = "/webhook";

/// Configures and starts a [`WebhookListener`]. Made by [`WebhookListener::builder`].
///
/// Every setter documents its default; the defaults are safe to face the internet.
pub struct WebhookListenerBuilder<H> {
    verifier: WebhookVerifier,
    handler: Arc<H>,
    bind: Bind,
    path: String,
    workers: usize,
    limits: Limits,
    queue_capacity: Option<usize>,
    mode: DeliveryMode,
    handler_threads: Option<usize>,
    retry: HandlerRetryPolicy,
    on_dead_letter: Option<DeadLetterHook>,
    dedupe: Option<usize>,
    drain_timeout: Duration,
}

enum Bind {
    /// An address to bind, as the user wrote it, and what it resolved to.
    Address {
        addr: String,
        resolved: io::Result<Vec<SocketAddr>>,
    },
    Listener(TcpListener),
}

impl Bind {
    fn address<A: ToSocketAddrs + fmt::Debug>(addr: &A) -> Self {
        let resolved = addr.to_socket_addrs().map(Iterator::collect);
        // Debug is the one text every `ToSocketAddrs` type has; a string is
        // shown without its quotes.
        let text = format!("{addr:?}");
        let addr = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(unquoted) => unquoted.to_owned(),
            None => text,
        };
        Self::Address { addr, resolved }
    }

    /// The bound socket; an error names the address.
    fn into_listener(self) -> Result<TcpListener> {
        match self {
            Self::Listener(listener) => Ok(listener),
            Self::Address { addr, resolved } => resolved
                .and_then(|addrs| TcpListener::bind(addrs.as_slice()))
                .map_err(|source| WasenderError::Bind { addr, source }),
        }
    }
}

/// A handler as [`WebhookListener::builder`] takes it: the handler itself, or
/// an [`Arc`] of it when you keep a reference too (to read its state, or to
/// share it with other code).
///
/// Implemented for every [`WebhookHandler`] and every `Arc` of one; you never
/// implement it yourself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither a `WebhookHandler` nor an `Arc` of one",
    label = "a webhook handler is needed here",
    note = "implement `wasenderapi::WebhookHandler` for your handler type; `WebhookListener::builder` takes the handler itself or an `Arc` of it"
)]
pub trait IntoSharedHandler<H> {
    /// The handler behind an `Arc`.
    fn into_shared(self) -> Arc<H>;
}

impl<H: WebhookHandler> IntoSharedHandler<H> for H {
    fn into_shared(self) -> Arc<H> {
        Arc::new(self)
    }
}

impl<H: WebhookHandler> IntoSharedHandler<H> for Arc<H> {
    fn into_shared(self) -> Arc<H> {
        self
    }
}

impl<H> std::fmt::Debug for WebhookListenerBuilder<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookListenerBuilder")
            .field("verifier", &self.verifier)
            .field("path", &self.path)
            .field("workers", &self.workers)
            .field("limits", &self.limits)
            .field("mode", &self.mode)
            .field("handler_threads", &self.handler_threads)
            .field("retry", &self.retry)
            .field("dedupe", &self.dedupe)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookListener {
    /// Starts configuring a listener that verifies events with `verifier` and
    /// delivers them to `handler`.
    ///
    /// `verifier` is a [`WebhookVerifier`] (its secrets and scheme), or a
    /// `WasenderSyncClient` (feature `client`), whose verifier is used.
    /// `handler` is your [`WebhookHandler`], or an `Arc<H>` of it when you
    /// keep a reference too ([`IntoSharedHandler`]).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use wasenderapi::event::MessagesData;
    /// use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};
    ///
    /// #[derive(Default)]
    /// struct Counter(AtomicUsize);
    /// impl WebhookHandler for Counter {
    ///     type Error = std::convert::Infallible;
    ///     fn on_messages_received(&self, _: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
    ///         self.0.fetch_add(1, Ordering::Relaxed);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let counter = Arc::new(Counter::default());
    /// let listener = WebhookListener::builder(
    ///     WebhookVerifier::with_secret("webhook-secret"),
    ///     Arc::clone(&counter), // or `Counter::default()` when you need no reference
    /// )
    /// .bind("127.0.0.1:0")
    /// .spawn()?;
    /// listener.shutdown();
    /// assert_eq!(counter.0.load(Ordering::Relaxed), 0);
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn builder<H: WebhookHandler + 'static>(
        verifier: impl Into<WebhookVerifier>,
        handler: impl IntoSharedHandler<H>,
    ) -> WebhookListenerBuilder<H> {
        let workers = thread::available_parallelism().map_or(4, |n| n.get());
        WebhookListenerBuilder {
            verifier: verifier.into(),
            handler: handler.into_shared(),
            bind: Bind::address(&DEFAULT_BIND),
            path: DEFAULT_PATH.to_owned(),
            workers,
            limits: Limits::for_workers(workers),
            queue_capacity: None,
            mode: DeliveryMode::Inline,
            handler_threads: None,
            retry: HandlerRetryPolicy::default(),
            on_dead_letter: None,
            dedupe: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl<H: WebhookHandler + 'static> WebhookListenerBuilder<H> {
    /// The address to listen on (default [`DEFAULT_BIND`], `0.0.0.0:3000`).
    /// Port 0 picks a free port: read it back with [`WebhookListener::local_addr`].
    /// An address that does not resolve is reported by [`spawn`](Self::spawn),
    /// as [`WasenderError::Bind`] naming it.
    pub fn bind(mut self, addr: impl ToSocketAddrs + fmt::Debug) -> Self {
        self.bind = Bind::address(&addr);
        self
    }

    /// Listens on an already bound socket (from systemd, or set up by hand)
    /// instead of binding one.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.bind = Bind::Listener(listener);
        self
    }

    /// The path events are posted to (default [`DEFAULT_PATH`], `/webhook`).
    /// Must start with `/`. `GET /healthz` is always answered too.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Worker threads, in parallel (default: the available parallelism). In
    /// inline mode they verify, decode and run the handler. The queued modes
    /// need no workers: each connection thread verifies, decodes and stores its
    /// own requests, and [`handler_threads`](Self::handler_threads) (default:
    /// this number) run the handler.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// The largest accepted body (default 1 MiB). Larger requests get 413,
    /// decided from `Content-Length` before reading, or while reading a chunked
    /// body; no more than this is ever buffered.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_body_bytes = bytes;
        self
    }

    /// The largest request line plus headers (default 16 KiB); larger gets 431.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_head_bytes = bytes;
        self
    }

    /// The longest wait for any single read from a client (default 10 s); also
    /// how long an idle keep-alive connection is kept open.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.read_timeout = timeout;
        self
    }

    /// The longest a whole request (head and body) may take to arrive once it
    /// has started (default 30 s), however the client trickles it; then 408.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.limits.request_timeout = timeout;
        self
    }

    /// The longest wait for any single write to a client (default 10 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.limits.write_timeout = timeout;
        self
    }

    /// The most connections open at once (default 512); more are answered 503 and closed.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.limits.max_connections = connections;
        self
    }

    /// Events waiting for a free worker (default: 16 per worker, at least 64);
    /// when the queue is full, events are answered 503 so the sender retries.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self
    }

    /// When events are answered and what is kept of them (default
    /// [`DeliveryMode::Inline`]). See the [module docs](super#delivery-modes).
    pub fn delivery_mode(mut self, mode: DeliveryMode) -> Self {
        self.mode = mode;
        self
    }

    /// Threads running the handler in the queued modes (default: as many as
    /// [`workers`](Self::workers)). No effect in inline mode.
    pub fn handler_threads(mut self, threads: usize) -> Self {
        self.handler_threads = Some(threads);
        self
    }

    /// How a failing handler is retried in the queued modes (default: 5
    /// attempts, 100 ms doubling up to 30 s). Inline mode does not retry: it
    /// answers 500 and the sender may.
    pub fn handler_retries(mut self, policy: HandlerRetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Called with each event the handler failed on every attempt (queued
    /// modes), on the handler thread, after the event is written to
    /// `dead-letters.jsonl` in the journal directory (durable mode). In the
    /// in-memory queued mode there is no file: the event is logged
    /// (`log::error!`) and handed to this hook only, and the letter's `seq`
    /// numbers events in arrival order since start. A panic in the hook is
    /// caught and logged.
    pub fn on_dead_letter(mut self, hook: impl Fn(&DeadLetter) + Send + Sync + 'static) -> Self {
        self.on_dead_letter = Some(Arc::new(hook));
        self
    }

    /// Suppresses events already seen among the last `window_capacity`
    /// (off by default): same event name and first message `key.id`, or the
    /// same body when there is no message id (compared by SHA-256). A duplicate is answered
    /// 200 (`"duplicate":true`) and not handled again. In durable mode the
    /// window is kept in `dedupe.log` in the journal directory and survives
    /// restarts; otherwise it is in memory. An event the handler failed on
    /// (inline) or that could not be queued is forgotten again, so the
    /// sender's retry gets through.
    pub fn dedupe(mut self, window_capacity: usize) -> Self {
        self.dedupe = Some(window_capacity);
        self
    }

    /// How long shutdown waits for the queue to drain in the queued modes
    /// (default 30 s). Events not handled by then stay in the journal
    /// (durable) or are dropped and counted in [`ListenerStats::dropped`]
    /// (in memory). Events waiting to retry are given up at once in durable
    /// mode (they are safe in the journal), at the deadline otherwise.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Binds and starts the listener on its own threads, returning at once.
    ///
    /// In durable mode the journal is opened (and recovered) first, and the
    /// events it still holds are handed to the handler threads before any
    /// new one.
    ///
    /// Errors, all before anything is bound or started:
    /// [`WasenderError::SecretNotConfigured`] when the verifier has no secret
    /// (it could accept no event); [`WasenderError::InvalidArgument`] for a
    /// zero worker count, limit, capacity or timeout, or a path not starting
    /// with `/`. Then [`WasenderError::Bind`], naming the address, when it does
    /// not resolve or cannot be bound (in use, no permission);
    /// [`WasenderError::JournalLocked`] when another listener (in this
    /// process or another) holds the journal directory;
    /// [`WasenderError::Journal`] or [`WasenderError::JournalFormat`] when
    /// the journal cannot be opened; [`WasenderError::Io`] when a thread
    /// cannot be started.
    pub fn spawn(self) -> Result<WebhookListener> {
        if self.verifier.secret_count() == 0 {
            return Err(WasenderError::SecretNotConfigured);
        }
        self.validate()?;
        let listener = self.bind.into_listener()?;
        let local_addr = listener.local_addr()?;
        let mut limits = self.limits;
        limits.queue_capacity = self
            .queue_capacity
            .unwrap_or_else(|| default_queue_capacity(self.workers));
        let counters = Arc::new(Counters::default());
        let delivery: Arc<dyn Delivery> = match &self.mode {
            DeliveryMode::Inline => Arc::new(InlineDelivery::new(
                self.handler,
                self.dedupe.map(DedupeWindow::new),
            )),
            DeliveryMode::Queued { capacity } | DeliveryMode::Durable { capacity, .. } => {
                let journal_dir = match &self.mode {
                    DeliveryMode::Durable { dir, .. } => Some(dir.clone()),
                    _ => None,
                };
                let config = QueuedConfig {
                    capacity: *capacity,
                    journal_dir,
                    max_record_size: limits.max_body_bytes,
                    handler_threads: self.handler_threads.unwrap_or(self.workers),
                    retry: self.retry,
                    dedupe_capacity: self.dedupe,
                    on_dead_letter: self.on_dead_letter,
                    drain_timeout: self.drain_timeout,
                };
                Arc::new(QueuedDelivery::start(
                    self.handler,
                    config,
                    Arc::clone(&counters),
                )?)
            }
        };
        let (jobs_tx, jobs_rx) = mpsc::sync_channel(limits.queue_capacity);
        let processor = Arc::new(Processor::new(self.verifier, Arc::clone(&delivery)));
        // Queued modes store on the connection thread: no worker hand-off.
        let (worker_count, direct) = if self.mode.is_queued() {
            (0, Some(Arc::clone(&processor)))
        } else {
            (self.workers, None)
        };
        let workers = spawn_workers(worker_count, jobs_rx, processor)?;
        let shared = Arc::new(Shared::new(counters, limits, self.path, jobs_tx, direct));
        let running = WebhookListener::start(listener, Arc::clone(&shared), workers, delivery)?;
        let mode = match &self.mode {
            DeliveryMode::Inline => "inline".to_owned(),
            DeliveryMode::Queued { capacity } => format!("queued (capacity {capacity})"),
            DeliveryMode::Durable { dir, capacity } => {
                format!("durable (journal {}, capacity {capacity})", dir.display())
            }
        };
        log::info!(
            "webhook listener on http://{local_addr}{} with {} workers, {mode} delivery",
            shared.path,
            self.workers
        );
        Ok(running)
    }

    /// Binds and runs the listener on the calling thread's behalf, blocking
    /// until it is stopped; returns the final counters.
    ///
    /// To stop it from elsewhere, use [`spawn`](Self::spawn), hand a
    /// [`WebhookListener::shutdown_handle`] to the stopping code, and call
    /// [`WebhookListener::join`].
    pub fn run(self) -> Result<ListenerStats> {
        Ok(self.spawn()?.join())
    }

    fn validate(&self) -> Result<()> {
        let invalid = |what: &str| {
            Err(WasenderError::InvalidArgument(format!(
                "webhook listener: {what}"
            )))
        };
        let limits = &self.limits;
        if self.workers == 0 {
            return invalid("workers must be at least 1");
        }
        if !self.path.starts_with('/') {
            return invalid("path must start with '/'");
        }
        if self.queue_capacity == Some(0) {
            return invalid("queue_capacity must be at least 1");
        }
        if self.mode.capacity() == Some(0) {
            return invalid("the delivery mode's capacity must be at least 1");
        }
        if self.handler_threads == Some(0) {
            return invalid("handler_threads must be at least 1");
        }
        if self.dedupe == Some(0) {
            return invalid("the dedupe window must hold at least 1 key");
        }
        if limits.max_body_bytes == 0 || limits.max_head_bytes == 0 || limits.max_connections == 0 {
            return invalid(
                "max_body_bytes, max_head_bytes and max_connections must be at least 1",
            );
        }
        if [
            limits.read_timeout,
            limits.request_timeout,
            limits.write_timeout,
        ]
        .contains(&Duration::ZERO)
        {
            return invalid("timeouts must be longer than zero");
        }
        Ok(())
    }
}
