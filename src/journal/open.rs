//! Opening a journal: locking its directory, checking every segment's
//! format, scanning them, reporting and cutting off damage, and rebuilding
//! which events are still pending.
//!
//! Recovery keeps only where each pending event is (its seq, segment, offset
//! and length: a few dozen bytes each), never its payload, and reads one
//! segment at a time: the events themselves are read back in batches with
//! [`Journal::read_pending`] as the handler gets to them.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lock::DirLock;
use super::record::{self, CorruptionKind, RecordKind};
use super::segment::{self, Layout, Location, SegmentMeta, FILE_HEADER_LEN};
use super::writer::{Journal, Seq, Writer};
use super::{format_error, io_error, JournalOptions, RECORD_LIMIT};
use crate::error::Result;
use crate::sync::lock;

/// What [`open_journal`] found on disk.
#[derive(Debug)]
#[non_exhaustive]
pub struct Recovery {
    /// How many events were appended but not marked done. They stay pending
    /// in the journal: read them back, oldest first, with
    /// [`Journal::read_pending`] over `..backlog_end`, and mark each done once
    /// handled.
    pub pending: u64,
    /// Every event pending at open has a seq below this one; every event
    /// appended since has this seq or a higher one.
    pub backlog_end: Seq,
    /// Damaged byte ranges that were skipped (each also logged with `log::warn!`).
    pub corruption: Vec<Corruption>,
}

impl Recovery {
    /// `true` when no damage was found.
    pub fn is_clean(&self) -> bool {
        self.corruption.is_empty()
    }
}

/// A damaged byte range found by [`open_journal`].
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

/// Opens (creating if needed) the journal in `dir`, recovers it, and
/// returns it with the events still pending.
///
/// Damaged records are skipped and reported in [`Recovery::corruption`].
/// The open fails with [`WasenderError::Journal`](crate::WasenderError::Journal)
/// on an I/O error (permissions, a full disk) and with
/// [`WasenderError::JournalFormat`](crate::WasenderError::JournalFormat)
/// when a segment is in a format this build does not read; both name the
/// file, and a refused segment is left untouched.
pub fn open_journal(dir: impl AsRef<Path>, options: JournalOptions) -> Result<(Journal, Recovery)> {
    let dir = dir.as_ref();
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    // Before anything is read or repaired: a refused open changes nothing.
    let dir_lock = DirLock::acquire(dir)?;
    let listed = segment::list_segments(dir).map_err(|e| io_error(dir, e))?;
    // Every header is checked before anything is changed: a segment in an
    // unknown format fails the open with every file as it was.
    let mut found = Vec::with_capacity(listed.len());
    for (id, path) in listed {
        match segment::read_layout(&path).map_err(|e| io_error(&path, e))? {
            Layout::Foreign(reason) => return Err(format_error(&path, reason)),
            layout => found.push((id, path, layout)),
        }
    }

    let mut segments: BTreeMap<u64, SegmentMeta> = BTreeMap::new();
    // seq -> where the last copy seen is.
    let mut events: BTreeMap<u64, Location> = BTreeMap::new();
    let mut done: HashSet<u64> = HashSet::new();
    let mut corruption = Vec::new();
    let mut max_seq = 0u64;
    let mut last_headerless = false;

    for (id, path, layout) in found {
        let mut meta = SegmentMeta::new(path.clone());
        last_headerless = layout == Layout::Headerless;
        if layout == Layout::Unfinished {
            meta.size =
                repair_unfinished(&path, &mut corruption).map_err(|e| io_error(&path, e))?;
            segments.insert(id, meta);
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| io_error(&path, e))?;
        let start = if layout == Layout::Current {
            FILE_HEADER_LEN
        } else {
            0
        };
        let scan = record::scan(&bytes, start, RECORD_LIMIT);
        for rec in &scan.records {
            max_seq = max_seq.max(rec.seq);
            match rec.kind {
                RecordKind::Event => {
                    meta.saw_event(rec.seq);
                    if !done.contains(&rec.seq) {
                        let len = u32::try_from(rec.payload.len())
                            .expect("a scanned payload is at most RECORD_LIMIT bytes");
                        let at = Location {
                            segment: id,
                            offset: rec.offset,
                            len,
                        };
                        events.insert(rec.seq, at);
                    }
                }
                RecordKind::Done => {
                    done.insert(rec.seq);
                    events.remove(&rec.seq);
                    meta.done_markers.push(rec.seq);
                }
            }
        }
        for damage in &scan.damage {
            let truncated = damage.offset >= scan.valid_end;
            log::warn!(
                "journal: {:?} damage in {} at byte {} ({} bytes){}",
                damage.kind,
                path.display(),
                damage.offset,
                damage.len,
                if truncated {
                    "; truncating the segment there"
                } else {
                    "; skipped"
                },
            );
            corruption.push(Corruption {
                segment: path.clone(),
                offset: damage.offset,
                len: damage.len,
                kind: damage.kind,
                truncated,
            });
        }
        if scan.valid_end < bytes.len() as u64 {
            truncate(&path, scan.valid_end).map_err(|e| io_error(&path, e))?;
        }
        meta.size = scan.valid_end;
        segments.insert(id, meta);
    }

    for loc in events.values() {
        if let Some(meta) = segments.get_mut(&loc.segment) {
            meta.add_live(loc.len);
        }
    }
    let pending = events;
    let recovered = pending.len() as u64;

    let last = segments.last_key_value().map(|(&id, meta)| (id, meta.size));
    let next_seq = (max_seq + 1).max(last.map_or(1, |(id, _)| id));
    // New records go to a segment with a header: a headerless one is sealed.
    let (active, file) = match last {
        Some((id, size)) if size < options.segment_size && !last_headerless => {
            let path = &segments[&id].path;
            let file = OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| io_error(path, e))?;
            (id, file)
        }
        _ => {
            let id = last.map_or(next_seq, |(id, _)| next_seq.max(id + 1));
            let (path, file) = segment::create(dir, id).map_err(|e| io_error(dir, e))?;
            let mut meta = SegmentMeta::new(path);
            meta.size = FILE_HEADER_LEN as u64;
            segments.insert(id, meta);
            (id, file)
        }
    };

    let writer = Writer {
        file: Arc::new(file),
        active,
        segments,
        pending,
        next_seq,
        written: 0,
        scratch: Vec::new(),
    };
    let journal = Journal::from_parts(dir.to_path_buf(), options, writer, dir_lock);
    {
        let mut w = lock(&journal.writer);
        let compacted = journal.compact_locked(&mut w);
        journal.check(compacted).map_err(|e| io_error(dir, e))?;
    }
    Ok((
        journal,
        Recovery {
            pending: recovered,
            backlog_end: Seq(next_seq),
            corruption,
        },
    ))
}

/// Rewrites an unfinished segment (a crash right at its creation) with a
/// fresh header, reporting the bytes it held, if any. Returns its new size.
fn repair_unfinished(path: &Path, corruption: &mut Vec<Corruption>) -> io::Result<u64> {
    let len = fs::metadata(path)?.len();
    if len > 0 {
        // A cut-off header is a torn write; anything else unfinished is zeros.
        let kind = if len < FILE_HEADER_LEN as u64
            && segment::file_header().starts_with(&fs::read(path)?)
        {
            CorruptionKind::Truncated
        } else {
            CorruptionKind::Garbage
        };
        log::warn!(
            "journal: {} holds an unfinished header ({len} bytes, {kind:?}); rewriting it",
            path.display()
        );
        corruption.push(Corruption {
            segment: path.to_path_buf(),
            offset: 0,
            len,
            kind,
            truncated: true,
        });
    }
    segment::reset(path)?;
    Ok(FILE_HEADER_LEN as u64)
}

/// Cuts the segment at `path` to `len` bytes, durably.
fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}
