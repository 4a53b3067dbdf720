//! HTTP plumbing for the REST client: the shared `ureq` agent, authentication,
//! the retry loop, status-to-error mapping and response decoding.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use ureq::http::{self, HeaderValue, Method};

use super::response::{api_error, rate_limit, ApiReply};
use super::retry::{Failure, RetryPolicy};
use super::WasenderSyncClient;
use crate::error::{Result, WasenderError};
use crate::secret::Secret;

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("wasenderapi-rust/", env!("CARGO_PKG_VERSION"));

/// Default limit for one API call, connection to last body byte.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit for opening a connection (DNS, TCP, TLS).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit for downloading one decrypted media file.
pub(crate) const DEFAULT_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// Default largest media download accepted (WhatsApp documents go up to 2 GB; bots rarely want that).
pub(crate) const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 100 * 1024 * 1024;
/// Largest API (JSON) response accepted.
const MAX_API_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The client's HTTP settings and its lazily built, shared `ureq` agent.
#[derive(Clone)]
pub(crate) struct HttpSettings {
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) download_timeout: Duration,
    pub(crate) max_download_bytes: u64,
    pub(crate) retry: RetryPolicy,
    /// Built on first use and shared by every clone of the client (one
    /// connection pool); replaced when a setting that shapes it changes.
    agent: Arc<OnceLock<ureq::Agent>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            download_timeout: DEFAULT_DOWNLOAD_TIMEOUT,
            max_download_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            retry: RetryPolicy::default(),
            agent: Arc::default(),
        }
    }
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("download_timeout", &self.download_timeout)
            .field("max_download_bytes", &self.max_download_bytes)
            .field("retry", &self.retry)
            .finish()
    }
}

impl HttpSettings {
    /// Forgets the agent so the next call builds one with the new settings.
    pub(crate) fn reset_agent(&mut self) {
        self.agent = Arc::default();
    }

    fn agent(&self) -> &ureq::Agent {
        self.agent.get_or_init(|| {
            ureq::Agent::config_builder()
                // Wasender explains errors in the body: keep 4xx/5xx as responses.
                .http_status_as_error(false)
                .user_agent(USER_AGENT)
                .timeout_global(Some(self.timeout))
                .timeout_connect(Some(self.connect_timeout))
                .build()
                .new_agent()
        })
    }
}

/// Which credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// The session API key.
    ApiKey,
    /// The account's Personal Access Token.
    PersonalAccessToken,
}

/// What a request sends.
#[derive(Debug)]
enum Payload<'a> {
    /// Nothing (GET, DELETE) or an empty body (bodiless POST/PUT).
    Empty,
    /// Bytes with their content type.
    Bytes(std::borrow::Cow<'a, [u8]>, String),
}

/// One REST call, described before it is sent (and re-sent on retry).
#[derive(Debug)]
pub(crate) struct ApiRequest<'a> {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    payload: Payload<'a>,
    auth: Auth,
    idempotent: bool,
}

impl<'a> ApiRequest<'a> {
    fn new(method: Method, path: String, idempotent: bool) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            payload: Payload::Empty,
            auth: Auth::ApiKey,
            idempotent,
        }
    }

    /// A GET (safe to repeat).
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path.into(), true)
    }

    /// A POST; not safe to repeat unless marked with [`Self::idempotent`].
    pub(crate) fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path.into(), false)
    }

    /// A PUT (safe to repeat: it sets a state).
    pub(crate) fn put(path: impl Into<String>) -> Self {
        Self::new(Method::PUT, path.into(), true)
    }

    /// A DELETE (safe to repeat).
    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path.into(), true)
    }

    /// Marks whether repeating the request after an ambiguous failure is harmless.
    pub(crate) fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Authenticates with the Personal Access Token instead of the API key.
    pub(crate) fn personal(mut self) -> Self {
        self.auth = Auth::PersonalAccessToken;
        self
    }

    /// Adds a query parameter.
    pub(crate) fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    /// Sends `body` as JSON.
    pub(crate) fn json(mut self, body: &impl Serialize) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            WasenderError::InvalidArgument(format!("request body is not serialisable: {e}"))
        })?;
        self.payload = Payload::Bytes(bytes.into(), "application/json".to_owned());
        Ok(self)
    }

    /// Sends raw bytes with their content type.
    pub(crate) fn bytes(mut self, bytes: &'a [u8], content_type: &str) -> Self {
        self.payload = Payload::Bytes(bytes.into(), content_type.to_owned());
        self
    }
}

/// Percent-encodes one path segment. Characters allowed in a segment by
/// RFC 3986 (unreserved, sub-delims, `:` and `@`) stay as they are, so JIDs
/// like `123@g.us` and phones like `+123` go out readable.
pub(crate) fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a query component (only unreserved characters stay).
fn query_component(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How a `ureq` failure maps to our error, and whether anything was sent.
fn transport_error(error: ureq::Error) -> (WasenderError, Failure) {
    use std::io::ErrorKind;
    match error {
        ureq::Error::Timeout(which) => {
            let failure = match which {
                ureq::Timeout::Resolve | ureq::Timeout::Connect => Failure::NotSent,
                _ => Failure::Ambiguous,
            };
            let what = match which {
                ureq::Timeout::Global | ureq::Timeout::PerCall => {
                    "the call took longer than the configured timeout".to_owned()
                }
                ureq::Timeout::Connect => "connecting took longer than the connect timeout".into(),
                ureq::Timeout::Resolve => "resolving the host name took too long".into(),
                other => format!("{other:?} timeout"),
            };
            (WasenderError::Timeout(what), failure)
        }
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            (WasenderError::Network(error.to_string()), Failure::NotSent)
        }
        ureq::Error::Io(ref io) if io.kind() == ErrorKind::ConnectionRefused => {
            (WasenderError::Network(error.to_string()), Failure::NotSent)
        }
        ureq::Error::Io(ref io) if io.kind() == ErrorKind::TimedOut => (
            WasenderError::Timeout(error.to_string()),
            Failure::Ambiguous,
        ),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => (
            WasenderError::InvalidArgument(format!("invalid request: {error}")),
            Failure::Permanent,
        ),
        other => (
            WasenderError::Network(other.to_string()),
            Failure::Ambiguous,
        ),
    }
}

/// Classifies an error status for the retry policy.
fn status_failure(status: u16, error: &WasenderError) -> Failure {
    let retry_after = match error {
        WasenderError::Api { retry_after, .. } => *retry_after,
        _ => None,
    };
    match status {
        429 => Failure::RateLimited { retry_after },
        500 | 502 | 503 | 504 => Failure::ServerError { retry_after },
        _ => Failure::Permanent,
    }
}

impl WasenderSyncClient {
    /// The bearer token for `auth`; fails before any I/O when the PAT is missing.
    fn token(&self, auth: Auth) -> Result<&str> {
        match auth {
            Auth::ApiKey => Ok(self.api_key.expose()),
            Auth::PersonalAccessToken => self
                .personal_access_token
                .as_ref()
                .map(Secret::expose)
                .filter(|t| !t.is_empty())
                .ok_or(WasenderError::MissingPersonalAccessToken),
        }
    }

    fn url(&self, request: &ApiRequest<'_>) -> String {
        let mut url = format!("{}{}", self.base_url, request.path);
        for (i, (name, value)) in request.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(name);
            url.push('=');
            url.push_str(&query_component(value));
        }
        url
    }

    /// Sends `request`, retrying as the policy allows; returns a 2xx answer or the error.
    pub(crate) fn execute(&self, request: ApiRequest<'_>) -> Result<ApiReply> {
        let token = self.token(request.auth)?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                WasenderError::InvalidArgument(
                    "the API key or access token contains characters not allowed in an HTTP header"
                        .to_owned(),
                )
            })?;
        authorization.set_sensitive(true);
        let url = self.url(&request);
        let mut retries = 0;
        loop {
            let (error, failure) = match self.attempt(&request, &url, &authorization) {
                Ok(reply) => return Ok(reply),
                Err(pair) => pair,
            };
            match self.http.retry.delay(retries, &failure, request.idempotent) {
                Some(wait) => {
                    log::debug!(
                        "wasenderapi: {} {} failed ({error}); retrying in {wait:?}",
                        request.method,
                        request.path
                    );
                    std::thread::sleep(wait);
                    retries += 1;
                }
                None => return Err(error),
            }
        }
    }

    /// One attempt: a 2xx reply, or the error with its retry classification.
    fn attempt(
        &self,
        request: &ApiRequest<'_>,
        url: &str,
        authorization: &HeaderValue,
    ) -> std::result::Result<ApiReply, (WasenderError, Failure)> {
        let builder = http::Request::builder()
            .method(request.method.clone())
            .uri(url)
            .header(http::header::AUTHORIZATION, authorization.clone())
            .header(http::header::ACCEPT, "application/json");
        let agent = self.http.agent();
        let bad_request = |e: http::Error| {
            (
                WasenderError::InvalidArgument(format!("invalid request: {e}")),
                Failure::Permanent,
            )
        };
        let sent = match &request.payload {
            Payload::Empty if matches!(request.method, Method::GET | Method::DELETE) => {
                agent.run(builder.body(()).map_err(bad_request)?)
            }
            // A bodiless POST/PUT still says `Content-Length: 0` (some proxies demand it).
            Payload::Empty => agent.run(builder.body(&[][..]).map_err(bad_request)?),
            Payload::Bytes(bytes, content_type) => agent.run(
                builder
                    .header(http::header::CONTENT_TYPE, content_type.as_str())
                    .body(bytes.as_ref())
                    .map_err(bad_request)?,
            ),
        };
        let mut response = sent.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_API_BODY_BYTES)
            .read_to_vec()
            .map_err(transport_error)?;
        let headers = response.headers();
        if (200..300).contains(&status) {
            Ok(ApiReply {
                status,
                body,
                rate_limit: rate_limit(headers),
            })
        } else {
            let error = api_error(status, headers, &body);
            let failure = status_failure(status, &error);
            Err((error, failure))
        }
    }

    /// Downloads a public URL (no credentials are sent), up to the configured size.
    pub(crate) fn download(&self, url: &str) -> Result<Vec<u8>> {
        let agent = self.http.agent();
        let mut retries = 0;
        loop {
            let request = http::Request::get(url)
                .body(())
                .map_err(|e| WasenderError::InvalidArgument(format!("invalid media URL: {e}")))?;
            let request = agent
                .configure_request(request)
                .timeout_global(Some(self.http.download_timeout))
                .build();
            let outcome = agent
                .run(request)
                .map_err(transport_error)
                .and_then(|mut response| {
                    let status = response.status().as_u16();
                    if !(200..300).contains(&status) {
                        let body = response
                            .body_mut()
                            .with_config()
                            .limit(64 * 1024)
                            .read_to_vec()
                            .unwrap_or_default();
                        let error = api_error(status, response.headers(), &body);
                        let failure = status_failure(status, &error);
                        return Err((error, failure));
                    }
                    response
                        .body_mut()
                        .with_config()
                        .limit(self.http.max_download_bytes)
                        .read_to_vec()
                        .map_err(|e| match e {
                            ureq::Error::BodyExceedsLimit(limit) => (
                                WasenderError::Decode {
                                    status,
                                    reason: format!("media is larger than the {limit}-byte limit"),
                                    snippet: String::new(),
                                },
                                Failure::Permanent,
                            ),
                            other => transport_error(other),
                        })
                });
            match outcome {
                Ok(bytes) => return Ok(bytes),
                Err((error, failure)) => match self.http.retry.delay(retries, &failure, true) {
                    Some(wait) => {
                        std::thread::sleep(wait);
                        retries += 1;
                    }
                    None => return Err(error),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_jids_readable_and_encode_the_rest() {
        assert_eq!(segment("123-456@g.us"), "123-456@g.us");
        assert_eq!(segment("+1234"), "+1234");
        assert_eq!(segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }
}
