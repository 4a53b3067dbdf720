//! Requeueing dead letters: their events go back into the journal as new
//! pending events, so the handler gets them again; and purging the letters.

use super::{io_error, DeadLetter, DeadLetters, Journal, Seq};

/// Which dead letters to requeue, for
/// [`JournalDir::requeue`](super::JournalDir::requeue) and
/// `WebhookListener::requeue_dead_letters`. Only letters not requeued yet are
/// ever picked: requeueing the same letter twice adds nothing.
///
/// ```
/// use wasenderapi::journal::Requeue;
/// let every = Requeue::All;
/// let one = Requeue::Seq(42);
/// let by_message = Requeue::EventId("3EB0B430B6F8F1D0E053AC120E0A9E5C".to_owned());
/// # let _ = (every, one, by_message);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requeue {
    /// Every letter not requeued yet.
    All,
    /// The letter of the event with this sequence number ([`DeadLetterId::Seq`](crate::handler::DeadLetterId::Seq)).
    Seq(u64),
    /// The letters of the event with this id: the message `key.id` in the
    /// payload ([`DeadLetter::event_id`]), or the dedupe key
    /// ([`DeadLetter::dedupe_key`]).
    EventId(String),
}

impl Requeue {
    /// Whether `letter` is one this asks for (requeued or not).
    pub(crate) fn matches(&self, letter: &DeadLetter) -> bool {
        match self {
            Self::All => true,
            Self::Seq(seq) => letter.id.seq() == Some(*seq),
            Self::EventId(id) => {
                letter.event_id().as_deref() == Some(id.as_str())
                    || letter.dedupe_key().as_deref() == Some(id.as_str())
            }
        }
    }
}

/// Appends the payloads of the letters `which` picks, and not requeued yet,
/// to `journal` as new events (one `fsync` for all), then marks the letters
/// requeued with their new seqs. Returns the new seqs, consecutive and in the
/// letters' order.
///
/// The events are appended before the letters are marked: a crash in between
/// leaves them both pending and unmarked, so a second requeue hands them to
/// the handler twice — never zero times (at-least-once, like the journal).
/// The dedupe window is not consulted: a requeued event is always handled.
pub(crate) fn requeue(
    journal: &Journal,
    letters: &DeadLetters,
    which: &Requeue,
) -> crate::error::Result<Vec<Seq>> {
    letters.update(|all| {
        let picked: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, l)| l.requeued_as.is_none() && which.matches(l))
            .map(|(i, _)| i)
            .collect();
        if picked.is_empty() {
            return Ok((Vec::new(), false));
        }
        let payloads: Vec<&[u8]> = picked.iter().map(|&i| &all[i].payload[..]).collect();
        let seqs = journal
            .append_many(&payloads)
            .map_err(|e| io_error(journal.dir(), e))?;
        for (&i, seq) in picked.iter().zip(&seqs) {
            all[i].requeued_as = Some(seq.0);
        }
        log::info!(
            "requeued {} dead letter(s) into the journal {} as events #{}..=#{}",
            seqs.len(),
            journal.dir().display(),
            seqs[0],
            seqs[seqs.len() - 1]
        );
        Ok((seqs, true))
    })
}

/// Removes every letter (requeued or not) from the file; returns how many.
pub(crate) fn purge(letters: &DeadLetters) -> crate::error::Result<usize> {
    letters.update(|all| {
        let purged = all.len();
        all.clear();
        Ok((purged, purged > 0))
    })
}
