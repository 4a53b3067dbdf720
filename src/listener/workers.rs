//! The worker pool: verifies, decodes and delivers events, one per worker at a time.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use super::delivery::{Delivered, Delivery};
use super::http::Response;
use super::mask_session_id;
use super::stats::{Counters, Outcome};
use crate::error::WasenderError;
use crate::handler::panic_message;
use crate::sync::lock;
use crate::WebhookVerifier;

/// One webhook request whose body has been read, waiting for a worker.
pub(crate) struct Job {
    pub body: Vec<u8>,
    /// The `X-Webhook-Signature` value. Never logged.
    pub signature: Option<String>,
    pub reply: SyncSender<Reply>,
}

/// A worker's answer to a [`Job`].
pub(crate) struct Reply {
    pub response: Response,
    pub outcome: Outcome,
}

/// Turns request bodies into answers: verify, decode, deliver.
pub(crate) struct Processor {
    verifier: WebhookVerifier,
    delivery: Arc<dyn Delivery>,
    counters: Arc<Counters>,
}

impl Processor {
    pub fn new(
        verifier: WebhookVerifier,
        delivery: Arc<dyn Delivery>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            verifier,
            delivery,
            counters,
        }
    }

    /// Processes one request, turning a panic anywhere below into a 500.
    pub fn process(&self, body: &[u8], signature: Option<&str>) -> Reply {
        match catch_unwind(AssertUnwindSafe(|| self.process_unguarded(body, signature))) {
            Ok(reply) => reply,
            Err(payload) => {
                log::error!(
                    "webhook handler panicked: {}; answered 500, the listener keeps serving",
                    panic_message(payload.as_ref())
                );
                Reply {
                    response: Response::error(500, "the webhook handler failed"),
                    outcome: Outcome::HandlerPanic,
                }
            }
        }
    }

    fn process_unguarded(&self, body: &[u8], signature: Option<&str>) -> Reply {
        let started = Instant::now();
        let event = match self.verifier.handle_webhook_event(body, signature) {
            Ok(event) => event,
            Err(e) => return rejection(&e),
        };
        let kind = event.event_type();
        self.counters.event_verified(&kind);
        let name = kind.as_str().to_owned();
        let session = event.session_id().map(mask_session_id);
        let session = session.as_deref().unwrap_or("-");
        let delivered = self.delivery.deliver(event, body);
        // One line per event: what it was, whose, the answer, how long it took.
        let event_line = |status: u16, what: &str| {
            log::debug!(
                "webhook {name} (session {session}): {status} {what} in {:.1?}",
                started.elapsed()
            );
        };
        match delivered {
            Delivered::Done => {
                event_line(200, "handled");
                success(&name, false, Outcome::Handled)
            }
            Delivered::Queued => {
                event_line(200, "queued");
                success(&name, false, Outcome::Queued)
            }
            Delivered::Duplicate => {
                event_line(200, "duplicate, not handled again");
                success(&name, true, Outcome::Duplicate)
            }
            Delivered::Failed(reason) => {
                event_line(500, "handler failed");
                log::warn!(
                    "webhook handler returned an error for {name} (session {session}): {reason}; answered 500"
                );
                Reply {
                    response: Response::error(500, "the webhook handler failed"),
                    outcome: Outcome::HandlerError,
                }
            }
            Delivered::Busy => {
                // The rejection itself is logged (rate-limited) with the peer address.
                event_line(503, "not queued (queue full or closing)");
                Reply {
                    response: retry_later(503, "the delivery queue is full; retry later"),
                    outcome: Outcome::Saturated,
                }
            }
            Delivered::Unavailable(reason) => {
                // The journal logged the error; the rejection is logged with the peer address.
                log::debug!("could not store {name}: {reason}; answered 503");
                Reply {
                    response: retry_later(503, "the event could not be stored; retry later"),
                    outcome: Outcome::Unavailable,
                }
            }
        }
    }
}

/// A 200 answer for event `name`.
fn success(name: &str, duplicate: bool, outcome: Outcome) -> Reply {
    let name = serde_json::Value::from(name);
    let body = if duplicate {
        format!(r#"{{"status":"success","event":{name},"duplicate":true}}"#)
    } else {
        format!(r#"{{"status":"success","event":{name}}}"#)
    };
    Reply {
        response: Response::json(200, body),
        outcome,
    }
}

fn retry_later(status: u16, message: &str) -> Response {
    let mut response = Response::error(status, message);
    response.retry_after_secs = Some(1);
    response
}

/// The answer to a request that failed verification or decoding.
fn rejection(error: &WasenderError) -> Reply {
    let status = error.status_code().unwrap_or(400);
    let outcome =
        if error.is_signature_error() || matches!(error, WasenderError::SecretNotConfigured) {
            Outcome::Signature
        } else {
            Outcome::Body
        };
    // Rejections (400, 401) are logged by the connection, with the peer address.
    if status == 500 {
        log::error!("webhook refused: {error}");
    }
    // The error texts never contain a secret or the signature, so they are safe to send.
    Reply {
        response: Response::error(status, &error.to_string()),
        outcome,
    }
}

/// Starts `count` workers taking jobs from `jobs` until every sender is gone.
pub(crate) fn spawn_workers(
    count: usize,
    jobs: Receiver<Job>,
    processor: Arc<Processor>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let jobs = Arc::new(Mutex::new(jobs));
    (0..count)
        .map(|i| {
            let jobs = Arc::clone(&jobs);
            let processor = Arc::clone(&processor);
            thread::Builder::new()
                .name(format!("wasender-worker-{i}"))
                .spawn(move || work(&jobs, &processor))
        })
        .collect()
}

fn work(jobs: &Mutex<Receiver<Job>>, processor: &Processor) {
    loop {
        let next = lock(jobs).recv();
        let Ok(job) = next else {
            return;
        };
        let reply = processor.process(&job.body, job.signature.as_deref());
        // The connection may have gone; then nobody needs the answer.
        let _ = job.reply.send(reply);
    }
}
