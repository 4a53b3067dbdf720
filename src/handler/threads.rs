//! [`ThreadGroup`]: threads joined by a deadline, waiting on a condition
//! variable that each thread signals as it ends (never a sleep-poll).
//!
//! The listener's queued modes and the Redis worker run their handler
//! threads in one; a graceful stop joins them by the drain deadline and
//! leaves the rest behind (a handler call that does not return cannot be
//! interrupted), and a second signal can cut the wait short from another
//! thread ([`Hurry`]). Threads may come and go (one per connection, say):
//! ended ones are joined as new ones start, so the group holds about as
//! many handles as threads running.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crate::sync::{lock, wait_timeout};

/// Threads started together and joined together by a deadline.
pub(crate) struct ThreadGroup {
    ends: Arc<Ends>,
    /// Each thread started and not joined yet, with its number.
    threads: Vec<(u64, JoinHandle<()>)>,
    next: u64,
}

/// What the threads of a group signal, and what [`ThreadGroup::join_by`] waits on.
struct Ends {
    state: Mutex<EndState>,
    changed: Condvar,
}

struct EndState {
    /// The numbers of the threads whose body has not returned (or unwound) yet.
    running: HashSet<u64>,
    /// [`Hurry::hurry`] was called: stop waiting.
    hurried: bool,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
/// Cuts a [`ThreadGroup::join_by`] short, before or while it waits. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Hurry(Arc<Ends>);

/// Marks its thread ended when dropped: when the body returns, or unwinds.
struct EndSignal {
    ends: Arc<Ends>,
    number: u64,
}

impl Drop for EndSignal {
    fn drop(&mut self) {
        lock(&self.ends.state).running.remove(&self.number);
        self.ends.changed.notify_all();
    }
}

impl Default for ThreadGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ThreadGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadGroup")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl ThreadGroup {
    /// An empty group.
    pub fn new() -> Self {
        Self {
            ends: Arc::new(Ends {
                state: Mutex::new(EndState {
                    running: HashSet::new(),
                    hurried: false,
                }),
                changed: Condvar::new(),
            }),
            threads: Vec::new(),
            next: 0,
        }
    }

    /// Starts a thread named `name` running `body`. Threads of the group
    /// that ended meanwhile are joined first, now and then, so that the
    /// group does not grow with every thread it ever ran.
    pub fn spawn(&mut self, name: String, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let number = self.next;
        self.next += 1;
        let running = {
            let mut state = lock(&self.ends.state);
            state.running.insert(number);
            state.running.len()
        };
        if self.threads.len() >= 2 * running + 16 {
            self.reap();
        }
        let signal = EndSignal {
            ends: Arc::clone(&self.ends),
            number,
        };
        let spawned = thread::Builder::new().name(name).spawn(move || {
            let _signal = signal;
            body();
        });
        match spawned {
            Ok(thread) => {
                self.threads.push((number, thread));
                Ok(())
            }
            // The closure, and the signal with it, was dropped: not running.
            Err(e) => Err(e),
        }
    }

    /// Joins the threads that ended.
    fn reap(&mut self) {
        let running = lock(&self.ends.state).running.clone();
        let (ended, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.threads)
            .into_iter()
            .partition(|(number, _)| !running.contains(number));
        self.threads = live;
        for (_, thread) in ended {
            let _ = thread.join();
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    /// A handle that cuts [`join_by`](Self::join_by) short.
    pub fn hurry_handle(&self) -> Hurry {
        Hurry(Arc::clone(&self.ends))
    }

    /// Waits until every thread has ended, `deadline` passes, or the group
    /// is hurried; joins the threads that ended and leaves the others
    /// running, detached. Returns how many were left.
    pub fn join_by(self, deadline: Instant) -> usize {
        let running: HashSet<u64> = {
            let mut state = lock(&self.ends.state);
            loop {
                if state.hurried || state.running.is_empty() {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                state = wait_timeout(&self.ends.changed, state, left).0;
            }
            state.running.clone()
        };
        let mut left = 0;
        for (number, thread) in self.threads {
            // A thread whose body returned is about to exit: joining is quick.
            if !running.contains(&number) || thread.is_finished() {
                let _ = thread.join();
            } else {
                left += 1;
            }
        }
        left
    }
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Hurry {
    /// Makes the group's [`join_by`](ThreadGroup::join_by) return now (and
    /// any later one at once).
    pub fn hurry(&self) {
        lock(&self.0.state).hurried = true;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn threads_that_end_are_joined_without_waiting_for_the_deadline() {
        let mut group = ThreadGroup::new();
        for i in 0..4 {
            group
                .spawn(format!("t{i}"), move || {
                    thread::sleep(Duration::from_millis(i * 5))
                })
                .unwrap();
        }
        let started = Instant::now();
        assert_eq!(group.join_by(Instant::now() + Duration::from_secs(30)), 0);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_thread_still_running_at_the_deadline_is_left_and_counted() {
        let (release, blocked) = mpsc::channel::<()>();
        let mut group = ThreadGroup::new();
        group
            .spawn("stuck".into(), move || {
                let _ = blocked.recv();
            })
            .unwrap();
        group.spawn("quick".into(), || {}).unwrap();
        assert_eq!(group.join_by(Instant::now() + Duration::from_millis(50)), 1);
        drop(release);
    }

    #[test]
    fn threads_that_come_and_go_do_not_pile_up() {
        let mut group = ThreadGroup::new();
        for i in 0..100 {
            group.spawn(format!("t{i}"), || {}).unwrap();
            // Each ends before the next starts.
            let mut state = lock(&group.ends.state);
            while !state.running.is_empty() {
                state = wait_timeout(&group.ends.changed, state, Duration::from_secs(1)).0;
            }
        }
        // One thread running at each start: at most 2 + 16 handles kept.
        assert!(
            group.threads.len() <= 18,
            "{} handles kept",
            group.threads.len()
        );
        assert_eq!(group.join_by(Instant::now() + Duration::from_secs(30)), 0);
    }

    #[test]
    fn a_panicking_thread_counts_as_ended() {
        let mut group = ThreadGroup::new();
        group
            .spawn("panics".into(), || panic!("on purpose"))
            .unwrap();
        assert_eq!(group.join_by(Instant::now() + Duration::from_secs(30)), 0);
    }

    #[test]
    fn hurry_cuts_the_wait_short_from_another_thread() {
        let (release, blocked) = mpsc::channel::<()>();
        let mut group = ThreadGroup::new();
        group
            .spawn("stuck".into(), move || {
                let _ = blocked.recv();
            })
            .unwrap();
        let hurry = group.hurry_handle();
        let hurrier = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            hurry.hurry();
        });
        let started = Instant::now();
        assert_eq!(group.join_by(Instant::now() + Duration::from_secs(60)), 1);
        assert!(started.elapsed() < Duration::from_secs(30));
        hurrier.join().unwrap();
        drop(release);
    }
}
