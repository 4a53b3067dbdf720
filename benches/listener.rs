//! The listener against a bare tiny_http server, under the same loopback load.
//!
//! Both servers get the same signed `messages.received` fixture over
//! keep-alive connections from the same in-process load generator; the bare
//! server only reads the body and answers 200, the listener verifies, decodes
//! and dispatches to a no-op handler. Prints requests/s, p50 and p99 latency
//! for both, and the throughput ratio (goal: listener ≥ 0.8 × bare, p99 < 2 ms).
//!
//! `cargo bench --bench listener`; `BENCH_SECONDS` sets each round's length (default 2).

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wasenderapi::{
    sign_webhook, SignatureScheme, WasenderSyncClient, WebhookHandler, WebhookListener,
};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const CONNECTIONS: usize = 4;
const WORKERS: usize = 4;
const MAX_REQUESTS_PER_CONNECTION: usize = 200_000;

struct Noop;
impl WebhookHandler for Noop {
    type Error = Infallible;
}

struct Round {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Round {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
    fn print(&self, name: &str) {
        println!(
            "{name:<28} {:>9.0} req/s   p50 {:>7.1} µs   p99 {:>7.1} µs   ({} requests)",
            self.per_second(),
            self.percentile(0.50).as_secs_f64() * 1e6,
            self.percentile(0.99).as_secs_f64() * 1e6,
            self.requests
        );
    }
}

/// Keep-alive load: `CONNECTIONS` clients posting `request` back to back for `length`.
fn load(addr: SocketAddr, request: &Arc<Vec<u8>>, length: Duration) -> Round {
    let started = Instant::now();
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let request = Arc::clone(request);
            thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                let mut latencies = Vec::new();
                let stop = Instant::now() + length;
                while Instant::now() < stop && latencies.len() < MAX_REQUESTS_PER_CONNECTION {
                    let t = Instant::now();
                    writer.write_all(&request).expect("write");
                    let status = read_response(&mut reader);
                    latencies.push(t.elapsed());
                    assert_eq!(status, 200, "benchmark request failed");
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Round {
        requests: latencies.len(),
        elapsed,
        latencies,
    }
}

/// Reads one response (status line, headers, Content-Length body); returns the status.
fn read_response(reader: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("content-length");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    status
}

/// A tiny_http server that reads each body and answers 200, on `WORKERS` threads.
fn bare_tiny_http() -> (
    SocketAddr,
    Arc<tiny_http::Server>,
    Vec<thread::JoinHandle<()>>,
) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let addr = server.server_addr().to_ip().expect("ip address");
    let workers = (0..WORKERS)
        .map(|_| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                while let Ok(mut request) = server.recv() {
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let _ = request.respond(tiny_http::Response::from_string(r#"{"status":"ok"}"#));
                }
            })
        })
        .collect();
    (addr, server, workers)
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let length = Duration::from_secs_f64(seconds);
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/messages.received.json"
    ))
    .expect("fixture");
    let signature = sign_webhook(SignatureScheme::SharedSecret, SECRET, &body);
    let mut request = format!(
        "POST /webhook HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nX-Webhook-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);

    let (bare_addr, bare_server, bare_workers) = bare_tiny_http();
    let listener = WebhookListener::builder(
        WasenderSyncClient::new("bench").with_webhook_secret(SECRET),
        Noop,
    )
    .bind("127.0.0.1:0")
    .workers(WORKERS)
    .spawn()
    .expect("listener starts");
    let listener_addr = listener.local_addr();

    println!(
        "{CONNECTIONS} keep-alive connections, {WORKERS} workers each, {}-byte signed event, {seconds} s per round",
        body.len()
    );
    // Warm up both (threads, caches, allocator).
    load(bare_addr, &request, Duration::from_millis(300));
    load(listener_addr, &request, Duration::from_millis(300));

    let mut best: [Option<Round>; 2] = [None, None];
    for round in 1..=2 {
        let bare = load(bare_addr, &request, length);
        bare.print(&format!("bare tiny_http (round {round})"));
        let ours = load(listener_addr, &request, length);
        ours.print(&format!("WebhookListener (round {round})"));
        for (slot, r) in best.iter_mut().zip([bare, ours]) {
            let better = match slot {
                Some(b) => r.per_second() > b.per_second(),
                None => true,
            };
            if better {
                *slot = Some(r);
            }
        }
    }
    let [Some(bare), Some(ours)] = best else {
        unreachable!("two rounds ran");
    };
    println!(
        "best rounds: listener / bare = {:.2} ({:.0} / {:.0} req/s); listener p99 {:.2} ms (goal: ratio >= 0.80, p99 < 2 ms)",
        ours.per_second() / bare.per_second(),
        ours.per_second(),
        bare.per_second(),
        ours.percentile(0.99).as_secs_f64() * 1e3
    );
    let stats = listener.shutdown();
    println!(
        "listener stats: handled {}, rejected {}",
        stats.handled,
        stats.rejected()
    );
    for _ in 0..WORKERS {
        bare_server.unblock();
    }
    for worker in bare_workers {
        let _ = worker.join();
    }
}
