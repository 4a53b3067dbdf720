//! The listener's HTTP/1.1 core. It knows nothing of webhooks: complete
//! requests go in and responses come out through one seam, [`Service`].
//!
//! - `reactor`: the event loops (`mio`), their threads, the supervisor;
//! - `conn`: one connection's state machine over a [`Transport`];
//! - `table`: every connection's class, the caps, timeouts, shedding and the
//!   buffered-bytes budget;
//! - `parse`: request heads (with `httparse`), framing, chunked bodies;
//! - `response`: what is written back;
//! - `tls`: HTTPS over a non-blocking socket (feature `tls`);
//! - `clock`: where time comes from (injectable for tests and fuzzing).

mod clock;
mod conn;
mod limits;
mod net;
mod parse;
mod reactor;
mod response;
mod service;
mod table;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub(crate) use clock::SystemClock;
pub(crate) use limits::{default_queue_capacity, Limits};
pub(crate) use parse::RequestHead;
pub(crate) use reactor::{DrainHandle, Server, ServerConfig};
pub(crate) use response::Response;
pub(crate) use service::{HeadVerdict, Later, Peer, Refusal, RefusalKind, Request, Service};
#[cfg(feature = "tls")]
pub(crate) use tls::TlsSource;

/// What the fuzz target and the unit tests drive: the production connection
/// state machine over in-memory bytes, with a clock moved by hand.
#[cfg(any(test, fuzzing))]
pub(crate) mod testing {
    pub(crate) use super::clock::{Clock, ManualClock};
    pub(crate) use super::conn::{Conn, ConnLimits, Env, Next};
    pub(crate) use super::limits::LINGER_TIME;
    pub(crate) use super::service::AnswerLater;
    pub(crate) use super::table::{Admission, Doom, Home, Table, TableLimits};
    pub(crate) use super::transport::Memory;
}
