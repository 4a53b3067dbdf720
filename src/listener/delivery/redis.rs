//! Redis delivery: each verified event is added to the Redis stream (with
//! the shared dedupe check) before the answer; workers elsewhere handle it.
//! See the [`redis`](crate::redis) module.
//!
//! The adds run on threads of their own, one per connection of the
//! appender's pool: the thread that verified the event hands it over and
//! goes on with other requests, and the answer follows once Redis said what
//! became of the event (as the durable journal answers once its `fsync` is
//! done). So the event loops never wait on Redis, and as many adds are in
//! flight as the pool has connections, which Redis then writes (and, with
//! `appendfsync always`, syncs) together.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use super::{Deadline, Delivered, Delivery, Then};
use crate::error::Result;
use crate::event::WasenderWebhookEvent;
use crate::handler::ThreadGroup;
use crate::redis::{Appended, RedisAppender, RedisAppenderOptions};
use crate::sync::lock;

/// Events waiting for an adding thread, per thread; past it, 503.
const WAITING_PER_THREAD: usize = 64;

/// Adds events to Redis on its own threads; runs no handler.
pub(crate) struct RedisDelivery {
    appender: Arc<RedisAppender>,
    /// `None` once finishing: nothing more is taken.
    jobs: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Option<ThreadGroup>>,
}

/// One event to add, and who to tell.
struct Job {
    event: WasenderWebhookEvent,
    body: Vec<u8>,
    then: Then,
}

impl RedisDelivery {
    /// Prepares the connection pool and its threads, and says (in the log)
    /// whether Redis answers now. A Redis that is down does not stop the
    /// listener: events are answered 503 until it is back.
    pub fn connect(options: &RedisAppenderOptions) -> Result<Self> {
        let appender = Arc::new(RedisAppender::connect(options.clone())?);
        if let Err(e) = appender.ping() {
            log::warn!("Redis does not answer yet ({e}); events are answered 503 until it does");
        }
        let count = options.pool_size.max(1);
        let (sender, receiver) = sync_channel(count * WAITING_PER_THREAD);
        let receiver = Arc::new(Mutex::new(receiver));
        let mut threads = ThreadGroup::new();
        for i in 0..count {
            let appender = Arc::clone(&appender);
            let receiver = Arc::clone(&receiver);
            threads.spawn(format!("wasender-redis-add-{i}"), move || {
                add_until_closed(&appender, &receiver);
            })?;
        }
        Ok(Self {
            appender,
            jobs: Mutex::new(Some(sender)),
            threads: Mutex::new(Some(threads)),
        })
    }

    /// The mode, for the start-up log line.
    pub fn describe(options: &RedisAppenderOptions) -> String {
        let redis = options.redis();
        format!(
            "Redis ({}, stream {})",
            redis.redacted_url(),
            redis.events_key()
        )
    }
}

/// An adding thread: takes events until the channel closes and is empty.
fn add_until_closed(appender: &RedisAppender, jobs: &Mutex<Receiver<Job>>) {
    loop {
        // One thread waits in `recv`, the others for the lock: each event
        // goes to one thread.
        let job = lock(jobs).recv();
        let Ok(Job { event, body, then }) = job else {
            return;
        };
        let delivered = catch_unwind(AssertUnwindSafe(|| add(appender, &event, &body)))
            .unwrap_or_else(|_| Delivered::Unavailable("adding the event panicked".to_owned()));
        then(delivered);
    }
}

fn add(appender: &RedisAppender, event: &WasenderWebhookEvent, body: &[u8]) -> Delivered {
    match appender.append(event, body) {
        Ok(Appended::Added(_)) => Delivered::Queued,
        Ok(Appended::Duplicate) => Delivered::Duplicate,
        Err(e) => Delivered::Unavailable(e.to_string()),
    }
}

impl Delivery for RedisDelivery {
    fn deliver(&self, event: WasenderWebhookEvent, body: &[u8]) -> Delivered {
        add(&self.appender, &event, body)
    }

    fn answers_later(&self) -> bool {
        true
    }

    fn deliver_then(&self, event: WasenderWebhookEvent, body: &[u8], then: Then) {
        let job = Job {
            event,
            body: body.to_vec(),
            then,
        };
        let sent = match lock(&self.jobs).as_ref() {
            None => Err(TrySendError::Disconnected(job)),
            Some(jobs) => jobs.try_send(job),
        };
        match sent {
            Ok(()) => {}
            // Every adding thread busy and the backlog full: retry later.
            Err(TrySendError::Full(job)) => (job.then)(Delivered::Busy),
            Err(TrySendError::Disconnected(job)) => {
                (job.then)(Delivered::Unavailable(
                    "the listener is stopping".to_owned(),
                ));
            }
        }
    }

    fn finish(&self, deadline: Deadline) {
        // Closing the channel lets the threads add what waits, then end.
        drop(lock(&self.jobs).take());
        if let Some(threads) = lock(&self.threads).take() {
            let left = threads.join_by(deadline.instant());
            if left > 0 {
                log::warn!(
                    "{left} Redis add(s) still waiting for Redis at the drain deadline; \
                     their senders get no answer and will retry"
                );
            }
        }
    }
}
