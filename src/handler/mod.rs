//! Handlers and the runtime that calls them.
//!
//! [`WebhookHandler`] (one method per event type) and [`dispatch`] are
//! generated from the event catalogue (`src/event/catalogue.rs`): one
//! handler method and one dispatch arm per entry, named by the entry. Both
//! are also exported at the crate root.
//!
//! The rest of this module is what runs a handler outside a request, with
//! retries, the same way everywhere: the listener's queued and durable
//! delivery modes and the Redis worker (feature `redis`) share it.
//!
//! - [`HandlerRetryPolicy`]: how often and how patiently a failing handler
//!   is called again before its event becomes a [`DeadLetter`];
//! - [`dispatch_guarded`]: [`dispatch`] with a panic caught and reported as
//!   a [`HandlerFailure`];
//! - [`IntoSharedHandler`]: a handler given by value or as an `Arc`;
//! - [`DeadLetter`]: an event the runtime gave up on, with how many handler
//!   calls began and how the last one ended ([`LastCall`]);
//! - [`DEFAULT_DRAIN_TIMEOUT`]: how long a graceful stop waits for handler
//!   calls in progress.
//!
//! # Attempts
//!
//! An attempt is a handler call that **began**: the runtime counts one when
//! it calls the handler, never when an event is merely fetched or
//! delivered. After the call numbered
//! [`max_attempts`](HandlerRetryPolicy::max_attempts) failed, the event is
//! dead-lettered; an event no handler call began is never dead-lettered for
//! lack of attempts (only an entry whose body is not an event is, with
//! [`LastCall::NotBegun`]). Where the count is kept: in memory for the
//! listener's queued modes (a restart of durable mode starts again at 1),
//! in Redis for the Redis worker (so it survives the worker: see the
//! `redis` module).

// The runtime's internals serve the listener and the Redis worker; the
// webhook core alone (no feature) only has the public types.
#![cfg_attr(
    not(any(feature = "listener", feature = "redis")),
    allow(dead_code, unused_imports, unused_macros)
)]

use std::time::Duration;

use serde_json::Value;

// The catalogue names its data types as `crate::event` exports them.
use crate::event::*;

mod attempts;
pub(crate) mod counters;
pub(crate) mod dead_letter;
mod guarded;
mod retry;
mod shared;
mod threads;

#[cfg_attr(not(feature = "listener"), allow(unused_imports))]
pub(crate) use attempts::Ended;
pub(crate) use attempts::{report_dead_letter, run_attempts, Attempts, DeadLetterHook};
pub use dead_letter::{DeadLetter, DeadLetterId, LastCall};
pub(crate) use guarded::panic_message;
pub use guarded::{dispatch_guarded, HandlerFailure};
pub use retry::HandlerRetryPolicy;
pub use shared::IntoSharedHandler;
#[cfg_attr(not(feature = "redis"), allow(unused_imports))]
pub(crate) use threads::Hurry;
pub(crate) use threads::ThreadGroup;

/// How long a graceful stop waits for work in progress when not set with
/// `drain_timeout` (the listener's `WebhookListenerBuilder::drain_timeout`,
/// the Redis worker's `RedisWorkerBuilder::drain_timeout`): 30 s, counted
/// from the moment the stop begins. Both mean the same: the longest wait for
/// handler calls in progress (and, in the listener's queued modes, for the
/// queue to empty) before the rest is left behind.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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
