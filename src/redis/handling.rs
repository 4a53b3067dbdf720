//! The worker's handler threads: run each entry through the shared attempts
//! loop ([`run_attempts`]), recording in Redis each call that begins and each
//! that answers, then hand it to the acknowledger, or move it to the
//! dead-letter stream; and, at the stop, hand back what is left.

use std::time::{Duration, Instant};

use ::redis::Value;

use super::acking;
use super::connection::{failure_class, LazyConnection};
use super::entry::{self, now_ms, Entry};
use super::state::{is_zero, HandBack, Job, JobKind, Shared};
use crate::event::parse_event;
use crate::handler::counters;
use crate::handler::dead_letter::NO_ANSWER;
use crate::handler::{
    report_dead_letter, run_attempts, Attempts, DeadLetter, DeadLetterId, HandlerFailure, LastCall,
    WebhookHandler,
};
use crate::sync::lock;

/// The longest handler error text kept (in the attempts hash, and in a dead letter).
const MAX_ERROR_BYTES: usize = 8 * 1024;

/// A handler thread: takes entries until the worker stops.
pub(crate) fn run<H: WebhookHandler>(shared: &Shared, handler: &H) {
    let mut connection = shared.connector.lazy();
    while let Some(job) = shared.next_job() {
        let alone = matches!(job.kind, JobKind::Alone);
        handle(shared, handler, &mut connection, job);
        shared.job_done(alone);
    }
}

fn handle<H: WebhookHandler>(
    shared: &Shared,
    handler: &H,
    connection: &mut LazyConnection,
    job: Job,
) {
    let Job { entry, begun, kind } = job;
    let alone = match kind {
        JobKind::Go => false,
        JobKind::Alone => true,
        JobKind::Exhausted { ended, last, error } => {
            let (last_call, error) = if begun > ended {
                (LastCall::NoAnswer, NO_ANSWER.to_owned())
            } else {
                (last.unwrap_or(LastCall::Failed), error)
            };
            dead_letter(shared, connection, &entry, begun, last_call, &error);
            return;
        }
    };
    let event = match entry.field(entry::BODY) {
        None => Err("the entry has no body field".to_owned()),
        Some(body) => {
            parse_event(body).map_err(|e| format!("the entry's body is not an event: {e}"))
        }
    };
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            // The call recorded as begun never did.
            let attempts = begun.saturating_sub(1);
            dead_letter(
                shared,
                connection,
                &entry,
                attempts,
                LastCall::NotBegun,
                &error,
            );
            return;
        }
    };
    let mut attempt = Attempt {
        shared,
        connection,
        entry: &entry,
        alone,
    };
    let what = format!("entry {}", entry.id);
    run_attempts(
        handler,
        &event,
        &shared.settings.retry,
        begun,
        &what,
        &mut attempt,
    );
}

/// One entry's way through [`run_attempts`] in the worker: attempts are
/// recorded in Redis, waits end early at the stop (the entry is then
/// handed back), dead letters go to the dead-letter stream.
struct Attempt<'a> {
    shared: &'a Shared,
    connection: &'a mut LazyConnection,
    entry: &'a Entry,
    /// Its call runs alone until it answers.
    alone: bool,
}

impl Attempt<'_> {
    /// The call that had to run alone answered: others may begin.
    fn answered(&mut self) {
        if std::mem::take(&mut self.alone) {
            self.shared.alone_ended();
        }
    }
}

impl Attempts for Attempt<'_> {
    fn handled(&mut self, _call: u32) {
        counters::add(&self.shared.counters.handled, 1);
        if self.alone {
            // Acknowledged before anything else may begin: should the next
            // entry crash the process, this one is not left pending, to be
            // counted again.
            let ids = [self.entry.id.clone()];
            if !acking::acknowledge_now(self.shared, self.connection, &ids) {
                log::warn!("entry {} handled alone but not acknowledged", self.entry.id);
            }
        } else {
            self.shared.acknowledge(self.entry.id.clone());
        }
        self.answered();
    }

    fn failed(&mut self, _call: u32, failure: &HandlerFailure) {
        let shared = self.shared;
        let counter = if failure.panicked {
            &shared.counters.handler_panics
        } else {
            &shared.counters.handler_errors
        };
        counters::add(counter, 1);
        // The call answered: a crash from now on is not this call's doing.
        // Recorded before anything else may begin (when it ran alone).
        let id = &self.entry.id;
        let last = if failure.panicked {
            LastCall::Panicked
        } else {
            LastCall::Failed
        };
        let recorded = self.connection.run(|c| {
            ::redis::pipe()
                .atomic()
                .cmd("HINCRBY")
                .arg(&shared.attempts_key)
                .arg(format!("{id}:ended"))
                .arg(1)
                .ignore()
                .cmd("HSET")
                .arg(&shared.attempts_key)
                .arg(format!("{id}:last"))
                .arg(last.as_str())
                .arg(format!("{id}:error"))
                .arg(truncate(&failure.message, MAX_ERROR_BYTES))
                .ignore()
                .query::<()>(c)
        });
        if let Err(e) = recorded {
            counters::add(&shared.counters.redis_errors, 1);
            log::warn!(
                "could not record the failed call of entry {id} (Redis {}): {e}",
                failure_class(&e)
            );
        }
        self.answered();
    }

    fn wait(&mut self, delay: Duration) -> bool {
        let started = Instant::now();
        if self.shared.sleep_unless_stopping(delay) {
            return true;
        }
        // Stopping: hand it back, to be taken over once the backoff is over.
        let remaining = delay.saturating_sub(started.elapsed());
        self.shared.hold_for_hand_back(HandBack {
            id: self.entry.id.clone(),
            idle: self.shared.settings.claim_idle.saturating_sub(remaining),
            uncount: false,
        });
        false
    }

    fn begin(&mut self, call: u32) -> bool {
        let shared = self.shared;
        let id = &self.entry.id;
        let mut invocation = shared.scripts.begin_again.key(&shared.events_key);
        invocation
            .key(&shared.attempts_key)
            .arg(&shared.group)
            .arg(&shared.consumer)
            .arg(id);
        // Not sent twice on a new connection: that would count two calls.
        match self.connection.run_once(|c| invocation.invoke::<Value>(c)) {
            Ok(value) if is_zero(&value) => {
                log::info!(
                    "entry {id} was taken over by another consumer while waiting for call {call}"
                );
                false
            }
            Ok(_) => {
                counters::add(&shared.counters.retried, 1);
                true
            }
            Err(e) => {
                counters::add(&shared.counters.redis_errors, 1);
                log::warn!(
                    "entry {id} left pending before call {call} (Redis {}: {e}); another worker \
                     takes it over after the claim idle time",
                    failure_class(&e)
                );
                false
            }
        }
    }

    fn give_up(&mut self, attempts: u32, last_call: LastCall, error: String) {
        dead_letter(
            self.shared,
            self.connection,
            self.entry,
            attempts,
            last_call,
            &error,
        );
    }
}

/// Moves `entry` to the dead-letter stream (with how many calls began, how
/// the last ended, and its original id) and acknowledges it; then reports
/// it to the log and the `on_dead_letter` hook.
fn dead_letter(
    shared: &Shared,
    connection: &mut LazyConnection,
    entry: &Entry,
    attempts: u32,
    last_call: LastCall,
    error: &str,
) {
    let error = truncate(error, MAX_ERROR_BYTES);
    let attempts_text = attempts.to_string();
    let dead_ms = now_ms();
    let dead_ms_text = dead_ms.to_string();
    let mut invocation = shared.scripts.dead_letter.key(&shared.events_key);
    invocation
        .key(&shared.dead_key)
        .key(&shared.attempts_key)
        .arg(&shared.group)
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
        (entry::LAST_CALL, last_call.as_str()),
        (entry::ORIGINAL_ID, &entry.id),
        (entry::DEAD_MS, &dead_ms_text),
        (entry::CONSUMER, &shared.consumer),
    ] {
        invocation.arg(name).arg(value);
    }
    // Safe to send twice: a second run finds the entry acknowledged.
    match connection.run(|c| invocation.invoke::<Value>(c)) {
        Ok(value) if is_zero(&value) => log::info!(
            "entry {} was taken over by another consumer; not dead-lettered here",
            entry.id
        ),
        Ok(value) => {
            counters::add(&shared.counters.dead_lettered, 1);
            let dead_id = entry::value_bytes(value)
                .map(|id| String::from_utf8_lossy(&id).into_owned())
                .unwrap_or_default();
            let mut letter = DeadLetter::given_up(
                DeadLetterId::Entry {
                    id: dead_id,
                    original_id: entry.id.clone(),
                },
                entry.field(entry::BODY).unwrap_or_default().to_vec(),
                attempts,
                last_call,
                error,
            );
            letter.time_unix_ms = dead_ms;
            letter.received_unix_ms = entry.number(entry::RECEIVED_MS);
            letter.worker = Some(shared.consumer.clone());
            report_dead_letter(&letter, shared.on_dead_letter.as_ref());
        }
        Err(e) => {
            counters::add(&shared.counters.redis_errors, 1);
            log::warn!(
                "entry {} could not be dead-lettered (Redis {}): {e}; it stays pending and is \
                 dead-lettered once taken over",
                entry.id,
                failure_class(&e)
            );
        }
    }
}

/// At the stop, once no thread begins anything: hands back what this
/// worker still holds (entries waiting to be retried, and fetched entries
/// not begun, whose recorded call is taken back), then, when nothing is
/// left pending on it and `may_leave`, removes it from the group (one
/// script: [`HAND_BACK`](super::scripts::HAND_BACK)). Best effort: what
/// fails is taken over after the claim idle time anyway, and the consumer
/// is then removed as an idle one.
pub(crate) fn hand_back(shared: &Shared, may_leave: bool) {
    let entries: Vec<HandBack> = {
        let mut local = lock(&shared.local);
        let mut entries = std::mem::take(&mut local.hand_back);
        entries.extend(local.waiting.drain(..).map(|job| HandBack {
            id: job.entry.id,
            idle: shared.settings.claim_idle,
            uncount: !matches!(job.kind, JobKind::Exhausted { .. }),
        }));
        entries
    };
    if entries.is_empty() && !may_leave {
        return;
    }
    let mut connection = shared.connector.lazy();
    // With calls left behind, the consumer stays (they hold its entries).
    match shared.run_hand_back(&mut connection, &entries, may_leave) {
        Ok((handed, left_group)) => {
            counters::add(&shared.counters.handed_back, handed);
            if handed > 0 {
                log::info!(
                    "{handed} entries handed back to the other workers (waiting to be retried, \
                     or not begun)"
                );
            }
            if left_group {
                log::info!("consumer {} left group {}", shared.consumer, shared.group);
            }
        }
        Err(e) => {
            counters::add(&shared.counters.redis_errors, 1);
            log::warn!(
                "could not hand back {} entries (Redis {}): {e}; they are taken over after the \
                 claim idle time",
                entries.len(),
                failure_class(&e)
            );
        }
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
