//! Parsers for the values operators type: durations (`500ms`, `5s`, `2m`),
//! byte sizes (`65536`, `64KiB`, `1MiB`), and the `PORT` / `WASENDER_BIND`
//! address rule shared by `listen` and `health --local`.
//!
//! A handful of lines of our own rather than a crate such as `humantime`:
//! the CLI needs four units, and its error messages should name them.

use std::time::Duration;

/// Parses a duration: a number (fractions allowed) and a unit among `ms`,
/// `s`, `m` and `h`; a bare number is seconds (`30` = `30s`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration {text:?}: write a number and a unit, ms, s, m or h (500ms, 5s, 2m)"
        )
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if number.is_empty() {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        _ => return Err(invalid()),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| invalid())
}

/// Parses a byte count: a whole number, optionally with a binary unit
/// (`KiB`, `MiB`, `GiB`; `K`, `M`, `G` mean the same).
pub fn bytes(text: &str) -> Result<usize, String> {
    let invalid = || {
        format!("invalid size {text:?}: write a number of bytes, or with KiB, MiB or GiB (64KiB)")
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: usize = number.parse().map_err(|_| invalid())?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return Err(invalid()),
    };
    value.checked_mul(scale).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_four_units_and_bare_seconds() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "5x", "-1s", "five seconds"] {
            let err = duration(bad).expect_err(bad);
            assert!(err.contains("500ms, 5s, 2m"), "{err}");
        }
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(bytes("100"), Ok(100));
        assert_eq!(bytes("64KiB"), Ok(65536));
        assert_eq!(bytes("1M"), Ok(1 << 20));
        assert!(bytes("1.5MiB").is_err());
        assert!(bytes("99999999999999999999G").is_err());
        assert!(
            bytes("1MB").is_err(),
            "decimal units are refused, not guessed"
        );
    }
}
