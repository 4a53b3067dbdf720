//! What the crate logs, captured: one `log::Log` for the whole test binary
//! (the logger is global to the process), installed at the first
//! [`Watch::start`]. It keeps records only while a watch is running, with
//! the thread that logged each, because every listener of every test
//! running at the time logs into it: a test picks out its own lines by
//! their content (its listener's address, its client's address) or by
//! thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::thread::ThreadId;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// One record the crate logged.
#[derive(Debug, Clone)]
pub struct Line {
    pub level: Level,
    /// The thread that logged it.
    pub thread: ThreadId,
    pub text: String,
}

/// The records of targets under `wasenderapi`, while any watch runs.
struct Capture {
    watches: AtomicUsize,
    lines: Mutex<Vec<Line>>,
}

impl Capture {
    fn lines(&self) -> MutexGuard<'_, Vec<Line>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.watches.load(Ordering::SeqCst) > 0 && metadata.target().starts_with("wasenderapi")
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = Line {
                level: record.level(),
                thread: std::thread::current().id(),
                text: record.args().to_string(),
            };
            self.lines().push(line);
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture {
    watches: AtomicUsize::new(0),
    lines: Mutex::new(Vec::new()),
};

/// Capturing, from [`start`](Self::start) until dropped.
pub struct Watch {
    /// Where this watch's lines begin in the capture.
    from: usize,
}

impl Watch {
    /// Installs the capture (once per process) and starts keeping lines,
    /// down to `debug`.
    pub fn start() -> Self {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            log::set_logger(&CAPTURE).expect("no other logger in this test binary");
            log::set_max_level(LevelFilter::Debug);
        });
        let lines = CAPTURE.lines();
        CAPTURE.watches.fetch_add(1, Ordering::SeqCst);
        Self { from: lines.len() }
    }

    /// Every line logged since this watch started, by any thread.
    pub fn lines(&self) -> Vec<Line> {
        CAPTURE.lines()[self.from..].to_vec()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut lines = CAPTURE.lines();
        if CAPTURE.watches.fetch_sub(1, Ordering::SeqCst) == 1 {
            lines.clear();
        }
    }
}
