//! The worker's reader thread: fetches new entries (`XREADGROUP … >`, in a
//! script that records each one's handler call as begun), never more than
//! there are idle handler threads; takes over entries other consumers left
//! idle (running alone those whose last call never answered); trims
//! acknowledged history; and removes idle consumers with nothing pending.

use std::time::{Duration, Instant};

use ::redis::streams::{StreamInfoGroupsReply, StreamPendingReply};
use ::redis::{RedisError, RedisResult, Value};

use super::acking;
use super::connection::{failure_class, is_no_group, LazyConnection};
use super::entry::{next_id, value_bytes, Entry};
use super::state::{millis, Job, JobKind, Shared};
use crate::handler::counters;
use crate::handler::LastCall;

/// The longest pause between reconnection attempts while Redis is down.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(2);
/// How often an ongoing outage is logged again.
const OUTAGE_LOG_INTERVAL: Duration = Duration::from_secs(30);
/// Idle entries one takeover looks at.
const TAKE_OVER_SCAN: usize = 100;
/// How long the reader waits for half the threads to be idle before a fetch.
const GATHER: Duration = Duration::from_millis(1);

/// The reader thread: runs until the worker stops.
pub(crate) fn run(shared: &Shared) {
    let settings = &shared.settings;
    let connector = &shared.connector;
    let now = Instant::now();
    let mut reader = Reader {
        shared,
        // The reader waits for new entries for up to the block time.
        connection: connector
            .lazy()
            .with_read_timeout(settings.block_time + connector.command_timeout()),
        group_ready: false,
        next_claim: now,
        suspects: false,
        suspects_since: None,
        next_trim: settings.trim_interval.map(|i| now + i),
        next_forget: now,
        outage: None,
        failures: 0,
    };
    while !shared.stopping() {
        match reader.step() {
            Ok(()) => reader.recovered(),
            Err(e) => {
                if !reader.failed(&e) {
                    return;
                }
            }
        }
    }
}

struct Reader<'a> {
    shared: &'a Shared,
    connection: LazyConnection,
    /// The consumer group is known to exist.
    group_ready: bool,
    next_claim: Instant,
    /// The last takeover found entries to run alone that it could not take:
    /// fetch nothing new until the worker is quiet and they are taken.
    suspects: bool,
    /// Since when the worker waits to be quiet for them.
    suspects_since: Option<Instant>,
    next_trim: Option<Instant>,
    next_forget: Instant,
    /// When the current outage started and was last logged.
    outage: Option<(Instant, Instant)>,
    failures: u32,
}

impl Reader<'_> {
    /// One round: the chores when due, then a takeover or a fetch if there
    /// is room, else a wait for room.
    fn step(&mut self) -> RedisResult<()> {
        let shared = self.shared;
        if !self.group_ready {
            create_group(shared, &mut self.connection)?;
            self.group_ready = true;
        }
        let now = Instant::now();
        if self.next_trim.is_some_and(|due| now >= due) {
            self.next_trim = shared.settings.trim_interval.map(|i| now + i);
            self.trim()?;
        }
        if now >= self.next_forget {
            self.next_forget = now + forget_interval(shared.settings.forget_idle_consumers);
            self.forget_idle_consumers()?;
        }
        let due = self.next_due();
        let (idle_threads, quiet, alone) = {
            let local = crate::sync::lock(&shared.local);
            (
                local.idle_threads(shared.threads),
                local.quiet(),
                local.alone,
            )
        };
        if alone {
            // A call runs alone: begin nothing else until it answers.
            shared.wait_until(due, |l| !l.alone);
        } else if self.suspects && !quiet {
            // Entries wait to run alone: let what runs finish first, for a
            // while (a call that takes long must not stall the worker: they
            // are looked for again at the next takeover, here or elsewhere).
            let since = *self.suspects_since.get_or_insert(now);
            let interval = claim_interval(shared.settings.claim_idle);
            if now.duration_since(since) >= interval {
                self.suspects = false;
                self.suspects_since = None;
                self.next_claim = now + interval;
            } else {
                shared.wait_until(due.min(since + interval), |l| l.quiet() && !l.alone);
            }
        } else if idle_threads == 0 {
            shared.wait_until(due, |l| l.idle_threads(shared.threads) > 0 && !l.alone);
        } else if self.suspects || now >= self.next_claim {
            self.take_over(idle_threads, quiet)?;
        } else {
            let idle_threads = self.gather(idle_threads);
            self.fetch(idle_threads)?;
        }
        Ok(())
    }

    /// With fewer than half the threads idle, waits a moment ([`GATHER`])
    /// for more to finish, so that one round trip fetches for several;
    /// returns the idle threads then.
    fn gather(&self, idle_threads: usize) -> usize {
        let shared = self.shared;
        let half = shared.threads.div_ceil(2);
        if idle_threads >= half {
            return idle_threads;
        }
        let until = Instant::now() + GATHER;
        shared.wait_until(until, |l| l.idle_threads(shared.threads) >= half);
        // Only this thread hands out entries: the idle threads can only be more.
        crate::sync::lock(&shared.local).idle_threads(shared.threads)
    }

    /// When the next chore or takeover is due.
    fn next_due(&self) -> Instant {
        let mut due = self.next_claim.min(self.next_forget);
        if let Some(trim) = self.next_trim {
            due = due.min(trim);
        }
        due
    }

    /// New entries for `idle_threads` threads (see [`scripts::FETCH`](super::scripts::FETCH)),
    /// acknowledging the handled entries waiting for the acker on the way;
    /// with none, waits for the stream to grow (`XREAD BLOCK`, up to the
    /// block time).
    fn fetch(&mut self, idle_threads: usize) -> RedisResult<()> {
        let shared = self.shared;
        if idle_threads == 0 {
            // `COUNT 0` would read everything.
            return Ok(());
        }
        let acks = acking::take_batch(shared);
        let mut invocation = shared.scripts.fetch.key(&shared.events_key);
        invocation
            .key(&shared.attempts_key)
            .arg(&shared.group)
            .arg(&shared.consumer)
            .arg(idle_threads)
            .arg(acks.len())
            .arg(&acks);
        // Not sent twice on a new connection: the first may have fetched.
        let fetched: RedisResult<(String, Vec<Value>)> =
            self.connection.run_once(|c| invocation.invoke(c));
        let (last_id, entries) = match fetched {
            Ok(fetched) => fetched,
            Err(e) => {
                acking::give_back(shared, acks);
                return Err(e);
            }
        };
        let jobs: Vec<Job> = entries
            .into_iter()
            .filter_map(|entry| {
                let (entry, begun) = entry_and_count(entry)?;
                Some(Job {
                    entry,
                    begun,
                    kind: JobKind::Go,
                })
            })
            .collect();
        if !jobs.is_empty() {
            counters::add(&shared.counters.read, jobs.len() as u64);
            shared.push(jobs);
            return Ok(());
        }
        // Nothing new: wait for anything newer than the last entry, which
        // the script saw delivered. What arrives may go to another worker.
        let block = shared.settings.block_time.min(
            self.next_due()
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        );
        self.connection
            .run(|c| {
                ::redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(1)
                    .arg("BLOCK")
                    .arg(millis(block))
                    .arg("STREAMS")
                    .arg(&shared.events_key)
                    .arg(&last_id)
                    .query::<Value>(c)
            })
            .map(drop)
    }

    /// Takes over idle entries for `idle_threads` threads (see
    /// [`scripts::TAKE_OVER`](super::scripts::TAKE_OVER)); `quiet`: nothing
    /// runs, so an entry whose last call never answered may run alone.
    fn take_over(&mut self, idle_threads: usize, quiet: bool) -> RedisResult<()> {
        let shared = self.shared;
        let settings = &shared.settings;
        // An entry may run alone: acknowledge everything handled first.
        let quiet = quiet && acking::wait_until_sent(shared, settings.block_time);
        let acks = acking::take_batch(shared);
        let mut invocation = shared.scripts.take_over.key(&shared.events_key);
        invocation
            .key(&shared.attempts_key)
            .arg(&shared.group)
            .arg(&shared.consumer)
            .arg(millis(settings.claim_idle))
            .arg(idle_threads)
            .arg(u8::from(quiet))
            .arg(settings.retry.attempts())
            .arg(TAKE_OVER_SCAN)
            .arg(acks.len())
            .arg(&acks);
        let taken: RedisResult<(u64, Vec<String>, Vec<Value>)> =
            self.connection.run_once(|c| invocation.invoke(c));
        let (suspects, deleted, taken) = match taken {
            Ok(taken) => taken,
            Err(e) => {
                acking::give_back(shared, acks);
                return Err(e);
            }
        };
        if !deleted.is_empty() {
            let n = deleted.len() as u64;
            counters::add(&shared.counters.deleted_unhandled, n);
            log::error!(
                "{n} pending entries were deleted from {} before being handled (max_stream_len \
                 trimming, or deleted by hand); they are lost: {deleted:?}",
                shared.events_key
            );
        }
        let jobs: Vec<Job> = taken.into_iter().filter_map(taken_job).collect();
        let alone = jobs.iter().any(|j| matches!(j.kind, JobKind::Alone));
        self.suspects = suspects > 0;
        if !self.suspects {
            self.suspects_since = None;
        }
        self.next_claim = if jobs.len() >= idle_threads || alone || self.suspects {
            // There may be more: look again as soon as there is room.
            Instant::now()
        } else {
            Instant::now() + claim_interval(settings.claim_idle)
        };
        if !jobs.is_empty() {
            counters::add(&shared.counters.claimed, jobs.len() as u64);
            if alone {
                counters::add(&shared.counters.run_alone, 1);
                log::warn!(
                    "took over entry {} whose last handler call never answered (its worker \
                     died?): running it alone",
                    jobs[0].entry.id
                );
            } else {
                log::info!(
                    "took over {} entries left idle for over {:?} by other consumers",
                    jobs.len(),
                    settings.claim_idle
                );
            }
            shared.push(jobs);
        }
        Ok(())
    }

    /// Removes acknowledged history: every entry older than the oldest one
    /// still pending, or than the next undelivered one when none is pending.
    ///
    /// The group's last delivered id is read *before* the pending list:
    /// entries delivered in between are newer than it, so the threshold
    /// never passes an entry that is pending or not yet delivered.
    fn trim(&mut self) -> RedisResult<()> {
        let shared = self.shared;
        let connection = &mut self.connection;
        let groups: StreamInfoGroupsReply = connection.run(|c| {
            ::redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&shared.events_key)
                .query(c)
        })?;
        let Some(group) = groups.groups.into_iter().find(|g| g.name == shared.group) else {
            return Ok(());
        };
        let pending: StreamPendingReply = connection.run(|c| {
            ::redis::cmd("XPENDING")
                .arg(&shared.events_key)
                .arg(&shared.group)
                .query(c)
        })?;
        let threshold = match pending {
            StreamPendingReply::Data(data) => Some(data.start_id),
            _ => next_id(&group.last_delivered_id),
        };
        let Some(threshold) = threshold.filter(|t| t != "0-1") else {
            return Ok(());
        };
        let trimmed: u64 = connection.run(|c| {
            ::redis::cmd("XTRIM")
                .arg(&shared.events_key)
                .arg("MINID")
                .arg("~")
                .arg(&threshold)
                .query(c)
        })?;
        if trimmed > 0 {
            counters::add(&shared.counters.trimmed, trimmed);
            log::debug!(
                "trimmed {trimmed} acknowledged entries from {}",
                shared.events_key
            );
        }
        Ok(())
    }

    /// Removes idle consumers holding nothing (see
    /// [`scripts::FORGET_IDLE_CONSUMERS`](super::scripts::FORGET_IDLE_CONSUMERS)).
    fn forget_idle_consumers(&mut self) -> RedisResult<()> {
        let shared = self.shared;
        let mut invocation = shared.scripts.forget_idle_consumers.key(&shared.events_key);
        invocation
            .arg(&shared.group)
            .arg(&shared.consumer)
            .arg(millis(shared.settings.forget_idle_consumers));
        let removed: Vec<String> = self.connection.run(|c| invocation.invoke(c))?;
        if !removed.is_empty() {
            counters::add(&shared.counters.consumers_removed, removed.len() as u64);
            log::info!(
                "removed {} idle consumer(s) holding nothing from group {}: {removed:?}",
                removed.len(),
                shared.group
            );
        }
        Ok(())
    }

    /// Handles a failed round; returns `false` when the worker is stopping.
    fn failed(&mut self, error: &RedisError) -> bool {
        let shared = self.shared;
        counters::add(&shared.counters.redis_errors, 1);
        if is_no_group(error) {
            // The stream or the group was deleted: create it again.
            log::warn!(
                "consumer group missing on {}; creating it again",
                shared.events_key
            );
            self.group_ready = false;
            return !shared.stopping();
        }
        let now = Instant::now();
        match self.outage {
            None => {
                log::warn!(
                    "Redis {} while reading {}: {error}; retrying",
                    failure_class(error),
                    shared.events_key
                );
                self.outage = Some((now, now));
            }
            Some((since, logged)) if now.duration_since(logged) >= OUTAGE_LOG_INTERVAL => {
                log::warn!(
                    "Redis still {} after {:?}: {error}",
                    failure_class(error),
                    now.duration_since(since)
                );
                self.outage = Some((since, now));
            }
            Some(_) => {}
        }
        self.failures = self.failures.saturating_add(1);
        let wait = Duration::from_millis(50)
            .saturating_mul(1 << self.failures.min(6))
            .min(MAX_RECONNECT_WAIT);
        shared.sleep_unless_stopping(wait)
    }

    fn recovered(&mut self) {
        if let Some((since, _)) = self.outage.take() {
            log::info!("Redis is back after {:?}", since.elapsed());
        }
        self.failures = 0;
    }
}

/// `{id, {field, value, …}, count}` from [`scripts::FETCH`](super::scripts::FETCH).
fn entry_and_count(value: Value) -> Option<(Entry, u32)> {
    let Value::Array(parts) = value else {
        return None;
    };
    let mut parts = parts.into_iter();
    let id = String::from_utf8(value_bytes(parts.next()?)?).ok()?;
    let entry = Entry::from_fields(id, parts.next()?);
    Some((entry, number(parts.next()?)))
}

/// A job from one `{id, fields, kind, begun, ended, last, error}` of [`scripts::TAKE_OVER`](super::scripts::TAKE_OVER).
fn taken_job(value: Value) -> Option<Job> {
    let Value::Array(parts) = value else {
        return None;
    };
    let mut parts = parts.into_iter();
    let id = String::from_utf8(value_bytes(parts.next()?)?).ok()?;
    let entry = Entry::from_fields(id, parts.next()?);
    let kind = text(parts.next()?);
    let begun = number(parts.next()?);
    let ended = number(parts.next()?);
    let last = LastCall::from_name(&text(parts.next()?));
    let error = text(parts.next()?);
    let kind = match kind.as_str() {
        "go" => JobKind::Go,
        "solo" => JobKind::Alone,
        _ => JobKind::Exhausted { ended, last, error },
    };
    Some(Job { entry, begun, kind })
}

fn text(value: Value) -> String {
    value_bytes(value)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn number(value: Value) -> u32 {
    match value {
        Value::Int(n) => u32::try_from(n).unwrap_or(0),
        other => text(other).parse().unwrap_or(0),
    }
}

/// `XGROUP CREATE <events> <group> 0 MKSTREAM`, unless it exists. The
/// group starts at the beginning, so events added before any worker ran are
/// handled too.
fn create_group(shared: &Shared, connection: &mut LazyConnection) -> RedisResult<()> {
    let created = connection.run(|c| {
        ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&shared.events_key)
            .arg(&shared.group)
            .arg("0")
            .arg("MKSTREAM")
            .query::<Value>(c)
    });
    match created {
        Ok(_) => {
            log::info!(
                "created consumer group {} on {}",
                shared.group,
                shared.events_key
            );
            Ok(())
        }
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// How often to look for abandoned entries: a quarter of the claim time,
/// between 50 ms and 10 s.
fn claim_interval(claim_idle: Duration) -> Duration {
    (claim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(10))
}

/// How often to look for idle consumers to remove: half the idle time they
/// need, between 50 ms and a minute.
fn forget_interval(forget_idle_consumers: Duration) -> Duration {
    (forget_idle_consumers / 2).clamp(Duration::from_millis(50), Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn fetched_and_taken_entries_are_read_from_the_script_replies() {
        let fields = Value::Array(vec![bulk("body"), bulk("{}"), bulk("event"), bulk("e")]);
        let (entry, count) = entry_and_count(Value::Array(vec![
            bulk("1-0"),
            fields.clone(),
            Value::Int(1),
        ]))
        .expect("an entry");
        assert_eq!((entry.id.as_str(), count), ("1-0", 1));
        assert_eq!(entry.text("event"), Some("e"));

        let job = taken_job(Value::Array(vec![
            bulk("2-0"),
            fields,
            bulk("exhausted"),
            Value::Int(5),
            Value::Int(4),
            bulk("failed"),
            bulk("db down"),
        ]))
        .expect("a job");
        assert_eq!(job.begun, 5);
        assert!(matches!(
            job.kind,
            JobKind::Exhausted { ended: 4, last: Some(LastCall::Failed), ref error } if error == "db down"
        ));
    }
}
