//! A worker for Redis delivery: handles the events that listeners in Redis
//! mode added to the stream, logging one line per event.
//!
//! ```text
//! WASENDER_REDIS_URL=redis://127.0.0.1:6379/ cargo run --example redis_worker --features redis
//! ```
//!
//! Environment: `WASENDER_REDIS_URL` (default `redis://127.0.0.1:6379/`),
//! `WASENDER_HANDLER_THREADS` (default 16: a worker reads at most one entry
//! per idle thread, see `RedisWorkerBuilder::handler_threads`), `WASENDER_CONSUMER` (default: host
//! name and process id), `WASENDER_RUN_SECONDS` (stop gracefully after that
//! long; default: until SIGTERM or Ctrl-C), `RUST_LOG` (default `info`).
//!
//! Run as many as you like, on as many machines. A worker that is killed
//! leaves the entries it held pending; the others take them over after the
//! claim idle time (60 s by default), and remove it from the consumer group
//! once it holds nothing. A worker stopped with SIGTERM hands back what it
//! holds and leaves the group itself.

use std::time::Duration;

use wasenderapi::event::MessagesData;
use wasenderapi::redis::{RedisOptions, RedisWorker};
use wasenderapi::{WebhookEvent, WebhookHandler};

/// Logs each event as one line.
struct LogEvents;

impl LogEvents {
    fn messages(event: &WebhookEvent<MessagesData>) -> Result<(), String> {
        // Session ids may be API keys: log their first four characters only.
        let session: String = event.session_id().unwrap_or("-").chars().take(4).collect();
        for m in event.data().iter().flat_map(|d| d.messages()) {
            log::info!(
                "{} (session {session}) from {}: {:?}",
                event.event_name(),
                m.sender_phone().as_deref().unwrap_or("?"),
                m.text().unwrap_or("(no text)")
            );
        }
        Ok(())
    }
}

impl WebhookHandler for LogEvents {
    type Error = String;

    fn on_messages_upsert(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        Self::messages(e)
    }
    fn on_messages_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        Self::messages(e)
    }
    fn on_messages_personal_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        Self::messages(e)
    }
    fn on_messages_group_received(&self, e: &WebhookEvent<MessagesData>) -> Result<(), String> {
        Self::messages(e)
    }
    fn on_unknown(&self, e: &WebhookEvent<serde_json::Value>) -> Result<(), String> {
        log::info!("{}: an event this crate does not know yet", e.event_name());
        Ok(())
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let url = env_or("WASENDER_REDIS_URL", "redis://127.0.0.1:6379/");
    let threads = match std::env::var("WASENDER_HANDLER_THREADS") {
        Ok(threads) => threads.parse()?,
        Err(_) => wasenderapi::redis::DEFAULT_WORKER_HANDLER_THREADS,
    };
    let run_for = match std::env::var("WASENDER_RUN_SECONDS") {
        Ok(seconds) => Some(Duration::from_secs(seconds.parse()?)),
        Err(_) => None,
    };

    let mut builder =
        RedisWorker::builder(RedisOptions::new(url), LogEvents).handler_threads(threads);
    if let Ok(name) = std::env::var("WASENDER_CONSUMER") {
        builder = builder.consumer_name(name);
    }
    let worker = builder.spawn()?;
    log::info!("worker {} started", worker.consumer_name());

    let stats = match run_for {
        // A bounded run (demos, tests): stop gracefully after that long.
        Some(limit) => {
            std::thread::sleep(limit);
            worker.shutdown()
        }
        // Until SIGTERM or Ctrl-C; a second signal stops at once.
        None => worker.run_until_signal()?,
    };
    log::info!("stopped: {stats:?}");
    Ok(())
}
