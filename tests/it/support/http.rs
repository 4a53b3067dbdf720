//! A small raw HTTP/1.1 client over `TcpStream`, so that tests control every
//! byte: keep-alive connections, signed posts, partial and malformed
//! requests. The `try_` methods report transport errors (for a peer that may
//! be killed or refuse); the others panic on them.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::webhook::signature;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a test waits for an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }

    /// Whether the listener answered that this event was seen before.
    pub fn is_duplicate(&self) -> bool {
        self.body.contains(r#""duplicate":true"#)
    }
}

/// A keep-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects to `addr`, or says why not.
    pub fn try_open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Connects to `addr`.
    pub fn open(addr: SocketAddr) -> Self {
        Self::try_open(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
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
    pub fn post(&mut self, path: &str, body: &[u8], signature: Option<&str>) -> Response {
        self.send(&post_request(path, body, signature));
        self.read_reply()
    }

    /// Posts a correctly signed `body` to `/webhook` and reads the answer.
    pub fn post_signed(&mut self, body: &[u8]) -> Response {
        self.post("/webhook", body, Some(&signature(body)))
    }

    /// Posts a correctly signed `body` to `/webhook`; a transport error
    /// (the connection refused, reset or closed) is returned.
    pub fn try_post_signed(&mut self, body: &[u8]) -> io::Result<Response> {
        let request = post_request("/webhook", body, Some(&signature(body)));
        self.writer.write_all(&request)?;
        self.read_response(true)
    }

    /// Reads one response; `None` if the connection ended first.
    pub fn try_read_reply(&mut self) -> Option<Response> {
        self.read_response(true).ok()
    }

    /// Reads one response.
    pub fn read_reply(&mut self) -> Response {
        self.read_response(true)
            .unwrap_or_else(|e| panic!("no response: {e}"))
    }

    /// Reads the head of an answer to `HEAD` (which has no body).
    pub fn read_head_reply(&mut self) -> Response {
        self.read_response(false)
            .unwrap_or_else(|e| panic!("no response: {e}"))
    }

    fn read_response(&mut self, with_body: bool) -> io::Result<Response> {
        read_response(&mut self.reader, with_body)
    }

    /// Whether the server closes the connection within `timeout` (EOF or reset).
    pub fn is_closed_within(&mut self, timeout: Duration) -> bool {
        self.writer
            .set_read_timeout(Some(timeout))
            .expect("set a read timeout");
        let mut buf = [0u8; 1];
        match self.reader.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }
}

/// Reads one response off `reader`: its head, and its `Content-Length` body
/// unless `with_body` is false (the answer to `HEAD`, or `100 Continue`).
pub fn read_response(reader: &mut impl BufRead, with_body: bool) -> io::Result<Response> {
    let broken = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| broken("status line"))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| broken("header"))?;
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let response = Response {
        status,
        headers,
        body: String::new(),
    };
    let len: usize = match response.header("content-length") {
        Some(len) if with_body => len.parse().map_err(|_| broken("Content-Length"))?,
        _ => 0,
    };
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(Response {
        body: String::from_utf8_lossy(&body).into_owned(),
        ..response
    })
}

/// A POST of `body` to `path`, with `signature` when given, as raw bytes.
pub fn post_request(path: &str, body: &[u8], signature: Option<&str>) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(signature) = signature {
        head.push_str(&format!("X-Webhook-Signature: {signature}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Posts one signed event on a fresh connection.
pub fn post(addr: SocketAddr, body: &[u8]) -> Response {
    Conn::open(addr).post_signed(body)
}

/// Sends `raw` on a fresh connection and reads one response.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut conn = Conn::open(addr);
    conn.send(raw);
    conn.read_reply()
}

/// Whether `addr` refuses new connections (a listener that stopped accepting).
pub fn refuses_connections(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
}
