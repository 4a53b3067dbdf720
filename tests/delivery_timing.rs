//! A quick throughput comparison of the delivery modes over loopback (not a
//! benchmark: the soak bench gives the official figures). Ignored by default:
//!
//! ```text
//! cargo test --release --test delivery_timing -- --ignored --nocapture
//! ```
#![cfg(feature = "listener")]

#[path = "delivery_support/mod.rs"]
mod delivery;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use delivery::*;
use wasenderapi::{DeliveryMode, WasenderSyncClient, WebhookListener};

const SENDERS: usize = 8;
const PER_SENDER: usize = 2_000;

fn events_per_second(mode: DeliveryMode, workers: usize) -> f64 {
    let probe = Arc::new(Probe::default());
    let client = WasenderSyncClient::new("test-api-key").with_webhook_secret(SECRET);
    let listener = WebhookListener::builder_shared(client, Arc::clone(&probe))
        .bind("127.0.0.1:0")
        .workers(workers)
        .delivery_mode(mode)
        .spawn()
        .expect("listener starts");
    let addr = listener.local_addr();
    let bodies: Vec<Vec<Vec<u8>>> = (0..SENDERS)
        .map(|t| {
            (0..PER_SENDER)
                .map(|n| event(&format!("t{t}-{n}"), "x"))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let senders: Vec<_> = bodies
        .into_iter()
        .map(|bodies| {
            thread::spawn(move || {
                let mut conn = RawConn::open(addr).expect("connect");
                for body in &bodies {
                    assert_eq!(conn.post_signed(body).expect("answer").status, 200);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("sender");
    }
    let total = SENDERS * PER_SENDER;
    assert!(wait_until(Duration::from_secs(60), || probe
        .handled
        .lock()
        .unwrap()
        .len()
        == total));
    let elapsed = started.elapsed();
    listener.shutdown();
    total as f64 / elapsed.as_secs_f64()
}

#[test]
#[ignore = "timing run; use --ignored --release"]
fn delivery_mode_throughput() {
    let dir = TempDir::new("timing");
    let inline = events_per_second(DeliveryMode::Inline, 4);
    let queued = events_per_second(DeliveryMode::queued(4096), 4);
    let durable = events_per_second(DeliveryMode::durable(dir.path()).with_capacity(4096), 4);
    let durable16 = events_per_second(DeliveryMode::durable(dir.path()).with_capacity(4096), 16);
    eprintln!(
        "durable, 16 workers: {durable16:.0} ({:.2}x inline)",
        durable16 / inline
    );
    eprintln!(
        "events/s with {SENDERS} keep-alive senders: inline {inline:.0}, queued {queued:.0} ({:.2}x), \
         durable {durable:.0} ({:.2}x inline)",
        queued / inline,
        durable / inline
    );
}
