//! A private `redis-server` for the `redis_*` tests, on a free loopback
//! port in a temporary directory (killed on drop), and the listeners and
//! workers wired to it.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use wasenderapi::handler::HandlerRetryPolicy;
use wasenderapi::redis::{
    RedisAppenderOptions, RedisOptions, RedisWorker, RedisWorkerBuilder, RedisWorkerStats,
};
use wasenderapi::{WasenderSyncClient, WebhookListener};

use super::process::send_signal;
use super::{wait_until, Recorder, TempDir, SECRET};

/// The server binary: `$REDIS_SERVER`, else `redis-server` on the `PATH`.
fn server_binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER").map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
}

/// How the private server persists its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// `appendonly yes`, `appendfsync always`: nothing acknowledged is lost to a kill.
    Always,
    /// `appendonly yes`, `appendfsync everysec`: faster, for tests that never kill Redis.
    EverySec,
}

/// A `redis-server` of our own. Killed (SIGKILL) when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    persistence: Persistence,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server for tests that never kill it.
    pub fn start() -> Self {
        Self::start_with(Persistence::EverySec)
    }

    /// Starts a server with `persistence`; panics (never skips) when
    /// `redis-server` cannot be run.
    pub fn start_with(persistence: Persistence) -> Self {
        let mut server = Self {
            child: None,
            port: 0,
            persistence,
            dir: TempDir::new("redis"),
        };
        // The free port may be taken by another process before the server
        // binds it: then it exits at once, and another port is tried.
        for _ in 0..5 {
            server.port = free_port();
            if server.launch() {
                return server;
            }
        }
        panic!("redis-server found no free port in 5 tries");
    }

    /// Runs the server on `self.port`; `false` when it exited at once (the
    /// port was taken).
    fn launch(&mut self) -> bool {
        let fsync = match self.persistence {
            Persistence::Always => "always",
            Persistence::EverySec => "everysec",
        };
        let port = self.port.to_string();
        let spawned = Command::new(server_binary())
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir"])
            .arg(self.dir.path())
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", fsync])
            .args(["--maxmemory-policy", "noeviction", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => panic!(
                "cannot run {:?} ({e}): the Redis tests need redis-server installed \
                 (apt-get install redis-server), or REDIS_SERVER set to its path",
                server_binary()
            ),
        };
        // Ready once it answers with its own directory: another server on
        // this port would answer PING too.
        let mut exited = false;
        let ready = wait_until(Duration::from_secs(10), || {
            exited = matches!(child.try_wait(), Ok(Some(_)));
            exited || self.serves_our_dir()
        });
        if exited {
            return false;
        }
        self.child = Some(child);
        assert!(ready, "redis-server on port {} did not start", self.port);
        true
    }

    /// Whether the server on our port is ours (its directory is ours).
    fn serves_our_dir(&self) -> bool {
        let Some(mut connection) = self.try_connection() else {
            return false;
        };
        let reply: Option<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("dir")
            .query(&mut connection)
            .ok();
        let ours = std::fs::canonicalize(self.dir.path()).ok();
        reply.and_then(|r| r.get(1).map(PathBuf::from)) == ours
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Connection options for this server with timeouts fit for tests.
    pub fn options(&self) -> RedisOptions {
        RedisOptions::new(self.url())
            .connect_timeout(Duration::from_millis(500))
            .command_timeout(Duration::from_secs(1))
    }

    fn try_connection(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(self.url()).ok()?;
        client
            .get_connection_with_timeout(Duration::from_millis(200))
            .ok()
    }

    /// A connection for checks from the test.
    pub fn connection(&self) -> redis::Connection {
        self.try_connection()
            .expect("a connection to the test Redis")
    }

    /// Sends one command and reads the reply as `T`.
    pub fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut self.connection())
            .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
    }

    /// `XINFO STREAM <key>` field `entries-added`: entries ever added.
    pub fn entries_added(&self, key: &str) -> u64 {
        let info: HashMap<String, redis::Value> = self.query(&["XINFO", "STREAM", key]);
        match info.get("entries-added") {
            Some(redis::Value::Int(n)) => *n as u64,
            other => panic!("XINFO STREAM has no entries-added: {other:?}"),
        }
    }

    /// Entries pending in group `group` of `key`, in all.
    pub fn pending(&self, key: &str, group: &str) -> u64 {
        let summary: Vec<redis::Value> = self.query(&["XPENDING", key, group]);
        match summary.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            other => panic!("unexpected XPENDING reply: {other:?}"),
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the server process.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server runs");
        send_signal(child.id(), signal);
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (its data
    /// comes back from the append-only file).
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.launch(),
            "redis-server could not restart: port {} was taken meanwhile",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free loopback port (bound, then released for redis-server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A listener in Redis delivery mode on a free loopback port.
pub fn listener(options: impl Into<RedisAppenderOptions>) -> WebhookListener {
    let client = WasenderSyncClient::builder("test-api-key")
        .webhook_secret(SECRET)
        .build();
    WebhookListener::redis_builder(client, options)
        .bind("127.0.0.1:0")
        .workers(2)
        .spawn()
        .expect("a Redis-mode listener starts")
}

/// A worker builder on `options` handing events to `recorder`, with timings
/// fit for tests: short blocks, backoffs, claim time and trim interval.
pub fn worker_builder(
    options: RedisOptions,
    recorder: &Arc<Recorder>,
    name: &str,
) -> RedisWorkerBuilder<Recorder> {
    RedisWorker::builder(options, Arc::clone(recorder))
        .handler_threads(2)
        .consumer_name(name)
        .drain_timeout(Duration::from_secs(5))
        .block_time(Duration::from_millis(100))
        .claim_idle(Duration::from_millis(800))
        .handler_retries(fast_retries())
        .trim_interval(Some(Duration::from_millis(200)))
        .forget_idle_consumers(Duration::from_secs(1))
}

/// A worker on `options` handing events to `recorder` (see [`worker_builder`]).
pub fn worker(options: RedisOptions, recorder: &Arc<Recorder>, name: &str) -> RedisWorker {
    worker_builder(options, recorder, name)
        .spawn()
        .expect("a Redis worker starts")
}

/// The consumers of group `group` on `key`: name and pending entries (none
/// before a worker created the group).
pub fn consumers(server: &RedisServer, key: &str, group: &str) -> Vec<(String, u64)> {
    let reply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(key)
        .arg(group)
        .query::<Vec<HashMap<String, redis::Value>>>(&mut server.connection());
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) if e.code() == Some("NOGROUP") => return Vec::new(),
        Err(e) => panic!("XINFO CONSUMERS failed: {e}"),
    };
    reply
        .into_iter()
        .map(|c| {
            let name = match c.get("name") {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(redis::Value::SimpleString(s)) => s.clone(),
                other => panic!("a consumer without a name: {other:?}"),
            };
            let pending = match c.get("pending") {
                Some(redis::Value::Int(n)) => *n as u64,
                other => panic!("a consumer without a pending count: {other:?}"),
            };
            (name, pending)
        })
        .collect()
}

/// Waits until `recorder` handled every id in `ids`; panics with the missing ones.
#[track_caller]
pub fn wait_handled(recorder: &Recorder, ids: &[String], timeout: Duration) {
    let missing = || {
        let handled = recorder.handled();
        ids.iter()
            .filter(|id| !handled.contains(id))
            .cloned()
            .collect::<Vec<String>>()
    };
    if !wait_until(timeout, || missing().is_empty()) {
        let missing = missing();
        panic!(
            "{} of {} events not handled within {timeout:?}, e.g. {:?}",
            missing.len(),
            ids.len(),
            &missing[..missing.len().min(5)]
        );
    }
}

/// Sums two workers' counters that matter to the tests.
pub fn handled_total(stats: &[RedisWorkerStats]) -> u64 {
    stats.iter().map(|s| s.handled).sum()
}

/// Handler retries fit for tests: 5 attempts, 20 ms doubling up to 100 ms.
pub fn fast_retries() -> HandlerRetryPolicy {
    HandlerRetryPolicy::default()
        .initial_backoff(Duration::from_millis(20))
        .max_backoff(Duration::from_millis(100))
}
