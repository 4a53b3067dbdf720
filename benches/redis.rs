//! Redis delivery against the durable and inline modes, on the same run:
//! events/s answered 200, events/s handled end to end, and the
//! received-to-handled latency (p50/p99) — with 1 and 2 listeners in Redis
//! mode, one `RedisWorker` handling for both.
//!
//! Run: `cargo bench -p wasenderapi-benches --bench redis`. `REDIS_BENCH_EVENTS`
//! (default 20,000 per mode) and `REDIS_BENCH_CONNECTIONS` (default 32
//! keep-alive client connections) change the load, `REDIS_BENCH_WORKER_THREADS`
//! (default 64) the worker. It starts its own
//! `redis-server` (`$REDIS_SERVER`, else from the `PATH`) on a free loopback
//! port with `appendonly yes` and `appendfsync always`: the same promise as
//! the durable journal's `fsync` (no acknowledged event lost to a crash).
//! Every event is distinct (its own message id), so Redis dedupe adds each one.

#[path = "support/load.rs"]
mod load;

use std::convert::Infallible;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wasenderapi::event::MessagesData;
use wasenderapi::listener::DeliveryMode;
use wasenderapi::redis::{RedisOptions, RedisWorker};
use wasenderapi::{WasenderSyncClient, WebhookEvent, WebhookHandler, WebhookListener};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// Request workers of the inline listener (as in the soak bench).
const WORKERS: usize = 16;
/// Handler threads of the durable listener.
const HANDLER_THREADS: usize = 4;
/// Handler threads of the Redis worker (`REDIS_BENCH_WORKER_THREADS`
/// changes it). A worker reads at most one entry per idle thread per round
/// trip (an `fsync` with `appendfsync always`): it holds nothing it cannot
/// begin at once, so its threads are its read-ahead.
const REDIS_WORKER_THREADS: u64 = 64;

/// Records, for each event, the time from its send to its handler call
/// (the send time travels in the message text, in µs since `base`).
struct Timing {
    base: Instant,
    handled: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

impl Timing {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            handled: AtomicU64::new(0),
            latencies_us: Mutex::new(Vec::new()),
        })
    }

    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }
}

impl WebhookHandler for Timing {
    type Error = Infallible;
    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), Infallible> {
        let now = self.now_us();
        for m in event.data().iter().flat_map(|d| d.messages()) {
            if let Some(sent) = m.text().and_then(|t| t.parse::<u64>().ok()) {
                let mut latencies = self.latencies_us.lock().unwrap_or_else(|p| p.into_inner());
                latencies.push(now.saturating_sub(sent));
            }
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client() -> WasenderSyncClient {
    WasenderSyncClient::builder("bench")
        .webhook_secret(SECRET)
        .build()
}

/// A signed request for message `id`, sent at `sent_us`.
fn request(round: &str, id: u64, sent_us: u64) -> Vec<u8> {
    let body = format!(
        r#"{{"event":"messages.received","timestamp":1733456789,"data":{{"messages":{{"key":{{"id":"{round}-{id}","fromMe":false,"remoteJid":"5511999998888@s.whatsapp.net"}},"messageBody":"{sent_us}"}}}}}}"#
    );
    load::signed_request("/webhook", SECRET, body.as_bytes())
}

/// Sends `events` distinct events over `connections` keep-alive connections,
/// spread over `addrs`; every answer must be 200. Returns the time taken.
fn drive(
    addrs: &[SocketAddr],
    connections: usize,
    events: u64,
    round: &str,
    timing: &Arc<Timing>,
) -> Duration {
    let started = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            let addr = addrs[c % addrs.len()];
            let timing = Arc::clone(timing);
            let round = round.to_owned();
            thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect to the listener");
                stream.set_nodelay(true).expect("set TCP_NODELAY");
                let mut writer = stream.try_clone().expect("clone the stream");
                let mut reader = BufReader::new(stream);
                let mut id = c as u64;
                while id < events {
                    writer
                        .write_all(&request(&round, id, timing.now_us()))
                        .expect("write a request");
                    let status = load::read_response(&mut reader);
                    assert_eq!(status, 200, "the listener refused a request");
                    id += connections as u64;
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("load client thread");
    }
    started.elapsed()
}

struct Figures {
    accepted_per_s: f64,
    handled_per_s: f64,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn print(&self, name: &str) {
        println!(
            "  {name:<24} {:>8.0} answered/s {:>8.0} handled/s   received→handled p50 {:>7} µs  p99 {:>8} µs",
            self.accepted_per_s,
            self.handled_per_s,
            self.p50.as_micros(),
            self.p99.as_micros()
        );
    }
}

/// Drives one round and waits until every event was handled.
fn measure(
    addrs: &[SocketAddr],
    connections: usize,
    events: u64,
    round: &str,
    timing: &Arc<Timing>,
) -> Figures {
    let started = Instant::now();
    let answering = drive(addrs, connections, events, round, timing);
    let deadline = Instant::now() + Duration::from_secs(120);
    while timing.handled.load(Ordering::Relaxed) < events {
        assert!(
            Instant::now() < deadline,
            "{round}: not every event was handled"
        );
        thread::sleep(Duration::from_millis(1));
    }
    let handling = started.elapsed();
    let mut latencies = std::mem::take(
        &mut *timing
            .latencies_us
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        Duration::from_micros(latencies[index])
    };
    Figures {
        accepted_per_s: events as f64 / answering.as_secs_f64(),
        handled_per_s: events as f64 / handling.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn inline(connections: usize, events: u64) -> Figures {
    let timing = Timing::new();
    let listener = WebhookListener::builder(client(), Arc::clone(&timing))
        .bind("127.0.0.1:0")
        .workers(WORKERS)
        .spawn()
        .expect("start the listener");
    let figures = measure(
        &[listener.local_addr()],
        connections,
        events,
        "inline",
        &timing,
    );
    listener.shutdown();
    figures
}

fn durable(connections: usize, events: u64) -> Figures {
    let dir = std::env::temp_dir().join(format!("wasender-redis-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let timing = Timing::new();
    let listener = WebhookListener::builder(client(), Arc::clone(&timing))
        .bind("127.0.0.1:0")
        .workers(WORKERS)
        .handler_threads(HANDLER_THREADS)
        .delivery_mode(DeliveryMode::durable(&dir).with_capacity(8192))
        .spawn()
        .expect("start the listener");
    let figures = measure(
        &[listener.local_addr()],
        connections,
        events,
        "durable",
        &timing,
    );
    listener.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    figures
}

fn redis(
    options: &RedisOptions,
    listeners: usize,
    connections: usize,
    events: u64,
    worker_threads: usize,
) -> Figures {
    let timing = Timing::new();
    let worker = RedisWorker::builder(options.clone(), Arc::clone(&timing))
        .handler_threads(worker_threads)
        .spawn()
        .expect("start the worker");
    let listeners: Vec<WebhookListener> = (0..listeners)
        .map(|_| {
            WebhookListener::redis_builder(client(), options.clone())
                .bind("127.0.0.1:0")
                .spawn()
                .expect("start the listener")
        })
        .collect();
    let addrs: Vec<SocketAddr> = listeners.iter().map(WebhookListener::local_addr).collect();
    let round = format!("redis{}-{}", addrs.len(), std::process::id());
    let figures = measure(&addrs, connections, events, &round, &timing);
    for listener in listeners {
        listener.shutdown();
    }
    worker.shutdown();
    figures
}

/// One Redis-mode listener and no worker: how fast events are added and
/// answered when nothing reads the stream meanwhile.
fn redis_answers_only(options: &RedisOptions, connections: usize, events: u64) -> f64 {
    let timing = Timing::new();
    // A stream of its own, which the other rounds' workers never read.
    let options = options.clone().prefix("{wasender-alone}");
    let listener = WebhookListener::redis_builder(client(), options)
        .bind("127.0.0.1:0")
        .spawn()
        .expect("start the listener");
    let round = format!("redis-alone-{}", std::process::id());
    let took = drive(
        &[listener.local_addr()],
        connections,
        events,
        &round,
        &timing,
    );
    listener.shutdown();
    events as f64 / took.as_secs_f64()
}

/// A `redis-server` of the bench's own, killed on drop.
struct RedisServer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl RedisServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir =
            std::env::temp_dir().join(format!("wasender-redis-bench-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the Redis directory");
        let binary = std::env::var_os("REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(&dir)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {binary:?} ({e}): install redis-server"));
        let server = Self { child, dir, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            thread::sleep(Duration::from_millis(10));
        }
        server
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let events = env_count("REDIS_BENCH_EVENTS", 20_000);
    let connections = env_count("REDIS_BENCH_CONNECTIONS", 32) as usize;
    let worker_threads = env_count("REDIS_BENCH_WORKER_THREADS", REDIS_WORKER_THREADS) as usize;
    let server = RedisServer::start();
    let options = RedisOptions::new(format!("redis://127.0.0.1:{}/", server.port));
    println!(
        "Redis delivery vs durable and inline: {events} distinct events per mode, {connections} \
         connections, Redis with appendfsync always; {HANDLER_THREADS} durable handler threads, \
         {worker_threads} Redis worker threads"
    );
    let inline = inline(connections, events);
    inline.print("inline");
    let durable = durable(connections, events);
    durable.print("durable (journal)");
    let alone = redis_answers_only(&options, connections, events);
    println!(
        "  {:<24} {alone:>8.0} answered/s (no worker reading)",
        "redis, 1 listener alone"
    );
    let one = redis(&options, 1, connections, events, worker_threads);
    one.print("redis, 1 listener");
    let two = redis(&options, 2, connections, events, worker_threads);
    two.print("redis, 2 listeners");
    println!(
        "  redis (1 listener) / durable = {:.2} answered, {:.2} handled; \
         2 listeners / 1 = {:.2}",
        one.accepted_per_s / durable.accepted_per_s,
        one.handled_per_s / durable.handled_per_s,
        two.accepted_per_s / one.accepted_per_s
    );
}
