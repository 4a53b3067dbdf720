//! The listener facing the open internet, as a real process under the usual
//! soft open-file limit of 1024: thousands of idle, slowloris and stalled
//! large-body connections held against it do not keep genuine events out,
//! slow them down, or blow up its memory.
#![cfg(all(unix, feature = "listener", feature = "signals"))]

#[path = "delivery_support/mod.rs"]
mod delivery;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use delivery::{event, RawConn, SECRET};

const IDLE: usize = 5_000;
const SLOWLORIS: usize = 500;
const STALLED: usize = 200;
const GENUINE: usize = 100;
/// Declared by each stalled body, of which all but one byte is sent.
const STALLED_BODY: usize = 1 << 20;

/// `target/<profile>/examples/listen`, which `cargo test` builds.
fn example_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    profile_dir.join("examples").join("listen")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

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
        Err(e) => e.kind() != ErrorKind::WouldBlock,
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
            thread::sleep(Duration::from_millis(200));
        }
    })
}

/// The child's peak resident memory (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM")
}

struct Listener {
    child: Child,
    addr: SocketAddr,
    start_line: String,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `examples/listen` under a soft open-file limit of 1024 (systemd's default).
fn start_listener() -> Listener {
    let port = free_port();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 1024 && exec \"$0\"")
        .arg(example_path())
        .env("PORT", port.to_string())
        .env("WASENDER_WEBHOOK_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .env_remove("WASENDER_JOURNAL_DIR")
        .env_remove("WASENDER_REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("examples/listen starts");
    let stderr = child.stderr.take().expect("its stderr");
    let (lines_tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let start_line = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(15))
            .expect("the listener logs its start");
        if line.contains("webhook listener on") {
            break line;
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    thread::spawn(move || while lines.recv().is_ok() {});
    Listener {
        child,
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        start_line,
    }
}

#[test]
fn genuine_events_get_through_thousands_of_idle_slow_and_stalled_connections() {
    // This process holds both ends' worth of sockets for the attack.
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("the open-file limit");
    let needed = (IDLE + SLOWLORIS + STALLED + GENUINE) as u64 + 256;
    assert!(
        hard >= needed * 2,
        "this test needs a hard open-file limit of at least {} (both ends of {needed} \
         connections run on this machine); it is {hard}",
        needed * 2
    );
    rlimit::increase_nofile_limit(needed + 64).expect("raise this process's open-file limit");

    let listener = start_listener();
    assert!(
        listener.start_line.contains("open-file limit")
            && !listener.start_line.contains("limit 1024)"),
        "the listener raised its soft open-file limit and logged its connection cap: {}",
        listener.start_line
    );
    let addr = listener.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let idle_open = Arc::new(AtomicUsize::new(0));
    let slow_open = Arc::new(AtomicUsize::new(0));
    let stalled_open = Arc::new(AtomicUsize::new(0));
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
    for _ in 0..4 {
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
            Arc::clone(&stalled_open),
        ));
    }
    // Wait until the attack is in place.
    let deadline = Instant::now() + Duration::from_secs(60);
    while idle_open.load(Ordering::Relaxed) < IDLE || slow_open.load(Ordering::Relaxed) < SLOWLORIS
    {
        assert!(
            Instant::now() < deadline,
            "the attack could not be set up: {} idle, {} slowloris open",
            idle_open.load(Ordering::Relaxed),
            slow_open.load(Ordering::Relaxed)
        );
        thread::sleep(Duration::from_millis(50));
    }
    let held = (
        idle_open.load(Ordering::Relaxed),
        slow_open.load(Ordering::Relaxed),
        stalled_open.load(Ordering::Relaxed),
    );

    // Genuine events, each on a fresh connection.
    let mut latencies = Vec::with_capacity(GENUINE);
    for i in 0..GENUINE {
        let body = event(&format!("GENUINE-{i}"), "hello");
        let started = Instant::now();
        let mut conn = RawConn::open(addr).expect("a genuine sender connects");
        let answer = conn
            .post_signed(&body)
            .expect("a genuine sender gets an answer");
        latencies.push(started.elapsed());
        assert_eq!(answer.status, 200, "genuine event {i}: {}", answer.body);
    }
    let held_after = (
        idle_open.load(Ordering::Relaxed),
        slow_open.load(Ordering::Relaxed),
        stalled_open.load(Ordering::Relaxed),
    );
    let rss = peak_rss(listener.child.id());
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        let _ = attacker.join();
    }
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
