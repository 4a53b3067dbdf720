//! Handlers and the runtime that calls them.
//!
//! [`WebhookHandler`] (one method per event type,
//! at the crate root) and [`dispatch`] are generated from the event
//! catalogue (`src/event/catalogue.rs`): one handler method and one dispatch
//! arm per entry, named by the entry.
//!
//! The rest of this module is what runs a handler outside a request, with
//! retries, the same way everywhere: the listener's queued and durable
//! delivery modes and the Redis worker (feature `redis`) share it.
//!
//! - [`HandlerRetryPolicy`]: how often and how patiently a failing handler
//!   is called again before its event becomes a [`DeadLetter`];
//! - [`dispatch_guarded`]: [`dispatch`] with a panic caught and reported as
//!   a [`HandlerFailure`];
//! - [`IntoSharedHandler`]: a handler given by value or as an `Arc`;
//! - [`DeadLetter`]: an event the runtime gave up on, with how many handler
//!   calls began and how the last one ended ([`LastCall`]);
//! - [`DEFAULT_DRAIN_TIMEOUT`]: how long a graceful stop waits for handler
//!   calls in progress.
//!
//! # Attempts
//!
//! An attempt is a handler call that **began**: the runtime counts one when
//! it calls the handler, never when an event is merely fetched or
//! delivered. After the call numbered
//! [`max_attempts`](HandlerRetryPolicy::max_attempts) failed, the event is
//! dead-lettered; an event no handler call began is never dead-lettered for
//! lack of attempts (only an entry whose body is not an event is, with
//! [`LastCall::NotBegun`]). Where the count is kept: in memory for the
//! listener's queued modes (a restart of durable mode starts again at 1),
//! in Redis for the Redis worker (so it survives the worker: see the
//! `redis` module).

// The runtime's internals serve the listener and the Redis worker; the
// webhook core alone (no feature) only has the public types.
#![cfg_attr(
    not(any(feature = "listener", feature = "redis")),
    allow(dead_code, unused_imports, unused_macros)
)]

use std::time::Duration;

mod attempts;
pub(crate) mod counters;
pub(crate) mod dead_letter;
mod guarded;
mod retry;
mod shared;
mod threads;
pub(crate) mod webhook;

#[cfg_attr(not(feature = "listener"), allow(unused_imports))]
pub(crate) use attempts::Ended;
pub(crate) use attempts::{report_dead_letter, run_attempts, Attempts, DeadLetterHook};
pub use dead_letter::{DeadLetter, DeadLetterId, LastCall};
pub(crate) use guarded::panic_message;
pub use guarded::{dispatch_guarded, HandlerFailure};
pub use retry::HandlerRetryPolicy;
pub use shared::IntoSharedHandler;
#[cfg_attr(not(feature = "redis"), allow(unused_imports))]
pub(crate) use threads::Hurry;
pub(crate) use threads::ThreadGroup;
pub use webhook::{dispatch, dispatch_typed};
// Public at the crate root only: `crate::WebhookHandler`.
pub(crate) use webhook::WebhookHandler;

/// How long a graceful stop waits for work in progress when not set with
/// `drain_timeout` (the listener's `WebhookListenerBuilder::drain_timeout`,
/// the Redis worker's `RedisWorkerBuilder::drain_timeout`): 30 s, counted
/// from the moment the stop begins. Both mean the same: the longest wait for
/// handler calls in progress (and, in the listener's queued modes, for the
/// queue to empty) before the rest is left behind.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
