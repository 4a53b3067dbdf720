//! Reading answers: decoding 2xx bodies, turning error statuses into
//! [`WasenderError::Api`], and parsing rate-limit and `Retry-After` headers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use ureq::http::{self, HeaderMap};

use super::types::RateLimitInfo;
use crate::error::{Result, WasenderError};

/// How many characters of an undecodable body an error shows.
const SNIPPET_CHARS: usize = 200;

/// A successful (2xx) answer.
#[derive(Debug)]
pub(crate) struct ApiReply {
    /// The call, as errors name it (`GET /status`).
    pub(crate) endpoint: String,
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
        serde_json::from_slice(&self.body)
            .map_err(|e| self.decode_error("the body is not JSON", Some(e)))
    }

    fn decode<T: DeserializeOwned + Default>(&self, value: Value) -> Result<T> {
        if value.is_null() {
            return Ok(T::default());
        }
        serde_json::from_value(value)
            .map_err(|e| self.decode_error("the JSON is not of the expected shape", Some(e)))
    }

    /// A [`WasenderError::Decode`] for this answer: what was expected
    /// (`reason`), the JSON error when there is one, and a snippet of the body.
    pub(crate) fn decode_error(
        &self,
        reason: &str,
        source: Option<serde_json::Error>,
    ) -> WasenderError {
        WasenderError::Decode {
            endpoint: self.endpoint.clone(),
            status: self.status,
            reason: reason.to_owned(),
            snippet: snippet(&self.body),
            source,
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
pub(crate) fn rate_limit(headers: &HeaderMap) -> Option<RateLimitInfo> {
    let num = |name: &str| header_str(headers, name).and_then(|v| v.parse::<u64>().ok());
    let info = RateLimitInfo {
        limit: num("x-ratelimit-limit"),
        remaining: num("x-ratelimit-remaining"),
        reset: num("x-ratelimit-reset"),
    };
    (info.limit.is_some() || info.remaining.is_some() || info.reset.is_some()).then_some(info)
}

/// Builds the error for a non-2xx answer to `endpoint` from its status, headers and body.
pub(crate) fn api_error(
    endpoint: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> WasenderError {
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
        endpoint: endpoint.to_owned(),
        status,
        message,
        errors,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    #[test]
    fn error_bodies_become_api_errors() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let body = br#"{"success":false,"message":"The to field is required.","errors":{"to":["The to field is required."],"text":"bad"},"retry_after":60}"#;
        match api_error("POST /send-message", 422, &headers, body) {
            WasenderError::Api {
                endpoint,
                status,
                message,
                errors,
                retry_after,
            } => {
                assert_eq!(endpoint, "POST /send-message");
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
        let err = api_error(
            "GET /status",
            502,
            &HeaderMap::new(),
            b"<html>Bad gateway</html>",
        );
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
            endpoint: "GET /status".into(),
            status: 200,
            body: br#"{"success":true,"data":{"status":"read"}}"#.to_vec(),
            rate_limit: None,
        };
        let data: Value = reply.data().expect("decodes");
        assert_eq!(data, serde_json::json!({"status":"read"}));
        let empty = ApiReply {
            endpoint: "GET /status".into(),
            status: 204,
            body: Vec::new(),
            rate_limit: None,
        };
        let nothing: Value = empty.data().expect("empty body is the default");
        assert!(nothing.is_null());
        let bad = ApiReply {
            endpoint: "GET /status".into(),
            status: 200,
            body: b"<html>oops</html>".to_vec(),
            rate_limit: None,
        };
        let err = bad.data::<Value>().expect_err("not JSON");
        match &err {
            WasenderError::Decode {
                endpoint,
                status,
                snippet,
                ..
            } => {
                assert_eq!(endpoint, "GET /status");
                assert_eq!(*status, 200);
                assert_eq!(snippet, "<html>oops</html>");
            }
            other => panic!("unexpected {other:?}"),
        }
        let source = std::error::Error::source(&err).expect("the JSON error is kept");
        assert!(source.is::<serde_json::Error>());
    }
}
