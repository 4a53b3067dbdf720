//! The running listener: its HTTP core, what it serves, and its orderly
//! shutdown; and the handle that stops it from another thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::builder::WebhookListenerBuilder;
use super::delivery::Deadline;
use super::delivery::Delivery;
use super::http::{DrainHandle, Server};
use super::service::WebhookService;
use super::stats::ListenerStats;
use crate::handler::{IntoSharedHandler, WebhookHandler};
use crate::journal::{DeadLetter, Requeue};
use crate::signature::verifier::WebhookVerifier;
use crate::sync::{lock, wait};

/// How long past the drain deadline shutdown still waits for the core's
/// threads to write their last answers before leaving them behind.
const CONNECTION_GRACE: Duration = Duration::from_millis(500);
/// The same after [`ShutdownHandle::shutdown_now`].
const URGENT_GRACE: Duration = Duration::from_millis(50);

/// When the listener was asked to stop, and how.
#[derive(Debug, Default)]
struct Lifecycle {
    stop_requested: Mutex<bool>,
    stop_changed: Condvar,
    /// Shutdown was told not to wait for work in progress (the second signal).
    urgent: AtomicBool,
}

/// A running webhook listener, returned by
/// [`WebhookListenerBuilder::spawn`](super::WebhookListenerBuilder::spawn).
///
/// Dropping it shuts the listener down gracefully, like [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct WebhookListener {
    local_addr: SocketAddr,
    /// The HTTP core; `None` once shut down.
    server: Option<Server>,
    service: Arc<WebhookService>,
    lifecycle: Arc<Lifecycle>,
    drain: DrainHandle,
    drain_timeout: Duration,
    started: Instant,
    /// Stops the listener on SIGTERM/SIGINT while set.
    #[cfg(all(feature = "signals", unix))]
    signals: Option<crate::signals::SignalWatch>,
}

/// Stops a [`WebhookListener`] from another thread (a signal handler thread,
/// an admin endpoint). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    lifecycle: Arc<Lifecycle>,
    drain: DrainHandle,
    service: Arc<WebhookService>,
}

impl ShutdownHandle {
    /// Asks the listener to stop accepting and shut down gracefully; returns
    /// at once. The thread blocked in [`WebhookListener::join`] then finishes
    /// the graceful shutdown (up to the
    /// [`drain_timeout`](super::WebhookListenerBuilder::drain_timeout)) and returns.
    pub fn shutdown(&self) {
        self.request_stop();
    }

    /// Like [`shutdown`](Self::shutdown), and cuts the drain deadline to
    /// zero, also when a graceful shutdown is already under way: what the
    /// second SIGTERM does under `run_until_signal` (see
    /// [Stopping](crate::guide#stopping-and-draining)). Work in
    /// progress is not waited for: durable mode leaves pending events in the
    /// journal (handed to the handler at the next start), the in-memory
    /// queue counts them in [`ListenerStats::dropped`]; requests still
    /// running are left unanswered (the sender sees the connection close,
    /// never a 200 for an event that is then lost). Returns at once.
    pub fn shutdown_now(&self) {
        self.lifecycle.urgent.store(true, Ordering::SeqCst);
        self.service.delivery().hurry();
        self.drain.nudge();
        self.request_stop();
    }

    fn request_stop(&self) {
        // The port closes now; open connections are answered and closed after
        // their current request.
        self.drain.begin();
        let mut stopped = lock(&self.lifecycle.stop_requested);
        *stopped = true;
        self.lifecycle.stop_changed.notify_all();
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
    ///
    /// # Registering the listener's URL with WasenderAPI
    ///
    /// WasenderAPI posts a session's events to the session's *webhook URL*,
    /// an `https://` address it can reach (put TLS in front of the listener,
    /// or use [`tls`](WebhookListenerBuilder#method.tls) with the `tls` feature),
    /// ending in this listener's [`path`](WebhookListenerBuilder::path)
    /// (`/webhook` by default). Set it, with the events to send, in the
    /// dashboard's session settings, or through the REST client (feature
    /// `client`; account calls need a Personal Access Token), then copy the
    /// session's webhook secret into the verifier:
    ///
    /// ```no_run
    /// # #[cfg(feature = "client")] {
    /// use wasenderapi::client::SessionSettings;
    /// use wasenderapi::WasenderSyncClient;
    ///
    /// let account = WasenderSyncClient::builder("session-api-key")
    ///     .personal_access_token(std::env::var("WASENDER_PAT")?)
    ///     .build();
    /// let session = account.update_whatsapp_session(
    ///     42, // the session id (`get_all_whatsapp_sessions` lists them)
    ///     &SessionSettings::new()
    ///         .webhook_url("https://bot.example.com/webhook")
    ///         .webhook_enabled(true)
    ///         .webhook_events(["messages.received", "session.status", "messages.update"]),
    /// )?;
    /// // The secret WasenderAPI will send in X-Webhook-Signature:
    /// let secret = session.webhook_secret.as_ref().map(|s| s.expose().to_owned());
    /// # let _ = secret;
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder<H: WebhookHandler + 'static>(
        verifier: impl Into<WebhookVerifier>,
        handler: impl IntoSharedHandler<H>,
    ) -> WebhookListenerBuilder<H> {
        WebhookListenerBuilder::new(verifier.into(), handler.into_shared())
    }

    /// Starts configuring a listener in Redis mode (feature `redis`): each
    /// verified event is added to a Redis stream, with a dedupe window
    /// shared by every listener, and answered 200 once Redis has it; Redis
    /// unreachable, slow or full answers 503 with `Retry-After`. No handler
    /// runs here: [`RedisWorker`](crate::redis::RedisWorker)s, in this or
    /// other processes, handle the stream. See the [`redis`](crate::redis) module.
    ///
    /// `options` are [`RedisAppenderOptions`](crate::redis::RedisAppenderOptions),
    /// or just the connection's [`RedisOptions`](crate::redis::RedisOptions)
    /// for the appender's defaults. Every listener option applies but those
    /// of a handler (there is none).
    ///
    /// ```no_run
    /// use wasenderapi::redis::RedisOptions;
    /// use wasenderapi::{WebhookListener, WebhookVerifier};
    ///
    /// let listener = WebhookListener::redis_builder(
    ///     WebhookVerifier::with_secret("webhook-secret"),
    ///     RedisOptions::new("redis://127.0.0.1:6379/"),
    /// )
    /// .bind("0.0.0.0:3000")
    /// .spawn()?;
    /// # let _ = listener;
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis_builder(
        verifier: impl Into<WebhookVerifier>,
        options: impl Into<crate::redis::RedisAppenderOptions>,
    ) -> WebhookListenerBuilder<super::builder::RedisMode> {
        WebhookListenerBuilder::to_redis(verifier.into(), options.into())
    }

    pub(crate) fn start(
        server: Server,
        service: Arc<WebhookService>,
        drain_timeout: Duration,
    ) -> Self {
        Self {
            local_addr: server.local_addr(),
            drain: server.drain_handle(),
            server: Some(server),
            service,
            lifecycle: Arc::default(),
            drain_timeout,
            started: Instant::now(),
            #[cfg(all(feature = "signals", unix))]
            signals: None,
        }
    }

    /// The address the listener is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters as they are now.
    pub fn stats(&self) -> ListenerStats {
        self.service.counters().snapshot()
    }

    /// A handle that stops this listener from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            lifecycle: Arc::clone(&self.lifecycle),
            drain: self.drain.clone(),
            service: Arc::clone(&self.service),
        }
    }

    /// Shuts down gracefully, joins every thread, and returns the final counters:
    ///
    /// 1. stops accepting connections (the port is closed);
    /// 2. lets requests in flight finish: their handlers complete (inline)
    ///    or their events are stored (queued modes), and their answers are
    ///    sent, with `Connection: close`. Meanwhile open keep-alive
    ///    connections stay up, and a request arriving on one is answered at
    ///    once and the connection closed: `GET /healthz` with 503
    ///    `draining`, a webhook with 503 and `Retry-After`;
    /// 3. in the queued [delivery modes](super::DeliveryMode), drains the
    ///    queue: what is not handled by the end of the
    ///    [`drain_timeout`](super::WebhookListenerBuilder::drain_timeout)
    ///    (counted from step 1) stays in the journal (durable) or is dropped,
    ///    logged and counted in [`ListenerStats::dropped`] (in memory);
    /// 4. closes the remaining connections.
    ///
    /// A handler still running at the drain deadline is left behind on its
    /// thread (its request is not answered, so the sender may retry).
    /// [`ShutdownHandle::shutdown_now`] cuts steps 2 and 3 short.
    pub fn shutdown(mut self) -> ListenerStats {
        self.stop_and_wait();
        self.stats()
    }

    /// Blocks until the listener is stopped through a [`ShutdownHandle`] (or
    /// a signal, with `shutdown_on_signals(true)`: see [Stopping](crate::guide#stopping-and-draining)),
    /// then finishes the graceful shutdown like [`shutdown`](Self::shutdown)
    /// and returns the final counters.
    pub fn join(mut self) -> ListenerStats {
        {
            let mut stopped = lock(&self.lifecycle.stop_requested);
            while !*stopped {
                stopped = wait(&self.lifecycle.stop_changed, stopped);
            }
        }
        self.stop_and_wait();
        self.stats()
    }

    /// Blocks until SIGTERM or SIGINT (Ctrl-C), then shuts down gracefully
    /// like [`shutdown`](Self::shutdown) and returns the final counters.
    /// Feature `signals` (on by default), Unix only.
    ///
    /// While it runs, a second SIGTERM or SIGINT stops at once
    /// ([`ShutdownHandle::shutdown_now`]): durable mode leaves the pending
    /// events in the journal for the next start; the in-memory queue drops
    /// them, logs it and counts them in [`ListenerStats::dropped`]. Each
    /// signal is logged at `info`/`warn`.
    ///
    /// The handlers are installed by this call (with
    /// [`signal-hook`](https://docs.rs/signal-hook), which chains with
    /// handlers installed before) and removed before it returns, so the
    /// rest of your program keeps control of its signals. `signal-hook`
    /// cannot put back the operating system's default action: after this
    /// returns, SIGTERM and SIGINT are ignored unless you install a handler
    /// of your own, so return from `main` (or exit) soon after. See the
    /// [operations guide](crate::guide#stopping-and-draining) for service managers and containers.
    ///
    /// Errors: [`WasenderError::Io`](crate::WasenderError::Io) when the
    /// handlers cannot be installed; the listener is then shut down.
    ///
    /// ```no_run
    /// # use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = std::convert::Infallible; }
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
    ///     .bind("0.0.0.0:3000")
    ///     .spawn()?;
    /// let stats = listener.run_until_signal()?; // `kill -TERM <pid>` or Ctrl-C
    /// println!("handled {} events", stats.handled);
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    #[cfg(all(feature = "signals", unix))]
    pub fn run_until_signal(mut self) -> crate::error::Result<ListenerStats> {
        self.watch_signals()?;
        Ok(self.join())
    }

    /// Starts stopping this listener on SIGTERM/SIGINT, unless it already does.
    #[cfg(all(feature = "signals", unix))]
    pub(crate) fn watch_signals(&mut self) -> std::io::Result<()> {
        if self.signals.is_none() {
            let graceful = self.shutdown_handle();
            let now = self.shutdown_handle();
            let watch = crate::signals::SignalWatch::start(
                self.drain_timeout,
                move || graceful.shutdown(),
                move || now.shutdown_now(),
            )?;
            self.signals = Some(watch);
        }
        Ok(())
    }

    /// The dead letters, oldest first, requeued ones included (with
    /// [`DeadLetter::requeued_as`] set).
    ///
    /// Durable mode: those in `dead-letters.jsonl` in the journal directory.
    /// In-memory queued mode: the last 1000
    /// of this run. Inline mode has none (a failure answers 500).
    pub fn dead_letters(&self) -> crate::error::Result<Vec<DeadLetter>> {
        match self.delivery() {
            Some(delivery) => delivery.dead_letters(),
            None => Ok(Vec::new()),
        }
    }

    /// Hands the events of the dead letters `which` picks, and not requeued
    /// yet, to the handler again, and marks the letters requeued, so that
    /// requeueing them again adds nothing. Returns how many; 0 when none
    /// matched.
    ///
    /// The events go to the handler threads after the events replayed at
    /// start and before new ones, whatever the dedupe window holds. Durable
    /// mode: they are first appended to the journal as new events (`fsync`ed,
    /// with new seqs), so they are handled even across a crash or restart; a
    /// crash between that append and the marking of the letters can make a
    /// second requeue hand them over twice, never zero times. In-memory mode:
    /// they are queued past the capacity (they are in memory already).
    ///
    /// ```no_run
    /// # use wasenderapi::{WebhookListener, WebhookVerifier, WebhookHandler};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = String; }
    /// use wasenderapi::journal::Requeue;
    /// use wasenderapi::listener::DeliveryMode;
    ///
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("secret"), Bot)
    ///     .delivery_mode(DeliveryMode::durable("/var/lib/bot/journal"))
    ///     .spawn()?;
    /// // ... the database was down, now it is back:
    /// let requeued = listener.requeue_dead_letters(Requeue::All)?;
    /// println!("handing {requeued} event(s) to the handler again");
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn requeue_dead_letters(&self, which: Requeue) -> crate::error::Result<usize> {
        match self.delivery() {
            Some(delivery) => delivery.requeue_dead_letters(&which),
            None => Ok(0),
        }
    }

    /// Removes every dead letter, requeued or not (durable mode: rewrites
    /// `dead-letters.jsonl` atomically). Returns how many.
    pub fn purge_dead_letters(&self) -> crate::error::Result<usize> {
        match self.delivery() {
            Some(delivery) => delivery.purge_dead_letters(),
            None => Ok(0),
        }
    }

    /// Adds this listener's metrics to your own `prometheus_client`
    /// [`Registry`](prometheus_client::registry::Registry), so that your
    /// application serves them with its own (the listener's `GET /metrics`
    /// keeps working too). They are read live from the listener on each
    /// scrape, for as long as the registry lives, and stay at their last
    /// values once the listener has stopped. Feature `metrics`.
    ///
    /// The listener must be built with
    /// [`metrics`](super::WebhookListenerBuilder::metrics) or
    /// [`metrics_path`](super::WebhookListenerBuilder::metrics_path), else
    /// [`WasenderError::InvalidArgument`](crate::WasenderError::InvalidArgument).
    /// Register each listener once; to tell several apart, register them in
    /// sub-registries
    /// (`registry.sub_registry_with_label(("listener".into(), "a".into()))`).
    ///
    /// ```
    /// use prometheus_client::registry::Registry;
    /// use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = std::convert::Infallible; }
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
    ///     .bind("127.0.0.1:0")
    ///     .metrics(true)
    ///     .spawn()?;
    /// let mut registry = Registry::default();
    /// listener.register_metrics(&mut registry)?;
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).expect("writing to a String");
    /// assert!(text.contains("wasender_queue_depth 0"));
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn register_metrics(
        &self,
        registry: &mut prometheus_client::registry::Registry,
    ) -> crate::error::Result<()> {
        super::metrics::register(self.service.counters(), registry)
    }

    /// How verified events are delivered (`None` once shut down).
    pub(crate) fn delivery(&self) -> Option<&dyn Delivery> {
        self.server.as_ref().map(|_| &**self.service.delivery())
    }

    fn stop_and_wait(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        self.shutdown_handle().request_stop();
        let began = Instant::now();
        let urgent = || self.lifecycle.urgent.load(Ordering::SeqCst);
        let deadline = began + self.drain_timeout;
        if !server.wait_idle(deadline, &urgent) {
            log::warn!(
                "{} request(s) still being processed when shutdown stopped waiting; left unanswered",
                server.in_flight()
            );
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let left = if urgent() { Duration::ZERO } else { left };
        self.service.delivery().finish(Deadline::after(left));
        // Threads writing a last answer get a short grace (shorter when urgent).
        let grace = Instant::now()
            + if urgent() {
                URGENT_GRACE
            } else {
                CONNECTION_GRACE
            };
        let stuck = server.stop(grace);
        if stuck > 0 {
            log::warn!("{stuck} listener thread(s) left running inside a handler");
        }
        self.service.flush_log();
        let stats = self.stats();
        log::info!(
            "webhook listener stopped in {:.1?} after {:.0?}: {} request(s), {} event(s) handled, \
             {} queued, {} rejected, {} handler error(s), {} dead-lettered, {} dropped",
            began.elapsed(),
            self.started.elapsed(),
            stats.received,
            stats.handled,
            stats.queued,
            stats.rejected(),
            stats.handler_errors + stats.handler_panics,
            stats.dead_lettered,
            stats.dropped
        );
        // Only now: a second signal must still reach the drain.
        #[cfg(all(feature = "signals", unix))]
        if let Some(watch) = self.signals.take() {
            watch.stop();
        }
    }
}

impl Drop for WebhookListener {
    fn drop(&mut self) {
        self.stop_and_wait();
    }
}
