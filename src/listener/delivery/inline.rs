//! Inline delivery: the handler runs on the worker before the answer.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::super::stats::Counters;
use super::{Delivered, Delivery};
use crate::event::WasenderWebhookEvent;
use crate::handler::{dispatch, WebhookHandler};
use crate::journal::DedupeWindow;

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
