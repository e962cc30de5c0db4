//! What an ingest node tells a query node that follows it: one consistent cut of its store,
//! as the segments already in the bucket (the query node reads them there) and the rows of
//! everything else (segments waiting for their upload, the memtable), so that a query
//! node's answers include entries acknowledged a moment ago, each once.
//!
//! The cut is asked for again and again ([`Store::recent`]): rows the query node already
//! holds are not sent twice (`known` segments, memtable rows up to `since`), and the rows
//! of segments are sent up to a size the query node names (the others are listed, not sent:
//! a node whose uploads have stalled for hours does not send hours of rows at once).
//!
//! Wire format (little-endian): `LYR1`, `u32` length + JSON header ([`RecentHeader`]), `u32`
//! parts, then per part `u64` segment id (`u64::MAX`: memtable rows), `u32` rows, a `u64`
//! sequence number per row, `u32` length + the rows as a WAL batch ([`crate::codec`]).

use std::sync::Arc;

use logyard_model::Record;
use serde::{Deserialize, Serialize};

use crate::segment::SegmentMeta;
use crate::{codec, schema, Columns, Store, StoreError};

const MAGIC: &[u8; 4] = b"LYR1";

/// The part id of memtable rows.
const MEMTABLE: u64 = u64::MAX;

/// A cut of an ingest node's store, for a query node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recent {
    /// What names the cut: the node, its segments in the bucket, the others' ids, and where
    /// its memtable starts.
    pub header: RecentHeader,
    /// The rows of segments not in the bucket yet that the asker did not know.
    pub unshared: Vec<(u64, Vec<Record>)>,
    /// Memtable rows after the asker's `since`.
    pub mem: Vec<Record>,
}

/// The JSON part of a [`Recent`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentHeader {
    /// The node's id.
    pub node: String,
    /// Its live segments whose files are in the bucket.
    pub shared: Vec<SegmentMeta>,
    /// Its live segments that are not (their rows are sent, unless known or beyond the
    /// size asked for).
    pub unshared_ids: Vec<u64>,
    /// The lowest sequence number in its memtable; `None` when the memtable is empty. Memtable
    /// rows below it that the asker holds are in segments now.
    pub mem_from: Option<u64>,
}

impl Store {
    /// The store's cut for a query node that holds the rows of segments `known` and of the
    /// memtable up to sequence number `since`, with the rows of other segments not in the
    /// bucket, oldest first, while they take about `max_bytes` at most; `None` for a store
    /// whose segments are not in a bucket (nothing to follow).
    pub fn recent(
        &self,
        known: &[u64],
        since: u64,
        max_bytes: u64,
    ) -> Result<Option<Recent>, StoreError> {
        let Some(node) = &self.inner.node else {
            return Ok(None);
        };
        let (segments, mem) = {
            let view = self.inner.view.read().expect("view lock");
            (
                view.segments.clone(),
                view.memtable().cloned().collect::<Vec<_>>(),
            )
        };
        let dir = &self.inner.segments;
        let mut header = RecentHeader {
            node: node.clone(),
            ..RecentHeader::default()
        };
        let mut unshared = Vec::new();
        let mut room = max_bytes;
        for seg in &segments {
            if dir.shared(&seg.meta.data_key()) && dir.shared(&seg.meta.index_key()) {
                header.shared.push(seg.meta.clone());
                continue;
            }
            header.unshared_ids.push(seg.meta.id);
            let size = seg.decoded_bytes();
            if !known.contains(&seg.meta.id) && size <= room {
                room -= size;
                unshared.push((seg.meta.id, rows_of(seg)?));
            }
        }
        header.mem_from = mem.iter().flat_map(|b| b.records()).map(|r| r.seq).min();
        let mem = mem
            .iter()
            .flat_map(|b| b.records())
            .filter(|r| r.seq > since)
            .cloned()
            .collect();
        Ok(Some(Recent {
            header,
            unshared,
            mem,
        }))
    }
}

/// Every row of a segment.
fn rows_of(seg: &Arc<crate::Segment>) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::with_capacity(seg.meta.rows as usize);
    for (i, block) in seg.blocks.iter().enumerate() {
        let rows: Vec<usize> = (0..block.rows as usize).collect();
        out.extend(schema::batch_to_records(
            &seg.read_block(i, Columns::ALL)?,
            &rows,
        )?);
    }
    Ok(out)
}

impl Recent {
    /// The cut in its wire format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        let header = serde_json::to_vec(&self.header).expect("a header serialises");
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        let parts: Vec<(u64, &[Record])> = self
            .unshared
            .iter()
            .map(|(id, rows)| (*id, rows.as_slice()))
            .chain((!self.mem.is_empty()).then_some((MEMTABLE, self.mem.as_slice())))
            .collect();
        out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        for (id, rows) in parts {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
            for r in rows {
                out.extend_from_slice(&r.seq.to_le_bytes());
            }
            let mut batch = Vec::new();
            codec::encode_batch(0, rows, &mut batch);
            out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
            out.extend_from_slice(&batch);
        }
        out
    }

    /// Reads a cut; an error says what is wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Recent, String> {
        let mut at = Reader { bytes, at: 0 };
        if at.take(4)? != MAGIC {
            return Err("not a node's answer (no LYR1 mark)".into());
        }
        let len = at.u32()? as usize;
        let header: RecentHeader = serde_json::from_slice(at.take(len)?)
            .map_err(|e| format!("its header is not valid: {e}"))?;
        let parts = at.u32()?;
        let mut recent = Recent {
            header,
            ..Recent::default()
        };
        for _ in 0..parts {
            let id = at.u64()?;
            let n = at.u32()? as usize;
            // Each row takes 8 bytes of sequence number: a count beyond the bytes left is a lie.
            if n > at.left() / 8 {
                return Err(format!(
                    "part {id} claims {n} rows, more than the answer holds"
                ));
            }
            let seqs: Vec<u64> = (0..n).map(|_| at.u64()).collect::<Result<_, _>>()?;
            let len = at.u32()? as usize;
            let mut rows = codec::decode_batch(at.take(len)?)
                .map_err(|e| format!("the rows of part {id}: {e}"))?;
            if rows.len() != n {
                return Err(format!(
                    "part {id} holds {} rows and names {n} sequence numbers",
                    rows.len()
                ));
            }
            for (row, seq) in rows.iter_mut().zip(seqs) {
                row.seq = seq;
            }
            if id == MEMTABLE {
                recent.mem.extend(rows);
            } else {
                recent.unshared.push((id, rows));
            }
        }
        if at.left() != 0 {
            return Err(format!("{} bytes after the last part", at.left()));
        }
        Ok(recent)
    }
}

/// Reads the wire format, each short read an error.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("cut short at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, message: &str) -> Record {
        let mut r = Record::new(1_705_276_800_000_000_000 + seq as i64, message);
        r.seq = seq;
        r.agent = "billing".into();
        r
    }

    #[test]
    fn a_cut_reads_back_as_written_with_its_sequence_numbers() {
        let recent = Recent {
            header: RecentHeader {
                node: "ingest-1".into(),
                shared: Vec::new(),
                unshared_ids: vec![7],
                mem_from: Some(40),
            },
            unshared: vec![(7, vec![rec(3, "a"), rec(9, "b")])],
            mem: vec![rec(40, "c"), rec(41, "d")],
        };
        let bytes = recent.encode();
        assert_eq!(Recent::decode(&bytes).unwrap(), recent);
        for cut in [1, 4, 9, bytes.len() - 1] {
            assert!(Recent::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Recent::decode(&longer)
            .unwrap_err()
            .contains("after the last part"));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_to_a_cut_or_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Recent::decode(&bytes);
        }

        #[test]
        fn a_damaged_cut_is_an_error_or_a_cut(flip in 0usize..4096, to in proptest::num::u8::ANY) {
            let recent = Recent {
                header: RecentHeader { node: "n".into(), mem_from: Some(1), ..RecentHeader::default() },
                unshared: vec![(3, vec![rec(1, "a")])],
                mem: vec![rec(2, "b")],
            };
            let mut bytes = recent.encode();
            let at = flip % bytes.len();
            bytes[at] = to;
            let _ = Recent::decode(&bytes);
        }
    }
}
