//! `handle_webhook_event` (verify + typed, lossless parse) against
//! `serde_json::from_slice::<Value>` on the same bodies, in the same run.
//!
//! Run: `cargo bench -p wasenderapi-benches --bench parse`. Criterion measures each fixture; the
//! summary at the end prints, per fixture and overall (sum of medians), the
//! speedup `Value time / handle_webhook_event time` and whether the goal of
//! issue 13 (at least 1.3×) holds. A filter that matches no benchmark
//! (`cargo bench -p wasenderapi-benches --bench parse -- summary`) runs the summary alone.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use serde_json::Value;
use wasenderapi::WebhookVerifier;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn bodies() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("fixtures directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::read(&p).expect("fixture"))
        })
        .collect();
    out.sort();
    // A realistic batch: a history sync-like upsert with 100 messages.
    let message = r#"{"key":{"id":"3EB0C767D26A1B2C3D4E","fromMe":false,"remoteJid":"5511999998888@s.whatsapp.net","senderPn":"5511999998888@s.whatsapp.net","cleanedSenderPn":"5511999998888","senderLid":"123456789012345@lid","addressingMode":"pn"},"messageBody":"Hello, how are you doing today? Please call me back.","pushName":"Maria","messageTimestamp":1733456789,"message":{"extendedTextMessage":{"text":"Hello, how are you doing today? Please call me back.","contextInfo":{"expiration":0}},"messageContextInfo":{"deviceListMetadataVersion":2}}}"#;
    let batch = format!(
        r#"{{"event":"messages.upsert","timestamp":1733456789,"sessionId":"abc","data":{{"messages":[{}]}}}}"#,
        vec![message; 100].join(",")
    );
    out.push(("upsert-100-messages".into(), batch.into_bytes()));
    out
}

fn criterion_benches(c: &mut Criterion, bodies: &[(String, Vec<u8>)]) {
    let client = WebhookVerifier::with_secret(SECRET);
    let mut group = c.benchmark_group("parse");
    for (name, body) in bodies {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("serde_json_value", name),
            body,
            |b, body| {
                b.iter(|| serde_json::from_slice::<Value>(black_box(body)).expect("valid JSON"))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("handle_webhook_event", name),
            body,
            |b, body| {
                b.iter(|| {
                    client
                        .handle_webhook_event(black_box(body), Some(SECRET))
                        .expect("valid event")
                })
            },
        );
    }
    group.finish();
}

/// Total time of one batch of `calls` calls of `f`.
fn time_batch(f: &mut impl FnMut(), calls: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed()
}

/// How many calls of `f` make a batch of about [`BATCH`] (at least one).
fn calls_per_batch(f: &mut impl FnMut()) -> u32 {
    let mut calls = 1u32;
    while calls < 1 << 20 && time_batch(f, calls) < BATCH {
        calls *= 2;
    }
    calls
}

/// The speedup issue 13 asks of verify + typed parse over a `Value` parse.
const GOAL: f64 = 1.3;
/// Rounds per fixture; each times one short batch of each parse, in
/// alternating order, so that load from other processes hits both alike.
const ROUNDS: usize = 201;
/// The length of one batch: short, so that a round sees one machine state.
const BATCH: Duration = Duration::from_micros(250);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn summary(bodies: &[(String, Vec<u8>)]) {
    let client = WebhookVerifier::with_secret(SECRET);
    println!(
        "\nsummary: speedup = from_slice::<Value> time / handle_webhook_event time, \
         per call, medians of {ROUNDS} interleaved rounds (goal >= {GOAL:.2}x); \
         `paired` is the median of the rounds' own ratios, a cross-check under load"
    );
    println!(
        "  {:<46} {:>10} {:>12} {:>8} {:>7}",
        "fixture", "Value", "verify+parse", "speedup", "paired"
    );
    let mut total_value = Duration::ZERO;
    let mut total_typed = Duration::ZERO;
    let mut below = Vec::new();
    for (name, body) in bodies {
        let mut value = || {
            drop(black_box(
                serde_json::from_slice::<Value>(black_box(body)).ok(),
            ))
        };
        let mut typed = || {
            drop(black_box(
                client
                    .handle_webhook_event(black_box(body), Some(SECRET))
                    .ok(),
            ))
        };
        let calls = calls_per_batch(&mut value);
        let per_call = |d: Duration| d.as_secs_f64() / f64::from(calls);
        let (mut value_times, mut typed_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let (v, t) = if round % 2 == 0 {
                let v = time_batch(&mut value, calls);
                (v, time_batch(&mut typed, calls))
            } else {
                let t = time_batch(&mut typed, calls);
                (time_batch(&mut value, calls), t)
            };
            value_times.push(per_call(v));
            typed_times.push(per_call(t));
            ratios.push(v.as_secs_f64() / t.as_secs_f64());
        }
        let v = Duration::from_secs_f64(median(value_times));
        let t = Duration::from_secs_f64(median(typed_times));
        let paired = median(ratios);
        total_value += v;
        total_typed += t;
        let speedup = v.as_secs_f64() / t.as_secs_f64();
        let mark = if speedup >= GOAL { "" } else { "  < goal" };
        if speedup < GOAL {
            below.push(name.as_str());
        }
        println!("  {name:<46} {v:>10.2?} {t:>12.2?} {speedup:>7.2}x {paired:>6.2}x{mark}");
    }
    let overall = total_value.as_secs_f64() / total_typed.as_secs_f64();
    println!(
        "  {:<46} {:>10.2?} {:>12.2?} {:>7.2}x",
        "ALL (sum of medians)", total_value, total_typed, overall
    );
    let verdict = match (overall >= GOAL, below.is_empty()) {
        (true, true) => format!("the {GOAL:.2}x goal holds overall and for every fixture"),
        (true, false) => format!(
            "the {GOAL:.2}x goal holds overall, NOT for: {}",
            below.join(", ")
        ),
        (false, _) => format!(
            "the {GOAL:.2}x goal does NOT hold overall ({overall:.2}x); below it: {}",
            below.join(", ")
        ),
    };
    println!("  goal: {verdict}");
}

fn main() {
    let bodies = bodies();
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700));
    criterion_benches(&mut c, &bodies);
    c.final_summary();
    summary(&bodies);
}
