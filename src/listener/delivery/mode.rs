//! [`DeliveryMode`]: how a verified event reaches the handler.

use std::path::PathBuf;

/// Events waiting for the handler in the queued modes, when not set with
/// [`DeliveryMode::with_capacity`].
pub const DEFAULT_DELIVERY_CAPACITY: usize = 1024;

/// When the listener answers a verified event, and what it keeps of it.
/// Set with [`delivery_mode`](super::super::WebhookListenerBuilder::delivery_mode);
/// see the [operations guide](crate::guide#choosing-a-delivery-mode) for what each mode promises.
///
/// ```
/// use wasenderapi::listener::DeliveryMode;
/// let inline = DeliveryMode::default();                       // the handler runs before the answer
/// let queued = DeliveryMode::queued(4096);                    // fast 200, in memory
/// let durable = DeliveryMode::durable("/var/lib/bot/journal") // fast 200, fsynced first
///     .with_capacity(4096);
/// # let _ = (inline, queued, durable);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryMode {
    /// The handler runs on a worker before the answer: 200 once it returned
    /// `Ok`, 500 when it failed or panicked (the sender may retry). No retries
    /// here. The default.
    #[default]
    Inline,
    /// Verified and parsed, put on a bounded in-memory queue and answered 200
    /// at once; handler threads take it from there, with retries. A full queue
    /// answers 503 with `Retry-After`. Events on the queue are lost if the
    /// process dies. Made by [`DeliveryMode::queued`].
    #[non_exhaustive]
    Queued {
        /// The most events waiting for (or being handled by) a handler thread.
        capacity: usize,
    },
    /// Like [`Queued`](Self::Queued), but each event is appended to a journal
    /// in `dir` and `fsync`ed before the 200, and events not yet handled are
    /// handed to the handler again, in order, when the listener starts. Made
    /// by [`DeliveryMode::durable`].
    #[non_exhaustive]
    Durable {
        /// The journal directory (created if missing). Also holds
        /// `dead-letters.jsonl`, `lock` and, with dedupe, `dedupe.log`. One
        /// listener per directory: it is locked while the listener runs.
        dir: PathBuf,
        /// The most events waiting for (or being handled by) a handler thread.
        capacity: usize,
    },
}

impl DeliveryMode {
    /// Queued in memory, at most `capacity` events waiting or being handled.
    /// Memory is bounded by `capacity` times the body limit.
    pub fn queued(capacity: usize) -> Self {
        Self::Queued { capacity }
    }

    /// Queued with a durable journal in `dir`, with the default capacity
    /// ([`DEFAULT_DELIVERY_CAPACITY`]).
    pub fn durable(dir: impl Into<PathBuf>) -> Self {
        Self::Durable {
            dir: dir.into(),
            capacity: DEFAULT_DELIVERY_CAPACITY,
        }
    }

    /// The same mode with another queue capacity (no effect on `Inline`).
    pub fn with_capacity(self, capacity: usize) -> Self {
        match self {
            Self::Inline => Self::Inline,
            Self::Queued { .. } => Self::Queued { capacity },
            Self::Durable { dir, .. } => Self::Durable { dir, capacity },
        }
    }

    /// `true` for the modes that answer before the handler runs.
    pub fn is_queued(&self) -> bool {
        !matches!(self, Self::Inline)
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        match self {
            Self::Inline => None,
            Self::Queued { capacity } | Self::Durable { capacity, .. } => Some(*capacity),
        }
    }
}
