//! The one attempts loop: call the handler, retry with backoff, dead-letter
//! after the last attempt. The listener's queued and durable modes and the
//! Redis worker run every event through [`run_attempts`]; what differs
//! between them (where attempts are recorded, how to wait, where dead
//! letters go) is their [`Attempts`] implementation.

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use super::{dispatch_guarded, panic_message, DeadLetter, HandlerFailure, HandlerRetryPolicy};
use super::{LastCall, WebhookHandler};
use crate::event::WasenderWebhookEvent;

/// What a delivery mode does around each handler call of [`run_attempts`].
pub(crate) trait Attempts {
    /// Runs one handler call (the listener times it for its metrics).
    fn call(
        &mut self,
        call: &mut dyn FnMut() -> Result<(), HandlerFailure>,
    ) -> Result<(), HandlerFailure> {
        call()
    }

    /// Handler call number `call` returned `Ok`: acknowledge the event.
    fn handled(&mut self, call: u32);

    /// Handler call number `call` failed: count it, and record its answer
    /// where attempts are kept.
    fn failed(&mut self, call: u32, failure: &HandlerFailure);

    /// Waits `delay` before the next call. `false` when the event must be
    /// left instead (the runtime is stopping): it is then the mode's to
    /// keep or hand back.
    fn wait(&mut self, delay: Duration) -> bool;

    /// Handler call number `call` (2 or more) is about to begin: record the
    /// attempt, and count the retry. `false` when it must not begin (the
    /// event was taken over, or the attempt could not be recorded): the
    /// event is left for later.
    fn begin(&mut self, call: u32) -> bool;

    /// The last attempt failed: dead-letter the event (`attempts` calls
    /// began; the last ended as `last_call` with `error`).
    fn give_up(&mut self, attempts: u32, last_call: LastCall, error: String);
}

/// How [`run_attempts`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// A call returned `Ok`.
    Handled,
    /// The last attempt failed: given up.
    DeadLettered,
    /// Left before the next call (stopping, taken over, or not recordable).
    Left,
}

/// Calls `handler` with `event` until a call returns `Ok` or the policy's
/// last attempt has failed, waiting the policy's backoff in between. The
/// call numbered `first` (1 for an event never tried) begins at once: the
/// caller has recorded it already. `what` names the event in logs.
pub(crate) fn run_attempts<H, A>(
    handler: &H,
    event: &WasenderWebhookEvent,
    policy: &HandlerRetryPolicy,
    first: u32,
    what: &dyn Display,
    runtime: &mut A,
) -> Ended
where
    H: WebhookHandler + ?Sized,
    A: Attempts,
{
    let max = policy.attempts();
    let mut call = first.max(1);
    loop {
        let failure = match runtime.call(&mut || dispatch_guarded(handler, event)) {
            Ok(()) => {
                runtime.handled(call);
                return Ended::Handled;
            }
            Err(failure) => failure,
        };
        runtime.failed(call, &failure);
        if call >= max {
            let last_call = if failure.panicked {
                LastCall::Panicked
            } else {
                LastCall::Failed
            };
            runtime.give_up(call, last_call, failure.message);
            return Ended::DeadLettered;
        }
        let delay = policy.backoff(call);
        log::warn!(
            "webhook {} ({what}) failed on call {call} of {max}: {failure}; retrying in {delay:?}",
            event.event_name()
        );
        if !runtime.wait(delay) || !runtime.begin(call + 1) {
            return Ended::Left;
        }
        call += 1;
    }
}

/// The hook called with every dead letter (`on_dead_letter`).
pub(crate) type DeadLetterHook = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

/// Logs a dead letter and hands it to `hook`, catching (and logging) a
/// panic in the hook.
pub(crate) fn report_dead_letter(letter: &DeadLetter, hook: Option<&DeadLetterHook>) {
    log::error!("webhook event {} dead-lettered: {letter}", letter.id);
    if let Some(hook) = hook {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook(letter))) {
            log::error!(
                "the on_dead_letter hook panicked: {}",
                panic_message(panic.as_ref())
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::envelope::WebhookEvent;
    use crate::event::parse_event;

    /// Fails its first `fail` calls, then succeeds.
    struct Flaky {
        fail: u32,
        calls: std::sync::atomic::AtomicU32,
    }

    impl WebhookHandler for Flaky {
        type Error = String;
        fn on_unknown(&self, _: &WebhookEvent<serde_json::Value>) -> Result<(), String> {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if n <= self.fail {
                Err(format!("call {n} fails"))
            } else {
                Ok(())
            }
        }
    }

    /// Records what the loop asked for.
    #[derive(Default)]
    struct Log {
        steps: Vec<String>,
        stop_waiting: bool,
    }

    impl Attempts for Log {
        fn handled(&mut self, call: u32) {
            self.steps.push(format!("handled {call}"));
        }
        fn failed(&mut self, call: u32, failure: &HandlerFailure) {
            self.steps.push(format!("failed {call}: {failure}"));
        }
        fn wait(&mut self, delay: Duration) -> bool {
            self.steps.push(format!("wait {}", delay.as_millis()));
            !self.stop_waiting
        }
        fn begin(&mut self, call: u32) -> bool {
            self.steps.push(format!("begin {call}"));
            true
        }
        fn give_up(&mut self, attempts: u32, last_call: LastCall, error: String) {
            self.steps
                .push(format!("give up after {attempts}: {last_call:?} {error}"));
        }
    }

    fn run(fail: u32, first: u32, log: &mut Log) -> Ended {
        let handler = Flaky {
            fail,
            calls: Default::default(),
        };
        let event = parse_event(br#"{"event":"labels.edit","data":{}}"#).unwrap();
        let policy = HandlerRetryPolicy::default()
            .max_attempts(3)
            .initial_backoff(Duration::from_millis(10));
        run_attempts(&handler, &event, &policy, first, &"test", log)
    }

    #[test]
    fn retries_with_backoff_until_a_call_succeeds() {
        let mut log = Log::default();
        assert_eq!(run(2, 1, &mut log), Ended::Handled);
        assert_eq!(
            log.steps,
            [
                "failed 1: call 1 fails",
                "wait 10",
                "begin 2",
                "failed 2: call 2 fails",
                "wait 20",
                "begin 3",
                "handled 3"
            ]
        );
    }

    #[test]
    fn gives_up_after_the_last_attempt_counting_earlier_calls() {
        let mut log = Log::default();
        // Two calls began elsewhere before: this one is the last.
        assert_eq!(run(9, 3, &mut log), Ended::DeadLettered);
        assert_eq!(
            log.steps,
            [
                "failed 3: call 1 fails",
                "give up after 3: Failed call 1 fails"
            ]
        );
    }

    #[test]
    fn a_stop_during_the_backoff_leaves_the_event() {
        let mut log = Log {
            stop_waiting: true,
            ..Log::default()
        };
        assert_eq!(run(9, 1, &mut log), Ended::Left);
        assert_eq!(log.steps, ["failed 1: call 1 fails", "wait 10"]);
    }
}
