//! Compaction: deleting segments nobody needs, after copying forward what is
//! still pending in sparse ones.
//!
//! A sealed segment is deleted when none of its events is pending. One whose
//! pending events fill at most a quarter of it ([`SPARSE_DIVISOR`]) has them
//! copied into the active segment first (keeping their seqs), so a single
//! event stuck in a handler does not pin a whole file. Copying only sparse
//! segments bounds the work: each byte copied frees at least three. Segments
//! are copied one at a time, so at most a quarter of a segment is in memory.
//!
//! Done markers matter as long as a copy of their event is on disk: if a
//! deleted segment holds the marker for an event whose record sits in a
//! segment that stays, the marker is written again into the active segment.
//! Each segment remembers the seqs of its event records (`SeqRuns`) so this
//! is exact, and markers never pile up.

use std::collections::BTreeMap;
use std::fs::{self, File};
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
        // Copy forward one segment at a time (at most a quarter of a segment
        // in memory), make the copies durable, and only then delete.
        let mut by_segment = live_events(w, &sparse);
        let mut carried = 0u64;
        for id in sparse {
            let events = by_segment.remove(&id).unwrap_or_default();
            match self.copy_forward(w, id, events)? {
                Some(copied) => {
                    carried += copied;
                    doomed.push(id);
                }
                None => continue,
            }
        }
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
        if !markers.is_empty() {
            w.scratch.clear();
            for &seq in &markers {
                record::encode(&mut w.scratch, RecordKind::Done, seq, &[]);
            }
            w.write_scratch()?;
            w.active_meta().done_markers.extend_from_slice(&markers);
        }
        if carried > 0 || !markers.is_empty() {
            w.file.sync_data()?;
            bump(&self.counters.syncs, 1);
            self.advance_durable(w.written);
        }
        bump(&self.counters.carried_forward, carried);

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

    /// Copies the pending `events` of sealed segment `id` into the active
    /// segment (not yet synced) and tracks them there. Returns how many, or
    /// `None` when they cannot be read back: the segment is then kept, since
    /// nothing pending is ever deleted. A failed write is an error.
    fn copy_forward(
        &self,
        w: &mut Writer,
        id: u64,
        events: Vec<(u64, Location)>,
    ) -> io::Result<Option<u64>> {
        let path = &w.segments[&id].path;
        let read: io::Result<Vec<(u64, Vec<u8>)>> = File::open(path).and_then(|mut file| {
            events
                .into_iter()
                .map(|(seq, loc)| {
                    segment::read_event_from(&mut file, path, loc, seq).map(|p| (seq, p))
                })
                .collect()
        });
        let carried = match read {
            Ok(carried) => carried,
            Err(e) => {
                log::warn!("journal: keeping {}: {e}", path.display());
                return Ok(None);
            }
        };
        if carried.is_empty() {
            return Ok(Some(0));
        }
        w.scratch.clear();
        let mut copies = Vec::with_capacity(carried.len());
        for (seq, payload) in &carried {
            let at = w.scratch.len() as u64;
            record::encode(&mut w.scratch, RecordKind::Event, *seq, payload);
            let len = u32::try_from(payload.len())
                .expect("a payload read back from a record fits in u32");
            copies.push((*seq, at, len));
        }
        let base = w.write_scratch()?;
        for (seq, at, len) in copies {
            w.track_event(seq, base + at, len);
        }
        Ok(Some(carried.len() as u64))
    }
}

/// The pending events of the `sparse` segments, by segment, in seq order.
fn live_events(w: &Writer, sparse: &[u64]) -> BTreeMap<u64, Vec<(u64, Location)>> {
    let mut by_segment: BTreeMap<u64, Vec<(u64, Location)>> = BTreeMap::new();
    if sparse.is_empty() {
        return by_segment;
    }
    for (&seq, &loc) in &w.pending {
        if sparse.contains(&loc.segment) {
            by_segment.entry(loc.segment).or_default().push((seq, loc));
        }
    }
    by_segment
}
