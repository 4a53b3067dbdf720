//! `examples/listen`, the program a new user runs first, as a real process:
//! it honours `PORT`, `WASENDER_WEBHOOK_SECRET` and `WASENDER_JOURNAL_DIR`,
//! serves `/healthz` and `/metrics`, and under load `kill -TERM` makes it exit
//! with status 0 having handled every event it answered 200; restarted on the
//! same journal it hands over nothing twice and loses nothing.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::support::process::{example_path, ListenExample};
use crate::support::{event, heavy, wait_for, Conn, TempDir, SECRET};

const WAIT: Duration = Duration::from_secs(15);

/// Message ids the example logged as handled (`… from <phone>: "<id>"`).
fn handled_ids(example: &ListenExample) -> Vec<String> {
    example
        .lines
        .iter()
        .filter_map(|l| l.rsplit_once(": \"").map(|(_, rest)| rest))
        .filter_map(|rest| rest.strip_suffix('"'))
        .filter(|id| id.starts_with("ex-"))
        .map(str::to_owned)
        .collect()
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
    let _heavy = heavy::shared();
    let tmp = TempDir::new("example-listen");
    let journal = tmp.join("journal");
    let mut example = ListenExample::start(SECRET, Some(&journal), None);
    assert_eq!(get(example.addr, "/healthz").map(|(s, _)| s), Some(200));

    let (status, metrics) = get(example.addr, "/metrics").expect("a metrics answer");
    assert_eq!(
        status,
        200,
        "{} answers /metrics with {status}: it was built without the `metrics` feature; \
         run the whole suite (`cargo test --all-features`), which builds the examples \
         with the same features as this test",
        example_path("listen").display()
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
                let Ok(mut conn) = Conn::try_open(addr) else {
                    return;
                };
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    // The text is the id, so the example's log line names it.
                    let id = format!("ex-{sender}-{n}");
                    match conn.try_post_signed(&event(&id, &id)) {
                        Ok(answer) if answer.status == 200 => {
                            acknowledged.lock().expect("ids").push(id)
                        }
                        Ok(_) | Err(_) => return,
                    }
                }
            })
        })
        .collect();
    // Under load: the signal comes once 100 events were answered 200.
    wait_for("100 events answered 200", WAIT, || {
        acknowledged.lock().expect("ids").len() >= 100
    });
    let (code, took) = example.terminate_and_wait(WAIT);
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

    // Restarted on the same journal: whatever the first run left is handed
    // over; it is stopped once every acknowledged event was handled.
    let first_run: HashSet<String> = handled_ids(&example).into_iter().collect();
    let mut again = ListenExample::start(SECRET, Some(&journal), None);
    wait_for(
        "the restart to hand over every acknowledged event",
        WAIT,
        || {
            again.collect_log();
            let second_run: HashSet<String> = handled_ids(&again).into_iter().collect();
            acknowledged
                .iter()
                .all(|id| first_run.contains(id) || second_run.contains(id))
        },
    );
    let (code, _) = again.terminate_and_wait(WAIT);
    assert_eq!(code, Some(0));

    let mut handled: Vec<String> = handled_ids(&example);
    let first_run = handled.len();
    handled.extend(handled_ids(&again));
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
    let output = Command::new(example_path("listen"))
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
