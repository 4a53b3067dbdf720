//! Rotation and compaction: the directory stays small, pending events survive.

use super::{disk_usage, open_with, payload, payloads, record_len, segment_files, TempDir, HEADER};
use crate::journal::{JournalOptions, Seq};

#[test]
fn segments_rotate_at_the_configured_size() {
    let dir = TempDir::new("rotate");
    let record = record_len(payload(0).len());
    let options = JournalOptions::default().segment_size(record * 10);
    let (journal, _) = open_with(dir.path(), options);
    for i in 0..25 {
        journal.append(&payload(i)).expect("append");
    }
    assert_eq!(journal.stats().rotations, 2);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 3);
    assert_eq!(
        std::fs::metadata(&files[0]).expect("stat").len(),
        HEADER + record * 10
    );
}

#[test]
fn compaction_bounds_disk_usage_while_pending_events_survive() {
    let dir = TempDir::new("bounded");
    let segment_size = 1024;
    let options = JournalOptions::default().segment_size(segment_size);
    let (journal, _) = open_with(dir.path(), options.clone());
    let mut kept = Vec::new();
    let mut peak = 0;
    for i in 0..800 {
        let seq = journal.append(&payload(i)).expect("append");
        if i % 100 == 0 {
            kept.push(payload(i));
        } else {
            journal.mark_done(seq).expect("mark done");
        }
        peak = peak.max(journal.stats().disk_bytes);
    }
    let stats = journal.stats();
    assert!(
        stats.segments_deleted > 0 && stats.carried_forward > 0,
        "{stats:?}"
    );
    assert_eq!(stats.disk_bytes, disk_usage(dir.path()));
    // 800 events took ~45 KiB to write; the directory never held more than a few segments.
    let live = kept.iter().map(|p| record_len(p.len())).sum::<u64>();
    assert!(
        peak <= 4 * live + 3 * segment_size,
        "peak {peak} bytes for {live} live bytes"
    );
    drop(journal);

    let (_journal, recovery) = open_with(dir.path(), options);
    assert!(recovery.is_clean());
    assert_eq!(payloads(&recovery), kept);
}

#[test]
fn a_stuck_event_is_carried_forward_and_its_old_segment_deleted() {
    let dir = TempDir::new("stuck");
    let record = record_len(payload(0).len());
    let options = JournalOptions::default().segment_size(record * 8);
    let (journal, _) = open_with(dir.path(), options.clone());
    let stuck = journal.append(&payload(0)).expect("append");
    let first_segment = segment_files(dir.path())[0].clone();
    for i in 1..100 {
        let seq = journal.append(&payload(i)).expect("append");
        journal.mark_done(seq).expect("mark done");
    }
    assert!(
        !first_segment.exists(),
        "the first segment was compacted away"
    );
    assert!(journal.stats().carried_forward >= 1);
    assert_eq!(
        journal.pending_events().expect("read from its new place"),
        vec![(stuck, payload(0))]
    );
    drop(journal);

    let (_journal, recovery) = open_with(dir.path(), options);
    assert_eq!(recovery.pending, vec![(stuck, payload(0))]);
}

#[test]
fn stuck_events_of_several_sparse_segments_are_all_carried_forward_in_order() {
    let dir = TempDir::new("stuck-many");
    let record = record_len(payload(0).len());
    let options = JournalOptions::default().segment_size(record * 8);
    let (journal, _) = open_with(dir.path(), options.clone());
    let mut stuck = Vec::new();
    for i in 0..40 {
        let seq = journal.append(&payload(i)).expect("append");
        if i % 10 == 3 {
            stuck.push((seq, payload(i)));
        } else {
            journal.mark_done(seq).expect("mark done");
        }
    }
    journal.compact().expect("compact");
    assert!(journal.stats().carried_forward >= 4);
    assert_eq!(journal.pending_events().expect("read back"), stuck);
    drop(journal);

    let (_journal, recovery) = open_with(dir.path(), options);
    assert_eq!(recovery.pending, stuck);
    assert!(
        segment_files(dir.path()).len() <= 3,
        "sparse segments deleted"
    );
}

#[test]
fn done_markers_outlive_the_segment_they_were_written_in() {
    // Segment A holds events 1..=10 and stays (most are pending); segment B
    // holds the done markers of 1..=3 and is deleted once its own events are
    // done. The markers must be carried forward, or 1..=3 would come back.
    let dir = TempDir::new("markers");
    let record = record_len(payload(0).len());
    let options = JournalOptions::default().segment_size(record * 10);
    let (journal, _) = open_with(dir.path(), options.clone());
    let a: Vec<Seq> = (0..10)
        .map(|i| journal.append(&payload(i)).expect("append"))
        .collect();
    let segment_a = segment_files(dir.path())[0].clone();
    let first_of_b = journal.append(&payload(10)).expect("append"); // rotates into B
    let segment_b = segment_files(dir.path())[1].clone();
    for &seq in &a[..3] {
        journal.mark_done(seq).expect("mark done");
    }
    journal.mark_done(first_of_b).expect("mark done");
    let mut i = 11;
    while segment_b.exists() {
        let seq = journal.append(&payload(i)).expect("append");
        journal.mark_done(seq).expect("mark done");
        i += 1;
        assert!(i < 100, "B should have been sealed and deleted by now");
    }
    assert!(segment_a.exists(), "A still holds pending events");
    drop(journal);

    let (_journal, recovery) = open_with(dir.path(), options);
    assert_eq!(
        payloads(&recovery),
        (3..10).map(payload).collect::<Vec<_>>()
    );
}

#[test]
fn explicit_compaction_deletes_sealed_segments_once_everything_is_done() {
    let dir = TempDir::new("explicit");
    let record = record_len(payload(0).len());
    let options = JournalOptions::default().segment_size(record * 4);
    let (journal, _) = open_with(dir.path(), options);
    let seqs: Vec<Seq> = (0..20)
        .map(|i| journal.append(&payload(i)).expect("append"))
        .collect();
    assert!(segment_files(dir.path()).len() >= 5);
    for seq in seqs {
        journal.mark_done(seq).expect("mark done");
    }
    journal.compact().expect("compact");
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "only the active segment is left"
    );
    assert_eq!(journal.stats().pending, 0);
}

#[test]
fn reopening_a_fully_done_journal_deletes_its_sealed_segments() {
    let dir = TempDir::new("reopen");
    let record = record_len(payload(0).len());
    let options = JournalOptions::default().segment_size(record * 4);
    let (journal, _) = open_with(dir.path(), options.clone());
    let seqs: Vec<Seq> = (0..12)
        .map(|i| journal.append(&payload(i)).expect("append"))
        .collect();
    for seq in seqs {
        journal.mark_done(seq).expect("mark done");
    }
    drop(journal);
    let (journal, recovery) = open_with(dir.path(), options);
    assert!(recovery.pending.is_empty());
    assert_eq!(journal.stats().segments, 1);
    assert_eq!(segment_files(dir.path()).len(), 1);
}
