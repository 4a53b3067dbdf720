//! One process per journal directory: a second open is refused, changes
//! nothing, and succeeds once the first handle is gone.

use std::fs;
use std::path::Path;

use super::{open, payload, snapshot, TempDir};
use crate::error::WasenderError;
use crate::journal::open_journal;
use crate::journal::segment::{file_header, segment_name};
use crate::journal::{JournalDir, JournalOptions};

fn locked(dir: &Path) -> (std::path::PathBuf, Option<u32>) {
    match open_journal(dir, JournalOptions::default()) {
        Err(WasenderError::JournalLocked { path, pid }) => (path, pid),
        other => panic!("expected JournalLocked, got {other:?}"),
    }
}

/// Every file in `dir` with its bytes.
#[test]
fn a_second_open_in_the_same_process_is_refused_with_the_holders_pid() {
    let dir = TempDir::new("lock-twice");
    let (journal, _) = open(dir.path());
    let (path, pid) = locked(dir.path());
    assert_eq!(path, dir.path());
    assert_eq!(pid, Some(std::process::id()));
    let message = WasenderError::JournalLocked { path, pid }.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    drop(journal);
    let (_journal, _) = open(dir.path());
}

#[test]
fn a_refused_open_repairs_nothing() {
    let dir = TempDir::new("lock-untouched");
    let (journal, _) = open(dir.path());
    journal.append(&payload(1)).expect("append");
    // A segment the holder does not know of, with a torn record a normal
    // open would cut off, and a cut-off header it would rewrite.
    let mut torn = file_header().to_vec();
    torn.extend_from_slice(b"WJR1\x01\x02");
    fs::write(dir.path().join(segment_name(1 << 40)), &torn).expect("write");
    fs::write(dir.path().join(segment_name(1 << 41)), b"WSJ").expect("write");
    let before = snapshot(dir.path());
    locked(dir.path());
    assert!(matches!(
        JournalDir::open(dir.path()),
        Err(WasenderError::JournalLocked { .. })
    ));
    assert_eq!(snapshot(dir.path()), before, "nothing changed");
    drop(journal);
    let (_journal, recovered) = open(dir.path());
    assert_eq!(recovered.corruption.len(), 2, "repaired once unlocked");
    assert_eq!(recovered.pending.len(), 1);
}

#[test]
fn close_releases_the_lock_while_the_handle_lives_and_refuses_writes() {
    let dir = TempDir::new("lock-close");
    let (journal, _) = open(dir.path());
    let seq = journal.append(b"kept").expect("append");
    journal.close().expect("close");
    assert!(journal.append(b"refused").is_err());
    assert!(journal.mark_done(seq).is_err());
    let (_again, recovered) = open(dir.path());
    assert_eq!(recovered.pending, vec![(seq, b"kept".to_vec())]);
}

#[test]
fn the_lock_file_holds_the_pid_and_stays_after_drop() {
    let dir = TempDir::new("lock-file");
    drop(open(dir.path()));
    let text = fs::read_to_string(dir.path().join("lock")).expect("read the lock file");
    assert_eq!(text.trim(), std::process::id().to_string());
}
