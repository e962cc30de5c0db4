//! The executor of whole queries: the filter over the snapshot's blocks, then the pipes.
//!
//! Aggregating pipes (`stats`, `top`, `histogram`, `patterns`) stream: each block is read
//! (only the columns the filter and the pipe need), filtered, folded into the groups, and
//! dropped. Only the groups stay in memory, within [`Settings::max_groups`] and
//! [`Settings::max_state_bytes`]; past either, or past [`Settings::timeout`], the scan stops
//! and the answer says it is partial and why. `stats count()` grouped by nothing, by level
//! or by agent is answered from the blocks' metadata (row counts, counts by level and
//! agent) for blocks the filter keeps whole; grouped by other dictionary-encoded columns
//! (host, source, or several), it reads only those columns.

use std::time::Instant;

use logyard_model::Record;
use logyard_store::schema::{col, seqs, timestamps};
use logyard_store::{BlockRef, Columns, Snapshot};

use crate::cell::{columns_of, keys_of, BlockFields, Cell, FieldKind, FieldRef};
use crate::counts::{count_by_dictionary, metadata_matches};
use crate::pipes::{Aggregator, Budget, Histogram, HistogramCounts, HistogramState, Pipe, Table};
use crate::select::{select, sort_records};
use crate::{
    candidate_blocks, eval_block, eval_block_keys, Cost, Filter, Query, QueryError, Settings,
};

/// What a query answers: records, or a table.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Matching records in the query's order (newest first unless sorted).
    Records {
        /// The records.
        records: Vec<Record>,
        /// Every match (up to a `limit` pipe), not only those returned; a lower bound when
        /// `total_exact` is false.
        total: u64,
        /// False when `total` stopped counting (see [`run_counting`]).
        total_exact: bool,
    },
    /// A table made by a table pipe.
    Table(Table),
}

/// The answer of [`run`], its cost, and whether it was cut short.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Records or a table.
    pub answer: Answer,
    /// What it cost.
    pub cost: Cost,
    /// Why the answer is partial (a budget or the deadline), when it is.
    pub partial: Option<String>,
}

/// Runs a query over a snapshot. A records answer holds at most `limit` records (and at
/// most the query's own `limit`).
pub fn run(
    snapshot: &Snapshot,
    query: &Query,
    settings: &Settings,
    limit: usize,
) -> Result<QueryOutput, QueryError> {
    run_counting(snapshot, query, settings, limit, true)
}

/// [`run`]; without `exact_total`, a records answer without a sort stops counting matches
/// at the blocks older than its records that block metadata cannot count (see
/// [`crate::search_counting`]): the first page of a broad search over any volume costs
/// about the blocks it shows.
pub fn run_counting(
    snapshot: &Snapshot,
    query: &Query,
    settings: &Settings,
    limit: usize,
    exact_total: bool,
) -> Result<QueryOutput, QueryError> {
    let started = Instant::now();
    let mut budget = Budget::new(settings, started);
    let mut cost = Cost::default();
    let mut partial = None;
    let pipes = &query.pipes;
    let first_table = pipes
        .iter()
        .position(|p| p.output_columns().is_some())
        .unwrap_or(pipes.len());
    let record_ops = &pipes[..first_table];
    let first_limit = record_ops.iter().position(|p| matches!(p, Pipe::Limit(_)));
    let next = pipes.get(first_table);

    let mut table = match next {
        Some(pipe) if pipe.aggregates() && first_limit.is_none() => {
            check_histogram(query, first_table, settings)?;
            Some(aggregate(
                snapshot,
                &query.filter,
                pipe,
                settings,
                &mut budget,
                &mut cost,
                &mut partial,
            )?)
        }
        _ => {
            let select_sort = record_ops[..first_limit.unwrap_or(record_ops.len())]
                .iter()
                .rev()
                .find_map(|p| match p {
                    Pipe::Sort(s) => Some(s),
                    _ => None,
                });
            let k = match first_limit.map(|i| &record_ops[i]) {
                Some(Pipe::Limit(l)) if next.is_some() => l.n,
                Some(Pipe::Limit(l)) => l.n.min(limit),
                _ => limit,
            };
            let (mut records, mut total, total_exact) = select(
                snapshot,
                &query.filter,
                select_sort,
                query.order,
                k,
                exact_total,
                &mut budget,
                &mut cost,
                &mut partial,
            )?;
            if let Some(i) = first_limit {
                if let Pipe::Limit(l) = &record_ops[i] {
                    total = total.min(l.n as u64);
                }
                for op in &record_ops[i + 1..] {
                    match op {
                        Pipe::Sort(s) => sort_records(&mut records, s),
                        Pipe::Limit(l) => {
                            records.truncate(l.n);
                            total = total.min(l.n as u64);
                        }
                        // Record pipes only come before the first table pipe.
                        Pipe::Stats(_)
                        | Pipe::Top(_)
                        | Pipe::Histogram(_)
                        | Pipe::Patterns(_)
                        | Pipe::Fields(_) => {}
                    }
                }
            }
            match next {
                None => {
                    cost.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
                    let partial = partial.or_else(|| cost.unreadable_reason());
                    return Ok(QueryOutput {
                        answer: Answer::Records {
                            records,
                            total,
                            total_exact,
                        },
                        cost,
                        partial,
                    });
                }
                Some(Pipe::Fields(f)) => Some(Table {
                    columns: f.fields.iter().map(|f| f.name.clone()).collect(),
                    rows: records
                        .iter()
                        .map(|r| f.fields.iter().map(|f| f.of_record(r)).collect())
                        .collect(),
                }),
                Some(pipe) => {
                    let mut agg = aggregator(pipe, query.filter.time_bounds(), settings);
                    let fields = agg.fields();
                    for r in &records {
                        let cells: Vec<Cell> = fields.iter().map(|f| f.of_record(r)).collect();
                        if let Err(reason) = agg.push(&cells, r.timestamp, r.seq, &mut budget) {
                            partial = Some(reason);
                            break;
                        }
                    }
                    Some(agg.finish())
                }
            }
        }
    };
    for pipe in pipes.iter().skip(first_table + 1) {
        let t = table.take().unwrap_or_default();
        table = Some(match pipe {
            Pipe::Sort(s) => s.apply(t),
            Pipe::Limit(l) => {
                let mut t = t;
                t.rows.truncate(l.n);
                t
            }
            Pipe::Fields(f) => f.apply(t),
            // The parser refuses an aggregating pipe after a table pipe.
            Pipe::Stats(_) | Pipe::Top(_) | Pipe::Histogram(_) | Pipe::Patterns(_) => t,
        });
    }
    cost.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let partial = partial.or_else(|| cost.unreadable_reason());
    Ok(QueryOutput {
        answer: Answer::Table(table.unwrap_or_default()),
        cost,
        partial,
    })
}

/// Refuses a histogram whose time range (from the filter) makes too many buckets.
fn check_histogram(query: &Query, index: usize, settings: &Settings) -> Result<(), QueryError> {
    if let Some(Pipe::Histogram(h)) = query.pipes.get(index) {
        if let (Some(start), Some(end)) = query.filter.time_bounds() {
            check_buckets(h.step, start, end, settings.max_buckets).map_err(|message| {
                QueryError::Syntax {
                    message,
                    position: query.positions.get(index).copied().unwrap_or(0),
                }
            })?;
        }
    }
    Ok(())
}

/// Returns how many buckets of `step` cover `[start, end)`, or why that is too many.
pub fn check_buckets(step: i64, start: i64, end: i64, max: usize) -> Result<usize, String> {
    let first = start.div_euclid(step) * step;
    let n = (i128::from(end) - i128::from(first) + i128::from(step) - 1) / i128::from(step);
    let n = n.max(0);
    if n > max as i128 {
        let min_step = (i128::from(end) - i128::from(first)) / max as i128 + 1;
        return Err(format!(
            "a step of {} makes {n} buckets over the range, more than {max} (setting query.max_buckets): use a step of at least {}",
            crate::pipes::format_duration(step),
            crate::pipes::format_duration(nice_step(min_step as i64)),
        ));
    }
    Ok(n as usize)
}

/// Returns the smallest step of 1, 2 or 5 times a time unit that is at least `ns`.
pub fn nice_step(ns: i64) -> i64 {
    const STEPS: [i64; 16] = [
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
        5_000_000_000,
        10_000_000_000,
        30_000_000_000,
        60_000_000_000,
        300_000_000_000,
        600_000_000_000,
        1_800_000_000_000,
        3_600_000_000_000,
        6 * 3_600_000_000_000,
        12 * 3_600_000_000_000,
        86_400_000_000_000,
        7 * 86_400_000_000_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|&s| s >= ns)
        .unwrap_or_else(|| (ns / 86_400_000_000_000 + 1).saturating_mul(86_400_000_000_000))
}

fn aggregator(
    pipe: &Pipe,
    bounds: (Option<i64>, Option<i64>),
    settings: &Settings,
) -> Box<dyn Aggregator> {
    match pipe {
        Pipe::Stats(s) => Box::new(s.state()),
        Pipe::Top(t) => t.aggregator(),
        Pipe::Histogram(h) => {
            let range = match bounds {
                (Some(s), Some(e)) => Some((s, e)),
                _ => None,
            };
            Box::new(h.state(range, settings.max_buckets))
        }
        Pipe::Patterns(p) => p.aggregator(),
        Pipe::Sort(_) | Pipe::Limit(_) | Pipe::Fields(_) => {
            unreachable!("only aggregating pipes have an aggregator")
        }
    }
}

fn aggregate(
    snapshot: &Snapshot,
    filter: &Filter,
    pipe: &Pipe,
    settings: &Settings,
    budget: &mut Budget,
    cost: &mut Cost,
    partial: &mut Option<String>,
) -> Result<Table, QueryError> {
    if let Pipe::Stats(s) = pipe {
        if s.counts_only() && s.by.iter().all(|f| is_dict(f.kind())) {
            return count_by_dictionary(snapshot, filter, s, budget, cost, partial);
        }
    }
    if let Pipe::Histogram(h) = pipe {
        let range = match filter.time_bounds() {
            (Some(s), Some(e)) => Some((s, e)),
            _ => None,
        };
        let mut state = h.state(range, settings.max_buckets);
        scan_histogram(snapshot, filter, &mut state, budget, cost, partial)?;
        return Ok(Box::new(state).finish());
    }
    let mut agg = aggregator(pipe, filter.time_bounds(), settings);
    scan(snapshot, filter, agg.as_mut(), budget, cost, partial)?;
    Ok(agg.finish())
}

fn is_dict(kind: FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Level | FieldKind::Agent | FieldKind::Host | FieldKind::Source
    )
}

/// Feeds every matching row of the snapshot to an aggregator, block by block.
fn scan<A: Aggregator + ?Sized>(
    snapshot: &Snapshot,
    filter: &Filter,
    agg: &mut A,
    budget: &mut Budget,
    cost: &mut Cost,
    partial: &mut Option<String>,
) -> Result<(), QueryError> {
    scan_with(
        snapshot,
        filter,
        agg,
        budget,
        cost,
        partial,
        |_| None,
        |_, _, _, _, _| Ok(()),
    )
}

/// What the scan made of one block.
enum BlockRows {
    /// Counted from the block's metadata: `(value of the grouping field, count)` pairs, all
    /// at the block's first timestamp.
    Counted(Vec<(Cell, u64)>),
    /// The matching rows: their cells (one per field, row after row), times and seqs.
    Rows {
        cells: Vec<Cell>,
        ts: Vec<i64>,
        seq: Vec<u64>,
    },
}

/// [`scan`], offering each block first to `from_metadata`, which answers `Some` with counts
/// when it can count the block's matches without reading it; `add_counted` adds those counts
/// to the aggregator. Blocks are read and filtered on several threads
/// ([`crate::parallel::scan_blocks`]) and their rows fed to the aggregator in block order,
/// so the answer is the serial one.
#[allow(clippy::too_many_arguments)]
fn scan_with<A: Aggregator + ?Sized>(
    snapshot: &Snapshot,
    filter: &Filter,
    agg: &mut A,
    budget: &mut Budget,
    cost: &mut Cost,
    partial: &mut Option<String>,
    from_metadata: impl Fn(&BlockRef) -> Option<Vec<(Cell, u64)>> + Sync,
    mut add_counted: impl FnMut(&mut A, i64, Cell, u64, &mut Budget) -> Result<(), String>,
) -> Result<(), QueryError> {
    let fields = agg.fields();
    let columns = columns_of(&fields).with(Columns::of(&[col::TIMESTAMP, col::SEQ]));
    let keys = keys_of(&fields);
    let blocks = candidate_blocks(snapshot, filter, cost);
    let width = fields.len();
    let work = |block: &BlockRef, cost: &mut Cost| -> Result<Option<BlockRows>, QueryError> {
        if let Some(counts) = from_metadata(block) {
            return Ok(Some(BlockRows::Counted(counts)));
        }
        let Some((batch, mask)) = eval_block_keys(snapshot, block, filter, columns, &keys, cost)?
        else {
            return Ok(None);
        };
        let all_ts = timestamps(&batch);
        let all_seq = seqs(&batch);
        let reader = BlockFields::new(&batch, &fields);
        let matches = mask.iter().filter(|&&m| m).count();
        let mut cells = Vec::with_capacity(matches * width);
        let (mut ts, mut seq) = (Vec::with_capacity(matches), Vec::with_capacity(matches));
        let mut row_cells = Vec::with_capacity(width);
        for row in (0..batch.num_rows()).filter(|&r| mask[r]) {
            reader.row(row, &mut row_cells);
            cells.append(&mut row_cells);
            ts.push(all_ts[row]);
            seq.push(all_seq[row]);
        }
        Ok(Some(BlockRows::Rows { cells, ts, seq }))
    };
    let deadline = budget.deadline();
    let cut =
        crate::parallel::scan_blocks(&blocks, deadline, cost, work, |block, rows| match rows {
            None => Ok(()),
            Some(BlockRows::Counted(counts)) => {
                for (cell, n) in counts {
                    add_counted(agg, block.min_ts, cell, n, budget)?;
                }
                Ok(())
            }
            Some(BlockRows::Rows { cells, ts, seq }) => {
                for (i, (&t, &s)) in ts.iter().zip(&seq).enumerate() {
                    let row = cells.get(i * width..(i + 1) * width).unwrap_or(&[]);
                    agg.push(row, t, s, budget)?;
                }
                Ok(())
            }
        })?;
    if cut.is_some() {
        *partial = cut;
    }
    Ok(())
}

/// Feeds a histogram, counting from block metadata each block whose time range falls in one
/// bucket when the metadata can count its matches (by level too, for `by level`).
fn scan_histogram(
    snapshot: &Snapshot,
    filter: &Filter,
    state: &mut HistogramState,
    budget: &mut Budget,
    cost: &mut Cost,
    partial: &mut Option<String>,
) -> Result<(), QueryError> {
    let by_level = match state.histogram().by.as_ref().map(FieldRef::kind) {
        None => false,
        Some(FieldKind::Level) => true,
        Some(_) => return scan(snapshot, filter, state, budget, cost, partial),
    };
    let h = state.histogram().clone();
    scan_with(
        snapshot,
        filter,
        state,
        budget,
        cost,
        partial,
        |block| {
            if h.bucket(block.min_ts) != h.bucket(block.max_ts) {
                return None;
            }
            let m = metadata_matches(filter, block)?;
            if !by_level {
                return Some(vec![(Cell::Null, m.total)]);
            }
            let levels = m.by_level?;
            Some(
                levels
                    .iter()
                    .enumerate()
                    .map(|(rank, n)| {
                        let cell = logyard_model::Level::from_rank(rank as u8)
                            .map_or(Cell::Null, |l| Cell::Str(l.as_str().to_string()));
                        (cell, *n)
                    })
                    .collect(),
            )
        },
        |state, ts, cell, n, budget| state.add(ts, cell, n, budget),
    )
}

/// Counts matching records per `step` bucket (and per value of `by`), for
/// `GET /api/histogram`; refuses a range that makes more than `max_buckets` buckets.
pub fn histogram(
    snapshot: &Snapshot,
    filter: &Filter,
    step: i64,
    by: Option<FieldRef>,
    settings: &Settings,
) -> Result<(HistogramCounts, Cost, Option<String>), QueryError> {
    let started = Instant::now();
    let mut budget = Budget::new(settings, started);
    let mut cost = Cost::default();
    let mut partial = None;
    let h = Histogram { step, by };
    let mut state = h.state(None, settings.max_buckets);
    scan_histogram(
        snapshot,
        filter,
        &mut state,
        &mut budget,
        &mut cost,
        &mut partial,
    )?;
    cost.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok((state.counts(), cost, partial))
}

/// Calls `f` with every matching record, oldest block first and each block's matches in time
/// order, holding one block at a time; stops early when `f` returns false.
pub fn for_each_match(
    snapshot: &Snapshot,
    filter: &Filter,
    mut f: impl FnMut(Record) -> bool,
) -> Result<Cost, QueryError> {
    let started = Instant::now();
    let mut cost = Cost::default();
    let mut blocks = candidate_blocks(snapshot, filter, &mut cost);
    blocks.sort_by_key(|b| (b.min_ts, b.max_ts));
    for block in blocks {
        let Some((_, mask)) = eval_block(snapshot, block, filter, Columns(0), &mut cost)? else {
            continue;
        };
        let rows: Vec<usize> = (0..mask.len()).filter(|&r| mask[r]).collect();
        if rows.is_empty() {
            continue;
        }
        let Some(mut records) = crate::block::read_records(block, &rows, &mut cost)? else {
            continue;
        };
        records.sort_unstable_by_key(|r| (r.timestamp, r.seq));
        for r in records {
            if !f(r) {
                cost.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
                return Ok(cost);
            }
        }
    }
    cost.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(cost)
}
