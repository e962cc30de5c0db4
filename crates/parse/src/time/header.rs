//! A text line's own time stamp, found in its header: at the start of the line, inside a
//! leading `[…]`, or after one leading token (a sequence number, a host, a file name, a
//! logger prefix, `-`), in the layouts widely used software writes:
//!
//! | layout | written by |
//! | --- | --- |
//! | `2024-01-15 10:30:00,123`, `2024-01-15T10:30:00.123Z`, `2024/01/15 10:30:00` | log4j, logback, Python, Go's `log`, most others |
//! | `2016-09-28 04:30:30,` (seconds, then a comma) | Windows CBS, Java |
//! | `17/06/09 20:10:40` (`yy/MM/dd HH:mm:ss`) | Hadoop, Spark, Kafka tools (log4j `%d{yy/MM/dd HH:mm:ss}`) |
//! | `03-17 16:13:38.811` (`MM-dd HH:mm:ss.SSS`, no year) | Android logcat `threadtime` and `time` |
//! | `I0115 10:30:00.123456` (no year) | glog, klog |
//! | `2005-06-03-15.42.50.675872`, `…-240` (offset in minutes) | IBM (DB2, Blue Gene) |
//! | `[10/Oct/2000:13:55:36 -0700]`, `[10.30 16:49:06]` (no year), `[2017-05-16 13:53:08]` | web servers, Proxifier, Kafka |
//! | `20171223-22:15:29:606`, `20171224-0:2:5:85` (`yyyyMMdd-H:m:s:SSS`, unpadded) | compact Android and embedded loggers |
//! | `240115 10:30:00`, `081109 203615`, `20240115T103000Z` | MySQL, HDFS, compact ISO |
//! | `Jun 14 15:16:01` (no year), `Sun Dec 04 04:47:44 2005` | syslog, ctime |
//! | `1705314600`, `1705314600.123`, `1705314600123` | epoch seconds or milliseconds, when plausible (after a leading token, only when that token is no lower-case word) |
//!
//! A stamp counts only where a token starts: a date inside a word (a rotated file's name
//! `app.log.2017-05-16_13:53:08`) is skipped for the stamp that follows it. A stamp without
//! a year is returned with year 0, for [`super::infer_year`].

use super::{
    digit, num, scan_clf, scan_compact, scan_ctime, scan_fraction, scan_hms, scan_iso, scan_syslog,
    Civil,
};

/// The longest leading token skipped to reach a time stamp, in bytes.
const MAX_LEAD: usize = 64;

/// 2000-01-01T00:00:00Z in seconds: epoch numbers before this are not taken as times.
const EPOCH_MIN_SECS: i64 = 946_684_800;

/// A time stamp found in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// A written date and time (year 0 when the layout has none).
    Civil(Civil),
    /// An epoch number, in nanoseconds.
    Epoch(i64),
}

/// Finds the stamp of a line's header: (stamp, its start, its end).
///
/// `now_ns` (the receive time) bounds the epoch numbers taken as times: from 2000 to a day
/// after it.
pub(crate) fn find(b: &[u8], now_ns: i64) -> Option<(Found, usize, usize)> {
    if let Some(hit) = at(b, 0, now_ns, true) {
        return Some(hit);
    }
    let lead = b
        .iter()
        .take(MAX_LEAD + 1)
        .position(|&c| c == b' ' || c == b'\t')?;
    if lead == 0 {
        return None;
    }
    let start = lead
        + b[lead..]
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
    // `user 1234567890 logged in` holds an id, not a time: an epoch number counts after a
    // leading token only when that token is no lower-case word (`-`, `42`, `KERNDTLB`).
    let epoch_ok = !b[..lead].iter().any(u8::is_ascii_lowercase);
    at(b, start, now_ns, epoch_ok)
}

/// Tries every layout at `i` (a token's start).
fn at(b: &[u8], i: usize, now_ns: i64, epoch_ok: bool) -> Option<(Found, usize, usize)> {
    let s = b.get(i..)?;
    let first = *s.first()?;
    if first == b'[' {
        let inner = &s[1..];
        let (c, n) = if inner.first()?.is_ascii_digit() {
            scan_iso(inner)
                .or_else(|| scan_clf(inner))
                .or_else(|| scan_month_day(inner, b'.'))
        } else {
            scan_ctime(inner)
        }?;
        return (inner.get(n) == Some(&b']')).then_some((Found::Civil(c), i + 1, i + 1 + n));
    }
    let hit = if first.is_ascii_digit() {
        return digits_first(s, now_ns, epoch_ok).map(|(f, n)| (f, i, i + n));
    } else if matches!(first, b'I' | b'W' | b'E' | b'F') {
        scan_glog(s)
            .or_else(|| scan_ctime(s))
            .or_else(|| scan_syslog(s))
    } else if first.is_ascii_alphabetic() {
        scan_ctime(s).or_else(|| scan_syslog(s))
    } else {
        None
    };
    hit.map(|(c, n)| (Found::Civil(c), i, i + n))
}

/// The layouts that start with a digit, told apart by where their separators are.
fn digits_first(s: &[u8], now_ns: i64, epoch_ok: bool) -> Option<(Found, usize)> {
    let civil = |r: Option<(Civil, usize)>| r.map(|(c, n)| (Found::Civil(c), n));
    match (s.get(2), s.get(4), s.get(8)) {
        (_, Some(b'-' | b'/'), _) => civil(scan_iso(s).or_else(|| scan_ibm(s))),
        (Some(b'/'), _, _) => civil(scan_clf(s).or_else(|| scan_yy_slash(s))),
        (Some(b'-'), _, _) => civil(scan_month_day(s, b'-')),
        (_, _, Some(b'-')) => civil(scan_compact_dash(s)),
        _ => civil(scan_compact(s)).or_else(|| epoch_ok.then(|| scan_epoch(s, now_ns)).flatten()),
    }
}

/// Requires that a stamp ends where its token does.
fn ends(s: &[u8], k: usize) -> bool {
    !s.get(k).is_some_and(u8::is_ascii_alphanumeric)
}

/// `17/06/09 20:10:40` (`yy/MM/dd HH:mm:ss`, years 2000 to 2099).
fn scan_yy_slash(s: &[u8]) -> Option<(Civil, usize)> {
    if s.get(2) != Some(&b'/') || s.get(5) != Some(&b'/') || s.get(8) != Some(&b' ') {
        return None;
    }
    let mut c = Civil {
        year: 2000 + num(s, 0, 2)? as i32,
        month: num(s, 3, 2)?,
        day: num(s, 6, 2)?,
        ..Civil::default()
    };
    let k = scan_hms(s, 9, &mut c)?;
    ends(s, k).then_some((c, k))
}

/// A year-less `MM<sep>dd HH:mm:ss[.SSS]`: logcat's `03-17 16:13:38.811` (`sep` `-`), or
/// `10.30 16:49:06` (`sep` `.`, inside brackets only).
fn scan_month_day(s: &[u8], sep: u8) -> Option<(Civil, usize)> {
    if s.get(2) != Some(&sep) || s.get(5) != Some(&b' ') {
        return None;
    }
    let mut c = Civil {
        month: num(s, 0, 2)?,
        day: num(s, 3, 2)?,
        ..Civil::default()
    };
    let k = scan_hms(s, 6, &mut c)?;
    (k >= 14 && ends(s, k)).then_some((c, k))
}

/// `I0115 10:30:00.123456` (glog and klog: a level letter, `MMdd`, the time; no year).
fn scan_glog(s: &[u8]) -> Option<(Civil, usize)> {
    if s.get(5) != Some(&b' ') {
        return None;
    }
    let mut c = Civil {
        month: num(s, 1, 2)?,
        day: num(s, 3, 2)?,
        ..Civil::default()
    };
    let k = scan_hms(s, 6, &mut c)?;
    (k >= 14 && ends(s, k)).then_some((c, k))
}

/// `2005-06-03-15.42.50.675872`, optionally with an offset in minutes (`-240`), as DB2 and
/// Blue Gene write.
fn scan_ibm(s: &[u8]) -> Option<(Civil, usize)> {
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'-'), (13, b'.'), (16, b'.')] {
        if s.get(at) != Some(&sep) {
            return None;
        }
    }
    let mut c = Civil {
        year: num(s, 0, 4)? as i32,
        month: num(s, 5, 2)?,
        day: num(s, 8, 2)?,
        hour: num(s, 11, 2)?,
        minute: num(s, 14, 2)?,
        second: num(s, 17, 2)?,
        ..Civil::default()
    };
    let (nanos, used) = scan_fraction(s, 19);
    c.nanos = nanos;
    let mut k = 19 + used;
    if let (Some(&sign @ (b'+' | b'-')), Some(m)) = (s.get(k), num(s, k + 1, 3)) {
        if digit(s, k + 4).is_none() && m <= 1440 {
            let m = m as i32 * 60;
            c.offset = Some(if sign == b'-' { -m } else { m });
            k += 4;
        }
    }
    ends(s, k).then_some((c, k))
}

/// Reads 1 to `max` digits at `i`: (value, digits read).
fn unpadded(s: &[u8], i: usize, max: usize) -> Option<(u32, usize)> {
    let n = s
        .get(i..)?
        .iter()
        .take(max)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n == 0 || digit(s, i + n).is_some() {
        return None;
    }
    Some((num(s, i, n)?, n))
}

/// `20171223-22:15:29:606` and `20171224-0:2:5:85` (`yyyyMMdd-H:m:s:SSS`, unpadded; the
/// last field is milliseconds, optional).
fn scan_compact_dash(s: &[u8]) -> Option<(Civil, usize)> {
    if s.get(8) != Some(&b'-') {
        return None;
    }
    let mut c = Civil {
        year: num(s, 0, 4)? as i32,
        month: num(s, 4, 2)?,
        day: num(s, 6, 2)?,
        ..Civil::default()
    };
    let mut k = 9;
    let mut parts = [0u32; 3];
    for (n, part) in parts.iter_mut().enumerate() {
        if n > 0 {
            if s.get(k) != Some(&b':') {
                return None;
            }
            k += 1;
        }
        let (v, used) = unpadded(s, k, 2)?;
        *part = v;
        k += used;
    }
    [c.hour, c.minute, c.second] = parts;
    if matches!(s.get(k), Some(b':' | b'.')) {
        if let Some((ms, used)) = unpadded(s, k + 1, 3) {
            c.nanos = ms * 1_000_000;
            k += 1 + used;
        }
    }
    ends(s, k).then_some((c, k))
}

/// An epoch number alone in its token: 10 digits of seconds (optionally with a fraction) or
/// 13 of milliseconds, from 2000 to a day after `now_ns`.
fn scan_epoch(s: &[u8], now_ns: i64) -> Option<(Found, usize)> {
    let n = s.iter().take(14).take_while(|c| c.is_ascii_digit()).count();
    let scale = match n {
        10 => 1_000_000_000,
        13 => 1_000_000,
        _ => return None,
    };
    let whole = s[..n]
        .iter()
        .fold(0i64, |v, c| v * 10 + i64::from(c - b'0'));
    let mut ns = whole.checked_mul(scale)?;
    let secs = ns.div_euclid(1_000_000_000);
    let max_secs = now_ns.div_euclid(1_000_000_000).saturating_add(86_400);
    if !(EPOCH_MIN_SECS..=max_secs).contains(&secs) {
        return None;
    }
    let mut k = n;
    if n == 10 && s.get(10) == Some(&b'.') {
        let (frac, used) = scan_fraction(s, 10);
        ns += i64::from(frac);
        k += used;
    }
    matches!(s.get(k), None | Some(b' ' | b'\t')).then_some((Found::Epoch(ns), k))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_705_363_200_000_000_000; // 2024-01-16T00:00:00Z

    fn civil(line: &str) -> (Civil, &str) {
        match find(line.as_bytes(), NOW) {
            Some((Found::Civil(c), s, e)) => (c, &line[s..e]),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn layouts() {
        let (c, t) = civil("17/06/09 20:10:40 INFO x: y");
        assert_eq!(
            (c.year, c.month, c.day, c.hour, t),
            (2017, 6, 9, 20, "17/06/09 20:10:40")
        );
        let (c, t) = civil("03-17 16:13:38.811  1702  2395 D W: x");
        assert_eq!(
            (c.year, c.month, c.nanos, t),
            (0, 3, 811_000_000, "03-17 16:13:38.811")
        );
        let (c, _) = civil("2007-05-18-14.20.46.973000-240 I1041A288 LEVEL: Info");
        assert_eq!(
            (c.hour, c.offset, c.nanos),
            (14, Some(-240 * 60), 973_000_000)
        );
        let (c, t) = civil("20171224-0:2:5:85|Step|1|x");
        assert_eq!((c.hour, c.minute, c.second, c.nanos), (0, 2, 5, 85_000_000));
        assert_eq!(t, "20171224-0:2:5:85");
        let (c, t) = civil("[10.30 16:49:06] chrome.exe - x");
        assert_eq!((c.month, c.day, t), (10, 30, "10.30 16:49:06"));
        let (c, _) = civil("W0115 10:30:00.500000 x.go:7] y");
        assert_eq!((c.month, c.day, c.nanos), (1, 15, 500_000_000));
        let (c, t) = civil("app.log.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO");
        assert_eq!((c.hour, t), (0, "2017-05-16 00:00:00.008"));
        let (c, _) = civil("Wed Jan 15 00:00:00 2003 x");
        assert_eq!((c.year, c.day), (2003, 15));
        let (c, _) = civil("myapp: 2009/11/10 23:00:00 hello");
        assert_eq!((c.year, c.hour), (2009, 23));
    }

    #[test]
    fn epochs_only_when_plausible() {
        let epoch = |l: &str| match find(l.as_bytes(), NOW) {
            Some((Found::Epoch(ns), ..)) => Some(ns),
            _ => None,
        };
        assert_eq!(epoch("1705314600 x"), Some(1_705_314_600_000_000_000));
        assert_eq!(epoch("1705314600.25 x"), Some(1_705_314_600_250_000_000));
        assert_eq!(epoch("1705314600123"), Some(1_705_314_600_123_000_000));
        assert_eq!(
            epoch("- 1131566461 2005.11.09 dn228"),
            Some(1_131_566_461_000_000_000)
        );
        assert_eq!(epoch("0000000001 x"), None);
        assert_eq!(epoch("9999999999 in the future"), None);
        assert_eq!(epoch("12345 items"), None);
        assert_eq!(epoch("1705314600x"), None);
        assert_eq!(
            epoch("KERNDTLB 1117869872 2005.06.04 R30"),
            Some(1_117_869_872_000_000_000)
        );
        assert_eq!(epoch("user 1234567890 logged in"), None);
    }

    #[test]
    fn not_stamps() {
        for line in [
            "",
            "12:00 worker",
            "10.30.1.2 16:49:06",
            "[10.30.1.2] x",
            "a b c 2024-01-15 10:30:00",
            "2024-01-15x10:30:00",
            "Info 99",
        ] {
            assert_eq!(find(line.as_bytes(), NOW), None, "{line}");
        }
    }
}
