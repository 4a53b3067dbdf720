//! [`RedisOptions`]: where the stream lives and how listeners and workers use it.

use std::fmt;
use std::time::Duration;

use crate::error::{Result, WasenderError};
use crate::handler::HandlerRetryPolicy;

/// The key prefix when [`RedisOptions::prefix`] is not called. The braces are
/// a Redis Cluster hash tag: every key shares one slot, so the scripts that
/// touch several keys run on one node.
pub const DEFAULT_KEY_PREFIX: &str = "{wasender}";

/// The consumer group when [`RedisOptions::group`] is not called.
pub const DEFAULT_GROUP: &str = "wasender";

/// Where the stream lives and how listeners and workers use it. Every setter
/// documents its default; [`RedisOptions::new`] takes the one setting without
/// a sensible default, the server's URL.
///
/// The same options serve the listener ([`DeliveryMode::redis`](crate::listener::DeliveryMode::redis)),
/// the [`RedisWorker`](super::RedisWorker) and the [`RedisDeadLetters`](super::RedisDeadLetters)
/// tools: give them the same URL, prefix and group.
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::redis::{HandlerRetryPolicy, RedisOptions};
///
/// let options = RedisOptions::new("redis://:password@redis.internal:6379/0")
///     .dedupe_ttl(Duration::from_secs(600))
///     .wait_replicas(1, Duration::from_millis(200))
///     .handler_retries(HandlerRetryPolicy::default().max_attempts(8));
/// assert_eq!(options.events_key(), "{wasender}:events");
/// assert_eq!(options.dead_key(), "{wasender}:dead");
/// // The password never shows in Debug output.
/// assert!(!format!("{options:?}").contains("password"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisOptions {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) group: String,
    pub(crate) listener_id: Option<String>,
    pub(crate) dedupe_ttl: Duration,
    pub(crate) max_stream_len: Option<u64>,
    pub(crate) wait_replicas: u32,
    pub(crate) wait_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) block_time: Duration,
    pub(crate) claim_idle: Duration,
    pub(crate) retry: HandlerRetryPolicy,
    pub(crate) trim_interval: Option<Duration>,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("group", &self.group)
            .field("listener_id", &self.listener_id)
            .field("dedupe_ttl", &self.dedupe_ttl)
            .field("max_stream_len", &self.max_stream_len)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("max_connections", &self.max_connections)
            .field("block_time", &self.block_time)
            .field("claim_idle", &self.claim_idle)
            .field("retry", &self.retry)
            .field("trim_interval", &self.trim_interval)
            .finish()
    }
}

impl RedisOptions {
    /// Options for the Redis (or Valkey) server at `url`, for example
    /// `redis://127.0.0.1:6379/0` or `redis://:password@host:6379/0`
    /// (`rediss://` needs a TLS feature of the `redis` crate in your own
    /// `Cargo.toml`). Everything else starts at its documented default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            group: DEFAULT_GROUP.to_owned(),
            listener_id: None,
            dedupe_ttl: Duration::from_secs(3600),
            max_stream_len: None,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            max_connections: 32,
            block_time: Duration::from_secs(2),
            claim_idle: Duration::from_secs(60),
            retry: HandlerRetryPolicy::default(),
            trim_interval: Some(Duration::from_secs(10)),
        }
    }

    /// The prefix of every key (default [`DEFAULT_KEY_PREFIX`], `{wasender}`):
    /// the stream is `<prefix>:events`, the dead letters `<prefix>:dead`, the
    /// dedupe keys `<prefix>:seen:<dedupe key>`. It must hold a non-empty
    /// Redis Cluster hash tag (`{…}`) so that all of them share one slot.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The consumer group the workers read with (default [`DEFAULT_GROUP`],
    /// `wasender`). Created, starting at the beginning of the stream, by the
    /// first worker that finds it missing.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// The `listener` field of every entry this listener adds (default: the
    /// host name and process id, `host/1234`). For tracing only.
    pub fn listener_id(mut self, id: impl Into<String>) -> Self {
        self.listener_id = Some(id.into());
        self
    }

    /// How long a dedupe key is remembered (default one hour): an event
    /// whose key was seen within this window, by any listener, is answered
    /// 200 as a duplicate and not added again. Each key costs about 100 bytes
    /// of Redis memory for that long. `Duration::ZERO` turns dedupe off
    /// (every verified event is added). Rounded up to whole milliseconds.
    pub fn dedupe_ttl(mut self, ttl: Duration) -> Self {
        self.dedupe_ttl = ttl;
        self
    }

    /// A hard cap on the stream's length, applied by the listener as
    /// `XADD … MAXLEN ~ n` (default: none). **It drops the oldest entries
    /// whether or not a worker has handled them**, so it is a memory
    /// backstop only: the workers already trim what is acknowledged (see
    /// [`trim_interval`](Self::trim_interval)). Prefer a Redis `maxmemory`
    /// with `noeviction`, which makes the listener answer 503 instead.
    pub fn max_stream_len(mut self, max_len: Option<u64>) -> Self {
        self.max_stream_len = max_len;
        self
    }

    /// After each append, `WAIT replicas timeout`: the listener answers 200
    /// only once `replicas` replicas confirmed the entry within `timeout`,
    /// and 503 otherwise (default: 0 replicas, no `WAIT`).
    pub fn wait_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait_replicas = replicas;
        self.wait_timeout = timeout;
        self
    }

    /// The longest wait to open a connection to Redis (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest wait for any one command's reply (default 2 s). A listener
    /// answers 503 when Redis is slower; an append takes at most the connect
    /// timeout plus this (plus the `WAIT` timeout and this again with
    /// [`wait_replicas`](Self::wait_replicas)). A connection whose command
    /// timed out is closed, never reused.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The most Redis connections one listener holds (default 32). A request
    /// finding them all busy waits up to the command timeout for one, then
    /// is answered 503.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Worker: how long one `XREADGROUP … BLOCK` waits for new entries
    /// (default 2 s). Also bounds how long a worker's shutdown waits for its
    /// reader.
    pub fn block_time(mut self, time: Duration) -> Self {
        self.block_time = time;
        self
    }

    /// Worker: entries pending on a consumer for longer than this without
    /// progress are taken over with `XAUTOCLAIM` by another worker (default
    /// 60 s): a crashed or stuck worker's entries are handled elsewhere. Set
    /// it above your slowest handler call, or a slow call is taken over and
    /// run twice (entries a worker fetched ahead and has not started yet are
    /// kept fresh, whatever their wait). Must be longer than the longest
    /// backoff of [`handler_retries`](Self::handler_retries).
    pub fn claim_idle(mut self, idle: Duration) -> Self {
        self.claim_idle = idle;
        self
    }

    /// Worker: how a failing handler is retried (default
    /// [`HandlerRetryPolicy::default`]: 5 deliveries, 100 ms doubling up to
    /// 30 s), the same policy type as the listener's queued modes. Attempts
    /// are counted by Redis (the entry's delivery count), so retries survive
    /// worker restarts, and a delivery cut short by a crash counts too: an
    /// event that crashes every worker ends in the dead letters instead of
    /// crashing them forever. Keep its `max_backoff` shorter than
    /// [`claim_idle`](Self::claim_idle), or another worker would take the
    /// entry over during the wait.
    pub fn handler_retries(mut self, policy: HandlerRetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Worker: how often acknowledged history is trimmed from the stream
    /// (`XTRIM <events> MINID ~ <oldest entry not yet acknowledged>`; default
    /// every 10 s). `None` keeps every entry (trim it yourself). Only the
    /// configured group is considered: if other consumer groups read the same
    /// stream, turn this off.
    pub fn trim_interval(mut self, interval: Option<Duration>) -> Self {
        self.trim_interval = interval;
        self
    }

    /// The events stream: `<prefix>:events`.
    pub fn events_key(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// The dead-letter stream: `<prefix>:dead`.
    pub fn dead_key(&self) -> String {
        format!("{}:dead", self.prefix)
    }

    /// The dedupe key for an event whose dedupe key is `key`: `<prefix>:seen:<key>`.
    pub fn seen_key(&self, key: &str) -> String {
        format!("{}:seen:{key}", self.prefix)
    }

    /// The consumer group's name.
    pub fn group_name(&self) -> &str {
        &self.group
    }

    /// The server's URL with its password (if any) replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.retry.backoff(attempt)
    }

    /// The listener id to stamp on entries.
    pub(crate) fn listener_id_or_default(&self) -> String {
        self.listener_id
            .clone()
            .unwrap_or_else(|| format!("{}/{}", host_name(), std::process::id()))
    }

    /// Checks what every role needs: a parseable URL, a hash-tagged prefix,
    /// a group name, non-zero timeouts.
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |what: String| Err(WasenderError::InvalidArgument(format!("Redis: {what}")));
        if let Err(e) = ::redis::Client::open(self.url.as_str()) {
            // The error text may quote the URL; say which one without its password.
            return invalid(format!(
                "cannot use the URL {}: {}",
                redact_url(&self.url),
                e.category()
            ));
        }
        if !has_hash_tag(&self.prefix) {
            return invalid(format!(
                "the key prefix {:?} needs a non-empty hash tag such as {{wasender}}, \
                 so that every key lives in one Redis Cluster slot",
                self.prefix
            ));
        }
        if self.group.is_empty() {
            return invalid("the consumer group name is empty".to_owned());
        }
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1".to_owned());
        }
        if [
            self.connect_timeout,
            self.command_timeout,
            self.block_time,
            self.claim_idle,
        ]
        .contains(&Duration::ZERO)
        {
            return invalid("timeouts, block_time and claim_idle must be longer than zero".into());
        }
        if self.wait_replicas > 0 && self.wait_timeout.is_zero() {
            // WAIT with timeout 0 blocks forever.
            return invalid("the WAIT timeout must be longer than zero".to_owned());
        }
        if self.max_stream_len == Some(0) {
            return invalid("max_stream_len must be at least 1".to_owned());
        }
        Ok(())
    }

    /// Checks the worker's timing on top of [`validate`](Self::validate).
    pub(crate) fn validate_worker(&self) -> Result<()> {
        self.validate()?;
        if self.retry.backoff(u32::MAX) >= self.claim_idle {
            return Err(WasenderError::InvalidArgument(format!(
                "Redis: the handler retries' max_backoff ({:?}) must be shorter than claim_idle ({:?}), or other \
                 workers take entries over while they wait to be retried",
                self.retry.backoff(u32::MAX), self.claim_idle
            )));
        }
        Ok(())
    }
}

/// Whether `prefix` holds a non-empty `{…}` hash tag, as Redis Cluster reads it
/// (the first `{` and the first `}` after it).
fn has_hash_tag(prefix: &str) -> bool {
    let Some(open) = prefix.find('{') else {
        return false;
    };
    prefix[open + 1..].find('}').is_some_and(|len| len > 0)
}

/// `url` with the password (if any) replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        "***".to_owned()
    };
    format!("{scheme}://{masked}@{host}{path}")
}

/// This machine's host name, for default listener and consumer names.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_prefix_and_its_hash_tag() {
        let options = RedisOptions::new("redis://127.0.0.1/").prefix("{bot}:prod");
        assert_eq!(options.events_key(), "{bot}:prod:events");
        assert_eq!(options.dead_key(), "{bot}:prod:dead");
        assert_eq!(options.seen_key("id:abc"), "{bot}:prod:seen:id:abc");
    }

    #[test]
    fn a_prefix_without_a_hash_tag_is_refused() {
        for prefix in ["wasender", "{}wasender", "wasender}{", ""] {
            let options = RedisOptions::new("redis://127.0.0.1/").prefix(prefix);
            assert!(options.validate().is_err(), "{prefix:?}");
        }
        assert!(RedisOptions::new("redis://127.0.0.1/").validate().is_ok());
    }

    #[test]
    fn a_bad_url_is_refused_without_quoting_its_password() {
        let options = RedisOptions::new("nope://user:hunter2@host/");
        let error = options.validate().unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("redis://user:s3cret@host/"),
            "redis://user:***@host/"
        );
        assert_eq!(redact_url("redis://token@host/"), "redis://***@host/");
        assert_eq!(redact_url("redis://host:6379/"), "redis://host:6379/");
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let options = RedisOptions::new("redis://h/").handler_retries(
            HandlerRetryPolicy::default()
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(35)),
        );
        let waits: Vec<u128> = (1..=4).map(|n| options.backoff(n).as_millis()).collect();
        assert_eq!(waits, [10, 20, 35, 35]);
    }

    #[test]
    fn the_worker_needs_backoff_shorter_than_the_claim_time() {
        let retries = |max| HandlerRetryPolicy::default().max_backoff(Duration::from_millis(max));
        let options = RedisOptions::new("redis://h/")
            .claim_idle(Duration::from_secs(1))
            .handler_retries(retries(1000));
        assert!(options.validate_worker().is_err());
        assert!(options
            .handler_retries(retries(900))
            .validate_worker()
            .is_ok());
    }
}
