//! HTTP plumbing for the REST client: the shared `ureq` agent, authentication,
//! the retry loop, status-to-error mapping and response decoding.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use ureq::http::{self, HeaderMap, HeaderValue, Method};

use super::retry::{Failure, RetryPolicy};
use super::types::RateLimitInfo;
use super::WasenderSyncClient;
use crate::error::{Result, WasenderError};

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
/// How many bytes of an undecodable body an error shows.
const SNIPPET_CHARS: usize = 200;

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

/// A successful (2xx) answer.
#[derive(Debug)]
pub(crate) struct ApiReply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) rate_limit: Option<RateLimitInfo>,
}

impl ApiReply {
    /// Decodes the answer's `data` member (or the whole body when it has no
    /// `data`, as `/status` and `/decrypt-media` answer). An empty body (204)
    /// or a `null` `data` gives `T::default()`.
    pub(crate) fn data<T: DeserializeOwned + Default>(&self) -> Result<T> {
        let value = match self.json()? {
            Value::Object(mut map) if map.contains_key("data") => {
                map.remove("data").unwrap_or(Value::Null)
            }
            other => other,
        };
        self.decode(value)
    }

    /// Decodes the whole body (envelope included). An empty body gives `T::default()`.
    pub(crate) fn whole<T: DeserializeOwned + Default>(&self) -> Result<T> {
        let value = self.json()?;
        self.decode(value)
    }

    fn json(&self) -> Result<Value> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(&e.to_string()))
    }

    fn decode<T: DeserializeOwned + Default>(&self, value: Value) -> Result<T> {
        if value.is_null() {
            return Ok(T::default());
        }
        serde_json::from_value(value).map_err(|e| self.decode_error(&e.to_string()))
    }

    fn decode_error(&self, reason: &str) -> WasenderError {
        WasenderError::Decode {
            status: self.status,
            reason: reason.to_owned(),
            snippet: snippet(&self.body),
        }
    }
}

/// The first characters of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(SNIPPET_CHARS)
        .collect()
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

/// Reads a duration in seconds from a header or body value (`"5"`, `5`, `0.5`).
fn seconds(value: &Value) -> Option<Duration> {
    let secs = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// `X-RateLimit-Limit`, `-Remaining`, `-Reset`, when any is present.
fn rate_limit(headers: &HeaderMap) -> Option<RateLimitInfo> {
    let num = |name: &str| header_str(headers, name).and_then(|v| v.parse::<u64>().ok());
    let info = RateLimitInfo {
        limit: num("x-ratelimit-limit"),
        remaining: num("x-ratelimit-remaining"),
        reset: num("x-ratelimit-reset"),
    };
    (info.limit.is_some() || info.remaining.is_some() || info.reset.is_some()).then_some(info)
}

/// Builds the error for a non-2xx answer from its status, headers and body.
fn api_error(status: u16, headers: &HeaderMap, body: &[u8]) -> WasenderError {
    let json = serde_json::from_slice::<Value>(body).ok();
    let object = json.as_ref().and_then(Value::as_object);
    let message = object
        .and_then(|o| o.get("message").or_else(|| o.get("error")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            // A short plain-text body says more than the reason phrase; HTML does not.
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (json.is_none() && !text.is_empty() && text.len() <= 200 && !text.starts_with('<'))
                .then(|| text.to_owned())
        })
        .unwrap_or_else(|| {
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .map_or_else(|| format!("HTTP {status}"), str::to_owned)
        });
    let mut errors = BTreeMap::new();
    if let Some(Value::Object(fields)) = object.and_then(|o| o.get("errors")) {
        for (field, messages) in fields {
            let list = match messages {
                Value::Array(items) => items
                    .iter()
                    .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                other => vec![other.to_string()],
            };
            errors.insert(field.clone(), list);
        }
    }
    let retry_after = header_str(headers, "retry-after")
        .and_then(|v| seconds(&Value::String(v.to_owned())))
        .or_else(|| object.and_then(|o| o.get("retry_after")).and_then(seconds));
    WasenderError::Api {
        status,
        message,
        errors,
        retry_after,
    }
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
            (WasenderError::Timeout(format!("{which:?}")), failure)
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
            Auth::ApiKey => Ok(&self.api_key),
            Auth::PersonalAccessToken => self
                .personal_access_token
                .as_deref()
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

    #[test]
    fn error_bodies_become_api_errors() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let body = br#"{"success":false,"message":"The to field is required.","errors":{"to":["The to field is required."],"text":"bad"},"retry_after":60}"#;
        match api_error(422, &headers, body) {
            WasenderError::Api {
                status,
                message,
                errors,
                retry_after,
            } => {
                assert_eq!(status, 422);
                assert_eq!(message, "The to field is required.");
                assert_eq!(errors["to"], vec!["The to field is required."]);
                assert_eq!(errors["text"], vec!["bad"]);
                assert_eq!(retry_after, Some(Duration::from_secs(7)), "header wins");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn html_error_bodies_fall_back_to_the_reason_phrase() {
        let err = api_error(502, &HeaderMap::new(), b"<html>Bad gateway</html>");
        assert!(matches!(err, WasenderError::Api { ref message, .. } if message == "Bad Gateway"));
    }

    #[test]
    fn rate_limit_headers_are_parsed() {
        let mut headers = HeaderMap::new();
        headers.insert("X-RateLimit-Limit", HeaderValue::from_static("256"));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from_static(" 255 "));
        let info = rate_limit(&headers).expect("headers present");
        assert_eq!(
            (info.limit, info.remaining, info.reset),
            (Some(256), Some(255), None)
        );
        assert!(rate_limit(&HeaderMap::new()).is_none());
    }

    #[test]
    fn bodies_decode_from_data_or_whole() {
        let reply = ApiReply {
            status: 200,
            body: br#"{"success":true,"data":{"status":"read"}}"#.to_vec(),
            rate_limit: None,
        };
        let data: Value = reply.data().expect("decodes");
        assert_eq!(data, serde_json::json!({"status":"read"}));
        let empty = ApiReply {
            status: 204,
            body: Vec::new(),
            rate_limit: None,
        };
        let nothing: Value = empty.data().expect("empty body is the default");
        assert!(nothing.is_null());
        let bad = ApiReply {
            status: 200,
            body: b"<html>oops</html>".to_vec(),
            rate_limit: None,
        };
        match bad.data::<Value>() {
            Err(WasenderError::Decode {
                status, snippet, ..
            }) => {
                assert_eq!(status, 200);
                assert_eq!(snippet, "<html>oops</html>");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
