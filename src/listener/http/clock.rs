//! Where the core reads the time: the system's monotonic clock, or one a
//! test or fuzz target moves by hand, so that timeouts can be driven without
//! waiting.

use std::time::Instant;

/// A source of the current instant.
pub(crate) trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that stands still until moved (tests and fuzzing).
#[cfg(any(test, fuzzing))]
#[derive(Debug)]
pub(crate) struct ManualClock(std::sync::Mutex<Instant>);

#[cfg(any(test, fuzzing))]
impl ManualClock {
    pub fn new() -> Self {
        Self(std::sync::Mutex::new(Instant::now()))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = crate::sync::lock(&self.0);
        *now += by;
    }
}

#[cfg(any(test, fuzzing))]
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *crate::sync::lock(&self.0)
    }
}
