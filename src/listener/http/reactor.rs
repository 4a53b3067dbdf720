//! The event-driven core: a few event loops serving every connection, run
//! by a small pool of threads that also run the service.
//!
//! **Cores.** A *core* is a `mio::Poll` with the connections it owns. There
//! is one per CPU but one (at least one, at most one per worker): the CPU
//! left over is for the handlers and the rest of the machine. An event loop
//! that shares its CPU with another busy thread is preempted for whole time
//! slices, and every connection it owns waits that long: on 2 CPUs with the
//! load generator beside it, two loops answered 128 busy connections with a
//! p99 of 5.3–6.1 ms, one loop with 1.6–1.8 ms and 1.4× the events/s. The
//! listening socket is
//! registered in every core; a core that accepts a connection gives it to
//! the core with the fewest connections. A connection that sends nothing, or
//! trickles, costs its small buffers and an entry in the [`Table`], not a
//! thread.
//!
//! **No hop on the way to the handler.** The thread running a core drives
//! its connections; when one has a complete request, that same thread runs
//! it through the service (verification, parsing, the handler in inline
//! mode), then writes the answer: no queue, no other thread, no reply
//! channel. Around the service call it lets go of the core, so that a slow
//! handler stalls only its own request: if the core stays without a thread
//! for a few milliseconds, the supervisor hands it to a spare thread (as
//! Go's runtime hands a processor blocked in a system call to another
//! thread, and as tokio's `block_in_place` hands over a worker's core), and
//! the answer reaches the core through its inbox. With fast handlers
//! nothing is handed over and no thread is woken per request.
//!
//! **A short spin before sleeping.** After its last event a loop keeps
//! polling without blocking for [`SPIN`] (50 µs) before it sleeps in
//! `epoll_wait`: keep-alive traffic that follows within that time is taken
//! without the cost of waking a sleeping thread (tens of microseconds on a
//! virtual machine; at 2 connections it halved the round trip). A loop
//! costs at most that much CPU per burst of traffic and none when idle.
//!
//! **Bounded work.** At most `workers` requests are being processed at once
//! (so `cores` threads are always free to run the cores); a complete
//! request beyond that waits in a bounded queue, taken by the next thread
//! to finish, and past the queue's capacity it is answered 503.
//!
//! **The supervisor** is one more thread. Every few milliseconds while
//! connections are open it sweeps the table for timeouts (dooming what is
//! due; the owning core closes it) and looks for cores left without a
//! thread; it sleeps otherwise.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::mem;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use super::clock::Clock;
use super::conn::{Conn, ConnLimits, Env, Job, Next};
use super::limits::Limits;
use super::net::NetStream;
use super::response::Response;
use super::service::{AnswerLater, Later, Peer, Refusal, RefusalKind, Service};
use super::table::{Admission, Doom, Home, Key, Table, TableLimits};
use super::transport::{Plain, Transport};
use crate::handler::ThreadGroup;
use crate::sync::{lock, wait, wait_timeout};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);
/// Where each thread reads into.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Connections accepted per turn before the core serves the others.
const ACCEPT_BATCH: usize = 64;
/// Connections driven from a core's ready list per turn.
const READY_BATCH: usize = 64;
/// How long an event loop keeps polling without sleeping after its last
/// event: a request that follows within this time (keep-alive traffic) is
/// picked up without the cost of waking a sleeping thread.
const SPIN: Duration = Duration::from_micros(50);
/// How long a core may go without a thread before a spare takes it.
const RESCUE_AFTER: Duration = Duration::from_millis(10);
/// When processing a request takes this long on average (waiting on a disk
/// or a network: the durable journal's `fsync`, Redis, a slow handler), a
/// thread hands its core to a spare as it starts, instead of after
/// [`RESCUE_AFTER`]: requests then wait on the disk side by side.
const EAGER_HANDOFF: Duration = Duration::from_micros(200);
/// The supervisor's tick while connections are open.
const TICK: Duration = Duration::from_millis(5);
/// The supervisor's longest sleep.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// How long accepting pauses when the process is out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Descriptors kept free for everything but connections (journal, handler, logs).
const DESCRIPTOR_RESERVE: u64 = 64;

/// How to run the core.
pub(crate) struct ServerConfig {
    pub limits: Limits,
    /// Requests processed at once (threads beyond the cores').
    pub workers: usize,
    /// How many cores; `None`: one per CPU but one, at most `workers`.
    pub event_loops: Option<usize>,
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub clock: Arc<dyn Clock>,
}

/// What a core's inbox brings: work from other threads.
enum Msg {
    /// A connection another core accepted for this one.
    Adopt {
        home: Home,
        stream: mio::net::TcpStream,
        peer: Peer,
    },
    /// The table doomed a connection.
    Doom(Home, Doom),
    /// The answer to a request processed away from the core (with its
    /// body buffer, when it comes back with it).
    Completion {
        home: Home,
        body: Option<Vec<u8>>,
        response: Response,
    },
    /// Drive this connection (a readiness event the previous thread did not get to).
    Ready(Key, Readiness),
    /// Try accepting again (after a pause).
    Accept,
}

/// What a readiness event said of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// Only that it can be written to.
    Writable,
    /// That it has bytes to read.
    Readable,
    /// That the peer closed its side (or the socket failed).
    Closed,
}

/// One event loop and its connections.
struct Core {
    poll: Poll,
    /// By table key (the `mio` token).
    conns: Vec<Option<Box<Conn<NetStream>>>>,
    /// Connections to drive again (they yielded their turn).
    ready: VecDeque<Key>,
    /// The listening socket may hold more connections to accept.
    accept_more: bool,
    closed: bool,
}

impl Core {
    /// The open connection under `key`.
    fn conn(&mut self, key: Key) -> Option<&mut Conn<NetStream>> {
        self.conns.get_mut(key).and_then(Option::as_deref_mut)
    }

    /// The connection `home` names, unless it has closed (and its key been reused).
    fn conn_of(&mut self, home: Home) -> Option<&mut Conn<NetStream>> {
        self.conn(home.key).filter(|c| c.home == home)
    }
}

/// A core and what other threads need of it without holding it.
struct CoreCell {
    core: Mutex<Core>,
    inbox: Mutex<Vec<Msg>>,
    waker: Waker,
    /// When its thread left it to process a request (ms since start, plus
    /// one); 0 while a thread runs it.
    left_at: AtomicU64,
    /// A spare has been asked to take it.
    rescue_asked: AtomicBool,
    conns: AtomicUsize,
    closed: AtomicBool,
}

impl CoreCell {
    fn post(&self, msg: Msg) {
        lock(&self.inbox).push(msg);
        if let Err(e) = self.waker.wake() {
            log::debug!("could not wake a core: {e}");
        }
    }
}

/// A request waiting for a free worker.
struct QueuedJob {
    home: Home,
    peer: Peer,
    job: Job,
}

#[derive(Default)]
struct Spares {
    /// Threads waiting for a core.
    waiting: usize,
    /// Cores they are asked to take.
    asked: VecDeque<usize>,
}

/// Everything the core's threads share.
struct Shared {
    service: Arc<dyn Service>,
    clock: Arc<dyn Clock>,
    conn_limits: ConnLimits,
    trusted: Vec<IpAddr>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    table: Mutex<Table>,
    cores: Vec<CoreCell>,
    /// One listening socket per core (copies of one descriptor): dropped
    /// together to close the port.
    listeners: Mutex<Vec<Option<mio::net::TcpListener>>>,
    accept_paused_until: Mutex<Option<Instant>>,
    spares: Mutex<Spares>,
    spares_changed: Condvar,
    /// Workers free to process a request.
    permits: AtomicUsize,
    queue: Mutex<VecDeque<QueuedJob>>,
    queue_capacity: usize,
    /// Requests out for processing or waiting for a worker.
    in_flight: AtomicUsize,
    /// How long processing a request takes, on average (ns; a moving average).
    processing_ns: AtomicU64,
    in_flight_lock: Mutex<()>,
    in_flight_done: Condvar,
    draining: AtomicBool,
    closing: AtomicBool,
    supervisor_lock: Mutex<()>,
    supervisor_wake: Condvar,
    started: Instant,
}

/// A running core: its threads, and how to stop them.
pub(crate) struct Server {
    shared: Arc<Shared>,
    /// Every thread of the core; `None` once stopped.
    threads: Option<ThreadGroup>,
    local_addr: SocketAddr,
    connection_cap: usize,
    open_file_limit: Option<u64>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("cores", &self.shared.cores.len())
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// Raises the soft open-file limit to the hard one (as most servers do at
/// start); returns the soft limit now in force.
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            log::warn!("could not read or raise the open-file limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

impl Server {
    /// Starts serving `listener` with `service`.
    pub fn start(
        listener: std::net::TcpListener,
        service: Arc<dyn Service>,
        config: ServerConfig,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let workers = config.workers.max(1);
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        let core_count = config
            .event_loops
            .map_or_else(|| core_count(cpus, workers), |n| n.max(1));
        let thread_count = workers + core_count;
        let open_file_limit = raise_open_file_limit();
        let limits = &config.limits;
        let connection_cap = match open_file_limit {
            Some(limit) => {
                let reserve = DESCRIPTOR_RESERVE + 2 * thread_count as u64;
                let room = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX);
                limits.max_connections.min(room.max(1))
            }
            None => limits.max_connections,
        };
        let per_peer = limits
            .max_connections_per_peer
            .unwrap_or(connection_cap / 2)
            .clamp(1, connection_cap);
        let table = Table::new(TableLimits {
            max_connections: connection_cap,
            max_per_peer: per_peer,
            max_buffered_bytes: limits.max_buffered_bytes,
            idle_timeout: limits.idle_timeout,
            header_timeout: limits.header_timeout,
            request_timeout: limits.request_timeout,
            write_timeout: limits.write_timeout,
            linger_time: super::limits::LINGER_TIME,
        });
        let mut cores = Vec::with_capacity(core_count);
        let mut listeners = Vec::with_capacity(core_count);
        for _ in 0..core_count {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKER)?;
            let mut copy = mio::net::TcpListener::from_std(listener.try_clone()?);
            poll.registry()
                .register(&mut copy, LISTENER, Interest::READABLE)?;
            listeners.push(Some(copy));
            cores.push(CoreCell {
                core: Mutex::new(Core {
                    poll,
                    conns: Vec::new(),
                    ready: VecDeque::new(),
                    accept_more: true,
                    closed: false,
                }),
                inbox: Mutex::new(Vec::new()),
                waker,
                left_at: AtomicU64::new(0),
                rescue_asked: AtomicBool::new(false),
                conns: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
            });
        }
        drop(listener);
        let shared = Arc::new(Shared {
            service,
            clock: config.clock,
            conn_limits: ConnLimits {
                max_head_bytes: limits.max_head_bytes,
                max_body_bytes: limits.max_body_bytes,
            },
            trusted: limits.trusted_proxies.clone(),
            #[cfg(feature = "tls")]
            tls: config.tls,
            table: Mutex::new(table),
            cores,
            listeners: Mutex::new(listeners),
            accept_paused_until: Mutex::new(None),
            spares: Mutex::new(Spares::default()),
            spares_changed: Condvar::new(),
            permits: AtomicUsize::new(workers),
            queue: Mutex::new(VecDeque::new()),
            queue_capacity: limits.queue_capacity,
            in_flight: AtomicUsize::new(0),
            processing_ns: AtomicU64::new(0),
            in_flight_lock: Mutex::new(()),
            in_flight_done: Condvar::new(),
            draining: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            supervisor_lock: Mutex::new(()),
            supervisor_wake: Condvar::new(),
            started: Instant::now(),
        });
        let mut server = Self {
            shared: Arc::clone(&shared),
            threads: Some(ThreadGroup::new()),
            local_addr,
            connection_cap,
            open_file_limit,
        };
        for i in 0..=thread_count {
            let shared = Arc::clone(&shared);
            let first = (i < core_count).then_some(i);
            let (name, body): (String, Box<dyn FnOnce() + Send>) = if i < thread_count {
                (
                    format!("wasender-http-{i}"),
                    Box::new(move || thread_main(&shared, first)),
                )
            } else {
                (
                    "wasender-supervisor".to_owned(),
                    Box::new(move || supervise(&shared)),
                )
            };
            let spawned = match server.threads.as_mut() {
                Some(threads) => threads.spawn(name, body),
                None => Ok(()),
            };
            if let Err(e) = spawned {
                server.stop(Instant::now() + Duration::from_secs(1));
                return Err(e);
            }
        }
        Ok(server)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many event loops (cores) serve the connections.
    pub fn event_loops(&self) -> usize {
        self.shared.cores.len()
    }

    /// The most connections held open: the configured cap, lowered to what
    /// the open-file limit leaves room for.
    pub fn connection_cap(&self) -> usize {
        self.connection_cap
    }

    /// The soft open-file limit in force (after raising it), where known.
    pub fn open_file_limit(&self) -> Option<u64> {
        self.open_file_limit
    }

    /// A handle that begins the drain from any thread.
    pub fn drain_handle(&self) -> DrainHandle {
        DrainHandle(Arc::clone(&self.shared))
    }

    /// Waits until no request is being processed or waits for a worker
    /// (`true`), or until `deadline` or `give_up()` (`false`).
    pub fn wait_idle(&self, deadline: Instant, give_up: &dyn Fn() -> bool) -> bool {
        let shared = &self.shared;
        let mut guard = lock(&shared.in_flight_lock);
        loop {
            if shared.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            let now = Instant::now();
            if give_up() || now >= deadline {
                return false;
            }
            let wait_for = (deadline - now).min(Duration::from_millis(50));
            guard = wait_timeout(&shared.in_flight_done, guard, wait_for).0;
        }
    }

    /// Requests out for processing or waiting for a worker.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Closes every connection and stops every thread, waiting for them
    /// until `deadline`; returns how many were left running (inside the service).
    pub fn stop(&mut self, deadline: Instant) -> usize {
        let shared = &self.shared;
        DrainHandle(Arc::clone(shared)).begin();
        shared.closing.store(true, Ordering::SeqCst);
        for cell in &shared.cores {
            if let Err(e) = cell.waker.wake() {
                log::debug!("could not wake a core: {e}");
            }
        }
        {
            let _spares = lock(&shared.spares);
            shared.spares_changed.notify_all();
        }
        {
            let _supervisor = lock(&shared.supervisor_lock);
            shared.supervisor_wake.notify_all();
        }
        self.threads
            .take()
            .map_or(0, |threads| threads.join_by(deadline))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.threads.is_some() {
            self.stop(Instant::now() + Duration::from_secs(1));
        }
    }
}

/// Begins the drain of a [`Server`] from any thread.
#[derive(Clone)]
pub(crate) struct DrainHandle(Arc<Shared>);

impl std::fmt::Debug for DrainHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainHandle").finish_non_exhaustive()
    }
}

impl DrainHandle {
    /// Stops accepting (the port is closed at once); connections already
    /// open are answered and closed after their current request.
    pub fn begin(&self) {
        let shared = &self.0;
        if shared.draining.swap(true, Ordering::SeqCst) {
            return;
        }
        for listener in lock(&shared.listeners).iter_mut() {
            // Dropping every copy of the descriptor closes the port.
            drop(listener.take());
        }
        let _guard = lock(&shared.in_flight_lock);
        shared.in_flight_done.notify_all();
    }

    /// Wakes whoever waits in [`Server::wait_idle`] (to look at its `give_up`).
    pub fn nudge(&self) {
        let _guard = lock(&self.0.in_flight_lock);
        self.0.in_flight_done.notify_all();
    }
}

impl Shared {
    /// What a connection's steps need of its core, with the running thread's
    /// scratch buffer and doom list.
    fn env<'a>(&'a self, local: &'a mut Local, draining: bool) -> Env<'a> {
        Env {
            table: &self.table,
            service: &*self.service,
            limits: self.conn_limits,
            clock: &*self.clock,
            trusted: &self.trusted,
            scratch: &mut local.scratch,
            draining,
            dooms: &mut local.dooms,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn try_permit(&self) -> bool {
        self.permits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| p.checked_sub(1))
            .is_ok()
    }

    /// A request left processing: wake the drain when it was the last.
    fn finished_one(&self) {
        let before = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .unwrap_or(0);
        if before == 1 && self.draining.load(Ordering::SeqCst) {
            let _guard = lock(&self.in_flight_lock);
            self.in_flight_done.notify_all();
        }
    }

    /// Waits for a core to run: one a spare is asked to take, or at
    /// closing, one nobody closed yet. `None`: nothing left to do.
    fn wait_for_core(&self) -> Option<usize> {
        let mut spares = lock(&self.spares);
        loop {
            if self.closing.load(Ordering::SeqCst) {
                return self
                    .cores
                    .iter()
                    .position(|cell| !cell.closed.load(Ordering::SeqCst));
            }
            if let Some(index) = spares.asked.pop_front() {
                return Some(index);
            }
            spares.waiting += 1;
            spares = wait(&self.spares_changed, spares);
            spares.waiting -= 1;
        }
    }

    /// Counts how long processing a request took, in the moving average.
    fn processed_in(&self, took: Duration) {
        let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let average = self.processing_ns.load(Ordering::Relaxed);
        let updated = average - average / 8 + sample / 8;
        self.processing_ns.store(updated, Ordering::Relaxed);
    }

    /// Whether processing takes long enough to hand a core over as it starts.
    fn hand_off_eagerly(&self) -> bool {
        let threshold = u64::try_from(EAGER_HANDOFF.as_nanos()).unwrap_or(u64::MAX);
        self.processing_ns.load(Ordering::Relaxed) >= threshold
    }

    /// Asks a waiting spare thread, if there is one, to take core `index`.
    fn ask_spare(&self, index: usize) {
        let Some(cell) = self.cores.get(index) else {
            return;
        };
        if cell.rescue_asked.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut spares = lock(&self.spares);
        if spares.waiting > spares.asked.len() {
            spares.asked.push_back(index);
            self.spares_changed.notify_one();
        } else {
            // No thread free: the supervisor asks again at its next tick.
            cell.rescue_asked.store(false, Ordering::SeqCst);
        }
    }

    /// Posts each doomed connection to the core that owns it.
    fn deliver_dooms(&self, dooms: &mut Vec<(Home, Doom)>) {
        for (home, doom) in dooms.drain(..) {
            if let Some(cell) = self.cores.get(home.core) {
                cell.post(Msg::Doom(home, doom));
            }
        }
    }
}

/// How many event loops: one per CPU but one, at least one, at most one per
/// worker (see the module docs).
fn core_count(cpus: usize, workers: usize) -> usize {
    cpus.saturating_sub(1).clamp(1, workers.max(1))
}

fn thread_main(shared: &Arc<Shared>, first: Option<usize>) {
    let mut local = Local {
        scratch: vec![0; SCRATCH_BYTES],
        events: Events::with_capacity(256),
        tokens: Vec::with_capacity(256),
        dooms: Vec::new(),
    };
    let mut next = first;
    loop {
        let index = match next.take() {
            Some(index) => index,
            None => match shared.wait_for_core() {
                Some(index) => index,
                None => return,
            },
        };
        let Some(cell) = shared.cores.get(index) else {
            continue;
        };
        let guard = match cell.core.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                if shared.closing.load(Ordering::SeqCst) {
                    // Its thread is in the service: it closes the core on its way back.
                    thread::sleep(Duration::from_millis(5));
                }
                continue;
            }
        };
        cell.left_at.store(0, Ordering::SeqCst);
        cell.rescue_asked.store(false, Ordering::SeqCst);
        let mut runner = Runner {
            shared,
            index,
            cell,
            guard: Some(guard),
            local: &mut local,
        };
        runner.run();
    }
}

/// What each thread keeps for itself.
struct Local {
    scratch: Vec<u8>,
    events: Events,
    tokens: Vec<(Token, Readiness)>,
    dooms: Vec<(Home, Doom)>,
}

/// A thread running one core.
struct Runner<'a> {
    shared: &'a Arc<Shared>,
    index: usize,
    cell: &'a CoreCell,
    /// `None` once the thread let go of the core and did not get it back.
    guard: Option<MutexGuard<'a, Core>>,
    local: &'a mut Local,
}

impl Runner<'_> {
    fn run(&mut self) {
        let mut last_event = Instant::now();
        loop {
            if !self.take_inbox() {
                return;
            }
            if self.shared.closing.load(Ordering::SeqCst) {
                self.close_all();
                return;
            }
            if !self.drive_ready() {
                return;
            }
            let Some(core) = self.guard.as_deref_mut() else {
                return;
            };
            let busy = !core.ready.is_empty() || core.accept_more && !core.closed;
            let spinning = last_event.elapsed() < SPIN;
            let timeout = (busy || spinning).then_some(Duration::ZERO);
            if let Err(e) = core.poll.poll(&mut self.local.events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    log::error!("the listener's event loop failed: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            self.local.tokens.clear();
            if !self.local.events.is_empty() {
                last_event = Instant::now();
            }
            for event in self.local.events.iter() {
                let closed = event.is_read_closed() || event.is_error();
                let readiness = match (event.is_readable() || closed, closed) {
                    (_, true) => Readiness::Closed,
                    (true, false) => Readiness::Readable,
                    (false, false) => Readiness::Writable,
                };
                self.local.tokens.push((event.token(), readiness));
            }
            if core.accept_more && !self.local.tokens.iter().any(|(t, _)| *t == LISTENER) {
                self.local.tokens.push((LISTENER, Readiness::Readable));
            }
            let tokens = mem::take(&mut self.local.tokens);
            let mut lost_at = None;
            for (i, &(token, readiness)) in tokens.iter().enumerate() {
                let kept = match token {
                    WAKER => true,
                    LISTENER => {
                        self.accept();
                        true
                    }
                    Token(key) => {
                        if readiness != Readiness::Writable {
                            if let Some(conn) = self.conn(key) {
                                conn.readable(readiness == Readiness::Closed);
                            }
                        }
                        self.drive(key)
                    }
                };
                if !kept {
                    lost_at = Some(i + 1);
                    break;
                }
            }
            if let Some(from) = lost_at {
                // Another thread runs the core now: hand it what is left.
                for &(token, readiness) in &tokens[from..] {
                    match token {
                        WAKER => {}
                        LISTENER => self.cell.post(Msg::Accept),
                        Token(key) => self.cell.post(Msg::Ready(key, readiness)),
                    }
                }
            }
            self.local.tokens = tokens;
            if lost_at.is_some() {
                return;
            }
        }
    }

    fn conn(&mut self, key: Key) -> Option<&mut Conn<NetStream>> {
        self.guard
            .as_deref_mut()?
            .conns
            .get_mut(key)?
            .as_deref_mut()
    }

    /// Handles what other threads posted; `false` when the core was lost.
    fn take_inbox(&mut self) -> bool {
        let messages = mem::take(&mut *lock(&self.cell.inbox));
        let mut messages = messages.into_iter();
        while let Some(msg) = messages.next() {
            let kept = match msg {
                Msg::Adopt { home, stream, peer } => {
                    self.adopt(home, stream, peer);
                    true
                }
                Msg::Doom(home, doom) => self.doom(home, doom),
                Msg::Completion {
                    home,
                    body,
                    response,
                } => self.complete(home, body, &response) && self.drive(home.key),
                Msg::Ready(key, readiness) => {
                    if let Some(conn) = self.conn(key) {
                        conn.readable(readiness == Readiness::Closed);
                    }
                    self.drive(key)
                }
                Msg::Accept => {
                    if let Some(core) = self.guard.as_deref_mut() {
                        core.accept_more = true;
                    }
                    true
                }
            };
            if !kept {
                // Put the rest back for whoever runs the core now.
                let mut inbox = lock(&self.cell.inbox);
                let newer = mem::take(&mut *inbox);
                inbox.extend(messages);
                inbox.extend(newer);
                drop(inbox);
                let _ = self.cell.waker.wake();
                return false;
            }
        }
        true
    }

    /// Drives connections that yielded their turn; `false` when the core was lost.
    fn drive_ready(&mut self) -> bool {
        for _ in 0..READY_BATCH {
            let Some(key) = self.guard.as_deref_mut().and_then(|c| c.ready.pop_front()) else {
                return true;
            };
            if !self.drive(key) {
                return false;
            }
        }
        true
    }

    /// Drives one connection until it waits; `false` when the core was lost
    /// (while processing one of its requests).
    fn drive(&mut self, key: Key) -> bool {
        loop {
            let shared = self.shared;
            let draining = shared.draining.load(Ordering::Relaxed);
            let Some(core) = self.guard.as_deref_mut() else {
                return false;
            };
            let Some(conn) = core.conn(key) else {
                return true;
            };
            let mut env = shared.env(self.local, draining);
            let next = conn.drive(&mut env);
            let home = conn.home;
            let peer = conn.peer();
            shared.deliver_dooms(&mut self.local.dooms);
            match next {
                Next::Wait => return true,
                Next::Yield => {
                    core.ready.push_back(key);
                    return true;
                }
                Next::Close => {
                    self.close(key);
                    return true;
                }
                Next::Process(job) => {
                    if !self.process(home, peer, job) {
                        return false;
                    }
                }
            }
        }
    }

    /// Runs a complete request through the service, letting go of the core
    /// meanwhile; `false` when another thread runs the core by then (the
    /// answer then goes through the inbox).
    fn process(&mut self, home: Home, peer: Peer, job: Job) -> bool {
        let shared = self.shared;
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        if !shared.try_permit() {
            let mut queue = lock(&shared.queue);
            if queue.len() < shared.queue_capacity {
                queue.push_back(QueuedJob { home, peer, job });
                return true;
            }
            drop(queue);
            let response = Response::retry_later(503, "every worker is busy; retry later");
            shared.service.refused(&Refusal {
                kind: RefusalKind::Saturated,
                response: Some(&response),
                peer,
                request: None,
                started: true,
            });
            return self.complete(home, Some(job.body), &response);
        }
        // Let go of the core while the service runs.
        self.cell
            .left_at
            .store(shared.now_ms() + 1, Ordering::SeqCst);
        drop(self.guard.take());
        if shared.hand_off_eagerly() {
            shared.ask_spare(self.index);
        }
        let started = Instant::now();
        let response = call(shared, &job, home, peer);
        shared.processed_in(started.elapsed());
        run_queued(shared);
        let Some(response) = response else {
            // It answers later, through the inbox; meanwhile the loop goes on.
            return self.take_back_core();
        };
        if !self.take_back_core() {
            self.cell.post(Msg::Completion {
                home,
                body: Some(job.body),
                response,
            });
            return false;
        }
        self.complete(home, Some(job.body), &response)
    }

    /// Takes the core back after processing; `false` when another thread runs it now.
    fn take_back_core(&mut self) -> bool {
        match self.cell.core.try_lock() {
            Ok(guard) => self.guard = Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => self.guard = Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => return false,
        }
        self.cell.left_at.store(0, Ordering::SeqCst);
        self.cell.rescue_asked.store(false, Ordering::SeqCst);
        true
    }

    /// Hands the answer to a processed request to its connection (the
    /// caller drives it next); `false` without the core.
    fn complete(&mut self, home: Home, body: Option<Vec<u8>>, response: &Response) -> bool {
        let shared = self.shared;
        let draining = shared.draining.load(Ordering::Relaxed);
        let Some(core) = self.guard.as_deref_mut() else {
            return false;
        };
        let Some(conn) = core.conn_of(home) else {
            // Its connection is gone (closed at shutdown): the request is over.
            shared.finished_one();
            return true;
        };
        let mut env = shared.env(self.local, draining);
        // A second answer to one request (never expected) counts nothing.
        if conn.complete(&mut env, body, response) {
            shared.finished_one();
        }
        shared.deliver_dooms(&mut self.local.dooms);
        true
    }

    fn doom(&mut self, home: Home, doom: Doom) -> bool {
        let shared = self.shared;
        let draining = shared.draining.load(Ordering::Relaxed);
        let Some(core) = self.guard.as_deref_mut() else {
            return false;
        };
        let Some(conn) = core.conn_of(home) else {
            return true;
        };
        // A doom lifted since (the connection lingers now) is not acted on twice.
        if lock(&shared.table).doom_of(home) != Some(doom) {
            return true;
        }
        let mut env = shared.env(self.local, draining);
        let next = conn.doomed(&mut env, doom);
        shared.deliver_dooms(&mut self.local.dooms);
        match next {
            Next::Close => self.close(home.key),
            Next::Wait | Next::Yield | Next::Process(_) => {}
        }
        true
    }

    /// Closes a connection and forgets it.
    fn close(&mut self, key: Key) {
        let Some(core) = self.guard.as_deref_mut() else {
            return;
        };
        let Some(mut conn) = core.conns.get_mut(key).and_then(Option::take) else {
            return;
        };
        if let Err(e) = core.poll.registry().deregister(conn.transport.socket()) {
            log::debug!("could not deregister a connection: {e}");
        }
        let home = conn.home;
        drop(conn);
        lock(&self.shared.table).remove(home);
        self.cell.conns.fetch_sub(1, Ordering::Relaxed);
        self.shared.service.connection_closed();
    }

    /// Closes every connection of the core (the listener is stopping).
    fn close_all(&mut self) {
        let shared = self.shared;
        let keys: Vec<Key> = match self.guard.as_deref_mut() {
            Some(core) => (0..core.conns.len())
                .filter(|&k| core.conns[k].is_some())
                .collect(),
            None => return,
        };
        for key in keys {
            if let Some(conn) = self.guard.as_deref_mut().and_then(|core| core.conn(key)) {
                let mut env = shared.env(self.local, true);
                let _ = conn.doomed(&mut env, Doom::Shutdown);
            }
            self.close(key);
        }
        self.local.dooms.clear();
        if let Some(core) = self.guard.as_deref_mut() {
            core.closed = true;
        }
        self.cell.closed.store(true, Ordering::SeqCst);
    }

    /// Accepts what the listening socket holds, up to a batch.
    fn accept(&mut self) {
        let shared = self.shared;
        let now = shared.clock.now();
        if lock(&shared.accept_paused_until).is_some_and(|until| now < until) {
            if let Some(core) = self.guard.as_deref_mut() {
                core.accept_more = false;
            }
            return;
        }
        for _ in 0..ACCEPT_BATCH {
            let accepted = {
                let listeners = lock(&shared.listeners);
                match listeners.get(self.index).and_then(Option::as_ref) {
                    Some(listener) => listener.accept(),
                    None => {
                        drop(listeners);
                        self.set_accept_more(false);
                        return;
                    }
                }
            };
            match accepted {
                Ok((stream, addr)) => self.admit(stream, addr, now),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.set_accept_more(false);
                    return;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    self.set_accept_more(false);
                    self.accept_failed(&e, now);
                    return;
                }
            }
        }
        // More may be waiting: the edge will not come again, so come back.
        self.set_accept_more(true);
    }

    fn set_accept_more(&mut self, more: bool) {
        if let Some(core) = self.guard.as_deref_mut() {
            core.accept_more = more;
        }
    }

    /// Accepting failed (typically out of descriptors): pause accepting
    /// instead of spinning, shed a connection to free a descriptor, and say
    /// so through the rate-limited log.
    fn accept_failed(&mut self, error: &io::Error, now: Instant) {
        let shared = self.shared;
        *lock(&shared.accept_paused_until) = Some(now + ACCEPT_PAUSE);
        let out_of_descriptors = matches!(error.raw_os_error(), Some(23 | 24));
        if out_of_descriptors {
            lock(&shared.table).shed_one(&mut self.local.dooms);
            shared.deliver_dooms(&mut self.local.dooms);
        }
        shared.service.warn(&format!(
            "accepting a connection failed: {error}; accepting again in {} ms",
            ACCEPT_PAUSE.as_millis()
        ));
    }

    /// Takes in a new connection, or turns it away.
    fn admit(&mut self, stream: mio::net::TcpStream, addr: SocketAddr, now: Instant) {
        let shared = self.shared;
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("could not set TCP_NODELAY for {addr}: {e}");
        }
        let ip = canonical_ip(addr.ip());
        let peer = Peer {
            addr,
            forwarded_for: None,
        };
        let exempt = shared.trusted.contains(&ip);
        let target = self.choose_core();
        let admission = lock(&shared.table).admit(ip, exempt, target, now, &mut self.local.dooms);
        shared.deliver_dooms(&mut self.local.dooms);
        match admission {
            Admission::Refused => self.turn_away(stream, peer),
            Admission::Admitted(home) => {
                shared.service.connection_opened();
                shared.cores[target].conns.fetch_add(1, Ordering::Relaxed);
                if target == self.index {
                    self.adopt(home, stream, peer);
                } else {
                    shared.cores[target].post(Msg::Adopt { home, stream, peer });
                }
            }
        }
    }

    /// The core with the fewest connections among those a thread runs; this one on a tie.
    fn choose_core(&self) -> usize {
        let mine = self.cell.conns.load(Ordering::Relaxed);
        let mut best = (self.index, mine);
        let now_ms = self.shared.now_ms();
        let stuck_after = u64::try_from(RESCUE_AFTER.as_millis()).unwrap_or(u64::MAX);
        for (i, cell) in self.shared.cores.iter().enumerate() {
            // A core left alone for a moment (a request being processed) is
            // fine; one left for long (a slow handler) waits for a spare.
            let left_at = cell.left_at.load(Ordering::Relaxed);
            let stuck = left_at != 0 && now_ms.saturating_sub(left_at - 1) >= stuck_after;
            if i == self.index || stuck {
                continue;
            }
            let count = cell.conns.load(Ordering::Relaxed);
            if count < best.1 {
                best = (i, count);
            }
        }
        best.0
    }

    /// Registers a connection with this core.
    fn adopt(&mut self, home: Home, stream: mio::net::TcpStream, peer: Peer) {
        let shared = self.shared;
        #[cfg(feature = "tls")]
        let transport = match &shared.tls {
            Some(config) => {
                NetStream::Tls(Box::new(super::tls::Tls::new(stream, Arc::clone(config))))
            }
            None => NetStream::Plain(Plain::new(stream)),
        };
        #[cfg(not(feature = "tls"))]
        let transport = NetStream::Plain(Plain::new(stream));
        let mut conn = Box::new(Conn::new(home, transport, peer));
        let Some(core) = self.guard.as_deref_mut() else {
            return;
        };
        let registered = core.poll.registry().register(
            conn.transport.socket(),
            Token(home.key),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            log::warn!("could not register a connection from {}: {e}", peer.addr);
            lock(&shared.table).remove(home);
            self.cell.conns.fetch_sub(1, Ordering::Relaxed);
            shared.service.connection_closed();
            return;
        }
        if core.conns.len() <= home.key {
            core.conns.resize_with(home.key + 1, || None);
        }
        core.conns[home.key] = Some(conn);
    }

    /// Turns a connection away: 503 on plain HTTP, closed at once on HTTPS
    /// (a TLS client could not read a plain answer, and a handshake would
    /// cost what the cap saves).
    fn turn_away(&mut self, stream: mio::net::TcpStream, peer: Peer) {
        let shared = self.shared;
        let response = Response::retry_later(503, "too many open connections; retry later");
        #[cfg(feature = "tls")]
        let tls = shared.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls = false;
        shared.service.refused(&Refusal {
            kind: RefusalKind::Saturated,
            response: (!tls).then_some(&response),
            peer,
            request: None,
            started: false,
        });
        if !tls {
            let mut out = Vec::with_capacity(256);
            response.write_to(&mut out, false, false);
            let mut plain = Plain::new(stream);
            let _ = plain.write(&out);
            plain.shutdown_write();
        }
    }
}

/// Runs one request through the service: its answer, or `None` when it
/// comes later through the inbox.
fn call(shared: &Arc<Shared>, job: &Job, home: Home, peer: Peer) -> Option<Response> {
    let later = Later::new(Arc::clone(shared) as Arc<dyn AnswerLater>, home);
    job.run(&*shared.service, peer, later)
}

impl AnswerLater for Shared {
    fn answer(&self, home: Home, response: Response) {
        if let Some(cell) = self.cores.get(home.core) {
            cell.post(Msg::Completion {
                home,
                body: None,
                response,
            });
        }
    }
}

/// Processes requests waiting for a worker, with the permit this thread
/// holds, then gives the permit back.
fn run_queued(shared: &Arc<Shared>) {
    loop {
        let next = lock(&shared.queue).pop_front();
        match next {
            Some(queued) => {
                let response = call(shared, &queued.job, queued.home, queued.peer);
                if let (Some(response), Some(cell)) = (response, shared.cores.get(queued.home.core))
                {
                    cell.post(Msg::Completion {
                        home: queued.home,
                        body: Some(queued.job.body),
                        response,
                    });
                }
            }
            None => {
                shared.permits.fetch_add(1, Ordering::AcqRel);
                // A request queued between the look and the release would
                // wait for the next thread: take it back if so.
                if lock(&shared.queue).is_empty() || !shared.try_permit() {
                    return;
                }
            }
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is the IPv4 peer.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The supervisor: timeouts, and cores left without a thread.
fn supervise(shared: &Shared) {
    let mut dooms = Vec::new();
    let mut guard = lock(&shared.supervisor_lock);
    loop {
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        let now = shared.clock.now();
        let (next_deadline, open) = {
            let mut table = lock(&shared.table);
            (table.sweep(now, &mut dooms), table.open())
        };
        shared.deliver_dooms(&mut dooms);
        rescue(shared);
        resume_accepting(shared, now);
        let sleep = if open > 0 {
            TICK
        } else {
            next_deadline.map_or(IDLE_TICK, |d| {
                d.saturating_duration_since(now).clamp(TICK, IDLE_TICK)
            })
        };
        guard = wait_timeout(&shared.supervisor_wake, guard, sleep).0;
    }
}

/// Asks a spare thread to take each core left without one for too long.
fn rescue(shared: &Shared) {
    let now_ms = shared.now_ms();
    let after = u64::try_from(RESCUE_AFTER.as_millis()).unwrap_or(u64::MAX);
    for (index, cell) in shared.cores.iter().enumerate() {
        let left_at = cell.left_at.load(Ordering::SeqCst);
        if left_at != 0 && now_ms.saturating_sub(left_at - 1) >= after {
            shared.ask_spare(index);
        }
    }
}

/// Ends a pause in accepting.
fn resume_accepting(shared: &Shared, now: Instant) {
    let mut paused = lock(&shared.accept_paused_until);
    if paused.is_some_and(|until| now >= until) {
        *paused = None;
        drop(paused);
        for cell in &shared.cores {
            cell.post(Msg::Accept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::core_count;

    #[test]
    fn one_event_loop_per_cpu_but_one_and_never_more_than_the_workers() {
        assert_eq!(core_count(1, 4), 1);
        assert_eq!(core_count(2, 2), 1);
        assert_eq!(core_count(8, 32), 7);
        assert_eq!(core_count(8, 2), 2);
        assert_eq!(core_count(0, 0), 1);
    }
}
