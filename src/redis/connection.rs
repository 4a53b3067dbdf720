//! Opening Redis connections with timeouts, sorting failures, and the
//! listener's bounded connection pool.

use std::io;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ::redis::{Client, Connection, ConnectionLike, ErrorKind, RedisError};

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
    pub fn new(options: &RedisOptions) -> crate::Result<Self> {
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

    /// A new connection whose every read and write times out after the command timeout.
    pub fn connect(&self) -> Result<Connection, RedisError> {
        let connection = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        connection.set_read_timeout(Some(self.command_timeout))?;
        connection.set_write_timeout(Some(self.command_timeout))?;
        Ok(connection)
    }

    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
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

/// A bounded pool of connections shared by the listener's connection threads.
pub(crate) struct Pool {
    connector: Connector,
    max: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    /// Connections handed out or idle.
    open: usize,
}

/// A connection taken from the [`Pool`]; returned on drop unless marked broken.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
    broken: bool,
    /// Taken from the idle list (it may have been closed while idle).
    reused: bool,
}

impl Pool {
    pub fn new(connector: Connector, max: usize) -> Self {
        Self {
            connector,
            max,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// An idle connection, or a new one while fewer than the maximum are
    /// open; else waits up to the command timeout for one to come back.
    pub fn get(&self) -> Result<Pooled<'_>, RedisError> {
        let deadline = Instant::now() + self.connector.command_timeout;
        let mut state = lock(&self.state);
        loop {
            if let Some(connection) = state.idle.pop() {
                return Ok(self.pooled(connection, true));
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.connector.connect() {
                    Ok(connection) => Ok(self.pooled(connection, false)),
                    Err(e) => {
                        self.closed();
                        Err(e)
                    }
                };
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

    fn pooled(&self, connection: Connection, reused: bool) -> Pooled<'_> {
        Pooled {
            pool: self,
            connection: Some(connection),
            broken: false,
            reused,
        }
    }

    /// Closes every idle connection: after one was found closed by the
    /// server, the others (as old) likely were too.
    pub fn discard_idle(&self) {
        let idle: Vec<Connection> = std::mem::take(&mut lock(&self.state).idle);
        let n = idle.len();
        drop(idle);
        if n > 0 {
            lock(&self.state).open -= n;
            self.returned.notify_all();
        }
    }

    fn closed(&self) {
        lock(&self.state).open -= 1;
        self.returned.notify_one();
    }
}

impl Pooled<'_> {
    /// The connection, for one command.
    pub fn connection(&mut self) -> &mut Connection {
        self.connection
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }

    /// Whether this connection sat idle in the pool before (and so may have been closed).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// Passes `result` through, closing the connection when its error demands it.
    pub fn check<T>(&mut self, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(e) = &result {
            if breaks_connection(e) {
                self.broken = true;
            }
        }
        result
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if self.broken || !connection.is_open() {
            drop(connection);
            self.pool.closed();
            return;
        }
        lock(&self.pool.state).idle.push(connection);
        self.pool.returned.notify_one();
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
        let connector = Connector::new(&options).unwrap();
        let error = connector.connect().map(|_| ()).unwrap_err();
        assert_eq!(failure_class(&error), "unreachable");
        assert!(breaks_connection(&error));
    }

    #[test]
    fn a_busy_pool_times_out_instead_of_growing() {
        let options = RedisOptions::new("redis://127.0.0.1:1/")
            .connect_timeout(Duration::from_millis(50))
            .command_timeout(Duration::from_millis(50));
        let pool = Pool::new(Connector::new(&options).unwrap(), 1);
        // Nothing to connect to: each get fails fast and gives its slot back.
        for _ in 0..3 {
            assert!(pool.get().is_err());
        }
        assert_eq!(lock(&pool.state).open, 0);
    }
}
