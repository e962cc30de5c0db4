//! The schema of the store's blocks: their columns in file order ([`col`]), sets of them to
//! read ([`Columns`]), the Arrow schema every segment is written with ([`schema`]), and the
//! columnar form of records both ways ([`records_to_batch`], [`batch_to_records`]) with the
//! accessors the readers of a block use ([`timestamps`], [`seqs`], [`string_at`]). With a
//! [`crate::Snapshot`], this is all a reader of the store needs.

use std::borrow::Borrow;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    Int32Builder, StringBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hashbrown::HashMap;
use logyard_model::{Column, Fields, Level, Record, Value};

use crate::error::StoreError;

/// The columns of a segment, in file order: the indices of [`Column`]s.
pub mod col {
    use logyard_model::Column;

    /// Event time, nanoseconds, UTC.
    pub const TIMESTAMP: usize = Column::Timestamp.index();
    /// Store sequence number.
    pub const SEQ: usize = Column::Seq.index();
    /// Level name, dictionary-encoded, null when unknown.
    pub const LEVEL: usize = Column::Level.index();
    /// Agent, dictionary-encoded.
    pub const AGENT: usize = Column::Agent.index();
    /// Host, dictionary-encoded.
    pub const HOST: usize = Column::Host.index();
    /// Source, dictionary-encoded.
    pub const SOURCE: usize = Column::Source.index();
    /// Message text.
    pub const MESSAGE: usize = Column::Message.index();
    /// Original line, null when not kept.
    pub const RAW: usize = Column::Raw.index();
    /// The other fields as a JSON object, null when there are none.
    pub const FIELDS: usize = Column::Fields.index();
    /// Column names, by index.
    pub const NAMES: [&str; 9] = {
        let mut names = [""; 9];
        let mut i = 0;
        while i < names.len() {
            names[i] = Column::ALL[i].name();
            i += 1;
        }
        names
    };
}

/// A set of columns to read, as a bit mask over [`col`] indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns(pub u16);

impl Columns {
    /// Every column.
    pub const ALL: Columns = Columns((1 << 9) - 1);

    /// Not a column but a way to read: the message column of a segment block comes as a
    /// dictionary array (`Dictionary(Int32, Utf8)`) when its pages are dictionary-encoded,
    /// so that a filter looks at each distinct message once. Other reads give it as `Utf8`.
    pub const MESSAGE_DICTIONARY: Columns = Columns(1 << 15);

    /// Not a column but a way to read: the fields of a segment block come as they are
    /// stored, `fields` holding only the values no field column took and each field column
    /// after the columns asked for, named `f.<key>` (see the `field_columns` module). Other
    /// reads, and blocks of the memtable, give every field in `fields`.
    pub const FIELD_COLUMNS: Columns = Columns(1 << 14);

    /// Returns the set with the columns (and read options) of both.
    pub fn with(self, other: Columns) -> Columns {
        Columns(self.0 | other.0)
    }

    /// Returns the set holding the given column indices.
    pub fn of(indices: &[usize]) -> Columns {
        Columns(indices.iter().fold(0, |m, &i| m | (1 << i)))
    }

    /// Returns whether a column is in the set.
    pub fn has(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }

    /// Returns whether every column (and read option) of `other` is in the set.
    pub fn has_all(self, other: Columns) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn indices(self) -> impl Iterator<Item = usize> {
        (0..col::NAMES.len()).filter(move |&i| self.has(i))
    }
}

/// Returns the Arrow schema of every segment.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
            let field = |c: Column, data_type: DataType, nullable: bool| {
                Field::new(c.name(), data_type, nullable)
            };
            Arc::new(Schema::new(vec![
                field(
                    Column::Timestamp,
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                    false,
                ),
                field(Column::Seq, DataType::UInt64, false),
                field(Column::Level, dict(), true),
                field(Column::Agent, dict(), false),
                field(Column::Host, dict(), false),
                field(Column::Source, dict(), false),
                field(Column::Message, DataType::Utf8, false),
                field(Column::Raw, DataType::Utf8, true),
                field(Column::Fields, DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// Builds the columnar form of records, in the order given.
pub fn records_to_batch<R: Borrow<Record>>(records: &[R]) -> RecordBatch {
    let columns: Vec<ArrayRef> = (0..col::NAMES.len())
        .map(|c| record_column(records, c))
        .collect();
    RecordBatch::try_new(schema(), columns).expect("columns match the schema")
}

/// Builds one column (a [`col`] index) of records, in the order given, as in the segment
/// schema.
pub fn record_column<R: Borrow<Record>>(records: &[R], column: usize) -> ArrayRef {
    let n = records.len();
    let rows = records.iter().map(Borrow::borrow);
    match column {
        col::TIMESTAMP => {
            let mut b = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
            rows.for_each(|r| b.append_value(r.timestamp));
            Arc::new(b.finish())
        }
        col::SEQ => {
            let mut b = UInt64Builder::with_capacity(n);
            rows.for_each(|r| b.append_value(r.seq));
            Arc::new(b.finish())
        }
        col::LEVEL => dictionary(n, rows.map(|r| r.level.map(|l| l.as_str()))),
        col::AGENT => dictionary(n, rows.map(|r| Some(r.agent.as_str()))),
        col::HOST => dictionary(n, rows.map(|r| Some(r.host.as_str()))),
        col::SOURCE => dictionary(n, rows.map(|r| Some(r.source.as_str()))),
        col::MESSAGE => {
            let mut b = StringBuilder::with_capacity(n, n * 64);
            rows.for_each(|r| b.append_value(&r.message));
            Arc::new(b.finish())
        }
        col::RAW => {
            let mut b = StringBuilder::new();
            rows.for_each(|r| b.append_option(r.raw.as_deref()));
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::new();
            let mut json = Vec::new();
            rows.for_each(|r| append_fields(&mut b, &mut json, &r.fields));
            Arc::new(b.finish())
        }
    }
}

/// Appends a row of the `fields` column: the fields (sorted by key) as a JSON object, null
/// when there are none. Written straight from the pairs: the same text as a `serde_json`
/// object of the values' `to_json` (non-finite floats become `null` both ways). `json` is
/// scratch space kept from row to row.
pub(crate) fn append_fields<'a>(
    column: &mut StringBuilder,
    json: &mut Vec<u8>,
    fields: impl IntoIterator<Item = (&'a String, &'a Value), IntoIter: ExactSizeIterator>,
) {
    let fields = fields.into_iter();
    if fields.len() == 0 {
        column.append_null();
        return;
    }
    json.clear();
    serde::Serializer::collect_map(&mut serde_json::Serializer::new(&mut *json), fields)
        .expect("fields serialize");
    column.append_value(std::str::from_utf8(json).expect("serde_json writes UTF-8"));
}

/// A dictionary column of few distinct values, keys in order of first appearance. Rows
/// come in runs of one agent, host or source: a value equal to the row before takes its key
/// without a lookup.
fn dictionary<'a>(n: usize, values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut keys = Int32Builder::with_capacity(n);
    let mut distinct: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, i32> = HashMap::new();
    let mut last: Option<(&str, i32)> = None;
    for v in values {
        let Some(v) = v else {
            keys.append_null();
            continue;
        };
        let key = match last {
            Some((text, key)) if text == v => key,
            _ => {
                let key = *index.entry(v).or_insert_with(|| {
                    distinct.push(v);
                    (distinct.len() - 1) as i32
                });
                last = Some((v, key));
                key
            }
        };
        keys.append_value(key);
    }
    let values: ArrayRef = Arc::new(StringArray::from(distinct));
    Arc::new(DictionaryArray::<Int32Type>::try_new(keys.finish(), values).expect("keys in range"))
}

/// Reads a string column (plain or dictionary) at a row; `None` for null.
pub fn string_at(column: &dyn Array, row: usize) -> Option<&str> {
    if column.is_null(row) {
        return None;
    }
    if let Some(s) = column.as_any().downcast_ref::<StringArray>() {
        return Some(s.value(row));
    }
    let dict = column
        .as_any()
        .downcast_ref::<DictionaryArray<Int32Type>>()?;
    let values = dict.values().as_any().downcast_ref::<StringArray>()?;
    let key = dict.keys().value(row);
    Some(values.value(key as usize))
}

/// Returns the timestamps of a batch that holds the timestamp column.
pub fn timestamps(batch: &RecordBatch) -> &[i64] {
    let column = batch
        .column_by_name(Column::Timestamp.name())
        .expect("timestamp column read");
    if let Some(a) = column.as_any().downcast_ref::<TimestampNanosecondArray>() {
        return a.values();
    }
    column
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("timestamp column is i64")
        .values()
}

/// Returns the sequence numbers of a batch that holds the seq column.
pub fn seqs(batch: &RecordBatch) -> &[u64] {
    batch
        .column_by_name(Column::Seq.name())
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .expect("seq column read")
        .values()
}

/// The names of a batch's columns, in order (for tests).
#[cfg(test)]
pub(crate) fn column_names(batch: &RecordBatch) -> Vec<&str> {
    let fields = batch.schema_ref().fields();
    fields.iter().map(|f| f.name().as_str()).collect()
}

/// Rebuilds whole records from some rows of a batch that holds every column.
pub fn batch_to_records(batch: &RecordBatch, rows: &[usize]) -> Result<Vec<Record>, StoreError> {
    let column = |c: Column| {
        batch
            .column_by_name(c.name())
            .ok_or_else(|| StoreError::Corrupt(format!("column {} missing", c.name())))
    };
    let (level, agent, host, source) = (
        column(Column::Level)?,
        column(Column::Agent)?,
        column(Column::Host)?,
        column(Column::Source)?,
    );
    let (message, raw, fields) = (
        column(Column::Message)?,
        column(Column::Raw)?,
        column(Column::Fields)?,
    );
    let ts = timestamps(batch);
    let seq = seqs(batch);
    let mut out = Vec::with_capacity(rows.len());
    for &row in rows {
        let fields = match string_at(fields.as_ref(), row) {
            None => Fields::new(),
            Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(obj)) => obj
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
                _ => {
                    return Err(StoreError::Corrupt(
                        "fields column is not a JSON object".into(),
                    ))
                }
            },
        };
        out.push(Record {
            timestamp: ts[row],
            seq: seq[row],
            level: string_at(level.as_ref(), row).and_then(Level::normalize),
            agent: string_at(agent.as_ref(), row)
                .unwrap_or_default()
                .to_string(),
            host: string_at(host.as_ref(), row)
                .unwrap_or_default()
                .to_string(),
            source: string_at(source.as_ref(), row)
                .unwrap_or_default()
                .to_string(),
            message: string_at(message.as_ref(), row)
                .unwrap_or_default()
                .to_string(),
            raw: string_at(raw.as_ref(), row).map(str::to_string),
            fields,
        });
    }
    Ok(out)
}
