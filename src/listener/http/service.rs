//! The one seam between the HTTP core and what it serves: complete requests
//! in, responses out, and a word about every request the core refused or
//! lost on its own.

use std::net::{IpAddr, SocketAddr};

use super::parse::RequestHead;
use super::response::Response;

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

/// What the HTTP core serves. Called from the core's threads, concurrently.
pub(crate) trait Service: Send + Sync + 'static {
    /// A request's head has arrived (its body has not been read).
    /// Quick: runs on the thread that reads the connection.
    fn head(&self, head: &RequestHead, peer: Peer, draining: bool) -> HeadVerdict;

    /// A complete request. May block: runs on a worker thread, off the loop.
    fn call(&self, request: &Request<'_>) -> Response;

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
