//! Recovery: what comes back after a restart or a crash, and what damage does.

use std::fs;

use proptest::prelude::*;

use super::{
    open, open_with, payload, payloads, read_back, record_len, segment_files, seqs, TempDir, HEADER,
};
use crate::error::WasenderError;
use crate::journal::open_journal;
use crate::journal::record::CorruptionKind;
use crate::journal::{JournalOptions, Seq};

#[test]
fn pending_events_come_back_in_append_order() {
    let dir = TempDir::new("order");
    let (journal, recovery) = open(dir.path());
    assert!(recovery.pending.is_empty() && recovery.is_clean());
    let appended: Vec<Seq> = (0..20)
        .map(|i| journal.append(&payload(i)).expect("append"))
        .collect();
    drop(journal);

    let (_journal, recovery) = open(dir.path());
    assert!(recovery.is_clean());
    assert_eq!(seqs(&recovery), appended);
    assert_eq!(
        payloads(&recovery),
        (0..20).map(payload).collect::<Vec<_>>()
    );
}

#[test]
fn events_marked_done_are_not_recovered() {
    let dir = TempDir::new("done");
    let (journal, _) = open(dir.path());
    let seqs: Vec<Seq> = (0..6)
        .map(|i| journal.append(&payload(i)).expect("append"))
        .collect();
    for seq in [seqs[0], seqs[2], seqs[5]] {
        assert!(journal.mark_done(seq).expect("mark done"));
    }
    drop(journal);

    let (_journal, recovery) = open(dir.path());
    assert_eq!(
        payloads(&recovery),
        vec![payload(1), payload(3), payload(4)]
    );
}

#[test]
fn marking_an_unknown_or_finished_event_done_writes_nothing() {
    let dir = TempDir::new("unknown");
    let (journal, _) = open(dir.path());
    let seq = journal.append(b"x").expect("append");
    assert!(journal.mark_done(seq).expect("first mark"));
    assert!(!journal.mark_done(seq).expect("second mark"));
    assert!(!journal.mark_done(Seq(999)).expect("unknown seq"));
    assert_eq!(journal.stats().done_marks, 1);
}

#[test]
fn recovered_events_stay_pending_until_marked_done() {
    let dir = TempDir::new("redeliver");
    let (journal, _) = open(dir.path());
    journal.append(b"a").expect("append");
    journal.append(b"b").expect("append");
    drop(journal);

    let (journal, recovery) = open(dir.path());
    assert_eq!(journal.stats().pending, 2);
    let (first, _) = &recovery.pending[0];
    journal.mark_done(*first).expect("mark done");
    drop(journal);

    let (_journal, recovery) = open(dir.path());
    assert_eq!(payloads(&recovery), vec![b"b".to_vec()]);
}

#[test]
fn pending_events_are_read_back_in_bounded_batches_in_seq_order() {
    let dir = TempDir::new("batches");
    let (journal, _) = open(dir.path());
    let seqs: Vec<Seq> = (0..10)
        .map(|i| journal.append(&payload(i)).expect("append"))
        .collect();
    journal.mark_done(seqs[1]).expect("mark done");
    drop(journal);
    let (journal, recovery) = open_journal(dir.path(), JournalOptions::default()).expect("open");
    assert_eq!(
        (recovery.pending, recovery.backlog_end),
        (9, Seq(seqs[9].0 + 1))
    );
    let after = journal.append(b"after the open").expect("append");
    assert!(after >= recovery.backlog_end);

    let backlog = Seq(0)..recovery.backlog_end;
    let first = journal.read_pending(backlog.clone(), 3, usize::MAX);
    let read: Vec<Seq> = first.events.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        read,
        vec![seqs[0], seqs[2], seqs[3]],
        "done events are skipped"
    );
    assert_eq!((first.next, first.exhausted), (seqs[4], false));
    // A byte budget smaller than one payload still returns one event.
    let one = journal.read_pending(first.next..backlog.end, 10, 1);
    assert_eq!(one.events.len(), 1);
    assert_eq!(one.events[0].1.as_deref().ok(), Some(&payload(4)[..]));
    let rest = journal.read_pending(one.next..backlog.end, 100, usize::MAX);
    assert_eq!(rest.events.len(), 5);
    assert!(
        rest.exhausted,
        "the event appended after the open is outside the backlog"
    );
    let empty = journal.read_pending(Seq(after.0 + 1)..Seq(u64::MAX), 10, usize::MAX);
    assert!(empty.events.is_empty() && empty.exhausted);
}

#[test]
fn sequence_numbers_keep_increasing_across_reopen() {
    let dir = TempDir::new("seq");
    let (journal, _) = open(dir.path());
    let first = journal.append(b"a").expect("append");
    journal.mark_done(first).expect("mark done");
    drop(journal);
    let (journal, _) = open(dir.path());
    assert!(journal.append(b"b").expect("append") > first);
}

#[test]
fn a_payload_over_the_limit_is_refused() {
    let dir = TempDir::new("limit");
    let (journal, _) = open_with(dir.path(), JournalOptions::default().max_record_size(8));
    let err = journal.append(&[0u8; 9]).expect_err("too large");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    journal.append(&[0u8; 8]).expect("at the limit is fine");
}

/// Writes five events and returns the segment file and where the last record starts.
fn five_events(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>, usize) {
    let (journal, _) = open(dir);
    for i in 0..5 {
        journal.append(&payload(i)).expect("append");
    }
    drop(journal);
    let files = segment_files(dir);
    assert_eq!(files.len(), 1);
    let bytes = fs::read(&files[0]).expect("read segment");
    let last_start = bytes.len() - record_len(payload(4).len()) as usize;
    (files[0].clone(), bytes, last_start)
}

#[test]
fn a_crash_at_any_byte_of_the_last_record_recovers_every_earlier_record() {
    let dir = TempDir::new("torn");
    let (segment, bytes, last_start) = five_events(dir.path());
    let earlier: Vec<Vec<u8>> = (0..4).map(payload).collect();

    for cut in last_start..bytes.len() {
        fs::write(&segment, &bytes[..cut]).expect("write the torn segment");
        let (journal, recovery) = open(dir.path());
        assert_eq!(payloads(&recovery), earlier, "cut at byte {cut}");
        if cut > last_start {
            assert_eq!(recovery.corruption.len(), 1, "cut at byte {cut}");
            let damage = &recovery.corruption[0];
            assert!(damage.truncated, "cut at byte {cut}");
            assert_eq!(damage.kind, CorruptionKind::Truncated, "cut at byte {cut}");
            assert_eq!(damage.offset, last_start as u64);
        } else {
            assert!(recovery.is_clean());
        }
        assert_eq!(
            fs::metadata(&segment).expect("stat").len(),
            last_start as u64,
            "truncated to the last good record"
        );
        // The journal carries on after the cut.
        journal.append(b"after").expect("append after recovery");
        drop(journal);
        let (_journal, recovery) = open(dir.path());
        assert!(recovery.is_clean(), "cut at byte {cut}");
        assert_eq!(recovery.pending.len(), 5);
    }
}

#[test]
fn a_flipped_byte_anywhere_in_a_middle_record_loses_only_that_record() {
    let dir = TempDir::new("flip");
    let (segment, bytes, _) = five_events(dir.path());
    let record = record_len(payload(0).len()) as usize;
    let (start, end) = (HEADER as usize + 2 * record, HEADER as usize + 3 * record);
    let survivors = vec![payload(0), payload(1), payload(3), payload(4)];

    for at in start..end {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x5A;
        fs::write(&segment, &damaged).expect("write the damaged segment");
        let (journal, recovery) = open(dir.path());
        assert_eq!(payloads(&recovery), survivors, "byte {at} flipped");
        assert_eq!(recovery.corruption.len(), 1, "byte {at} flipped");
        assert!(!recovery.corruption[0].truncated);
        assert_eq!(recovery.corruption[0].offset, start as u64);
        assert_eq!(recovery.corruption[0].len, record as u64);
        drop(journal);
    }
}

#[test]
fn garbage_after_the_last_record_is_reported_and_cut_off() {
    let dir = TempDir::new("garbage");
    let (segment, mut bytes, _) = five_events(dir.path());
    let good_len = bytes.len() as u64;
    bytes.extend_from_slice(b"\0\0\0\0not a record at all, just junk WJR");
    fs::write(&segment, &bytes).expect("write");

    let (_journal, recovery) = open(dir.path());
    assert_eq!(recovery.pending.len(), 5);
    assert_eq!(recovery.corruption.len(), 1);
    assert_eq!(recovery.corruption[0].kind, CorruptionKind::Garbage);
    assert!(recovery.corruption[0].truncated);
    assert_eq!(fs::metadata(&segment).expect("stat").len(), good_len);
}

#[test]
fn damage_in_an_older_segment_loses_nothing_else() {
    let dir = TempDir::new("older");
    let options = JournalOptions::default().segment_size(300);
    let (journal, _) = open_with(dir.path(), options.clone());
    for i in 0..30 {
        journal.append(&payload(i)).expect("append");
    }
    drop(journal);
    let files = segment_files(dir.path());
    assert!(
        files.len() >= 3,
        "expected several segments, got {}",
        files.len()
    );

    // Scribble over the middle of the second record of the first segment.
    let mut first = fs::read(&files[0]).expect("read");
    let record = record_len(payload(0).len()) as usize;
    first[HEADER as usize + record + 30] ^= 0xFF;
    fs::write(&files[0], &first).expect("write");

    let (_journal, recovery) = open_with(dir.path(), options);
    let expected: Vec<Vec<u8>> = (0..30).filter(|&i| i != 1).map(payload).collect();
    assert_eq!(payloads(&recovery), expected);
    assert_eq!(recovery.corruption.len(), 1);
    assert_eq!(recovery.corruption[0].segment, files[0]);
    assert_eq!(recovery.corruption[0].kind, CorruptionKind::Checksum);
}

#[test]
fn files_that_are_not_segments_are_left_alone() {
    let dir = TempDir::new("foreign");
    fs::write(dir.path().join("dedupe.log"), b"+\"k\"\n").expect("write");
    fs::write(dir.path().join("notes.wal.bak"), b"junk").expect("write");
    let (journal, recovery) = open(dir.path());
    assert!(recovery.is_clean() && recovery.pending.is_empty());
    journal.append(b"x").expect("append");
    assert!(dir.path().join("notes.wal.bak").exists());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever happens to the bytes, opening never panics and only ever hands
    /// back events that were appended, with their own seqs, in order — or,
    /// when the damage reaches the file header, refuses the segment as another
    /// format and leaves it exactly as it found it.
    #[test]
    fn recovery_from_arbitrary_damage_returns_only_real_events_in_order(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let dir = TempDir::new("prop");
        let (journal, _) = open(dir.path());
        let appended: Vec<(Seq, Vec<u8>)> = (0..8)
            .map(|i| (journal.append(&payload(i)).expect("append"), payload(i)))
            .collect();
        drop(journal);
        let segment = &segment_files(dir.path())[0];
        let mut bytes = fs::read(segment).expect("read");
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        bytes.extend_from_slice(&tail);
        fs::write(segment, &bytes).expect("write");

        let (journal, recovery) = match open_journal(dir.path(), JournalOptions::default()) {
            Ok(opened) => opened,
            Err(WasenderError::JournalFormat { path, .. }) => {
                prop_assert_eq!(&path, segment);
                prop_assert_eq!(fs::read(segment).expect("read"), bytes, "left untouched");
                return Ok(());
            }
            Err(e) => panic!("opening a damaged journal failed: {e}"),
        };
        let recovery = read_back(&journal, recovery);
        let mut last = None;
        for (seq, body) in &recovery.pending {
            prop_assert!(appended.contains(&(*seq, body.clone())));
            prop_assert!(last < Some(*seq));
            last = Some(*seq);
        }
        // The journal is writable again, and its tail is clean on the next open.
        journal.append(b"after").expect("append");
        drop(journal);
        let (_journal, again) = open(dir.path());
        prop_assert!(again.corruption.iter().all(|c| !c.truncated));
        prop_assert_eq!(again.pending.len(), recovery.pending.len() + 1);
    }
}
