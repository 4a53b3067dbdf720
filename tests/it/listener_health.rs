//! `GET /healthz` over real loopback HTTP: 200 while accepting, 503 with a
//! JSON reason while draining (asked on a connection opened before the
//! shutdown) and after the journal failed (a child process whose file size
//! limit makes the journal's writes fail, as a full disk would).

use std::sync::Arc;
use std::time::Duration;

use wasenderapi::listener::DeliveryMode;

use crate::support::http::refuses_connections;
use crate::support::listener::{builder, start};
use crate::support::{event, wait_for, Conn, Recorder, Response};

const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
const WAIT: Duration = Duration::from_secs(5);

fn health(conn: &mut Conn) -> Response {
    conn.send(HEALTH_REQUEST);
    conn.read_reply()
}

#[test]
fn healthz_is_ok_while_accepting() {
    let (listener, _) = start();
    let mut conn = Conn::open(listener.local_addr());
    let reply = health(&mut conn);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
    assert_eq!(listener.shutdown().health_checks, 1);
}

#[test]
fn healthz_says_draining_while_an_inline_handler_finishes() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .idle_timeout(Duration::from_secs(5))
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let mut probe = Conn::open(addr);
    assert_eq!(health(&mut probe).status, 200);
    let client = std::thread::spawn(move || Conn::open(addr).post_signed(&event("SLOW", "block")));
    recorder.wait_blocked(1);

    let handle = listener.shutdown_handle();
    let runner = std::thread::spawn(move || listener.join());
    handle.shutdown();
    wait_for("new connections refused once shutdown began", WAIT, || {
        refuses_connections(addr)
    });
    // The probe's connection was open before: it is answered, then closed.
    let reply = health(&mut probe);
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "unavailable", "reason": "draining"})
    );
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(probe.is_closed_within(Duration::from_secs(1)));

    recorder.release(1);
    assert_eq!(client.join().unwrap().status, 200, "in flight: answered");
    let stats = runner.join().unwrap();
    assert_eq!((stats.handled, stats.health_checks), (1, 2));
}

#[test]
fn healthz_says_draining_while_the_queue_drains_and_late_webhooks_get_503() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .idle_timeout(Duration::from_secs(5))
        .delivery_mode(DeliveryMode::queued(16))
        .handler_threads(1)
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let mut probe = Conn::open(addr);
    let mut late = Conn::open(addr);
    assert_eq!(health(&mut probe).status, 200);
    let mut sender = Conn::open(addr);
    assert_eq!(sender.post_signed(&event("Q1", "block")).status, 200);
    assert_eq!(sender.post_signed(&event("Q2", "x")).status, 200);
    recorder.wait_blocked(1);

    let handle = listener.shutdown_handle();
    let runner = std::thread::spawn(move || listener.join());
    handle.shutdown();
    let reply = health(&mut probe);
    assert_eq!(
        (reply.status, reply.json()["reason"].as_str()),
        (503, Some("draining"))
    );
    // A webhook on a connection opened before the shutdown is not taken any more.
    let reply = late.post_signed(&event("LATE", "x"));
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("connection"), Some("close"));

    recorder.release(1);
    let stats = runner.join().unwrap();
    assert_eq!((stats.handled, stats.dropped, stats.queued), (2, 0, 2));
    assert_eq!(recorder.count("LATE"), 0);
}

#[cfg(all(target_os = "linux", feature = "signals"))]
mod journal_failure {
    use std::path::PathBuf;
    use std::time::Duration;

    use wasenderapi::listener::DeliveryMode;
    use wasenderapi::{WebhookHandler, WebhookListener};

    use super::health;
    use crate::support::listener::verifier;
    use crate::support::process::{
        child_command_in_shell, say_listening, test_name, ChildListener,
    };
    use crate::support::{event, Conn, TempDir};

    const ENV_JOURNAL: &str = "WASENDER_HEALTH_CHILD_JOURNAL";

    struct Accept;
    impl WebhookHandler for Accept {
        type Error = std::convert::Infallible;
    }

    /// Child mode: a durable listener on the journal in `ENV_JOURNAL`, run
    /// until a signal. Returns at once unless started by the test below.
    #[test]
    fn health_child_main() {
        let Some(journal) = std::env::var_os(ENV_JOURNAL) else {
            return;
        };
        let listener = WebhookListener::builder(verifier(), Accept)
            .bind("127.0.0.1:0")
            .delivery_mode(DeliveryMode::durable(PathBuf::from(journal)))
            .spawn()
            .expect("child starts");
        say_listening(listener.local_addr(), 0);
        listener.run_until_signal().expect("signal handlers");
    }

    /// An event of about `size` bytes.
    fn big_event(id: &str, size: usize) -> Vec<u8> {
        event(id, &"x".repeat(size))
    }

    #[test]
    fn healthz_reports_a_failed_journal_with_its_error() {
        let dir = TempDir::new("health-journal");
        // Files may grow to 64 blocks (32 or 64 KiB) in the child; a write
        // past that fails with EFBIG ("File too large") instead of the
        // default SIGXFSZ, as a write to a full disk fails with ENOSPC.
        let mut command = child_command_in_shell(
            "trap '' XFSZ; ulimit -f 64",
            &test_name(module_path!(), "health_child_main"),
        );
        command.env(ENV_JOURNAL, dir.join("journal"));
        let mut child = ChildListener::spawn("the health child", command);
        let mut conn = Conn::open(child.addr);
        assert_eq!(health(&mut conn).status, 200);
        let mut refused = None;
        for i in 0..40 {
            let reply = conn.post_signed(&big_event(&format!("BIG-{i}"), 8 * 1024));
            if reply.status != 200 {
                refused = Some((i, reply));
                break;
            }
        }
        let (accepted, reply) = refused.expect("the journal fails once the file limit is reached");
        assert!(accepted > 0, "the first events fit under the limit");
        assert_eq!(
            (reply.status, reply.header("retry-after")),
            (503, Some("1"))
        );

        let reply = health(&mut conn);
        assert_eq!(reply.status, 503, "{}", reply.body);
        let json = reply.json();
        assert_eq!(json["status"], "unavailable");
        let reason = json["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with("journal failed: ") && reason.contains("File too large"),
            "{reason}"
        );
        // It stays failed: every later event is refused too.
        let reply = conn.post_signed(&event("AFTER", "x"));
        assert_eq!(reply.status, 503);
        assert_eq!(health(&mut conn).status, 503);

        child.wait_for_signal_handlers();
        child.signal("TERM");
        let (status, _) = child
            .wait_exit(Duration::from_secs(5))
            .expect("the child exits on SIGTERM");
        assert!(status.success(), "{status}");
        drop(child);
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "{} is left behind", path.display());
    }
}
