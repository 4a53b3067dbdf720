//! Prometheus metrics (feature `metrics`): what only they count, `GET /metrics`
//! in the Prometheus text format, and the collector users add to their own
//! `prometheus_client` registry.
//!
//! Every value is read at scrape time from atomics: the listener's own
//! [`Counters`] (so the metrics and [`ListenerStats`](super::ListenerStats)
//! are the same numbers) and [`Tracked`] (requests by status, events by type,
//! handler durations). A scrape takes no lock that a request or a handler
//! thread takes; the journal size is read from the file system.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::detail::Tracked;
use super::http::Response;
use super::routing::HEALTH_PATH;
use super::stats::Counters;
use crate::error::{Result, WasenderError};

/// Where [`metrics(true)`](super::WebhookListenerBuilder::metrics) serves the metrics.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// The statuses the listener sends, exported (at 0) before any was sent so
/// that rates and alerts on them work from the start.
const STATUSES: [u16; 11] = [200, 400, 401, 404, 405, 408, 413, 431, 500, 503, 505];

/// Adds the listener's metrics (read live from `counters`) to `registry`;
/// refused when the listener keeps no metrics.
pub(crate) fn register(counters: &Arc<Counters>, registry: &mut Registry) -> Result<()> {
    if counters.metrics().is_none() {
        return Err(WasenderError::InvalidArgument(
            "webhook listener: metrics are off; build the listener with .metrics(true)".to_owned(),
        ));
    }
    registry.register_collector(Box::new(ListenerCollector {
        counters: Arc::clone(counters),
    }));
    Ok(())
}

/// The listener's counters, with metrics kept when `path` is set
/// (`journal_dir`: durable mode's journal, for its size).
pub(crate) fn counters(path: Option<String>, journal_dir: Option<PathBuf>) -> Counters {
    let Some(path) = path else {
        return Counters::default();
    };
    Counters::with_metrics(Tracked::new(path, journal_dir))
}

/// Why a metrics path cannot be used, if it cannot.
pub(crate) fn check_path(
    path: Option<&str>,
    webhook_path: &str,
) -> std::result::Result<(), &'static str> {
    match path {
        None => Ok(()),
        Some(path) if !path.starts_with('/') => Err("metrics_path must start with '/'"),
        Some(path) if path == webhook_path || path == HEALTH_PATH => {
            Err("metrics_path must differ from the webhook path and /healthz")
        }
        Some(_) => Ok(()),
    }
}

/// The answer to `GET` on the metrics path; `None` when metrics are off.
pub(crate) fn exposition(counters: &Arc<Counters>) -> Option<Response> {
    counters.metrics()?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ListenerCollector {
        counters: Arc::clone(counters),
    }));
    let mut body = String::with_capacity(8 * 1024);
    if let Err(e) = prometheus_text::encode(&mut body, &registry) {
        // Writing to a String does not fail; an encoder refusing a value would.
        log::error!("encoding the metrics failed: {e}");
        return Some(Response::error(500, "the metrics could not be encoded"));
    }
    let mut response = Response::json(200, body);
    response.content_type = prometheus_text::CONTENT_TYPE;
    Some(response)
}

/// `(status, count)` for the statuses always shown and every other one seen.
fn shown_statuses(tracked: &Tracked) -> impl Iterator<Item = (u16, u64)> + '_ {
    tracked
        .statuses()
        .filter(|&(status, count)| count > 0 || STATUSES.contains(&status))
}

/// Encodes the handler duration histogram.
fn encode_histogram(
    histogram: &super::detail::DurationHistogram,
    mut encoder: MetricEncoder<'_>,
) -> fmt::Result {
    let (buckets, sum) = histogram.buckets();
    // The count is the buckets' total, so that it always equals `+Inf`.
    let count = buckets.iter().map(|(_, n)| n).sum();
    encoder.encode_histogram::<NoLabelSet>(sum.as_secs_f64(), count, &buckets, None)
}

/// Encodes a listener's metrics on each scrape, from its live counters.
#[derive(Debug)]
struct ListenerCollector {
    counters: Arc<Counters>,
}

impl Collector for ListenerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(tracked) = self.counters.metrics() else {
            return Ok(());
        };
        let s = self.counters.snapshot();
        let mut out = Out(&mut encoder);

        let mut requests = out.family(
            "wasender_webhook_requests",
            "Answers sent, by HTTP status.",
            MetricType::Counter,
        )?;
        for (status, count) in shown_statuses(tracked) {
            requests
                .encode_family(&[("status", status)])?
                .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
        }
        let mut events = out.family(
            "wasender_webhook_events",
            "Verified events, by type (types this crate does not know: unknown).",
            MetricType::Counter,
        )?;
        for (event, count) in tracked.events() {
            events
                .encode_family(&[("event", event)])?
                .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
        }

        out.counter(
            "wasender_events_handled",
            "Handler calls that returned Ok.",
            s.handled,
        )?;
        out.counter(
            "wasender_handler_errors",
            "Handler calls that returned an error or panicked.",
            s.handler_errors + s.handler_panics,
        )?;
        out.counter(
            "wasender_handler_panics",
            "Handler calls that panicked.",
            s.handler_panics,
        )?;
        out.counter(
            "wasender_handler_retries",
            "Handler attempts after a failure (queued modes).",
            s.retried,
        )?;
        out.counter(
            "wasender_dead_letters",
            "Events given up on after every handler attempt failed (queued modes).",
            s.dead_lettered,
        )?;
        let histogram = out.family(
            "wasender_handler_duration_seconds",
            "Time spent in the handler, per call (failed calls included).",
            MetricType::Histogram,
        )?;
        encode_histogram(&tracked.durations, histogram)?;
        out.gauge(
            "wasender_queue_depth",
            "Events accepted and not yet finished (queued modes).",
            s.queue_depth,
        )?;
        out.gauge(
            "wasender_journal_bytes",
            "Bytes in the journal's segment files (durable mode; 0 without a journal).",
            tracked.journal_bytes(),
        )?;

        let mut rejected = out.family(
            "wasender_webhook_rejected",
            "Requests refused, by reason.",
            MetricType::Counter,
        )?;
        let reasons = [
            ("signature", s.rejected_signature),
            ("body", s.rejected_body),
            ("too_large", s.rejected_too_large),
            ("method", s.rejected_method),
            ("path", s.rejected_path),
            ("saturated", s.rejected_saturated),
            ("malformed", s.rejected_malformed),
            ("unavailable", s.rejected_unavailable),
        ];
        for (reason, count) in reasons {
            rejected
                .encode_family(&[("reason", reason)])?
                .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
        }
        out.counter(
            "wasender_webhook_timeouts",
            "Requests not received within the request timeout (408).",
            s.timed_out,
        )?;
        out.counter(
            "wasender_webhook_aborted",
            "Requests the client abandoned before they were complete.",
            s.aborted,
        )?;
        out.counter(
            "wasender_events_queued",
            "Events accepted onto the queue and answered 200 (queued modes).",
            s.queued,
        )?;
        out.counter(
            "wasender_events_deduplicated",
            "Events answered 200 as seen before, not handled again.",
            s.deduplicated,
        )?;
        out.counter(
            "wasender_events_recovered",
            "Events found undone in the journal at start and handled again (durable mode).",
            s.recovered,
        )?;
        out.counter(
            "wasender_events_dropped",
            "Events dropped unhandled at shutdown (in-memory queued mode).",
            s.dropped,
        )?;
        out.counter(
            "wasender_journal_errors",
            "Failed journal, dead-letter or dedupe-file writes (durable mode).",
            s.journal_errors,
        )?;
        out.gauge(
            "wasender_connections_open",
            "Connections open now.",
            s.open_connections,
        )?;
        out.gauge(
            "wasender_requests_in_flight",
            "Requests read and not yet answered.",
            s.in_flight,
        )
    }
}

/// Shorthands over a [`DescriptorEncoder`].
struct Out<'a, 'b>(&'a mut DescriptorEncoder<'b>);

impl Out<'_, '_> {
    /// A descriptor; the caller encodes its samples.
    fn family<'s>(
        &'s mut self,
        name: &'s str,
        help: &str,
        kind: MetricType,
    ) -> std::result::Result<MetricEncoder<'s>, fmt::Error> {
        self.0.encode_descriptor(name, help, None, kind)
    }

    /// A counter without labels (`_total` is added to `name`).
    fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        self.family(name, help, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        self.family(name, help, MetricType::Gauge)?
            .encode_gauge(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked() -> Tracked {
        Tracked::new(DEFAULT_METRICS_PATH.to_owned(), None)
    }

    #[test]
    fn statuses_sent_are_shown_with_the_usual_ones() {
        let tracked = tracked();
        tracked.answered(200);
        tracked.answered(418);
        tracked.answered(42); // not a status: ignored
        let shown: Vec<(u16, u64)> = shown_statuses(&tracked).collect();
        assert_eq!(shown.len(), STATUSES.len() + 1);
        assert!(shown.contains(&(200, 1)));
        assert!(shown.contains(&(418, 1)));
        assert!(shown.contains(&(503, 0)));
    }

    #[test]
    fn metrics_paths_must_be_absolute_and_free() {
        assert_eq!(check_path(None, "/webhook"), Ok(()));
        assert_eq!(check_path(Some("/metrics"), "/webhook"), Ok(()));
        assert!(check_path(Some("metrics"), "/webhook").is_err());
        assert!(check_path(Some("/webhook"), "/webhook").is_err());
        assert!(check_path(Some(HEALTH_PATH), "/webhook").is_err());
    }
}
