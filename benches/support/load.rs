//! A keep-alive HTTP/1.1 load generator over loopback, shared by the benches.
//! Latencies go into a fixed-size histogram, so a long run allocates nothing.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Latency histogram with 1 µs buckets up to 100 ms (slower requests share the last bucket).
#[derive(Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
}

const BUCKETS: usize = 100_000;

impl Histogram {
    pub fn new() -> Self {
        Self {
            buckets: vec![0; BUCKETS + 1],
            count: 0,
        }
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = usize::try_from(latency.as_micros()).unwrap_or(usize::MAX);
        self.buckets[micros.min(BUCKETS)] += 1;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
    }

    /// The latency at quantile `q` (0.0–1.0), to the microsecond.
    pub fn quantile(&self, q: f64) -> Duration {
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (micros, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Duration::from_micros(micros as u64);
            }
        }
        Duration::from_micros(BUCKETS as u64)
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
                while sent < quota && stop.map_or(true, |stop| Instant::now() < stop) {
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
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
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
