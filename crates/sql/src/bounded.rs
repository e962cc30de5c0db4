//! `repeat`, `lpad` and `rpad` with a bound on the text they build.
//!
//! Scalar functions allocate their results outside DataFusion's memory pool, and these three
//! build text in proportion to a number in the statement: `repeat(message, 2000)` over a
//! batch of rows, or `lpad('x', 1000000000)`, would take gigabytes. The versions here work
//! out, before building anything, how many bytes the result can hold at most, and refuse a
//! call over [`Settings::max_state_bytes`](logyard_query::Settings::max_state_bytes) with a
//! message that names the function and the setting. Below the bound they call DataFusion's
//! own function.

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// Which function a [`Bounded`] wraps, for its size estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Repeat,
    Pad,
}

/// A text function that refuses results over `limit` bytes.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: ScalarUDF,
    kind: Kind,
    limit: usize,
}

/// Returns `repeat`, `lpad` and `rpad` bounded to `limit` bytes of result per call.
pub fn functions(limit: usize) -> Vec<ScalarUDF> {
    use datafusion::functions::{string, unicode};
    [
        (string::repeat(), Kind::Repeat),
        (unicode::lpad(), Kind::Pad),
        (unicode::rpad(), Kind::Pad),
    ]
    .into_iter()
    .map(|(inner, kind)| {
        ScalarUDF::new_from_impl(Bounded {
            inner: inner.as_ref().clone(),
            kind,
            limit,
        })
    })
    .collect()
}

/// A column of numbers, or one number for every row.
enum Numbers {
    One(Option<i64>),
    Each(Int64Array),
}

impl Numbers {
    fn get(&self, i: usize) -> Option<i64> {
        match self {
            Numbers::One(v) => *v,
            Numbers::Each(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

/// The byte length of each text of an argument.
fn text_lengths(arg: &ColumnarValue) -> Result<Numbers> {
    Ok(match arg {
        ColumnarValue::Scalar(s) => Numbers::One(match s {
            ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                v.as_ref().map(|t| t.len() as i64)
            }
            other if other.is_null() => None,
            other => Some(other.to_string().len() as i64),
        }),
        ColumnarValue::Array(a) => {
            let lengths = match length(a) {
                Ok(l) => l,
                Err(_) => length(&cast(a, &DataType::Utf8)?)?,
            };
            Numbers::Each(
                cast(&lengths, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            )
        }
    })
}

/// The value of an integer argument.
fn integers(arg: &ColumnarValue) -> Result<Numbers> {
    Ok(match arg {
        ColumnarValue::Scalar(s) => Numbers::One(match s.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(v) => v,
            _ => None,
        }),
        ColumnarValue::Array(a) => Numbers::Each(
            cast(a, &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone(),
        ),
    })
}

impl Bounded {
    /// The most bytes the call can build.
    fn estimate(&self, args: &ScalarFunctionArgs) -> Result<u128> {
        let rows = if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            1
        } else {
            args.number_rows
        };
        let (Some(text), Some(count)) = (args.args.first(), args.args.get(1)) else {
            return Ok(0);
        };
        let texts = text_lengths(text)?;
        let counts = integers(count)?;
        let fills = args.args.get(2).map(text_lengths).transpose()?;
        let mut total: u128 = 0;
        for i in 0..rows {
            let n = counts.get(i).unwrap_or(0).max(0) as u128;
            let len = texts.get(i).unwrap_or(0).max(0) as u128;
            total += match self.kind {
                Kind::Repeat => len * n,
                // `n` characters, each of at most 4 bytes, and no more than the fill's bytes
                // per character.
                Kind::Pad => {
                    let fill = fills
                        .as_ref()
                        .map_or(Some(1), |f| f.get(i))
                        .unwrap_or(1)
                        .clamp(1, 4) as u128;
                    n * fill + len
                }
            };
        }
        Ok(total)
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let estimate = self.estimate(&args)?;
        if estimate > self.limit as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would build up to {estimate} bytes of text at once, over the limit of {} \
                 bytes (setting query.max_state_bytes)",
                self.name(),
                self.limit
            )));
        }
        self.inner.invoke_with_args(args)
    }
}
