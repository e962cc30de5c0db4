//! Loki push: `POST /loki/api/v1/push`, protobuf + snappy (`application/x-protobuf`, what
//! Promtail and most agents send) or JSON (`application/json`, optionally gzip).
//!
//! Every line is parsed by the `parse` crate (format detection, as a file line would be);
//! the stream's labels become fields and take precedence for the level (`level`,
//! `severity`, `detected_level`), the agent (`service_name`, `app`, `job`) and the host
//! (`host`, `hostname`, `instance`); structured metadata become fields; the entry's time is
//! the record's. Entries are counted before they are decoded (protobuf) or as they are read
//! (JSON), and decoded one at a time; an entry over `limits.max_line_bytes` is rejected
//! alone, the others stored, and the answer is then a `400` that says so.

use logyard_model::{Column, Level, Record, Value};
use logyard_parse::roles::key_column_ranked;
use logyard_parse::{Dialect, LineContext, Parser, ParserConfig, RedactConfig};
use prost::Message;

use serde_json::value::RawValue;

use super::limits::{count_nested, for_each_element, wire_fields, Budget, ElementsError, Wire};
use super::ShipperError;

/// The protobuf messages of Loki's push API (`logproto`).
pub mod proto {
    /// `logproto.PushRequest`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct PushRequest {
        /// The streams.
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    /// `logproto.StreamAdapter`: a label set and its entries.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct StreamAdapter {
        /// The labels as Prometheus writes a label set: `{a="b", c="d"}`.
        #[prost(string, tag = "1")]
        pub labels: String,
        /// The entries.
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        /// The labels' hash (unused).
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    /// `logproto.EntryAdapter`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct EntryAdapter {
        /// When.
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        /// The line.
        #[prost(string, tag = "2")]
        pub line: String,
        /// Structured metadata.
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    /// `logproto.LabelPairAdapter`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct LabelPairAdapter {
        /// The name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// The value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Timestamp {
        /// Seconds since the epoch.
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        /// Nanoseconds within the second.
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// One stream: its labels and its entries (time in ns, line, structured metadata).
type Stream = (
    Vec<(String, String)>,
    Vec<(i64, String, Vec<(String, String)>)>,
);

fn bad(m: String) -> ShipperError {
    ShipperError::Invalid(m)
}

/// The records of a push, and why the entries left out were rejected.
#[derive(Debug, Default)]
pub struct Pushed {
    /// The records to store.
    pub records: Vec<Record>,
    /// One reason per rejected entry.
    pub rejected: Vec<String>,
    /// How many entries the push held.
    pub total: usize,
}

/// The label-derived parts of one stream's records.
struct StreamInfo {
    text: String,
    labels: Vec<(String, String)>,
    level: Option<Level>,
    agent: String,
    host: String,
}

/// Turns entries into records one at a time, within the limits: an entry whose line (or
/// record, with the labels and structured metadata) is over `max_line_bytes` is rejected
/// alone, and the whole push is refused past `limits.max_entries_per_request` entries or
/// `limits.max_decoded_bytes`.
pub struct Converter {
    parser: Parser,
    max_line_bytes: usize,
    budget: Budget,
    out: Pushed,
}

impl Converter {
    /// A converter with the entry settings and the request's budget.
    pub fn new(max_line_bytes: usize, keep_raw: bool, budget: Budget) -> Converter {
        // Secrets are removed once, from the whole record, by `store` with the server's
        // rules. Lines are never truncated: one over the limit is rejected before parsing.
        let cfg = ParserConfig {
            max_line_bytes,
            keep_raw,
            redact: RedactConfig {
                builtin: false,
                ..RedactConfig::default()
            },
            ..ParserConfig::default()
        };
        Converter {
            parser: Parser::new(cfg).expect("the default parser configuration is valid"),
            max_line_bytes,
            budget,
            out: Pushed::default(),
        }
    }

    fn stream(&self, text: String, labels: Vec<(String, String)>) -> StreamInfo {
        // The label of the lowest rank among those that name the column.
        let find = |column: Column| {
            labels
                .iter()
                .filter_map(|(k, v)| match key_column_ranked(k, Dialect::Loki) {
                    Some((c, rank)) if c == column => Some((rank, v)),
                    _ => None,
                })
                .min_by_key(|(rank, _)| *rank)
                .map(|(_, v)| v.clone())
        };
        let level = find(Column::Level).as_deref().and_then(Level::normalize);
        let agent = find(Column::Agent).unwrap_or_default();
        let host = find(Column::Host).unwrap_or_default();
        StreamInfo {
            text,
            labels,
            level,
            agent,
            host,
        }
    }

    /// Checks the labels' text before they are parsed and copied into every record.
    fn labels_fit(&self, text: &str) -> Result<(), ShipperError> {
        if text.len() > self.max_line_bytes {
            return Err(ShipperError::TooLarge(format!(
                "a stream's labels are {} bytes, over the limit of {} (setting limits.max_line_bytes)",
                text.len(),
                self.max_line_bytes
            )));
        }
        Ok(())
    }

    /// Whether an entry of `len` encoded bytes is too big to decode: it is then rejected.
    fn too_big_to_decode(&mut self, stream: &str, index: usize, len: usize) -> bool {
        // The line, its timestamp and its metadata: some room over the line's limit.
        if len <= self.max_line_bytes.saturating_add(1024) {
            return false;
        }
        self.reject(format!(
            "entry {index} of stream {stream} is {len} bytes, over the limit of {} (setting limits.max_line_bytes)",
            self.max_line_bytes
        ));
        true
    }

    fn reject(&mut self, reason: String) {
        self.out.total += 1;
        self.out.rejected.push(reason);
    }

    fn entry(
        &mut self,
        s: &StreamInfo,
        index: usize,
        ns: i64,
        line: String,
        meta: Vec<(String, String)>,
    ) -> Result<(), ShipperError> {
        if line.len() > self.max_line_bytes {
            self.reject(format!(
                "entry {index} of stream {}: the line is {} bytes, over the limit of {} (setting limits.max_line_bytes)",
                s.text,
                line.len(),
                self.max_line_bytes
            ));
            return Ok(());
        }
        let ctx = LineContext {
            source: "loki",
            agent_hint: &s.agent,
            host: &s.host,
            received_ns: ns,
        };
        let mut r = self
            .parser
            .parse(line.as_bytes(), &ctx)
            .unwrap_or_else(|| Record::new(ns, line.clone()));
        r.timestamp = ns;
        r.source = "loki".into();
        if s.level.is_some() {
            r.level = s.level;
        }
        if !s.agent.is_empty() {
            r.agent.clone_from(&s.agent);
        }
        if !s.host.is_empty() {
            r.host.clone_from(&s.host);
        }
        for (k, v) in s.labels.iter().chain(&meta) {
            r.fields.insert(k.clone(), Value::Str(v.clone()));
        }
        let size = r.approx_size();
        if size > self.max_line_bytes {
            self.reject(format!(
                "entry {index} of stream {} is {size} bytes with its labels and metadata, over the limit of {} (setting limits.max_line_bytes)",
                s.text, self.max_line_bytes
            ));
            return Ok(());
        }
        self.budget.decoded(size)?;
        self.out.total += 1;
        self.out.records.push(r);
        Ok(())
    }

    /// The records and rejections.
    pub fn finish(self) -> Pushed {
        self.out
    }
}

fn entry_time(t: Option<proto::Timestamp>) -> Result<i64, ShipperError> {
    let t = t.unwrap_or_default();
    t.seconds
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(i64::from(t.nanos)))
        .ok_or_else(|| bad(format!("timestamp {}s is out of range", t.seconds)))
}

/// Decodes a protobuf `PushRequest` (already decompressed) into `conv`, entry by entry: the
/// entries are counted on the wire first, and a push with too many is refused before any
/// is decoded.
pub fn decode_protobuf(bytes: &[u8], conv: &mut Converter) -> Result<(), ShipperError> {
    let not_push = |e: String| {
        bad(format!(
            "the body is not a Loki PushRequest in protobuf: {e}"
        ))
    };
    let n = count_nested(bytes, &[1, 2]).map_err(not_push)?;
    conv.budget.entries_ahead(n)?;
    for field in wire_fields(bytes) {
        let Wire::Len(stream) = (match field.map_err(not_push)? {
            (1, value) => value,
            _ => continue,
        }) else {
            return Err(not_push("a stream is not a message".into()));
        };
        let mut labels = "";
        for field in wire_fields(stream) {
            if let (1, Wire::Len(b)) = field.map_err(not_push)? {
                labels = std::str::from_utf8(b)
                    .map_err(|_| not_push("the labels are not UTF-8".into()))?;
            }
        }
        conv.labels_fit(labels)?;
        let info = conv.stream(labels.to_string(), parse_labels(labels).map_err(bad)?);
        for (index, field) in wire_fields(stream)
            .filter(|f| matches!(f, Ok((2, _)) | Err(_)))
            .enumerate()
        {
            let Wire::Len(entry) = field.map_err(not_push)?.1 else {
                return Err(not_push("an entry is not a message".into()));
            };
            if conv.too_big_to_decode(&info.text, index, entry.len()) {
                continue;
            }
            let e = proto::EntryAdapter::decode(entry).map_err(|e| not_push(e.to_string()))?;
            let meta = e
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            conv.entry(&info, index, entry_time(e.timestamp)?, e.line, meta)?;
        }
    }
    Ok(())
}

/// Decodes a protobuf `PushRequest` (already decompressed) whole, without limits.
pub fn from_protobuf(bytes: &[u8]) -> Result<Vec<Stream>, ShipperError> {
    let request = proto::PushRequest::decode(bytes).map_err(|e| {
        bad(format!(
            "the body is not a Loki PushRequest in protobuf: {e}"
        ))
    })?;
    request
        .streams
        .into_iter()
        .map(|s| {
            let labels = parse_labels(&s.labels).map_err(bad)?;
            let entries = s
                .entries
                .into_iter()
                .map(|e| {
                    let meta = e
                        .structured_metadata
                        .into_iter()
                        .map(|p| (p.name, p.value))
                        .collect();
                    Ok((entry_time(e.timestamp)?, e.line, meta))
                })
                .collect::<Result<_, ShipperError>>()?;
            Ok((labels, entries))
        })
        .collect()
}

/// Decodes the JSON push body into `conv`, one stream and one value at a time.
pub fn decode_json(bytes: &[u8], conv: &mut Converter) -> Result<(), ShipperError> {
    #[derive(serde::Deserialize)]
    struct Push<'a> {
        #[serde(borrow)]
        streams: &'a RawValue,
    }
    #[derive(serde::Deserialize)]
    struct JsonStream<'a> {
        #[serde(default, borrow)]
        stream: Option<&'a RawValue>,
        #[serde(default, borrow)]
        values: Option<&'a RawValue>,
    }
    let not_push = |e: &dyn std::fmt::Display| {
        bad(format!(
            "the body is not a Loki push request ({e}); send {{\"streams\": [{{\"stream\": {{labels}}, \"values\": [[\"<unix ns>\", \"line\"]]}}]}}"
        ))
    };
    let text = std::str::from_utf8(bytes).map_err(|e| not_push(&e))?;
    let push: Push = serde_json::from_str(text).map_err(|e| not_push(&e))?;
    let read = for_each_element(push.streams.get(), |si, raw| {
        let s: JsonStream = serde_json::from_str(raw.get()).map_err(|e| not_push(&e))?;
        let (labels_text, labels) = match s.stream {
            Some(st) if st.get() != "null" => {
                conv.labels_fit(st.get())?;
                let map: std::collections::BTreeMap<String, serde_json::Value> =
                    serde_json::from_str(st.get()).map_err(|e| not_push(&e))?;
                let labels: Vec<(String, String)> = map
                    .into_iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => (k, s),
                        other => (k, other.to_string()),
                    })
                    .collect();
                (st.get().to_string(), labels)
            }
            _ => ("{}".to_string(), Vec::new()),
        };
        let info = conv.stream(labels_text, labels);
        let Some(values) = s.values.filter(|v| v.get() != "null") else {
            return Ok(());
        };
        let read = for_each_element(values.get(), |vi, raw| {
            conv.budget.entry()?;
            if conv.too_big_to_decode(&info.text, vi, raw.get().len()) {
                return Ok(());
            }
            let (ns, line, meta) = json_value(si, vi, raw)?;
            conv.entry(&info, vi, ns, line, meta)
        });
        match read {
            Ok(()) => Ok(()),
            Err(ElementsError::Stopped(e)) => Err(e),
            Err(ElementsError::Json(e)) => Err(not_push(&e)),
        }
    });
    match read {
        Ok(()) => Ok(()),
        Err(ElementsError::Stopped(e)) => Err(e),
        Err(ElementsError::Json(e)) => Err(not_push(&e)),
    }
}

/// An entry's structured metadata: names and values.
type Metadata = Vec<(String, String)>;

/// One entry of the JSON push body: `["<unix ns>", "line"]` or with structured metadata.
fn json_value(
    si: usize,
    vi: usize,
    raw: &RawValue,
) -> Result<(i64, String, Metadata), ShipperError> {
    let at = || format!("streams[{si}].values[{vi}]");
    let v: Vec<serde_json::Value> = serde_json::from_str(raw.get()).map_err(|e| {
        bad(format!(
            "{} is not an array of a timestamp and a line: {e}",
            at()
        ))
    })?;
    if v.len() < 2 || v.len() > 3 {
        return Err(bad(format!(
            "{} has {} items: expected [\"<unix ns>\", \"line\"] or with structured metadata",
            at(),
            v.len()
        )));
    }
    let ns = match &v[0] {
        serde_json::Value::String(s) => s.parse::<i64>().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| {
        bad(format!(
            "{}: timestamp {} is not nanoseconds since the epoch as a string",
            at(),
            v[0]
        ))
    })?;
    let mut v = v.into_iter();
    let line = match v.nth(1) {
        Some(serde_json::Value::String(s)) => s,
        _ => return Err(bad(format!("{}: the line is not a string", at()))),
    };
    let meta = match v.next() {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        Some(_) => {
            return Err(bad(format!(
                "{}: structured metadata is not an object",
                at()
            )))
        }
    };
    Ok((ns, line, meta))
}

/// Decodes the JSON push body whole, without limits.
pub fn from_json(bytes: &[u8]) -> Result<Vec<Stream>, ShipperError> {
    let mut streams: Vec<Stream> = Vec::new();
    #[derive(serde::Deserialize)]
    struct Push<'a> {
        #[serde(borrow)]
        streams: Vec<JsonStream<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct JsonStream<'a> {
        #[serde(default)]
        stream: std::collections::BTreeMap<String, serde_json::Value>,
        #[serde(default, borrow)]
        values: Vec<&'a RawValue>,
    }
    let push: Push = serde_json::from_slice(bytes).map_err(|e| {
        bad(format!(
            "the body is not a Loki push request ({e}); send {{\"streams\": [{{\"stream\": {{labels}}, \"values\": [[\"<unix ns>\", \"line\"]]}}]}}"
        ))
    })?;
    for (si, s) in push.streams.into_iter().enumerate() {
        let entries = s
            .values
            .iter()
            .enumerate()
            .map(|(vi, raw)| json_value(si, vi, raw))
            .collect::<Result<_, _>>()?;
        let labels = s
            .stream
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        streams.push((labels, entries));
    }
    Ok(streams)
}

/// Parses a Prometheus label set, `{a="b", c="d\"e"}`.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let err =
        |what: &str| format!("invalid labels {text:?}: {what}; expected {{name=\"value\", …}}");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| err("not in braces"))?;
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.') {
            name.push(c);
        }
        if name.is_empty() {
            return Err(err("a label name is empty or has an invalid character"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(err(&format!("no '=' after {name}")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('"') {
            return Err(err(&format!("the value of {name} is not quoted")));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(err(&format!("the value of {name} has no closing quote"))),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some(c) => value.push(c),
                    None => return Err(err("a lone backslash at the end")),
                },
                Some(c) => value.push(c),
            }
        }
        labels.push((name, value));
    }
}

/// Parses every line and applies the labels, without limits but the entries' size (an
/// entry over `max_line_bytes` is left out).
pub fn to_records(streams: Vec<Stream>, max_line_bytes: usize, keep_raw: bool) -> Vec<Record> {
    let mut conv = Converter::new(max_line_bytes, keep_raw, Budget::unlimited());
    for (labels, entries) in streams {
        let info = conv.stream(String::new(), labels);
        for (index, (ns, line, meta)) in entries.into_iter().enumerate() {
            // Without a budget, only a rejection can happen, which leaves the entry out.
            let _ = conv.entry(&info, index, ns, line, meta);
        }
    }
    conv.finish().records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets() {
        assert_eq!(
            parse_labels(r#"{app="web", level="warn", msg="a \"q\" b\\c", empty=""}"#).unwrap(),
            [
                ("app".into(), "web".into()),
                ("level".into(), "warn".into()),
                ("msg".into(), "a \"q\" b\\c".into()),
                ("empty".into(), String::new()),
            ]
        );
        assert_eq!(parse_labels("{}").unwrap(), []);
        for bad in ["app=\"x\"", "{app=x}", "{app=\"x}", "{=\"x\"}", "{a\"x\"}"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_take_precedence_over_the_parsed_line() {
        let streams = vec![(
            vec![
                ("job".to_string(), "api".to_string()),
                ("level".to_string(), "error".to_string()),
                ("env".to_string(), "prod".to_string()),
            ],
            vec![(
                5,
                r#"{"level":"info","msg":"boom","user":"ana"}"#.to_string(),
                vec![("trace_id".to_string(), "abc".to_string())],
            )],
        )];
        let r = &to_records(streams, 10_000, false)[0];
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.agent, "api");
        assert_eq!(r.timestamp, 5);
        assert_eq!(r.source, "loki");
        assert_eq!(r.message, "boom");
        assert_eq!(r.fields["user"], Value::Str("ana".into()));
        assert_eq!(r.fields["env"], Value::Str("prod".into()));
        assert_eq!(r.fields["trace_id"], Value::Str("abc".into()));
    }
}
