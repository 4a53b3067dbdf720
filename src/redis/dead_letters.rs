//! [`RedisDeadLetters`]: list, requeue and purge the dead-letter stream.

use ::redis::streams::StreamRangeReply;
use ::redis::{RedisResult, Script, Value};

use super::append::redis_error;
use super::connection::{Connector, LazyConnection};
use super::entry::{self, Entry};
use super::options::RedisOptions;
use crate::error::Result;
use crate::handler::{DeadLetter, DeadLetterId, LastCall};

/// Moves one dead letter back to the events stream, atomically: adds its
/// original fields (without the dead-letter ones, plus `requeued_from`) to
/// the events stream — no dedupe check — and deletes the dead letter, so a
/// second requeue of the same id finds nothing.
///
/// `KEYS[1]` the dead-letter stream, `KEYS[2]` the events stream; `ARGV[1]`
/// the dead letter's id. Returns the new entry's id, or `0` when the dead
/// letter is gone.
const REQUEUE_SCRIPT: &str = r"
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  return 0
end
local skip = {error = true, attempts = true, last_call = true, original_id = true,
              dead_ms = true, consumer = true, requeued_from = true}
local xadd = {'XADD', KEYS[2], '*'}
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

/// The [`DeadLetter`] an entry of the dead-letter stream holds. Fields that
/// are missing or unreadable read as empty or zero (an entry written by
/// hand, or by an older release: `last_call` then reads as `failed`).
pub(crate) fn letter_from_entry(entry: &Entry) -> DeadLetter {
    let text = |name| entry.text(name).unwrap_or("").to_owned();
    let attempts = u32::try_from(entry.number(entry::ATTEMPTS).unwrap_or(0)).unwrap_or(u32::MAX);
    let last_call = entry
        .text(entry::LAST_CALL)
        .and_then(LastCall::from_name)
        .unwrap_or(if attempts == 0 {
            LastCall::NotBegun
        } else {
            LastCall::Failed
        });
    let mut letter = DeadLetter::given_up(
        DeadLetterId::Entry {
            id: entry.id.clone(),
            original_id: text(entry::ORIGINAL_ID),
        },
        entry.field(entry::BODY).unwrap_or_default().to_vec(),
        attempts,
        last_call,
        text(entry::ERROR),
    );
    letter.time_unix_ms = entry.number(entry::DEAD_MS).unwrap_or(0);
    letter.received_unix_ms = entry.number(entry::RECEIVED_MS);
    letter.worker = entry.text(entry::CONSUMER).map(str::to_owned);
    letter
}

/// The dead-letter tools for Redis delivery: list the events the workers
/// gave up on, requeue them (after fixing the handler), or purge them.
///
/// ```no_run
/// use wasenderapi::redis::{RedisDeadLetters, RedisOptions};
///
/// let mut dead = RedisDeadLetters::connect(&RedisOptions::new("redis://127.0.0.1:6379/"))?;
/// for letter in dead.list(None, 20)? {
///     // "1718000000000-0 messages.received: 5 handler calls began; the last …"
///     println!("{} {}: {letter}", letter.id, letter.event_name().unwrap_or_default());
/// }
/// let requeued = dead.requeue_all()?; // handled again by the workers
/// println!("requeued {requeued}");
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
pub struct RedisDeadLetters {
    connection: LazyConnection,
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
        let mut connection = Connector::new(options)?.lazy();
        connection
            .run(|c| ::redis::cmd("PING").query::<Value>(c))
            .map_err(|e| redis_error("connect", e))?;
        Ok(Self {
            connection,
            options: options.clone(),
            requeue: Script::new(REQUEUE_SCRIPT),
        })
    }

    /// Runs `command` on the connection (reopened when it was closed).
    fn run<T>(
        &mut self,
        what: &'static str,
        command: impl FnMut(&mut ::redis::Connection) -> RedisResult<T>,
    ) -> Result<T> {
        self.connection
            .run(command)
            .map_err(|e| redis_error(what, e))
    }

    /// How many dead letters there are (`XLEN`).
    pub fn count(&mut self) -> Result<u64> {
        let key = self.options.dead_key();
        self.run("XLEN", |c| ::redis::cmd("XLEN").arg(&key).query(c))
    }

    /// Up to `limit` dead letters, oldest first, starting after the id
    /// `after` (pass the last id of one page to get the next; `None` starts
    /// at the oldest).
    pub fn list(&mut self, after: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        // "(" makes the start exclusive.
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let key = self.options.dead_key();
        let reply: StreamRangeReply = self.run("XRANGE", |c| {
            ::redis::cmd("XRANGE")
                .arg(&key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .query(c)
        })?;
        Ok(reply
            .ids
            .into_iter()
            .map(|id| letter_from_entry(&Entry::from_stream_id(id)))
            .collect())
    }

    /// Moves dead letter `id` (its [`DeadLetterId::entry_id`]) back to the
    /// events stream, where a worker handles it as a new entry (attempts
    /// start again from none; no dedupe check, and no `MAXLEN` cap). The dead
    /// letter is deleted in the same atomic step, so requeueing the same id
    /// twice adds it once. Returns the new entry's id, or `None` when there
    /// is no such dead letter (any more).
    pub fn requeue(&mut self, id: &str) -> Result<Option<String>> {
        let mut invocation = self.requeue.key(self.options.dead_key());
        invocation.key(self.options.events_key()).arg(id);
        let added: Value = self
            .connection
            .run(|c| invocation.invoke(c))
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
                .iter()
                .filter_map(|letter| letter.id.entry_id())
                .filter(|id| !is_after(id, &last))
                .map(str::to_owned)
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
        let key = self.options.dead_key();
        let removed: u64 = self.run("XDEL", |c| ::redis::cmd("XDEL").arg(&key).arg(id).query(c))?;
        Ok(removed > 0)
    }

    /// Deletes every dead letter. Returns how many there were.
    pub fn purge(&mut self) -> Result<u64> {
        let script = Script::new(PURGE_SCRIPT);
        let invocation = script.key(self.options.dead_key());
        self.run("purge", |c| invocation.invoke(c))
    }

    fn newest_id(&mut self) -> Result<Option<String>> {
        let key = self.options.dead_key();
        let reply: StreamRangeReply = self.run("XREVRANGE", |c| {
            ::redis::cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(c)
        })?;
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
