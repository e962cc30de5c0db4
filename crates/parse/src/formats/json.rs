//! JSON objects, one per line: well-known keys (the [`crate::roles`] table's `Json` keys)
//! become the record's time, level, message, agent, host and source; nested objects are flattened as `a.b.c`; the rest are fields.
//!
//! The object is read straight into the record through a serde visitor, without building a
//! `serde_json::Value` tree first.

use std::borrow::Cow;
use std::fmt;

use logyard_model::{Column, JsonStr, Record, Value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;

use super::{Cx, Miss, Res, TIME_ERROR};
use crate::fields::add_field;
use crate::level::{set_level, set_level_scaled, Scale};
use crate::roles::{key_column, Dialect};
use crate::time::{epoch_int, epoch_to_ns, parse_stamp_with, Stamp};

/// Objects nested deeper than this are kept as JSON text instead of being flattened.
pub const MAX_DEPTH: usize = 8;

/// The scale of a numeric level under a level key: Python's `levelno` and `levelname` (10 DEBUG … 50
/// CRITICAL), syslog's `severity` (0 emerg … 7 debug), and bunyan/pino's 10 trace … 60 fatal
/// (and syslog's 0 to 7, as GELF writes them) under the other keys.
fn level_scale(key: &str) -> Scale {
    match key {
        "levelno" | "levelname" => Scale::Python,
        "severity" => Scale::Syslog,
        _ => Scale::Pino,
    }
}

/// Parses a JSON object line into the record.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let b = line.as_bytes();
    if b.first() != Some(&b'{') {
        return Err(Miss::No);
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let mut sink = Sink { rec, cx, seen: 0 };
    let result = (&mut de)
        .deserialize_map(Object {
            sink: &mut sink,
            prefix: "",
            depth: 0,
        })
        .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(Miss::Bad("json_error", e.to_string())),
    }
}

/// Where values go; `seen` has one bit per role already taken (the first alias wins).
struct Sink<'r, 'c, 'a> {
    rec: &'r mut Record,
    cx: &'c Cx<'a>,
    seen: u16,
}

/// A scalar JSON value, borrowed from the line when it has no escapes.
enum Scalar<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl Sink<'_, '_, '_> {
    /// Puts a value under its key; `column` is the key's column when already looked up.
    fn put(&mut self, key: &str, column: Option<Option<Column>>, value: Scalar) {
        let column = column.unwrap_or_else(|| key_column(key, Dialect::Json));
        if let Some(column) = column {
            let bit = 1u16 << column.index();
            if self.seen & bit == 0 {
                self.seen |= bit;
                if self.put_role(column, key, &value) {
                    return;
                }
                self.seen &= !bit;
            }
        }
        let v = match value {
            Scalar::Str(s) => Value::Str(s.into_owned()),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(f) => Value::Float(f),
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Null => Value::Str(String::new()),
        };
        add_field(self.rec, key, v);
    }

    /// Sets the column the key names; false when the value does not fit it (it then
    /// becomes a field).
    fn put_role(&mut self, column: Column, key: &str, value: &Scalar) -> bool {
        let rec = &mut *self.rec;
        match (column, value) {
            (Column::Timestamp, Scalar::Str(s)) => {
                match parse_stamp_with(s, self.cx.time_format, self.cx.zone, self.cx.now) {
                    Stamp::Ok(ns) => rec.timestamp = ns,
                    Stamp::Invalid(reason) => {
                        rec.fields.insert(
                            TIME_ERROR.into(),
                            Value::Str(format!("invalid timestamp {s:?}: {reason}")),
                        );
                        return false;
                    }
                    // `date` often holds a day alone, or a word: a field, not an error.
                    Stamp::Unknown if key == "date" => return false,
                    Stamp::Unknown => {
                        rec.fields.insert(
                            TIME_ERROR.into(),
                            Value::Str(format!("unknown timestamp format {s:?}")),
                        );
                        return false;
                    }
                }
            }
            (Column::Timestamp, Scalar::Int(i)) => match epoch_int(*i) {
                Some(ns) => rec.timestamp = ns,
                None => return false,
            },
            (Column::Timestamp, Scalar::Float(f)) => match epoch_to_ns(*f) {
                Some(ns) => rec.timestamp = ns,
                None => return false,
            },
            (Column::Level, Scalar::Str(s)) => set_level(rec, s),
            (Column::Level, Scalar::Int(i)) => set_level_scaled(rec, *i, level_scale(key)),
            (Column::Message, Scalar::Str(s)) => rec.message = s.to_string(),
            (Column::Agent, Scalar::Str(s)) => rec.agent = s.to_string(),
            (Column::Host, Scalar::Str(s)) => rec.host = s.to_string(),
            (Column::Source, Scalar::Str(s)) => rec.source = s.to_string(),
            _ => return false,
        }
        true
    }
}

/// Visits an object whose keys get `prefix`.
struct Object<'s, 'r, 'c, 'a, 'p> {
    sink: &'s mut Sink<'r, 'c, 'a>,
    prefix: &'p str,
    depth: usize,
}

impl<'de> Visitor<'de> for Object<'_, '_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(JsonStr(key)) = map.next_key::<JsonStr<'de>>()? {
            // A top-level key is looked up once, here: the exported form of a record keeps
            // its fields under `fields` (and `metadata`), merged into the record's.
            let column = (self.depth == 0).then(|| key_column(&key, Dialect::Json));
            let merge = column == Some(Some(Column::Fields));
            let full: Cow<str> = if merge {
                Cow::Borrowed("")
            } else if self.prefix.is_empty() {
                Cow::Borrowed(&key)
            } else {
                Cow::Owned(format!("{}.{key}", self.prefix))
            };
            map.next_value_seed(ValueSeed {
                sink: &mut *self.sink,
                key: &full,
                column,
                depth: self.depth + 1,
                merge,
            })?;
        }
        Ok(())
    }
}

/// Reads one value under a (flattened) key.
struct ValueSeed<'s, 'r, 'c, 'a, 'k> {
    sink: &'s mut Sink<'r, 'c, 'a>,
    key: &'k str,
    /// The column the key names, when it was already looked up.
    column: Option<Option<Column>>,
    depth: usize,
    merge: bool,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.depth > MAX_DEPTH {
            let v = serde_json::Value::deserialize(d)?;
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            self.sink
                .put(self.key, self.column, Scalar::Str(Cow::Owned(text)));
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.sink.put(self.key, self.column, Scalar::Bool(v));
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.sink.put(self.key, self.column, Scalar::Int(v));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.sink.put(self.key, self.column, Scalar::Int(i)),
            Err(_) => self
                .sink
                .put(self.key, self.column, Scalar::Float(v as f64)),
        }
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.sink.put(self.key, self.column, Scalar::Float(v));
        Ok(())
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.sink
            .put(self.key, self.column, Scalar::Str(Cow::Borrowed(v)));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.sink.put(
            self.key,
            self.column,
            Scalar::Str(Cow::Owned(v.to_string())),
        );
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.sink.put(self.key, self.column, Scalar::Null);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Arrays are kept as their JSON text.
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<serde_json::Value>()? {
            items.push(v);
        }
        let text = serde_json::Value::Array(items).to_string();
        self.sink
            .put(self.key, self.column, Scalar::Str(Cow::Owned(text)));
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let prefix = if self.merge { "" } else { self.key };
        Object {
            sink: self.sink,
            prefix,
            depth: self.depth,
        }
        .visit_map(map)
    }
}
