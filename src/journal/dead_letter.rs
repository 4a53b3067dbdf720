//! The dead-letter file: events the handler gave up on ([`DeadLetter`]s),
//! one JSON line each, appended as they happen and rewritten whole
//! (atomically) when letters are marked requeued or purged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use super::{format_error, io_error, replace_file, Seq};
use crate::handler::dead_letter::JSON_VERSION;
use crate::handler::{DeadLetter, DeadLetterId, LastCall};
use crate::sync::lock;

/// Why a line of the dead-letter file was not read.
enum LineError {
    /// Not a whole dead letter (a line cut short by a crash): skipped.
    Damaged,
    /// A dead letter of a format version this build does not know.
    Version(String),
}

/// The letter of one line of the file (format 0 has no `v`; lines from
/// before `last_call` are read as [`LastCall::Failed`], or
/// [`LastCall::NotBegun`] with no attempt).
fn letter_from_json(value: &Value) -> Result<DeadLetter, LineError> {
    match value.get("v") {
        None => {}
        Some(v) if v.as_u64() == Some(JSON_VERSION) => {}
        Some(v) => {
            return Err(LineError::Version(format!(
                "dead-letter format version {v}, this build reads versions 0 (no \"v\") to {JSON_VERSION}"
            )))
        }
    }
    letter_fields(value).ok_or(LineError::Damaged)
}

fn letter_fields(value: &Value) -> Option<DeadLetter> {
    let payload = DeadLetter::payload_from_json(value)?;
    let requeued_as = match value.get("requeued_as") {
        None | Some(Value::Null) => None,
        Some(seq) => Some(seq.as_u64()?),
    };
    let attempts = u32::try_from(value.get("attempts")?.as_u64()?).ok()?;
    let last_call = match value.get("last_call") {
        Some(name) => LastCall::from_name(name.as_str()?)?,
        None if attempts == 0 => LastCall::NotBegun,
        None => LastCall::Failed,
    };
    let mut letter = DeadLetter::given_up(
        DeadLetterId::Seq(value.get("seq")?.as_u64()?),
        payload,
        attempts,
        last_call,
        value.get("error")?.as_str()?,
    );
    letter.time_unix_ms = value.get("time_unix_ms")?.as_u64()?;
    letter.requeued_as = requeued_as;
    Some(letter)
}

/// A journal sequence number as a letter's [`DeadLetterId::Seq`].
impl From<Seq> for u64 {
    fn from(seq: Seq) -> u64 {
        seq.0
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
/// {"attempts":5,"error":"db down","last_call":"failed","payload":"{\"event\":\"messages.upsert\"}","payload_encoding":"utf8","seq":42,"time":"2024-05-01T12:00:00.000Z","time_unix_ms":1714564800000,"v":1}
/// ```
///
/// `payload` is the body as text when it is UTF-8 (`"payload_encoding":"utf8"`),
/// else standard base64 (`"base64"`); `time` is RFC 3339 in UTC with
/// milliseconds; `attempts` counts the handler calls that began, and
/// `last_call` says how the last ended (`failed`, `panicked`, or
/// `not_begun` when the journaled body no longer parses; lines written
/// before it existed are read as `failed`). A requeued letter also carries
/// `"requeued_as":<seq>`.
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
    pub(crate) fn open(path: impl AsRef<Path>) -> crate::error::Result<Self> {
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
    pub(crate) fn list(&self) -> crate::error::Result<Vec<DeadLetter>> {
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
        change: impl FnOnce(&mut Vec<DeadLetter>) -> crate::error::Result<(T, bool)>,
    ) -> crate::error::Result<T> {
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
    fn load(&self) -> crate::error::Result<Vec<DeadLetter>> {
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
    ///     eprintln!("{}: {letter}", letter.id); // "#42: 5 handler calls began; the last returned an error: …"
    /// }
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn read(path: impl AsRef<Path>) -> crate::error::Result<Vec<DeadLetter>> {
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
                .and_then(|value| letter_from_json(&value));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_payloads_stay_readable_and_binary_ones_are_base64() {
        let text = DeadLetter::new(Seq(1), b"{\"a\":1}".to_vec(), "e", 3);
        let json = text.to_json();
        assert_eq!(json["payload"], "{\"a\":1}");
        assert_eq!(json["payload_encoding"], "utf8");
        assert_eq!(json["v"], 1);
        assert_eq!(json["last_call"], "failed");
        let mut binary = text;
        binary.payload = vec![0xff, 0x00, 0xfe];
        let json = binary.to_json();
        assert_eq!(json["payload_encoding"], "base64");
        assert_eq!(json["payload"], "/wD+");
        assert_eq!(letter_from_json(&json).ok(), Some(binary));
    }

    #[test]
    fn lines_from_before_last_call_read_as_failed_or_not_begun() {
        let line = serde_json::json!({"seq": 4, "time_unix_ms": 0, "attempts": 3, "error": "e",
            "payload_encoding": "utf8", "payload": "{}"});
        let letter = letter_from_json(&line).ok().expect("a format 0 line");
        assert_eq!(
            (letter.id, letter.last_call),
            (DeadLetterId::Seq(4), LastCall::Failed)
        );
        let mut line = line;
        line["attempts"] = 0.into();
        let letter = letter_from_json(&line).ok().expect("a format 0 line");
        assert_eq!(letter.last_call, LastCall::NotBegun);
    }
}
