//! What every ingest decoder shares to stay within the limits while it reads: a [`Budget`]
//! of entries and decoded bytes, a JSON array read element by element ([`for_each_element`])
//! and a protobuf message read field by field ([`wire_fields`]), so that no decoder builds
//! the whole body's tree before it has counted it.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A limit crossed while decoding: the error code and a message naming the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    /// `too_many_entries` or `body_too_large`.
    pub code: &'static str,
    /// What was crossed and which setting says so.
    pub message: String,
}

/// Counts the entries of one request and the size they decode to, refusing as soon as a
/// limit is crossed.
#[derive(Debug, Clone)]
pub struct Budget {
    max_entries: usize,
    entries: usize,
    max_bytes: usize,
    bytes: usize,
}

impl Budget {
    /// A budget of `max_entries` entries and `max_bytes` decoded bytes.
    pub fn with(max_entries: usize, max_bytes: usize) -> Budget {
        Budget {
            max_entries,
            entries: 0,
            max_bytes,
            bytes: 0,
        }
    }

    /// A budget without limits (for trusted input such as `logyard ingest`).
    pub fn unlimited() -> Budget {
        Budget {
            max_entries: usize::MAX,
            entries: 0,
            max_bytes: usize::MAX,
            bytes: 0,
        }
    }

    /// Counts one entry (accepted or not).
    pub fn entry(&mut self) -> Result<(), OverLimit> {
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(too_many_entries(self.max_entries));
        }
        Ok(())
    }

    /// Checks a count of entries known before decoding them.
    pub fn entries_ahead(&self, n: usize) -> Result<(), OverLimit> {
        if self.entries.saturating_add(n) > self.max_entries {
            return Err(OverLimit {
                code: "too_many_entries",
                message: format!(
                    "the body holds {n} entries, over the limit of {} (setting limits.max_entries_per_request); send smaller batches",
                    self.max_entries
                ),
            });
        }
        Ok(())
    }

    /// Counts the decoded size of an accepted entry.
    pub fn decoded(&mut self, size: usize) -> Result<(), OverLimit> {
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.max_bytes {
            return Err(OverLimit {
                code: "body_too_large",
                message: format!(
                    "the entries of the body decode to more than {} bytes (setting limits.max_decoded_bytes); send smaller batches",
                    self.max_bytes
                ),
            });
        }
        Ok(())
    }

    /// The entries counted so far.
    pub fn entries(&self) -> usize {
        self.entries
    }
}

fn too_many_entries(max: usize) -> OverLimit {
    OverLimit {
        code: "too_many_entries",
        message: format!(
            "the body holds more than {max} entries (setting limits.max_entries_per_request); send smaller batches"
        ),
    }
}

/// Why reading a JSON array stopped.
#[derive(Debug)]
pub enum ElementsError<E> {
    /// The text is not a JSON array (or breaks off).
    Json(serde_json::Error),
    /// The callback refused an element.
    Stopped(E),
}

/// Calls `f` with the text of each element of the JSON array `text`, in order, without
/// building the array: memory is that of one element at a time.
pub fn for_each_element<'a, E>(
    text: &'a str,
    f: impl FnMut(usize, &'a RawValue) -> Result<(), E>,
) -> Result<(), ElementsError<E>> {
    let mut stopped = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let result = Elements {
        f,
        stopped: &mut stopped,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (result, stopped) {
        (_, Some(e)) => Err(ElementsError::Stopped(e)),
        (Err(e), None) => Err(ElementsError::Json(e)),
        (Ok(()), None) => Ok(()),
    }
}

struct Elements<'s, F, E> {
    f: F,
    stopped: &'s mut Option<E>,
}

impl<'de, F, E> DeserializeSeed<'de> for Elements<'_, F, E>
where
    F: FnMut(usize, &'de RawValue) -> Result<(), E>,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F, E> Visitor<'de> for Elements<'_, F, E>
where
    F: FnMut(usize, &'de RawValue) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if let Err(e) = (self.f)(i, raw) {
                *self.stopped = Some(e);
                return Err(de::Error::custom("stopped"));
            }
            i += 1;
        }
        Ok(())
    }
}

/// One field of a protobuf message, as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire<'a> {
    /// A varint.
    Varint(u64),
    /// Eight bytes.
    Fixed64(u64),
    /// Four bytes.
    Fixed32(u32),
    /// A length-delimited field: a string, bytes or a message.
    Len(&'a [u8]),
}

/// Reads the fields of an encoded protobuf message one by one, as `(field number, value)`,
/// without decoding any of them: the way to count repeated fields before building them.
pub fn wire_fields(message: &[u8]) -> WireFields<'_> {
    WireFields { rest: message }
}

/// The iterator of [`wire_fields`]; it ends at the first malformed field, with an error.
#[derive(Debug, Clone)]
pub struct WireFields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for WireFields<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.read();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> WireFields<'a> {
    fn read(&mut self) -> Result<(u32, Wire<'a>), String> {
        use prost::encoding::{decode_key, decode_varint, WireType};
        let mut buf = self.rest;
        let (tag, wire_type) = decode_key(&mut buf).map_err(|e| e.to_string())?;
        let value = match wire_type {
            WireType::Varint => Wire::Varint(decode_varint(&mut buf).map_err(|e| e.to_string())?),
            WireType::SixtyFourBit => {
                let (b, rest) = buf
                    .split_first_chunk::<8>()
                    .ok_or("a 64-bit field is cut")?;
                buf = rest;
                Wire::Fixed64(u64::from_le_bytes(*b))
            }
            WireType::ThirtyTwoBit => {
                let (b, rest) = buf
                    .split_first_chunk::<4>()
                    .ok_or("a 32-bit field is cut")?;
                buf = rest;
                Wire::Fixed32(u32::from_le_bytes(*b))
            }
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).map_err(|e| e.to_string())?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l <= buf.len())
                    .ok_or_else(|| {
                        format!(
                            "field {tag} announces {len} bytes, more than the {} left",
                            buf.len()
                        )
                    })?;
                let (value, rest) = buf.split_at(len);
                buf = rest;
                Wire::Len(value)
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(format!("field {tag} is a group, which is not supported"))
            }
        };
        self.rest = buf;
        Ok((tag, value))
    }
}

/// Counts the length-delimited fields numbered `path[last]` inside the fields numbered
/// `path[..last]`, nested: e.g. `[1, 2, 2]` counts the log records of an OTLP request
/// (resource_logs → scope_logs → log_records). No field is decoded.
pub fn count_nested(message: &[u8], path: &[u32]) -> Result<usize, String> {
    let Some((&first, rest)) = path.split_first() else {
        return Ok(0);
    };
    let mut n = 0usize;
    for field in wire_fields(message) {
        let (tag, value) = field?;
        if tag != first {
            continue;
        }
        match (value, rest.is_empty()) {
            (_, true) => n += 1,
            (Wire::Len(inner), false) => n = n.saturating_add(count_nested(inner, rest)?),
            _ => return Err(format!("field {tag} is not a message")),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_one_by_one() {
        let mut seen = Vec::new();
        for_each_element::<()>(r#" [1, {"a": [2]}, "x"] "#, |i, raw| {
            seen.push((i, raw.get().to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (0, "1".to_string()),
                (1, r#"{"a": [2]}"#.to_string()),
                (2, "\"x\"".to_string())
            ]
        );
        let stopped = for_each_element(r#"[1, 2, 3]"#, |i, _| if i == 1 { Err(i) } else { Ok(()) });
        assert!(matches!(stopped, Err(ElementsError::Stopped(1))));
        assert!(matches!(
            for_each_element::<()>("[1, 2", |_, _| Ok(())),
            Err(ElementsError::Json(_))
        ));
        assert!(matches!(
            for_each_element::<()>("[1] [2]", |_, _| Ok(())),
            Err(ElementsError::Json(_))
        ));
    }

    #[test]
    fn wire_counts_nested_fields() {
        // resource_logs { scope_logs { log_records {} log_records {} } } twice.
        let scope = [0x12, 0x00, 0x12, 0x00];
        let mut rl = vec![0x12, scope.len() as u8];
        rl.extend_from_slice(&scope);
        let mut body = Vec::new();
        for _ in 0..2 {
            body.push(0x0a);
            body.push(rl.len() as u8);
            body.extend_from_slice(&rl);
        }
        assert_eq!(count_nested(&body, &[1, 2, 2]), Ok(4));
        assert_eq!(count_nested(&body, &[1]), Ok(2));
        assert!(count_nested(&[0x0a, 0x05, 0x00], &[1, 2]).is_err());
        assert!(count_nested(&[0x0b], &[1]).is_err());
    }

    #[test]
    fn budget_refuses_past_its_limits() {
        let mut b = Budget::with(2, 100);
        assert!(b.entry().is_ok());
        assert!(b.entry().is_ok());
        assert_eq!(b.entry().unwrap_err().code, "too_many_entries");
        assert!(b.decoded(60).is_ok());
        let e = b.decoded(60).unwrap_err();
        assert_eq!(e.code, "body_too_large");
        assert!(e.message.contains("limits.max_decoded_bytes"));
    }
}
