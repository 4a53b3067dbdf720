//! The journal handle: appends with group commit, done markers, rotation,
//! and reading pending events back.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use super::lock::DirLock;
use super::record::{self, RecordKind};
use super::segment::{self, Location, SegmentMeta, FILE_HEADER_LEN};
use super::JournalOptions;
use crate::sync::{lock, wait};

/// The sequence number of an event in a [`Journal`]: strictly increasing in
/// append order, never reused (there may be gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Counters and sizes of a [`Journal`], from [`Journal::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalStats {
    /// Events appended since open.
    pub appends: u64,
    /// Done markers written since open.
    pub done_marks: u64,
    /// Group-commit `fsync`s: one per batch of appends (or `sync` calls).
    pub commits: u64,
    /// All data `fsync`s, including those at rotation and compaction.
    pub syncs: u64,
    /// Segments sealed since open.
    pub rotations: u64,
    /// Compactions that deleted at least one segment.
    pub compactions: u64,
    /// Segment files deleted since open.
    pub segments_deleted: u64,
    /// Pending events copied forward out of sparse segments since open.
    pub carried_forward: u64,
    /// Events not yet marked done.
    pub pending: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Bytes in those segment files (headers included).
    pub disk_bytes: u64,
}

/// An append-only, checksummed, group-committed journal in one directory.
///
/// Every method takes `&self`: share it between threads in an `Arc`. See the
/// [module docs](super) for the guarantees and the file format.
pub struct Journal {
    pub(super) dir: PathBuf,
    pub(super) options: JournalOptions,
    pub(super) writer: Mutex<Writer>,
    commit: Mutex<Commit>,
    committed: Condvar,
    /// Callbacks are waiting and no commit is running: wakes the committer thread.
    work: Condvar,
    failed: AtomicBool,
    failure: Mutex<Option<(io::ErrorKind, String)>>,
    /// Set by [`Journal::close`]: no more writes.
    closed: AtomicBool,
    pub(super) counters: Counters,
    /// Held until [`Journal::close`] or drop (declared last: dropped last).
    dir_lock: Mutex<Option<DirLock>>,
}

/// Pending events read back by [`Journal::read_pending`].
#[derive(Debug)]
pub struct PendingBatch {
    /// The events, oldest first; an event that could not be read back
    /// (damaged on disk since the open) comes with its error and stays pending.
    pub events: Vec<(Seq, io::Result<Vec<u8>>)>,
    /// Where to continue: the seq after the last event returned.
    pub next: Seq,
    /// `true` when no event after these is pending in the range asked for.
    pub exhausted: bool,
}

/// State guarded by the write lock.
pub(super) struct Writer {
    pub(super) file: Arc<File>,
    pub(super) active: u64,
    pub(super) segments: BTreeMap<u64, SegmentMeta>,
    pub(super) pending: BTreeMap<u64, Location>,
    pub(super) next_seq: u64,
    /// Bytes written through this handle: the position a commit must reach.
    pub(super) written: u64,
    pub(super) scratch: Vec<u8>,
}

impl Writer {
    pub(super) fn active_meta(&mut self) -> &mut SegmentMeta {
        let active = self.active;
        self.segments
            .get_mut(&active)
            .expect("the active segment always has a SegmentMeta")
    }

    /// Records that event `seq` (payload of `len` bytes) now lives at `offset`
    /// in the active segment and is pending.
    pub(super) fn track_event(&mut self, seq: u64, offset: u64, len: u32) {
        let segment = self.active;
        let meta = self.active_meta();
        meta.saw_event(seq);
        meta.add_live(len);
        self.pending.insert(
            seq,
            Location {
                segment,
                offset,
                len,
            },
        );
    }

    /// Writes `self.scratch` at the end of the active segment and returns the
    /// offset it starts at.
    pub(super) fn write_scratch(&mut self) -> io::Result<u64> {
        let offset = self.active_meta().size;
        (&*self.file).write_all(&self.scratch)?;
        let len = self.scratch.len() as u64;
        self.active_meta().size += len;
        self.written += len;
        Ok(offset)
    }
}

/// State guarded by the commit lock.
struct Commit {
    /// Every byte up to this write position is on disk.
    durable: u64,
    /// A thread is syncing right now.
    leader: bool,
    /// Threads waiting for their records to become durable.
    waiting: usize,
    /// Appends to call back once durable ([`Journal::append_then`]), with
    /// the write position each needs.
    callbacks: Vec<(u64, Durable)>,
    /// A thread runs [`Journal::serve_commits`]: it leads the commits for
    /// callbacks, so that no appending thread waits for an `fsync`.
    committer: bool,
    /// The committer thread is asked to stop.
    stop_committer: bool,
}

/// Called once an appended record is on disk (or failed to get there).
type Durable = Box<dyn FnOnce(io::Result<()>) + Send>;

#[derive(Default)]
pub(super) struct Counters {
    pub(super) appends: AtomicU64,
    pub(super) done_marks: AtomicU64,
    pub(super) commits: AtomicU64,
    pub(super) syncs: AtomicU64,
    pub(super) rotations: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) segments_deleted: AtomicU64,
    pub(super) carried_forward: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Journal {
    pub(super) fn from_parts(
        dir: PathBuf,
        options: JournalOptions,
        writer: Writer,
        dir_lock: DirLock,
    ) -> Journal {
        let durable = writer.written;
        Journal {
            dir,
            options,
            writer: Mutex::new(writer),
            commit: Mutex::new(Commit {
                durable,
                leader: false,
                waiting: 0,
                callbacks: Vec::new(),
                committer: false,
                stop_committer: false,
            }),
            committed: Condvar::new(),
            work: Condvar::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
            dir_lock: Mutex::new(Some(dir_lock)),
        }
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends an event and returns once it is written and `fsync`ed.
    ///
    /// Concurrent calls share one `fsync` (group commit). Fails with
    /// `InvalidInput` when the payload exceeds
    /// [`JournalOptions::max_record_size`]; after any I/O error the journal
    /// refuses further writes (reopen it to recover what is on disk).
    pub fn append(&self, payload: &[u8]) -> io::Result<Seq> {
        self.append_records(&[payload]).map(|seqs| seqs.start)
    }

    /// Appends several events with one `fsync` and returns their seqs,
    /// consecutive and in the order given. All are checked against
    /// [`JournalOptions::max_record_size`] before any is written.
    pub fn append_many(&self, payloads: &[&[u8]]) -> io::Result<Vec<Seq>> {
        let seqs = self.append_records(payloads)?;
        Ok((seqs.start.0..seqs.end.0).map(Seq).collect())
    }

    /// Appends an event and returns at once; `then` is called with its seq
    /// once it is written and `fsync`ed (or with the error that stopped it),
    /// on the thread that leads the commit: this one, or one appending or
    /// waiting at the same time. Appends in flight together share one
    /// `fsync` (group commit) without a thread waiting per append. `then`
    /// must be quick: it runs while other appends wait for their turn.
    pub fn append_then(&self, payload: &[u8], then: impl FnOnce(io::Result<Seq>) + Send + 'static) {
        let (seqs, ticket) = match self.write_records(&[payload]) {
            Ok(written) => written,
            Err(e) => return then(Err(e)),
        };
        let seq = seqs.start;
        let mut c = lock(&self.commit);
        if c.durable >= ticket {
            drop(c);
            return then(Ok(seq));
        }
        c.callbacks
            .push((ticket, Box::new(move |result| then(result.map(|()| seq)))));
        if c.leader {
            // The thread syncing now calls it back.
            return;
        }
        if c.committer {
            self.work.notify_one();
            return;
        }
        c.leader = true;
        c.waiting += 1;
        let c = self.lead(c);
        drop(self.leave(c));
    }

    fn append_records(&self, payloads: &[&[u8]]) -> io::Result<Range<Seq>> {
        let (seqs, ticket) = self.write_records(payloads)?;
        if payloads.is_empty() {
            return Ok(seqs);
        }
        if self.options.group_commit {
            self.wait_durable(ticket)?;
        } else {
            let synced = lock(&self.writer).file.sync_data();
            bump(&self.counters.syncs, 1);
            bump(&self.counters.commits, 1);
            self.check(synced)?;
            self.advance_durable(ticket);
        }
        Ok(seqs)
    }

    /// Writes the records (not synced); returns their seqs and the write
    /// position a commit must reach for them to be durable.
    fn write_records(&self, payloads: &[&[u8]]) -> io::Result<(Range<Seq>, u64)> {
        let limit = self.options.max_record_size as usize;
        if let Some(payload) = payloads.iter().find(|p| p.len() > limit) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "payload of {} bytes exceeds max_record_size {limit}",
                    payload.len(),
                ),
            ));
        }
        let mut w = self.lock_writer()?;
        let first = w.next_seq;
        for payload in payloads {
            let seq = w.next_seq;
            let len = u32::try_from(payload.len()).expect("max_record_size fits in u32");
            let offset = self.write_record(&mut w, RecordKind::Event, seq, payload)?;
            w.next_seq += 1;
            w.track_event(seq, offset, len);
            bump(&self.counters.appends, 1);
        }
        let seqs = Seq(first)..Seq(w.next_seq);
        Ok((seqs, w.written))
    }

    /// Marks an event handled by appending a done marker. Returns `false`
    /// (and writes nothing) when `seq` is not pending.
    ///
    /// The marker is handed to the operating system before this returns, so
    /// it survives a crash of the process; it reaches the disk with the next
    /// commit, [`sync`](Self::sync), rotation or drop. Until then a power loss
    /// can make the event pending again: delivery is at-least-once.
    pub fn mark_done(&self, seq: Seq) -> io::Result<bool> {
        let mut w = self.lock_writer()?;
        let Some(loc) = w.pending.remove(&seq.0) else {
            return Ok(false);
        };
        if let Some(meta) = w.segments.get_mut(&loc.segment) {
            meta.remove_live(loc.len);
        }
        self.write_record(&mut w, RecordKind::Done, seq.0, &[])?;
        w.active_meta().done_markers.push(seq.0);
        bump(&self.counters.done_marks, 1);
        Ok(true)
    }

    /// Returns once everything written so far, done markers included, is on disk.
    pub fn sync(&self) -> io::Result<()> {
        let ticket = self.lock_writer()?.written;
        self.wait_durable(ticket)
    }

    /// Reads back the pending events with seqs in `range`, oldest first: at
    /// most `max_events` of them, and no more than `max_bytes` of payload
    /// (but always one, if any is pending there).
    ///
    /// The locations are looked up under the write lock and the records read
    /// outside it, so appends are not held up by the disk; a record moved
    /// meanwhile by a compaction is looked up again and read under the lock.
    /// Every record's checksum and seq are checked.
    pub fn read_pending(
        &self,
        range: Range<Seq>,
        max_events: usize,
        max_bytes: usize,
    ) -> PendingBatch {
        // (segment path, the events in it), in seq order.
        let mut groups: Vec<(PathBuf, Vec<(u64, Location)>)> = Vec::new();
        let (next, exhausted) = {
            let w = lock(&self.writer);
            let mut bytes = 0usize;
            let mut last_segment = None;
            let mut next = range.end.0;
            let mut exhausted = true;
            let pending = w.pending.range(range.start.0..range.end.0);
            for (picked, (&seq, &loc)) in pending.enumerate() {
                let len = loc.len as usize;
                if picked > 0 && (picked >= max_events || bytes.saturating_add(len) > max_bytes) {
                    next = seq;
                    exhausted = false;
                    break;
                }
                bytes = bytes.saturating_add(len);
                if last_segment != Some(loc.segment) {
                    let Some(meta) = w.segments.get(&loc.segment) else {
                        continue;
                    };
                    groups.push((meta.path.clone(), Vec::new()));
                    last_segment = Some(loc.segment);
                }
                if let Some((_, events)) = groups.last_mut() {
                    events.push((seq, loc));
                }
            }
            (next, exhausted)
        };
        let mut events = Vec::new();
        for (path, group) in groups {
            let mut file = File::open(&path);
            for (seq, loc) in group {
                let read = match file
                    .as_mut()
                    .map(|f| segment::read_event_from(f, &path, loc, seq))
                {
                    Ok(Ok(payload)) => Ok(payload),
                    _ => self.read_pending_locked(seq),
                };
                events.push((Seq(seq), read));
            }
        }
        PendingBatch {
            events,
            next: Seq(next),
            exhausted,
        }
    }

    /// Reads pending event `seq` under the write lock, so that no compaction
    /// moves it meanwhile.
    fn read_pending_locked(&self, seq: u64) -> io::Result<Vec<u8>> {
        let w = lock(&self.writer);
        let found = w
            .pending
            .get(&seq)
            .and_then(|loc| Some((*loc, &w.segments.get(&loc.segment)?.path)));
        match found {
            Some((loc, path)) => segment::read_event(path, loc, seq),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("event {seq} is no longer pending in {}", self.dir.display()),
            )),
        }
    }

    /// Every pending event, oldest first (tests and benches only: it holds
    /// them all in memory).
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn pending_events(&self) -> io::Result<Vec<(Seq, Vec<u8>)>> {
        let mut all = Vec::new();
        let mut from = Seq(0);
        loop {
            let batch = self.read_pending(from..Seq(u64::MAX), 1024, usize::MAX);
            for (seq, payload) in batch.events {
                all.push((seq, payload?));
            }
            if batch.exhausted {
                return Ok(all);
            }
            from = batch.next;
        }
    }

    /// Syncs what was written, refuses any further write, and releases the
    /// directory lock, so that the directory can be opened again while this
    /// handle still exists (a listener's parts may outlive its shutdown).
    pub(crate) fn close(&self) -> io::Result<()> {
        let synced = if self.failed.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire) {
            Ok(())
        } else {
            self.sync()
        };
        // Under the write lock: no write is in progress once this is set.
        let w = lock(&self.writer);
        self.closed.store(true, Ordering::Release);
        drop(w);
        lock(&self.dir_lock).take();
        synced
    }

    /// Runs a compaction now instead of at the next rotation: deletes sealed
    /// segments with no pending events and copies forward pending events out of
    /// sparse ones. The active segment is never touched.
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn compact(&self) -> io::Result<()> {
        let mut w = self.lock_writer()?;
        let result = self.compact_locked(&mut w);
        self.check(result)
    }

    /// Counters and sizes; cheap enough to poll.
    pub fn stats(&self) -> JournalStats {
        let (pending, segments, disk_bytes) = {
            let w = lock(&self.writer);
            let disk = w.segments.values().map(|m| m.size).sum();
            (w.pending.len() as u64, w.segments.len() as u64, disk)
        };
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JournalStats {
            appends: get(&c.appends),
            done_marks: get(&c.done_marks),
            commits: get(&c.commits),
            syncs: get(&c.syncs),
            rotations: get(&c.rotations),
            compactions: get(&c.compactions),
            segments_deleted: get(&c.segments_deleted),
            carried_forward: get(&c.carried_forward),
            pending,
            segments,
            disk_bytes,
        }
    }

    /// The I/O error that made the journal refuse writes, if one did (for the
    /// listener's health check).
    pub(crate) fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        Some(
            lock(&self.failure)
                .as_ref()
                .map_or_else(|| "an I/O error".to_owned(), |(_, message)| message.clone()),
        )
    }

    /// Takes the write lock, refusing if an earlier I/O error poisoned the journal.
    fn lock_writer(&self) -> io::Result<MutexGuard<'_, Writer>> {
        self.check_failed()?;
        Ok(lock(&self.writer))
    }

    fn check_failed(&self) -> io::Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(io::Error::other(format!(
                "journal {} is closed",
                self.dir.display()
            )));
        }
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let (kind, message) = lock(&self.failure)
            .clone()
            .unwrap_or((io::ErrorKind::Other, String::new()));
        Err(io::Error::new(
            kind,
            format!(
                "journal {} unusable after an earlier I/O error: {message}",
                self.dir.display()
            ),
        ))
    }

    /// Passes `result` through, poisoning the journal if it is an error: after a
    /// failed write or `fsync` the file's state is unknown, and retrying an
    /// `fsync` can report success for data the kernel already dropped.
    pub(super) fn check<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            log::error!(
                "journal {}: {e}; refusing further writes",
                self.dir.display()
            );
            let mut failure = lock(&self.failure);
            failure.get_or_insert_with(|| (e.kind(), e.to_string()));
            self.failed.store(true, Ordering::Release);
            drop(failure);
            let _guard = lock(&self.commit);
            self.committed.notify_all();
        }
        result
    }

    /// Rotates if the active segment is full, then writes one record.
    fn write_record(
        &self,
        w: &mut Writer,
        kind: RecordKind,
        seq: u64,
        payload: &[u8],
    ) -> io::Result<u64> {
        if w.active_meta().size >= self.options.segment_size {
            let rotated = self.rotate(w);
            self.check(rotated)?;
        }
        w.scratch.clear();
        record::encode(&mut w.scratch, kind, seq, payload);
        let written = w.write_scratch();
        self.check(written)
    }

    /// Seals the active segment (after syncing it) and starts a new one.
    fn rotate(&self, w: &mut Writer) -> io::Result<()> {
        w.file.sync_data()?;
        bump(&self.counters.syncs, 1);
        self.advance_durable(w.written);
        let id = w.next_seq.max(w.active + 1);
        let (path, file) = segment::create(&self.dir, id)?;
        w.file = Arc::new(file);
        w.active = id;
        let mut meta = SegmentMeta::new(path);
        meta.size = FILE_HEADER_LEN as u64;
        w.segments.insert(id, meta);
        bump(&self.counters.rotations, 1);
        self.compact_locked(w)
    }

    /// Records that everything up to `position` is on disk and wakes waiters.
    pub(super) fn advance_durable(&self, position: u64) {
        let mut c = lock(&self.commit);
        if position > c.durable {
            c.durable = position;
            self.committed.notify_all();
        }
    }

    /// Blocks until the write position `ticket` is on disk, leading the
    /// commits if no other thread is.
    fn wait_durable(&self, ticket: u64) -> io::Result<()> {
        let mut c = lock(&self.commit);
        c.waiting += 1;
        let outcome = loop {
            if c.durable >= ticket {
                break Ok(());
            }
            if let Err(e) = self.check_failed() {
                break Err(e);
            }
            if c.leader {
                c = wait(&self.committed, c);
                continue;
            }
            c.leader = true;
            c = self.lead(c);
        };
        drop(self.leave(c));
        outcome
    }

    /// Commits, as the leader, until nothing written is waiting to become
    /// durable (blocked appends, or callbacks): each round syncs what was
    /// written before it began, wakes the threads waiting for it and calls
    /// back the appends it covers. Returns with `leader` cleared.
    fn lead<'a>(&'a self, mut c: MutexGuard<'a, Commit>) -> MutexGuard<'a, Commit> {
        loop {
            let others_waiting = c.waiting > 1 || c.callbacks.len() > 1;
            drop(c);
            if others_waiting && !self.options.commit_delay.is_zero() {
                thread::sleep(self.options.commit_delay);
            }
            // Earlier segments were synced when they were sealed, so syncing
            // the active file covers every byte up to `target`.
            let (target, file) = {
                let w = lock(&self.writer);
                (w.written, Arc::clone(&w.file))
            };
            let synced = file.sync_data();
            bump(&self.counters.syncs, 1);
            bump(&self.counters.commits, 1);
            let failed = synced.is_err();
            if let Err(e) = synced {
                // Marks the journal failed (every later write is refused).
                let _ = self.check(Err::<(), _>(e));
            }
            c = lock(&self.commit);
            if !failed && target > c.durable {
                c.durable = target;
            }
            self.committed.notify_all();
            let durable = c.durable;
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut c.callbacks)
                .into_iter()
                .partition(|(ticket, _)| failed || *ticket <= durable);
            c.callbacks = waiting;
            drop(c);
            for (_, then) in ready {
                then(if failed { self.check_failed() } else { Ok(()) });
            }
            c = lock(&self.commit);
            // Looked at again under the lock: appends that registered while
            // the callbacks ran count on this leader.
            if failed {
                // Appends that got in before the failure was marked: tell them.
                let orphans = std::mem::take(&mut c.callbacks);
                drop(c);
                for (_, then) in orphans {
                    then(self.check_failed());
                }
                c = lock(&self.commit);
            }
            if c.callbacks.is_empty() {
                c.leader = false;
                // A blocked appender whose record came after `target` leads next.
                self.committed.notify_all();
                return c;
            }
        }
    }

    /// Leads the commits for [`append_then`](Self::append_then) callbacks
    /// until [`stop_serving_commits`](Self::stop_serving_commits), on the
    /// calling thread (the durable listener runs it on a thread of its
    /// own), so that appending threads never wait for an `fsync`.
    pub(crate) fn serve_commits(&self) {
        let mut c = lock(&self.commit);
        c.committer = true;
        loop {
            if c.callbacks.is_empty() {
                if c.stop_committer {
                    break;
                }
                c = wait(&self.work, c);
                continue;
            }
            if c.leader {
                c = wait(&self.committed, c);
                continue;
            }
            c.leader = true;
            c.waiting += 1;
            c = self.lead(c);
            c = self.leave(c);
        }
        c.committer = false;
        c.stop_committer = false;
    }

    /// Asks the thread in [`serve_commits`](Self::serve_commits) to return,
    /// once every callback waiting now has been called.
    pub(crate) fn stop_serving_commits(&self) {
        let mut c = lock(&self.commit);
        c.stop_committer = true;
        self.work.notify_all();
    }

    /// Leaves the commit: one waiter fewer.
    fn leave<'a>(&'a self, mut c: MutexGuard<'a, Commit>) -> MutexGuard<'a, Commit> {
        c.waiting -= 1;
        c
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.failed.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = self.sync() {
            log::warn!("journal {}: final sync failed: {e}", self.dir.display());
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn journal_is_send_and_sync() {
        assert_send_sync::<Journal>();
    }
}
