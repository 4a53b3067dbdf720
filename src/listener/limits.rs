//! The bounds the listener puts on every connection: sizes, times, counts.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Default largest accepted request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default largest request head (request line and headers): 16 KiB.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default longest wait for a single socket read (and for the next request on an idle keep-alive connection).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest time a whole request (head and body) may take to arrive once it has started.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest wait for a single socket write.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on open connections (lowered to what the open-file limit allows).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default longest wait for the first byte of a request: on a new connection, and
/// between requests on a keep-alive connection.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default longest time from a request's first byte to the end of its head.
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default budget for request bytes buffered across all connections: 64 MiB.
pub(crate) const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 << 20;

/// Every bound the listener enforces, as configured on the builder.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_body_bytes: usize,
    pub max_head_bytes: usize,
    pub read_timeout: Duration,
    pub request_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    /// `None`: half the effective connection cap.
    pub max_connections_per_peer: Option<usize>,
    pub idle_timeout: Duration,
    pub header_timeout: Duration,
    pub max_buffered_bytes: usize,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub queue_capacity: usize,
}

impl Limits {
    /// The defaults for `workers` worker threads.
    pub fn for_workers(workers: usize) -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            read_timeout: DEFAULT_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            trusted_proxies: Vec::new(),
            queue_capacity: default_queue_capacity(workers),
        }
    }
}

/// Events waiting for a worker, beyond which the listener answers 503.
pub(crate) fn default_queue_capacity(workers: usize) -> usize {
    workers.saturating_mul(16).max(64)
}

/// An instant to finish by: a whole request's arrival, a retry's backoff, the
/// drain at shutdown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        // A duration too large to add is as good as no deadline.
        let now = Instant::now();
        Self(
            now.checked_add(after)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
        )
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }

    /// The time left, or `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }
}

/// Joins `thread` if it ends before `deadline`; returns `false`, leaving it
/// running, when it does not.
pub(crate) fn join_before(thread: JoinHandle<()>, deadline: Deadline) -> bool {
    while !thread.is_finished() && !deadline.passed() {
        thread::sleep(Duration::from_millis(2));
    }
    if thread.is_finished() {
        let _ = thread.join();
        true
    } else {
        false
    }
}
