//! The threads SQL statements run on, apart from the threads that answer requests.
//!
//! A statement plans and runs on a runtime of its own ([`SqlPool`]), whose threads have
//! [`STACK_BYTES`] of stack: planning, optimizing and evaluating an expression recurse once
//! per level of nesting, and [`PoolConfig::max_depth`] levels must fit. At most
//! [`PoolConfig::concurrency`] statements run at once; another waits up to
//! [`PoolConfig::queue_timeout`] for a slot and is then refused with [`SqlError::Busy`]. A
//! statement keeps its slot until it has really stopped, so a statement that outlives its
//! deadline still counts. The caller is answered at the deadline whatever the statement does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use logyard_query::{Filter, Settings};
use logyard_store::Snapshot;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{oneshot, Semaphore};

use crate::{SqlAnswer, SqlError, SqlSettings};

/// Stack of each SQL thread. Only the pages a statement touches are taken from memory.
pub const STACK_BYTES: usize = 64 << 20;

/// How long past its deadline a caller waits for a statement to end on its own before it is
/// answered without it.
const GRACE: Duration = Duration::from_secs(1);

/// How the SQL threads are set up.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Threads that plan and run statements.
    pub threads: usize,
    /// Statements that may run at once.
    pub concurrency: usize,
    /// How long a statement waits for a free slot before it is refused.
    pub queue_timeout: Duration,
    /// Deepest nesting of expressions, and most set operations plus joins, of a statement
    /// ([`SqlSettings::max_depth`]).
    pub max_depth: usize,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            threads: 2,
            concurrency: 2,
            queue_timeout: Duration::from_secs(5),
            max_depth: crate::DEFAULT_MAX_DEPTH,
        }
    }
}

/// A runtime for SQL statements with a bound on how many run at once. The threads start with
/// the first statement.
pub struct SqlPool {
    config: PoolConfig,
    runtime: Mutex<Option<Runtime>>,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for SqlPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlPool")
            .field("config", &self.config)
            .finish()
    }
}

impl Default for SqlPool {
    fn default() -> SqlPool {
        SqlPool::new(PoolConfig::default())
    }
}

impl SqlPool {
    /// Creates a pool; its threads start with the first statement.
    pub fn new(config: PoolConfig) -> SqlPool {
        let config = PoolConfig {
            threads: config.threads.max(1),
            concurrency: config.concurrency.max(1),
            max_depth: config.max_depth.max(1),
            ..config
        };
        SqlPool {
            slots: Arc::new(Semaphore::new(config.concurrency)),
            config,
            runtime: Mutex::new(None),
        }
    }

    /// Returns the runtime's handle, starting it the first time.
    fn handle(&self) -> Result<Handle, SqlError> {
        let mut runtime = self.runtime.lock().expect("SQL runtime lock");
        if runtime.is_none() {
            let built = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.config.threads)
                // The scan reads blocks on blocking threads, a few per statement.
                .max_blocking_threads(self.config.threads.max(self.config.concurrency) * 8)
                .thread_stack_size(STACK_BYTES)
                .thread_name("logyard-sql")
                .enable_all()
                .build()
                .map_err(|e| SqlError::Internal(format!("cannot start the SQL threads: {e}")))?;
            *runtime = Some(built);
        }
        Ok(runtime.as_ref().expect("started").handle().clone())
    }

    /// Runs one statement over the rows `scope` keeps on the pool within the budgets of `query` and the pool's
    /// [`PoolConfig::max_depth`], answering by its deadline ([`Settings::timeout`]) at the
    /// latest.
    pub async fn execute(
        &self,
        snapshot: Arc<Snapshot>,
        scope: Filter,
        sql: String,
        query: Settings,
    ) -> Result<SqlAnswer, SqlError> {
        let settings = SqlSettings {
            query,
            max_depth: self.config.max_depth,
        };
        let slot = match tokio::time::timeout(
            self.config.queue_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(slot)) => slot,
            _ => {
                return Err(SqlError::Busy(format!(
                    "{} SQL statements are running (setting query.sql_concurrency) and none \
                     ended within {:?} (setting query.sql_queue_timeout): retry later",
                    self.config.concurrency, self.config.queue_timeout
                )))
            }
        };
        let handle = self.handle()?;
        let timeout = settings.query.timeout;
        // Dropping the sender (the caller gave up, or went away) stops the statement on its own
        // thread, where its deep structures are also dropped.
        let (cancel, cancelled) = oneshot::channel::<()>();
        let task = handle.spawn(async move {
            let _slot = slot;
            tokio::select! {
                answer = crate::execute(snapshot, scope, &sql, &settings) => answer,
                _ = cancelled => Ok(crate::timed_out(timeout)),
            }
        });
        let answer = match tokio::time::timeout(timeout + GRACE, task).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => Err(SqlError::Internal(format!(
                "the SQL engine failed while running the statement: {e}"
            ))),
            Err(_) => Ok(crate::timed_out(timeout)),
        };
        drop(cancel);
        answer
    }
}

impl Drop for SqlPool {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which an async caller may not do.
        if let Some(runtime) = self.runtime.get_mut().ok().and_then(Option::take) {
            runtime.shutdown_background();
        }
    }
}
