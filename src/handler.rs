//! The [`WebhookHandler`] trait and [`dispatch`].
//!
//! Both are generated from the event catalogue (`src/event/catalogue.rs`): one
//! handler method and one dispatch arm per entry, named by the entry.

#[cfg(feature = "listener")]
use std::sync::Arc;
#[cfg(feature = "listener")]
use std::time::Duration;

use serde_json::Value;

// The catalogue names its data types as `crate::event` exports them.
use crate::event::*;

/// One `WebhookHandler` method per catalogue entry, doing nothing by default.
macro_rules! handler_methods {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal $(| $alias:literal)* => fn $method:ident($data:ty),
    )*) => {$(
        #[doc = concat!("`", $name, "`", $(", alias `", $alias, "`",)* ":")]
        $(#[$doc])*
        fn $method(&self, event: &WebhookEvent<$data>) -> Result<(), Self::Error> {
            let _ = event;
            Ok(())
        }
    )*};
}

/// `route`: the body of [`dispatch`], one arm per catalogue entry.
macro_rules! dispatch_arms {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal $(| $alias:literal)* => fn $method:ident($data:ty),
    )*) => {
        fn route<H: WebhookHandler + ?Sized>(
            handler: &H,
            event: &WasenderWebhookEvent,
        ) -> Result<(), H::Error> {
            match event {
                $(WasenderWebhookEvent::$variant(e) => handler.$method(e),)*
                WasenderWebhookEvent::Unknown(e) => handler.on_unknown(e),
            }
        }
    };
}

crate::event::with_catalogue!(dispatch_arms);

/// Receives typed webhook events: one method per event type, each doing
/// nothing by default. Implement the ones you need.
///
/// Methods are named `on_` + the canonical event name with `.` and `-` turned
/// into `_`; they come from the event catalogue (see
/// [adding an event](crate::event#adding-an-event)). Returning an error tells
/// the listener to answer 500 (inline delivery), so the sender may retry.
///
/// ```
/// use wasenderapi::{event::MessagesData, WebhookEvent, WebhookHandler};
///
/// struct Bot;
/// impl WebhookHandler for Bot {
///     type Error = std::convert::Infallible;
///     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
///         for m in event.messages() {
///             println!("{:?}: {:?}", m.sender_phone(), m.text());
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait WebhookHandler: Send + Sync {
    /// The error your methods return; shown in logs (so keep secrets out of it).
    type Error: std::fmt::Display;

    crate::event::with_catalogue!(handler_methods);

    /// Any event this crate does not know yet, with its name and data intact.
    fn on_unknown(&self, event: &WebhookEvent<Value>) -> Result<(), Self::Error> {
        let _ = event;
        Ok(())
    }

    /// Every event passes here first; by default it calls the one typed method
    /// for the event's type (or [`on_unknown`](Self::on_unknown)).
    ///
    /// Override it to see every event in one place (to log, count or forward
    /// them), then call [`dispatch_typed`] to keep the typed methods working:
    ///
    /// ```
    /// use wasenderapi::{dispatch_typed, WasenderWebhookEvent, WebhookHandler};
    ///
    /// struct Logged;
    /// impl WebhookHandler for Logged {
    ///     type Error = std::convert::Infallible;
    ///     fn on_event(&self, event: &WasenderWebhookEvent) -> Result<(), Self::Error> {
    ///         println!("{}", event.event_type().as_str());
    ///         dispatch_typed(self, event)
    ///     }
    /// }
    /// ```
    fn on_event(&self, event: &WasenderWebhookEvent) -> Result<(), Self::Error> {
        route(self, event)
    }
}

/// Routes one event to `handler`: [`on_event`](WebhookHandler::on_event),
/// which by default calls exactly one typed method.
///
/// ```
/// use wasenderapi::{dispatch, event::MessagesData, WasenderWebhookEvent, WebhookEvent, WebhookHandler};
///
/// struct Count(std::sync::atomic::AtomicUsize);
/// impl WebhookHandler for Count {
///     type Error = std::convert::Infallible;
///     fn on_messages_upsert(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
///         self.0.fetch_add(event.messages().len(), std::sync::atomic::Ordering::Relaxed);
///         Ok(())
///     }
/// }
///
/// let event = WasenderWebhookEvent::from_slice(br#"{"event":"messages.upsert","data":{"key":{"id":"A"}}}"#)?;
/// let count = Count(Default::default());
/// dispatch(&count, &event).unwrap();
/// assert_eq!(count.0.into_inner(), 1);
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
pub fn dispatch<H: WebhookHandler + ?Sized>(
    handler: &H,
    event: &WasenderWebhookEvent,
) -> Result<(), H::Error> {
    handler.on_event(event)
}

/// Calls the one typed method of `handler` for `event` (or `on_unknown`),
/// bypassing [`on_event`](WebhookHandler::on_event): what an overridden
/// `on_event` calls to keep the typed methods working.
pub fn dispatch_typed<H: WebhookHandler + ?Sized>(
    handler: &H,
    event: &WasenderWebhookEvent,
) -> Result<(), H::Error> {
    route(handler, event)
}

/// A handler as `WebhookListener::builder` and `RedisWorker::builder` take it: the handler itself, or
/// an [`Arc`] of it when you keep a reference too (to read its state, or to
/// share it with other code).
///
/// Implemented for every [`WebhookHandler`] and every `Arc` of one; you never
/// implement it yourself.
#[cfg(feature = "listener")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither a `WebhookHandler` nor an `Arc` of one",
    label = "a webhook handler is needed here",
    note = "implement `wasenderapi::WebhookHandler` for your handler type; `WebhookListener::builder` and `RedisWorker::builder` take the handler itself or an `Arc` of it"
)]
pub trait IntoSharedHandler<H> {
    /// The handler behind an `Arc`.
    fn into_shared(self) -> Arc<H>;
}

#[cfg(feature = "listener")]
impl<H: WebhookHandler> IntoSharedHandler<H> for H {
    fn into_shared(self) -> Arc<H> {
        Arc::new(self)
    }
}

#[cfg(feature = "listener")]
impl<H: WebhookHandler> IntoSharedHandler<H> for Arc<H> {
    fn into_shared(self) -> Arc<H> {
        self
    }
}

/// How often, and how patiently, a failing handler is retried: by the
/// listener's queued modes (inline mode never retries: the sender may) and by
/// the Redis worker. Exponential backoff:
/// the wait after attempt `n` is `initial_backoff × 2^(n-1)`, at most
/// `max_backoff`. After `max_attempts` failures the event is dead-lettered.
///
/// The default is 5 attempts, 100 ms doubling up to 30 s.
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::listener::HandlerRetryPolicy;
/// let policy = HandlerRetryPolicy::default()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(10))
///     .max_backoff(Duration::from_millis(15));
/// assert_eq!(policy.backoff(1), Duration::from_millis(10));
/// assert_eq!(policy.backoff(2), Duration::from_millis(15));
/// ```
#[cfg(feature = "listener")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerRetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

#[cfg(feature = "listener")]
impl Default for HandlerRetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

#[cfg(feature = "listener")]
impl HandlerRetryPolicy {
    /// One attempt, no retry: a failure is dead-lettered at once.
    pub fn no_retries() -> Self {
        Self::default().max_attempts(1)
    }

    /// Attempts in all, the first included (at least 1; default 5).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait after the first failure (default 100 ms).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest wait between attempts (default 30 s).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The configured number of attempts.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial_backoff
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Why a guarded handler call failed (see [`dispatch_guarded`]).
#[cfg(feature = "listener")]
pub(crate) struct HandlerFailure {
    /// The handler panicked (rather than returning an error).
    pub panicked: bool,
    /// What went wrong, for logs and dead letters.
    pub text: String,
}

/// [`dispatch`]es `event` with a panic caught and turned into a failure, as
/// the queued modes and the Redis worker run handlers before retrying them.
#[cfg(feature = "listener")]
pub(crate) fn dispatch_guarded<H: WebhookHandler + ?Sized>(
    handler: &H,
    event: &WasenderWebhookEvent,
) -> Result<(), HandlerFailure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(handler, event))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(HandlerFailure {
            panicked: false,
            text: e.to_string(),
        }),
        Err(panic) => Err(HandlerFailure {
            panicked: true,
            text: format!("the handler panicked: {}", panic_message(panic.as_ref())),
        }),
    }
}

/// A panic's message, when it is text.
#[cfg(feature = "listener")]
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-text panic payload)")
}

impl WasenderWebhookEvent {
    /// Routes this event to `handler` (same as [`dispatch`]).
    pub fn dispatch_to<H: WebhookHandler + ?Sized>(&self, handler: &H) -> Result<(), H::Error> {
        dispatch(handler, self)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A handler generated from the catalogue that records which method ran,
    /// and every name the catalogue accepts with the method it belongs to.
    macro_rules! recorder {
        ($(
            $(#[$doc:meta])*
            $variant:ident = $name:literal $(| $alias:literal)* => fn $method:ident($data:ty),
        )*) => {
            #[derive(Default)]
            struct Recorder(Mutex<Vec<&'static str>>);

            impl WebhookHandler for Recorder {
                type Error = std::convert::Infallible;
                $(
                    fn $method(&self, _: &WebhookEvent<$data>) -> Result<(), Self::Error> {
                        self.0.lock().expect("no test thread panics").push(stringify!($method));
                        Ok(())
                    }
                )*
                fn on_unknown(&self, _: &WebhookEvent<Value>) -> Result<(), Self::Error> {
                    self.0.lock().expect("no test thread panics").push("on_unknown");
                    Ok(())
                }
            }

            const NAMES: &[(&str, &str)] = &[$(
                ($name, stringify!($method)),
                $(($alias, stringify!($method)),)*
            )*];
        };
    }
    crate::event::with_catalogue!(recorder);

    fn methods_called(name: &str) -> Vec<&'static str> {
        let body = serde_json::json!({ "event": name, "data": {} }).to_string();
        let event = crate::event::parse_event(body.as_bytes()).expect("a valid event");
        let recorder = Recorder::default();
        let Ok(()) = dispatch(&recorder, &event);
        recorder.0.into_inner().expect("no test thread panics")
    }

    #[test]
    fn every_known_type_dispatches_to_the_method_named_after_it() {
        for kind in WasenderWebhookEventType::KNOWN {
            let expected = format!("on_{}", kind.as_str().replace(['.', '-'], "_"));
            assert_eq!(methods_called(kind.as_str()), [expected.as_str()], "{kind}");
        }
    }

    #[test]
    fn every_alias_dispatches_like_its_canonical_name() {
        for (name, method) in NAMES {
            assert!(
                WasenderWebhookEventType::from_name(name).is_known(),
                "{name}"
            );
            assert_eq!(methods_called(name), [*method], "{name}");
        }
        assert_eq!(methods_called("labels.edit"), ["on_unknown"]);
    }
}
