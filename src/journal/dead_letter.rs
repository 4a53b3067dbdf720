//! The dead-letter file: events the handler gave up on, one JSON line each,
//! appended as they happen and rewritten whole (atomically) when letters are
//! marked requeued or purged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{json, Value};

use super::{dedupe_key, format_error, io_error, replace_file, Seq};
use crate::event::parse_event;
use crate::sync::lock;

/// The line format this build writes (`"v":1`). Lines without `v` are
/// format 0, which has the same fields.
const FORMAT_VERSION: u64 = 1;

/// An event that failed every attempt, as the listener hands it to
/// `on_dead_letter` and writes it to the dead-letter file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The event's sequence number: its position in the journal (durable
    /// mode) or its arrival order since start (in-memory queue).
    pub seq: u64,
    /// The raw event body as received.
    pub payload: Vec<u8>,
    /// The last error the handler returned.
    pub error: String,
    /// How many times the handler was tried.
    pub attempts: u32,
    /// When it was given up on, in milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    /// Once requeued: the seq the event was handed to the handler again
    /// under (a new journal event in durable mode). A requeued letter stays
    /// listed, so that you see what became of it, until purged; it is never
    /// requeued twice.
    pub requeued_as: Option<u64>,
}

/// Why a line of the dead-letter file was not read.
enum LineError {
    /// Not a whole dead letter (a line cut short by a crash): skipped.
    Damaged,
    /// A dead letter of a format version this build does not know.
    Version(String),
}

impl DeadLetter {
    /// A dead letter stamped with the current time.
    pub(crate) fn new(seq: Seq, payload: Vec<u8>, error: impl Into<String>, attempts: u32) -> Self {
        let time_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            seq: seq.0,
            payload,
            error: error.into(),
            attempts,
            time_unix_ms,
            requeued_as: None,
        }
    }

    /// The id of the event's (first) message, its `data.messages.key.id`,
    /// when the payload is an event that carries one.
    pub fn event_id(&self) -> Option<String> {
        let event = parse_event(&self.payload).ok()?;
        let id = event.messages().iter().find_map(|m| m.id())?;
        Some(id.to_owned())
    }

    /// The key the listener's dedupe window knows this event by (see
    /// `dedupe.log` in the [module docs](super)), when the payload is an event.
    pub fn dedupe_key(&self) -> Option<String> {
        let event = parse_event(&self.payload).ok()?;
        let id = event.messages().iter().find_map(|m| m.id());
        Some(dedupe_key(event.event_name(), id, &self.payload))
    }

    /// The JSON line for this letter: the payload as text when it is UTF-8
    /// (`"payload_encoding":"utf8"`), else base64 (`"base64"`), and
    /// `requeued_as` only once requeued.
    fn to_json(&self) -> Value {
        let (payload, encoding) = match std::str::from_utf8(&self.payload) {
            Ok(text) => (text.to_owned(), "utf8"),
            Err(_) => (BASE64.encode(&self.payload), "base64"),
        };
        let mut line = json!({
            "v": FORMAT_VERSION,
            "seq": self.seq,
            "time": rfc3339_utc(self.time_unix_ms),
            "time_unix_ms": self.time_unix_ms,
            "attempts": self.attempts,
            "error": self.error,
            "payload_encoding": encoding,
            "payload": payload,
        });
        if let (Some(seq), Some(fields)) = (self.requeued_as, line.as_object_mut()) {
            fields.insert("requeued_as".to_owned(), seq.into());
        }
        line
    }

    fn from_json(value: &Value) -> Result<Self, LineError> {
        match value.get("v") {
            None => {}
            Some(v) if v.as_u64() == Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(LineError::Version(format!(
                    "dead-letter format version {v}, this build reads versions 0 (no \"v\") to {FORMAT_VERSION}"
                )))
            }
        }
        Self::fields(value).ok_or(LineError::Damaged)
    }

    fn fields(value: &Value) -> Option<Self> {
        let text = value.get("payload")?.as_str()?;
        let payload = match value.get("payload_encoding")?.as_str()? {
            "utf8" => text.as_bytes().to_vec(),
            "base64" => BASE64.decode(text).ok()?,
            _ => return None,
        };
        let requeued_as = match value.get("requeued_as") {
            None | Some(Value::Null) => None,
            Some(seq) => Some(seq.as_u64()?),
        };
        Some(Self {
            seq: value.get("seq")?.as_u64()?,
            payload,
            error: value.get("error")?.as_str()?.to_owned(),
            attempts: u32::try_from(value.get("attempts")?.as_u64()?).ok()?,
            time_unix_ms: value.get("time_unix_ms")?.as_u64()?,
            requeued_as,
        })
    }
}

/// The same JSON object as the letter's line in the dead-letter file (see
/// [`DeadLetters`]).
impl serde::Serialize for DeadLetter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// The dead-letter file of a durable listener: `dead-letters.jsonl` in its
/// journal directory, one JSON line per [`DeadLetter`], appended and synced
/// before the event is marked done. Read it with [`DeadLetters::read`];
/// requeue and purge letters with [`JournalDir`](super::JournalDir) (listener
/// stopped) or through the running listener.
///
/// A line looks like:
///
/// ```text
/// {"attempts":5,"error":"db down","payload":"{\"event\":\"messages.upsert\"}","payload_encoding":"utf8","seq":42,"time":"2024-05-01T12:00:00.000Z","time_unix_ms":1714564800000,"v":1}
/// ```
///
/// `payload` is the body as text when it is UTF-8 (`"payload_encoding":"utf8"`),
/// else standard base64 (`"base64"`); `time` is RFC 3339 in UTC with
/// milliseconds. A requeued letter also carries `"requeued_as":<seq>`.
/// Requeueing and purging rewrite the file whole: a new file is written and
/// synced beside it (`dead-letters.jsonl.tmp`), then renamed over it, so a
/// crash leaves either the old file or the new one.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: Mutex<File>,
}

impl DeadLetters {
    /// Opens (creating if needed) the file at `path` for appending.
    pub(crate) fn open(path: impl AsRef<Path>) -> crate::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = Self::open_append(&path).map_err(|e| io_error(&path, e))?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    fn open_append(path: &Path) -> io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    /// Appends one letter and syncs it to disk. The error names the file.
    pub(crate) fn record(&self, letter: &DeadLetter) -> io::Result<()> {
        let mut line = letter.to_json().to_string();
        line.push('\n');
        // Appends are whole lines under the lock; a panic elsewhere cannot leave half of one.
        let mut file = lock(&self.file);
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("dead letters {}: {e}", self.path.display()),
                )
            })
    }

    /// Every letter in the file, oldest first (see [`DeadLetters::read`]).
    pub(crate) fn list(&self) -> crate::Result<Vec<DeadLetter>> {
        let _appends = lock(&self.file);
        self.load()
    }

    /// Reads the letters, lets `change` edit them, and when it says it
    /// changed them, rewrites the file atomically. Appends wait meanwhile, so
    /// no letter recorded in between is lost, and two updates never
    /// interleave. A file that cannot be read (a line of an unknown format
    /// version) is never rewritten.
    pub(crate) fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<DeadLetter>) -> crate::Result<(T, bool)>,
    ) -> crate::Result<T> {
        let mut file = lock(&self.file);
        let mut letters = self.load()?;
        let (out, changed) = change(&mut letters)?;
        if changed {
            let mut text = String::new();
            for letter in &letters {
                text.push_str(&letter.to_json().to_string());
                text.push('\n');
            }
            replace_file(&self.path, text.as_bytes())
                .and_then(|()| Self::open_append(&self.path))
                .map(|reopened| *file = reopened)
                .map_err(|e| io_error(&self.path, e))?;
        }
        Ok(out)
    }

    /// The letters in the file; a missing file holds none.
    fn load(&self) -> crate::Result<Vec<DeadLetter>> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        Self::read(&self.path)
    }

    /// Reads every letter in the file at `path`, oldest first.
    ///
    /// Damaged lines (a last line cut short by a crash) are skipped with a
    /// `log::warn!`. Fails with
    /// [`WasenderError::Journal`](crate::WasenderError::Journal) when the file
    /// cannot be read (a missing file included), and with
    /// [`WasenderError::JournalFormat`](crate::WasenderError::JournalFormat)
    /// when a line carries a format version (`"v"`) this build does not know;
    /// both name the file.
    ///
    /// ```no_run
    /// use wasenderapi::journal::DeadLetters;
    ///
    /// let letters = DeadLetters::read("/var/lib/bot/journal/dead-letters.jsonl")?;
    /// for letter in &letters {
    ///     eprintln!("#{}: {} after {} attempts", letter.seq, letter.error, letter.attempts);
    /// }
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn read(path: impl AsRef<Path>) -> crate::Result<Vec<DeadLetter>> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| io_error(path, e))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut letters = Vec::new();
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let parsed = serde_json::from_str::<Value>(line)
                .map_err(|_| LineError::Damaged)
                .and_then(|value| DeadLetter::from_json(&value));
            match parsed {
                Ok(letter) => letters.push(letter),
                Err(LineError::Damaged) => log::warn!(
                    "dead letters {}: skipping damaged line {}",
                    path.display(),
                    number + 1
                ),
                Err(LineError::Version(reason)) => {
                    return Err(format_error(path, format!("line {}: {reason}", number + 1)))
                }
            }
        }
        Ok(letters)
    }
}

/// Formats milliseconds since the epoch as an RFC 3339 UTC timestamp with
/// milliseconds (`2024-05-01T12:00:00.000Z`).
fn rfc3339_utc(unix_ms: u64) -> String {
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
    fn text_payloads_stay_readable_and_binary_ones_are_base64() {
        let text = DeadLetter {
            seq: 1,
            payload: b"{\"a\":1}".to_vec(),
            error: "e".into(),
            attempts: 3,
            time_unix_ms: 0,
            requeued_as: None,
        };
        let json = text.to_json();
        assert_eq!(json["payload"], "{\"a\":1}");
        assert_eq!(json["payload_encoding"], "utf8");
        assert_eq!(json["v"], 1);
        let binary = DeadLetter {
            payload: vec![0xff, 0x00, 0xfe],
            ..text
        };
        let json = binary.to_json();
        assert_eq!(json["payload_encoding"], "base64");
        assert_eq!(json["payload"], "/wD+");
        assert_eq!(DeadLetter::from_json(&json).ok(), Some(binary));
    }
}
