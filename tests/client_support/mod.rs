//! A real local HTTP server (tiny_http on 127.0.0.1:0) for the REST client
//! tests: it records every request it receives and answers with whatever the
//! test's responder returns.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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

/// The running server. Dropping it stops it.
pub struct TestServer {
    base: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    server: Arc<tiny_http::Server>,
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
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let addr = server.server_addr().to_ip().expect("an IP listen address");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let server = Arc::clone(&server);
            let recorded = Arc::clone(&recorded);
            let mut responder: Responder = Box::new(responder);
            std::thread::spawn(move || {
                let mut n = 0;
                let mut answering = Vec::new();
                while let Ok(request) = server.recv() {
                    answering.push(serve(request, n, &recorded, &mut responder));
                    n += 1;
                }
                for answer in answering {
                    let _ = answer.join();
                }
            })
        };
        Self {
            base: format!("http://{addr}/api"),
            recorded,
            server,
            thread: Some(thread),
        }
    }

    /// The base URL to give the client (`http://127.0.0.1:port/api`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A client for this server: API key `test-api-key`, fast retries.
    pub fn client(&self) -> WasenderSyncClient {
        WasenderSyncClient::new("test-api-key")
            .with_base_url(&self.base)
            .with_retry_policy(fast_retries())
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("lock").clone()
    }

    /// The only request received (panics on any other count).
    pub fn single(&self) -> Recorded {
        let all = self.requests();
        assert_eq!(all.len(), 1, "expected exactly one request, got {all:#?}");
        all.into_iter().next().expect("one request")
    }

    /// Stops the server and waits for requests still being answered, then
    /// returns every request received.
    pub fn finish(mut self) -> Vec<Recorded> {
        self.stop();
        self.requests()
    }

    fn stop(&mut self) {
        // Let a client that is still connecting be accepted and answered first.
        std::thread::sleep(Duration::from_millis(50));
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Records the request and picks the reply in order, then answers on its own
/// thread (so a delayed answer does not hold back the next request).
fn serve(
    mut request: tiny_http::Request,
    n: usize,
    recorded: &Mutex<Vec<Recorded>>,
    responder: &mut Responder,
) -> JoinHandle<()> {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let seen = Recorded {
        method: request.method().as_str().to_owned(),
        url: request.url().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect(),
        body,
    };
    let reply = responder(n, &seen);
    recorded.lock().expect("lock").push(seen);
    std::thread::spawn(move || {
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        let mut response =
            tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
        if reply.chunked {
            response = response.with_chunked_threshold(0);
        }
        for (name, value) in &reply.headers {
            if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(header);
            }
        }
        let _ = request.respond(response);
    })
}

/// The default policy with millisecond backoffs, so tests stay fast.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy::default().initial_backoff(Duration::from_millis(10))
}

/// A documented REST body from `tests/fixtures/rest/`.
pub fn rest_fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rest")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A documented REST body from `tests/fixtures/rest/`, parsed.
pub fn rest_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&rest_fixture(name)).expect("fixture is JSON")
}

/// A webhook event fixture from `tests/fixtures/`.
pub fn event_fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
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
