//! Scale-out delivery on Redis Streams (feature `redis`; Valkey works the
//! same): many listeners and many workers, one delivery log, one dedupe
//! window.
//!
//! Two roles, in one process or in many, on as many machines as you like:
//!
//! - **Listeners** add each verified webhook to a Redis stream and answer
//!   200 only once Redis has it; no handler runs there. With the bundled
//!   listener (feature `listener`) that is `WebhookListener::redis_builder`;
//!   behind another HTTP server, [`RedisAppender`].
//! - **Workers** ([`RedisWorker`]) read the stream with a consumer group and
//!   run your [`WebhookHandler`](crate::WebhookHandler) through the same
//!   runtime as the listener's queued modes ([`crate::handler`]).
//!
//! The feature needs neither the listener nor the journal: a worker-only
//! program builds with `default-features = false, features = ["redis"]`.
//!
//! ```text
//!                 ┌────────────┐                          ┌──────────┐
//!  WasenderAPI ──▶│ listener A │──┐                   ┌──▶│ worker 1 │──▶ handler
//!  (behind a LB)  └────────────┘  │  ┌─────────────┐  │   └──────────┘
//!                 ┌────────────┐  ├─▶│    Redis    │──┤   ┌──────────┐
//!             ──▶ │ listener B │──┘  │ events/dead │  └──▶│ worker 2 │──▶ handler
//!                 └────────────┘     └─────────────┘      └──────────┘
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "listener")] {
//! use std::time::Duration;
//! use wasenderapi::redis::{RedisAppenderOptions, RedisOptions, RedisWorker};
//! use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
//!
//! struct Bot;
//! impl WebhookHandler for Bot {
//!     type Error = String;
//! }
//!
//! let redis = RedisOptions::new("redis://127.0.0.1:6379/");
//! // On the listener machines (a listener in Redis mode runs no handler):
//! let listener = WebhookListener::redis_builder(
//!     WebhookVerifier::with_secret("webhook-secret"),
//!     RedisAppenderOptions::new(redis.clone()).dedupe_ttl(Duration::from_secs(600)),
//! )
//! .spawn()?;
//! // On the worker machines:
//! let worker = RedisWorker::builder(redis, Bot).handler_threads(4).spawn()?;
//! # let _ = (listener, worker);
//! # }
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
//!
//! # Settings
//!
//! [`RedisOptions`] is where Redis is (URL, key prefix, timeouts): every role
//! takes it. [`RedisAppenderOptions`] adds what only the listeners use (the
//! dedupe time, `WAIT`, the stream cap, the pool size); the worker's own
//! settings are setters of [`RedisWorkerBuilder`], named like the
//! listener's builder where they mean the same (`handler_threads`,
//! `handler_retries`, `drain_timeout`, `on_dead_letter`).
//!
//! # Keys
//!
//! Every key starts with one prefix (default `{wasender}`,
//! [`RedisOptions::prefix`]); its `{…}` hash tag puts them all in one Redis
//! Cluster slot, which the scripts below need.
//!
//! | key | type | what |
//! |---|---|---|
//! | `{wasender}:events` | stream | one entry per accepted event; consumer group `wasender` |
//! | `{wasender}:dead` | stream | events the workers gave up on |
//! | `{wasender}:attempts` | hash | for each entry being handled: `<id>` handler calls begun, `<id>:ended` calls that answered (with an error or a panic), `<id>:last` and `<id>:error` how the last answered call ended; deleted with the entry's acknowledgement |
//! | `{wasender}:seen:<dedupe key>` | string `1` with a TTL | "this event was added", for [`RedisAppenderOptions::dedupe_ttl`] |
//!
//! Besides the workers, the group may hold the consumer
//! [`HANDED_BACK_CONSUMER`] (`handed-back`): what a stopping worker still
//! held, waiting to be taken over.
//!
//! Needs Redis 6.2 or later (`XPENDING … IDLE`,
//! `XTRIM MINID`); 7.0 or later is recommended (it drops pending entries
//! deleted from the stream). The connection is to one server (or to the
//! primary behind a proxy or Sentinel-managed address): Redis Cluster
//! clients are not supported yet, though the hash tag keeps the layout
//! ready for one.
//!
//! # Entry fields
//!
//! All values are Redis strings; numbers are decimal text.
//!
//! | field | in | value |
//! |---|---|---|
//! | `body` | events, dead | the raw request body, byte for byte as received and verified (JSON) |
//! | `event` | events, dead | the event name as received (`messages.received`, …) |
//! | `received_ms` | events, dead | when the listener received it, ms since the Unix epoch |
//! | `dedupe_key` | events, dead | the [dedupe key](crate::WasenderWebhookEvent::dedupe_key): `id:<hash>` of the event name and first message id, or `body:<hash>` of the name and body |
//! | `listener` | events, dead | which listener added it ([`RedisAppenderOptions::listener_id`]) |
//! | `requeued_from` | events | only on requeued entries: the dead letter's id |
//! | `attempts` | dead | how many handler calls began |
//! | `last_call` | dead | how the last ended: `failed`, `panicked`, `no_answer` (its worker died), or `not_begun` (the body is not an event) |
//! | `error` | dead | what the last call said (its error, the panic's message), or why none answered or began |
//! | `original_id` | dead | the entry's id in the events stream |
//! | `dead_ms` | dead | when it was given up on, ms since the Unix epoch |
//! | `consumer` | dead | the worker that gave up on it |
//!
//! [`RedisDeadLetters`] reads the dead stream as
//! [`DeadLetter`](crate::handler::DeadLetter)s, the record type the
//! listener's modes use too.
//!
//! A consumer in another language reads `{wasender}:events` with its own
//! consumer group (turn the workers' [trimming](RedisWorkerBuilder::trim_interval)
//! off then, or it trims what that group has not read), or joins group
//! `wasender` and follows the same protocol (see below).
//!
//! # What the listener does
//!
//! After verifying the signature and parsing the body, one Lua script
//! (`EVALSHA`, loaded on first use) runs `SET <seen key> 1 NX PX <ttl>` and,
//! only when that set it, `XADD {wasender}:events [MAXLEN ~ n] * <fields>`;
//! it returns the entry id or "duplicate". With
//! [`wait_replicas`](RedisAppenderOptions::wait_replicas), `WAIT n timeout`
//! follows. Then the answer: 200 when added, 200 with `"duplicate":true`
//! when the key was set, and **503 with `Retry-After`** when Redis is
//! unreachable, slower than the [command timeout](RedisOptions::command_timeout),
//! out of memory, read-only, or `WAIT` fell short (logged, and counted in
//! the listener's `stats().rejected_unavailable`; added events count in
//! `queued`, duplicates in `deduplicated`).
//!
//! The listener adds on threads of its own, one per connection of the
//! appender's pool ([`pool_size`](RedisAppenderOptions::pool_size), 32): the
//! event loop hands each verified event over and serves other requests
//! meanwhile, and the answer follows once Redis has said what became of the
//! event. So up to `pool_size` adds are in flight, which Redis writes (and
//! syncs) together; 64 more per thread may wait, and past that the answer
//! is 503 with `Retry-After`.
//!
//! # What the workers do
//!
//! **Attempts are handler calls that began** (see [`crate::handler`]), and a
//! worker never holds more than it can begin. Its reader thread asks only
//! for as many entries as it has idle handler threads, and records each
//! call as begun (`HINCRBY {wasender}:attempts <id> 1`) in the same script
//! that reads it (`XREADGROUP GROUP wasender <consumer> COUNT <idle threads>
//! STREAMS {wasender}:events >`); with nothing new it waits for the stream
//! to grow (`XREAD BLOCK`). The group is created at the start of the stream
//! (`XGROUP CREATE … 0 MKSTREAM`) when missing. Each entry's body is parsed
//! and dispatched (a panic is caught). On `Ok` the entry is acknowledged
//! (`XACK`, batched: handled entries share one script, which also deletes
//! their attempt records). On an error or a panic the answer is recorded
//! (`<id>:ended`, `<id>:last`, `<id>:error`), and the call is retried after
//! the backoff (`initial_backoff × 2^(n-1)`, at most `max_backoff`): the
//! retry first checks that the entry is still pending on this worker, and
//! records the new call as begun. After the call numbered `max_attempts`
//! failed, or when the body is not an event (no call begins), the entry
//! moves to the dead stream with how many calls began and how the last
//! ended, and is acknowledged, in one atomic script.
//!
//! **Takeovers.** Entries pending on a consumer and idle for longer than
//! [`claim_idle`](RedisWorkerBuilder::claim_idle) (a worker that died, was
//! killed, or hangs) are taken over, again no more than the idle threads
//! (`XPENDING … IDLE`, then `XCLAIM`, in one script), by what their attempt
//! records say:
//!
//! - every attempt began already: dead-lettered without another call;
//! - a call began and never answered (its worker died, maybe of this very
//!   event): run **alone**, once nothing else runs in this worker (it stops
//!   fetching for a quarter of the claim time to get there) and with
//!   nothing else begun until it answers and its answer is recorded, so that
//!   if it crashes the process again, the crash counts against it only. The
//!   other entries that were running beside it when the first worker died
//!   are taken over the same way, and handled;
//! - anything else: run like a new entry.
//!
//! So an event whose handler crashes every process that runs it (a
//! segfault, an abort, the OOM killer) is dead-lettered after
//! `max_attempts` calls, with `last_call` `no_answer`, and takes no other
//! event with it; an event no handler call began is never dead-lettered
//! for lack of attempts.
//!
//! **Graceful stop** ([`RedisWorker::shutdown`], a [`WorkerShutdownHandle`],
//! SIGTERM under `RedisWorker::run_until_signal` (feature `signals`)): no more entries are
//! fetched or begun; calls in progress finish for up to the
//! [drain timeout](RedisWorkerBuilder::drain_timeout) and are
//! acknowledged; what is left — entries waiting to be retried, and any
//! fetched and not begun (their recorded call is taken back) — is handed
//! back: moved to the consumer [`HANDED_BACK_CONSUMER`], idle for as long as
//! makes the other workers take it over once its backoff is over (at their
//! next takeover scan, every quarter of the claim time, at most 10 s); and
//! the worker removes itself from the group (`XGROUP DELCONSUMER`, only with
//! nothing pending on it: removing a consumer drops its pending entries).
//!
//! **Idle consumers.** Every worker removes from the group the consumers
//! that hold nothing and have been idle for
//! [`forget_idle_consumers`](RedisWorkerBuilder::forget_idle_consumers)
//! (default 10 minutes): workers that died, once their entries were taken
//! over, and the emptied hand-back consumer. Every
//! [`trim_interval`](RedisWorkerBuilder::trim_interval), acknowledged
//! history is trimmed (`XTRIM MINID ~ <oldest pending, or the next
//! undelivered entry>`).
//!
//! # Guarantees and running it
//!
//! What a 200 means, what survives a crash of a worker or of Redis, when an
//! event is handled twice, and the Redis settings (`appendfsync`,
//! `maxmemory-policy`, replicas) that make it hold are in the operations
//! guide, [Scaling out on Redis Streams](crate::guide#scaling-out-on-redis-streams),
//! with how to try it and inspect the stream with `redis-cli`.

mod acking;
mod append;
mod connection;
mod dead_letters;
mod entry;
mod handling;
mod options;
mod reading;
mod scripts;
mod state;
mod worker;

pub use append::{Appended, RedisAppender};
pub use dead_letters::RedisDeadLetters;
pub use options::{
    RedisAppenderOptions, RedisOptions, DEFAULT_GROUP, DEFAULT_KEY_PREFIX, HANDED_BACK_CONSUMER,
};
pub use state::RedisWorkerStats;
pub use worker::{
    RedisWorker, RedisWorkerBuilder, WorkerShutdownHandle, DEFAULT_WORKER_HANDLER_THREADS,
};
