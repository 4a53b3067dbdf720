//! One connection's state machine: bytes in, requests out, answers back.
//!
//! A [`Conn`] is driven by whoever owns it (a loop thread of the core, or
//! the fuzz target over in-memory bytes) each time its transport may have
//! made progress. [`Conn::drive`] reads what has arrived, parses it, answers
//! what needs no worker (refusals, and what the service answers from the
//! head), and returns [`Next::Process`] with a complete request; the owner
//! runs it and hands the answer back with [`Conn::complete`].
//!
//! Memory follows the bytes received, never a declared length: a connection
//! with no request in progress holds at most a small input buffer, and every
//! change in what it buffers is reported to the [`Table`], which keeps the
//! listener-wide budget. Every state change is reported there too, which is
//! how timeouts and shedding reach a connection (as a [`Doom`]).

use std::io::{self, ErrorKind};
use std::mem;
use std::sync::Mutex;

use super::clock::Clock;
use super::parse::{
    leading_blank_lines, ChunkedDecoder, Framing, HeadScan, ParseError, RequestHead,
};
use super::response::{Response, CONTINUE};
use super::service::{HeadVerdict, Later, Peer, Refusal, RefusalKind, Request, Service};
use super::table::{Class, Doom, Home, Table};
use super::transport::{PlainHttp, Transport};
use crate::sync::lock;

/// Bytes read from one connection per turn, before the others get theirs.
const READ_BUDGET: usize = 256 * 1024;
/// Bytes of unread input discarded before closing, so the client sees our answer, not a reset.
const LINGER_BYTES: usize = 256 * 1024;
/// An idle connection keeps an input buffer up to this size for its next request.
const KEEP_INPUT_CAPACITY: usize = 4096;
/// The longest method and path kept for log lines.
const LABEL_CHARS: usize = 100;

/// The size limits of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
}

/// What a connection needs from its owner while it is driven.
pub(crate) struct Env<'a> {
    pub table: &'a Mutex<Table>,
    pub service: &'a dyn Service,
    pub limits: ConnLimits,
    pub clock: &'a dyn Clock,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted: &'a [std::net::IpAddr],
    /// Where reads land before they are kept (shared by the owner's connections).
    pub scratch: &'a mut [u8],
    /// Shutdown has begun: answers close their connection.
    pub draining: bool,
    /// Other connections doomed on the way (the budget): the owner delivers these.
    pub dooms: &'a mut Vec<(Home, Doom)>,
}

/// What the owner should do next with a connection.
#[derive(Debug)]
pub(crate) enum Next {
    /// Nothing until its next readiness event (or message).
    Wait,
    /// Run this request through [`Service::call`], then [`Conn::complete`].
    Process(Job),
    /// Close it: it is finished (any answer has been written).
    Close,
    /// It has more to do, but has had its turn: drive it again later.
    Yield,
}

/// A complete request, ready for [`Service::call`].
#[derive(Debug)]
pub(crate) struct Job {
    pub head: RequestHead,
    pub body: Vec<u8>,
}

impl Job {
    /// Runs the request through `service` (the one way a request reaches
    /// it, in production and under the fuzz target alike): its answer, or
    /// `None` when `later` will bring it.
    pub fn run(&self, service: &dyn Service, peer: Peer, later: Later) -> Option<Response> {
        service.call(
            &Request {
                head: &self.head,
                body: &self.body,
                peer,
            },
            later,
        )
    }
}

/// How the body of the request being read is delimited.
#[derive(Debug)]
enum Body {
    Empty,
    /// This many bytes, which the input buffer gathers.
    Length(usize),
    /// Chunked, decoded into its own buffer as it arrives.
    Chunked {
        decoder: ChunkedDecoder,
        decoded: Vec<u8>,
    },
}

/// A request whose head has arrived.
#[derive(Debug)]
struct Reading {
    head: RequestHead,
    body: Body,
    keep_alive: bool,
    head_only: bool,
}

#[derive(Debug)]
enum Phase {
    /// No request in progress.
    Waiting,
    /// A request's head is arriving.
    Head(HeadScan),
    /// A request's body is arriving.
    Body(Box<Reading>),
    /// The request is out for processing; how to answer it.
    Busy { keep_alive: bool, head_only: bool },
    /// An answer is being written.
    Writing,
    /// Closing: discarding what the client still sends.
    Lingering { discarded: usize },
    /// Done.
    Closed,
}

/// What happens once the pending answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Keep the connection for the next request.
    Continue,
    /// Close it.
    Close,
    /// Stop sending, discard what the client still sends for a while, then close.
    Linger,
}

/// What parsing the buffered input gave.
enum Advance {
    Job(Job),
    /// Something changed (an answer to write, a new phase): go on.
    Progress,
    /// More input is needed.
    NeedInput,
    /// The connection is finished.
    Done(Next),
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Conn<T> {
    pub home: Home,
    pub transport: T,
    peer: Peer,
    /// Received bytes not consumed yet (the head, body or next request).
    input: Vec<u8>,
    phase: Phase,
    /// The answer being written, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    then: Then,
    /// The transport may hold bytes not read yet.
    pending_input: bool,
    /// The peer closed its side: read until the end of the stream shows.
    peer_closed: bool,
    /// Buffered bytes last reported to the table.
    accounted: usize,
    /// The current request's method and path once its head is read (for logs).
    label: String,
    /// A request has started and its outcome is not counted yet.
    started: bool,
    /// The table has the current request in [`Class::Reading`] (entered
    /// only once a request turns out to need more input than has arrived,
    /// so that a request that arrives whole costs one table update).
    in_reading: bool,
}

impl<T: Transport> Conn<T> {
    pub fn new(home: Home, transport: T, peer: Peer) -> Self {
        Self {
            home,
            transport,
            peer,
            input: Vec::new(),
            phase: Phase::Waiting,
            out: Vec::new(),
            out_pos: 0,
            then: Then::Continue,
            pending_input: true,
            peer_closed: false,
            accounted: 0,
            label: String::new(),
            started: false,
            in_reading: false,
        }
    }

    /// Who is at the other end.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The transport has signalled readiness to read; `closed`: the peer
    /// has closed its side too (so reads go on until they see the end,
    /// whatever a short read suggests).
    pub fn readable(&mut self, closed: bool) {
        self.pending_input = true;
        self.peer_closed |= closed;
    }

    /// Makes what progress it can.
    pub fn drive(&mut self, env: &mut Env<'_>) -> Next {
        // What the transport itself holds (a TLS handshake's next flight).
        if let Err(e) = self.transport.flush() {
            if e.kind() != ErrorKind::WouldBlock {
                return self.lost(env);
            }
        }
        let mut budget = READ_BUDGET;
        loop {
            match &mut self.phase {
                Phase::Closed => return Next::Close,
                Phase::Busy { .. } => return Next::Wait,
                Phase::Writing => match self.flush_out() {
                    Ok(true) => {
                        if let Some(next) = self.after_write(env) {
                            return next;
                        }
                    }
                    Ok(false) => {
                        return match self.enter(env, Class::Writing) {
                            Ok(()) => Next::Wait,
                            Err(doom) => self.doomed(env, doom),
                        }
                    }
                    Err(_) => return self.lost(env),
                },
                Phase::Lingering { discarded } => {
                    let mut total = *discarded;
                    let next = loop {
                        match self.transport.read(env.scratch) {
                            Ok(0) => break Next::Close,
                            Ok(n) => {
                                total += n;
                                if total >= LINGER_BYTES {
                                    break Next::Close;
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break Next::Wait,
                            Err(_) => break Next::Close,
                        }
                    };
                    self.phase = Phase::Lingering { discarded: total };
                    return next;
                }
                Phase::Waiting | Phase::Head(_) | Phase::Body(_) => match self.advance(env) {
                    Advance::Job(job) => return Next::Process(job),
                    Advance::Progress => {}
                    Advance::Done(next) => return next,
                    Advance::NeedInput => {
                        if let Err(doom) = self.reading(env) {
                            return self.doomed(env, doom);
                        }
                        if !self.pending_input {
                            return Next::Wait;
                        }
                        if budget == 0 {
                            return Next::Yield;
                        }
                        match self.transport.read(env.scratch) {
                            Ok(0) => return self.lost(env),
                            Ok(n) => {
                                self.pending_input = !self.transport.drained() || self.peer_closed;
                                budget = budget.saturating_sub(n);
                                self.take_input(n, env.scratch, env.limits);
                                if let Err(doom) = self.account(env) {
                                    return self.doomed(env, doom);
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                self.pending_input = false;
                                return Next::Wait;
                            }
                            Err(e) if is_plain_http(&e) => {
                                env.service.request_started();
                                self.started = true;
                                let response = Response::error(
                                    400,
                                    "this port speaks HTTPS: use an https:// URL",
                                );
                                return self.refuse(env, RefusalKind::Malformed, Some(response));
                            }
                            Err(_) => return self.lost(env),
                        }
                    }
                },
            }
        }
    }

    /// Keeps `n` bytes just read into `scratch`, growing the input buffer
    /// only as far as the bytes (and the request's declared size) call for.
    fn take_input(&mut self, n: usize, scratch: &[u8], limits: ConnLimits) {
        let hint = match &self.phase {
            Phase::Body(reading) => match reading.body {
                Body::Length(len) => len,
                _ => limits.max_head_bytes,
            },
            _ => limits.max_head_bytes,
        };
        let needed = self.input.len() + n;
        if needed > self.input.capacity() {
            let target = needed.max((self.input.capacity() * 2).min(hint));
            self.input.reserve_exact(target - self.input.len());
        }
        self.input.extend_from_slice(&scratch[..n]);
    }

    /// A request in progress needs more input than has arrived: from now
    /// on it is timed (head and request deadlines, counted from now).
    fn reading(&mut self, env: &mut Env<'_>) -> Result<(), Doom> {
        if !self.started || self.in_reading {
            return Ok(());
        }
        self.in_reading = true;
        let now = env.clock.now();
        let mut table = lock(env.table);
        table.set_class(self.home, Class::Reading, now)?;
        if matches!(self.phase, Phase::Body(_)) {
            table.head_done(self.home);
        }
        Ok(())
    }

    /// Reports what this connection buffers to the table.
    fn account(&mut self, env: &mut Env<'_>) -> Result<(), Doom> {
        let decoded = match &self.phase {
            Phase::Body(reading) => match &reading.body {
                Body::Chunked { decoded, .. } => decoded.capacity(),
                _ => 0,
            },
            _ => 0,
        };
        let bytes = self.input.capacity() + decoded;
        if bytes == self.accounted {
            return Ok(());
        }
        self.accounted = bytes;
        lock(env.table).set_buffered(self.home, bytes, env.dooms)
    }

    /// Moves this connection to `class` in the table.
    fn enter(&mut self, env: &mut Env<'_>, class: Class) -> Result<(), Doom> {
        let now = env.clock.now();
        lock(env.table).set_class(self.home, class, now)
    }

    /// Parses what the input buffer holds.
    fn advance(&mut self, env: &mut Env<'_>) -> Advance {
        match &mut self.phase {
            Phase::Waiting => {
                // Empty lines before a request are ignored (RFC 9112 §2.2),
                // and do not count as one beginning.
                let blank = leading_blank_lines(&self.input);
                if blank > 0 {
                    self.input.drain(..blank);
                }
                if self.input.is_empty() {
                    return Advance::NeedInput;
                }
                self.started = true;
                self.label.clear();
                env.service.request_started();
                self.phase = Phase::Head(HeadScan::default());
                Advance::Progress
            }
            Phase::Head(scan) => {
                let max = env.limits.max_head_bytes;
                let end = match scan.find_end(&self.input) {
                    Some(end) if end <= max => end,
                    None if self.input.len() < max => return Advance::NeedInput,
                    _ => return Advance::Done(self.refuse_parse(env, ParseError::HeadTooLarge)),
                };
                let head = match RequestHead::parse(&self.input[..end]) {
                    Ok(head) => head,
                    Err(e) => return Advance::Done(self.refuse_parse(env, e)),
                };
                self.input.drain(..end);
                if self.in_reading {
                    lock(env.table).head_done(self.home);
                }
                self.label_from(&head);
                self.peer.forwarded_for = head.forwarded_for(self.peer.addr.ip(), env.trusted);
                self.start_body(env, head)
            }
            Phase::Body(reading) => {
                let ready = match &mut reading.body {
                    Body::Empty => true,
                    Body::Length(len) => self.input.len() >= *len,
                    Body::Chunked { decoder, decoded } => {
                        let max = env.limits.max_body_bytes;
                        match decoder.decode(&self.input, decoded, max) {
                            Ok(d) => {
                                self.input.drain(..d.consumed);
                                if !d.done {
                                    if let Err(doom) = self.account(env) {
                                        return Advance::Done(self.doomed(env, doom));
                                    }
                                }
                                d.done
                            }
                            Err(e) => return Advance::Done(self.refuse_parse(env, e)),
                        }
                    }
                };
                if !ready {
                    return Advance::NeedInput;
                }
                self.in_reading = false;
                if let Err(doom) = self.enter(env, Class::Busy) {
                    return Advance::Done(self.doomed(env, doom));
                }
                let busy = match &self.phase {
                    Phase::Body(reading) => Phase::Busy {
                        keep_alive: reading.keep_alive,
                        head_only: reading.head_only,
                    },
                    _ => return Advance::Done(Next::Close),
                };
                let Phase::Body(reading) = mem::replace(&mut self.phase, busy) else {
                    return Advance::Done(Next::Close);
                };
                let Reading { head, body, .. } = *reading;
                let body = match body {
                    Body::Empty => Vec::new(),
                    Body::Length(len) => {
                        let rest = self.input.split_off(len);
                        mem::replace(&mut self.input, rest)
                    }
                    Body::Chunked { decoded, .. } => decoded,
                };
                Advance::Job(Job { head, body })
            }
            _ => Advance::NeedInput,
        }
    }

    /// Keeps the method and path of the request for log lines.
    fn label_from(&mut self, head: &RequestHead) {
        self.label.clear();
        self.label.push_str(head.method());
        self.label.push(' ');
        self.label.extend(head.path().chars().take(LABEL_CHARS));
    }

    /// The head has arrived: decide what to do with the body.
    fn start_body(&mut self, env: &mut Env<'_>, head: RequestHead) -> Advance {
        let framing = match head.framing() {
            Ok(framing) => framing,
            Err(e) => return Advance::Done(self.refuse_parse(env, e)),
        };
        let body = match framing {
            Framing::Empty => Body::Empty,
            Framing::Length(len) => match usize::try_from(len) {
                Ok(len) if len <= env.limits.max_body_bytes => Body::Length(len),
                _ => return Advance::Done(self.refuse_parse(env, ParseError::BodyTooLarge)),
            },
            Framing::Chunked => Body::Chunked {
                decoder: ChunkedDecoder::new(env.limits.max_head_bytes),
                decoded: Vec::new(),
            },
        };
        let has_body = !matches!(body, Body::Empty);
        let head_only = head.method() == "HEAD";
        let keep_alive = head.keep_alive();
        match env.service.head(&head, self.peer, env.draining) {
            HeadVerdict::Answer(response) => {
                self.started = false;
                // The body of a request answered from its head is not read.
                self.respond(env, &response, keep_alive, head_only, has_body);
                return Advance::Progress;
            }
            HeadVerdict::ReadBody => {}
        }
        // Told to wait for `100 Continue`, and the body has not started: say go.
        if head.expects_continue() && has_body && self.input.is_empty() {
            self.out.extend_from_slice(CONTINUE);
            if self.flush_out().is_err() {
                return Advance::Done(self.lost(env));
            }
        }
        self.phase = Phase::Body(Box::new(Reading {
            head,
            body,
            keep_alive,
            head_only,
        }));
        Advance::Progress
    }

    /// Hands back the answer to the request [`Next::Process`] gave out, and
    /// its body buffer if it is back too (kept for the next request when
    /// it is small).
    /// `false` (and nothing done) when no request of its is out.
    pub fn complete(
        &mut self,
        env: &mut Env<'_>,
        body: Option<Vec<u8>>,
        response: &Response,
    ) -> bool {
        let Phase::Busy {
            keep_alive,
            head_only,
        } = self.phase
        else {
            return false;
        };
        if let Some(mut body) = body {
            if self.input.is_empty() && body.capacity() <= KEEP_INPUT_CAPACITY {
                body.clear();
                self.input = body;
            }
        }
        self.started = false;
        self.respond(env, response, keep_alive, head_only, false);
        true
    }

    /// Queues `response` for writing; the connection stays open after it
    /// only when both sides want that and nothing of the request was left unread.
    fn respond(
        &mut self,
        env: &Env<'_>,
        response: &Response,
        keep_alive: bool,
        head_only: bool,
        unread_input: bool,
    ) {
        self.in_reading = false;
        let keep = keep_alive && !response.close && !env.draining && !unread_input;
        if self.out_pos >= self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        response.write_to(&mut self.out, head_only, keep);
        self.then = if keep {
            Then::Continue
        } else if unread_input {
            Then::Linger
        } else {
            Then::Close
        };
        self.phase = Phase::Writing;
    }

    /// Writes what is pending: `Ok(true)` when all of it is sent.
    fn flush_out(&mut self) -> io::Result<bool> {
        while self.out_pos < self.out.len() {
            match self.transport.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        match self.transport.flush() {
            Ok(()) => {
                self.out.clear();
                self.out_pos = 0;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The answer is written: wait for the next request, or close.
    fn after_write(&mut self, env: &mut Env<'_>) -> Option<Next> {
        match self.then {
            Then::Continue => {
                if self.input.is_empty() && self.input.capacity() > KEEP_INPUT_CAPACITY {
                    self.input = Vec::new();
                }
                if let Err(doom) = self
                    .account(env)
                    .and_then(|()| self.enter(env, Class::Idle))
                {
                    return Some(self.doomed(env, doom));
                }
                self.phase = Phase::Waiting;
                None
            }
            Then::Close => {
                self.phase = Phase::Closed;
                Some(Next::Close)
            }
            Then::Linger => {
                self.transport.shutdown_write();
                self.input = Vec::new();
                if let Err(doom) = self
                    .account(env)
                    .and_then(|()| self.enter(env, Class::Closing))
                {
                    return Some(self.doomed(env, doom));
                }
                self.phase = Phase::Lingering { discarded: 0 };
                None
            }
        }
    }

    /// Refuses the request being read with the answer `error` calls for.
    fn refuse_parse(&mut self, env: &mut Env<'_>, error: ParseError) -> Next {
        let (kind, response) = match error {
            ParseError::Malformed(what) => (RefusalKind::Malformed, Response::error(400, what)),
            ParseError::HeadTooLarge => (
                RefusalKind::HeadTooLarge,
                Response::error(431, "request head is too large"),
            ),
            ParseError::BodyTooLarge => {
                let max = env.limits.max_body_bytes;
                (
                    RefusalKind::BodyTooLarge,
                    Response::error(413, &format!("request body is larger than {max} bytes")),
                )
            }
            ParseError::Version => (
                RefusalKind::Malformed,
                Response::error(505, "only HTTP/1.0 and HTTP/1.1 are supported"),
            ),
        };
        self.refuse(env, kind, Some(response))
    }

    /// Reports a refusal to the service, then answers `response` (if any)
    /// and closes, discarding what the client still sends.
    fn refuse(&mut self, env: &mut Env<'_>, kind: RefusalKind, response: Option<Response>) -> Next {
        let label = Some(self.label.as_str()).filter(|l| !l.is_empty());
        env.service.refused(&Refusal {
            kind,
            response: response.as_ref(),
            peer: self.peer,
            request: label,
            started: self.started,
        });
        self.started = false;
        match response {
            Some(response) => {
                self.respond(env, &response, false, false, true);
                self.drive(env)
            }
            None => {
                self.phase = Phase::Closed;
                Next::Close
            }
        }
    }

    /// The client went away (or the connection failed): a request in
    /// progress is lost, unanswered.
    fn lost(&mut self, env: &mut Env<'_>) -> Next {
        if self.started {
            return self.refuse(env, RefusalKind::Aborted, None);
        }
        self.phase = Phase::Closed;
        Next::Close
    }

    /// The table doomed this connection: close it, with the answer the reason calls for.
    pub fn doomed(&mut self, env: &mut Env<'_>, doom: Doom) -> Next {
        if matches!(self.phase, Phase::Closed) {
            return Next::Close;
        }
        let mid_request = self.started && matches!(self.phase, Phase::Head(_) | Phase::Body(_));
        let answer = match doom {
            Doom::HeaderTimeout | Doom::RequestTimeout if mid_request => Some((
                RefusalKind::TimedOut,
                Response::error(408, "request not received in time"),
            )),
            Doom::Shed if mid_request => Some((
                RefusalKind::Saturated,
                Response::retry_later(503, "too many open connections; retry later"),
            )),
            Doom::OverBudget if mid_request => Some((
                RefusalKind::OverBudget,
                Response::retry_later(
                    503,
                    "the listener is holding too many request bytes; retry later",
                ),
            )),
            _ => None,
        };
        let Some((kind, response)) = answer else {
            return self.lost(env);
        };
        // Closing is already decided: the answer is written as far as the
        // socket takes it now, then the connection lingers briefly (so the
        // client reads it rather than a reset) unless the table has no room.
        let now = env.clock.now();
        let lingering = lock(env.table).linger(self.home, now);
        let label = Some(self.label.as_str()).filter(|l| !l.is_empty());
        env.service.refused(&Refusal {
            kind,
            response: Some(&response),
            peer: self.peer,
            request: label,
            started: self.started,
        });
        self.started = false;
        self.respond(env, &response, false, false, true);
        self.input = Vec::new();
        let _ = self.account(env);
        match self.flush_out() {
            Ok(true) if lingering => {
                self.transport.shutdown_write();
                self.phase = Phase::Lingering { discarded: 0 };
                Next::Wait
            }
            _ => {
                self.phase = Phase::Closed;
                Next::Close
            }
        }
    }
}

fn is_plain_http(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<PlainHttp>())
}
