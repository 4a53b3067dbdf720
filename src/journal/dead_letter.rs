//! The dead-letter file: events the handler gave up on, one JSON line each.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::Seq;

/// An event that failed every attempt, as written to a [`DeadLetters`] file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event's journal sequence number.
    pub seq: Seq,
    /// The raw event body as received.
    pub payload: Vec<u8>,
    /// The last error the handler returned.
    pub error: String,
    /// How many times the handler was tried.
    pub attempts: u32,
    /// When it was given up on, in milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
}

impl DeadLetter {
    /// A dead letter stamped with the current time.
    pub fn new(seq: Seq, payload: Vec<u8>, error: impl Into<String>, attempts: u32) -> Self {
        let time_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            seq,
            payload,
            error: error.into(),
            attempts,
            time_unix_ms,
        }
    }

    /// The JSON line for this letter: the payload as text when it is UTF-8
    /// (`"payload_encoding":"utf8"`), else base64 (`"base64"`).
    fn to_json(&self) -> Value {
        let (payload, encoding) = match std::str::from_utf8(&self.payload) {
            Ok(text) => (text.to_owned(), "utf8"),
            Err(_) => (crate::base64::encode(&self.payload), "base64"),
        };
        json!({
            "seq": self.seq.0,
            "time": rfc3339_utc(self.time_unix_ms),
            "time_unix_ms": self.time_unix_ms,
            "attempts": self.attempts,
            "error": self.error,
            "payload_encoding": encoding,
            "payload": payload,
        })
    }

    fn from_json(value: &Value) -> Option<Self> {
        let text = value.get("payload")?.as_str()?;
        let payload = match value.get("payload_encoding")?.as_str()? {
            "utf8" => text.as_bytes().to_vec(),
            "base64" => crate::base64::decode(text)?,
            _ => return None,
        };
        Some(Self {
            seq: Seq(value.get("seq")?.as_u64()?),
            payload,
            error: value.get("error")?.as_str()?.to_owned(),
            attempts: u32::try_from(value.get("attempts")?.as_u64()?).ok()?,
            time_unix_ms: value.get("time_unix_ms")?.as_u64()?,
        })
    }
}

/// An append-only JSON-lines file of [`DeadLetter`]s (by convention
/// `dead-letters.jsonl` in the journal directory).
///
/// Each line is synced before [`record`](Self::record) returns, so the event's
/// done marker can follow safely. A line looks like:
///
/// ```text
/// {"attempts":5,"error":"db down","payload":"{\"event\":\"messages.upsert\"}","payload_encoding":"utf8","seq":42,"time":"2024-05-01T12:00:00.000Z","time_unix_ms":1714564800000}
/// ```
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: Mutex<File>,
}

impl DeadLetters {
    /// Opens (creating if needed) the file at `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one letter and syncs it to disk.
    pub fn record(&self, letter: &DeadLetter) -> io::Result<()> {
        let mut line = letter.to_json().to_string();
        line.push('\n');
        // Appends are whole lines under the lock; a panic elsewhere cannot leave half of one.
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }

    /// Reads every letter in the file at `path`, oldest first. Damaged lines
    /// (a last line cut short by a crash) are skipped with a warning.
    pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<DeadLetter>> {
        let path = path.as_ref();
        let bytes = fs::read(path)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut letters = Vec::new();
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<Value>(line)
                .ok()
                .as_ref()
                .and_then(DeadLetter::from_json)
            {
                Some(letter) => letters.push(letter),
                None => log::warn!(
                    "dead letters {}: skipping damaged line {}",
                    path.display(),
                    number + 1
                ),
            }
        }
        Ok(letters)
    }
}

/// Formats milliseconds since the epoch as an RFC 3339 UTC timestamp.
fn rfc3339_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let in_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        unix_ms % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn text_payloads_stay_readable_and_binary_ones_are_base64() {
        let text = DeadLetter {
            seq: Seq(1),
            payload: b"{\"a\":1}".to_vec(),
            error: "e".into(),
            attempts: 3,
            time_unix_ms: 0,
        };
        let json = text.to_json();
        assert_eq!(json["payload"], "{\"a\":1}");
        assert_eq!(json["payload_encoding"], "utf8");
        let binary = DeadLetter {
            payload: vec![0xff, 0x00, 0xfe],
            ..text
        };
        let json = binary.to_json();
        assert_eq!(json["payload_encoding"], "base64");
        assert_eq!(DeadLetter::from_json(&json), Some(binary));
    }
}
