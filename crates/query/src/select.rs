//! Picking the first records of a query in a sort's order, with the count of every match.

use std::collections::{BTreeMap, HashMap};

use logyard_model::Record;
use logyard_store::schema::{col, seqs, timestamps};
use logyard_store::{Columns, Snapshot};

use crate::block::read_records;
use crate::cell::{columns_of, keys_of, BlockFields, Cell};
use crate::pipes::{Budget, Sort};
use crate::{
    candidate_blocks, eval_block_keys, search_counting, Cost, Filter, Order, Page, QueryError,
};

/// Picks the first `k` matching records in a sort's order (in `order` without one) and
/// counts every match (newest first without `exact_total`: see [`search_counting`]);
/// answers the records, the count and whether it is exact.
#[allow(clippy::too_many_arguments)]
pub(crate) fn select(
    snapshot: &Snapshot,
    filter: &Filter,
    sort: Option<&Sort>,
    order: Order,
    k: usize,
    exact_total: bool,
    budget: &mut Budget,
    cost: &mut Cost,
    partial: &mut Option<String>,
) -> Result<(Vec<Record>, u64, bool), QueryError> {
    let Some(sort) = sort else {
        let r = search_counting(
            snapshot,
            filter,
            Page {
                offset: 0,
                limit: k,
            },
            order,
            exact_total,
        )?;
        *cost = r.cost;
        return Ok((r.records, r.total, r.total_exact));
    };
    let fields = sort.by.clone();
    let columns = columns_of(&fields).with(Columns::of(&[col::TIMESTAMP, col::SEQ]));
    let keys = keys_of(&fields);
    let blocks = candidate_blocks(snapshot, filter, cost);
    type Candidate = (Vec<Cell>, i64, u64, usize, usize);
    let cmp = |a: &Candidate, b: &Candidate| {
        sort.cmp_keys(&a.0, &b.0).then_with(|| {
            let o = (a.1, a.2).cmp(&(b.1, b.2));
            if sort.desc {
                o.reverse()
            } else {
                o
            }
        })
    };
    let mut best: Vec<Candidate> = Vec::new();
    let mut total = 0u64;
    let mut cells = Vec::new();
    for (bi, block) in blocks.iter().enumerate() {
        if let Err(reason) = budget.check_time() {
            *partial = Some(reason);
            break;
        }
        let Some((batch, mask)) = eval_block_keys(snapshot, block, filter, columns, &keys, cost)?
        else {
            continue;
        };
        let ts = timestamps(&batch);
        let seq = seqs(&batch);
        let reader = BlockFields::new(&batch, &fields);
        for row in (0..batch.num_rows()).filter(|&r| mask[r]) {
            total += 1;
            if k == 0 {
                continue;
            }
            reader.row(row, &mut cells);
            best.push((cells.clone(), ts[row], seq[row], bi, row));
            if best.len() >= 2 * k + 64 {
                best.sort_by(cmp);
                best.truncate(k);
            }
        }
    }
    best.sort_by(cmp);
    best.truncate(k);
    let mut by_block: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for c in &best {
        by_block.entry(c.3).or_default().push(c.4);
    }
    let mut found: HashMap<(i64, u64), Record> = HashMap::new();
    for (bi, rows) in by_block {
        for r in read_records(blocks[bi], &rows, cost)?.unwrap_or_default() {
            found.insert((r.timestamp, r.seq), r);
        }
    }
    let records = best
        .iter()
        .filter_map(|c| found.remove(&(c.1, c.2)))
        .collect();
    Ok((records, total, true))
}

pub(crate) fn sort_records(records: &mut [Record], sort: &Sort) {
    records.sort_by(|a, b| {
        let ka: Vec<Cell> = sort.by.iter().map(|f| f.of_record(a)).collect();
        let kb: Vec<Cell> = sort.by.iter().map(|f| f.of_record(b)).collect();
        sort.cmp_keys(&ka, &kb)
    });
}
