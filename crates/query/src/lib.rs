//! Searches over the store: the query language, the executor, and summary statistics.
//!
//! A query is a filter, then pipes: `level:ERROR | stats count() by (agent)`.
//! [`parse_query`] reads one into a [`Query`] (its `Display` prints the canonical text back)
//! and [`run`] executes it over a [`Snapshot`], answering records or a [`Table`] with its
//! [`Cost`], cut short (and saying why) when it passes a budget of [`Settings`].
//!
//! ```no_run
//! use logyard_query::{parse_query, run, Answer, Settings};
//! # let store = logyard_store::Store::open(logyard_store::StoreConfig::new("d")).unwrap();
//! let settings = Settings::default();
//! let q = parse_query("level:ERROR | top 5 agent", logyard_model::now_ns(), &settings).unwrap();
//! let out = run(&store.snapshot(), &q, &settings, 100).unwrap();
//! if let Answer::Table(t) = out.answer {
//!     println!("{:?} {:?}", t.columns, t.rows);
//! }
//! ```
//!
//! A [`Filter`] alone (built by the API from parameters, or parsed by [`parse_filter`]) is
//! run by [`search`] over a [`Snapshot`] of the store. The executor skips blocks by
//! time range and token filter, reads only the columns the filter needs, evaluates it on whole
//! columns, and materialises only the records of the page asked for. Every answer carries its
//! [`Cost`].
//!
//! ```no_run
//! use logyard_query::{parse_filter, search, Page};
//! # let store = logyard_store::Store::open(logyard_store::StoreConfig::new("d")).unwrap();
//! let filter = parse_filter("level:>=ERROR agent:billing", logyard_model::now_ns()).unwrap();
//! let result = search(&store.snapshot(), &filter, Page { offset: 0, limit: 100 }).unwrap();
//! println!("{} matches", result.total);
//! ```

mod block;
pub use block::segment_unreachable;
mod cell;
mod counts;
mod errors;
mod exec;
pub mod export;
mod filter;
mod keys;
mod parallel;
mod parse;
pub mod pipes;
mod query;
mod select;
mod stats;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Instant;

use logyard_model::Record;
use logyard_store::schema::col;
use logyard_store::{BlockRef, Columns, Snapshot, StoreError};

use crate::keys::FieldKeys;

pub use cell::{Cell, FieldKind, FieldRef};
pub use errors::{error_summary, AgentErrors, ErrorSummary};
pub use exec::{
    check_buckets, for_each_match, histogram, nice_step, run, run_counting, Answer, QueryOutput,
};
pub use filter::{Filter, LabelColumn, LevelOp};
pub use parse::parse_filter;
pub use pipes::{template, Pipe, Table};
pub use query::{parse_query, pipe_names, Query, Settings};
pub use stats::{agents, summary, AgentSummary, Summary};

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text is not valid; `position` is a byte offset into it.
    #[error("{message}")]
    Syntax {
        /// What was expected.
        message: String,
        /// Byte offset of the problem.
        position: usize,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a query cost, as `API.md` reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cost {
    /// Rows whose columns were evaluated.
    pub rows_scanned: u64,
    /// Bytes of column data read.
    pub bytes_scanned: u64,
    /// Blocks skipped because their time range is outside the query's.
    pub blocks_skipped_by_time: u64,
    /// Blocks skipped because their token filter rules the query's words out.
    pub blocks_skipped_by_filter: u64,
    /// Blocks that could not be read (a damaged segment) and are missing from the answer.
    pub blocks_unreadable: u64,
    /// Rows of segments in quarantine over the query's time range, missing from the answer.
    pub rows_quarantined: u64,
    /// Parts of the data that could not be read now, missing from the answer, each once:
    /// segments (the bucket out of reach, a read of the disk that failed) by their files
    /// (`<day>/seg-<id>.parquet`), and followed nodes out of reach ([`Snapshot::gaps`]).
    pub segments_unreachable: Vec<String>,
    /// The first such read's error.
    pub unreachable_error: Option<String>,
    /// Wall time.
    pub elapsed_ms: f64,
}

impl Cost {
    /// Notes a segment block left out because its segment could not be read now
    /// ([`segment_unreachable`]: not damage, it is read again by the next query).
    pub fn unreachable(&mut self, block: &BlockRef, error: &StoreError) {
        if let Some(meta) = block.segment() {
            let name = meta.data_key().to_string();
            if !self.segments_unreachable.contains(&name) {
                self.segments_unreachable.push(name);
            }
        }
        self.unreachable_error
            .get_or_insert_with(|| error.to_string());
    }

    /// Notes the parts of the data a snapshot could not hold ([`Snapshot::gaps`]: a node out
    /// of reach), named beside the unreachable segments.
    pub fn note_gaps(&mut self, gaps: &[logyard_store::Gap]) {
        for gap in gaps {
            if !self.segments_unreachable.contains(&gap.name) {
                self.segments_unreachable.push(gap.name.clone());
            }
            self.unreachable_error
                .get_or_insert_with(|| gap.reason.clone());
        }
    }

    /// Adds what reading some more blocks cost: rows and bytes read, blocks unreadable and
    /// segments unreachable.
    pub fn add_reads(&mut self, more: &Cost) {
        self.rows_scanned += more.rows_scanned;
        self.bytes_scanned += more.bytes_scanned;
        self.blocks_unreadable += more.blocks_unreadable;
        for name in &more.segments_unreachable {
            if !self.segments_unreachable.contains(name) {
                self.segments_unreachable.push(name.clone());
            }
        }
        if self.unreachable_error.is_none() {
            self.unreachable_error.clone_from(&more.unreachable_error);
        }
    }

    /// Returns why an answer misses rows, when blocks could not be read.
    pub fn unreadable_reason(&self) -> Option<String> {
        if !self.segments_unreachable.is_empty() {
            return Some(format!(
                "{} part(s) of the data could not be read now and are left out ({}); the answer \
                 is whole again once they can be read: `cost.segments_unreachable` names them",
                self.segments_unreachable.len(),
                self.unreachable_error
                    .as_deref()
                    .unwrap_or("no error given"),
            ));
        }
        if self.blocks_unreadable > 0 {
            return Some(format!(
                "{} block(s) of damaged segments could not be read and are left out; \
                 the segments are checked and moved to quarantine/ when their bytes are damaged",
                self.blocks_unreadable
            ));
        }
        (self.rows_quarantined > 0).then(|| {
            format!(
                "{} row(s) of damaged segments moved to quarantine/ fall in this time range and \
                 are left out; restore them from a backup, or remove their files from \
                 quarantine/ to stop this notice",
                self.rows_quarantined
            )
        })
    }
}

/// The order of records without a sort: by time and arrival (`(timestamp, seq)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// The newest first (the default); the paging cursor is [`Filter::Before`].
    #[default]
    NewestFirst,
    /// The oldest first; the paging cursor is [`Filter::After`].
    OldestFirst,
}

impl Order {
    /// A rank of a record's `(timestamp, seq)`: the higher, the sooner it comes in this order.
    fn rank(self, ts: i64, seq: u64) -> u128 {
        let key = (u128::from((ts as u64) ^ (1 << 63)) << 64) | u128::from(seq);
        match self {
            Order::NewestFirst => key,
            Order::OldestFirst => !key,
        }
    }

    /// The highest rank a record of a block can have.
    fn best_rank(self, block: &BlockRef) -> u128 {
        match self {
            Order::NewestFirst => self.rank(block.max_ts, u64::MAX),
            Order::OldestFirst => self.rank(block.min_ts, 0),
        }
    }

    /// The filter of the records that come after `id` in this order: the paging cursor.
    pub fn after(self, id: logyard_model::RecordId) -> Filter {
        match self {
            Order::NewestFirst => Filter::Before(id),
            Order::OldestFirst => Filter::After(id),
        }
    }
}

/// Which slice of the matches, newest first, to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Matches to skip.
    pub offset: usize,
    /// Matches to return.
    pub limit: usize,
}

/// The answer of [`search`].
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The page of records, newest first, ties by id (descending).
    pub records: Vec<Record>,
    /// Every match, not only the page; a lower bound when `total_exact` is false.
    pub total: u64,
    /// False when counting stopped at blocks older than the page that only a read could
    /// count (see [`search_counting`]).
    pub total_exact: bool,
    /// What it cost.
    pub cost: Cost,
}

/// Returns the blocks of a snapshot that may hold matches, counting the skipped ones.
pub(crate) fn candidate_blocks<'s>(
    snapshot: &'s Snapshot,
    filter: &Filter,
    cost: &mut Cost,
) -> Vec<&'s BlockRef> {
    candidate_indices(snapshot, filter, cost)
        .into_iter()
        .map(|i| &snapshot.blocks[i])
        .collect()
}

/// Returns the indices of the blocks of a snapshot that may hold matches of a filter: those
/// whose time range meets the filter's and whose token filter may hold every word the filter
/// requires. The skipped blocks are counted in `cost`.
pub fn candidate_indices(snapshot: &Snapshot, filter: &Filter, cost: &mut Cost) -> Vec<usize> {
    let (start, end) = filter.time_bounds();
    cost.rows_quarantined = cost
        .rows_quarantined
        .max(snapshot.quarantined_rows(start, end));
    cost.note_gaps(snapshot.gaps());
    let tokens = filter.required_tokens();
    snapshot
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            if start.is_some_and(|s| b.max_ts < s) || end.is_some_and(|e| b.min_ts >= e) {
                cost.blocks_skipped_by_time += 1;
                return false;
            }
            if !tokens.is_empty() && !b.may_contain_all(&tokens) {
                cost.blocks_skipped_by_filter += 1;
                return false;
            }
            true
        })
        .map(|(i, _)| i)
        .collect()
}

/// Reads from a block the columns `extra` and those the filter needs there, and evaluates
/// it. The block's token filters may spare columns: a word or phrase they prove absent from
/// the raw lines and field values is searched in the messages alone, without reading `raw`
/// and `fields`. A damaged segment is reported to the store (which quarantines it) and
/// skipped.
pub(crate) fn eval_block(
    snapshot: &Snapshot,
    block: &BlockRef,
    filter: &Filter,
    extra: logyard_store::Columns,
    cost: &mut Cost,
) -> Result<Option<(arrow_array::RecordBatch, Vec<bool>)>, QueryError> {
    eval_block_keys(snapshot, block, filter, extra, &FieldKeys::none(), cost)
}

/// [`eval_block`], also reading the field columns of `extra_keys` (those the pipes after
/// the filter look at).
pub(crate) fn eval_block_keys(
    snapshot: &Snapshot,
    block: &BlockRef,
    filter: &Filter,
    extra: logyard_store::Columns,
    extra_keys: &FieldKeys,
    cost: &mut Cost,
) -> Result<Option<(arrow_array::RecordBatch, Vec<bool>)>, QueryError> {
    let texts = filter.block_texts(block);
    let mut columns = filter.columns_in(&texts).with(extra);
    let keys = filter.field_keys_in(&texts).union(extra_keys);
    if !(0..col::NAMES.len()).any(|c| columns.has(c)) {
        // A batch has rows only with a column: the smallest one gives the count.
        columns = columns.with(Columns::of(&[col::SEQ]));
    }
    let Some(batch) = block::read_block(snapshot, block, columns, &keys, cost)? else {
        return Ok(None);
    };
    let mask = filter.eval_in(&batch, &texts);
    Ok(Some((batch, mask)))
}

/// Returns the records of a memtable batch (as the store's `subscribe()` hands them out)
/// that match a filter, in arrival order: the live tail and the alert rules.
///
/// The cheap conditions of a conjunction (levels, labels, time) are evaluated on the
/// batch's dictionary columns, shared by every caller; the others only on the records that
/// pass them, one by one, so a rule such as `level:>=ERROR ~"timeout"` never builds the
/// message column of a batch. A filter without a cheap condition is evaluated on columns.
pub fn matching_records<'b>(
    filter: &Filter,
    batch: &'b logyard_store::MemBatch,
) -> Vec<&'b Record> {
    let parts: &[Filter] = match filter {
        Filter::And(parts) => parts,
        one => std::slice::from_ref(one),
    };
    let (cheap, rest): (Vec<&Filter>, Vec<&Filter>) = parts.iter().partition(|f| f.is_cheap());
    if cheap.is_empty() {
        let mask = filter.eval(&batch.columns(filter.columns()));
        return batch
            .records()
            .iter()
            .zip(mask)
            .filter(|(_, m)| *m)
            .map(|(r, _)| r)
            .collect();
    }
    let cheap = Filter::And(cheap.into_iter().cloned().collect());
    let mask = cheap.eval(&batch.columns(cheap.columns()));
    batch
        .records()
        .iter()
        .zip(mask)
        .filter(|(r, m)| *m && rest.iter().all(|f| f.matches_record(r)))
        .map(|(r, _)| r)
        .collect()
}

/// Finds the records matching a filter: the total count and one page, newest first.
pub fn search(
    snapshot: &Snapshot,
    filter: &Filter,
    page: Page,
) -> Result<SearchResult, QueryError> {
    search_counting(snapshot, filter, page, Order::NewestFirst, true)
}

/// [`search`] in either order, the blocks that come first in it read first. Once the page is
/// full, the blocks after it cannot add to it: their matches are counted from block
/// metadata where it can tell (`*`, levels, an agent), else read and counted when
/// `exact_total`, else left uncounted (`total` is then a lower bound and `total_exact`
/// false), which answers a broad search in the time of its page.
pub fn search_counting(
    snapshot: &Snapshot,
    filter: &Filter,
    page: Page,
    order: Order,
    exact_total: bool,
) -> Result<SearchResult, QueryError> {
    let started = Instant::now();
    let mut cost = Cost::default();
    let want = page.offset.saturating_add(page.limit);
    let columns = Columns::of(&[col::TIMESTAMP, col::SEQ]);
    let mut blocks = candidate_blocks(snapshot, filter, &mut cost);
    blocks.sort_by_key(|b| Reverse(order.best_rank(b)));
    // The `want` first matches in the order: a min-heap on their rank, of bounded size.
    let mut best: BinaryHeap<Reverse<(u128, usize, usize)>> = BinaryHeap::new();
    let mut total = 0u64;
    let mut total_exact = true;
    for (bi, block) in blocks.iter().enumerate() {
        let full = best.len() >= want;
        let after = full
            && best
                .peek()
                .is_none_or(|Reverse(min)| order.best_rank(block) < min.0);
        if after {
            if let Some(m) = counts::metadata_matches(filter, block) {
                total += m.total;
                continue;
            }
            if !exact_total {
                total_exact = false;
                continue;
            }
        }
        let Some((batch, mask)) = eval_block(snapshot, block, filter, columns, &mut cost)? else {
            continue;
        };
        let ts = logyard_store::schema::timestamps(&batch);
        let seq = logyard_store::schema::seqs(&batch);
        for (row, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
            total += 1;
            if want == 0 {
                continue;
            }
            let key = (order.rank(ts[row], seq[row]), bi, row);
            if best.len() < want {
                best.push(Reverse(key));
            } else if best.peek().is_some_and(|Reverse(min)| key.0 > min.0) {
                best.pop();
                best.push(Reverse(key));
            }
        }
    }
    let mut winners: Vec<(u128, usize, usize)> = best.into_iter().map(|Reverse(k)| k).collect();
    winners.sort_unstable_by_key(|k| Reverse(k.0));
    let page_keys: Vec<_> = winners
        .into_iter()
        .skip(page.offset)
        .take(page.limit)
        .collect();
    let mut by_block: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for k in &page_keys {
        by_block.entry(k.1).or_default().push(k.2);
    }
    let mut records = Vec::with_capacity(page_keys.len());
    for (bi, rows) in by_block {
        records.extend(block::read_records(blocks[bi], &rows, &mut cost)?.unwrap_or_default());
    }
    records.sort_unstable_by_key(|r| Reverse(order.rank(r.timestamp, r.seq)));
    cost.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(SearchResult {
        records,
        total,
        total_exact,
        cost,
    })
}

#[cfg(test)]
mod tests;
