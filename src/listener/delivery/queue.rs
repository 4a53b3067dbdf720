//! The bounded queue between the connection threads and the handler threads
//! of the queued modes, and the replay feed ahead of it.
//!
//! Handler threads take events in this order: first replayed events — the
//! journal's backlog at start and requeued dead letters — then new ones. A
//! replayed event is not held in memory until a handler thread is about to
//! need it: the feed is a list of seq ranges in the journal, and the handler
//! thread that finds nothing replayed in memory reads the next small batch
//! ([`REPLAY_BATCH`] events, at most [`REPLAY_BATCH_BYTES`]) itself, outside
//! the queue's lock. So memory stays bounded by the capacity (new events)
//! plus one batch, however large the backlog.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::super::stats::Counters;
use super::Deadline;
use crate::event::WasenderWebhookEvent;
use crate::journal::Seq;
use crate::sync::{lock, wait, wait_timeout};

/// The most replayed events read from the journal at once.
pub(super) const REPLAY_BATCH: usize = 64;
/// The most payload bytes read from the journal at once (one event may exceed it).
pub(super) const REPLAY_BATCH_BYTES: usize = 1 << 20;

/// One event on its way to the handler.
pub(super) struct Item {
    pub seq: Seq,
    pub body: Vec<u8>,
    /// Parsed on the request path; `None` for a replayed event (parsed by the handler thread).
    pub event: Option<WasenderWebhookEvent>,
}

/// What a handler thread read for the feed: see [`Queue::next`].
pub(super) struct Refill {
    /// The events read, in seq order.
    pub items: Vec<Item>,
    /// Events that could not be read back (they stay in the journal).
    pub failed: u64,
    /// Where the range continues.
    pub next: u64,
    /// Nothing more is pending in the range.
    pub exhausted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Accepting and handling.
    Running,
    /// Shutdown began: no new events; handle what is queued.
    Draining,
    /// The drain deadline passed: take nothing more.
    Stopped,
}

/// Journal events to hand out before new ones, not read yet.
#[derive(Default)]
struct Feed {
    /// Seq ranges still to read, in order. Only events still pending in the
    /// journal are read, so a range may hold gaps.
    ranges: VecDeque<Range<u64>>,
    /// Events in those ranges (for the queue depth).
    unread: u64,
}

struct State {
    /// Replayed events in memory (one batch at most): handed out before `items`.
    replay: VecDeque<Item>,
    feed: Feed,
    /// A handler thread is reading the next batch of the feed.
    refilling: bool,
    items: VecDeque<Item>,
    /// Slots promised to requests still writing to the journal.
    reserved: usize,
    /// Events taken by a handler thread and not finished.
    busy: usize,
    capacity: usize,
    phase: Phase,
    /// Shutdown was told to stop waiting for the drain (the second signal).
    hurried: bool,
}

impl State {
    fn idle(&self) -> bool {
        self.replay.is_empty()
            && self.feed.ranges.is_empty()
            && !self.refilling
            && self.items.is_empty()
            && self.busy == 0
            && self.reserved == 0
    }

    /// Takes in what a handler thread read; returns how many events left
    /// the queue without being handed out (unreadable, or no longer pending).
    fn refilled(&mut self, refill: Refill) -> u64 {
        let read = refill.items.len() as u64 + refill.failed;
        self.feed.unread = self.feed.unread.saturating_sub(read);
        self.replay.extend(refill.items);
        if refill.exhausted {
            self.feed.ranges.pop_front();
        } else if let Some(front) = self.feed.ranges.front_mut() {
            front.start = refill.next;
        }
        let mut gone = refill.failed;
        if self.feed.ranges.is_empty() {
            gone += std::mem::take(&mut self.feed.unread);
        }
        gone
    }
}

pub(super) struct Queue {
    state: Mutex<State>,
    /// Phase changes and progress towards idle (the drain and retry waits).
    changed: Condvar,
    /// An item was queued: wakes one waiting handler thread (not all of them).
    available: Condvar,
    counters: Arc<Counters>,
}

/// A promised queue slot; given back when dropped unused.
pub(super) struct Slot<'a> {
    queue: &'a Queue,
    used: bool,
}

impl Slot<'_> {
    /// Queues `item`; `false` (and the slot given back) when shutdown has
    /// already stopped taking events from the queue, so nobody would handle it.
    pub fn push(mut self, item: Item) -> bool {
        self.used = true;
        self.queue.push_reserved(item)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.queue.release_reserved();
        }
    }
}

/// What was left when the drain deadline passed: see [`Queue::drain`].
pub(super) struct Leftover {
    /// Events never handed to a handler (queued, or still in the feed).
    pub events: u64,
    /// Handler calls still running.
    pub busy: usize,
    /// The drain was cut short by [`Queue::hurry`].
    pub hurried: bool,
}

impl Queue {
    pub fn new(capacity: usize, counters: Arc<Counters>) -> Self {
        Self {
            state: Mutex::new(State {
                replay: VecDeque::new(),
                feed: Feed::default(),
                refilling: false,
                items: VecDeque::new(),
                reserved: 0,
                busy: 0,
                capacity,
                phase: Phase::Running,
                hurried: false,
            }),
            changed: Condvar::new(),
            available: Condvar::new(),
            counters,
        }
    }

    /// Queues `item` in a slot reserved before (see [`reserve_slot`](Self::reserve_slot));
    /// `false` when shutdown already stopped taking events from the queue.
    pub fn push_reserved(&self, item: Item) -> bool {
        let mut s = lock(&self.state);
        s.reserved -= 1;
        let phase = s.phase;
        if phase != Phase::Stopped {
            s.items.push_back(item);
        }
        drop(s);
        if phase == Phase::Running {
            self.available.notify_one();
        } else {
            self.wake_all();
        }
        phase != Phase::Stopped
    }

    /// Gives back a slot reserved before and not used.
    pub fn release_reserved(&self) {
        let mut s = lock(&self.state);
        s.reserved -= 1;
        let running = s.phase == Phase::Running;
        drop(s);
        if !running {
            self.wake_all();
        }
    }

    /// Reserves a slot that its owner must end with
    /// [`push_reserved`](Self::push_reserved) or
    /// [`release_reserved`](Self::release_reserved); `false` when the queue is
    /// full or closing. (The owner here outlives the call: an event whose
    /// append is being committed.)
    pub fn reserve_slot(&self) -> bool {
        let mut s = lock(&self.state);
        if s.phase != Phase::Running || s.items.len() + s.busy + s.reserved >= s.capacity {
            return false;
        }
        s.reserved += 1;
        true
    }

    /// A slot for one more event, or `None` when the queue is full or closing.
    /// Replayed events do not count against the capacity: at most one batch
    /// of them is in memory.
    pub fn reserve(&self) -> Option<Slot<'_>> {
        // Built only once reserved: a `Slot` dropped unused gives one back.
        self.reserve_slot().then(|| Slot {
            queue: self,
            used: false,
        })
    }

    /// Adds the `count` journal events with seqs in `seqs` to the feed, to be
    /// handed out after those already there and before new events. Returns
    /// `false` (adding nothing) once the queue is stopped.
    pub fn feed(&self, seqs: Range<u64>, count: u64) -> bool {
        let mut s = lock(&self.state);
        if s.phase == Phase::Stopped {
            return false;
        }
        match s.feed.ranges.back_mut() {
            Some(last) if last.end == seqs.start => last.end = seqs.end,
            _ => s.feed.ranges.push_back(seqs),
        }
        s.feed.unread += count;
        drop(s);
        self.available.notify_all();
        true
    }

    /// Queues `items` (already in memory) ahead of new events. Returns them
    /// back once the queue is stopped.
    pub fn replay(&self, items: Vec<Item>) -> Result<(), Vec<Item>> {
        let mut s = lock(&self.state);
        if s.phase == Phase::Stopped {
            return Err(items);
        }
        s.replay.extend(items);
        drop(s);
        self.available.notify_all();
        Ok(())
    }

    /// The next event to handle; `None` once the queue is drained at
    /// shutdown or stopped. With nothing replayed in memory and more in the
    /// feed, reads the next batch with `read` (given the range to read from),
    /// outside the lock, while other handler threads wait.
    pub fn next(&self, read: &dyn Fn(Range<u64>) -> Refill) -> Option<Item> {
        let mut s = lock(&self.state);
        loop {
            if s.phase == Phase::Stopped {
                return None;
            }
            if let Some(item) = s.replay.pop_front() {
                s.busy += 1;
                return Some(item);
            }
            if s.refilling {
                s = wait(&self.available, s);
                continue;
            }
            if let Some(range) = s.feed.ranges.front().cloned() {
                s.refilling = true;
                drop(s);
                let refill = read(range);
                s = lock(&self.state);
                s.refilling = false;
                // Once stopped, the drain counted the whole feed as left over.
                if s.phase != Phase::Stopped {
                    let gone = s.refilled(refill);
                    if gone > 0 {
                        self.counters.queue_shrank(gone);
                    }
                }
                self.wake_all();
                continue;
            }
            if let Some(item) = s.items.pop_front() {
                s.busy += 1;
                return Some(item);
            }
            if s.phase == Phase::Draining && s.reserved == 0 {
                return None;
            }
            s = wait(&self.available, s);
        }
    }

    /// A handler thread finished an event.
    pub fn finished(&self) {
        let mut s = lock(&self.state);
        s.busy -= 1;
        let running = s.phase == Phase::Running;
        drop(s);
        if !running {
            // Only the drain waits for the queue to become idle.
            self.changed.notify_all();
        }
    }

    /// Shutdown: stops taking events, lets the handler threads work until the
    /// queue is idle or `deadline` passes, then stops them and empties the
    /// queue. Returns what was left.
    pub fn drain(&self, deadline: Deadline) -> Leftover {
        let mut s = lock(&self.state);
        s.phase = Phase::Draining;
        self.wake_all();
        let waiting = s.replay.len() as u64 + s.feed.unread + s.items.len() as u64 + s.busy as u64;
        if waiting > 0 {
            log::info!("draining {waiting} queued event(s) before stopping");
        }
        while !s.idle() && !s.hurried {
            let Some(left) = deadline.remaining() else {
                break;
            };
            s = wait_timeout(&self.changed, s, left).0;
        }
        s.phase = Phase::Stopped;
        let events = s.replay.len() as u64 + s.feed.unread + s.items.len() as u64;
        s.replay.clear();
        s.feed = Feed::default();
        s.items.clear();
        let busy = s.busy;
        let hurried = s.hurried;
        drop(s);
        self.wake_all();
        Leftover {
            events,
            busy,
            hurried,
        }
    }

    /// Cuts the drain short (the second signal): [`drain`](Self::drain)
    /// stops waiting at once. May come before or during the drain.
    pub fn hurry(&self) {
        lock(&self.state).hurried = true;
        self.wake_all();
    }

    /// Stops at once: handler threads take nothing more.
    pub fn stop(&self) {
        lock(&self.state).phase = Phase::Stopped;
        self.wake_all();
    }

    /// Waits on `changed` for at most `left`.
    fn wait_changed<'a>(&self, s: MutexGuard<'a, State>, left: Duration) -> MutexGuard<'a, State> {
        wait_timeout(&self.changed, s, left).0
    }

    /// Wakes every waiter: after a phase change, or progress while draining.
    fn wake_all(&self) {
        self.changed.notify_all();
        self.available.notify_all();
    }

    /// Sleeps `delay` before a retry. Returns `false` when woken early because
    /// the event must be abandoned: from the start of shutdown when it is safe
    /// in the journal, else from the drain deadline.
    pub fn backoff(&self, delay: Duration, durable: bool) -> bool {
        let abandon = |phase: Phase| match phase {
            Phase::Running => false,
            Phase::Draining => durable,
            Phase::Stopped => true,
        };
        let until = Deadline::after(delay);
        let mut s = lock(&self.state);
        loop {
            if abandon(s.phase) {
                return false;
            }
            let Some(left) = until.remaining() else {
                return true;
            };
            s = self.wait_changed(s, left);
        }
    }
}
