//! Dead letters on a running listener: list, requeue, purge.

use super::WebhookListener;
use crate::journal::{DeadLetter, Requeue};

impl WebhookListener {
    /// The dead letters, oldest first, requeued ones included (with
    /// [`DeadLetter::requeued_as`] set).
    ///
    /// Durable mode: those in `dead-letters.jsonl` in the journal directory.
    /// In-memory queued mode: the last [`MEMORY_DEAD_LETTER_LIMIT`](super::MEMORY_DEAD_LETTER_LIMIT)
    /// of this run. Inline mode has none (a failure answers 500).
    pub fn dead_letters(&self) -> crate::Result<Vec<DeadLetter>> {
        match self.delivery() {
            Some(delivery) => delivery.dead_letters(),
            None => Ok(Vec::new()),
        }
    }

    /// Hands the events of the dead letters `which` picks, and not requeued
    /// yet, to the handler again, and marks the letters requeued, so that
    /// requeueing them again adds nothing. Returns how many; 0 when none
    /// matched.
    ///
    /// The events go to the handler threads after the events replayed at
    /// start and before new ones, whatever the dedupe window holds. Durable
    /// mode: they are first appended to the journal as new events (`fsync`ed,
    /// with new seqs), so they are handled even across a crash or restart; a
    /// crash between that append and the marking of the letters can make a
    /// second requeue hand them over twice, never zero times. In-memory mode:
    /// they are queued past the capacity (they are in memory already).
    ///
    /// ```no_run
    /// # use wasenderapi::{WebhookListener, WebhookVerifier, WebhookHandler};
    /// # struct Bot;
    /// # impl WebhookHandler for Bot { type Error = String; }
    /// use wasenderapi::journal::Requeue;
    /// use wasenderapi::listener::DeliveryMode;
    ///
    /// let listener = WebhookListener::builder(WebhookVerifier::with_secret("secret"), Bot)
    ///     .delivery_mode(DeliveryMode::durable("/var/lib/bot/journal"))
    ///     .spawn()?;
    /// // ... the database was down, now it is back:
    /// let requeued = listener.requeue_dead_letters(Requeue::All)?;
    /// println!("handing {requeued} event(s) to the handler again");
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn requeue_dead_letters(&self, which: Requeue) -> crate::Result<usize> {
        match self.delivery() {
            Some(delivery) => delivery.requeue_dead_letters(&which),
            None => Ok(0),
        }
    }

    /// Removes every dead letter, requeued or not (durable mode: rewrites
    /// `dead-letters.jsonl` atomically). Returns how many.
    pub fn purge_dead_letters(&self) -> crate::Result<usize> {
        match self.delivery() {
            Some(delivery) => delivery.purge_dead_letters(),
            None => Ok(0),
        }
    }
}
