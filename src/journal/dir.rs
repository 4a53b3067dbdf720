//! A journal directory opened on its own, without a listener: to look at it
//! and to replay or purge its dead letters while the listener is stopped.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{
    io_error, segment, DeadLetter, DeadLetters, DedupeWindow, Journal, JournalOptions, Requeue,
    DEAD_LETTER_FILE, DEDUPE_FILE,
};

/// A durable listener's journal directory, opened by itself (the listener
/// stopped), holding the directory's lock like a listener would.
///
/// Opening it recovers the journal as a listener's start does (a torn tail is
/// cut off, with a `log::warn!`) but hands nothing to a handler: requeued
/// dead letters become pending events, handled when the listener next
/// starts, after those already pending. While this handle exists, a listener
/// on the same directory refuses to start with
/// [`WasenderError::JournalLocked`](crate::WasenderError::JournalLocked), and
/// so does `open` while a listener runs there: use the listener's own
/// `dead_letters`, `requeue_dead_letters` and `purge_dead_letters` then.
///
/// ```no_run
/// use wasenderapi::journal::{JournalDir, Requeue};
///
/// let journal = JournalDir::open("/var/lib/bot/journal")?;
/// println!("{:#?}", journal.stats()?);
/// for letter in journal.dead_letters()? {
///     println!("{} ({:?}): {}", letter.id, letter.event_id(), letter.error);
/// }
/// let requeued = journal.requeue(Requeue::All)?; // handled at the next start
/// let purged = journal.purge()?;
/// # let _ = (requeued, purged);
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
#[derive(Debug)]
pub struct JournalDir {
    dead_letters: DeadLetters,
    /// Declared last so that it is dropped last: it holds the lock.
    journal: Journal,
    damaged_ranges: u64,
}

/// What a journal directory holds, from [`JournalDir::stats`]. Print it with
/// `{:#?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalInfo {
    /// The journal directory.
    pub path: PathBuf,
    /// Events appended and not yet handled (nor dead-lettered): what the
    /// listener hands to its handler when it starts.
    pub pending: u64,
    /// Segment files (`*.wal`).
    pub segments: u64,
    /// Bytes of every file in the directory: segments, dead letters, dedupe window.
    pub disk_bytes: u64,
    /// Dead letters not requeued.
    pub dead_letters: u64,
    /// Dead letters requeued (still listed until purged).
    pub requeued: u64,
    /// Keys in the dedupe window's file (`dedupe.log`; 0 without one). A
    /// window evicts its oldest keys past its capacity without writing to
    /// the file, so this can exceed the capacity until the file is compacted.
    pub dedupe_entries: u64,
    /// Damaged byte ranges found (and skipped, or cut off) when it was opened.
    pub damaged_ranges: u64,
}

impl JournalDir {
    /// Opens the journal in `dir`, taking its lock. The directory must hold
    /// a journal (a segment or a dead-letter file): none is created.
    ///
    /// Fails with [`WasenderError::JournalLocked`](crate::WasenderError::JournalLocked)
    /// when a listener (or another handle) holds it, changing nothing;
    /// [`WasenderError::Journal`](crate::WasenderError::Journal) when the
    /// directory is missing, unreadable or holds no journal (`NotFound`); and
    /// [`WasenderError::JournalFormat`](crate::WasenderError::JournalFormat)
    /// when a file is in a format this build does not read.
    pub fn open(dir: impl AsRef<Path>) -> crate::Result<JournalDir> {
        let dir = dir.as_ref();
        let meta = fs::metadata(dir).map_err(|e| io_error(dir, e))?;
        if !meta.is_dir() {
            let not_dir = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
            return Err(io_error(dir, not_dir));
        }
        // A mistyped path must not get a journal created in it.
        let segments = segment::list_segments(dir).map_err(|e| io_error(dir, e))?;
        if segments.is_empty() && !dir.join(DEAD_LETTER_FILE).exists() {
            let empty = io::Error::new(
                io::ErrorKind::NotFound,
                format!("no journal here: no *.wal segment and no {DEAD_LETTER_FILE}"),
            );
            return Err(io_error(dir, empty));
        }
        // Any record a listener wrote is read back and can be requeued.
        let options = JournalOptions::default().max_record_size(u32::MAX);
        let (journal, recovery) = Journal::open(dir, options)?;
        let dead_letters = DeadLetters::open(dir.join(DEAD_LETTER_FILE))?;
        Ok(JournalDir {
            dead_letters,
            journal,
            damaged_ranges: recovery.corruption.len() as u64,
        })
    }

    /// The journal directory.
    pub fn path(&self) -> &Path {
        self.journal.dir()
    }

    /// Counts what the directory holds.
    pub fn stats(&self) -> crate::Result<JournalInfo> {
        let journal = self.journal.stats();
        let letters = self.dead_letters.list()?;
        let requeued = letters.iter().filter(|l| l.requeued_as.is_some()).count() as u64;
        let dir = self.path();
        let mut disk_bytes = 0;
        for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            disk_bytes += entry
                .metadata()
                .map_or(0, |m| if m.is_file() { m.len() } else { 0 });
        }
        Ok(JournalInfo {
            path: dir.to_path_buf(),
            pending: journal.pending,
            segments: journal.segments,
            disk_bytes,
            dead_letters: letters.len() as u64 - requeued,
            requeued,
            dedupe_entries: DedupeWindow::count_keys(dir.join(DEDUPE_FILE))?,
            damaged_ranges: self.damaged_ranges,
        })
    }

    /// Every dead letter, oldest first, requeued ones included (with
    /// [`DeadLetter::requeued_as`] set).
    pub fn dead_letters(&self) -> crate::Result<Vec<DeadLetter>> {
        self.dead_letters.list()
    }

    /// Puts the events of the dead letters `which` picks (and not requeued
    /// yet) back into the journal as new pending events, handled at the
    /// listener's next start whatever its dedupe window holds, and marks the
    /// letters requeued. Returns how many; 0 when none matched.
    ///
    /// The events are made durable before the letters are marked: a crash in
    /// between can make a second requeue hand them over twice, never zero
    /// times.
    pub fn requeue(&self, which: Requeue) -> crate::Result<usize> {
        super::requeue(&self.journal, &self.dead_letters, &which).map(|seqs| seqs.len())
    }

    /// Removes every dead letter, requeued or not, from `dead-letters.jsonl`
    /// (rewritten atomically). Returns how many.
    pub fn purge(&self) -> crate::Result<usize> {
        super::purge(&self.dead_letters)
    }
}
