//! Receive and answer WasenderAPI (WhatsApp) webhooks from plain, blocking Rust.
//!
//! Verify, decode and route an event in three lines:
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
//! Implement [`WebhookHandler`] (one default method per event type) and route
//! each event with [`dispatch`](crate::handler::dispatch):
//!
//! ```
//! use wasenderapi::{WebhookEvent, WebhookHandler, WebhookVerifier};
//! use wasenderapi::handler::dispatch;
//! use wasenderapi::event::MessagesData;
//!
//! struct Printer;
//! impl WebhookHandler for Printer {
//!     type Error = String;
//!     fn on_messages_upsert(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
//!         println!("{} message(s)", event.data().map_or(0, |d| d.messages().len()));
//!         Ok(())
//!     }
//! }
//!
//! let verifier = WebhookVerifier::with_secret("s");
//! let event = verifier.handle_webhook_event(br#"{"event":"messages.upsert","data":{"messages":[]}}"#, Some("s"))?;
//! dispatch(&Printer, &event).unwrap();
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
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
//! answers WasenderAPI with the right status (200, 401, 400, 413, 500, 503, …).
//! It bounds everything a hostile or broken client could exhaust: connections,
//! header and body sizes, read and request time, queue depth. A handler panic
//! is caught and answered 500. See the [`listener`] module for the full table,
//! and for the queued and durable delivery modes.
//!
//! ```no_run
//! # #[cfg(feature = "listener")] {
//! use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};
//! use wasenderapi::event::MessagesData;
//!
//! struct Bot;
//! impl WebhookHandler for Bot {
//!     type Error = String;
//!     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
//!         println!("{} message(s)", event.data().map_or(0, |d| d.messages().len()));
//!         Ok(())
//!     }
//! }
//!
//! let verifier = WebhookVerifier::with_secret("webhook-secret");
//! let listener = WebhookListener::builder(verifier, Bot).bind("0.0.0.0:3000").spawn()?;
//! listener.join(); // or keep working and call listener.shutdown() later
//! # }
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
//!
//! # Answering through the REST API (feature `client`)
//!
//! [`WasenderSyncClient`] speaks the REST API over `ureq`, blocking, with
//! bounded retries (a 429 is waited out; a message is never re-sent after
//! an ambiguous failure unless you opt in):
//!
//! ```no_run
//! # #[cfg(feature = "client")] {
//! use wasenderapi::WasenderSyncClient;
//! use wasenderapi::event::WebhookMessage;
//!
//! fn answer(client: &WasenderSyncClient, message: &WebhookMessage) -> wasenderapi::Result<()> {
//!     if message.media().is_some() {
//!         let bytes = client.download_media(message)?; // decrypted file
//!         client.reply_text(message, &format!("Got your file ({} bytes)", bytes.len()))?;
//!     } else if let Some(text) = message.text() {
//!         client.reply_text(message, &format!("You said: {text}"))?;
//!     }
//!     Ok(())
//! }
//! # }
//! ```
//!
//! # Running it in production
//!
//! The listener stops cleanly on SIGTERM and Ctrl-C
//! (`WebhookListener::run_until_signal`, feature `signals`), logs through the
//! `log` facade (rejections rate-limited, secrets never logged), serves
//! `GET /healthz` for load balancers and, with the `metrics` feature,
//! Prometheus metrics; dead letters can be listed and requeued
//! (`journal::JournalDir`, or the running listener's API); one process owns a
//! journal directory at a time. The [`listener`] module documents each; the
//! README has the commands, a systemd unit and a Dockerfile, and the `cli`
//! feature builds the `wasender` binary. To run many listeners and workers
//! on many machines over one delivery log, use Redis Streams (feature
//! `redis`, the `redis` module).
//!
//! # Modules
//!
//! | module | what |
//! |---|---|
//! | [`event`] | the payload types, the event catalogue, and how to add an event |
//! | [`signature`] | verification schemes, [`sign_webhook`](crate::signature::sign_webhook), the redacting `Secret` |
//! | [`handler`] | [`WebhookHandler`], and the runtime that calls it with retries: [`HandlerRetryPolicy`](handler::HandlerRetryPolicy), [`DeadLetter`](handler::DeadLetter), [`dispatch_guarded`](handler::dispatch_guarded) |
//! | `listener` | the listener's options, delivery modes, stats, answers (feature `listener`) |
//! | `journal` | the durable journal's configuration, dead letters, `JournalDir` (feature `listener`) |
//! | `client` | the REST client's requests and answers (feature `client`) |
//! | `redis` | scale-out delivery on Redis Streams (feature `redis`) |
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
//!   `WebhookListener::redis_builder` (see the `redis` module). It needs neither the
//!   listener nor the journal.
//! - `cli`: the `wasender` command-line tool.
//! - `jiff`: timestamps as `jiff::Timestamp` too.
//!
//! Without any, the crate is the webhook core: verification, events, handler.
//! With `default-features = false, features = ["listener"]`, no HTTP client,
//! TLS stack or Redis client is compiled.
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
