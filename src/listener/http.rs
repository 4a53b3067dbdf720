//! Just enough HTTP/1.1 for a webhook receiver: request heads bounded in
//! size and time and parsed by [`httparse`], `Content-Length` and chunked
//! bodies read under a size limit and a deadline, and small JSON responses.
//!
//! Every read is bounded twice: each socket read by the socket's read timeout,
//! and the whole request by a [`Deadline`]. Nothing is ever buffered beyond the
//! configured head and body limits. httparse tokenizes and validates the head;
//! what is ours is the wiring around it: finding where a head ends without
//! reading past it, the limits, the framing rules and the answers.

use std::io::{self, BufRead, ErrorKind, Read, Write};

use super::limits::{Deadline, DEFAULT_MAX_HEAD_BYTES};

/// The longest chunk-size line accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// The most hex digits [`httparse::parse_chunk_size`] reads (a 64-bit size).
const MAX_CHUNK_SIZE_DIGITS: usize = 16;

/// The request line and headers of one request.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub method: String,
    pub target: String,
    pub http10: bool,
    headers: Vec<(String, String)>,
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection before sending a byte of a new request.
    Closed,
    /// No byte of a new request arrived within the read timeout (an idle keep-alive connection).
    Idle,
    /// The request started but did not finish in time.
    TimedOut,
    /// The head or body is larger than allowed.
    TooLarge,
    /// Not valid HTTP/1.x; the text is safe to send back.
    Malformed(&'static str),
    /// The HTTP version is not 1.0 or 1.1.
    Version,
    /// The connection failed mid-request.
    Io,
}

impl RequestHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path of the target, without query string or fragment.
    pub fn path(&self) -> &str {
        let end = self.target.find(['?', '#']).unwrap_or(self.target.len());
        &self.target[..end]
    }

    /// Whether the client asked for the connection to stay open after this request.
    pub fn keep_alive(&self) -> bool {
        let tokens = || {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
        };
        if self.http10 {
            tokens().any(|t| t.eq_ignore_ascii_case("keep-alive"))
        } else {
            !tokens().any(|t| t.eq_ignore_ascii_case("close"))
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        !self.http10
            && self
                .header("expect")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// How the body is delimited. Ambiguous framing (both `Content-Length` and
    /// `Transfer-Encoding`, conflicting lengths, an encoding other than
    /// `chunked`) is refused, as it is how requests are smuggled past proxies.
    pub fn framing(&self) -> Result<Framing, ReadError> {
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-length") {
                let value = value.trim();
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ReadError::Malformed("invalid Content-Length"));
                }
                // Digits only: a parse failure is an overflow, i.e. far over any limit.
                let parsed = value.parse::<u64>().unwrap_or(u64::MAX);
                if length.is_some_and(|l| l != parsed) {
                    return Err(ReadError::Malformed("conflicting Content-Length headers"));
                }
                length = Some(parsed);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                if chunked || !value.trim().eq_ignore_ascii_case("chunked") {
                    return Err(ReadError::Malformed("unsupported Transfer-Encoding"));
                }
                chunked = true;
            }
        }
        match (length, chunked) {
            (Some(_), true) => Err(ReadError::Malformed(
                "both Content-Length and Transfer-Encoding",
            )),
            (_, true) => Ok(Framing::Chunked),
            (Some(0) | None, false) => Ok(Framing::Empty),
            (Some(n), false) => Ok(Framing::Length(n)),
        }
    }
}

/// Whether an I/O error is a socket read/write timeout.
fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn io_error(e: &io::Error) -> ReadError {
    if is_timeout(e) {
        ReadError::TimedOut
    } else {
        ReadError::Io
    }
}

/// Waits for the first byte of the next request, for at most the socket's read timeout.
///
/// Returns the deadline for the whole request, counted from its first byte.
pub(crate) fn wait_for_request<R: BufRead>(
    reader: &mut R,
    request_timeout: std::time::Duration,
) -> Result<Deadline, ReadError> {
    loop {
        match reader.fill_buf() {
            Ok([]) => return Err(ReadError::Closed),
            Ok(_) => return Ok(Deadline::after(request_timeout)),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Err(ReadError::Idle),
            Err(_) => return Err(ReadError::Closed),
        }
    }
}

/// Reads a request head (up to the blank line) of at most `max_bytes`, and parses it.
pub(crate) fn read_head<R: BufRead>(
    reader: &mut R,
    max_bytes: usize,
    deadline: Deadline,
) -> Result<RequestHead, ReadError> {
    let mut raw = Vec::with_capacity(512);
    let mut lines = 0;
    loop {
        let start = raw.len();
        let line = read_line(reader, &mut raw, max_bytes, deadline)?;
        if !is_blank(line) {
            lines += 1;
        } else if lines > 0 {
            break;
        } else {
            // Empty lines before the request line are allowed (RFC 9112 §2.2);
            // they are dropped, so that they do not count against the limit.
            raw.truncate(start);
        }
    }
    parse_head(&raw, lines)
}

/// Whether `line` (with its line ending) is an empty line.
fn is_blank(line: &[u8]) -> bool {
    matches!(line, b"\r\n" | b"\n")
}

/// Appends one line, with its line ending, to `raw`, returning the line. The
/// line, plus what `raw` held already, must fit in `max_bytes`.
fn read_line<'a, R: BufRead>(
    reader: &mut R,
    raw: &'a mut Vec<u8>,
    max_bytes: usize,
    deadline: Deadline,
) -> Result<&'a [u8], ReadError> {
    let start = raw.len();
    loop {
        // Checked on every pass: a client trickling one short line at a time
        // must still finish the whole request in time.
        if deadline.passed() {
            return Err(ReadError::TimedOut);
        }
        let available = match reader.fill_buf() {
            Ok([]) => return Err(ReadError::Io),
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(&e)),
        };
        let (taken, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if raw.len() + taken > max_bytes {
            return Err(ReadError::TooLarge);
        }
        raw.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if done {
            return Ok(&raw[start..]);
        }
    }
}

/// Parses a complete head of `lines` non-empty lines with httparse.
fn parse_head(raw: &[u8], lines: usize) -> Result<RequestHead, ReadError> {
    // Each header has a line of its own, so `lines` slots are always enough.
    let mut headers = vec![httparse::EMPTY_HEADER; lines];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(raw) {
        Ok(httparse::Status::Complete(len)) if len == raw.len() => {}
        // The head was read up to its empty line, so httparse sees all of it.
        Ok(_) => return Err(ReadError::Malformed("invalid request head")),
        Err(httparse::Error::Version) if !names_another_version(raw) => {
            return Err(ReadError::Malformed("invalid request line"))
        }
        Err(e) => return Err(head_error(e)),
    }
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(ReadError::Malformed("invalid request line"));
    };
    let headers = request
        .headers
        .iter()
        .map(|h| {
            let value = std::str::from_utf8(h.value)
                .map_err(|_| ReadError::Malformed("head is not UTF-8"))?;
            Ok((h.name.to_owned(), value.trim().to_owned()))
        })
        .collect::<Result<_, ReadError>>()?;
    Ok(RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        http10: version == 0,
        headers,
    })
}

/// Whether the request line is well formed but for its version: three parts,
/// the last `HTTP/x.y`. httparse reports every request line it cannot finish
/// (a space inside the target, say) as a version error, but only this case
/// deserves 505 rather than 400.
fn names_another_version(raw: &[u8]) -> bool {
    let line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(version), None) => matches!(
            version,
            [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                if major.is_ascii_digit() && minor.is_ascii_digit()
        ),
        _ => false,
    }
}

/// Why httparse refused a head, as an answer that is safe to send back.
fn head_error(error: httparse::Error) -> ReadError {
    match error {
        httparse::Error::Version => ReadError::Version,
        httparse::Error::HeaderName => ReadError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => ReadError::Malformed("invalid header value"),
        httparse::Error::NewLine => ReadError::Malformed("invalid line ending"),
        // More headers than lines cannot happen; were it to, the head is too large.
        httparse::Error::TooManyHeaders => ReadError::TooLarge,
        httparse::Error::Token | httparse::Error::Status => {
            ReadError::Malformed("invalid request line")
        }
    }
}

/// Reads a body of at most `max_bytes` before `deadline`.
pub(crate) fn read_body<R: BufRead>(
    reader: &mut R,
    framing: Framing,
    max_bytes: usize,
    deadline: Deadline,
) -> Result<Vec<u8>, ReadError> {
    match framing {
        Framing::Empty => Ok(Vec::new()),
        Framing::Length(len) => {
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= max_bytes)
                .ok_or(ReadError::TooLarge)?;
            let mut body = vec![0; len];
            read_exact(reader, &mut body, deadline)?;
            Ok(body)
        }
        Framing::Chunked => read_chunked(reader, max_bytes, deadline),
    }
}

fn read_exact<R: Read>(
    reader: &mut R,
    mut buf: &mut [u8],
    deadline: Deadline,
) -> Result<(), ReadError> {
    while !buf.is_empty() {
        match reader.read(buf) {
            Ok(0) => return Err(ReadError::Io),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(&e)),
        }
        if !buf.is_empty() && deadline.passed() {
            return Err(ReadError::TimedOut);
        }
    }
    Ok(())
}

/// Decodes a chunked body, counting decoded bytes against `max_bytes` as they arrive.
fn read_chunked<R: BufRead>(
    reader: &mut R,
    max_bytes: usize,
    deadline: Deadline,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut line = Vec::with_capacity(32);
    loop {
        line.clear();
        read_line(reader, &mut line, MAX_CHUNK_LINE, deadline).map_err(|e| match e {
            ReadError::TooLarge => ReadError::Malformed("invalid chunk size"),
            other => other,
        })?;
        let size = chunk_size(&line)?;
        if size == 0 {
            break;
        }
        let room = max_bytes - body.len();
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= room)
            .ok_or(ReadError::TooLarge)?;
        let start = body.len();
        body.resize(start + size, 0);
        read_exact(reader, &mut body[start..], deadline)?;
        line.clear();
        if read_line(reader, &mut line, MAX_CHUNK_LINE, deadline)? != b"\r\n" {
            return Err(ReadError::Malformed("chunk not followed by CRLF"));
        }
    }
    // Trailer fields, bounded like a head, are read and ignored.
    let mut trailers = Vec::new();
    while !is_blank(read_line(
        reader,
        &mut trailers,
        DEFAULT_MAX_HEAD_BYTES,
        deadline,
    )?) {}
    Ok(body)
}

/// The size announced by a chunk-size line (with its CRLF), parsed by httparse.
fn chunk_size(line: &[u8]) -> Result<u64, ReadError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    match httparse::parse_chunk_size(line) {
        // httparse reads an empty size as 0; we insist on at least one digit.
        Ok(httparse::Status::Complete((_, size))) if digits > 0 => Ok(size),
        // A size that does not fit in 64 bits is far over any limit.
        Err(_) if digits > MAX_CHUNK_SIZE_DIGITS => Err(ReadError::TooLarge),
        _ => Err(ReadError::Malformed("invalid chunk size")),
    }
}

/// A response: status, body (JSON but for the metrics) and the few headers the listener sends.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub allow: Option<&'static str>,
    pub retry_after_secs: Option<u32>,
    /// The message of an error answer, for the log line of a rejection.
    pub message: Option<String>,
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
}

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

/// Writes `response` in one write; `head_only` leaves the body out (for `HEAD`).
pub(crate) fn write_response<W: Write>(
    writer: &mut W,
    response: &Response,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(160 + response.body.len());
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    if let Some(allow) = response.allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    if let Some(secs) = response.retry_after_secs {
        let _ = write!(out, "Retry-After: {secs}\r\n");
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    if !head_only {
        out.push_str(&response.body);
    }
    writer.write_all(out.as_bytes())?;
    writer.flush()
}

/// Writes the interim `100 Continue` response.
pub(crate) fn write_continue<W: Write>(writer: &mut W) -> io::Result<()> {
    writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::Duration;

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    fn head(text: &str) -> Result<RequestHead, ReadError> {
        read_head(&mut Cursor::new(text.as_bytes().to_vec()), 4096, deadline())
    }

    #[test]
    fn parses_request_line_and_headers_case_insensitively() {
        let h = head(
            "POST /webhook?x=1 HTTP/1.1\r\nX-Webhook-Signature: s\r\ncontent-length: 3\r\n\r\nabc",
        )
        .unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.path(), "/webhook");
        assert_eq!(h.header("x-webhook-signature"), Some("s"));
        assert_eq!(h.framing().unwrap(), Framing::Length(3));
        assert!(h.keep_alive());
    }

    #[test]
    fn http10_closes_unless_keep_alive_is_asked() {
        assert!(!head("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .keep_alive());
        assert!(!head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .keep_alive());
    }

    #[test]
    fn refuses_ambiguous_framing() {
        let both =
            head("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap();
        assert!(matches!(both.framing(), Err(ReadError::Malformed(_))));
        let twice =
            head("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n").unwrap();
        assert!(matches!(twice.framing(), Err(ReadError::Malformed(_))));
        let gzip = head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap();
        assert!(matches!(gzip.framing(), Err(ReadError::Malformed(_))));
        let sign = head("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n").unwrap();
        assert!(matches!(sign.framing(), Err(ReadError::Malformed(_))));
    }

    #[test]
    fn huge_content_length_is_too_large_not_an_allocation() {
        let h = head("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n").unwrap();
        let framing = h.framing().unwrap();
        let r = read_body(&mut Cursor::new(Vec::new()), framing, 1024, deadline());
        assert!(matches!(r, Err(ReadError::TooLarge)));
    }

    #[test]
    fn head_over_the_limit_is_too_large() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(5000));
        assert!(matches!(head(&long), Err(ReadError::TooLarge)));
    }

    #[test]
    fn rejects_bad_request_lines_and_versions() {
        assert!(matches!(
            head("GARBAGE\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            head("GET / HTTP/2.0\r\n\r\n"),
            Err(ReadError::Version)
        ));
        for not_a_version in ["GET / FOO/1.1\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n"] {
            assert!(
                matches!(head(not_a_version), Err(ReadError::Malformed(_))),
                "{not_a_version:?}"
            );
        }
        assert!(matches!(
            head("GET / HTTP/1.1\r\n folded\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
    }

    #[test]
    fn skips_leading_empty_lines_and_accepts_bare_line_feeds() {
        let h = head("\r\n\nGET /healthz HTTP/1.0\nHost: x\n\n").unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.path(), "/healthz");
        assert!(h.http10);
        assert_eq!(h.header("host"), Some("x"));
    }

    #[test]
    fn takes_as_many_headers_as_fit_in_the_limit() {
        let many: String = (0..300).map(|i| format!("X-{i}: {i}\r\n")).collect();
        let h = head(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap();
        assert_eq!(h.header("x-299"), Some("299"));
    }

    #[test]
    fn refuses_header_values_that_are_not_utf8() {
        let raw = b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n".to_vec();
        let r = read_head(&mut Cursor::new(raw), 4096, deadline());
        assert!(matches!(r, Err(ReadError::Malformed(_))));
    }

    #[test]
    fn refuses_malformed_chunk_size_lines() {
        for wire in [
            &b"\r\nhello\r\n0\r\n\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5x\r\n",
        ] {
            let r = read_body(
                &mut Cursor::new(wire.to_vec()),
                Framing::Chunked,
                64,
                deadline(),
            );
            assert!(matches!(r, Err(ReadError::Malformed(_))), "{wire:?}");
        }
    }

    #[test]
    fn decodes_chunked_bodies_with_extensions_and_trailers() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut cursor = Cursor::new(wire.to_vec());
        let body = read_body(&mut cursor, Framing::Chunked, 64, deadline()).unwrap();
        assert_eq!(body, b"hello world");
        let mut rest = String::new();
        cursor.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "NEXT");
    }

    #[test]
    fn chunked_body_over_the_limit_stops_early() {
        let wire = b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
        let r = read_body(
            &mut Cursor::new(wire.to_vec()),
            Framing::Chunked,
            10,
            deadline(),
        );
        assert!(matches!(r, Err(ReadError::TooLarge)));
        let huge = b"ffffffffffffffffffffffff\r\n";
        let r = read_body(
            &mut Cursor::new(huge.to_vec()),
            Framing::Chunked,
            10,
            deadline(),
        );
        assert!(matches!(r, Err(ReadError::TooLarge)));
    }

    #[test]
    fn writes_a_complete_response() {
        let mut out = Vec::new();
        let mut r = Response::error(405, "method \"x\" not allowed");
        r.allow = Some("POST");
        write_response(&mut out, &r, false, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("\r\nAllow: POST\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with(r#"{"status":"error","message":"method \"x\" not allowed"}"#));
    }
}
