//! One process per journal: while a durable listener runs on a directory, a
//! second listener or `JournalDir` — in another process (this test binary
//! again, in "child mode") or in the same one — is refused with
//! `JournalLocked` naming the directory and the holder's pid, and changes
//! nothing in it; once the holder has shut down, the directory opens.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use wasenderapi::journal::JournalDir;
use wasenderapi::listener::DeliveryMode;
use wasenderapi::listener::WebhookListenerBuilder;
use wasenderapi::{WasenderError, WebhookListener, WebhookVerifier};

use crate::support::process::{child_command, test_name};
use crate::support::{event, post, wait_until, Recorder, TempDir, SECRET};

const ENV_DIR: &str = "WASENDER_LOCK_CHILD_DIR";
const ENV_REPORT: &str = "WASENDER_LOCK_CHILD_REPORT";
const WAIT: Duration = Duration::from_secs(10);

fn durable(recorder: &Arc<Recorder>, dir: &Path) -> WebhookListenerBuilder<Recorder> {
    WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Arc::clone(recorder))
        .bind("127.0.0.1:0")
        .handler_threads(1)
        .dedupe(100)
        .delivery_mode(DeliveryMode::durable(dir))
}

/// One line for the report: how an attempt to open the journal ended.
fn outcome(result: Result<(), WasenderError>) -> String {
    match result {
        Ok(()) => "opened".to_owned(),
        Err(WasenderError::JournalLocked { path, pid }) => format!(
            "locked {} {}",
            pid.map_or("-".to_owned(), |p| p.to_string()),
            path.display()
        ),
        Err(other) => format!("error {other}"),
    }
}

/// Child mode: tries a durable listener, then a `JournalDir`, on the
/// directory, and reports how each ended. Returns at once unless started by
/// a parent test below.
#[test]
fn child_tries_the_journal() {
    let (Some(dir), Some(report)) = (std::env::var_os(ENV_DIR), std::env::var_os(ENV_REPORT))
    else {
        return;
    };
    let dir = PathBuf::from(dir);
    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir).spawn().map(|l| {
        l.shutdown();
    });
    let journal_dir = JournalDir::open(&dir).map(drop);
    let text = format!("{}\n{}\n", outcome(listener), outcome(journal_dir));
    fs::write(report, text).expect("write the report");
}

/// Runs the child on `dir` and returns its two report lines.
fn run_child(dir: &Path, report: &Path) -> Vec<String> {
    let _ = fs::remove_file(report);
    let status = child_command(&test_name(module_path!(), "child_tries_the_journal"))
        .env(ENV_DIR, dir)
        .env(ENV_REPORT, report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the child");
    assert!(status.success(), "the child failed: {status}");
    fs::read_to_string(report)
        .expect("the child's report")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("list the journal dir")
        .map(|e| e.expect("a dir entry").path())
        .map(|p| {
            let bytes = fs::read(&p).expect("read a journal file");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_second_process_is_refused_while_a_listener_runs_and_changes_nothing() {
    let tmp = TempDir::new("lock-process");
    let dir = tmp.join("journal");
    let report = tmp.join("report");
    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir)
        .spawn()
        .expect("the first listener");
    let addr = listener.local_addr();
    // Events pending in the journal and keys in dedupe.log, which a second
    // opener would replay and rewrite.
    for (id, text) in [("L1", "block"), ("L2", "x"), ("L3", "x")] {
        assert_eq!(post(addr, &event(id, text)).status, 200);
    }
    // And a torn segment the listener does not write to, which any open
    // would cut off.
    let torn = dir.join(format!("{:020}.wal", 1u64 << 40));
    fs::write(&torn, b"WSJRNL\x01\x00WJR1\x07").expect("write a torn segment");
    let before = snapshot(&dir);

    let lines = run_child(&dir, &report);
    let expected = format!("locked {} {}", std::process::id(), dir.display());
    assert_eq!(lines, vec![expected.clone(), expected], "both refused");
    assert_eq!(
        snapshot(&dir),
        before,
        "the refused process changed nothing"
    );

    recorder.open_gate();
    assert!(wait_until(WAIT, || recorder.handled().len() == 3));
    let stats = listener.shutdown();
    assert_eq!(stats.handled, 3);
    let lines = run_child(&dir, &report);
    assert_eq!(
        lines,
        vec!["opened", "opened"],
        "free once the holder stopped"
    );
}

#[test]
fn a_second_listener_or_journal_dir_in_the_same_process_is_refused_until_shutdown() {
    let tmp = TempDir::new("lock-same");
    let dir = tmp.join("journal");
    let recorder = Arc::new(Recorder::default());
    let listener = durable(&recorder, &dir)
        .spawn()
        .expect("the first listener");
    match durable(&recorder, &dir).spawn() {
        Err(WasenderError::JournalLocked { path, pid }) => {
            assert_eq!(path, dir);
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("a second listener must be refused, got {other:?}"),
    }
    assert!(matches!(
        JournalDir::open(&dir),
        Err(WasenderError::JournalLocked { .. })
    ));
    // A shutdown handle outliving the listener does not keep the lock.
    let handle = listener.shutdown_handle();
    listener.shutdown();
    let journal_dir = JournalDir::open(&dir).expect("free after shutdown");
    assert!(matches!(
        durable(&recorder, &dir).spawn(),
        Err(WasenderError::JournalLocked { .. })
    ));
    drop(journal_dir);
    durable(&recorder, &dir)
        .spawn()
        .expect("free once the JournalDir is dropped")
        .shutdown();
    drop(handle);
}
