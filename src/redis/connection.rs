//! The one way this crate talks to Redis: a [`LazyConnection`] opens its
//! connection on first use, closes it after a failure that leaves it
//! unusable, and reopens it (once) when a connection that sat idle turns out
//! closed under it. The listener's appender keeps a bounded [`Pool`] of
//! them; the worker's threads and the dead-letter tools each own one.

use std::io;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ::redis::{Client, Connection, ErrorKind, RedisError, RedisResult};

use super::options::RedisOptions;
use crate::error::WasenderError;
use crate::sync::{lock, wait_timeout};

/// How to reach Redis: the client (a parsed URL) and the timeouts every
/// connection gets.
#[derive(Clone)]
pub(crate) struct Connector {
    client: Client,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl Connector {
    /// Parses the URL; no connection is opened yet. Call after `validate`.
    pub fn new(options: &RedisOptions) -> crate::error::Result<Self> {
        let client = Client::open(options.url.as_str()).map_err(|source| WasenderError::Redis {
            operation: "parsing the URL",
            source,
        })?;
        Ok(Self {
            client,
            connect_timeout: options.connect_timeout,
            command_timeout: options.command_timeout,
        })
    }

    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// A connection that opens on first use, with the command timeout on reads.
    pub fn lazy(&self) -> LazyConnection {
        LazyConnection {
            connector: self.clone(),
            connection: None,
            read_timeout: self.command_timeout,
        }
    }
}

/// A connection opened when first needed and reopened after failures.
pub(crate) struct LazyConnection {
    connector: Connector,
    connection: Option<Connection>,
    /// Applied to reads when the connection opens.
    read_timeout: Duration,
}

impl LazyConnection {
    /// Reads on this connection may take `timeout` (a blocking read's
    /// block time plus the command timeout) instead of the command timeout.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self.connection = None;
        self
    }

    /// Runs `command` on the connection, opening it when needed. When a
    /// connection that was open before turns out closed (Redis restarted, or
    /// something in between dropped it while it was idle), `command` runs
    /// once more on a new connection; so use this only for commands that
    /// are safe to send twice. A failure that leaves the connection unusable
    /// (anything but an error reply: a timeout may still be answered later,
    /// and would answer the next command) closes it.
    pub fn run<T>(
        &mut self,
        mut command: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let reused = self.connection.is_some();
        let result = self.run_once(&mut command);
        match result {
            Err(e) if reused && is_stale(&e) => {
                log::debug!("a Redis connection was closed while idle ({e}); reconnecting");
                self.run_once(command)
            }
            result => result,
        }
    }

    /// Like [`run`](Self::run), never on a second connection: for a command
    /// that must run on the connection of the one before (`WAIT`).
    pub fn run_once<T>(
        &mut self,
        mut command: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let result = self.open().and_then(&mut command);
        if let Err(e) = &result {
            if breaks_connection(e) {
                self.connection = None;
            }
        }
        result
    }

    fn open(&mut self) -> RedisResult<&mut Connection> {
        if self.connection.is_none() {
            let connector = &self.connector;
            let connection = connector
                .client
                .get_connection_with_timeout(connector.connect_timeout)?;
            connection.set_read_timeout(Some(self.read_timeout))?;
            connection.set_write_timeout(Some(connector.command_timeout))?;
            self.connection = Some(connection);
        }
        match self.connection.as_mut() {
            Some(connection) => Ok(connection),
            None => Err(RedisError::from((
                ErrorKind::Io,
                "no Redis connection after opening one",
            ))),
        }
    }
}

/// Whether a connection that saw `error` must be closed: anything but a
/// clean error reply from the server (a timed-out command may still be
/// answered later, and would answer the next command on that connection).
pub(crate) fn breaks_connection(error: &RedisError) -> bool {
    !matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}

/// One word on why Redis failed, for logs: every one of these means
/// "unavailable" to the listener (503 with `Retry-After`).
pub(crate) fn failure_class(error: &RedisError) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connection_refusal() || error.is_io_error() {
        "unreachable"
    } else if error.code() == Some("OOM") {
        "out of memory"
    } else if error.code() == Some("LOADING") {
        "loading its data"
    } else if error.code() == Some("READONLY") || error.code() == Some("MASTERDOWN") {
        "not a writable primary"
    } else {
        "refused the command"
    }
}

/// Whether `error` says the connection was closed under us (a reset, a
/// broken pipe, end of file), as happens to idle connections after a Redis
/// restart: worth one more try on a new connection. Not a timeout: Redis may
/// just be slow, and a retry would double the wait.
pub(crate) fn is_stale(error: &RedisError) -> bool {
    error.is_connection_dropped() && !error.is_timeout()
}

/// Whether `error` is the reply to a read on a group (or stream) that does not exist.
pub(crate) fn is_no_group(error: &RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

/// A bounded pool of lazy connections shared by the appender's callers.
pub(crate) struct Pool {
    connector: Connector,
    max: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<LazyConnection>,
    /// Connections handed out or idle.
    made: usize,
}

/// A connection taken from the [`Pool`]; returned on drop.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    connection: Option<LazyConnection>,
}

impl Pool {
    pub fn new(connector: Connector, max: usize) -> Self {
        Self {
            connector,
            max,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                made: 0,
            }),
            returned: Condvar::new(),
        }
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// An idle connection, or a new one while fewer than the maximum exist;
    /// else waits up to the command timeout for one to come back.
    pub fn get(&self) -> RedisResult<Pooled<'_>> {
        let deadline = Instant::now() + self.connector.command_timeout;
        let mut state = lock(&self.state);
        loop {
            let connection = match state.idle.pop() {
                Some(connection) => Some(connection),
                None if state.made < self.max => {
                    state.made += 1;
                    Some(self.connector.lazy())
                }
                None => None,
            };
            if let Some(connection) = connection {
                return Ok(Pooled {
                    pool: self,
                    connection: Some(connection),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RedisError::from(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("all {} Redis connections stayed busy", self.max),
                )));
            }
            state = wait_timeout(&self.returned, state, left).0;
        }
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = LazyConnection;

    fn deref(&self) -> &LazyConnection {
        self.connection
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut LazyConnection {
        self.connection
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            lock(&self.pool.state).idle.push(connection);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_server_is_classified_as_such() {
        // Port 1 on loopback: nothing listens there.
        let options =
            RedisOptions::new("redis://127.0.0.1:1/").connect_timeout(Duration::from_millis(200));
        let mut connection = Connector::new(&options).unwrap().lazy();
        let error = connection
            .run(|c| ::redis::cmd("PING").query::<String>(c))
            .unwrap_err();
        assert_eq!(failure_class(&error), "unreachable");
        assert!(breaks_connection(&error));
    }

    #[test]
    fn a_busy_pool_times_out_instead_of_growing() {
        let options =
            RedisOptions::new("redis://127.0.0.1:1/").command_timeout(Duration::from_millis(50));
        let pool = Pool::new(Connector::new(&options).unwrap(), 1);
        let held = pool.get().expect("the one connection");
        assert!(pool.get().is_err(), "a second connection while one is held");
        drop(held);
        assert!(pool.get().is_ok(), "the connection came back");
        assert_eq!(lock(&pool.state).made, 1);
    }
}
