//! The read surface of the store: a [`Snapshot`] of the blocks visible at one instant
//! (segment row groups and memtable batches), each skipped by time or token filter and read
//! by column.

use std::sync::Arc;

use arrow_array::RecordBatch;
use logyard_model::Record;

use crate::{schema, BlockCounts, Catalog, Columns, Inner, MemBatch, Segment, StoreError};

/// Where a block's rows are.
#[derive(Debug, Clone)]
pub enum BlockSource {
    /// A row group of a segment.
    Segment(Arc<Segment>, usize),
    /// A memtable batch.
    Mem(Arc<MemBatch>),
}

/// One block of a snapshot: a segment row group or a memtable batch.
#[derive(Debug, Clone)]
pub struct BlockRef {
    /// Earliest timestamp in the block.
    pub min_ts: i64,
    /// Latest timestamp in the block.
    pub max_ts: i64,
    pub(crate) rows: usize,
    /// Where the rows are.
    pub source: BlockSource,
}

impl BlockRef {
    /// Returns the number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Returns the catalog entry of the block's segment (memtable blocks: none).
    pub fn segment(&self) -> Option<&crate::SegmentMeta> {
        match &self.source {
            BlockSource::Segment(seg, _) => Some(&seg.meta),
            BlockSource::Mem(_) => None,
        }
    }

    /// Returns false only if some token hash is certainly absent (memtable blocks: never).
    pub fn may_contain_all(&self, hashes: &[u64]) -> bool {
        match &self.source {
            BlockSource::Segment(seg, i) => seg.blocks[*i].may_contain_all(hashes),
            BlockSource::Mem(_) => true,
        }
    }

    /// Returns whether the block's raw lines and field values may hold every token hash
    /// (memtable blocks: always).
    pub fn others_may_contain_all(&self, hashes: &[u64]) -> bool {
        match &self.source {
            BlockSource::Segment(seg, i) => seg.blocks[*i].others_may_contain_all(hashes),
            BlockSource::Mem(_) => true,
        }
    }

    /// Returns the block's rows by level and agent, when known without reading rows (every
    /// memtable batch; segment blocks written by this version).
    pub fn counts(&self) -> Option<&BlockCounts> {
        match &self.source {
            BlockSource::Segment(seg, i) => seg.blocks[*i].counts.as_ref(),
            BlockSource::Mem(batch) => Some(batch.counts()),
        }
    }

    /// Reads some columns of the block.
    pub fn read(&self, columns: Columns) -> Result<RecordBatch, StoreError> {
        self.read_keys(columns, None)
    }

    /// Reads some columns of the block, with only the field columns of `keys` (every one for
    /// `None`) when the fields are read as stored ([`Columns::FIELD_COLUMNS`]): see
    /// [`crate::Segment::read_block_keys`].
    pub fn read_keys(
        &self,
        columns: Columns,
        keys: Option<&[String]>,
    ) -> Result<RecordBatch, StoreError> {
        match &self.source {
            BlockSource::Segment(seg, i) => seg.read_block_keys(*i, columns, keys),
            BlockSource::Mem(batch) => Ok(batch.columns(columns)),
        }
    }

    /// Reads whole records at some rows of the block.
    pub fn records(&self, rows: &[usize]) -> Result<Vec<Record>, StoreError> {
        match &self.source {
            BlockSource::Segment(seg, i) => {
                schema::batch_to_records(&seg.read_block(*i, Columns::ALL)?, rows)
            }
            BlockSource::Mem(batch) => {
                Ok(rows.iter().map(|&r| batch.records()[r].clone()).collect())
            }
        }
    }
}

/// A part of the data that a snapshot cannot hold now: the entries of a followed node not
/// in the bucket yet while the node does not answer, or a node whose manifest cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// What is missing, as a query's cost names it (`node=<id>: …`).
    pub name: String,
    /// Why.
    pub reason: String,
}

/// The blocks visible at one instant. Holding it keeps them readable.
pub struct Snapshot {
    /// Segment blocks first (by segment), then memtable batches in arrival order.
    pub blocks: Vec<BlockRef>,
    /// Time range and rows of each segment in quarantine.
    pub(crate) quarantined: Vec<(i64, i64, u64)>,
    /// What the blocks miss: parts of followed nodes out of reach.
    pub(crate) gaps: Vec<Gap>,
    pub(crate) inner: Arc<Inner>,
}

/// The time ranges and rows of a catalog's quarantined segments.
pub(crate) fn quarantined_ranges(catalog: &Catalog) -> Vec<(i64, i64, u64)> {
    catalog
        .quarantined
        .iter()
        .map(|m| (m.min_ts, m.max_ts, m.rows))
        .collect()
}

impl Snapshot {
    /// Returns the parts of the data out of reach now ([`Gap`]): an answer over any time
    /// range may miss their entries (their times are not known).
    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// Returns the rows of quarantined segments (damaged, moved aside, not searched) whose
    /// time range meets `[start, end)`: an answer over that range misses them.
    pub fn quarantined_rows(&self, start: Option<i64>, end: Option<i64>) -> u64 {
        self.quarantined
            .iter()
            .filter(|(lo, hi, _)| start.is_none_or(|s| *hi >= s) && end.is_none_or(|e| *lo < e))
            .map(|(_, _, rows)| rows)
            .sum()
    }

    /// Reports a block whose read failed as damaged: its segment goes to quarantine.
    ///
    /// A decoding error quarantines the segment only if its file also fails its checksum
    /// now: a segment whose bytes are intact is never moved aside for an error of the reader.
    pub fn report_damaged(&self, block: &BlockRef, error: &StoreError) {
        let BlockSource::Segment(seg, _) = &block.source else {
            return;
        };
        if seg.origin() != 0 {
            // A followed node's segment: its node, not this one, owns it.
            tracing::error!(segment = seg.meta.id, origin = seg.origin(), error = %error,
                "a segment of a followed node could not be read; left in place");
            return;
        }
        match error {
            StoreError::Corrupt(_) => self.inner.quarantine(seg.meta.id, error),
            // A file that cannot be read now (the bucket out of reach) is not damage.
            StoreError::Parquet(_) if matches!(seg.checksum_matches(), Ok(false)) => {
                self.inner.quarantine(seg.meta.id, error)
            }
            StoreError::Parquet(_) => tracing::error!(
                segment = seg.meta.id,
                error = %error,
                "a segment with intact bytes could not be decoded; it stays in place"
            ),
            _ => {}
        }
    }
}
