//! The worker's acknowledger thread: handler threads hand it the ids of
//! entries their handler returned `Ok` for, and it acknowledges them in
//! batches (`XACK <events> <group> id1 id2 …`), so that many entries share
//! one round trip (and, with `appendfsync always`, one `fsync`).

use std::thread;
use std::time::Duration;

use ::redis::{Connection, RedisError};

use super::connection::{breaks_connection, failure_class, is_stale};
use super::worker::{Counters, Shared};
use crate::sync::{lock, wait};

/// The most ids in one `XACK`.
const MAX_BATCH: usize = 1000;
/// Tries at one batch before it is given up on (its entries are delivered again).
const TRIES: u32 = 3;

/// Runs until [`Shared::close_acks`] was called and every handed id is sent.
pub(crate) fn run(shared: &Shared) {
    let mut connection = None;
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

fn acknowledge(shared: &Shared, connection: &mut Option<Connection>, ids: &[String]) {
    for attempt in 1..=TRIES {
        let reused = connection.is_some();
        let mut result = send(shared, connection, ids);
        if reused && matches!(&result, Err(e) if is_stale(e)) {
            *connection = None;
            result = send(shared, connection, ids);
        }
        let Err(e) = result else {
            return;
        };
        Counters::add(&shared.counters.redis_errors, 1);
        if breaks_connection(&e) {
            *connection = None;
        }
        if attempt == TRIES {
            log::warn!(
                "{} handled entries could not be acknowledged (Redis {}: {e}); they will be \
                 delivered and handled again",
                ids.len(),
                failure_class(&e)
            );
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn send(
    shared: &Shared,
    connection: &mut Option<Connection>,
    ids: &[String],
) -> Result<(), RedisError> {
    let connection = shared.connection(connection)?;
    ::redis::cmd("XACK")
        .arg(&shared.events_key)
        .arg(&shared.options.group)
        .arg(ids)
        .query::<u64>(connection)
        .map(drop)
}
