//! An echo bot: the bundled webhook listener receives WhatsApp messages and a
//! handler answers every incoming text message through the REST client.
//!
//! ```sh
//! WASENDER_API_KEY=… WASENDER_WEBHOOK_SECRET=… PORT=3000 \
//!     cargo run --example echo_bot
//! ```
//!
//! Point the session's webhook at `http://<your-host>:3000/webhook` and
//! subscribe it to `messages.received` (or `messages.upsert`). Optional:
//! `WASENDER_BASE_URL` (another API endpoint), `RUST_LOG` (default `info`;
//! `debug` shows every event). Stop it with Ctrl-C or `kill -TERM <pid>`.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use wasenderapi::{WasenderSyncClient, WebhookEvent, WebhookHandler, WebhookListener};

use wasenderapi::event::{MessagesData, WebhookMessage};

/// How many recent message ids are remembered to skip duplicate deliveries.
const REMEMBERED_IDS: usize = 4096;

struct EchoBot {
    client: WasenderSyncClient,
    /// Recently answered `key.id`s: the same message can arrive twice (once per
    /// subscribed event, and deliveries are at-least-once).
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl EchoBot {
    /// Whether `id` is new (and remembers it).
    fn first_time(&self, id: &str) -> bool {
        let Ok(mut guard) = self.seen.lock() else {
            return true;
        };
        let (set, order) = &mut *guard;
        if !set.insert(id.to_owned()) {
            return false;
        }
        order.push_back(id.to_owned());
        if order.len() > REMEMBERED_IDS {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    fn answer(&self, event: &WebhookEvent<MessagesData>) {
        for message in event.data().iter().flat_map(|d| d.messages()) {
            self.echo(message);
        }
    }

    fn echo(&self, message: &WebhookMessage) {
        if message.is_from_me() {
            return; // our own messages come back as events too
        }
        let (Some(id), Some(text)) = (message.id(), message.text()) else {
            return;
        };
        if !self.first_time(id) {
            return;
        }
        match self
            .client
            .reply_text(message, &format!("You said: {text}"))
        {
            Ok(sent) => log::info!(
                "replied to {} (msgId {:?}, {:?} requests left)",
                message.sender_phone().as_deref().unwrap_or("?"),
                sent.msg_id(),
                sent.rate_limit.and_then(|r| r.remaining)
            ),
            // Logged, not returned: an error would make the listener answer 500
            // and the event could be delivered (and answered) again.
            Err(e) => log::warn!("could not reply to {id}: {e}"),
        }
    }
}

impl WebhookHandler for EchoBot {
    type Error = std::convert::Infallible;

    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
        self.answer(event);
        Ok(())
    }

    fn on_messages_upsert(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Self::Error> {
        self.answer(event);
        Ok(())
    }

    fn on_messages_personal_received(
        &self,
        event: &WebhookEvent<MessagesData>,
    ) -> Result<(), Self::Error> {
        self.answer(event);
        Ok(())
    }

    fn on_messages_group_received(
        &self,
        event: &WebhookEvent<MessagesData>,
    ) -> Result<(), Self::Error> {
        self.answer(event);
        Ok(())
    }
}

fn required(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("{name} is not set: set it and start again").into())
}

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_bot: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = WasenderSyncClient::builder(required("WASENDER_API_KEY")?)
        .webhook_secret(required("WASENDER_WEBHOOK_SECRET")?);
    if let Ok(base_url) = std::env::var("WASENDER_BASE_URL") {
        builder = builder.base_url(base_url);
    }
    let client = builder.build();
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port} is not a port number"))?,
        Err(_) => 3000,
    };

    let bot = EchoBot {
        // Clones share one HTTP agent: the listener verifies with it, the bot replies with it.
        client: client.clone(),
        seen: Mutex::new((HashSet::new(), VecDeque::new())),
    };
    // Runs until SIGTERM or Ctrl-C, then finishes the replies in flight and exits 0.
    let stats = WebhookListener::builder(client, bot)
        .bind(format!("0.0.0.0:{port}"))
        .path("/webhook")
        .spawn()?
        .run_until_signal()?;
    log::info!("bye: {} events handled", stats.handled);
    Ok(())
}
