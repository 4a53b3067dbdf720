//! Shared helpers for the `listener_*` tests: a recording handler, signed
//! events, and a tiny raw HTTP/1.1 client over `TcpStream`.
//!
//! Included by the other `listener_*.rs` files with `#[path]`.
#![allow(dead_code)]
#![cfg(feature = "listener")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasenderapi::event::MessagesData;
use wasenderapi::listener::WebhookListenerBuilder;
use wasenderapi::signature::{sign_webhook, SignatureScheme};
use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};

pub const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Records every delivered message id; the message text steers it:
/// `fail` returns an error, `panic` panics, `block` waits for [`Recorder::release`].
#[derive(Default)]
pub struct Recorder {
    pub seen: Mutex<HashMap<String, u32>>,
    pub other_events: Mutex<Vec<String>>,
    started: Mutex<Option<Sender<()>>>,
    gate: Mutex<Option<Receiver<()>>>,
    gate_tx: Mutex<Option<Sender<()>>>,
}

impl Recorder {
    /// A recorder whose `block` messages wait until released; the returned
    /// receiver gets one message each time a blocking handler starts.
    pub fn gated() -> (Arc<Self>, Receiver<()>) {
        let (started_tx, started_rx) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel();
        let recorder = Self {
            started: Mutex::new(Some(started_tx)),
            gate: Mutex::new(Some(gate_rx)),
            gate_tx: Mutex::new(Some(gate_tx)),
            ..Self::default()
        };
        (Arc::new(recorder), started_rx)
    }

    /// Lets `n` blocked handlers go on.
    pub fn release(&self, n: usize) {
        if let Some(tx) = self.gate_tx.lock().unwrap().as_ref() {
            for _ in 0..n {
                tx.send(()).unwrap();
            }
        }
    }

    pub fn count(&self, id: &str) -> u32 {
        self.seen.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u32 {
        self.seen.lock().unwrap().values().sum()
    }
}

impl WebhookHandler for Recorder {
    type Error = String;

    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
        for m in event.data().iter().flat_map(|d| d.messages()) {
            match m.text() {
                Some("fail") => return Err("handler said no".to_owned()),
                Some("panic") => panic!("handler panicked on purpose"),
                Some("block") => {
                    if let Some(tx) = self.started.lock().unwrap().as_ref() {
                        let _ = tx.send(());
                    }
                    let gate = self.gate.lock().unwrap();
                    if let Some(rx) = gate.as_ref() {
                        let _ = rx.recv_timeout(Duration::from_secs(10));
                    }
                }
                _ => {}
            }
            let id = m.id().unwrap_or("").to_owned();
            *self.seen.lock().unwrap().entry(id).or_default() += 1;
        }
        Ok(())
    }

    fn on_unknown(&self, event: &WebhookEvent<serde_json::Value>) -> Result<(), String> {
        self.other_events
            .lock()
            .unwrap()
            .push(event.event_name().to_owned());
        Ok(())
    }
}

/// The verifier every test listener verifies with.
pub fn verifier() -> WebhookVerifier {
    WebhookVerifier::with_secret(SECRET)
}

/// A builder on 127.0.0.1:0 with small timeouts, for `handler`.
pub fn builder(handler: Arc<Recorder>) -> WebhookListenerBuilder<Recorder> {
    WebhookListener::builder(verifier(), handler)
        .bind("127.0.0.1:0")
        .workers(2)
        .idle_timeout(Duration::from_millis(200))
        .request_timeout(Duration::from_millis(400))
}

/// Starts a test listener with a fresh recorder.
pub fn start() -> (WebhookListener, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .spawn()
        .expect("listener starts");
    (listener, recorder)
}

/// A `messages.received` event carrying message `id` with `text`.
pub fn event(id: &str, text: &str) -> Vec<u8> {
    serde_json::json!({
        "event": "messages.received",
        "timestamp": 1_700_000_000,
        "sessionId": "sess-0123456789abcdef",
        "data": {"messages": {
            "key": {"id": id, "fromMe": false, "remoteJid": "15551234567@s.whatsapp.net", "cleanedSenderPn": "15551234567"},
            "messageBody": text
        }}
    })
    .to_string()
    .into_bytes()
}

/// The signature header value for `body`.
pub fn signature(body: &[u8]) -> String {
    sign_webhook(SignatureScheme::SharedSecret, SECRET, body)
}

/// One parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }
}

/// A keep-alive connection to a listener.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// The underlying socket.
    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    /// Posts `body` to `path` with an optional signature, and reads the answer.
    pub fn post(&mut self, path: &str, body: &[u8], signature: Option<&str>) -> Reply {
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
        if let Some(sig) = signature {
            head.push_str(&format!("X-Webhook-Signature: {sig}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes);
        self.read_reply()
    }

    /// Posts a correctly signed `body` to `/webhook`.
    pub fn post_signed(&mut self, body: &[u8]) -> Reply {
        self.post("/webhook", body, Some(&signature(body)))
    }

    /// Reads one response; `None` if the connection was closed first.
    pub fn try_read_reply(&mut self) -> Option<Reply> {
        self.read_reply_with(true)
    }

    /// Reads the head of an answer to `HEAD` (which has no body).
    pub fn read_head_reply(&mut self) -> Reply {
        self.read_reply_with(false).expect("a response")
    }

    fn read_reply_with(&mut self, with_body: bool) -> Option<Reply> {
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let len: usize = if !with_body {
            0
        } else {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0)
        };
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).ok()?;
        Some(Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    pub fn read_reply(&mut self) -> Reply {
        self.try_read_reply().expect("a response")
    }

    /// Whether the server closes the connection within `timeout` (EOF or reset).
    pub fn is_closed_within(&mut self, timeout: Duration) -> bool {
        self.writer.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 1];
        match self.reader.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// Sends `raw` on a fresh connection and reads one response.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut conn = Conn::open(addr);
    conn.send(raw);
    conn.read_reply()
}
