//! The bundled webhook listener: an HTTP server on its own threads that
//! verifies each event and hands it to your [`WebhookHandler`](crate::WebhookHandler).
//!
//! ```
//! use wasenderapi::{MessagesData, WasenderSyncClient, WebhookEvent, WebhookHandler, WebhookListener};
//!
//! struct Bot;
//! impl WebhookHandler for Bot {
//!     type Error = String;
//!     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
//!         for m in event.data().iter().flat_map(|d| d.messages()) {
//!             println!("{:?} says {:?}", m.sender_phone(), m.text());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let client = WasenderSyncClient::new("api-key").with_webhook_secret("webhook-secret");
//! let listener = WebhookListener::builder(client, Bot)
//!     .bind("127.0.0.1:0") // port 0: any free port
//!     .path("/webhook")
//!     .workers(4)
//!     .max_body_bytes(1 << 20)
//!     .spawn()?;
//! println!("POST events to http://{}/webhook", listener.local_addr());
//! let stats = listener.shutdown(); // graceful: in-flight requests finish first
//! assert_eq!(stats.in_flight, 0);
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
//!
//! # Answers
//!
//! | status | when |
//! |---|---|
//! | 200 `{"status":"success","event":"<name>"}` | a verified event was handled (unknown event names included) |
//! | 200 `{"status":"ok"}` | `GET /healthz` |
//! | 400 | body empty, not UTF-8, not JSON (or nested too deep), not an event; or not valid HTTP |
//! | 401 | `X-Webhook-Signature` missing or wrong |
//! | 404 / 405 (`Allow`) | another path / another method |
//! | 408 | the request did not arrive within the request timeout |
//! | 413 | body over [`max_body_bytes`](WebhookListenerBuilder::max_body_bytes) |
//! | 500 | the handler returned an error or panicked (the sender may retry); or no secret is configured |
//! | 503 (`Retry-After`) | every worker busy and the queue full, or too many connections |
//!
//! Bodies are JSON `{"status":"error","message":…}` with a short text that
//! never holds an internal detail, a secret or the signature.
//!
//! # Threads and bounds
//!
//! An accept thread starts one thread per connection (at most
//! [`max_connections`](WebhookListenerBuilder::max_connections)). A connection
//! thread reads requests under a per-read timeout and a whole-request deadline,
//! refuses oversized heads and bodies without buffering them, answers health
//! checks, unknown paths and methods itself, and queues webhook bodies for the
//! [`workers`](WebhookListenerBuilder::workers), which verify, decode and run the
//! handler (a panic is caught and answered 500). So a slow or stalled client
//! only ever holds its own connection thread, for a bounded time, and never a
//! worker. When the queue is full the answer is 503.
//!
//! Logging goes through the `log` facade. The secret and the signature header
//! are never logged; session ids are masked ([`mask_session_id`]).

mod builder;
mod connection;
mod delivery;
mod http;
mod limits;
mod mode;
mod queued;
mod routing;
mod server;
mod stats;
mod workers;

pub use crate::journal::DeadLetter;
pub use builder::{WebhookListenerBuilder, DEFAULT_BIND, DEFAULT_PATH};
pub use limits::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEAD_BYTES, DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_WRITE_TIMEOUT,
};
pub use mode::{
    DeliveryMode, HandlerRetryPolicy, DEFAULT_DELIVERY_CAPACITY, DEFAULT_DRAIN_TIMEOUT,
};
pub use routing::HEALTH_PATH;
pub use server::{ShutdownHandle, WebhookListener};
pub use stats::ListenerStats;

/// Masks a session id (which may be the session's API key) for logs: its
/// first four characters, then `…`. Short ids are masked entirely.
///
/// ```
/// use wasenderapi::listener::mask_session_id;
/// assert_eq!(mask_session_id("a1b2c3d4e5f6a7b8"), "a1b2…");
/// assert_eq!(mask_session_id("short"), "…");
/// ```
pub fn mask_session_id(id: &str) -> String {
    if id.chars().count() < 12 {
        return "…".to_owned();
    }
    let prefix: String = id.chars().take(4).collect();
    format!("{prefix}…")
}

#[doc(hidden)]
pub mod fuzzing;
