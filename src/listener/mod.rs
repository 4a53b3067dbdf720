//! The bundled webhook listener: an HTTP server on its own threads that
//! verifies each event and hands it to your [`WebhookHandler`](crate::WebhookHandler).
//!
//! It needs only a webhook secret: a receive-only app builds with
//! `default-features = false, features = ["listener"]` and compiles no REST client.
//!
//! ```
//! use wasenderapi::event::MessagesData;
//! use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};
//!
//! struct Bot;
//! impl WebhookHandler for Bot {
//!     type Error = String;
//!     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
//!         for m in event.messages() {
//!             println!("{:?} says {:?}", m.sender_phone(), m.text());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
//!     .bind("127.0.0.1:0") // port 0: any free port
//!     .path("/webhook")
//!     .max_body_bytes(1 << 20)
//!     .spawn()?;
//! println!("POST events to http://{}/webhook", listener.local_addr());
//! let stats = listener.shutdown(); // graceful: in-flight requests finish first
//! assert_eq!(stats.in_flight, 0);
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
//!
//! [`spawn`](WebhookListenerBuilder::spawn) refuses a verifier without a secret
//! ([`WasenderError::SecretNotConfigured`](crate::WasenderError::SecretNotConfigured)):
//! such a listener could accept no event. An address that does not resolve or
//! cannot be bound is [`WasenderError::Bind`](crate::WasenderError::Bind), which names it.
//!
//! # What is here
//!
//! - [`WebhookListener`](crate::WebhookListener) (at the crate root): the
//!   running listener: its address, [`stats`](crate::WebhookListener::stats),
//!   the dead letters of the queued modes, and how it stops
//!   ([`shutdown`](crate::WebhookListener::shutdown), [`join`](crate::WebhookListener::join),
//!   `run_until_signal`, a [`ShutdownHandle`]).
//! - [`WebhookListenerBuilder`]: every option, each setter with its default:
//!   address and path, the limits on connections, sizes and time, workers,
//!   the delivery mode and its handler threads, retries, dedupe, drain
//!   timeout, TLS (feature `tls`), metrics (feature `metrics`), signals
//!   (feature `signals`).
//! - [`DeliveryMode`]: when a verified event is answered, and what is kept
//!   of it (inline, queued in memory, durable on a journal); Redis delivery
//!   is `WebhookListener::redis_builder` (features `listener` and `redis`).
//! - [`ListenerStats`]: the counters, one outcome per request.
//!
//! The listener speaks HTTP/1.1 (keep-alive, pipelining) through its own
//! event-driven core on [`mio`](https://docs.rs/mio) (no async runtime; the
//! API stays blocking), with [`httparse`](https://docs.rs/httparse) for
//! request heads. Connections cost no thread; every size, time and count a
//! client could exhaust is bounded.
//!
//! # Running it
//!
//! The [operations guide](crate::guide) covers how it behaves and how to run
//! it: [the delivery modes and what each guarantees](crate::guide#choosing-a-delivery-mode),
//! [every default limit, the worst-case memory and the answers a sender
//! sees](crate::guide#limits-and-hostile-input), [TLS or a reverse
//! proxy](crate::guide#tls-or-a-reverse-proxy), [stopping and
//! draining](crate::guide#stopping-and-draining), [health
//! checks](crate::guide#health-checks), [metrics](crate::guide#metrics),
//! [logging](crate::guide#logging), and [the journal and its dead
//! letters](crate::guide#the-journal-and-dead-letters).

mod builder;
mod delivery;
#[cfg(feature = "metrics")]
mod detail;
mod http;
#[cfg(feature = "metrics")]
mod metrics;
mod rejections;
mod routing;
pub(crate) mod server;
mod service;
mod stats;

#[cfg(feature = "redis")]
pub use builder::RedisMode;
pub use builder::{WebhookListenerBuilder, DEFAULT_BIND, DEFAULT_PATH};
pub use delivery::{DeliveryMode, DEFAULT_DELIVERY_CAPACITY};
#[cfg(feature = "metrics")]
pub use metrics::DEFAULT_METRICS_PATH;
pub use routing::HEALTH_PATH;
pub use server::ShutdownHandle;
pub use stats::ListenerStats;

/// Masks a session id (which may be the session's API key) for logs: its
/// first four characters, then `…`. Short ids are masked entirely.
pub(crate) fn mask_session_id(id: &str) -> String {
    if id.chars().count() < 12 {
        return "…".to_owned();
    }
    let prefix: String = id.chars().take(4).collect();
    format!("{prefix}…")
}

#[cfg(test)]
#[test]
fn session_ids_are_masked() {
    assert_eq!(mask_session_id("a1b2c3d4e5f6a7b8"), "a1b2…");
    assert_eq!(mask_session_id("short"), "…");
}

/// Not a public API: only in builds for the fuzz targets (`--cfg fuzzing`) and in unit tests.
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
