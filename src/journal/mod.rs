//! A durable, append-only journal of received events: the storage under the
//! listener's queued durable delivery mode.
//!
//! An event is [appended](Journal::append) before the webhook is answered, and
//! `append` returns only once the record is on disk (written and `fsync`ed).
//! When the handler is done with it, [`Journal::mark_done`] appends a done
//! marker. On start, [`Journal::open`] hands back every event not marked done,
//! in the order it was appended.
//!
//! ```
//! use wasenderapi::journal::{Journal, JournalOptions};
//!
//! # let dir = std::env::temp_dir().join(format!("wasender-journal-doc-{}", std::process::id()));
//! let (journal, recovery) = Journal::open(&dir, JournalOptions::default())?;
//! assert!(recovery.pending.is_empty());
//! let seq = journal.append(br#"{"event":"messages.upsert"}"#)?; // durable now: answer 200
//! journal.mark_done(seq)?;                                      // handled
//! drop(journal);
//!
//! let (_journal, recovery) = Journal::open(&dir, JournalOptions::default())?;
//! assert!(recovery.pending.is_empty());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Guarantees
//!
//! - **Durable appends, with group commit.** Concurrent `append` calls share
//!   one `fsync`: the first waiting thread becomes the leader and syncs every
//!   record written so far while the others wait on a condition variable.
//!   [`JournalStats::commits`] counts those syncs.
//! - **At-least-once.** A done marker is written to the operating system at
//!   once (it survives the process being killed) but reaches the disk lazily,
//!   with the next group commit, [`Journal::sync`], rotation, or drop. After a
//!   power loss an event already handled may therefore be handed back again —
//!   never the other way round. Use a [`DedupeWindow`] or idempotent handlers.
//! - **Damage is contained.** Every record carries a CRC-32C. A torn tail (a
//!   crash mid-write) or garbage is reported in [`Recovery::corruption`] and
//!   logged with `log::warn!`; the file is truncated to its last intact record.
//!   Damage in the middle of a file is skipped up to the next intact record.
//! - **Bounded disk.** Segments rotate at [`JournalOptions::segment_size`];
//!   at each rotation, sealed segments with no pending events are deleted, and
//!   those where pending events fill at most a quarter of the file have them
//!   copied forward into the active segment first. Pending events are never
//!   deleted, so after a compaction the sealed segments hold at most four times
//!   the pending bytes.
//! - **One writer.** Only one process may open a directory at a time; the
//!   journal does not lock it.
//!
//! # On-disk format
//!
//! A directory of segment files named `<20-digit id>.wal` (ids increase in
//! write order), each a plain sequence of records, all integers little endian:
//!
//! ```text
//! magic "WJR1" (4) | crc32c (4) | seq u64 (8) | kind u8 (1) | len u32 (4) | payload (len)
//! ```
//!
//! The CRC-32C covers `seq` through the end of the payload. `kind` is 1 for an
//! event and 2 for a done marker (whose `seq` is the event it completes and
//! whose payload is empty). An event copied forward by compaction keeps its
//! seq; recovery keeps the last copy and orders pending events by seq.
//! [`DedupeWindow`] and [`DeadLetters`] keep their own files (`dedupe.log`,
//! `dead-letters.jsonl` by convention), which the journal ignores.

mod checksum;
mod compaction;
mod dead_letter;
mod dedupe;
mod open;
mod record;
mod segment;
mod writer;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use dead_letter::{DeadLetter, DeadLetters};
pub use dedupe::{dedupe_key, DedupeWindow};
pub use record::CorruptionKind;
pub use writer::Journal;

/// The sequence number of an event in a [`Journal`]: strictly increasing in
/// append order, never reused (there may be gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Largest payload the reader accepts, whatever the options say, so lowering
/// [`JournalOptions::max_record_size`] never hides records already written.
const RECORD_LIMIT: u32 = 1 << 30;

/// How a [`Journal`] writes. Build with [`JournalOptions::default`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    segment_size: u64,
    max_record_size: u32,
    commit_delay: Duration,
    group_commit: bool,
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

impl JournalOptions {
    /// Size at which the active segment is sealed and a new one started
    /// (default 8 MiB, at least 64 bytes). A record is never split, so a
    /// segment can exceed this by one record.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes.max(64);
        self
    }

    /// Largest payload [`Journal::append`] accepts (default 16 MiB, at most
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

/// What [`Journal::open`] found on disk.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// Events appended but not marked done, oldest first. They are still
    /// pending in the journal: mark each done once handled.
    pub pending: Vec<(Seq, Vec<u8>)>,
    /// Damaged byte ranges that were skipped (each also logged with `log::warn!`).
    pub corruption: Vec<Corruption>,
}

impl Recovery {
    /// `true` when no damage was found.
    pub fn is_clean(&self) -> bool {
        self.corruption.is_empty()
    }
}

/// A damaged byte range found by [`Journal::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Corruption {
    /// The segment file.
    pub segment: PathBuf,
    /// Offset of the first damaged byte.
    pub offset: u64,
    /// Number of bytes skipped.
    pub len: u64,
    /// What was wrong.
    pub kind: CorruptionKind,
    /// `true` when the range was the file's tail and was cut off.
    pub truncated: bool,
}

/// Counters and sizes of a [`Journal`], from [`Journal::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalStats {
    /// Events appended since open.
    pub appends: u64,
    /// Done markers written since open.
    pub done_marks: u64,
    /// Group-commit `fsync`s: one per batch of appends (or `sync` calls).
    pub commits: u64,
    /// All data `fsync`s, including those at rotation and compaction.
    pub syncs: u64,
    /// Segments sealed since open.
    pub rotations: u64,
    /// Compactions that deleted at least one segment.
    pub compactions: u64,
    /// Segment files deleted since open.
    pub segments_deleted: u64,
    /// Pending events copied forward out of sparse segments since open.
    pub carried_forward: u64,
    /// Events not yet marked done.
    pub pending: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Bytes in those segment files.
    pub disk_bytes: u64,
}
