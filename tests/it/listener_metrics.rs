//! `GET /metrics` over loopback: a known mix of requests is sent, the
//! exposition is scraped and parsed, and every value is checked exactly; the
//! same metrics in a user's registry; `/metrics` off by default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use wasenderapi::handler::HandlerRetryPolicy;
use wasenderapi::listener::{DeliveryMode, DEFAULT_METRICS_PATH};
use wasenderapi::WasenderError;

use crate::support::fixtures::fixture;
use crate::support::listener::{builder, start};
use crate::support::{event, signature, wait_for, wait_until, Conn, Recorder, Response, TempDir};

/// The Prometheus text format's content type (version 0.0.4).
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One scrape, parsed: `name{labels}` → value, plus the `# TYPE` of each family.
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let previous = samples.insert(series.to_owned(), value);
            assert!(previous.is_none(), "series {series} appears twice");
        }
        Self { samples, types }
    }

    /// The value of `series` (exactly as written, labels included).
    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in {:#?}", self.samples.keys()))
    }

    /// Every series of family `name` with labels, as `labels → value`.
    fn family(&self, name: &str) -> BTreeMap<String, f64> {
        let prefix = format!("{name}{{");
        self.samples
            .iter()
            .filter_map(|(series, v)| Some((series.strip_prefix(&prefix)?.to_owned(), *v)))
            .collect()
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    let mut conn = Conn::open(addr);
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    conn.read_reply()
}

fn scrape(addr: SocketAddr) -> Scrape {
    let reply = get(addr, DEFAULT_METRICS_PATH);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some(TEXT_FORMAT));
    Scrape::parse(&reply.body)
}

const WAIT: Duration = Duration::from_secs(10);

fn unknown_event() -> Vec<u8> {
    br#"{"event":"brand.new.event","sessionId":"sess-0123456789abcdef","data":{}}"#.to_vec()
}

fn retrying() -> HandlerRetryPolicy {
    HandlerRetryPolicy::default()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(2))
        .max_backoff(Duration::from_millis(5))
}

/// Sends the mix every value below is derived from, on one connection:
/// three good events of two types (one failing in the handler on every
/// attempt), one event of an unknown type, two bad signatures, one signed
/// body that is not JSON, and one request for an unknown path.
fn send_known_mix(addr: SocketAddr) {
    let mut conn = Conn::open(addr);
    assert_eq!(conn.post_signed(&event("ok-1", "hello")).status, 200);
    assert_eq!(conn.post_signed(&event("fail-1", "fail")).status, 200);
    let session = fixture("session.status.sessionId-envelope.json");
    assert_eq!(conn.post_signed(&session).status, 200);
    assert_eq!(conn.post_signed(&unknown_event()).status, 200);
    let good = event("bad-sig", "hello");
    assert_eq!(conn.post("/webhook", &good, Some("wrong")).status, 401);
    assert_eq!(conn.post("/webhook", &good, None).status, 401);
    let not_json = b"this is not json".to_vec();
    let sig = signature(&not_json);
    assert_eq!(conn.post("/webhook", &not_json, Some(&sig)).status, 400);
    assert_eq!(conn.post("/elsewhere", b"{}", None).status, 404);
}

#[test]
fn metrics_match_a_known_mix_of_requests_in_queued_mode() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .delivery_mode(DeliveryMode::queued(16))
        .handler_threads(1)
        .handler_retries(retrying())
        .metrics(true)
        .spawn()
        .expect("listener starts");
    let addr = listener.local_addr();
    send_known_mix(addr);
    assert!(
        wait_until(WAIT, || {
            let s = listener.stats();
            s.dead_lettered == 1 && s.queue_depth == 0 && s.handled == 3
        }),
        "{:?}",
        listener.stats()
    );

    let m = scrape(addr);
    // Requests by status: the scrape's own answer is not in its own body.
    let statuses = m.family("wasender_webhook_requests_total");
    assert_eq!(statuses["status=\"200\"}"], 4.0);
    assert_eq!(statuses["status=\"401\"}"], 2.0);
    assert_eq!(statuses["status=\"400\"}"], 1.0);
    assert_eq!(statuses["status=\"404\"}"], 1.0);
    assert_eq!(statuses.values().sum::<f64>(), 8.0, "{statuses:?}");
    // Verified events by type; the unknown one under the fixed label.
    let events = m.family("wasender_webhook_events_total");
    assert_eq!(events["event=\"messages.received\"}"], 2.0);
    assert_eq!(events["event=\"session.status\"}"], 1.0);
    assert_eq!(events["event=\"unknown\"}"], 1.0);
    assert_eq!(events.values().sum::<f64>(), 4.0, "{events:?}");
    assert!(!m.samples.keys().any(|k| k.contains("brand.new.event")));
    // The failing event: 3 attempts, so 3 errors, 2 retries, 1 dead letter.
    assert_eq!(m.get("wasender_events_handled_total"), 3.0);
    assert_eq!(m.get("wasender_handler_errors_total"), 3.0);
    assert_eq!(m.get("wasender_handler_panics_total"), 0.0);
    assert_eq!(m.get("wasender_handler_retries_total"), 2.0);
    assert_eq!(m.get("wasender_dead_letters_total"), 1.0);
    // One observation per handler call: 3 that returned Ok, 3 that failed.
    assert_eq!(m.types["wasender_handler_duration_seconds"], "histogram");
    assert_eq!(m.get("wasender_handler_duration_seconds_count"), 6.0);
    assert_eq!(
        m.get("wasender_handler_duration_seconds_bucket{le=\"+Inf\"}"),
        6.0
    );
    assert!(m.get("wasender_handler_duration_seconds_bucket{le=\"30\"}") <= 6.0);
    assert!(m.get("wasender_handler_duration_seconds_sum") > 0.0);
    assert_eq!(m.get("wasender_queue_depth"), 0.0);
    assert_eq!(m.get("wasender_journal_bytes"), 0.0);
    // The ListenerStats counters, under their Prometheus names.
    let rejected = m.family("wasender_webhook_rejected_total");
    assert_eq!(rejected["reason=\"signature\"}"], 2.0);
    assert_eq!(rejected["reason=\"body\"}"], 1.0);
    assert_eq!(rejected["reason=\"path\"}"], 1.0);
    assert_eq!(rejected.values().sum::<f64>(), 4.0, "{rejected:?}");
    assert_eq!(m.get("wasender_events_queued_total"), 4.0);
    assert_eq!(
        m.get("wasender_requests_in_flight"),
        1.0,
        "the scrape itself"
    );

    // The next scrape counts the first one.
    let again = scrape(addr);
    assert_eq!(
        again.get("wasender_webhook_requests_total{status=\"200\"}"),
        5.0
    );
    let stats = listener.shutdown();
    assert_eq!(stats.metrics_scrapes, 2);
    assert_eq!(
        (stats.handler_errors, stats.retried, stats.dead_lettered),
        (3, 2, 1)
    );
}

#[test]
fn inline_mode_times_every_handler_call_and_counts_500s() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .metrics(true)
        .spawn()
        .expect("listener starts");
    let addr = listener.local_addr();
    let mut conn = Conn::open(addr);
    assert_eq!(conn.post_signed(&event("i-1", "hello")).status, 200);
    assert_eq!(conn.post_signed(&event("i-2", "fail")).status, 500);
    assert_eq!(conn.post_signed(&event("i-3", "panic")).status, 500);

    let m = scrape(addr);
    assert_eq!(
        m.get("wasender_webhook_requests_total{status=\"200\"}"),
        1.0
    );
    assert_eq!(
        m.get("wasender_webhook_requests_total{status=\"500\"}"),
        2.0
    );
    assert_eq!(
        m.get("wasender_webhook_events_total{event=\"messages.received\"}"),
        3.0
    );
    assert_eq!(m.get("wasender_events_handled_total"), 1.0);
    assert_eq!(m.get("wasender_handler_errors_total"), 2.0);
    assert_eq!(m.get("wasender_handler_panics_total"), 1.0);
    assert_eq!(m.get("wasender_handler_duration_seconds_count"), 3.0);
    assert_eq!(m.get("wasender_handler_retries_total"), 0.0);
}

#[test]
fn statuses_the_listener_sends_are_exported_before_any_was_sent() {
    let listener = builder(Arc::new(Recorder::default()))
        .metrics(true)
        .spawn()
        .expect("listener starts");
    let m = scrape(listener.local_addr());
    let statuses = m.family("wasender_webhook_requests_total");
    for status in [200, 400, 401, 404, 405, 408, 413, 431, 500, 503, 505] {
        assert_eq!(statuses[&format!("status=\"{status}\"}}")], 0.0);
    }
    let events = m.family("wasender_webhook_events_total");
    assert!(
        events.contains_key("event=\"messages.upsert\"}"),
        "{events:?}"
    );
    assert!(events.values().all(|v| *v == 0.0));
    assert_eq!(m.get("wasender_connections_open"), 1.0, "the scrape's own");
}

#[test]
fn journal_bytes_are_the_segment_files_on_disk() {
    let tmp = TempDir::new("metrics-journal");
    let dir = tmp.join("journal");
    let listener = builder(Arc::new(Recorder::default()))
        .delivery_mode(DeliveryMode::durable(&dir).with_capacity(16))
        .metrics(true)
        .spawn()
        .expect("listener starts");
    let addr = listener.local_addr();
    let mut conn = Conn::open(addr);
    for i in 0..3 {
        assert_eq!(conn.post_signed(&event(&format!("j-{i}"), "x")).status, 200);
    }
    wait_for("3 events handled", WAIT, || listener.stats().handled == 3);
    let m = scrape(addr);
    let on_disk = segment_bytes(&dir);
    assert!(on_disk > 0);
    assert_eq!(m.get("wasender_journal_bytes"), on_disk as f64);
    drop(listener);
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("journal dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        .map(|e| e.metadata().expect("metadata").len())
        .sum()
}

#[test]
fn metrics_are_off_by_default_and_metrics_path_is_404() {
    let (listener, _recorder) = start();
    let reply = get(listener.local_addr(), "/metrics");
    assert_eq!(reply.status, 404, "{reply:?}");
    let mut registry = Registry::default();
    assert!(matches!(
        listener.register_metrics(&mut registry),
        Err(WasenderError::InvalidArgument(_))
    ));
    assert_eq!(listener.shutdown().metrics_scrapes, 0);
}

#[test]
fn metrics_can_be_served_on_another_path_and_answer_head() {
    let listener = builder(Arc::new(Recorder::default()))
        .metrics_path("/internal/metrics")
        .spawn()
        .expect("listener starts");
    let addr = listener.local_addr();
    assert_eq!(get(addr, "/metrics").status, 404);
    let reply = get(addr, "/internal/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("# TYPE wasender_queue_depth gauge"));
    let mut conn = Conn::open(addr);
    conn.send(b"HEAD /internal/metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    let head = conn.read_head_reply();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some(TEXT_FORMAT));
    let post = Conn::open(addr).post("/internal/metrics", b"{}", None);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn a_metrics_path_that_collides_or_is_relative_is_refused() {
    for path in ["metrics", "/webhook", "/healthz"] {
        let refused = builder(Arc::new(Recorder::default()))
            .metrics_path(path)
            .spawn();
        assert!(
            matches!(refused, Err(WasenderError::InvalidArgument(_))),
            "{path}: {refused:?}"
        );
    }
}

#[test]
fn registered_metrics_in_a_users_registry_are_the_served_ones() {
    let listener = builder(Arc::new(Recorder::default()))
        .metrics(true)
        .spawn()
        .expect("listener starts");
    let addr = listener.local_addr();
    let mut registry = Registry::default();
    let app = registry.sub_registry_with_label(("listener".into(), "bot".into()));
    listener.register_metrics(app).expect("metrics are on");
    let mut conn = Conn::open(addr);
    assert_eq!(conn.post_signed(&event("r-1", "hello")).status, 200);
    assert_eq!(conn.post("/webhook", b"{}", Some("nope")).status, 401);
    drop(conn);
    wait_for("every connection closed", WAIT, || {
        listener.stats().open_connections == 0
    });

    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).expect("encode");
    let ours = Scrape::parse(&text);
    let served = scrape(addr);
    assert_eq!(
        ours.get("wasender_webhook_requests_total{listener=\"bot\",status=\"200\"}"),
        served.get("wasender_webhook_requests_total{status=\"200\"}")
    );
    assert_eq!(
        ours.get("wasender_webhook_requests_total{listener=\"bot\",status=\"401\"}"),
        1.0
    );
    assert_eq!(
        ours.get("wasender_handler_duration_seconds_count{listener=\"bot\"}"),
        1.0
    );
}
