//! Fuzzes the listener's production pairing over in-memory bytes: the HTTP
//! core's connection state machine, its connection table and clock-driven
//! timeouts, the hand-off of complete requests, and the webhook service
//! (routing, verification, decoding, inline delivery), exactly as inline
//! mode runs them on a socket.
//!
//! The input's first byte chooses how the rest is cut into pieces (1 to
//! 8,192 bytes), its second the pause between pieces (so the idle, head and
//! request timeouts are reached by a clock moved by hand) and whether the
//! client closes its side; run with `-max_len=131072` so that the head and
//! body limits (4 KiB and 16 KiB here) are reached by bytes, not only by a
//! declared length.
//!
//! `serve_script` exists only in builds with `--cfg fuzzing` (cargo-fuzz sets it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasenderapi::listener::fuzzing::serve_script;
use wasenderapi::WebhookVerifier;

fuzz_target!(|data: &[u8]| {
    let verifier = WebhookVerifier::with_secret("0123456789abcdef0123456789abcdef");
    let served = serve_script(&verifier, data);
    // Everything written back parses as whole answers...
    assert_eq!(served.garbage, 0, "bytes that are no answer");
    // ...and nothing is served after an answer that closed the connection.
    assert_eq!(served.after_close, 0, "bytes after Connection: close");
    for (status, closing) in served.statuses.iter().zip(&served.closing) {
        assert!(
            matches!(
                status,
                100 | 200 | 400 | 401 | 404 | 405 | 408 | 413 | 431 | 500 | 503 | 505
            ),
            "unexpected status {status}"
        );
        // A refusal (ambiguous framing among them) closes the connection.
        if matches!(status, 400 | 408 | 413 | 431 | 505) {
            assert!(closing, "{status} without Connection: close");
        }
    }
});
