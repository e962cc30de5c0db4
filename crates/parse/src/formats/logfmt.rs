//! logfmt: `ts=2024-01-15T10:30:00Z level=info msg="payment accepted" user=ana took=35ms`.
//!
//! A line is logfmt when every word is a `key=value` pair (values may be quoted), with at
//! least two pairs, or one pair whose key is a level or message alias.

use std::borrow::Cow;

use logyard_model::{Column, Record, Value};

use super::{Cx, Miss, Res, TIME_ERROR};
use crate::fields::{add_field, scalar};
use crate::level::set_level;
use crate::roles::{key_column, Dialect};
use crate::time::{parse_stamp_with, Stamp};

/// Splits a logfmt line into pairs; `None` when it is not logfmt.
fn pairs(line: &str) -> Option<Vec<(&str, Cow<'_, str>)>> {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(8);
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && !matches!(b[i], b' ' | b'=' | b'"') {
            i += 1;
        }
        let key = &line[ks..i];
        if key.is_empty()
            || b.get(i) != Some(&b'=')
            || !(key.as_bytes()[0].is_ascii_alphabetic()
                || key.as_bytes()[0] == b'_'
                || key.as_bytes()[0] == b'@')
        {
            return None;
        }
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let mut escaped = false;
            loop {
                match b.get(j)? {
                    b'\\' => {
                        escaped = true;
                        j += 2;
                    }
                    b'"' => break,
                    _ => j += 1,
                }
            }
            i = j + 1;
            if i < b.len() && b[i] != b' ' {
                return None;
            }
            let raw = line.get(start..j)?;
            if escaped {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            }
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                if b[i] == b'"' {
                    return None;
                }
                i += 1;
            }
            Cow::Borrowed(&line[vs..i])
        };
        out.push((key, value));
    }
    Some(out)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn is_level_key(k: &str) -> bool {
    key_column(k, Dialect::Logfmt) == Some(Column::Level)
}

fn is_message_key(k: &str) -> bool {
    key_column(k, Dialect::Logfmt) == Some(Column::Message)
}

/// Parses a logfmt line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let first = *line.as_bytes().first().ok_or(Miss::No)?;
    if !(first.is_ascii_alphabetic() || first == b'_' || first == b'@') {
        return Err(Miss::No);
    }
    let pairs = pairs(line).ok_or(Miss::No)?;
    let known = pairs
        .iter()
        .any(|(k, _)| is_level_key(k) || is_message_key(k));
    if pairs.len() < 2 && !known {
        return Err(Miss::No);
    }
    let (mut time, mut level, mut msg, mut agent, mut host) = (false, false, false, false, false);
    for (key, value) in pairs {
        let v: &str = &value;
        match key_column(key, Dialect::Logfmt) {
            Some(Column::Timestamp) if !time => {
                time = true;
                match parse_stamp_with(v, cx.time_format, cx.zone, cx.now) {
                    Stamp::Ok(ns) => rec.timestamp = ns,
                    Stamp::Invalid(reason) => {
                        rec.fields.insert(
                            TIME_ERROR.into(),
                            Value::Str(format!("invalid timestamp {v:?}: {reason}")),
                        );
                        rec.fields.insert(key.into(), Value::Str(v.to_string()));
                    }
                    Stamp::Unknown => {
                        rec.fields.insert(
                            TIME_ERROR.into(),
                            Value::Str(format!("unknown timestamp format {v:?}")),
                        );
                        rec.fields.insert(key.into(), Value::Str(v.to_string()));
                    }
                }
            }
            Some(Column::Level) if !level => {
                level = true;
                set_level(rec, v);
            }
            Some(Column::Message) if !msg => {
                msg = true;
                rec.message = value.into_owned();
            }
            Some(Column::Agent) if !agent => {
                agent = true;
                rec.agent = value.into_owned();
            }
            Some(Column::Host) if !host => {
                host = true;
                rec.host = value.into_owned();
            }
            _ => add_field(rec, key, scalar(v)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pairs() {
        let p = pairs(r#"a=1 b="x \"y\"" c="#).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].1, "x \"y\"");
        assert_eq!(p[2].1, "");
        assert!(pairs("user=bob logged in").is_none());
        assert!(pairs(r#"a="unterminated"#).is_none());
    }
}
