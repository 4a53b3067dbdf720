//! The bounds the HTTP core keeps: sizes, times, counts, memory.

use std::net::IpAddr;
use std::time::Duration;

/// Default largest accepted request body: 1 MiB.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default largest request head (request line and headers): 16 KiB.
pub(crate) const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default longest wait for the first byte of a request.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default longest time from a request's first byte to the end of its head.
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest time from a request's first byte to the end of its body.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest wait for the client to take an answer.
pub(crate) const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on open connections (lowered to what the open-file limit allows).
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default budget for request bytes buffered across all connections: 64 MiB.
pub(crate) const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 << 20;
/// How long a closing connection discards what the client still sends.
pub(crate) const LINGER_TIME: Duration = Duration::from_millis(250);

/// Every bound the core enforces, as configured on the builder.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_body_bytes: usize,
    pub max_head_bytes: usize,
    pub idle_timeout: Duration,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    /// `None`: half the effective connection cap.
    pub max_connections_per_peer: Option<usize>,
    pub max_buffered_bytes: usize,
    pub trusted_proxies: Vec<IpAddr>,
    /// Complete requests waiting for a free worker, beyond which they are answered 503.
    pub queue_capacity: usize,
}

impl Limits {
    /// The defaults for `workers` worker threads.
    pub fn for_workers(workers: usize) -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: None,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            trusted_proxies: Vec::new(),
            queue_capacity: default_queue_capacity(workers),
        }
    }
}

/// Requests waiting for a free worker, beyond which the listener answers
/// 503: waiting costs a sender little, a 503 may cost it the event (their
/// bytes stay under the buffered-bytes budget either way).
pub(crate) fn default_queue_capacity(workers: usize) -> usize {
    workers.saturating_mul(64).max(1024)
}
