//! Segments: immutable, time-sorted Parquet files with a token-filter sidecar.
//!
//! A segment is two files in `parts/<day>/`: `seg-<id>.parquet`, zstd-compressed columns
//! (see [`schema`]) sorted by `(timestamp, seq)` and cut into row groups of at most
//! `block_rows` rows; and `seg-<id>.idx`, which holds for every row group (a *block*) its
//! min and max time and a binary fuse filter of the hashes of its tokens, so that a search
//! for a rare word opens only the blocks that may hold it. Any Parquet reader (DuckDB, Spark,
//! DataFusion) reads the `.parquet` file alone.
//!
//! The `.idx` layout: magic `LYIDX\0\0` and a version byte (3; versions 1 and 2 are read
//! too), `u32` block count, then per block `i64 min_ts`, `i64 max_ts`, `u32 rows`, then its
//! token filters. Up to version 2 a block has one filter over the tokens of every text:
//! `u64 seed`, `u32 segment_length`, `u32 segment_length_mask`, `u32 segment_count_length`,
//! `u32` fingerprint count and the fingerprints (count 0 means "no filter": every token may
//! be there). From version 3 it has two, each a tag byte (0: no filter, every token may be
//! there; 1: no token at all; 2: a filter in the layout above follows): first the tokens
//! of the message and the labels, then those of the raw line and the field values, so that
//! a word proved absent from the second spares reading the `raw` and `fields` columns. From
//! version 2, the block's [`BlockCounts`]: 7 `u32` row counts by level (TRACE … CRITICAL,
//! then none), a `u32` agent count (`u32::MAX`: not kept, the block has too many agents)
//! and per agent a `u16` name length, the name and a `u32` row count; last, the CRC32C of
//! all preceding bytes.

use std::borrow::Borrow;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use logyard_model::{text_hashes, Column, Record, Value};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use xorf::{BinaryFuse8, Descriptor, Filter};

use hashbrown::HashSet;

use crate::cache::ColumnCache;
use crate::dir::{FileKey, SegmentDir, SegmentFile};
use crate::error::StoreError;
use crate::field_columns::{self, records_to_batch_with, FieldColumn, FieldColumnRule};
use crate::schema::{batch_to_records, col, schema, seqs, timestamps, Columns};

/// The magic of an index file without its version byte.
const IDX_MAGIC: &[u8; 7] = b"LYIDX\0\0";
/// The index format this version writes: 2 adds the pairs of adjacent tokens to the filter
/// (`logyard_model::text_hashes`) and row counts by level and agent; 3 splits the filter in
/// two (message and labels; raw line and field values). Version 1 filters lack the pairs
/// that searches now require, so their blocks are never skipped by filter.
const IDX_VERSION: u8 = 3;
/// Blocks with more distinct agents than this keep no agent counts.
pub const MAX_COUNTED_AGENTS: usize = 256;

/// Row counts of a block by level and by agent, kept in the index so that `count()` by
/// level or agent reads no row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockCounts {
    /// Rows per level rank (TRACE … CRITICAL), then rows without a level.
    pub levels: [u32; 7],
    /// Rows per agent, sorted by name; `None` when the block has more than
    /// [`MAX_COUNTED_AGENTS`] agents.
    pub agents: Option<Vec<(String, u32)>>,
}

impl BlockCounts {
    /// Counts records by level and agent.
    pub fn of<R: Borrow<Record>>(records: &[R]) -> BlockCounts {
        let mut levels = [0u32; 7];
        let mut agents: std::collections::BTreeMap<&str, u32> = Default::default();
        for r in records {
            let r = r.borrow();
            levels[r.level.map_or(6, |l| l.rank() as usize)] += 1;
            *agents.entry(r.agent.as_str()).or_default() += 1;
        }
        let agents = (agents.len() <= MAX_COUNTED_AGENTS && agents.keys().all(|a| a.len() <= 4096))
            .then(|| {
                agents
                    .into_iter()
                    .map(|(a, n)| (a.to_string(), n))
                    .collect()
            });
        BlockCounts { levels, agents }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for n in self.levels {
            out.extend_from_slice(&n.to_le_bytes());
        }
        match &self.agents {
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
            Some(agents) => {
                out.extend_from_slice(&(agents.len() as u32).to_le_bytes());
                for (name, n) in agents {
                    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
        }
    }
}

/// Returns a segment's Arrow schema with the message column as `Dictionary(Int32, Utf8)`.
fn dictionary_message_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == col::NAMES[col::MESSAGE] && f.data_type() == &DataType::Utf8 {
                f.as_ref().clone().with_data_type(DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(DataType::Utf8),
                ))
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// What the catalog keeps about a segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Unique id; the file names derive from it.
    pub id: u64,
    /// The UTC day of every record in it, `YYYY-MM-DD`.
    pub day: String,
    /// Earliest timestamp.
    pub min_ts: i64,
    /// Latest timestamp.
    pub max_ts: i64,
    /// Lowest sequence number.
    pub min_seq: u64,
    /// Highest sequence number.
    pub max_seq: u64,
    /// Number of records.
    pub rows: u64,
    /// Size of both files.
    pub bytes: u64,
    /// CRC32C of the `.parquet` file.
    pub crc32c: u32,
}

impl SegmentMeta {
    /// The name of its Parquet file.
    pub fn data_key(&self) -> FileKey {
        FileKey::data(&self.day, self.id)
    }

    /// The name of its token-filter sidecar.
    pub fn index_key(&self) -> FileKey {
        FileKey::index(&self.day, self.id)
    }
}

/// The in-memory index of one block.
#[derive(Debug, Clone)]
pub struct BlockMeta {
    /// Earliest timestamp in the block.
    pub min_ts: i64,
    /// Latest timestamp in the block.
    pub max_ts: i64,
    /// Number of rows.
    pub rows: u32,
    filters: TokenFilters,
    /// Rows by level and agent; `None` for blocks written by an older version.
    pub counts: Option<BlockCounts>,
}

/// What a block's index knows of its tokens.
#[derive(Debug, Clone)]
enum TokenFilters {
    /// Nothing: every token may be there.
    Unknown,
    /// One filter over the tokens of every text (index versions 1 and 2).
    Whole(BinaryFuse8),
    /// The tokens of the message and labels, and those of the raw line and field values.
    Split { message: TokenSet, others: TokenSet },
}

/// The tokens of some texts of a block.
#[derive(Debug, Clone)]
enum TokenSet {
    /// Not known: every token may be there.
    Unknown,
    /// No token at all.
    Empty,
    /// The tokens in a filter (with its false positives).
    Filter(BinaryFuse8),
}

impl TokenSet {
    fn may_contain(&self, hash: u64) -> bool {
        match self {
            TokenSet::Unknown => true,
            TokenSet::Empty => false,
            TokenSet::Filter(f) => f.contains(&hash),
        }
    }
}

impl BlockMeta {
    /// Returns false only if some token hash is certainly absent from the block.
    pub fn may_contain_all(&self, hashes: &[u64]) -> bool {
        match &self.filters {
            TokenFilters::Unknown => true,
            TokenFilters::Whole(f) => hashes.iter().all(|h| f.contains(h)),
            TokenFilters::Split { message, others } => hashes
                .iter()
                .all(|&h| message.may_contain(h) || others.may_contain(h)),
        }
    }

    /// Returns whether the raw lines and field values of the block may hold every token
    /// hash (false only when some is certainly absent from them all).
    pub fn others_may_contain_all(&self, hashes: &[u64]) -> bool {
        match &self.filters {
            TokenFilters::Split { others, .. } => hashes.iter().all(|&h| others.may_contain(h)),
            _ => self.may_contain_all(hashes),
        }
    }
}

/// How a segment is cut into blocks and compressed.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Rows per block (Parquet row group).
    pub block_rows: usize,
    /// The zstd level, 1 (fastest) to 22 (smallest); clamped to that range.
    pub compression_level: i32,
    /// Which fields get columns of their own.
    pub fields: FieldColumnRule,
}

/// Writes a segment for records of one day, already sorted by `(timestamp, seq)`.
pub fn write<R: Borrow<Record>>(
    dir: &dyn SegmentDir,
    id: u64,
    day: &str,
    records: &[R],
    layout: Layout,
) -> Result<SegmentMeta, StoreError> {
    debug_assert!(records.windows(2).all(|w| {
        let (a, b) = (w[0].borrow(), w[1].borrow());
        (a.timestamp, a.seq) <= (b.timestamp, b.seq)
    }));
    let columns = FieldColumn::choose(records, layout.fields);
    let mut writer = SegmentWriter::new(layout, columns)?;
    let mut tokens = BlockTokens::default();
    for chunk in records.chunks(layout.block_rows.max(1)) {
        writer.block(chunk, &mut tokens)?;
    }
    writer.finish(dir, id, day)
}

/// Writes a segment for the records of one day that `records` gives in `(timestamp, seq)`
/// order, holding one block of them at a time (a merge of segments, read block by block).
/// Its field columns are chosen from its first block.
pub fn write_sorted(
    dir: &dyn SegmentDir,
    id: u64,
    day: &str,
    records: impl Iterator<Item = Result<Record, StoreError>>,
    layout: Layout,
) -> Result<SegmentMeta, StoreError> {
    let block_rows = layout.block_rows.max(1);
    let mut writer: Option<SegmentWriter> = None;
    let put = |writer: &mut Option<SegmentWriter>, block: &[Record]| {
        let w = match writer {
            Some(w) => w,
            None => writer.insert(SegmentWriter::new(
                layout,
                FieldColumn::choose(block, layout.fields),
            )?),
        };
        w.block(block, &mut BlockTokens::default())
    };
    let mut block = Vec::with_capacity(block_rows);
    for record in records {
        let record = record?;
        debug_assert!(block
            .last()
            .is_none_or(|l: &Record| (l.timestamp, l.seq) <= (record.timestamp, record.seq)));
        block.push(record);
        if block.len() == block_rows {
            put(&mut writer, &block)?;
            block.clear();
        }
    }
    if !block.is_empty() {
        put(&mut writer, &block)?;
    }
    let writer = match writer {
        Some(w) => w,
        None => SegmentWriter::new(layout, Vec::new())?,
    };
    writer.finish(dir, id, day)
}

/// A segment being written, block by block: the Parquet data in memory (compressed) and its
/// index.
struct SegmentWriter {
    writer: ArrowWriter<Vec<u8>>,
    /// The fields written as columns of their own.
    columns: Vec<FieldColumn>,
    idx: Vec<u8>,
    blocks: u32,
    first_ts: Option<i64>,
    last_ts: i64,
    min_seq: u64,
    max_seq: u64,
    rows: u64,
}

impl SegmentWriter {
    fn new(layout: Layout, columns: Vec<FieldColumn>) -> Result<SegmentWriter, StoreError> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(layout.compression_level.clamp(1, 22))
                    .expect("a level in 1..=22"),
            ))
            .set_max_row_group_row_count(Some(layout.block_rows));
        // Times are sorted and sequence numbers nearly consecutive: their deltas take a few
        // bits a row, where a dictionary or plain values take most of eight bytes.
        for column in [Column::Timestamp.name(), Column::Seq.name()] {
            props = props
                .set_column_dictionary_enabled(ColumnPath::from(column), false)
                .set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
        }
        let writer = ArrowWriter::try_new(
            Vec::new(),
            field_columns::segment_schema(&columns),
            Some(props.build()),
        )?;
        let mut idx = Vec::new();
        idx.extend_from_slice(IDX_MAGIC);
        idx.push(IDX_VERSION);
        // The number of blocks, written once known.
        idx.extend_from_slice(&0u32.to_le_bytes());
        Ok(SegmentWriter {
            writer,
            columns,
            idx,
            blocks: 0,
            first_ts: None,
            last_ts: 0,
            min_seq: u64::MAX,
            max_seq: 0,
            rows: 0,
        })
    }

    /// Writes one block (at most `block_rows` records, in order, not empty); `tokens` is
    /// scratch space for its token filters, kept from block to block where it can be.
    fn block<'a, R: Borrow<Record>>(
        &mut self,
        chunk: &'a [R],
        tokens: &mut BlockTokens<'a>,
    ) -> Result<(), StoreError> {
        self.writer
            .write(&records_to_batch_with(chunk, &self.columns))?;
        self.writer.flush()?;
        encode_block(chunk, tokens, &mut self.idx);
        self.blocks += 1;
        for r in chunk {
            let r = r.borrow();
            self.first_ts.get_or_insert(r.timestamp);
            self.last_ts = r.timestamp;
            self.min_seq = self.min_seq.min(r.seq);
            self.max_seq = self.max_seq.max(r.seq);
        }
        self.rows += chunk.len() as u64;
        Ok(())
    }

    /// Writes both files of segment `id` (the data file first: an index without its data
    /// file is removed at the next start) and returns its catalog entry.
    fn finish(
        mut self,
        dir: &dyn SegmentDir,
        id: u64,
        day: &str,
    ) -> Result<SegmentMeta, StoreError> {
        let buf = self.writer.into_inner()?;
        let count = IDX_MAGIC.len() + 1;
        self.idx[count..count + 4].copy_from_slice(&self.blocks.to_le_bytes());
        let crc = crc32c::crc32c(&self.idx);
        self.idx.extend_from_slice(&crc.to_le_bytes());
        let meta = SegmentMeta {
            id,
            day: day.to_string(),
            min_ts: self.first_ts.unwrap_or(0),
            max_ts: self.last_ts,
            min_seq: if self.rows == 0 { 0 } else { self.min_seq },
            max_seq: self.max_seq,
            rows: self.rows,
            bytes: (buf.len() + self.idx.len()) as u64,
            crc32c: crc32c::crc32c(&buf),
        };
        dir.put_all(vec![
            (meta.data_key(), buf.into()),
            (meta.index_key(), self.idx.into()),
        ])?;
        Ok(meta)
    }
}

/// Appends one block's entry to an index: its time range, row count, token filters and
/// counts by level and agent.
fn encode_block<'a, R: Borrow<Record>>(
    chunk: &'a [R],
    tokens: &mut BlockTokens<'a>,
    idx: &mut Vec<u8>,
) {
    tokens.clear();
    for r in chunk {
        tokens.add(r.borrow());
    }
    idx.extend_from_slice(&chunk[0].borrow().timestamp.to_le_bytes());
    idx.extend_from_slice(&chunk[chunk.len() - 1].borrow().timestamp.to_le_bytes());
    idx.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
    for hashes in [&mut tokens.message, &mut tokens.others] {
        hashes.sort_unstable();
        hashes.dedup();
        encode_token_set(hashes, idx);
    }
    BlockCounts::of(chunk).encode(idx);
}

/// Writes the index of a segment anew from its data file (read row group by row group),
/// and returns its blocks. For an index found missing or damaged beside an intact file.
fn rebuild_index(
    dir: &dyn SegmentDir,
    key: &FileKey,
    file: &SegmentFile,
    reader_meta: &ArrowReaderMetadata,
) -> Result<Vec<BlockMeta>, StoreError> {
    let groups = reader_meta.metadata().num_row_groups();
    let mut idx = Vec::new();
    idx.extend_from_slice(IDX_MAGIC);
    idx.push(IDX_VERSION);
    idx.extend_from_slice(&(groups as u32).to_le_bytes());
    for group in 0..groups {
        let records = read_row_group(file, reader_meta, group)?;
        if records.is_empty() {
            return Err(StoreError::Corrupt("an empty row group".into()));
        }
        let mut tokens = BlockTokens::default();
        encode_block(&records, &mut tokens, &mut idx);
    }
    let crc = crc32c::crc32c(&idx);
    idx.extend_from_slice(&crc.to_le_bytes());
    let blocks = parse_index(&idx).map_err(StoreError::Corrupt)?;
    match dir.put(key, idx.into()) {
        // A store that only reads these files (a query node) keeps the index in memory: the
        // segment is served, and not read whole again at each refresh.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            tracing::info!(file = %key, location = dir.location(), "index rebuilt in memory only: this store does not write here");
            Ok(blocks)
        }
        written => written.map(|()| blocks).map_err(StoreError::from),
    }
}

/// Reads every record of one row group.
fn read_row_group(
    file: &SegmentFile,
    reader_meta: &ArrowReaderMetadata,
    group: usize,
) -> Result<Vec<Record>, StoreError> {
    let reader =
        ParquetRecordBatchReaderBuilder::new_with_metadata(file.clone(), reader_meta.clone())
            .with_row_groups(vec![group])
            .build()?;
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch?;
        let rows: Vec<usize> = (0..batch.num_rows()).collect();
        records.extend(field_columns::records_of(&batch, &rows)?);
    }
    Ok(records)
}

/// A Parquet reader's error as the store's: a read of the file that failed (the disk, the
/// bucket out of reach) stays an I/O error, so that it never sends a segment to quarantine;
/// anything else is damage, described by `corrupt`.
fn read_error(
    e: parquet::errors::ParquetError,
    corrupt: impl Fn(String) -> StoreError,
) -> StoreError {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => StoreError::Io(*io),
                Err(other) => corrupt(other.to_string()),
            }
        }
        other => corrupt(other.to_string()),
    }
}

/// What a segment data file found without a catalog entry holds: the entry it would have,
/// and its sequence numbers, sorted.
#[derive(Debug)]
pub struct Inspected {
    /// The catalog entry, made from the file (the index size included when it is readable).
    pub meta: SegmentMeta,
    /// Every row's sequence number, ascending.
    pub seqs: Vec<u64>,
}

/// Reads a segment data file that the catalog does not list (`<day>/seg-<id>.parquet`)
/// and makes its catalog entry from it: time and sequence ranges and row count from its
/// columns, its checksum from its bytes.
pub fn inspect(dir: &dyn SegmentDir, day: &str, id: u64) -> Result<Inspected, StoreError> {
    let mut meta = SegmentMeta {
        id,
        day: day.to_string(),
        min_ts: 0,
        max_ts: 0,
        min_seq: 0,
        max_seq: 0,
        rows: 0,
        bytes: 0,
        crc32c: 0,
    };
    let corrupt = |what: String| StoreError::Corrupt(format!("segment {id}: {what}"));
    let file = dir.open(&meta.data_key())?;
    let reader_meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| read_error(e, corrupt))?;
    let expected = schema();
    let same = |name: &str| {
        expected.field_with_name(name).ok().map(|f| f.data_type())
            == reader_meta
                .schema()
                .field_with_name(name)
                .ok()
                .map(|f| f.data_type())
    };
    if !same(Column::Timestamp.name()) || !same(Column::Seq.name()) {
        return Err(corrupt(
            "the data file is not a segment of this store".into(),
        ));
    }
    let mask = ProjectionMask::roots(
        reader_meta.metadata().file_metadata().schema_descr(),
        [col::TIMESTAMP, col::SEQ],
    );
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file.clone(), reader_meta)
        .with_projection(mask)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    let mut all_seqs = Vec::new();
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        for &ts in timestamps(&batch) {
            min_ts = min_ts.min(ts);
            max_ts = max_ts.max(ts);
        }
        all_seqs.extend_from_slice(seqs(&batch));
    }
    let mut seqs = all_seqs;
    if seqs.is_empty() {
        return Err(corrupt("the data file holds no row".into()));
    }
    seqs.sort_unstable();
    meta.min_ts = min_ts;
    meta.max_ts = max_ts;
    meta.min_seq = seqs[0];
    meta.max_seq = seqs[seqs.len() - 1];
    meta.rows = seqs.len() as u64;
    meta.crc32c = file.crc32c()?;
    meta.bytes = parquet::file::reader::Length::len(&file)
        + dir
            .open(&meta.index_key())
            .map_or(0, |f| parquet::file::reader::Length::len(&f));
    Ok(Inspected { meta, seqs })
}

/// The token hashes of one block's two filters (index version 3): messages, agents, hosts
/// and sources in the first; raw texts and field values in the second. A block repeats most
/// of its texts (a few thousand distinct messages in 8,192 rows, a handful of agents), so
/// each distinct text is tokenized once.
#[derive(Default)]
struct BlockTokens<'a> {
    message: Vec<u64>,
    others: Vec<u64>,
    seen_message: HashSet<&'a str>,
    seen_others: HashSet<&'a str>,
    seen_numbers: HashSet<String>,
    number: String,
    /// The record added before: an agent, host or source equal to its own is known.
    prev: Option<&'a Record>,
}

impl<'a> BlockTokens<'a> {
    /// Forgets the block before, keeping the allocations.
    fn clear(&mut self) {
        self.message.clear();
        self.others.clear();
        self.seen_message.clear();
        self.seen_others.clear();
        self.seen_numbers.clear();
        self.prev = None;
    }

    /// Adds the texts of one record.
    fn add(&mut self, r: &'a Record) {
        let prev = self.prev.replace(r);
        let labels = [
            (&r.message, None),
            (&r.agent, prev.map(|p| &p.agent)),
            (&r.host, prev.map(|p| &p.host)),
            (&r.source, prev.map(|p| &p.source)),
        ];
        for (text, before) in labels {
            if before != Some(text) && self.seen_message.insert(text) {
                text_hashes(text, |h| self.message.push(h));
            }
        }
        if let Some(raw) = &r.raw {
            if self.seen_others.insert(raw) {
                text_hashes(raw, |h| self.others.push(h));
            }
        }
        for value in r.fields.values() {
            match value {
                Value::Str(s) => {
                    if self.seen_others.insert(s) {
                        text_hashes(s, |h| self.others.push(h));
                    }
                }
                other => {
                    // Its JSON text, which a query compares (`1.0`, where Display writes `1`).
                    self.number.clear();
                    write!(self.number, "{}", other.to_json()).expect("writing to a String");
                    if !self.seen_numbers.contains(&self.number) {
                        text_hashes(&self.number, |h| self.others.push(h));
                        self.seen_numbers.insert(self.number.clone());
                    }
                }
            }
        }
    }
}

/// Appends a tagged token filter (index version 3) of sorted, distinct hashes.
fn encode_token_set(hashes: &[u64], idx: &mut Vec<u8>) {
    if hashes.is_empty() {
        idx.push(1);
        return;
    }
    match BinaryFuse8::try_from(hashes) {
        Ok(f) => {
            idx.push(2);
            let d = &f.descriptor;
            idx.extend_from_slice(&d.seed.to_le_bytes());
            idx.extend_from_slice(&d.segment_length.to_le_bytes());
            idx.extend_from_slice(&d.segment_length_mask.to_le_bytes());
            idx.extend_from_slice(&d.segment_count_length.to_le_bytes());
            idx.extend_from_slice(&(f.fingerprints.len() as u32).to_le_bytes());
            idx.extend_from_slice(&f.fingerprints);
        }
        Err(_) => idx.push(0),
    }
}

fn parse_index(data: &[u8]) -> Result<Vec<BlockMeta>, String> {
    if data.len() < 16 || &data[..7] != IDX_MAGIC {
        return Err("index file has no valid header".into());
    }
    let version = data[7];
    if !(1..=IDX_VERSION).contains(&version) {
        return Err(format!(
            "index format version {version} is not supported by this logyard (versions 1 to {IDX_VERSION})"
        ));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("index file fails its checksum".into());
    }
    let mut pos = 8;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = body.get(pos..pos + n).ok_or("index file cut short")?;
        pos += n;
        Ok(s)
    };
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    let count = u32_of(take(4)?);
    let mut blocks = Vec::new();
    for _ in 0..count {
        let min_ts = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let max_ts = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let rows = u32_of(take(4)?);
        // A filter: tagged (version 3) or not (a filter follows, count 0 meaning none).
        let mut read_set = |tagged: bool| -> Result<TokenSet, String> {
            let tag = if tagged { take(1)?[0] } else { 2 };
            match tag {
                0 => return Ok(TokenSet::Unknown),
                1 => return Ok(TokenSet::Empty),
                2 => {}
                tag => return Err(format!("index file has an unknown token filter tag {tag}")),
            }
            let seed = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
            let segment_length = u32_of(take(4)?);
            let segment_length_mask = u32_of(take(4)?);
            let segment_count_length = u32_of(take(4)?);
            let n = u32_of(take(4)?) as usize;
            let fingerprints = take(n)?;
            if n == 0 {
                return Ok(TokenSet::Unknown);
            }
            Ok(TokenSet::Filter(BinaryFuse8 {
                descriptor: Descriptor {
                    seed,
                    segment_length,
                    segment_length_mask,
                    segment_count_length,
                },
                fingerprints: fingerprints.to_vec().into_boxed_slice(),
            }))
        };
        let filters = if version >= 3 {
            let message = read_set(true)?;
            let others = read_set(true)?;
            TokenFilters::Split { message, others }
        } else {
            match read_set(false)? {
                TokenSet::Filter(f) if version == 2 => TokenFilters::Whole(f),
                _ => TokenFilters::Unknown,
            }
        };
        let counts = if version >= 2 {
            let mut levels = [0u32; 7];
            for l in &mut levels {
                *l = u32_of(take(4)?);
            }
            let n = u32_of(take(4)?);
            let agents = if n == u32::MAX {
                None
            } else {
                let mut agents = Vec::with_capacity((n as usize).min(MAX_COUNTED_AGENTS));
                for _ in 0..n {
                    let len = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
                    let name = std::str::from_utf8(take(len)?)
                        .map_err(|_| "index file has an agent name that is not UTF-8")?
                        .to_string();
                    agents.push((name, u32_of(take(4)?)));
                }
                Some(agents)
            };
            Some(BlockCounts { levels, agents })
        } else {
            None
        };
        blocks.push(BlockMeta {
            min_ts,
            max_ts,
            rows,
            filters,
            counts,
        });
    }
    Ok(blocks)
}

/// An open segment: its catalog entry, block index and Parquet metadata.
///
/// Opening checks the index file's checksum and the Parquet footer; the data file's checksum
/// is checked on the first read of a block, so that a start does not read every segment.
#[derive(Debug)]
pub struct Segment {
    /// The catalog entry.
    pub meta: SegmentMeta,
    /// One entry per block (Parquet row group), in time order.
    pub blocks: Vec<BlockMeta>,
    file: SegmentFile,
    reader_meta: ArrowReaderMetadata,
    /// The same metadata, reading the message column as a dictionary array.
    dict_meta: ArrowReaderMetadata,
    /// Its field columns, each with its place in its schema (read with the `fields` column).
    field_columns: Vec<(usize, FieldColumn)>,
    verified: OnceLock<bool>,
    cache: Option<Arc<ColumnCache>>,
    totals: OnceLock<Option<SegmentCounts>>,
    /// 0 for a segment of this store; another number for each node a query node follows.
    origin: u32,
}

/// Row counts of a whole segment by level and agent: the sums of its blocks' counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentCounts {
    /// Rows per level rank (TRACE … CRITICAL), then rows without a level.
    pub levels: [u64; 7],
    /// Rows per agent, sorted by name; `None` when a block keeps no agent counts.
    pub agents: Option<Vec<(String, u64)>>,
}

/// How many segments [`Segment::open_all`] opens at once: each open of a segment in a
/// bucket waits on a few requests (the file's size, its footer, its index).
const OPEN_AT_ONCE: usize = 16;

impl Segment {
    /// Opens the segments `metas` of `dir`, several at once; each with its result, in the
    /// order given.
    pub fn open_all(
        dir: &dyn SegmentDir,
        metas: Vec<SegmentMeta>,
    ) -> Vec<(SegmentMeta, Result<Segment, StoreError>)> {
        let next = AtomicUsize::new(0);
        let mut opened: Vec<(usize, Result<Segment, StoreError>)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..OPEN_AT_ONCE.min(metas.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(meta) = metas.get(i) else { break mine };
                            mine.push((i, Segment::open(dir, meta.clone())));
                        }
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("a segment opening thread panicked"))
                .collect()
        });
        opened.sort_unstable_by_key(|(i, _)| *i);
        metas
            .into_iter()
            .zip(opened)
            .map(|(meta, (_, result))| (meta, result))
            .collect()
    }

    /// The bytes of its rows once decoded, as its Parquet footer counts them (before
    /// compression): what holding them in memory takes, about.
    pub fn decoded_bytes(&self) -> u64 {
        let meta = self.reader_meta.metadata();
        meta.row_groups()
            .iter()
            .map(|g| g.total_byte_size().max(0) as u64)
            .sum()
    }

    /// Opens a segment, checking its index and its Parquet footer.
    pub fn open(dir: &dyn SegmentDir, meta: SegmentMeta) -> Result<Segment, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("segment {}: {what}", meta.id));
        let file = dir.open(&meta.data_key())?;
        let reader_meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| read_error(e, corrupt))?;
        let index_key = meta.index_key();
        let index = match dir.get(&index_key) {
            Ok(bytes) => parse_index(&bytes),
            // A bucket out of reach is an error, not a reason to rebuild the index.
            Err(e) if !file.is_local() && e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e.into())
            }
            Err(e) => Err(format!("index file cannot be read: {e}")),
        };
        let blocks = match index {
            Ok(blocks) => blocks,
            // The index only repeats what the data file holds: rebuilt from it when intact.
            Err(why) => {
                if file.crc32c()? != meta.crc32c {
                    return Err(corrupt(format!(
                        "{why}, and the data file fails its checksum"
                    )));
                }
                tracing::warn!(segment = meta.id, file = %index_key, location = dir.location(), problem = %why, "segment index rebuilt from its data file");
                rebuild_index(dir, &index_key, &file, &reader_meta).map_err(|e| match e {
                    StoreError::Io(e) => StoreError::Io(e),
                    e => corrupt(format!("{why}; rebuilding it failed: {e}")),
                })?
            }
        };
        let dict_meta = ArrowReaderMetadata::try_new(
            reader_meta.metadata().clone(),
            ArrowReaderOptions::new().with_schema(dictionary_message_schema(reader_meta.schema())),
        )
        .map_err(|e| corrupt(e.to_string()))?;
        if reader_meta.metadata().num_row_groups() != blocks.len() {
            return Err(corrupt(
                "index and data disagree on the number of blocks".into(),
            ));
        }
        let field_columns =
            field_columns::field_columns_of(reader_meta.schema()).map_err(corrupt)?;
        Ok(Segment {
            meta,
            blocks,
            file,
            reader_meta,
            dict_meta,
            field_columns,
            verified: OnceLock::new(),
            cache: None,
            totals: OnceLock::new(),
            origin: 0,
        })
    }

    /// Returns the segment's rows by level and agent, summed from its blocks' counts on the
    /// first call; `None` when a block has no counts (written by an older version).
    pub fn counts(&self) -> Option<&SegmentCounts> {
        self.totals
            .get_or_init(|| {
                let mut levels = [0u64; 7];
                let mut agents: Option<std::collections::BTreeMap<&str, u64>> =
                    Some(Default::default());
                for block in &self.blocks {
                    let counts = block.counts.as_ref()?;
                    for (sum, &n) in levels.iter_mut().zip(&counts.levels) {
                        *sum += u64::from(n);
                    }
                    match (&mut agents, &counts.agents) {
                        (Some(sums), Some(of_block)) => {
                            for (agent, n) in of_block {
                                *sums.entry(agent.as_str()).or_default() += u64::from(*n);
                            }
                        }
                        _ => agents = None,
                    }
                }
                Some(SegmentCounts {
                    levels,
                    agents: agents
                        .map(|a| a.into_iter().map(|(k, n)| (k.to_string(), n)).collect()),
                })
            })
            .as_ref()
    }

    /// Keeps the text columns this segment's reads decode in `cache`, and reads them from
    /// there when held.
    pub fn with_cache(mut self, cache: Option<Arc<ColumnCache>>) -> Segment {
        self.cache = cache;
        self
    }

    /// Marks the segment as one of a followed node (`origin` > 0) rather than of this store.
    pub fn with_origin(mut self, origin: u32) -> Segment {
        self.origin = origin;
        self
    }

    /// 0 for a segment of this store; for a followed node's, the number this store gave
    /// that node ([`crate::Follow`]).
    pub fn origin(&self) -> u32 {
        self.origin
    }

    /// Tells segments apart across the nodes a query node follows, whose ids may be the
    /// same: the origin and the id.
    pub fn uid(&self) -> (u32, u64) {
        (self.origin, self.meta.id)
    }

    /// Checks the data file against the checksum in the catalog (once; the answer is kept).
    /// A file that cannot be read now (the disk, the bucket out of reach) is an I/O error,
    /// and is checked again at the next call.
    ///
    /// A file in a bucket is not read whole for this: its reads fetch only the byte ranges
    /// a query needs. Its checksum is checked when a read of it fails to decode
    /// ([`crate::Snapshot::report_damaged`]), which alone can send it to quarantine.
    pub fn verify(&self) -> Result<(), StoreError> {
        if !self.file.is_local() {
            return Ok(());
        }
        let matches = match self.verified.get() {
            Some(&matches) => matches,
            None => {
                let matches = self.checksum_matches()?;
                *self.verified.get_or_init(|| matches)
            }
        };
        if matches {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "segment {}: data file fails its checksum",
                self.meta.id
            )))
        }
    }

    /// Reads the whole data file and compares its checksum with the catalog's, now; an
    /// error when the file cannot be read.
    pub fn checksum_matches(&self) -> std::io::Result<bool> {
        Ok(self.file.crc32c()? == self.meta.crc32c)
    }

    /// Reads some columns of one block (the message as a dictionary when `columns` holds
    /// [`Columns::MESSAGE_DICTIONARY`], the fields as stored when it holds
    /// [`Columns::FIELD_COLUMNS`]). Columns held by the segment's cache are taken from it;
    /// those decoded here are left in it.
    pub fn read_block(&self, block: usize, columns: Columns) -> Result<RecordBatch, StoreError> {
        self.read_block_keys(block, columns, None)
    }

    /// [`Segment::read_block`], with only the field columns of `keys` (every one for
    /// `None`) when the fields are read as stored: the reader must not look for another
    /// key's values, which are neither in the answer's field columns nor in its `fields`.
    pub fn read_block_keys(
        &self,
        block: usize,
        columns: Columns,
        keys: Option<&[String]>,
    ) -> Result<RecordBatch, StoreError> {
        self.verify()?;
        let dict = columns.has_all(Columns::MESSAGE_DICTIONARY) && columns.has(col::MESSAGE);
        let split = columns.has_all(Columns::FIELD_COLUMNS)
            && columns.has(col::FIELDS)
            && !self.field_columns.is_empty();
        let meta = if dict {
            &self.dict_meta
        } else {
            &self.reader_meta
        };
        // The columns of the answer, by their places in the file's schema.
        let mut roots: Vec<usize> = columns.indices().collect();
        if split {
            let wanted = |c: &FieldColumn| keys.is_none_or(|keys| keys.contains(&c.key));
            roots.extend(
                self.field_columns
                    .iter()
                    .filter(|(_, c)| wanted(c))
                    .map(|(root, _)| *root),
            );
        }
        let Some(cache) = &self.cache else {
            return self.decode_block(meta, block, &roots, !split);
        };
        let other_form = |c: usize| (dict && c == col::MESSAGE) || (split && c == col::FIELDS);
        let remote = !self.file.is_local();
        let mut held = Vec::new();
        let mut to_read = Vec::new();
        for &c in &roots {
            let cached = ColumnCache::keeps(c, remote)
                .then(|| cache.get(self.uid(), block, c, other_form(c)))
                .flatten();
            match cached {
                Some(array) => held.push((c, array)),
                None => to_read.push(c),
            }
        }
        let read = if to_read.is_empty() {
            None
        } else {
            Some(self.decode_block(meta, block, &to_read, !split)?)
        };
        let mut read_columns = read.iter().flat_map(|b| b.columns().iter().cloned());
        let mut arrays = Vec::new();
        for &c in &roots {
            let array = match held.iter().find(|(h, _)| *h == c) {
                Some((_, array)) => array.clone(),
                None => {
                    let array = read_columns.next().ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "segment {}: a column is missing",
                            self.meta.id
                        ))
                    })?;
                    if ColumnCache::keeps(c, remote) {
                        cache.insert(self.uid(), block, c, other_form(c), array.clone());
                    }
                    array
                }
            };
            arrays.push(array);
        }
        match read {
            // Nothing came from the cache: the decoded batch is the answer as it is.
            Some(batch) if held.is_empty() => Ok(batch),
            _ => {
                let schema = meta.schema().project(&roots)?;
                Ok(RecordBatch::try_new(Arc::new(schema), arrays)?)
            }
        }
    }

    /// Decodes the columns `roots` (places in the file's schema) of one block from the
    /// file, in that order. With `assemble`, a read of `fields` also reads the field
    /// columns and puts their values back into it (what every reader of a block expects).
    fn decode_block(
        &self,
        meta: &ArrowReaderMetadata,
        block: usize,
        roots: &[usize],
        assemble: bool,
    ) -> Result<RecordBatch, StoreError> {
        let mut roots = roots.to_vec();
        let assemble = assemble && roots.contains(&col::FIELDS) && !self.field_columns.is_empty();
        if assemble {
            roots.extend(self.field_columns.iter().map(|(root, _)| *root));
        }
        let mask = ProjectionMask::roots(
            self.reader_meta.metadata().file_metadata().schema_descr(),
            roots.iter().copied(),
        );
        let file = self.prefetch(block, &roots)?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
            .with_row_groups(vec![block])
            .with_projection(mask)
            .with_batch_size(self.blocks[block].rows.max(1) as usize)
            .build()?;
        let mut batches = Vec::new();
        for batch in reader {
            batches.push(batch?);
        }
        let batch = match batches.len() {
            1 => batches.pop().expect("one batch"),
            0 => {
                return Err(StoreError::Corrupt(format!(
                    "segment {}: empty block",
                    self.meta.id
                )))
            }
            _ => arrow_select::concat::concat_batches(&batches[0].schema(), &batches)?,
        };
        if assemble {
            field_columns::assemble(batch)
        } else {
            Ok(batch)
        }
    }

    /// The data file, with the column chunks of the columns `roots` in `block` fetched at
    /// once when reads are not local (one request per column instead of two per page).
    fn prefetch(&self, block: usize, roots: &[usize]) -> Result<SegmentFile, StoreError> {
        if self.file.is_local() {
            return Ok(self.file.clone());
        }
        let metadata = self.reader_meta.metadata();
        let descr = metadata.file_metadata().schema_descr();
        let group = metadata.row_group(block);
        let ranges: Vec<std::ops::Range<u64>> = (0..group.num_columns())
            .filter(|&leaf| roots.contains(&descr.get_column_root_idx(leaf)))
            .map(|leaf| {
                let (start, len) = group.column(leaf).byte_range();
                start..start + len
            })
            .collect();
        Ok(self.file.prefetch(&ranges)?)
    }

    /// Reads every row's sequence number, in file order.
    pub fn read_seqs(&self) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::with_capacity(self.meta.rows as usize);
        for b in 0..self.blocks.len() {
            out.extend_from_slice(seqs(&self.read_block(b, Columns::of(&[col::SEQ]))?));
        }
        Ok(out)
    }

    /// Reads the records of the segment in file order, their `(timestamp, seq)` order: one
    /// block decoded at a time (without the cache of decoded columns), its rows made into
    /// records `rows` at a time.
    pub fn records_in_order(&self, rows: usize) -> InOrder<'_> {
        InOrder {
            segment: self,
            next_block: 0,
            batch: None,
            next_row: 0,
            rows: rows.max(1),
            ready: std::collections::VecDeque::new(),
            failed: false,
        }
    }

    /// Reads every record of the segment, in file order.
    pub fn read_all(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::with_capacity(self.meta.rows as usize);
        for b in 0..self.blocks.len() {
            let batch = self.read_block(b, Columns::ALL)?;
            let rows: Vec<usize> = (0..batch.num_rows()).collect();
            out.extend(batch_to_records(&batch, &rows)?);
        }
        Ok(out)
    }
}

/// The records of a segment in order: [`Segment::records_in_order`].
pub struct InOrder<'a> {
    segment: &'a Segment,
    next_block: usize,
    batch: Option<RecordBatch>,
    next_row: usize,
    rows: usize,
    ready: std::collections::VecDeque<Record>,
    failed: bool,
}

impl InOrder<'_> {
    /// Makes the next records ready; false at the end.
    fn refill(&mut self) -> Result<bool, StoreError> {
        loop {
            if let Some(batch) = &self.batch {
                if self.next_row < batch.num_rows() {
                    let end = (self.next_row + self.rows).min(batch.num_rows());
                    let rows: Vec<usize> = (self.next_row..end).collect();
                    self.ready.extend(field_columns::records_of(batch, &rows)?);
                    self.next_row = end;
                    return Ok(true);
                }
                self.batch = None;
            }
            let seg = self.segment;
            if self.next_block >= seg.blocks.len() {
                return Ok(false);
            }
            if self.next_block == 0 {
                seg.verify()?;
            }
            let mut roots: Vec<usize> = Columns::ALL.indices().collect();
            roots.extend(seg.field_columns.iter().map(|(root, _)| *root));
            let batch = seg.decode_block(&seg.reader_meta, self.next_block, &roots, false)?;
            self.next_block += 1;
            self.next_row = 0;
            self.batch = Some(batch);
        }
    }
}

impl Iterator for InOrder<'_> {
    type Item = Result<Record, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.ready.is_empty() {
            match self.refill() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        self.ready.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::LocalDir;
    use crate::schema::{column_names, record_column, string_at};
    use arrow_array::types::Int32Type;
    use arrow_array::DictionaryArray;
    use logyard_model::Level;

    /// Segment files in a temporary folder.
    fn local(dir: &tempfile::TempDir) -> LocalDir {
        LocalDir::new(dir.path().to_path_buf()).unwrap()
    }

    fn layout(block_rows: usize) -> Layout {
        Layout {
            block_rows,
            compression_level: 3,
            fields: FieldColumnRule::DEFAULT,
        }
    }
    use logyard_model::hash_token;

    fn records(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let mut r = Record::new(i as i64 * 1000, format!("request {i} served"));
                r.seq = i as u64 + 1;
                r.agent = format!("agent-{}", i % 3);
                r.level = Some(if i % 10 == 0 {
                    Level::Error
                } else {
                    Level::Info
                });
                r.fields
                    .insert("status".into(), Value::Int(200 + (i % 5) as i64));
                if i == 7 {
                    r.message = "the NEEDLE is here".into();
                    r.raw = Some("raw text".into());
                }
                r
            })
            .collect()
    }

    #[test]
    fn segments_opened_at_once_each_answer_in_the_order_asked() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(50);
        let metas: Vec<SegmentMeta> = (1..=40)
            .map(|id| {
                let layout = Layout {
                    block_rows: 8192,
                    compression_level: 1,
                    fields: FieldColumnRule::DEFAULT,
                };
                write(&local(&dir), id, "1970-01-01", &recs, layout).unwrap()
            })
            .collect();
        // One data file cut short: its open fails, the others' do not.
        let damaged = local(&dir).local_path(&metas[6].data_key()).unwrap();
        let len = std::fs::metadata(&damaged).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&damaged)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let opened = Segment::open_all(&local(&dir), metas.clone());
        assert_eq!(opened.len(), metas.len());
        for ((meta, result), want) in opened.iter().zip(&metas) {
            assert_eq!(meta, want);
            match result {
                Ok(seg) => {
                    assert_ne!(meta.id, 7);
                    assert_eq!(seg.meta, *want);
                }
                Err(e) => assert_eq!(meta.id, 7, "{e}"),
            }
        }
        assert!(opened[6].1.is_err());
    }

    #[test]
    fn the_compression_level_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(20_000);
        let mut sizes = Vec::new();
        for (id, level) in [(1, 1), (2, 19)] {
            let layout = Layout {
                block_rows: 8192,
                compression_level: level,
                fields: FieldColumnRule::DEFAULT,
            };
            let meta = write(&local(&dir), id, "1970-01-01", &recs, layout).unwrap();
            let seg = Segment::open(&local(&dir), meta.clone()).unwrap();
            assert_eq!(seg.read_all().unwrap().len(), recs.len());
            sizes.push(
                std::fs::metadata(local(&dir).local_path(&meta.data_key()).unwrap())
                    .unwrap()
                    .len(),
            );
        }
        assert!(
            sizes[1] < sizes[0],
            "level 19 is smaller than level 1: {sizes:?}"
        );
    }

    #[test]
    fn the_fields_column_is_the_json_object_of_the_values() {
        let mut r = Record::new(1, "m");
        r.fields.insert("z".into(), Value::Float(f64::NAN));
        r.fields
            .insert("a \"q\"".into(), Value::Str("tab\there é \u{1}".into()));
        r.fields.insert("n".into(), Value::Int(-7));
        r.fields.insert("f".into(), Value::Float(0.1));
        r.fields.insert("big".into(), Value::Float(1e300));
        r.fields.insert("b".into(), Value::Bool(true));
        let empty = Record::new(2, "no fields");
        let column = record_column(&[r.clone(), empty], col::FIELDS);
        let want: serde_json::Map<String, serde_json::Value> = r
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        assert_eq!(
            string_at(column.as_ref(), 0),
            Some(serde_json::Value::Object(want).to_string().as_str())
        );
        assert_eq!(string_at(column.as_ref(), 1), None);
    }

    #[test]
    fn write_open_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(250);
        let meta = write(&local(&dir), 1, "1970-01-01", &recs, layout(100)).unwrap();
        let seg = Segment::open(&local(&dir), meta).unwrap();
        assert_eq!(seg.blocks.len(), 3);
        assert_eq!(seg.read_all().unwrap(), recs);
        let needle = [hash_token("NEEDLE")];
        let hits: Vec<bool> = seg
            .blocks
            .iter()
            .map(|b| b.may_contain_all(&needle))
            .collect();
        assert!(hits[0]);
        assert_eq!(
            hits.iter().filter(|h| **h).count(),
            1,
            "filters should skip the other blocks"
        );
        let partial = seg
            .read_block(1, Columns::of(&[col::TIMESTAMP, col::AGENT]))
            .unwrap();
        assert_eq!(partial.num_columns(), 2);
        assert_eq!(timestamps(&partial)[0], 100_000);
    }

    #[test]
    fn messages_read_as_a_dictionary_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let mut recs = records(250);
        for (i, r) in recs.iter_mut().enumerate() {
            r.message = format!("message {}", i % 7);
        }
        let meta = write(&local(&dir), 5, "1970-01-01", &recs, layout(100)).unwrap();
        let seg = Segment::open(&local(&dir), meta).unwrap();
        let columns = Columns::of(&[col::MESSAGE, col::AGENT]);
        let plain = seg.read_block(1, columns).unwrap();
        let dict = seg
            .read_block(1, columns.with(Columns::MESSAGE_DICTIONARY))
            .unwrap();
        let (p, d) = (
            plain.column_by_name("message").unwrap(),
            dict.column_by_name("message").unwrap(),
        );
        assert_eq!(p.data_type(), &DataType::Utf8);
        let keys = d
            .as_any()
            .downcast_ref::<DictionaryArray<Int32Type>>()
            .expect("a dictionary array");
        assert!(keys.values().len() <= 7, "{}", keys.values().len());
        for row in 0..100 {
            assert_eq!(string_at(p.as_ref(), row), string_at(d.as_ref(), row));
        }
        // Whole records read the same either way.
        assert_eq!(seg.read_all().unwrap(), recs);
    }

    /// Records with the fields of a web server's request lines in most rows.
    fn requests(n: usize) -> Vec<Record> {
        let mut recs = records(n);
        for (i, r) in recs.iter_mut().enumerate() {
            if i % 5 == 4 {
                r.fields.clear();
                continue;
            }
            let f = &mut r.fields;
            f.insert(
                "method".into(),
                Value::Str(["GET", "POST", "PUT"][i % 3].into()),
            );
            f.insert(
                "path".into(),
                Value::Str(format!("/api/v1/orders/{}", i * 7919 % 10_007)),
            );
            f.insert(
                "request_id".into(),
                Value::Str(format!(
                    "{:016x}",
                    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                )),
            );
            f.insert("response_time_ms".into(), Value::Int((i * 37 % 900) as i64));
            f.insert("user".into(), Value::Str(format!("user{}", i % 40)));
        }
        recs
    }

    #[test]
    fn frequent_fields_are_columns_of_the_file_and_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let recs = requests(20_000);
        let none = Layout {
            fields: FieldColumnRule::NONE,
            ..layout(8192)
        };
        let plain = write(&local(&dir), 1, "1970-01-01", &recs, none).unwrap();
        let typed = write(&local(&dir), 2, "1970-01-01", &recs, layout(8192)).unwrap();
        let size = |m: &SegmentMeta| {
            std::fs::metadata(local(&dir).local_path(&m.data_key()).unwrap())
                .unwrap()
                .len()
        };
        assert!(
            size(&typed) * 10 < size(&plain) * 9,
            "field columns make the file at least 10% smaller: {} vs {} bytes",
            size(&typed),
            size(&plain)
        );
        let plain = Segment::open(&local(&dir), plain).unwrap();
        let typed = Segment::open(&local(&dir), typed).unwrap();
        let file_columns: Vec<(String, DataType)> = typed
            .reader_meta
            .schema()
            .fields()
            .iter()
            .skip(9)
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        assert_eq!(
            file_columns,
            [
                ("f.method".to_string(), DataType::Utf8),
                ("f.path".to_string(), DataType::Utf8),
                ("f.request_id".to_string(), DataType::Utf8),
                ("f.response_time_ms".to_string(), DataType::Int64),
                ("f.status".to_string(), DataType::Int64),
                ("f.user".to_string(), DataType::Utf8),
            ]
        );
        for columns in [
            Columns::ALL,
            Columns::of(&[col::FIELDS]),
            Columns::of(&[col::MESSAGE, col::FIELDS]).with(Columns::MESSAGE_DICTIONARY),
            Columns::of(&[col::SEQ]),
        ] {
            for block in 0..3 {
                assert_eq!(
                    typed.read_block(block, columns).unwrap(),
                    plain.read_block(block, columns).unwrap(),
                    "block {block}, {columns:?}"
                );
            }
        }
        assert_eq!(typed.read_all().unwrap(), recs);
        // Read as stored, the fields not in a column are left in `fields`, the field
        // columns follow; put together, they are the fields.
        let split = typed
            .read_block(
                1,
                Columns::of(&[col::SEQ, col::FIELDS]).with(Columns::FIELD_COLUMNS),
            )
            .unwrap();
        let names = column_names(&split);
        assert_eq!(names[..3], ["seq", "fields", "f.method"]);
        assert_eq!(names.len(), 2 + 6);
        assert_eq!(
            split.column(1).null_count(),
            split.num_rows(),
            "every field is in a column"
        );
        assert_eq!(
            field_columns::assemble(split).unwrap(),
            plain
                .read_block(1, Columns::of(&[col::SEQ, col::FIELDS]))
                .unwrap()
        );
        // Only the field columns of some keys, for a reader that looks at those alone.
        let keys = ["status".to_string(), "nowhere".to_string()];
        let some = typed
            .read_block_keys(
                1,
                Columns::of(&[col::FIELDS]).with(Columns::FIELD_COLUMNS),
                Some(&keys),
            )
            .unwrap();
        assert_eq!(column_names(&some), ["fields", "f.status"]);
        // A segment without field columns reads every field in `fields` either way.
        assert_eq!(
            plain
                .read_block(1, Columns::ALL.with(Columns::FIELD_COLUMNS))
                .unwrap(),
            plain.read_block(1, Columns::ALL).unwrap()
        );
        let in_order: Vec<Record> = typed.records_in_order(1000).map(Result::unwrap).collect();
        assert_eq!(in_order, recs);
        // A merge writes from records read in order: its columns come from its first block.
        let merged = write_sorted(
            &local(&dir),
            3,
            "1970-01-01",
            typed.records_in_order(1000),
            layout(8192),
        )
        .unwrap();
        let merged = Segment::open(&local(&dir), merged).unwrap();
        assert_eq!(merged.field_columns, typed.field_columns);
        assert_eq!(merged.read_all().unwrap(), recs);
    }

    #[test]
    fn cached_columns_read_as_the_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut recs = records(250);
        for (i, r) in recs.iter_mut().enumerate() {
            r.message = format!("message {}", i % 7);
        }
        let meta = write(&local(&dir), 6, "1970-01-01", &recs, layout(100)).unwrap();
        let uncached = Segment::open(&local(&dir), meta.clone()).unwrap();
        let cache = ColumnCache::new(64 << 20);
        let seg = Segment::open(&local(&dir), meta)
            .unwrap()
            .with_cache(cache.clone());
        let cache = cache.unwrap();
        let dict = Columns::MESSAGE_DICTIONARY;
        // The message alone first, then more columns around it: some from the cache, some
        // from the file, in the schema's order either way; the plain and dictionary messages
        // are kept apart.
        let reads = [
            Columns::of(&[col::MESSAGE]).with(dict),
            Columns::of(&[col::TIMESTAMP, col::MESSAGE, col::FIELDS]).with(dict),
            Columns::of(&[col::MESSAGE, col::AGENT]),
            Columns::ALL.with(dict),
            Columns::ALL,
            Columns::of(&[col::SEQ]),
            Columns::ALL.with(Columns::FIELD_COLUMNS),
            Columns::of(&[col::FIELDS]).with(Columns::FIELD_COLUMNS),
        ];
        for round in 0..2 {
            for columns in reads {
                for block in 0..3 {
                    let want = uncached.read_block(block, columns).unwrap();
                    let got = seg.read_block(block, columns).unwrap();
                    assert_eq!(got, want, "round {round}, block {block}, {columns:?}");
                }
            }
        }
        let stats = cache.stats();
        assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
        assert!(stats.bytes > 0 && stats.bytes <= 64 << 20, "{stats:?}");
        // Every text column of every block was decoded once, then only read from memory:
        // 3 blocks x (dictionary message, plain message, raw, fields, the fields left beside
        // the field columns, the field column `status`).
        assert_eq!(stats.misses, 3 * 6, "{stats:?}");
    }

    #[test]
    fn no_cache_when_its_size_is_zero() {
        assert!(ColumnCache::new(0).is_none());
    }

    #[test]
    fn blocks_keep_counts_by_level_and_agent() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(250);
        let meta = write(&local(&dir), 3, "1970-01-01", &recs, layout(100)).unwrap();
        let seg = Segment::open(&local(&dir), meta).unwrap();
        let c = seg.blocks[0].counts.as_ref().unwrap();
        assert_eq!(c.levels[Level::Error.rank() as usize], 10);
        assert_eq!(c.levels[Level::Info.rank() as usize], 90);
        assert_eq!(
            c.agents.as_deref().unwrap(),
            [
                ("agent-0".to_string(), 34),
                ("agent-1".to_string(), 33),
                ("agent-2".to_string(), 33)
            ]
        );
        assert_eq!(seg.blocks[2].counts, Some(BlockCounts::of(&recs[200..])));
        // The segment's totals are the whole file's counts.
        let whole = BlockCounts::of(&recs);
        let totals = seg.counts().unwrap();
        assert_eq!(totals.levels, whole.levels.map(u64::from));
        assert_eq!(
            totals.agents.as_deref().unwrap(),
            whole
                .agents
                .unwrap()
                .into_iter()
                .map(|(a, n)| (a, u64::from(n)))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn version_1_indexes_are_read_without_counts() {
        let mut idx = b"LYIDX\0\0\x01".to_vec();
        idx.extend_from_slice(&1u32.to_le_bytes());
        idx.extend_from_slice(&5i64.to_le_bytes());
        idx.extend_from_slice(&9i64.to_le_bytes());
        idx.extend_from_slice(&3u32.to_le_bytes());
        idx.extend_from_slice(&[0u8; 24]);
        let crc = crc32c::crc32c(&idx);
        idx.extend_from_slice(&crc.to_le_bytes());
        let blocks = parse_index(&idx).unwrap();
        assert_eq!((blocks[0].min_ts, blocks[0].rows), (5, 3));
        assert!(blocks[0].counts.is_none());
        idx[7] = 9;
        let err = parse_index(&idx).unwrap_err();
        assert!(err.contains("version 9 is not supported"), "{err}");
    }

    #[test]
    fn raw_lines_and_field_values_have_their_own_filter() {
        let dir = tempfile::tempdir().unwrap();
        let mut recs = records(250);
        recs[120]
            .fields
            .insert("note".into(), Value::Str("alpha beta".into()));
        let meta = write(&local(&dir), 6, "1970-01-01", &recs, layout(100)).unwrap();
        let seg = Segment::open(&local(&dir), meta).unwrap();
        let alpha = [hash_token("alpha")];
        let served = [hash_token("served")];
        let raw = [hash_token("raw"), hash_token("text")];
        let (b0, b1) = (&seg.blocks[0], &seg.blocks[1]);
        // In a field value of block 1 only.
        assert!(b1.may_contain_all(&alpha) && b1.others_may_contain_all(&alpha));
        assert!(!b0.may_contain_all(&alpha) && !b0.others_may_contain_all(&alpha));
        // In messages only.
        assert!(b0.may_contain_all(&served) && !b0.others_may_contain_all(&served));
        // In the raw line of row 7, block 0.
        assert!(b0.others_may_contain_all(&raw) && !b1.others_may_contain_all(&raw));
        // A word of a message and a word of a field value, in one block.
        assert!(b1.may_contain_all(&[hash_token("served"), hash_token("alpha")]));
        // Field values that are numbers, by their text.
        assert!(b0.others_may_contain_all(&[hash_token("204")]));
    }

    #[test]
    fn version_2_indexes_keep_one_filter_for_every_text() {
        let hashes: Vec<u64> = ["alpha", "beta", "gamma"].map(hash_token).to_vec();
        let f = BinaryFuse8::try_from(&hashes).unwrap();
        let mut idx = b"LYIDX\0\0\x02".to_vec();
        idx.extend_from_slice(&1u32.to_le_bytes());
        idx.extend_from_slice(&5i64.to_le_bytes());
        idx.extend_from_slice(&9i64.to_le_bytes());
        idx.extend_from_slice(&3u32.to_le_bytes());
        let d = &f.descriptor;
        idx.extend_from_slice(&d.seed.to_le_bytes());
        idx.extend_from_slice(&d.segment_length.to_le_bytes());
        idx.extend_from_slice(&d.segment_length_mask.to_le_bytes());
        idx.extend_from_slice(&d.segment_count_length.to_le_bytes());
        idx.extend_from_slice(&(f.fingerprints.len() as u32).to_le_bytes());
        idx.extend_from_slice(&f.fingerprints);
        BlockCounts::default().encode(&mut idx);
        let crc = crc32c::crc32c(&idx);
        idx.extend_from_slice(&crc.to_le_bytes());
        let blocks = parse_index(&idx).unwrap();
        let b = &blocks[0];
        assert_eq!((b.min_ts, b.max_ts, b.rows), (5, 9, 3));
        assert_eq!(b.counts, Some(BlockCounts::default()));
        assert!(b.may_contain_all(&hashes));
        assert!(!b.may_contain_all(&[hash_token("delta")]));
        // One filter for every text: what it holds may be in the raw lines or fields too.
        assert!(b.others_may_contain_all(&hashes));
        assert!(!b.others_may_contain_all(&[hash_token("delta")]));
        // A version 3 tag this version does not know is refused.
        let mut v3 = b"LYIDX\0\0\x03".to_vec();
        v3.extend_from_slice(&1u32.to_le_bytes());
        v3.extend_from_slice(&[0u8; 20]);
        v3.push(7);
        v3.extend_from_slice(&[0u8; 40]);
        let crc = crc32c::crc32c(&v3);
        v3.extend_from_slice(&crc.to_le_bytes());
        let err = parse_index(&v3).unwrap_err();
        assert!(err.contains("unknown token filter tag 7"), "{err}");
    }

    #[test]
    fn many_agents_keep_only_level_counts() {
        let recs: Vec<Record> = (0..300)
            .map(|i| {
                let mut r = Record::new(i, "m");
                r.agent = format!("a{i}");
                r
            })
            .collect();
        let c = BlockCounts::of(&recs);
        assert!(c.agents.is_none());
        assert_eq!(c.levels[6], 300);
        let dir = tempfile::tempdir().unwrap();
        let meta = write(&local(&dir), 4, "1970-01-01", &recs, layout(1000)).unwrap();
        let seg = Segment::open(&local(&dir), meta).unwrap();
        assert_eq!(seg.blocks[0].counts, Some(c));
    }

    #[test]
    fn garbage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let meta = write(&local(&dir), 2, "1970-01-01", &records(10), layout(100)).unwrap();
        let path = local(&dir).local_path(&meta.data_key()).unwrap();
        let mut data = std::fs::read(&path).unwrap();
        let mid = data.len() / 2;
        data[mid..mid + 8].copy_from_slice(b"garbage!");
        std::fs::write(&path, data).unwrap();
        // Either the footer is unreadable at open, or the checksum fails at the first read.
        let result =
            Segment::open(&local(&dir), meta).and_then(|seg| seg.read_block(0, Columns::ALL));
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    }
}
