//! Timestamps as the protocol sends them: Unix seconds or milliseconds, as
//! numbers or strings, or RFC 3339 date-times (parsed by `jiff`).

use super::wire::NumberOrString;

/// Values at or above this are taken as milliseconds (1e11 s is the year 5138).
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Normalises a Unix timestamp that may be in seconds or milliseconds to seconds.
fn normalize_seconds(raw: i64) -> i64 {
    if is_millis(raw) {
        raw / 1000
    } else {
        raw
    }
}

fn is_millis(raw: i64) -> bool {
    raw.unsigned_abs() >= MILLIS_THRESHOLD.unsigned_abs()
}

/// A timestamp in Unix seconds from a raw value: a number or numeric string
/// (seconds, or milliseconds), or an RFC 3339 date-time string.
pub(crate) fn timestamp_secs(raw: &NumberOrString) -> Option<i64> {
    match raw.as_i64() {
        Some(n) => Some(normalize_seconds(n)),
        None => match raw {
            NumberOrString::String(s) => parse_rfc3339(s.trim()).map(|t| t.as_second()),
            NumberOrString::Number(_) => None,
        },
    }
}

/// The same instant as [`timestamp_secs`], keeping milliseconds and fractions.
#[cfg(feature = "jiff")]
pub(crate) fn timestamp_jiff(raw: &NumberOrString) -> Option<jiff::Timestamp> {
    match raw.as_i64() {
        Some(n) if is_millis(n) => jiff::Timestamp::from_millisecond(n).ok(),
        Some(n) => jiff::Timestamp::from_second(n).ok(),
        None => match raw {
            NumberOrString::String(s) => parse_rfc3339(s.trim()),
            NumberOrString::Number(_) => None,
        },
    }
}

/// Parses an RFC 3339 date-time (`2025-09-22T21:34:00.000Z`, `…+02:00`) with
/// `jiff`, which rejects impossible dates and trailing text.
///
/// A date-time without any offset (`2025-09-22T21:34:00`) is read as UTC, as
/// this crate always has: some senders drop the `Z`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(timestamp) = s.parse::<jiff::Timestamp>() {
        return Some(timestamp);
    }
    let pieces = jiff::fmt::temporal::Pieces::parse(s).ok()?;
    match (pieces.offset(), pieces.time()) {
        (None, Some(time)) => jiff::tz::Offset::UTC
            .to_timestamp(pieces.date().to_datetime(time))
            .ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_milliseconds() {
        assert_eq!(normalize_seconds(1_633_456_789), 1_633_456_789);
        assert_eq!(normalize_seconds(1_747_775_431_467), 1_747_775_431);
    }

    fn rfc3339_secs(s: &str) -> Option<i64> {
        parse_rfc3339(s).map(|t| t.as_second())
    }

    #[test]
    fn rfc3339_accepts_zulu_offsets_and_fractions() {
        assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_secs("2025-09-22T21:34:00Z"), Some(1_758_576_840));
        assert_eq!(rfc3339_secs("2025-09-22t21:34:00z"), Some(1_758_576_840));
        assert_eq!(
            rfc3339_secs("2025-09-22T21:34:00.000Z"),
            Some(1_758_576_840)
        );
        assert_eq!(
            rfc3339_secs("2025-09-22T23:34:00+02:00"),
            Some(1_758_576_840)
        );
        assert_eq!(
            rfc3339_secs("2025-09-22T19:04:00.5-02:30"),
            Some(1_758_576_840)
        );
        let fraction =
            parse_rfc3339("2025-09-22T21:34:00.123456789Z").map(|t| t.subsec_nanosecond());
        assert_eq!(fraction, Some(123_456_789));
    }

    #[test]
    fn rfc3339_without_offset_is_read_as_utc() {
        assert_eq!(rfc3339_secs("2025-09-22T21:34:00"), Some(1_758_576_840));
        assert_eq!(
            rfc3339_secs("2025-09-22"),
            None,
            "a date alone is no instant"
        );
    }

    #[test]
    fn rfc3339_rejects_impossible_dates_and_trailing_text() {
        for bad in [
            "2025-02-31T00:00:00Z",
            "2025-02-31",
            "2025-02-31T00:00:00",
            "2025-13-22T21:34:00Z",
            "2025-09-22T24:00:01Z",
            "2025-09-22T23:34:00+02:00junk",
            "2025-09-22T21:34:00Zjunk",
            "2025-09-22T21:34:00junk",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_from_numbers_strings_and_dates() {
        let secs = |raw: NumberOrString| timestamp_secs(&raw);
        assert_eq!(
            secs(NumberOrString::Number(1_633_456_789.into())),
            Some(1_633_456_789)
        );
        assert_eq!(
            secs(NumberOrString::Number(1_747_775_431_467_i64.into())),
            Some(1_747_775_431)
        );
        assert_eq!(
            secs(NumberOrString::String(" 1633456789 ".into())),
            Some(1_633_456_789)
        );
        assert_eq!(
            secs(NumberOrString::String(" 2025-09-22T21:34:00Z ".into())),
            Some(1_758_576_840)
        );
        assert_eq!(
            secs(NumberOrString::String("2025-02-31T00:00:00Z".into())),
            None
        );
    }

    #[cfg(feature = "jiff")]
    #[test]
    fn jiff_timestamps_keep_milliseconds() {
        let ms = NumberOrString::Number(1_747_775_431_467_i64.into());
        assert_eq!(
            timestamp_jiff(&ms).map(|t| t.as_millisecond()),
            Some(1_747_775_431_467)
        );
        let secs = NumberOrString::String("1633456789".into());
        assert_eq!(
            timestamp_jiff(&secs).map(|t| t.as_second()),
            Some(1_633_456_789)
        );
        let text = NumberOrString::String("2025-09-22T21:34:00.250Z".into());
        assert_eq!(
            timestamp_jiff(&text).map(|t| t.as_millisecond()),
            Some(1_758_576_840_250)
        );
    }
}
