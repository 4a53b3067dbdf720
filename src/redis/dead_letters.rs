//! [`RedisDeadLetters`]: list, requeue and purge the dead-letter stream.

use ::redis::streams::StreamRangeReply;
use ::redis::{Connection, Script, Value};

use super::append::redis_error;
use super::connection::Connector;
use super::entry::{self, Entry};
use super::options::RedisOptions;
use crate::error::Result;

/// Moves one dead letter back to the events stream, atomically: adds its
/// original fields (without the dead-letter ones, plus `requeued_from`) to
/// the events stream — no dedupe check — and deletes the dead letter, so a
/// second requeue of the same id finds nothing.
///
/// `KEYS[1]` the dead-letter stream, `KEYS[2]` the events stream; `ARGV[1]`
/// the dead letter's id, `ARGV[2]` the `MAXLEN ~` cap (`0`: none). Returns
/// the new entry's id, or `0` when the dead letter is gone.
const REQUEUE_SCRIPT: &str = r"
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  return 0
end
local skip = {error = true, attempts = true, original_id = true, dead_ms = true,
              consumer = true, requeued_from = true}
local xadd = {'XADD', KEYS[2]}
if ARGV[2] ~= '0' then
  xadd[#xadd + 1] = 'MAXLEN'
  xadd[#xadd + 1] = '~'
  xadd[#xadd + 1] = ARGV[2]
end
xadd[#xadd + 1] = '*'
local fields = found[1][2]
for i = 1, #fields, 2 do
  if not skip[fields[i]] then
    xadd[#xadd + 1] = fields[i]
    xadd[#xadd + 1] = fields[i + 1]
  end
end
xadd[#xadd + 1] = 'requeued_from'
xadd[#xadd + 1] = ARGV[1]
local added = redis.call(unpack(xadd))
redis.call('XDEL', KEYS[1], ARGV[1])
return added
";

/// Deletes the dead-letter stream and returns how many entries it held.
const PURGE_SCRIPT: &str = r"
local n = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
";

/// How many dead letters one `XRANGE` page reads.
const PAGE: usize = 100;

/// One entry of the dead-letter stream: an event the workers gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisDeadLetter {
    /// Its id in the dead-letter stream (what [`RedisDeadLetters::requeue`] takes).
    pub id: String,
    /// Its id in the events stream when it was given up on.
    pub original_id: String,
    /// The raw event body as received.
    pub body: Vec<u8>,
    /// The event name (`messages.received`, …).
    pub event: String,
    /// The handler's last error (or why the entry could not be handled).
    pub error: String,
    /// Deliveries made before giving up.
    pub attempts: u64,
    /// When the listener received it, in milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// When it was given up on, in milliseconds since the Unix epoch.
    pub dead_ms: u64,
    /// The dedupe key the listener computed.
    pub dedupe_key: String,
    /// The worker (consumer name) that gave up on it.
    pub consumer: String,
}

impl RedisDeadLetter {
    fn from_entry(entry: &Entry) -> Self {
        let text = |name| entry.text(name).unwrap_or("").to_owned();
        let number = |name| entry.number(name).unwrap_or(0);
        Self {
            id: entry.id.clone(),
            original_id: text(entry::ORIGINAL_ID),
            body: entry.field(entry::BODY).unwrap_or_default().to_vec(),
            event: text(entry::EVENT),
            error: text(entry::ERROR),
            attempts: number(entry::ATTEMPTS),
            received_ms: number(entry::RECEIVED_MS),
            dead_ms: number(entry::DEAD_MS),
            dedupe_key: text(entry::DEDUPE_KEY),
            consumer: text(entry::CONSUMER),
        }
    }
}

/// The dead-letter tools for Redis delivery: list the events the workers
/// gave up on, requeue them (after fixing the handler), or purge them.
///
/// ```no_run
/// use wasenderapi::redis::{RedisDeadLetters, RedisOptions};
///
/// let mut dead = RedisDeadLetters::connect(&RedisOptions::new("redis://127.0.0.1:6379/"))?;
/// for letter in dead.list(None, 20)? {
///     println!("{} {} after {} attempts: {}", letter.id, letter.event, letter.attempts, letter.error);
/// }
/// let requeued = dead.requeue_all()?; // handled again by the workers
/// println!("requeued {requeued}");
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
pub struct RedisDeadLetters {
    connection: Connection,
    options: RedisOptions,
    requeue: Script,
}

impl std::fmt::Debug for RedisDeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDeadLetters")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisDeadLetters {
    /// Connects to the Redis in `options`.
    ///
    /// Errors: [`WasenderError::InvalidArgument`](crate::WasenderError::InvalidArgument)
    /// for unusable options, [`WasenderError::Redis`](crate::WasenderError::Redis)
    /// when Redis cannot be reached.
    pub fn connect(options: &RedisOptions) -> Result<Self> {
        options.validate()?;
        let connection = Connector::new(options)?
            .connect()
            .map_err(|e| redis_error("connect", e))?;
        Ok(Self {
            connection,
            options: options.clone(),
            requeue: Script::new(REQUEUE_SCRIPT),
        })
    }

    /// How many dead letters there are (`XLEN`).
    pub fn count(&mut self) -> Result<u64> {
        ::redis::cmd("XLEN")
            .arg(self.options.dead_key())
            .query(&mut self.connection)
            .map_err(|e| redis_error("XLEN", e))
    }

    /// Up to `limit` dead letters, oldest first, starting after the id
    /// `after` (pass the last id of one page to get the next; `None` starts
    /// at the oldest).
    pub fn list(&mut self, after: Option<&str>, limit: usize) -> Result<Vec<RedisDeadLetter>> {
        // "(" makes the start exclusive.
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let reply: StreamRangeReply = ::redis::cmd("XRANGE")
            .arg(self.options.dead_key())
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query(&mut self.connection)
            .map_err(|e| redis_error("XRANGE", e))?;
        Ok(reply
            .ids
            .into_iter()
            .map(|id| RedisDeadLetter::from_entry(&Entry::from_stream_id(id)))
            .collect())
    }

    /// Moves dead letter `id` back to the events stream, where a worker
    /// handles it as a new entry (a fresh delivery count; no dedupe check).
    /// The dead letter is deleted in the same atomic step, so requeueing the
    /// same id twice adds it once. Returns the new entry's id, or `None`
    /// when there is no such dead letter (any more).
    pub fn requeue(&mut self, id: &str) -> Result<Option<String>> {
        let added: Value = self
            .requeue
            .key(self.options.dead_key())
            .key(self.options.events_key())
            .arg(id)
            .arg(self.options.max_stream_len.unwrap_or(0))
            .invoke(&mut self.connection)
            .map_err(|e| redis_error("requeue", e))?;
        Ok(match added {
            Value::Int(0) => None,
            value => entry::value_bytes(value).and_then(|id| String::from_utf8(id).ok()),
        })
    }

    /// Requeues every dead letter present when the call starts (those added
    /// while it runs are left for the next call). Returns how many were requeued.
    pub fn requeue_all(&mut self) -> Result<usize> {
        let Some(last) = self.newest_id()? else {
            return Ok(0);
        };
        let mut requeued = 0;
        loop {
            // Requeued letters are deleted, so each page starts at the oldest left.
            let page = self.list(None, PAGE)?;
            let ids: Vec<String> = page
                .into_iter()
                .map(|letter| letter.id)
                .filter(|id| !is_after(id, &last))
                .collect();
            if ids.is_empty() {
                return Ok(requeued);
            }
            for id in ids {
                if self.requeue(&id)?.is_some() {
                    requeued += 1;
                }
            }
        }
    }

    /// Deletes dead letter `id` without requeueing it. Returns whether it existed.
    pub fn remove(&mut self, id: &str) -> Result<bool> {
        let removed: u64 = ::redis::cmd("XDEL")
            .arg(self.options.dead_key())
            .arg(id)
            .query(&mut self.connection)
            .map_err(|e| redis_error("XDEL", e))?;
        Ok(removed > 0)
    }

    /// Deletes every dead letter. Returns how many there were.
    pub fn purge(&mut self) -> Result<u64> {
        Script::new(PURGE_SCRIPT)
            .key(self.options.dead_key())
            .invoke(&mut self.connection)
            .map_err(|e| redis_error("purge", e))
    }

    fn newest_id(&mut self) -> Result<Option<String>> {
        let reply: StreamRangeReply = ::redis::cmd("XREVRANGE")
            .arg(self.options.dead_key())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query(&mut self.connection)
            .map_err(|e| redis_error("XREVRANGE", e))?;
        Ok(reply.ids.into_iter().next().map(|id| id.id))
    }
}

/// Whether stream id `a` comes after `b` (ids compare as `(ms, seq)` pairs).
fn is_after(a: &str, b: &str) -> bool {
    fn parts(id: &str) -> (u64, u64) {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
    }
    parts(a) > parts(b)
}

#[cfg(test)]
mod tests {
    use super::{is_after, REQUEUE_SCRIPT};
    use crate::redis::entry;

    #[test]
    fn the_requeue_script_drops_exactly_the_dead_letter_fields() {
        for field in entry::DEAD_ONLY.iter().chain([&entry::REQUEUED_FROM]) {
            assert!(
                REQUEUE_SCRIPT.contains(&format!("{field} = true")),
                "{field} is not skipped"
            );
        }
        assert!(REQUEUE_SCRIPT.contains(&format!("'{}'", entry::REQUEUED_FROM)));
    }

    #[test]
    fn ids_compare_numerically() {
        assert!(is_after("10-0", "9-5"));
        assert!(is_after("9-10", "9-9"));
        assert!(!is_after("9-9", "9-9"));
    }
}
