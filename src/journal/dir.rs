//! A journal directory opened on its own, without a listener: to look at it
//! (even while a listener runs there, with [`JournalDir::inspect`]) and to
//! replay or purge its dead letters while the listener is stopped.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::open::open_journal;
use super::record::{self, CorruptionKind, RecordKind};
use super::segment::{self, FILE_HEADER_LEN};
use super::{
    format_error, io_error, DeadLetter, DeadLetters, DedupeWindow, Journal, JournalOptions,
    Requeue, DEAD_LETTER_FILE, DEDUPE_FILE, RECORD_LIMIT,
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

/// What a journal directory holds, from [`JournalDir::stats`] or
/// [`JournalSnapshot::stats`]. Print it with `{:#?}`.
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
    /// Damaged byte ranges found (and skipped, or cut off) when it was
    /// opened; in a [`JournalSnapshot`], found and left as they are.
    pub damaged_ranges: u64,
}

impl JournalDir {
    /// Reads the journal in `dir` without taking its lock and without
    /// changing any file: a consistent, read-only view of what it holds, for
    /// a directory a running listener holds as well as a stopped one's.
    ///
    /// The segments are read one after another and the directory listed
    /// again afterwards; if a listener rotated or compacted meanwhile (a
    /// segment appeared or went away), everything is read again, so the
    /// counts describe one moment: the sealed segments as they are, and the
    /// active one up to its last whole record (a record still being written
    /// is not counted as damage). The dead-letter and dedupe files are read
    /// whole in the same pass. Damage is counted, never repaired.
    ///
    /// Fails like [`JournalDir::open`], except that a held lock is no error,
    /// and with [`WasenderError::Journal`](crate::WasenderError::Journal)
    /// (`Interrupted`) in the unlikely case the directory kept changing over
    /// several attempts.
    ///
    /// ```no_run
    /// use wasenderapi::journal::JournalDir;
    ///
    /// let snapshot = JournalDir::inspect("/var/lib/bot/journal")?; // the listener may be running
    /// println!("{} pending, {} dead letters", snapshot.stats().pending, snapshot.dead_letters().len());
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn inspect(dir: impl AsRef<Path>) -> crate::error::Result<JournalSnapshot> {
        let dir = dir.as_ref();
        check_journal_dir(dir)?;
        for _ in 0..INSPECT_ATTEMPTS {
            let listed = segment::list_segments(dir).map_err(|e| io_error(dir, e))?;
            let Some(segments) = scan_segments(&listed)? else {
                continue; // a segment was deleted while we read it
            };
            let letters_file = dir.join(DEAD_LETTER_FILE);
            let dead_letters = match DeadLetters::read(&letters_file) {
                Err(crate::error::WasenderError::Journal { source, .. })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    Vec::new()
                }
                other => other?,
            };
            let dedupe_entries = DedupeWindow::count_keys(dir.join(DEDUPE_FILE))?;
            let disk_bytes = dir_bytes(dir)?;
            let relisted = segment::list_segments(dir).map_err(|e| io_error(dir, e))?;
            if relisted
                .iter()
                .map(|(id, _)| id)
                .ne(listed.iter().map(|(id, _)| id))
            {
                continue;
            }
            let requeued = dead_letters
                .iter()
                .filter(|l| l.requeued_as.is_some())
                .count() as u64;
            let info = JournalInfo {
                path: dir.to_path_buf(),
                pending: segments.pending,
                segments: listed.len() as u64,
                disk_bytes,
                dead_letters: dead_letters.len() as u64 - requeued,
                requeued,
                dedupe_entries,
                damaged_ranges: segments.damaged_ranges,
            };
            return Ok(JournalSnapshot { info, dead_letters });
        }
        let busy = io::Error::new(
            io::ErrorKind::Interrupted,
            format!("the journal kept changing over {INSPECT_ATTEMPTS} reads; try again"),
        );
        Err(io_error(dir, busy))
    }

    /// Opens the journal in `dir`, taking its lock. The directory must hold
    /// a journal (a segment or a dead-letter file): none is created.
    ///
    /// Fails with [`WasenderError::JournalLocked`](crate::WasenderError::JournalLocked)
    /// when a listener (or another handle) holds it, changing nothing;
    /// [`WasenderError::Journal`](crate::WasenderError::Journal) when the
    /// directory is missing, unreadable or holds no journal (`NotFound`); and
    /// [`WasenderError::JournalFormat`](crate::WasenderError::JournalFormat)
    /// when a file is in a format this build does not read.
    pub fn open(dir: impl AsRef<Path>) -> crate::error::Result<JournalDir> {
        let dir = dir.as_ref();
        // A mistyped path must not get a journal created in it.
        check_journal_dir(dir)?;
        // Any record a listener wrote is read back and can be requeued.
        let options = JournalOptions::default().max_record_size(u32::MAX);
        let (journal, recovery) = open_journal(dir, options)?;
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
    pub fn stats(&self) -> crate::error::Result<JournalInfo> {
        let journal = self.journal.stats();
        let letters = self.dead_letters.list()?;
        let requeued = letters.iter().filter(|l| l.requeued_as.is_some()).count() as u64;
        let dir = self.path();
        Ok(JournalInfo {
            path: dir.to_path_buf(),
            pending: journal.pending,
            segments: journal.segments,
            disk_bytes: dir_bytes(dir)?,
            dead_letters: letters.len() as u64 - requeued,
            requeued,
            dedupe_entries: DedupeWindow::count_keys(dir.join(DEDUPE_FILE))?,
            damaged_ranges: self.damaged_ranges,
        })
    }

    /// Every dead letter, oldest first, requeued ones included (with
    /// [`DeadLetter::requeued_as`] set).
    pub fn dead_letters(&self) -> crate::error::Result<Vec<DeadLetter>> {
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
    pub fn requeue(&self, which: Requeue) -> crate::error::Result<usize> {
        super::requeue(&self.journal, &self.dead_letters, &which).map(|seqs| seqs.len())
    }

    /// Removes every dead letter, requeued or not, from `dead-letters.jsonl`
    /// (rewritten atomically). Returns how many.
    pub fn purge(&self) -> crate::error::Result<usize> {
        super::purge(&self.dead_letters)
    }
}

/// What [`JournalDir::inspect`] read: the counts and the dead letters of one
/// moment, taken without the directory's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSnapshot {
    info: JournalInfo,
    dead_letters: Vec<DeadLetter>,
}

impl JournalSnapshot {
    /// What the directory held.
    pub fn stats(&self) -> &JournalInfo {
        &self.info
    }

    /// Every dead letter, oldest first, requeued ones included (with
    /// [`DeadLetter::requeued_as`] set).
    pub fn dead_letters(&self) -> &[DeadLetter] {
        &self.dead_letters
    }
}

/// How many times [`JournalDir::inspect`] reads a directory that changes
/// under it before it gives up.
const INSPECT_ATTEMPTS: usize = 20;

/// Fails unless `dir` is a directory holding a journal (a segment or a
/// dead-letter file).
fn check_journal_dir(dir: &Path) -> crate::error::Result<()> {
    let meta = fs::metadata(dir).map_err(|e| io_error(dir, e))?;
    if !meta.is_dir() {
        let not_dir = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
        return Err(io_error(dir, not_dir));
    }
    let segments = segment::list_segments(dir).map_err(|e| io_error(dir, e))?;
    if segments.is_empty() && !dir.join(DEAD_LETTER_FILE).exists() {
        let empty = io::Error::new(
            io::ErrorKind::NotFound,
            format!("no journal here: no *.wal segment and no {DEAD_LETTER_FILE}"),
        );
        return Err(io_error(dir, empty));
    }
    Ok(())
}

/// Bytes of every file in `dir` (one removed meanwhile counts 0).
fn dir_bytes(dir: &Path) -> crate::error::Result<u64> {
    let mut bytes = 0;
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        bytes += entry
            .metadata()
            .map_or(0, |m| if m.is_file() { m.len() } else { 0 });
    }
    Ok(bytes)
}

/// What the segments of a [`JournalDir::inspect`] pass hold.
struct SegmentCounts {
    pending: u64,
    damaged_ranges: u64,
}

/// Reads `segments` (oldest first) as recovery would, changing nothing:
/// `None` when one of them was deleted meanwhile (a compaction), so the
/// caller reads again.
fn scan_segments(segments: &[(u64, PathBuf)]) -> crate::error::Result<Option<SegmentCounts>> {
    let mut pending: BTreeSet<u64> = BTreeSet::new();
    let mut done: BTreeSet<u64> = BTreeSet::new();
    let mut damaged_ranges = 0u64;
    for (index, (_, path)) in segments.iter().enumerate() {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(path, e)),
        };
        let head = &bytes[..bytes.len().min(FILE_HEADER_LEN)];
        let zero_filled = !bytes.is_empty() && bytes.iter().all(|&b| b == 0);
        let start = match segment::layout(head, zero_filled) {
            segment::Layout::Current => FILE_HEADER_LEN,
            segment::Layout::Headerless => 0,
            // Just created (or cut at its creation): no record yet.
            segment::Layout::Unfinished => continue,
            segment::Layout::Foreign(reason) => return Err(format_error(path, reason)),
        };
        let scan = record::scan(&bytes, start, RECORD_LIMIT);
        for rec in &scan.records {
            match rec.kind {
                RecordKind::Event => {
                    if !done.contains(&rec.seq) {
                        pending.insert(rec.seq);
                    }
                }
                RecordKind::Done => {
                    done.insert(rec.seq);
                    pending.remove(&rec.seq);
                }
            }
        }
        let newest = index + 1 == segments.len();
        damaged_ranges += scan
            .damage
            .iter()
            // The newest segment's cut-off tail may be an append in progress.
            .filter(|d| {
                !(newest && d.kind == CorruptionKind::Truncated && d.offset >= scan.valid_end)
            })
            .count() as u64;
    }
    Ok(Some(SegmentCounts {
        pending: pending.len() as u64,
        damaged_ranges,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::TempDir;
    use std::io::Write;

    #[test]
    fn inspect_reads_a_locked_journal_without_changing_it() {
        let tmp = TempDir::new("inspect-live");
        let (journal, _) = open_journal(tmp.path(), JournalOptions::default()).expect("open");
        let seqs = journal
            .append_many(&[b"one", b"two", b"three"])
            .expect("append");
        journal.mark_done(seqs[1]).expect("mark done");

        let snapshot = JournalDir::inspect(tmp.path()).expect("inspect a locked journal");
        assert_eq!(snapshot.stats().pending, 2);
        assert_eq!(snapshot.stats().segments, 1);
        assert_eq!(snapshot.stats().damaged_ranges, 0);
        assert!(snapshot.dead_letters().is_empty());
        assert!(
            matches!(
                JournalDir::open(tmp.path()),
                Err(crate::error::WasenderError::JournalLocked { .. })
            ),
            "the listener's lock is still held"
        );

        // A record being written at the end of the newest segment is not damage.
        let (_, path) = segment::list_segments(tmp.path()).expect("list")[0].clone();
        let before = fs::read(&path).expect("read the segment");
        let mut partial = Vec::new();
        record::encode(&mut partial, RecordKind::Event, 99, b"in flight");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&partial[..partial.len() - 3]))
            .expect("append half a record");
        let snapshot = JournalDir::inspect(tmp.path()).expect("inspect");
        assert_eq!(snapshot.stats().pending, 2);
        assert_eq!(snapshot.stats().damaged_ranges, 0);
        let after = fs::read(&path).expect("read the segment");
        assert_eq!(&after[..before.len()], &before[..], "nothing rewritten");
        assert_eq!(
            after.len(),
            before.len() + partial.len() - 3,
            "nothing cut off"
        );
    }

    #[test]
    fn inspect_refuses_a_directory_without_a_journal() {
        let tmp = TempDir::new("inspect-empty");
        let err = JournalDir::inspect(tmp.path()).expect_err("no journal here");
        assert!(err.to_string().contains("no journal here"), "{err}");
    }
}
