//! Journal append throughput: group commit from 8 threads against one `fsync`
//! per append (the journal's `group_commit(false)` baseline).
//!
//! `cargo bench -p wasenderapi-benches --bench journal` (set
//! `JOURNAL_BENCH_DIR` to measure another disk than the system temp dir,
//! `JOURNAL_BENCH_APPENDS` to change the count per thread, default 100). The
//! journal is crate-internal; the `bench-internals` feature (on in this package) exposes it here.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wasenderapi::journal::bench::{open_journal, JournalOptions};

const THREADS: usize = 8;

struct Run {
    appends: u64,
    fsyncs: u64,
    elapsed: Duration,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.appends as f64 / self.elapsed.as_secs_f64()
    }
}

fn run(label: &str, options: JournalOptions, per_thread: usize) -> Run {
    let base = std::env::var_os("JOURNAL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = base.join(format!(
        "wasender-journal-bench-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let (journal, _) = open_journal(&dir, options).expect("open the bench journal");
    let journal = Arc::new(journal);
    let body = br#"{"event":"messages.upsert","timestamp":1633456789,"data":{"messages":{"key":{"id":"3EB0X1","fromMe":false,"remoteJid":"1234567890@s.whatsapp.net"},"messageBody":"Hello"}}}"#;
    let started = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let journal = Arc::clone(&journal);
            thread::spawn(move || {
                for _ in 0..per_thread {
                    let seq = journal.append(body).expect("append");
                    journal.mark_done(seq).expect("mark done");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("bench thread");
    }
    let elapsed = started.elapsed();
    let stats = journal.stats();
    drop(journal);
    let _ = std::fs::remove_dir_all(&dir);
    let run = Run {
        appends: stats.appends,
        fsyncs: stats.commits,
        elapsed,
    };
    println!(
        "{label:>22}: {:>6} appends in {:>8.1?}  {:>9.0} appends/s  {:>5} fsyncs ({:.1} appends per fsync)",
        run.appends,
        run.elapsed,
        run.per_second(),
        run.fsyncs,
        run.appends as f64 / run.fsyncs.max(1) as f64
    );
    run
}

fn main() {
    let per_thread = std::env::var("JOURNAL_BENCH_APPENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    println!("journal append + mark_done, {THREADS} threads x {per_thread} events");
    let naive = run(
        "fsync per append",
        JournalOptions::default().group_commit(false),
        per_thread,
    );
    let group = run("group commit", JournalOptions::default(), per_thread);
    let delayed = run(
        "group commit +1ms delay",
        JournalOptions::default().commit_delay(Duration::from_millis(1)),
        per_thread,
    );
    println!(
        "group commit / fsync per append: {:.1}x (with 1 ms commit delay: {:.1}x)",
        group.per_second() / naive.per_second(),
        delayed.per_second() / naive.per_second()
    );
}
