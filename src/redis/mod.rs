//! Scale-out delivery on Redis Streams (feature `redis`; Valkey works the
//! same): many listeners and many workers, one delivery log, one dedupe
//! window.
//!
//! Two roles, in one process or in many, on as many machines as you like:
//!
//! - **Listeners** ([`WebhookListener`](crate::WebhookListener) with
//!   [`DeliveryMode::redis`](crate::listener::DeliveryMode::redis)) verify
//!   each webhook, add it to a Redis stream, and answer 200 only once Redis
//!   has it. No handler runs in a listener.
//! - **Workers** ([`RedisWorker`]) read the stream with a consumer group and
//!   run your [`WebhookHandler`](crate::WebhookHandler).
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
//! use wasenderapi::listener::DeliveryMode;
//! use wasenderapi::redis::{RedisOptions, RedisWorker};
//! use wasenderapi::{WasenderSyncClient, WebhookHandler, WebhookListener};
//!
//! struct Bot;
//! impl WebhookHandler for Bot {
//!     type Error = String;
//! }
//! struct Unused; // a listener in Redis mode runs no handler
//! impl WebhookHandler for Unused {
//!     type Error = String;
//! }
//!
//! let options = RedisOptions::new("redis://127.0.0.1:6379/");
//! // On the listener machines:
//! let client = WasenderSyncClient::new("api-key").with_webhook_secret("webhook-secret");
//! let listener = WebhookListener::builder(client, Unused)
//!     .delivery_mode(DeliveryMode::redis(options.clone()))
//!     .spawn()?;
//! // On the worker machines:
//! let worker = RedisWorker::builder(options, Bot).spawn()?;
//! # let _ = (listener, worker);
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
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
//! | `{wasender}:seen:<dedupe key>` | string `1` with a TTL | "this event was added", for [`RedisOptions::dedupe_ttl`] |
//!
//! Needs Redis 6.2 or later (`XAUTOCLAIM`, `XTRIM MINID`); 7.0 or later is
//! recommended (it reports pending entries deleted from the stream). The
//! connection is to one server (or to the primary behind a proxy or
//! Sentinel-managed address): Redis Cluster clients are not supported yet,
//! though the hash tag keeps the layout ready for one.
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
//! | `dedupe_key` | events, dead | the dedupe key: `id:<hash>` of the event name and first message id, or `body:<hash>` of the name and body |
//! | `listener` | events, dead | which listener added it ([`RedisOptions::listener_id`]) |
//! | `requeued_from` | events | only on requeued entries: the dead letter's id |
//! | `error` | dead | the handler's last error, or why the entry could not be handled |
//! | `attempts` | dead | deliveries made before giving up |
//! | `original_id` | dead | the entry's id in the events stream |
//! | `dead_ms` | dead | when it was given up on, ms since the Unix epoch |
//! | `consumer` | dead | the worker that gave up on it |
//!
//! A consumer in another language reads `{wasender}:events` with its own
//! consumer group (turn the workers' [trimming](RedisOptions::trim_interval)
//! off then, or it trims what that group has not read), or joins group
//! `wasender` and follows the same protocol: `XACK` after handling, and
//! `XAUTOCLAIM` what stays pending too long.
//!
//! # What the listener does
//!
//! After verifying the signature and parsing the body, one Lua script
//! (`EVALSHA`, loaded on first use) runs `SET <seen key> 1 NX PX <ttl>` and,
//! only when that set it, `XADD {wasender}:events [MAXLEN ~ n] * <fields>`;
//! it returns the entry id or "duplicate". With
//! [`wait_replicas`](RedisOptions::wait_replicas), `WAIT n timeout` follows.
//! Then the answer: 200 when added, 200 with `"duplicate":true` when the
//! key was set, and **503 with `Retry-After`** when Redis is unreachable,
//! slower than the [command timeout](RedisOptions::command_timeout), out of
//! memory, read-only, or `WAIT` fell short (logged, and counted in
//! [`ListenerStats::rejected_unavailable`](crate::listener::ListenerStats::rejected_unavailable);
//! added events count in `queued`, duplicates in `deduplicated`).
//! [`RedisAppender`] is that step on its own, for use behind another HTTP server.
//!
//! # What the workers do
//!
//! A reader thread fetches entries for the handler threads (plus a
//! [prefetch](RedisWorkerBuilder::prefetch)): first entries idle on any
//! consumer for longer than
//! [`claim_idle`](RedisOptions::claim_idle) (`XAUTOCLAIM`), then new ones
//! (`XREADGROUP GROUP wasender <consumer> COUNT n BLOCK ms STREAMS
//! {wasender}:events >`). The group is created at the start of the stream
//! (`XGROUP CREATE … 0 MKSTREAM`) when missing. Each entry's body is parsed
//! and dispatched to the handler (a panic is caught); on `Ok` the entry is
//! acknowledged (`XACK`, batched: handled entries waiting to be acknowledged
//! share one command). On an error it is retried after a backoff
//! (`initial_backoff × 2^(n-1)`, at most `max_backoff`): the retry first
//! re-claims it (`XCLAIM`), which counts a delivery in Redis and fails if
//! another worker took it over meanwhile. An entry delivered `max_attempts`
//! times without success, or whose body is not an event, moves to the dead
//! stream with the error and the attempts, and is acknowledged, in one
//! atomic script. Every [`trim_interval`](RedisOptions::trim_interval), the
//! acknowledged history is trimmed (`XTRIM MINID ~ <oldest pending, or the
//! next undelivered entry>`).
//!
//! # Guarantees
//!
//! - **No acknowledged event is lost while Redis keeps its data.** A 200
//!   is sent only after the entry is in Redis (and confirmed by the
//!   configured replicas). Entries are deleted only once acknowledged
//!   (trimming) — except with [`max_stream_len`](RedisOptions::max_stream_len),
//!   which caps the stream whatever was handled. What "in Redis" survives
//!   is Redis's own persistence: with `appendonly yes` and
//!   `appendfsync always`, an acknowledged event survives a Redis crash or
//!   `SIGKILL` (Redis answers only after the `fsync`); with `everysec`, up to
//!   about a second of acknowledged events can be lost in a crash of the
//!   Redis machine; without persistence, everything in memory. With
//!   replicas, `WAIT` protects against losing the primary. Run Redis with
//!   `maxmemory-policy noeviction`: an evicting policy may delete the stream.
//! - **At least once.** An entry is handled until the handler returns `Ok`
//!   and the `XACK` lands, or it is dead-lettered. A worker that dies
//!   (crash, `SIGKILL`, lost machine) leaves its entries pending; another
//!   worker takes them over once they have been idle for `claim_idle`. An
//!   entry is handled more than once when: a worker died after the handler
//!   returned and before its `XACK` landed; Redis lost an acknowledgement
//!   (crash with `everysec`); a handler call outlived `claim_idle` (another
//!   worker took it over); or the worker could not reach Redis to
//!   acknowledge. Handlers that must not act twice should key on the
//!   message id.
//! - **Attempts are counted by Redis.** Each delivery (first read, takeover,
//!   retry) increments the entry's delivery count, so retries and the
//!   dead-letter limit survive worker restarts, and an event that crashes
//!   every worker that runs it is dead-lettered after `max_attempts`
//!   deliveries instead of crashing workers forever.
//! - **Dedupe is shared and atomic.** The same event sent to two listeners
//!   within the dedupe window is added once: the dedupe check and the
//!   append are one script, so a duplicate answer never hides an event that
//!   is not in the stream. Left open: a failed `WAIT` removes the key again
//!   (the sender's retry is then added a second time: handled twice rather
//!   than lost), and a duplicate that arrives while the first copy is still
//!   waiting for `WAIT` is answered 200 before that copy is confirmed.
//!   Requeued dead letters bypass dedupe.
//! - **Ordering**: entries are added in the order Redis ran the appends
//!   (not the order of the events' timestamps), and read in stream order,
//!   but several handler threads and workers run them side by side, and
//!   retries and takeovers run later: there is no ordering between events.
//!   Use one worker with one handler thread for "mostly in order", never
//!   strict.
//! - **Graceful stop**: [`RedisWorker::shutdown`] finishes the handler calls
//!   in progress and acknowledges them; what the worker fetched but did not
//!   start is released to the other workers at once, and what was waiting
//!   to be retried stays pending and is taken over after `claim_idle`.

mod acking;
mod append;
mod connection;
mod dead_letters;
mod entry;
mod handling;
mod options;
mod reading;
mod scripts;
mod worker;

pub use append::{Appended, RedisAppender};
pub use dead_letters::RedisDeadLetters;
pub use options::{
    RedisAppenderOptions, RedisOptions, DEFAULT_GROUP, DEFAULT_KEY_PREFIX, HANDED_BACK_CONSUMER,
};
pub use worker::{RedisWorker, RedisWorkerBuilder, RedisWorkerStats, WorkerShutdownHandle};
