//! The seam between "a verified, parsed event" and "what happens to it".
//!
//! Today events are delivered inline: the handler runs on a worker thread and
//! its result decides the HTTP answer. A queued (durable) mode can implement
//! [`Delivery`] to record the event and acknowledge at once, dispatching later;
//! the listener does not change.

use std::sync::Arc;

use crate::event::WasenderWebhookEvent;
use crate::handler::{dispatch, WebhookHandler};

/// What became of one delivered event.
#[derive(Debug)]
pub(crate) enum Delivered {
    /// Accepted: answer 200.
    Done,
    /// The handler (or the store) refused it: answer 500 so the sender retries.
    /// The text is for the log only, never for the client.
    Failed(String),
}

/// Delivers verified events. Called from worker threads, concurrently; a panic
/// inside `deliver` is caught by the caller and answered 500.
pub(crate) trait Delivery: Send + Sync {
    /// Delivers `event`, whose raw, verified body was `body`.
    fn deliver(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered;
}

/// Runs the handler now, on the calling worker thread.
pub(crate) struct InlineDelivery<H> {
    handler: Arc<H>,
}

impl<H> InlineDelivery<H> {
    pub fn new(handler: Arc<H>) -> Self {
        Self { handler }
    }
}

impl<H: WebhookHandler> Delivery for InlineDelivery<H> {
    fn deliver(&self, event: WasenderWebhookEvent, _body: &[u8]) -> Delivered {
        match dispatch(&*self.handler, &event) {
            Ok(()) => Delivered::Done,
            Err(e) => Delivered::Failed(e.to_string()),
        }
    }
}
