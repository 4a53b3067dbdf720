//! A keep-alive HTTP/1.1 load generator over loopback, shared by the benches.
//! Latencies go into a fixed-size histogram, so a long run allocates nothing.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// Latency histogram: 1 µs buckets below 1 ms, 10 µs below 10 ms, 100 µs
/// below 100 ms (slower requests share the last bucket). Small (22 KiB), so
/// a long run's memory is not the load generator's.
#[derive(Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
}

const BUCKETS: usize = 1000 + 900 + 900 + 1;

fn bucket(micros: u64) -> usize {
    let index = match micros {
        0..=999 => micros,
        1_000..=9_999 => 1000 + (micros - 1_000) / 10,
        10_000..=99_999 => 1900 + (micros - 10_000) / 100,
        _ => 2800,
    };
    index as usize
}

fn bucket_floor_micros(index: usize) -> u64 {
    let index = index as u64;
    match index {
        0..=999 => index,
        1000..=1899 => 1_000 + (index - 1000) * 10,
        _ => 10_000 + (index - 1900) * 100,
    }
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            count: 0,
        }
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(micros)] += 1;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
    }

    /// The latency at quantile `q` (0.0–1.0), to the bucket's lower bound.
    pub fn quantile(&self, q: f64) -> Duration {
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Duration::from_micros(bucket_floor_micros(index));
            }
        }
        Duration::from_micros(bucket_floor_micros(BUCKETS - 1))
    }
}

/// How long a round lasts.
#[derive(Clone, Copy)]
pub enum Limit {
    /// Until this much time has passed.
    Time(Duration),
    /// Until this many requests were answered (split across the connections).
    Count(u64),
}

/// What one round measured.
pub struct Round {
    pub requests: u64,
    pub elapsed: Duration,
    pub latency: Histogram,
}

impl Round {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<30} {:>9.0} req/s   p50 {:>6} µs   p99 {:>6} µs   ({} requests)",
            self.per_second(),
            self.latency.quantile(0.50).as_micros(),
            self.latency.quantile(0.99).as_micros(),
            self.requests
        )
    }
}

/// Sends `requests` (cycled) over `connections` keep-alive connections; every
/// answer must be 200.
pub fn run(
    addr: SocketAddr,
    requests: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    limit: Limit,
) -> Round {
    let started = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            let requests = Arc::clone(requests);
            thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect to the server under test");
                stream.set_nodelay(true).expect("set TCP_NODELAY");
                let mut writer = stream.try_clone().expect("clone the stream");
                let mut reader = BufReader::new(stream);
                let mut latency = Histogram::new();
                let (stop, quota) = match limit {
                    Limit::Time(t) => (Some(Instant::now() + t), u64::MAX),
                    Limit::Count(n) => (
                        None,
                        n / connections as u64 + u64::from((c as u64) < n % connections as u64),
                    ),
                };
                let mut sent = 0u64;
                while sent < quota && stop.is_none_or(|stop| Instant::now() < stop) {
                    let request = &requests[(sent as usize + c) % requests.len()];
                    let t = Instant::now();
                    writer.write_all(request).expect("write a request");
                    let status = read_response(&mut reader);
                    latency.record(t.elapsed());
                    assert_eq!(status, 200, "the server under test refused a request");
                    sent += 1;
                }
                latency
            })
        })
        .collect();
    let mut latency = Histogram::new();
    for client in clients {
        latency.merge(&client.join().expect("load client thread"));
    }
    Round {
        requests: latency.count,
        elapsed: started.elapsed(),
        latency,
    }
}

/// Long-lived keep-alive connections, each driven by its own long-lived
/// thread: rounds reuse them, so a soak creates no threads or connections
/// after the start (nothing that could make memory grow but the server).
pub struct Pool {
    commands: Vec<mpsc::Sender<u64>>,
    results: mpsc::Receiver<Histogram>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Pool {
    pub fn connect(addr: SocketAddr, requests: &Arc<Vec<Vec<u8>>>, connections: usize) -> Self {
        let (result_tx, results) = mpsc::channel();
        let mut commands = Vec::new();
        let mut threads = Vec::new();
        for c in 0..connections {
            let (command_tx, command_rx) = mpsc::channel::<u64>();
            let requests = Arc::clone(requests);
            let result_tx = result_tx.clone();
            threads.push(thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect to the server under test");
                stream.set_nodelay(true).expect("set TCP_NODELAY");
                let mut writer = stream.try_clone().expect("clone the stream");
                let mut reader = BufReader::new(stream);
                let mut next = c;
                while let Ok(count) = command_rx.recv() {
                    let mut latency = Histogram::new();
                    for _ in 0..count {
                        let request = &requests[next % requests.len()];
                        next += 1;
                        let t = Instant::now();
                        writer.write_all(request).expect("write a request");
                        let status = read_response(&mut reader);
                        latency.record(t.elapsed());
                        assert_eq!(status, 200, "the server under test refused a request");
                    }
                    if result_tx.send(latency).is_err() {
                        return;
                    }
                }
            }));
            commands.push(command_tx);
        }
        Self {
            commands,
            results,
            threads,
        }
    }

    /// Sends `count` requests, split across the connections.
    pub fn run(&self, count: u64) -> Round {
        let started = Instant::now();
        let n = self.commands.len() as u64;
        for (i, command) in self.commands.iter().enumerate() {
            let share = count / n + u64::from((i as u64) < count % n);
            command.send(share).expect("a load thread is running");
        }
        let mut latency = Histogram::new();
        for _ in 0..self.commands.len() {
            latency.merge(&self.results.recv().expect("a load thread answered"));
        }
        Round {
            requests: latency.count,
            elapsed: started.elapsed(),
            latency,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.commands.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Reads one response (status line, headers, Content-Length body); returns the status.
pub fn read_response(reader: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a header line");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("a Content-Length");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
    status
}

/// A signed `POST path` request for `body`.
pub fn signed_request(path: &str, secret: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Webhook-Signature: {secret}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// The documented fixtures' bodies.
pub fn fixture_bodies() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("the fixtures directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("a fixture"))
        .collect()
}

/// This process's resident memory in KiB (Linux), if known.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The baseline server: tiny_http reading each body and answering 200, on
/// `threads` threads, with no verification. Stopped by [`BareServer::stop`].
pub struct BareServer {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl BareServer {
    pub fn start(threads: usize) -> BareServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind tiny_http"));
        let addr = server.server_addr().to_ip().expect("an IP address");
        let threads = (0..threads)
            .map(|_| {
                let server = Arc::clone(&server);
                thread::spawn(move || {
                    while let Ok(mut request) = server.recv() {
                        let mut body = Vec::new();
                        let _ = request.as_reader().read_to_end(&mut body);
                        let _ =
                            request.respond(tiny_http::Response::from_string(r#"{"status":"ok"}"#));
                    }
                })
            })
            .collect();
        BareServer {
            addr,
            server,
            threads,
        }
    }

    /// Wakes each thread out of `recv` and waits for it.
    pub fn stop(self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
