//! Redis delivery: each verified event is added to the Redis stream (with
//! the shared dedupe check) before the answer; workers elsewhere handle it.
//! See the [`redis`](crate::redis) module.

use super::{Delivered, Delivery};
use crate::error::Result;
use crate::event::WasenderWebhookEvent;
use crate::redis::{Appended, RedisAppender, RedisAppenderOptions};

/// Adds events to Redis on the connection thread; runs no handler.
pub(crate) struct RedisDelivery {
    appender: RedisAppender,
}

impl RedisDelivery {
    /// Prepares the connection pool, and says (in the log) whether Redis
    /// answers now. A Redis that is down does not stop the listener: events
    /// are answered 503 until it is back.
    pub fn connect(options: &RedisAppenderOptions) -> Result<Self> {
        let appender = RedisAppender::connect(options.clone())?;
        if let Err(e) = appender.ping() {
            log::warn!("Redis does not answer yet ({e}); events are answered 503 until it does");
        }
        Ok(Self { appender })
    }

    /// The mode, for the start-up log line.
    pub fn describe(options: &RedisAppenderOptions) -> String {
        let redis = options.redis();
        format!(
            "Redis ({}, stream {})",
            redis.redacted_url(),
            redis.events_key()
        )
    }
}

impl Delivery for RedisDelivery {
    fn deliver(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered {
        match self.appender.append(&event, body) {
            Ok(Appended::Added(_)) => Delivered::Queued,
            Ok(Appended::Duplicate) => Delivered::Duplicate,
            Err(e) => Delivered::Unavailable(e.to_string()),
        }
    }
}
