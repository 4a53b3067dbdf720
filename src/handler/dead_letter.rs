//! [`DeadLetter`]: an event the runtime gave up on, whichever mode gave up on it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::event::parse_event;

/// The JSON form's format version (`"v":1`), the same as the dead-letter
/// file's (`dead-letters.jsonl` in a journal directory).
pub(crate) const JSON_VERSION: u64 = 1;

/// An event the handler runtime gave up on: after the last attempt failed,
/// after handler calls that never answered (the process running them died),
/// or without any call because its body is not an event.
///
/// One type for every place that gives up on events: the listener's queued
/// and durable modes (`on_dead_letter`, `dead-letters.jsonl`,
/// `WebhookListener::dead_letters`) and the Redis worker (its
/// `on_dead_letter`, the dead-letter stream, `RedisDeadLetters`). [`id`](Self::id)
/// says where the letter is kept.
///
/// Its `Display` says how many handler calls began and how the last one
/// ended:
///
/// ```
/// use wasenderapi::handler::{DeadLetter, LastCall};
///
/// # fn show(letter: &DeadLetter) {
/// println!("{}: {letter}", letter.id);
/// // #42: 3 handler calls began; the last returned an error: db down
/// // 1718000000000-0: 5 handler calls began; the last ended without an answer (…)
/// if letter.last_call == LastCall::NoAnswer {
///     // the handler crashed (or hung) the process running it, every time
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Where the letter is kept, and its id there (what requeueing takes).
    pub id: DeadLetterId,
    /// The raw event body, byte for byte as received and verified.
    pub payload: Vec<u8>,
    /// How many handler calls began for this event, in all (0 when its
    /// body is not an event). A call that was cut short (its process died)
    /// counts; a delivery that never reached the handler does not.
    pub attempts: u32,
    /// How the last handler call ended.
    pub last_call: LastCall,
    /// What the last call said: the handler's error text, or the panic's
    /// message; for [`LastCall::NoAnswer`], that no answer came; for
    /// [`LastCall::NotBegun`], why the body could not be handled.
    pub error: String,
    /// When it was given up on, in milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    /// When the event was received, in milliseconds since the Unix epoch,
    /// where that is recorded (Redis entries carry it; the journal does not).
    pub received_unix_ms: Option<u64>,
    /// The Redis worker (its consumer name) that gave up on it; `None` in
    /// the listener.
    pub worker: Option<String>,
    /// The listener only: once requeued, the seq the event was handed to the
    /// handler again under (a new journal event in durable mode). A requeued
    /// letter stays listed, so that you see what became of it, until purged;
    /// it is never requeued twice. (A requeued Redis letter leaves the
    /// dead-letter stream instead, so this is always `None` there.)
    pub requeued_as: Option<u64>,
}

/// Where a [`DeadLetter`] is kept, and its id there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterId {
    /// The listener's queued and durable modes: the event's sequence number,
    /// its position in the journal (durable) or its arrival order since
    /// start (in memory). Shown as `#42`.
    Seq(u64),
    /// Redis delivery: the letter's entry id in the dead-letter stream (what
    /// `RedisDeadLetters::requeue` takes), and the event's entry id in the
    /// events stream when it was given up on. Shown as the letter's id.
    Entry {
        /// The id in the dead-letter stream.
        id: String,
        /// The id the event had in the events stream.
        original_id: String,
    },
}

impl DeadLetterId {
    /// The sequence number of a listener's letter.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Seq(seq) => Some(*seq),
            Self::Entry { .. } => None,
        }
    }

    /// The dead-letter stream's entry id of a Redis letter.
    pub fn entry_id(&self) -> Option<&str> {
        match self {
            Self::Seq(_) => None,
            Self::Entry { id, .. } => Some(id),
        }
    }
}

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Seq(seq) => write!(f, "#{seq}"),
            Self::Entry { id, .. } => f.write_str(id),
        }
    }
}

/// How the last handler call for a [`DeadLetter`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LastCall {
    /// The handler returned an error (its text is the letter's `error`).
    Failed,
    /// The handler panicked (the panic's message is the letter's `error`).
    Panicked,
    /// The call began and no answer ever came: the process running it died
    /// (a crash, `SIGKILL`, the OOM killer, an abort) or was stopped before
    /// the handler returned. Redis delivery only: the listener's count starts
    /// again with each process.
    NoAnswer,
    /// No handler call began: the body is not an event (it no longer
    /// parses), so there is nothing to hand to the handler.
    NotBegun,
}

impl LastCall {
    /// The name used in the dead-letter file and stream: `failed`,
    /// `panicked`, `no_answer` or `not_begun`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Panicked => "panicked",
            Self::NoAnswer => "no_answer",
            Self::NotBegun => "not_begun",
        }
    }

    /// The value named `name` (see [`as_str`](Self::as_str)).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Failed, Self::Panicked, Self::NoAnswer, Self::NotBegun]
            .into_iter()
            .find(|v| v.as_str() == name)
    }
}

/// The `error` of a letter whose last call never answered.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) const NO_ANSWER: &str =
    "the process running the call died (a crash, a kill, out of memory) or was stopped before the handler returned";

impl DeadLetter {
    /// A letter stamped with the current time; no reception time, worker or requeue.
    pub(crate) fn given_up(
        id: DeadLetterId,
        payload: Vec<u8>,
        attempts: u32,
        last_call: LastCall,
        error: impl Into<String>,
    ) -> Self {
        Self {
            id,
            payload,
            attempts,
            last_call,
            error: error.into(),
            time_unix_ms: now_ms(),
            received_unix_ms: None,
            worker: None,
            requeued_as: None,
        }
    }

    /// A listener's letter for the event numbered `seq`, whose last call
    /// returned `error` (stamped now). For tests.
    #[cfg(test)]
    pub(crate) fn new(
        seq: impl Into<u64>,
        payload: Vec<u8>,
        error: impl Into<String>,
        attempts: u32,
    ) -> Self {
        Self::given_up(
            DeadLetterId::Seq(seq.into()),
            payload,
            attempts,
            LastCall::Failed,
            error,
        )
    }

    /// The event's name, when the payload is an event.
    pub fn event_name(&self) -> Option<String> {
        Some(parse_event(&self.payload).ok()?.event_name().to_owned())
    }

    /// The id of the event's (first) message, its `data.messages.key.id`,
    /// when the payload is an event that carries one.
    pub fn event_id(&self) -> Option<String> {
        let event = parse_event(&self.payload).ok()?;
        let id = event.messages().iter().find_map(|m| m.id())?;
        Some(id.to_owned())
    }

    /// The key every delivery mode dedupes this event by
    /// ([`WasenderWebhookEvent::dedupe_key`](crate::WasenderWebhookEvent::dedupe_key)),
    /// when the payload is an event.
    pub fn dedupe_key(&self) -> Option<String> {
        let event = parse_event(&self.payload).ok()?;
        Some(event.dedupe_key(&self.payload))
    }

    /// The letter as one JSON object: `v`, the id (`seq` for a listener's
    /// letter; `id` and `original_id` for a Redis one), `time` (RFC 3339,
    /// UTC, milliseconds), `time_unix_ms`, `attempts`, `last_call`, `error`,
    /// `payload` (the body as text when it is UTF-8, `"payload_encoding":"utf8"`,
    /// else base64, `"base64"`), and, when known, `received_unix_ms`,
    /// `worker`, `requeued_as`. A line of `dead-letters.jsonl` is this object.
    pub(crate) fn to_json(&self) -> Value {
        let (payload, encoding) = match std::str::from_utf8(&self.payload) {
            Ok(text) => (text.to_owned(), "utf8"),
            Err(_) => (BASE64.encode(&self.payload), "base64"),
        };
        let mut line = json!({
            "v": JSON_VERSION,
            "time": rfc3339_utc(self.time_unix_ms),
            "time_unix_ms": self.time_unix_ms,
            "attempts": self.attempts,
            "last_call": self.last_call.as_str(),
            "error": self.error,
            "payload_encoding": encoding,
            "payload": payload,
        });
        let Some(fields) = line.as_object_mut() else {
            return line;
        };
        match &self.id {
            DeadLetterId::Seq(seq) => {
                fields.insert("seq".to_owned(), (*seq).into());
            }
            DeadLetterId::Entry { id, original_id } => {
                fields.insert("id".to_owned(), id.as_str().into());
                fields.insert("original_id".to_owned(), original_id.as_str().into());
            }
        }
        if let Some(ms) = self.received_unix_ms {
            fields.insert("received_unix_ms".to_owned(), ms.into());
        }
        if let Some(worker) = &self.worker {
            fields.insert("worker".to_owned(), worker.as_str().into());
        }
        if let Some(seq) = self.requeued_as {
            fields.insert("requeued_as".to_owned(), seq.into());
        }
        line
    }

    /// Reads back the payload of a JSON form (see [`to_json`](Self::to_json)).
    #[cfg_attr(not(feature = "listener"), allow(dead_code))]
    pub(crate) fn payload_from_json(value: &Value) -> Option<Vec<u8>> {
        let text = value.get("payload")?.as_str()?;
        match value.get("payload_encoding")?.as_str()? {
            "utf8" => Some(text.as_bytes().to_vec()),
            "base64" => BASE64.decode(text).ok(),
            _ => None,
        }
    }
}

/// "3 handler calls began; the last returned an error: db down".
impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let calls = match self.attempts {
            1 => "1 handler call began".to_owned(),
            n => format!("{n} handler calls began"),
        };
        match self.last_call {
            LastCall::NotBegun => write!(f, "no handler call began: {}", self.error),
            LastCall::Failed => write!(f, "{calls}; the last returned an error: {}", self.error),
            LastCall::Panicked => write!(f, "{calls}; the last panicked: {}", self.error),
            LastCall::NoAnswer => write!(
                f,
                "{calls}; the last ended without an answer ({})",
                self.error
            ),
        }
    }
}

/// The JSON object described at [`DeadLetter`]'s `to_json`: the same as its
/// line in `dead-letters.jsonl`.
impl serde::Serialize for DeadLetter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// The time now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Formats milliseconds since the epoch as an RFC 3339 UTC timestamp with
/// milliseconds (`2024-05-01T12:00:00.000Z`).
pub(crate) fn rfc3339_utc(unix_ms: u64) -> String {
    // Past jiff's range (year 9999) only with a wildly wrong clock: say the last instant.
    let time = i64::try_from(unix_ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::MAX);
    format!("{time:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(last_call: LastCall, attempts: u32, error: &str) -> DeadLetter {
        DeadLetter::given_up(
            DeadLetterId::Seq(7),
            b"{}".to_vec(),
            attempts,
            last_call,
            error,
        )
    }

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_633_456_789_123), "2021-10-05T17:59:49.123Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(4_107_542_399_000), "2100-02-28T23:59:59.000Z");
    }

    #[test]
    fn a_clock_past_year_9999_formats_without_panicking() {
        let last = rfc3339_utc(u64::MAX);
        assert!(
            last.starts_with("9999-12-") && last.ends_with('Z'),
            "{last}"
        );
        assert_eq!(last.len(), "9999-12-31T23:59:59.999Z".len(), "{last}");
    }

    #[test]
    fn the_summary_says_how_many_calls_began_and_how_the_last_ended() {
        assert_eq!(
            letter(LastCall::Failed, 3, "db down").to_string(),
            "3 handler calls began; the last returned an error: db down"
        );
        assert_eq!(
            letter(LastCall::Panicked, 1, "boom").to_string(),
            "1 handler call began; the last panicked: boom"
        );
        assert!(letter(LastCall::NoAnswer, 5, NO_ANSWER)
            .to_string()
            .starts_with("5 handler calls began; the last ended without an answer (the process running the call died"));
        assert_eq!(
            letter(LastCall::NotBegun, 0, "not an event").to_string(),
            "no handler call began: not an event"
        );
    }

    #[test]
    fn last_call_names_round_trip() {
        for v in [
            LastCall::Failed,
            LastCall::Panicked,
            LastCall::NoAnswer,
            LastCall::NotBegun,
        ] {
            assert_eq!(LastCall::from_name(v.as_str()), Some(v));
        }
        assert_eq!(LastCall::from_name("exploded"), None);
    }

    #[test]
    fn the_json_form_names_the_id_where_it_is_kept() {
        let listener = letter(LastCall::Failed, 3, "e").to_json();
        assert_eq!(listener["seq"], 7);
        assert_eq!(listener["last_call"], "failed");
        assert!(listener.get("id").is_none());
        let mut redis = letter(LastCall::NoAnswer, 5, NO_ANSWER);
        redis.id = DeadLetterId::Entry {
            id: "2-0".into(),
            original_id: "1-0".into(),
        };
        redis.worker = Some("w1".into());
        redis.payload = vec![0xff];
        let json = redis.to_json();
        assert_eq!(
            (&json["id"], &json["original_id"], &json["worker"]),
            (&json!("2-0"), &json!("1-0"), &json!("w1"))
        );
        assert_eq!(json["payload_encoding"], "base64");
        assert_eq!(DeadLetter::payload_from_json(&json), Some(vec![0xff]));
        assert!(json.get("seq").is_none());
        assert_eq!(redis.id.to_string(), "2-0");
        assert_eq!(DeadLetterId::Seq(4).to_string(), "#4");
    }
}
