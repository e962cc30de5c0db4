//! The memtable: acknowledged batches not yet in a segment, queryable at once.

use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, RecordBatch};
use logyard_model::Record;

use crate::schema::{self, col, Columns};
use crate::segment::BlockCounts;

/// One acknowledged batch of records, kept in memory until a flush writes it to a segment.
#[derive(Debug)]
pub struct MemBatch {
    records: Vec<Record>,
    min_ts: i64,
    max_ts: i64,
    bytes: usize,
    /// Each column of the segment schema, built on first use (alert rules and queries of the
    /// memtable build only the columns they read).
    columnar: [OnceLock<ArrayRef>; col::NAMES.len()],
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
            columnar: Default::default(),
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

    /// Returns some columns of the batch in the segment schema, each built once on first use.
    pub fn columns(&self, columns: Columns) -> RecordBatch {
        let indices: Vec<usize> = (0..col::NAMES.len()).filter(|&i| columns.has(i)).collect();
        let arrays: Vec<ArrayRef> = indices
            .iter()
            .map(|&i| {
                self.columnar[i]
                    .get_or_init(|| schema::record_column(&self.records, i))
                    .clone()
            })
            .collect();
        let schema = Arc::new(
            schema::schema()
                .project(&indices)
                .expect("indices are in the schema"),
        );
        let options =
            arrow_array::RecordBatchOptions::new().with_row_count(Some(self.records.len()));
        RecordBatch::try_new_with_options(schema, arrays, &options)
            .expect("columns match the schema")
    }
}
