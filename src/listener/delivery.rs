//! The seam between "a verified, parsed event" and "what happens to it".
//!
//! [`InlineDelivery`] runs the handler on the worker and its result decides
//! the HTTP answer; [`QueuedDelivery`](super::queued::QueuedDelivery) records
//! the event (in memory, or in the journal) and acknowledges at once.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::limits::Deadline;
use super::stats::Counters;
use crate::event::WasenderWebhookEvent;
use crate::handler::{dispatch, WebhookHandler};
use crate::journal::{DeadLetter, DedupeWindow, Requeue};

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

/// Delivers verified events. Called from worker threads, concurrently; a panic
/// inside `deliver` is caught by the caller and answered 500.
pub(crate) trait Delivery: Send + Sync {
    /// Delivers `event`, whose raw, verified body was `body`.
    fn deliver(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered;

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
    fn dead_letters(&self) -> crate::Result<Vec<DeadLetter>> {
        Ok(Vec::new())
    }

    /// Hands the dead letters `which` picks to the handler again; returns how many.
    fn requeue_dead_letters(&self, _which: &Requeue) -> crate::Result<usize> {
        Ok(0)
    }

    /// Forgets every dead letter; returns how many.
    fn purge_dead_letters(&self) -> crate::Result<usize> {
        Ok(0)
    }
}

/// Runs the handler now, on the calling worker thread.
pub(crate) struct InlineDelivery<H> {
    handler: Arc<H>,
    dedupe: Option<DedupeWindow>,
    counters: Arc<Counters>,
}

impl<H> InlineDelivery<H> {
    pub fn new(handler: Arc<H>, dedupe: Option<DedupeWindow>, counters: Arc<Counters>) -> Self {
        Self {
            handler,
            dedupe,
            counters,
        }
    }
}

impl<H: WebhookHandler> Delivery for InlineDelivery<H> {
    fn deliver(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered {
        let Some(dedupe) = &self.dedupe else {
            return match self
                .counters
                .time_handler(|| dispatch(&*self.handler, &event))
            {
                Ok(()) => Delivered::Done,
                Err(e) => Delivered::Failed(e.to_string()),
            };
        };
        let key = event.dedupe_key(body);
        if !dedupe.check_and_insert(&key) {
            return Delivered::Duplicate;
        }
        // A failure forgets the key, so that the sender's retry gets through.
        let call = || dispatch(&*self.handler, &event);
        match catch_unwind(AssertUnwindSafe(|| self.counters.time_handler(call))) {
            Ok(Ok(())) => Delivered::Done,
            Ok(Err(e)) => {
                dedupe.remove(&key);
                Delivered::Failed(e.to_string())
            }
            Err(panic) => {
                dedupe.remove(&key);
                resume_unwind(panic)
            }
        }
    }
}
