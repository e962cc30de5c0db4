//! One file per line format. Each parser reads one (already framed, decoded and redacted)
//! line into a [`Record`] or says it does not match, so that detection can try the next.

pub(crate) mod access;
pub(crate) mod apache_error;
pub(crate) mod cri;
pub(crate) mod django;
pub(crate) mod docker;
pub(crate) mod json;
pub(crate) mod klog;
pub(crate) mod logfmt;
pub(crate) mod nginx_error;
pub(crate) mod plain;
pub(crate) mod python;
pub(crate) mod rfc3164;
pub(crate) mod rfc5424;
pub(crate) mod stamped;

use logyard_model::{Record, Value};

use crate::time::custom::TimeFormat;
use crate::time::{Civil, TimeZone};

/// The field that says why a line's time was not used.
pub const TIME_ERROR: &str = "time_error";

/// What a format parser needs besides the line.
pub(crate) struct Cx<'a> {
    /// The zone of zone-less stamps.
    pub zone: TimeZone,
    /// The receive time: the default timestamp and "now" for syslog's missing year.
    pub now: i64,
    /// The agent when the line names none (the file's stem).
    pub agent_hint: &'a str,
    /// The agent of access-log lines when there is no hint (`nginx` or `apache`).
    pub access_agent: &'static str,
    /// The configured layout of time stamps (`timestamp_format`), tried before detection.
    pub time_format: Option<&'a TimeFormat>,
}

/// Why a parser did not produce a record.
#[derive(Debug)]
pub(crate) enum Miss {
    /// Not this format: try the next.
    No,
    /// This format, but broken: the line becomes plain text with `field` = `reason`.
    Bad(&'static str, String),
}

/// The result of a format parser.
pub(crate) type Res = Result<(), Miss>;

/// Sets the record's time from a scanned stamp; an impossible date is a [`Miss::Bad`].
pub(crate) fn set_time(rec: &mut Record, c: &Civil, text: &[u8], cx: &Cx) -> Res {
    match c.to_ns(cx.zone) {
        Ok(ns) => {
            rec.timestamp = ns;
            Ok(())
        }
        Err(reason) => Err(bad_time(text, reason)),
    }
}

/// Builds the [`Miss::Bad`] of an impossible stamp.
pub(crate) fn bad_time(text: &[u8], reason: &str) -> Miss {
    Miss::Bad(
        TIME_ERROR,
        format!(
            "invalid timestamp {:?}: {reason}",
            String::from_utf8_lossy(text)
        ),
    )
}

/// Sets the message of a syslog line. A message that is a JSON object is read like a JSON
/// line: its keys override the header's time, level, agent and host, its message becomes
/// the message, its other keys become fields. Any other message (or one whose JSON is
/// broken) is text, from which `key=value` pairs and the like are extracted.
pub(crate) fn syslog_message(rec: &mut Record, msg: &str, cx: &Cx) {
    rec.message = msg.to_string();
    let body = msg.trim_end();
    if body.starts_with('{') && body.ends_with('}') {
        let mut inner = rec.clone();
        // The severity's name (`notice`) stays only while the header's level does.
        let severity = inner.fields.remove(crate::level::LEVEL_RAW);
        if json::parse(body, &mut inner, cx).is_ok() {
            if let Some(raw) = severity.filter(|_| inner.level == rec.level) {
                inner
                    .fields
                    .entry(crate::level::LEVEL_RAW.into())
                    .or_insert(raw);
            }
            *rec = inner;
            return;
        }
    }
    crate::fields::extract(rec, msg);
}

/// Returns the text up to the next space and the rest after it.
pub(crate) fn word(s: &str) -> (&str, &str) {
    match memchr::memchr(b' ', s.as_bytes()) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// Returns a pid or thread id as an integer when it is one, else as text.
pub(crate) fn id_value(s: &str) -> Value {
    match s.parse::<i64>() {
        Ok(i) if !s.starts_with('0') || s == "0" => Value::Int(i),
        _ => Value::Str(s.to_string()),
    }
}

/// Returns true for an upper-case level word as loggers print it (`INFO`, `WARNING`, …).
pub(crate) fn is_level_word(s: &str) -> bool {
    (3..=8).contains(&s.len())
        && s.bytes().all(|c| c.is_ascii_uppercase())
        && crate::level::normalize(s).is_some()
}

/// Splits at the first ` - ` (faster than `str::split_once` for this short needle).
pub(crate) fn split_dash(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'-', &b[from..]) {
        let i = from + i;
        if i > 0 && b[i - 1] == b' ' && b.get(i + 1) == Some(&b' ') {
            return Some((&s[..i - 1], &s[i + 2..]));
        }
        from = i + 1;
    }
    None
}
