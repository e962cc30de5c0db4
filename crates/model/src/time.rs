//! Time: nanosecond timestamps, RFC 3339 text, durations and relative times.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// The error of [`parse_time`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {input:?}: {reason}")]
pub struct TimeError {
    /// The text that was not understood.
    pub input: String,
    /// Why.
    pub reason: &'static str,
}

/// The error of [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected a number and a unit, as in 500ms, 30s, 5m, 1h, 7d, 2w")]
pub struct DurationError(pub String);

/// Returns the current time in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC, with as many fraction digits as needed
/// (0, 3, 6 or 9).
pub fn format_rfc3339(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses a duration such as `500ms`, `30s`, `5m`, `1h`, `7d`, `2w` into nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| DurationError(text.into()))?;
    let unit_ns: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "sec" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        "w" => 7.0 * 86400e9,
        _ => return Err(DurationError(text.into())),
    };
    let ns = num * unit_ns;
    if !ns.is_finite() || ns > i64::MAX as f64 {
        return Err(DurationError(text.into()));
    }
    Ok(ns as i64)
}

/// Parses an absolute or relative time into nanoseconds since the epoch.
///
/// Accepts RFC 3339 (`2024-01-15T10:30:00Z`, `…+02:00`), the same with a space instead of `T`
/// or without a zone (taken as UTC), a bare date (`2024-01-15`), `now`, a duration meaning
/// that long before `now_ns` (`1h`, `7d`), and epoch seconds, milliseconds, microseconds or
/// nanoseconds as a number (told apart by magnitude).
pub fn parse_time(text: &str, now_ns: i64) -> Result<i64, TimeError> {
    let t = text.trim();
    let err = |reason| TimeError {
        input: text.to_string(),
        reason,
    };
    if t.is_empty() {
        return Err(err("empty"));
    }
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ns);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) || (t.starts_with('-') && t.len() > 1) {
        if let Ok(n) = t.parse::<i64>() {
            return epoch_number(n).ok_or_else(|| err("number out of range"));
        }
    }
    if let Ok(d) = parse_duration(t) {
        return Ok(now_ns.saturating_sub(d));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return dt
            .timestamp_nanos_opt()
            .ok_or_else(|| err("outside the years 1677 to 2262"));
    }
    let with_t = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&with_t) {
        return dt
            .timestamp_nanos_opt()
            .ok_or_else(|| err("outside the years 1677 to 2262"));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&with_t, format) {
            return Utc
                .from_utc_datetime(&naive)
                .timestamp_nanos_opt()
                .ok_or_else(|| err("outside the years 1677 to 2262"));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        return Utc
            .from_utc_datetime(&naive)
            .timestamp_nanos_opt()
            .ok_or_else(|| err("outside the years 1677 to 2262"));
    }
    Err(err(
        "expected RFC 3339 (2024-01-15T10:30:00Z), a date, `now`, a duration ago (1h, 7d) or epoch seconds",
    ))
}

/// Interprets an epoch number by magnitude: seconds, milliseconds, microseconds or nanoseconds.
fn epoch_number(n: i64) -> Option<i64> {
    let abs = n.unsigned_abs();
    if abs < 100_000_000_000 {
        n.checked_mul(1_000_000_000)
    } else if abs < 100_000_000_000_000 {
        n.checked_mul(1_000_000)
    } else if abs < 100_000_000_000_000_000 {
        n.checked_mul(1_000)
    } else {
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_705_312_200_000_000_000; // 2024-01-15T09:50:00Z

    #[test]
    fn parses_absolute_forms() {
        let want = 1_705_314_600_000_000_000; // 2024-01-15T10:30:00Z
        for text in [
            "2024-01-15T10:30:00Z",
            "2024-01-15T12:30:00+02:00",
            "2024-01-15 10:30:00",
            "2024-01-15T10:30:00.000",
            "1705314600",
            "1705314600000",
        ] {
            assert_eq!(parse_time(text, NOW), Ok(want), "{text}");
        }
        assert_eq!(parse_time("2024-01-15", NOW), Ok(1_705_276_800_000_000_000));
    }

    #[test]
    fn parses_relative_forms() {
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("1h", NOW), Ok(NOW - 3_600_000_000_000));
        assert_eq!(parse_time("7d", NOW), Ok(NOW - 7 * 86_400_000_000_000));
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        assert!(parse_time("yesterday-ish", NOW).is_err());
        assert!(parse_time("", NOW).is_err());
        assert!(parse_time("1500-01-01T00:00:00Z", NOW).is_err());
        assert!(parse_time("9999-01-01T00:00:00Z", NOW).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn formats_with_needed_precision() {
        assert_eq!(format_rfc3339(NOW), "2024-01-15T09:50:00Z");
        assert_eq!(
            format_rfc3339(NOW + 123_000_000),
            "2024-01-15T09:50:00.123Z"
        );
    }
}
