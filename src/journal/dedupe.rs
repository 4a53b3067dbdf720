//! A bounded window of recently seen event keys, optionally kept on disk.
//!
//! The file is text: a version line, then one line per change.
//!
//! ```text
//! #wasender-dedupe 1
//! +"id:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! -"body:…"
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{format_error, io_error, replace_file};
use crate::sync::lock;

/// The dedupe key of an event named `event_name` carrying `message_id`
/// (or none), received as `body`: what
/// [`WasenderWebhookEvent::dedupe_key`](crate::WasenderWebhookEvent::dedupe_key)
/// gives for it. For tests, which name keys by their parts.
#[cfg(test)]
pub(crate) fn dedupe_key(event_name: &str, message_id: Option<&str>, body: &[u8]) -> String {
    let envelope = match message_id {
        Some(id) => serde_json::json!({"event": event_name, "data": {"key": {"id": id}}}),
        None => serde_json::json!({"event": event_name, "data": {}}),
    };
    let event = crate::event::parse_event(envelope.to_string().as_bytes())
        .expect("a test envelope is an event");
    event.dedupe_key(body)
}

/// The first line of a dedupe file, before the format version.
const VERSION_PREFIX: &str = "#wasender-dedupe ";
/// The dedupe file format this build writes (SHA-256 keys). Format 0 had no
/// version line and FNV-1a keys; it is still read.
const FORMAT_VERSION: u32 = 1;

/// A bounded set of keys with first-in, first-out eviction: remembers the last
/// `capacity` keys inserted.
///
/// [`DedupeWindow::open`] keeps it in an append-only file (one line per
/// change, compacted as it grows) so the window survives a restart. Lines are
/// handed to the operating system as they happen, so they survive the process
/// being killed; call [`sync`](Self::sync) to also survive a power loss. A
/// failed write is logged and the window carries on in memory: it is a
/// best-effort filter on top of at-least-once delivery, never a reason to
/// refuse an event.
///
/// ```text
/// let window = DedupeWindow::new(2);
/// assert!(window.check_and_insert("a"));  // new: handle it
/// assert!(!window.check_and_insert("a")); // seen: skip it
/// window.check_and_insert("b");
/// window.check_and_insert("c");           // evicts "a"
/// assert!(!window.contains("a"));
/// ```
pub(crate) struct DedupeWindow {
    inner: Mutex<Window>,
}

struct Window {
    capacity: usize,
    /// Key -> generation of its live entry in `order`.
    keys: HashMap<Arc<str>, u64>,
    /// Insertion order; entries whose generation no longer matches are stale.
    order: VecDeque<(Arc<str>, u64)>,
    next_generation: u64,
    store: Option<Store>,
}

struct Store {
    path: PathBuf,
    file: File,
    /// Lines in the file, the version line included.
    lines: usize,
}

const INSERT: char = '+';
const REMOVE: char = '-';

impl DedupeWindow {
    /// An in-memory window of `capacity` keys (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Window::new(capacity)),
        }
    }

    /// A window kept in the file at `path` (created if missing; by convention
    /// `dedupe.log` in the journal directory). Damaged lines, such as a last
    /// line cut short by a crash, are skipped with a warning. A file whose
    /// version line names another format, or that is not a dedupe file at
    /// all, is refused with [`WasenderError::JournalFormat`](crate::WasenderError::JournalFormat)
    /// and left as it is.
    pub(crate) fn open(path: impl AsRef<Path>, capacity: usize) -> crate::error::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut window = Window::new(capacity);
        replay(&path, |op, key| match op {
            INSERT => window.insert(key),
            _ => {
                window.remove(key);
            }
        })?;
        let store = Store::rewrite(path.clone(), &window.order, &window.keys)
            .map_err(|e| io_error(&path, e))?;
        window.store = Some(store);
        Ok(Self {
            inner: Mutex::new(window),
        })
    }

    /// Number of keys in the file at `path` (none when it is missing), read
    /// without changing it. A window evicts its oldest keys beyond its
    /// capacity without writing a line, so this counts those still in the
    /// file: at most the window's capacity plus what it wrote since the file
    /// was last compacted.
    pub(crate) fn count_keys(path: impl AsRef<Path>) -> crate::error::Result<u64> {
        let mut keys: HashSet<String> = HashSet::new();
        replay(path.as_ref(), |op, key| {
            if op == INSERT {
                keys.insert(key.to_owned());
            } else {
                keys.remove(key);
            }
        })?;
        Ok(keys.len() as u64)
    }

    /// Inserts `key` and returns `true` if it was not in the window (handle the
    /// event), `false` if it was (a duplicate: skip it).
    pub(crate) fn check_and_insert(&self, key: &str) -> bool {
        let mut w = self.lock();
        if w.keys.contains_key(key) {
            return false;
        }
        w.insert(key);
        w.persist(INSERT, key);
        true
    }

    /// Whether `key` is in the window.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.lock().keys.contains_key(key)
    }

    /// Forgets `key` (for instance when the event it stood for could not be
    /// accepted after all, so a retry by the sender must get through).
    /// Returns whether it was there.
    pub(crate) fn remove(&self, key: &str) -> bool {
        let mut w = self.lock();
        let removed = w.remove(key);
        if removed {
            w.persist(REMOVE, key);
        }
        removed
    }

    /// Number of keys in the window.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// Whether the window is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes the backing file to disk (a no-op in memory).
    pub(crate) fn sync(&self) -> io::Result<()> {
        match &self.lock().store {
            Some(store) => store.file.sync_data(),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        lock(&self.inner)
    }
}

/// Reads the dedupe file at `path` (a missing one, or one holding only zero
/// bytes, is empty) and calls `apply` with each change line, oldest first:
/// [`INSERT`] or [`REMOVE`] and the key. Damaged lines are skipped with a
/// warning; a file in another format is refused.
fn replay(path: &Path, mut apply: impl FnMut(char, &str)) -> crate::error::Result<()> {
    let text = match fs::read(path) {
        // Zero bytes only (a crash before any data reached the disk) hold nothing.
        Ok(bytes) if bytes.iter().all(|&b| b == 0) => String::new(),
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error(path, e)),
    };
    let mut lines = text.lines().peekable();
    if let Some(first) = lines.peek() {
        if is_version_line(path, first)? {
            lines.next();
        }
    }
    let mut damaged = 0usize;
    for line in lines {
        let mut chars = line.chars();
        let op = chars.next();
        match (op, serde_json::from_str::<String>(chars.as_str())) {
            (Some(op @ (INSERT | REMOVE)), Ok(key)) => apply(op, &key),
            _ => damaged += 1,
        }
    }
    if damaged > 0 {
        log::warn!(
            "dedupe window {}: skipped {damaged} damaged line(s)",
            path.display()
        );
    }
    Ok(())
}

/// Checks the first line of a dedupe file: `true` when it is the version
/// line of this format, `false` when it is a key line (format 0, before the
/// version line), an error for any other format.
fn is_version_line(path: &Path, first: &str) -> crate::error::Result<bool> {
    match first.strip_prefix(VERSION_PREFIX) {
        Some(version) if version.trim() == FORMAT_VERSION.to_string() => Ok(true),
        Some(version) => Err(format_error(
            path,
            format!(
                "dedupe file format version {:?}, this build reads versions 0 (no version line) to {FORMAT_VERSION}",
                version.trim()
            ),
        )),
        None if first.starts_with([INSERT, REMOVE]) => Ok(false),
        None => Err(format_error(
            path,
            format!("the first line is neither {VERSION_PREFIX:?} and a version nor a key line"),
        )),
    }
}

impl std::fmt::Debug for DedupeWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.lock();
        f.debug_struct("DedupeWindow")
            .field("capacity", &w.capacity)
            .field("len", &w.keys.len())
            .field("path", &w.store.as_ref().map(|s| &s.path))
            .finish()
    }
}

impl Window {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            keys: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            store: None,
        }
    }

    fn insert(&mut self, key: &str) {
        if self.keys.contains_key(key) {
            return;
        }
        let key: Arc<str> = Arc::from(key);
        let generation = self.next_generation;
        self.next_generation += 1;
        self.keys.insert(Arc::clone(&key), generation);
        self.order.push_back((key, generation));
        while self.keys.len() > self.capacity || self.order.len() > 2 * self.capacity {
            let Some((old, generation)) = self.order.pop_front() else {
                break;
            };
            if self.keys.get(&old) == Some(&generation) {
                self.keys.remove(&old);
            }
        }
    }

    fn remove(&mut self, key: &str) -> bool {
        self.keys.remove(key).is_some()
    }

    fn persist(&mut self, op: char, key: &str) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let line = format!("{op}{}\n", serde_json::Value::from(key));
        let written = store.file.write_all(line.as_bytes());
        store.lines += 1;
        let result = written.and_then(|()| {
            if store.lines > 2 * self.capacity + 64 {
                let path = store.path.clone();
                *store = Store::rewrite(path, &self.order, &self.keys)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            log::warn!(
                "dedupe window {}: cannot persist: {e}",
                store.path.display()
            );
        }
    }
}

impl Store {
    /// Writes the live keys, oldest first, to a fresh file that replaces `path` atomically.
    fn rewrite(
        path: PathBuf,
        order: &VecDeque<(Arc<str>, u64)>,
        keys: &HashMap<Arc<str>, u64>,
    ) -> io::Result<Store> {
        let mut text = format!("{VERSION_PREFIX}{FORMAT_VERSION}\n");
        let mut lines = 1;
        for (key, generation) in order {
            if keys.get(key) == Some(generation) {
                text.push(INSERT);
                text.push_str(&serde_json::Value::from(&**key).to_string());
                text.push('\n');
                lines += 1;
            }
        }
        replace_file(&path, text.as_bytes())?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(Store { path, file, lines })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_key_is_evicted_first() {
        let window = DedupeWindow::new(3);
        for key in ["a", "b", "c", "d"] {
            assert!(window.check_and_insert(key));
        }
        assert_eq!(window.len(), 3);
        assert!(!window.contains("a"));
        assert!(window.contains("b") && window.contains("d"));
    }

    #[test]
    fn a_removed_key_is_accepted_again_and_keeps_its_new_place() {
        let window = DedupeWindow::new(2);
        window.check_and_insert("a");
        assert!(window.remove("a"));
        assert!(!window.remove("a"));
        window.check_and_insert("b");
        assert!(window.check_and_insert("a"));
        window.check_and_insert("c"); // evicts "b", the oldest live key
        assert!(window.contains("a") && window.contains("c") && !window.contains("b"));
    }

    #[test]
    fn stale_entries_do_not_grow_the_queue_without_bound() {
        let window = DedupeWindow::new(4);
        for _ in 0..1000 {
            window.check_and_insert("x");
            window.remove("x");
        }
        assert!(window.lock().order.len() <= 8);
    }

    #[test]
    fn dedupe_keys_separate_fields_and_ignore_the_body_when_there_is_an_id() {
        // Events that carry messages (the catalogue's), so that the id counts.
        let e = "messages.upsert";
        assert_ne!(dedupe_key("ab", None, b"c"), dedupe_key("a", None, b"bc"));
        assert_ne!(dedupe_key(e, Some("x"), b""), dedupe_key(e, None, b"x"));
        assert_eq!(
            dedupe_key(e, Some(""), b"body"),
            dedupe_key(e, None, b"body")
        );
        assert_eq!(
            dedupe_key(e, Some("id"), b"one body"),
            dedupe_key(e, Some("id"), b"another")
        );
        assert_ne!(dedupe_key(e, None, b"body1"), dedupe_key(e, None, b"body2"));
        assert_eq!(dedupe_key(e, Some("id"), b"").len(), "id:".len() + 64);
        // An event this crate does not know carries no typed message: keyed by body.
        assert!(dedupe_key("labels.edit", Some("id"), b"{}").starts_with("body:"));
    }

    #[test]
    fn dedupe_keys_are_sha256_of_the_length_prefixed_fields() {
        use sha2::{Digest, Sha256};
        let mut input = Vec::new();
        for field in [&b"body"[..], b"session.status", b"{}"] {
            input.extend_from_slice(&(field.len() as u64).to_le_bytes());
            input.extend_from_slice(field);
        }
        let expected = format!("body:{}", hex::encode(Sha256::digest(&input)));
        assert_eq!(dedupe_key("session.status", None, b"{}"), expected);
        // Pinned, so a change of the key (which orphans persisted windows) is deliberate.
        assert_eq!(
            dedupe_key("messages.upsert", Some("3EB0X1"), b""),
            "id:f722de10a93a47d901a6638fa44906f7188924af2a7c41cedb7014358394d08d"
        );
    }

    #[test]
    fn a_window_answers_new_then_seen_and_forgets_the_oldest() {
        let a = dedupe_key("messages.upsert", Some("3EB0X1"), b"{...}");
        assert_eq!(
            a,
            dedupe_key("messages.upsert", Some("3EB0X1"), b"another body")
        );
        assert_ne!(a, dedupe_key("messages.update", Some("3EB0X1"), b"{...}"));
        assert!(dedupe_key("session.status", None, b"{}").starts_with("body:"));

        let window = DedupeWindow::new(2);
        assert!(window.check_and_insert("a"));
        assert!(!window.check_and_insert("a"));
        window.check_and_insert("b");
        window.check_and_insert("c");
        assert!(!window.contains("a"));
    }
}
