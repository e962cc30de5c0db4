//! Native JSON entries: the body of `POST /api/logs` (one entry, an array, or NDJSON) and
//! the input of `logyard ingest`, decoded into records; a bad entry is rejected alone with
//! its index and reason.

use std::borrow::Cow;
use std::fmt;

use logyard_model::{parse_time, Column, Fields, Level, Record, Value};
use logyard_parse::{key_column, Dialect, JsonStr, LEVEL_RAW};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::limits::{for_each_element, Budget, ElementsError, OverLimit};

/// Settings of entry decoding.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// An entry larger than this (bytes of its JSON text) is rejected.
    pub max_line_bytes: usize,
    /// Keep the entry's JSON text as `raw`.
    pub keep_raw: bool,
    /// The `source` of entries that do not name one.
    pub default_source: String,
}

/// A rejected entry: its index in the body and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 0-based index of the entry (array element or NDJSON line).
    pub index: usize,
    /// What was wrong.
    pub reason: String,
    /// A fixed code for metrics: `invalid_json`, `invalid_entry`, `too_large`, `expired`.
    pub kind: &'static str,
}

/// A decoded body.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The accepted entries as records.
    pub records: Vec<Record>,
    /// The rejected ones.
    pub rejected: Vec<Rejection>,
}

impl Decoded {
    /// Records as rejections the entries behind the records refused after decoding
    /// (`refused`: ascending indices among [`Decoded::records`] as they were before being
    /// removed), at their index in the body; keeps [`Decoded::rejected`] in body order.
    pub fn refuse(&mut self, refused: &[usize], kind: &'static str, reason: &str) {
        let mut already = self.rejected.iter().map(|r| r.index).peekable();
        let mut refused = refused.iter().peekable();
        let mut index = 0;
        let mut record = 0;
        let mut added = Vec::with_capacity(refused.len());
        while let Some(&&want) = refused.peek() {
            // Skip the body indices that were rejected while decoding: they have no record.
            if already.peek() == Some(&index) {
                already.next();
            } else {
                if record == want {
                    added.push(Rejection {
                        index,
                        reason: reason.to_string(),
                        kind,
                    });
                    refused.next();
                }
                record += 1;
            }
            index += 1;
        }
        self.rejected.extend(added);
        self.rejected.sort_by_key(|r| r.index);
    }
}

/// Why a whole body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON or NDJSON at all (`400 invalid_json`).
    Invalid(String),
    /// Over a limit of `[limits]` (`413`), found while decoding.
    OverLimit(OverLimit),
}

/// Decodes a body without limits on its entries (see [`decode_body_within`]).
pub fn decode_body(
    body: &[u8],
    ndjson: bool,
    opts: &IngestOptions,
    now: i64,
) -> Result<Decoded, BodyError> {
    decode_body_within(body, ndjson, opts, &mut Budget::unlimited(), now)
}

/// Decodes a body: NDJSON when `ndjson` is set or when it is not one JSON document but
/// has several lines; else one entry or an array of entries. Invalid UTF-8 is replaced by
/// U+FFFD and the entries are flagged with the field `invalid_utf8: true`.
///
/// Entries are read one at a time and counted against `budget` as they are read: the
/// body is refused as soon as it holds too many entries or they decode to too many
/// bytes. An entry whose text is over `max_line_bytes` is rejected without being decoded.
pub fn decode_body_within(
    body: &[u8],
    ndjson: bool,
    opts: &IngestOptions,
    budget: &mut Budget,
    now: i64,
) -> Result<Decoded, BodyError> {
    let (text, lossy) = match std::str::from_utf8(body) {
        Ok(t) => (std::borrow::Cow::Borrowed(t), false),
        Err(_) => (String::from_utf8_lossy(body), true),
    };
    let mut out = Decoded::default();
    if !ndjson {
        match one_value(&text) {
            Ok(()) => {
                let value = text.trim();
                if value.starts_with('[') {
                    let read = for_each_element(value, |i, raw| {
                        budget.entry()?;
                        let item = raw.get();
                        if item.len() > opts.max_line_bytes {
                            out.rejected.push(Rejection {
                                index: i,
                                reason: too_large(item.len(), opts),
                                kind: "too_large",
                            });
                            return Ok(());
                        }
                        push_text(&mut out, i, item, None, lossy, opts, budget, now)
                    });
                    return match read {
                        Ok(()) => Ok(out),
                        Err(ElementsError::Stopped(e)) => Err(BodyError::OverLimit(e)),
                        Err(ElementsError::Json(e)) => Err(BodyError::Invalid(format!(
                            "the body is not JSON ({e}); send an entry object, an array of them, or NDJSON"
                        ))),
                    };
                }
                budget.entry().map_err(BodyError::OverLimit)?;
                if value.len() > opts.max_line_bytes {
                    out.rejected.push(Rejection {
                        index: 0,
                        reason: too_large(value.len(), opts),
                        kind: "too_large",
                    });
                    return Ok(out);
                }
                push_text(&mut out, 0, value, None, lossy, opts, budget, now)
                    .map_err(BodyError::OverLimit)?;
                return Ok(out);
            }
            Err(e) if text.trim_end().lines().nth(1).is_none() => {
                return Err(BodyError::Invalid(format!(
                    "the body is not JSON ({e}); send an entry object, an array of them, or NDJSON"
                )))
            }
            Err(_) => {}
        }
    }
    let mut parsed_any = false;
    let mut first_error = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        budget.entry().map_err(BodyError::OverLimit)?;
        if line.len() > opts.max_line_bytes {
            out.rejected.push(Rejection {
                index: i,
                reason: too_large(line.len(), opts),
                kind: "too_large",
            });
            continue;
        }
        if let Some(entry) = read_entry(line) {
            // An object read without building a `serde_json::Value`: the same record.
            parsed_any = true;
            let record = record_of(entry, Some(line), opts, now);
            push_counted(&mut out, i, record, lossy, budget).map_err(BodyError::OverLimit)?;
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(value) => {
                parsed_any = true;
                let record = entry_to_record(value, Some(line), opts, now);
                push_counted(&mut out, i, record, lossy, budget).map_err(BodyError::OverLimit)?;
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
                out.rejected.push(Rejection {
                    index: i,
                    reason: format!("line {} is not JSON: {e}", i + 1),
                    kind: "invalid_json",
                });
            }
        }
    }
    if !parsed_any && out.rejected.iter().all(|r| r.kind == "invalid_json") {
        if let Some(e) = first_error {
            return Err(BodyError::Invalid(format!(
                "the body is not JSON or NDJSON ({e}); send an entry object, an array of them, or one object per line"
            )));
        }
    }
    Ok(out)
}

/// Checks that a text is exactly one JSON value, without building it.
fn one_value(text: &str) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::IgnoredAny::deserialize(&mut de)?;
    de.end()
}

/// Decodes one entry's JSON text and adds it, accepted or rejected, to `out`.
#[allow(clippy::too_many_arguments)]
fn push_text(
    out: &mut Decoded,
    index: usize,
    item: &str,
    text: Option<&str>,
    lossy: bool,
    opts: &IngestOptions,
    budget: &mut Budget,
    now: i64,
) -> Result<(), OverLimit> {
    let record = match read_entry(item) {
        Some(entry) => record_of(entry, text, opts, now),
        None => match serde_json::from_str::<serde_json::Value>(item) {
            Ok(value) => entry_to_record(value, text, opts, now),
            Err(e) => Err(("invalid_json", format!("entry is not JSON: {e}"))),
        },
    };
    push_counted(out, index, record, lossy, budget)
}

/// Adds a decoded entry to `out`, counting an accepted one's size against the budget.
fn push_counted(
    out: &mut Decoded,
    index: usize,
    result: Result<Record, (&'static str, String)>,
    lossy: bool,
    budget: &mut Budget,
) -> Result<(), OverLimit> {
    if let Ok(r) = &result {
        budget.decoded(r.approx_size())?;
    }
    push_result(out, index, result, lossy);
    Ok(())
}

fn too_large(len: usize, opts: &IngestOptions) -> String {
    format!(
        "entry is {len} bytes, over the limit of {} (setting limits.max_line_bytes)",
        opts.max_line_bytes
    )
}

fn push_result(
    out: &mut Decoded,
    index: usize,
    result: Result<Record, (&'static str, String)>,
    lossy: bool,
) {
    match result {
        Ok(mut record) => {
            if lossy {
                record
                    .fields
                    .insert("invalid_utf8".into(), Value::Bool(true));
            }
            out.records.push(record);
        }
        Err((kind, reason)) => out.rejected.push(Rejection {
            index,
            reason,
            kind,
        }),
    }
}

/// Turns one JSON entry into a record (see `API.md`): `message` is required; `timestamp`
/// defaults to `now`, `source` to the default; `metadata` and unknown keys become fields.
pub fn entry_to_record(
    value: serde_json::Value,
    text: Option<&str>,
    opts: &IngestOptions,
    now: i64,
) -> Result<Record, (&'static str, String)> {
    let serde_json::Value::Object(map) = value else {
        return Err(("invalid_entry", "entry is not a JSON object".into()));
    };
    let entry = map
        .into_iter()
        .map(|(k, v)| (Cow::Owned(k), EntryValue::from_json(v)))
        .collect();
    record_of(entry, text, opts, now)
}

/// The record of an entry's keys in sorted order, each once (as a `serde_json` object holds
/// them: where aliases meet, the one sorted last wins, as `ts` over `timestamp`).
fn record_of(
    entry: Vec<(Cow<'_, str>, EntryValue<'_>)>,
    text: Option<&str>,
    opts: &IngestOptions,
    now: i64,
) -> Result<Record, (&'static str, String)> {
    let mut record = Record::new(now, "");
    record.source = opts.default_source.clone();
    let mut have_message = false;
    let mut fields = Fields::new();
    for (key, value) in entry {
        match key_column(&key, Dialect::Entry) {
            Some(Column::Message) if !have_message => {
                if value.is_null() {
                    continue;
                }
                record.message = value.into_text();
                have_message = true;
            }
            Some(Column::Timestamp) => {
                record.timestamp = match value {
                    EntryValue::Null => now,
                    EntryValue::Str(s) => parse_time(&s, now)
                        .map_err(|e| ("invalid_entry", format!("invalid timestamp: {e}")))?,
                    EntryValue::Num(n) => parse_time(&n.to_string(), now)
                        .map_err(|e| ("invalid_entry", format!("invalid timestamp: {e}")))?,
                    EntryValue::BigInt(n) => parse_time(&n, now)
                        .map_err(|e| ("invalid_entry", format!("invalid timestamp: {e}")))?,
                    other => {
                        return Err((
                            "invalid_entry",
                            format!(
                                "invalid timestamp {}: expected an RFC 3339 string or epoch number",
                                other.into_text()
                            ),
                        ))
                    }
                };
            }
            Some(Column::Level) => {
                if value.is_null() {
                    continue;
                }
                let name = value.into_text();
                match Level::normalize(&name) {
                    Some(l) => record.level = Some(l),
                    None => {
                        fields.insert(LEVEL_RAW.into(), Value::Str(name));
                    }
                }
            }
            Some(Column::Agent) => record.agent = value.into_text(),
            Some(Column::Host) => record.host = value.into_text(),
            Some(Column::Source) => record.source = value.into_text(),
            // The original line, as a shipper or `logyard ingest` read it.
            Some(Column::Raw) if matches!(value, EntryValue::Str(_)) => {
                record.raw = Some(value.into_text())
            }
            Some(Column::Fields) => match value {
                EntryValue::Json(serde_json::Value::Object(meta)) => {
                    for (k, v) in meta {
                        fields.insert(k, field_of_json(&v));
                    }
                }
                EntryValue::Meta(meta) => {
                    // As a `serde_json::Map` would keep them: sorted, the last of a key.
                    for (k, v) in meta {
                        fields.insert(k.into_owned(), v.into_field());
                    }
                }
                EntryValue::Null => {}
                other => {
                    fields.insert(key.into_owned(), other.into_field());
                }
            },
            _ => {
                fields.insert(key.into_owned(), value.into_field());
            }
        }
    }
    if !have_message {
        return Err(("invalid_entry", "entry has no \"message\"".into()));
    }
    record.fields = fields;
    if opts.keep_raw && record.raw.is_none() {
        // Its escapes decoded, so that redaction reads the raw text as it reads the rest.
        record.raw = text.map(|t| logyard_parse::unescape_json(t).into_owned());
    }
    let size = record.approx_size();
    if size > opts.max_line_bytes {
        return Err(("too_large", too_large(size, opts)));
    }
    Ok(record)
}

/// A value of an entry as read: text borrowed from the body when it has no escapes, numbers
/// as JSON numbers, arrays and objects as JSON values.
#[derive(Debug)]
enum EntryValue<'a> {
    Str(Cow<'a, str>),
    Num(serde_json::Number),
    /// An integer outside the 64-bit range, as its text: kept exact, stored as a string.
    BigInt(Cow<'a, str>),
    /// The keys of a `metadata` or `fields` object read with [`EntryValue::BigInt`]s.
    Meta(Vec<(Cow<'a, str>, EntryValue<'a>)>),
    Bool(bool),
    Null,
    Json(serde_json::Value),
}

impl EntryValue<'_> {
    fn from_json(value: serde_json::Value) -> EntryValue<'static> {
        match value {
            serde_json::Value::String(s) => EntryValue::Str(Cow::Owned(s)),
            serde_json::Value::Number(n) => EntryValue::Num(n),
            serde_json::Value::Bool(b) => EntryValue::Bool(b),
            serde_json::Value::Null => EntryValue::Null,
            other => EntryValue::Json(other),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, EntryValue::Null)
    }

    /// A string as it is, anything else as its JSON text.
    fn into_text(self) -> String {
        match self {
            EntryValue::Str(s) => s.into_owned(),
            EntryValue::Num(n) => n.to_string(),
            EntryValue::BigInt(s) => s.into_owned(),
            EntryValue::Bool(b) => b.to_string(),
            EntryValue::Null => "null".into(),
            EntryValue::Json(v) => v.to_string(),
            EntryValue::Meta(m) => {
                let object: serde_json::Map<String, serde_json::Value> = m
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_json()))
                    .collect();
                serde_json::Value::Object(object).to_string()
            }
        }
    }

    /// The value as JSON; a big integer becomes its text.
    fn into_json(self) -> serde_json::Value {
        match self {
            EntryValue::Str(s) | EntryValue::BigInt(s) => serde_json::Value::String(s.into_owned()),
            EntryValue::Num(n) => serde_json::Value::Number(n),
            EntryValue::Bool(b) => serde_json::Value::Bool(b),
            EntryValue::Null => serde_json::Value::Null,
            EntryValue::Json(v) => v,
            EntryValue::Meta(m) => serde_json::Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_json()))
                    .collect(),
            ),
        }
    }

    /// The field value, as [`field_of_json`] makes it.
    fn into_field(self) -> Value {
        match self {
            EntryValue::Str(s) | EntryValue::BigInt(s) => Value::Str(s.into_owned()),
            EntryValue::Num(n) => field_of_json(&serde_json::Value::Number(n)),
            EntryValue::Bool(b) => Value::Bool(b),
            EntryValue::Null => Value::Str(String::new()),
            EntryValue::Json(v) => field_of_json(&v),
            other => Value::Str(other.into_text()),
        }
    }
}

/// A field's value from JSON, as [`Value::from_json`] makes it, except that an integer
/// outside the signed 64-bit range is kept exact as its text instead of a float.
fn field_of_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_some() => {
            Value::Str(n.to_string())
        }
        other => Value::from_json(other),
    }
}

/// Whether a text holds 19 digits in a row: the only way a JSON integer can be outside the
/// 64-bit range, which the entry's slower reading ([`raw_value`]) then keeps exact.
fn has_long_number(text: &str) -> bool {
    let mut run = 0;
    for b in text.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            if run >= 19 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Reads one value from its JSON text, an integer outside the signed 64-bit range as a
/// [`EntryValue::BigInt`] of its text; `meta` reads an object's values that way too.
fn raw_value<'de>(raw: &'de RawValue, meta: bool) -> Result<EntryValue<'de>, serde_json::Error> {
    let text = raw.get();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if text.parse::<i64>().is_err() {
            return Ok(EntryValue::BigInt(Cow::Borrowed(text)));
        }
        return Ok(EntryValue::Num(
            text.parse::<i64>().unwrap_or_default().into(),
        ));
    }
    if meta && text.starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        let object = de.deserialize_map(RawObject { meta: false })?;
        de.end()?;
        return Ok(EntryValue::Meta(object));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = EntryValue::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// An object read key by key with [`raw_value`]; `meta` for the top level of an entry,
/// whose `metadata` and `fields` objects are read that way too.
struct RawObject {
    meta: bool,
}

impl<'de> Visitor<'de> for RawObject {
    type Value = Vec<(Cow<'de, str>, EntryValue<'de>)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(JsonStr(k)) = map.next_key::<JsonStr<'de>>()? {
            let raw = map.next_value::<&'de RawValue>()?;
            let meta = self.meta && key_column(&k, Dialect::Entry) == Some(Column::Fields);
            out.push((k, raw_value(raw, meta).map_err(de::Error::custom)?));
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for EntryValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EntryValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EntryValue<'de>, E> {
                Ok(EntryValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EntryValue<'de>, E> {
                Ok(EntryValue::Num(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EntryValue<'de>, E> {
                Ok(EntryValue::Num(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EntryValue<'de>, E> {
                Ok(serde_json::Number::from_f64(v).map_or(EntryValue::Null, EntryValue::Num))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<EntryValue<'de>, E> {
                Ok(EntryValue::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EntryValue<'de>, E> {
                Ok(EntryValue::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<EntryValue<'de>, E> {
                Ok(EntryValue::Str(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EntryValue<'de>, E> {
                Ok(EntryValue::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EntryValue<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<serde_json::Value>()? {
                    items.push(v);
                }
                Ok(EntryValue::Json(serde_json::Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EntryValue<'de>, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    object.insert(k, v);
                }
                Ok(EntryValue::Json(serde_json::Value::Object(object)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads one NDJSON line that is a JSON object into its keys, sorted, each once (the last
/// of a repeated key, as `serde_json` keeps it); `None` for anything else, which the
/// `serde_json::Value` path then judges.
fn read_entry(line: &str) -> Option<Vec<(Cow<'_, str>, EntryValue<'_>)>> {
    struct Entry;
    impl<'de> Visitor<'de> for Entry {
        type Value = Vec<(Cow<'de, str>, EntryValue<'de>)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(JsonStr(k)) = map.next_key::<JsonStr<'de>>()? {
                out.push((k, map.next_value::<EntryValue<'de>>()?));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let mut entry = if has_long_number(line) {
        de.deserialize_map(RawObject { meta: true }).ok()?
    } else {
        de.deserialize_map(Entry).ok()?
    };
    de.end().ok()?;
    // Stable: of a repeated key, the last read stays last, and only it is kept.
    entry.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept = Vec::with_capacity(entry.len());
    let mut iter = entry.into_iter().peekable();
    while let Some(kv) = iter.next() {
        if iter.peek().is_none_or(|next| next.0 != kv.0) {
            kept.push(kv);
        }
    }
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts() -> IngestOptions {
        IngestOptions {
            max_line_bytes: 1000,
            keep_raw: false,
            default_source: "http".into(),
        }
    }

    #[test]
    fn maps_an_entry() {
        let v = json!({"timestamp": "2024-01-15T10:30:00Z", "level": "warn", "agent": "CERBERUS",
                       "message": "hi", "metadata": {"user": "ana", "n": 3}, "extra": true});
        let r = entry_to_record(v, None, &opts(), 7).unwrap();
        assert_eq!(r.timestamp, 1_705_314_600_000_000_000);
        assert_eq!(r.level, Some(Level::Warning));
        assert_eq!(r.agent, "CERBERUS");
        assert_eq!(r.source, "http");
        assert_eq!(r.fields["user"], Value::Str("ana".into()));
        assert_eq!(r.fields["n"], Value::Int(3));
        assert_eq!(r.fields["extra"], Value::Bool(true));
    }

    #[test]
    fn rejects_precisely() {
        let bad = |v| entry_to_record(v, None, &opts(), 0).unwrap_err();
        assert_eq!(bad(json!([1])).0, "invalid_entry");
        assert!(bad(json!({"level": "INFO"})).1.contains("message"));
        assert!(bad(json!({"message": "x", "timestamp": "soon"}))
            .1
            .contains("invalid timestamp"));
        assert!(
            bad(json!({"message": "x", "timestamp": "0001-01-01T00:00:00Z"}))
                .1
                .contains("1677")
        );
        assert_eq!(bad(json!({"message": "x".repeat(2000)})).0, "too_large");
    }

    #[test]
    fn unknown_level_is_kept_as_field() {
        let r = entry_to_record(
            json!({"message": "x", "level": "VERBOSE"}),
            None,
            &opts(),
            0,
        )
        .unwrap();
        assert_eq!(r.level, None);
        assert_eq!(r.fields["level_raw"], Value::Str("VERBOSE".into()));
    }

    #[test]
    fn bodies() {
        let d = decode_body(
            br#"[{"message":"a"}, 5, {"message":"b"}]"#,
            false,
            &opts(),
            0,
        )
        .unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.rejected[0].index, 1);
        let d = decode_body(
            b"{\"message\":\"a\"}\nnot json\n{\"message\":\"b\"}\n",
            false,
            &opts(),
            0,
        )
        .unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.rejected[0].index, 1);
        assert!(decode_body(b"{oops", false, &opts(), 0).is_err());
        assert!(decode_body(b"nope\nnope", true, &opts(), 0).is_err());
        let d = decode_body(b"{\"message\":\"caf\xe9\"}", false, &opts(), 0).unwrap();
        assert_eq!(d.records[0].message, "caf\u{fffd}");
        assert_eq!(d.records[0].fields["invalid_utf8"], Value::Bool(true));
    }

    #[test]
    fn bodies_are_counted_as_they_are_read() {
        let over = |body: &[u8], ndjson| {
            let mut budget = Budget::with(3, 1000);
            match decode_body_within(body, ndjson, &opts(), &mut budget, 0) {
                Err(BodyError::OverLimit(e)) => e.code,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(over(&b"{}\n".repeat(4), true), "too_many_entries");
        assert_eq!(over(b"[{}, {}, 1, 2]", false), "too_many_entries");
        let big = format!("{{\"message\":\"{}\"}}\n", "x".repeat(400));
        assert_eq!(over(big.repeat(3).as_bytes(), true), "body_too_large");
        // Within the limits, and an array element over max_line_bytes rejected undecoded.
        let mut budget = Budget::with(3, 1000);
        let body = format!(
            "[{{\"message\":\"a\"}}, {{\"message\":\"{}\"}}]",
            "y".repeat(2000)
        );
        let d = decode_body_within(body.as_bytes(), false, &opts(), &mut budget, 0).unwrap();
        assert_eq!(d.records.len(), 1);
        assert_eq!(d.rejected[0].index, 1);
        assert_eq!(d.rejected[0].kind, "too_large");
    }

    #[test]
    fn integers_past_64_bits_stay_exact() {
        for body in [
            &b"{\"message\":\"m\",\"n\":123456789012345678901234567890,\"metadata\":{\"u\":18446744073709551615}}"[..],
            b"[{\"message\":\"m\",\"n\":123456789012345678901234567890,\"metadata\":{\"u\":18446744073709551615}}]",
        ] {
            let d = decode_body(body, false, &opts(), 0).unwrap();
            let f = &d.records[0].fields;
            assert_eq!(f["n"], Value::Str("123456789012345678901234567890".into()));
            assert_eq!(f["u"], Value::Str("18446744073709551615".into()));
        }
        let d = decode_body(
            b"{\"message\":-99999999999999999999,\"i\":-9223372036854775808}\n",
            true,
            &opts(),
            0,
        )
        .unwrap();
        assert_eq!(d.records[0].message, "-99999999999999999999");
        assert_eq!(d.records[0].fields["i"], Value::Int(i64::MIN));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn opts() -> IngestOptions {
        IngestOptions {
            max_line_bytes: 256,
            keep_raw: true,
            default_source: "http".into(),
        }
    }

    proptest! {
        /// Arbitrary bytes are refused as a whole or decoded entry by entry; never a panic,
        /// and every entry is either accepted or rejected with its index.
        #[test]
        fn arbitrary_bodies(body in proptest::collection::vec(any::<u8>(), 0..300), ndjson in any::<bool>()) {
            if let Ok(d) = decode_body(&body, ndjson, &opts(), 0) {
                for r in &d.rejected {
                    prop_assert!(!r.reason.is_empty());
                }
            }
        }

        /// An object line read directly gives the record (or the rejection) that its
        /// `serde_json::Value` gives: aliases and repeated keys, nulls, numbers, escapes,
        /// nested objects and arrays alike.
        #[test]
        fn direct_entries_read_as_json_values_do(
            keys in proptest::collection::vec(prop_oneof![
                Just("message"), Just("msg"), Just("timestamp"), Just("ts"), Just("@timestamp"),
                Just("time"), Just("level"), Just("severity"), Just("agent"), Just("host"),
                Just("source"), Just("raw"), Just("metadata"), Just("fields"), Just("user"),
                Just("a\\u0041"), Just("n"),
            ], 0..10),
            values in proptest::collection::vec(prop_oneof![
                Just("null"), Just("true"), Just("12"), Just("-3"), Just("1.5"),
                Just("18446744073709551615"), Just("1e3"), Just("1705314600"),
                Just("\"2024-01-15T10:30:00Z\""), Just("\"warn\""), Just("\"no such\""),
                Just("\"t\\u00e9\\n\""), Just("[1,\"x\",{\"k\":null}]"),
                Just("{\"user\":\"ana\",\"n\":3,\"d\":{\"e\":[true]}}"), Just("{}"),
            ], 10),
        ) {
            let body: Vec<String> = keys
                .iter()
                .zip(&values)
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            let line = format!("{{{}}}", body.join(","));
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            let want = entry_to_record(value, Some(&line), &opts(), 5);
            let entry = read_entry(&line).expect("an object");
            prop_assert_eq!(record_of(entry, Some(&line), &opts(), 5), want, "{}", line);
        }

        /// Valid NDJSON entries are all accepted, in order.
        #[test]
        fn ndjson_entries_round_trip(messages in proptest::collection::vec("\\PC{0,30}", 1..10)) {
            let body: String = messages
                .iter()
                .map(|m| format!("{}\n", json!({"message": m})))
                .collect();
            // The size limit is not what this property is about: an entry of 30 four-byte
            // characters, counted with its kept raw text, can pass 256 bytes.
            let roomy = IngestOptions { max_line_bytes: 1 << 20, ..opts() };
            let d = decode_body(body.as_bytes(), true, &roomy, 0).unwrap();
            prop_assert!(d.rejected.is_empty(), "{:?}", d.rejected);
            let got: Vec<&str> = d.records.iter().map(|r| r.message.as_str()).collect();
            let want: Vec<&str> = messages.iter().map(String::as_str).collect();
            prop_assert_eq!(got, want);
        }
    }
}
