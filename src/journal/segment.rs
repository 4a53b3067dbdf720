//! Segment files: naming, listing, the file header that says which format a
//! segment is in, and what the writer remembers about each.
//!
//! ```text
//! offset  size  field
//! 0       6     magic    b"WSJRNL"
//! 6       2     version  u16 little endian, FORMAT_VERSION
//! 8       ...   records (see record.rs)
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::{self, RecordKind, HEADER_LEN};

/// The bytes every segment file starts with.
pub(crate) const FILE_MAGIC: [u8; 6] = *b"WSJRNL";
/// The segment format this build writes, and the only one with a header it reads.
pub(crate) const FORMAT_VERSION: u16 = 1;
/// Size of the file header; the first record starts here.
pub(crate) const FILE_HEADER_LEN: usize = 8;

/// The header written at the start of every new segment.
pub(crate) fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut header = [0u8; FILE_HEADER_LEN];
    header[..FILE_MAGIC.len()].copy_from_slice(&FILE_MAGIC);
    header[FILE_MAGIC.len()..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header
}

/// What the first bytes of a segment file say about its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// The current header; records start at [`FILE_HEADER_LEN`].
    Current,
    /// No header, records from byte 0: written before the header existed (format 0).
    Headerless,
    /// Empty, a cut-off current header, or nothing but zero bytes: a crash
    /// right after the file was created. It holds no record and may be rewritten.
    Unfinished,
    /// Another magic or another version: refused, and left untouched.
    Foreign(String),
}

/// Classifies a segment from its first bytes (`head`, at most
/// [`FILE_HEADER_LEN`] of them); `zero_filled` says whether the whole file
/// is zero bytes.
pub(crate) fn layout(head: &[u8], zero_filled: bool) -> Layout {
    if head.len() == FILE_HEADER_LEN && head[..FILE_MAGIC.len()] == FILE_MAGIC {
        let version = u16::from_le_bytes([head[6], head[7]]);
        return if version == FORMAT_VERSION {
            Layout::Current
        } else {
            Layout::Foreign(format!(
                "segment format version {version}, this build reads versions 0 (headerless) to {FORMAT_VERSION}"
            ))
        };
    }
    if head.len() < FILE_HEADER_LEN && file_header().starts_with(head) {
        return Layout::Unfinished;
    }
    if head.starts_with(&FILE_MAGIC) {
        return Layout::Foreign(format!(
            "a cut-off header of another format version, this build writes version {FORMAT_VERSION}"
        ));
    }
    // A headerless segment starts with a record; a cut-off first record too.
    let magic = &record::MAGIC;
    if head.starts_with(magic) || (head.len() < magic.len() && magic.starts_with(head)) {
        return Layout::Headerless;
    }
    if zero_filled {
        return Layout::Unfinished;
    }
    Layout::Foreign(format!(
        "starts with {}, not the journal segment magic {:?}",
        describe(head),
        String::from_utf8_lossy(&FILE_MAGIC)
    ))
}

/// `head` as printable text if it is, else as hex bytes.
fn describe(head: &[u8]) -> String {
    if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(head))
    } else {
        format!("bytes {}", hex::encode(head))
    }
}

/// Reads enough of the segment at `path` to classify it: its first bytes,
/// and the rest only when those are all zero.
pub(crate) fn read_layout(path: &Path) -> io::Result<Layout> {
    let mut file = File::open(path)?;
    let mut head = Vec::with_capacity(FILE_HEADER_LEN);
    (&mut file)
        .take(FILE_HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    let zero_filled = !head.is_empty() && head.iter().all(|&b| b == 0) && rest_is_zero(file)?;
    Ok(layout(&head, zero_filled))
}

fn rest_is_zero(mut rest: File) -> io::Result<bool> {
    let mut chunk = Vec::with_capacity(64 * 1024);
    loop {
        chunk.clear();
        if (&mut rest).take(64 * 1024).read_to_end(&mut chunk)? == 0 {
            return Ok(true);
        }
        if chunk.iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Creates segment `id` in `dir` with its header written (not yet synced:
/// the first commit syncs it, and a crash before leaves an
/// [`Unfinished`](Layout::Unfinished) file) and its directory entry durable.
pub(crate) fn create(dir: &Path, id: u64) -> io::Result<(PathBuf, File)> {
    let path = dir.join(segment_name(id));
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(&file_header())?;
    sync_dir(dir)?;
    Ok((path, file))
}

/// Rewrites an [`Unfinished`](Layout::Unfinished) segment as an empty one
/// with the current header, synced.
pub(crate) fn reset(path: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.set_len(0)?;
    file.write_all(&file_header())?;
    file.sync_all()
}

/// Segment files are named `<20-digit id>.wal`; ids increase in write order.
const SEGMENT_SUFFIX: &str = ".wal";
const ID_DIGITS: usize = 20;

pub(crate) fn segment_name(id: u64) -> String {
    format!("{id:0width$}{SEGMENT_SUFFIX}", width = ID_DIGITS)
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files in `dir`, oldest first. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(id) = name.to_str().and_then(parse_segment_name) {
            found.push((id, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(id, _)| *id);
    Ok(found)
}

/// Makes a file creation or removal in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files elsewhere; NTFS journals its metadata.
        let _ = dir;
        Ok(())
    }
}

/// Where the latest copy of a pending event lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

/// What the writer knows about one segment file.
#[derive(Debug)]
pub(crate) struct SegmentMeta {
    pub(crate) path: PathBuf,
    /// Bytes of intact records (the file length after any truncation).
    pub(crate) size: u64,
    /// Pending events whose latest copy is in this segment.
    pub(crate) live: u64,
    /// Encoded bytes of those events.
    pub(crate) live_bytes: u64,
    /// Seqs of every event record in the file, pending or not.
    pub(crate) events: SeqRuns,
    /// Seqs of the done markers in the file: needed while an older copy of
    /// their event may still be on disk.
    pub(crate) done_markers: Vec<u64>,
}

impl SegmentMeta {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            size: 0,
            live: 0,
            live_bytes: 0,
            events: SeqRuns::default(),
            done_markers: Vec::new(),
        }
    }

    pub(crate) fn saw_event(&mut self, seq: u64) {
        self.events.insert(seq);
    }

    pub(crate) fn add_live(&mut self, len: u32) {
        self.live += 1;
        self.live_bytes += record::encoded_len(len as usize);
    }

    pub(crate) fn remove_live(&mut self, len: u32) {
        self.live = self.live.saturating_sub(1);
        self.live_bytes = self
            .live_bytes
            .saturating_sub(record::encoded_len(len as usize));
    }
}

/// A set of seqs stored as inclusive runs: the events first written to a
/// segment are one run, copies carried forward add a few more.
#[derive(Debug, Default)]
pub(crate) struct SeqRuns {
    runs: BTreeMap<u64, u64>,
}

impl SeqRuns {
    pub(crate) fn insert(&mut self, seq: u64) {
        let before = self
            .runs
            .range(..=seq)
            .next_back()
            .map(|(&start, &end)| (start, end));
        if let Some((_, end)) = before {
            if end >= seq {
                return;
            }
        }
        let joins_before = before
            .filter(|&(_, end)| end + 1 == seq)
            .map(|(start, _)| start);
        let joins_after = seq
            .checked_add(1)
            .and_then(|next| self.runs.remove(&next).map(|end| (next, end)));
        let start = joins_before.unwrap_or(seq);
        let end = joins_after.map_or(seq, |(_, end)| end);
        self.runs.insert(start, end);
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.runs
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, &end)| end >= seq)
    }
}

/// Reads back the event record at `loc` and checks that it is intact and is `seq`.
pub(crate) fn read_event(path: &Path, loc: Location, seq: u64) -> io::Result<Vec<u8>> {
    read_event_from(&mut File::open(path)?, path, loc, seq)
}

/// Like [`read_event`], from the segment at `path` already open as `file`.
pub(crate) fn read_event_from(
    file: &mut File,
    path: &Path,
    loc: Location,
    seq: u64,
) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(loc.offset))?;
    let mut buf = vec![0u8; HEADER_LEN + loc.len as usize];
    file.read_exact(&mut buf)?;
    let intact = {
        let scan = record::scan(&buf, 0, loc.len);
        matches!(scan.records.first(), Some(r) if r.offset == 0
            && r.seq == seq
            && r.kind == RecordKind::Event
            && r.payload.len() == loc.len as usize)
    };
    if !intact {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "event {seq} at {}:{} is damaged",
                path.display(),
                loc.offset
            ),
        ));
    }
    // The payload is the rest of `buf`: keep the allocation.
    buf.drain(..HEADER_LEN);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_in_id_order_and_parse_back() {
        assert_eq!(segment_name(42), "00000000000000000042.wal");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert!(segment_name(9) < segment_name(10));
    }

    #[test]
    fn seq_runs_merge_neighbours_and_answer_membership() {
        let mut runs = SeqRuns::default();
        for seq in [5, 6, 7, 10, 9, 2, 8, 7] {
            runs.insert(seq);
        }
        assert_eq!(
            runs.runs.iter().map(|(&a, &b)| (a, b)).collect::<Vec<_>>(),
            vec![(2, 2), (5, 10)]
        );
        assert!(runs.contains(2) && runs.contains(5) && runs.contains(10));
        assert!(!runs.contains(1) && !runs.contains(3) && !runs.contains(11));
        runs.insert(u64::MAX);
        assert!(runs.contains(u64::MAX));
    }

    #[test]
    fn the_current_header_is_recognised() {
        assert_eq!(layout(&file_header(), false), Layout::Current);
        assert_eq!(&file_header(), b"WSJRNL\x01\x00");
    }

    #[test]
    fn an_empty_or_cut_off_header_is_unfinished() {
        let header = file_header();
        for len in 0..FILE_HEADER_LEN {
            assert_eq!(layout(&header[..len], false), Layout::Unfinished, "{len}");
        }
        assert_eq!(layout(&[0; FILE_HEADER_LEN], true), Layout::Unfinished);
    }

    #[test]
    fn another_version_or_magic_is_foreign() {
        let mut newer = file_header();
        newer[6..].copy_from_slice(&2u16.to_le_bytes());
        let Layout::Foreign(reason) = layout(&newer, false) else {
            panic!("a newer version must be refused");
        };
        assert!(reason.contains("version 2"), "{reason}");
        assert!(matches!(layout(&newer[..7], false), Layout::Foreign(_)));
        assert!(matches!(layout(b"WSJRNL", false), Layout::Unfinished));
        let Layout::Foreign(reason) = layout(b"SQLite f", false) else {
            panic!("another magic must be refused");
        };
        assert!(reason.contains("SQLite"), "{reason}");
        assert!(matches!(
            layout(&[0; FILE_HEADER_LEN], false),
            Layout::Foreign(_)
        ));
    }

    #[test]
    fn a_segment_starting_with_a_record_is_headerless() {
        assert_eq!(layout(b"WJR1\0\0\0\0", false), Layout::Headerless);
        assert_eq!(layout(b"WJR", false), Layout::Headerless);
    }

    #[test]
    fn foreign_file_names_are_not_segments() {
        for name in [
            "dedupe.log",
            "42.wal",
            "0000000000000000004x.wal",
            "00000000000000000042.wal.tmp",
        ] {
            assert_eq!(parse_segment_name(name), None, "{name}");
        }
    }
}
