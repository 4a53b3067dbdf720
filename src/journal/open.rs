//! Opening a journal: scanning every segment, reporting and cutting off
//! damage, and rebuilding which events are still pending.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::record::{self, RecordKind};
use super::segment::{self, Location, SegmentMeta};
use super::writer::{Journal, Writer};
use super::{Corruption, JournalOptions, Recovery, Seq, RECORD_LIMIT};

pub(super) fn open(dir: &Path, options: JournalOptions) -> io::Result<(Journal, Recovery)> {
    fs::create_dir_all(dir)?;
    let mut segments: BTreeMap<u64, SegmentMeta> = BTreeMap::new();
    // seq -> (segment, offset, payload) of the last copy seen.
    let mut events: BTreeMap<u64, (u64, u64, Vec<u8>)> = BTreeMap::new();
    let mut done: HashSet<u64> = HashSet::new();
    let mut corruption = Vec::new();
    let mut max_seq = 0u64;

    for (id, path) in segment::list_segments(dir)? {
        let bytes = fs::read(&path)?;
        let scan = record::scan(&bytes, RECORD_LIMIT);
        let mut meta = SegmentMeta::new(path.clone());
        for rec in &scan.records {
            max_seq = max_seq.max(rec.seq);
            match rec.kind {
                RecordKind::Event => {
                    meta.saw_event(rec.seq);
                    if !done.contains(&rec.seq) {
                        events.insert(rec.seq, (id, rec.offset, rec.payload.to_vec()));
                    }
                }
                RecordKind::Done => {
                    done.insert(rec.seq);
                    events.remove(&rec.seq);
                    meta.done_markers.push(rec.seq);
                }
            }
        }
        for damage in &scan.damage {
            let truncated = damage.offset >= scan.valid_end;
            log::warn!(
                "journal: {:?} damage in {} at byte {} ({} bytes){}",
                damage.kind,
                path.display(),
                damage.offset,
                damage.len,
                if truncated {
                    "; truncating the segment there"
                } else {
                    "; skipped"
                },
            );
            corruption.push(Corruption {
                segment: path.clone(),
                offset: damage.offset,
                len: damage.len,
                kind: damage.kind,
                truncated,
            });
        }
        if scan.valid_end < bytes.len() as u64 {
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(scan.valid_end)?;
            file.sync_all()?;
        }
        meta.size = scan.valid_end;
        segments.insert(id, meta);
    }

    let mut pending = BTreeMap::new();
    let mut recovered = Vec::with_capacity(events.len());
    for (seq, (id, offset, payload)) in events {
        let len =
            u32::try_from(payload.len()).expect("a scanned payload is at most RECORD_LIMIT bytes");
        if let Some(meta) = segments.get_mut(&id) {
            meta.add_live(len);
        }
        pending.insert(
            seq,
            Location {
                segment: id,
                offset,
                len,
            },
        );
        recovered.push((Seq(seq), payload));
    }

    let last = segments.last_key_value().map(|(&id, meta)| (id, meta.size));
    let next_seq = (max_seq + 1).max(last.map_or(1, |(id, _)| id));
    let (active, file) = match last {
        Some((id, size)) if size < options.segment_size => (
            id,
            OpenOptions::new().append(true).open(&segments[&id].path)?,
        ),
        _ => {
            let id = last.map_or(next_seq, |(id, _)| next_seq.max(id + 1));
            let path = dir.join(segment::segment_name(id));
            let file = OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(&path)?;
            segment::sync_dir(dir)?;
            segments.insert(id, SegmentMeta::new(path));
            (id, file)
        }
    };

    let writer = Writer {
        file: Arc::new(file),
        active,
        segments,
        pending,
        next_seq,
        written: 0,
        scratch: Vec::new(),
    };
    let journal = Journal::from_parts(dir.to_path_buf(), options, writer);
    {
        let mut w = journal
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let compacted = journal.compact_locked(&mut w);
        journal.check(compacted)?;
    }
    Ok((
        journal,
        Recovery {
            pending: recovered,
            corruption,
        },
    ))
}
