//! Turns result batches into the rows of a JSON table: numbers as JSON numbers, times as
//! RFC 3339 text, nulls as `null`, anything else as its text.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::datatypes::{
    Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{DataFusionError, Result};
use serde_json::Value;

/// Appends the rows of a batch, at most `max` of them, to `rows`.
pub fn append_rows(batch: &RecordBatch, rows: &mut Vec<Vec<Value>>, max: usize) -> Result<()> {
    let n = batch.num_rows().min(max);
    let start = rows.len();
    rows.extend((0..n).map(|_| Vec::with_capacity(batch.num_columns())));
    for column in batch.columns() {
        let values = column_values(column.as_ref(), n)?;
        for (row, v) in rows[start..].iter_mut().zip(values) {
            row.push(v);
        }
    }
    Ok(())
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn time_text(ns: Option<i64>) -> Value {
    match ns {
        Some(ns) => Value::String(logyard_model::format_rfc3339(ns)),
        None => Value::Null,
    }
}

/// Returns the first `n` values of a column as JSON.
fn column_values(a: &dyn Array, n: usize) -> Result<Vec<Value>> {
    macro_rules! prim {
        ($t:ty, $f:expr) => {{
            let p = a.as_primitive::<$t>();
            (0..n)
                .map(|i| {
                    if p.is_null(i) {
                        Value::Null
                    } else {
                        $f(p.value(i))
                    }
                })
                .collect()
        }};
    }
    let out = match a.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => {
            let b = a.as_boolean();
            (0..n)
                .map(|i| {
                    if b.is_null(i) {
                        Value::Null
                    } else {
                        Value::Bool(b.value(i))
                    }
                })
                .collect()
        }
        DataType::Int8 => prim!(Int8Type, |v: i8| Value::from(v)),
        DataType::Int16 => prim!(Int16Type, |v: i16| Value::from(v)),
        DataType::Int32 => prim!(Int32Type, |v: i32| Value::from(v)),
        DataType::Int64 => prim!(Int64Type, |v: i64| Value::from(v)),
        DataType::UInt8 => prim!(UInt8Type, |v: u8| Value::from(v)),
        DataType::UInt16 => prim!(UInt16Type, |v: u16| Value::from(v)),
        DataType::UInt32 => prim!(UInt32Type, |v: u32| Value::from(v)),
        DataType::UInt64 => prim!(UInt64Type, |v: u64| Value::from(v)),
        DataType::Float16 | DataType::Float32 => {
            let f = cast(a, &DataType::Float64)?;
            column_values(f.as_ref(), n)?
        }
        DataType::Float64 => prim!(Float64Type, number),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let a = cast(a, &DataType::Utf8)?;
            let s = a.as_string::<i32>();
            (0..n)
                .map(|i| {
                    if s.is_null(i) {
                        Value::Null
                    } else {
                        Value::String(s.value(i).to_string())
                    }
                })
                .collect()
        }
        DataType::Dictionary(_, inner) => {
            let plain = cast(a, inner)?;
            column_values(plain.as_ref(), n)?
        }
        DataType::Timestamp(unit, _) => {
            let scale = match unit {
                TimeUnit::Second => 1_000_000_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Nanosecond => 1,
            };
            let t = cast(a, &DataType::Int64)?;
            let t = t.as_primitive::<Int64Type>();
            (0..n)
                .map(|i| {
                    if t.is_null(i) {
                        Value::Null
                    } else {
                        match t.value(i).checked_mul(scale) {
                            Some(ns) => time_text(Some(ns)),
                            None => Value::String(format!("{} × {scale} ns", t.value(i))),
                        }
                    }
                })
                .collect()
        }
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            let f = cast(a, &DataType::Float64)?;
            column_values(f.as_ref(), n)?
        }
        _ => {
            let options = FormatOptions::default().with_null("");
            let f = ArrayFormatter::try_new(a, &options)
                .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?;
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::String(f.value(i).to_string())
                    }
                })
                .collect()
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Float64Array, Int64Array, StringArray, TimestampNanosecondArray,
    };
    use std::sync::Arc;

    #[test]
    fn numbers_times_text_and_nulls() {
        let batch = RecordBatch::try_from_iter(vec![
            ("n", Arc::new(Int64Array::from(vec![Some(1), None])) as _),
            ("x", Arc::new(Float64Array::from(vec![1.5, f64::NAN])) as _),
            ("s", Arc::new(StringArray::from(vec![Some("a"), None])) as _),
            (
                "t",
                Arc::new(
                    TimestampNanosecondArray::from(vec![0, 1_500_000_000]).with_timezone("UTC"),
                ) as _,
            ),
        ])
        .unwrap();
        let mut rows = Vec::new();
        append_rows(&batch, &mut rows, 10).unwrap();
        assert_eq!(
            serde_json::to_string(&rows).unwrap(),
            r#"[[1,1.5,"a","1970-01-01T00:00:00Z"],[null,null,null,"1970-01-01T00:00:01.500Z"]]"#
        );
    }
}
