//! `stats count()` grouped by nothing or by dictionary-encoded columns, answered from block
//! metadata where it can be and from the dictionary keys otherwise.

use std::collections::{BTreeMap, HashMap};

use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray};
use logyard_store::schema::col;
use logyard_store::{BlockRef, BlockSource, Columns, Snapshot};

use crate::block::{keeps_whole, read_block};
use crate::cell::{Cell, FieldKind, FieldRef};
use crate::keys::FieldKeys;
use crate::parallel::workers_for;
use crate::pipes::{Aggregator, Budget, Stats, Table};
use crate::{candidate_blocks, eval_block, Cost, Filter, QueryError};

/// `stats count() [by (dictionary columns)]`: blocks the filter keeps whole are counted
/// from their metadata when it has the counts; others read only the grouping columns (and
/// the filter's), counting per dictionary key. Blocks are counted on up to
/// [`crate::parallel::MAX_WORKERS`] threads, then folded into the groups.
pub(crate) fn count_by_dictionary(
    snapshot: &Snapshot,
    filter: &Filter,
    stats: &Stats,
    budget: &mut Budget,
    cost: &mut Cost,
    partial: &mut Option<String>,
) -> Result<Table, QueryError> {
    let mut state = stats.state();
    let by_columns: Vec<usize> = stats.by.iter().map(FieldRef::column).collect();
    let mut blocks = candidate_blocks(snapshot, filter, cost);
    if let [kind @ (FieldKind::Agent | FieldKind::Level)] =
        stats.by.iter().map(FieldRef::kind).collect::<Vec<_>>()[..]
    {
        if let Err(reason) = add_metadata_counts(filter, kind, &mut blocks, &mut state, budget) {
            *partial = Some(reason);
            return Ok(Box::new(state).finish());
        }
    }
    let workers = workers_for(blocks.len());
    let shared: &Budget = budget;
    let count_some = |w: usize| -> Result<Counted, QueryError> {
        let mut local = Cost::default();
        let mut out = Vec::new();
        for block in blocks.iter().skip(w).step_by(workers) {
            if let Err(reason) = shared.check_time() {
                return Ok((out, local, Some(reason)));
            }
            out.push(block_groups(
                snapshot,
                filter,
                block,
                stats,
                &by_columns,
                &mut local,
            )?);
        }
        Ok((out, local, None))
    };
    let results = if workers == 1 {
        vec![count_some(0)]
    } else {
        std::thread::scope(|scope| {
            let count_some = &count_some;
            let handles: Vec<_> = (0..workers)
                .map(|w| scope.spawn(move || count_some(w)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Vec<_>>()
        })
    };
    for result in results {
        let (groups, local, cut) = result?;
        cost.add_reads(&local);
        if cut.is_some() {
            *partial = cut;
        }
        for (key, n) in groups.into_iter().flatten() {
            if let Err(reason) = state.add_count(&key, n, budget) {
                *partial = Some(reason);
                return Ok(Box::new(state).finish());
            }
        }
    }
    Ok(Box::new(state).finish())
}

/// Counts by level or by agent (`kind`) the blocks kept whole whose metadata has those
/// counts, and leaves only the other blocks in `blocks`: a segment all of whose blocks are
/// kept whole adds its totals ([`logyard_store::Segment::counts`]), other blocks their own
/// counts, summed under names borrowed from the metadata, so that `* | stats count() by
/// (agent)` reads no row and makes one group per agent, not one per agent and block.
fn add_metadata_counts(
    filter: &Filter,
    kind: FieldKind,
    blocks: &mut Vec<&BlockRef>,
    state: &mut crate::pipes::StatsState,
    budget: &mut Budget,
) -> Result<(), String> {
    let mut whole_blocks: HashMap<(u32, u64), usize> = HashMap::new();
    for block in blocks.iter() {
        if let BlockSource::Segment(seg, _) = &block.source {
            if keeps_whole(filter, block) {
                *whole_blocks.entry(seg.uid()).or_default() += 1;
            }
        }
    }
    let mut levels = [0u64; 7];
    let mut agents: HashMap<&str, u64> = HashMap::new();
    blocks.retain(|&block| {
        if !keeps_whole(filter, block) {
            return true;
        }
        if let BlockSource::Segment(seg, i) = &block.source {
            // Totals are summed only for a segment the filter keeps whole.
            let totals = (whole_blocks.get(&seg.uid()) == Some(&seg.blocks.len()))
                .then(|| seg.counts())
                .flatten()
                .filter(|t| kind == FieldKind::Level || t.agents.is_some());
            if let Some(totals) = totals {
                // Added once, at the segment's first block; its other blocks are dropped.
                if *i == 0 {
                    for (sum, n) in levels.iter_mut().zip(totals.levels) {
                        *sum += n;
                    }
                    for (agent, n) in totals.agents.iter().flatten() {
                        *agents.entry(agent.as_str()).or_default() += n;
                    }
                }
                return false;
            }
        }
        let Some(counts) = block.counts() else {
            return true;
        };
        match (kind, &counts.agents) {
            (FieldKind::Level, _) => {
                for (sum, &n) in levels.iter_mut().zip(&counts.levels) {
                    *sum += u64::from(n);
                }
            }
            (_, Some(of_block)) => {
                for (agent, n) in of_block {
                    *agents.entry(agent.as_str()).or_default() += u64::from(*n);
                }
            }
            (_, None) => return true,
        }
        false
    });
    let groups: Vec<(Cell, u64)> = if kind == FieldKind::Level {
        levels
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(rank, &n)| {
                let cell = logyard_model::Level::from_rank(rank as u8)
                    .map_or(Cell::Null, |l| Cell::Str(l.as_str().to_string()));
                (cell, n)
            })
            .collect()
    } else {
        let mut sorted: Vec<(&str, u64)> = agents.into_iter().collect();
        sorted.sort_unstable();
        sorted
            .into_iter()
            .map(|(agent, n)| (Cell::Str(agent.to_string()), n))
            .collect()
    };
    for (cell, n) in groups {
        state.add_count(&[cell], n, budget)?;
    }
    Ok(())
}

/// One block's counts per group.
type BlockGroups = Vec<(Vec<Cell>, u64)>;

/// What one worker counted: its blocks' groups, its cost, and why it stopped early.
type Counted = (Vec<BlockGroups>, Cost, Option<String>);

/// Counts a block's matches per group: from its metadata when it can, else by reading the
/// grouping columns (and the filter's).
fn block_groups(
    snapshot: &Snapshot,
    filter: &Filter,
    block: &BlockRef,
    stats: &Stats,
    by_columns: &[usize],
    cost: &mut Cost,
) -> Result<BlockGroups, QueryError> {
    if let Some(counts) = level_filtered_counts(filter, block, stats) {
        return Ok(counts);
    }
    let whole = keeps_whole(filter, block);
    // Grouped by nothing: a block kept whole counts its rows. (By level or agent, the blocks
    // whose metadata can tell were counted before: [`add_metadata_counts`].)
    if whole && stats.by.is_empty() {
        return Ok(vec![(Vec::new(), block.rows() as u64)]);
    }
    let mut columns = Columns::of(by_columns);
    let read = if whole {
        if columns.0 == 0 {
            columns = Columns::of(&[col::SEQ]);
        }
        read_block(snapshot, block, columns, &FieldKeys::none(), cost)?.map(|b| {
            let n = b.num_rows();
            (b, vec![true; n])
        })
    } else {
        eval_block(snapshot, block, filter, columns, cost)?
    };
    let Some((batch, mask)) = read else {
        return Ok(Vec::new());
    };
    let dicts: Vec<(Vec<Option<String>>, Vec<i32>)> = by_columns
        .iter()
        .map(|&c| dictionary_keys(&batch, c))
        .collect();
    let mut counts: HashMap<u128, u64> = HashMap::new();
    for row in (0..batch.num_rows()).filter(|&r| mask[r]) {
        let mut key = 0u128;
        for (_, keys) in &dicts {
            key = (key << 32) | u128::from(keys[row] as u32);
        }
        *counts.entry(key).or_default() += 1;
    }
    let mut sorted: BTreeMap<u128, u64> = BTreeMap::new();
    sorted.extend(counts);
    let mut out = Vec::with_capacity(sorted.len());
    for (mut key, n) in sorted {
        let mut cells = vec![Cell::Null; dicts.len()];
        for (i, (values, _)) in dicts.iter().enumerate().rev() {
            let k = (key & 0xffff_ffff) as u32 as i32;
            key >>= 32;
            cells[i] = usize::try_from(k)
                .ok()
                .and_then(|k| values.get(k).cloned().flatten())
                .map_or(Cell::Null, Cell::Str);
        }
        out.push((cells, n));
    }
    Ok(out)
}

/// Returns a block's counts from its metadata when the filter is a level comparison (with,
/// at most, conditions the block meets whole, such as its time range) and `stats` groups by
/// nothing or by level: `level:ERROR | stats count()` reads no row.
fn level_filtered_counts(
    filter: &Filter,
    block: &BlockRef,
    stats: &Stats,
) -> Option<Vec<(Vec<Cell>, u64)>> {
    let (op, bound) = match filter {
        Filter::Level(op, bound) => (*op, *bound),
        Filter::And(parts) => {
            let mut level = None;
            for p in parts {
                match p {
                    Filter::Level(op, bound) if level.is_none() => level = Some((*op, *bound)),
                    other if keeps_whole(other, block) => {}
                    _ => return None,
                }
            }
            level?
        }
        _ => return None,
    };
    let kinds: Vec<FieldKind> = stats.by.iter().map(FieldRef::kind).collect();
    let by_level = match kinds.as_slice() {
        [] => false,
        [FieldKind::Level] => true,
        _ => return None,
    };
    let counts = block.counts()?;
    let matching = counts.levels.iter().enumerate().filter_map(|(rank, &n)| {
        let level = logyard_model::Level::from_rank(rank as u8)?;
        (n > 0 && op.holds(level, bound)).then_some((level, u64::from(n)))
    });
    Some(if by_level {
        matching
            .map(|(l, n)| (vec![Cell::Str(l.as_str().to_string())], n))
            .collect()
    } else {
        vec![(Vec::new(), matching.map(|(_, n)| n).sum())]
    })
}

/// The records of a block that match a filter, counted from its metadata alone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetaMatches {
    /// Every match.
    pub(crate) total: u64,
    /// The matches by level rank (as in [`logyard_store::BlockCounts::levels`]: TRACE …
    /// CRITICAL, then no level), when the metadata says.
    pub(crate) by_level: Option<[u64; 7]>,
}

/// Counts a block's matches from its metadata, without reading a row: when the filter keeps
/// the block whole (`*`, a time range around it), is a level comparison, or an agent's exact
/// name (with, besides, only conditions the block meets whole). `None` when it cannot tell.
pub(crate) fn metadata_matches(filter: &Filter, block: &BlockRef) -> Option<MetaMatches> {
    fn levels_where(block: &BlockRef, keep: impl Fn(usize) -> bool) -> Option<MetaMatches> {
        let counts = block.counts()?;
        let mut by_level = [0u64; 7];
        for (rank, &n) in counts.levels.iter().enumerate() {
            if keep(rank) {
                by_level[rank] = u64::from(n);
            }
        }
        Some(MetaMatches {
            total: by_level.iter().sum(),
            by_level: Some(by_level),
        })
    }
    if keeps_whole(filter, block) {
        return levels_where(block, |_| true).or(Some(MetaMatches {
            total: block.rows() as u64,
            by_level: None,
        }));
    }
    let parts: &[Filter] = match filter {
        Filter::And(parts) => parts,
        one => std::slice::from_ref(one),
    };
    let mut condition = None;
    for p in parts {
        if keeps_whole(p, block) {
            continue;
        }
        if condition.is_some() {
            return None;
        }
        condition = Some(p);
    }
    match condition? {
        Filter::Level(op, bound) => levels_where(block, |rank| {
            logyard_model::Level::from_rank(rank as u8).is_some_and(|l| op.holds(l, *bound))
        }),
        Filter::Label {
            column: crate::filter::LabelColumn::Agent,
            value,
            prefix: false,
        } => {
            let agents = block.counts()?.agents.as_ref()?;
            let n = agents
                .binary_search_by(|(a, _)| a.as_str().cmp(value))
                .map_or(0, |i| u64::from(agents[i].1));
            Some(MetaMatches {
                total: n,
                by_level: None,
            })
        }
        _ => None,
    }
}

/// Returns a dictionary column's values and each row's key (-1 for null); a plain string
/// column becomes its own dictionary.
fn dictionary_keys(batch: &RecordBatch, column: usize) -> (Vec<Option<String>>, Vec<i32>) {
    let array = batch
        .column_by_name(col::NAMES[column])
        .expect("grouping column read");
    if let Some(dict) = array.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        if let Some(values) = dict.values().as_any().downcast_ref::<StringArray>() {
            let vals = (0..values.len())
                .map(|i| (!values.is_null(i)).then(|| values.value(i).to_string()))
                .collect();
            let keys = (0..dict.len())
                .map(|i| {
                    if dict.is_null(i) {
                        -1
                    } else {
                        dict.keys().value(i)
                    }
                })
                .collect();
            return (vals, keys);
        }
    }
    let mut vals: Vec<Option<String>> = Vec::new();
    let mut index: HashMap<Option<String>, i32> = HashMap::new();
    let keys = (0..array.len())
        .map(|i| {
            let v = logyard_store::schema::string_at(array.as_ref(), i).map(str::to_string);
            *index.entry(v.clone()).or_insert_with(|| {
                vals.push(v);
                vals.len() as i32 - 1
            })
        })
        .collect();
    (vals, keys)
}
