//! Entry points for the fuzz targets in `fuzz/` (not a public API).
//!
//! [`serve_bytes`] runs the listener's request path — head parsing, routing,
//! body framing and limits, verification and decoding, and the response
//! writer — over an in-memory byte stream instead of a socket.

use std::io::{BufReader, Cursor};
use std::time::Duration;

use super::http::{read_body, read_head, wait_for_request, write_response, ReadError, Response};
use super::routing::{fixed_answer, route, Route};
use crate::signature::WebhookVerifier;

/// The head limit used by [`serve_bytes`].
pub const FUZZ_MAX_HEAD: usize = 4096;
/// The body limit used by [`serve_bytes`].
pub const FUZZ_MAX_BODY: usize = 16 * 1024;

/// Serves every request found in `input` (keep-alive) on the path `/webhook`,
/// returning the status of each answer and the bytes written back.
pub fn serve_bytes(verifier: &WebhookVerifier, input: &[u8]) -> (Vec<u16>, Vec<u8>) {
    let mut reader = BufReader::with_capacity(1024, Cursor::new(input));
    let mut out = Vec::new();
    let mut statuses = Vec::new();
    while let Ok(deadline) = wait_for_request(&mut reader, Duration::from_secs(5)) {
        // `Err` carries the error that ends the connection (None: nothing to answer).
        let answer = read_head(&mut reader, FUZZ_MAX_HEAD, deadline).and_then(|head| {
            let route = route(&head.method, head.path(), "/webhook");
            let response = match fixed_answer(route) {
                Some((response, _)) => response,
                None => {
                    debug_assert_eq!(route, Route::Webhook);
                    let body = head.framing().and_then(|framing| {
                        read_body(&mut reader, framing, FUZZ_MAX_BODY, deadline)
                    })?;
                    assert!(
                        body.len() <= FUZZ_MAX_BODY,
                        "a body beyond the limit was buffered"
                    );
                    let signature = head.header("x-webhook-signature");
                    match verifier.handle_webhook_event(&body, signature) {
                        Ok(event) => Response::json(
                            200,
                            format!("{{\"event\":{:?}}}", event.event_type().as_str()),
                        ),
                        Err(err) => Response::error(err.status_code().unwrap_or(500), "rejected"),
                    }
                }
            };
            Ok((head, response))
        });
        let (head, response) = match answer {
            Ok(answer) => answer,
            Err(err) => {
                if let Some(status) = refusal(&err) {
                    statuses.push(status);
                    let refused = Response::error(status, "bad request");
                    let _ = write_response(&mut out, &refused, false, false);
                }
                break;
            }
        };
        statuses.push(response.status);
        let keep_alive = head.keep_alive();
        let _ = write_response(&mut out, &response, head.method == "HEAD", keep_alive);
        if !keep_alive {
            break;
        }
    }
    (statuses, out)
}

fn refusal(err: &ReadError) -> Option<u16> {
    match err {
        ReadError::Closed | ReadError::Idle | ReadError::Io => None,
        ReadError::TimedOut => Some(408),
        ReadError::TooLarge => Some(413),
        ReadError::Malformed(_) => Some(400),
        ReadError::Version => Some(505),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{sign_webhook, SignatureScheme};

    #[test]
    fn serves_pipelined_requests_from_bytes() {
        let verifier = WebhookVerifier::with_secret("s");
        let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
        let sig = sign_webhook(SignatureScheme::SharedSecret, "s", body);
        let mut input = format!(
            "POST /webhook HTTP/1.1\r\nX-Webhook-Signature: {sig}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        input.extend_from_slice(body);
        input.extend_from_slice(b"GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
        input.extend_from_slice(b"POST /webhook HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n");
        let (statuses, out) = serve_bytes(&verifier, &input);
        assert_eq!(statuses, [200, 200, 404, 413]);
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
}
