//! The bundled webhook listener: an HTTP server on its own threads that
//! verifies each event and hands it to your [`WebhookHandler`](crate::WebhookHandler).
//!
//! It needs only a webhook secret: a receive-only app builds with
//! `default-features = false, features = ["listener"]` and compiles no REST client.
//!
//! ```
//! use wasenderapi::event::MessagesData;
//! use wasenderapi::{WebhookEvent, WebhookHandler, WebhookListener, WebhookVerifier};
//!
//! struct Bot;
//! impl WebhookHandler for Bot {
//!     type Error = String;
//!     fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
//!         for m in event.data().iter().flat_map(|d| d.messages()) {
//!             println!("{:?} says {:?}", m.sender_phone(), m.text());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let listener = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
//!     .bind("127.0.0.1:0") // port 0: any free port
//!     .path("/webhook")
//!     .workers(4)
//!     .max_body_bytes(1 << 20)
//!     .spawn()?;
//! println!("POST events to http://{}/webhook", listener.local_addr());
//! let stats = listener.shutdown(); // graceful: in-flight requests finish first
//! assert_eq!(stats.in_flight, 0);
//! # Ok::<(), wasenderapi::WasenderError>(())
//! ```
//!
//! [`spawn`](WebhookListenerBuilder::spawn) refuses a verifier without a secret
//! ([`WasenderError::SecretNotConfigured`](crate::WasenderError::SecretNotConfigured)):
//! such a listener could accept no event. An address that does not resolve or
//! cannot be bound is [`WasenderError::Bind`](crate::WasenderError::Bind), which names it.
//!
//! # Answers
//!
//! | status | when |
//! |---|---|
//! | 200 `{"status":"success","event":"<name>"}` | a verified event was handled (unknown event names included); in the queued modes: queued (and journaled) |
//! | 200 `{…,"duplicate":true}` | with [`dedupe`](WebhookListenerBuilder::dedupe): an event seen before, not handled again |
//! | 200 `{"status":"ok"}` | `GET /healthz` |
//! | 400 | body empty, not UTF-8, not JSON (or nested too deep), not an event; or not valid HTTP (including ambiguous framing: both `Content-Length` and `Transfer-Encoding`, conflicting lengths, an encoding other than `chunked`) |
//! | 401 | `X-Webhook-Signature` missing or wrong |
//! | 404 / 405 (`Allow`) | another path / another method |
//! | 408 | the request did not arrive within the request timeout |
//! | 413 | body over [`max_body_bytes`](WebhookListenerBuilder::max_body_bytes) (decided from `Content-Length` before reading, or while decoding a chunked body) |
//! | 431 | request line and headers over [`max_head_bytes`](WebhookListenerBuilder::max_head_bytes) |
//! | 500 | inline mode: the handler returned an error or panicked (the sender may retry) |
//! | 503 (`Retry-After`) | every worker busy and the queue full, or too many connections; queued modes: the delivery queue is full, or the journal cannot write |
//! | 505 | an HTTP version other than 1.0 and 1.1 |
//!
//! Bodies are JSON `{"status":"error","message":…}` with a short text that
//! never holds an internal detail, a secret or the signature.
//!
//! # The HTTP layer
//!
//! The listener speaks HTTP/1.1 over `std::net` through its own small,
//! bounded connection layer. Request heads are parsed by
//! [`httparse`](https://docs.rs/httparse) (the parser under hyper, fuzzed for
//! years); around it, this module reads a head only up to its empty line and
//! only up to the head limit, puts a deadline on every request and a timeout
//! on every read and write, refuses ambiguous framing, decodes chunked bodies
//! under the body limit (chunk sizes parsed by `httparse::parse_chunk_size`),
//! and closes a connection it left input unread on only after answering.
//!
//! `tiny_http` is deliberately not used (it is only the baseline in the
//! listener benchmark): version 0.12 aborts the whole process on a single
//! request that declares a huge `Content-Length` and is answered without its
//! body being read (`util/equal_reader.rs` allocates the unread remainder when
//! the request is dropped), its accept loop stops for good on the first accept
//! error, and it has no per-connection timeouts, so a stalled client holds a
//! thread for ever.
//!
//! # Threads and bounds
//!
//! An accept thread starts one thread per connection (at most
//! [`max_connections`](WebhookListenerBuilder::max_connections)). A connection
//! thread reads requests under a per-read timeout and a whole-request deadline,
//! refuses oversized heads and bodies without buffering them, answers health
//! checks, unknown paths and methods itself, and queues webhook bodies for the
//! [`workers`](WebhookListenerBuilder::workers), which verify, decode and run the
//! handler (a panic is caught and answered 500). So a slow or stalled client
//! only ever holds its own connection thread, for a bounded time, and never a
//! worker. When the queue is full the answer is 503. In the queued modes there
//! is no hand-off: the connection thread itself verifies, decodes and stores the
//! event (quick, and bounded by the connection cap), and separate handler
//! threads run the handler (see below).
//!
//! # Delivery modes
//!
//! Chosen with [`delivery_mode`](WebhookListenerBuilder::delivery_mode):
//!
//! - [`DeliveryMode::Inline`] (the default): the handler runs on a worker
//!   before the answer. 200 means it returned `Ok`; an error or a panic
//!   answers 500 so the sender may retry (WasenderAPI documents no retries,
//!   so treat a 500 as likely lost). No retries here. A slow handler makes the
//!   sender wait.
//! - [`DeliveryMode::queued`]: the connection thread verifies and parses the event, puts
//!   it on a bounded in-memory queue and answers 200 at once;
//!   [`handler_threads`](WebhookListenerBuilder::handler_threads) run the
//!   handler. A full queue answers 503 with `Retry-After` — the queue never
//!   grows past its capacity. Events still queued are **lost if the process
//!   dies**; at shutdown the queue is drained for up to the
//!   [`drain_timeout`](WebhookListenerBuilder::drain_timeout), and what is left
//!   then is dropped, logged and counted in [`ListenerStats::dropped`].
//! - [`DeliveryMode::durable`]: as queued, but the event is appended to a
//!   [journal](crate::journal) and `fsync`ed before the 200 (concurrent
//!   requests share one `fsync`: group commit). Once handled it is marked done.
//!   At start the journal is recovered — a torn or corrupt tail (a crash
//!   mid-write) is logged and skipped — and the events not marked done are
//!   handed to the handler again, in order, before any new one (not verified
//!   again: the secret may have rotated since). They are read back from the
//!   journal in small batches as handler threads free up, so however large
//!   the backlog, memory stays bounded by the capacity; new events wait
//!   behind it (up to the capacity, then 503). Handler threads take events
//!   in order but run them side by side: use `handler_threads(1)` when the
//!   handler needs them strictly one after the other. What the drain deadline
//!   leaves stays in the journal for the next start. An I/O error on the
//!   journal answers 503 from then on (restart to recover). The directory is
//!   locked while the listener runs: a second listener on it, in another
//!   process or this one, fails to spawn with
//!   [`WasenderError::JournalLocked`](crate::WasenderError::JournalLocked)
//!   (see [`journal`](crate::journal#guarantees)).
//!
//! In both queued modes a failing (or panicking) handler is retried with
//! exponential backoff ([`handler_retries`](WebhookListenerBuilder::handler_retries));
//! after the last attempt the event is a [`DeadLetter`]: appended to
//! `dead-letters.jsonl` in the journal directory (durable mode; then marked
//! done), logged, and handed to the
//! [`on_dead_letter`](WebhookListenerBuilder::on_dead_letter) hook. In memory
//! there is no file: the listener keeps the last [`MEMORY_DEAD_LETTER_LIMIT`]
//! of this run. A backoff wait ends early at shutdown
//! (durable: at once, the event stays in the journal; in memory: at the
//! drain deadline, counted as dropped).
//!
//! Dead letters are replayable: once the cause is fixed,
//! [`WebhookListener::requeue_dead_letters`] hands them (all, one by seq, or
//! those of one message id) to the handler again, past the dedupe window,
//! and marks them so that a second requeue adds nothing;
//! [`WebhookListener::dead_letters`] lists them and
//! [`WebhookListener::purge_dead_letters`] forgets them. With the listener
//! stopped, [`journal::JournalDir`](crate::journal::JournalDir) does the same
//! on its directory.
//!
//! ## What durable mode guarantees
//!
//! - **No acknowledged event is lost when the process dies** (crash, SIGKILL,
//!   OOM kill): a 200 is sent only after the event is on disk, and it is
//!   handed to the handler until the handler returns `Ok` or it is
//!   dead-lettered. *At least once.*
//! - **Duplicates are bounded.** Without dedupe, an event is handled again
//!   after a restart only if the process died after its handler returned and
//!   before its done marker was written (at most one event per handler
//!   thread per crash), or the sender itself sent it twice. With
//!   [`dedupe`](WebhookListenerBuilder::dedupe), events the sender repeats
//!   are suppressed, across restarts too (the window lives in `dedupe.log`);
//!   what remains is that same crash window: handler side effects and the
//!   done marker are not one atomic step, so a handler that must never act
//!   twice should itself be idempotent (key on the message id). A dedupe key
//!   is recorded only after its event is durable, so a duplicate answer never
//!   hides an event that could still be lost.
//! - **Power loss** (the machine, not just the process): acknowledged events
//!   are still safe (they were `fsync`ed), but done markers and dedupe entries
//!   reach the disk lazily (with the next group commit, or at shutdown), so
//!   events handled shortly before the power went may be handled again.
//!
//! ## Counters
//!
//! [`ListenerStats`] adds, for the queued modes: `queued`, `queue_depth`,
//! `retried`, `dead_lettered`, `recovered` (replayed at start), `dropped`,
//! `deduplicated`, `journal_errors` and `rejected_unavailable`.
//!
//! Logging goes through the `log` facade. The secret and the signature header
//! are never logged; session ids are masked ([`mask_session_id`]).

mod builder;
mod connection;
mod dead_letters;
mod delivery;
mod http;
mod limits;
mod mode;
mod queue;
mod queued;
mod routing;
mod server;
mod stats;
mod workers;

pub use crate::journal::DeadLetter;
pub use builder::{IntoSharedHandler, WebhookListenerBuilder, DEFAULT_BIND, DEFAULT_PATH};
pub use limits::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEAD_BYTES, DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_WRITE_TIMEOUT,
};
pub use mode::{
    DeliveryMode, HandlerRetryPolicy, DEFAULT_DELIVERY_CAPACITY, DEFAULT_DRAIN_TIMEOUT,
};
pub use queued::MEMORY_DEAD_LETTER_LIMIT;
pub use routing::HEALTH_PATH;
pub use server::{ShutdownHandle, WebhookListener};
pub use stats::ListenerStats;

/// Masks a session id (which may be the session's API key) for logs: its
/// first four characters, then `…`. Short ids are masked entirely.
///
/// ```
/// use wasenderapi::listener::mask_session_id;
/// assert_eq!(mask_session_id("a1b2c3d4e5f6a7b8"), "a1b2…");
/// assert_eq!(mask_session_id("short"), "…");
/// ```
pub fn mask_session_id(id: &str) -> String {
    if id.chars().count() < 12 {
        return "…".to_owned();
    }
    let prefix: String = id.chars().take(4).collect();
    format!("{prefix}…")
}

/// Not a public API: only in builds for the fuzz targets (`--cfg fuzzing`) and in unit tests.
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
