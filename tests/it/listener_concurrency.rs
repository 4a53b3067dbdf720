//! Many clients at once: every event handled exactly once, and the counters agree.

use std::sync::Arc;
use std::time::Duration;

use crate::support::listener::builder;
use crate::support::{event, Conn, Recorder};

const CLIENTS: usize = 8;
const EVENTS_PER_CLIENT: usize = 500;

#[test]
fn eight_clients_times_500_events_are_each_handled_exactly_once() {
    let recorder = Arc::new(Recorder::default());
    let listener = builder(Arc::clone(&recorder))
        .workers(4)
        .idle_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(5))
        .spawn()
        .unwrap();
    let addr = listener.local_addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr);
                for i in 0..EVENTS_PER_CLIENT {
                    let reply = conn.post_signed(&event(&format!("c{c}-e{i}"), "hello"));
                    assert_eq!(reply.status, 200, "client {c} event {i}: {}", reply.body);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let seen = recorder.counts();
    assert_eq!(seen.len(), CLIENTS * EVENTS_PER_CLIENT);
    assert!(
        seen.values().all(|&n| n == 1),
        "some event was handled twice"
    );
    for c in 0..CLIENTS {
        for i in 0..EVENTS_PER_CLIENT {
            assert_eq!(seen.get(&format!("c{c}-e{i}")), Some(&1));
        }
    }
    let total = (CLIENTS * EVENTS_PER_CLIENT) as u64;
    let live = listener.stats();
    assert_eq!(
        (live.received, live.handled, live.in_flight),
        (total, total, 0)
    );
    let stats = listener.shutdown();
    assert_eq!(stats.received, total);
    assert_eq!(stats.handled, total);
    assert_eq!(stats.rejected(), 0);
    assert_eq!(
        stats.handler_errors + stats.handler_panics + stats.timed_out + stats.aborted,
        0
    );
    assert_eq!((stats.in_flight, stats.open_connections), (0, 0));
}
