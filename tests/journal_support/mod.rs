//! Helpers shared by the `journal_*` tests.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use wasenderapi::journal::{Journal, JournalOptions, Recovery, Seq};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
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

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn open(dir: &Path) -> (Journal, Recovery) {
    open_with(dir, JournalOptions::default())
}

pub fn open_with(dir: &Path, options: JournalOptions) -> (Journal, Recovery) {
    Journal::open(dir, options).expect("open the journal")
}

/// The payloads of the pending events, in order.
pub fn payloads(recovery: &Recovery) -> Vec<Vec<u8>> {
    recovery.pending.iter().map(|(_, p)| p.clone()).collect()
}

pub fn seqs(recovery: &Recovery) -> Vec<Seq> {
    recovery.pending.iter().map(|(s, _)| *s).collect()
}

/// Segment files in `dir`, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list the journal dir")
        .map(|e| e.expect("read a dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Total bytes of the segment files in `dir`.
pub fn disk_usage(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// The on-disk size of a record carrying `payload_len` bytes.
pub fn record_len(payload_len: usize) -> u64 {
    21 + payload_len as u64
}

pub fn payload(i: usize) -> Vec<u8> {
    format!("{{\"event\":\"messages.upsert\",\"n\":{i}}}").into_bytes()
}
