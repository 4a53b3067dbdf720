//! The crate's one error type and its mapping to HTTP status codes.

/// Everything that can go wrong in this crate.
///
/// Each variant says *when* it happens and carries the input it is about: a
/// REST error names the call (`POST /send-message`), a listener error its
/// address, a journal error its path. Where an underlying error exists
/// (`ureq`, `serde_json`, `std::io`), [`source()`](std::error::Error::source)
/// returns it. [`WasenderError::status_code`] maps the webhook-side variants
/// to the HTTP status a receiver should answer with, and the REST-side
/// variants to the status the API answered (if any). No variant ever carries
/// a webhook secret, an API key, an access token or a signature header value.
///
/// # Examples
///
/// A webhook error says what to answer the sender:
///
/// ```
/// use wasenderapi::{WasenderError, WebhookVerifier};
/// let verifier = WebhookVerifier::with_secret("webhook-secret");
/// let err = verifier
///     .handle_webhook_event(br#"{"event":"session.status"}"#, Some("wrong"))
///     .unwrap_err();
/// assert!(matches!(err, WasenderError::InvalidSignature));
/// assert_eq!(err.status_code(), Some(401));
///
/// // A body that is not JSON says where, and what to send instead.
/// let err = verifier.handle_webhook_event(b"{\"event\": ", Some("webhook-secret")).unwrap_err();
/// assert!(matches!(err, WasenderError::InvalidJson { line: 1, .. }));
/// assert_eq!(err.status_code(), Some(400));
/// println!("{err}");
/// ```
///
/// A REST error names the call and keeps what the API said (feature `client`):
///
/// ```
/// # #[cfg(feature = "client")] {
/// use std::time::Duration;
/// use wasenderapi::WasenderError;
///
/// /// How long to wait before sending again, if the API said.
/// fn wait_for(err: &WasenderError) -> Option<Duration> {
///     match err {
///         WasenderError::Api { status: 429, retry_after, .. } => *retry_after,
///         _ => None,
///     }
/// }
/// assert_eq!(wait_for(&WasenderError::MissingSignature), None);
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasenderError {
    /// A webhook request carried no signature header, or a blank one
    /// (`WebhookVerifier::verify`, `handle_webhook_event`, the listener).
    #[error("missing webhook signature: the X-Webhook-Signature header is absent or empty")]
    MissingSignature,

    /// A webhook request's signature header matched none of the configured
    /// secrets (or is longer than any valid signature).
    #[error(
        "invalid webhook signature: the X-Webhook-Signature header matches no configured secret"
    )]
    InvalidSignature,

    /// A webhook was to be verified but no webhook secret is configured, so
    /// none can be verified and none is accepted. Returned when handling an
    /// event, and by the listener builder's `spawn`.
    #[error("no webhook secret configured: add one to the WebhookVerifier (WebhookVerifier::with_secret, or with_webhook_secret on the client) before handling events")]
    SecretNotConfigured,

    /// A verified webhook request had an empty body.
    #[error("empty request body: send the webhook event as a JSON object")]
    EmptyBody,

    /// A verified webhook request's body is not valid UTF-8.
    #[error("request body is not valid UTF-8 (first invalid byte at offset {valid_up_to}): send the webhook event as JSON in UTF-8")]
    BodyNotUtf8 {
        /// Length of the longest valid UTF-8 prefix.
        valid_up_to: usize,
    },

    /// A verified webhook request's body is not well-formed JSON (or nests
    /// deeper than 128 levels), whatever it starts with: `[1,2` is reported
    /// here, not as [`WasenderError::NotAnEvent`].
    #[error("{}", invalid_json_text(*line, *column, message))]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser found wrong.
        message: String,
    },

    /// A verified webhook request's body is well-formed JSON but not a webhook
    /// event (not an object, or no string `event` field).
    #[error("request body is JSON but not a webhook event: {reason}; send a JSON object with a string `event` member")]
    NotAnEvent {
        /// What is missing or wrong.
        reason: String,
    },

    /// The REST API answered a call with an error status (4xx/5xx), after
    /// any retries the client's `RetryPolicy` allowed.
    #[cfg(feature = "client")]
    #[error("WasenderAPI answered {status} to {endpoint}: {message}")]
    Api {
        /// The call, as method and path relative to the base URL
        /// (`POST /send-message`), or `GET` and the media URL without its query.
        endpoint: String,
        /// HTTP status of the response.
        status: u16,
        /// The `message` of the error body, or a generic text for the status.
        message: String,
        /// Field errors from the body's `errors` map (validation failures, 422).
        errors: std::collections::BTreeMap<String, Vec<String>>,
        /// How long the API asked us to wait (`Retry-After` header or `retry_after` field).
        retry_after: Option<std::time::Duration>,
    },

    /// A REST call or media download failed at the network level (DNS, connect,
    /// TLS, connection reset, malformed answer), after any retries the client's
    /// `RetryPolicy` allowed. [`source()`](std::error::Error::source) is the
    /// HTTP library's error: `err.source().and_then(|s| s.downcast_ref::<ureq::Error>())`.
    #[cfg(feature = "client")]
    #[error("network error on {endpoint}: {source}")]
    Network {
        /// The call (`POST /send-message`), or `GET` and the media URL without its query.
        endpoint: String,
        /// The underlying transport error (a `ureq::Error`).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A REST call or media download did not finish within its time limit
    /// (connect timeout, per-call timeout, or download timeout), after any
    /// retries the client's `RetryPolicy` allowed.
    /// [`source()`](std::error::Error::source) is the HTTP library's error (a `ureq::Error`).
    #[cfg(feature = "client")]
    #[error("{endpoint} timed out: {reason}")]
    Timeout {
        /// The call (`POST /send-message`), or `GET` and the media URL without its query.
        endpoint: String,
        /// Which limit was exceeded, with its configured value when known.
        reason: String,
        /// The underlying transport error (a `ureq::Error`).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The API answered a call with a success status, but the body is not JSON,
    /// not of the shape the call expects, lacks a member it needs (such as the
    /// `publicUrl` of `/decrypt-media`), or is larger than 16 MiB. Not retried.
    #[cfg(feature = "client")]
    #[error("could not decode the answer to {endpoint} (status {status}): {reason}{}; body starts with {snippet:?}", source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Decode {
        /// The call, as method and path relative to the base URL (`GET /status`).
        endpoint: String,
        /// HTTP status of the response.
        status: u16,
        /// What went wrong, in words (not JSON, not the expected shape, a
        /// member missing, too large).
        reason: String,
        /// The first 200 characters of the body, for diagnosis (empty when
        /// the body was too large to read).
        snippet: String,
        /// The JSON error (with its line and column), when decoding failed in `serde_json`.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// A media download is larger than the client's limit
    /// (`WasenderSyncClient::with_max_download_size`, default 100 MiB). The
    /// download stops when the file declares a larger `Content-Length`, or as
    /// soon as it passes the limit; the bytes read are dropped.
    #[cfg(feature = "client")]
    #[error("the media at {url} is larger than the download limit of {limit} bytes{}; raise the limit with with_max_download_size", declared.map(|d| format!(" (it declares {d} bytes)")).unwrap_or_default())]
    MediaTooLarge {
        /// The media URL without its query.
        url: String,
        /// The configured limit, in bytes.
        limit: u64,
        /// The size the server declared (`Content-Length`), when it declared one.
        declared: Option<u64>,
    },

    /// A call needs the account's Personal Access Token (the `/whatsapp-sessions`
    /// endpoints) and none was configured; no request was sent.
    #[cfg(feature = "client")]
    #[error(
        "{endpoint} needs a Personal Access Token: configure it with with_personal_access_token()"
    )]
    MissingPersonalAccessToken {
        /// The call that needs it (`GET /whatsapp-sessions`).
        endpoint: String,
    },

    /// An argument given to the crate was unusable, so nothing was done (for
    /// example a message without a key id, an upload without a content type,
    /// or a listener option of zero). The text names the argument.
    #[cfg(any(feature = "client", feature = "listener", feature = "redis"))]
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A REST request could not be built from its inputs, so nothing was sent:
    /// the base URL or a media URL is not a valid URI, a content type or
    /// credential holds characters an HTTP header cannot carry, or a body
    /// cannot be encoded as JSON. [`source()`](std::error::Error::source) is
    /// the error that refused it. Never shows a credential.
    #[cfg(feature = "client")]
    #[error("could not build the request {endpoint}: {reason}: {source}")]
    InvalidRequest {
        /// The call (`POST /send-message`), or `GET` and the media URL without its query.
        endpoint: String,
        /// Which input was refused.
        reason: String,
        /// The error that refused it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A local I/O error that no more specific variant (such as
    /// `Bind` or `Journal`) describes.
    #[cfg(any(feature = "client", feature = "listener", feature = "redis"))]
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The webhook listener could not listen on `addr`: the port is in use,
    /// binding it is not allowed, or the address does not resolve. Returned by
    /// the listener builder's `spawn`; no listener was started.
    #[cfg(feature = "listener")]
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address as given to the builder.
        addr: String,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },

    /// The webhook listener's TLS certificate chain or private key (builder
    /// option `tls`, feature `tls`) cannot be used: the file cannot be read,
    /// holds no PEM certificate or key, or the key does not belong to the
    /// certificate. Returned by the listener builder's `spawn`; no listener
    /// was started. Never shows key material.
    #[cfg(feature = "tls")]
    #[error("TLS file {}: {reason}", path.display())]
    TlsFile {
        /// The certificate or key file concerned.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The error that refused it (I/O, PEM or rustls), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// Creating, reading, writing or syncing a file or directory of the
    /// durable journal failed (permissions, disk full, a file removed under
    /// the journal).
    #[cfg(feature = "listener")]
    #[error("journal error at {}: {source}", path.display())]
    Journal {
        /// The journal file or directory concerned.
        path: std::path::PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A journal file starts with a magic number or format version this
    /// version of the crate does not know (written by another program or a
    /// newer release). The journal refuses to open and leaves the file
    /// untouched, so no pending event is lost.
    #[cfg(feature = "listener")]
    #[error("journal file {} is not in a format this version understands ({reason}); it was left untouched", path.display())]
    JournalFormat {
        /// The file concerned.
        path: std::path::PathBuf,
        /// What was found instead (the magic or version read).
        reason: String,
    },

    /// Opening a journal found its directory locked by another process, or
    /// by another listener or `JournalDir` in this one, whose writes would
    /// interleave with ours; the journal refuses to open and changes nothing.
    /// Stop the other holder, or give each listener its own directory.
    #[cfg(feature = "listener")]
    #[error("journal directory {} is locked by another listener or process{}", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
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
    /// For REST errors, the status the API answered with (`Api`,
    /// `Decode`). `None` when no HTTP status applies (network
    /// failures, timeouts, oversized downloads, local I/O, bad arguments,
    /// listener and journal errors).
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::MissingSignature | Self::InvalidSignature => Some(401),
            Self::EmptyBody
            | Self::BodyNotUtf8 { .. }
            | Self::InvalidJson { .. }
            | Self::NotAnEvent { .. } => Some(400),
            Self::SecretNotConfigured => Some(500),
            #[cfg(feature = "client")]
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            #[cfg(feature = "client")]
            Self::Network { .. }
            | Self::Timeout { .. }
            | Self::MediaTooLarge { .. }
            | Self::MissingPersonalAccessToken { .. }
            | Self::InvalidRequest { .. } => None,
            #[cfg(any(feature = "client", feature = "listener", feature = "redis"))]
            Self::InvalidArgument(_) | Self::Io(_) => None,
            #[cfg(feature = "listener")]
            Self::Bind { .. }
            | Self::Journal { .. }
            | Self::JournalFormat { .. }
            | Self::JournalLocked { .. } => None,
            #[cfg(feature = "tls")]
            Self::TlsFile { .. } => None,
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

/// The text of [`WasenderError::InvalidJson`]. serde_json reports nesting
/// deeper than its limit of 128 levels as "recursion limit exceeded": such a
/// body may well be JSON, so it is not called invalid.
fn invalid_json_text(line: usize, column: usize, message: &str) -> String {
    if message == "recursion limit exceeded" {
        format!(
            "request body nests deeper than 128 levels at line {line}, column {column} ({message}): send a webhook event nested at most 128 levels deep"
        )
    } else {
        format!(
            "request body is not valid JSON at line {line}, column {column}: {message}; send the webhook event as one JSON object"
        )
    }
}

/// The crate's `Result` alias.
pub type Result<T, E = WasenderError> = std::result::Result<T, E>;
