//! OTLP/HTTP logs: `POST /v1/logs`, protobuf (`application/x-protobuf`) or JSON
//! (`application/json`), optionally gzip.
//!
//! `service.name` becomes the agent, `host.name` the host, `severityText` (or else
//! `severityNumber`) the level, `body` the message (non-string bodies as JSON text), and the
//! resource, scope and record attributes the fields (the record's winning), with
//! `trace_id` and `span_id` in hex. The protobuf messages of the answer (an
//! `ExportLogsServiceResponse`, or a `google.rpc.Status` for a request that does not
//! decode) are in [`proto`].

use logyard_model::{Column, Fields, Level, Record, Value};
use logyard_parse::{key_column, Dialect};
use prost::Message;

use serde_json::value::RawValue;

use super::limits::{count_nested, for_each_element, wire_fields, Budget, ElementsError, Wire};
use super::ShipperError;

/// The protobuf messages of OTLP logs (`opentelemetry/proto/...`), the fields logyard reads.
pub mod proto {
    /// `collector.logs.v1.ExportLogsServiceRequest`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ExportLogsServiceRequest {
        /// The batches, one per resource.
        #[prost(message, repeated, tag = "1")]
        pub resource_logs: Vec<ResourceLogs>,
    }

    /// `collector.logs.v1.ExportLogsServiceResponse`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ExportLogsServiceResponse {
        /// Set when some records were rejected.
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<ExportLogsPartialSuccess>,
    }

    /// `collector.logs.v1.ExportLogsPartialSuccess`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ExportLogsPartialSuccess {
        /// How many records were rejected.
        #[prost(int64, tag = "1")]
        pub rejected_log_records: i64,
        /// Why.
        #[prost(string, tag = "2")]
        pub error_message: String,
    }

    /// `logs.v1.ResourceLogs`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ResourceLogs {
        /// The resource (service, host, …).
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        /// The records, by instrumentation scope.
        #[prost(message, repeated, tag = "2")]
        pub scope_logs: Vec<ScopeLogs>,
    }

    /// `resource.v1.Resource`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Resource {
        /// Its attributes.
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    /// `logs.v1.ScopeLogs`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ScopeLogs {
        /// The instrumentation scope.
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        /// The records.
        #[prost(message, repeated, tag = "2")]
        pub log_records: Vec<LogRecord>,
    }

    /// `common.v1.InstrumentationScope`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct InstrumentationScope {
        /// Its name (often the logger's).
        #[prost(string, tag = "1")]
        pub name: String,
        /// Its version.
        #[prost(string, tag = "2")]
        pub version: String,
        /// Its attributes.
        #[prost(message, repeated, tag = "3")]
        pub attributes: Vec<KeyValue>,
    }

    /// `logs.v1.LogRecord`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct LogRecord {
        /// When the event happened, ns since the epoch (0: unknown).
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        /// When it was observed.
        #[prost(fixed64, tag = "11")]
        pub observed_time_unix_nano: u64,
        /// 1–24, 0 unspecified.
        #[prost(int32, tag = "2")]
        pub severity_number: i32,
        /// The level as the source named it.
        #[prost(string, tag = "3")]
        pub severity_text: String,
        /// The message.
        #[prost(message, optional, tag = "5")]
        pub body: Option<AnyValue>,
        /// Its attributes.
        #[prost(message, repeated, tag = "6")]
        pub attributes: Vec<KeyValue>,
        /// W3C trace flags.
        #[prost(fixed32, tag = "8")]
        pub flags: u32,
        /// 16 bytes, or empty.
        #[prost(bytes = "vec", tag = "9")]
        pub trace_id: Vec<u8>,
        /// 8 bytes, or empty.
        #[prost(bytes = "vec", tag = "10")]
        pub span_id: Vec<u8>,
        /// The event's name.
        #[prost(string, tag = "12")]
        pub event_name: String,
    }

    /// `common.v1.KeyValue`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct KeyValue {
        /// The key.
        #[prost(string, tag = "1")]
        pub key: String,
        /// The value.
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    /// `common.v1.AnyValue`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct AnyValue {
        /// The value, if any.
        #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
        pub value: Option<any_value::Value>,
    }

    /// The variants of [`AnyValue`].
    pub mod any_value {
        /// One value.
        #[derive(Clone, PartialEq, ::prost::Oneof)]
        pub enum Value {
            /// A string.
            #[prost(string, tag = "1")]
            StringValue(String),
            /// A boolean.
            #[prost(bool, tag = "2")]
            BoolValue(bool),
            /// An integer.
            #[prost(int64, tag = "3")]
            IntValue(i64),
            /// A float.
            #[prost(double, tag = "4")]
            DoubleValue(f64),
            /// A list.
            #[prost(message, tag = "5")]
            ArrayValue(super::ArrayValue),
            /// A map.
            #[prost(message, tag = "6")]
            KvlistValue(super::KeyValueList),
            /// Bytes.
            #[prost(bytes, tag = "7")]
            BytesValue(Vec<u8>),
        }
    }

    /// `common.v1.ArrayValue`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ArrayValue {
        /// The items.
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<AnyValue>,
    }

    /// `common.v1.KeyValueList`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct KeyValueList {
        /// The entries.
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<KeyValue>,
    }

    /// `google.rpc.Status`, the body of an error answer.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Status {
        /// The gRPC code (3 invalid argument, 8 resource exhausted, 14 unavailable).
        #[prost(int32, tag = "1")]
        pub code: i32,
        /// What went wrong.
        #[prost(string, tag = "2")]
        pub message: String,
    }
}

use proto::any_value::Value as Any;

/// Turns log records into records one at a time, within the request's [`Budget`].
pub struct Collect {
    budget: Budget,
    max_line_bytes: usize,
    now: i64,
    /// The records to store.
    pub records: Vec<Record>,
    /// Why the others were rejected.
    pub rejected: Vec<String>,
}

impl Collect {
    /// Starts with a budget, the entries' size limit and the receive time.
    pub fn new(budget: Budget, max_line_bytes: usize, now: i64) -> Collect {
        Collect {
            budget,
            max_line_bytes,
            now,
            records: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// Checks the size of a resource or scope before it is decoded: its attributes are
    /// copied into each of its records.
    fn fits(&self, what: &str, len: usize) -> Result<(), ShipperError> {
        if len > self.max_line_bytes {
            return Err(ShipperError::TooLarge(format!(
                "{what} is {len} bytes, over the limit of {} (setting limits.max_line_bytes): its attributes go into each of its records",
                self.max_line_bytes
            )));
        }
        Ok(())
    }

    /// Whether a log record of `len` encoded bytes is too big to decode: it is then rejected.
    fn too_big_to_decode(&mut self, len: usize) -> bool {
        if len <= self.max_line_bytes.saturating_add(1024) {
            return false;
        }
        self.rejected.push(format!(
            "a log record is {len} bytes, over the limit of {} (setting limits.max_line_bytes)",
            self.max_line_bytes
        ));
        true
    }

    /// The record every log record of a resource starts from, and the resource's fields.
    fn base(&self, resource: Option<proto::Resource>) -> (Record, Fields) {
        let mut base = Record::new(self.now, "");
        base.source = "otlp".into();
        let mut base_fields = Fields::new();
        for kv in resource.map(|r| r.attributes).unwrap_or_default() {
            match (key_column(&kv.key, Dialect::Otlp), text_value(&kv.value)) {
                (Some(Column::Agent), Some(s)) => base.agent = s,
                (Some(Column::Host), Some(s)) => base.host = s,
                _ => {
                    base_fields.insert(kv.key, field_value(kv.value));
                }
            }
        }
        (base, base_fields)
    }

    /// The fields of a scope's log records: the resource's and the scope's.
    fn scope(base_fields: &Fields, scope: Option<proto::InstrumentationScope>) -> Fields {
        let mut scope_fields = base_fields.clone();
        if let Some(scope) = scope {
            if !scope.name.is_empty() {
                scope_fields.insert("scope.name".into(), Value::Str(scope.name));
            }
            for kv in scope.attributes {
                scope_fields.insert(kv.key, field_value(kv.value));
            }
        }
        scope_fields
    }

    /// Adds one log record, accepted or rejected.
    fn add(
        &mut self,
        base: &Record,
        scope_fields: &Fields,
        lr: proto::LogRecord,
    ) -> Result<(), ShipperError> {
        match log_record(base, scope_fields, lr, self.max_line_bytes, self.now) {
            Ok(r) => {
                self.budget.decoded(r.approx_size())?;
                self.records.push(r);
            }
            Err(m) => self.rejected.push(m),
        }
        Ok(())
    }
}

/// Turns a request into records and the reasons of the rejected ones, without limits but
/// the records' size.
pub fn to_records(
    request: proto::ExportLogsServiceRequest,
    max_line_bytes: usize,
    now: i64,
) -> (Vec<Record>, Vec<String>) {
    let mut c = Collect::new(Budget::unlimited(), max_line_bytes, now);
    for rl in request.resource_logs {
        let (base, base_fields) = c.base(rl.resource);
        for sl in rl.scope_logs {
            let scope_fields = Collect::scope(&base_fields, sl.scope);
            for lr in sl.log_records {
                // Without a budget, only a rejection can happen, which is counted.
                let _ = c.add(&base, &scope_fields, lr);
            }
        }
    }
    (c.records, c.rejected)
}

fn not_otlp(e: impl std::fmt::Display) -> ShipperError {
    ShipperError::Invalid(format!(
        "the body is not an OTLP ExportLogsServiceRequest in protobuf: {e}"
    ))
}

/// Field 1 of a ResourceLogs or ScopeLogs message (its resource or scope), merged as protobuf
/// merges repeated occurrences; each occurrence is held to `limits.max_line_bytes`.
fn header_message<M: Message + Default>(
    bytes: &[u8],
    what: &str,
    c: &Collect,
) -> Result<Option<M>, ShipperError> {
    let mut message: Option<M> = None;
    for field in wire_fields(bytes) {
        if let (1, Wire::Len(b)) = field.map_err(not_otlp)? {
            c.fits(what, b.len())?;
            message
                .get_or_insert_with(Default::default)
                .merge(b)
                .map_err(not_otlp)?;
        }
    }
    Ok(message)
}

/// Decodes a protobuf `ExportLogsServiceRequest` into `c`, log record by log record: the
/// records are counted on the wire first, and a request with too many is refused before
/// any is decoded.
pub fn decode_protobuf(bytes: &[u8], c: &mut Collect) -> Result<(), ShipperError> {
    let n = count_nested(bytes, &[1, 2, 2]).map_err(not_otlp)?;
    c.budget
        .entries_ahead(n)
        .map_err(|e| ShipperError::TooLarge(e.message.replace(" entries,", " log records,")))?;
    for field in wire_fields(bytes) {
        let rl = match field.map_err(not_otlp)? {
            (1, Wire::Len(rl)) => rl,
            (1, _) => return Err(not_otlp("resource_logs is not a message")),
            _ => continue,
        };
        let resource = header_message::<proto::Resource>(rl, "a resource", c)?;
        let (base, base_fields) = c.base(resource);
        for field in wire_fields(rl) {
            let sl = match field.map_err(not_otlp)? {
                (2, Wire::Len(sl)) => sl,
                (2, _) => return Err(not_otlp("scope_logs is not a message")),
                _ => continue,
            };
            let scope = header_message::<proto::InstrumentationScope>(sl, "a scope", c)?;
            let scope_fields = Collect::scope(&base_fields, scope);
            for field in wire_fields(sl) {
                let lr = match field.map_err(not_otlp)? {
                    (2, Wire::Len(lr)) => lr,
                    (2, _) => return Err(not_otlp("log_records is not a message")),
                    _ => continue,
                };
                if c.too_big_to_decode(lr.len()) {
                    continue;
                }
                let lr = proto::LogRecord::decode(lr).map_err(not_otlp)?;
                c.add(&base, &scope_fields, lr)?;
            }
        }
    }
    Ok(())
}

fn log_record(
    base: &Record,
    scope_fields: &Fields,
    lr: proto::LogRecord,
    max_line_bytes: usize,
    now: i64,
) -> Result<Record, String> {
    let mut r = base.clone();
    r.fields = scope_fields.clone();
    let t = if lr.time_unix_nano != 0 {
        lr.time_unix_nano
    } else {
        lr.observed_time_unix_nano
    };
    r.timestamp = match t {
        0 => now,
        t => i64::try_from(t).map_err(|_| {
            format!("timeUnixNano {t} is past the year 2262, the latest time logyard stores")
        })?,
    };
    let text_level = Level::normalize(&lr.severity_text);
    r.level = text_level.or_else(|| severity_level(lr.severity_number));
    if text_level.is_none() && !lr.severity_text.is_empty() {
        r.fields
            .insert("level_raw".into(), Value::Str(lr.severity_text.clone()));
    }
    r.message = match lr.body.and_then(|b| b.value) {
        None => String::new(),
        Some(Any::StringValue(s)) => s,
        Some(other) => any_to_json(&other).to_string(),
    };
    for kv in lr.attributes {
        r.fields.insert(kv.key, field_value(kv.value));
    }
    if !lr.event_name.is_empty() {
        r.fields
            .insert("event.name".into(), Value::Str(lr.event_name));
    }
    if !lr.trace_id.is_empty() {
        r.fields
            .insert("trace_id".into(), Value::Str(super::hex(&lr.trace_id)));
    }
    if !lr.span_id.is_empty() {
        r.fields
            .insert("span_id".into(), Value::Str(super::hex(&lr.span_id)));
    }
    let size = r.approx_size();
    if size > max_line_bytes {
        return Err(format!(
            "a log record is {size} bytes, over the limit of {max_line_bytes} (setting limits.max_line_bytes)"
        ));
    }
    Ok(r)
}

/// The level of an OTLP severity number: 1–4 TRACE, 5–8 DEBUG, 9–12 INFO, 13–16 WARN,
/// 17–20 ERROR, 21–24 FATAL.
pub fn severity_level(n: i32) -> Option<Level> {
    match n {
        1..=4 => Some(Level::Trace),
        5..=8 => Some(Level::Debug),
        9..=12 => Some(Level::Info),
        13..=16 => Some(Level::Warning),
        17..=20 => Some(Level::Error),
        21..=24 => Some(Level::Critical),
        _ => None,
    }
}

fn text_value(v: &Option<proto::AnyValue>) -> Option<String> {
    match v.as_ref()?.value.as_ref()? {
        Any::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn field_value(v: Option<proto::AnyValue>) -> Value {
    match v.and_then(|v| v.value) {
        None => Value::Str(String::new()),
        Some(Any::StringValue(s)) => Value::Str(s),
        Some(Any::BoolValue(b)) => Value::Bool(b),
        Some(Any::IntValue(i)) => Value::Int(i),
        Some(Any::DoubleValue(f)) => Value::Float(f),
        Some(other) => Value::Str(any_to_json(&other).to_string()),
    }
}

fn any_to_json(v: &Any) -> serde_json::Value {
    use serde_json::Value as J;
    fn opt(v: &proto::AnyValue) -> J {
        v.value.as_ref().map_or(J::Null, any_to_json)
    }
    match v {
        Any::StringValue(s) => J::String(s.clone()),
        Any::BoolValue(b) => J::Bool(*b),
        Any::IntValue(i) => J::from(*i),
        Any::DoubleValue(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Any::ArrayValue(a) => J::Array(a.values.iter().map(opt).collect()),
        Any::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, opt)))
                .collect(),
        ),
        Any::BytesValue(b) => J::String(super::hex(b)),
    }
}

// The OTLP JSON encoding: protobuf's JSON mapping with lowerCamelCase keys (the original
// snake_case names are accepted too), 64-bit integers as strings or numbers, and trace and
// span ids as hex.

type JsonMap = serde_json::Map<String, serde_json::Value>;

fn get<'a>(o: &'a JsonMap, camel: &str, snake: &str) -> Option<&'a serde_json::Value> {
    o.get(camel)
        .or_else(|| o.get(snake))
        .filter(|v| !v.is_null())
}

fn obj<'a>(v: &'a serde_json::Value, what: &str) -> Result<&'a JsonMap, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is not a JSON object"))
}

fn list<'a>(o: &'a JsonMap, camel: &str, snake: &str) -> Result<&'a [serde_json::Value], String> {
    match get(o, camel, snake) {
        None => Ok(&[]),
        Some(serde_json::Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{camel} is not a JSON array")),
    }
}

fn u64_of(v: &serde_json::Value, what: &str) -> Result<u64, String> {
    match v {
        serde_json::Value::String(s) => s.parse(),
        serde_json::Value::Number(n) => n.to_string().parse(),
        _ => return Err(format!("{what} is not an integer")),
    }
    .map_err(|_| format!("{what} {v} is not an unsigned 64-bit integer"))
}

fn i64_of(v: &serde_json::Value, what: &str) -> Result<i64, String> {
    match v {
        serde_json::Value::String(s) => s.parse(),
        serde_json::Value::Number(n) => n.to_string().parse(),
        _ => return Err(format!("{what} is not an integer")),
    }
    .map_err(|_| format!("{what} {v} is not a 64-bit integer"))
}

fn hex_bytes(v: &serde_json::Value, what: &str) -> Result<Vec<u8>, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{what} is not a hex string"))?;
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{what} {s:?} is not hex"));
    }
    Ok((0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect())
}

fn severity_number_of(v: &serde_json::Value) -> Result<i32, String> {
    if let Some(s) = v.as_str() {
        // The enum's name, e.g. SEVERITY_NUMBER_WARN2.
        const NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        if let Some(rest) = s.strip_prefix("SEVERITY_NUMBER_") {
            let (name, step) = match rest.find(|c: char| c.is_ascii_digit()) {
                Some(i) => (&rest[..i], rest[i..].parse::<i32>().unwrap_or(1)),
                None => (rest, 1),
            };
            if let Some(k) = NAMES.iter().position(|n| *n == name) {
                return Ok(k as i32 * 4 + step.clamp(1, 4));
            }
            return Ok(0);
        }
    }
    let n = i64_of(v, "severityNumber")?;
    i32::try_from(n).map_err(|_| format!("severityNumber {n} is out of range"))
}

fn kv_list(items: &[serde_json::Value], depth: usize) -> Result<Vec<proto::KeyValue>, String> {
    items
        .iter()
        .map(|item| {
            let o = obj(item, "an attribute")?;
            let key = get(o, "key", "key")
                .and_then(|k| k.as_str())
                .ok_or("an attribute has no \"key\"")?
                .to_string();
            let value = get(o, "value", "value")
                .map(|v| any_value(v, depth + 1))
                .transpose()?;
            Ok(proto::KeyValue { key, value })
        })
        .collect()
}

fn any_value(v: &serde_json::Value, depth: usize) -> Result<proto::AnyValue, String> {
    if depth > 64 {
        return Err("an attribute value is nested deeper than 64".into());
    }
    let o = obj(v, "an AnyValue")?;
    let value = if let Some(s) = get(o, "stringValue", "string_value") {
        Some(Any::StringValue(
            s.as_str().ok_or("stringValue is not a string")?.to_string(),
        ))
    } else if let Some(b) = get(o, "boolValue", "bool_value") {
        Some(Any::BoolValue(
            b.as_bool().ok_or("boolValue is not a boolean")?,
        ))
    } else if let Some(i) = get(o, "intValue", "int_value") {
        Some(Any::IntValue(i64_of(i, "intValue")?))
    } else if let Some(f) = get(o, "doubleValue", "double_value") {
        let f = match f {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        Some(Any::DoubleValue(f.ok_or("doubleValue is not a number")?))
    } else if let Some(a) = get(o, "arrayValue", "array_value") {
        let values = list(obj(a, "arrayValue")?, "values", "values")?
            .iter()
            .map(|v| any_value(v, depth + 1))
            .collect::<Result<_, _>>()?;
        Some(Any::ArrayValue(proto::ArrayValue { values }))
    } else if let Some(kv) = get(o, "kvlistValue", "kvlist_value") {
        let values = kv_list(
            list(obj(kv, "kvlistValue")?, "values", "values")?,
            depth + 1,
        )?;
        Some(Any::KvlistValue(proto::KeyValueList { values }))
    } else if let Some(b) = get(o, "bytesValue", "bytes_value") {
        // Base64 in the JSON mapping; kept as its text.
        Some(Any::StringValue(
            b.as_str().ok_or("bytesValue is not a string")?.to_string(),
        ))
    } else {
        None
    };
    Ok(proto::AnyValue { value })
}

/// Decodes the OTLP JSON encoding into `c`, one log record at a time (several requests one
/// after the other, as NDJSON, are read in turn). Log records are counted as they are read.
pub fn decode_json(bytes: &[u8], c: &mut Collect) -> Result<(), ShipperError> {
    #[derive(serde::Deserialize)]
    struct Root<'a> {
        #[serde(default, borrow, rename = "resourceLogs", alias = "resource_logs")]
        resource_logs: Option<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct ResourceLogs<'a> {
        #[serde(default, borrow)]
        resource: Option<&'a RawValue>,
        #[serde(default, borrow, rename = "scopeLogs", alias = "scope_logs")]
        scope_logs: Option<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct ScopeLogs<'a> {
        #[serde(default, borrow)]
        scope: Option<&'a RawValue>,
        #[serde(default, borrow, rename = "logRecords", alias = "log_records")]
        log_records: Option<&'a RawValue>,
    }
    fn invalid(e: impl std::fmt::Display) -> ShipperError {
        ShipperError::Invalid(e.to_string())
    }
    fn parse<'a, T: serde::Deserialize<'a>>(
        raw: &'a RawValue,
        what: &str,
    ) -> Result<T, ShipperError> {
        serde_json::from_str(raw.get()).map_err(|e| invalid(format!("{what} is not valid: {e}")))
    }
    fn each<'a>(
        raw: &'a RawValue,
        what: &str,
        f: impl FnMut(usize, &'a RawValue) -> Result<(), ShipperError>,
    ) -> Result<(), ShipperError> {
        if raw.get() == "null" {
            return Ok(());
        }
        match for_each_element(raw.get(), f) {
            Ok(()) => Ok(()),
            Err(ElementsError::Stopped(e)) => Err(e),
            Err(ElementsError::Json(e)) => Err(invalid(format!("{what} is not a JSON array: {e}"))),
        }
    }
    let mut any = false;
    for v in serde_json::Deserializer::from_slice(bytes).into_iter::<&RawValue>() {
        let v = v.map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
        any = true;
        let root: Root = parse(v, "the body")?;
        let Some(resource_logs) = root.resource_logs else {
            continue;
        };
        each(resource_logs, "resourceLogs", |_, rl| {
            let rl: ResourceLogs = parse(rl, "a resourceLogs item")?;
            let resource = match rl.resource.filter(|r| r.get() != "null") {
                Some(r) => {
                    c.fits("a resource", r.get().len())?;
                    let r: serde_json::Value = parse(r, "resource")?;
                    Some(proto::Resource {
                        attributes: kv_list(
                            list(
                                obj(&r, "resource").map_err(invalid)?,
                                "attributes",
                                "attributes",
                            )
                            .map_err(invalid)?,
                            0,
                        )
                        .map_err(invalid)?,
                    })
                }
                None => None,
            };
            let (base, base_fields) = c.base(resource);
            let Some(scope_logs) = rl.scope_logs else {
                return Ok(());
            };
            each(scope_logs, "scopeLogs", |_, sl| {
                let sl: ScopeLogs = parse(sl, "a scopeLogs item")?;
                let scope = match sl.scope.filter(|s| s.get() != "null") {
                    Some(s) => {
                        c.fits("a scope", s.get().len())?;
                        let s: serde_json::Value = parse(s, "scope")?;
                        Some(json_scope(&s).map_err(invalid)?)
                    }
                    None => None,
                };
                let scope_fields = Collect::scope(&base_fields, scope);
                let Some(log_records) = sl.log_records else {
                    return Ok(());
                };
                each(log_records, "logRecords", |_, lr| {
                    c.budget.entry().map_err(|e| {
                        ShipperError::TooLarge(e.message.replace(" entries ", " log records "))
                    })?;
                    if c.too_big_to_decode(lr.get().len()) {
                        return Ok(());
                    }
                    let lr: serde_json::Value = parse(lr, "a logRecords item")?;
                    let lr = json_log_record(obj(&lr, "a logRecords item").map_err(invalid)?)
                        .map_err(invalid)?;
                    c.add(&base, &scope_fields, lr)
                })
            })
        })?;
    }
    if !any {
        return Err(invalid(
            "the body is empty: send an ExportLogsServiceRequest",
        ));
    }
    Ok(())
}

fn json_scope(s: &serde_json::Value) -> Result<proto::InstrumentationScope, String> {
    let s = obj(s, "scope")?;
    let text = |k| {
        get(s, k, k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    Ok(proto::InstrumentationScope {
        name: text("name"),
        version: text("version"),
        attributes: kv_list(list(s, "attributes", "attributes")?, 0)?,
    })
}

/// Decodes the OTLP JSON encoding of an `ExportLogsServiceRequest`; several requests one
/// after the other (as NDJSON) are merged.
pub fn from_json(bytes: &[u8]) -> Result<proto::ExportLogsServiceRequest, String> {
    let mut request = proto::ExportLogsServiceRequest::default();
    let mut any = false;
    for v in serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>() {
        let v = v.map_err(|e| format!("the body is not JSON: {e}"))?;
        json_request(&v, &mut request)?;
        any = true;
    }
    if !any {
        return Err("the body is empty: send an ExportLogsServiceRequest".into());
    }
    Ok(request)
}

fn json_request(
    v: &serde_json::Value,
    request: &mut proto::ExportLogsServiceRequest,
) -> Result<(), String> {
    let root = obj(v, "the body")?;
    for rl in list(root, "resourceLogs", "resource_logs")? {
        let rl = obj(rl, "a resourceLogs item")?;
        let resource = match get(rl, "resource", "resource") {
            Some(r) => Some(proto::Resource {
                attributes: kv_list(list(obj(r, "resource")?, "attributes", "attributes")?, 0)?,
            }),
            None => None,
        };
        let mut scope_logs = Vec::new();
        for sl in list(rl, "scopeLogs", "scope_logs")? {
            let sl = obj(sl, "a scopeLogs item")?;
            let scope = match get(sl, "scope", "scope") {
                Some(s) => {
                    let s = obj(s, "scope")?;
                    let text = |k| {
                        get(s, k, k)
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .to_string()
                    };
                    Some(proto::InstrumentationScope {
                        name: text("name"),
                        version: text("version"),
                        attributes: kv_list(list(s, "attributes", "attributes")?, 0)?,
                    })
                }
                None => None,
            };
            let mut log_records = Vec::new();
            for lr in list(sl, "logRecords", "log_records")? {
                log_records.push(json_log_record(obj(lr, "a logRecords item")?)?);
            }
            scope_logs.push(proto::ScopeLogs { scope, log_records });
        }
        request.resource_logs.push(proto::ResourceLogs {
            resource,
            scope_logs,
        });
    }
    Ok(())
}

fn json_log_record(o: &JsonMap) -> Result<proto::LogRecord, String> {
    let mut lr = proto::LogRecord::default();
    if let Some(t) = get(o, "timeUnixNano", "time_unix_nano") {
        lr.time_unix_nano = u64_of(t, "timeUnixNano")?;
    }
    if let Some(t) = get(o, "observedTimeUnixNano", "observed_time_unix_nano") {
        lr.observed_time_unix_nano = u64_of(t, "observedTimeUnixNano")?;
    }
    if let Some(n) = get(o, "severityNumber", "severity_number") {
        lr.severity_number = severity_number_of(n)?;
    }
    if let Some(s) = get(o, "severityText", "severity_text") {
        lr.severity_text = s
            .as_str()
            .ok_or("severityText is not a string")?
            .to_string();
    }
    if let Some(b) = get(o, "body", "body") {
        lr.body = Some(any_value(b, 0)?);
    }
    lr.attributes = kv_list(list(o, "attributes", "attributes")?, 0)?;
    if let Some(t) = get(o, "traceId", "trace_id") {
        lr.trace_id = hex_bytes(t, "traceId")?;
    }
    if let Some(s) = get(o, "spanId", "span_id") {
        lr.span_id = hex_bytes(s, "spanId")?;
    }
    if let Some(e) = get(o, "eventName", "event_name") {
        lr.event_name = e.as_str().unwrap_or("").to_string();
    }
    Ok(lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_numbers() {
        let levels: Vec<_> = [0, 1, 4, 5, 9, 13, 16, 17, 21, 24, 25]
            .iter()
            .map(|n| severity_level(*n))
            .collect();
        use Level::*;
        assert_eq!(
            levels,
            [
                None,
                Some(Trace),
                Some(Trace),
                Some(Debug),
                Some(Info),
                Some(Warning),
                Some(Warning),
                Some(Error),
                Some(Critical),
                Some(Critical),
                None
            ]
        );
        assert_eq!(
            severity_number_of(&serde_json::json!("SEVERITY_NUMBER_WARN2")),
            Ok(14)
        );
        assert_eq!(severity_number_of(&serde_json::json!("9")), Ok(9));
    }

    #[test]
    fn json_requests_one_after_the_other_are_merged() {
        let one =
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"}}]}]}]}"#;
        let r = from_json(format!("{one}\n{one}\n").as_bytes()).unwrap();
        assert_eq!(r.resource_logs.len(), 2);
        assert!(from_json(b"  ").is_err());
        assert!(from_json(format!("{one}\n{{oops").as_bytes()).is_err());
        let deep = format!(
            "{{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[{{\"body\":{}{}}}]}}]}}]}}",
            "{\"arrayValue\":{\"values\":[".repeat(100),
            "]}}".repeat(100)
        );
        // Refused (by the JSON parser's nesting limit), never a stack overflow.
        assert!(from_json(deep.as_bytes()).is_err());
    }
}
