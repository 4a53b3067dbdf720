//! The seam between "a verified, parsed event" and "what happens to it".
//!
//! [`InlineDelivery`] runs the handler on the worker and its result decides
//! the HTTP answer; [`QueuedDelivery`](super::queued::QueuedDelivery) records
//! the event (in memory, or in the journal) and acknowledges at once.

mod inline;
mod mode;
mod queue;
mod queued;
#[cfg(feature = "redis")]
mod redis;

pub(crate) use inline::InlineDelivery;
pub use mode::{DeliveryMode, DEFAULT_DELIVERY_CAPACITY};
pub(crate) use queued::{QueuedConfig, QueuedDelivery};
#[cfg(feature = "redis")]
pub(crate) use redis::RedisDelivery;

use std::time::{Duration, Instant};

use crate::event::WasenderWebhookEvent;
use crate::journal::{DeadLetter, Requeue};

/// What became of one delivered event.
#[derive(Debug)]
pub(crate) enum Delivered {
    /// Handled inline: answer 200.
    Done,
    /// Accepted onto the queue (and the journal): answer 200.
    Queued,
    /// Seen before (dedupe): answer 200 without handling it again.
    Duplicate,
    /// The handler refused it: answer 500 so the sender may retry.
    /// The text is for the log only, never for the client.
    Failed(String),
    /// The queue is full: answer 503 with `Retry-After`.
    Busy,
    /// The journal could not store it: answer 503 with `Retry-After`.
    /// The text is for the log only.
    Unavailable(String),
}

/// Called with what became of an event delivered with [`Delivery::deliver_then`].
pub(crate) type Then = Box<dyn FnOnce(Delivered) + Send>;

/// Delivers verified events. Called from worker threads, concurrently; a panic
/// inside `deliver` is caught by the caller and answered 500.
pub(crate) trait Delivery: Send + Sync {
    /// Delivers `event`, whose raw, verified body was `body`.
    fn deliver(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered;

    /// Whether [`deliver_then`](Self::deliver_then) may answer later (the
    /// durable journal, once the event is on disk): only then is it used.
    fn answers_later(&self) -> bool {
        false
    }

    /// Delivers `event` and calls `then` with what became of it, at once or
    /// later on another thread (quickly: it runs while other events wait).
    fn deliver_then(&self, event: WasenderWebhookEvent, body: &[u8], then: Then) {
        then(self.deliver(event, body));
    }

    /// Called once at shutdown, once no new event can be accepted: finish
    /// what is pending by `deadline` (or sooner after [`hurry`](Self::hurry)),
    /// then put away the rest. Requests still being processed may call
    /// [`deliver`](Self::deliver) during and after it; they are refused.
    fn finish(&self, deadline: Deadline) {
        let _ = deadline;
    }

    /// Cuts the drain short: [`finish`](Self::finish) stops waiting at once
    /// (the second SIGTERM). May come before or during `finish`.
    fn hurry(&self) {}

    /// Why events cannot be stored any more (a failed journal), for health checks.
    fn failure(&self) -> Option<String> {
        None
    }

    /// The dead letters kept (queued modes; inline mode has none).
    fn dead_letters(&self) -> crate::error::Result<Vec<DeadLetter>> {
        Ok(Vec::new())
    }

    /// Hands the dead letters `which` picks to the handler again; returns how many.
    fn requeue_dead_letters(&self, _which: &Requeue) -> crate::error::Result<usize> {
        Ok(0)
    }

    /// Forgets every dead letter; returns how many.
    fn purge_dead_letters(&self) -> crate::error::Result<usize> {
        Ok(0)
    }
}

/// An instant to finish by: a retry's backoff, the drain at shutdown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        // A duration too large to add is as good as no deadline.
        let now = Instant::now();
        Self(
            now.checked_add(after)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
        )
    }

    /// The instant itself.
    #[cfg(feature = "redis")]
    pub fn instant(&self) -> Instant {
        self.0
    }

    /// The time left, or `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }
}
