//! [`WebhookHandler`] and [`dispatch`]: one handler method and one dispatch
//! arm per entry of the event catalogue.

use serde_json::Value;

// The catalogue names its data types as `crate::event` exports them.
use crate::event::*;
use crate::{WasenderWebhookEvent, WebhookEvent};

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
    /// use wasenderapi::{WasenderWebhookEvent, WebhookHandler};
    /// use wasenderapi::handler::dispatch_typed;
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
/// use wasenderapi::{WasenderWebhookEvent, WebhookEvent, WebhookHandler};
/// use wasenderapi::event::MessagesData;
/// use wasenderapi::handler::dispatch;
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use crate::WasenderWebhookEventType;

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
