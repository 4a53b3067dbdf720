//! A real local HTTP server (our own, std only, on 127.0.0.1:0) standing in
//! for the WasenderAPI REST API in the client tests: it records every
//! request it receives and answers with whatever the test's responder returns.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wasenderapi::client::WasenderSyncClientBuilder;
use wasenderapi::WasenderSyncClient;

use wasenderapi::client::RetryPolicy;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query, e.g. `/contacts?page=1`.
    pub url: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or_default()
    }

    /// The query string (empty when none).
    pub fn query(&self) -> &str {
        self.url.split_once('?').map_or("", |(_, q)| q)
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (to provoke client timeouts).
    pub delay: Duration,
    /// Send the body chunked, without a `Content-Length`.
    pub chunked: bool,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
            chunked: false,
        }
    }

    /// A raw answer with a content type.
    pub fn raw(status: u16, content_type: &str, body: &[u8]) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.to_vec(),
            delay: Duration::ZERO,
            chunked: false,
        }
    }

    /// An empty answer (e.g. 204).
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            chunked: false,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends the body chunked, so the client cannot know its length up front.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// Answers only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Responder = Box<dyn FnMut(usize, &Recorded) -> Reply + Send>;

/// How often an idle connection thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// The longest wait for the rest of a request once its first byte arrived.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection thread shares: the requests seen, the responder,
/// and the stop flag.
struct Shared {
    recorded: Mutex<Vec<Recorded>>,
    responder: Mutex<Responder>,
    stop: AtomicBool,
}

impl Shared {
    /// Records `request` and picks its reply, as one step: the index the
    /// responder gets is the request's position among all those recorded.
    fn record(&self, request: Recorded) -> Reply {
        let mut recorded = self.recorded.lock().expect("lock");
        let reply = (self.responder.lock().expect("lock"))(recorded.len(), &request);
        recorded.push(request);
        reply
    }
}

/// The running server: a std-only HTTP/1.1 server on 127.0.0.1, one thread
/// per connection, keep-alive, `Content-Length` or chunked request bodies.
/// Dropping it stops it.
pub struct TestServer {
    base: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Answers the n-th request with `replies[n]` (the last one repeats).
    pub fn replies(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty(), "at least one reply");
        Self::start(move |n, _| replies[n.min(replies.len() - 1)].clone())
    }

    /// Answers every request with `reply`.
    pub fn always(reply: Reply) -> Self {
        Self::replies(vec![reply])
    }

    /// Answers with a closure of (request index, request).
    pub fn start(responder: impl FnMut(usize, &Recorded) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the listening address");
        let shared = Arc::new(Shared {
            recorded: Mutex::new(Vec::new()),
            responder: Mutex::new(Box::new(responder)),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&listener, &shared))
        };
        Self {
            base: format!("http://{addr}/api"),
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// The base URL to give the client (`http://127.0.0.1:port/api`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A client for this server: API key `test-api-key`, fast retries.
    pub fn client(&self) -> WasenderSyncClient {
        self.client_builder().build()
    }

    /// A client builder on this server, to change a setting first.
    pub fn client_builder(&self) -> WasenderSyncClientBuilder {
        WasenderSyncClient::builder("test-api-key")
            .base_url(&self.base)
            .retry_policy(fast_retries())
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().expect("lock").clone()
    }

    /// The only request received (panics on any other count).
    pub fn single(&self) -> Recorded {
        let all = self.requests();
        assert_eq!(all.len(), 1, "expected exactly one request, got {all:#?}");
        all.into_iter().next().expect("one request")
    }

    /// Stops the server, waiting for the answers still being written
    /// (delayed ones included), then returns every request received.
    pub fn finish(mut self) -> Vec<Recorded> {
        self.stop();
        self.requests()
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop: it sees the flag on this connection.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections until the stop flag is set, then waits for every
/// connection thread (each ends once its connection is idle or closed).
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut connections = Vec::new();
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(shared);
        connections.push(std::thread::spawn(move || {
            serve_connection(stream, &shared)
        }));
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Serves the requests of one keep-alive connection, in order.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        if !wait_for_request(&mut reader, &shared.stop) {
            return;
        }
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(REQUEST_READ_TIMEOUT));
        let Ok(request) = read_request(&mut reader, &mut writer) else {
            return;
        };
        let close = request
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let reply = shared.record(request);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        if write_reply(&mut writer, &reply, close).is_err() || close {
            return;
        }
    }
}

/// Waits until the next request's first byte arrives: `false` when the
/// client closed the connection or the server is stopping meanwhile.
fn wait_for_request(reader: &mut BufReader<TcpStream>, stop: &AtomicBool) -> bool {
    let _ = reader.get_ref().set_read_timeout(Some(POLL));
    loop {
        match reader.fill_buf() {
            Ok(bytes) => return !bytes.is_empty(),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

fn bad_request(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads one request: its line, its headers, and its body (by
/// `Content-Length` or chunked), answering `Expect: 100-continue` first.
fn read_request(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> io::Result<Recorded> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(url)) = (parts.next(), parts.next()) else {
        return Err(bad_request("request line"));
    };
    let (method, url) = (method.to_owned(), url.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| bad_request("header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = Recorded {
        method,
        url,
        headers,
        body: Vec::new(),
    };
    if request
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(reader)?;
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length.parse().map_err(|_| bad_request("Content-Length"))?;
        request.body = vec![0; length];
        reader.read_exact(&mut request.body)?;
    }
    Ok(request)
}

/// Reads a chunked body to its last chunk and trailers.
fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = line.trim_end().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| bad_request("chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

/// Writes `reply`: with `Content-Length`, or chunked (in two chunks, so a
/// client must put them back together).
fn write_reply(writer: &mut TcpStream, reply: &Reply, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if reply.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if reply.chunked {
        let (first, second) = reply.body.split_at(reply.body.len() / 2);
        for chunk in [first, second].into_iter().filter(|c| !c.is_empty()) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(&reply.body);
    }
    writer.write_all(&out)?;
    writer.flush()
}

/// A reason phrase for the status line (clients read only the code).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The default policy with millisecond backoffs, so tests stay fast.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy::default().initial_backoff(Duration::from_millis(10))
}

/// Asserts the common shape of an API-key request.
pub fn assert_request(r: &Recorded, method: &str, path: &str) {
    assert_eq!(r.method, method, "method of {}", r.url);
    assert_eq!(r.path(), format!("/api{path}"), "path");
    assert_eq!(
        r.header("authorization"),
        Some("Bearer test-api-key"),
        "authorization"
    );
    assert_eq!(r.header("accept"), Some("application/json"));
    let agent = r.header("user-agent").unwrap_or_default();
    assert!(
        agent.starts_with("wasenderapi-rust/"),
        "user agent {agent:?}"
    );
}

/// Asserts a JSON body, with its content type.
pub fn assert_json_body(r: &Recorded, expected: serde_json::Value) {
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), expected);
}
