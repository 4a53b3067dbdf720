//! What the Prometheus metrics count beyond the listener's plain counters
//! (feature `metrics`): answers by status, events by type, handler
//! durations. Atomics only; `metrics.rs` encodes them.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::event::WasenderWebhookEventType;

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
