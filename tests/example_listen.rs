//! `examples/listen`, the program a new user runs first, as a real process:
//! it honours `PORT`, `WASENDER_WEBHOOK_SECRET` and `WASENDER_JOURNAL_DIR`,
//! serves `/healthz` and `/metrics`, and under load `kill -TERM` makes it exit
//! with status 0 having handled every event it answered 200; restarted on the
//! same journal it hands over nothing twice and loses nothing.
#![cfg(all(unix, feature = "listener", feature = "signals", feature = "metrics"))]

#[path = "delivery_support/mod.rs"]
mod delivery;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use delivery::{event, RawConn, TempDir, SECRET};

const WAIT: Duration = Duration::from_secs(15);

/// Where cargo put the example: `target/<profile>/examples/listen`, beside
/// this test's own `target/<profile>/deps/`. `cargo test` builds the examples
/// (with the run's features) before it runs any test.
fn example_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join("listen");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `examples/listen` with its stderr (the log) collected line by line.
struct Example {
    child: Child,
    addr: SocketAddr,
    log: Receiver<String>,
    lines: Vec<String>,
}

impl Example {
    fn start(journal: &std::path::Path) -> Self {
        let port = free_port();
        let mut child = Command::new(example_path())
            .env("PORT", port.to_string())
            .env("WASENDER_WEBHOOK_SECRET", SECRET)
            .env("WASENDER_JOURNAL_DIR", journal)
            .env_remove("WASENDER_REDIS_URL")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("examples/listen starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, log) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let example = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            lines: Vec::new(),
        };
        let deadline = Instant::now() + WAIT;
        while example.answers("/healthz") != Some(200) {
            assert!(Instant::now() < deadline, "examples/listen never answered");
            thread::sleep(Duration::from_millis(20));
        }
        example
    }

    /// The status of `GET path`, or `None` when nothing answers.
    fn answers(&self, path: &str) -> Option<u16> {
        get(self.addr, path).map(|(status, _)| status)
    }

    fn collect_log(&mut self) {
        self.lines.extend(self.log.try_iter());
    }

    fn terminate_and_wait(&mut self) -> (Option<i32>, Duration) {
        let pid = self.child.id().to_string();
        let sent = Instant::now();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The log thread ends with the pipe: take what it still holds.
                thread::sleep(Duration::from_millis(50));
                self.collect_log();
                return (status.code(), sent.elapsed());
            }
            assert!(sent.elapsed() < WAIT, "examples/listen did not stop");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Message ids the example logged as handled (`… from <phone>: "<id>"`).
    fn handled_ids(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| l.rsplit_once(": \"").map(|(_, rest)| rest))
            .filter_map(|rest| rest.strip_suffix('"'))
            .filter(|id| id.starts_with("ex-"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain `GET` with `Connection: close`: the status and the body.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

#[test]
fn sigterm_under_load_exits_0_and_every_acknowledged_event_is_handled_once() {
    let tmp = TempDir::new("example-listen");
    let journal = tmp.join("journal");
    let mut example = Example::start(&journal);

    let (status, metrics) = get(example.addr, "/metrics").expect("a metrics answer");
    assert_eq!(
        status,
        200,
        "{} answers /metrics with {status}: it was built without the `metrics` feature; \
         run the whole suite (`cargo test --all-features`), which builds the examples \
         with the same features as this test",
        example_path().display()
    );
    assert!(
        metrics.contains("wasender_webhook_requests_total"),
        "{metrics}"
    );

    // Four keep-alive senders post distinct events until the listener goes away.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (acknowledged, stop, addr) =
                (Arc::clone(&acknowledged), Arc::clone(&stop), example.addr);
            thread::spawn(move || {
                let Ok(mut conn) = RawConn::open(addr) else {
                    return;
                };
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    // The text is the id, so the example's log line names it.
                    let id = format!("ex-{sender}-{n}");
                    match conn.post_signed(&event(&id, &id)) {
                        Ok(answer) if answer.status == 200 => {
                            acknowledged.lock().expect("ids").push(id)
                        }
                        Ok(_) | Err(_) => return,
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    let (code, took) = example.terminate_and_wait();
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.join().expect("a sender thread");
    }
    assert_eq!(code, Some(0), "exit status 0 after SIGTERM");
    assert!(
        took < Duration::from_secs(30),
        "stopped within the drain timeout: {took:?}"
    );
    let acknowledged: Vec<String> = acknowledged.lock().expect("ids").clone();
    assert!(
        acknowledged.len() > 20,
        "under load: {} events",
        acknowledged.len()
    );
    assert!(
        example.lines.iter().any(|l| l.contains("SIGTERM")),
        "the log says why it stopped"
    );
    assert!(
        example.lines.iter().all(|l| !l.contains(SECRET)),
        "the log never holds the secret"
    );

    // Restarted on the same journal: whatever the first run left is handed over.
    let mut again = Example::start(&journal);
    thread::sleep(Duration::from_millis(300));
    let (code, _) = again.terminate_and_wait();
    assert_eq!(code, Some(0));

    let mut handled: Vec<String> = example.handled_ids();
    let first_run = handled.len();
    handled.extend(again.handled_ids());
    eprintln!(
        "{} events answered 200 under load; stopped {took:?} after SIGTERM; handled {first_run} \
         in the first run, {} after the restart",
        acknowledged.len(),
        handled.len() - first_run
    );
    let unique: HashSet<&String> = handled.iter().collect();
    for id in &acknowledged {
        assert!(
            unique.contains(id),
            "{id} was answered 200 but never handled"
        );
    }
    assert_eq!(
        unique.len(),
        handled.len(),
        "no event was handled twice across the restart"
    );
}

#[test]
fn a_taken_port_is_a_readable_error_and_the_development_secret_warning_is_whole_sentences() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let port = taken.local_addr().expect("its address").port();
    let output = Command::new(example_path())
        .env("PORT", port.to_string())
        .env_remove("WASENDER_WEBHOOK_SECRET")
        .env_remove("WASENDER_JOURNAL_DIR")
        .env_remove("WASENDER_REDIS_URL")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("examples/listen runs");
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!("listen: could not listen on 0.0.0.0:{port}")),
        "a readable message: {message}"
    );
    assert!(
        !message.contains("Bind {") && !message.contains("Error: "),
        "not a Debug dump: {message}"
    );
    let warning: Vec<&str> = message
        .lines()
        .filter(|l| l.contains("WASENDER_WEBHOOK_SECRET"))
        .collect();
    assert_eq!(warning.len(), 2, "{message}");
    for line in warning {
        assert!(
            line.starts_with(char::is_uppercase) && line.ends_with('.'),
            "a whole sentence: {line:?}"
        );
    }
}
