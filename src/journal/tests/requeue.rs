//! Dead letters requeued into the journal and purged, through the crate's
//! internals and through `JournalDir`.

use std::fs;
use std::path::Path;

use super::{open, TempDir};
use crate::error::WasenderError;
use crate::journal::{
    self, dedupe_key, DeadLetter, DeadLetters, DedupeWindow, JournalDir, Requeue, Seq,
    DEAD_LETTER_FILE, DEDUPE_FILE,
};

fn message(id: &str) -> Vec<u8> {
    format!(
        r#"{{"event":"messages.upsert","timestamp":1633456789,"data":{{"messages":{{"key":{{"id":"{id}","fromMe":false,"remoteJid":"1234567890@s.whatsapp.net"}},"messageBody":"Hello"}}}}}}"#
    )
    .into_bytes()
}

/// A dead-letter file in `dir` holding letters for `ids`, with seqs 1, 2, …
fn letters(dir: &Path, ids: &[&str]) -> DeadLetters {
    let letters = DeadLetters::open(dir.join(DEAD_LETTER_FILE)).expect("open the letters");
    for (i, id) in ids.iter().enumerate() {
        let letter = DeadLetter::new(Seq(i as u64 + 1), message(id), "db down", 3);
        letters.record(&letter).expect("record");
    }
    letters
}

#[test]
fn a_requeued_letter_becomes_a_pending_event_once() {
    let dir = TempDir::new("requeue-once");
    let (journal, _) = open(dir.path());
    let file = letters(dir.path(), &["A", "B", "C"]);

    let seqs = journal::requeue(&journal, &file, &Requeue::Seq(2)).expect("requeue #2");
    assert_eq!(seqs.len(), 1);
    assert_eq!(
        journal.pending_events().expect("read back"),
        vec![(seqs[0], message("B"))]
    );
    let again = journal::requeue(&journal, &file, &Requeue::Seq(2)).expect("again");
    assert!(again.is_empty(), "a requeued letter is not requeued twice");

    let rest = journal::requeue(&journal, &file, &Requeue::All).expect("the rest");
    assert_eq!(rest, vec![Seq(seqs[0].0 + 1), Seq(seqs[0].0 + 2)]);
    assert!(journal::requeue(&journal, &file, &Requeue::All)
        .expect("nothing left")
        .is_empty());
    let pending: Vec<Vec<u8>> = journal
        .pending_events()
        .expect("read back")
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(pending, vec![message("B"), message("A"), message("C")]);

    let on_disk = DeadLetters::read(dir.path().join(DEAD_LETTER_FILE)).expect("read");
    let marks: Vec<(u64, Option<u64>)> = on_disk
        .iter()
        .map(|l| (l.id.seq().unwrap_or(0), l.requeued_as))
        .collect();
    assert_eq!(
        marks,
        vec![
            (1, Some(rest[0].0)),
            (2, Some(seqs[0].0)),
            (3, Some(rest[1].0))
        ]
    );
}

#[test]
fn letters_are_picked_by_message_id_or_dedupe_key() {
    let dir = TempDir::new("requeue-id");
    let (journal, _) = open(dir.path());
    let file = letters(dir.path(), &["A", "B", "A"]);
    let by_id = journal::requeue(&journal, &file, &Requeue::EventId("A".into())).expect("by id");
    assert_eq!(by_id.len(), 2, "both letters of message A");
    let key = dedupe_key("messages.upsert", Some("B"), b"");
    let by_key = journal::requeue(&journal, &file, &Requeue::EventId(key)).expect("by key");
    assert_eq!(by_key.len(), 1);
    let none = journal::requeue(&journal, &file, &Requeue::EventId("Z".into())).expect("none");
    assert!(none.is_empty());
}

#[test]
fn purge_empties_the_file_and_later_letters_are_appended_to_the_new_one() {
    let dir = TempDir::new("purge");
    let (journal, _) = open(dir.path());
    let file = letters(dir.path(), &["A", "B"]);
    journal::requeue(&journal, &file, &Requeue::Seq(1)).expect("requeue");
    assert_eq!(journal::purge(&file).expect("purge"), 2);
    assert!(file.list().expect("list").is_empty());
    assert_eq!(journal::purge(&file).expect("purge again"), 0);
    file.record(&DeadLetter::new(Seq(9), message("C"), "e", 1))
        .expect("record after the rewrite");
    let on_disk = DeadLetters::read(dir.path().join(DEAD_LETTER_FILE)).expect("read");
    assert_eq!(on_disk.len(), 1);
    assert_eq!(on_disk[0].id.seq(), Some(9));
    assert!(!dir.path().join("dead-letters.jsonl.tmp").exists());
}

#[test]
fn a_letter_file_of_an_unknown_version_is_never_rewritten() {
    let dir = TempDir::new("requeue-foreign");
    let (journal, _) = open(dir.path());
    let file = letters(dir.path(), &["A"]);
    let path = dir.path().join(DEAD_LETTER_FILE);
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(b"{\"v\":2,\"seq\":5}\n");
    fs::write(&path, &bytes).expect("write");
    for result in [
        journal::requeue(&journal, &file, &Requeue::All).map(|s| s.len()),
        journal::purge(&file),
    ] {
        assert!(matches!(result, Err(WasenderError::JournalFormat { .. })));
    }
    assert_eq!(fs::read(&path).expect("read"), bytes, "left untouched");
    assert_eq!(journal.stats().pending, 0, "nothing requeued");
}

#[test]
fn a_letter_serializes_as_its_line_and_the_mark_round_trips() {
    let mut letter = DeadLetter::new(Seq(7), message("A"), "db down", 3);
    letter.requeued_as = Some(12);
    let json = serde_json::to_value(&letter).expect("serialize");
    assert_eq!(json["seq"], 7);
    assert_eq!(json["requeued_as"], 12);
    assert_eq!(json["payload_encoding"], "utf8");
    assert_eq!(letter.event_id().as_deref(), Some("A"));
    let dir = TempDir::new("requeue-json");
    let path = dir.path().join(DEAD_LETTER_FILE);
    fs::write(&path, format!("{json}\n")).expect("write");
    assert_eq!(DeadLetters::read(&path).expect("read"), vec![letter]);
}

#[test]
fn journal_dir_needs_an_existing_journal_and_creates_none() {
    let dir = TempDir::new("jdir-missing");
    let missing = dir.path().join("typo");
    match JournalDir::open(&missing) {
        Err(WasenderError::Journal { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
    assert!(!missing.exists());
    let unrelated = dir.path().join("unrelated");
    fs::create_dir(&unrelated).expect("create");
    fs::write(unrelated.join("notes.txt"), b"mine").expect("write");
    match JournalDir::open(&unrelated) {
        Err(WasenderError::Journal { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
    assert_eq!(
        fs::read_dir(&unrelated).expect("list").count(),
        1,
        "nothing created"
    );
}

#[test]
fn journal_dir_counts_what_the_directory_holds() {
    let dir = TempDir::new("jdir-stats");
    {
        let (journal, _) = open(dir.path());
        journal.append(b"pending").expect("append");
        let file = letters(dir.path(), &["A", "B"]);
        journal::requeue(&journal, &file, &Requeue::Seq(1)).expect("requeue");
        let window = DedupeWindow::open(dir.path().join(DEDUPE_FILE), 10).expect("dedupe");
        window.check_and_insert("k1");
        window.check_and_insert("k2");
    }
    let journal = JournalDir::open(dir.path()).expect("open");
    let info = journal.stats().expect("stats");
    assert_eq!(info.path, dir.path());
    assert_eq!(info.pending, 2, "the event and the requeued letter");
    assert_eq!((info.dead_letters, info.requeued), (1, 1));
    assert_eq!(info.dedupe_entries, 2);
    assert_eq!(info.segments, 1);
    assert_eq!(info.damaged_ranges, 0);
    assert!(info.disk_bytes > 0);
    assert_eq!(journal.requeue(Requeue::All).expect("requeue"), 1);
    assert_eq!(journal.stats().expect("stats").pending, 3);
    assert_eq!(journal.purge().expect("purge"), 2);
    assert!(journal.dead_letters().expect("list").is_empty());
}
