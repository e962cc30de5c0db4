//! Functions of the SQL dialect for the `fields` column (a JSON object as text):
//! `field(fields, 'key')` is the value of a key as text (numbers and booleans by their text,
//! `null` when absent), `field_num(fields, 'key')` the value as a number (a number, or text
//! that is one; `null` otherwise), as the query language reads fields.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Builder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};
use serde_json::Value;

/// Returns the value of `key` in a JSON object's text.
fn lookup(json: &str, key: &str) -> Option<Value> {
    // Most rows of a block lack most keys: look for the key's text before parsing.
    if !json.contains(key) {
        return None;
    }
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(mut map)) => map.remove(key),
        _ => None,
    }
}

fn as_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn as_number(v: Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok().filter(|x: &f64| x.is_finite()),
        _ => None,
    }
}

/// Calls `f` with each row's (fields, key) pair, as text.
fn each_row(args: &[ColumnarValue], mut f: impl FnMut(Option<(&str, &str)>)) -> Result<usize> {
    let [fields, key] = args else {
        return Err(DataFusionError::Plan(
            "field functions take two arguments: the fields column and a key".into(),
        ));
    };
    let n = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let fields = fields.to_array(n)?;
    let key = key.to_array(n)?;
    let (fields, key): (ArrayRef, ArrayRef) = (
        cast(&fields, &DataType::Utf8)?,
        cast(&key, &DataType::Utf8)?,
    );
    let (fields, key) = (fields.as_string::<i32>(), key.as_string::<i32>());
    for i in 0..n {
        if fields.is_null(i) || key.is_null(i) {
            f(None);
        } else {
            f(Some((fields.value(i), key.value(i))));
        }
    }
    Ok(n)
}

fn scalar_or_array(n_args_scalar: bool, array: ArrayRef) -> Result<ColumnarValue> {
    if n_args_scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

fn all_scalar(args: &[ColumnarValue]) -> bool {
    args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// Returns `field(fields, key)` and `field_num(fields, key)`.
pub fn functions() -> Vec<ScalarUDF> {
    let field = create_udf(
        "field",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let mut out = StringBuilder::new();
            each_row(args, |row| {
                out.append_option(
                    row.and_then(|(json, key)| lookup(json, key))
                        .and_then(as_text),
                )
            })?;
            scalar_or_array(all_scalar(args), Arc::new(out.finish()))
        }),
    );
    let field_num = create_udf(
        "field_num",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let mut out = Float64Builder::new();
            each_row(args, |row| {
                out.append_option(
                    row.and_then(|(json, key)| lookup(json, key))
                        .and_then(as_number),
                )
            })?;
            scalar_or_array(all_scalar(args), Arc::new(out.finish()))
        }),
    );
    vec![field, field_num]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_as_text_and_numbers() {
        let json = r#"{"status": 503, "user": "ana", "ok": true, "ms": "12.5"}"#;
        assert_eq!(
            lookup(json, "status").and_then(as_text).as_deref(),
            Some("503")
        );
        assert_eq!(
            lookup(json, "user").and_then(as_text).as_deref(),
            Some("ana")
        );
        assert_eq!(
            lookup(json, "ok").and_then(as_text).as_deref(),
            Some("true")
        );
        assert_eq!(lookup(json, "ms").and_then(as_number), Some(12.5));
        assert_eq!(lookup(json, "user").and_then(as_number), None);
        assert_eq!(lookup(json, "absent"), None);
        assert_eq!(lookup("not json", "not"), None);
    }
}
