//! Reading one block of a snapshot: its columns, with damage reported and skipped, and
//! whether a filter keeps the whole block without looking at its rows.

use arrow_array::RecordBatch;
use logyard_model::Record;
use logyard_store::{BlockRef, Columns, Snapshot, StoreError};

use crate::keys::FieldKeys;
use crate::{Cost, Filter, QueryError};

/// Reads columns of a block (the message as a dictionary where the segment stores it so, the
/// fields as stored, with the field columns of `keys` alone: see
/// [`logyard_store::field_columns::StoredFields`]); a
/// damaged segment is reported (and quarantined) and skipped, and so is one that cannot be
/// read now (the bucket out of reach), noted in the cost as unreachable.
pub(crate) fn read_block(
    snapshot: &Snapshot,
    block: &BlockRef,
    columns: Columns,
    keys: &FieldKeys,
    cost: &mut Cost,
) -> Result<Option<RecordBatch>, QueryError> {
    let columns = columns
        .with(Columns::MESSAGE_DICTIONARY)
        .with(Columns::FIELD_COLUMNS);
    match block.read_keys(columns, keys.as_list()) {
        Ok(batch) => {
            cost.rows_scanned += batch.num_rows() as u64;
            cost.bytes_scanned += batch.get_array_memory_size() as u64;
            Ok(Some(batch))
        }
        Err(e @ (StoreError::Corrupt(_) | StoreError::Parquet(_))) => {
            snapshot.report_damaged(block, &e);
            cost.blocks_unreadable += 1;
            Ok(None)
        }
        Err(e) if segment_unreachable(block, &e) => {
            cost.unreachable(block, &e);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads whole records at some rows of a block; `None` when its segment cannot be read now
/// (the bucket went away since the block's first read), noted in the cost.
pub(crate) fn read_records(
    block: &BlockRef,
    rows: &[usize],
    cost: &mut Cost,
) -> Result<Option<Vec<Record>>, QueryError> {
    match block.records(rows) {
        Ok(records) => Ok(Some(records)),
        Err(e) if segment_unreachable(block, &e) => {
            cost.unreachable(block, &e);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a read of a block failed only because its segment cannot be read now (an I/O
/// error: the bucket out of reach, a disk read that failed), not because it is damaged: the
/// block is then left out of the answer, and read again by the next query.
pub fn segment_unreachable(block: &BlockRef, error: &StoreError) -> bool {
    matches!(error, StoreError::Io(_)) && block.segment().is_some()
}

/// Returns whether every record of a block matches a filter, judging by its time range only.
pub(crate) fn keeps_whole(filter: &Filter, block: &BlockRef) -> bool {
    match filter {
        Filter::All => true,
        Filter::Time { start, end } => {
            start.is_none_or(|s| block.min_ts >= s) && end.is_none_or(|e| block.max_ts < e)
        }
        Filter::And(parts) => parts.iter().all(|p| keeps_whole(p, block)),
        _ => false,
    }
}
