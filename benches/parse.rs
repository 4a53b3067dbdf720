//! `handle_webhook_event` (verify + typed, lossless parse) against
//! `serde_json::from_slice::<Value>` on the same bodies, in the same run.
//!
//! Run: `cargo bench --bench parse`. Criterion measures each fixture; the
//! summary at the end prints typed/Value time ratios (< 1.0 means faster).

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

/// Median time per call of `f` over several interleaved batches.
fn time_per_call(mut f: impl FnMut(), iters: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters
}

fn summary(bodies: &[(String, Vec<u8>)]) {
    let client = WebhookVerifier::with_secret(SECRET);
    println!(
        "\nsummary: handle_webhook_event / from_slice::<Value> (median of 15 interleaved rounds)"
    );
    let mut total_value = Duration::ZERO;
    let mut total_typed = Duration::ZERO;
    for (name, body) in bodies {
        let iters = (2_000_000 / body.len().max(1)).clamp(200, 20_000) as u32;
        let mut value_times = Vec::new();
        let mut typed_times = Vec::new();
        for _ in 0..15 {
            value_times.push(time_per_call(
                || {
                    drop(black_box(
                        serde_json::from_slice::<Value>(black_box(body)).ok(),
                    ))
                },
                iters,
            ));
            typed_times.push(time_per_call(
                || {
                    drop(black_box(
                        client
                            .handle_webhook_event(black_box(body), Some(SECRET))
                            .ok(),
                    ))
                },
                iters,
            ));
        }
        value_times.sort();
        typed_times.sort();
        let (v, t) = (value_times[7], typed_times[7]);
        total_value += v;
        total_typed += t;
        println!(
            "  {name:<52} value {:>9.2?}  typed {:>9.2?}  ratio {:.2}",
            v,
            t,
            t.as_secs_f64() / v.as_secs_f64()
        );
    }
    println!(
        "  {:<52} value {:>9.2?}  typed {:>9.2?}  ratio {:.2}",
        "ALL (sum of medians)",
        total_value,
        total_typed,
        total_typed.as_secs_f64() / total_value.as_secs_f64()
    );
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
