//! The dedupe window and the dead-letter file, across restarts.

use std::fs;

use super::{dead_letters_with_tail, TempDir};
use crate::journal::{dedupe_key, DeadLetter, DeadLetters, DedupeWindow, Seq};

#[test]
fn a_persisted_window_remembers_its_keys_after_reopen() {
    let dir = TempDir::new("dedupe");
    let path = dir.path().join("dedupe.log");
    let key = dedupe_key("messages.upsert", Some("3EB0X1"), b"{}");
    {
        let window = DedupeWindow::open(&path, 100).expect("open");
        assert!(window.check_and_insert(&key));
        assert!(window.check_and_insert("other"));
    }
    let window = DedupeWindow::open(&path, 100).expect("reopen");
    assert!(
        !window.check_and_insert(&key),
        "a duplicate after restart is caught"
    );
    assert_eq!(window.len(), 2);
}

#[test]
fn eviction_and_removal_survive_reopen() {
    let dir = TempDir::new("evict");
    let path = dir.path().join("dedupe.log");
    {
        let window = DedupeWindow::open(&path, 3).expect("open");
        for key in ["a", "b", "c", "d", "e"] {
            window.check_and_insert(key);
        }
        assert!(window.remove("d"));
    }
    let window = DedupeWindow::open(&path, 3).expect("reopen");
    assert!(!window.contains("a") && !window.contains("b") && !window.contains("d"));
    assert!(window.contains("c") && window.contains("e"));
}

#[test]
fn keys_with_newlines_and_quotes_round_trip() {
    let dir = TempDir::new("escape");
    let path = dir.path().join("dedupe.log");
    let odd = "line\nbreak \"quoted\" \\ tab\t ünïcode";
    DedupeWindow::open(&path, 10)
        .expect("open")
        .check_and_insert(odd);
    let window = DedupeWindow::open(&path, 10).expect("reopen");
    assert!(window.contains(odd));
    assert_eq!(window.len(), 1);
}

#[test]
fn a_torn_last_line_is_skipped() {
    let dir = TempDir::new("torn");
    let path = dir.path().join("dedupe.log");
    DedupeWindow::open(&path, 10)
        .expect("open")
        .check_and_insert("kept");
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(b"+\"cut sho");
    fs::write(&path, bytes).expect("write");
    let window = DedupeWindow::open(&path, 10).expect("reopen");
    assert!(window.contains("kept"));
    assert_eq!(window.len(), 1);
    window.check_and_insert("next");
    assert!(DedupeWindow::open(&path, 10)
        .expect("reopen")
        .contains("next"));
}

#[test]
fn the_window_file_stays_bounded() {
    let dir = TempDir::new("bounded");
    let path = dir.path().join("dedupe.log");
    let window = DedupeWindow::open(&path, 10).expect("open");
    for i in 0..5000 {
        window.check_and_insert(&format!("key-{i}"));
    }
    let lines = fs::read_to_string(&path).expect("read").lines().count();
    assert!(lines <= 2 * 10 + 64 + 1, "{lines} lines");
    drop(window);
    let window = DedupeWindow::open(&path, 10).expect("reopen");
    assert_eq!(window.len(), 10);
    assert!(window.contains("key-4999") && !window.contains("key-4989"));
}

#[test]
fn dead_letters_are_appended_as_json_lines_and_read_back() {
    let dir = TempDir::new("dead");
    let path = dir.path().join("dead-letters.jsonl");
    let text = DeadLetter::new(
        Seq(7),
        br#"{"event":"messages.upsert"}"#.to_vec(),
        "db down",
        5,
    );
    let binary = DeadLetter::new(Seq(9), vec![0, 159, 146, 150], "not utf-8", 1);
    {
        let letters = DeadLetters::open(&path).expect("open");
        letters.record(&text).expect("record");
    }
    DeadLetters::open(&path)
        .expect("reopen")
        .record(&binary)
        .expect("record");

    let raw = fs::read_to_string(&path).expect("read");
    let first: serde_json::Value =
        serde_json::from_str(raw.lines().next().expect("a line")).expect("json");
    assert_eq!(first["seq"], 7);
    assert_eq!(first["payload"], r#"{"event":"messages.upsert"}"#);
    assert_eq!(first["error"], "db down");
    assert_eq!(first["attempts"], 5);
    assert!(first["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    assert_eq!(
        DeadLetters::read(&path).expect("read back"),
        vec![text, binary]
    );
}

#[test]
fn a_torn_dead_letter_line_is_skipped_on_read() {
    let dir = TempDir::new("deadtorn");
    let path = dir.path().join("dead-letters.jsonl");
    let letter = dead_letters_with_tail(&path, br#"{"seq":2,"payl"#);
    assert_eq!(DeadLetters::read(&path).expect("read back"), vec![letter]);
}
