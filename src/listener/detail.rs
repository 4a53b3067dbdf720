//! What the Prometheus metrics count beyond the listener's plain counters
//! (feature `metrics`): answers by status, events by type, handler
//! durations. Atomics only; `metrics.rs` encodes them.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::event::envelope::WasenderWebhookEventType;

/// Upper bounds, in seconds, of the handler duration histogram's buckets
/// (then `+Inf`): 1 ms to 30 s.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Status codes counted: 100 to 599.
const FIRST_STATUS: u16 = 100;
const STATUS_SLOTS: usize = 500;

/// The `event` label of events of a type this crate does not know: a fixed
/// value, so that a sender cannot grow the label set.
pub(crate) const UNKNOWN_EVENT: &str = "unknown";

/// What the metrics count beyond the listener's counters.
pub(crate) struct Tracked {
    path: String,
    journal_dir: Option<PathBuf>,
    /// Answers by status, indexed from [`FIRST_STATUS`].
    statuses: Box<[AtomicU64]>,
    /// Verified events by [`WasenderWebhookEventType::KNOWN`] index; the last slot is unknown types.
    events: Box<[AtomicU64]>,
    pub durations: DurationHistogram,
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("path", &self.path)
            .field("journal_dir", &self.journal_dir)
            .finish_non_exhaustive()
    }
}

fn zeroed(len: usize) -> Box<[AtomicU64]> {
    (0..len).map(|_| AtomicU64::new(0)).collect()
}

impl Tracked {
    pub fn new(path: String, journal_dir: Option<PathBuf>) -> Self {
        Self {
            path,
            journal_dir,
            statuses: zeroed(STATUS_SLOTS),
            events: zeroed(WasenderWebhookEventType::KNOWN.len() + 1),
            durations: DurationHistogram::default(),
        }
    }

    /// Where the metrics are served.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn answered(&self, status: u16) {
        let slot = status
            .checked_sub(FIRST_STATUS)
            .and_then(|i| self.statuses.get(usize::from(i)));
        if let Some(count) = slot {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn event_verified(&self, kind: &WasenderWebhookEventType) {
        let known = WasenderWebhookEventType::KNOWN;
        let index = known.iter().position(|k| k == kind).unwrap_or(known.len());
        if let Some(count) = self.events.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs `call`, observing how long it took, also when it panics.
    pub fn time_handler<R>(&self, call: impl FnOnce() -> R) -> R {
        struct Timing<'a> {
            histogram: &'a DurationHistogram,
            started: Instant,
        }
        impl Drop for Timing<'_> {
            fn drop(&mut self) {
                self.histogram.observe(self.started.elapsed());
            }
        }
        let _timing = Timing {
            histogram: &self.durations,
            started: Instant::now(),
        };
        call()
    }

    /// `(status, count)` for every status counted, zeros included.
    pub fn statuses(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses
            .iter()
            .zip(FIRST_STATUS..)
            .map(|(count, status)| (status, count.load(Ordering::Relaxed)))
    }

    /// `(event name, count)` for every known type, then `unknown`.
    pub fn events(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let names = WasenderWebhookEventType::KNOWN
            .iter()
            .map(WasenderWebhookEventType::as_str)
            .chain([UNKNOWN_EVENT]);
        names.zip(self.events.iter().map(|c| c.load(Ordering::Relaxed)))
    }

    pub fn journal_bytes(&self) -> u64 {
        let Some(dir) = &self.journal_dir else {
            return 0;
        };
        match crate::journal::segment_bytes(dir) {
            Ok(bytes) => bytes,
            Err(e) => {
                log::debug!("metrics: could not size the journal {}: {e}", dir.display());
                0
            }
        }
    }
}

/// A histogram of handler call durations on atomics only (the
/// `prometheus_client` histogram takes a lock on every observation).
#[derive(Default)]
pub(crate) struct DurationHistogram {
    /// Calls per bucket (not cumulative); the last is over the largest bound.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let index = DURATION_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// `(upper bound in seconds, calls)` per bucket (not cumulative), the
    /// last bound `+Inf`; and the sum of the durations.
    pub fn buckets(&self) -> ([(f64, u64); DURATION_BUCKETS.len() + 1], Duration) {
        let mut buckets = [(0.0, 0); DURATION_BUCKETS.len() + 1];
        let bounds = DURATION_BUCKETS.iter().chain([&f64::INFINITY]);
        for ((slot, &bound), count) in buckets.iter_mut().zip(bounds).zip(&self.buckets) {
            *slot = (bound, count.load(Ordering::Relaxed));
        }
        let sum = Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed));
        (buckets, sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::AssertUnwindSafe;

    fn tracked() -> Tracked {
        Tracked::new("/metrics".to_owned(), None)
    }

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        let histogram = DurationHistogram::default();
        histogram.observe(Duration::from_micros(1000)); // exactly 1 ms: le="0.001"
        histogram.observe(Duration::from_millis(2)); // le="0.0025"
        histogram.observe(Duration::from_secs(30)); // the last bound
        histogram.observe(Duration::from_secs(31)); // +Inf only
        let counts: Vec<u64> = histogram
            .buckets
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[DURATION_BUCKETS.len() - 1], 1);
        assert_eq!(counts[DURATION_BUCKETS.len()], 1);
        assert_eq!(counts.iter().sum::<u64>(), 4);
        let sum = Duration::from_nanos(histogram.sum_nanos.load(Ordering::Relaxed));
        assert_eq!(sum, Duration::from_millis(61_003));
    }

    #[test]
    fn a_panicking_handler_call_is_timed() {
        let tracked = tracked();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            tracked.time_handler(|| panic!("handler panicked on purpose"))
        }));
        assert!(result.is_err());
        let observed: u64 = tracked
            .durations
            .buckets
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        assert_eq!(observed, 1);
    }

    #[test]
    fn every_known_event_type_has_its_own_label_and_others_share_unknown() {
        let tracked = tracked();
        for kind in WasenderWebhookEventType::KNOWN {
            tracked.event_verified(kind);
        }
        tracked.event_verified(&WasenderWebhookEventType::from_name("made.up.1"));
        tracked.event_verified(&WasenderWebhookEventType::from_name("made.up.2"));
        // An alias counts under its canonical name.
        tracked.event_verified(&WasenderWebhookEventType::from_name("messages.recieved"));
        let events: Vec<(&str, u64)> = tracked.events().collect();
        assert_eq!(events.len(), WasenderWebhookEventType::KNOWN.len() + 1);
        for (name, count) in &events {
            let expected = match *name {
                UNKNOWN_EVENT => 2,
                "messages.received" => 2,
                _ => 1,
            };
            assert_eq!(*count, expected, "{name}");
        }
    }
}
