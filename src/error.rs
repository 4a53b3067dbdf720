//! The crate's one error type and its mapping to HTTP status codes.

use std::collections::BTreeMap;
use std::time::Duration;

/// Everything that can go wrong in this crate.
///
/// Each variant says *when* it happens. [`WasenderError::status_code`] maps the
/// webhook-side variants to the HTTP status a receiver should answer with, and
/// the REST-side variants to the status the API answered (if any). No variant
/// ever carries a webhook secret, an API key or a signature header value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasenderError {
    /// The request carried no signature header, or an empty one.
    #[error("missing webhook signature: the X-Webhook-Signature header is absent or empty")]
    MissingSignature,

    /// A signature header was present but matched none of the configured secrets.
    #[error(
        "invalid webhook signature: the X-Webhook-Signature header matches no configured secret"
    )]
    InvalidSignature,

    /// No webhook secret is configured, so no event can be verified (and none is accepted).
    #[error("no webhook secret configured: add one to the WebhookVerifier (WebhookVerifier::with_secret, or with_webhook_secret on the client) before handling events")]
    SecretNotConfigured,

    /// The request body was empty.
    #[error("empty request body: a webhook event is a JSON object")]
    EmptyBody,

    /// The request body is not valid UTF-8.
    #[error("request body is not valid UTF-8 (first invalid byte at offset {valid_up_to})")]
    BodyNotUtf8 {
        /// Length of the longest valid UTF-8 prefix.
        valid_up_to: usize,
    },

    /// The request body is not well-formed JSON (or nests deeper than 128 levels).
    #[error("request body is not valid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser found wrong.
        message: String,
    },

    /// The body is JSON but not a webhook event object (not an object, or no string `event` field).
    #[error("request body is JSON but not a webhook event: {reason}")]
    NotAnEvent {
        /// What is missing or wrong.
        reason: String,
    },

    /// The REST API answered with an error status (4xx/5xx).
    #[error("WasenderAPI error {status}: {message}")]
    Api {
        /// HTTP status of the response.
        status: u16,
        /// The `message` of the error body, or a generic text for the status.
        message: String,
        /// Field errors from the body's `errors` map (validation failures, 422).
        errors: BTreeMap<String, Vec<String>>,
        /// How long the API asked us to wait (`Retry-After` header or `retry_after` field).
        retry_after: Option<Duration>,
    },

    /// The REST call could not be completed at the network level (DNS, connect, TLS, reset).
    #[error("network error talking to WasenderAPI: {0}")]
    Network(String),

    /// The REST call timed out.
    #[error("request to WasenderAPI timed out: {0}")]
    Timeout(String),

    /// The API answered, but its body could not be decoded as the expected JSON.
    #[error("could not decode WasenderAPI response (status {status}): {reason}; body starts with {snippet:?}")]
    Decode {
        /// HTTP status of the response.
        status: u16,
        /// Why decoding failed.
        reason: String,
        /// The first bytes of the body, for diagnosis.
        snippet: String,
    },

    /// The call needs a Personal Access Token and none was configured; no request was sent.
    #[error(
        "this call needs a Personal Access Token: configure it with with_personal_access_token()"
    )]
    MissingPersonalAccessToken,

    /// An argument given to the crate was unusable (for example a message without a key id).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An I/O error outside HTTP that no more specific variant describes.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The listener could not listen on `addr` (in use, not allowed, not resolvable).
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address as given to the builder.
        addr: String,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },

    /// Reading or writing the journal failed.
    #[error("journal error at {}: {source}", path.display())]
    Journal {
        /// The journal file or directory concerned.
        path: std::path::PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A journal file was written by another format or version; it is left untouched.
    #[error("journal file {} is not in a format this version understands ({reason}); it was left untouched", path.display())]
    JournalFormat {
        /// The file concerned.
        path: std::path::PathBuf,
        /// What was found (magic or version).
        reason: String,
    },

    /// Another process holds the journal directory.
    #[error("journal directory {} is locked by another process{}", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    JournalLocked {
        /// The journal directory.
        path: std::path::PathBuf,
        /// The holder's process id, when it could be read.
        pid: Option<u32>,
    },

    /// A Redis command failed (feature `redis`): Redis unreachable, too slow
    /// (past the command timeout), out of memory, or refusing the command.
    /// The listener answers such failures 503 with `Retry-After`.
    #[cfg(feature = "redis")]
    #[error("Redis {operation} failed: {source}")]
    Redis {
        /// What was being done (`"append"`, `"XACK"`, `"requeue"`, …).
        operation: &'static str,
        /// The error from the `redis` crate.
        #[source]
        source: ::redis::RedisError,
    },

    /// `WAIT` confirmed fewer replicas than configured within its timeout
    /// (feature `redis`). The event is in the primary but not known to be
    /// replicated; the listener answers 503 so that the sender retries.
    #[cfg(feature = "redis")]
    #[error("Redis WAIT: {acknowledged} of {wanted} replica(s) confirmed the write in time")]
    RedisReplicas {
        /// Replicas that had to confirm.
        wanted: u32,
        /// Replicas that did.
        acknowledged: u32,
    },
}

impl WasenderError {
    /// The HTTP status this error corresponds to.
    ///
    /// For webhook errors, the status a receiver should answer with:
    /// 401 for a missing or invalid signature, 400 for a body that is not an
    /// event, 500 when no secret is configured (a server-side mistake).
    /// For REST errors, the status the API answered with. `None` when no HTTP
    /// status applies (network failures, timeouts, local I/O, bad arguments).
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::MissingSignature | Self::InvalidSignature => Some(401),
            Self::EmptyBody
            | Self::BodyNotUtf8 { .. }
            | Self::InvalidJson { .. }
            | Self::NotAnEvent { .. } => Some(400),
            Self::SecretNotConfigured => Some(500),
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Network(_)
            | Self::Timeout(_)
            | Self::MissingPersonalAccessToken
            | Self::InvalidArgument(_)
            | Self::Io(_)
            | Self::Bind { .. }
            | Self::Journal { .. }
            | Self::JournalFormat { .. }
            | Self::JournalLocked { .. } => None,
            #[cfg(feature = "redis")]
            Self::Redis { .. } | Self::RedisReplicas { .. } => None,
        }
    }

    /// Whether this error is about an incoming webhook request (signature or body).
    pub fn is_webhook_rejection(&self) -> bool {
        matches!(
            self,
            Self::MissingSignature
                | Self::InvalidSignature
                | Self::EmptyBody
                | Self::BodyNotUtf8 { .. }
                | Self::InvalidJson { .. }
                | Self::NotAnEvent { .. }
        )
    }

    /// Whether this is a signature failure (missing or invalid).
    pub fn is_signature_error(&self) -> bool {
        matches!(self, Self::MissingSignature | Self::InvalidSignature)
    }
}

/// The crate's `Result` alias.
pub type Result<T, E = WasenderError> = std::result::Result<T, E>;
