//! Elasticsearch `_bulk`: `POST /_bulk` and `POST /{index}/_bulk`, NDJSON pairs of an action
//! line and a document line, optionally gzip.
//!
//! `index` and `create` store the document; `delete` and `update` answer a per-item error.
//! A document maps like a JSON entry: its nested objects are flattened (`a.b.c`), then
//! `@timestamp` is the time, `log.level` (or `level`) the level, `message` the message,
//! `service.name` the agent, `host.name` (or `host.hostname`) the host, and the rest fields,
//! with the index kept as the field `index`. A document without `message` keeps its JSON
//! text as the message. The answer is Elasticsearch's, which [`answer`] writes item by item.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use logyard_model::{parse_time, Column, Fields, Level, Record, Value};
use logyard_parse::roles::key_column_ranked;
use logyard_parse::{Dialect, LEVEL_RAW};
use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;

use super::limits::Budget;
use super::ShipperError;
/// Writes Elasticsearch's bulk answer: `took`, `errors` and one item per action. Written
/// as text directly: a `serde_json::Value` tree of tens of thousands of items cost more
/// than parsing the documents.
pub fn answer(items: &[Result<Created, ItemError>], took: u64) -> String {
    let errors = items.iter().any(|i| i.is_err());
    let mut out = String::with_capacity(64 + items.len() * 200);
    let _ = write!(out, "{{\"took\":{took},\"errors\":{errors},\"items\":[");
    for (seq, item) in items.iter().enumerate() {
        if seq > 0 {
            out.push(',');
        }
        out.push('{');
        match item {
            Ok(ok) => {
                json_string(&mut out, &ok.op);
                out.push_str(":{\"_index\":");
                json_string(&mut out, &ok.index);
                out.push_str(",\"_id\":");
                json_string(&mut out, &ok.id);
                let _ = write!(
                    out,
                    ",\"_version\":1,\"result\":\"created\",\
                     \"_shards\":{{\"total\":1,\"successful\":1,\"failed\":0}},\
                     \"_seq_no\":{seq},\"_primary_term\":1,\"status\":201}}"
                );
            }
            Err(e) => {
                json_string(&mut out, &e.op);
                out.push_str(":{\"_index\":");
                json_string(&mut out, &e.index);
                out.push_str(",\"_id\":");
                match &e.id {
                    Some(id) => json_string(&mut out, id),
                    None => out.push_str("null"),
                }
                out.push_str(",\"status\":400,\"error\":{\"type\":");
                json_string(&mut out, e.kind);
                out.push_str(",\"reason\":");
                json_string(&mut out, &e.reason);
                out.push_str("}}");
            }
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// Appends a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    // Serializing a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// A stored item of a bulk answer.
#[derive(Debug)]
pub struct Created {
    /// `index` or `create`.
    pub op: String,
    /// The index named.
    pub index: String,
    /// The document id, given or made.
    pub id: String,
}

/// A rejected item of a bulk answer.
#[derive(Debug)]
pub struct ItemError {
    /// The action (`index`, `create`, `update`, `delete`).
    pub op: String,
    /// The index named, if any.
    pub index: String,
    /// The id given, if any.
    pub id: Option<String>,
    /// Elasticsearch's error type.
    pub kind: &'static str,
    /// What was wrong.
    pub reason: String,
}

/// A parsed bulk body.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The documents to store, in order.
    pub records: Vec<Record>,
    /// One item per action, in order.
    pub items: Vec<Result<Created, ItemError>>,
}

const OPS: [&str; 4] = ["index", "create", "update", "delete"];

/// Parses an action line: `{"<op>": {"_index": …, "_id": …}}`.
fn action(line: &str) -> Result<(String, serde_json::Map<String, serde_json::Value>), String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("the action line is not JSON: {e}"))?;
    let serde_json::Value::Object(map) = v else {
        return Err("the action line is not a JSON object".into());
    };
    if map.len() != 1 {
        return Err(format!(
            "an action line holds one of {OPS:?} as its only key, found {} keys",
            map.len()
        ));
    }
    let (op, meta) = map.into_iter().next().expect("one key");
    if !OPS.contains(&op.as_str()) {
        return Err(format!("unknown action [{op}]: expected one of {OPS:?}"));
    }
    match meta {
        serde_json::Value::Object(m) => Ok((op, m)),
        _ => Err(format!("the metadata of [{op}] is not a JSON object")),
    }
}

static IDS: AtomicU64 = AtomicU64::new(0);

/// Makes a document id: the receive time and a counter, in hex.
fn new_id(now: i64) -> String {
    format!(
        "{now:x}{:06x}",
        IDS.fetch_add(1, Ordering::Relaxed) & 0xff_ffff
    )
}

/// Parses a bulk body with at most `max_entries` actions (see [`parse_bulk_within`]).
pub fn parse_bulk(
    body: &[u8],
    default_index: Option<&str>,
    max_line_bytes: usize,
    max_entries: usize,
    now: i64,
) -> Result<Parsed, ShipperError> {
    let mut budget = Budget::with(max_entries, usize::MAX);
    parse_bulk_within(body, default_index, max_line_bytes, &mut budget, now)
}

/// Parses a bulk body line by line. A broken action or document line is a per-item error;
/// the whole body is refused (with the status) only when it is empty, holds too many
/// actions or its documents decode to too many bytes (by the request's `budget`).
pub fn parse_bulk_within(
    body: &[u8],
    default_index: Option<&str>,
    max_line_bytes: usize,
    budget: &mut Budget,
    now: i64,
) -> Result<Parsed, ShipperError> {
    let text = String::from_utf8_lossy(body);
    let mut lines = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .peekable();
    if lines.peek().is_none() {
        return Err(ShipperError::Invalid(
            "request body is required: send action and document lines (NDJSON)".into(),
        ));
    }
    let mut out = Parsed::default();
    // Lines read so far.
    let mut i = 0;
    while let Some(line) = lines.next() {
        budget
            .entry()
            .map_err(|e| ShipperError::TooLarge(e.message.replace(" entries ", " actions ")))?;
        i += 1;
        let (op, meta) = match action(line) {
            Ok(a) => a,
            Err(reason) => {
                // The line after a broken action is its document unless it is an action.
                if lines.peek().is_some_and(|next| action(next).is_err()) {
                    lines.next();
                    i += 1;
                }
                out.items.push(Err(ItemError {
                    op: "index".into(),
                    index: default_index.unwrap_or("").into(),
                    id: None,
                    kind: "action_request_validation_exception",
                    reason: format!("line {}: {reason}", i),
                }));
                continue;
            }
        };
        let index = meta
            .get("_index")
            .and_then(|v| v.as_str())
            .or(default_index)
            .unwrap_or("")
            .to_string();
        let id = meta.get("_id").map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let fail = |op: String, index: String, id: Option<String>, kind, reason| {
            Err(ItemError {
                op,
                index,
                id,
                kind,
                reason,
            })
        };
        match op.as_str() {
            "delete" => {
                out.items.push(fail(
                    op,
                    index,
                    id,
                    "illegal_argument_exception",
                    "delete is not supported: logyard stores logs append-only".into(),
                ));
                continue;
            }
            "update" => {
                if lines.next().is_some() {
                    i += 1;
                }
                out.items.push(fail(
                    op,
                    index,
                    id,
                    "illegal_argument_exception",
                    "update is not supported: logyard stores logs append-only; send index or create".into(),
                ));
                continue;
            }
            _ => {}
        }
        let Some(doc) = lines.next() else {
            out.items.push(fail(
                op,
                index,
                id,
                "action_request_validation_exception",
                format!("line {i}: the action has no document line after it"),
            ));
            continue;
        };
        i += 1;
        if index.is_empty() {
            out.items.push(fail(
                op,
                index,
                id,
                "action_request_validation_exception",
                "index is missing: name it in the action's _index or the path /{index}/_bulk"
                    .into(),
            ));
            continue;
        }
        match document(doc, &index, max_line_bytes, now) {
            Ok(record) => {
                budget.decoded(record.approx_size())?;
                out.records.push(record);
                out.items.push(Ok(Created {
                    op,
                    index,
                    id: id.unwrap_or_else(|| new_id(now)),
                }));
            }
            Err((kind, reason)) => {
                out.items
                    .push(fail(op, index, id, kind, format!("line {i}: {reason}")))
            }
        }
    }
    Ok(out)
}

/// Reads a JSON object straight into dotted keys (`{"a":{"b":1}}` → `a.b`) and their
/// scalar or array values, without building the object's maps.
struct FlatObject<'a> {
    prefix: &'a str,
    out: &'a mut Vec<(String, serde_json::Value)>,
}

impl<'de> Visitor<'de> for FlatObject<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let key = if self.prefix.is_empty() {
                key
            } else {
                format!("{}.{key}", self.prefix)
            };
            map.next_value_seed(FlatValue { key, out: self.out })?;
        }
        Ok(())
    }
}

/// One value of a [`FlatObject`]: an object is flattened under its key, anything else kept.
struct FlatValue<'a> {
    key: String,
    out: &'a mut Vec<(String, serde_json::Value)>,
}

impl<'de> DeserializeSeed<'de> for FlatValue<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FlatValue<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        FlatObject {
            prefix: &self.key,
            out: self.out,
        }
        .visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let array = serde_json::Value::deserialize(SeqAccessDeserializer::new(seq))?;
        self.keep(array)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.visit_string(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.keep(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.keep(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.keep(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.keep(v.into())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.keep(v.into())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.keep(serde_json::Value::Null)
    }
}

impl FlatValue<'_> {
    /// Keeps a scalar under the value's key.
    fn keep<E>(self, value: serde_json::Value) -> Result<(), E> {
        self.out.push((self.key, value));
        Ok(())
    }
}

/// Flattens a document line; an error says why it is not a JSON object.
fn flatten_document(line: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
    if !line.trim_start().starts_with('{') {
        // Whatever JSON it may be, it is not an object.
        return Err(match serde_json::from_str::<de::IgnoredAny>(line) {
            Ok(_) => "the document is not a JSON object".into(),
            Err(e) => format!("the document is not JSON: {e}"),
        });
    }
    let mut flat = Vec::new();
    let mut de = serde_json::Deserializer::from_str(line);
    de.deserialize_map(FlatObject {
        prefix: "",
        out: &mut flat,
    })
    .and_then(|()| de.end())
    .map_err(|e| format!("the document is not JSON: {e}"))?;
    // Keys in order, each once with its last value, as an object's map holds them: the
    // mapping below (`host.name` after `host.hostname`, the last of repeated keys) relies
    // on it.
    flat.reverse();
    flat.sort_by(|a, b| a.0.cmp(&b.0));
    flat.dedup_by(|a, b| a.0 == b.0);
    Ok(flat)
}

fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Maps one document line to a record.
pub fn document(
    line: &str,
    index: &str,
    max_line_bytes: usize,
    now: i64,
) -> Result<Record, (&'static str, String)> {
    if line.len() > max_line_bytes {
        return Err((
            "document_parsing_exception",
            format!(
                "the document is {} bytes, over the limit of {max_line_bytes} (setting limits.max_line_bytes)",
                line.len()
            ),
        ));
    }
    let flat = flatten_document(line).map_err(|e| ("document_parsing_exception", e))?;
    let mut record = Record::new(now, "");
    record.source = "elasticsearch".into();
    let mut message = None;
    let mut fields = Fields::new();
    for (key, value) in flat {
        match key_column_ranked(&key, Dialect::Bulk) {
            Some((Column::Timestamp, _)) if !value.is_null() => {
                let text = text_of(&value);
                record.timestamp = parse_time(&text, now).map_err(|e| {
                    (
                        "document_parsing_exception",
                        format!("invalid @timestamp: {e}"),
                    )
                })?;
            }
            Some((Column::Level, _)) if !value.is_null() => {
                let name = text_of(&value);
                match Level::normalize(&name) {
                    Some(l) => record.level = Some(l),
                    None => {
                        fields.insert(LEVEL_RAW.into(), Value::Str(name));
                    }
                }
            }
            Some((Column::Message, _)) if !value.is_null() => message = Some(text_of(&value)),
            Some((Column::Agent, _)) => record.agent = text_of(&value),
            // `host.name` over `host.hostname`, whichever comes first.
            Some((Column::Host, 0)) => record.host = text_of(&value),
            Some((Column::Host, _)) if record.host.is_empty() => record.host = text_of(&value),
            _ => {
                fields.insert(key, Value::from_json(&value));
            }
        }
    }
    fields.insert("index".into(), Value::Str(index.to_string()));
    record.message = message.unwrap_or_else(|| line.trim().to_string());
    record.fields = fields;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_a_document() {
        let r = document(
            r#"{"@timestamp":"2024-01-15T10:30:00Z","log":{"level":"warn"},"message":"disk low","service":{"name":"billing"},"host":{"hostname":"db-1"},"disk":{"free":{"pct":3}}}"#,
            "logs-a",
            10_000,
            0,
        )
        .unwrap();
        assert_eq!(r.timestamp, 1_705_314_600_000_000_000);
        assert_eq!(r.level, Some(Level::Warning));
        assert_eq!(r.message, "disk low");
        assert_eq!(r.agent, "billing");
        assert_eq!(r.host, "db-1");
        assert_eq!(r.source, "elasticsearch");
        assert_eq!(r.fields["disk.free.pct"], Value::Int(3));
        assert_eq!(r.fields["index"], Value::Str("logs-a".into()));
        let r = document(
            r#"{"log.level":"error","message":"x","host.name":"h"}"#,
            "i",
            1000,
            0,
        )
        .unwrap();
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.host, "h");
    }

    #[test]
    fn broken_lines_are_rejected_per_item() {
        let body = concat!(
            "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"message\":\"one\"}\n",
            "{\"index\":{\"_index\":\"a\"}}\n{\"message\": oops\n",
            "not an action\n{\"message\":\"lost\"}\n",
            "{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n",
            "{\"update\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"doc\":{}}\n",
            "{\"create\":{}}\n{\"message\":\"two\",\"@timestamp\":\"never\"}\n",
            "{\"create\":{}}\n{\"message\":\"three\"}\n",
        );
        let p = parse_bulk(body.as_bytes(), Some("d"), 10_000, 100, 0).unwrap();
        let ops: Vec<(&str, bool)> = p
            .items
            .iter()
            .map(|i| match i {
                Ok(c) => (c.op.as_str(), true),
                Err(e) => (e.op.as_str(), false),
            })
            .collect();
        assert_eq!(
            ops,
            [
                ("index", true),
                ("index", false),
                ("index", false),
                ("delete", false),
                ("update", false),
                ("create", false),
                ("create", true),
            ]
        );
        let msgs: Vec<&str> = p.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(msgs, ["one", "three"]);
        assert_eq!(p.records[1].fields["index"], Value::Str("d".into()));
        let Err(e) = &p.items[1] else { panic!() };
        assert_eq!(e.kind, "document_parsing_exception");
        assert!(e.reason.contains("line 4"), "{}", e.reason);
        assert!(parse_bulk(b"\n\n", None, 10, 10, 0).is_err());
        let many = "{\"index\":{\"_index\":\"a\"}}\n{\"message\":\"m\"}\n".repeat(3);
        assert!(matches!(
            parse_bulk(many.as_bytes(), None, 1000, 2, 0),
            Err(ShipperError::TooLarge(_))
        ));
    }

    #[test]
    fn the_answer_is_elasticsearchs_shape() {
        let items = vec![
            Ok(Created {
                op: "index".into(),
                index: "logs".into(),
                id: "a\"1".into(),
            }),
            Err(ItemError {
                op: "create".into(),
                index: "logs".into(),
                id: None,
                kind: "document_parsing_exception",
                reason: "the document is not JSON: line 1 \u{1}".into(),
            }),
            Err(ItemError {
                op: "delete".into(),
                index: "x".into(),
                id: Some("7".into()),
                kind: "action_request_validation_exception",
                reason: "no".into(),
            }),
        ];
        let got: serde_json::Value = serde_json::from_str(&answer(&items, 12)).unwrap();
        let want = json!({"took": 12, "errors": true, "items": [
            {"index": {"_index": "logs", "_id": "a\"1", "_version": 1, "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": 0, "_primary_term": 1, "status": 201}},
            {"create": {"_index": "logs", "_id": null, "status": 400,
                "error": {"type": "document_parsing_exception",
                          "reason": "the document is not JSON: line 1 \u{1}"}}},
            {"delete": {"_index": "x", "_id": "7", "status": 400,
                "error": {"type": "action_request_validation_exception", "reason": "no"}}},
        ]});
        assert_eq!(got, want);
        let empty: serde_json::Value = serde_json::from_str(&answer(&[], 0)).unwrap();
        assert_eq!(empty, json!({"took": 0, "errors": false, "items": []}));
    }

    /// The flattening of a parsed `serde_json::Value` tree, as a reference.
    fn flatten_tree(
        prefix: &str,
        v: serde_json::Value,
        out: &mut Vec<(String, serde_json::Value)>,
    ) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten_tree(&key, v, out);
                }
            }
            other => out.push((prefix.to_string(), other)),
        }
    }

    #[test]
    fn documents_flatten_as_their_tree_does() {
        for doc in [
            r#"{"b":1,"a":{"y":"x","x":[1,{"k":2}]},"c":null,"d":true,"e":-2.5,"f":{}}"#,
            r#"{"host":{"name":"n","hostname":"h"},"message":"m\u00e9\n","n":18446744073709551615}"#,
            r#"{"a":{"b":1},"a.b":2}"#,
            r#"{"k":1,"k":2,"j":{"z":3},"j":{"z":4}}"#,
            r#"  {"deep":{"a":{"b":{"c":{"d":{"e":"f"}}}}}}  "#,
        ] {
            let mut want = Vec::new();
            flatten_tree("", serde_json::from_str(doc).unwrap(), &mut want);
            // A map keeps each key once (the last value) in key order; the dotted keys a
            // tree yields may repeat (`a.b` from `a` and from `a.b`): the last one counts.
            want.reverse();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            want.dedup_by(|a, b| a.0 == b.0);
            assert_eq!(flatten_document(doc).unwrap(), want, "{doc}");
        }
        assert_eq!(
            flatten_document("[1]").unwrap_err(),
            "the document is not a JSON object"
        );
        assert!(flatten_document("nope")
            .unwrap_err()
            .starts_with("the document is not JSON"));
        assert!(flatten_document("{} x").unwrap_err().contains("trailing"));
        assert!(flatten_document(r#"{"a":"#).is_err());
    }
}
