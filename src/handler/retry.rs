//! [`HandlerRetryPolicy`]: how often, and how patiently, a failing handler is called again.

use std::time::Duration;

/// How often, and how patiently, a failing handler is called again: by the
/// listener's queued and durable modes (inline mode never retries: the
/// sender may) and by the Redis worker. Exponential backoff: the wait after
/// failed call `n` is `initial_backoff × 2^(n-1)`, at most `max_backoff`.
/// Once the call numbered `max_attempts` has failed, the event is
/// dead-lettered. Attempts count handler calls that **began** (see the
/// [module docs](super#attempts)).
///
/// The default is 5 attempts, 100 ms doubling up to 30 s.
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::handler::HandlerRetryPolicy;
///
/// let policy = HandlerRetryPolicy::default()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(10))
///     .max_backoff(Duration::from_millis(15));
/// assert_eq!(policy.attempts(), 3);
/// assert_eq!(policy.backoff(1), Duration::from_millis(10));
/// assert_eq!(policy.backoff(2), Duration::from_millis(15));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerRetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for HandlerRetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl HandlerRetryPolicy {
    /// One attempt, no retry: a failure is dead-lettered at once.
    pub fn no_retries() -> Self {
        Self::default().max_attempts(1)
    }

    /// Handler calls in all, the first included (at least 1; default 5).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait after the first failure (default 100 ms).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest wait between calls (default 30 s).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The configured number of attempts.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after failed call number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial_backoff
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    /// The longest wait this policy ever makes.
    pub(crate) fn longest_backoff(&self) -> Duration {
        self.backoff(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let policy = HandlerRetryPolicy::default()
            .initial_backoff(Duration::from_millis(10))
            .max_backoff(Duration::from_millis(35));
        let waits: Vec<u128> = (1..=4).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(waits, [10, 20, 35, 35]);
        assert_eq!(policy.longest_backoff(), Duration::from_millis(35));
    }

    #[test]
    fn at_least_one_attempt() {
        assert_eq!(HandlerRetryPolicy::default().max_attempts(0).attempts(), 1);
        assert_eq!(HandlerRetryPolicy::no_retries().attempts(), 1);
    }
}
