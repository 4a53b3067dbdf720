//! The listener facing the open internet, as a real process under the usual
//! soft open-file limit of 1024: thousands of idle, slowloris and stalled
//! large-body connections held against it do not keep genuine events out,
//! slow them down, or blow up its memory.
//!
//! Two child processes: `examples/listen` (the listener), and this test
//! binary again in "child mode" (the attacker), which raises its own
//! open-file limit to hold its thousands of sockets. This process only
//! sends the genuine events and measures.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::process::{
    child_command, peak_rss_kib, say, test_name, wait_for_stdin_eof, ChildProcess, ListenExample,
};
use crate::support::{event, heavy, Conn, SECRET};

const IDLE: usize = 5_000;
const SLOWLORIS: usize = 500;
const STALLED: usize = 200;
const GENUINE: usize = 100;
/// Declared by each stalled body, of which all but one byte is sent.
const STALLED_BODY: usize = 1 << 20;
/// Sockets the attack and the genuine sender need, with room to spare.
const NEEDED_FILES: u64 = (IDLE + SLOWLORIS + STALLED + GENUINE) as u64 + 256;

/// Where the attacker child attacks.
const ENV_TARGET: &str = "WASENDER_HOSTILE_TARGET";

/// A connection from loopback address `127.0.0.<host>` (one peer address
/// per kind of attack, the genuine sender on 127.0.0.1).
fn connect_from(host: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let from = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, host), 0);
    socket.bind(&from.into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// Whether the server closed `stream` (a non-blocking look).
fn closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let gone = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    gone
}

/// Keeps `count` connections from `host` open, reopening those the server
/// closes (after `prepare` sent what each one sends), until `stop`; counts
/// how many are open in `open`.
fn hold(
    host: u8,
    to: SocketAddr,
    count: usize,
    prepare: impl Fn(&mut TcpStream) -> std::io::Result<()> + Send + 'static,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut held: Vec<Option<TcpStream>> = (0..count).map(|_| None).collect();
        while !stop.load(Ordering::Relaxed) {
            let mut now_open = 0;
            for slot in &mut held {
                if slot.as_ref().is_some_and(closed) {
                    *slot = None;
                }
                if slot.is_none() {
                    if let Ok(mut stream) = connect_from(host, to) {
                        if prepare(&mut stream).is_ok() {
                            *slot = Some(stream);
                        }
                    }
                }
                now_open += usize::from(slot.is_some());
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            open.store(now_open, Ordering::Relaxed);
            // The attacker's pace between rounds of checks (the input, not a wait).
            thread::sleep(Duration::from_millis(200));
        }
    })
}

/// Child mode: the attacker. Returns at once unless started by the test
/// below. Holds the idle, slowloris and stalled connections against the
/// address in `ENV_TARGET`, says how many are open after each round, and
/// stops when its stdin closes.
#[test]
fn attacker_main() {
    let Some(target) = std::env::var_os(ENV_TARGET) else {
        return;
    };
    let addr: SocketAddr = target
        .to_str()
        .and_then(|t| t.parse().ok())
        .expect("a target address");
    rlimit::increase_nofile_limit(NEEDED_FILES + 64).expect("raise the attacker's open-file limit");
    let stop = Arc::new(AtomicBool::new(false));
    let idle_open = Arc::new(AtomicUsize::new(0));
    let slow_open = Arc::new(AtomicUsize::new(0));
    // One count per stalled-body thread (each stores its own), summed when said.
    let stalled_open: Vec<Arc<AtomicUsize>> =
        (0..4).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut attackers = Vec::new();
    // Idle: connect and send nothing.
    attackers.push(hold(
        2,
        addr,
        IDLE,
        |_| Ok(()),
        Arc::clone(&stop),
        Arc::clone(&idle_open),
    ));
    // Slowloris: a head that never ends.
    attackers.push(hold(
        3,
        addr,
        SLOWLORIS,
        |s| s.write_all(b"POST /webhook HTTP/1.1\r\nHost: victim\r\nX-Slow: "),
        Arc::clone(&stop),
        Arc::clone(&slow_open),
    ));
    // Stalled large bodies: 1 MiB declared, all but one byte sent, then nothing.
    for open in &stalled_open {
        attackers.push(hold(
            4,
            addr,
            STALLED / 4,
            |s| {
                s.set_write_timeout(Some(Duration::from_secs(5)))?;
                let head = format!(
                    "POST /webhook HTTP/1.1\r\nHost: victim\r\nX-Webhook-Signature: {SECRET}\r\n\
                     Content-Length: {STALLED_BODY}\r\n\r\n"
                );
                s.write_all(head.as_bytes())?;
                let chunk = vec![b'{'; 64 * 1024];
                let mut left = STALLED_BODY - 1;
                while left > 0 {
                    let n = left.min(chunk.len());
                    s.write_all(&chunk[..n])?;
                    left -= n;
                }
                Ok(())
            },
            Arc::clone(&stop),
            Arc::clone(open),
        ));
    }
    let reporter = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                say(&format!(
                    "held {} {} {}",
                    idle_open.load(Ordering::Relaxed),
                    slow_open.load(Ordering::Relaxed),
                    stalled_open
                        .iter()
                        .map(|open| open.load(Ordering::Relaxed))
                        .sum::<usize>()
                ));
                // How often the parent hears of the attack (the input, not a wait).
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    wait_for_stdin_eof();
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        let _ = attacker.join();
    }
    let _ = reporter.join();
    say("stats stopped");
}

/// Connections the attacker holds open: idle, slowloris, stalled.
type Held = (usize, usize, usize);

/// Reads the attacker's next `held` line.
fn next_held(attacker: &ChildProcess, timeout: Duration) -> Held {
    parse_held(&attacker.expect_line("held", timeout))
}

/// The counts of a `held` line (without its tag).
fn parse_held(line: &str) -> Held {
    let counts: Vec<usize> = line
        .split_whitespace()
        .map(|n| n.parse().expect("a count"))
        .collect();
    let [idle, slow, stalled] = counts[..] else {
        panic!("a malformed held line {line:?}");
    };
    (idle, slow, stalled)
}

#[test]
fn genuine_events_get_through_thousands_of_idle_slow_and_stalled_connections() {
    let _heavy = heavy::exclusive();
    // The attacker holds one end of every connection, the listener the other.
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("the open-file limit");
    assert!(
        hard >= NEEDED_FILES * 2,
        "this test needs a hard open-file limit of at least {} (both ends of {NEEDED_FILES} \
         connections run on this machine); it is {hard}",
        NEEDED_FILES * 2
    );

    // `examples/listen` under a soft open-file limit of 1024 (systemd's default).
    let listener = ListenExample::start(SECRET, None, Some("ulimit -Sn 1024"));
    assert!(
        listener.start_line.contains("open-file limit")
            && !listener.start_line.contains("limit 1024)"),
        "the listener raised its soft open-file limit and logged its connection cap: {}",
        listener.start_line
    );
    let addr = listener.addr;
    let mut command = child_command(&test_name(module_path!(), "attacker_main"));
    command.env(ENV_TARGET, addr.to_string());
    let attacker = ChildProcess::spawn("the attacker", command);

    // Wait until the attack is in place.
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let held = next_held(&attacker, left);
        if held.0 >= IDLE && held.1 >= SLOWLORIS {
            break held;
        }
        assert!(
            Instant::now() < deadline,
            "the attack could not be set up: {held:?} (idle, slowloris, stalled) open"
        );
    };

    // Genuine events, each on a fresh connection.
    let mut latencies = Vec::with_capacity(GENUINE);
    for i in 0..GENUINE {
        let body = event(&format!("GENUINE-{i}"), "hello");
        let started = Instant::now();
        let mut conn = Conn::try_open(addr).expect("a genuine sender connects");
        let answer = conn
            .try_post_signed(&body)
            .expect("a genuine sender gets an answer");
        latencies.push(started.elapsed());
        assert_eq!(answer.status, 200, "genuine event {i}: {}", answer.body);
    }
    // The attacker's latest word (it speaks every 100 ms).
    let held_after = match attacker.said().last() {
        Some(line) => parse_held(line.strip_prefix("held").expect("a held line")),
        None => next_held(&attacker, Duration::from_secs(10)),
    };
    let rss = peak_rss_kib(listener.pid()) * 1024;
    attacker.stop();
    latencies.sort();
    let p50 = latencies[GENUINE / 2];
    let p99 = latencies[GENUINE * 99 / 100 - 1];
    let max = latencies[GENUINE - 1];
    eprintln!(
        "held (idle, slowloris, stalled) before: {held:?}, after: {held_after:?}; \
         {GENUINE} genuine events: p50 {p50:?}, p99 {p99:?}, max {max:?}; \
         listener peak RSS {:.1} MiB",
        rss as f64 / (1 << 20) as f64
    );
    assert!(
        held.0 >= IDLE && held.1 >= SLOWLORIS,
        "the attack was in place: {held:?}"
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    assert!(rss < 128 << 20, "peak RSS {rss} bytes");
}
