//! The record format and the scanner that reads it back, tolerating damage.
//!
//! Offsets are relative to the record; in a segment, records follow the file
//! header (see segment.rs).
//!
//! ```text
//! offset  size  field
//! 0       4     magic  b"WJR1"
//! 4       4     crc    CRC-32C (little endian) of bytes 8 .. 21 + len
//! 8       8     seq    u64 little endian
//! 16      1     kind   1 = event, 2 = done marker
//! 17      4     len    payload length, u32 little endian
//! 21      len   payload
//! ```

/// The four bytes every record starts with; the scanner resynchronises on them.
pub(crate) const MAGIC: [u8; 4] = *b"WJR1";
/// Size of the fixed record header.
pub(crate) const HEADER_LEN: usize = 21;

/// What a record stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// An event payload, appended by [`Journal::append`](super::Journal::append).
    Event = 1,
    /// The event `seq` was handled; no payload.
    Done = 2,
}

impl RecordKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Event),
            2 => Some(Self::Done),
            _ => None,
        }
    }
}

/// Appends the encoded record to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, kind: RecordKind, seq: u64, payload: &[u8]) {
    let len =
        u32::try_from(payload.len()).expect("payload length was checked against max_record_size");
    let mut body = [0u8; HEADER_LEN - 8];
    body[..8].copy_from_slice(&seq.to_le_bytes());
    body[8] = kind as u8;
    body[9..].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&body), payload);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(payload);
}

/// Encoded size of a record with a payload of `len` bytes.
pub(crate) fn encoded_len(len: usize) -> u64 {
    (HEADER_LEN + len) as u64
}

/// One record found by the scanner.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub(crate) offset: u64,
    pub(crate) kind: RecordKind,
    pub(crate) seq: u64,
    pub(crate) payload: &'a [u8],
}

/// Why a byte range could not be read as records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The file ends inside a record: a write cut short by a crash.
    Truncated,
    /// A record header was found but its checksum does not match.
    Checksum,
    /// The bytes are not a record header at all (no magic, unknown kind,
    /// impossible length).
    Garbage,
}

/// A damaged byte range found while scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) kind: CorruptionKind,
}

/// Outcome of parsing at one offset.
enum Parse<'a> {
    Ok(Record<'a>),
    Bad(CorruptionKind),
}

fn parse_at(buf: &[u8], offset: usize, max_payload: u32) -> Parse<'_> {
    let rest = &buf[offset..];
    if rest.len() < HEADER_LEN {
        return if MAGIC.starts_with(&rest[..rest.len().min(4)]) {
            Parse::Bad(CorruptionKind::Truncated)
        } else {
            Parse::Bad(CorruptionKind::Garbage)
        };
    }
    if rest[..4] != MAGIC {
        return Parse::Bad(CorruptionKind::Garbage);
    }
    let le_u32 =
        |at: usize| u32::from_le_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
    let stored_crc = le_u32(4);
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&rest[8..16]);
    let seq = u64::from_le_bytes(seq_bytes);
    let Some(kind) = RecordKind::from_byte(rest[16]) else {
        return Parse::Bad(CorruptionKind::Garbage);
    };
    let len = le_u32(17);
    if len > max_payload || (kind == RecordKind::Done && len != 0) {
        return Parse::Bad(CorruptionKind::Garbage);
    }
    let end = HEADER_LEN + len as usize;
    if rest.len() < end {
        return Parse::Bad(CorruptionKind::Truncated);
    }
    if crc32c::crc32c(&rest[8..end]) != stored_crc {
        return Parse::Bad(CorruptionKind::Checksum);
    }
    Parse::Ok(Record {
        offset: offset as u64,
        kind,
        seq,
        payload: &rest[HEADER_LEN..end],
    })
}

/// The records of `buf` from [`scan`]; offsets are offsets in `buf`.
///
/// `valid_end` is the offset just past the last intact record (or the start
/// of the scan when there is none), where a writer may truncate.
pub(crate) struct Scan<'a> {
    pub(crate) records: Vec<Record<'a>>,
    pub(crate) damage: Vec<Damage>,
    pub(crate) valid_end: u64,
}

/// Reads every intact record in `buf` from offset `start` on, in order.
///
/// Damaged ranges are reported and skipped: the scanner looks for the next
/// offset where a whole record with a valid checksum starts.
pub(crate) fn scan(buf: &[u8], start: usize, max_payload: u32) -> Scan<'_> {
    let mut records = Vec::new();
    let mut damage: Vec<Damage> = Vec::new();
    let mut offset = start.min(buf.len());
    let mut valid_end = offset as u64;
    while offset < buf.len() {
        match parse_at(buf, offset, max_payload) {
            Parse::Ok(record) => {
                offset += HEADER_LEN + record.payload.len();
                valid_end = offset as u64;
                records.push(record);
            }
            Parse::Bad(kind) => {
                let found = resync(buf, offset + 1, max_payload);
                // A length that runs past the end is only a torn tail if nothing intact follows.
                let kind = match (kind, found) {
                    (CorruptionKind::Truncated, Some(_)) => CorruptionKind::Garbage,
                    (kind, _) => kind,
                };
                let next = found.unwrap_or(buf.len());
                damage.push(Damage {
                    offset: offset as u64,
                    len: (next - offset) as u64,
                    kind,
                });
                offset = next;
            }
        }
    }
    Scan {
        records,
        damage,
        valid_end,
    }
}

/// The next offset at or after `from` where an intact record starts.
fn resync(buf: &[u8], from: usize, max_payload: u32) -> Option<usize> {
    let mut at = from;
    while at + HEADER_LEN <= buf.len() {
        let window = &buf[at..];
        let hop = window.windows(4).position(|w| w == MAGIC)?;
        at += hop;
        if let Parse::Ok(_) = parse_at(buf, at, max_payload) {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_of(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            encode(&mut out, RecordKind::Event, i as u64 + 1, p);
        }
        out
    }

    #[test]
    fn encoded_records_scan_back_in_order() {
        let mut buf = journal_of(&[b"one", b"", b"three"]);
        encode(&mut buf, RecordKind::Done, 2, b"");
        let scan = scan(&buf, 0, 1024);
        assert!(scan.damage.is_empty());
        assert_eq!(scan.valid_end, buf.len() as u64);
        let seen: Vec<_> = scan
            .records
            .iter()
            .map(|r| (r.kind, r.seq, r.payload))
            .collect();
        assert_eq!(
            seen,
            vec![
                (RecordKind::Event, 1, &b"one"[..]),
                (RecordKind::Event, 2, &b""[..]),
                (RecordKind::Event, 3, &b"three"[..]),
                (RecordKind::Done, 2, &b""[..]),
            ]
        );
    }

    #[test]
    fn a_cut_record_is_reported_as_truncated_and_excluded() {
        let buf = journal_of(&[b"one", b"two"]);
        let cut = &buf[..buf.len() - 1];
        let scan = scan(cut, 0, 1024);
        assert_eq!(scan.records.len(), 1);
        assert_eq!(scan.valid_end, encoded_len(3));
        assert_eq!(scan.damage[0].kind, CorruptionKind::Truncated);
    }

    #[test]
    fn a_flipped_payload_byte_is_a_checksum_error_and_the_next_record_survives() {
        let mut buf = journal_of(&[b"one", b"two", b"three"]);
        let second = encoded_len(3) as usize;
        buf[second + HEADER_LEN] ^= 0x40;
        let scan = scan(&buf, 0, 1024);
        let seqs: Vec<u64> = scan.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 3]);
        assert_eq!(scan.damage.len(), 1);
        assert_eq!(scan.damage[0].kind, CorruptionKind::Checksum);
        assert_eq!(scan.damage[0].offset, second as u64);
        assert_eq!(scan.damage[0].len, encoded_len(3));
    }

    #[test]
    fn a_scan_from_an_offset_reports_file_offsets() {
        let mut buf = b"HEADER".to_vec();
        buf.extend(journal_of(&[b"one", b"two"]));
        let scan = scan(&buf, 6, 1024);
        assert!(scan.damage.is_empty());
        let offsets: Vec<u64> = scan.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![6, 6 + encoded_len(3)]);
        assert_eq!(scan.valid_end, buf.len() as u64);
        let empty = super::scan(&buf[..6], 6, 1024);
        assert!(empty.records.is_empty() && empty.damage.is_empty());
        assert_eq!(empty.valid_end, 6);
    }

    #[test]
    fn checksums_are_crc32c_and_can_be_computed_in_pieces() {
        // The standard check value and RFC 3720 vectors pin the polynomial,
        // so segments written by earlier builds still verify.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c::crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let data = b"the quick brown fox jumps over the lazy dog";
        let (a, b) = data.split_at(17);
        assert_eq!(
            crc32c::crc32c_append(crc32c::crc32c(a), b),
            crc32c::crc32c(data)
        );
    }

    #[test]
    fn an_oversized_length_is_garbage_not_an_allocation() {
        let mut buf = journal_of(&[b"one"]);
        buf[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
        let scan = scan(&buf, 0, 1024);
        assert!(scan.records.is_empty());
        assert_eq!(scan.damage[0].kind, CorruptionKind::Garbage);
        assert_eq!(scan.valid_end, 0);
    }
}
