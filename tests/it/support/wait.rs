//! Waiting for a condition, with a deadline: the one way these tests wait.
//!
//! A test never sleeps and then asserts that something did not happen: it
//! waits here for a positive sign that the system got past the point where
//! it would have happened (a later event handled, a counter moved, a line
//! printed), and fails with a message naming what it waited for.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(5);

/// Polls `done` until it holds (`true`) or `timeout` has passed (`false`).
/// For tests that still have something to clean up or report before they
/// fail; otherwise [`wait_for`] says what went wrong by itself.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `done` until it holds; panics naming `what` once `timeout` has passed.
#[track_caller]
pub fn wait_for(what: impl Display, timeout: Duration, done: impl FnMut() -> bool) {
    assert!(
        wait_until(timeout, done),
        "gave up after {timeout:?} waiting for {what}"
    );
}
