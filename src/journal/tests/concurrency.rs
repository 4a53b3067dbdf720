//! Many threads at once: nothing lost, nothing doubled, and fsyncs shared.

use std::collections::HashSet;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use super::{open, open_with, TempDir};
use crate::journal::{JournalOptions, Seq};

const THREADS: usize = 8;

fn body(thread: usize, i: usize) -> Vec<u8> {
    format!("t{thread}-{i}").into_bytes()
}

#[test]
fn appends_from_eight_threads_are_all_recovered_exactly_once() {
    let dir = TempDir::new("threads");
    let per_thread = 100;
    let (journal, _) = open_with(dir.path(), JournalOptions::default().segment_size(4096));
    let journal = Arc::new(journal);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let journal = Arc::clone(&journal);
            thread::spawn(move || {
                (0..per_thread)
                    .map(|i| journal.append(&body(t, i)).expect("append"))
                    .collect::<Vec<Seq>>()
            })
        })
        .collect();
    let mut all_seqs = HashSet::new();
    for handle in handles {
        let seqs = handle.join().expect("appender thread");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one thread's seqs increase"
        );
        all_seqs.extend(seqs);
    }
    assert_eq!(all_seqs.len(), THREADS * per_thread, "seqs are unique");
    drop(journal);

    let (_journal, recovery) = open(dir.path());
    assert!(recovery.is_clean());
    assert_eq!(recovery.pending.len(), THREADS * per_thread);
    let bodies: HashSet<Vec<u8>> = recovery.pending.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(
        bodies.len(),
        THREADS * per_thread,
        "each event exactly once"
    );
    for t in 0..THREADS {
        let positions: Vec<usize> = (0..per_thread)
            .map(|i| {
                recovery
                    .pending
                    .iter()
                    .position(|(_, b)| *b == body(t, i))
                    .expect("recovered")
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "thread {t}'s events stay in order"
        );
    }
}

#[test]
fn concurrent_appends_share_fsyncs() {
    let dir = TempDir::new("group");
    let per_thread = 40;
    let options = JournalOptions::default().commit_delay(Duration::from_millis(2));
    let (journal, _) = open_with(dir.path(), options);
    let journal = Arc::new(journal);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let journal = Arc::clone(&journal);
            thread::spawn(move || {
                for i in 0..per_thread {
                    journal.append(&body(t, i)).expect("append");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("appender thread");
    }
    let stats = journal.stats();
    assert_eq!(stats.appends, (THREADS * per_thread) as u64);
    assert!(
        stats.commits * 2 <= stats.appends,
        "expected at least two appends per fsync on average, got {} fsyncs for {} appends",
        stats.commits,
        stats.appends
    );
}

#[test]
fn a_lone_append_never_waits_for_the_commit_delay() {
    let dir = TempDir::new("lone");
    let (journal, _) = open_with(
        dir.path(),
        JournalOptions::default().commit_delay(Duration::from_secs(5)),
    );
    let started = std::time::Instant::now();
    journal.append(b"x").expect("append");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(journal.stats().commits, 1);
}

#[test]
fn without_group_commit_every_append_has_its_own_fsync() {
    let dir = TempDir::new("nogroup");
    let (journal, _) = open_with(dir.path(), JournalOptions::default().group_commit(false));
    let journal = Arc::new(journal);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let journal = Arc::clone(&journal);
            thread::spawn(move || {
                for i in 0..10 {
                    journal.append(&body(t, i)).expect("append");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("appender thread");
    }
    let stats = journal.stats();
    assert_eq!(stats.commits, stats.appends);
}

#[test]
fn appends_and_done_markers_interleave_across_rotations_without_loss() {
    let dir = TempDir::new("mixed");
    let per_thread = 150;
    let options = JournalOptions::default().segment_size(2048);
    let (journal, _) = open_with(dir.path(), options.clone());
    let journal = Arc::new(journal);
    let (done_tx, done_rx) = mpsc::channel::<(Seq, Vec<u8>)>();

    let appenders: Vec<_> = (0..4)
        .map(|t| {
            let journal = Arc::clone(&journal);
            let done_tx = done_tx.clone();
            thread::spawn(move || {
                for i in 0..per_thread {
                    let seq = journal.append(&body(t, i)).expect("append");
                    done_tx.send((seq, body(t, i))).expect("send to the worker");
                }
            })
        })
        .collect();
    drop(done_tx);
    // A worker that finishes all but every seventh event.
    let worker = {
        let journal = Arc::clone(&journal);
        thread::spawn(move || {
            let mut unfinished = Vec::new();
            for (n, (seq, body)) in done_rx.into_iter().enumerate() {
                if n % 7 == 0 {
                    unfinished.push(body);
                } else {
                    assert!(journal.mark_done(seq).expect("mark done"));
                }
            }
            unfinished
        })
    };
    for appender in appenders {
        appender.join().expect("appender thread");
    }
    let mut unfinished = worker.join().expect("worker thread");
    let stats = journal.stats();
    assert!(
        stats.rotations > 0 && stats.segments_deleted > 0,
        "{stats:?}"
    );
    drop(journal);

    let (_journal, recovery) = open_with(dir.path(), options);
    let mut recovered: Vec<Vec<u8>> = recovery.pending.iter().map(|(_, b)| b.clone()).collect();
    recovered.sort();
    unfinished.sort();
    assert_eq!(recovered, unfinished);
}

#[test]
fn appends_called_back_when_durable_share_fsyncs_and_all_survive() {
    let dir = TempDir::new("append-then");
    let (journal, _) = open(dir.path());
    let journal = Arc::new(journal);
    let (done_tx, done) = mpsc::channel();
    let per_thread = 200;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let journal = Arc::clone(&journal);
            let done_tx = done_tx.clone();
            thread::spawn(move || {
                for i in 0..per_thread {
                    let done_tx = done_tx.clone();
                    // No thread waits per append: the callback reports it.
                    journal.append_then(&body(t, i), move |seq| {
                        let _ = done_tx.send(seq.expect("durable"));
                    });
                }
            })
        })
        .collect();
    drop(done_tx);
    for handle in handles {
        handle.join().expect("appender thread");
    }
    let seqs: HashSet<Seq> = done.iter().collect();
    assert_eq!(
        seqs.len(),
        THREADS * per_thread,
        "each append called back once"
    );
    let stats = journal.stats();
    assert!(
        stats.syncs < (THREADS * per_thread) as u64,
        "{} fsyncs for {} appends: shared",
        stats.syncs,
        THREADS * per_thread
    );
    drop(journal);
    let (_journal, recovery) = open(dir.path());
    assert_eq!(recovery.pending.len(), THREADS * per_thread, "all on disk");
}

#[test]
fn an_append_to_a_failed_journal_is_called_back_with_the_error() {
    let dir = TempDir::new("append-then-failed");
    let (journal, _) = open(dir.path());
    journal.close().expect("close");
    let (tx, rx) = mpsc::channel();
    journal.append_then(b"late", move |seq| {
        let _ = tx.send(seq.is_err());
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
}
