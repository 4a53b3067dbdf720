//! The worker's reader thread: takes over abandoned entries (`XAUTOCLAIM`),
//! reads new ones (`XREADGROUP … BLOCK`), keeps the ones it fetched ahead
//! from looking abandoned, and trims acknowledged history.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ::redis::streams::{
    StreamAutoClaimReply, StreamInfoGroupsReply, StreamPendingCountReply, StreamPendingReply,
    StreamReadReply,
};
use ::redis::{Connection, RedisError, Script, Value};

use super::connection::{breaks_connection, failure_class, is_no_group};
use super::entry::{next_id, Entry};
use super::worker::{Counters, Job, Shared};

/// The longest pause between reconnection attempts while Redis is down.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(2);
/// How often an ongoing outage is logged again.
const OUTAGE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Keeps fetched entries that wait for a handler thread pending on this
/// consumer with a fresh idle time (`XCLAIM … 0 <id> JUSTID` counts no
/// delivery), so that other workers do not take them over; entries another
/// consumer owns by now are left alone and returned, to be dropped here.
///
/// `KEYS[1]` the events stream; `ARGV[1]` the group, `ARGV[2]` this
/// consumer, `ARGV[3..]` the ids.
const TOUCH_SCRIPT: &str = r"
local lost = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #pending == 1 and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
";

/// The reader thread: runs until the worker stops.
pub(crate) fn run(shared: &Shared) {
    let touch_interval = shared.options.claim_idle / 3;
    let mut reader = Reader {
        shared,
        connection: None,
        next_claim: Instant::now(),
        claim_cursor: "0-0".to_owned(),
        next_trim: shared.options.trim_interval.map(|i| Instant::now() + i),
        next_touch: Instant::now() + touch_interval,
        touch: Script::new(TOUCH_SCRIPT),
        outage: None,
        failures: 0,
    };
    loop {
        let Some(free) = shared.free_slots(reader.next_touch) else {
            return;
        };
        let result = if Instant::now() >= reader.next_touch {
            reader.next_touch = Instant::now() + touch_interval;
            reader.touch()
        } else if free > 0 {
            reader.step(free)
        } else {
            Ok(())
        };
        match result {
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
    connection: Option<Connection>,
    next_claim: Instant,
    /// Where the next `XAUTOCLAIM` scan continues (`0-0`: from the start).
    claim_cursor: String,
    next_trim: Option<Instant>,
    /// When the entries fetched ahead are next kept from looking abandoned.
    next_touch: Instant,
    touch: Script,
    /// When the current outage started and was last logged.
    outage: Option<(Instant, Instant)>,
    failures: u32,
}

impl Reader<'_> {
    /// One round: claim abandoned entries when due, else read new ones, then
    /// trim when due. Fetches at most `free` entries.
    fn step(&mut self, free: usize) -> Result<(), RedisError> {
        let shared = self.shared;
        let fresh = self.connection.is_none();
        let connection = shared.connection(&mut self.connection)?;
        if fresh {
            // The reader blocks in XREADGROUP for up to the block time.
            connection.set_read_timeout(Some(
                shared.options.block_time + shared.connector.command_timeout(),
            ))?;
            create_group(shared, connection)?;
        }
        if Instant::now() >= self.next_claim {
            let claimed = self.claim(free)?;
            if !claimed.is_empty() {
                Counters::add(&shared.counters.claimed, claimed.len() as u64);
                shared.push(claimed);
                return Ok(());
            }
        }
        let jobs = self.read_new(free)?;
        Counters::add(&shared.counters.read, jobs.len() as u64);
        shared.push(jobs);
        if self.next_trim.is_some_and(|due| Instant::now() >= due) {
            self.next_trim = shared.options.trim_interval.map(|i| Instant::now() + i);
            self.trim()?;
        }
        Ok(())
    }

    /// Refreshes the idle time of the entries fetched and not yet started
    /// (see [`TOUCH_SCRIPT`]), dropping those another consumer took over.
    fn touch(&mut self) -> Result<(), RedisError> {
        let shared = self.shared;
        let ids = shared.waiting_ids();
        if ids.is_empty() {
            return Ok(());
        }
        let connection = shared.connection(&mut self.connection)?;
        let lost: Vec<String> = self
            .touch
            .key(&shared.events_key)
            .arg(&shared.options.group)
            .arg(&shared.consumer)
            .arg(&ids)
            .invoke(connection)?;
        if !lost.is_empty() {
            log::info!(
                "{} fetched entries were taken over by other consumers before a handler thread \
                 was free; dropped here",
                lost.len()
            );
            shared.drop_waiting(&lost);
        }
        Ok(())
    }

    /// `XAUTOCLAIM`: entries idle on any consumer (this one included) for
    /// longer than the claim time, with their delivery counts.
    fn claim(&mut self, free: usize) -> Result<Vec<Job>, RedisError> {
        let shared = self.shared;
        let options = &shared.options;
        let connection = shared.connection(&mut self.connection)?;
        let reply: StreamAutoClaimReply = ::redis::cmd("XAUTOCLAIM")
            .arg(&shared.events_key)
            .arg(&options.group)
            .arg(&shared.consumer)
            .arg(millis(options.claim_idle))
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(free)
            .query(connection)?;
        if !reply.deleted_ids.is_empty() {
            let n = reply.deleted_ids.len() as u64;
            Counters::add(&shared.counters.deleted_unhandled, n);
            log::error!(
                "{n} pending entries were deleted from {} before being handled (max_stream_len \
                 trimming, or deleted by hand); they are lost: {:?}",
                shared.events_key,
                reply.deleted_ids
            );
        }
        // Scan on at once while there is more; else wait for the next interval.
        self.claim_cursor = reply.next_stream_id;
        self.next_claim = if self.claim_cursor == "0-0" {
            Instant::now() + claim_interval(options.claim_idle)
        } else {
            Instant::now()
        };
        let entries: Vec<Entry> = reply
            .claimed
            .into_iter()
            .map(Entry::from_stream_id)
            .collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let counts = delivery_counts(shared, connection, &entries)?;
        log::info!(
            "took over {} entries left idle for over {:?} by other consumers",
            entries.len(),
            options.claim_idle
        );
        Ok(entries
            .into_iter()
            .map(|entry| {
                let deliveries = counts.get(&entry.id).copied().unwrap_or(1);
                Job { entry, deliveries }
            })
            .collect())
    }

    /// `XREADGROUP … BLOCK … STREAMS <events> >`: entries never delivered before.
    fn read_new(&mut self, free: usize) -> Result<Vec<Job>, RedisError> {
        let shared = self.shared;
        let options = &shared.options;
        let connection = shared.connection(&mut self.connection)?;
        let reply: Option<StreamReadReply> = ::redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&options.group)
            .arg(&shared.consumer)
            .arg("COUNT")
            .arg(free)
            .arg("BLOCK")
            .arg(millis(options.block_time))
            .arg("STREAMS")
            .arg(&shared.events_key)
            .arg(">")
            .query(connection)?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|id| Job {
                entry: Entry::from_stream_id(id),
                deliveries: 1,
            })
            .collect())
    }

    /// Removes acknowledged history: every entry older than the oldest one
    /// still pending, or than the next undelivered one when none is pending.
    ///
    /// The group's last delivered id is read *before* the pending list:
    /// entries delivered in between are newer than it, so the threshold
    /// never passes an entry that is pending or not yet delivered.
    fn trim(&mut self) -> Result<(), RedisError> {
        let shared = self.shared;
        let connection = shared.connection(&mut self.connection)?;
        let groups: StreamInfoGroupsReply = ::redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&shared.events_key)
            .query(connection)?;
        let Some(group) = groups
            .groups
            .into_iter()
            .find(|g| g.name == shared.options.group)
        else {
            return Ok(());
        };
        let pending: StreamPendingReply = ::redis::cmd("XPENDING")
            .arg(&shared.events_key)
            .arg(&shared.options.group)
            .query(connection)?;
        let threshold = match pending {
            StreamPendingReply::Data(data) => Some(data.start_id),
            _ => next_id(&group.last_delivered_id),
        };
        let Some(threshold) = threshold.filter(|t| t != "0-1") else {
            return Ok(());
        };
        let trimmed: u64 = ::redis::cmd("XTRIM")
            .arg(&shared.events_key)
            .arg("MINID")
            .arg("~")
            .arg(&threshold)
            .query(connection)?;
        if trimmed > 0 {
            Counters::add(&shared.counters.trimmed, trimmed);
            log::debug!(
                "trimmed {trimmed} acknowledged entries from {}",
                shared.events_key
            );
        }
        Ok(())
    }

    /// Handles a failed round; returns `false` when the worker is stopping.
    fn failed(&mut self, error: &RedisError) -> bool {
        let shared = self.shared;
        Counters::add(&shared.counters.redis_errors, 1);
        if breaks_connection(error) {
            self.connection = None;
        }
        if is_no_group(error) {
            // The stream or the group was deleted: recreate it on the next connection.
            log::warn!(
                "consumer group missing on {}; creating it again",
                shared.events_key
            );
            self.connection = None;
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

/// `XGROUP CREATE <events> <group> 0 MKSTREAM`, unless it exists. The
/// group starts at the beginning, so events added before any worker ran are
/// handled too.
pub(crate) fn create_group(shared: &Shared, connection: &mut Connection) -> Result<(), RedisError> {
    let created = ::redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&shared.events_key)
        .arg(&shared.options.group)
        .arg("0")
        .arg("MKSTREAM")
        .query::<Value>(connection);
    match created {
        Ok(_) => {
            log::info!(
                "created consumer group {} on {}",
                shared.options.group,
                shared.events_key
            );
            Ok(())
        }
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// The delivery counts of `entries`, pending on this consumer, by id.
fn delivery_counts(
    shared: &Shared,
    connection: &mut Connection,
    entries: &[Entry],
) -> Result<HashMap<String, u64>, RedisError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(HashMap::new());
    };
    // XAUTOCLAIM returns entries in id order.
    let reply: StreamPendingCountReply = ::redis::cmd("XPENDING")
        .arg(&shared.events_key)
        .arg(&shared.options.group)
        .arg(&first.id)
        .arg(&last.id)
        .arg(entries.len())
        .arg(&shared.consumer)
        .query(connection)?;
    Ok(reply
        .ids
        .into_iter()
        .map(|p| (p.id, p.times_delivered as u64))
        .collect())
}

/// How often to look for abandoned entries: a quarter of the claim time,
/// between 50 ms and 10 s.
fn claim_interval(claim_idle: Duration) -> Duration {
    (claim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(10))
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
