//! The worker's acknowledger thread: handler threads hand it the ids of
//! entries their handler returned `Ok` for, and it acknowledges them in
//! batches (one script: `XACK <events> <group> id1 id2 …` and the attempts
//! forgotten), so that many entries share one round trip (and, with
//! `appendfsync always`, one `fsync`).

use std::thread;
use std::time::Duration;

use super::connection::{failure_class, LazyConnection};
use super::worker::Shared;
use crate::handler::counters;
use crate::sync::{lock, wait};

/// The most ids in one acknowledgement.
const MAX_BATCH: usize = 1000;
/// Tries at one batch before it is given up on (its entries are handled again).
pub(crate) const TRIES: u32 = 3;

/// Runs until [`Shared::close_acks`](super::worker::Shared) was called and every handed id is sent.
pub(crate) fn run(shared: &Shared) {
    let mut connection = shared.connector.lazy();
    while let Some(ids) = next_batch(shared) {
        acknowledge(shared, &mut connection, &ids);
    }
}

/// The ids waiting, at most [`MAX_BATCH`]; `None` once closed and empty.
fn next_batch(shared: &Shared) -> Option<Vec<String>> {
    let mut acks = lock(&shared.acks);
    loop {
        if !acks.ids.is_empty() {
            let take = acks.ids.len().min(MAX_BATCH);
            return Some(acks.ids.drain(..take).collect());
        }
        if acks.closed {
            return None;
        }
        acks = wait(&shared.acks_changed, acks);
    }
}

fn acknowledge(shared: &Shared, connection: &mut LazyConnection, ids: &[String]) {
    let mut invocation = shared.scripts.acknowledge.key(&shared.events_key);
    invocation
        .key(&shared.attempts_key)
        .arg(&shared.group)
        .arg(ids);
    for attempt in 1..=TRIES {
        // Safe to send twice: acknowledging is idempotent.
        let Err(e) = connection.run(|c| invocation.invoke::<u64>(c)) else {
            return;
        };
        counters::add(&shared.counters.redis_errors, 1);
        if attempt == TRIES {
            log::warn!(
                "{} handled entries could not be acknowledged (Redis {}: {e}); they will be \
                 taken over and handled again",
                ids.len(),
                failure_class(&e)
            );
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
}
