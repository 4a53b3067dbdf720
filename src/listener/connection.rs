//! One client connection: read requests one after the other (keep-alive),
//! answer the cheap ones here, hand webhook bodies to the workers.
//!
//! A connection thread owns its socket and never waits on it unbounded: every
//! read has the socket's read timeout and every request a total deadline;
//! writes have a write timeout. Workers never touch a socket.
//!
//! The request loop is generic over a [`Transport`], so that the fuzz targets
//! and tests drive exactly this code over in-memory bytes (`fuzzing.rs`).

use std::fmt::Write as _;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use super::http::{self, Framing, ReadError, RequestHead, Response};
use super::limits::Deadline;
use super::rejections::is_rejection;
use super::routing::{fixed_answer, route};
use super::server::Shared;
use super::stats::Outcome;
use super::workers::{Job, Reply};
use crate::signature::SIGNATURE_HEADER;

/// Bytes of unread input discarded before closing, so the client sees our answer, not a reset.
const LINGER_BYTES: usize = 256 * 1024;
/// Longest time spent discarding unread input before closing.
const LINGER_TIME: Duration = Duration::from_millis(250);
/// The read timeout while discarding unread input.
const LINGER_READ_TIMEOUT: Duration = Duration::from_millis(50);

/// A byte stream the request loop serves: a TCP socket, or in-memory bytes.
///
/// Reads are expected to be bounded by a timeout set up front (a socket's
/// read timeout); an in-memory stream never blocks.
pub(crate) trait Transport: Read + Write {
    /// Stops sending: the peer reads our last answer, then the end of the stream.
    fn shutdown_write(&mut self);

    /// Bounds every following read by `timeout`.
    fn limit_reads(&mut self, timeout: Duration);
}

impl Transport for TcpStream {
    fn shutdown_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }

    fn limit_reads(&mut self, timeout: Duration) {
        let _ = self.set_read_timeout(Some(timeout));
    }
}

/// How one request ended, and whether the connection can carry another.
struct Step {
    /// How the request ended, when not counted yet: an answered request is
    /// counted before its answer is written (so a client that has its answer
    /// sees it in the stats), one closed without an answer when it ends.
    outcome: Option<Outcome>,
    keep_alive: bool,
    /// The request's body (or part of it) was left unread on the socket.
    unread_input: bool,
}

impl Step {
    fn close(outcome: Outcome) -> Self {
        Self {
            outcome: Some(outcome),
            keep_alive: false,
            unread_input: true,
        }
    }
}

/// Serves one TCP connection until the client closes it, it idles out, or the listener stops.
pub(crate) fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    jobs: &SyncSender<Job>,
) {
    let limits = &shared.limits;
    let configured = stream
        .set_read_timeout(Some(limits.read_timeout))
        .and_then(|()| stream.set_write_timeout(Some(limits.write_timeout)))
        .and_then(|()| stream.set_nodelay(true));
    if let Err(e) = configured {
        log::debug!("could not set up connection from {peer}: {e}");
        return;
    }
    #[cfg(feature = "tls")]
    if let Some(config) = &shared.tls {
        super::tls::serve(stream, peer, config, shared, jobs);
        return;
    }
    serve_transport(&mut stream, peer, shared, jobs);
}

/// The request loop of one connection, over any [`Transport`] whose reads are
/// already bounded by the listener's read timeout.
pub(crate) fn serve_transport<T: Transport>(
    transport: &mut T,
    peer: SocketAddr,
    shared: &Shared,
    jobs: &SyncSender<Job>,
) {
    let mut connection = Connection {
        stream: BufReader::with_capacity(8 * 1024, transport),
        peer,
        shared,
        jobs,
        replies: mpsc::sync_channel(1),
        request: String::new(),
        late: false,
    };
    connection.run();
}

struct Connection<'a, T> {
    /// Reads go through the buffer; answers are written to the transport beneath it.
    stream: BufReader<&'a mut T>,
    peer: SocketAddr,
    shared: &'a Shared,
    jobs: &'a SyncSender<Job>,
    replies: (SyncSender<Reply>, Receiver<Reply>),
    /// The current request's method and path once its head is read, else
    /// empty (for logs; one buffer reused for every request).
    request: String,
    /// The current request started after shutdown began: it is answered at
    /// once (health: 503 draining; webhook: 503) and the connection closed.
    late: bool,
}

/// Counts a request as being processed while alive (shutdown waits for it).
struct Processing<'a>(&'a Shared);

impl<'a> Processing<'a> {
    fn start(shared: &'a Shared) -> Self {
        shared.processing.fetch_add(1, Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for Processing<'_> {
    fn drop(&mut self) {
        self.0.processing.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T: Transport> Connection<'_, T> {
    fn run(&mut self) {
        let counters = &self.shared.counters;
        loop {
            if self.stopping() {
                return;
            }
            let Ok(deadline) =
                http::wait_for_request(&mut self.stream, self.shared.limits.request_timeout)
            else {
                // Closed by the client, or idle for a whole read timeout.
                return;
            };
            counters.request_started();
            self.request.clear();
            self.late = self.stopping();
            let step = self.serve_request(deadline);
            if let Some(outcome) = step.outcome {
                counters.request_finished(outcome);
            }
            if !step.keep_alive {
                if step.unread_input {
                    self.linger();
                }
                return;
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stopping()
    }

    fn serve_request(&mut self, deadline: Deadline) -> Step {
        let head = match http::read_head(
            &mut self.stream,
            self.shared.limits.max_head_bytes,
            deadline,
        ) {
            Ok(head) => head,
            Err(ReadError::TooLarge) => {
                let response = Response::error(431, "request head is too large");
                return self.answer(&response, Outcome::Malformed, false, false, true);
            }
            Err(e) => return self.refuse_unreadable(e),
        };
        // Writing to a String cannot fail.
        let _ = write!(self.request, "{} {:.100}", head.method, head.path());
        let keep_alive = head.keep_alive() && !self.stopping();
        let head_only = head.method == "HEAD";
        let counters = &self.shared.counters;
        let route = route(
            &head.method,
            head.path(),
            &self.shared.path,
            counters.metrics_path(),
        );
        // The body of a request we do not serve is not read: close after answering.
        let has_body = !matches!(head.framing(), Ok(Framing::Empty));
        if let Some((response, outcome)) = fixed_answer(route, counters, || self.shared.health()) {
            let keep_alive = keep_alive && !has_body;
            return self.answer(&response, outcome, head_only, keep_alive, has_body);
        }
        if self.late {
            let mut response = Response::error(503, "the listener is shutting down; retry later");
            response.retry_after_secs = Some(1);
            return self.answer(&response, Outcome::Saturated, false, false, has_body);
        }
        self.serve_webhook(&head, deadline, keep_alive)
    }

    fn serve_webhook(&mut self, head: &RequestHead, deadline: Deadline, keep_alive: bool) -> Step {
        let max = self.shared.limits.max_body_bytes;
        let framing = match head.framing() {
            Ok(framing) => framing,
            Err(e) => return self.refuse_unreadable(e),
        };
        if let Framing::Length(len) = framing {
            if len > max as u64 {
                return self.too_large();
            }
        }
        if head.expects_continue()
            && framing != Framing::Empty
            && http::write_continue(self.writer()).is_err()
        {
            return Step::close(Outcome::Aborted);
        }
        let body = match http::read_body(&mut self.stream, framing, max, deadline) {
            Ok(body) => body,
            Err(e) => return self.refuse_unreadable(e),
        };
        let _processing = Processing::start(self.shared);
        if let Some(processor) = &self.shared.direct {
            let reply = processor.process(&body, head.header(SIGNATURE_HEADER));
            let keep_alive = keep_alive && !self.stopping();
            return self.answer(&reply.response, reply.outcome, false, keep_alive, false);
        }
        let job = Job {
            body,
            signature: head.header(SIGNATURE_HEADER).map(str::to_owned),
            reply: self.replies.0.clone(),
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return self.answer(&saturated(), Outcome::Saturated, false, keep_alive, false);
            }
            Err(TrySendError::Disconnected(_)) => {
                return self.answer(&saturated(), Outcome::Saturated, false, false, false);
            }
        }
        match self.replies.1.recv() {
            // Shutdown may have begun while the handler ran: then this is the last answer.
            Ok(reply) => {
                let keep_alive = keep_alive && !self.stopping();
                self.answer(&reply.response, reply.outcome, false, keep_alive, false)
            }
            // Workers always answer; only a listener being torn down drops a job.
            Err(_) => self.answer(&saturated(), Outcome::Saturated, false, false, false),
        }
    }

    /// Answers a request whose head or body could not be read.
    fn refuse_unreadable(&mut self, error: ReadError) -> Step {
        let (response, outcome) = match error {
            ReadError::TooLarge => return self.too_large(),
            ReadError::TimedOut => (
                Response::error(408, "request not received in time"),
                Outcome::TimedOut,
            ),
            ReadError::Malformed(what) => (Response::error(400, what), Outcome::Malformed),
            ReadError::Version => (
                Response::error(505, "only HTTP/1.0 and HTTP/1.1 are supported"),
                Outcome::Malformed,
            ),
            ReadError::Closed | ReadError::Idle | ReadError::Io => {
                return Step::close(Outcome::Aborted)
            }
        };
        self.answer(&response, outcome, false, false, true)
    }

    fn too_large(&mut self) -> Step {
        let max = self.shared.limits.max_body_bytes;
        let response = Response::error(413, &format!("request body is larger than {max} bytes"));
        self.answer(&response, Outcome::TooLarge, false, false, true)
    }

    fn answer(
        &mut self,
        response: &Response,
        outcome: Outcome,
        head_only: bool,
        keep_alive: bool,
        unread_input: bool,
    ) -> Step {
        self.shared.counters.answered(response.status);
        self.shared.counters.request_finished(outcome);
        if let (true, Some(reason)) = (is_rejection(response.status), &response.message) {
            let request = Some(self.request.as_str()).filter(|r| !r.is_empty());
            let peer = self.peer;
            self.shared
                .rejections
                .warn(peer, request, response.status, reason);
        }
        let written = http::write_response(self.writer(), response, head_only, keep_alive);
        Step {
            outcome: None,
            keep_alive: keep_alive && written.is_ok(),
            unread_input,
        }
    }

    /// Where answers are written: the transport under the read buffer.
    fn writer(&mut self) -> &mut T {
        self.stream.get_mut()
    }

    /// Closes gracefully when input was left unread: stop writing, then discard
    /// what the client is still sending for a short, bounded while, so that it
    /// reads our answer instead of a connection reset.
    fn linger(&mut self) {
        let transport = self.writer();
        transport.shutdown_write();
        transport.limit_reads(LINGER_READ_TIMEOUT);
        let started = Instant::now();
        let mut discarded = 0;
        let mut sink = [0u8; 8192];
        while discarded < LINGER_BYTES && started.elapsed() < LINGER_TIME {
            match self.stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    }
}

fn saturated() -> Response {
    let mut response = Response::error(503, "the listener is saturated; retry later");
    response.retry_after_secs = Some(1);
    response
}
