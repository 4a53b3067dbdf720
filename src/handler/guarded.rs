//! [`dispatch_guarded`]: one handler call with a panic caught.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{dispatch, WebhookHandler};
use crate::event::WasenderWebhookEvent;

/// Why a guarded handler call failed: see [`dispatch_guarded`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandlerFailure {
    /// The handler panicked (rather than returning an error).
    pub panicked: bool,
    /// The handler's error (its `Display`), or the panic's message (or
    /// `(non-text panic payload)`).
    pub message: String,
}

impl fmt::Display for HandlerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.panicked {
            write!(f, "the handler panicked: {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for HandlerFailure {}

/// [`dispatch`]es `event` to `handler` with a panic caught and turned into a
/// [`HandlerFailure`]: how the listener's queued modes and the Redis worker
/// call handlers (a panic then counts as a failed attempt, and is retried),
/// and what to use in your own server when a handler must not take the
/// thread down.
///
/// ```
/// use wasenderapi::handler::dispatch_guarded;
/// use wasenderapi::{WasenderWebhookEvent, WebhookEvent, WebhookHandler};
///
/// struct Panics;
/// impl WebhookHandler for Panics {
///     type Error = String;
///     fn on_unknown(&self, _: &WebhookEvent<serde_json::Value>) -> Result<(), String> {
///         panic!("out of cheese")
///     }
/// }
///
/// let event = WasenderWebhookEvent::from_slice(br#"{"event":"labels.edit","data":{}}"#)?;
/// # let hook = std::panic::take_hook();
/// # std::panic::set_hook(Box::new(|_| {}));
/// let failure = dispatch_guarded(&Panics, &event).unwrap_err();
/// # std::panic::set_hook(hook);
/// assert!(failure.panicked);
/// assert_eq!(failure.to_string(), "the handler panicked: out of cheese");
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
pub fn dispatch_guarded<H: WebhookHandler + ?Sized>(
    handler: &H,
    event: &WasenderWebhookEvent,
) -> Result<(), HandlerFailure> {
    match catch_unwind(AssertUnwindSafe(|| dispatch(handler, event))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(HandlerFailure {
            panicked: false,
            message: e.to_string(),
        }),
        Err(panic) => Err(HandlerFailure {
            panicked: true,
            message: panic_message(panic.as_ref()).to_owned(),
        }),
    }
}

/// A panic's message, when it is text.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-text panic payload)")
}
