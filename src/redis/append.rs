//! The listener side: [`RedisAppender`] adds verified events to the stream,
//! deduplicated across every listener in one atomic step.

use ::redis::{ErrorKind, RedisError, Script, Value};

use super::connection::{failure_class, Connector, Pool, Pooled};
use super::entry::{self, now_ms};
use super::options::RedisAppenderOptions;
use crate::error::{Result, WasenderError};
use crate::event::WasenderWebhookEvent;

/// The dedupe check and the append, as one atomic step.
///
/// `KEYS[1]` the events stream; `KEYS[2]`, when present, the dedupe key.
/// `ARGV[1]` the dedupe TTL in ms, `ARGV[2]` the `MAXLEN ~` cap (`0`: none),
/// `ARGV[3..]` the entry's fields and values. Returns the new entry's id, or
/// `0` when the dedupe key was already set. A failed `XADD` removes the dedupe
/// key it set, so a duplicate answer never hides an event that is not in
/// the stream. (Redis refuses a script for lack of memory only at its first
/// write — the `SET` — so once `SET` is done, `XADD` is not refused for it.)
const APPEND_SCRIPT: &str = r"
if KEYS[2] then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
    return 0
  end
end
local xadd = {'XADD', KEYS[1]}
if ARGV[2] ~= '0' then
  xadd[#xadd + 1] = 'MAXLEN'
  xadd[#xadd + 1] = '~'
  xadd[#xadd + 1] = ARGV[2]
end
xadd[#xadd + 1] = '*'
for i = 3, #ARGV do
  xadd[#xadd + 1] = ARGV[i]
end
local added = redis.pcall(unpack(xadd))
if type(added) == 'table' and added.err then
  if KEYS[2] then
    redis.call('DEL', KEYS[2])
  end
end
return added
";

/// What became of an appended event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Added to the stream with this entry id.
    Added(String),
    /// Its dedupe key was seen within the dedupe window (by any listener):
    /// not added again.
    Duplicate,
}

/// Adds verified events to the Redis stream: the listener's side of Redis
/// delivery, usable on its own behind another HTTP server.
///
/// [`append`](Self::append) runs one Lua script that sets the dedupe key
/// (`SET <prefix>:seen:<key> 1 NX PX <ttl>`) and adds the entry
/// (`XADD <prefix>:events [MAXLEN ~ n] * …`) atomically, then, when
/// configured, waits for replicas (`WAIT`). Safe to share between threads:
/// it keeps a bounded pool of connections.
///
/// ```no_run
/// use wasenderapi::redis::{Appended, RedisAppender, RedisOptions};
/// use wasenderapi::WebhookVerifier;
///
/// let verifier = WebhookVerifier::with_secret("webhook-secret");
/// // `RedisAppenderOptions` for more than the connection: dedupe time, WAIT, pool size.
/// let appender = RedisAppender::connect(RedisOptions::new("redis://127.0.0.1:6379/"))?;
/// // In your own HTTP server, with the raw body and the X-Webhook-Signature header:
/// let (body, signature) = (br#"{"event":"session.status","data":{}}"#, Some("webhook-secret"));
/// let event = verifier.handle_webhook_event(body, signature)?;
/// match appender.append(&event, body)? {
///     Appended::Added(entry_id) => println!("stored as {entry_id}: answer 200"),
///     Appended::Duplicate => println!("seen before: answer 200"),
/// }
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
pub struct RedisAppender {
    pool: Pool,
    script: Script,
    events_key: String,
    options: RedisAppenderOptions,
    listener_id: String,
}

impl std::fmt::Debug for RedisAppender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAppender")
            .field("options", &self.options)
            .field("listener_id", &self.listener_id)
            .finish_non_exhaustive()
    }
}

impl RedisAppender {
    /// Checks `options` ([`RedisAppenderOptions`], or a
    /// [`RedisOptions`](super::RedisOptions) for the appender's defaults) and
    /// prepares the connection pool. Connections are opened on first use, so
    /// this succeeds while Redis is down (appends then fail until it is back).
    ///
    /// Errors: [`WasenderError::InvalidArgument`] for an unusable URL,
    /// prefix, timeout or pool size.
    pub fn connect(options: impl Into<RedisAppenderOptions>) -> Result<Self> {
        let options = options.into();
        options.validate()?;
        let connector = Connector::new(&options.redis)?;
        Ok(Self {
            pool: Pool::new(connector, options.pool_size),
            script: Script::new(APPEND_SCRIPT),
            events_key: options.redis.events_key(),
            listener_id: options.listener_id_or_default(),
            options,
        })
    }

    /// Sends `PING`: whether Redis answers now.
    pub fn ping(&self) -> Result<()> {
        let mut connection = self.pool.get().map_err(|e| redis_error("PING", e))?;
        connection
            .run(|c| ::redis::cmd("PING").query::<Value>(c))
            .map(drop)
            .map_err(|e| redis_error("PING", e))
    }

    /// Adds one verified event (its name, dedupe key and raw body) to the
    /// stream, unless its [dedupe key](WasenderWebhookEvent::dedupe_key) was
    /// seen within the [dedupe time](RedisAppenderOptions::dedupe_ttl): the
    /// key every delivery mode uses, so listeners recognise each other's
    /// repeats. Returns once Redis has it (and, with
    /// [`wait_replicas`](RedisAppenderOptions::wait_replicas), once enough
    /// replicas confirmed it).
    ///
    /// Errors: [`WasenderError::Redis`] when Redis is unreachable, slower
    /// than the command timeout, out of memory or refuses the command;
    /// [`WasenderError::RedisReplicas`] when `WAIT` fell short (the dedupe
    /// key is then removed again, so that the sender's retry is added anew).
    /// On any error, answer 503: the event may or may not be in the stream,
    /// and the sender's retry is either added or recognised as a duplicate.
    pub fn append(&self, event: &WasenderWebhookEvent, body: &[u8]) -> Result<Appended> {
        let dedupe_key = event.dedupe_key(body);
        let event_name = event.event_name();
        let seen_key = self.options.redis.seen_key(&dedupe_key);
        let dedupe = !self.options.dedupe_ttl.is_zero();
        let mut invocation = self.script.key(&self.events_key);
        if dedupe {
            invocation.key(&seen_key);
        }
        let ttl_ms =
            u64::try_from(self.options.dedupe_ttl.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        invocation
            .arg(ttl_ms)
            .arg(self.options.max_stream_len.unwrap_or(0))
            .arg(entry::BODY)
            .arg(body)
            .arg(entry::EVENT)
            .arg(event_name)
            .arg(entry::RECEIVED_MS)
            .arg(now_ms())
            .arg(entry::DEDUPE_KEY)
            .arg(dedupe_key)
            .arg(entry::LISTENER)
            .arg(&self.listener_id);
        let mut connection = self.pool.get().map_err(|e| redis_error("append", e))?;
        // On a connection found closed, sent once more on a new one: safe,
        // as the script is atomic, and with dedupe a retry of an append that
        // did run is a duplicate.
        let added = connection
            .run(|c| invocation.invoke::<Value>(c))
            .map_err(|e| redis_error("append", e))?;
        let id = match added {
            Value::Int(0) => return Ok(Appended::Duplicate),
            value => entry::value_bytes(value)
                .and_then(|id| String::from_utf8(id).ok())
                .ok_or_else(|| {
                    redis_error(
                        "append",
                        RedisError::from((
                            ErrorKind::UnexpectedReturnType,
                            "the append script answered something other than an entry id",
                        )),
                    )
                })?,
        };
        if self.options.wait_replicas > 0 {
            self.wait(&mut connection, dedupe.then_some(seen_key.as_str()))?;
        }
        Ok(Appended::Added(id))
    }

    /// `WAIT n timeout` on the connection that appended (never on another:
    /// there it would wait for nothing); too few replicas removes the
    /// dedupe key and fails.
    fn wait(&self, connection: &mut Pooled<'_>, seen_key: Option<&str>) -> Result<()> {
        let wanted = self.options.wait_replicas;
        let timeout = self.options.wait_timeout;
        let timeout_ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let read_timeout = timeout + self.pool.connector().command_timeout();
        let command_timeout = self.pool.connector().command_timeout();
        let acknowledged = connection
            .run_once(|c| {
                c.set_read_timeout(Some(read_timeout))?;
                let acknowledged = ::redis::cmd("WAIT")
                    .arg(wanted)
                    .arg(timeout_ms)
                    .query::<u64>(c)?;
                c.set_read_timeout(Some(command_timeout))?;
                Ok(acknowledged)
            })
            .map_err(|e| redis_error("WAIT", e))?;
        if acknowledged >= u64::from(wanted) {
            return Ok(());
        }
        if let Some(seen_key) = seen_key {
            // Best effort: if this fails too, the retry is answered as a duplicate
            // of an entry that is on the primary (see the module docs).
            let forgot = connection.run(|c| ::redis::cmd("DEL").arg(seen_key).query::<Value>(c));
            if let Err(e) = forgot {
                log::warn!("could not forget a dedupe key after WAIT fell short: {e}");
            }
        }
        Err(WasenderError::RedisReplicas {
            wanted,
            acknowledged: u32::try_from(acknowledged).unwrap_or(u32::MAX),
        })
    }
}

/// Wraps a `redis` error, logging its class.
pub(crate) fn redis_error(operation: &'static str, source: ::redis::RedisError) -> WasenderError {
    log::debug!("Redis {operation}: {} ({source})", failure_class(&source));
    WasenderError::Redis { operation, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn connect_succeeds_while_redis_is_down_and_append_fails_unavailable() {
        let options = crate::redis::RedisOptions::new("redis://127.0.0.1:1/")
            .connect_timeout(Duration::from_millis(100));
        let appender = RedisAppender::connect(options).unwrap();
        let body = br#"{"event":"messages.received","data":{}}"#;
        let event = crate::event::parse_event(body).unwrap();
        let error = appender.append(&event, body).unwrap_err();
        assert!(
            matches!(
                error,
                WasenderError::Redis {
                    operation: "append",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn invalid_options_are_refused_at_connect() {
        let options = crate::redis::RedisOptions::new("redis://127.0.0.1/").prefix("no-tag");
        assert!(matches!(
            RedisAppender::connect(options),
            Err(WasenderError::InvalidArgument(_))
        ));
    }
}
