//! The listener's own request loop over in-memory bytes, for the fuzz targets
//! in `fuzz/` (compiled only with `--cfg fuzzing`, as cargo-fuzz builds) and
//! for the unit tests.
//!
//! [`serve_bytes`] runs exactly the code a TCP connection runs — head parsing,
//! routing, body framing and limits, verification and decoding, delivery to a
//! handler, and the response writer — with the bytes as the connection's input.

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use super::connection::{serve_transport, Transport};
use super::delivery::{Delivery, InlineDelivery};
use super::limits::Limits;
use super::server::{Shared, SharedParts};
use super::stats::Counters;
use super::workers::Processor;
use crate::handler::WebhookHandler;
use crate::WebhookVerifier;

/// The head limit used by [`serve_bytes`].
pub const FUZZ_MAX_HEAD: usize = 4096;
/// The body limit used by [`serve_bytes`].
pub const FUZZ_MAX_BODY: usize = 16 * 1024;
/// The webhook path served by [`serve_bytes`].
pub const FUZZ_PATH: &str = "/webhook";

/// Serves `input` as the bytes one client sent on one connection (requests
/// one after the other, keep-alive) to a listener on [`FUZZ_PATH`] whose
/// handler accepts every event, and returns the status of each answer written
/// (an interim `100 Continue` included) and every byte written back.
pub fn serve_bytes(verifier: &WebhookVerifier, input: &[u8]) -> (Vec<u16>, Vec<u8>) {
    let counters = Arc::new(Counters::default());
    let delivery: Arc<dyn Delivery> = Arc::new(InlineDelivery::new(
        Arc::new(AcceptAll),
        None,
        Arc::clone(&counters),
    ));
    let processor = Arc::new(Processor::new(
        verifier.clone(),
        Arc::clone(&delivery),
        Arc::clone(&counters),
    ));
    let mut limits = Limits::for_workers(1);
    limits.max_head_bytes = FUZZ_MAX_HEAD;
    limits.max_body_bytes = FUZZ_MAX_BODY;
    // Requests are handled on the connection's own thread (as in the queued
    // modes), so no worker thread is needed: the job queue stays unused.
    let (jobs, _unused) = mpsc::sync_channel(1);
    let shared = Shared::new(SharedParts {
        counters,
        limits,
        path: FUZZ_PATH.to_owned(),
        jobs: jobs.clone(),
        direct: Some(processor),
        delivery,
        drain_timeout: Duration::from_secs(1),
    });
    let mut stream = MemoryStream {
        input,
        statuses: Vec::new(),
        output: Vec::new(),
    };
    let peer = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    serve_transport(&mut stream, peer, &shared, &jobs);
    (stream.statuses, stream.output)
}

/// A handler that accepts every event.
struct AcceptAll;

impl WebhookHandler for AcceptAll {
    type Error = Infallible;
}

/// A connection whose input is a byte slice and whose output is kept. Every
/// answer is written with one `write` call, so each call is one response.
struct MemoryStream<'a> {
    input: &'a [u8],
    statuses: Vec<u16>,
    output: Vec<u8>,
}

impl Read for MemoryStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for MemoryStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // "HTTP/1.1 200 OK\r\n…": the status is the three digits after the version.
        let status = buf
            .get(9..12)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| digits.parse().ok());
        self.statuses.push(status.unwrap_or(0));
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for MemoryStream<'_> {
    fn shutdown_write(&mut self) {}

    fn limit_reads(&mut self, _timeout: Duration) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{sign_webhook, SignatureScheme};

    const SECRET: &str = "fuzz-secret";

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::with_secret(SECRET)
    }

    fn post(body: &[u8], signature: Option<&str>) -> Vec<u8> {
        let mut request = b"POST /webhook HTTP/1.1\r\nHost: x\r\n".to_vec();
        if let Some(signature) = signature {
            request.extend_from_slice(format!("X-Webhook-Signature: {signature}\r\n").as_bytes());
        }
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
        request
    }

    fn signed(body: &[u8]) -> Vec<u8> {
        post(
            body,
            Some(&sign_webhook(SignatureScheme::SharedSecret, SECRET, body)),
        )
    }

    #[test]
    fn a_signed_event_is_200() {
        let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
        let (statuses, out) = serve_bytes(&verifier(), &signed(body));
        assert_eq!(statuses, [200]);
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(out.ends_with(br#"{"status":"success","event":"session.status"}"#));
    }

    #[test]
    fn a_signed_body_that_is_not_json_is_400() {
        let (statuses, _) = serve_bytes(&verifier(), &signed(b"{not json"));
        assert_eq!(statuses, [400]);
    }

    #[test]
    fn a_missing_signature_is_401() {
        let body = br#"{"event":"session.status","data":{}}"#;
        let (statuses, _) = serve_bytes(&verifier(), &post(body, None));
        assert_eq!(statuses, [401]);
    }

    #[test]
    fn an_oversized_head_is_431_and_closes() {
        let mut input = format!(
            "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(FUZZ_MAX_HEAD)
        )
        .into_bytes();
        input.extend_from_slice(b"GET /healthz HTTP/1.1\r\n\r\n");
        let (statuses, out) = serve_bytes(&verifier(), &input);
        assert_eq!(statuses, [431]);
        assert!(out.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_until_one_closes() {
        let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
        let mut input = signed(body);
        input.extend_from_slice(b"GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
        input.extend_from_slice(b"POST /webhook HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n");
        input.extend_from_slice(b"GET /healthz HTTP/1.1\r\n\r\n");
        let (statuses, _) = serve_bytes(&verifier(), &input);
        assert_eq!(statuses, [200, 200, 404, 413]);
    }

    #[test]
    fn expect_continue_gets_an_interim_answer() {
        let body = br#"{"event":"session.status","data":{}}"#;
        let signature = sign_webhook(SignatureScheme::SharedSecret, SECRET, body);
        let mut input = format!(
            "POST /webhook HTTP/1.1\r\nExpect: 100-continue\r\nX-Webhook-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        input.extend_from_slice(body);
        let (statuses, _) = serve_bytes(&verifier(), &input);
        assert_eq!(statuses, [100, 200]);
    }

    #[test]
    fn not_http_is_400_and_another_version_505() {
        assert_eq!(serve_bytes(&verifier(), b"NONSENSE\r\n\r\n").0, [400]);
        assert_eq!(
            serve_bytes(&verifier(), b"GET /healthz HTTP/2.0\r\n\r\n").0,
            [505]
        );
    }
}
