//! How the journal writes: segment size, record limit, group commit.
//!
//! Not part of the public API: the listener opens its journal with the
//! defaults, and `journal::bench` (feature `bench-internals`) reaches these
//! knobs for the benches.

use std::time::Duration;

use super::RECORD_LIMIT;

/// How the journal writes: segment size, record limit, group commit.
///
/// Build with [`JournalOptions::default`] and the setters; each setter
/// documents its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    pub(super) segment_size: u64,
    pub(super) max_record_size: u32,
    pub(super) commit_delay: Duration,
    pub(super) group_commit: bool,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            segment_size: 8 * 1024 * 1024,
            max_record_size: 16 * 1024 * 1024,
            commit_delay: Duration::ZERO,
            group_commit: true,
        }
    }
}

// The benches and the tests set these; the listener keeps the defaults.
#[cfg_attr(not(any(test, feature = "bench-internals")), allow(dead_code))]
impl JournalOptions {
    /// Size at which the active segment is sealed and a new one started
    /// (default 8 MiB, at least 64 bytes). A record is never split, so a
    /// segment can exceed this by one record.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes.max(64);
        self
    }

    /// Largest event payload the journal accepts (default 16 MiB, at most
    /// 1 GiB); a larger one is refused with `InvalidInput`.
    pub fn max_record_size(mut self, bytes: u32) -> Self {
        self.max_record_size = bytes.min(RECORD_LIMIT);
        self
    }

    /// How long the thread about to `fsync` waits for more records when other
    /// appends are in flight (default zero: sync at once). A millisecond or two
    /// batches more under load at the cost of that much latency; a lone
    /// append never waits.
    pub fn commit_delay(mut self, delay: Duration) -> Self {
        self.commit_delay = delay;
        self
    }

    /// Whether concurrent appends share one `fsync` (default `true`). `false`
    /// syncs each append on its own while holding the write lock: only useful
    /// as a baseline to measure group commit against.
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }
}
