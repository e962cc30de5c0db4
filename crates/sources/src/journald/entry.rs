//! One journal entry, as `journalctl -o json` prints it, turned into a [`Record`].
//!
//! journalctl prints a field's value as a JSON string when it is printable UTF-8, as an
//! array of byte values otherwise, and as an array of those when the entry holds the field
//! more than once. Every form is read; bytes that are not UTF-8 are decoded lossily and the
//! record gets `invalid_utf8 = true`.

use logyard_model::{Level, Record, Value};
use logyard_parse::{LEVEL_RAW, TIME_ERROR};
use serde_json::{Map, Value as Json};

/// The journal fields kept as record fields, besides those of `keep_fields`.
pub const KEPT_FIELDS: [&str; 6] = [
    "_PID",
    "_SYSTEMD_UNIT",
    "_HOSTNAME",
    "_COMM",
    "SYSLOG_IDENTIFIER",
    "_TRANSPORT",
];

/// Fields kept as numbers when they are ones.
const NUMERIC_FIELDS: [&str; 3] = ["_PID", "_UID", "_GID"];

/// The agent of an entry that names no unit, identifier or command.
pub const DEFAULT_AGENT: &str = "journald";

/// How entries become records: what the source sets and keeps.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    /// The records' `source`.
    pub source: String,
    /// The host of entries without `_HOSTNAME`.
    pub host: String,
    /// Longer messages are cut at a character boundary and get `truncated = true`.
    pub max_message_bytes: usize,
    /// More journal fields to keep, by name.
    pub keep_fields: Vec<String>,
}

/// A decoded entry: its record and its cursor (the position to go on from).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    /// The record.
    pub record: Record,
    /// The entry's `__CURSOR`, if journalctl printed one.
    pub cursor: Option<String>,
}

/// Decodes one line of `journalctl -o json`; an error says why the line is not an entry.
/// `received_ns` is the time of entries without a valid `__REALTIME_TIMESTAMP`.
pub(crate) fn decode(line: &[u8], m: &Mapping, received_ns: i64) -> Result<Decoded, String> {
    let obj: Map<String, Json> = serde_json::from_slice(line)
        .map_err(|e| format!("journalctl printed a line that is not a JSON object: {e}"))?;
    let mut invalid_utf8 = false;
    let mut text = |key: &str| -> Option<String> {
        let (t, lossy) = text_of(obj.get(key)?)?;
        invalid_utf8 |= lossy;
        Some(t)
    };
    let mut rec = Record::default();

    match text("__REALTIME_TIMESTAMP").map(|t| parse_realtime(&t)) {
        Some(Ok(ns)) => rec.timestamp = ns,
        Some(Err(e)) => {
            rec.timestamp = received_ns;
            rec.fields.insert(TIME_ERROR.into(), Value::Str(e));
        }
        None => {
            rec.timestamp = received_ns;
            rec.fields.insert(
                TIME_ERROR.into(),
                Value::Str("the entry has no __REALTIME_TIMESTAMP".into()),
            );
        }
    }

    if let Some(p) = text("PRIORITY") {
        match p
            .trim()
            .parse::<u8>()
            .ok()
            .and_then(Level::from_syslog_severity)
        {
            Some(level) => rec.level = Some(level),
            None => {
                rec.fields.insert(LEVEL_RAW.into(), Value::Str(p));
            }
        }
    }

    let mut message = text("MESSAGE").unwrap_or_default();
    if message.len() > m.max_message_bytes {
        let mut cut = m.max_message_bytes;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        rec.fields.insert("truncated".into(), Value::Bool(true));
    }
    rec.message = message;

    let unit = text("_SYSTEMD_UNIT");
    rec.agent = unit
        .as_deref()
        .map(|u| u.strip_suffix(".service").unwrap_or(u).to_string())
        .filter(|u| !u.is_empty())
        .or_else(|| text("SYSLOG_IDENTIFIER").filter(|s| !s.is_empty()))
        .or_else(|| text("_COMM").filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_AGENT.to_string());
    rec.host = text("_HOSTNAME")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| m.host.clone());
    rec.source = m.source.clone();

    let extra = m.keep_fields.iter().map(String::as_str);
    for key in KEPT_FIELDS.into_iter().chain(extra) {
        if rec.fields.contains_key(key) {
            continue;
        }
        let Some(v) = text(key) else { continue };
        let value = match v.parse::<i64>() {
            Ok(n) if NUMERIC_FIELDS.contains(&key) => Value::Int(n),
            _ => Value::Str(v),
        };
        rec.fields.insert(key.to_string(), value);
    }
    let cursor = match obj.get("__CURSOR") {
        Some(Json::String(c)) => Some(c.clone()),
        _ => None,
    };
    if invalid_utf8 {
        rec.fields.insert("invalid_utf8".into(), Value::Bool(true));
    }
    Ok(Decoded {
        record: rec,
        cursor,
    })
}

/// Returns a field's text and whether bytes were decoded lossily; `None` for `null` (a
/// value journalctl left out) and other JSON that is no journal value.
fn text_of(v: &Json) -> Option<(String, bool)> {
    match v {
        Json::String(s) => Some((s.clone(), false)),
        Json::Number(n) => Some((n.to_string(), false)),
        Json::Array(items) if items.iter().all(Json::is_number) => {
            let bytes: Option<Vec<u8>> = items
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            let bytes = bytes?;
            match String::from_utf8(bytes) {
                Ok(s) => Some((s, false)),
                Err(e) => Some((String::from_utf8_lossy(e.as_bytes()).into_owned(), true)),
            }
        }
        // The field appears more than once in the entry: its values, one per line.
        Json::Array(items) => {
            let mut lossy = false;
            let parts: Vec<String> = items
                .iter()
                .filter_map(|i| match i {
                    Json::Array(_) | Json::String(_) | Json::Number(_) => text_of(i),
                    _ => None,
                })
                .map(|(t, l)| {
                    lossy |= l;
                    t
                })
                .collect();
            (!parts.is_empty()).then(|| (parts.join("\n"), lossy))
        }
        _ => None,
    }
}

/// Parses `__REALTIME_TIMESTAMP` (µs since the epoch) into ns.
fn parse_realtime(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .and_then(|us| us.checked_mul(1000))
        .and_then(|ns| i64::try_from(ns).ok())
        .ok_or_else(|| format!("invalid __REALTIME_TIMESTAMP {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    fn mapping() -> Mapping {
        Mapping {
            source: "journald".into(),
            host: "this-host".into(),
            max_message_bytes: 1 << 20,
            keep_fields: Vec::new(),
        }
    }

    fn one(line: &str) -> Decoded {
        decode(line.as_bytes(), &mapping(), 42).unwrap()
    }

    #[test]
    fn maps_an_entry_to_a_record() {
        let d = one(
            r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1767225600123456","PRIORITY":"3",
                "MESSAGE":"upstream timed out","_SYSTEMD_UNIT":"nginx.service","_HOSTNAME":"web-1",
                "_PID":"812","_COMM":"nginx","SYSLOG_IDENTIFIER":"nginx","_TRANSPORT":"stdout",
                "_UID":"33","CODE_FILE":"x.c"}"#,
        );
        let r = &d.record;
        assert_eq!(d.cursor.as_deref(), Some("s=1;i=2"));
        assert_eq!(r.timestamp, 1_767_225_600_123_456_000);
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.message, "upstream timed out");
        assert_eq!(r.agent, "nginx");
        assert_eq!(r.host, "web-1");
        assert_eq!(r.source, "journald");
        assert_eq!(r.fields["_PID"], Value::Int(812));
        assert_eq!(
            r.fields["_SYSTEMD_UNIT"],
            Value::Str("nginx.service".into())
        );
        assert_eq!(r.fields["_HOSTNAME"], Value::Str("web-1".into()));
        assert_eq!(r.fields["_COMM"], Value::Str("nginx".into()));
        assert_eq!(r.fields["SYSLOG_IDENTIFIER"], Value::Str("nginx".into()));
        assert_eq!(r.fields["_TRANSPORT"], Value::Str("stdout".into()));
        assert!(!r.fields.contains_key("_UID"), "not kept unless asked");
        assert!(!r.fields.contains_key("CODE_FILE"));
    }

    #[test]
    fn maps_every_priority_as_syslog_severities() {
        let want = [
            (0, Level::Critical),
            (1, Level::Critical),
            (2, Level::Critical),
            (3, Level::Error),
            (4, Level::Warning),
            (5, Level::Info),
            (6, Level::Info),
            (7, Level::Debug),
        ];
        for (p, level) in want {
            let d = one(&format!(r#"{{"PRIORITY":"{p}","MESSAGE":"m"}}"#));
            assert_eq!(d.record.level, Some(level), "priority {p}");
            assert_eq!(d.record.level, Level::from_syslog_severity(p));
        }
        let d = one(r#"{"PRIORITY":"9","MESSAGE":"m"}"#);
        assert_eq!(d.record.level, None);
        assert_eq!(d.record.fields[LEVEL_RAW], Value::Str("9".into()));
        let d = one(r#"{"MESSAGE":"m"}"#);
        assert_eq!(d.record.level, None);
        assert!(!d.record.fields.contains_key(LEVEL_RAW));
    }

    #[test]
    fn reads_a_message_given_as_bytes() {
        // "caf\xc3\xa9" is UTF-8; "\xff" is not.
        let d = one(r#"{"MESSAGE":[99,97,102,195,169,10,120]}"#);
        assert_eq!(d.record.message, "café\nx");
        assert!(!d.record.fields.contains_key("invalid_utf8"));
        let d = one(r#"{"MESSAGE":[111,107,255,33]}"#);
        assert_eq!(d.record.message, "ok\u{fffd}!");
        assert_eq!(d.record.fields["invalid_utf8"], Value::Bool(true));
        // A field given twice, one value of them bytes.
        let d = one(r#"{"MESSAGE":["one",[116,119,111]]}"#);
        assert_eq!(d.record.message, "one\ntwo");
        // Not bytes: values above 255 are no journal value.
        let d = one(r#"{"MESSAGE":[300]}"#);
        assert_eq!(d.record.message, "");
    }

    #[test]
    fn fills_what_is_missing() {
        let d = one("{}");
        let r = &d.record;
        assert_eq!(d.cursor, None);
        assert_eq!(r.timestamp, 42);
        assert!(r.fields.contains_key(TIME_ERROR));
        assert_eq!(r.message, "");
        assert_eq!(r.agent, DEFAULT_AGENT);
        assert_eq!(r.host, "this-host");
        assert_eq!(r.level, None);
        // Without a unit: the identifier, then the command.
        let d = one(r#"{"SYSLOG_IDENTIFIER":"kernel","_COMM":"x"}"#);
        assert_eq!(d.record.agent, "kernel");
        let d = one(r#"{"_COMM":"cron","_SYSTEMD_UNIT":""}"#);
        assert_eq!(d.record.agent, "cron");
        let d = one(r#"{"_SYSTEMD_UNIT":"session-3.scope","MESSAGE":null}"#);
        assert_eq!(d.record.agent, "session-3.scope");
        assert_eq!(d.record.message, "");
        let d = one(r#"{"__REALTIME_TIMESTAMP":"99999999999999999999"}"#);
        assert_eq!(d.record.timestamp, 42);
        assert!(d.record.fields[TIME_ERROR].to_string().contains("invalid"));
    }

    #[test]
    fn refuses_lines_that_are_not_entries_without_panicking() {
        for line in [
            &b"not json"[..],
            b"",
            b"[1,2]",
            b"{\"MESSAGE\":",
            b"\xff\xfe",
            b"null",
        ] {
            let err = decode(line, &mapping(), 0).unwrap_err();
            assert!(err.contains("not a JSON object"), "{err}");
        }
    }

    #[test]
    fn cuts_long_messages_and_keeps_asked_fields() {
        let mut m = mapping();
        m.max_message_bytes = 4;
        m.keep_fields = vec!["_UID".into(), "CONTAINER_NAME".into(), "_PID".into()];
        let d = decode(
            r#"{"MESSAGE":"ééé","_UID":"0","CONTAINER_NAME":"web","_PID":"x"}"#.as_bytes(),
            &m,
            0,
        )
        .unwrap();
        assert_eq!(d.record.message, "éé");
        assert_eq!(d.record.fields["truncated"], Value::Bool(true));
        assert_eq!(d.record.fields["_UID"], Value::Int(0));
        assert_eq!(d.record.fields["CONTAINER_NAME"], Value::Str("web".into()));
        assert_eq!(d.record.fields["_PID"], Value::Str("x".into()));
    }

    proptest::proptest! {
        #[test]
        fn any_line_decodes_or_is_refused_without_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)
        ) {
            let _ = decode(&bytes, &mapping(), 0);
        }

        #[test]
        fn any_object_of_journal_values_becomes_a_record(
            fields in proptest::collection::btree_map(
                proptest::sample::select(vec![
                    "MESSAGE", "PRIORITY", "__REALTIME_TIMESTAMP", "_PID", "_SYSTEMD_UNIT",
                    "_HOSTNAME", "SYSLOG_IDENTIFIER", "__CURSOR",
                ]),
                proptest::prop_oneof![
                    ".{0,40}".prop_map(Json::String),
                    proptest::collection::vec(0u64..400, 0..40)
                        .prop_map(|v| Json::Array(v.into_iter().map(Json::from).collect())),
                    proptest::num::i64::ANY.prop_map(Json::from),
                    proptest::strategy::Just(Json::Null),
                ],
                0..8,
            )
        ) {
            let mut m = mapping();
            m.max_message_bytes = 16;
            let line = serde_json::to_vec(&fields).unwrap();
            let d = decode(&line, &m, 7).unwrap();
            proptest::prop_assert!(d.record.message.len() <= 16);
            proptest::prop_assert!(!d.record.agent.is_empty());
            proptest::prop_assert!(!d.record.host.is_empty());
        }
    }
}
