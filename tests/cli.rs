//! The `wasender` binary, run as a real process: its answers and exit codes
//! (0 success, 1 "no", 2 usage, 3 failure) for verify, send-event, health,
//! listen (stopped by SIGTERM), journal stats and the dead-letter tools.
#![cfg(feature = "cli")]

#[path = "delivery_support/mod.rs"]
mod delivery;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use delivery::*;
use wasenderapi::handler::HandlerRetryPolicy;
use wasenderapi::listener::DeliveryMode;
use wasenderapi::{WebhookListener, WebhookVerifier};

const WAIT: Duration = Duration::from_secs(10);

fn wasender(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasender"));
    command
        .args(args)
        .env("WASENDER_WEBHOOK_SECRET", SECRET)
        .env_remove("WASENDER_JOURNAL_DIR")
        .env_remove("WASENDER_REDIS_URL")
        .env_remove("PORT")
        .env("RUST_LOG", "info");
    command
}

fn run(args: &[&str]) -> Output {
    wasender(args)
        .stdin(Stdio::null())
        .output()
        .expect("the wasender binary runs")
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = wasender(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wasender binary runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait for wasender")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn write_event(dir: &TempDir, id: &str) -> String {
    let path = dir.join(&format!("{id}.json"));
    std::fs::write(&path, event(id, "hello")).expect("write the event file");
    path.to_string_lossy().into_owned()
}

#[test]
fn verify_prints_the_event_type_or_the_reason_with_exit_codes_0_and_1() {
    let tmp = TempDir::new("cli-verify");
    let file = write_event(&tmp, "V1");

    let ok = run(&["verify", "--body", &file, "--signature", SECRET]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), "messages.received");

    let bad = run(&["verify", "--body", &file, "--signature", "wrong"]);
    assert_eq!(code(&bad), 1);
    assert!(stdout(&bad).contains("refused (401)"), "{}", stdout(&bad));
    assert!(!stdout(&bad).contains(SECRET));

    let from_stdin = run_with_stdin(&["verify", "--signature", SECRET], b"not json");
    assert_eq!(code(&from_stdin), 1);
    assert!(stdout(&from_stdin).contains("refused (400)"));

    let usage = run(&["verify", "--no-such-flag"]);
    assert_eq!(code(&usage), 2, "clap's usage errors exit 2");
}

#[test]
fn send_event_and_health_talk_to_a_running_listener() {
    let tmp = TempDir::new("cli-send");
    let file = write_event(&tmp, "S1");
    let probe = Arc::new(Probe::default());
    let listener =
        WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Arc::clone(&probe))
            .bind("127.0.0.1:0")
            .spawn()
            .expect("a listener");
    let url = format!("http://{}/webhook", listener.local_addr());

    let sent = run(&["send-event", &url, &file]);
    assert_eq!(code(&sent), 0, "{}", stderr(&sent));
    assert!(stdout(&sent).starts_with("200"), "{}", stdout(&sent));
    assert_eq!(probe.count("S1"), 1);

    let refused = run(&["send-event", &url, &file, "--secret", "not-the-secret"]);
    assert_eq!(code(&refused), 1);
    assert!(stdout(&refused).starts_with("401"), "{}", stdout(&refused));

    let health = format!("http://{}/healthz", listener.local_addr());
    let healthy = run(&["health", "--url", &health]);
    assert_eq!(code(&healthy), 0);
    assert!(stdout(&healthy).contains(r#"{"status":"ok"}"#));
    listener.shutdown();

    let unreachable = run(&["health", "--url", &health, "--timeout", "2"]);
    assert_eq!(code(&unreachable), 3, "{}", stderr(&unreachable));
}

/// Leaves one dead letter (event `id`) in a stopped durable listener's `dir`.
fn leave_a_dead_letter(dir: &Path, id: &str) {
    let probe = Arc::new(Probe::default());
    probe.failing.store(true, Ordering::SeqCst);
    let listener =
        WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Arc::clone(&probe))
            .bind("127.0.0.1:0")
            .delivery_mode(DeliveryMode::durable(dir))
            .handler_retries(
                HandlerRetryPolicy::default()
                    .max_attempts(2)
                    .initial_backoff(Duration::from_millis(5))
                    .max_backoff(Duration::from_millis(5)),
            )
            .spawn()
            .expect("a durable listener");
    assert_eq!(post(listener.local_addr(), &event(id, "flaky")).status, 200);
    assert!(wait_until(WAIT, || listener.stats().dead_lettered == 1));
    listener.shutdown();
}

#[test]
fn dead_letters_are_listed_requeued_once_and_purged_from_the_shell() {
    let tmp = TempDir::new("cli-dead");
    let dir = tmp.join("journal");
    leave_a_dead_letter(&dir, "D1");
    let dir = dir.to_string_lossy().into_owned();

    let list = run(&["dead-letters", "list", "--journal", &dir]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    let lines: Vec<serde_json::Value> = stdout(&list)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["error"].as_str().is_some_and(|e| !e.is_empty()));

    let stats = run(&["journal", "stats", "--journal", &dir]);
    assert_eq!(code(&stats), 0, "{}", stderr(&stats));
    assert!(
        stdout(&stats).contains("dead_letters: 1"),
        "{}",
        stdout(&stats)
    );

    let requeued = run(&[
        "dead-letters",
        "requeue",
        "--journal",
        &dir,
        "--event-id",
        "D1",
    ]);
    assert_eq!(code(&requeued), 0, "{}", stderr(&requeued));
    assert!(stdout(&requeued).contains("requeued 1"));
    let again = run(&["dead-letters", "requeue", "--journal", &dir, "--all"]);
    assert_eq!(code(&again), 1, "nothing left to requeue");
    assert!(stdout(&again).contains("requeued 0"));
    let stats = run(&["journal", "stats", "--journal", &dir]);
    assert!(stdout(&stats).contains("pending: 1"), "{}", stdout(&stats));

    // The next start hands the requeued event to a (fixed) handler, once.
    let probe = Arc::new(Probe::default());
    let listener =
        WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Arc::clone(&probe))
            .bind("127.0.0.1:0")
            .delivery_mode(DeliveryMode::durable(&dir))
            .spawn()
            .expect("a durable listener");
    assert!(wait_until(WAIT, || probe.count("D1") == 1));
    listener.shutdown();
    assert_eq!(probe.count("D1"), 1);

    let purged = run(&["dead-letters", "purge", "--journal", &dir]);
    assert_eq!(code(&purged), 0);
    assert!(stdout(&purged).contains("purged 1"));
    let list = run(&["dead-letters", "list", "--journal", &dir]);
    assert_eq!(stdout(&list).trim(), "");

    let wrong = run(&["dead-letters", "requeue", "--journal", &dir, "--id", "1-0"]);
    assert_eq!(code(&wrong), 2, "--id is for Redis: a usage error");
}

#[test]
fn a_locked_journal_is_refused_with_exit_code_3_naming_the_holder() {
    let tmp = TempDir::new("cli-locked");
    let dir = tmp.join("journal");
    let listener = WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Probe::default())
        .bind("127.0.0.1:0")
        .delivery_mode(DeliveryMode::durable(&dir))
        .spawn()
        .expect("a durable listener");
    let dir = dir.to_string_lossy().into_owned();
    let refused = run(&["journal", "stats", "--journal", &dir]);
    assert_eq!(code(&refused), 3);
    let message = stderr(&refused);
    assert!(message.contains("locked"), "{message}");
    assert!(
        message.contains(&std::process::id().to_string()),
        "names the holder's pid: {message}"
    );
    listener.shutdown();
}

/// A `wasender listen` child and the address it reported.
struct Listen {
    child: Child,
    addr: SocketAddr,
    log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// On the panicking paths the child is killed by the test process's exit (its
// stdin is closed); on success `Listen`'s drop guard waits for it.
#[allow(clippy::zombie_processes)]
fn listen(journal: &str) -> Listen {
    let mut child = wasender(&["listen", "--bind", "127.0.0.1:0", "--journal", journal])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasender listen starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("listen logs its address");
        if let Some(rest) = line.split("POST events to http://").nth(1) {
            let addr = rest.split('/').next().unwrap_or_default();
            let addr = addr.parse().expect("a socket address");
            return Listen {
                child,
                addr,
                log: rx,
            };
        }
    }
}

#[test]
fn listen_serves_events_and_exits_0_on_sigterm_leaving_nothing_pending() {
    let tmp = TempDir::new("cli-listen");
    let journal = tmp.join("journal").to_string_lossy().into_owned();
    let file = write_event(&tmp, "L1");
    let mut listener = listen(&journal);
    let url = format!("http://{}/webhook", listener.addr);
    for _ in 0..3 {
        let sent = run(&["send-event", &url, &file]);
        assert_eq!(code(&sent), 0, "{}", stderr(&sent));
    }
    let pid = listener.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = listener.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "wasender listen did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let log: Vec<String> = listener.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("SIGTERM")),
        "logs the signal: {log:?}"
    );
    assert!(
        log.iter().all(|l| !l.contains(SECRET)),
        "never logs the secret"
    );

    let stats = run(&["journal", "stats", "--journal", &journal]);
    assert_eq!(code(&stats), 0, "{}", stderr(&stats));
    assert!(stdout(&stats).contains("pending: 0"), "{}", stdout(&stats));
}
