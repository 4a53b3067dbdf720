//! Test listeners: on a free loopback port, with timeouts small enough for
//! tests, verifying with [`SECRET`].

use std::sync::Arc;
use std::time::Duration;

use wasenderapi::listener::WebhookListenerBuilder;
use wasenderapi::{WebhookListener, WebhookVerifier};

use super::{Recorder, SECRET};

/// The verifier every test listener verifies with.
pub fn verifier() -> WebhookVerifier {
    WebhookVerifier::with_secret(SECRET)
}

/// A builder on 127.0.0.1:0 handing events to `recorder`: 2 workers, 2
/// event loops (so that connections are handed between loops even on 2
/// CPUs, where the default is one), a 200 ms read timeout and a 400 ms
/// request deadline.
pub fn builder(recorder: Arc<Recorder>) -> WebhookListenerBuilder<Recorder> {
    WebhookListener::builder(verifier(), recorder)
        .bind("127.0.0.1:0")
        .workers(2)
        .event_loops(2)
        .idle_timeout(Duration::from_millis(200))
        .request_timeout(Duration::from_millis(400))
}

/// Starts a test listener (see [`builder`]) with a fresh recorder.
pub fn start() -> (WebhookListener, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .spawn()
        .expect("a test listener starts");
    (listener, recorder)
}
