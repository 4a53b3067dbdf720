//! [`WebhookListenerBuilder`]: where the listener listens and the bounds it keeps.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[cfg(feature = "redis")]
use super::delivery::RedisDelivery;
use super::delivery::{Delivery, DeliveryMode, InlineDelivery, QueuedConfig, QueuedDelivery};
use super::http::{default_queue_capacity, Limits, Server, ServerConfig, SystemClock};
use super::server::WebhookListener;
use super::service::WebhookService;
use super::stats::{Counters, ListenerStats};
use crate::error::{Result, WasenderError};
use crate::handler::{DeadLetterHook, DEFAULT_DRAIN_TIMEOUT};
use crate::handler::{HandlerRetryPolicy, WebhookHandler};
use crate::journal::{DeadLetter, DedupeWindow};
use crate::signature::verifier::WebhookVerifier;

/// Workers by default in the modes where processing mostly waits (the
/// durable journal's `fsync`, a Redis round trip): enough to share an
/// `fsync` among many requests.
const WAITING_WORKERS: usize = 32;

/// The number of CPUs this process may use (at least 1).
fn cpu_count() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// The address bound when [`bind`](WebhookListenerBuilder::bind) is not called.
pub const DEFAULT_BIND: &str = "0.0.0.0:3000";
/// The webhook path when [`path`](WebhookListenerBuilder::path) is not called.
pub const DEFAULT_PATH: &str = "/webhook";

/// Configures and starts a [`WebhookListener`]. Made by [`WebhookListener::builder`].
///
/// Every setter documents its default; the defaults are safe to face the
/// internet (the [operations guide](crate::guide#limits-and-hostile-input)
/// has them in one table).
///
/// # Examples
///
/// A durable listener on a free port of 127.0.0.1, started and stopped:
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::handler::HandlerRetryPolicy;
/// use wasenderapi::listener::DeliveryMode;
/// use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
///
/// struct Bot;
/// impl WebhookHandler for Bot {
///     type Error = std::convert::Infallible;
/// }
///
/// # let dir = std::env::temp_dir().join(format!("wasender-builder-doc-{}", std::process::id()));
/// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
///     .bind("127.0.0.1:0")                      // default 0.0.0.0:3000
///     .path("/webhook")                         // the default
///     .delivery_mode(DeliveryMode::durable(&dir)) // answer once on disk; replay after a crash
///     .handler_threads(2)
///     .handler_retries(HandlerRetryPolicy::default().max_attempts(3))
///     .dedupe(10_000)                           // suppress repeats of recent events
///     .max_body_bytes(1 << 20)
///     .drain_timeout(Duration::from_secs(20))
///     .spawn()?;
/// assert_eq!(listener.stats().received, 0);
/// listener.shutdown();
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WebhookListenerBuilder<H> {
    verifier: WebhookVerifier,
    handler: Arc<H>,
    bind: Bind,
    path: String,
    /// `None`: chosen by the delivery mode (see `workers`).
    workers: Option<usize>,
    /// `None`: one per CPU but one (see `event_loops`).
    event_loops: Option<usize>,
    limits: Limits,
    queue_capacity: Option<usize>,
    mode: DeliveryMode,
    handler_threads: Option<usize>,
    retry: HandlerRetryPolicy,
    on_dead_letter: Option<DeadLetterHook>,
    dedupe: Option<usize>,
    drain_timeout: Duration,
    /// HTTPS, when set (`tls.rs`).
    #[cfg(feature = "tls")]
    tls: Option<super::http::TlsSource>,
    /// Where metrics are served; `None`: metrics off.
    #[cfg(feature = "metrics")]
    metrics_path: Option<String>,
    #[cfg(all(feature = "signals", unix))]
    shutdown_on_signals: bool,
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

/// The builder's type parameter for a listener in Redis mode (feature
/// `redis`): verified events are added to a Redis stream and no handler
/// runs in the listener. Made by
/// [`WebhookListener::redis_builder`](crate::WebhookListener::redis_builder).
#[cfg(feature = "redis")]
#[derive(Debug)]
pub struct RedisMode {
    options: crate::redis::RedisAppenderOptions,
}

/// What a delivery mode tells the launch of a listener.
struct Plan {
    workers: usize,
    /// The journal directory (for the metrics' journal size).
    journal_dir: Option<PathBuf>,
    /// The mode and threads, for the start-up log line.
    description: String,
}

/// The parts of the builder only the delivery uses.
struct DeliveryParts<H> {
    /// The handler (or, in Redis mode, where events go).
    target: Arc<H>,
    mode: DeliveryMode,
    handler_threads: Option<usize>,
    retry: HandlerRetryPolicy,
    on_dead_letter: Option<DeadLetterHook>,
    dedupe: Option<usize>,
}

impl<H> std::fmt::Debug for WebhookListenerBuilder<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookListenerBuilder")
            .field("verifier", &self.verifier)
            .field("path", &self.path)
            .field("workers", &self.workers)
            .field("event_loops", &self.event_loops)
            .field("limits", &self.limits)
            .field("mode", &self.mode)
            .field("handler_threads", &self.handler_threads)
            .field("retry", &self.retry)
            .field("dedupe", &self.dedupe)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl<H> WebhookListenerBuilder<H> {
    /// A builder with every default, for [`WebhookListener::builder`].
    pub(crate) fn new(verifier: WebhookVerifier, handler: Arc<H>) -> Self {
        let cpus = cpu_count();
        WebhookListenerBuilder {
            verifier,
            handler,
            bind: Bind::address(&DEFAULT_BIND),
            path: DEFAULT_PATH.to_owned(),
            workers: None,
            event_loops: None,
            limits: Limits::for_workers(cpus),
            queue_capacity: None,
            mode: DeliveryMode::Inline,
            handler_threads: None,
            retry: HandlerRetryPolicy::default(),
            on_dead_letter: None,
            dedupe: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "metrics")]
            metrics_path: None,
            #[cfg(all(feature = "signals", unix))]
            shutdown_on_signals: false,
        }
    }
}

impl<H> WebhookListenerBuilder<H> {
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

    /// How many requests are processed at once: verified, decoded and, in
    /// inline mode, handled (default: the number of CPUs; in the durable and
    /// Redis modes, which mostly wait on a disk or a network, 32). The
    /// listener runs this many threads for them, plus one per CPU but one
    /// (at least one, at most one per worker) for its event loops, plus one supervisor:
    /// connections, idle or slow, cost no thread. A request that arrives
    /// when every worker is busy waits in a queue
    /// ([`queue_capacity`](Self::queue_capacity)); past it, it is answered 503.
    /// In the queued modes the workers only verify, decode and store, and
    /// [`handler_threads`](Self::handler_threads) run the handler.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// How many event loops serve the connections (default: one per CPU
    /// but one, at least one and at most `workers`). Each is a thread
    /// driving its share of the connections with `epoll`/`kqueue`; with fast
    /// handlers it also runs their requests, so that nothing is handed
    /// between threads. The default leaves a CPU to the handlers and the
    /// rest of the machine: an event loop sharing its CPU with another busy
    /// thread is preempted for whole time slices, and all its connections
    /// wait that long. On a machine that runs nothing else, set the CPU
    /// count. Zero is refused at `spawn`.
    pub fn event_loops(mut self, loops: usize) -> Self {
        self.event_loops = Some(loops);
        self
    }

    /// The largest accepted body (default 1 MiB). Larger requests get 413,
    /// decided from `Content-Length` before reading, or while decoding a
    /// chunked body. Memory follows the bytes that actually arrive, never the
    /// declared length, under [`max_buffered_bytes`](Self::max_buffered_bytes).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_body_bytes = bytes;
        self
    }

    /// The largest request line plus headers (default 16 KiB); larger gets 431.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_head_bytes = bytes;
        self
    }

    /// The longest time from a request's first byte to the end of its body
    /// (default 30 s), however the client trickles it; then 408.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.limits.request_timeout = timeout;
        self
    }

    /// How long the client may take to read an answer (default 10 s); then
    /// the connection is closed.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.limits.write_timeout = timeout;
        self
    }

    /// The most connections open at once (default 10,000, lowered to what
    /// the open-file limit leaves room for; the listener raises its soft
    /// open-file limit to the hard one at start and logs the cap in force).
    /// A connection arriving at the cap closes the one that has sent the
    /// least for the longest (closing, then silent since accepted, then idle
    /// between requests, then slow to read its answer, then the oldest
    /// request still arriving), never one being processed; only when every
    /// connection is being processed is the newcomer answered 503 and closed.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.limits.max_connections = connections;
        self
    }

    /// The most connections one peer address may hold open (default: half of
    /// the connection cap). A new connection past it closes that peer's
    /// connection that has been waiting longest without sending a request,
    /// or is refused when it has none. Connections from a
    /// [`trusted_proxies`](Self::trusted_proxies) address are exempt.
    pub fn max_connections_per_peer(mut self, connections: usize) -> Self {
        self.limits.max_connections_per_peer = Some(connections);
        self
    }

    /// How long a connection may wait with no request in progress (default
    /// 5 s): after it is accepted (and its TLS handshake, with `tls`), until
    /// its first byte, and between requests on a keep-alive connection. Shorter than the
    /// [`header_timeout`](Self::header_timeout), so a connection that sends
    /// nothing is the first to go.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// The longest time from a request's first byte to the end of its head
    /// (request line and headers), default 10 s; then 408.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_timeout = timeout;
        self
    }

    /// The most request bytes buffered across all connections at once
    /// (default 64 MiB): heads and bodies still arriving, counted as they
    /// arrive, never by their declared `Content-Length`. At the budget the
    /// connection holding the most unfinished bytes is answered 503 with
    /// `Retry-After` and closed, so small requests keep flowing. At least
    /// `max_body_bytes + max_head_bytes`.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_buffered_bytes = bytes;
        self
    }

    /// Reverse proxies whose `X-Forwarded-For` header is believed (default
    /// none): their connections are exempt from
    /// [`max_connections_per_peer`](Self::max_connections_per_peer), and logs
    /// name the client the proxy forwarded for. From any other peer the
    /// header is ignored.
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = std::net::IpAddr>) -> Self {
        self.limits.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// Complete requests waiting for a free worker (default: 64 per worker,
    /// at least 1,024; their bytes count against
    /// [`max_buffered_bytes`](Self::max_buffered_bytes)); past it they are
    /// answered 503, so the sender may retry.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self
    }

    /// How long shutdown waits for work in progress (default 30 s), counted
    /// from the moment it begins: requests being handled (inline mode) or
    /// stored, then, in the queued modes, the queue. Events not handled by
    /// then stay in the journal (durable) or are dropped and counted in
    /// [`ListenerStats::dropped`] (in memory); a handler still running is
    /// left behind and its request unanswered. Events waiting to retry are
    /// given up at once in durable mode (they are safe in the journal), at
    /// the deadline otherwise.
    ///
    /// Give your service manager a stop timeout longer than this (systemd
    /// `TimeoutStopSec`, `docker stop --time`, Kubernetes
    /// `terminationGracePeriodSeconds`): see the [operations guide](crate::guide#stopping-and-draining).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Stops the listener gracefully on SIGTERM or SIGINT (Ctrl-C), a second
    /// one stopping at once (default `false`). Feature `signals` (on by
    /// default), Unix only.
    ///
    /// For programs that [`spawn`](Self::spawn) and later
    /// [`join`](WebhookListener::join): the handlers are installed by
    /// `spawn` and removed when the listener has stopped (`join`,
    /// [`shutdown`](WebhookListener::shutdown) or drop). With
    /// [`run`](Self::run) this is [`WebhookListener::run_until_signal`];
    /// read its docs for what each signal does.
    ///
    /// ```no_run
    /// # use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = std::convert::Infallible; }
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
    ///     .shutdown_on_signals(true)
    ///     .spawn()?;
    /// // … other work on this thread …
    /// let stats = listener.join(); // returns after SIGTERM / Ctrl-C and the drain
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    #[cfg(all(feature = "signals", unix))]
    pub fn shutdown_on_signals(mut self, on: bool) -> Self {
        self.shutdown_on_signals = on;
        self
    }

    /// Serves HTTPS (feature `tls`) with the certificate chain in `cert_path`
    /// and the private key in `key_path`, both PEM (default: plain HTTP).
    ///
    /// The chain starts with the server's own certificate, followed by any
    /// intermediates, as Let's Encrypt's `fullchain.pem` is; the key is PKCS#8
    /// (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1
    /// (`BEGIN EC PRIVATE KEY`). Both are read when [`spawn`](Self::spawn) is
    /// called, which fails with [`WasenderError::TlsFile`], naming the file,
    /// when one cannot be read, holds no certificate or key, or the key does
    /// not belong to the certificate. Files are read once: restart the
    /// listener to serve a renewed certificate.
    ///
    /// TLS 1.2 and 1.3 through `rustls` with the process's default crypto
    /// provider (`ring`, the one the client's `ureq` uses, unless your program
    /// installed another), ALPN `http/1.1`. Every bound of plain HTTP holds:
    /// the handshake happens on the event loops like any read (no thread
    /// waits for it), must finish within the [`idle_timeout`](Self::idle_timeout),
    /// and a handshaking connection counts against
    /// [`max_connections`](Self::max_connections). A client
    /// speaking plain HTTP to the port is answered 400 (unencrypted) and
    /// closed; any other non-TLS input gets a TLS alert and is closed.
    ///
    /// ```no_run
    /// # use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = std::convert::Infallible; }
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
    ///     .bind("0.0.0.0:8443")
    ///     .tls("/etc/wasender/fullchain.pem", "/etc/wasender/privkey.pem")
    ///     .spawn()?;
    /// println!("POST events to https://{}/webhook", listener.local_addr());
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    ///
    /// Replaces an earlier [`tls_config`](Self::tls_config).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        self.tls = Some(super::http::TlsSource::Files {
            cert: cert_path.into(),
            key: key_path.into(),
        });
        self
    }

    /// Serves HTTPS (feature `tls`) with a `rustls` 0.23 configuration you
    /// built yourself: client certificates, a certificate resolver that
    /// reloads renewed files, another crypto provider, other protocol
    /// versions. The bounds are as with [`tls`](Self::tls).
    ///
    /// Its `alpn_protocols` must be empty or offer only `http/1.1` (and
    /// `http/1.0`): the listener speaks HTTP/1.1, so [`spawn`](Self::spawn)
    /// refuses a configuration offering `h2` with
    /// [`WasenderError::InvalidArgument`].
    ///
    /// Replaces an earlier [`tls`](Self::tls).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(super::http::TlsSource::Config(config));
        self
    }

    /// Keeps Prometheus metrics and serves them at `GET /metrics`
    /// ([`DEFAULT_METRICS_PATH`](super::DEFAULT_METRICS_PATH)) in the Prometheus text format (default off:
    /// `/metrics` answers 404). Feature `metrics`.
    ///
    /// | metric | type | what |
    /// |---|---|---|
    /// | `wasender_webhook_requests_total{status}` | counter | answers sent, by HTTP status (connections turned away with 503 included; scrapes too) |
    /// | `wasender_webhook_events_total{event}` | counter | verified events, by canonical type name; types this crate does not know are `unknown` |
    /// | `wasender_events_handled_total` | counter | handler calls that returned `Ok` |
    /// | `wasender_handler_errors_total` | counter | handler calls that returned an error or panicked |
    /// | `wasender_handler_panics_total` | counter | of those, the panics |
    /// | `wasender_handler_retries_total` | counter | queued modes: handler attempts after a failure |
    /// | `wasender_dead_letters_total` | counter | queued modes: events given up on after every attempt |
    /// | `wasender_handler_duration_seconds` | histogram | every handler call, failed ones included; buckets 1 ms to 30 s |
    /// | `wasender_queue_depth` | gauge | queued modes: events accepted and not yet finished |
    /// | `wasender_journal_bytes` | gauge | durable mode: bytes in the journal's segment files (0 without a journal) |
    /// | `wasender_webhook_rejected_total{reason}` | counter | requests refused: `signature`, `body`, `too_large`, `method`, `path`, `saturated`, `malformed`, `unavailable` |
    /// | `wasender_webhook_timeouts_total`, `wasender_webhook_aborted_total` | counter | requests not received in time (408); abandoned by the client |
    /// | `wasender_events_queued_total`, `_deduplicated_total`, `_recovered_total`, `_dropped_total` | counter | as in [`ListenerStats`](super::ListenerStats) |
    /// | `wasender_journal_errors_total` | counter | durable mode: failed journal, dead-letter or dedupe writes |
    /// | `wasender_connections_open`, `wasender_requests_in_flight` | gauge | now |
    ///
    /// The counters are the ones behind [`WebhookListener::stats`], so the
    /// two never disagree. To add these metrics to your own registry (and
    /// serve them with your application's), see
    /// [`WebhookListener::register_metrics`].
    ///
    /// ```
    /// use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = std::convert::Infallible; }
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
    ///     .bind("127.0.0.1:0")
    ///     .metrics(true) // GET /metrics
    ///     .spawn()?;
    /// println!("scrape http://{}/metrics", listener.local_addr());
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics_path = match (on, self.metrics_path) {
            (false, _) => None,
            (true, Some(path)) => Some(path),
            (true, None) => Some(super::DEFAULT_METRICS_PATH.to_owned()),
        };
        self
    }

    /// Keeps Prometheus metrics (as [`metrics(true)`](Self::metrics)) and
    /// serves them at `path` instead of `/metrics`. Must start with `/` and
    /// differ from the webhook path and `/healthz`.
    #[cfg(feature = "metrics")]
    pub fn metrics_path(mut self, path: impl Into<String>) -> Self {
        self.metrics_path = Some(path.into());
        self
    }

    /// Starts the listener once its mode has said how many workers it
    /// wants and how to build its delivery (`deliver`, given the parts of
    /// the builder that only the delivery uses).
    fn launch(
        self,
        plan: Plan,
        deliver: impl FnOnce(DeliveryParts<H>, Arc<Counters>, usize) -> Result<Arc<dyn Delivery>>,
    ) -> Result<WebhookListener> {
        if self.verifier.secret_count() == 0 {
            return Err(WasenderError::SecretNotConfigured);
        }
        self.validate()?;
        #[cfg(feature = "tls")]
        let tls = self.tls.map(super::http::TlsSource::load).transpose()?;
        let secrets = self.verifier.secret_count();
        let listener = self.bind.into_listener()?;
        let local_addr = listener.local_addr()?;
        let workers = plan.workers;
        let mut limits = self.limits;
        limits.queue_capacity = self
            .queue_capacity
            .unwrap_or_else(|| default_queue_capacity(workers));
        #[cfg(feature = "metrics")]
        let counters = Arc::new(super::metrics::counters(
            self.metrics_path,
            plan.journal_dir,
        ));
        #[cfg(not(feature = "metrics"))]
        let counters = {
            let _ = plan.journal_dir;
            Arc::new(Counters::default())
        };
        let parts = DeliveryParts {
            target: self.handler,
            mode: self.mode,
            handler_threads: self.handler_threads,
            retry: self.retry,
            on_dead_letter: self.on_dead_letter,
            dedupe: self.dedupe,
        };
        let delivery = deliver(parts, Arc::clone(&counters), limits.max_body_bytes)?;
        #[cfg(feature = "tls")]
        let scheme = if tls.is_some() { "https" } else { "http" };
        #[cfg(not(feature = "tls"))]
        let scheme = "http";
        let service = Arc::new(WebhookService::new(
            self.verifier,
            delivery,
            counters,
            self.path,
        ));
        let server = Server::start(
            listener,
            Arc::clone(&service) as Arc<dyn super::http::Service>,
            ServerConfig {
                limits,
                workers,
                event_loops: self.event_loops,
                #[cfg(feature = "tls")]
                tls,
                clock: Arc::new(SystemClock),
            },
        )?;
        let cap = server.connection_cap();
        let loops = server.event_loops();
        let open_files = server
            .open_file_limit()
            .map_or_else(String::new, |n| format!(" (open-file limit {n})"));
        #[allow(unused_mut)] // `mut` only with the `signals` feature
        let mut running = WebhookListener::start(server, Arc::clone(&service), self.drain_timeout);
        log::info!(
            "webhook listener on {scheme}://{local_addr}{}: {}, {loops} event loop(s), \
             {secrets} secret(s), up to {cap} connections{open_files}, drain timeout {:?}",
            service.path(),
            plan.description,
            self.drain_timeout
        );
        #[cfg(all(feature = "signals", unix))]
        if self.shutdown_on_signals {
            running.watch_signals()?;
        }
        Ok(running)
    }

    fn validate(&self) -> Result<()> {
        let invalid = |what: &str| {
            Err(WasenderError::InvalidArgument(format!(
                "webhook listener: {what}"
            )))
        };
        let limits = &self.limits;
        if self.workers == Some(0) {
            return invalid("workers must be at least 1");
        }
        if self.event_loops == Some(0) {
            return invalid("event_loops must be at least 1");
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
        #[cfg(feature = "metrics")]
        if let Err(what) = super::metrics::check_path(self.metrics_path.as_deref(), &self.path) {
            return invalid(what);
        }
        if limits.max_body_bytes == 0
            || limits.max_head_bytes == 0
            || limits.max_connections == 0
            || limits.max_connections_per_peer == Some(0)
        {
            return invalid(
                "max_body_bytes, max_head_bytes, max_connections and max_connections_per_peer \
                 must be at least 1",
            );
        }
        let request_bytes = limits.max_body_bytes.saturating_add(limits.max_head_bytes);
        if limits.max_buffered_bytes < request_bytes {
            return invalid(&format!(
                "max_buffered_bytes ({}) must hold at least one whole request: \
                 max_body_bytes + max_head_bytes = {request_bytes}",
                limits.max_buffered_bytes
            ));
        }
        if [
            limits.idle_timeout,
            limits.header_timeout,
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

impl<H: WebhookHandler + 'static> WebhookListenerBuilder<H> {
    /// When events are answered and what is kept of them (default
    /// [`DeliveryMode::Inline`]). See the [operations guide](crate::guide#choosing-a-delivery-mode).
    pub fn delivery_mode(mut self, mode: DeliveryMode) -> Self {
        self.mode = mode;
        self
    }

    /// Threads running the handler in the queued modes (default: the number
    /// of CPUs). No effect in inline mode.
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

    /// Binds and starts the listener on its own threads, returning at once.
    ///
    /// In durable mode the journal is opened (and recovered) first, and the
    /// events it still holds are handed to the handler threads before any
    /// new one.
    ///
    /// Logs one `info` line: the address and path, the delivery mode and
    /// journal directory, the worker count and how many secrets are
    /// configured (never a secret).
    ///
    /// Errors, all before anything is bound or started:
    /// [`WasenderError::SecretNotConfigured`] when the verifier has no secret
    /// (it could accept no event); [`WasenderError::InvalidArgument`] for a
    /// zero worker count, limit, capacity or timeout, or a path not starting
    /// with `/`; with `tls` (feature `tls`), `WasenderError::TlsFile`, naming
    /// the file, when the certificate or key cannot be used. Then
    /// [`WasenderError::Bind`], naming the address, when it does
    /// not resolve or cannot be bound (in use, no permission);
    /// [`WasenderError::JournalLocked`] when another listener (in this
    /// process or another) holds the journal directory;
    /// [`WasenderError::Journal`] or [`WasenderError::JournalFormat`] when
    /// the journal cannot be opened; [`WasenderError::Io`] when a thread
    /// cannot be started, or (with `shutdown_on_signals`, see
    /// [Stopping](crate::guide#stopping-and-draining)) the signal handlers cannot be installed.
    pub fn spawn(self) -> Result<WebhookListener> {
        let workers = self.workers.unwrap_or_else(|| match &self.mode {
            DeliveryMode::Durable { .. } => WAITING_WORKERS.max(cpu_count()),
            _ => cpu_count(),
        });
        let journal_dir = match &self.mode {
            DeliveryMode::Durable { dir, .. } => Some(dir.clone()),
            _ => None,
        };
        let mode = match &self.mode {
            DeliveryMode::Inline => "inline delivery".to_owned(),
            DeliveryMode::Queued { capacity } => {
                format!("queued delivery in memory (capacity {capacity})")
            }
            DeliveryMode::Durable { dir, capacity } => format!(
                "durable delivery, journal {} (capacity {capacity})",
                dir.display()
            ),
        };
        let threads = match (&self.mode, self.handler_threads) {
            (DeliveryMode::Inline, _) => format!("{workers} workers"),
            (_, Some(n)) => format!("{workers} workers, {n} handler threads"),
            (_, None) => format!("{workers} workers, {} handler threads", cpu_count()),
        };
        let plan = Plan {
            workers,
            journal_dir,
            description: format!("{mode}, {threads}"),
        };
        self.launch(plan, |parts, counters, max_body_bytes| {
            let delivery: Arc<dyn Delivery> = match parts.mode {
                DeliveryMode::Inline => Arc::new(InlineDelivery::new(
                    parts.target,
                    parts.dedupe.map(DedupeWindow::new),
                    counters,
                )),
                DeliveryMode::Queued { capacity } | DeliveryMode::Durable { capacity, .. } => {
                    let journal_dir = match &parts.mode {
                        DeliveryMode::Durable { dir, .. } => Some(dir.clone()),
                        _ => None,
                    };
                    let config = QueuedConfig {
                        capacity,
                        journal_dir,
                        max_record_size: max_body_bytes,
                        handler_threads: parts.handler_threads.unwrap_or_else(cpu_count),
                        retry: parts.retry,
                        dedupe_capacity: parts.dedupe,
                        on_dead_letter: parts.on_dead_letter,
                    };
                    Arc::new(QueuedDelivery::start(parts.target, config, counters)?)
                }
            };
            Ok(delivery)
        })
    }

    /// Binds and runs the listener on the calling thread's behalf, blocking
    /// until it is stopped; returns the final counters. With
    /// `shutdown_on_signals(true)` (feature `signals`, see
    /// [Stopping](crate::guide#stopping-and-draining)) it stops on SIGTERM or SIGINT; otherwise
    /// it runs until the process ends.
    ///
    /// To stop it from elsewhere, use [`spawn`](Self::spawn), hand a
    /// [`WebhookListener::shutdown_handle`] to the stopping code, and call
    /// [`WebhookListener::join`].
    pub fn run(self) -> Result<ListenerStats> {
        Ok(self.spawn()?.join())
    }
}

#[cfg(feature = "redis")]
impl WebhookListenerBuilder<RedisMode> {
    /// A builder whose events go to Redis (for
    /// [`WebhookListener::redis_builder`](super::WebhookListener::redis_builder)).
    pub(crate) fn to_redis(
        verifier: WebhookVerifier,
        options: crate::redis::RedisAppenderOptions,
    ) -> Self {
        Self::new(verifier, Arc::new(RedisMode { options }))
    }

    /// Binds and starts the listener on its own threads, returning at once;
    /// each verified event is added to the Redis stream before its 200
    /// (Redis unreachable, slow or full: 503 with `Retry-After`).
    ///
    /// Redis need not answer yet: the listener starts either way (logging a
    /// warning) and answers 503 until it does. Errors are those of the
    /// handler mode's `spawn` that apply: no secret, an invalid option, a
    /// TLS file, the address, a thread.
    pub fn spawn(self) -> Result<WebhookListener> {
        // Each request waits for a Redis round trip: many at once.
        let workers = self
            .workers
            .unwrap_or_else(|| WAITING_WORKERS.max(cpu_count()));
        let plan = Plan {
            workers,
            journal_dir: None,
            description: format!(
                "{}, {workers} workers, no handler (workers handle the stream)",
                RedisDelivery::describe(&self.handler.options)
            ),
        };
        self.launch(plan, |parts, _, _| {
            let delivery: Arc<dyn Delivery> =
                Arc::new(RedisDelivery::connect(&parts.target.options)?);
            Ok(delivery)
        })
    }

    /// Binds and runs the listener until it is stopped; see
    /// [`spawn`](Self::spawn) and the handler mode's
    /// [`run`](WebhookListenerBuilder::run).
    pub fn run(self) -> Result<ListenerStats> {
        Ok(self.spawn()?.join())
    }
}
