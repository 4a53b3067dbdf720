//! Deadlines: for a drain, a retry's backoff, a thread to end.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// An instant to finish by: a whole request's arrival, a retry's backoff, the
/// drain at shutdown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        // A duration too large to add is as good as no deadline.
        let now = Instant::now();
        Self(
            now.checked_add(after)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
        )
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }

    /// The time left, or `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }
}

/// Joins `thread` if it ends before `deadline`; returns `false`, leaving it
/// running, when it does not.
pub(crate) fn join_before(thread: JoinHandle<()>, deadline: Deadline) -> bool {
    while !thread.is_finished() && !deadline.passed() {
        thread::sleep(Duration::from_millis(2));
    }
    if thread.is_finished() {
        let _ = thread.join();
        true
    } else {
        false
    }
}
