//! HTTP plumbing for the REST client: the shared `ureq` agent, authentication,
//! one attempt of a call or media download, and the mapping of `ureq`
//! failures and error statuses to [`WasenderError`]. Every attempt runs under
//! the one retry loop, [`RetryPolicy::run`].

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use ureq::http::{self, HeaderValue, Method};

use super::response::{api_error, rate_limit, ApiReply};
use super::retry::{FailedAttempt, Failure, RetryPolicy};
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
/// How much of an error answer's body is read for its message.
const MAX_ERROR_BODY_BYTES: u64 = 64 * 1024;

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

    /// The call as errors name it: method and path, never the query, the
    /// base URL or a credential (`POST /send-message`).
    pub(crate) fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Sends `body` as JSON.
    pub(crate) fn json(mut self, body: &impl Serialize) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| WasenderError::InvalidRequest {
            endpoint: self.endpoint(),
            reason: "the request body cannot be encoded as JSON".to_owned(),
            source: Box::new(e),
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

/// A URL as errors show it: without its query, fragment or user info, any of
/// which may carry a token.
pub(crate) fn shown_url(url: &str) -> String {
    let url = url.find(['?', '#']).map_or(url, |end| &url[..end]);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
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

/// The failed attempt for a non-2xx answer: [`WasenderError::Api`] built from
/// its status, headers and (the first 64 KiB of) its body.
fn status_error(endpoint: &str, response: &mut http::Response<ureq::Body>) -> FailedAttempt {
    let status = response.status().as_u16();
    // Best effort: an error body that cannot be read still leaves the status.
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ERROR_BODY_BYTES)
        .read_to_vec()
        .unwrap_or_default();
    let error = api_error(endpoint, status, response.headers(), &body);
    FailedAttempt {
        failure: status_failure(status, &error),
        error,
    }
}

impl HttpSettings {
    /// Maps a `ureq` failure on `endpoint` to our error (keeping it as the
    /// source) and classifies it: was anything sent? `call_limit` is the
    /// overall time limit the call ran under.
    fn transport_error(
        &self,
        error: ureq::Error,
        endpoint: &str,
        call_limit: Duration,
    ) -> FailedAttempt {
        use std::io::ErrorKind;
        enum Kind {
            Timeout(String, Failure),
            Network(Failure),
            Invalid,
        }
        let kind = match &error {
            ureq::Error::Timeout(which) => match which {
                ureq::Timeout::Global | ureq::Timeout::PerCall => Kind::Timeout(
                    format!("no complete answer within the {call_limit:?} limit"),
                    Failure::Ambiguous,
                ),
                ureq::Timeout::Connect => Kind::Timeout(
                    format!(
                        "no connection within the {:?} connect limit",
                        self.connect_timeout
                    ),
                    Failure::NotSent,
                ),
                ureq::Timeout::Resolve => Kind::Timeout(
                    "resolving the host name took too long".to_owned(),
                    Failure::NotSent,
                ),
                other => Kind::Timeout(format!("{other:?} took too long"), Failure::Ambiguous),
            },
            ureq::Error::Io(io) if io.kind() == ErrorKind::TimedOut => {
                Kind::Timeout("the connection timed out".to_owned(), Failure::Ambiguous)
            }
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
                Kind::Network(Failure::NotSent)
            }
            ureq::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused => {
                Kind::Network(Failure::NotSent)
            }
            ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
                Kind::Invalid
            }
            _ => Kind::Network(Failure::Ambiguous),
        };
        let endpoint = endpoint.to_owned();
        let source = Box::new(error);
        match kind {
            Kind::Timeout(reason, failure) => FailedAttempt {
                error: WasenderError::Timeout {
                    endpoint,
                    reason,
                    source,
                },
                failure,
            },
            Kind::Network(failure) => FailedAttempt {
                error: WasenderError::Network { endpoint, source },
                failure,
            },
            Kind::Invalid => FailedAttempt::permanent(WasenderError::InvalidRequest {
                endpoint,
                reason: "the HTTP library refused the request".to_owned(),
                source,
            }),
        }
    }
}

impl WasenderSyncClient {
    /// The `Authorization` header for `auth`; fails before any I/O when the
    /// PAT is missing or a credential cannot be a header value.
    fn authorization(&self, auth: Auth, endpoint: &str) -> Result<HeaderValue> {
        let (token, name): (&str, _) = match auth {
            Auth::ApiKey => (self.api_key.expose(), "API key"),
            Auth::PersonalAccessToken => (
                self.personal_access_token
                    .as_ref()
                    .map(Secret::expose)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| WasenderError::MissingPersonalAccessToken {
                        endpoint: endpoint.to_owned(),
                    })?,
                "Personal Access Token",
            ),
        };
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| {
            WasenderError::InvalidRequest {
                endpoint: endpoint.to_owned(),
                reason: format!("the {name} holds characters an HTTP header cannot carry"),
                source: Box::new(e),
            }
        })?;
        value.set_sensitive(true);
        Ok(value)
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
        let endpoint = request.endpoint();
        let authorization = self.authorization(request.auth, &endpoint)?;
        let uri: http::Uri = self
            .url(&request)
            .parse()
            .map_err(|e: http::uri::InvalidUri| WasenderError::InvalidRequest {
                endpoint: endpoint.clone(),
                reason: "the base URL and this path do not form a valid URL".to_owned(),
                source: Box::new(e),
            })?;
        self.http.retry.run(request.idempotent, || {
            self.attempt(&request, &endpoint, &uri, &authorization)
        })
    }

    /// One attempt: a 2xx reply, or the error with its retry classification.
    fn attempt(
        &self,
        request: &ApiRequest<'_>,
        endpoint: &str,
        uri: &http::Uri,
        authorization: &HeaderValue,
    ) -> std::result::Result<ApiReply, FailedAttempt> {
        let builder = http::Request::builder()
            .method(request.method.clone())
            .uri(uri.clone())
            .header(http::header::AUTHORIZATION, authorization.clone())
            .header(http::header::ACCEPT, "application/json");
        let agent = self.http.agent();
        // The method, URI and the other headers are valid already: only a
        // caller's content type can be refused here.
        let bad_header = |e: http::Error| {
            FailedAttempt::permanent(WasenderError::InvalidRequest {
                endpoint: endpoint.to_owned(),
                reason: "the content type is not a valid HTTP header value".to_owned(),
                source: Box::new(e),
            })
        };
        let sent = match &request.payload {
            Payload::Empty if matches!(request.method, Method::GET | Method::DELETE) => {
                agent.run(builder.body(()).map_err(bad_header)?)
            }
            // A bodiless POST/PUT still says `Content-Length: 0` (some proxies demand it).
            Payload::Empty => agent.run(builder.body(&[][..]).map_err(bad_header)?),
            Payload::Bytes(bytes, content_type) => agent.run(
                builder
                    .header(http::header::CONTENT_TYPE, content_type.as_str())
                    .body(bytes.as_ref())
                    .map_err(bad_header)?,
            ),
        };
        let mut response =
            sent.map_err(|e| self.http.transport_error(e, endpoint, self.http.timeout))?;
        if !response.status().is_success() {
            return Err(status_error(endpoint, &mut response));
        }
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_API_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => {
                    FailedAttempt::permanent(WasenderError::Decode {
                        endpoint: endpoint.to_owned(),
                        status,
                        reason: format!("the answer is larger than {limit} bytes"),
                        snippet: String::new(),
                        source: None,
                    })
                }
                other => self
                    .http
                    .transport_error(other, endpoint, self.http.timeout),
            })?;
        Ok(ApiReply {
            endpoint: endpoint.to_owned(),
            status,
            body,
            rate_limit: rate_limit(response.headers()),
        })
    }

    /// Downloads a public URL (no credentials are sent), up to the configured
    /// size, retrying as the policy allows (a download is safe to repeat).
    pub(crate) fn download(&self, url: &str) -> Result<Vec<u8>> {
        let shown = shown_url(url);
        let endpoint = format!("GET {shown}");
        let uri: http::Uri =
            url.parse()
                .map_err(|e: http::uri::InvalidUri| WasenderError::InvalidRequest {
                    endpoint: endpoint.clone(),
                    reason: "the media URL is not a valid URL".to_owned(),
                    source: Box::new(e),
                })?;
        let agent = self.http.agent();
        let limit = self.http.max_download_bytes;
        let deadline = self.http.download_timeout;
        self.http.retry.run(true, || {
            let mut request = http::Request::new(());
            *request.uri_mut() = uri.clone();
            let request = agent
                .configure_request(request)
                .timeout_global(Some(deadline))
                .build();
            let mut response = agent
                .run(request)
                .map_err(|e| self.http.transport_error(e, &endpoint, deadline))?;
            if !response.status().is_success() {
                return Err(status_error(&endpoint, &mut response));
            }
            let declared = response.body().content_length();
            let too_large = || {
                FailedAttempt::permanent(WasenderError::MediaTooLarge {
                    url: shown.clone(),
                    limit,
                    declared,
                })
            };
            if declared.is_some_and(|length| length > limit) {
                return Err(too_large());
            }
            response
                .body_mut()
                .with_config()
                .limit(limit)
                .read_to_vec()
                .map_err(|e| match e {
                    ureq::Error::BodyExceedsLimit(_) => too_large(),
                    other => self.http.transport_error(other, &endpoint, deadline),
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_drop_query_fragment_and_user_info() {
        assert_eq!(
            shown_url("https://user:pw@cdn.example:8443/media/a.jpg?token=x#f"),
            "https://cdn.example:8443/media/a.jpg"
        );
        assert_eq!(shown_url("http://h"), "http://h");
        assert_eq!(shown_url("not a url?q"), "not a url");
    }

    #[test]
    fn segments_keep_jids_readable_and_encode_the_rest() {
        assert_eq!(segment("123-456@g.us"), "123-456@g.us");
        assert_eq!(segment("+1234"), "+1234");
        assert_eq!(segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }
}
