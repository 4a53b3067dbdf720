//! Counters kept by a running listener, and their snapshot [`ListenerStats`].

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a listener's counters, from [`WebhookListener::stats`](crate::WebhookListener::stats).
///
/// Every request read off the wire counts once in `received`, then once in
/// exactly one outcome: `handled`, `queued`, `deduplicated`, `health_checks`,
/// `metrics_scrapes`, a `rejected_*` counter, `timed_out`, `aborted`, `handler_errors` or
/// `handler_panics` — unless it is still `in_flight`. Connections turned away
/// before a request was read (too many open connections) count in
/// `rejected_saturated` only.
///
/// In the queued [delivery modes](super::DeliveryMode) an accepted event's
/// request outcome is `queued`; the handler runs later, and `handled`,
/// `handler_errors` and `handler_panics` then count handler attempts (replayed
/// events included), not requests.
///
/// With the `metrics` feature the same counters are served to Prometheus
/// (see [`metrics`](super::WebhookListenerBuilder#method.metrics)).
///
/// # Examples
///
/// A request with a wrong signature, as the counters see it:
///
/// ```
/// use std::io::{Read, Write};
/// use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
///
/// struct Bot;
/// impl WebhookHandler for Bot {
///     type Error = std::convert::Infallible;
/// }
///
/// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
///     .bind("127.0.0.1:0")
///     .spawn()?;
/// let mut conn = std::net::TcpStream::connect(listener.local_addr())?;
/// conn.write_all(
///     b"POST /webhook HTTP/1.1\r\nHost: bot\r\nX-Webhook-Signature: a-guess\r\n\
///       Content-Length: 2\r\nConnection: close\r\n\r\n{}",
/// )?;
/// conn.read_to_end(&mut Vec::new())?; // the 401, then the close
///
/// let stats = listener.stats(); // a snapshot; the listener keeps counting
/// assert_eq!((stats.received, stats.rejected_signature, stats.handled), (1, 1, 0));
/// assert_eq!(stats.rejected(), 1); // every rejected_* counter summed
/// let last = listener.shutdown(); // the final counters
/// assert_eq!(last.in_flight, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// Requests read (any method, any path).
    pub received: u64,
    /// Verified events delivered to the handler, which returned `Ok` (answered 200).
    pub handled: u64,
    /// `GET /healthz` answered (200, or 503 while draining or after the journal failed).
    pub health_checks: u64,
    /// `GET /metrics` answered 200 (feature `metrics`, when enabled on the builder).
    pub metrics_scrapes: u64,
    /// Events with a missing or wrong signature (401), or refused because no
    /// secret is configured (500).
    pub rejected_signature: u64,
    /// Events whose body was empty, not UTF-8, not JSON or not an event (400).
    pub rejected_body: u64,
    /// Bodies over the size limit (413).
    pub rejected_too_large: u64,
    /// Other methods on the webhook or health path (405).
    pub rejected_method: u64,
    /// Other paths (404).
    pub rejected_path: u64,
    /// Requests or connections turned away because the listener was saturated,
    /// or webhooks arriving on an open connection after shutdown began (503).
    pub rejected_saturated: u64,
    /// Requests that were not valid HTTP/1.x (400, 431, 505).
    pub rejected_malformed: u64,
    /// Requests that did not arrive in time (408).
    pub timed_out: u64,
    /// Requests the client abandoned mid-way (connection closed or reset before a full request).
    pub aborted: u64,
    /// Events the handler returned an error for (500).
    pub handler_errors: u64,
    /// Events the handler panicked on (500).
    pub handler_panics: u64,
    /// Requests read and not yet answered.
    pub in_flight: u64,
    /// Queued modes: events accepted onto the queue (and the journal) and answered 200.
    pub queued: u64,
    /// Events answered 200 without being handled again because the dedupe
    /// window had seen them.
    pub deduplicated: u64,
    /// Events refused with 503 because the journal could not store them.
    pub rejected_unavailable: u64,
    /// Queued modes: events accepted (or replayed) and not yet finished —
    /// waiting for a handler thread, being handled, or waiting to retry.
    pub queue_depth: u64,
    /// Queued modes: handler attempts after a failure (the first attempt not counted).
    pub retried: u64,
    /// Queued modes: events given up on after every attempt failed.
    pub dead_lettered: u64,
    /// Durable mode: events found undone in the journal at start and handed to the handler again.
    pub recovered: u64,
    /// In-memory queued mode: events accepted but not handled when shutdown
    /// gave up (drain deadline passed, or abandoned while waiting to retry).
    /// In durable mode such events stay in the journal instead and are not counted here.
    pub dropped: u64,
    /// Durable mode: journal, dead-letter or dedupe-file writes that failed.
    pub journal_errors: u64,
    /// Connections open now.
    pub open_connections: u64,
}

impl ListenerStats {
    /// All rejected requests, whatever the reason.
    pub fn rejected(&self) -> u64 {
        self.rejected_signature
            + self.rejected_body
            + self.rejected_too_large
            + self.rejected_method
            + self.rejected_path
            + self.rejected_saturated
            + self.rejected_malformed
            + self.rejected_unavailable
    }
}

/// How one request ended; each maps to one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Handled,
    Health,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    Metrics,
    Signature,
    Body,
    TooLarge,
    Method,
    Path,
    Saturated,
    Malformed,
    TimedOut,
    Aborted,
    HandlerError,
    HandlerPanic,
    Queued,
    Duplicate,
    Unavailable,
}

/// Things that happen to queued events, off the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Handled,
    HandlerError,
    HandlerPanic,
    Retried,
    DeadLettered,
    Recovered,
    Dropped,
    JournalError,
}

/// The live counters, shared by every thread of one listener.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    handled: AtomicU64,
    health: AtomicU64,
    metrics_scrapes: AtomicU64,
    signature: AtomicU64,
    body: AtomicU64,
    too_large: AtomicU64,
    method: AtomicU64,
    path: AtomicU64,
    saturated: AtomicU64,
    malformed: AtomicU64,
    timed_out: AtomicU64,
    aborted: AtomicU64,
    handler_errors: AtomicU64,
    handler_panics: AtomicU64,
    in_flight: AtomicU64,
    open_connections: AtomicU64,
    queued: AtomicU64,
    deduplicated: AtomicU64,
    unavailable: AtomicU64,
    queue_depth: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    recovered: AtomicU64,
    dropped: AtomicU64,
    journal_errors: AtomicU64,
    /// What only the Prometheus metrics need (per status, per event type,
    /// handler durations); `None` unless enabled on the builder.
    #[cfg(feature = "metrics")]
    metrics: Option<super::detail::Tracked>,
}

impl Counters {
    /// Counters that also keep what the Prometheus metrics need.
    #[cfg(feature = "metrics")]
    pub fn with_metrics(metrics: super::detail::Tracked) -> Self {
        Self {
            metrics: Some(metrics),
            ..Self::default()
        }
    }

    /// The Prometheus metrics' own state, when enabled.
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> Option<&super::detail::Tracked> {
        self.metrics.as_ref()
    }

    /// Where the metrics are served, when enabled.
    pub fn metrics_path(&self) -> Option<&str> {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            return Some(metrics.path());
        }
        None
    }

    /// An answer with `status` was sent (metrics: requests by status).
    pub fn answered(&self, status: u16) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.answered(status);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = status;
    }

    /// A request carried a verified event of type `kind` (metrics: events by type).
    pub fn event_verified(&self, kind: &crate::event::envelope::WasenderWebhookEventType) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.event_verified(kind);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = kind;
    }

    /// Runs one handler call, timing it for the metrics' duration histogram
    /// (a call that panics is timed too).
    pub fn time_handler<R>(&self, call: impl FnOnce() -> R) -> R {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            return metrics.time_handler(call);
        }
        call()
    }

    /// A request was read: it is now in flight.
    pub fn request_started(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request that was started has ended with `outcome`.
    pub fn request_finished(&self, outcome: Outcome) {
        self.record(outcome);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts an outcome that was never a started request (a connection turned away).
    pub fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Handled => &self.handled,
            Outcome::Health => &self.health,
            Outcome::Metrics => &self.metrics_scrapes,
            Outcome::Signature => &self.signature,
            Outcome::Body => &self.body,
            Outcome::TooLarge => &self.too_large,
            Outcome::Method => &self.method,
            Outcome::Path => &self.path,
            Outcome::Saturated => &self.saturated,
            Outcome::Malformed => &self.malformed,
            Outcome::TimedOut => &self.timed_out,
            Outcome::Aborted => &self.aborted,
            Outcome::HandlerError => &self.handler_errors,
            Outcome::HandlerPanic => &self.handler_panics,
            Outcome::Queued => &self.queued,
            Outcome::Duplicate => &self.deduplicated,
            Outcome::Unavailable => &self.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` of something that happened to queued events.
    pub fn count(&self, event: Event, n: u64) {
        let counter = match event {
            Event::Handled => &self.handled,
            Event::HandlerError => &self.handler_errors,
            Event::HandlerPanic => &self.handler_panics,
            Event::Retried => &self.retried,
            Event::DeadLettered => &self.dead_lettered,
            Event::Recovered => &self.recovered,
            Event::Dropped => &self.dropped,
            Event::JournalError => &self.journal_errors,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Events entered the delivery queue.
    pub fn queue_grew(&self, n: u64) {
        self.queue_depth.fetch_add(n, Ordering::Relaxed);
    }

    /// Events left the delivery queue (finished, dead-lettered, dropped or left in the journal).
    pub fn queue_shrank(&self, n: u64) {
        self.queue_depth.fetch_sub(n, Ordering::Relaxed);
    }

    /// A connection was opened.
    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed.
    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// The counters as they are now.
    pub fn snapshot(&self) -> ListenerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerStats {
            received: get(&self.received),
            handled: get(&self.handled),
            health_checks: get(&self.health),
            metrics_scrapes: get(&self.metrics_scrapes),
            rejected_signature: get(&self.signature),
            rejected_body: get(&self.body),
            rejected_too_large: get(&self.too_large),
            rejected_method: get(&self.method),
            rejected_path: get(&self.path),
            rejected_saturated: get(&self.saturated),
            rejected_malformed: get(&self.malformed),
            timed_out: get(&self.timed_out),
            aborted: get(&self.aborted),
            handler_errors: get(&self.handler_errors),
            handler_panics: get(&self.handler_panics),
            in_flight: get(&self.in_flight),
            open_connections: get(&self.open_connections),
            queued: get(&self.queued),
            deduplicated: get(&self.deduplicated),
            rejected_unavailable: get(&self.unavailable),
            queue_depth: get(&self.queue_depth),
            retried: get(&self.retried),
            dead_lettered: get(&self.dead_lettered),
            recovered: get(&self.recovered),
            dropped: get(&self.dropped),
            journal_errors: get(&self.journal_errors),
        }
    }
}
