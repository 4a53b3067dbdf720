//! Shared helpers for the `delivery_*` tests: a steerable handler, temp
//! directories, waiting, and a raw HTTP client that reports errors instead of
//! panicking (for talking to a process that may be killed).
//!
//! Included by the `delivery_*.rs` files with `#[path]`, next to `listener_support`.
#![allow(dead_code)]
#![cfg(feature = "listener")]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use wasenderapi::event::MessagesData;
use wasenderapi::signature::{sign_webhook, SignatureScheme};
use wasenderapi::{WebhookEvent, WebhookHandler};

pub const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A temporary directory under `std::env::temp_dir()`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "wasender-delivery-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `done` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A handler steered by each message's text:
/// - `fail`: always an error; `flaky`: an error while [`Probe::failing`] is set;
/// - `failN` (N a digit): an error on the first N attempts for that message id;
/// - `panic`: panics; `block`: waits until [`Probe::open_gate`];
/// - `slowN`: sleeps N × 10 ms; anything else: `Ok`.
///
/// Every successful call records the message id in `handled`; every call in `attempts`.
#[derive(Default)]
pub struct Probe {
    pub handled: Mutex<Vec<String>>,
    pub attempts: Mutex<HashMap<String, u32>>,
    pub failing: AtomicBool,
    gate: Mutex<bool>,
    gate_changed: Condvar,
}

impl Probe {
    pub fn open_gate(&self) {
        *self.gate.lock().unwrap() = true;
        self.gate_changed.notify_all();
    }

    pub fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }

    pub fn count(&self, id: &str) -> usize {
        self.handled
            .lock()
            .unwrap()
            .iter()
            .filter(|h| *h == id)
            .count()
    }

    pub fn attempts(&self, id: &str) -> u32 {
        self.attempts.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    fn wait_for_gate(&self) {
        let mut open = self.gate.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !*open && Instant::now() < deadline {
            open = self
                .gate_changed
                .wait_timeout(open, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }
}

impl WebhookHandler for Probe {
    type Error = String;

    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
        for m in event.data().iter().flat_map(|d| d.messages()) {
            let id = m.id().unwrap_or("").to_owned();
            let attempt = {
                let mut attempts = self.attempts.lock().unwrap();
                let n = attempts.entry(id.clone()).or_default();
                *n += 1;
                *n
            };
            let text = m.text().unwrap_or("");
            match text {
                "fail" => return Err(format!("{id} always fails")),
                "flaky" if self.failing.load(Ordering::SeqCst) => {
                    return Err(format!("{id} fails for now"))
                }
                "panic" => panic!("{id} panics on purpose"),
                "block" => self.wait_for_gate(),
                _ => {}
            }
            if let Some(n) = text
                .strip_prefix("fail")
                .and_then(|n| n.parse::<u32>().ok())
            {
                if attempt <= n {
                    return Err(format!("{id} fails attempt {attempt} of {n}"));
                }
            }
            if let Some(n) = text
                .strip_prefix("slow")
                .and_then(|n| n.parse::<u64>().ok())
            {
                std::thread::sleep(Duration::from_millis(n * 10));
            }
            self.handled.lock().unwrap().push(id);
        }
        Ok(())
    }
}

/// A `messages.received` event carrying message `id` with `text`.
pub fn event(id: &str, text: &str) -> Vec<u8> {
    serde_json::json!({
        "event": "messages.received",
        "timestamp": 1_700_000_000,
        "sessionId": "sess-0123456789abcdef",
        "data": {"messages": {
            "key": {"id": id, "fromMe": false, "remoteJid": "15551234567@s.whatsapp.net"},
            "messageBody": text
        }}
    })
    .to_string()
    .into_bytes()
}

/// A keep-alive connection that reports failures instead of panicking.
pub struct RawConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// One answer: status, the `Retry-After` header, and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl RawConn {
    pub fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Posts `body`, signed, to `/webhook` and reads the answer.
    pub fn post_signed(&mut self, body: &[u8]) -> io::Result<Answer> {
        let signature = sign_webhook(SignatureScheme::SharedSecret, SECRET, body);
        let mut request = format!(
            "POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nX-Webhook-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.writer.write_all(&request)?;
        self.read_answer()
    }

    fn read_answer(&mut self) -> io::Result<Answer> {
        let broken = || io::Error::new(io::ErrorKind::InvalidData, "bad response");
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(broken)?;
        let mut len = 0usize;
        let mut retry_after = None;
        loop {
            let mut header = String::new();
            if self.reader.read_line(&mut header)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').ok_or_else(broken)?;
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().map_err(|_| broken())?;
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after = Some(value.trim().to_owned());
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok(Answer {
            status,
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// Posts one signed event on a fresh connection; panics on a transport error.
pub fn post(addr: SocketAddr, body: &[u8]) -> Answer {
    RawConn::open(addr)
        .and_then(|mut c| c.post_signed(body))
        .expect("an answer")
}

/// The handler child processes run: works `work` on each event, then appends
/// the message id and a newline to its output file (one `write` on an
/// `O_APPEND` file, so a line is never torn by another handler thread, and a
/// line without its newline was cut by a kill), no `fsync`.
pub struct AppendIds {
    out: Mutex<std::fs::File>,
    work: Duration,
}

impl AppendIds {
    /// Appends to `path` (created if missing).
    pub fn open(path: impl AsRef<Path>, work: Duration) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("the child's output file opens");
        Self {
            out: Mutex::new(out),
            work,
        }
    }
}

impl WebhookHandler for AppendIds {
    type Error = io::Error;

    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> io::Result<()> {
        std::thread::sleep(self.work);
        for m in event.messages() {
            let line = format!("{}\n", m.id().unwrap_or("?"));
            let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}
