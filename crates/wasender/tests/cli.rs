//! The `wasender` binary, run as a real process: its answers and exit codes
//! (0 success, 1 "no", 2 usage, 3 failure, 141 stdout closed) for verify,
//! send-event, health, listen (stopped by SIGTERM), journal stats and the
//! dead-letter tools, over real loopback HTTP(S).
//!
//! `WASENDER_BIN=/path/to/wasender cargo test -p wasender --test cli` runs
//! the same tests against another build of the binary (an older one, say).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::*;
use wasenderapi::handler::HandlerRetryPolicy;
use wasenderapi::listener::DeliveryMode;
use wasenderapi::{WebhookListener, WebhookVerifier};

const WAIT: Duration = Duration::from_secs(10);

/// The binary under test: `WASENDER_BIN` when set, else this package's build.
fn binary() -> PathBuf {
    std::env::var_os("WASENDER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wasender")))
}

/// Every variable the binary reads, removed, so the caller's environment
/// cannot steer a test.
const WASENDER_VARIABLES: &[&str] = &[
    "PORT",
    "WASENDER_BIND",
    "WASENDER_PATH",
    "WASENDER_JOURNAL_DIR",
    "WASENDER_REDIS_URL",
    "WASENDER_METRICS",
    "WASENDER_TLS_CERT",
    "WASENDER_TLS_KEY",
    "WASENDER_CACERT",
    "WASENDER_EVENT_LOOPS",
    "WASENDER_MAX_CONNECTIONS",
    "WASENDER_MAX_CONNECTIONS_PER_PEER",
    "WASENDER_IDLE_TIMEOUT",
    "WASENDER_HEADER_TIMEOUT",
    "WASENDER_REQUEST_TIMEOUT",
    "WASENDER_MAX_BODY_BYTES",
    "WASENDER_MAX_BUFFERED_BYTES",
    "WASENDER_TRUSTED_PROXIES",
    "WASENDER_DRAIN_TIMEOUT",
];

fn wasender(args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command.args(args);
    for name in WASENDER_VARIABLES {
        command.env_remove(name);
    }
    command
        .env("WASENDER_WEBHOOK_SECRET", SECRET)
        .env("RUST_LOG", "info");
    command
}

fn run(args: &[&str]) -> Output {
    run_with_env(args, &[])
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = wasender(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command
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

/// An in-process listener answering on 127.0.0.1 with `probe` as its handler.
fn plain_listener(probe: &Arc<Probe>) -> WebhookListener {
    WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Arc::clone(probe))
        .bind("127.0.0.1:0")
        .spawn()
        .expect("a listener")
}

#[test]
fn verify_prints_the_event_type_or_the_reason_with_exit_codes_0_and_1() {
    let tmp = TempDir::new("verify");
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
    let tmp = TempDir::new("send");
    let file = write_event(&tmp, "S1");
    let probe = Arc::new(Probe::default());
    let listener = plain_listener(&probe);
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

/// Leaves one dead letter (event `id`) in a durable listener's `dir`, and
/// returns that listener still running (holding the journal's lock).
fn listener_with_a_dead_letter(dir: &Path, id: &str) -> WebhookListener {
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
    listener
}

/// `journal stats --json`, parsed.
fn stats_json(dir: &str) -> serde_json::Value {
    let stats = run(&["journal", "stats", "--journal", dir, "--json"]);
    assert_eq!(code(&stats), 0, "{}", stderr(&stats));
    serde_json::from_str(stdout(&stats).trim()).expect("one JSON object")
}

#[test]
fn dead_letters_are_listed_requeued_once_and_purged_from_the_shell() {
    let tmp = TempDir::new("dead");
    let dir = tmp.join("journal");
    listener_with_a_dead_letter(&dir, "D1").shutdown();
    let dir = dir.to_string_lossy().into_owned();

    let list = run(&["dead-letters", "list", "--journal", &dir]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    let lines: Vec<serde_json::Value> = stdout(&list)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(stats_json(&dir)["dead_letters"], 1);

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
    let stats = stats_json(&dir);
    assert_eq!(stats["pending"], 1, "{stats}");
    assert_eq!(stats["requeued"], 1, "{stats}");

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
fn journal_stats_and_dead_letters_list_read_a_running_listeners_journal() {
    let tmp = TempDir::new("live");
    let dir = tmp.join("journal");
    let listener = listener_with_a_dead_letter(&dir, "LIVE1");
    let dir = dir.to_string_lossy().into_owned();

    // Readable lines by default, never a Rust `Debug` dump.
    let stats = run(&["journal", "stats", "--journal", &dir]);
    assert_eq!(
        code(&stats),
        0,
        "reads without the lock: {}",
        stderr(&stats)
    );
    let text = stdout(&stats);
    assert!(text.contains("dead letters:    1"), "{text}");
    assert!(text.contains("pending:         0 events"), "{text}");
    assert!(
        !text.contains('{') && !text.contains("JournalInfo"),
        "{text}"
    );

    let json = stats_json(&dir);
    assert_eq!(json["dead_letters"], 1, "{json}");
    assert_eq!(json["pending"], 0, "{json}");
    assert!(json["segments"].as_u64().is_some_and(|n| n >= 1), "{json}");

    // `dead-letters list` falls back on WASENDER_JOURNAL_DIR.
    let list = run_with_env(
        &["dead-letters", "list"],
        &[("WASENDER_JOURNAL_DIR", dir.as_str())],
    );
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    let letter: serde_json::Value =
        serde_json::from_str(stdout(&list).trim()).expect("one JSON line");
    assert!(
        letter["payload"]
            .as_str()
            .is_some_and(|p| p.contains("LIVE1")),
        "{letter}"
    );

    // Changing the journal still needs its lock: refused, naming the holder.
    let refused = run(&["dead-letters", "purge", "--journal", &dir]);
    assert_eq!(code(&refused), 3);
    let message = stderr(&refused);
    assert!(message.contains("locked"), "{message}");
    assert!(
        message.contains(&std::process::id().to_string()),
        "names the holder's pid: {message}"
    );

    // The listener keeps working, its journal untouched by the readers.
    assert_eq!(listener.stats().journal_errors, 0);
    assert_eq!(
        post(listener.local_addr(), &event("LIVE2", "ok")).status,
        200
    );
    listener.shutdown();
    assert_eq!(stats_json(&dir)["dead_letters"], 1);
}

/// A `wasender listen` child, the address it reported, and its log.
struct Listen {
    child: Child,
    addr: SocketAddr,
    /// `http` or `https`, as the start line says.
    scheme: String,
    /// The lines logged up to the address line (the listener's start line among them).
    started: Vec<String>,
    log: Receiver<String>,
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Listen {
    /// Starts `wasender listen ARGS` with `env` and waits for its start line.
    // On the panicking paths the child is killed by the test process's exit (its
    // stdin is closed); on success `Listen`'s drop guard waits for it.
    #[allow(clippy::zombie_processes)]
    fn start(args: &[&str], env: &[(&str, &str)]) -> Listen {
        let mut all = vec!["listen"];
        all.extend_from_slice(args);
        let mut command = wasender(&all);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
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
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("listen logs its address; it said: {seen:?}"));
            if let Some(rest) = line.split("POST events to ").nth(1) {
                let (scheme, rest) = rest.split_once("://").expect("a URL");
                let addr = rest.split('/').next().unwrap_or_default();
                let (addr, scheme) = (addr.parse().expect("a socket address"), scheme.to_owned());
                seen.push(line);
                return Listen {
                    child,
                    addr,
                    scheme,
                    started: seen,
                    log: rx,
                };
            }
            seen.push(line);
        }
    }

    /// Sends SIGTERM and waits for the exit status; returns it and the log.
    fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let mut status = None;
        let stopped = wait_until(WAIT, || {
            status = self.child.try_wait().expect("wait");
            status.is_some()
        });
        assert!(stopped, "wasender listen did not stop");
        let status = status.expect("an exit status");
        // The log thread ends with the pipe: collect what is left of it.
        let mut log = Vec::new();
        while let Ok(line) = self.log.recv_timeout(WAIT) {
            log.push(line);
        }
        (status.code(), log)
    }
}

#[test]
fn listen_serves_events_and_exits_0_on_sigterm_leaving_nothing_pending() {
    let tmp = TempDir::new("listen");
    let journal = tmp.join("journal").to_string_lossy().into_owned();
    let file = write_event(&tmp, "L1");
    let listener = Listen::start(&["--bind", "127.0.0.1:0", "--journal", &journal], &[]);
    let url = format!("http://{}/webhook", listener.addr);
    for _ in 0..3 {
        let sent = run(&["send-event", &url, &file]);
        assert_eq!(code(&sent), 0, "{}", stderr(&sent));
    }
    let (status, log) = listener.terminate();
    assert_eq!(status, Some(0));
    assert!(
        log.iter().any(|l| l.contains("SIGTERM")),
        "logs the signal: {log:?}"
    );
    assert!(
        log.iter().all(|l| !l.contains(SECRET)),
        "never logs the secret"
    );
    let stopped = log
        .iter()
        .find(|l| l.contains("stopped: "))
        .unwrap_or_else(|| panic!("a stop line: {log:?}"));
    assert!(
        stopped.contains("stopped: 3 events handled, 0 requests rejected"),
        "a readable stop line, not a Debug dump: {stopped}"
    );
    assert!(!stopped.contains('{'), "{stopped}");

    assert_eq!(stats_json(&journal)["pending"], 0);
}

#[test]
fn flags_win_over_the_environment_and_help_says_so() {
    // The Dockerfile sets PORT; --bind on the command line must still be obeyed.
    let tmp = TempDir::new("precedence");
    let journal = tmp.join("journal");
    let journal_text = journal.to_string_lossy().into_owned();
    let listener = Listen::start(
        &["--bind", "127.0.0.1:0", "--journal", &journal_text],
        &[
            ("PORT", "1"),
            // Flag --journal wins over the environment's Redis delivery too.
            ("WASENDER_REDIS_URL", "redis://127.0.0.1:1/"),
        ],
    );
    assert!(listener.addr.ip().is_loopback(), "{}", listener.addr);
    assert_ne!(listener.addr.port(), 1);
    assert!(
        journal.join("lock").exists(),
        "durable mode, as --journal said"
    );
    drop(listener);

    // In the environment alone, WASENDER_BIND wins over PORT.
    let listener = Listen::start(&[], &[("PORT", "1"), ("WASENDER_BIND", "127.0.0.1:0")]);
    assert!(listener.addr.ip().is_loopback(), "{}", listener.addr);
    drop(listener);

    let both = run(&["listen", "--bind", "127.0.0.1:0", "--port", "3000"]);
    assert_eq!(code(&both), 2, "{}", stderr(&both));
    assert!(stderr(&both).contains("choose one"), "{}", stderr(&both));

    let help = run(&["listen", "--help"]);
    assert_eq!(code(&help), 0);
    let help = stdout(&help);
    assert!(
        help.contains("A flag on the command line wins over every environment variable"),
        "{help}"
    );
    assert!(help.contains("--bind wins over PORT"), "{help}");
}

#[test]
fn boolean_flags_and_variables_take_1_0_true_and_false() {
    for (value, served) in [("1", true), ("true", true), ("0", false), ("false", false)] {
        let listener = Listen::start(&["--bind", "127.0.0.1:0"], &[("WASENDER_METRICS", value)]);
        let metrics = RawConn::open(listener.addr)
            .and_then(|mut c| c.get("/metrics"))
            .expect("an answer");
        assert_eq!(
            metrics.status == 200,
            served,
            "WASENDER_METRICS={value}: /metrics answered {}",
            metrics.status
        );
    }
    // The flag alone, and with a value that overrides the environment.
    let on = Listen::start(&["--bind", "127.0.0.1:0", "--metrics"], &[]);
    let status = RawConn::open(on.addr).and_then(|mut c| c.get("/metrics"));
    assert_eq!(status.expect("an answer").status, 200);
    let off = Listen::start(
        &["--bind", "127.0.0.1:0", "--metrics=false"],
        &[("WASENDER_METRICS", "1")],
    );
    let status = RawConn::open(off.addr).and_then(|mut c| c.get("/metrics"));
    assert_eq!(status.expect("an answer").status, 404);
}

#[test]
fn listener_limit_flags_and_variables_reach_the_listener() {
    let tmp = TempDir::new("limits");
    let file = write_event(&tmp, "BIG1");
    let size = std::fs::metadata(&file).expect("the event file").len();
    assert!(size > 100, "the event is larger than the limit below");

    let small = Listen::start(
        &[
            "--bind",
            "127.0.0.1:0",
            "--max-body-bytes",
            "100",
            "--idle-timeout",
            "500ms",
            "--header-timeout",
            "2s",
            "--request-timeout",
            "1m",
            "--max-connections",
            "64",
            "--max-connections-per-peer",
            "32",
            "--max-buffered-bytes",
            "1MiB",
            "--trusted-proxy",
            "10.0.0.1",
            "--event-loops",
            "3",
        ],
        &[],
    );
    let started = small.started.join("\n");
    assert!(started.contains(", 3 event loop(s), "), "{started}");
    let url = format!("http://{}/webhook", small.addr);
    let sent = run(&["send-event", &url, &file]);
    assert_eq!(code(&sent), 1, "{}", stderr(&sent));
    assert!(stdout(&sent).starts_with("413"), "{}", stdout(&sent));
    drop(small);

    // The same through the environment.
    let small = Listen::start(
        &["--bind", "127.0.0.1:0"],
        &[
            ("WASENDER_MAX_BODY_BYTES", "100"),
            ("WASENDER_TRUSTED_PROXIES", "10.0.0.1,::1"),
            ("WASENDER_IDLE_TIMEOUT", "5s"),
            ("WASENDER_EVENT_LOOPS", "2"),
        ],
    );
    let started = small.started.join("\n");
    assert!(started.contains(", 2 event loop(s), "), "{started}");
    let url = format!("http://{}/webhook", small.addr);
    let sent = run(&["send-event", &url, &file]);
    assert!(stdout(&sent).starts_with("413"), "{}", stdout(&sent));
    drop(small);

    let bad = run(&["listen", "--bind", "127.0.0.1:0", "--idle-timeout", "5x"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("500ms, 5s, 2m"), "{}", stderr(&bad));
}

#[test]
fn a_redis_mode_listener_says_it_runs_no_handler_and_answers_503_while_redis_is_down() {
    // Port 1 on loopback: nothing listens, so Redis "does not answer yet".
    let listen = Listen::start(
        &["--bind", "127.0.0.1:0", "--redis", "redis://127.0.0.1:1/"],
        &[],
    );
    let started = listen.started.join("\n");
    let start = listen
        .started
        .iter()
        .find(|l| l.contains("webhook listener on"))
        .unwrap_or_else(|| panic!("a start line: {started}"));
    assert!(start.contains("no handler"), "{start}");
    assert!(!start.contains("handler threads"), "{start}");
    assert!(
        started.contains("Redis does not answer yet"),
        "the unreachable Redis is named at start: {started}"
    );
    let tmp = TempDir::new("redis-down");
    let file = write_event(&tmp, "R1");
    let url = format!("http://{}/webhook", listen.addr);
    let sent = run(&["send-event", &url, &file]);
    assert_eq!(code(&sent), 1, "{}", stderr(&sent));
    assert!(stdout(&sent).starts_with("503"), "{}", stdout(&sent));

    let (status, log) = listen.terminate();
    assert_eq!(status, Some(0));
    let stopped = log
        .iter()
        .find(|l| l.contains("stopped: "))
        .unwrap_or_else(|| panic!("a stop line: {log:?}"));
    assert!(
        stopped.contains("stopped: 0 events added to the Redis stream, "),
        "{stopped}"
    );
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_code_141() {
    let tmp = TempDir::new("pipe");
    let file = write_event(&tmp, "P1");
    let probe = Arc::new(Probe::default());
    let listener = plain_listener(&probe);
    let url = format!("http://{}/webhook", listener.local_addr());
    // `wasender send-event … | head -c0`: the reader is gone before the answer is printed.
    let mut child = wasender(&["send-event", &url, &file])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasender runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for wasender");
    assert_eq!(code(&output), 141, "{}", stderr(&output));
    assert_eq!(stderr(&output), "", "quiet: no panic, no message");
    assert_eq!(probe.count("P1"), 1, "the event was still sent");
}

#[test]
fn errors_say_their_cause_once() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let addr = taken.local_addr().expect("its address").to_string();
    let output = run(&["listen", "--bind", &addr]);
    assert_eq!(code(&output), 3);
    let message = stderr(&output);
    let said = message.matches("Address already in use").count();
    assert_eq!(said, 1, "the cause once: {message}");
    assert!(message.contains(&addr), "{message}");
    assert!(!message.contains("caused by"), "{message}");
}

#[test]
fn a_url_without_a_scheme_is_a_usage_error_saying_what_to_write() {
    let tmp = TempDir::new("scheme");
    let file = write_event(&tmp, "U1");
    let output = run(&["send-event", "127.0.0.1:3000/webhook", &file]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("has no scheme: write http://127.0.0.1:3000/webhook"),
        "{message}"
    );
    assert!(!message.contains("invalid format"), "{message}");
}

#[test]
fn https_to_a_plain_listener_fails_fast_naming_the_mistake() {
    let tmp = TempDir::new("plain");
    let file = write_event(&tmp, "H1");
    let listener = plain_listener(&Arc::new(Probe::default()));
    let url = format!("https://{}/webhook", listener.local_addr());
    let started = Instant::now();
    let output = run(&["send-event", &url, &file]);
    let took = started.elapsed();
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("speaks plain HTTP, not HTTPS"),
        "{message}"
    );
    assert!(
        message.contains(&format!("use http://{}/webhook", listener.local_addr())),
        "{message}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

/// A test certificate authority and a server certificate it signed for
/// `localhost` and `127.0.0.1`, as PEM files.
struct TestPki {
    dir: TempDir,
}

impl TestPki {
    fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let server_key = KeyPair::generate().expect("server key");
        let server = server_params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let dir = TempDir::new("pki");
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("cert.pem", server.pem()),
            ("key.pem", server_key.serialize_pem()),
        ] {
            std::fs::write(dir.join(name), pem).expect("write a PEM file");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

#[test]
fn https_commands_trust_cacert_and_the_local_health_probe_follows_tls() {
    let pki = TestPki::new();
    let tmp = TempDir::new("tls");
    let file = write_event(&tmp, "T1");
    let (cert, key, ca) = (
        pki.path("cert.pem"),
        pki.path("key.pem"),
        pki.path("ca.pem"),
    );
    let listener = Listen::start(
        &[
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        &[],
    );
    assert_eq!(listener.scheme, "https", "the start line says https://");
    let health = format!("https://{}/healthz", listener.addr);
    let webhook = format!("https://{}/webhook", listener.addr);

    let untrusted = run(&["health", "--url", &health]);
    assert_eq!(code(&untrusted), 3, "{}", stderr(&untrusted));
    assert!(
        stderr(&untrusted).contains("--cacert"),
        "{}",
        stderr(&untrusted)
    );

    let trusted = run(&["health", "--url", &health, "--cacert", &ca]);
    assert_eq!(code(&trusted), 0, "{}", stderr(&trusted));
    assert!(stdout(&trusted).starts_with("200"), "{}", stdout(&trusted));

    let sent = run(&["send-event", &webhook, &file, "--cacert", &ca]);
    assert_eq!(code(&sent), 0, "{}", stderr(&sent));
    assert!(stdout(&sent).starts_with("200"), "{}", stdout(&sent));
    let from_env = run_with_env(
        &["send-event", &webhook, &file],
        &[("WASENDER_CACERT", &ca)],
    );
    assert_eq!(code(&from_env), 0, "{}", stderr(&from_env));

    let unchecked = run(&["health", "--url", &health, "--danger-accept-invalid-certs"]);
    assert_eq!(code(&unchecked), 0, "{}", stderr(&unchecked));

    // What the Dockerfile's HEALTHCHECK runs, in a TLS container's environment.
    let bind = listener.addr.to_string();
    let local = run_with_env(
        &["health", "--local"],
        &[("WASENDER_BIND", &bind), ("WASENDER_TLS_CERT", &cert)],
    );
    assert_eq!(code(&local), 0, "{}", stderr(&local));
    // TLS given as flags (`CMD ["listen", "--tls-cert", …]`): the environment
    // does not say https, and the probe still finds the listener healthy.
    let flags_only = run_with_env(&["health", "--local"], &[("WASENDER_BIND", &bind)]);
    assert_eq!(code(&flags_only), 0, "{}", stderr(&flags_only));
    assert!(
        stdout(&flags_only).starts_with("200"),
        "{}",
        stdout(&flags_only)
    );
}
