//! Stopping on SIGTERM and SIGINT (feature `signals`, Unix): a thread blocked
//! on [`signal_hook`]'s signal iterator turns the first signal into a
//! graceful shutdown and the second into an immediate one. Shared by the
//! listener and the Redis worker, which pass in what each step means.
//!
//! `signal-hook` runs only an async-signal-safe write to a pipe inside the
//! handler; everything else (logging, waking the listener) happens on our
//! thread. Its handlers chain with ones installed before, and dropping the
//! iterator unregisters them.

use std::io;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// SIGTERM and SIGINT watched for one listener or worker, until [`stop`](Self::stop)ped.
pub(crate) struct SignalWatch {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SignalWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalWatch").finish_non_exhaustive()
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "a signal",
    }
}

impl SignalWatch {
    /// Installs the handlers and starts the thread that acts on them:
    /// `graceful` on the first signal, `now` on every later one.
    pub fn start(
        drain_timeout: Duration,
        graceful: impl Fn() + Send + 'static,
        now: impl Fn() + Send + 'static,
    ) -> io::Result<Self> {
        let mut signals = Signals::new([SIGTERM, SIGINT])?;
        let handle = signals.handle();
        let thread = thread::Builder::new()
            .name("wasender-signals".to_owned())
            .spawn(move || {
                let mut received = 0u32;
                for signal in signals.forever() {
                    received += 1;
                    if received == 1 {
                        log::info!(
                            "{} received: shutting down gracefully (up to {drain_timeout:?} for \
                             work in progress); send it again to stop at once",
                            name(signal)
                        );
                        graceful();
                    } else {
                        log::warn!(
                            "{} received again: stopping at once, without waiting for work in progress",
                            name(signal)
                        );
                        now();
                    }
                }
                // `signals` is dropped here: the handlers are unregistered.
            })?;
        Ok(Self {
            handle,
            thread: Some(thread),
        })
    }

    /// Stops watching: the thread ends and the handlers are unregistered.
    pub fn stop(mut self) {
        self.close();
    }

    fn close(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        self.close();
    }
}
