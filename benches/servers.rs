//! The crate's listener against axum 0.8 (and a bare tiny_http server), in
//! the same process and the same run, under the same keep-alive load.
//!
//! - **WebhookListener**: `WebhookListener::builder(WebhookVerifier::with_secret(S), Noop)
//!   .bind("127.0.0.1:0").workers(2).spawn()` (inline mode, a no-op handler).
//! - **axum 0.8** on a tokio multi-thread runtime with 2 worker threads (the
//!   server task runs on them too): `POST /webhook` calls the same
//!   `WebhookVerifier::handle_webhook_event` on the body and the
//!   `X-Webhook-Signature` header, dispatches to the same no-op handler, and
//!   answers 200 with the same kind of JSON (or the error's status).
//! - **bare tiny_http**: reads the body and answers 200 on 2 threads, with no
//!   verification: the floor of what an HTTP server costs.
//!
//! Every request is the signed `tests/fixtures/messages.received.json`. The
//! load generator is event driven: one thread on `mio` drives every
//! connection, each sending its next request once the previous answer is
//! complete, and records each latency in a histogram — no thread per
//! connection to compete with the servers for the 2 cores. Each round opens
//! its connections one by one, each answered once before the clock starts. At 2, 16 and 128
//! keep-alive connections the servers take turns (listener, axum, tiny_http,
//! listener, …) for `BENCH_ROUNDS` rounds (default 3) of `BENCH_SECONDS`
//! each (default 2); the table gives events/s, p50 and p99 over each server's
//! rounds, and the ratio listener / axum. Events/s and latencies count
//! 200 answers only; other answers (a saturated server's 503) are counted
//! apart, as "refused", and the connection goes on.
//!
//! `cargo bench -p wasenderapi-benches --bench servers`
//! (`BENCH_CONNECTIONS=128` for one column).

#[path = "support/load.rs"]
mod load;

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use load::{BareServer, Histogram};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use wasenderapi::handler::dispatch;
use wasenderapi::signature::SIGNATURE_HEADER;
use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// Worker threads of every server.
const THREADS: usize = 2;
const CONNECTIONS: [usize; 3] = [2, 16, 128];

struct Noop;
impl WebhookHandler for Noop {
    type Error = Infallible;
}

/// axum's `POST /webhook`: verify and decode as the listener does, dispatch
/// to the same no-op handler, answer like the listener.
async fn axum_webhook(
    State(verifier): State<Arc<WebhookVerifier>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    match verifier.handle_webhook_event(&body, signature) {
        Ok(event) => {
            let _ = dispatch(&Noop, &event);
            let answer = format!(r#"{{"status":"success","event":"{}"}}"#, event.event_name());
            (StatusCode::OK, json, answer)
        }
        Err(e) => {
            let status = e
                .status_code()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, json, r#"{"status":"error"}"#.to_owned())
        }
    }
}

/// Starts axum on its own 2-thread runtime; returns its address.
fn start_axum() -> SocketAddr {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_io()
        .build()
        .expect("a tokio runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind axum");
    let addr = listener.local_addr().expect("axum's address");
    let app = Router::new()
        .route("/webhook", post(axum_webhook))
        .with_state(Arc::new(WebhookVerifier::with_secret(SECRET)));
    // The server runs as a task on the 2 workers; this thread only keeps the
    // runtime alive (the process ends with the bench).
    thread::spawn(move || {
        runtime.block_on(async move {
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let _ = server.await;
        })
    });
    addr
}

/// One keep-alive connection of the load generator.
struct Conn {
    stream: TcpStream,
    /// Bytes of the current request written so far.
    written: usize,
    /// When the current request's first byte was written.
    started: Instant,
    /// Response bytes not yet consumed.
    input: Vec<u8>,
    /// Waiting for an answer.
    busy: bool,
}

/// What one round measured.
struct Round {
    answered: u64,
    /// Answers other than 200 (a saturated server's 503s): not events. The
    /// priming answers and those after the round count here too.
    refused: u64,
    elapsed: Duration,
    latency: Histogram,
}

/// The length of a complete response at the start of `input` and its
/// status, or `None` while incomplete.
fn complete_response(input: &[u8]) -> Option<(usize, u16)> {
    let head_end = input.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&input[..head_end]).expect("an ASCII response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let mut length = 0;
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("a Content-Length");
            }
            assert!(
                !(name.eq_ignore_ascii_case("transfer-encoding")),
                "a chunked answer: the load generator reads Content-Length only"
            );
        }
    }
    (input.len() >= head_end + length).then_some((head_end + length, status))
}

/// Writes what is left of `request` on `conn`; `false` when the socket is full.
fn write_request(conn: &mut Conn, request: &[u8]) -> bool {
    while conn.written < request.len() {
        match conn.stream.write(&request[conn.written..]) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("writing a request: {e}"),
        }
    }
    true
}

fn start_request(conn: &mut Conn, request: &[u8]) {
    conn.written = 0;
    conn.busy = true;
    conn.started = Instant::now();
    write_request(conn, request);
}

/// A keep-alive connection to `addr` that has already been answered one
/// `request` (blocking, before any clock starts). Opening the connections
/// one by one this way keeps the bench clear of tiny_http 0.12's task pool,
/// which can leave one of several connections arriving at once unserved.
fn primed_connection(addr: SocketAddr, request: &[u8]) -> (std::net::TcpStream, u16) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    stream.write_all(request).expect("send the first request");
    let mut input = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((len, status)) = complete_response(&input) {
            assert_eq!(len, input.len(), "no answer was asked for yet");
            return (stream, status);
        }
        let n = stream.read(&mut chunk).expect("the first answer");
        assert!(n > 0, "the server closed a new connection");
        input.extend_from_slice(&chunk[..n]);
    }
}

/// Drives `connections` keep-alive connections to `addr` from this one
/// thread for `length`, each sending `request` again as soon as its answer
/// is complete. Only answers completed within `length` count.
fn run_round(addr: SocketAddr, request: &[u8], connections: usize, length: Duration) -> Round {
    let mut poll = Poll::new().expect("a mio poll");
    let mut refused = 0u64;
    let mut conns: Vec<Conn> = (0..connections)
        .map(|i| {
            let (std_stream, status) = primed_connection(addr, request);
            refused += u64::from(status != 200);
            std_stream.set_nonblocking(true).expect("non-blocking");
            let mut stream = TcpStream::from_std(std_stream);
            poll.registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .expect("register");
            Conn {
                stream,
                written: 0,
                started: Instant::now(),
                input: Vec::with_capacity(4096),
                busy: false,
            }
        })
        .collect();
    let mut latency = Histogram::new();
    let mut answered = 0u64;
    let started = Instant::now();
    let deadline = started + length;
    for conn in &mut conns {
        start_request(conn, request);
    }
    let mut busy = connections;
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    while busy > 0 {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("poll");
        if Instant::now() > deadline + Duration::from_secs(10) {
            let stuck: Vec<String> = conns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.busy)
                .map(|(i, c)| {
                    format!(
                        "#{i}: {}/{} request bytes written, {} answer bytes read: {:?}",
                        c.written,
                        request.len(),
                        c.input.len(),
                        String::from_utf8_lossy(&c.input[..c.input.len().min(200)])
                    )
                })
                .collect();
            panic!(
                "{addr}: {busy} answers missing 10 s after the round:\n{}",
                stuck.join("\n")
            );
        }
        for event in &events {
            let conn = &mut conns[event.token().0];
            if event.is_writable() && conn.busy {
                write_request(conn, request);
            }
            if !event.is_readable() {
                continue;
            }
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => panic!("the server closed a keep-alive connection"),
                    Ok(n) => conn.input.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("reading an answer: {e}"),
                }
            }
            while let Some((len, status)) = complete_response(&conn.input) {
                conn.input.drain(..len);
                let now = Instant::now();
                if now < deadline {
                    if status == 200 {
                        latency.record(now - conn.started);
                        answered += 1;
                    } else {
                        refused += 1;
                    }
                    start_request(conn, request);
                } else {
                    refused += u64::from(status != 200);
                    conn.busy = false;
                    busy -= 1;
                }
            }
        }
    }
    Round {
        answered,
        refused,
        elapsed: length,
        latency,
    }
}

/// A server's rounds at one connection count, added up.
struct Tally {
    answered: u64,
    refused: u64,
    elapsed: Duration,
    latency: Histogram,
}

impl Tally {
    fn new() -> Self {
        Self {
            answered: 0,
            refused: 0,
            elapsed: Duration::ZERO,
            latency: Histogram::new(),
        }
    }

    fn add(&mut self, round: &Round) {
        self.answered += round.answered;
        self.refused += round.refused;
        self.elapsed += round.elapsed;
        self.latency.merge(&round.latency);
    }

    fn per_second(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64()
    }

    fn micros(&self, q: f64) -> u128 {
        self.latency.quantile(q).as_micros()
    }
}

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = env_number("BENCH_SECONDS", 2.0);
    let rounds = env_number("BENCH_ROUNDS", 3.0).max(1.0) as usize;
    let length = Duration::from_secs_f64(seconds);
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/messages.received.json"
    ))
    .expect("the fixture");
    let request = load::signed_request("/webhook", SECRET, &body);

    let listener = WebhookListener::builder(WebhookVerifier::with_secret(SECRET), Noop)
        .bind("127.0.0.1:0")
        .workers(THREADS)
        .spawn()
        .expect("the listener starts");
    let bare_server = BareServer::start(THREADS);
    let servers: [(&str, SocketAddr); 3] = [
        ("WebhookListener", listener.local_addr()),
        ("axum 0.8", start_axum()),
        ("bare tiny_http", bare_server.addr),
    ];

    println!(
        "{}-byte signed event; {THREADS} server threads each; one mio load thread; \
         {rounds} interleaved rounds of {seconds} s per server and connection count",
        body.len()
    );
    // Warm every server up (threads, allocator, caches).
    for (name, addr) in &servers {
        eprintln!("warming up {name} on {addr}");
        run_round(*addr, &request, 16, Duration::from_millis(300));
    }

    // `BENCH_CONNECTIONS=128` runs one column only (a comma list works too).
    let connection_counts: Vec<usize> = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .filter(|list: &Vec<usize>| !list.is_empty())
        .unwrap_or_else(|| CONNECTIONS.to_vec());
    let mut table = Vec::new();
    for connections in connection_counts {
        let mut tallies: Vec<Tally> = servers.iter().map(|_| Tally::new()).collect();
        for round in 1..=rounds {
            for ((name, addr), tally) in servers.iter().zip(&mut tallies) {
                let r = run_round(*addr, &request, connections, length);
                eprintln!(
                    "{connections:>4} conns, round {round}: {name:<16} {:>9.0} events/s  p50 {:>6} µs  p90 {:>6} µs  p99 {:>6} µs  p99.9 {:>6} µs  {} refused",
                    r.answered as f64 / r.elapsed.as_secs_f64(),
                    r.latency.quantile(0.50).as_micros(),
                    r.latency.quantile(0.90).as_micros(),
                    r.latency.quantile(0.99).as_micros(),
                    r.latency.quantile(0.999).as_micros(),
                    r.refused,
                );
                tally.add(&r);
            }
        }
        table.push((connections, tallies));
    }

    println!();
    println!("| conns | server | events/s | p50 µs | p99 µs | refused (not 200) |\n|---:|---|---:|---:|---:|---:|");
    for (connections, tallies) in &table {
        for ((name, _), tally) in servers.iter().zip(tallies) {
            println!(
                "| {connections} | {name} | {:.0} | {} | {} | {} |",
                tally.per_second(),
                tally.micros(0.50),
                tally.micros(0.99),
                tally.refused
            );
        }
    }
    println!();
    println!("| conns | listener / axum events/s | listener / axum p50 | listener / axum p99 | listener / bare tiny_http events/s |\n|---:|---:|---:|---:|---:|");
    for (connections, tallies) in &table {
        let (ours, axum, bare) = (&tallies[0], &tallies[1], &tallies[2]);
        let ratio = |a: u128, b: u128| a as f64 / (b.max(1)) as f64;
        println!(
            "| {connections} | {:.2} | {:.2} | {:.2} | {:.2} |",
            ours.per_second() / axum.per_second(),
            ratio(ours.micros(0.50), axum.micros(0.50)),
            ratio(ours.micros(0.99), axum.micros(0.99)),
            ours.per_second() / bare.per_second(),
        );
    }
    bare_server.stop();
    let stats = listener.shutdown();
    println!(
        "\nlistener stats: handled {}, rejected {}",
        stats.handled,
        stats.rejected()
    );
}
