//! The memtable: acknowledged batches not yet in a segment, queryable at once.

use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use logyard_model::Record;

use crate::segment::{self, BlockCounts, Columns};

/// One acknowledged batch of records, kept in memory until a flush writes it to a segment.
#[derive(Debug)]
pub struct MemBatch {
    records: Vec<Record>,
    min_ts: i64,
    max_ts: i64,
    bytes: usize,
    columnar: OnceLock<RecordBatch>,
    counts: OnceLock<BlockCounts>,
}

impl MemBatch {
    /// Wraps records that already carry their sequence numbers.
    pub fn new(records: Vec<Record>) -> Arc<MemBatch> {
        let min_ts = records.iter().map(|r| r.timestamp).min().unwrap_or(0);
        let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(0);
        let bytes = records.iter().map(Record::approx_size).sum();
        Arc::new(MemBatch {
            records,
            min_ts,
            max_ts,
            bytes,
            columnar: OnceLock::new(),
            counts: OnceLock::new(),
        })
    }

    /// Returns the records, in arrival order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Returns the earliest timestamp.
    pub fn min_ts(&self) -> i64 {
        self.min_ts
    }

    /// Returns the latest timestamp.
    pub fn max_ts(&self) -> i64 {
        self.max_ts
    }

    /// Returns the approximate memory held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns the rows by level and agent, counted once on first use.
    pub fn counts(&self) -> &BlockCounts {
        self.counts.get_or_init(|| BlockCounts::of(&self.records))
    }

    /// Returns some columns of the batch in the segment schema, built once on first use.
    pub fn columns(&self, columns: Columns) -> RecordBatch {
        let full = self
            .columnar
            .get_or_init(|| segment::records_to_batch(&self.records));
        if columns == Columns::ALL {
            return full.clone();
        }
        let indices: Vec<usize> = (0..segment::col::NAMES.len())
            .filter(|&i| columns.has(i))
            .collect();
        full.project(&indices).expect("indices are in the schema")
    }
}
