//! Compaction: deleting segments nobody needs, after copying forward what is
//! still pending in sparse ones.
//!
//! A sealed segment is deleted when none of its events is pending. One whose
//! pending events fill at most a quarter of it ([`SPARSE_DIVISOR`]) has them
//! copied into the active segment first (keeping their seqs), so a single
//! event stuck in a handler does not pin a whole file. Copying only sparse
//! segments bounds the work: each byte copied frees at least three.
//!
//! Done markers matter as long as a copy of their event is on disk: if a
//! deleted segment holds the marker for an event whose record sits in a
//! segment that stays, the marker is written again into the active segment.
//! Each segment remembers the seqs of its event records (`SeqRuns`) so this
//! is exact, and markers never pile up.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use super::record::{self, RecordKind};
use super::segment::{self, Location};
use super::writer::{bump, Journal, Writer};

/// A sealed segment is copied forward when `live_bytes * SPARSE_DIVISOR <= size`.
const SPARSE_DIVISOR: u64 = 4;

impl Journal {
    /// Compacts the sealed segments; the caller holds the write lock.
    pub(super) fn compact_locked(&self, w: &mut Writer) -> io::Result<()> {
        let mut doomed: Vec<u64> = Vec::new();
        let mut sparse: Vec<u64> = Vec::new();
        for (&id, meta) in &w.segments {
            if id == w.active {
                continue;
            }
            if meta.live == 0 {
                doomed.push(id);
            } else if meta.live_bytes * SPARSE_DIVISOR <= meta.size {
                sparse.push(id);
            }
        }
        let carried = self.read_live_events(w, &mut sparse);
        doomed.extend_from_slice(&sparse);
        if doomed.is_empty() {
            return Ok(());
        }

        let markers: Vec<u64> = doomed
            .iter()
            .flat_map(|id| w.segments[id].done_markers.iter().copied())
            .filter(|&seq| {
                w.segments
                    .iter()
                    .any(|(id, meta)| !doomed.contains(id) && meta.events.contains(seq))
            })
            .collect();

        // Copy forward, make the copies durable, and only then delete.
        w.scratch.clear();
        let mut copies = Vec::with_capacity(carried.len());
        for (seq, payload) in &carried {
            let at = w.scratch.len() as u64;
            record::encode(&mut w.scratch, RecordKind::Event, *seq, payload);
            copies.push((*seq, at, payload.len()));
        }
        for &seq in &markers {
            record::encode(&mut w.scratch, RecordKind::Done, seq, &[]);
        }
        if !w.scratch.is_empty() {
            let base = w.write_scratch()?;
            for (seq, at, len) in copies {
                let len =
                    u32::try_from(len).expect("a payload read back from a record fits in u32");
                w.track_event(seq, base + at, len);
            }
            w.active_meta().done_markers.extend_from_slice(&markers);
            w.file.sync_data()?;
            bump(&self.counters.syncs, 1);
            self.advance_durable(w.written);
        }
        bump(&self.counters.carried_forward, carried.len() as u64);

        let mut deleted = 0;
        for id in doomed {
            let Some(meta) = w.segments.remove(&id) else {
                continue;
            };
            match fs::remove_file(&meta.path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    log::warn!(
                        "journal: cannot delete {}: {e}; will retry",
                        meta.path.display()
                    );
                    w.segments.insert(id, meta);
                }
            }
        }
        if deleted > 0 {
            segment::sync_dir(&self.dir)?;
            bump(&self.counters.compactions, 1);
            bump(&self.counters.segments_deleted, deleted);
        }
        Ok(())
    }

    /// Reads the pending events of the `sparse` segments, oldest seq first.
    /// A segment whose events cannot be read back is kept (and removed from
    /// `sparse`): nothing pending is ever deleted.
    fn read_live_events(&self, w: &Writer, sparse: &mut Vec<u64>) -> Vec<(u64, Vec<u8>)> {
        if sparse.is_empty() {
            return Vec::new();
        }
        let mut by_segment: BTreeMap<u64, Vec<(u64, Location)>> = BTreeMap::new();
        for (&seq, &loc) in &w.pending {
            if sparse.contains(&loc.segment) {
                by_segment.entry(loc.segment).or_default().push((seq, loc));
            }
        }
        let mut carried = Vec::new();
        sparse.retain(|id| {
            let path = &w.segments[id].path;
            let events = by_segment.remove(id).unwrap_or_default();
            let read: io::Result<Vec<(u64, Vec<u8>)>> = events
                .into_iter()
                .map(|(seq, loc)| segment::read_event(path, loc, seq).map(|payload| (seq, payload)))
                .collect();
            match read {
                Ok(events) => {
                    carried.extend(events);
                    true
                }
                Err(e) => {
                    log::warn!("journal: keeping {}: {e}", path.display());
                    false
                }
            }
        });
        carried.sort_unstable_by_key(|(seq, _)| *seq);
        carried
    }
}
