//! Receive and answer WasenderAPI (WhatsApp) webhooks from plain, blocking Rust.
//!
//! A [`WebhookVerifier`] checks each request's signature and decodes its raw
//! body into a typed, lossless [`WasenderWebhookEvent`]; a [`WebhookHandler`]
//! has one method per event type; the bundled [`WebhookListener`] (feature
//! `listener`) serves them over HTTP on its own threads, and
//! [`WasenderSyncClient`] (feature `client`) answers through the REST API. No
//! async runtime anywhere.
//!
//! # Examples
//!
//! Verify, decode and read an event:
//!
//! ```
//! use wasenderapi::{WasenderWebhookEventType, WebhookVerifier};
//!
//! let verifier = WebhookVerifier::with_secret("secret");
//! let body = br#"{"event":"messages.received","timestamp":1633456789,"data":{"messages":{
//!     "key":{"id":"3EB0X1","fromMe":false,"remoteJid":"1234567890@s.whatsapp.net","cleanedSenderPn":"1234567890"},
//!     "messageBody":"Hello"}}}"#;
//! let event = verifier.handle_webhook_event(body, Some("secret"))?;
//! assert_eq!(event.event_type(), WasenderWebhookEventType::MessagesReceived);
//! for m in event.messages() {
//!     assert_eq!(m.text(), Some("Hello"));
//!     assert_eq!(m.sender_phone().as_deref(), Some("1234567890"));
//! }
//! // Lossless: the event serialises back to what was received.
//! let received: serde_json::Value = serde_json::from_slice(body).unwrap();
//! assert_eq!(serde_json::to_value(&event).unwrap(), received);
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
//!
//! Handle events with the bundled listener: here on a free port of
//! 127.0.0.1, posting one signed event to it (a real bot binds a public
//! address and runs until a signal: see the README's quick start).
//!
//! ```
//! # #[cfg(feature = "listener")] {
//! use std::io::{Read, Write};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use wasenderapi::event::MessagesData;
//! use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};
//!
//! #[derive(Default)]
//! struct Bot(AtomicUsize);
//! impl WebhookHandler for Bot {
//!     type Error = String;
//!     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
//!         self.0.fetch_add(event.messages().len(), Ordering::Relaxed);
//!         Ok(())
//!     }
//! }
//!
//! let bot = std::sync::Arc::new(Bot::default());
//! let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), bot.clone())
//!     .bind("127.0.0.1:0") // port 0: any free port
//!     .spawn()?;
//!
//! // What WasenderAPI sends: the secret itself in X-Webhook-Signature.
//! let body = r#"{"event":"messages.received","data":{"messages":{"key":{"id":"A1"},"messageBody":"Hi"}}}"#;
//! let mut conn = std::net::TcpStream::connect(listener.local_addr())?;
//! write!(
//!     conn,
//!     "POST /webhook HTTP/1.1\r\nHost: bot\r\nX-Webhook-Signature: webhook-secret\r\n\
//!      Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
//!     body.len()
//! )?;
//! let mut answer = String::new();
//! conn.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
//!
//! let stats = listener.shutdown(); // graceful: what is in flight finishes first
//! assert_eq!((stats.handled, bot.0.load(Ordering::Relaxed)), (1, 1));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Events
//!
//! [`WasenderWebhookEvent`] has one variant per catalogued event (22 of them,
//! aliases included) and `Unknown` for anything else, which is delivered with its
//! name and data, never rejected. Decoding is lenient: a member that is missing,
//! `null`, or of an unexpected shape (a string for a number, an object for an
//! array) never fails the event; a mis-shaped member is kept verbatim in the
//! owning object's `extra` map, so `serde_json::to_value(&event)` always equals
//! the received JSON. Accessors hide the protocol's quirks:
//! [`WebhookMessage::text`](event::WebhookMessage::text), [`sender_phone`](event::WebhookMessage::sender_phone),
//! [`media`](event::WebhookMessage::media), [`MessageStatus`](event::MessageStatus), and timestamps normalised to
//! seconds.
//!
//! Numbers are kept as serde_json keeps them: integers up to `u64::MAX` survive
//! exactly; larger integers become floating point (enable serde_json's
//! `arbitrary_precision` feature in your own crate to keep those digits too).
//!
//! # Handling events
//!
//! Implement [`WebhookHandler`] (one default method per event type; its docs
//! say which ones a messaging bot wants) and route each event with
//! [`dispatch`](crate::handler::dispatch), or let the listener do it. An event
//! whose method you did not implement is logged at `debug`, naming the method.
//!
//! # Signatures
//!
//! A [`WebhookVerifier`] holds the webhook secret(s) and the scheme; it needs
//! no API key and no cargo feature. WasenderAPI sends the webhook secret itself
//! in `X-Webhook-Signature` ([`SignatureScheme::SharedSecret`](crate::signature::SignatureScheme::SharedSecret), the default).
//! An HMAC-SHA256 scheme over the raw body is available for signing proxies
//! ([`SignatureScheme::HmacSha256`](crate::signature::SignatureScheme::HmacSha256)). Comparisons are constant time over
//! fixed-length digests, every configured secret is tried (rotation), and with
//! no secret configured nothing is accepted. [`sign_webhook`](crate::signature::sign_webhook) builds a valid
//! header for your own tests.
//!
//! # The listener (feature `listener`)
//!
//! [`WebhookListener`] serves `POST /webhook` (and `GET /healthz`) on its own
//! threads, verifies, decodes and dispatches each event to your handler, and
//! answers WasenderAPI with the right status. It bounds everything a hostile
//! or broken client could exhaust, and delivers inline, through a bounded
//! queue, from a durable journal, or through Redis Streams. The [`listener`]
//! module has its options.
//!
//! # Answering through the REST API (feature `client`)
//!
//! [`WasenderSyncClient`] speaks the REST API over `ureq`, blocking, with
//! bounded retries (a 429 is waited out; a message is never re-sent after
//! an ambiguous failure unless you opt in): `reply_text(&message, …)`,
//! `download_media(&message)`, `send(&Message::image(…))`, and the account
//! calls.
//!
//! # Running it in production
//!
//! The [operations guide](guide) is the one place for running a receiver:
//! choosing a delivery mode and what it guarantees, deploying under systemd,
//! Docker or Kubernetes, TLS or a reverse proxy, every default limit and the
//! worst-case memory, stopping and draining, health checks, metrics, logging,
//! the journal and its dead letters, and scaling out on Redis Streams.
//!
//! # Modules
//!
//! | module | what |
//! |---|---|
//! | [`event`] | the payload types, the event catalogue, and how to add an event |
//! | [`signature`] | verification schemes, [`sign_webhook`](crate::signature::sign_webhook), the redacting `Secret` |
//! | [`handler`] | [`WebhookHandler`], and the runtime that calls it with retries: [`HandlerRetryPolicy`](handler::HandlerRetryPolicy), [`DeadLetter`](handler::DeadLetter), [`dispatch_guarded`](handler::dispatch_guarded) |
//! | `listener` | the listener's options, delivery modes, stats (feature `listener`) |
//! | `journal` | the durable journal's format, dead letters, `JournalDir` (feature `listener`) |
//! | `client` | the REST client's requests and answers (feature `client`) |
//! | `redis` | scale-out delivery on Redis Streams (feature `redis`) |
//! | [`guide`] | the operations guide (no API) |
//!
//! # Features
//!
//! - `client` (default): the blocking REST client over `ureq`
//!   ([`WasenderSyncClient`]). It also holds webhook secrets, and can be
//!   given wherever a [`WebhookVerifier`] is taken.
//! - `listener` (default): the bundled webhook listener and the durable journal.
//! - `signals` (default): SIGTERM and Ctrl-C stop the listener (and the
//!   Redis worker) gracefully, through `signal-hook`; turn it off when your
//!   program owns its signals.
//! - `metrics` (default): `GET /metrics` in the Prometheus text format, once
//!   the builder's `metrics(true)` turns it on.
//! - `tls`: HTTPS in the listener with rustls.
//! - `redis`: scale-out delivery on Redis Streams — many listeners and many
//!   workers on one stream, with shared dedupe: `redis::RedisAppender`,
//!   `redis::RedisWorker`, and with `listener`
//!   `WebhookListener::redis_builder`. It needs neither the listener nor the
//!   journal.
//! - `jiff`: timestamps as `jiff::Timestamp` too.
//!
//! Without any, the crate is the webhook core: verification, events, handler.
//! With `default-features = false, features = ["listener"]`, no HTTP client,
//! TLS stack or Redis client is compiled. The `wasender` command-line tool is
//! its own package (`crates/wasender` in the repository).
//!
// Without their features, the names the docs above mention point at the sections describing them.
#![cfg_attr(
    not(feature = "client"),
    doc = "[`WasenderSyncClient`]: #answering-through-the-rest-api-feature-client"
)]
#![cfg_attr(
    not(feature = "listener"),
    doc = "[`WebhookListener`]: #the-listener-feature-listener\n[`listener`]: #the-listener-feature-listener"
)]
#![deny(missing_docs)]
// docs.rs: each item behind a feature says which one.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
pub mod client;
mod error;
pub mod event;
pub mod guide;
pub mod handler;
#[cfg(feature = "listener")]
pub mod journal;
#[cfg(feature = "listener")]
pub mod listener;
#[cfg(feature = "redis")]
pub mod redis;
mod secret;
#[cfg(all(
    feature = "signals",
    unix,
    any(feature = "listener", feature = "redis")
))]
mod signals;
pub mod signature;
mod sync;

#[cfg(feature = "client")]
pub use client::sync_client::WasenderSyncClient;
pub use error::{Result, WasenderError};
pub use event::envelope::{WasenderWebhookEvent, WasenderWebhookEventType, WebhookEvent};
pub use handler::webhook::WebhookHandler;
#[cfg(feature = "listener")]
pub use listener::server::WebhookListener;
pub use signature::verifier::WebhookVerifier;

/// The README's examples, compiled and run as doc tests so they keep matching the API.
#[cfg(all(
    doctest,
    unix,
    feature = "client",
    feature = "listener",
    feature = "signals",
    feature = "metrics",
    feature = "tls",
    feature = "redis"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
