//! SQL over the store: a `logs` table for Apache DataFusion, read-only, within the query
//! budgets.
//!
//! [`execute`] parses one statement, refuses anything but `SELECT`, `WITH`, `EXPLAIN` and
//! `DESCRIBE`, and anything nested deeper than [`SqlSettings::max_depth`], plans it against a
//! `logs` table over a [`Snapshot`] of the store ([`LogsTable`]), runs it within
//! [`Settings::timeout`], a memory pool of [`Settings::max_state_bytes`] and at most
//! [`Settings::max_limit`] answered rows, and answers a table with its [`Cost`]. A server runs
//! statements through a [`SqlPool`]: threads of their own with deep stacks, and a bound on
//! how many statements run at once. Time ranges, labels, levels and message words in the
//! `WHERE` clause are pushed into the scan, which skips blocks by time range, token filter and
//! level/agent counts before reading only the columns the query needs.
//!
//! It sits beside the query language in the data flow: store → query / sql → api / cli.
//!
//! ```no_run
//! # async fn example() {
//! use std::sync::Arc;
//! # let store = logyard_store::Store::open(logyard_store::StoreConfig::new("d")).unwrap();
//! let answer = logyard_sql::execute(
//!     Arc::new(store.snapshot()),
//!     logyard_query::Filter::All,
//!     "SELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY n DESC",
//!     &logyard_sql::SqlSettings::default(),
//! )
//! .await
//! .unwrap();
//! println!("{:?} {:?}", answer.columns, answer.rows);
//! # }
//! ```

mod bounded;
mod deadline;
mod limits;
mod output;
mod pool;
pub mod pushdown;
mod settings;
mod table;
mod udf;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::common::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures::StreamExt;
use logyard_query::{Cost, Filter, Settings};
use logyard_store::Snapshot;
use serde_json::Value;

pub use pool::{PoolConfig, SqlPool, STACK_BYTES};
pub use settings::QuerySettings;
pub use table::{logs_schema, LogsScan, LogsTable};

/// The budgets of one statement: those of any query, and how deep it may nest.
#[derive(Debug, Clone)]
pub struct SqlSettings {
    /// Time, memory, answer size and regex budgets.
    pub query: Settings,
    /// Deepest nesting of expressions, and most set operations plus joins, of one statement.
    pub max_depth: usize,
}

/// The default of [`SqlSettings::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 500;

impl Default for SqlSettings {
    fn default() -> SqlSettings {
        SqlSettings::from(Settings::default())
    }
}

impl From<Settings> for SqlSettings {
    fn from(query: Settings) -> SqlSettings {
        SqlSettings {
            query,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// The answer of a statement: a table, its cost, and why it is partial when it is.
#[derive(Debug, Clone)]
pub struct SqlAnswer {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows aligned with the columns: numbers as JSON numbers, times as RFC 3339 text.
    pub rows: Vec<Vec<Value>>,
    /// What the scans of `logs` read and skipped.
    pub cost: Cost,
    /// Why the answer is cut (the deadline or the row limit), when it is.
    pub partial: Option<String>,
}

/// Why a statement was not answered.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The statement is not read-only, or there is not exactly one.
    #[error("{0}")]
    NotAllowed(String),
    /// The statement does not parse or plan; `position` is a byte offset into it.
    #[error("{message}")]
    Syntax {
        /// DataFusion's message.
        message: String,
        /// Where, when DataFusion says.
        position: Option<usize>,
    },
    /// The statement needs more memory than `query.max_state_bytes`.
    #[error("{0}")]
    Budget(String),
    /// The statement failed while running (a bad cast, a division by zero, …).
    #[error("{0}")]
    Execution(String),
    /// As many statements as may run at once are running, and none ended in time.
    #[error("{0}")]
    Busy(String),
    /// The store or the engine failed.
    #[error("{0}")]
    Internal(String),
}

/// The name of the one table.
pub const TABLE: &str = "logs";

/// Runs one read-only statement over the rows of a snapshot that `scope` keeps
/// (`Filter::All`: every row) within the budgets of `settings`.
///
/// Planning and running recurse once per level of the statement's nesting: call it on a
/// thread with [`STACK_BYTES`] of stack, as [`SqlPool::execute`] does.
pub async fn execute(
    snapshot: Arc<Snapshot>,
    scope: Filter,
    sql: &str,
    sql_settings: &SqlSettings,
) -> Result<SqlAnswer, SqlError> {
    let settings = &sql_settings.query;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let statement = parse_one(sql)?;
    check_shape(
        &statement,
        limits::ShapeLimits {
            max_depth: sql_settings.max_depth,
            max_regex_bytes: settings.max_regex_bytes,
        },
    )?;
    let cost = Arc::new(Mutex::new(Cost::default()));
    let ctx = context(snapshot, scope, cost.clone(), settings)?;
    let timeout_reason = || timeout_reason(settings.timeout);
    let planned = tokio::time::timeout_at(deadline, async {
        let plan = ctx
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|e| classify(sql, e))?;
        datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| {
                SqlError::NotAllowed(format!("{}; SQL here is read-only", root_message(&e)))
            })?;
        let frame = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| classify(sql, e))?;
        let columns: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let task = frame.task_ctx();
        let plan = frame
            .create_physical_plan()
            .await
            .map_err(|e| classify(sql, e))?;
        let plan = deadline::guard(plan, deadline.into_std()).map_err(|e| classify(sql, e))?;
        let stream = datafusion::physical_plan::execute_stream(plan, Arc::new(task))
            .map_err(|e| classify(sql, e))?;
        Ok::<_, SqlError>((columns, stream))
    })
    .await;
    let finish = |columns, rows, partial: Option<String>| {
        let mut cost = cost.lock().expect("cost lock").clone();
        cost.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        let partial = partial.or_else(|| cost.unreadable_reason());
        SqlAnswer {
            columns,
            rows,
            cost,
            partial,
        }
    };
    let (columns, mut stream) = match planned {
        Ok(result) => result?,
        Err(_) => return Ok(finish(Vec::new(), Vec::new(), Some(timeout_reason()))),
    };
    let max = settings.max_limit;
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut partial = None;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                partial = Some(timeout_reason());
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(_))) if tokio::time::Instant::now() >= deadline => {
                partial = Some(timeout_reason());
                break;
            }
            Ok(Some(Err(e))) => return Err(classify(sql, e)),
            Ok(Some(Ok(batch))) => {
                let room = max - rows.len();
                output::append_rows(&batch, &mut rows, room).map_err(|e| classify(sql, e))?;
                if batch.num_rows() > room {
                    partial = Some(format!(
                        "the answer has more than {max} rows (setting query.max_limit): add a LIMIT, \
                         narrow the WHERE clause or aggregate"
                    ));
                    break;
                }
            }
        }
    }
    // Dropping the stream cancels whatever still runs.
    drop(stream);
    Ok(finish(columns, rows, partial))
}

/// Why an answer cut at the deadline is partial.
fn timeout_reason(timeout: std::time::Duration) -> String {
    format!(
        "the statement ran longer than {timeout:?} (setting query.timeout); the rows so far are answered"
    )
}

/// The answer of a statement stopped at its deadline before it answered any row.
pub(crate) fn timed_out(timeout: std::time::Duration) -> SqlAnswer {
    SqlAnswer {
        columns: Vec::new(),
        rows: Vec::new(),
        cost: Cost {
            elapsed_ms: timeout.as_secs_f64() * 1e3,
            ..Cost::default()
        },
        partial: Some(timeout_reason(timeout)),
    }
}

/// Refuses a statement nested deeper, or with more set operations and joins, than the
/// limits allow, or with a literal regex over the size limit.
fn check_shape(statement: &Statement, limits: limits::ShapeLimits) -> Result<(), SqlError> {
    match statement {
        Statement::Statement(s) => limits::check(s.as_ref(), limits),
        Statement::Explain(e) => check_shape(&e.statement, limits),
        _ => Ok(()),
    }
}

/// Builds a session with the `logs` table, the field functions and the budgets.
fn context(
    snapshot: Arc<Snapshot>,
    scope: Filter,
    cost: Arc<Mutex<Cost>>,
    settings: &Settings,
) -> Result<SessionContext, SqlError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(settings.max_state_bytes.max(1 << 20), 1.0)
        // Nothing spills: a statement over its memory is refused, and no temporary files
        // appear beside the store.
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(|e| SqlError::Internal(e.strip_backtrace()))?;
    // One partition: operators run on one thread, and no repartitioning buffers a fast
    // input in memory (which, over the pool, would fail the statement rather than wait).
    // The scan still reads several blocks at once.
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_target_partitions(1);
    // A recursive CTE keeps every round's rows outside the memory pool, and its rounds are
    // unbounded: it is refused at planning.
    config.options_mut().execution.enable_recursive_ctes = false;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    ctx.register_table(TABLE, Arc::new(LogsTable::new(snapshot, scope, cost)))
        .map_err(|e| SqlError::Internal(e.strip_backtrace()))?;
    for f in udf::functions()
        .into_iter()
        .chain(bounded::functions(settings.max_state_bytes))
    {
        ctx.register_udf(f);
    }
    Ok(ctx)
}

/// How deep the parser lets parentheses, subqueries and unary operators nest (DataFusion's
/// default).
const PARSER_NESTING: usize = 50;

/// Parses the text as exactly one read-only statement.
fn parse_one(sql: &str) -> Result<Statement, SqlError> {
    if sql.trim().is_empty() {
        return Err(SqlError::NotAllowed(
            "the statement is empty: write a SELECT … FROM logs".into(),
        ));
    }
    let mut statements =
        DFParser::parse_sql_with_dialect(sql, &GenericDialect {}).map_err(|e| {
            if e.to_string().to_lowercase().contains("recursion limit") {
                return SqlError::NotAllowed(format!(
                    "the statement nests parentheses, subqueries or unary operators more than {} \
                 deep: flatten it",
                    PARSER_NESTING
                ));
            }
            classify(sql, e)
        })?;
    if statements.len() != 1 {
        return Err(SqlError::NotAllowed(format!(
            "one statement at a time: found {}",
            statements.len()
        )));
    }
    let statement = statements.pop_front().expect("one statement");
    check_read_only(&statement)?;
    Ok(statement)
}

/// Refuses statements other than `SELECT`/`WITH`/`VALUES` queries, `EXPLAIN` of one, and
/// `DESCRIBE`.
fn check_read_only(statement: &Statement) -> Result<(), SqlError> {
    let refused = |what: String| {
        SqlError::NotAllowed(format!(
            "only SELECT, WITH, EXPLAIN and DESCRIBE are allowed; {what} is refused: SQL here is read-only"
        ))
    };
    match statement {
        Statement::Statement(s) => match s.as_ref() {
            SqlStatement::Query(_) | SqlStatement::ExplainTable { .. } => Ok(()),
            SqlStatement::Explain { statement, .. } => {
                check_read_only(&Statement::Statement(statement.clone()))
            }
            other => Err(refused(keyword(&other.to_string()))),
        },
        Statement::Explain(e) => check_read_only(&e.statement),
        Statement::CreateExternalTable(_) => Err(refused("CREATE EXTERNAL TABLE".into())),
        Statement::CopyTo(_) => Err(refused("COPY".into())),
        Statement::Reset(_) => Err(refused("RESET".into())),
    }
}

/// The first word of a statement, upper-cased: what kind it is.
fn keyword(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or("the statement")
        .to_uppercase()
}

fn root_message(e: &DataFusionError) -> String {
    e.find_root().strip_backtrace()
}

/// Sorts an engine error into parse/plan errors (with their position), budget errors,
/// run-time errors and failures of the store or the engine.
fn classify(sql: &str, e: DataFusionError) -> SqlError {
    let position = e
        .diagnostic()
        .and_then(|d| d.span)
        .map(|s| (s.start.line, s.start.column))
        .or_else(|| line_column(&e.strip_backtrace()))
        .and_then(|(line, column)| byte_offset(sql, line, column));
    let message = e.strip_backtrace();
    // The parser names no place when the text ends too early: the end is the place.
    let position = position.or_else(|| message.contains("found: EOF").then_some(sql.len()));
    if message.contains("Recursive CTEs are not enabled") {
        return SqlError::NotAllowed(
            "recursive CTEs (WITH RECURSIVE) are refused: their rounds keep rows outside the \
             memory budget and have no bound; write the steps out, or use generate_series"
                .into(),
        );
    }
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => SqlError::Syntax { message, position },
        DataFusionError::ResourcesExhausted(_) => SqlError::Budget(format!(
            "{message}: the statement needs more memory than query.max_state_bytes allows; \
             narrow the time range, group by fewer values or add a LIMIT"
        )),
        DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => {
            SqlError::Execution(message)
        }
        // A regex that is not a literal of the statement, compiled while running.
        DataFusionError::External(inner) if inner.downcast_ref::<regex::Error>().is_some() => {
            SqlError::Execution(format!(
                "{message}: simplify the regex (fewer or smaller repetitions)"
            ))
        }
        _ => SqlError::Internal(message),
    }
}

/// Finds "Line: L, Column: C" in a parser message.
fn line_column(message: &str) -> Option<(u64, u64)> {
    let at = message.rfind("Line: ")?;
    let rest = &message[at + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// Turns a 1-based line and column (in characters) into a byte offset of the text.
fn byte_offset(text: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let mut start = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i as u64 + 1 == line {
            let offset = l
                .char_indices()
                .nth(column as usize - 1)
                .map_or(l.len(), |(o, _)| o);
            return Some(start + offset);
        }
        start += l.len() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_writes_and_several_statements() {
        for sql in [
            "DROP TABLE logs",
            "INSERT INTO logs VALUES (1)",
            "CREATE TABLE t AS SELECT 1",
            "SET datafusion.execution.batch_size = 1",
            "COPY logs TO '/tmp/x.csv'",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "SELECT 1; SELECT 2",
            "EXPLAIN DELETE FROM logs",
            "",
        ] {
            assert!(
                matches!(parse_one(sql), Err(SqlError::NotAllowed(_))),
                "{sql}"
            );
        }
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT * FROM logs",
            "DESCRIBE logs",
        ] {
            assert!(parse_one(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn positions_of_parse_errors() {
        match parse_one("SELECT * FORM logs") {
            Err(SqlError::Syntax { position, .. }) => assert_eq!(position, Some(9)),
            other => panic!("{other:?}"),
        }
        assert_eq!(byte_offset("ab\ncdé f", 2, 5), Some(8));
        assert_eq!(line_column("x at Line: 3, Column: 14"), Some((3, 14)));
    }
}
