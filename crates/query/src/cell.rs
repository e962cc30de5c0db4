//! Cells: the values that pipes read from records and put into tables, and field names.

use std::cmp::Ordering;
use std::fmt;

use arrow_array::{Array, RecordBatch};
use logyard_model::{format_rfc3339, Column, Record, Value};
use logyard_store::field_columns::{FieldArray, StoredFields};
use logyard_store::schema::{col, string_at, timestamps};
use logyard_store::Columns;

use crate::keys::FieldKeys;

/// One value of a table or of a record's field; `Time` prints as RFC 3339.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value: the field is absent.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A timestamp, nanoseconds since the epoch.
    Time(i64),
    /// A string.
    Str(String),
}

impl Cell {
    /// Converts a field value.
    pub fn from_value(v: &Value) -> Cell {
        match v {
            Value::Bool(b) => Cell::Bool(*b),
            Value::Int(i) => Cell::Int(*i),
            Value::Float(f) => Cell::Float(*f),
            Value::Str(s) => Cell::Str(s.clone()),
        }
    }

    /// Returns the cell as a number, if it is one or is text of one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) if f.is_finite() => Some(*f),
            Cell::Time(t) => Some(*t as f64),
            Cell::Str(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        }
    }

    /// Returns the cell as JSON: numbers as numbers, times as RFC 3339 text, null as null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Bool(b) => (*b).into(),
            Cell::Int(i) => (*i).into(),
            Cell::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Cell::Time(t) => format_rfc3339(*t).into(),
            Cell::Str(s) => s.clone().into(),
        }
    }

    /// Returns a number cell: an integer when the value is whole and exact, else a float.
    pub fn number(f: f64) -> Cell {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            Cell::Int(f as i64)
        } else {
            Cell::Float(f)
        }
    }

    /// Returns the text a grouping key uses; `None` for null.
    pub fn key_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Cell::Bool(_) => 0,
            Cell::Int(_) | Cell::Float(_) | Cell::Time(_) => 1,
            Cell::Str(_) => 2,
            Cell::Null => 3,
        }
    }

    /// Orders cells: booleans, then numbers by value, then strings, then nulls.
    pub fn total_cmp(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Time(a), Cell::Time(b)) => a.cmp(b),
            (Cell::Str(a), Cell::Str(b)) => a.cmp(b),
            (a, b) if a.rank() == 1 && b.rank() == 1 => {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    /// Returns an estimate of the memory the cell holds.
    pub fn size(&self) -> usize {
        match self {
            Cell::Str(s) => 24 + s.len(),
            _ => 16,
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => Ok(()),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(x) => write!(f, "{x}"),
            Cell::Time(t) => f.write_str(&format_rfc3339(*t)),
            Cell::Str(s) => f.write_str(s),
        }
    }
}

/// Which part of a record a field name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// `timestamp` or `_time`.
    Time,
    /// `level`.
    Level,
    /// `agent`.
    Agent,
    /// `host`.
    Host,
    /// `source`.
    Source,
    /// `message` or `_msg`.
    Message,
    /// `raw`.
    Raw,
    /// Any other name: a key of the record's fields.
    Key,
}

/// A field named in a pipe: a record column or a key of the record's fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRef {
    /// The name as written.
    pub name: String,
}

impl FieldRef {
    /// Names a field.
    pub fn new(name: impl Into<String>) -> FieldRef {
        FieldRef { name: name.into() }
    }

    /// Returns which part of a record the name refers to.
    pub fn kind(&self) -> FieldKind {
        match logyard_model::schema::column_named(&self.name) {
            Some(Column::Timestamp) => FieldKind::Time,
            Some(Column::Level) => FieldKind::Level,
            Some(Column::Agent) => FieldKind::Agent,
            Some(Column::Host) => FieldKind::Host,
            Some(Column::Source) => FieldKind::Source,
            Some(Column::Message) => FieldKind::Message,
            Some(Column::Raw) => FieldKind::Raw,
            // `seq` and `fields` are not fields of the query language: keys of that name.
            Some(Column::Seq | Column::Fields) | None => FieldKind::Key,
        }
    }

    /// Returns the store column holding the field.
    pub fn column(&self) -> usize {
        match self.kind() {
            FieldKind::Time => col::TIMESTAMP,
            FieldKind::Level => col::LEVEL,
            FieldKind::Agent => col::AGENT,
            FieldKind::Host => col::HOST,
            FieldKind::Source => col::SOURCE,
            FieldKind::Message => col::MESSAGE,
            FieldKind::Raw => col::RAW,
            FieldKind::Key => col::FIELDS,
        }
    }

    /// Reads the field of a record.
    pub fn of_record(&self, r: &Record) -> Cell {
        let text = |s: &str| Cell::Str(s.to_string());
        match self.kind() {
            FieldKind::Time => Cell::Time(r.timestamp),
            FieldKind::Level => r.level.map_or(Cell::Null, |l| text(l.as_str())),
            FieldKind::Agent => text(&r.agent),
            FieldKind::Host => text(&r.host),
            FieldKind::Source => text(&r.source),
            FieldKind::Message => text(&r.message),
            FieldKind::Raw => r.raw.as_deref().map_or(Cell::Null, text),
            FieldKind::Key => r
                .fields
                .get(&self.name)
                .map_or(Cell::Null, Cell::from_value),
        }
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(f, &self.name)
    }
}

/// Writes a name bare when the parser reads it back as one word, quoted otherwise.
pub(crate) fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| crate::parse::is_word_char(c) && c != ',')
        && !matches!(name, "by" | "as" | "desc" | "asc" | "AND" | "OR" | "NOT");
    if bare {
        f.write_str(name)
    } else {
        write!(f, "\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Returns the columns to read for some fields.
pub(crate) fn columns_of(fields: &[FieldRef]) -> Columns {
    Columns::of(&fields.iter().map(FieldRef::column).collect::<Vec<_>>())
}

/// Returns the keys of the field columns to read for some fields.
pub(crate) fn keys_of(fields: &[FieldRef]) -> FieldKeys {
    FieldKeys::of(
        fields
            .iter()
            .filter(|f| f.kind() == FieldKind::Key)
            .map(|f| f.name.clone()),
    )
}

/// Reads fields at rows of a block read with at least [`columns_of`] them.
pub(crate) struct BlockFields<'a> {
    batch: &'a RecordBatch,
    fields: &'a [FieldRef],
    /// For each field, its field column when the block has one.
    typed: Vec<Option<FieldArray<'a>>>,
    /// The `fields` column, when a field is not in a field column at some rows.
    rest: Option<&'a dyn Array>,
}

impl<'a> BlockFields<'a> {
    pub(crate) fn new(batch: &'a RecordBatch, fields: &'a [FieldRef]) -> BlockFields<'a> {
        let keys = fields.iter().any(|f| f.kind() == FieldKind::Key);
        let stored = keys.then(|| StoredFields::of(batch).ok()).flatten();
        let typed = fields
            .iter()
            .map(|f| {
                let stored = stored.as_ref().filter(|_| f.kind() == FieldKind::Key)?;
                stored.column(&f.name).copied()
            })
            .collect();
        BlockFields {
            batch,
            fields,
            typed,
            rest: stored.and_then(|s| s.rest),
        }
    }

    /// Returns the cells of the fields at a row, in the order of the fields.
    pub(crate) fn row(&self, row: usize, out: &mut Vec<Cell>) {
        out.clear();
        // The row's object in `fields`, parsed once, if a field needs it.
        let needs_json = self.fields.iter().zip(&self.typed).any(|(f, t)| {
            f.kind() == FieldKind::Key && t.as_ref().is_none_or(|a| !a.is_valid(row))
        });
        let json = if needs_json {
            self.rest.and_then(|c| string_at(c, row)).and_then(|t| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t).ok()
            })
        } else {
            None
        };
        for (f, typed) in self.fields.iter().zip(&self.typed) {
            let kind = f.kind();
            let cell = match kind {
                FieldKind::Time => Cell::Time(timestamps(self.batch)[row]),
                FieldKind::Key => match typed.as_ref().and_then(|a| a.value(row)) {
                    Some(value) => Cell::from_value(&value),
                    None => json
                        .as_ref()
                        .and_then(|m| m.get(&f.name))
                        .map_or(Cell::Null, |v| Cell::from_value(&Value::from_json(v))),
                },
                _ => self
                    .batch
                    .column_by_name(col::NAMES[f.column()])
                    .and_then(|c| string_at(c.as_ref(), row))
                    .map_or(Cell::Null, |s| Cell::Str(s.to_string())),
            };
            out.push(cell);
        }
    }
}
