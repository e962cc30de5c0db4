//! Fields kept as columns of their own in a segment.
//!
//! A key present in enough of a segment's rows is written as a typed Parquet column named
//! [`FIELD_COLUMN_PREFIX`]`<key>` after the nine of [`crate::schema::schema`]: strings,
//! integers, floats or booleans, whichever the key's values mostly are. Those values leave
//! the `fields` column, which keeps the rest of each row's fields as a JSON object (null
//! when none are left). Parquet's dictionary and integer encodings then store a status
//! code or a user name in a few bits, where the JSON object repeated the key and the
//! quotes on every row.
//!
//! A segment reads back as it was given: [`assemble`] puts the values back into the JSON
//! text of `fields`, byte for byte the text [`crate::schema::records_to_batch`] writes, so
//! that every reader of a block sees the nine columns alone. A reader that looks at fields
//! itself reads them as stored instead ([`crate::schema::Columns::FIELD_COLUMNS`],
//! [`StoredFields`]), with only the columns of the keys it needs
//! (`Segment::read_block_keys`), and compares the typed values without parsing JSON.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use hashbrown::HashMap;
use logyard_model::{JsonStr, Record, Value};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::StoreError;
use crate::schema::{append_fields, col, record_column, schema, string_at};

/// The start of a field column's name; the rest is the field's key.
pub const FIELD_COLUMN_PREFIX: &str = "f.";

/// How a segment chooses the fields it keeps as columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldColumnRule {
    /// At most this many field columns per segment (the most frequent keys); 0 keeps every
    /// field in the `fields` column.
    pub max: usize,
    /// A key becomes a column when at least this share of the segment's rows hold a value
    /// of its most frequent type.
    pub min_share: f64,
}

impl FieldColumnRule {
    /// The default: up to 32 columns, for keys in at least one row in 20.
    pub const DEFAULT: FieldColumnRule = FieldColumnRule {
        max: 32,
        min_share: 0.05,
    };

    /// No field columns: every field in the `fields` column, as segments were first written.
    pub const NONE: FieldColumnRule = FieldColumnRule {
        max: 0,
        min_share: 1.0,
    };
}

/// The type of a field column. Values of its key of another type stay in `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Strings (`Utf8`, dictionary-encoded by Parquet while that pays).
    Str,
    /// Signed 64-bit integers.
    Int,
    /// 64-bit floats.
    Float,
    /// Booleans.
    Bool,
}

impl FieldType {
    const ALL: [FieldType; 4] = [
        FieldType::Str,
        FieldType::Int,
        FieldType::Float,
        FieldType::Bool,
    ];

    fn of(value: &Value) -> FieldType {
        match value {
            Value::Str(_) => FieldType::Str,
            Value::Int(_) => FieldType::Int,
            Value::Float(_) => FieldType::Float,
            Value::Bool(_) => FieldType::Bool,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            FieldType::Str => DataType::Utf8,
            FieldType::Int => DataType::Int64,
            FieldType::Float => DataType::Float64,
            FieldType::Bool => DataType::Boolean,
        }
    }

    fn of_data_type(data_type: &DataType) -> Option<FieldType> {
        FieldType::ALL
            .into_iter()
            .find(|t| &t.data_type() == data_type)
    }
}

/// A field kept in a column of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldColumn {
    /// The field's key.
    pub key: String,
    /// The type of the values the column holds.
    pub kind: FieldType,
}

impl FieldColumn {
    /// The field columns of a segment holding `records`: the keys whose values of one type
    /// are in at least `rule.min_share` of the rows, the most frequent first, at most
    /// `rule.max`; sorted by key.
    pub fn choose<R: Borrow<Record>>(records: &[R], rule: FieldColumnRule) -> Vec<FieldColumn> {
        if rule.max == 0 || records.is_empty() {
            return Vec::new();
        }
        let mut counts: HashMap<&str, [u64; 4]> = HashMap::new();
        for r in records {
            for (key, value) in &r.borrow().fields {
                counts.entry(key.as_str()).or_default()[FieldType::of(value) as usize] += 1;
            }
        }
        let least = ((records.len() as f64 * rule.min_share).ceil() as u64).max(1);
        let mut chosen: Vec<(u64, FieldColumn)> = counts
            .into_iter()
            .filter_map(|(key, by_type)| {
                let (kind, n) = FieldType::ALL
                    .into_iter()
                    .map(|t| (t, by_type[t as usize]))
                    .max_by_key(|&(t, n)| (n, std::cmp::Reverse(t as usize)))?;
                (n >= least).then(|| {
                    (
                        n,
                        FieldColumn {
                            key: key.to_string(),
                            kind,
                        },
                    )
                })
            })
            .collect();
        chosen.sort_by(|(n, a), (m, b)| m.cmp(n).then_with(|| a.key.cmp(&b.key)));
        chosen.truncate(rule.max);
        let mut columns: Vec<FieldColumn> = chosen.into_iter().map(|(_, c)| c).collect();
        columns.sort_by(|a, b| a.key.cmp(&b.key));
        columns
    }

    /// The column's name in a segment.
    pub fn name(&self) -> String {
        format!("{FIELD_COLUMN_PREFIX}{}", self.key)
    }
}

/// The Arrow schema of a segment with these field columns: the nine columns of every
/// segment, then one per field.
pub fn segment_schema(columns: &[FieldColumn]) -> SchemaRef {
    if columns.is_empty() {
        return schema();
    }
    let base = schema();
    let fields = base
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .chain(
            columns
                .iter()
                .map(|c| Field::new(c.name(), c.kind.data_type(), true)),
        )
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
}

/// The field columns of a schema (a segment's, or a block's read from it), each with its
/// place in it: the columns that are not one of the nine of every segment. An error for a
/// column this version cannot read back.
pub fn field_columns_of(schema: &Schema) -> Result<Vec<(usize, FieldColumn)>, String> {
    field_column_places(schema)
        .map(|place| {
            let (i, key, kind) = place?;
            let key = key.to_string();
            Ok((i, FieldColumn { key, kind }))
        })
        .collect()
}

/// The place, key and type of each field column of a schema, as [`field_columns_of`] gives
/// them, the keys borrowed from the schema.
fn field_column_places(
    schema: &Schema,
) -> impl Iterator<Item = Result<(usize, &str, FieldType), String>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| !col::NAMES.contains(&field.name().as_str()))
        .map(|(i, field)| {
            let Some(key) = field.name().strip_prefix(FIELD_COLUMN_PREFIX) else {
                return Err(format!("unknown column {:?}", field.name()));
            };
            match FieldType::of_data_type(field.data_type()) {
                Some(kind) => Ok((i, key, kind)),
                None => Err(format!(
                    "field column {:?} has the unknown type {}",
                    field.name(),
                    field.data_type()
                )),
            }
        })
}

/// Builds the columnar form of records for a segment with these field columns: the nine
/// columns of [`crate::schema::records_to_batch`], `fields` holding only the values that
/// are not in a field column, then the field columns.
pub fn records_to_batch_with<R: Borrow<Record>>(
    records: &[R],
    columns: &[FieldColumn],
) -> RecordBatch {
    if columns.is_empty() {
        return crate::schema::records_to_batch(records);
    }
    let n = records.len();
    let mut arrays: Vec<ArrayRef> = (0..col::FIELDS)
        .map(|c| record_column(records, c))
        .collect();
    let mut typed: Vec<TypedBuilder> = columns
        .iter()
        .map(|c| TypedBuilder::new(c.kind, n))
        .collect();
    let mut rest = StringBuilder::new();
    let mut json = Vec::new();
    let mut left: Vec<(&String, &Value)> = Vec::new();
    for r in records {
        left.clear();
        // Both sorted by key: one walk puts each value in its column or in the rest.
        let mut next = 0;
        for (key, value) in &r.borrow().fields {
            while next < columns.len() && columns[next].key.as_str() < key.as_str() {
                typed[next].append_null();
                next += 1;
            }
            if next < columns.len() && columns[next].key == *key {
                if typed[next].append(value) {
                    next += 1;
                    continue;
                }
                typed[next].append_null();
                next += 1;
            }
            left.push((key, value));
        }
        for builder in &mut typed[next..] {
            builder.append_null();
        }
        append_fields(&mut rest, &mut json, left.iter().copied());
    }
    arrays.push(Arc::new(rest.finish()));
    arrays.extend(typed.into_iter().map(TypedBuilder::finish));
    RecordBatch::try_new(segment_schema(columns), arrays).expect("columns match the schema")
}

/// A builder of one field column.
enum TypedBuilder {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
}

impl TypedBuilder {
    fn new(kind: FieldType, rows: usize) -> TypedBuilder {
        match kind {
            FieldType::Str => TypedBuilder::Str(StringBuilder::with_capacity(rows, rows * 8)),
            FieldType::Int => TypedBuilder::Int(Int64Builder::with_capacity(rows)),
            FieldType::Float => TypedBuilder::Float(Float64Builder::with_capacity(rows)),
            FieldType::Bool => TypedBuilder::Bool(BooleanBuilder::with_capacity(rows)),
        }
    }

    /// Appends the value when it is of the column's type; false (nothing appended) if not.
    fn append(&mut self, value: &Value) -> bool {
        match (self, value) {
            (TypedBuilder::Str(b), Value::Str(s)) => b.append_value(s),
            (TypedBuilder::Int(b), Value::Int(i)) => b.append_value(*i),
            (TypedBuilder::Float(b), Value::Float(f)) => b.append_value(*f),
            (TypedBuilder::Bool(b), Value::Bool(v)) => b.append_value(*v),
            _ => return false,
        }
        true
    }

    fn append_null(&mut self) {
        match self {
            TypedBuilder::Str(b) => b.append_null(),
            TypedBuilder::Int(b) => b.append_null(),
            TypedBuilder::Float(b) => b.append_null(),
            TypedBuilder::Bool(b) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            TypedBuilder::Str(mut b) => Arc::new(b.finish()),
            TypedBuilder::Int(mut b) => Arc::new(b.finish()),
            TypedBuilder::Float(mut b) => Arc::new(b.finish()),
            TypedBuilder::Bool(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Returns a block read from a segment as every reader of blocks expects it: the columns
/// of field columns removed and their values put back into `fields` (when the block holds
/// the `fields` column), the other columns as they are.
pub fn assemble(batch: RecordBatch) -> Result<RecordBatch, StoreError> {
    let schema = batch.schema();
    let columns = field_columns_of(&schema).map_err(StoreError::Corrupt)?;
    if columns.is_empty() {
        return Ok(batch);
    }
    let typed: Vec<(&str, FieldArray)> = columns
        .iter()
        .map(|(i, c)| Ok((c.key.as_str(), FieldArray::of(batch.column(*i).as_ref())?)))
        .collect::<Result<_, StoreError>>()?;
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if columns.iter().any(|(j, _)| *j == i) {
            continue;
        }
        fields.push(field.clone());
        arrays.push(if field.name() == col::NAMES[col::FIELDS] {
            assemble_fields(batch.column(i).as_ref(), &typed)?
        } else {
            batch.column(i).clone()
        });
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        arrays,
    )?)
}

/// The `fields` column with every field of the rows: `rest` (a segment's `fields` column)
/// with the values of `typed` (each field column's key and array, sorted by key) put back
/// in key order, as the JSON text [`crate::schema::records_to_batch`] writes.
fn assemble_fields(rest: &dyn Array, typed: &[(&str, FieldArray)]) -> Result<ArrayRef, StoreError> {
    let rows = rest.len();
    let mut out = StringBuilder::with_capacity(rows, rows * 64);
    let mut text = Vec::with_capacity(256);
    for row in 0..rows {
        let rest_pairs = match string_at(rest, row) {
            None => Vec::new(),
            Some(json) => {
                let mut de = serde_json::Deserializer::from_str(json);
                let pairs = de
                    .deserialize_map(PairsVisitor)
                    .and_then(|p| de.end().map(|()| p))
                    .map_err(|e| {
                        StoreError::Corrupt(format!("fields column is not a JSON object: {e}"))
                    })?;
                pairs
            }
        };
        text.clear();
        let mut any = false;
        let mut pairs = rest_pairs.iter().peekable();
        let mut put_key = |text: &mut Vec<u8>, key: &str| {
            text.push(if any { b',' } else { b'{' });
            any = true;
            serde_json::to_writer(&mut *text, key).expect("a key serializes");
            text.push(b':');
        };
        for (key, reader) in typed {
            while let Some((k, raw)) = pairs.next_if(|(k, _)| k.as_ref() < *key) {
                put_key(&mut text, k);
                text.extend_from_slice(raw.get().as_bytes());
            }
            if reader.is_valid(row) {
                put_key(&mut text, key);
                reader.write(row, &mut text);
            }
        }
        for (k, raw) in pairs {
            put_key(&mut text, k);
            text.extend_from_slice(raw.get().as_bytes());
        }
        if any {
            text.push(b'}');
            out.append_value(std::str::from_utf8(&text).expect("JSON text is UTF-8"));
        } else {
            out.append_null();
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Rebuilds whole records from some rows of a block read with its field columns (every
/// column of a segment): [`crate::schema::batch_to_records`] of the nine, each record's
/// fields completed with the values of the field columns, without a detour through JSON.
pub fn records_of(batch: &RecordBatch, rows: &[usize]) -> Result<Vec<Record>, StoreError> {
    let schema = batch.schema();
    let columns = field_columns_of(&schema).map_err(StoreError::Corrupt)?;
    if columns.is_empty() {
        return crate::schema::batch_to_records(batch, rows);
    }
    let nine: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !columns.iter().any(|(j, _)| j == i))
        .collect();
    let mut records = crate::schema::batch_to_records(&batch.project(&nine)?, rows)?;
    for (i, column) in &columns {
        let reader = FieldArray::of(batch.column(*i).as_ref())?;
        for (record, &row) in records.iter_mut().zip(rows) {
            if let Some(value) = reader.value(row) {
                record.fields.insert(column.key.clone(), value);
            }
        }
    }
    Ok(records)
}

/// The fields of a block's rows as a segment stores them (a block read with
/// [`crate::schema::Columns::FIELD_COLUMNS`]): what no field column took in `fields`, and
/// the field columns. A block of the memtable, or of a segment without field columns, has
/// every field in `fields` and no columns.
pub struct StoredFields<'a> {
    /// The `fields` column (JSON objects), if the block was read with it.
    pub rest: Option<&'a dyn Array>,
    /// The field columns, by key, sorted.
    pub columns: Vec<(&'a str, FieldArray<'a>)>,
}

impl<'a> StoredFields<'a> {
    /// The stored fields of a block.
    pub fn of(batch: &'a RecordBatch) -> Result<StoredFields<'a>, StoreError> {
        let schema = batch.schema_ref();
        let rest = batch
            .column_by_name(col::NAMES[col::FIELDS])
            .map(|c| c.as_ref());
        let columns = field_column_places(schema)
            .map(|place| {
                let (i, key, _) = place.map_err(StoreError::Corrupt)?;
                Ok((key, FieldArray::of(batch.column(i).as_ref())?))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(StoredFields { rest, columns })
    }

    /// The column of a key, if it has one.
    pub fn column(&self, key: &str) -> Option<&FieldArray<'a>> {
        self.columns
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| &self.columns[i].1)
    }
}

/// A field column being read.
#[derive(Clone, Copy)]
pub enum FieldArray<'a> {
    /// Strings.
    Str(&'a StringArray),
    /// Integers.
    Int(&'a Int64Array),
    /// Floats.
    Float(&'a Float64Array),
    /// Booleans.
    Bool(&'a BooleanArray),
}

impl<'a> FieldArray<'a> {
    /// Reads an array of a field column; an error for a type field columns do not have.
    pub fn of(array: &'a dyn Array) -> Result<FieldArray<'a>, StoreError> {
        let any = array.as_any();
        if let Some(a) = any.downcast_ref::<StringArray>() {
            Ok(FieldArray::Str(a))
        } else if let Some(a) = any.downcast_ref::<Int64Array>() {
            Ok(FieldArray::Int(a))
        } else if let Some(a) = any.downcast_ref::<Float64Array>() {
            Ok(FieldArray::Float(a))
        } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
            Ok(FieldArray::Bool(a))
        } else {
            Err(StoreError::Corrupt(format!(
                "a field column of type {}",
                array.data_type()
            )))
        }
    }

    /// Whether the row holds a value (null: the key is absent, or in `fields`).
    pub fn is_valid(&self, row: usize) -> bool {
        match self {
            FieldArray::Str(a) => a.is_valid(row),
            FieldArray::Int(a) => a.is_valid(row),
            FieldArray::Float(a) => a.is_valid(row),
            FieldArray::Bool(a) => a.is_valid(row),
        }
    }

    /// The row's value as its JSON text in `fields` reads back (a float that is not
    /// finite, written `null`, as an empty string); `None` when null.
    pub fn value(&self, row: usize) -> Option<Value> {
        if !self.is_valid(row) {
            return None;
        }
        Some(match self {
            FieldArray::Str(a) => Value::Str(a.value(row).to_string()),
            FieldArray::Int(a) => Value::Int(a.value(row)),
            FieldArray::Float(a) if a.value(row).is_finite() => Value::Float(a.value(row)),
            FieldArray::Float(_) => Value::Str(String::new()),
            FieldArray::Bool(a) => Value::Bool(a.value(row)),
        })
    }

    /// The row's value as text, as a query compares it: a string as it is, anything else
    /// as its JSON text (`null` for a float that is not finite); `None` when null.
    pub fn text(&self, row: usize) -> Option<Cow<'a, str>> {
        if !self.is_valid(row) {
            return None;
        }
        Some(match self {
            FieldArray::Str(a) => Cow::Borrowed(a.value(row)),
            FieldArray::Int(a) => Cow::Owned(a.value(row).to_string()),
            FieldArray::Float(a) => {
                Cow::Owned(serde_json::to_string(&a.value(row)).expect("a float serializes"))
            }
            FieldArray::Bool(a) => Cow::Borrowed(if a.value(row) { "true" } else { "false" }),
        })
    }

    /// Writes the row's value as JSON, as a [`Value`] of its type serializes.
    fn write(&self, row: usize, text: &mut Vec<u8>) {
        let written = match self {
            FieldArray::Str(a) => serde_json::to_writer(&mut *text, a.value(row)),
            FieldArray::Int(a) => serde_json::to_writer(&mut *text, &a.value(row)),
            FieldArray::Float(a) => serde_json::to_writer(&mut *text, &a.value(row)),
            FieldArray::Bool(a) => serde_json::to_writer(&mut *text, &a.value(row)),
        };
        written.expect("a value serializes");
    }
}

/// Reads a JSON object as its keys and the text of their values, in order, without
/// decoding the values.
struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(JsonStr(key)) = map.next_key::<JsonStr<'de>>()? {
            out.push((key, map.next_value::<&'de RawValue>()?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::records_to_batch;
    use proptest::prelude::*;

    fn record(i: usize, fields: Vec<(&str, Value)>) -> Record {
        let mut r = Record::new(i as i64, "");
        r.seq = i as u64;
        r.fields = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        r
    }

    fn texts(column: &dyn Array) -> Vec<Option<String>> {
        (0..column.len())
            .map(|i| string_at(column, i).map(str::to_string))
            .collect()
    }

    /// The `fields` column as a segment with `columns` reads it back.
    fn read_back(records: &[Record], columns: &[FieldColumn]) -> Vec<Option<String>> {
        let batch = assemble(records_to_batch_with(records, columns)).unwrap();
        assert_eq!(batch.schema(), schema(), "the nine columns alone");
        texts(batch.column(col::FIELDS).as_ref())
    }

    fn plain(records: &[Record]) -> Vec<Option<String>> {
        texts(records_to_batch(records).column(col::FIELDS).as_ref())
    }

    fn sample() -> Vec<Record> {
        (0..100)
            .map(|i| {
                let mut fields = vec![
                    ("status", Value::Int(200 + (i % 3) as i64)),
                    ("a\"b\n", Value::Str(format!("é{i}\u{1}"))),
                    ("ok", Value::Bool(i % 2 == 0)),
                    ("ratio", Value::Float(i as f64 / 7.0)),
                ];
                if i == 3 {
                    fields[0].1 = Value::Str("n/a".into());
                }
                if i == 4 {
                    fields[3].1 = Value::Float(f64::NAN);
                }
                if i % 2 == 0 {
                    fields.push(("user", Value::Str(format!("u{}", i % 5))));
                }
                if i == 50 {
                    fields.push(("once", Value::Int(1)));
                }
                if i == 60 {
                    fields.clear();
                }
                record(i, fields)
            })
            .collect()
    }

    #[test]
    fn frequent_keys_become_typed_columns_and_read_back_byte_for_byte() {
        let records = sample();
        let columns = FieldColumn::choose(&records, FieldColumnRule::DEFAULT);
        let chosen: Vec<(&str, FieldType)> =
            columns.iter().map(|c| (c.key.as_str(), c.kind)).collect();
        assert_eq!(
            chosen,
            [
                ("a\"b\n", FieldType::Str),
                ("ok", FieldType::Bool),
                ("ratio", FieldType::Float),
                ("status", FieldType::Int),
                ("user", FieldType::Str),
            ]
        );
        let batch = records_to_batch_with(&records, &columns);
        assert_eq!(
            &crate::schema::column_names(&batch)[9..],
            ["f.a\"b\n", "f.ok", "f.ratio", "f.status", "f.user"]
        );
        // What no column took stays in `fields`: the string status, the rare key.
        let rest = texts(batch.column(col::FIELDS).as_ref());
        assert_eq!(rest[3].as_deref(), Some(r#"{"status":"n/a"}"#));
        assert_eq!(rest[50].as_deref(), Some(r#"{"once":1}"#));
        assert_eq!(rest[0], None);
        assert_eq!(read_back(&records, &columns), plain(&records));
        // Whole records come back, without the JSON text, as from the JSON text: NaN, which
        // JSON writes `null`, reads back as an empty string.
        let rows: Vec<usize> = (0..records.len()).collect();
        let back = records_of(&batch, &rows).unwrap();
        let plain = crate::schema::batch_to_records(&records_to_batch(&records), &rows).unwrap();
        assert_eq!(back, plain);
        assert_eq!(back[4].fields["ratio"], Value::Str(String::new()));
        for (i, (got, want)) in back.iter().zip(&records).enumerate() {
            if i != 4 {
                assert_eq!(got, want, "row {i}");
            }
        }
    }

    #[test]
    fn a_columns_text_is_the_text_of_its_json_value() {
        let records = sample();
        let columns = FieldColumn::choose(&records, FieldColumnRule::DEFAULT);
        let batch = records_to_batch_with(&records, &columns);
        let stored = StoredFields::of(&batch).unwrap();
        assert_eq!(stored.columns.len(), columns.len());
        assert!(stored.column("status").is_some() && stored.column("once").is_none());
        let mut compared = 0;
        for (row, json) in read_back(&records, &columns).iter().enumerate() {
            let map: serde_json::Map<String, serde_json::Value> = json
                .as_deref()
                .map(|j| serde_json::from_str(j).unwrap())
                .unwrap_or_default();
            for (key, array) in &stored.columns {
                let Some(got) = array.text(row) else { continue };
                let want = match &map[*key] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(got, want, "row {row}, {key}");
                compared += 1;
            }
        }
        assert!(compared > 300, "{compared}");
    }

    #[test]
    fn the_rule_bounds_the_columns() {
        let records = sample();
        let two = FieldColumn::choose(
            &records,
            FieldColumnRule {
                max: 2,
                min_share: 0.01,
            },
        );
        // Every row but one holds these four; two of them, in key order.
        let keys: Vec<&str> = two.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["a\"b\n", "ok"]);
        assert!(FieldColumn::choose(&records, FieldColumnRule::NONE).is_empty());
        let rare = FieldColumn::choose(
            &records,
            FieldColumnRule {
                max: 32,
                min_share: 0.01,
            },
        );
        assert!(rare.iter().any(|c| c.key == "once"));
        assert_eq!(read_back(&records, &rare), plain(&records));
        assert_eq!(read_back(&records, &[]), plain(&records));
    }

    #[test]
    fn a_column_this_version_cannot_read_is_an_error() {
        let schema = Schema::new(vec![Field::new("f.x", DataType::Date32, true)]);
        assert!(field_columns_of(&schema)
            .unwrap_err()
            .contains("unknown type"));
        let schema = Schema::new(vec![Field::new("other", DataType::Utf8, true)]);
        assert!(field_columns_of(&schema)
            .unwrap_err()
            .contains("unknown column"));
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (-1e12f64..1e12).prop_map(Value::Float),
            "[a-z\"\\\\é\u{0}-\u{1f}]{0,6}".prop_map(Value::Str),
        ]
    }

    fn records() -> impl Strategy<Value = Vec<Record>> {
        let key = prop::sample::select(vec!["a", "b", "b.c", "é", "k\"", "z", ""]);
        prop::collection::vec(prop::collection::btree_map(key, value(), 0..5), 0..40).prop_map(
            |rows| {
                rows.into_iter()
                    .enumerate()
                    .map(|(i, fields)| record(i, fields.into_iter().collect()))
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn any_fields_read_back_as_written(records in records(), max in 0usize..4, share in 0.01f64..1.0) {
            let columns = FieldColumn::choose(&records, FieldColumnRule { max, min_share: share });
            prop_assert!(columns.len() <= max);
            prop_assert_eq!(read_back(&records, &columns), plain(&records));
            let batch = records_to_batch_with(&records, &columns);
            let rows: Vec<usize> = (0..records.len()).collect();
            prop_assert_eq!(records_of(&batch, &rows).unwrap(), records);
        }
    }
}
