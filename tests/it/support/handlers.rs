//! The handlers test listeners and workers run: [`Recorder`], steered by
//! each message's text, and [`AppendIds`], which child processes run to
//! leave a trace that survives them.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wasenderapi::event::MessagesData;
use wasenderapi::{WebhookEvent, WebhookHandler};

/// How long a `block` message waits for the test to let it go.
const BLOCK_LIMIT: Duration = Duration::from_secs(10);
/// How long [`Recorder::wait_blocked`] waits for handlers to block.
const BLOCKED_WAIT: Duration = Duration::from_secs(5);

/// A handler that records what it is given, steered by each message's text:
/// - `fail`: always an error; `flaky`: an error while [`Recorder::failing`] is set;
/// - `failN` (N a number): an error on the first N attempts for that message id;
/// - `panic`: panics;
/// - `block`: waits until [`Recorder::release`] lets it go (or
///   [`Recorder::open_gate`] lets every one go), at most 10 s;
/// - `slowN`: works N × 10 ms (a handler slow on purpose);
/// - anything else: `Ok`.
///
/// Every call counts in [`attempts`](Self::attempts); every successful one
/// records the message id in [`handled`](Self::handled), in order. Events of
/// a type the crate does not know are recorded by name.
#[derive(Default)]
pub struct Recorder {
    handled: Mutex<Vec<String>>,
    attempts: Mutex<HashMap<String, u32>>,
    unknown: Mutex<Vec<String>>,
    pub failing: AtomicBool,
    gate: Mutex<Gate>,
    gate_changed: Condvar,
}

/// Where `block` messages wait.
#[derive(Default)]
struct Gate {
    /// Every `block` message goes on at once.
    open: bool,
    /// How many more `block` messages may go on.
    permits: usize,
    /// How many `block` messages have started waiting, ever.
    blocked: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler that panicked on purpose must not hide what was recorded.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Recorder {
    /// Lets `n` more `block` messages go on (those waiting first).
    pub fn release(&self, n: usize) {
        lock(&self.gate).permits += n;
        self.gate_changed.notify_all();
    }

    /// Lets every `block` message go on, now and later.
    pub fn open_gate(&self) {
        lock(&self.gate).open = true;
        self.gate_changed.notify_all();
    }

    /// Waits until `n` `block` messages have started waiting in the handler.
    #[track_caller]
    pub fn wait_blocked(&self, n: usize) {
        let deadline = Instant::now() + BLOCKED_WAIT;
        let mut gate = lock(&self.gate);
        while gate.blocked < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {n} blocking handler call(s) started within {BLOCKED_WAIT:?}",
                gate.blocked
            );
            gate = self
                .gate_changed
                .wait_timeout(gate, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// The ids handled, in order.
    pub fn handled(&self) -> Vec<String> {
        lock(&self.handled).clone()
    }

    /// How often `id` was handled.
    pub fn count(&self, id: &str) -> usize {
        lock(&self.handled).iter().filter(|h| *h == id).count()
    }

    /// How many messages were handled in all.
    pub fn total(&self) -> usize {
        lock(&self.handled).len()
    }

    /// How often each id was handled.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for id in lock(&self.handled).iter() {
            *counts.entry(id.clone()).or_default() += 1;
        }
        counts
    }

    /// How many calls began for `id`, successful or not.
    pub fn attempts(&self, id: &str) -> u32 {
        lock(&self.attempts).get(id).copied().unwrap_or(0)
    }

    /// The names of the events of unknown types, in order.
    pub fn unknown_events(&self) -> Vec<String> {
        lock(&self.unknown).clone()
    }

    fn wait_at_gate(&self) {
        let deadline = Instant::now() + BLOCK_LIMIT;
        let mut gate = lock(&self.gate);
        gate.blocked += 1;
        self.gate_changed.notify_all();
        while !gate.open && gate.permits == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            gate = self
                .gate_changed
                .wait_timeout(gate, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        if !gate.open {
            gate.permits -= 1;
        }
    }
}

impl WebhookHandler for Recorder {
    type Error = String;

    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> Result<(), String> {
        for m in event.messages() {
            let id = m.id().unwrap_or("").to_owned();
            let attempt = {
                let mut attempts = lock(&self.attempts);
                let n = attempts.entry(id.clone()).or_default();
                *n += 1;
                *n
            };
            let text = m.text().unwrap_or("");
            match text {
                "fail" => return Err(format!("{id} always fails")),
                "flaky" if self.failing.load(Ordering::SeqCst) => {
                    return Err(format!("{id} fails for now"))
                }
                "panic" => panic!("{id} panics on purpose"),
                "block" => self.wait_at_gate(),
                _ => {}
            }
            if let Some(n) = text
                .strip_prefix("fail")
                .and_then(|n| n.parse::<u32>().ok())
            {
                if attempt <= n {
                    return Err(format!("{id} fails attempt {attempt} of {n}"));
                }
            }
            if let Some(n) = text
                .strip_prefix("slow")
                .and_then(|n| n.parse::<u64>().ok())
            {
                std::thread::sleep(Duration::from_millis(n * 10));
            }
            lock(&self.handled).push(id);
        }
        Ok(())
    }

    fn on_unknown(&self, event: &WebhookEvent<serde_json::Value>) -> Result<(), String> {
        lock(&self.unknown).push(event.event_name().to_owned());
        Ok(())
    }
}

/// The handler child processes run: works `work` on each event (slow on
/// purpose, when not zero), then appends the message id and a newline to
/// its output file: one `write` on an `O_APPEND` file, so a line is never
/// torn by another handler thread, and a line without its newline was cut
/// by a kill. No `fsync`: the tests kill processes, not the machine.
pub struct AppendIds {
    out: Mutex<std::fs::File>,
    work: Duration,
}

impl AppendIds {
    /// Appends to `path` (created if missing).
    pub fn open(path: impl AsRef<Path>, work: Duration) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("the child's output file opens");
        Self {
            out: Mutex::new(out),
            work,
        }
    }
}

impl WebhookHandler for AppendIds {
    type Error = io::Error;

    fn on_messages_received(&self, event: &WebhookEvent<MessagesData>) -> io::Result<()> {
        std::thread::sleep(self.work);
        for m in event.messages() {
            let line = format!("{}\n", m.id().unwrap_or("?"));
            lock(&self.out).write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

/// The complete lines of the file at `path` (none when it is missing); a
/// last line without its newline (cut by a kill, or being appended) is left out.
pub fn complete_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| l.trim_end().to_owned())
        .collect()
}

/// How often each complete line appears in the file at `path`.
pub fn line_counts(path: &Path) -> HashMap<String, u32> {
    let mut counts = HashMap::new();
    for line in complete_lines(path) {
        *counts.entry(line).or_insert(0) += 1;
    }
    counts
}
