//! The log record, its id and its field values.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::level::Level;
use crate::schema::{self, Column};
use crate::time::format_rfc3339;

/// The extra fields of a record, sorted by key.
pub type Fields = BTreeMap<String, Value>;

/// A field value: a string, an integer, a float or a boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
}

impl Value {
    /// Converts a JSON value; nested arrays and objects become their JSON text.
    pub fn from_json(value: &serde_json::Value) -> Value {
        match value {
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Null => Value::Str(String::new()),
            other => Value::Str(other.to_string()),
        }
    }

    /// Returns the value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// The stable, sortable id of a record: its timestamp, then its store sequence number.
///
/// Printed as 32 lower-case hex digits, so that the text sorts as the pair does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    /// Event time in nanoseconds since the Unix epoch.
    pub timestamp: i64,
    /// The store's sequence number, unique per record.
    pub seq: u64,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Flipping the sign bit makes negative timestamps sort before positive ones.
        let ts = (self.timestamp as u64) ^ (1 << 63);
        write!(f, "{ts:016x}{:016x}", self.seq)
    }
}

impl FromStr for RecordId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid record id {s:?}: expected 32 hex digits");
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let ts = u64::from_str_radix(&s[..16], 16).map_err(|_| bad())?;
        let seq = u64::from_str_radix(&s[16..], 16).map_err(|_| bad())?;
        Ok(RecordId {
            timestamp: (ts ^ (1 << 63)) as i64,
            seq,
        })
    }
}

/// One log entry, normalised.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// Event time in nanoseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The store's sequence number; 0 until the store accepts the record.
    pub seq: u64,
    /// The normalised level, if known.
    pub level: Option<Level>,
    /// The service, app, program or container that wrote the line.
    pub agent: String,
    /// The host name.
    pub host: String,
    /// Where the record was collected (`http`, `file:/var/log/app.log`, …).
    pub source: String,
    /// The human message.
    pub message: String,
    /// Everything else, by key.
    pub fields: Fields,
    /// The original text line, when kept.
    pub raw: Option<String>,
}

impl Record {
    /// Creates a record with a time and a message, everything else empty.
    pub fn new(timestamp: i64, message: impl Into<String>) -> Record {
        Record {
            timestamp,
            message: message.into(),
            ..Record::default()
        }
    }

    /// Returns the record's id.
    pub fn id(&self) -> RecordId {
        RecordId {
            timestamp: self.timestamp,
            seq: self.seq,
        }
    }

    /// Returns an estimate of the memory the record holds, in bytes.
    pub fn approx_size(&self) -> usize {
        let fields: usize = self
            .fields
            .iter()
            .map(|(k, v)| {
                k.len()
                    + 16
                    + match v {
                        Value::Str(s) => s.len(),
                        _ => 8,
                    }
            })
            .sum();
        64 + self.agent.len()
            + self.host.len()
            + self.source.len()
            + self.message.len()
            + self.raw.as_ref().map_or(0, |r| r.len())
            + fields
    }

    /// Puts the record's `timestamp` (RFC 3339), `level` (when known), `agent`, `host`,
    /// `source` and `message` into a JSON object, under their columns' names.
    pub fn put_columns(&self, entry: &mut serde_json::Map<String, serde_json::Value>) {
        entry.insert(
            Column::Timestamp.name().into(),
            format_rfc3339(self.timestamp).into(),
        );
        if let Some(level) = self.level {
            entry.insert(Column::Level.name().into(), level.as_str().into());
        }
        for (column, text) in [
            (Column::Agent, &self.agent),
            (Column::Host, &self.host),
            (Column::Source, &self.source),
            (Column::Message, &self.message),
        ] {
            entry.insert(column.name().into(), text.clone().into());
        }
    }

    /// Renders the record as an API entry: `id`, `timestamp`, `level`, `agent`, `host`,
    /// `source`, `message`, `fields` and its alias `metadata`, and `raw` when asked for.
    pub fn to_json(&self, include_raw: bool) -> serde_json::Value {
        let fields: serde_json::Map<String, serde_json::Value> = self
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        let mut entry = serde_json::Map::new();
        entry.insert(schema::ID.into(), self.id().to_string().into());
        self.put_columns(&mut entry);
        entry
            .entry(Column::Level.name())
            .or_insert(serde_json::Value::Null);
        entry.insert(Column::Fields.name().into(), fields.clone().into());
        entry.insert(schema::METADATA.into(), fields.into());
        if include_raw {
            entry.insert(
                Column::Raw.name().into(),
                self.raw
                    .clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String),
            );
        }
        serde_json::Value::Object(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_as_text_and_round_trip() {
        let ids = [
            RecordId {
                timestamp: -5,
                seq: 9,
            },
            RecordId {
                timestamp: 0,
                seq: 1,
            },
            RecordId {
                timestamp: 0,
                seq: 2,
            },
            RecordId {
                timestamp: 1_705_312_200_000_000_000,
                seq: 0,
            },
        ];
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_string() < pair[1].to_string());
        }
        for id in ids {
            assert_eq!(id.to_string().parse::<RecordId>(), Ok(id));
        }
        assert!("xyz".parse::<RecordId>().is_err());
    }

    #[test]
    fn json_entry_has_fields_under_both_names() {
        let mut r = Record::new(0, "hello");
        r.fields.insert("user".into(), Value::Str("ana".into()));
        let json = r.to_json(false);
        assert_eq!(json["fields"]["user"], "ana");
        assert_eq!(json["metadata"]["user"], "ana");
        assert_eq!(json["timestamp"], "1970-01-01T00:00:00Z");
        assert!(json.get("raw").is_none());
    }
}
