//! Segment files: naming, listing, and what the writer remembers about each.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::record::{self, RecordKind, HEADER_LEN};

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
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(loc.offset))?;
    let mut buf = vec![0u8; HEADER_LEN + loc.len as usize];
    file.read_exact(&mut buf)?;
    let scan = record::scan(&buf, loc.len);
    match scan.records.first() {
        Some(r) if r.offset == 0 && r.seq == seq && r.kind == RecordKind::Event => {
            Ok(r.payload.to_vec())
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "event {seq} at {}:{} is damaged",
                path.display(),
                loc.offset
            ),
        )),
    }
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
