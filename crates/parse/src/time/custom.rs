//! Time stamps in a layout the configuration gives (`timestamp_format`, strftime syntax as
//! chrono reads it), for what detection cannot know.

use std::fmt;
use std::str::FromStr;

use chrono::format::{parse_and_remainder, Fixed, Item, Numeric, Parsed, StrftimeItems};
use chrono::{Datelike as _, Timelike as _};

use super::header::Found;
use super::Civil;
use crate::error::ParseError;

/// A time stamp layout in strftime syntax (`%d.%m.%Y %H:%M:%S`, `%s` for epoch seconds).
///
/// A layout without a year (`%m-%d %H:%M:%S`) gets one as syslog's stamps do: the latest
/// that does not put the time in the future.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    text: String,
    items: Vec<Item<'static>>,
}

impl PartialEq for TimeFormat {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for TimeFormat {}

impl FromStr for TimeFormat {
    type Err = ParseError;

    /// Checks the layout: valid strftime, with a day, a month and an hour, or an epoch
    /// number.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseError::TimeFormat {
            text: s.to_string(),
            reason: reason.to_string(),
        };
        let items = StrftimeItems::new(s)
            .parse_to_owned()
            .map_err(|_| err("it holds an unknown or incomplete % specifier"))?;
        let timed = items.iter().any(|i| {
            matches!(
                i,
                Item::Numeric(Numeric::Hour | Numeric::Hour12 | Numeric::Timestamp, _)
                    | Item::Fixed(Fixed::RFC3339 | Fixed::RFC2822)
            )
        });
        if !timed {
            return Err(err("it has no hour (%H, %I, %T) nor epoch seconds (%s)"));
        }
        let has = |want: fn(&Item) -> bool| items.iter().any(want);
        let whole = has(|i| {
            matches!(
                i,
                Item::Numeric(Numeric::Timestamp | Numeric::Ordinal, _)
                    | Item::Fixed(Fixed::RFC3339 | Fixed::RFC2822)
            )
        });
        let day = has(|i| matches!(i, Item::Numeric(Numeric::Day, _)));
        let month = has(|i| {
            matches!(
                i,
                Item::Numeric(Numeric::Month, _)
                    | Item::Fixed(Fixed::ShortMonthName | Fixed::LongMonthName)
            )
        });
        if !(whole || (day && month)) {
            return Err(err(
                "it has no day (%d, %e) and month (%m, %b): times of day alone are not read",
            ));
        }
        Ok(TimeFormat {
            text: s.to_string(),
            items,
        })
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TimeFormat {
    /// Reads a stamp at the start of `s`: (stamp, bytes used).
    pub(crate) fn scan(&self, s: &str) -> Option<(Found, usize)> {
        let mut p = Parsed::new();
        let rest = parse_and_remainder(&mut p, s, self.items.iter()).ok()?;
        let used = s.len() - rest.len();
        if used == 0 || rest.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return None;
        }
        Some((found(&p)?, used))
    }

    /// Reads a whole text (a field's value) as a stamp.
    pub(crate) fn whole(&self, s: &str) -> Option<Found> {
        let t = s.trim();
        self.scan(t)
            .filter(|(_, used)| *used == t.len())
            .map(|(f, _)| f)
    }

    /// Finds the stamp in a text line's header: at its start, inside a leading `[`, or after
    /// one leading token. Returns (stamp, start, end).
    pub(crate) fn find(&self, line: &str) -> Option<(Found, usize, usize)> {
        let try_at = |i: usize| {
            let s = line.get(i..)?;
            if let Some((f, n)) = self.scan(s) {
                return Some((f, i, i + n));
            }
            let inner = s.strip_prefix('[')?;
            self.scan(inner).map(|(f, n)| (f, i + 1, i + 1 + n))
        };
        if let Some(hit) = try_at(0) {
            return Some(hit);
        }
        let lead = line
            .bytes()
            .take(65)
            .position(|c| c == b' ' || c == b'\t')?;
        let start = lead + line[lead..].len() - line[lead..].trim_start().len();
        (lead > 0).then(|| try_at(start)).flatten()
    }
}

/// Turns what chrono read into a stamp; a missing year is 0 (inferred later).
fn found(p: &Parsed) -> Option<Found> {
    if let Some(secs) = p.timestamp() {
        let nanos = i64::from(p.nanosecond().unwrap_or(0));
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(nanos))
            .map(Found::Epoch);
    }
    // An impossible date keeps its numbers, for `Civil::to_ns` to say what is wrong.
    let (year, month, day) = match p.to_naive_date() {
        Ok(d) => (d.year(), d.month(), d.day()),
        Err(_) => {
            let year = p.year().or_else(|| {
                p.year_mod_100()
                    .map(|y| if y < 70 { 2000 + y } else { 1900 + y })
            });
            (year.unwrap_or(0), p.month()?, p.day()?)
        }
    };
    let time = p.to_naive_time().ok()?;
    Some(Found::Civil(Civil {
        year,
        month,
        day,
        hour: time.hour(),
        minute: time.minute(),
        second: time.second(),
        nanos: time.nanosecond().min(999_999_999),
        offset: p.offset(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_layout() {
        let f: TimeFormat = "%d.%m.%Y %H:%M:%S%.f".parse().unwrap();
        let Some((Found::Civil(c), 23)) = f.scan("16.05.2017 13:53:08.250 x") else {
            panic!("no stamp");
        };
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.nanos),
            (2017, 5, 16, 13, 250_000_000)
        );
        let f: TimeFormat = "%m/%d %H:%M:%S".parse().unwrap();
        let Some((Found::Civil(c), 6, 20)) = f.find("node7 02/29 10:00:00 up") else {
            panic!("no stamp after a leading token");
        };
        assert_eq!((c.year, c.month, c.day), (0, 2, 29));
        let f: TimeFormat = "%s".parse().unwrap();
        assert_eq!(
            f.whole("1705314600"),
            Some(Found::Epoch(1_705_314_600_000_000_000))
        );
        assert_eq!(f.whole("1705314600 x"), None);
    }

    #[test]
    fn refuses_bad_layouts() {
        for bad in ["%Y-%m-%d", "%Q %H", "", "%H:%M:%S%.3f", "%d %H:%M"] {
            let e = bad.parse::<TimeFormat>().unwrap_err().to_string();
            assert!(e.contains("strftime"), "{e}");
        }
    }
}
