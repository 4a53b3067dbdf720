//! The running listener: the accept thread, connection threads, workers, and
//! their orderly shutdown.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::connection;
use super::delivery::Delivery;
use super::limits::{join_before, Deadline, Limits};
use super::rejections::RejectionLog;
use super::routing::Health;
use super::stats::{Counters, ListenerStats, Outcome};
use super::workers::{Job, Processor};
use crate::sync::{lock, wait_timeout};

/// Stack size of connection threads: they parse HTTP, never run user code.
const CONNECTION_STACK: usize = 256 * 1024;
/// How long `shutdown` waits for the accept thread to notice.
const ACCEPT_STOP_WAIT: Duration = Duration::from_secs(2);
/// How long past the drain deadline shutdown still waits for connection
/// threads to write their last answer before leaving them behind.
const CONNECTION_GRACE: Duration = Duration::from_millis(500);

/// State shared by every thread of one listener.
pub(crate) struct Shared {
    pub counters: Arc<Counters>,
    pub limits: Limits,
    pub path: String,
    /// Shutdown has begun: nothing new is accepted.
    pub stopping: AtomicBool,
    /// Shutdown was told not to wait for work in progress (the second signal).
    pub urgent: AtomicBool,
    /// Requests whose body was read and that are being verified, stored or
    /// handled right now; shutdown waits for them to be answered.
    pub processing: AtomicUsize,
    /// The rate-limited `warn` lines for rejected requests.
    pub rejections: RejectionLog,
    /// Where verified events go (inline handler, queue or journal).
    pub delivery: Arc<dyn Delivery>,
    /// How long shutdown waits for work in progress.
    pub drain_timeout: Duration,
    started: Instant,
    /// Set with `stopping`, for [`WebhookListener::join`] to wait on.
    stop_requested: Mutex<bool>,
    stop_changed: Condvar,
    /// The way into the worker queue; taken away at shutdown.
    jobs: Mutex<Option<SyncSender<Job>>>,
    /// In queued modes, requests are verified and stored by their own
    /// connection thread with this processor (no hand-off to a worker: storing
    /// is quick, and the handler runs later on the handler threads).
    pub direct: Option<Arc<Processor>>,
    /// Open connections: a handle on each socket (to stop reading at shutdown) and its thread.
    connections: Mutex<HashMap<u64, OpenConnection>>,
    /// HTTPS: connections are served over TLS with this configuration.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

struct OpenConnection {
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
}

/// How [`Shared`] is made: everything but the state that starts empty.
pub(crate) struct SharedParts {
    pub counters: Arc<Counters>,
    pub limits: Limits,
    pub path: String,
    pub jobs: SyncSender<Job>,
    pub direct: Option<Arc<Processor>>,
    pub delivery: Arc<dyn Delivery>,
    pub drain_timeout: Duration,
}

impl Shared {
    pub fn new(parts: SharedParts) -> Self {
        Self {
            counters: parts.counters,
            limits: parts.limits,
            path: parts.path,
            stopping: AtomicBool::new(false),
            urgent: AtomicBool::new(false),
            processing: AtomicUsize::new(0),
            rejections: RejectionLog::default(),
            delivery: parts.delivery,
            drain_timeout: parts.drain_timeout,
            started: Instant::now(),
            stop_requested: Mutex::new(false),
            stop_changed: Condvar::new(),
            jobs: Mutex::new(Some(parts.jobs)),
            direct: parts.direct,
            connections: Mutex::new(HashMap::new()),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Whether connections are served over TLS.
    #[cfg(feature = "tls")]
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether connections are served over TLS: never without feature `tls`.
    #[cfg(not(feature = "tls"))]
    pub fn is_tls(&self) -> bool {
        false
    }

    /// Whether shutdown has begun.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// What `GET /healthz` reports now: a failed journal first, then draining.
    pub fn health(&self) -> Health {
        if let Some(error) = self.delivery.failure() {
            Health::JournalFailed(error)
        } else if self.stopping() {
            Health::Draining
        } else {
            Health::Ok
        }
    }
}

/// A running webhook listener, returned by
/// [`WebhookListenerBuilder::spawn`](super::WebhookListenerBuilder::spawn).
///
/// Dropping it shuts the listener down gracefully, like [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct WebhookListener {
    local_addr: SocketAddr,
    pub(super) shared: Arc<Shared>,
    threads: Option<Threads>,
    /// Stops the listener on SIGTERM/SIGINT while set.
    #[cfg(all(feature = "signals", unix))]
    signals: Option<crate::signals::SignalWatch>,
}

struct Threads {
    acceptor: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("path", &self.path)
            .field("stopping", &self.stopping)
            .finish_non_exhaustive()
    }
}

/// Stops a [`WebhookListener`] from another thread (a signal handler thread,
/// an admin endpoint). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    wake: SocketAddr,
}

impl ShutdownHandle {
    /// Asks the listener to stop accepting and shut down gracefully; returns
    /// at once. The thread blocked in [`WebhookListener::join`] then finishes
    /// the graceful shutdown (up to the
    /// [`drain_timeout`](super::WebhookListenerBuilder::drain_timeout)) and returns.
    pub fn shutdown(&self) {
        request_stop(&self.shared, self.wake);
    }

    /// Like [`shutdown`](Self::shutdown), and cuts the drain deadline to
    /// zero, also when a graceful shutdown is already under way: what the
    /// second SIGTERM does under `run_until_signal` (see
    /// [Stopping](super#stopping)). Work in
    /// progress is not waited for: durable mode leaves pending events in the
    /// journal (handed to the handler at the next start), the in-memory
    /// queue counts them in [`ListenerStats::dropped`]; requests still
    /// running are left unanswered (the sender sees the connection close,
    /// never a 200 for an event that is then lost). Returns at once.
    pub fn shutdown_now(&self) {
        self.shared.urgent.store(true, Ordering::Release);
        self.shared.delivery.hurry();
        request_stop(&self.shared, self.wake);
    }
}

fn request_stop(shared: &Shared, wake: SocketAddr) {
    if shared.stopping.swap(true, Ordering::AcqRel) {
        return;
    }
    *lock(&shared.stop_requested) = true;
    shared.stop_changed.notify_all();
    // Unblock the accept thread with a connection to ourselves; it sees `stopping` and exits.
    if let Err(e) = TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
        log::debug!("could not wake the accept thread ({e}); it stops at its next connection");
    }
}

/// Where to connect to reach a listener bound to `addr` (a wildcard address is reached on loopback).
fn wake_address(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

impl WebhookListener {
    pub(crate) fn start(
        listener: TcpListener,
        shared: Arc<Shared>,
        workers: Vec<JoinHandle<()>>,
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("wasender-accept".to_owned())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Self {
            local_addr,
            shared,
            threads: Some(Threads { acceptor, workers }),
            #[cfg(all(feature = "signals", unix))]
            signals: None,
        })
    }

    /// How verified events are delivered (`None` once shut down).
    pub(crate) fn delivery(&self) -> Option<&dyn Delivery> {
        self.threads.as_ref().map(|_| &*self.shared.delivery)
    }

    /// The address the listener is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters as they are now.
    pub fn stats(&self) -> ListenerStats {
        self.shared.counters.snapshot()
    }

    /// A handle that stops this listener from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
            wake: wake_address(self.local_addr),
        }
    }

    /// Shuts down gracefully, joins every thread, and returns the final counters:
    ///
    /// 1. stops accepting connections (the port is closed);
    /// 2. lets requests in flight finish: their handlers complete (inline)
    ///    or their events are stored (queued modes), and their answers are
    ///    sent, with `Connection: close`. Meanwhile open keep-alive
    ///    connections stay up, and a request arriving on one is answered at
    ///    once and the connection closed: `GET /healthz` with 503
    ///    `draining`, a webhook with 503 and `Retry-After`;
    /// 3. in the queued [delivery modes](super::DeliveryMode), drains the
    ///    queue: what is not handled by the end of the
    ///    [`drain_timeout`](super::WebhookListenerBuilder::drain_timeout)
    ///    (counted from step 1) stays in the journal (durable) or is dropped,
    ///    logged and counted in [`ListenerStats::dropped`] (in memory);
    /// 4. closes the remaining connections.
    ///
    /// A handler still running at the drain deadline is left behind on its
    /// thread (its request is not answered, so the sender may retry).
    /// [`ShutdownHandle::shutdown_now`] cuts steps 2 and 3 short.
    pub fn shutdown(mut self) -> ListenerStats {
        self.stop_and_wait();
        self.stats()
    }

    /// Blocks until the listener is stopped through a [`ShutdownHandle`] (or
    /// a signal, with `shutdown_on_signals(true)`: see [Stopping](super#stopping)),
    /// then finishes the graceful shutdown like [`shutdown`](Self::shutdown)
    /// and returns the final counters.
    pub fn join(mut self) -> ListenerStats {
        if let Some(threads) = &self.threads {
            let mut stopped = lock(&self.shared.stop_requested);
            // The accept thread ends only at shutdown; checked in case it died.
            while !*stopped && !threads.acceptor.is_finished() {
                stopped =
                    wait_timeout(&self.shared.stop_changed, stopped, Duration::from_secs(1)).0;
            }
        }
        self.stop_and_wait();
        self.stats()
    }

    /// Blocks until SIGTERM or SIGINT (Ctrl-C), then shuts down gracefully
    /// like [`shutdown`](Self::shutdown) and returns the final counters.
    /// Feature `signals` (on by default), Unix only.
    ///
    /// While it runs, a second SIGTERM or SIGINT stops at once
    /// ([`ShutdownHandle::shutdown_now`]): durable mode leaves the pending
    /// events in the journal for the next start; the in-memory queue drops
    /// them, logs it and counts them in [`ListenerStats::dropped`]. Each
    /// signal is logged at `info`/`warn`.
    ///
    /// The handlers are installed by this call (with
    /// [`signal-hook`](https://docs.rs/signal-hook), which chains with
    /// handlers installed before) and removed before it returns, so the
    /// rest of your program keeps control of its signals. `signal-hook`
    /// cannot put back the operating system's default action: after this
    /// returns, SIGTERM and SIGINT are ignored unless you install a handler
    /// of your own, so return from `main` (or exit) soon after. See the
    /// [module docs](super#stopping) for service managers and containers.
    ///
    /// Errors: [`WasenderError::Io`](crate::WasenderError::Io) when the
    /// handlers cannot be installed; the listener is then shut down.
    ///
    /// ```no_run
    /// # use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = std::convert::Infallible; }
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
    ///     .bind("0.0.0.0:3000")
    ///     .spawn()?;
    /// let stats = listener.run_until_signal()?; // `kill -TERM <pid>` or Ctrl-C
    /// println!("handled {} events", stats.handled);
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    #[cfg(all(feature = "signals", unix))]
    pub fn run_until_signal(mut self) -> crate::Result<ListenerStats> {
        self.watch_signals()?;
        Ok(self.join())
    }

    /// Starts stopping this listener on SIGTERM/SIGINT, unless it already does.
    #[cfg(all(feature = "signals", unix))]
    pub(crate) fn watch_signals(&mut self) -> std::io::Result<()> {
        if self.signals.is_none() {
            let graceful = self.shutdown_handle();
            let now = self.shutdown_handle();
            let watch = crate::signals::SignalWatch::start(
                self.shared.drain_timeout,
                move || graceful.shutdown(),
                move || now.shutdown_now(),
            )?;
            self.signals = Some(watch);
        }
        Ok(())
    }

    fn stop_and_wait(&mut self) {
        let Some(threads) = self.threads.take() else {
            return;
        };
        request_stop(&self.shared, wake_address(self.local_addr));
        if !join_before(threads.acceptor, Deadline::after(ACCEPT_STOP_WAIT)) {
            log::warn!(
                "the accept thread did not stop in time; leaving it to exit on its next connection"
            );
        }
        drain(&self.shared, threads.workers);
        // Only now: a second signal must still reach the drain.
        #[cfg(all(feature = "signals", unix))]
        if let Some(watch) = self.signals.take() {
            watch.stop();
        }
    }
}

impl Drop for WebhookListener {
    fn drop(&mut self) {
        self.stop_and_wait();
    }
}

/// After the accept thread is gone: wait for the requests being processed,
/// let the delivery drain its queue, then end every connection and join the
/// connection threads and workers; everything bounded by the drain deadline
/// (cut short when shutdown turns urgent).
fn drain(shared: &Shared, workers: Vec<JoinHandle<()>>) {
    shared.stopping.store(true, Ordering::Release);
    let began = Instant::now();
    let deadline = Deadline::after(shared.drain_timeout);
    drop(lock(&shared.jobs).take());
    let answered = wait_while(deadline, shared, || {
        shared.processing.load(Ordering::Acquire) > 0
    });
    if !answered {
        log::warn!(
            "{} request(s) still being processed when shutdown stopped waiting; left unanswered",
            shared.processing.load(Ordering::Acquire)
        );
    }
    shared.delivery.finish(deadline);
    // Threads writing a last answer get a short grace past the deadline.
    let grace = Deadline::after(
        deadline
            .remaining()
            .unwrap_or_default()
            .saturating_add(CONNECTION_GRACE),
    );
    let open: Vec<OpenConnection> = lock(&shared.connections).drain().map(|(_, c)| c).collect();
    for connection in &open {
        // A blocked read returns at once; an answer being prepared is still written.
        let _ = connection.stream.shutdown(Shutdown::Read);
    }
    let mut left = 0;
    for mut connection in open {
        if let Some(thread) = connection.thread.take() {
            left += usize::from(!join_within(thread, grace, shared));
        }
    }
    for worker in workers {
        left += usize::from(!join_within(worker, grace, shared));
    }
    if left > 0 {
        log::warn!("{left} connection or worker thread(s) left running inside a handler");
    }
    shared.rejections.flush();
    let stats = shared.counters.snapshot();
    log::info!(
        "webhook listener stopped in {:.1?} after {:.0?}: {} request(s), {} event(s) handled, \
         {} queued, {} rejected, {} handler error(s), {} dead-lettered, {} dropped",
        began.elapsed(),
        shared.started.elapsed(),
        stats.received,
        stats.handled,
        stats.queued,
        stats.rejected(),
        stats.handler_errors + stats.handler_panics,
        stats.dead_lettered,
        stats.dropped
    );
}

/// Polls `busy` until it is false (`true`), or the deadline passes or
/// shutdown turns urgent (`false`).
fn wait_while(deadline: Deadline, shared: &Shared, busy: impl Fn() -> bool) -> bool {
    loop {
        if !busy() {
            return true;
        }
        if deadline.passed() || shared.urgent.load(Ordering::Acquire) {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Joins `thread` if it ends before `deadline` and before shutdown turns
/// urgent; otherwise leaves it running and returns `false`.
fn join_within(thread: JoinHandle<()>, deadline: Deadline, shared: &Shared) -> bool {
    if wait_while(deadline, shared, || !thread.is_finished()) {
        let _ = thread.join();
        true
    } else {
        false
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut next_id: u64 = 0;
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                next_id += 1;
                admit(stream, peer, next_id, shared);
            }
            Err(e) => match e.kind() {
                ErrorKind::Interrupted
                | ErrorKind::ConnectionAborted
                | ErrorKind::ConnectionReset => {}
                _ => {
                    // Typically out of file descriptors: back off instead of spinning.
                    log::warn!("accepting a connection failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                }
            },
        }
    }
}

/// Starts a thread for a new connection, or turns it away with 503 when too many are open.
fn admit(stream: TcpStream, peer: SocketAddr, id: u64, shared: &Arc<Shared>) {
    let Some(jobs) = lock(&shared.jobs).clone() else {
        return;
    };
    let mut open = lock(&shared.connections);
    // Checked under the lock: once shutdown has drained the map, nothing new gets in.
    if shared.stopping() {
        return;
    }
    if open.len() >= shared.limits.max_connections {
        drop(open);
        turn_away(stream, peer, shared);
        return;
    }
    let Ok(handle) = stream.try_clone() else {
        return;
    };
    let thread_shared = Arc::clone(shared);
    shared.counters.connection_opened();
    let spawned = thread::Builder::new()
        .name("wasender-conn".to_owned())
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            connection::serve(stream, peer, &thread_shared, &jobs);
            drop(jobs);
            thread_shared.counters.connection_closed();
            lock(&thread_shared.connections).remove(&id);
        });
    match spawned {
        // The lock is still held, so the thread cannot remove its entry before it exists.
        Ok(thread) => {
            open.insert(
                id,
                OpenConnection {
                    stream: handle,
                    thread: Some(thread),
                },
            );
        }
        Err(e) => {
            shared.counters.connection_closed();
            drop(open);
            log::warn!("could not start a connection thread: {e}");
            turn_away(handle, peer, shared);
        }
    }
}

fn turn_away(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    shared
        .rejections
        .warn(peer, None, 503, "too many open connections");
    shared.counters.record(Outcome::Saturated);
    if shared.is_tls() {
        // A TLS client could not read a plain answer, and a handshake would
        // cost what the cap saves: just close.
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    shared.counters.answered(503);
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let body = r#"{"status":"error","message":"the listener is saturated; retry later"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}
