//! The durable journal under the listener's
//! durable delivery mode (`DeliveryMode::durable`), and the dead
//! letters it leaves for you to read, requeue and purge.
//!
//! The listener appends each event to the journal and `fsync`s it before it
//! answers 200, marks it done once the handler returns `Ok`, and at the next
//! start hands back every event not marked done, in the order received. You
//! never drive the journal yourself; what you may want from this module is
//! the dead letters, the events the handler gave up on. With the listener
//! stopped, open its directory with [`JournalDir`]; while it runs, use
//! `WebhookListener::dead_letters`, `requeue_dead_letters` and
//! `purge_dead_letters`:
//!
//! ```no_run
//! use wasenderapi::journal::{JournalDir, Requeue};
//!
//! let journal = JournalDir::open("/var/lib/bot/journal")?; // the listener is stopped
//! for letter in journal.dead_letters()? {
//!     println!("{} failed {} times: {}", letter.id, letter.attempts, letter.error);
//! }
//! // The bug is fixed: hand them to the handler again at the next start.
//! journal.requeue(Requeue::All)?;
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
//!
//! [`DeadLetters::read`] reads a dead-letter file without opening (or
//! locking) the journal.
//!
//! Running it (one directory per listener, disk use, replaying a backlog,
//! inspecting a live journal and its dead letters with the `wasender` CLI)
//! is in the [operations guide](crate::guide#the-journal-and-dead-letters).
//!
//! # Guarantees
//!
//! - **Durable appends, with group commit.** An append returns only once the
//!   record is written and `fsync`ed. Concurrent appends share one `fsync`:
//!   the first waiting thread becomes the leader and syncs every record
//!   written so far while the others wait on a condition variable.
//! - **At-least-once.** A done marker is written to the operating system at
//!   once (it survives the process being killed) but reaches the disk lazily,
//!   with the next group commit, rotation, or shutdown. After a power loss an
//!   event already handled may therefore be handed back again — never the
//!   other way round. Use the listener's dedupe window or idempotent handlers.
//! - **Damage is contained.** Every record carries a CRC-32C. A torn tail (a
//!   crash mid-write) or garbage is logged with `log::warn!` and the file is
//!   truncated to its last intact record. Damage in the middle of a file is
//!   skipped up to the next intact record.
//! - **A file from another format is never repaired.** Every segment starts
//!   with a magic and a format version. A segment with another magic or an
//!   unknown version fails the open with
//!   [`WasenderError::JournalFormat`]
//!   naming the file, and no file in the directory is changed: a newer
//!   version's pending events are never cut off as if they were torn. Only a
//!   segment too short to hold its header (a crash right at its creation) or
//!   holding only zero bytes is rewritten, as it holds no record.
//! - **Errors name their file.** Opening fails with
//!   [`WasenderError::Journal`] carrying the
//!   path and the I/O error (permissions, a full disk); damaged records never
//!   fail it.
//! - **Bounded disk.** Segments rotate at 8 MiB;
//!   at each rotation, sealed segments with no pending events are deleted, and
//!   those where pending events fill at most a quarter of the file have them
//!   copied forward into the active segment first. Pending events are never
//!   deleted, so after a compaction the sealed segments hold at most four times
//!   the pending bytes.
//! - **One process per directory.** Opening a journal first takes an
//!   exclusive lock on the `lock` file in its directory (`File::try_lock`:
//!   `flock` on Unix, `LockFileEx` on Windows), before anything is read or
//!   repaired. A second opener — another process, or a second listener or
//!   [`JournalDir`] in the same one — fails with
//!   [`WasenderError::JournalLocked`] naming the directory and the holder's
//!   pid (which the holder writes into the file), and changes nothing. The
//!   lock is released when the listener shuts down (or the `JournalDir` is
//!   dropped), and by the operating system when the process dies, so a
//!   killed process never leaves a stale lock. On a file system that cannot
//!   lock at all, the journal opens unlocked with a `log::warn!`.
//! - **Recovery streams the backlog.** Opening reads the segments one at a
//!   time and keeps only where each pending event is (seq, segment, offset,
//!   length: a few dozen bytes each), never its payload. The listener then
//!   reads pending events back in small batches as its handler threads free
//!   up, so its memory is bounded by the queue capacity however many events
//!   were pending (200,000 pending events replay in under 30 MiB of peak RSS
//!   with a capacity of 16). Each record read back is checked again (CRC,
//!   seq); one damaged since the open is logged and left pending.
//! - **Dead letters can be replayed.** Requeueing appends the letter's event
//!   to the journal as a new pending event (with a new seq, `fsync`ed), so
//!   the handler gets it again whatever the dedupe window holds, and then
//!   marks the letter with `requeued_as`: a second requeue adds nothing. A
//!   crash between the two steps can make a second requeue add the event
//!   twice, never zero times. Marking and purging rewrite
//!   `dead-letters.jsonl` atomically (a synced temp file renamed over it).
//!
//! # On-disk format
//!
//! A directory of segment files named `<20-digit id>.wal` (ids increase in
//! write order). All integers are little endian. Each segment starts with a
//! file header, then holds a plain sequence of records:
//!
//! ```text
//! header: magic "WSJRNL" (6) | format version u16 (2), now 1
//! record: magic "WJR1" (4) | crc32c (4) | seq u64 (8) | kind u8 (1) | len u32 (4) | payload (len)
//! ```
//!
//! The CRC-32C covers `seq` through the end of the payload. `kind` is 1 for an
//! event and 2 for a done marker (whose `seq` is the event it completes and
//! whose payload is empty). An event copied forward by compaction keeps its
//! seq; recovery keeps the last copy and orders pending events by seq. A
//! segment that starts directly with a record (`WJR1`) was written before the
//! header existed (format 0): it is read as such, and new records always go
//! to a segment with a header.
//!
//! More files live beside the segments:
//!
//! - `lock`, the directory's lock: the pid of the process holding it, as
//!   text. It stays when the lock is released; only the lock on it counts.
//! - `dedupe.log`, the listener's dedupe window: text, a first line
//!   `#wasender-dedupe 1`, then one line per change, `+` or `-` and the key as
//!   a JSON string. A key is `id:` and the hex SHA-256 of the event name and
//!   message id, or `body:` and that of the event name and raw body when
//!   there is no id. A file whose first line names another version is
//!   refused like a segment; one with no version line (format 0, keys hashed
//!   with FNV-1a) is read, and its keys age out as new ones arrive.
//! - `dead-letters.jsonl`, one JSON object per [`DeadLetter`], with `"v":1`
//!   (lines without `v` are format 0, read the same way), and
//!   `"requeued_as":<seq>` once requeued (older readers ignore it).

mod compaction;
mod dead_letter;
mod dedupe;
mod dir;
mod lock;
mod open;
mod options;
mod record;
mod requeue;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::WasenderError;

pub(crate) use crate::handler::DeadLetter;
pub use dead_letter::DeadLetters;
#[cfg(test)]
pub(crate) use dedupe::dedupe_key;
pub(crate) use dedupe::DedupeWindow;
pub use dir::{JournalDir, JournalInfo, JournalSnapshot};
pub(crate) use open::open_journal;
pub(crate) use options::JournalOptions;
pub use requeue::Requeue;
pub(crate) use requeue::{purge, requeue};
pub(crate) use writer::{Journal, Seq};

/// The dead-letter file's name in the journal directory.
pub(crate) const DEAD_LETTER_FILE: &str = "dead-letters.jsonl";
/// The dedupe window's file name in the journal directory.
pub(crate) const DEDUPE_FILE: &str = "dedupe.log";

/// The journal's internals, for `benches/journal.rs` and the backlog test only.
///
/// Not an API: no semver guarantee, may change or vanish in any release.
/// Enabled by the `bench-internals` cargo feature.
#[cfg(feature = "bench-internals")]
pub mod bench {
    pub use super::open::{open_journal, Corruption, Recovery};
    pub use super::options::JournalOptions;
    pub use super::record::CorruptionKind;
    pub use super::writer::{Journal, JournalStats, PendingBatch, Seq};
}

/// Largest payload the reader accepts, whatever the options say, so lowering
/// `JournalOptions::max_record_size` never hides records already written.
const RECORD_LIMIT: u32 = 1 << 30;

/// The error for an I/O failure on the journal file or directory at `path`.
fn io_error(path: &Path, source: std::io::Error) -> WasenderError {
    WasenderError::Journal {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces the file at `path` with `contents` atomically: writes and syncs
/// `<name>.tmp` beside it, renames it over `path`, and syncs the directory.
/// A crash leaves either the old file or the new one, never a mix.
fn replace_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => segment::sync_dir(dir),
        None => Ok(()),
    }
}

/// The error for a file at `path` in a format this build does not read.
fn format_error(path: &Path, reason: impl Into<String>) -> WasenderError {
    WasenderError::JournalFormat {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

/// Bytes in the segment files in `dir` (headers included; as the journal's
/// own `disk_bytes` counts them), read from the file system: no lock of a
/// running journal is taken. A file removed meanwhile (compaction) counts 0.
#[cfg(feature = "metrics")]
pub(crate) fn segment_bytes(dir: &Path) -> std::io::Result<u64> {
    Ok(segment::list_segments(dir)?
        .iter()
        .filter_map(|(_, path)| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum())
}
