//! The client's one retry loop ([`RetryPolicy::run`]), its bounded retry
//! policy, and the pure decision of whether (and how long) to wait before
//! trying a request again. Every REST call and every media download goes
//! through `run`.

use std::time::Duration;

use crate::error::{Result, WasenderError};

/// Default [`RetryPolicy::max_retries`]: retries after the first attempt.
const DEFAULT_MAX_RETRIES: u32 = 2;
/// Default [`RetryPolicy::max_wait`]: the longest single wait before a retry.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);
/// Default [`RetryPolicy::initial_backoff`]: the first network/5xx backoff.
const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);

/// When and how the client retries a failed request.
///
/// **On by default**, conservatively: up to 2 retries, never waiting longer
/// than 10 s for one retry.
///
/// - **429 Too Many Requests** is retried for every request, sends included:
///   the API refused the request, so sending it again cannot duplicate a
///   message. The client waits what the API asked (`Retry-After` header or
///   `retry_after` field); when the API asks for longer than
///   [`max_wait`](Self::max_wait) it does not wait at all and returns the
///   429 error at once (with its `retry_after`), so a handler never blocks
///   for a minute behind a trial account's limit.
/// - **Network failures, timeouts and 500/502/503/504** are retried only for
///   requests that are safe to repeat (reads, edits, deletes, read receipts,
///   presence, uploads, …). A send (`/send-message`, resend, group or session
///   creation, API-key regeneration) that fails ambiguously is **not**
///   re-sent — the message may already be on its way — unless you opt in with
///   [`retry_non_idempotent`](Self::retry_non_idempotent). A connection that
///   could not be opened at all (refused, DNS failure, connect timeout) sent
///   nothing, so it is retried for every request.
///
/// Backoff between those retries starts at
/// [`initial_backoff`](Self::initial_backoff) and doubles, capped by
/// `max_wait`.
///
/// | Setting | Default |
/// |---|---|
/// | [`max_retries`](Self::max_retries) | 2 (so at most 3 attempts) |
/// | [`max_wait`](Self::max_wait) | 10 s |
/// | [`initial_backoff`](Self::initial_backoff) | 500 ms, doubling |
/// | [`retry_rate_limited`](Self::retry_rate_limited) | `true` |
/// | [`retry_non_idempotent`](Self::retry_non_idempotent) | `false` |
///
/// Media downloads ([`download_media`](crate::WasenderSyncClient::download_media))
/// use the same policy; they are always safe to repeat.
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::WasenderSyncClient;
/// use wasenderapi::client::RetryPolicy;
///
/// let client = WasenderSyncClient::builder("api-key").retry_policy(
///     RetryPolicy::default()
///         .max_retries(3)
///         .max_wait(Duration::from_secs(30)),
/// ).build();
/// assert_eq!(client.retry_policy().get_max_retries(), 3);
/// let no_retries = RetryPolicy::none();
/// assert_eq!(no_retries.get_max_retries(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    max_wait: Duration,
    initial_backoff: Duration,
    retry_rate_limited: bool,
    retry_non_idempotent: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            max_wait: DEFAULT_MAX_WAIT,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            retry_rate_limited: true,
            retry_non_idempotent: false,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries: every failure is returned at once.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// How many times a request may be retried after the first attempt (default 2).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest the client waits before one retry (default 10 s). A 429
    /// asking for longer is returned as an error instead of waited for.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The first backoff for network and 5xx retries; it doubles each time (default 500 ms).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Whether 429 responses are retried after the requested wait (default `true`).
    pub fn retry_rate_limited(mut self, retry: bool) -> Self {
        self.retry_rate_limited = retry;
        self
    }

    /// Whether requests that are not safe to repeat (sending a message,
    /// creating a group or session, regenerating a key) are also retried after
    /// an ambiguous failure (a network error after the request was sent, a
    /// timeout, a 5xx). Default `false`: opting in can deliver a message twice.
    pub fn retry_non_idempotent(mut self, retry: bool) -> Self {
        self.retry_non_idempotent = retry;
        self
    }

    /// The configured number of retries.
    pub fn get_max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The configured longest wait.
    pub fn get_max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Whether 429 responses are retried.
    pub fn retries_rate_limited(&self) -> bool {
        self.retry_rate_limited
    }

    /// Whether non-idempotent requests are retried after ambiguous failures.
    pub fn retries_non_idempotent(&self) -> bool {
        self.retry_non_idempotent
    }

    /// The client's one retry loop: calls `attempt` until it succeeds, or
    /// until [`Self::delay`] says to give up, sleeping between attempts, and
    /// returns the last error. `idempotent` says whether the request is safe
    /// to repeat after an ambiguous failure.
    pub(crate) fn run<T>(
        &self,
        idempotent: bool,
        mut attempt: impl FnMut() -> std::result::Result<T, FailedAttempt>,
    ) -> Result<T> {
        let mut retries = 0;
        loop {
            let failed = match attempt() {
                Ok(value) => return Ok(value),
                Err(failed) => failed,
            };
            let Some(wait) = self.delay(retries, &failed.failure, idempotent) else {
                return Err(failed.error);
            };
            retries += 1;
            log::debug!(
                "wasenderapi: {}; retry {retries} of {} in {wait:?}",
                failed.error,
                self.max_retries
            );
            std::thread::sleep(wait);
        }
    }

    /// The exponential backoff before retry number `retry` (0-based), capped by `max_wait`.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_wait)
            .min(self.max_wait)
    }

    /// How long to wait before retrying after `failure`, or `None` to give up.
    ///
    /// `retry` is the number of retries already made; `idempotent` says whether
    /// the request is safe to repeat.
    fn delay(&self, retry: u32, failure: &Failure, idempotent: bool) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        let may_repeat = idempotent || self.retry_non_idempotent;
        match failure {
            Failure::RateLimited { retry_after } => {
                if !self.retry_rate_limited {
                    return None;
                }
                let wait = retry_after.unwrap_or_else(|| self.backoff(retry));
                (wait <= self.max_wait).then_some(wait)
            }
            Failure::ServerError { retry_after } if may_repeat => {
                let wait = retry_after.unwrap_or_else(|| self.backoff(retry));
                (wait <= self.max_wait).then_some(wait)
            }
            Failure::NotSent => Some(self.backoff(retry)),
            Failure::Ambiguous if may_repeat => Some(self.backoff(retry)),
            _ => None,
        }
    }
}

/// One failed attempt: the error to return if no retry follows, and how
/// retrying should treat it.
#[derive(Debug)]
pub(crate) struct FailedAttempt {
    /// The error the caller gets when the policy gives up.
    pub(crate) error: WasenderError,
    /// The failure's class, for [`RetryPolicy::delay`].
    pub(crate) failure: Failure,
}

impl FailedAttempt {
    /// A failure that retrying cannot mend (a bad request, an oversized download).
    pub(crate) fn permanent(error: WasenderError) -> Self {
        Self {
            error,
            failure: Failure::Permanent,
        }
    }
}

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 429: the request was refused, never processed.
    RateLimited { retry_after: Option<Duration> },
    /// 500/502/503/504: the request may or may not have been processed.
    ServerError { retry_after: Option<Duration> },
    /// The connection could not be opened: nothing was sent.
    NotSent,
    /// The request may have reached the server (reset, timeout while waiting).
    Ambiguous,
    /// Any other error: retrying will not help.
    Permanent,
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn rate_limit_waits_what_the_api_asked_for_sends_too() {
        let p = RetryPolicy::default();
        let f = Failure::RateLimited {
            retry_after: Some(S(5)),
        };
        assert_eq!(p.delay(0, &f, false), Some(S(5)));
        assert_eq!(p.delay(1, &f, true), Some(S(5)));
        assert_eq!(p.delay(2, &f, true), None, "retries exhausted");
    }

    #[test]
    fn rate_limit_longer_than_max_wait_gives_up_at_once() {
        let p = RetryPolicy::default();
        let f = Failure::RateLimited {
            retry_after: Some(S(60)),
        };
        assert_eq!(p.delay(0, &f, true), None);
        assert_eq!(p.clone().max_wait(S(60)).delay(0, &f, true), Some(S(60)));
    }

    #[test]
    fn ambiguous_failures_are_not_repeated_for_sends_unless_opted_in() {
        let p = RetryPolicy::default();
        let f = Failure::ServerError { retry_after: None };
        assert_eq!(p.delay(0, &f, false), None);
        assert_eq!(p.delay(0, &Failure::Ambiguous, false), None);
        assert_eq!(p.delay(0, &f, true), Some(Duration::from_millis(500)));
        let opted = p.retry_non_idempotent(true);
        assert_eq!(
            opted.delay(0, &Failure::Ambiguous, false),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn unsent_requests_are_always_retried() {
        let p = RetryPolicy::default();
        assert!(p.delay(0, &Failure::NotSent, false).is_some());
        assert_eq!(p.delay(0, &Failure::Permanent, true), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default().max_retries(40);
        assert_eq!(p.backoff(0), Duration::from_millis(500));
        assert_eq!(p.backoff(1), Duration::from_millis(1000));
        assert_eq!(p.backoff(2), Duration::from_millis(2000));
        assert_eq!(p.backoff(30), S(10));
    }

    fn failed(failure: Failure) -> FailedAttempt {
        FailedAttempt {
            error: WasenderError::InvalidArgument(format!("{failure:?}")),
            failure,
        }
    }

    #[test]
    fn run_retries_until_success() {
        let p = RetryPolicy::default().initial_backoff(Duration::ZERO);
        let mut attempts = 0;
        let value = p.run(true, || {
            attempts += 1;
            if attempts < 3 {
                Err(failed(Failure::Ambiguous))
            } else {
                Ok(attempts)
            }
        });
        assert_eq!(value.expect("third attempt succeeds"), 3);
    }

    #[test]
    fn run_returns_the_last_error_when_retries_are_exhausted() {
        let p = RetryPolicy::default().initial_backoff(Duration::ZERO);
        let mut attempts = 0;
        let result: Result<()> = p.run(true, || {
            attempts += 1;
            Err(failed(Failure::NotSent))
        });
        assert_eq!(attempts, 3, "1 attempt + 2 retries");
        assert!(matches!(result, Err(WasenderError::InvalidArgument(m)) if m == "NotSent"));
    }

    #[test]
    fn run_does_not_repeat_ambiguous_failures_of_sends() {
        let p = RetryPolicy::default().initial_backoff(Duration::ZERO);
        let mut attempts = 0;
        let result: Result<()> = p.run(false, || {
            attempts += 1;
            Err(failed(Failure::Ambiguous))
        });
        assert!(result.is_err());
        assert_eq!(attempts, 1);
    }

    #[test]
    fn none_never_retries() {
        let p = RetryPolicy::none();
        assert_eq!(p.delay(0, &Failure::NotSent, true), None);
    }
}
