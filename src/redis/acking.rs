//! The worker's acknowledger thread: handler threads hand it the ids of
//! entries their handler returned `Ok` for, and it acknowledges them in
//! batches (one script: `XACK <events> <group> id1 id2 …` and the attempts
//! forgotten), so that many entries share one round trip (and, with
//! `appendfsync always`, one `fsync`). Under load most never reach it: the
//! reader takes them along with its next fetch ([`take_batch`]), so one
//! round trip both acknowledges and fetches; the acker sends what waited
//! longer than [`LINGER`].

use std::thread;
use std::time::{Duration, Instant};

use super::connection::{failure_class, LazyConnection};
use super::state::Shared;
use crate::handler::counters;
use crate::sync::{lock, wait, wait_timeout};

/// The most ids in one acknowledgement.
const MAX_BATCH: usize = 1000;
/// Tries at one batch before it is given up on (its entries are handled again).
pub(crate) const TRIES: u32 = 3;
/// How long handled ids wait for the reader's next fetch before the acker sends them.
const LINGER: Duration = Duration::from_millis(2);

/// Runs until [`Shared::close_acks`](super::state::Shared) was called and every handed id is sent.
pub(crate) fn run(shared: &Shared) {
    let mut connection = shared.connector.lazy();
    while let Some(ids) = next_batch(shared) {
        send(shared, &mut connection, &ids);
        lock(&shared.acks).sending = false;
        shared.acks_changed.notify_all();
    }
}

/// Sends `ids` now, on `connection` (for a call that ran alone: its
/// acknowledgement must land before anything else begins). `false` when it
/// could not, after [`TRIES`] tries.
pub(crate) fn acknowledge_now(
    shared: &Shared,
    connection: &mut LazyConnection,
    ids: &[String],
) -> bool {
    send(shared, connection, ids)
}

/// Waits, up to `limit`, until no batch is being sent by the acker (what
/// waits in the list goes with the caller's next script). `false` if one
/// still is.
pub(crate) fn wait_until_sent(shared: &Shared, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    let mut acks = lock(&shared.acks);
    while acks.sending {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        acks = wait_timeout(&shared.acks_changed, acks, left).0;
    }
    true
}

/// The ids waiting, at most [`MAX_BATCH`], once they have waited
/// [`LINGER`] (or at once when closed); `None` once closed and empty.
fn next_batch(shared: &Shared) -> Option<Vec<String>> {
    let mut acks = lock(&shared.acks);
    loop {
        if !acks.ids.is_empty() {
            let until = Instant::now() + LINGER;
            while !acks.closed {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                acks = wait_timeout(&shared.acks_changed, acks, left).0;
            }
            // The reader may have taken them meanwhile.
            if acks.ids.is_empty() {
                continue;
            }
            let take = acks.ids.len().min(MAX_BATCH);
            acks.sending = true;
            return Some(acks.ids.drain(..take).collect());
        }
        if acks.closed {
            return None;
        }
        acks = wait(&shared.acks_changed, acks);
    }
}

/// For the reader's next fetch: the ids waiting, at most [`MAX_BATCH`].
pub(crate) fn take_batch(shared: &Shared) -> Vec<String> {
    let mut acks = lock(&shared.acks);
    let take = acks.ids.len().min(MAX_BATCH);
    acks.ids.drain(..take).collect()
}

/// Gives back ids a failed fetch did not acknowledge, for the acker to send.
pub(crate) fn give_back(shared: &Shared, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let mut acks = lock(&shared.acks);
    if acks.closed {
        log::warn!(
            "{} handled entries could not be acknowledged: they will be taken over and handled again",
            ids.len()
        );
        return;
    }
    acks.ids.extend(ids);
    drop(acks);
    shared.acks_changed.notify_one();
}

fn send(shared: &Shared, connection: &mut LazyConnection, ids: &[String]) -> bool {
    let mut invocation = shared.scripts.acknowledge.key(&shared.events_key);
    invocation
        .key(&shared.attempts_key)
        .arg(&shared.group)
        .arg(ids);
    for attempt in 1..=TRIES {
        // Safe to send twice: acknowledging is idempotent.
        let Err(e) = connection.run(|c| invocation.invoke::<u64>(c)) else {
            return true;
        };
        counters::add(&shared.counters.redis_errors, 1);
        if attempt == TRIES {
            log::warn!(
                "{} handled entries could not be acknowledged (Redis {}: {e}); they will be \
                 taken over and handled again",
                ids.len(),
                failure_class(&e)
            );
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}
