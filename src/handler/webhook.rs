//! [`WebhookHandler`] and [`dispatch`]: one handler method and one dispatch
//! arm per entry of the event catalogue.

use serde_json::Value;

// The catalogue names its data types as `crate::event` exports them.
use crate::event::envelope::WasenderWebhookEvent;
use crate::event::envelope::WebhookEvent;
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
            // Costs one level check unless `debug` is on for this module.
            log::debug!(
                "no handler for {}: implement WebhookHandler::{}",
                event.event,
                stringify!($method)
            );
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
/// [adding an event](crate::event#adding-an-event)), and an alias (such as
/// `message.personal.received`) reaches the method of its canonical name.
/// Returning an error tells the listener to answer 500 (inline delivery), so
/// the sender may retry; the queued modes and the Redis worker retry it
/// themselves ([`HandlerRetryPolicy`](crate::handler::HandlerRetryPolicy)).
///
/// # What a messaging bot implements
///
/// WasenderAPI posts only the events the session subscribes to (its webhook
/// settings), and a message comes once for every subscribed event that covers
/// it: subscribed to both `messages.upsert` and `messages.received`, an
/// incoming message arrives twice. Pick one method per need, subscribe to its
/// event, and key on [`WebhookMessage::id`](crate::event::WebhookMessage::id)
/// when a message must not be acted on twice.
///
/// | you want | implement | event |
/// |---|---|---|
/// | incoming messages, in any chat | [`on_messages_received`](Self::on_messages_received) | `messages.received` |
/// | incoming messages of one-to-one chats only | [`on_messages_personal_received`](Self::on_messages_personal_received) | `messages-personal.received` |
/// | incoming messages of groups only (`key.participant` is the sender) | [`on_messages_group_received`](Self::on_messages_group_received) | `messages-group.received` |
/// | every message, incoming and outgoing ([`is_from_me`](crate::event::WebhookMessage::is_from_me) tells them apart) | [`on_messages_upsert`](Self::on_messages_upsert) | `messages.upsert` |
/// | the status of what you sent (delivered, read, …) | [`on_messages_update`](Self::on_messages_update) | `messages.update` |
/// | the session connecting, dropping, or waiting for a QR scan | [`on_session_status`](Self::on_session_status), [`on_qrcode_updated`](Self::on_qrcode_updated) | `session.status`, `qrcode.updated` |
///
/// # Events you did not implement
///
/// An event whose method is left at its default is answered 200 and
/// dropped, with one `debug` line naming it and the method to implement
/// (target `wasenderapi::handler::webhook`, so `RUST_LOG=wasenderapi=debug`
/// shows it):
///
/// ```text
/// no handler for messages-personal.received: implement WebhookHandler::on_messages_personal_received
/// ```
///
/// [`on_unknown`](Self::on_unknown) says the same of an event name this crate
/// does not know. When logging is off for that level, the line costs one
/// level check.
///
/// # Examples
///
/// Incoming messages of every kind of chat, and the session's status:
///
/// ```
/// use std::sync::Mutex;
/// use wasenderapi::event::{MessagesData, SessionStatusData};
/// use wasenderapi::handler::dispatch;
/// use wasenderapi::{WasenderWebhookEvent, WebhookEvent, WebhookHandler};
///
/// #[derive(Default)]
/// struct Bot {
///     seen: Mutex<Vec<String>>,
/// }
///
/// impl WebhookHandler for Bot {
///     type Error = std::convert::Infallible;
///
///     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
///         for m in event.messages() {
///             let line = format!("{}: {}", m.sender_phone().unwrap_or_default(), m.text().unwrap_or(""));
///             self.seen.lock().unwrap().push(line);
///         }
///         Ok(())
///     }
///
///     fn on_session_status(&self, event: &WebhookEvent<SessionStatusData>) -> Result<(), Self::Error> {
///         if let Some(status) = event.data().and_then(|d| d.status_parsed()) {
///             self.seen.lock().unwrap().push(format!("session {}", status.as_str()));
///         }
///         Ok(())
///     }
/// }
///
/// let bot = Bot::default();
/// for body in [
///     r#"{"event":"messages.received","data":{"messages":{"key":{"id":"A1","cleanedSenderPn":"1234567890"},"messageBody":"Hi"}}}"#,
///     r#"{"event":"session.status","data":{"status":"connected"}}"#,
///     r#"{"event":"chats.update","data":[]}"#, // not implemented: logged at debug, Ok
/// ] {
///     dispatch(&bot, &WasenderWebhookEvent::from_slice(body.as_bytes())?).unwrap();
/// }
/// assert_eq!(*bot.seen.lock().unwrap(), ["1234567890: Hi", "session connected"]);
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
pub trait WebhookHandler: Send + Sync {
    /// The error your methods return; shown in logs (so keep secrets out of it).
    type Error: std::fmt::Display;

    crate::event::with_catalogue!(handler_methods);

    /// Any event this crate does not know yet, with its name and data intact.
    fn on_unknown(&self, event: &WebhookEvent<Value>) -> Result<(), Self::Error> {
        log::debug!(
            "no handler for {}, an event this crate does not know: implement WebhookHandler::on_unknown",
            event.event
        );
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

    use crate::event::envelope::WasenderWebhookEventType;

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

    /// The `debug` lines this module logged on the calling thread. The
    /// logger is installed once for the unit-test binary (no other unit test
    /// installs one) and keeps each thread's lines apart, so tests running
    /// side by side do not see each other's.
    fn debug_lines_of(run: impl FnOnce()) -> Vec<String> {
        use std::cell::RefCell;

        thread_local! {
            static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        }

        struct ThisThread;
        impl log::Log for ThisThread {
            fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
                metadata.target() == module_path!().trim_end_matches("::tests")
            }
            fn log(&self, record: &log::Record<'_>) {
                if self.enabled(record.metadata()) && record.level() == log::Level::Debug {
                    LINES.with(|lines| lines.borrow_mut().push(record.args().to_string()));
                }
            }
            fn flush(&self) {}
        }

        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            log::set_logger(&ThisThread).expect("no other unit test installs a logger");
            log::set_max_level(log::LevelFilter::Debug);
        });
        LINES.with(|lines| lines.borrow_mut().clear());
        run();
        LINES.with(|lines| lines.take())
    }

    /// A handler that implements nothing.
    struct Nothing;
    impl WebhookHandler for Nothing {
        type Error = std::convert::Infallible;
    }

    fn dispatch_to_nothing(name: &str) {
        let body = serde_json::json!({ "event": name, "data": {} }).to_string();
        let event = crate::event::parse_event(body.as_bytes()).expect("a valid event");
        let Ok(()) = dispatch(&Nothing, &event);
    }

    #[test]
    fn an_event_left_to_a_default_method_is_logged_with_the_method_to_implement() {
        let lines = debug_lines_of(|| dispatch_to_nothing("messages-personal.received"));
        assert_eq!(
            lines,
            ["no handler for messages-personal.received: \
              implement WebhookHandler::on_messages_personal_received"]
        );
        // An alias names the method of its canonical event, under the name received.
        let lines = debug_lines_of(|| dispatch_to_nothing("message.group.received"));
        assert_eq!(
            lines,
            ["no handler for message.group.received: \
              implement WebhookHandler::on_messages_group_received"]
        );
        let lines = debug_lines_of(|| dispatch_to_nothing("labels.edit"));
        assert_eq!(
            lines,
            [
                "no handler for labels.edit, an event this crate does not know: \
              implement WebhookHandler::on_unknown"
            ]
        );
    }

    #[test]
    fn an_implemented_method_logs_no_unhandled_line() {
        let lines = debug_lines_of(|| {
            let Ok(()) = dispatch(
                &Recorder::default(),
                &crate::event::parse_event(br#"{"event":"messages-personal.received","data":{}}"#)
                    .expect("a valid event"),
            );
        });
        assert_eq!(lines, Vec::<String>::new());
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
