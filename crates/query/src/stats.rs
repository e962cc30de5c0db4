//! Summary statistics: counts by level and agent, and the agents with their last activity.

use std::collections::BTreeMap;
use std::time::Instant;

use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, StringArray};
use logyard_model::schema::Column;
use logyard_store::schema::{col, string_at, timestamps};
use logyard_store::{Columns, Snapshot};

use crate::{candidate_blocks, eval_block, Cost, Filter, QueryError};

/// Counts of the records matching a filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Matching records.
    pub total: u64,
    /// By level name; records without a level are not counted here.
    pub by_level: BTreeMap<String, u64>,
    /// By agent.
    pub by_agent: BTreeMap<String, u64>,
    /// Earliest matching timestamp.
    pub oldest: Option<i64>,
    /// Latest matching timestamp.
    pub newest: Option<i64>,
    /// What it cost.
    pub cost: Cost,
}

/// One agent and what it wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentSummary {
    /// The agent's name.
    pub name: String,
    /// Its records.
    pub count: u64,
    /// Its latest timestamp.
    pub last_seen: i64,
    /// Its records by level.
    pub levels: BTreeMap<String, u64>,
}

/// Calls `f(row, key)` for every row of a dictionary column with the index of its value in
/// `values`, a vector of the distinct values met so far.
fn for_each_value(
    column: &dyn Array,
    values: &mut Vec<Option<String>>,
    index: &mut BTreeMap<Option<String>, usize>,
    mut f: impl FnMut(usize, usize),
) {
    let mut lookup = |v: Option<&str>| -> usize {
        let key = v.map(str::to_string);
        if let Some(&i) = index.get(&key) {
            return i;
        }
        values.push(key.clone());
        index.insert(key, values.len() - 1);
        values.len() - 1
    };
    if let Some(dict) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        if let Some(dv) = dict.values().as_any().downcast_ref::<StringArray>() {
            let map: Vec<usize> = (0..dv.len())
                .map(|i| lookup((!dv.is_null(i)).then(|| dv.value(i))))
                .collect();
            let null = lookup(None);
            for row in 0..dict.len() {
                let v = if dict.is_null(row) {
                    null
                } else {
                    map[dict.keys().value(row) as usize]
                };
                f(row, v);
            }
            return;
        }
    }
    for row in 0..column.len() {
        let v = lookup(string_at(column, row));
        f(row, v);
    }
}

/// Per (agent, level) pair: count, earliest and latest time.
type Grid = BTreeMap<(usize, usize), (u64, i64, i64)>;

/// The grid, the agent names and level names its keys index, and the cost.
struct GridResult {
    grid: Grid,
    agents: Vec<Option<String>>,
    levels: Vec<Option<String>>,
    cost: Cost,
}

fn grid(snapshot: &Snapshot, filter: &Filter) -> Result<GridResult, QueryError> {
    let started = Instant::now();
    let mut cost = Cost::default();
    let columns = Columns::of(&[col::TIMESTAMP, col::LEVEL, col::AGENT]);
    let (mut agents, mut agent_index) = (Vec::new(), BTreeMap::new());
    let (mut levels, mut level_index) = (Vec::new(), BTreeMap::new());
    let mut grid = Grid::new();
    for block in candidate_blocks(snapshot, filter, &mut cost) {
        let Some((batch, mask)) = eval_block(snapshot, block, filter, columns, &mut cost)? else {
            continue;
        };
        let ts = timestamps(&batch);
        let mut agent_of = vec![0; batch.num_rows()];
        let agent_col = batch
            .column_by_name(Column::Agent.name())
            .expect("agent read");
        for_each_value(
            agent_col.as_ref(),
            &mut agents,
            &mut agent_index,
            |row, v| agent_of[row] = v,
        );
        let level_col = batch
            .column_by_name(Column::Level.name())
            .expect("level read");
        for_each_value(
            level_col.as_ref(),
            &mut levels,
            &mut level_index,
            |row, l| {
                if mask[row] {
                    let cell = grid
                        .entry((agent_of[row], l))
                        .or_insert((0, i64::MAX, i64::MIN));
                    cell.0 += 1;
                    cell.1 = cell.1.min(ts[row]);
                    cell.2 = cell.2.max(ts[row]);
                }
            },
        );
    }
    cost.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(GridResult {
        grid,
        agents,
        levels,
        cost,
    })
}

/// Counts the records matching a filter, by level and by agent.
pub fn summary(snapshot: &Snapshot, filter: &Filter) -> Result<Summary, QueryError> {
    let GridResult {
        grid,
        agents,
        levels,
        cost,
    } = grid(snapshot, filter)?;
    let mut out = Summary {
        cost,
        ..Summary::default()
    };
    let (mut oldest, mut newest) = (None::<i64>, None::<i64>);
    for (&(a, l), &(count, first, last)) in &grid {
        out.total += count;
        if let Some(level) = &levels[l] {
            *out.by_level.entry(level.clone()).or_default() += count;
        }
        *out.by_agent
            .entry(agents[a].clone().unwrap_or_default())
            .or_default() += count;
        oldest = Some(oldest.map_or(first, |o: i64| o.min(first)));
        newest = Some(newest.map_or(last, |n: i64| n.max(last)));
    }
    out.oldest = oldest;
    out.newest = newest;
    Ok(out)
}

/// Lists the agents of the records matching a filter, most records first.
pub fn agents(snapshot: &Snapshot, filter: &Filter) -> Result<Vec<AgentSummary>, QueryError> {
    let GridResult {
        grid,
        agents,
        levels,
        ..
    } = grid(snapshot, filter)?;
    let mut by_agent: BTreeMap<usize, AgentSummary> = BTreeMap::new();
    for (&(a, l), &(count, _, last)) in &grid {
        let entry = by_agent.entry(a).or_insert_with(|| AgentSummary {
            name: agents[a].clone().unwrap_or_default(),
            last_seen: i64::MIN,
            ..AgentSummary::default()
        });
        entry.count += count;
        entry.last_seen = entry.last_seen.max(last);
        if let Some(level) = &levels[l] {
            *entry.levels.entry(level.clone()).or_default() += count;
        }
    }
    let mut out: Vec<AgentSummary> = by_agent.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}
