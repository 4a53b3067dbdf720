//! Fuzzes the listener's HTTP request path over in-memory bytes: no input may
//! panic, every answer has a known status, and nothing beyond the limits is buffered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasenderapi::listener::fuzzing::serve_bytes;
use wasenderapi::WebhookVerifier;

fuzz_target!(|data: &[u8]| {
    let verifier = WebhookVerifier::with_secret("0123456789abcdef0123456789abcdef");
    let (statuses, out) = serve_bytes(&verifier, data);
    for status in &statuses {
        assert!(
            matches!(status, 200 | 400 | 401 | 404 | 405 | 408 | 413 | 500 | 505),
            "unexpected status {status}"
        );
    }
    let answers = out.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
    assert!(answers >= statuses.len(), "every status was written");
});
