//! Request heads and bodies, parsed incrementally as bytes arrive.
//!
//! [`httparse`] tokenizes and validates a head once its empty line has
//! arrived (found by [`HeadScan`], which looks at each byte once, so a head
//! trickled a byte at a time costs no more than one sent at once). What is
//! ours is the wiring around it: the size limits, the framing rules of RFC
//! 9112 (ambiguous framing is refused, as it is how requests are smuggled),
//! and a chunked-body decoder that consumes only complete lines and counts
//! decoded bytes against the body limit as they arrive.

use std::net::IpAddr;

/// The longest chunk-size line accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// The most bytes of chunk extensions accepted in one request, all chunks together.
pub(crate) const MAX_CHUNK_EXTENSIONS: usize = 4096;
/// The most hex digits [`httparse::parse_chunk_size`] reads (a 64-bit size).
const MAX_CHUNK_SIZE_DIGITS: usize = 16;
/// Header slots on the stack; a head with more headers gets a heap array.
const STACK_HEADERS: usize = 32;

/// Why a request was refused while it was being read. The texts are safe
/// to send back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not valid HTTP/1.x (400).
    Malformed(&'static str),
    /// The request line and headers are over the head limit (431).
    HeadTooLarge,
    /// The body is over the body limit (413).
    BodyTooLarge,
    /// An HTTP version other than 1.0 and 1.1 (505).
    Version,
}

/// Finds the end of a request head in bytes that arrive piece by piece.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HeadScan {
    /// Bytes already looked at.
    scanned: usize,
}

impl HeadScan {
    /// The length of the head (up to and including its empty line) if it is
    /// all in `buf`, which holds the bytes seen before plus new ones.
    /// Leading empty lines must have been removed (see [`leading_blank_lines`]).
    pub fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        // A line feed ends the head when the line before it was empty: the
        // byte before it is a line feed, or a carriage return after one.
        let from = self.scanned;
        for (i, &b) in buf.iter().enumerate().skip(from) {
            if b != b'\n' || i == 0 {
                continue;
            }
            let blank =
                buf[i - 1] == b'\n' || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n');
            if blank {
                self.scanned = i + 1;
                return Some(i + 1);
            }
        }
        self.scanned = buf.len();
        None
    }
}

/// How many bytes of empty lines (`\r\n` or `\n`) start `buf`: RFC 9112
/// §2.2 lets a server ignore them before a request line.
pub(crate) fn leading_blank_lines(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Http10,
    Http11,
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

/// A range of the head's text.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

/// The request line and headers of one request, kept as one string with
/// the positions of its parts (two allocations per request).
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    text: String,
    method: Span,
    target: Span,
    version: Version,
    /// Name and (trimmed) value of each header, in order.
    headers: Vec<(Span, Span)>,
}

impl RequestHead {
    /// Parses a complete head (`raw` ends with its empty line).
    pub fn parse(raw: &[u8]) -> Result<Self, ParseError> {
        let text =
            std::str::from_utf8(raw).map_err(|_| ParseError::Malformed("head is not UTF-8"))?;
        let lines = raw.iter().filter(|&&b| b == b'\n').count();
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
        let mut heap = Vec::new();
        let slots: &mut [httparse::Header<'_>] = if lines <= STACK_HEADERS {
            &mut stack
        } else {
            // Each header has a line of its own, so this is always enough.
            heap.resize(lines, httparse::EMPTY_HEADER);
            &mut heap
        };
        let mut request = httparse::Request::new(slots);
        match request.parse(raw) {
            Ok(httparse::Status::Complete(len)) if len == raw.len() => {}
            Ok(_) => return Err(ParseError::Malformed("invalid request head")),
            Err(httparse::Error::Version) if !names_another_version(raw) => {
                return Err(ParseError::Malformed("invalid request line"))
            }
            Err(e) => return Err(head_error(e)),
        }
        let (Some(method), Some(target), Some(version)) =
            (request.method, request.path, request.version)
        else {
            return Err(ParseError::Malformed("invalid request line"));
        };
        let base = raw.as_ptr() as usize;
        let span = |part: &[u8]| {
            let start = part.as_ptr() as usize - base;
            Span {
                start: start as u32,
                end: (start + part.len()) as u32,
            }
        };
        let headers = request
            .headers
            .iter()
            .map(|h| (span(h.name.as_bytes()), span(h.value.trim_ascii())))
            .collect();
        Ok(Self {
            method: span(method.as_bytes()),
            target: span(target.as_bytes()),
            version: if version == 0 {
                Version::Http10
            } else {
                Version::Http11
            },
            headers,
            text: text.to_owned(),
        })
    }

    fn get(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    /// The request method, as sent (methods are case-sensitive).
    pub fn method(&self) -> &str {
        self.get(self.method)
    }

    /// The request target, as sent.
    pub fn target(&self) -> &str {
        self.get(self.target)
    }

    /// The HTTP version.
    #[cfg(test)]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The path of the target, without query string or fragment. An
    /// absolute-form target (`http://host/webhook`, RFC 9112 §3.2.2) gives
    /// its path.
    pub fn path(&self) -> &str {
        let target = self.target();
        let after_authority = ["http://", "https://"].iter().find_map(|scheme| {
            let prefix = target.get(..scheme.len())?;
            prefix
                .eq_ignore_ascii_case(scheme)
                .then(|| &target[scheme.len()..])
        });
        let path = match after_authority {
            Some(rest) => match rest.find(['/', '?', '#']) {
                Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
                _ => "/",
            },
            None => target,
        };
        let end = path.find(['?', '#']).unwrap_or(path.len());
        &path[..end]
    }

    /// The headers, name and trimmed value, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|&(name, value)| (self.get(name), self.get(value)))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The client a trusted proxy forwarded this request for: the
    /// right-most address in `X-Forwarded-For` that is not itself a trusted
    /// proxy. From any other peer the header is not believed.
    pub fn forwarded_for(&self, peer: IpAddr, trusted: &[IpAddr]) -> Option<IpAddr> {
        if !trusted.contains(&peer) {
            return None;
        }
        let hops: Vec<&str> = self
            .headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
            .flat_map(|(_, value)| value.split(','))
            .collect();
        hops.iter()
            .rev()
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .find(|ip| !trusted.contains(ip))
    }

    /// Whether the client asked for the connection to stay open after this request.
    pub fn keep_alive(&self) -> bool {
        let mut tokens = self
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim);
        match self.version {
            Version::Http10 => tokens.any(|t| t.eq_ignore_ascii_case("keep-alive")),
            Version::Http11 => !tokens.any(|t| t.eq_ignore_ascii_case("close")),
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// Checks what RFC 9112 asks of every request head, then says how its
    /// body is delimited:
    ///
    /// - `Host`: exactly one in HTTP/1.1, at most one in HTTP/1.0 (§3.2);
    /// - `Transfer-Encoding` in an HTTP/1.0 request is faulty framing (§6.1);
    /// - ambiguous framing is refused: both `Content-Length` and
    ///   `Transfer-Encoding`, conflicting lengths, an encoding other than
    ///   `chunked` (§6.3). These are how requests are smuggled past proxies.
    pub fn framing(&self) -> Result<Framing, ParseError> {
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut hosts = 0;
        for (name, value) in self.headers() {
            if name.eq_ignore_ascii_case("host") {
                hosts += 1;
            } else if name.eq_ignore_ascii_case("content-length") {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParseError::Malformed("invalid Content-Length"));
                }
                // Digits only: a parse failure is an overflow, i.e. far over any limit.
                let parsed = value.parse::<u64>().unwrap_or(u64::MAX);
                if length.is_some_and(|l| l != parsed) {
                    return Err(ParseError::Malformed("conflicting Content-Length headers"));
                }
                length = Some(parsed);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                if self.version == Version::Http10 {
                    return Err(ParseError::Malformed(
                        "Transfer-Encoding in an HTTP/1.0 request",
                    ));
                }
                if chunked || !value.eq_ignore_ascii_case("chunked") {
                    return Err(ParseError::Malformed("unsupported Transfer-Encoding"));
                }
                chunked = true;
            }
        }
        match (self.version, hosts) {
            (Version::Http11, 0) => return Err(ParseError::Malformed("missing Host header")),
            (_, 2..) => return Err(ParseError::Malformed("more than one Host header")),
            _ => {}
        }
        match (length, chunked) {
            (Some(_), true) => Err(ParseError::Malformed(
                "both Content-Length and Transfer-Encoding",
            )),
            (_, true) => Ok(Framing::Chunked),
            (Some(0) | None, false) => Ok(Framing::Empty),
            (Some(n), false) => Ok(Framing::Length(n)),
        }
    }
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
fn head_error(error: httparse::Error) -> ParseError {
    match error {
        httparse::Error::Version => ParseError::Version,
        httparse::Error::HeaderName => ParseError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => ParseError::Malformed("invalid header value"),
        httparse::Error::NewLine => ParseError::Malformed("invalid line ending"),
        // More headers than lines cannot happen; were it to, the head is too large.
        httparse::Error::TooManyHeaders => ParseError::HeadTooLarge,
        httparse::Error::Token | httparse::Error::Status => {
            ParseError::Malformed("invalid request line")
        }
    }
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkPhase {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes a chunked body as its bytes arrive.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    phase: ChunkPhase,
    /// Chunk-extension bytes seen so far in this request.
    extensions: usize,
    /// Trailer bytes seen so far.
    trailers: usize,
    max_trailers: usize,
}

/// What one call to [`ChunkedDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// Input bytes used up (they may be dropped).
    pub consumed: usize,
    /// The body is complete.
    pub done: bool,
}

impl ChunkedDecoder {
    /// A decoder for one body; trailers may take `max_trailers` bytes.
    pub fn new(max_trailers: usize) -> Self {
        Self {
            phase: ChunkPhase::Size,
            extensions: 0,
            trailers: 0,
            max_trailers,
        }
    }

    /// Decodes what it can of `input` into `body`, which may hold at most
    /// `max_body` bytes. Only complete lines are consumed: what is left of
    /// `input` must be offered again with more bytes after it.
    pub fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        max_body: usize,
    ) -> Result<Decoded, ParseError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.phase {
                ChunkPhase::Done => {
                    return Ok(Decoded {
                        consumed: pos,
                        done: true,
                    })
                }
                ChunkPhase::Size => {
                    let Some(line) = line(rest, MAX_CHUNK_LINE)
                        .map_err(|()| ParseError::Malformed("invalid chunk size"))?
                    else {
                        return Ok(Decoded {
                            consumed: pos,
                            done: false,
                        });
                    };
                    let size = chunk_size(line)?;
                    if let Some(semicolon) = line.iter().position(|&b| b == b';') {
                        self.extensions += line.len() - semicolon;
                        if self.extensions > MAX_CHUNK_EXTENSIONS {
                            return Err(ParseError::Malformed("chunk extensions too long"));
                        }
                    }
                    pos += line.len();
                    if size == 0 {
                        self.phase = ChunkPhase::Trailers;
                    } else {
                        let room = (max_body - body.len().min(max_body)) as u64;
                        if size > room {
                            return Err(ParseError::BodyTooLarge);
                        }
                        self.phase = ChunkPhase::Data(size);
                    }
                }
                ChunkPhase::Data(left) => {
                    if rest.is_empty() {
                        return Ok(Decoded {
                            consumed: pos,
                            done: false,
                        });
                    }
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    body.extend_from_slice(&rest[..take]);
                    pos += take;
                    let left = left - take as u64;
                    self.phase = if left == 0 {
                        ChunkPhase::DataEnd
                    } else {
                        ChunkPhase::Data(left)
                    };
                }
                ChunkPhase::DataEnd => {
                    if rest.len() < 2 {
                        if rest.first().is_some_and(|&b| b != b'\r') {
                            return Err(ParseError::Malformed("chunk not followed by CRLF"));
                        }
                        return Ok(Decoded {
                            consumed: pos,
                            done: false,
                        });
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ParseError::Malformed("chunk not followed by CRLF"));
                    }
                    pos += 2;
                    self.phase = ChunkPhase::Size;
                }
                ChunkPhase::Trailers => {
                    let limit = self.max_trailers.saturating_sub(self.trailers).max(2);
                    let Some(line) = line(rest, limit).map_err(|()| ParseError::HeadTooLarge)?
                    else {
                        return Ok(Decoded {
                            consumed: pos,
                            done: false,
                        });
                    };
                    pos += line.len();
                    self.trailers += line.len();
                    if matches!(line, b"\r\n" | b"\n") {
                        self.phase = ChunkPhase::Done;
                    } else if self.trailers > self.max_trailers {
                        return Err(ParseError::HeadTooLarge);
                    }
                }
            }
        }
    }
}

/// The first line of `input` with its line feed, if it is complete; an
/// error when it is longer than `max` bytes.
fn line(input: &[u8], max: usize) -> Result<Option<&[u8]>, ()> {
    match input.iter().take(max).position(|&b| b == b'\n') {
        Some(i) => Ok(Some(&input[..=i])),
        None if input.len() >= max => Err(()),
        None => Ok(None),
    }
}

/// The size announced by a chunk-size line (with its CRLF), parsed by httparse.
fn chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    match httparse::parse_chunk_size(line) {
        // httparse reads an empty size as 0; we insist on at least one digit.
        Ok(httparse::Status::Complete((_, size))) if digits > 0 => Ok(size),
        // A size that does not fit in 64 bits is far over any limit.
        Err(_) if digits > MAX_CHUNK_SIZE_DIGITS => Err(ParseError::BodyTooLarge),
        _ => Err(ParseError::Malformed("invalid chunk size")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<RequestHead, ParseError> {
        let bytes = text.as_bytes();
        let skip = leading_blank_lines(bytes);
        let mut scan = HeadScan::default();
        let end = scan.find_end(&bytes[skip..]).expect("a complete head");
        RequestHead::parse(&bytes[skip..skip + end])
    }

    #[test]
    fn parses_request_line_and_headers_case_insensitively() {
        let h = head("POST /webhook?x=1 HTTP/1.1\r\nHost: h\r\nX-Webhook-Signature: s\r\ncontent-length: 3\r\n\r\n")
            .unwrap();
        assert_eq!(h.method(), "POST");
        assert_eq!(h.path(), "/webhook");
        assert_eq!(h.header("x-webhook-signature"), Some("s"));
        assert_eq!(h.framing().unwrap(), Framing::Length(3));
        assert!(h.keep_alive());
    }

    #[test]
    fn finds_the_end_of_a_head_fed_one_byte_at_a_time() {
        let wire = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
        let mut scan = HeadScan::default();
        let mut found = None;
        for n in 1..=wire.len() {
            if let Some(end) = scan.find_end(&wire[..n]) {
                found = Some((n, end));
                break;
            }
        }
        assert_eq!(found, Some((27, 27)));
        let mut lf = HeadScan::default();
        assert_eq!(lf.find_end(b"GET / HTTP/1.0\nHost: x\n\nrest"), Some(24));
    }

    #[test]
    fn http10_closes_unless_keep_alive_is_asked() {
        assert!(!head("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .keep_alive());
        assert!(
            !head("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive()
        );
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for text in [
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(head(text).unwrap().framing(), Err(ParseError::Malformed(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn host_is_required_once_in_http11_and_at_most_once_in_http10() {
        let missing = head("GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            missing.framing(),
            Err(ParseError::Malformed("missing Host header"))
        );
        let twice = head("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").unwrap();
        assert_eq!(
            twice.framing(),
            Err(ParseError::Malformed("more than one Host header"))
        );
        assert_eq!(
            head("GET / HTTP/1.0\r\n\r\n").unwrap().framing(),
            Ok(Framing::Empty)
        );
        assert!(head("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n")
            .unwrap()
            .framing()
            .is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        let h = head("POST / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n").unwrap();
        assert_eq!(
            h.forwarded_for(proxy, &[proxy, inner]),
            "5.6.7.8".parse().ok()
        );
        assert_eq!(h.forwarded_for(proxy, &[proxy]), Some(inner));
        assert_eq!(h.forwarded_for("9.9.9.9".parse().unwrap(), &[proxy]), None);
    }

    #[test]
    fn absolute_form_targets_give_their_path() {
        let cases = [
            ("http://example.com/webhook", "/webhook"),
            ("HTTPS://example.com:8443/webhook?x=1", "/webhook"),
            ("http://example.com", "/"),
            ("http://example.com?q", "/"),
            ("/webhook#f", "/webhook"),
            ("*", "*"),
        ];
        for (target, path) in cases {
            let h = head(&format!("POST {target} HTTP/1.1\r\nHost: h\r\n\r\n")).unwrap();
            assert_eq!(h.path(), path, "{target}");
        }
    }

    #[test]
    fn rejects_bad_request_lines_and_versions() {
        assert!(matches!(
            head("GARBAGE\r\n\r\n"),
            Err(ParseError::Malformed(_))
        ));
        assert_eq!(
            head("GET / HTTP/2.0\r\n\r\n").unwrap_err(),
            ParseError::Version
        );
        for not_a_version in ["GET / FOO/1.1\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n"] {
            assert!(
                matches!(head(not_a_version), Err(ParseError::Malformed(_))),
                "{not_a_version:?}"
            );
        }
        assert!(matches!(
            head("GET / HTTP/1.1\r\n folded\r\n\r\n"),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn skips_leading_empty_lines_and_accepts_bare_line_feeds() {
        let h = head("\r\n\nGET /healthz HTTP/1.0\nHost: x\n\n").unwrap();
        assert_eq!(h.method(), "GET");
        assert_eq!(h.path(), "/healthz");
        assert_eq!(h.version(), Version::Http10);
        assert_eq!(h.header("host"), Some("x"));
    }

    #[test]
    fn takes_as_many_headers_as_there_are_lines() {
        let many: String = (0..300).map(|i| format!("X-{i}: {i}\r\n")).collect();
        let h = head(&format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n")).unwrap();
        assert_eq!(h.header("x-299"), Some("299"));
    }

    #[test]
    fn refuses_header_values_that_are_not_utf8() {
        let raw = b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n";
        assert!(matches!(
            RequestHead::parse(raw),
            Err(ParseError::Malformed(_))
        ));
    }

    fn decode_all(wire: &[u8], max: usize) -> Result<(Vec<u8>, usize), ParseError> {
        let mut decoder = ChunkedDecoder::new(1024);
        let mut body = Vec::new();
        let d = decoder.decode(wire, &mut body, max)?;
        assert!(d.done, "complete body");
        Ok((body, d.consumed))
    }

    #[test]
    fn decodes_chunked_bodies_with_extensions_and_trailers() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (body, consumed) = decode_all(wire, 64).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&wire[consumed..], b"NEXT");
    }

    #[test]
    fn decodes_a_chunked_body_fed_one_byte_at_a_time() {
        let wire = b"5\r\nhello\r\n6;a=b\r\n world\r\n0\r\nT: x\r\n\r\n";
        let mut decoder = ChunkedDecoder::new(1024);
        let mut body = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut done = false;
        for &b in wire.iter() {
            pending.push(b);
            let d = decoder.decode(&pending, &mut body, 64).unwrap();
            pending.drain(..d.consumed);
            done = d.done;
        }
        assert!(done);
        assert!(pending.is_empty());
        assert_eq!(body, b"hello world");
    }

    #[test]
    fn refuses_malformed_chunk_size_lines() {
        for wire in [
            &b"\r\nhello\r\n0\r\n\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5x\r\n",
            b"5\r\nhelloXY",
        ] {
            let mut decoder = ChunkedDecoder::new(1024);
            let r = decoder.decode(wire, &mut Vec::new(), 64);
            assert!(matches!(r, Err(ParseError::Malformed(_))), "{wire:?}");
        }
    }

    #[test]
    fn chunked_body_over_the_limit_stops_early() {
        let r = decode_all(b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", 10);
        assert_eq!(r.unwrap_err(), ParseError::BodyTooLarge);
        let mut decoder = ChunkedDecoder::new(1024);
        let huge = decoder.decode(b"ffffffffffffffffffffffff\r\n", &mut Vec::new(), 10);
        assert_eq!(huge.unwrap_err(), ParseError::BodyTooLarge);
    }

    #[test]
    fn chunk_extensions_are_bounded_per_request() {
        let ext = "x".repeat(1000);
        let chunk = format!("1;{ext}\r\na\r\n");
        let wire = chunk.repeat(5) + "0\r\n\r\n";
        let r = decode_all(wire.as_bytes(), 64);
        assert_eq!(
            r.unwrap_err(),
            ParseError::Malformed("chunk extensions too long")
        );
        let fits = chunk.repeat(4) + "0\r\n\r\n";
        assert_eq!(decode_all(fits.as_bytes(), 64).unwrap().0, b"aaaa");
    }

    #[test]
    fn a_size_line_that_never_ends_is_refused() {
        let mut decoder = ChunkedDecoder::new(1024);
        let long = vec![b'1'; MAX_CHUNK_LINE + 1];
        assert!(decoder.decode(&long, &mut Vec::new(), 64).is_err());
    }
}
