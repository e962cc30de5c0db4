//! Timestamps: hand-written byte scanners for the stamps logs use, and the time zone of
//! zone-less stamps.
//!
//! A scanner only checks the shape (digits and separators in place) and returns a
//! [`Civil`] time; [`Civil::to_ns`] then checks the ranges. This split lets a format tell
//! "not a stamp" (try another format) from "a stamp, but an impossible date" (`time_error`).

use std::fmt;
use std::str::FromStr;

use chrono::{Offset, TimeZone as _};

use crate::error::ParseError;

pub(crate) mod custom;
pub(crate) mod header;

const NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS;
const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// The time zone given to stamps that carry none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeZone {
    /// Coordinated universal time (the default).
    #[default]
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    /// An IANA zone such as `Europe/Paris`, with its daylight-saving rules.
    Named(chrono_tz::Tz),
}

impl TimeZone {
    /// Returns the offset east of UTC, in seconds, of a local date and time in this zone.
    fn offset_of(self, c: Civil) -> i32 {
        match self {
            TimeZone::Utc => 0,
            TimeZone::Fixed(s) => s,
            TimeZone::Named(tz) => {
                let naive = chrono::NaiveDate::from_ymd_opt(c.year, c.month, c.day)
                    .and_then(|d| d.and_hms_opt(c.hour.min(23), c.minute.min(59), 0));
                let Some(naive) = naive else { return 0 };
                // A local time skipped by a DST change takes the offset from before it.
                match tz.offset_from_local_datetime(&naive) {
                    chrono::LocalResult::Single(o) | chrono::LocalResult::Ambiguous(o, _) => {
                        o.fix().local_minus_utc()
                    }
                    chrono::LocalResult::None => {
                        tz.offset_from_utc_datetime(&naive).fix().local_minus_utc()
                    }
                }
            }
        }
    }
}

impl FromStr for TimeZone {
    type Err = ParseError;

    /// Parses `UTC` (or `Z`, `GMT`), a fixed offset (`+02:00`, `-0700`, `+05`) or an IANA name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if ["utc", "z", "gmt", ""].contains(&t.to_ascii_lowercase().as_str()) {
            return Ok(TimeZone::Utc);
        }
        if let Some((off, used)) = scan_offset(t.as_bytes()) {
            if used == t.len() {
                return Ok(TimeZone::Fixed(off));
            }
        }
        t.parse::<chrono_tz::Tz>()
            .map(TimeZone::Named)
            .map_err(|_| ParseError::TimeZone(s.to_string()))
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeZone::Utc => f.write_str("UTC"),
            TimeZone::Fixed(s) => {
                let sign = if *s < 0 { '-' } else { '+' };
                let a = s.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
            }
            TimeZone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// A date and time as written in a line, before range checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Civil {
    /// The year; 0 when the stamp has none (syslog), to be inferred.
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// Seconds east of UTC when the stamp says.
    pub offset: Option<i32>,
}

impl Civil {
    /// Checks the ranges and converts to nanoseconds since the epoch.
    pub fn to_ns(self, zone: TimeZone) -> Result<i64, &'static str> {
        if !(1..=12).contains(&self.month) {
            return Err("month out of range");
        }
        if self.day == 0 || self.day > days_in_month(self.year, self.month) {
            return Err("day out of range for the month");
        }
        if self.hour > 24 || self.minute > 59 || self.second > 60 {
            return Err("time of day out of range");
        }
        if self.hour == 24 && (self.minute, self.second, self.nanos) != (0, 0, 0) {
            return Err("time of day out of range");
        }
        if !(1678..=2261).contains(&self.year) {
            return Err("year outside 1678 to 2261");
        }
        let offset = self.offset.unwrap_or_else(|| zone.offset_of(self));
        let days = days_from_civil(self.year, self.month, self.day);
        let secs =
            i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
                - i64::from(offset);
        Ok(days * DAY_NS + secs * NS + i64::from(self.nanos))
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(if m <= 2 { y - 1 } else { y });
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Returns the (year, month) of a timestamp, UTC.
fn year_of(ns: i64) -> i32 {
    let days = ns.div_euclid(DAY_NS) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let y = yoe + era * 400 + i64::from(mp >= 10);
    y as i32
}

/// Converts a stamp without a year: the year that puts it nearest before `now` + 1 day.
pub(crate) fn infer_year(mut c: Civil, zone: TimeZone, now_ns: i64) -> Result<i64, &'static str> {
    let limit = now_ns.saturating_add(DAY_NS);
    let y = year_of(now_ns);
    let mut last = Err("day out of range for the month");
    for year in [y + 1, y, y - 1, y - 2, y - 3, y - 4] {
        c.year = year;
        match c.to_ns(zone) {
            Ok(ns) if ns <= limit => return Ok(ns),
            Ok(_) => {}
            Err(e) => last = Err(e),
        }
    }
    last
}

#[inline]
fn digit(b: &[u8], i: usize) -> Option<u32> {
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => Some(u32::from(c - b'0')),
        _ => None,
    }
}

#[inline]
fn num(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let mut v = 0;
    for k in i..i + n {
        v = v * 10 + digit(b, k)?;
    }
    Some(v)
}

/// Parses a month abbreviation (`Jan`, case-insensitive) at `i`: 1 to 12.
pub(crate) fn month_at(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 3)?;
    let lower = [s[0] | 0x20, s[1] | 0x20, s[2] | 0x20];
    MONTHS
        .iter()
        .position(|m| **m == lower)
        .map(|p| p as u32 + 1)
}

/// Scans `.123` or `,123456789` at `i`: (nanos, bytes used); extra digits past 9 are ignored.
fn scan_fraction(b: &[u8], i: usize) -> (u32, usize) {
    if !matches!(b.get(i), Some(b'.' | b',')) || digit(b, i + 1).is_none() {
        return (0, 0);
    }
    let (mut v, mut n, mut k) = (0u32, 0, i + 1);
    while let Some(d) = digit(b, k) {
        if n < 9 {
            v = v * 10 + d;
            n += 1;
        }
        k += 1;
    }
    (v * 10u32.pow(9 - n), k - i)
}

/// Scans a zone offset `Z`, `+02:00`, `+0200` or `+02`: (seconds east, bytes used).
pub(crate) fn scan_offset(b: &[u8]) -> Option<(i32, usize)> {
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        &c @ (b'+' | b'-') => {
            let h = num(b, 1, 2)?;
            let (m, used) = if b.get(3) == Some(&b':') {
                (num(b, 4, 2)?, 6)
            } else if let Some(m) = num(b, 3, 2) {
                (m, 5)
            } else {
                (0, 3)
            };
            if digit(b, used).is_some() || h > 23 || m > 59 {
                return None;
            }
            let s = (h * 3600 + m * 60) as i32;
            Some((if c == b'-' { -s } else { s }, used))
        }
        _ => None,
    }
}

/// Scans `HH:MM[:SS][.frac]` at `i`; fills the civil time, returns the end index.
fn scan_hms(b: &[u8], i: usize, c: &mut Civil) -> Option<usize> {
    c.hour = num(b, i, 2)?;
    if b.get(i + 2) != Some(&b':') {
        return None;
    }
    c.minute = num(b, i + 3, 2)?;
    let mut k = i + 5;
    if b.get(k) == Some(&b':') {
        c.second = num(b, k + 1, 2)?;
        k += 3;
        let (nanos, used) = scan_fraction(b, k);
        c.nanos = nanos;
        k += used;
    }
    Some(k)
}

/// Scans an ISO-8601-like stamp at the start: `2024-01-15T10:30:00.123Z`, the same with a
/// space, `,123`, `+02:00`, ` +0200`, ` UTC`, or `2024/01/15 10:30:00`.
pub(crate) fn scan_iso(b: &[u8]) -> Option<(Civil, usize)> {
    let mut c = Civil {
        year: num(b, 0, 4)? as i32,
        ..Civil::default()
    };
    let sep = *b.get(4)?;
    if !(sep == b'-' || sep == b'/') || b.get(7) != Some(&sep) {
        return None;
    }
    c.month = num(b, 5, 2)?;
    c.day = num(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ' | b'_')) {
        return None;
    }
    let mut k = scan_hms(b, 11, &mut c)?;
    if let Some((off, used)) = scan_offset(&b[k..]) {
        c.offset = Some(off);
        k += used;
    } else if b.get(k) == Some(&b' ') {
        let rest = &b[k + 1..];
        if rest.len() >= 3
            && (rest[..3].eq_ignore_ascii_case(b"UTC") || rest[..3].eq_ignore_ascii_case(b"GMT"))
            && !rest.get(3).is_some_and(|x| x.is_ascii_alphanumeric())
        {
            c.offset = Some(0);
            k += 4;
        } else if matches!(rest.first(), Some(b'+' | b'-')) && num(rest, 1, 4).is_some() {
            if let Some((off, used)) = scan_offset(rest) {
                c.offset = Some(off);
                k += 1 + used;
            }
        }
    }
    if b.get(k).is_some_and(|x| x.is_ascii_alphanumeric()) {
        return None;
    }
    Some((c, k))
}

/// Scans a syslog stamp `Jun 14 15:16:01` (day may be space-padded); the year is 0.
pub(crate) fn scan_syslog(b: &[u8]) -> Option<(Civil, usize)> {
    let mut c = Civil {
        month: month_at(b, 0)?,
        ..Civil::default()
    };
    if b.get(3) != Some(&b' ') {
        return None;
    }
    c.day = match (b.get(4)?, digit(b, 5)?) {
        (b' ', d) => d,
        (_, d) => digit(b, 4)? * 10 + d,
    };
    if b.get(6) != Some(&b' ') {
        return None;
    }
    let k = scan_hms(b, 7, &mut c)?;
    if k < 15 {
        return None;
    }
    Some((c, k))
}

/// Scans a common-log-format stamp `10/Oct/2000:13:55:36 -0700`.
pub(crate) fn scan_clf(b: &[u8]) -> Option<(Civil, usize)> {
    let mut c = Civil {
        day: num(b, 0, 2)?,
        ..Civil::default()
    };
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') || b.get(11) != Some(&b':') {
        return None;
    }
    c.month = month_at(b, 3)?;
    c.year = num(b, 7, 4)? as i32;
    let mut k = scan_hms(b, 12, &mut c)?;
    if b.get(k) == Some(&b' ') {
        if let Some((off, used)) = scan_offset(&b[k + 1..]) {
            c.offset = Some(off);
            k += 1 + used;
        }
    }
    Some((c, k))
}

/// Scans an Apache/ctime stamp `Sun Dec 04 04:47:44 2005` (optionally `.123456` after the
/// seconds, as Apache 2.4 writes).
pub(crate) fn scan_ctime(b: &[u8]) -> Option<(Civil, usize)> {
    if b.get(3) != Some(&b' ') || !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let (mut c, k) = scan_syslog(&b[4..])?;
    let k = k + 4;
    if b.get(k) != Some(&b' ') {
        return None;
    }
    c.year = num(b, k + 1, 4)? as i32;
    Some((c, k + 5))
}

/// Scans compact stamps: `20240115T103000[Z]`, `20240115 103000`, `240115 10:30:00`
/// (MySQL, hour may be space-padded) and `240115 103000`.
pub(crate) fn scan_compact(b: &[u8]) -> Option<(Civil, usize)> {
    let mut c = Civil::default();
    let mut k = if let (Some(y), Some(b'T' | b' ')) = (num(b, 0, 4), b.get(8)) {
        c.year = y as i32;
        c.month = num(b, 4, 2)?;
        c.day = num(b, 6, 2)?;
        9
    } else {
        c.year = 2000 + num(b, 0, 2)? as i32;
        c.month = num(b, 2, 2)?;
        c.day = num(b, 4, 2)?;
        if b.get(6) != Some(&b' ') {
            return None;
        }
        7
    };
    if b.get(k + 2) == Some(&b':') || (b.get(k) == Some(&b' ') && b.get(k + 2) == Some(&b':')) {
        if b[k] == b' ' {
            c.hour = digit(b, k + 1)?;
            k += 2;
        } else {
            c.hour = num(b, k, 2)?;
            k += 2;
        }
        c.minute = num(b, k + 1, 2)?;
        if b.get(k + 3) != Some(&b':') {
            return None;
        }
        c.second = num(b, k + 4, 2)?;
        k += 6;
    } else {
        c.hour = num(b, k, 2)?;
        c.minute = num(b, k + 2, 2)?;
        c.second = num(b, k + 4, 2)?;
        k += 6;
    }
    let (nanos, used) = scan_fraction(b, k);
    c.nanos = nanos;
    k += used;
    if let Some((off, used)) = scan_offset(&b[k..]) {
        c.offset = Some(off);
        k += used;
    }
    if b.get(k).is_some_and(|x| x.is_ascii_alphanumeric()) {
        return None;
    }
    Some((c, k))
}

/// Interprets an epoch number by magnitude: seconds, milliseconds, microseconds or nanoseconds.
pub(crate) fn epoch_to_ns(v: f64) -> Option<i64> {
    let a = v.abs();
    let scale = if a < 1e11 {
        1e9
    } else if a < 1e14 {
        1e6
    } else if a < 1e17 {
        1e3
    } else {
        1.0
    };
    let ns = (v * scale).round();
    (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64)
}

/// Interprets an integer epoch by magnitude, exactly.
pub(crate) fn epoch_int(n: i64) -> Option<i64> {
    let a = n.unsigned_abs();
    if a < 100_000_000_000 {
        n.checked_mul(1_000_000_000)
    } else if a < 100_000_000_000_000 {
        n.checked_mul(1_000_000)
    } else if a < 100_000_000_000_000_000 {
        n.checked_mul(1_000)
    } else {
        Some(n)
    }
}

/// The outcome of reading a timestamp value (from JSON, logfmt or a grok capture).
pub(crate) enum Stamp {
    /// A valid time.
    Ok(i64),
    /// A recognised stamp with an impossible date or time.
    Invalid(&'static str),
    /// Not a stamp this crate knows.
    Unknown,
}

/// Converts a found stamp to nanoseconds: a stamp without a year gets syslog's year rule.
pub(crate) fn resolve(
    found: header::Found,
    zone: TimeZone,
    now_ns: i64,
) -> Result<i64, &'static str> {
    match found {
        header::Found::Epoch(ns) => Ok(ns),
        header::Found::Civil(c) if c.year == 0 => infer_year(c, zone, now_ns),
        header::Found::Civil(c) => c.to_ns(zone),
    }
}

/// Reads a whole text as a timestamp: in the configured layout first (when there is one),
/// then in any known form.
pub(crate) fn parse_stamp_with(
    text: &str,
    format: Option<&custom::TimeFormat>,
    zone: TimeZone,
    now_ns: i64,
) -> Stamp {
    if let Some(found) = format.and_then(|f| f.whole(text)) {
        return match resolve(found, zone, now_ns) {
            Ok(ns) => Stamp::Ok(ns),
            Err(e) => Stamp::Invalid(e),
        };
    }
    parse_stamp(text, zone, now_ns)
}

/// Reads a whole text as a timestamp in any known form, epoch numbers included.
pub(crate) fn parse_stamp(text: &str, zone: TimeZone, now_ns: i64) -> Stamp {
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    let b = t.as_bytes();
    let whole = |r: Option<(Civil, usize)>| r.filter(|(_, used)| *used == b.len());
    let civil = whole(scan_iso(b))
        .or_else(|| whole(scan_clf(b)))
        .or_else(|| whole(scan_ctime(b)))
        .or_else(|| whole(scan_compact(b)));
    if let Some((c, _)) = civil {
        return match c.to_ns(zone) {
            Ok(ns) => Stamp::Ok(ns),
            Err(e) => Stamp::Invalid(e),
        };
    }
    if let Some((c, _)) = whole(scan_syslog(b)) {
        return match infer_year(c, zone, now_ns) {
            Ok(ns) => Stamp::Ok(ns),
            Err(e) => Stamp::Invalid(e),
        };
    }
    if !b.is_empty() && b.len() <= 19 && b.iter().all(u8::is_ascii_digit) {
        if let Some(ns) = t.parse::<i64>().ok().and_then(epoch_int) {
            return Stamp::Ok(ns);
        }
    }
    if !b.is_empty() && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        if let Some(ns) = t.parse::<f64>().ok().and_then(epoch_to_ns) {
            return Stamp::Ok(ns);
        }
    }
    Stamp::Unknown
}

#[cfg(test)]
mod tests;
