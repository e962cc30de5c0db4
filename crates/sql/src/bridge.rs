//! Copies the store's columns (arrow 60) into DataFusion's arrow (59).
//!
//! No DataFusion release is built on the arrow version the store uses, so the two arrow
//! crates are distinct types in one binary. The store's blocks hold only four kinds of
//! column (timestamps, unsigned integers, strings and dictionary-encoded strings); each is
//! rebuilt from a copy of its buffers, which costs a `memcpy` of the decoded block, far less
//! than decoding it. When DataFusion moves to the store's arrow, this module goes away.

use std::sync::Arc;

use arrow_array::types::Int32Type as Int32Type60;
use arrow_array::{
    Array as Array60, DictionaryArray as DictionaryArray60, StringArray as StringArray60,
    TimestampNanosecondArray as TimestampArray60, UInt64Array as UInt64Array60,
};
use arrow_buffer::NullBuffer as NullBuffer60;
use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, Int32Array, StringArray, TimestampNanosecondArray, UInt64Array,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::common::{DataFusionError, Result};

fn nulls(n: Option<&NullBuffer60>) -> Option<NullBuffer> {
    n.map(|n| {
        let bits = n.inner();
        NullBuffer::new(BooleanBuffer::new(
            Buffer::from_slice_ref(bits.inner().as_slice()),
            bits.offset(),
            bits.len(),
        ))
    })
}

fn strings(a: &StringArray60) -> Result<StringArray> {
    let offsets: &[i32] = a.offsets();
    StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets.to_vec())),
        Buffer::from_slice_ref(a.values().as_slice()),
        nulls(a.nulls()),
    )
    .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))
}

/// Copies one column of a store block; the column must be of a type the store writes.
pub fn column(array: &dyn Array60) -> Result<ArrayRef> {
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<TimestampArray60>() {
        let values = ScalarBuffer::from(a.values().to_vec());
        return Ok(Arc::new(
            TimestampNanosecondArray::new(values, nulls(a.nulls())).with_timezone("UTC"),
        ));
    }
    if let Some(a) = any.downcast_ref::<UInt64Array60>() {
        let values = ScalarBuffer::from(a.values().to_vec());
        return Ok(Arc::new(UInt64Array::new(values, nulls(a.nulls()))));
    }
    if let Some(a) = any.downcast_ref::<StringArray60>() {
        return Ok(Arc::new(strings(a)?));
    }
    if let Some(a) = any.downcast_ref::<DictionaryArray60<Int32Type60>>() {
        let keys = Int32Array::new(
            ScalarBuffer::from(a.keys().values().to_vec()),
            nulls(a.keys().nulls()),
        );
        let values = a
            .values()
            .as_any()
            .downcast_ref::<StringArray60>()
            .ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "a store column has dictionary values of type {}",
                    a.values().data_type()
                ))
            })?;
        let dict = DictionaryArray::try_new(keys, Arc::new(strings(values)?))
            .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?;
        return Ok(Arc::new(dict));
    }
    Err(DataFusionError::Internal(format!(
        "a store column has the unexpected type {}",
        array.data_type()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::StringDictionaryBuilder;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int32Type;

    #[test]
    fn copies_strings_with_nulls_and_slices() {
        let a = StringArray60::from(vec![Some("a"), None, Some("ccc"), Some("dd")]);
        let sliced = a.slice(1, 3);
        let b = column(&sliced).unwrap();
        let b = b.as_string::<i32>();
        assert_eq!(b.len(), 3);
        assert!(b.is_null(0));
        assert_eq!(b.value(1), "ccc");
        assert_eq!(b.value(2), "dd");
    }

    #[test]
    fn copies_dictionaries_and_timestamps() {
        let mut d = StringDictionaryBuilder::<Int32Type60>::new();
        d.append_value("x");
        d.append_null();
        d.append_value("y");
        d.append_value("x");
        let b = column(&d.finish()).unwrap();
        let b = b.as_dictionary::<Int32Type>();
        let values = b.values().as_string::<i32>();
        let text: Vec<Option<&str>> = (0..4)
            .map(|i| (!b.is_null(i)).then(|| values.value(b.keys().value(i) as usize)))
            .collect();
        assert_eq!(text, [Some("x"), None, Some("y"), Some("x")]);

        let t = TimestampArray60::from(vec![1, 2, 3]).with_timezone("UTC");
        let c = column(&t).unwrap();
        assert_eq!(c.data_type().to_string(), "Timestamp(ns, \"UTC\")");
        assert_eq!(
            c.as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>()
                .values()
                .to_vec(),
            vec![1, 2, 3]
        );
    }
}
