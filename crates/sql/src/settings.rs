//! `[query]` of `logyard.toml`: the budgets of one query (of the query language, given to
//! [`logyard_query::Settings`], and of a SQL statement) and the SQL engine's threads, with
//! their defaults. `docs/configuration.md` describes each key.

use std::num::NonZeroUsize;
use std::time::Duration;

use logyard_model::units::{positive_duration, Size};
use serde::Deserialize;

use crate::PoolConfig;

/// `[query]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySettings {
    /// Most groups a stats, top, histogram or patterns pipe may hold.
    pub max_groups: NonZeroUsize,
    /// Most bytes of state a query may hold.
    pub max_state_bytes: Size,
    /// How long a query may run before its answer is cut.
    #[serde(deserialize_with = "positive_duration")]
    pub timeout: Duration,
    /// The largest `limit N` and `top N`.
    pub max_limit: NonZeroUsize,
    /// Most buckets of a histogram.
    pub max_buckets: NonZeroUsize,
    /// Threads that plan and run SQL statements, apart from those that answer requests.
    pub sql_threads: NonZeroUsize,
    /// SQL statements that may run at once.
    pub sql_concurrency: NonZeroUsize,
    /// How long a SQL statement waits for a free slot before it is refused with a 503.
    #[serde(deserialize_with = "positive_duration")]
    pub sql_queue_timeout: Duration,
    /// Deepest nesting of a SQL statement's expressions, and most set operations plus joins.
    pub sql_max_depth: NonZeroUsize,
}

impl Default for QuerySettings {
    fn default() -> Self {
        let q = logyard_query::Settings::default();
        let p = PoolConfig::default();
        let nonzero = |n: usize| NonZeroUsize::new(n).expect("a default above zero");
        QuerySettings {
            max_groups: nonzero(q.max_groups),
            max_state_bytes: Size(q.max_state_bytes as u64),
            timeout: q.timeout,
            max_limit: nonzero(q.max_limit),
            max_buckets: nonzero(q.max_buckets),
            sql_threads: nonzero(p.threads),
            sql_concurrency: nonzero(p.concurrency),
            sql_queue_timeout: p.queue_timeout,
            sql_max_depth: nonzero(p.max_depth),
        }
    }
}

impl QuerySettings {
    /// Returns the budgets of one query of the query language; `max_regex_bytes` is
    /// `[limits]`'s.
    pub fn settings(&self, max_regex_bytes: usize) -> logyard_query::Settings {
        logyard_query::Settings {
            max_groups: self.max_groups.get(),
            max_state_bytes: usize::try_from(self.max_state_bytes.0).unwrap_or(usize::MAX),
            timeout: self.timeout,
            max_limit: self.max_limit.get(),
            max_buckets: self.max_buckets.get(),
            max_regex_bytes,
        }
    }

    /// Returns how the SQL threads are set up.
    pub fn pool(&self) -> PoolConfig {
        PoolConfig {
            threads: self.sql_threads.get(),
            concurrency: self.sql_concurrency.get(),
            queue_timeout: self.sql_queue_timeout,
            max_depth: self.sql_max_depth.get(),
        }
    }
}
