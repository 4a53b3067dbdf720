//! The one seam between the HTTP core and what it serves: complete requests
//! in, responses out, and a word about every request the core refused or
//! lost on its own.

use std::net::{IpAddr, SocketAddr};

use std::sync::Arc;

use super::parse::RequestHead;
use super::response::Response;
use super::table::Home;

/// What the core knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    /// The TCP peer.
    pub addr: SocketAddr,
    /// The client a trusted proxy forwarded for (`X-Forwarded-For`), if any.
    pub forwarded_for: Option<IpAddr>,
}

/// A complete request.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub head: &'a RequestHead,
    pub body: &'a [u8],
    pub peer: Peer,
}

/// What the core did with a request it did not hand to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalKind {
    /// Not valid HTTP (400, 505), or plain HTTP on the HTTPS port.
    Malformed,
    /// The head is over its limit (431).
    HeadTooLarge,
    /// The body is over its limit (413).
    BodyTooLarge,
    /// Not received in time (408).
    TimedOut,
    /// The client closed the connection (or it failed) mid-request: no answer.
    Aborted,
    /// Turned away or shed: too many connections (503, or closed unanswered on HTTPS).
    Saturated,
    /// Cut at the buffered-bytes budget (503).
    OverBudget,
}

/// A request (or a connection, before any request) the core refused or lost.
#[derive(Debug)]
pub(crate) struct Refusal<'a> {
    pub kind: RefusalKind,
    /// The answer sent, if any.
    pub response: Option<&'a Response>,
    pub peer: Peer,
    /// The request's method and path, when its head was read.
    pub request: Option<&'a str>,
    /// Whether a request had started ([`Service::request_started`] was called).
    pub started: bool,
}

/// What the head of a request calls for, decided before its body is read.
#[derive(Debug)]
pub(crate) enum HeadVerdict {
    /// Read the body, then hand the request to [`Service::call`]; with
    /// `Expect: 100-continue`, the client is told to send it.
    ReadBody,
    /// Answer now. A body is not read: the connection closes after the answer.
    Answer(Response),
}

/// Where a later answer goes: the core that owns the connection.
pub(crate) trait AnswerLater: Send + Sync {
    /// Answers the request of the connection at `home` (if it is still open).
    fn answer(&self, home: Home, response: Response);
}

/// The way back to a request's connection, for an answer that comes after
/// [`Service::call`] returned (when the event is on disk, say). Cheap to
/// make; kept only when [`keep`](Self::keep) is called.
pub(crate) struct Later {
    target: Arc<dyn AnswerLater>,
    home: Home,
    /// Kept by the service: dropping it unanswered answers 500.
    armed: bool,
}

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Later")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

impl Later {
    pub fn new(target: Arc<dyn AnswerLater>, home: Home) -> Self {
        Self {
            target,
            home,
            armed: false,
        }
    }

    /// The service keeps it to answer later: from now on it must be used
    /// (dropped unused, it answers 500 rather than leave the client waiting).
    pub fn keep(mut self) -> Self {
        self.armed = true;
        self
    }

    /// Answers the request, from any thread.
    pub fn send(mut self, response: Response) {
        self.armed = false;
        self.target.answer(self.home, response);
    }
}

impl Drop for Later {
    fn drop(&mut self) {
        if self.armed {
            self.armed = false;
            let response = Response::error(500, "the request was dropped unanswered");
            self.target.answer(self.home, response);
        }
    }
}

/// What the HTTP core serves. Called from the core's threads, concurrently.
pub(crate) trait Service: Send + Sync + 'static {
    /// A request's head has arrived (its body has not been read).
    /// Quick: runs on the thread that reads the connection.
    fn head(&self, head: &RequestHead, peer: Peer, draining: bool) -> HeadVerdict;

    /// A complete request. May block: runs on a worker thread, off the
    /// loop. Returns the answer, or `None` after keeping `later` (see
    /// [`Later::keep`]) to answer through it when the answer is known.
    fn call(&self, request: &Request<'_>, later: Later) -> Option<Response>;

    /// The first byte of a request arrived.
    fn request_started(&self);

    /// The core refused or lost a request (or a connection) on its own.
    fn refused(&self, refusal: &Refusal<'_>);

    /// A connection was accepted.
    fn connection_opened(&self);

    /// A connection was closed.
    fn connection_closed(&self);

    /// Something went wrong outside any request (accepting, the open-file
    /// limit); rate-limited like rejections.
    fn warn(&self, message: &str);
}
