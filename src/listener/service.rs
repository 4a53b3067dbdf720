//! What the listener serves over the HTTP core: routing, health checks,
//! metrics, and webhooks (verified, decoded and delivered); the counting
//! and the rate-limited log of every answer.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use super::delivery::{Delivered, Delivery};
use super::http::{
    HeadVerdict, Later, Peer, Refusal, RefusalKind, Request, RequestHead, Response, Service,
};
use super::rejections::{is_rejection, RejectionLog};
use super::routing::{route, Health, Route};
use super::stats::{Counters, Outcome};
use crate::error::WasenderError;
use crate::handler::panic_message;
use crate::signature::verifier::WebhookVerifier;
use crate::signature::SIGNATURE_HEADER;

/// The listener's [`Service`].
pub(crate) struct WebhookService {
    verifier: WebhookVerifier,
    delivery: Arc<dyn Delivery>,
    counters: Arc<Counters>,
    path: String,
    rejections: Arc<RejectionLog>,
}

impl fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Who sent a request, for log lines: the client a trusted proxy forwarded
/// for, or the TCP peer.
struct Sender(Peer);

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.forwarded_for {
            Some(client) => write!(f, "{client} (via {})", self.0.addr),
            None => write!(f, "{}", self.0.addr),
        }
    }
}

impl WebhookService {
    pub fn new(
        verifier: WebhookVerifier,
        delivery: Arc<dyn Delivery>,
        counters: Arc<Counters>,
        path: String,
    ) -> Self {
        Self {
            verifier,
            delivery,
            counters,
            path,
            rejections: Arc::default(),
        }
    }

    /// The counters every answer is counted in.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Where verified events go.
    pub fn delivery(&self) -> &Arc<dyn Delivery> {
        &self.delivery
    }

    /// The webhook path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Logs what the rate limit held back (at shutdown).
    pub fn flush_log(&self) {
        self.rejections.flush();
    }

    /// Counts an answered request and logs it when it is a rejection.
    fn answered(
        &self,
        response: &Response,
        outcome: Outcome,
        peer: Peer,
        request: &dyn Fn() -> String,
    ) {
        count_answer(
            &self.counters,
            &self.rejections,
            response,
            outcome,
            peer,
            request,
        );
    }

    /// Verifies, decodes and delivers one webhook body, turning a panic
    /// anywhere below into a 500. `None`: the answer comes through `later`.
    fn process(&self, request: &Request<'_>, later: Later) -> Option<(Response, Outcome)> {
        match catch_unwind(AssertUnwindSafe(|| self.process_unguarded(request, later))) {
            Ok(reply) => reply,
            Err(payload) => {
                log::error!(
                    "webhook handler panicked: {}; answered 500, the listener keeps serving",
                    panic_message(payload.as_ref())
                );
                Some((
                    Response::error(500, "the webhook handler failed"),
                    Outcome::HandlerPanic,
                ))
            }
        }
    }

    fn process_unguarded(
        &self,
        request: &Request<'_>,
        later: Later,
    ) -> Option<(Response, Outcome)> {
        let started = Instant::now();
        let signature = request.head.header(SIGNATURE_HEADER);
        let event = match self.verifier.handle_webhook_event(request.body, signature) {
            Ok(event) => event,
            Err(e) => return Some(rejection(&e)),
        };
        let kind = event.event_type();
        self.counters.event_verified(&kind);
        let session = event
            .session_id()
            .filter(|_| log::log_enabled!(log::Level::Debug))
            .map(super::mask_session_id);
        if !self.delivery.answers_later() {
            let delivered = self.delivery.deliver(event, request.body);
            return Some(answer(
                kind.as_str(),
                session.as_deref(),
                started,
                delivered,
            ));
        }
        // Answered once the delivery says what became of the event (durable:
        // once it is on disk), from whichever thread that happens on.
        let later = later.keep();
        let counters = Arc::clone(&self.counters);
        let rejections = Arc::clone(&self.rejections);
        let peer = request.peer;
        let request_label = label(request.head);
        let then = move |delivered| {
            let (response, outcome) = answer(kind.as_str(), session.as_deref(), started, delivered);
            count_answer(&counters, &rejections, &response, outcome, peer, &|| {
                request_label.clone()
            });
            later.send(response);
        };
        self.delivery
            .deliver_then(event, request.body, Box::new(then));
        None
    }

    /// What `GET /healthz` reports now: a failed journal first, then draining.
    fn health(&self, draining: bool) -> Health {
        if let Some(error) = self.delivery.failure() {
            Health::JournalFailed(error)
        } else if draining {
            Health::Draining
        } else {
            Health::Ok
        }
    }

    /// The metrics in the Prometheus text format (404 when they are off,
    /// which routing never lets happen).
    fn metrics_answer(&self) -> (Response, Outcome) {
        #[cfg(feature = "metrics")]
        if let Some(response) = super::metrics::exposition(&self.counters) {
            return (response, Outcome::Metrics);
        }
        (Response::error(404, "not found"), Outcome::Path)
    }
}

/// The method and path of a request, for log lines.
fn label(head: &RequestHead) -> String {
    let path: String = head.path().chars().take(100).collect();
    format!("{} {path}", head.method())
}

impl Service for WebhookService {
    fn head(&self, head: &RequestHead, peer: Peer, draining: bool) -> HeadVerdict {
        let route = route(
            head.method(),
            head.path(),
            &self.path,
            self.counters.metrics_path(),
        );
        let (response, outcome) = match route {
            Route::Webhook if draining => (
                Response::retry_later(503, "the listener is shutting down; retry later").closing(),
                Outcome::Saturated,
            ),
            Route::Webhook if head.expects_continue() => {
                // Told to wait for `100 Continue`: say no at once when the
                // signature is missing, rather than have the body sent for nothing.
                match self.verifier.verify(&[], head.header(SIGNATURE_HEADER)) {
                    Err(
                        e @ (WasenderError::MissingSignature | WasenderError::SecretNotConfigured),
                    ) => rejection(&e),
                    _ => return HeadVerdict::ReadBody,
                }
            }
            Route::Webhook => return HeadVerdict::ReadBody,
            Route::Health => (self.health(draining).response(), Outcome::Health),
            Route::Metrics => self.metrics_answer(),
            Route::NotFound => (Response::error(404, "not found"), Outcome::Path),
            Route::MethodNotAllowed { allow } => {
                let mut response = Response::error(405, "method not allowed");
                response.allow = Some(allow);
                (response, Outcome::Method)
            }
        };
        self.answered(&response, outcome, peer, &|| label(head));
        HeadVerdict::Answer(response)
    }

    fn call(&self, request: &Request<'_>, later: Later) -> Option<Response> {
        let (response, outcome) = self.process(request, later)?;
        self.answered(&response, outcome, request.peer, &|| label(request.head));
        Some(response)
    }

    fn request_started(&self) {
        self.counters.request_started();
    }

    fn refused(&self, refusal: &Refusal<'_>) {
        let outcome = match refusal.kind {
            RefusalKind::Malformed | RefusalKind::HeadTooLarge => Outcome::Malformed,
            RefusalKind::BodyTooLarge => Outcome::TooLarge,
            RefusalKind::TimedOut => Outcome::TimedOut,
            RefusalKind::Aborted => Outcome::Aborted,
            RefusalKind::Saturated | RefusalKind::OverBudget => Outcome::Saturated,
        };
        if refusal.started {
            self.counters.request_finished(outcome);
        } else {
            self.counters.record(outcome);
        }
        let Some(response) = refusal.response else {
            return;
        };
        self.counters.answered(response.status);
        if let (true, Some(reason)) = (is_rejection(response.status), &response.message) {
            self.rejections.warn(
                Sender(refusal.peer),
                refusal.request,
                response.status,
                reason,
            );
        }
    }

    fn connection_opened(&self) {
        self.counters.connection_opened();
    }

    fn connection_closed(&self) {
        self.counters.connection_closed();
    }

    fn warn(&self, message: &str) {
        self.rejections.warn_other(message);
    }
}

/// Counts an answered request and logs it when it is a rejection.
fn count_answer(
    counters: &Counters,
    rejections: &RejectionLog,
    response: &Response,
    outcome: Outcome,
    peer: Peer,
    request: &dyn Fn() -> String,
) {
    counters.answered(response.status);
    counters.request_finished(outcome);
    if let (true, Some(reason)) = (is_rejection(response.status), &response.message) {
        rejections.warn(Sender(peer), Some(&request()), response.status, reason);
    }
}

/// The answer to a verified event of type `name`, given what became of it,
/// and the debug line saying so (`session` masked, `started` when its
/// request was read).
fn answer(
    name: &str,
    session: Option<&str>,
    started: Instant,
    delivered: Delivered,
) -> (Response, Outcome) {
    // One line per event: what it was, whose, the answer, how long it took.
    let event_line = |status: u16, what: &str| {
        log::debug!(
            "webhook {name} (session {}): {status} {what} in {:.1?}",
            session.unwrap_or("-"),
            started.elapsed()
        );
    };
    match delivered {
        Delivered::Done => {
            event_line(200, "handled");
            (success(name, false), Outcome::Handled)
        }
        Delivered::Queued => {
            event_line(200, "queued");
            (success(name, false), Outcome::Queued)
        }
        Delivered::Duplicate => {
            event_line(200, "duplicate, not handled again");
            (success(name, true), Outcome::Duplicate)
        }
        Delivered::Failed(reason) => {
            event_line(500, "handler failed");
            log::warn!("webhook handler returned an error for {name}: {reason}; answered 500");
            (
                Response::error(500, "the webhook handler failed"),
                Outcome::HandlerError,
            )
        }
        Delivered::Busy => {
            // The rejection itself is logged (rate-limited) with the peer address.
            event_line(503, "not queued (queue full or closing)");
            (
                Response::retry_later(503, "the delivery queue is full; retry later"),
                Outcome::Saturated,
            )
        }
        Delivered::Unavailable(reason) => {
            // The journal or Redis logged the error; the rejection is logged with the peer.
            log::debug!("could not store {name}: {reason}; answered 503");
            (
                Response::retry_later(503, "the event could not be stored; retry later"),
                Outcome::Unavailable,
            )
        }
    }
}

/// A 200 answer for event `name`.
fn success(name: &str, duplicate: bool) -> Response {
    let name = serde_json::Value::from(name);
    let body = if duplicate {
        format!(r#"{{"status":"success","event":{name},"duplicate":true}}"#)
    } else {
        format!(r#"{{"status":"success","event":{name}}}"#)
    };
    Response::json(200, body)
}

/// The answer to a request that failed verification or decoding.
fn rejection(error: &WasenderError) -> (Response, Outcome) {
    let status = error.status_code().unwrap_or(400);
    let outcome =
        if error.is_signature_error() || matches!(error, WasenderError::SecretNotConfigured) {
            Outcome::Signature
        } else {
            Outcome::Body
        };
    // Rejections (400, 401) are logged with the peer address by `answered`.
    if status == 500 {
        log::error!("webhook refused: {error}");
    }
    // The error texts never contain a secret or the signature, so they are safe to send.
    (Response::error(status, &error.to_string()), outcome)
}
