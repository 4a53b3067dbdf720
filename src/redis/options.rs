//! [`RedisOptions`] (where Redis is and how to reach it: what every role
//! shares) and [`RedisAppenderOptions`] (what only the listeners' appender
//! uses). The worker's own settings are on its builder,
//! [`RedisWorkerBuilder`](super::RedisWorkerBuilder).

use std::fmt;
use std::time::Duration;

use crate::error::{Result, WasenderError};

/// The key prefix when [`RedisOptions::prefix`] is not called. The braces are
/// a Redis Cluster hash tag: every key shares one slot, so the scripts that
/// touch several keys run on one node.
pub const DEFAULT_KEY_PREFIX: &str = "{wasender}";

/// The consumer group when [`RedisWorkerBuilder::group`](super::RedisWorkerBuilder::group)
/// is not called.
pub const DEFAULT_GROUP: &str = "wasender";

/// The consumer a stopping worker hands back the entries it still holds to
/// (see the [module docs](super#what-the-workers-do)): entries pending on it
/// are taken over by the other workers, and once it holds nothing it is
/// removed like any idle consumer. No worker may take this name.
pub const HANDED_BACK_CONSUMER: &str = "handed-back";

/// Where Redis is and how to reach it: the server's URL, the key prefix and
/// the timeouts. What the listener's appender
/// ([`RedisAppenderOptions`], `WebhookListener::redis_builder`),
/// the [`RedisWorker`](super::RedisWorker) and the
/// [`RedisDeadLetters`](super::RedisDeadLetters) tools share: give them the
/// same URL and prefix. Making one opens no connection.
///
/// Every setter documents its default; [`RedisOptions::new`] takes the one
/// setting without a sensible default, the server's URL.
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::redis::RedisOptions;
///
/// let redis = RedisOptions::new("redis://:password@redis.internal:6379/0")
///     .prefix("{bot}")
///     .command_timeout(Duration::from_secs(1));
/// assert_eq!(redis.events_key(), "{bot}:events");
/// assert_eq!(redis.dead_key(), "{bot}:dead");
/// // The password never shows in Debug output.
/// assert!(!format!("{redis:?}").contains("password"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisOptions {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
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
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
        }
    }

    /// The prefix of every key (default [`DEFAULT_KEY_PREFIX`], `{wasender}`):
    /// the stream is `<prefix>:events`, the dead letters `<prefix>:dead`, the
    /// handler attempts `<prefix>:attempts`, the dedupe keys
    /// `<prefix>:seen:<dedupe key>`. It must hold a non-empty Redis Cluster
    /// hash tag (`{…}`) so that all of them share one slot.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
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
    /// [`wait_replicas`](RedisAppenderOptions::wait_replicas)). A connection
    /// whose command timed out is closed, never reused.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
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

    /// The hash of handler attempts of the entries being handled: `<prefix>:attempts`.
    pub fn attempts_key(&self) -> String {
        format!("{}:attempts", self.prefix)
    }

    /// The dedupe key for an event whose dedupe key is `key`: `<prefix>:seen:<key>`.
    pub fn seen_key(&self, key: &str) -> String {
        format!("{}:seen:{key}", self.prefix)
    }

    /// The server's URL with its password (if any) replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Checks what every role needs: a parseable URL, a hash-tagged prefix,
    /// non-zero timeouts.
    pub(crate) fn validate(&self) -> Result<()> {
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
        if self.connect_timeout.is_zero() || self.command_timeout.is_zero() {
            return invalid("the connect and command timeouts must be longer than zero".into());
        }
        Ok(())
    }
}

/// How the listener adds events to the stream: [`RedisAppender`](super::RedisAppender),
/// and `WebhookListener::redis_builder` (feature `listener`), which takes
/// these (or just a [`RedisOptions`], for the defaults below).
///
/// ```
/// use std::time::Duration;
/// use wasenderapi::redis::{RedisAppenderOptions, RedisOptions};
///
/// let appender = RedisAppenderOptions::new(RedisOptions::new("redis://127.0.0.1:6379/"))
///     .dedupe_ttl(Duration::from_secs(600))
///     .wait_replicas(1, Duration::from_millis(200))
///     .pool_size(16);
/// assert_eq!(appender.redis().events_key(), "{wasender}:events");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAppenderOptions {
    pub(crate) redis: RedisOptions,
    pub(crate) listener_id: Option<String>,
    pub(crate) dedupe_ttl: Duration,
    pub(crate) max_stream_len: Option<u64>,
    pub(crate) wait_replicas: u32,
    pub(crate) wait_timeout: Duration,
    pub(crate) pool_size: usize,
}

impl From<RedisOptions> for RedisAppenderOptions {
    fn from(redis: RedisOptions) -> Self {
        Self::new(redis)
    }
}

impl RedisAppenderOptions {
    /// The appender's defaults, on the Redis described by `redis`.
    pub fn new(redis: RedisOptions) -> Self {
        Self {
            redis,
            listener_id: None,
            dedupe_ttl: Duration::from_secs(3600),
            max_stream_len: None,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(500),
            pool_size: 32,
        }
    }

    /// The connection settings.
    pub fn redis(&self) -> &RedisOptions {
        &self.redis
    }

    /// The `listener` field of every entry this appender adds (default: the
    /// host name and process id, `host/1234`). For tracing only.
    pub fn listener_id(mut self, id: impl Into<String>) -> Self {
        self.listener_id = Some(id.into());
        self
    }

    /// How long a dedupe key is remembered (default one hour): an event
    /// whose [dedupe key](crate::WasenderWebhookEvent::dedupe_key) was seen
    /// within this time, by any listener, is answered 200 as a duplicate and
    /// not added again. Each key costs about 100 bytes of Redis memory for
    /// that long. `Duration::ZERO` turns dedupe off (every verified event is
    /// added). Rounded up to whole milliseconds.
    ///
    /// Redis delivery dedupes by **time**, where the listener's own modes
    /// (`WebhookListenerBuilder::dedupe`) keep the last **n** keys: the same
    /// key, a different window, hence a different name. Redis expires keys
    /// by itself, for every listener at once, and memory stays bounded by
    /// the event rate (with `maxmemory` and `noeviction`, a full Redis
    /// answers 503 rather than forgetting); a count window shared by many
    /// listeners would need a shared ordered index and more round trips on
    /// every request. A listener on its own bounds its window by count so
    /// that its memory and `dedupe.log` stay bounded whatever the rate.
    pub fn dedupe_ttl(mut self, ttl: Duration) -> Self {
        self.dedupe_ttl = ttl;
        self
    }

    /// A hard cap on the stream's length, applied as `XADD … MAXLEN ~ n`
    /// (default: none). **It drops the oldest entries whether or not a
    /// worker has handled them**, so it is a memory backstop only: the
    /// workers already trim what is acknowledged (see
    /// [`RedisWorkerBuilder::trim_interval`](super::RedisWorkerBuilder::trim_interval)).
    /// Prefer a Redis `maxmemory` with `noeviction`, which makes the
    /// listener answer 503 instead.
    pub fn max_stream_len(mut self, max_len: Option<u64>) -> Self {
        self.max_stream_len = max_len;
        self
    }

    /// After each append, `WAIT replicas timeout`: an append succeeds (and
    /// the listener answers 200) only once `replicas` replicas confirmed the
    /// entry within `timeout`, and fails (503) otherwise (default: 0
    /// replicas, no `WAIT`).
    pub fn wait_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait_replicas = replicas;
        self.wait_timeout = timeout;
        self
    }

    /// The most Redis connections the appender holds (default 32), shared by
    /// the threads that append. A request finding them all busy waits up to
    /// the command timeout for one, then fails (503). A Redis-mode listener
    /// runs one adding thread per connection: the adds in flight at once.
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections;
        self
    }

    /// The listener id to stamp on entries.
    pub(crate) fn listener_id_or_default(&self) -> String {
        self.listener_id
            .clone()
            .unwrap_or_else(|| format!("{}/{}", host_name(), std::process::id()))
    }

    /// Checks the connection settings and the appender's own.
    pub(crate) fn validate(&self) -> Result<()> {
        self.redis.validate()?;
        if self.pool_size == 0 {
            return invalid("the appender's pool_size must be at least 1".to_owned());
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
}

/// The error for unusable Redis settings.
pub(crate) fn invalid<T>(what: String) -> Result<T> {
    Err(WasenderError::InvalidArgument(format!("Redis: {what}")))
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
        assert_eq!(options.attempts_key(), "{bot}:prod:attempts");
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
    fn the_appender_refuses_an_empty_pool_and_a_zero_wait() {
        let redis = RedisOptions::new("redis://h/");
        assert!(RedisAppenderOptions::new(redis.clone()).validate().is_ok());
        assert!(RedisAppenderOptions::new(redis.clone())
            .pool_size(0)
            .validate()
            .is_err());
        assert!(RedisAppenderOptions::new(redis)
            .wait_replicas(1, Duration::ZERO)
            .validate()
            .is_err());
    }
}
