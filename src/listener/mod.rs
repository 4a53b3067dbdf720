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
//! | 200 `{"status":"ok"}` | `GET /healthz` (see [Health checks](#health-checks)) |
//! | 503 `{"status":"unavailable","reason":…}` | `GET /healthz` while draining or after the journal failed |
//! | 200 Prometheus text | `GET /metrics`, with [`metrics`](WebhookListenerBuilder#method.metrics) on (feature `metrics`; else 404) |
//! | 100 Continue | a webhook sent with `Expect: 100-continue`, once its path and the presence of its signature header are checked (otherwise its final answer comes at once) |
//! | 400 | body empty, not UTF-8, not JSON (or nested too deep), not an event; or not valid HTTP: ambiguous framing (both `Content-Length` and `Transfer-Encoding`, conflicting lengths, an encoding other than `chunked`, `Transfer-Encoding` in HTTP/1.0), an HTTP/1.1 request without `Host` or any request with two, chunk extensions over 4 KiB in one request, plain HTTP on the HTTPS port |
//! | 401 | `X-Webhook-Signature` missing or wrong |
//! | 404 / 405 (`Allow`) | another path / another method |
//! | 408 | a request's head did not arrive within the [`header_timeout`](WebhookListenerBuilder::header_timeout), or the whole request within the [`request_timeout`](WebhookListenerBuilder::request_timeout) |
//! | 413 | body over [`max_body_bytes`](WebhookListenerBuilder::max_body_bytes) (decided from `Content-Length` before reading, or while decoding a chunked body) |
//! | 431 | request line and headers over [`max_head_bytes`](WebhookListenerBuilder::max_head_bytes) |
//! | 500 | inline mode: the handler returned an error or panicked (the sender may retry) |
//! | 503 (`Retry-After`) | every worker busy and the queue of waiting requests full; at the connection cap with every connection being processed; a request still arriving when its connection was shed to make room, or cut as the largest holder at the [buffered-bytes budget](WebhookListenerBuilder::max_buffered_bytes); queued modes: the delivery queue is full, or the journal (or Redis) cannot store it; a webhook arriving on an open connection after shutdown began |
//! | 505 | an HTTP version other than 1.0 and 1.1 |
//!
//! Bodies are JSON `{"status":"error","message":…}` with a short text that
//! never holds an internal detail, a secret or the signature. After a
//! 400, 408, 413, 431 or 505 (and a 503 that sheds a connection) the
//! connection is closed: nothing more is read from it.
//!
//! # The HTTP core
//!
//! The listener speaks HTTP/1.1 (keep-alive, pipelining) through its own
//! event-driven core on [`mio`](https://docs.rs/mio) (epoll, kqueue; no
//! async runtime: the API stays blocking). Request heads are parsed by
//! [`httparse`](https://docs.rs/httparse), the parser under hyper; around
//! it the core finds where a head ends without reading past it, looks at
//! each byte once however slowly it arrives, applies the framing rules of
//! RFC 9112, decodes chunked bodies, and keeps every bound below.
//!
//! - **Connections cost no thread.** A few event loops (one per CPU core,
//!   at most one per [`workers`](WebhookListenerBuilder::workers)) own every
//!   connection; an idle or trickling one costs a small buffer and an entry
//!   in a table, and its descriptor (one per connection).
//! - **No hop on the way to the handler.** The thread running a loop reads
//!   a complete request and runs it through verification, decoding and
//!   delivery (the handler itself in inline mode) and writes the answer:
//!   no queue, no other thread, no reply channel. It lets go of its loop
//!   meanwhile; a loop left alone for 10 ms (a slow handler) is taken over
//!   by a spare thread, so one slow handler never stalls other connections
//!   for longer than that. At most [`workers`](WebhookListenerBuilder::workers)
//!   requests are processed at once; more wait in a bounded queue
//!   ([`queue_capacity`](WebhookListenerBuilder::queue_capacity)), then 503.
//! - **Admission under pressure.** At the
//!   [connection cap](WebhookListenerBuilder::max_connections) a new
//!   connection does not find the door shut: the connection that has sent
//!   the least for the longest is closed to make room (one closing, then
//!   one silent since it was accepted, then one idle between requests, then
//!   one slow to read its answer, then the oldest request still arriving),
//!   never one being processed. One peer address holds at most
//!   [`max_connections_per_peer`](WebhookListenerBuilder::max_connections_per_peer)
//!   (half the cap by default); past it, its own longest-idle connection
//!   makes room, or the newcomer is refused. Behind a reverse proxy, name
//!   it in [`trusted_proxies`](WebhookListenerBuilder::trusted_proxies): it
//!   is exempt, and logs show the client it forwarded for.
//! - **Time.** A connection that has sent nothing is closed after the
//!   [`idle_timeout`](WebhookListenerBuilder::idle_timeout) (5 s, also
//!   between keep-alive requests), sooner than one mid-request: 10 s for a
//!   head, 30 s for a whole request (then 408), 10 s for the client to take
//!   an answer. These are kept in lists ordered by deadline, so thousands of
//!   connections cost nothing per tick.
//! - **Memory follows the bytes received**, never a declared
//!   `Content-Length`, under one budget for buffered request bytes
//!   ([`max_buffered_bytes`](WebhookListenerBuilder::max_buffered_bytes),
//!   64 MiB): at the budget, the request holding the most unfinished bytes
//!   is answered 503 and closed, and small requests keep flowing.
//! - **Descriptors.** At start the listener raises its soft open-file limit
//!   to the hard one (as most servers do), lowers the connection cap to
//!   what that leaves room for, and logs the cap in force. Should `accept`
//!   still run out of descriptors, it pauses accepting for 100 ms and sheds
//!   one idle connection instead of spinning; accept errors are logged under
//!   the same rate limit as rejections.
//!
//! | limit | default | setter |
//! |---|---|---|
//! | open connections | 10,000 (lowered to the open-file limit) | [`max_connections`](WebhookListenerBuilder::max_connections) |
//! | connections per peer address | half the cap | [`max_connections_per_peer`](WebhookListenerBuilder::max_connections_per_peer) |
//! | wait for a request's first byte | 5 s | [`idle_timeout`](WebhookListenerBuilder::idle_timeout) |
//! | request head | 16 KiB, within 10 s | [`max_head_bytes`](WebhookListenerBuilder::max_head_bytes), [`header_timeout`](WebhookListenerBuilder::header_timeout) |
//! | request body | 1 MiB; whole request within 30 s | [`max_body_bytes`](WebhookListenerBuilder::max_body_bytes), [`request_timeout`](WebhookListenerBuilder::request_timeout) |
//! | client taking an answer | 10 s | [`write_timeout`](WebhookListenerBuilder::write_timeout) |
//! | request bytes buffered, all connections | 64 MiB | [`max_buffered_bytes`](WebhookListenerBuilder::max_buffered_bytes) |
//! | requests processed at once / waiting | CPU count (32 in durable and Redis modes) / 64 per worker, at least 1,024 | [`workers`](WebhookListenerBuilder::workers), [`queue_capacity`](WebhookListenerBuilder::queue_capacity) |
//!
//! **Worst-case memory** of the HTTP core with the defaults: the 64 MiB
//! budget, plus about 0.5 KiB per open connection (10,000: 5 MiB), plus
//! 64 KiB per thread; with HTTPS, each connection in or past its handshake
//! also holds a TLS session (tens of KiB each: lower the cap in a small
//! container, or terminate TLS in a proxy). The queued modes add up to
//! their capacity times the body limit.
//!
//! `tiny_http` is deliberately not used (it is only a baseline in the
//! listener benchmark): version 0.12 aborts the whole process on a single
//! request that declares a huge `Content-Length` and is answered without
//! its body being read (`util/equal_reader.rs` allocates the unread
//! remainder when the request is dropped), its accept loop stops for good
//! on the first accept error, and it has no per-connection timeouts, so a
//! stalled client holds a thread for ever.
//!
//! # HTTPS (feature `tls`)
//!
//! `.tls(cert_path, key_path)` on the builder serves HTTPS from a PEM
//! certificate chain and key, with `rustls` (TLS 1.2 and 1.3, ALPN
//! `http/1.1`); `.tls_config(..)` takes a `rustls::ServerConfig` you built.
//! TLS runs on the event loops over the non-blocking socket: a session is
//! created once the client's first byte shows a handshake, and a handshake
//! must finish within the idle timeout, however its records are trickled.
//! Plain HTTP sent to the TLS port is answered 400 (unencrypted) and closed;
//! other non-TLS bytes get a TLS alert. A connection turned away at the
//! cap is closed without an answer (a TLS client could not read a plain
//! 503). Terminating TLS in a reverse proxy instead is as good, and often
//! simpler: see the README.
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
//! - Redis (feature `redis`), built with `WebhookListener::redis_builder`
//!   (it takes no handler): the event is added to a Redis stream, with a
//!   dedupe window shared by every listener, and answered 200 once Redis
//!   has it (503 with `Retry-After` when Redis is unreachable, slow or
//!   full). No handler runs in the listener: `RedisWorker`s, in any number
//!   of processes, handle the stream. See the `redis` module for the key
//!   layout and what this mode guarantees.
//!
//! In both queued modes a failing (or panicking) handler is retried with
//! exponential backoff ([`handler_retries`](WebhookListenerBuilder::handler_retries));
//! after the last attempt the event is a [`DeadLetter`](crate::handler::DeadLetter): appended to
//! `dead-letters.jsonl` in the journal directory (durable mode; then marked
//! done), logged, and handed to the
//! [`on_dead_letter`](WebhookListenerBuilder::on_dead_letter) hook. In memory
//! there is no file: the listener keeps the last 1000
//! of this run. A backoff wait ends early at shutdown
//! (durable: at once, the event stays in the journal; in memory: at the
//! drain deadline, counted as dropped).
//!
//! Dead letters are replayable: once the cause is fixed,
//! [`WebhookListener::requeue_dead_letters`](crate::WebhookListener::requeue_dead_letters) hands them (all, one by seq, or
//! those of one message id) to the handler again, past the dedupe window,
//! and marks them so that a second requeue adds nothing;
//! [`WebhookListener::dead_letters`](crate::WebhookListener::dead_letters) lists them and
//! [`WebhookListener::purge_dead_letters`](crate::WebhookListener::purge_dead_letters) forgets them. With the listener
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
//! # Metrics
//!
//! With the `metrics` cargo feature, [`metrics(true)`](WebhookListenerBuilder#method.metrics)
//! serves Prometheus metrics at `GET /metrics` (the Prometheus text format
//! 0.0.4, encoded by [`prometheus-client`](https://docs.rs/prometheus-client)):
//! answers by status, verified events by type, handler errors, retries, dead
//! letters and durations, queue depth, journal size, and the
//! [`ListenerStats`] counters. The list is on
//! [`metrics`](WebhookListenerBuilder#method.metrics). They are read from the same
//! atomic counters as [`WebhookListener::stats`](crate::WebhookListener::stats), and a scrape takes no lock a
//! request or handler thread takes. To serve them from your own
//! `prometheus_client` registry instead or as well, use
//! [`WebhookListener::register_metrics`](crate::WebhookListener#method.register_metrics).
//!
//! # Stopping
//!
//! [`WebhookListener::run_until_signal`](crate::WebhookListener#method.run_until_signal) (feature `signals`, on by default;
//! Unix) blocks until SIGTERM or SIGINT (Ctrl-C), then shuts down gracefully
//! and returns the final [`ListenerStats`]:
//!
//! ```no_run
//! # use wasenderapi::{WebhookHandler, WebhookListener, WebhookVerifier};
//! # use std::time::Duration;
//! # struct Bot;
//! # impl WebhookHandler for Bot { type Error = std::convert::Infallible; }
//! # #[cfg(all(feature = "signals", unix))]
//! # fn main() -> Result<(), wasenderapi::WasenderError> {
//! let stats = WebhookListener::builder(WebhookVerifier::with_secret("webhook-secret"), Bot)
//!     .drain_timeout(Duration::from_secs(20))
//!     .spawn()?
//!     .run_until_signal()?;
//! log::info!("{} events handled", stats.handled);
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "signals", unix)))]
//! # fn main() {}
//! ```
//!
//! The first signal starts a graceful shutdown
//! ([`WebhookListener::shutdown`](crate::WebhookListener::shutdown) describes the steps): the port is closed,
//! requests in flight are finished and answered, and the queued modes drain
//! their queue; all of it within the
//! [`drain_timeout`](WebhookListenerBuilder::drain_timeout) (default 30 s),
//! after which durable mode leaves what is left in the journal for the next
//! start. A second signal during the drain stops at once (the deadline is cut
//! to zero): durable mode keeps the pending events in the journal, the
//! in-memory queue drops them, logs it and counts them in
//! [`ListenerStats::dropped`]. No request is answered 200 unless its event
//! was handled (inline) or stored (queued modes), so a sender never loses an
//! acknowledged event to a stop. Programs that `spawn` and `join` use
//! [`shutdown_on_signals(true)`](WebhookListenerBuilder#method.shutdown_on_signals)
//! instead; programs that own their signals turn the feature off and call
//! [`ShutdownHandle::shutdown`] (and [`ShutdownHandle::shutdown_now`] for a
//! second signal) themselves.
//!
//! Give the service manager more time than the drain timeout before it
//! sends SIGKILL:
//!
//! - **systemd**: `KillSignal=SIGTERM` (the default) and `TimeoutStopSec=`
//!   above the drain timeout (the default 90 s fits the default 30 s drain).
//! - **Docker**: `docker stop` sends SIGTERM, then SIGKILL after 10 s by
//!   default: run with `--stop-timeout 40` (or `docker stop --time 40`, or
//!   `stop_grace_period: 40s` in Compose), or lower the drain timeout below
//!   10 s. The program must be the container's main process (`exec` form
//!   `CMD ["/app/bot"]`, not a shell that swallows the signal).
//! - **Kubernetes**: `terminationGracePeriodSeconds` (default 30) must exceed
//!   the drain timeout plus any `preStop` hook. The pod leaves the Service's
//!   endpoints at the same time as the container receives SIGTERM, so
//!   proxies may still send a few requests: a short `preStop` sleep (say
//!   5 s) lets them stop first.
//!
//! # Health checks
//!
//! `GET /healthz` (and `HEAD`) is answered by the listener itself, never
//! verified and never handed to the handler:
//!
//! | answer | when |
//! |---|---|
//! | 200 `{"status":"ok"}` | accepting events |
//! | 503 `{"status":"unavailable","reason":"journal failed: <error>"}` | durable mode: the journal refused a write (disk full, I/O error) and refuses every event from then on; a restart recovers what is on disk |
//! | 503 `{"status":"unavailable","reason":"draining"}` | shutdown has begun: asked on a connection opened before it (new connections are refused) |
//!
//! For a load balancer, point its health check at `/healthz`: an instance
//! whose journal failed or that is stopping gets no more traffic (once
//! shutdown begins the port is closed, so new checks fail to connect, which
//! counts as unhealthy too). In Kubernetes:
//!
//! - **readiness** probe: `httpGet` on `/healthz`. A pod whose journal
//!   failed leaves the Service's endpoints and gets no events it would
//!   refuse anyway.
//! - **liveness** probe: optional. A journal failure lasts until the process
//!   restarts, so `/healthz` may serve here too, with `failureThreshold ×
//!   periodSeconds` of a minute or so to ride out short hiccups. A liveness
//!   restart is a SIGTERM like any other: pending events stay in the journal.
//!
//! Health checks are counted in [`ListenerStats::health_checks`] and never logged.
//!
//! # Logging
//!
//! The listener logs through the [`log`](https://docs.rs/log) facade, so
//! nothing is printed until the program installs a logger. What it says:
//!
//! - `info`: one line at start (address, path, delivery mode, journal
//!   directory, threads, how many secrets are configured — never a secret),
//!   one per signal, one at the end of shutdown with the totals (requests,
//!   events handled, queued, rejected, handler errors, dead letters, dropped).
//! - `warn`: each rejected request (400, 401, 404, 405, 408, 413, 431, 503,
//!   505) with the peer address, method and path, status and reason; a
//!   handler error (inline); retries and events left in the journal at
//!   shutdown.
//! - `error`: journal I/O errors, dead letters, events dropped at shutdown,
//!   handler panics.
//! - `debug`: one line per event: its type, the masked session, the status
//!   answered and the time taken (`webhook messages.received (session
//!   a1b2…): 200 queued in 1.2ms`).
//!
//! The secret and the `X-Webhook-Signature` header are never logged; session
//! ids are masked (their first four characters, then `…`).
//!
//! **Rejections are rate-limited**, so that a flood of bad requests (a
//! scanner, a sender with the wrong secret) cannot fill the disk: each
//! listener keeps a token bucket of 10
//! tokens, refilled once a second. A rejection takes a token and is logged;
//! when the bucket is empty it is only counted, and the next line logged
//! after the refill is preceded by one summary line, `suppressed K more
//! rejection(s) within one second`, as is the end of the listener. A flood
//! costs at most 11 lines a second; the [`ListenerStats`] counters still
//! count every request.
//!
//! With [`env_logger`](https://docs.rs/env_logger) (what the examples use),
//! `info` by default and `RUST_LOG` to change it:
//!
//! ```text
//! env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
//! // RUST_LOG=debug                     every event and request
//! // RUST_LOG=info,wasenderapi=warn     only the listener's warnings and errors
//! ```
//!
//! With [`tracing`](https://docs.rs/tracing), forward `log` records to your
//! subscriber with the `log` bridge: `tracing_subscriber`'s default
//! `tracing-log` feature does it when you call `init()`, or install it
//! yourself with `tracing_log::LogTracer::init()` before your subscriber:
//!
//! ```text
//! tracing_subscriber::fmt()
//!     .with_env_filter("info,wasenderapi=info") // feature `env-filter`
//!     .init(); // also installs tracing-log's LogTracer: `log` records become events
//! ```
//!
//! The records' targets are the module paths (`wasenderapi::listener::…`,
//! `wasenderapi::journal::…`), so filters can pick the listener out.

mod builder;
mod delivery;
#[cfg(feature = "metrics")]
mod detail;
mod http;
#[cfg(feature = "metrics")]
mod metrics;
mod rejections;
mod routing;
pub(crate) mod server;
mod service;
mod stats;

#[cfg(feature = "redis")]
pub use builder::RedisMode;
pub use builder::{WebhookListenerBuilder, DEFAULT_BIND, DEFAULT_PATH};
pub use delivery::{DeliveryMode, DEFAULT_DELIVERY_CAPACITY};
#[cfg(feature = "metrics")]
pub use metrics::DEFAULT_METRICS_PATH;
pub use routing::HEALTH_PATH;
pub use server::ShutdownHandle;
pub use stats::ListenerStats;

/// Masks a session id (which may be the session's API key) for logs: its
/// first four characters, then `…`. Short ids are masked entirely.
pub(crate) fn mask_session_id(id: &str) -> String {
    if id.chars().count() < 12 {
        return "…".to_owned();
    }
    let prefix: String = id.chars().take(4).collect();
    format!("{prefix}…")
}

#[cfg(test)]
#[test]
fn session_ids_are_masked() {
    assert_eq!(mask_session_id("a1b2c3d4e5f6a7b8"), "a1b2…");
    assert_eq!(mask_session_id("short"), "…");
}

/// Not a public API: only in builds for the fuzz targets (`--cfg fuzzing`) and in unit tests.
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
