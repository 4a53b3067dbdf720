//! `warn` lines for rejected requests, rate-limited so that a flood of bad
//! requests cannot fill the disk with logs.
//!
//! A token bucket per listener: `REJECTION_WARNINGS_PER_SECOND` tokens,
//! refilled to full once a second. Each rejected request takes a token and is
//! logged; when none is left it is only counted. The first line logged after
//! the refill is preceded by one summary line with that count, and so is the
//! end of the listener if the count is still unsaid. So a flood costs at most
//! `REJECTION_WARNINGS_PER_SECOND + 1` lines a second, and no rejection goes
//! unaccounted for.

use std::fmt::Display;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// The most rejected requests logged at `warn` per second by one listener;
/// the rest are counted and summed up in one line (see the
/// [operations guide](crate::guide#logging)).
pub(crate) const REJECTION_WARNINGS_PER_SECOND: u32 = 10;

/// The refill period of the bucket.
const WINDOW: Duration = Duration::from_secs(1);

/// The statuses logged as rejections (500 is a handler failure, logged on its own).
pub(crate) fn is_rejection(status: u16) -> bool {
    matches!(status, 400 | 401 | 404 | 405 | 408 | 413 | 431 | 503 | 505)
}

/// The rate-limited rejection log of one listener.
#[derive(Debug)]
pub(crate) struct RejectionLog {
    bucket: Mutex<Bucket>,
}

/// What to do with one rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Log it, after a summary line when `suppressed` is not zero.
    Log { suppressed: u64 },
    /// Count it only.
    Suppress,
}

#[derive(Debug)]
struct Bucket {
    per_window: u32,
    /// When the tokens were last refilled; `None` before the first rejection.
    refilled: Option<Instant>,
    tokens: u32,
    /// Rejections not logged since the last line that said how many.
    suppressed: u64,
}

impl Bucket {
    fn new(per_window: u32) -> Self {
        Self {
            per_window: per_window.max(1),
            refilled: None,
            tokens: 0,
            suppressed: 0,
        }
    }

    fn take(&mut self, now: Instant) -> Verdict {
        let due = self
            .refilled
            .is_none_or(|at| now.saturating_duration_since(at) >= WINDOW);
        let mut unsaid = 0;
        if due {
            self.refilled = Some(now);
            self.tokens = self.per_window;
            unsaid = std::mem::take(&mut self.suppressed);
        }
        if self.tokens == 0 {
            self.suppressed += 1;
            return Verdict::Suppress;
        }
        self.tokens -= 1;
        Verdict::Log { suppressed: unsaid }
    }
}

impl Default for RejectionLog {
    fn default() -> Self {
        Self::with_rate(REJECTION_WARNINGS_PER_SECOND)
    }
}

impl RejectionLog {
    fn with_rate(per_second: u32) -> Self {
        Self {
            bucket: Mutex::new(Bucket::new(per_second)),
        }
    }

    /// Logs (or counts) one rejected request from `peer`: `request` is its
    /// method and path when they were read, `reason` the text sent back.
    pub fn warn(&self, peer: impl Display, request: Option<&str>, status: u16, reason: &str) {
        let verdict = lock(&self.bucket).take(Instant::now());
        let Verdict::Log { suppressed } = verdict else {
            return;
        };
        if suppressed > 0 {
            summary(suppressed);
        }
        match request {
            Some(request) => log::warn!("rejected {request} from {peer}: {status} {reason}"),
            None => log::warn!("rejected a request from {peer}: {status} {reason}"),
        }
    }

    /// Logs (or counts) a warning that is not about one request (accepting
    /// failed, say), under the same rate limit.
    pub fn warn_other(&self, message: &str) {
        let verdict = lock(&self.bucket).take(Instant::now());
        let Verdict::Log { suppressed } = verdict else {
            return;
        };
        if suppressed > 0 {
            summary(suppressed);
        }
        log::warn!("{message}");
    }

    /// Logs the count of rejections not logged yet, if any (at shutdown).
    pub fn flush(&self) {
        let suppressed = std::mem::take(&mut lock(&self.bucket).suppressed);
        if suppressed > 0 {
            summary(suppressed);
        }
    }
}

fn summary(suppressed: u64) {
    log::warn!(
        "suppressed {suppressed} more rejection(s) within one second \
         (at most {REJECTION_WARNINGS_PER_SECOND} are logged a second)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(bucket: &mut Bucket, at: Instant, n: usize) -> Vec<Verdict> {
        (0..n).map(|_| bucket.take(at)).collect()
    }

    #[test]
    fn the_first_n_in_a_second_are_logged_and_the_rest_counted() {
        let start = Instant::now();
        let mut bucket = Bucket::new(3);
        let first = verdicts(&mut bucket, start, 5);
        assert_eq!(
            first,
            [
                Verdict::Log { suppressed: 0 },
                Verdict::Log { suppressed: 0 },
                Verdict::Log { suppressed: 0 },
                Verdict::Suppress,
                Verdict::Suppress,
            ]
        );
        // Still within the same second: nothing more is logged.
        assert_eq!(
            bucket.take(start + Duration::from_millis(999)),
            Verdict::Suppress
        );
    }

    #[test]
    fn the_next_second_starts_with_the_count_of_what_was_left_out() {
        let start = Instant::now();
        let mut bucket = Bucket::new(2);
        verdicts(&mut bucket, start, 10);
        let later = start + Duration::from_secs(1);
        assert_eq!(bucket.take(later), Verdict::Log { suppressed: 8 });
        assert_eq!(bucket.take(later), Verdict::Log { suppressed: 0 });
        assert_eq!(bucket.take(later), Verdict::Suppress);
    }

    #[test]
    fn a_quiet_period_costs_nothing_and_refills_the_bucket() {
        let start = Instant::now();
        let mut bucket = Bucket::new(2);
        verdicts(&mut bucket, start, 2);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(
            verdicts(&mut bucket, much_later, 3),
            [
                Verdict::Log { suppressed: 0 },
                Verdict::Log { suppressed: 0 },
                Verdict::Suppress
            ]
        );
    }

    #[test]
    fn flush_forgets_what_it_said() {
        let log = RejectionLog::with_rate(1);
        let now = Instant::now();
        verdicts(&mut lock(&log.bucket), now, 4);
        assert_eq!(lock(&log.bucket).suppressed, 3);
        log.flush();
        assert_eq!(lock(&log.bucket).suppressed, 0);
    }

    #[test]
    fn only_client_and_capacity_errors_are_rejections() {
        for status in [400, 401, 404, 405, 408, 413, 431, 503, 505] {
            assert!(is_rejection(status), "{status}");
        }
        for status in [100, 200, 500] {
            assert!(!is_rejection(status), "{status}");
        }
    }
}
