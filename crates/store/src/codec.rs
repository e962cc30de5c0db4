//! Binary encoding of record batches, the payload of WAL frames.
//!
//! Layout (little-endian): `u8 version`, `u64 first_seq`, `u32 count`, then per record
//! `i64 timestamp`, `u8 level` (255 = none), strings `agent host source message` (each
//! `u32 len` + UTF-8 bytes), `u8 has_raw` [+ string], `u32 field_count`, then per field a
//! key string, a `u8` tag (0 string, 1 int, 2 float, 3 bool) and the value. Sequence numbers
//! are implied: `first_seq + index`.
//!
//! Version 2 is version 1 followed by a source's checkpoint kept with the batch (written by
//! [`encode_batch_with_checkpoint`]): the key string, `u64 seq`, and the data (`u32 len` +
//! bytes). The frame's checksum covers both: the batch and its checkpoint are durable
//! together or not at all.

use logyard_model::{Level, Record, Value};

use crate::{KeyedCheckpoint, StoredCheckpoint};

const VERSION: u8 = 1;
const VERSION_WITH_CHECKPOINT: u8 = 2;

/// Returns whether `byte` is the version byte of a payload this version reads.
pub fn is_version(byte: u8) -> bool {
    byte == VERSION || byte == VERSION_WITH_CHECKPOINT
}

/// Appends the encoding of `records` (whose sequence numbers start at `first_seq`) to `out`.
pub fn encode_batch(first_seq: u64, records: &[Record], out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&r.timestamp.to_le_bytes());
        out.push(r.level.map_or(255, Level::rank));
        for s in [&r.agent, &r.host, &r.source, &r.message] {
            put_str(out, s);
        }
        match &r.raw {
            Some(raw) => {
                out.push(1);
                put_str(out, raw);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(r.fields.len() as u32).to_le_bytes());
        for (k, v) in &r.fields {
            put_str(out, k);
            match v {
                Value::Str(s) => {
                    out.push(0);
                    put_str(out, s);
                }
                Value::Int(i) => {
                    out.push(1);
                    out.extend_from_slice(&i.to_le_bytes());
                }
                Value::Float(f) => {
                    out.push(2);
                    out.extend_from_slice(&f.to_le_bytes());
                }
                Value::Bool(b) => {
                    out.push(3);
                    out.push(u8::from(*b));
                }
            }
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed batch payload: {0}")]
pub struct DecodeError(&'static str);

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("unexpected end"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("invalid UTF-8"))
    }
}

/// [`encode_batch`] followed by the checkpoint of the source the batch came from, under
/// its key.
pub fn encode_batch_with_checkpoint(
    first_seq: u64,
    records: &[Record],
    key: &str,
    checkpoint: &StoredCheckpoint,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    encode_batch(first_seq, records, out);
    out[start] = VERSION_WITH_CHECKPOINT;
    put_str(out, key);
    out.extend_from_slice(&checkpoint.seq.to_le_bytes());
    out.extend_from_slice(&(checkpoint.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&checkpoint.data);
}

/// Decodes a payload written by [`encode_batch`], giving every record its sequence number
/// (the checkpoint of a version 2 payload is read and dropped).
pub fn decode_batch(buf: &[u8]) -> Result<Vec<Record>, DecodeError> {
    decode_frame(buf).map(|(records, _)| records)
}

/// Decodes a payload of either version: the records and, for version 2, the checkpoint
/// under its key.
pub fn decode_frame(buf: &[u8]) -> Result<(Vec<Record>, Option<KeyedCheckpoint>), DecodeError> {
    let mut r = Reader { buf };
    let version = r.u8()?;
    if version != VERSION && version != VERSION_WITH_CHECKPOINT {
        return Err(DecodeError("unknown version"));
    }
    let first_seq = r.u64()?;
    let count = r.u32()? as usize;
    // Every record takes at least 30 bytes: do not trust `count` for the allocation.
    let mut records = Vec::with_capacity(count.min(buf.len() / 30));
    for i in 0..count {
        let timestamp = r.u64()? as i64;
        let level_byte = r.u8()?;
        let level = if level_byte == 255 {
            None
        } else {
            Some(Level::from_rank(level_byte).ok_or(DecodeError("bad level"))?)
        };
        let agent = r.string()?;
        let host = r.string()?;
        let source = r.string()?;
        let message = r.string()?;
        let raw = match r.u8()? {
            0 => None,
            1 => Some(r.string()?),
            _ => return Err(DecodeError("bad raw flag")),
        };
        let nfields = r.u32()?;
        let mut fields = logyard_model::Fields::new();
        for _ in 0..nfields {
            let key = r.string()?;
            let value = match r.u8()? {
                0 => Value::Str(r.string()?),
                1 => Value::Int(r.u64()? as i64),
                2 => Value::Float(f64::from_bits(r.u64()?)),
                3 => Value::Bool(r.u8()? != 0),
                _ => return Err(DecodeError("bad value tag")),
            };
            fields.insert(key, value);
        }
        records.push(Record {
            timestamp,
            seq: first_seq + i as u64,
            level,
            agent,
            host,
            source,
            message,
            fields,
            raw,
        });
    }
    let checkpoint = if version == VERSION_WITH_CHECKPOINT {
        let key = r.string()?;
        let seq = r.u64()?;
        let len = r.u32()? as usize;
        let data = r.take(len)?.to_vec();
        Some((key, StoredCheckpoint { seq, data }))
    } else {
        None
    };
    if !r.buf.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok((records, checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
            (-1e12f64..1e12).prop_map(Value::Float),
        ]
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            any::<i64>(),
            proptest::option::of(0u8..6),
            any::<String>(),
            any::<String>(),
            proptest::option::of(any::<String>()),
            proptest::collection::btree_map(any::<String>(), arb_value(), 0..4),
        )
            .prop_map(|(timestamp, level, agent, message, raw, fields)| Record {
                timestamp,
                level: level.and_then(Level::from_rank),
                agent,
                message,
                raw,
                fields,
                host: "h".into(),
                source: "http".into(),
                seq: 0,
            })
    }

    proptest! {
        #[test]
        fn round_trips(records in proptest::collection::vec(arb_record(), 0..8), first in 0u64..1 << 40) {
            let mut buf = Vec::new();
            encode_batch(first, &records, &mut buf);
            let back = decode_batch(&buf).unwrap();
            let want: Vec<Record> = records
                .into_iter()
                .enumerate()
                .map(|(i, mut r)| { r.seq = first + i as u64; r })
                .collect();
            prop_assert_eq!(back, want);
        }

        #[test]
        fn a_checkpoint_round_trips_with_its_batch(
            records in proptest::collection::vec(arb_record(), 0..4),
            key in any::<String>(),
            seq in any::<u64>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let cp = StoredCheckpoint { seq, data };
            let mut buf = Vec::new();
            encode_batch_with_checkpoint(7, &records, &key, &cp, &mut buf);
            let (back, got) = decode_frame(&buf).unwrap();
            prop_assert_eq!(back.len(), records.len());
            prop_assert_eq!(got, Some((key, cp)));
            // Cut anywhere, the payload is refused rather than read without its checkpoint.
            for cut in 0..buf.len() {
                prop_assert!(decode_frame(&buf[..cut]).is_err());
            }
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_batch(&bytes);
        }
    }
}
