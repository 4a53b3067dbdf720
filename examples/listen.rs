//! Receive WasenderAPI webhooks and log one line per message, until SIGTERM or Ctrl-C.
//!
//! ```text
//! WASENDER_WEBHOOK_SECRET=<secret from the dashboard> cargo run --example listen
//! ```
//!
//! Environment:
//! - `PORT`: the port to listen on (default 3000);
//! - `WASENDER_WEBHOOK_SECRET`: the webhook secret (if unset, a development
//!   secret is generated and printed);
//! - `WASENDER_JOURNAL_DIR`: durable delivery with its journal in this
//!   directory (answered once on disk, handed over again after a restart);
//!   unset: inline delivery;
//! - `WASENDER_REDIS_URL` (with `--features redis`): add each event to a
//!   Redis stream for `redis_worker` processes to handle, instead of handling
//!   it here (see "Scaling out on Redis Streams" in docs/operations.md);
//! - `RUST_LOG`: default `info`; `debug` shows every request and event.
//!
//! It serves Prometheus metrics at `GET /metrics` (the default `metrics` feature);
//! `GET /healthz` answers load balancers either way.
//!
//! Stop it with Ctrl-C or `kill -TERM <pid>`: it finishes what is in flight
//! (up to 30 s; a second signal stops at once) and exits with status 0.
//! Post an event from another terminal with the `send_event` example.

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::process::ExitCode;

use wasenderapi::event::{EventData, MessagesData, SessionStatusData};
use wasenderapi::listener::{DeliveryMode, WebhookListenerBuilder};
use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};

/// Logs messages and session changes; every other event shows with `RUST_LOG=debug`.
struct LogEvents;

/// The event's session id as logs may show it (it can be the session's API
/// key): its first four characters, or nothing of a short one.
fn session<D: EventData>(event: &WebhookEvent<D>) -> String {
    match event.session_id() {
        None => "-".to_owned(),
        Some(id) if id.chars().count() < 12 => "…".to_owned(),
        Some(id) => format!("{}…", id.chars().take(4).collect::<String>()),
    }
}

fn log_messages(event: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
    for m in event.messages() {
        let content = match (m.text(), m.media()) {
            (_, Some(media)) => format!("[{}] {}", media.kind.as_str(), m.text().unwrap_or("")),
            (Some(text), None) => format!("{text:?}"),
            (None, None) => "(no text)".to_owned(),
        };
        log::info!(
            "{} (session {}) from {}{}: {}",
            event.event_name(),
            session(event),
            m.sender_phone().as_deref().unwrap_or("?"),
            if m.is_from_me() { " (me)" } else { "" },
            content.trim_end()
        );
    }
    Ok(())
}

impl WebhookHandler for LogEvents {
    type Error = Infallible;

    fn on_messages_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        log_messages(e)
    }
    fn on_messages_upsert(&self, e: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        log_messages(e)
    }
    fn on_message_sent(&self, e: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        log_messages(e)
    }
    fn on_session_status(&self, e: &WebhookEvent<SessionStatusData>) -> Result<(), Infallible> {
        let status = e.data().and_then(|d| d.status_parsed());
        let status = status.as_ref().map_or("?", |s| s.as_str());
        log::info!("session {} is now {status}", session(e));
        Ok(())
    }
    fn on_unknown(&self, e: &WebhookEvent<serde_json::Value>) -> Result<(), Infallible> {
        log::info!(
            "{} (session {}): new to this crate",
            e.event_name(),
            session(e)
        );
        Ok(())
    }
}

/// Durable with `WASENDER_JOURNAL_DIR`, else inline.
fn delivery_mode() -> DeliveryMode {
    match std::env::var_os("WASENDER_JOURNAL_DIR") {
        Some(dir) if !dir.is_empty() => DeliveryMode::durable(dir),
        _ => DeliveryMode::Inline,
    }
}

/// The options of this example that every mode shares.
fn configure<H>(builder: WebhookListenerBuilder<H>, port: u16) -> WebhookListenerBuilder<H> {
    let builder = builder.bind(format!("0.0.0.0:{port}"));
    #[cfg(feature = "metrics")]
    let builder = builder.metrics(true);
    builder
}

/// 32 random hex characters (std's hasher keys are random per process).
fn dev_secret() -> String {
    (0..2)
        .map(|_| format!("{:016x}", RandomState::new().build_hasher().finish()))
        .collect()
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message names the address and the cause (a port in use, a bad PORT).
            eprintln!("listen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let secret = match std::env::var("WASENDER_WEBHOOK_SECRET") {
        Ok(s) if !s.trim().is_empty() => s,
        _ => {
            let s = dev_secret();
            // On the terminal, not in the log: a log never holds a secret.
            eprintln!(
                "WASENDER_WEBHOOK_SECRET is not set, so this run uses the development secret {s}."
            );
            eprintln!(
                "Real WasenderAPI events are refused (401) until you set WASENDER_WEBHOOK_SECRET \
                 to the webhook secret shown in your session's dashboard."
            );
            s
        }
    };
    let verifier = WebhookVerifier::with_secret(&secret);
    // With `WASENDER_REDIS_URL` (feature `redis`), events go to a Redis
    // stream for `redis_worker` processes; no handler runs here.
    #[cfg(feature = "redis")]
    if let Some(url) = std::env::var("WASENDER_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let options = wasenderapi::redis::RedisOptions::new(url);
        let listener = configure(WebhookListener::redis_builder(verifier, options), port);
        let stats = listener.spawn()?.run_until_signal()?;
        log::info!("bye: {} events added to Redis", stats.queued);
        return Ok(());
    }
    let listener = WebhookListener::builder(verifier, LogEvents).delivery_mode(delivery_mode());
    let stats = configure(listener, port).spawn()?.run_until_signal()?;
    log::info!(
        "bye: {} events handled, {} requests rejected",
        stats.handled,
        stats.rejected()
    );
    Ok(())
}
