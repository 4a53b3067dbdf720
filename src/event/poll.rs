//! Polls: `poll.results`.

use super::message::MessageKey;
use super::wire::wire_object;

wire_object! {
    /// One option of a poll and who voted for it.
    pub struct PollOption {
        /// The option's text.
        "name" => name: String,
        /// The voters' JIDs.
        "voters" => voters: Vec<String>,
    }
}

wire_object! {
    /// The `data` of `poll.results`.
    pub struct PollResults {
        /// The poll message.
        "key" => key: MessageKey,
        /// The options with their votes.
        "pollResult" => poll_result: Vec<PollOption>,
    }
}

impl PollResults {
    /// The options (empty if none were sent).
    pub fn options(&self) -> &[PollOption] {
        self.poll_result.as_deref().unwrap_or(&[])
    }
}
