//! The `logs` table: a DataFusion [`TableProvider`] over the blocks of a store snapshot
//! (segment row groups and memtable batches), read through the store's own reader.
//!
//! [`LogsTable::scan`] prunes the snapshot's blocks with the filters pushed into it
//! (see [`crate::pushdown`]): by time range, by token filter, and by the blocks' counts of
//! levels and agents. The [`LogsScan`] plan it returns reads the kept blocks, only the
//! columns the query needs, each block on a blocking thread, drops the rows that the cheap
//! part of the filter rules out, and hands the rest to DataFusion, which applies the exact
//! predicate. `EXPLAIN` shows the pruning: `LogsScan: blocks=2 of 40 (skipped by time: 37,
//! by filter: 1)`.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, StringBuilder,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::StreamExt;
use logyard_model::schema::{self, Column};
use logyard_model::{format_rfc3339, RecordId};
use logyard_query::{Cost, Filter, LabelColumn, LevelOp};
use logyard_store::schema::{col, seqs, timestamps};
use logyard_store::{BlockCounts, BlockRef, Columns, Snapshot, StoreError};

use crate::pushdown;

/// The columns of `logs`: name, type, nullable, and the store columns each is read from.
const COLUMNS: [(&str, Kind, bool); 10] = [
    (Column::Timestamp.name(), Kind::Time, false),
    (schema::ID, Kind::Id, false),
    (Column::Level.name(), Kind::Dict, true),
    (Column::Agent.name(), Kind::Dict, false),
    (Column::Host.name(), Kind::Dict, false),
    (Column::Source.name(), Kind::Dict, false),
    (Column::Message.name(), Kind::Text, false),
    (Column::Fields.name(), Kind::Text, true),
    (Column::Raw.name(), Kind::Text, true),
    (schema::TIME_ALIAS, Kind::Time, false),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Time,
    Id,
    Dict,
    Text,
}

/// Returns the store columns a `logs` column is made of.
fn store_columns(name: &str) -> Columns {
    if name == schema::ID {
        return Columns::of(&[col::TIMESTAMP, col::SEQ]);
    }
    let column = schema::column_named(name).unwrap_or(Column::Raw);
    Columns::of(&[column.index()])
}

/// Returns the schema of the `logs` table.
pub fn logs_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields: Vec<Field> = COLUMNS
                .iter()
                .map(|(name, kind, nullable)| {
                    let t = match kind {
                        Kind::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                        Kind::Id | Kind::Text => DataType::Utf8,
                        Kind::Dict => DataType::Dictionary(
                            Box::new(DataType::Int32),
                            Box::new(DataType::Utf8),
                        ),
                    };
                    Field::new(*name, t, *nullable)
                })
                .collect();
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// The `logs` table over one snapshot of the store, holding only the rows of a scope. Every
/// scan adds what it read and skipped to a shared [`Cost`].
#[derive(Clone)]
pub struct LogsTable {
    snapshot: Arc<Snapshot>,
    scope: Filter,
    cost: Arc<Mutex<Cost>>,
}

impl fmt::Debug for LogsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogsTable")
            .field("blocks", &self.snapshot.blocks.len())
            .finish()
    }
}

impl LogsTable {
    /// Creates the table over the rows of a snapshot that `scope` keeps (`Filter::All`:
    /// every row); scans add their cost to `cost`.
    ///
    /// The scope is evaluated exactly on every row every scan reads, before anything else
    /// sees it, so that no statement can reach a row outside it.
    pub fn new(snapshot: Arc<Snapshot>, scope: Filter, cost: Arc<Mutex<Cost>>) -> LogsTable {
        LogsTable {
            snapshot,
            scope,
            cost,
        }
    }
}

#[async_trait]
impl TableProvider for LogsTable {
    fn schema(&self) -> SchemaRef {
        logs_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if pushdown::is_useful(&pushdown::translate(f)) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = logs_schema();
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        let out_schema = Arc::new(schema.project(&projection)?);
        let pushed = Filter::and(filters.iter().map(pushdown::translate).collect());
        let rows = Filter::and(vec![self.scope.clone(), pushdown::row_filter(&pushed)]);
        let filter = Filter::and(vec![self.scope.clone(), pushed]);
        let mut cost = Cost::default();
        let total = self.snapshot.blocks.len();
        let mut kept = Vec::new();
        for i in logyard_query::candidate_indices(&self.snapshot, &filter, &mut cost) {
            let block = &self.snapshot.blocks[i];
            if block.counts().is_some_and(|c| counts_rule_out(&rows, c)) {
                cost.blocks_skipped_by_filter += 1;
                continue;
            }
            kept.push(i);
        }
        {
            let mut total_cost = self.cost.lock().expect("cost lock");
            total_cost.blocks_skipped_by_time += cost.blocks_skipped_by_time;
            total_cost.blocks_skipped_by_filter += cost.blocks_skipped_by_filter;
            total_cost.rows_quarantined = total_cost.rows_quarantined.max(cost.rows_quarantined);
            total_cost.add_reads(&cost);
        }
        let n = state.config().target_partitions().min(kept.len()).max(1);
        let mut partitions = vec![Vec::new(); n];
        for (i, b) in kept.iter().enumerate() {
            partitions[i % n].push(*b);
        }
        let read = projection.iter().fold(Columns(0), |m, &i| {
            Columns(m.0 | store_columns(schema.field(i).name()).0)
        });
        let names: Vec<&'static str> = projection.iter().map(|&i| COLUMNS[i].0).collect();
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(out_schema.clone()),
            Partitioning::UnknownPartitioning(n),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Arc::new(LogsScan {
            job: Arc::new(ScanJob {
                snapshot: self.snapshot.clone(),
                read,
                rows,
                names,
                schema: out_schema,
                cost: self.cost.clone(),
            }),
            pruning: Pruning {
                total,
                kept: kept.len(),
                by_time: cost.blocks_skipped_by_time,
                by_filter: cost.blocks_skipped_by_filter,
                filter: describe(&filter),
            },
            partitions,
            limit,
            parallelism: std::thread::available_parallelism().map_or(2, |n| n.get()),
            cache,
        }))
    }
}

/// Returns whether a block's counts show it holds no row the filter keeps.
fn counts_rule_out(f: &Filter, counts: &BlockCounts) -> bool {
    match f {
        Filter::Level(LevelOp::Eq, level) => counts.levels[level.rank() as usize] == 0,
        Filter::Label {
            column: LabelColumn::Agent,
            value,
            prefix,
        } => counts.agents.as_ref().is_some_and(|agents| {
            !agents.iter().any(|(a, n)| {
                *n > 0
                    && if *prefix {
                        a.starts_with(value.as_str())
                    } else {
                        a == value
                    }
            })
        }),
        Filter::And(parts) => parts.iter().any(|p| counts_rule_out(p, counts)),
        Filter::Or(parts) => parts.iter().all(|p| counts_rule_out(p, counts)),
        _ => false,
    }
}

/// A short text of a pushed filter, for `EXPLAIN`.
fn describe(f: &Filter) -> String {
    match f {
        Filter::All => "none".into(),
        Filter::Time { start, end } => format!(
            "time in [{}, {})",
            start.map_or("-inf".into(), format_rfc3339),
            end.map_or("+inf".into(), format_rfc3339)
        ),
        Filter::Label {
            column,
            value,
            prefix,
        } => format!(
            "{} {} {value:?}",
            format!("{column:?}").to_lowercase(),
            if *prefix { "starts with" } else { "=" }
        ),
        Filter::Level(op, level) => {
            let op = match op {
                LevelOp::Eq => "=",
                LevelOp::Ge => ">=",
                LevelOp::Gt => ">",
                LevelOp::Le => "<=",
                LevelOp::Lt => "<",
            };
            format!("level {op} {level}")
        }
        Filter::Text(t) => format!("words {t:?}"),
        Filter::And(parts) => parts.iter().map(describe).collect::<Vec<_>>().join(" AND "),
        Filter::Or(parts) => format!(
            "({})",
            parts.iter().map(describe).collect::<Vec<_>>().join(" OR ")
        ),
        other => format!("{other:?}"),
    }
}

/// What the scan skipped when it was planned.
#[derive(Debug, Clone)]
struct Pruning {
    total: usize,
    kept: usize,
    by_time: u64,
    by_filter: u64,
    filter: String,
}

/// What every partition of a scan shares.
struct ScanJob {
    snapshot: Arc<Snapshot>,
    read: Columns,
    rows: Filter,
    names: Vec<&'static str>,
    schema: SchemaRef,
    cost: Arc<Mutex<Cost>>,
}

impl ScanJob {
    /// Reads one block: the needed columns, the rows the row filter keeps.
    fn read(&self, index: usize) -> Result<Option<RecordBatch>> {
        let block = &self.snapshot.blocks[index];
        let filter = within_block(&self.rows, block);
        let masked = !matches!(filter, Filter::All);
        if self.read.0 == 0 && !masked {
            // Only the row count is needed (`count(*)`): nothing is read.
            let options = RecordBatchOptions::new().with_row_count(Some(block.rows()));
            return Ok(Some(RecordBatch::try_new_with_options(
                self.schema.clone(),
                Vec::new(),
                &options,
            )?));
        }
        let mut columns = self.read;
        if masked {
            columns.0 |= filter.columns().0;
        }
        let batch = match block.read(columns) {
            Ok(b) => b,
            Err(e @ (StoreError::Corrupt(_) | StoreError::Parquet(_))) => {
                self.snapshot.report_damaged(block, &e);
                self.cost.lock().expect("cost lock").blocks_unreadable += 1;
                return Ok(None);
            }
            // The bucket out of reach: the segment is left out and named in the cost.
            Err(e) if logyard_query::segment_unreachable(block, &e) => {
                self.cost.lock().expect("cost lock").unreachable(block, &e);
                return Ok(None);
            }
            Err(e) => return Err(DataFusionError::External(Box::new(e))),
        };
        {
            let mut cost = self.cost.lock().expect("cost lock");
            cost.rows_scanned += batch.num_rows() as u64;
            cost.bytes_scanned += batch.get_array_memory_size() as u64;
        }
        let batch = if masked {
            let mask = filter.eval(&batch);
            let kept = mask.iter().filter(|m| **m).count();
            if kept == 0 {
                return Ok(None);
            }
            if kept == batch.num_rows() {
                batch
            } else {
                filter_record_batch(&batch, &BooleanArray::from(mask))
                    .map_err(|e| DataFusionError::External(Box::new(e)))?
            }
        } else {
            batch
        };
        self.convert(&batch).map(Some)
    }

    /// Builds the output columns from a store batch.
    fn convert(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                DataFusionError::Internal(format!("the store did not read column {name}"))
            })
        };
        let mut out: Vec<ArrayRef> = Vec::with_capacity(self.names.len());
        let mut time: Option<ArrayRef> = None;
        for name in &self.names {
            let array = match *name {
                schema::ID => {
                    let mut ids =
                        StringBuilder::with_capacity(batch.num_rows(), batch.num_rows() * 32);
                    for (&timestamp, &seq) in timestamps(batch).iter().zip(seqs(batch)) {
                        ids.append_value(RecordId { timestamp, seq }.to_string());
                    }
                    Arc::new(ids.finish())
                }
                other if schema::column_named(other) == Some(Column::Timestamp) => match &time {
                    Some(t) => t.clone(),
                    None => {
                        let t = column(Column::Timestamp.name())?.clone();
                        time = Some(t.clone());
                        t
                    }
                },
                other => column(other)?.clone(),
            };
            out.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            out,
            &options,
        )?)
    }
}

/// Drops the time conditions that a block lies wholly inside.
fn within_block(f: &Filter, block: &BlockRef) -> Filter {
    match f {
        Filter::Time { start, end }
            if start.is_none_or(|s| block.min_ts >= s) && end.is_none_or(|e| block.max_ts < e) =>
        {
            Filter::All
        }
        Filter::And(parts) => Filter::and(parts.iter().map(|p| within_block(p, block)).collect()),
        other => other.clone(),
    }
}

/// The physical scan of `logs`: the kept blocks, spread over partitions.
pub struct LogsScan {
    job: Arc<ScanJob>,
    pruning: Pruning,
    partitions: Vec<Vec<usize>>,
    limit: Option<usize>,
    parallelism: usize,
    cache: Arc<PlanProperties>,
}

impl fmt::Debug for LogsScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogsScan")
            .field("pruning", &self.pruning)
            .finish()
    }
}

impl DisplayAs for LogsScan {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let p = &self.pruning;
        match t {
            DisplayFormatType::TreeRender => write!(f, "blocks={} of {}", p.kept, p.total),
            _ => {
                write!(
                    f,
                    "LogsScan: blocks={} of {} (skipped by time: {}, by filter: {}), pushed={}, columns=[{}]",
                    p.kept,
                    p.total,
                    p.by_time,
                    p.by_filter,
                    p.filter,
                    self.job.names.join(", ")
                )?;
                if let Some(l) = self.limit {
                    write!(f, ", limit={l}")?;
                }
                Ok(())
            }
        }
    }
}

impl ExecutionPlan for LogsScan {
    fn name(&self) -> &'static str {
        "LogsScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let blocks = self.partitions.get(partition).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!("LogsScan has no partition {partition}"))
        })?;
        let job = self.job.clone();
        // Blocks are read on the blocking pool, several at once, and handed on in order.
        let reads = futures::stream::iter(blocks)
            .map(move |index| {
                let job = job.clone();
                async move {
                    match tokio::task::spawn_blocking(move || job.read(index)).await {
                        Ok(result) => result,
                        Err(e) => Err(DataFusionError::ExecutionJoin(Box::new(e))),
                    }
                }
            })
            .buffered(self.parallelism)
            .filter_map(|r| async move { r.transpose() });
        // A pushed LIMIT ends the stream once that many rows went out.
        let stream = reads.scan(self.limit, |left, batch| {
            let out = match batch {
                Err(e) => Some(Err(e)),
                Ok(_) if *left == Some(0) => None,
                Ok(batch) => {
                    let batch = match *left {
                        Some(l) if batch.num_rows() > l => batch.slice(0, l),
                        _ => batch,
                    };
                    if let Some(l) = left.as_mut() {
                        *l -= batch.num_rows();
                    }
                    Some(Ok(batch))
                }
            };
            futures::future::ready(out)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.job.schema.clone(),
            stream,
        )))
    }
}
