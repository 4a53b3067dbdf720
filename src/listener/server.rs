//! The running listener: the accept thread, connection threads, workers, and
//! their orderly shutdown.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::connection;
use super::delivery::Delivery;
use super::limits::{join_before, Deadline, Limits};
use super::stats::{Counters, ListenerStats, Outcome};
use super::workers::{Job, Processor};
use crate::sync::lock;

/// Stack size of connection threads: they parse HTTP, never run user code.
const CONNECTION_STACK: usize = 256 * 1024;
/// How long `shutdown` waits for the accept thread to notice.
const ACCEPT_STOP_WAIT: Duration = Duration::from_secs(2);

/// State shared by every thread of one listener.
pub(crate) struct Shared {
    pub counters: Arc<Counters>,
    pub limits: Limits,
    pub path: String,
    pub stopping: AtomicBool,
    /// The way into the worker queue; taken away at shutdown.
    jobs: Mutex<Option<SyncSender<Job>>>,
    /// In queued modes, requests are verified and stored by their own
    /// connection thread with this processor (no hand-off to a worker: storing
    /// is quick, and the handler runs later on the handler threads).
    pub direct: Option<Arc<Processor>>,
    /// Open connections: a handle on each socket (to stop reading at shutdown) and its thread.
    connections: Mutex<HashMap<u64, OpenConnection>>,
}

struct OpenConnection {
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
}

impl Shared {
    pub fn new(
        counters: Arc<Counters>,
        limits: Limits,
        path: String,
        jobs: SyncSender<Job>,
        direct: Option<Arc<Processor>>,
    ) -> Self {
        Self {
            counters,
            limits,
            path,
            stopping: AtomicBool::new(false),
            jobs: Mutex::new(Some(jobs)),
            direct,
            connections: Mutex::new(HashMap::new()),
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
    shared: Arc<Shared>,
    threads: Option<Threads>,
}

struct Threads {
    acceptor: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    delivery: Arc<dyn Delivery>,
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
    /// Asks the listener to stop accepting and shut down; returns at once.
    /// The thread blocked in [`WebhookListener::join`] then finishes the
    /// graceful shutdown and returns.
    pub fn shutdown(&self) {
        request_stop(&self.shared, self.wake);
    }
}

fn request_stop(shared: &Shared, wake: SocketAddr) {
    if shared.stopping.swap(true, Ordering::AcqRel) {
        return;
    }
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
        delivery: Arc<dyn Delivery>,
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
            threads: Some(Threads {
                acceptor,
                workers,
                delivery,
            }),
        })
    }

    /// How verified events are delivered (`None` once shut down).
    pub(crate) fn delivery(&self) -> Option<&dyn Delivery> {
        self.threads.as_ref().map(|t| &*t.delivery)
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

    /// Stops accepting connections, lets requests in flight finish (their
    /// handlers complete and their answers are sent), closes idle
    /// connections, joins every thread, and returns the final counters.
    ///
    /// In the queued [delivery modes](super::DeliveryMode) it then drains the
    /// queue for up to the [`drain_timeout`](super::WebhookListenerBuilder::drain_timeout):
    /// what is not handled by then stays in the journal (durable) or is
    /// dropped, logged and counted in [`ListenerStats::dropped`] (in memory).
    pub fn shutdown(mut self) -> ListenerStats {
        self.stop_and_wait();
        self.stats()
    }

    /// Blocks until the listener is stopped through a [`ShutdownHandle`], then
    /// finishes the graceful shutdown and returns the final counters.
    pub fn join(mut self) -> ListenerStats {
        if let Some(threads) = self.threads.take() {
            let _ = threads.acceptor.join();
            drain(&self.shared, threads.workers, &*threads.delivery);
        }
        self.stats()
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
        drain(&self.shared, threads.workers, &*threads.delivery);
    }
}

impl Drop for WebhookListener {
    fn drop(&mut self) {
        self.stop_and_wait();
    }
}

/// After the accept thread is gone: end every connection (idle ones at once,
/// busy ones after their answer), then let the workers run dry and join them,
/// then let the delivery finish what it queued.
fn drain(shared: &Shared, workers: Vec<JoinHandle<()>>, delivery: &dyn Delivery) {
    shared.stopping.store(true, Ordering::Release);
    drop(lock(&shared.jobs).take());
    let open: Vec<OpenConnection> = lock(&shared.connections).drain().map(|(_, c)| c).collect();
    for connection in &open {
        // A blocked read returns at once; an answer being prepared is still written.
        let _ = connection.stream.shutdown(Shutdown::Read);
    }
    for mut connection in open {
        if let Some(thread) = connection.thread.take() {
            let _ = thread.join();
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
    delivery.finish();
    log::info!("webhook listener stopped");
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
    if shared.stopping.load(Ordering::Acquire) {
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
    log::warn!("too many open connections; turning {peer} away with 503");
    shared.counters.record(Outcome::Saturated);
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let body = r#"{"status":"error","message":"the listener is saturated; retry later"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}
