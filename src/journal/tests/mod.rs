//! The journal's behaviour through its crate-internal API: recovery after
//! crashes and damage, the file-format check, compaction, concurrency, and
//! the dedupe and dead-letter files.

mod compaction;
mod concurrency;
mod dedupe;
mod format;
mod lock;
mod recovery;
mod requeue;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::open::{Corruption, Recovery};
use super::segment::FILE_HEADER_LEN;
use super::{open_journal, Journal, JournalOptions, Seq};

/// A directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "wasender-journal-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir_all(&path).expect("create a temp dir");
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every file in `dir` with its bytes, to check that nothing changed.
pub(super) fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let bytes = fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// A `dead-letters.jsonl` at `path` holding one dead letter (seq 1), followed
/// by `tail` appended as raw bytes; returns that letter.
pub(super) fn dead_letters_with_tail(path: &Path, tail: &[u8]) -> super::DeadLetter {
    let letter = super::DeadLetter::new(Seq(1), b"x".to_vec(), "e", 3);
    super::DeadLetters::open(path)
        .expect("open")
        .record(&letter)
        .expect("record");
    let mut raw = fs::read(path).expect("read");
    raw.extend_from_slice(tail);
    fs::write(path, raw).expect("write");
    letter
}

/// What an open recovered, with the pending events read back.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) pending: Vec<(Seq, Vec<u8>)>,
    pub(super) corruption: Vec<Corruption>,
}

impl Recovered {
    pub(super) fn is_clean(&self) -> bool {
        self.corruption.is_empty()
    }
}

/// Reads back every event `recovery` found pending, checking the count.
pub(super) fn read_back(journal: &Journal, recovery: Recovery) -> Recovered {
    let pending = journal
        .pending_events()
        .expect("read the pending events back");
    assert_eq!(pending.len() as u64, recovery.pending, "pending count");
    assert!(pending.iter().all(|(seq, _)| *seq < recovery.backlog_end));
    Recovered {
        pending,
        corruption: recovery.corruption,
    }
}

pub(super) fn open(dir: &Path) -> (Journal, Recovered) {
    open_with(dir, JournalOptions::default())
}

pub(super) fn open_with(dir: &Path, options: JournalOptions) -> (Journal, Recovered) {
    let (journal, recovery) = open_journal(dir, options).expect("open the journal");
    let recovered = read_back(&journal, recovery);
    (journal, recovered)
}

/// The payloads of the pending events, in order.
pub(super) fn payloads(recovery: &Recovered) -> Vec<Vec<u8>> {
    recovery.pending.iter().map(|(_, p)| p.clone()).collect()
}

pub(super) fn seqs(recovery: &Recovered) -> Vec<Seq> {
    recovery.pending.iter().map(|(s, _)| *s).collect()
}

/// Segment files in `dir`, oldest first.
pub(super) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list the journal dir")
        .map(|e| e.expect("read a dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Total bytes of the segment files in `dir`.
pub(super) fn disk_usage(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// Bytes before the first record of a segment: the file header.
pub(super) const HEADER: u64 = FILE_HEADER_LEN as u64;

/// The on-disk size of a record carrying `payload_len` bytes.
pub(super) fn record_len(payload_len: usize) -> u64 {
    21 + payload_len as u64
}

pub(super) fn payload(i: usize) -> Vec<u8> {
    format!("{{\"event\":\"messages.upsert\",\"n\":{i}}}").into_bytes()
}
