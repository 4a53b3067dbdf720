//! Receive WasenderAPI webhooks and log one line per event.
//!
//! ```text
//! WASENDER_WEBHOOK_SECRET=<secret from the dashboard> cargo run --example listen
//! ```
//!
//! Environment: `PORT` (default 3000), `WASENDER_WEBHOOK_SECRET` (if unset, a
//! development secret is generated and printed), `RUST_LOG` (default `info`; `debug` shows every request),
//! `WASENDER_REDIS_URL` (with `--features redis`: add events to Redis for
//! `redis_worker` processes to handle, instead of handling them here).
//! Then post an event from another terminal with the `send_event` example.

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};

use wasenderapi::event::{CallData, MessagesData, QrCodeData, SessionStatusData};
use wasenderapi::listener::{mask_session_id, DeliveryMode};
use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};

/// Logs each event as one readable line.
struct LogEvents;

impl LogEvents {
    fn session<D: wasenderapi::event::EventData>(event: &WebhookEvent<D>) -> String {
        event
            .session_id()
            .map_or_else(|| "-".to_owned(), mask_session_id)
    }

    fn messages(event: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        let messages = event.data().map(|d| d.messages()).unwrap_or_default();
        if messages.is_empty() {
            log::info!(
                "{} (session {}): no message",
                event.event_name(),
                Self::session(event)
            );
        }
        for m in messages {
            let content = match (m.text(), m.media()) {
                (_, Some(media)) => format!("[{}] {}", media.kind.as_str(), m.text().unwrap_or("")),
                (Some(text), None) => format!("{text:?}"),
                (None, None) => "(no text)".to_owned(),
            };
            log::info!(
                "{} (session {}) chat {} from {}{}: {}",
                event.event_name(),
                Self::session(event),
                m.chat_jid().unwrap_or("?"),
                m.sender_phone().as_deref().unwrap_or("?"),
                if m.is_from_me() { " (me)" } else { "" },
                content.trim_end()
            );
        }
        Ok(())
    }

    fn other<D: wasenderapi::event::EventData>(event: &WebhookEvent<D>) -> Result<(), Infallible> {
        log::info!("{} (session {})", event.event_name(), Self::session(event));
        Ok(())
    }
}

impl WebhookHandler for LogEvents {
    type Error = Infallible;

    fn on_messages_upsert(&self, e: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        Self::messages(e)
    }
    fn on_messages_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        Self::messages(e)
    }
    fn on_messages_personal_received(
        &self,
        e: &WebhookEvent<MessagesData>,
    ) -> Result<(), Infallible> {
        Self::messages(e)
    }
    fn on_messages_group_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        Self::messages(e)
    }
    fn on_messages_newsletter_received(
        &self,
        e: &WebhookEvent<MessagesData>,
    ) -> Result<(), Infallible> {
        Self::messages(e)
    }
    fn on_message_sent(&self, e: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        Self::messages(e)
    }
    fn on_session_status(&self, e: &WebhookEvent<SessionStatusData>) -> Result<(), Infallible> {
        let status = e.data().and_then(|d| d.status_parsed());
        log::info!(
            "session.status (session {}): {}",
            Self::session(e),
            status.as_ref().map_or("?", |s| s.as_str())
        );
        Ok(())
    }
    fn on_qrcode_updated(&self, e: &WebhookEvent<QrCodeData>) -> Result<(), Infallible> {
        log::info!(
            "qrcode.updated (session {}): a new QR code to scan",
            Self::session(e)
        );
        Ok(())
    }
    fn on_call(&self, e: &WebhookEvent<CallData>) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_unknown(&self, e: &WebhookEvent<serde_json::Value>) -> Result<(), Infallible> {
        log::info!(
            "{} (session {}): an event this crate does not know yet",
            e.event_name(),
            Self::session(e)
        );
        Ok(())
    }
    // Every other event type gets the short line too.
    fn on_messages_update(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::MessageUpdate>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_messages_delete(
        &self,
        e: &WebhookEvent<wasenderapi::event::MessagesDelete>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_messages_reaction(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::MessageReaction>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_message_receipt_update(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::ReceiptUpdate>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_chats_upsert(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::Chat>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_chats_update(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::Chat>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_chats_delete(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<String>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_contacts_upsert(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::Contact>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_contacts_update(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::Contact>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_groups_upsert(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::GroupMetadata>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_groups_update(
        &self,
        e: &WebhookEvent<wasenderapi::event::OneOrMany<wasenderapi::event::GroupMetadata>>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_group_participants_update(
        &self,
        e: &WebhookEvent<
            wasenderapi::event::OneOrMany<wasenderapi::event::GroupParticipantsUpdate>,
        >,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
    fn on_poll_results(
        &self,
        e: &WebhookEvent<wasenderapi::event::PollResults>,
    ) -> Result<(), Infallible> {
        Self::other(e)
    }
}

/// Redis delivery when `WASENDER_REDIS_URL` is set (feature `redis`): events
/// then go to the stream and `redis_worker` processes handle them; else inline.
fn delivery_mode() -> DeliveryMode {
    let Ok(url) = std::env::var("WASENDER_REDIS_URL") else {
        return DeliveryMode::Inline;
    };
    #[cfg(feature = "redis")]
    {
        log::info!("Redis delivery: events are handled by redis_worker processes");
        DeliveryMode::redis(wasenderapi::redis::RedisOptions::new(url))
    }
    #[cfg(not(feature = "redis"))]
    {
        log::warn!(
            "WASENDER_REDIS_URL ({} bytes) is ignored: build with --features redis",
            url.len()
        );
        DeliveryMode::Inline
    }
}

/// 32 random hex characters (std's hasher keys are random per process).
fn dev_secret() -> String {
    (0..2)
        .map(|_| format!("{:016x}", RandomState::new().build_hasher().finish()))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

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
            eprintln!("=====================================================================");
            eprintln!("WARNING: WASENDER_WEBHOOK_SECRET is not set.");
            eprintln!("Using a generated DEVELOPMENT secret: {s}");
            eprintln!("Real WasenderAPI events will be refused (401) until you set the");
            eprintln!("secret from your dashboard. Never use this one in production.");
            eprintln!("=====================================================================");
            s
        }
    };
    let verifier = WebhookVerifier::with_secret(&secret);

    let listener = WebhookListener::builder(verifier, LogEvents)
        .bind(("0.0.0.0", port))
        .path("/webhook")
        .delivery_mode(delivery_mode())
        .spawn()?;
    let addr = listener.local_addr();
    log::info!("listening on http://{addr}/webhook (health check: GET /healthz)");
    log::info!(
        "try it: cargo run --example send_event -- http://127.0.0.1:{}/webhook   (with the same WASENDER_WEBHOOK_SECRET)",
        addr.port()
    );
    let stats = listener.join();
    log::info!("stopped: {stats:?}");
    Ok(())
}
