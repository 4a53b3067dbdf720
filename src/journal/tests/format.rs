//! File formats: a file in an unknown format is refused and left untouched,
//! a file cut short at its creation is repaired, files from before the format
//! version are still read, and every error names its file.

use std::fs;
use std::path::Path;

use super::{
    dead_letters_with_tail, open, payload, payloads, record_len, segment_files, snapshot, TempDir,
    HEADER,
};
use crate::error::WasenderError;
use crate::journal::open_journal;
use crate::journal::record::{self, CorruptionKind, RecordKind};
use crate::journal::segment::{file_header, segment_name};
use crate::journal::{DeadLetter, DeadLetters, DedupeWindow, JournalOptions, Seq};

/// Writes `count` events, closes the journal, and returns its only segment.
fn segment_with_events(dir: &Path, count: usize) -> std::path::PathBuf {
    let (journal, _) = open(dir);
    for i in 0..count {
        journal.append(&payload(i)).expect("append");
    }
    drop(journal);
    let files = segment_files(dir);
    assert_eq!(files.len(), 1);
    files[0].clone()
}

fn refused(dir: &Path) -> (std::path::PathBuf, String) {
    match open_journal(dir, JournalOptions::default()) {
        Err(WasenderError::JournalFormat { path, reason }) => (path, reason),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn every_new_segment_starts_with_the_magic_and_format_version() {
    let dir = TempDir::new("header");
    let segment = segment_with_events(dir.path(), 1);
    let bytes = fs::read(&segment).expect("read");
    assert_eq!(&bytes[..8], b"WSJRNL\x01\x00");
    assert_eq!(bytes.len() as u64, HEADER + record_len(payload(0).len()));
}

#[test]
fn a_segment_of_a_newer_format_version_is_refused_and_nothing_is_touched() {
    let dir = TempDir::new("newer");
    let older = segment_with_events(dir.path(), 3);
    // A torn tail in the older segment, which a normal open would cut off.
    let mut torn = fs::read(&older).expect("read");
    torn.extend_from_slice(b"WJR1\x00\x01");
    fs::write(&older, &torn).expect("write");
    let newer = dir.path().join(segment_name(1_000));
    let mut bytes = b"WSJRNL\x02\x00".to_vec();
    bytes.extend_from_slice(b"records of a format this build does not know");
    fs::write(&newer, &bytes).expect("write");
    let before = snapshot(dir.path());

    let (path, reason) = refused(dir.path());
    assert_eq!(path, newer);
    assert!(reason.contains("version 2"), "{reason}");
    assert_eq!(snapshot(dir.path()), before, "no file was changed");
    let error = open_journal(dir.path(), JournalOptions::default()).expect_err("refused");
    let message = error.to_string();
    assert!(message.contains(&newer.display().to_string()), "{message}");
    assert!(message.contains("left untouched"), "{message}");
    assert_eq!(snapshot(dir.path()), before, "still nothing changed");
}

#[test]
fn a_segment_with_another_magic_is_refused_and_left_untouched() {
    let dir = TempDir::new("magic");
    let segment = dir.path().join(segment_name(1));
    let bytes = b"SQLite format 3\x00 and then some pages".to_vec();
    fs::write(&segment, &bytes).expect("write");

    let (path, reason) = refused(dir.path());
    assert_eq!(path, segment);
    assert!(reason.contains("SQLite"), "{reason}");
    assert_eq!(fs::read(&segment).expect("read"), bytes);
    assert_eq!(
        segment_files(dir.path()),
        vec![segment],
        "no segment created"
    );
}

#[test]
fn a_header_cut_short_in_the_version_is_refused_when_it_is_not_ours() {
    let dir = TempDir::new("cutnewer");
    let segment = dir.path().join(segment_name(1));
    fs::write(&segment, b"WSJRNL\x02").expect("write");
    assert_eq!(refused(dir.path()).0, segment);
    assert_eq!(fs::read(&segment).expect("read"), b"WSJRNL\x02");
}

#[test]
fn an_empty_segment_from_a_crash_at_creation_is_repaired() {
    let dir = TempDir::new("empty");
    segment_with_events(dir.path(), 2);
    let empty = dir.path().join(segment_name(100));
    fs::write(&empty, b"").expect("write");

    let (journal, recovery) = open(dir.path());
    assert!(recovery.is_clean(), "{:?}", recovery.corruption);
    assert_eq!(payloads(&recovery), vec![payload(0), payload(1)]);
    assert_eq!(fs::read(&empty).expect("read"), file_header());
    journal.append(b"next").expect("append");
    drop(journal);
    let (_journal, recovery) = open(dir.path());
    assert!(recovery.is_clean());
    assert_eq!(recovery.pending.len(), 3);
}

#[test]
fn a_cut_off_header_is_repaired_and_reported_as_truncated() {
    for len in 1..HEADER as usize {
        let dir = TempDir::new("cutheader");
        let segment = dir.path().join(segment_name(1));
        fs::write(&segment, &file_header()[..len]).expect("write");

        let (journal, recovery) = open(dir.path());
        assert!(recovery.pending.is_empty());
        assert_eq!(recovery.corruption.len(), 1, "{len} bytes");
        let damage = &recovery.corruption[0];
        assert_eq!(
            (damage.kind, damage.offset, damage.len, damage.truncated),
            (CorruptionKind::Truncated, 0, len as u64, true)
        );
        assert_eq!(fs::read(&segment).expect("read"), file_header());
        journal.append(b"x").expect("append after the repair");
    }
}

#[test]
fn a_segment_of_zero_bytes_only_is_repaired_and_reported_as_garbage() {
    let dir = TempDir::new("zeros");
    let segment = dir.path().join(segment_name(1));
    fs::write(&segment, [0u8; 300]).expect("write");

    let (_journal, recovery) = open(dir.path());
    assert_eq!(recovery.corruption.len(), 1);
    assert_eq!(recovery.corruption[0].kind, CorruptionKind::Garbage);
    assert!(recovery.corruption[0].truncated);
    assert_eq!(fs::read(&segment).expect("read"), file_header());
}

#[test]
fn a_headerless_segment_from_before_the_format_version_is_still_read() {
    let dir = TempDir::new("format0");
    let legacy = dir.path().join(segment_name(1));
    let mut bytes = Vec::new();
    for seq in 1..=3u64 {
        record::encode(&mut bytes, RecordKind::Event, seq, &payload(seq as usize));
    }
    record::encode(&mut bytes, RecordKind::Done, 2, b"");
    fs::write(&legacy, &bytes).expect("write");

    let (journal, recovery) = open(dir.path());
    assert!(recovery.is_clean());
    assert_eq!(
        recovery.pending,
        vec![(Seq(1), payload(1)), (Seq(3), payload(3))]
    );
    // New records go to a new segment, with a header; the old one is not appended to.
    let seq = journal.append(b"new").expect("append");
    assert!(seq > Seq(3));
    assert_eq!(fs::read(&legacy).expect("read"), bytes);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2);
    assert_eq!(fs::read(&files[1]).expect("read")[..8], file_header());

    // Once its events are done, compaction deletes the old segment.
    for seq in [Seq(1), Seq(3), seq] {
        assert!(journal.mark_done(seq).expect("mark done"));
    }
    journal.compact().expect("compact");
    assert!(!legacy.exists());
    drop(journal);
    let (_journal, recovery) = open(dir.path());
    assert!(recovery.pending.is_empty() && recovery.is_clean());
}

#[test]
fn a_torn_headerless_segment_is_cut_to_its_last_record_as_before() {
    let dir = TempDir::new("format0torn");
    let legacy = dir.path().join(segment_name(1));
    let mut bytes = Vec::new();
    record::encode(&mut bytes, RecordKind::Event, 1, b"kept");
    let good = bytes.len() as u64;
    record::encode(&mut bytes, RecordKind::Event, 2, b"torn");
    bytes.truncate(bytes.len() - 2);
    fs::write(&legacy, &bytes).expect("write");

    let (_journal, recovery) = open(dir.path());
    assert_eq!(payloads(&recovery), vec![b"kept".to_vec()]);
    assert_eq!(recovery.corruption[0].kind, CorruptionKind::Truncated);
    assert_eq!(fs::metadata(&legacy).expect("stat").len(), good);
}

#[test]
fn an_unreadable_journal_directory_is_an_error_naming_it() {
    let dir = TempDir::new("notadir");
    let file = dir.path().join("file");
    fs::write(&file, b"x").expect("write");
    match open_journal(&file, JournalOptions::default()) {
        Err(WasenderError::Journal { path, .. }) => assert_eq!(path, file),
        other => panic!("expected a journal error, got {other:?}"),
    }
    let error = open_journal(&file, JournalOptions::default()).expect_err("not a dir");
    assert!(
        error.to_string().contains(&file.display().to_string()),
        "{error}"
    );
}

#[test]
fn a_dedupe_file_of_a_newer_version_is_refused_and_left_untouched() {
    let dir = TempDir::new("dedupenewer");
    let path = dir.path().join("dedupe.log");
    let bytes = b"#wasender-dedupe 2\n+\"k\"\n".to_vec();
    fs::write(&path, &bytes).expect("write");
    match DedupeWindow::open(&path, 10) {
        Err(WasenderError::JournalFormat {
            path: refused,
            reason,
        }) => {
            assert_eq!(refused, path);
            assert!(reason.contains('2'), "{reason}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    assert_eq!(fs::read(&path).expect("read"), bytes);
}

#[test]
fn a_file_that_is_not_a_dedupe_window_is_refused_and_left_untouched() {
    let dir = TempDir::new("dedupeforeign");
    let path = dir.path().join("dedupe.log");
    let bytes = b"\x89PNG\r\n\x1a\n not keys".to_vec();
    fs::write(&path, &bytes).expect("write");
    assert!(matches!(
        DedupeWindow::open(&path, 10),
        Err(WasenderError::JournalFormat { .. })
    ));
    assert_eq!(fs::read(&path).expect("read"), bytes);
}

#[test]
fn a_dedupe_file_starts_with_its_version_line() {
    let dir = TempDir::new("dedupeversion");
    let path = dir.path().join("dedupe.log");
    DedupeWindow::open(&path, 10)
        .expect("open")
        .check_and_insert("k");
    let text = fs::read_to_string(&path).expect("read");
    assert_eq!(text, "#wasender-dedupe 1\n+\"k\"\n");
}

#[test]
fn a_dedupe_file_without_a_version_line_is_read_and_upgraded() {
    let dir = TempDir::new("dedupe0");
    let path = dir.path().join("dedupe.log");
    fs::write(&path, "+\"a\"\n+\"b\"\n-\"a\"\n+\"c").expect("write");
    let window = DedupeWindow::open(&path, 10).expect("open");
    assert!(window.contains("b") && !window.contains("a") && !window.contains("c"));
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        "#wasender-dedupe 1\n+\"b\"\n"
    );
}

#[test]
fn a_dedupe_file_of_zero_bytes_is_an_empty_window() {
    let dir = TempDir::new("dedupezeros");
    let path = dir.path().join("dedupe.log");
    fs::write(&path, [0u8; 64]).expect("write");
    assert!(DedupeWindow::open(&path, 10).expect("open").is_empty());
}

#[test]
fn an_unreadable_dedupe_file_is_an_error_naming_it() {
    let dir = TempDir::new("dedupedir");
    match DedupeWindow::open(dir.path(), 10) {
        Err(WasenderError::Journal { path, .. }) => assert_eq!(path, dir.path()),
        other => panic!("expected a journal error, got {other:?}"),
    }
}

#[test]
fn dead_letter_lines_carry_their_format_version() {
    let dir = TempDir::new("deadv");
    let path = dir.path().join("dead-letters.jsonl");
    DeadLetters::open(&path)
        .expect("open")
        .record(&DeadLetter::new(Seq(1), b"x".to_vec(), "e", 1))
        .expect("record");
    let line: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&path).expect("read").trim()).expect("json");
    assert_eq!(line["v"], 1);
}

#[test]
fn a_dead_letter_line_without_a_version_is_read_as_before() {
    let dir = TempDir::new("dead0");
    let path = dir.path().join("dead-letters.jsonl");
    fs::write(
        &path,
        concat!(
            r#"{"attempts":5,"error":"db down","payload":"AJ+Slg==","payload_encoding":"base64","#,
            r#""seq":42,"time":"2024-05-01T12:00:00.000Z","time_unix_ms":1714564800000}"#,
            "\n"
        ),
    )
    .expect("write");
    let letters = DeadLetters::read(&path).expect("read");
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        (
            letter.id.seq().unwrap_or(0),
            letter.payload.as_slice(),
            letter.attempts
        ),
        (42, &[0, 159, 146, 150][..], 5)
    );
    assert_eq!(letter.time_unix_ms, 1_714_564_800_000);
}

#[test]
fn a_dead_letter_of_a_newer_version_fails_the_read_naming_the_file_and_line() {
    let dir = TempDir::new("deadnewer");
    let path = dir.path().join("dead-letters.jsonl");
    dead_letters_with_tail(&path, b"{\"v\":2,\"seq\":2,\"whatever\":\"comes next\"}\n");
    let raw = fs::read(&path).expect("read");
    match DeadLetters::read(&path) {
        Err(WasenderError::JournalFormat {
            path: refused,
            reason,
        }) => {
            assert_eq!(refused, path);
            assert!(
                reason.contains("line 2") && reason.contains("version 2"),
                "{reason}"
            );
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    assert_eq!(
        fs::read(&path).expect("read"),
        raw,
        "reading changes nothing"
    );
}

#[test]
fn a_missing_dead_letter_file_is_an_error_naming_it() {
    let dir = TempDir::new("deadmissing");
    let path = dir.path().join("dead-letters.jsonl");
    match DeadLetters::read(&path) {
        Err(WasenderError::Journal {
            path: missing,
            source,
        }) => {
            assert_eq!(missing, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
}
