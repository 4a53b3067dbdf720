//! The integration tests, as one test binary: one module per concern, one
//! [`support`] tree of shared helpers. One binary links the crate once
//! (instead of once per file), and runs every test in threads side by side.
//! So no test changes what the process shares: signals, limits, kills and
//! memory measurements go to child processes ([`support::process`]), the
//! one logger is installed once for the whole binary ([`support::logs`]),
//! and the heaviest tests keep apart ([`support::heavy`]).
//!
//! Run one module with a filter: `cargo test --all-features --test it listener_tls::`.

// With some features off, some helpers have no user left.
#![cfg_attr(
    not(all(
        feature = "client",
        feature = "listener",
        feature = "signals",
        feature = "metrics",
        feature = "tls",
        feature = "redis"
    )),
    allow(dead_code, unused_imports)
)]

mod support;

#[cfg(all(feature = "client", feature = "listener"))]
mod client_errors;
#[cfg(all(feature = "client", feature = "listener"))]
mod client_requests;
#[cfg(all(feature = "client", feature = "listener"))]
mod client_responses;
#[cfg(all(feature = "client", feature = "listener"))]
mod client_webhook_glue;
#[cfg(feature = "listener")]
mod dead_letter_replay;
#[cfg(feature = "listener")]
mod delivery_faults;
#[cfg(feature = "listener")]
mod delivery_modes;
mod event_fixtures;
mod event_shapes;
#[cfg(all(unix, feature = "listener", feature = "signals", feature = "metrics"))]
mod example_listen;
#[cfg(all(feature = "listener", target_os = "linux"))]
mod journal_backlog;
#[cfg(feature = "listener")]
mod journal_lock;
#[cfg(feature = "listener")]
mod listener_concurrency;
#[cfg(feature = "listener")]
mod listener_health;
#[cfg(all(target_os = "linux", feature = "listener", feature = "signals"))]
mod listener_hostile;
#[cfg(feature = "listener")]
mod listener_lifecycle;
#[cfg(feature = "listener")]
mod listener_logging;
#[cfg(feature = "metrics")]
mod listener_metrics;
#[cfg(feature = "listener")]
mod listener_responses;
#[cfg(feature = "listener")]
mod listener_robustness;
#[cfg(feature = "listener")]
mod listener_shutdown;
#[cfg(all(target_os = "linux", feature = "listener", feature = "signals"))]
mod listener_signals;
#[cfg(feature = "tls")]
mod listener_tls;
mod properties;
#[cfg(all(feature = "redis", feature = "listener", feature = "client"))]
mod redis_delivery;
#[cfg(all(feature = "redis", feature = "listener", feature = "client"))]
mod redis_faults;
#[cfg(all(feature = "redis", feature = "listener", feature = "client"))]
mod redis_scale_out;
mod webhook_errors;
