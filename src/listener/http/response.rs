//! Responses: a status, a small body (JSON but for the metrics) and the few
//! headers the listener sends, serialized in one buffer.

use std::fmt::Write as _;

/// A response to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// `Allow`, for 405.
    pub allow: Option<&'static str>,
    /// `Retry-After` in seconds, for 503.
    pub retry_after_secs: Option<u32>,
    /// The message of an error answer, for the log line of a rejection.
    pub message: Option<String>,
    /// Close the connection after this answer.
    pub close: bool,
}

impl Response {
    /// A response with a JSON body.
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json",
            body,
            allow: None,
            retry_after_secs: None,
            message: None,
            close: false,
        }
    }

    /// `{"status":"error","message":…}` with `status`.
    pub fn error(status: u16, message: &str) -> Self {
        let quoted = serde_json::Value::from(message);
        let mut response = Self::json(
            status,
            format!(r#"{{"status":"error","message":{quoted}}}"#),
        );
        response.message = Some(message.to_owned());
        response
    }

    /// An error answer with `Retry-After: 1`: the client should try again soon.
    pub fn retry_later(status: u16, message: &str) -> Self {
        let mut response = Self::error(status, message);
        response.retry_after_secs = Some(1);
        response
    }

    /// The same answer, closing the connection after it.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// Appends the response to `out`; `head_only` leaves the body out (for
    /// `HEAD`), `keep_alive` chooses the `Connection` header.
    pub fn write_to(&self, out: &mut Vec<u8>, head_only: bool, keep_alive: bool) {
        let mut head = String::with_capacity(160);
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            let _ = write!(head, "Allow: {allow}\r\n");
        }
        if let Some(secs) = self.retry_after_secs {
            let _ = write!(head, "Retry-After: {secs}\r\n");
        }
        head.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        out.extend_from_slice(head.as_bytes());
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
    }
}

/// The interim answer to `Expect: 100-continue`.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The reason phrase for the statuses the listener sends.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_complete_response() {
        let mut out = Vec::new();
        let mut r = Response::error(405, "method \"x\" not allowed");
        r.allow = Some("POST");
        r.write_to(&mut out, false, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("\r\nAllow: POST\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with(r#"{"status":"error","message":"method \"x\" not allowed"}"#));
    }

    #[test]
    fn head_only_leaves_the_body_out_but_keeps_its_length() {
        let mut out = Vec::new();
        let r = Response::json(200, r#"{"status":"ok"}"#.into());
        r.write_to(&mut out, true, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Length: 15\r\n"));
        assert!(text.ends_with("Connection: keep-alive\r\n\r\n"));
    }
}
