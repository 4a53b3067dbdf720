//! The worker's handler threads: run the handler on one entry, then hand it
//! to the acknowledger, retry it, or move it to the dead-letter stream.

use std::time::Duration;

use ::redis::{Connection, RedisError, Value};

use super::connection::{breaks_connection, failure_class, is_stale};
use super::entry::{self, now_ms, Entry};
use super::reading::millis;
use super::worker::{Counters, Job, Shared};
use crate::event::parse_event;
use crate::handler::{dispatch_guarded, WebhookHandler};

/// Moves a pending entry to the dead-letter stream and acknowledges it, in
/// one atomic step — but only while it is still pending on this consumer
/// (another worker may have taken it over meanwhile).
///
/// `KEYS[1]` the events stream, `KEYS[2]` the dead-letter stream; `ARGV[1]`
/// the group, `ARGV[2]` the entry id, `ARGV[3]` this consumer, `ARGV[4..]`
/// the dead letter's fields. Returns the dead letter's id, or `0`.
pub(crate) const DEAD_LETTER_SCRIPT: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then
  return 0
end
local dead = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return dead
";

/// The longest handler error text kept in a dead letter.
const MAX_ERROR_BYTES: usize = 8 * 1024;

/// A handler thread: takes entries until the worker stops.
pub(crate) fn run<H: WebhookHandler>(shared: &Shared, handler: &H) {
    let mut thread = HandlerThread {
        shared,
        connection: None,
    };
    while let Some(job) = shared.next_job() {
        thread.handle(handler, job);
        shared.job_done();
    }
}

struct HandlerThread<'a> {
    shared: &'a Shared,
    connection: Option<Connection>,
}

impl HandlerThread<'_> {
    fn handle<H: WebhookHandler>(&mut self, handler: &H, job: Job) {
        let shared = self.shared;
        let Job {
            entry,
            mut deliveries,
        } = job;
        let max = u64::from(shared.options.retry.attempts());
        if deliveries > max {
            let error = format!(
                "delivered {deliveries} times without being acknowledged (the consumers \
                 handling it crashed or stalled)"
            );
            self.dead_letter(&entry, &error, deliveries);
            return;
        }
        let event = match entry.field(entry::BODY) {
            None => Err("the entry has no body field".to_owned()),
            Some(body) => {
                parse_event(body).map_err(|e| format!("the entry's body is not an event: {e}"))
            }
        };
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                self.dead_letter(&entry, &error, deliveries);
                return;
            }
        };
        loop {
            let error = match dispatch_guarded(handler, &event) {
                Ok(()) => {
                    Counters::add(&shared.counters.handled, 1);
                    shared.acknowledge(entry.id);
                    return;
                }
                Err(failure) => {
                    let counter = if failure.panicked {
                        &shared.counters.handler_panics
                    } else {
                        &shared.counters.handler_errors
                    };
                    Counters::add(counter, 1);
                    failure.text
                }
            };
            if deliveries >= max {
                self.dead_letter(&entry, &error, deliveries);
                return;
            }
            let attempt = u32::try_from(deliveries).unwrap_or(u32::MAX);
            let delay = shared.options.backoff(attempt);
            log::warn!(
                "webhook {} (entry {}) failed on attempt {deliveries} of {max}: {error}; \
                 retrying in {delay:?}",
                event.event_name(),
                entry.id
            );
            if !shared.sleep_unless_stopping(delay) {
                Counters::add(&shared.counters.left_pending, 1);
                log::info!("entry {} left pending at shutdown; retried later", entry.id);
                return;
            }
            match self.reclaim(&entry.id, delay / 2) {
                Ok(true) => {
                    Counters::add(&shared.counters.retried, 1);
                    deliveries += 1;
                }
                Ok(false) => {
                    log::info!(
                        "entry {} was taken over by another consumer while waiting to retry",
                        entry.id
                    );
                    return;
                }
                Err(e) => {
                    log::warn!(
                        "entry {} left pending (Redis {}); another attempt follows after \
                         the claim idle time",
                        entry.id,
                        failure_class(&e)
                    );
                    return;
                }
            }
        }
    }

    /// `XCLAIM` for the next attempt: counts a delivery, and fails (`false`)
    /// when another consumer took the entry over (its idle time was reset).
    fn reclaim(&mut self, id: &str, min_idle: Duration) -> Result<bool, RedisError> {
        let shared = self.shared;
        let claimed: Value = self.command("XCLAIM", |c| {
            ::redis::cmd("XCLAIM")
                .arg(&shared.events_key)
                .arg(&shared.options.group)
                .arg(&shared.consumer)
                .arg(millis(min_idle))
                .arg(id)
                .query(c)
        })?;
        Ok(matches!(claimed, Value::Array(entries) if entries.iter().any(|e| *e != Value::Nil)))
    }

    /// Moves `entry` to the dead-letter stream (with the error, the attempts
    /// and its original id) and acknowledges it.
    fn dead_letter(&mut self, entry: &Entry, error: &str, attempts: u64) {
        let shared = self.shared;
        let error = truncate(error, MAX_ERROR_BYTES);
        log::error!(
            "webhook entry {} dead-lettered after {attempts} attempt(s): {error}",
            entry.id
        );
        let attempts_text = attempts.to_string();
        let dead_ms = now_ms().to_string();
        let mut invocation = shared.dead_letter_script.key(&shared.events_key);
        invocation
            .key(&shared.dead_key)
            .arg(&shared.options.group)
            .arg(&entry.id)
            .arg(&shared.consumer);
        for (name, value) in &entry.fields {
            if !entry::DEAD_ONLY.contains(&name.as_str()) {
                invocation.arg(name).arg(value);
            }
        }
        for (name, value) in [
            (entry::ERROR, error),
            (entry::ATTEMPTS, &attempts_text),
            (entry::ORIGINAL_ID, &entry.id),
            (entry::DEAD_MS, &dead_ms),
            (entry::CONSUMER, &shared.consumer),
        ] {
            invocation.arg(name).arg(value);
        }
        match self.command("dead-letter", |c| invocation.invoke::<Value>(c)) {
            Ok(Value::Int(0)) => log::info!(
                "entry {} was taken over by another consumer; not dead-lettered here",
                entry.id
            ),
            Ok(_) => Counters::add(&shared.counters.dead_lettered, 1),
            Err(e) => {
                log::warn!(
                    "entry {} could not be dead-lettered (Redis {}): {e}; it stays pending \
                     and is dead-lettered on its next delivery",
                    entry.id,
                    failure_class(&e)
                );
            }
        }
    }

    /// Runs one command on this thread's connection (opened when needed),
    /// once more on a new connection when the old one turns out closed
    /// (a Redis restart while it was idle). Failures are counted and logged.
    fn command<T>(
        &mut self,
        what: &str,
        run: impl Fn(&mut Connection) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let shared = self.shared;
        let reused = self.connection.is_some();
        let mut result = shared.connection(&mut self.connection).and_then(&run);
        if reused && matches!(&result, Err(e) if is_stale(e)) {
            self.connection = None;
            result = shared.connection(&mut self.connection).and_then(&run);
        }
        if let Err(e) = &result {
            Counters::add(&shared.counters.redis_errors, 1);
            log::debug!("Redis {what} failed: {e}");
            if breaks_connection(e) {
                self.connection = None;
            }
        }
        result
    }
}

/// At shutdown: makes fetched entries that were never started claimable by
/// other workers at once — `XCLAIM … IDLE <claim idle> RETRYCOUNT <count - 1>
/// JUSTID` keeps them pending on this consumer but marks them idle for the
/// whole claim time, and takes back the delivery that never ran. Best
/// effort: what fails is taken over after the claim idle time anyway.
pub(crate) fn release(shared: &Shared, jobs: &[Job]) {
    let Ok(mut connection) = shared.connector.connect() else {
        return;
    };
    for job in jobs {
        let released = ::redis::cmd("XCLAIM")
            .arg(&shared.events_key)
            .arg(&shared.options.group)
            .arg(&shared.consumer)
            .arg(0)
            .arg(&job.entry.id)
            .arg("IDLE")
            .arg(millis(shared.options.claim_idle))
            .arg("RETRYCOUNT")
            .arg(job.deliveries.saturating_sub(1))
            .arg("JUSTID")
            .query::<Value>(&mut connection);
        if let Err(e) = released {
            log::debug!("could not release entry {}: {e}", job.entry.id);
            return;
        }
    }
}

/// At shutdown: removes this consumer from the group when nothing is
/// pending on it, so that stopped workers do not pile up in `XINFO
/// CONSUMERS`. (A consumer with pending entries is kept: deleting it would
/// drop them from the pending list.)
pub(crate) fn forget_consumer_if_idle(shared: &Shared) {
    let Ok(mut connection) = shared.connector.connect() else {
        return;
    };
    let pending = ::redis::cmd("XPENDING")
        .arg(&shared.events_key)
        .arg(&shared.options.group)
        .arg("-")
        .arg("+")
        .arg(1)
        .arg(&shared.consumer)
        .query::<Vec<Value>>(&mut connection);
    if matches!(pending, Ok(p) if p.is_empty()) {
        let _ = ::redis::cmd("XGROUP")
            .arg("DELCONSUMER")
            .arg(&shared.events_key)
            .arg(&shared.options.group)
            .arg(&shared.consumer)
            .query::<Value>(&mut connection);
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("short", 100), "short");
    }
}
