//! Runs the queries of reports and analyses, keeping what they ran and cost.

use std::collections::BTreeMap;

use logyard_query::{parse_query, run, Answer, Cell, Cost, Filter, Settings, Table};
use logyard_store::Snapshot;

use crate::{ErrorPattern, ReportError};

/// Runs queries of the query language over one snapshot, keeping the text of each, the sum
/// of their costs, and a note of the answers cut by a budget.
pub(crate) struct Runner<'a> {
    snapshot: &'a Snapshot,
    within: &'a Filter,
    settings: &'a Settings,
    now: i64,
    /// The queries run, in order.
    pub queries: Vec<String>,
    /// What they cost together.
    pub cost: Cost,
    /// Queries whose answers were cut, with the reason.
    pub partial: Vec<String>,
}

impl<'a> Runner<'a> {
    /// Creates a runner whose every query is narrowed to `within` (`Filter::All`: every
    /// entry; a token's scope); `now` anchors relative times.
    pub fn new(
        snapshot: &'a Snapshot,
        within: &'a Filter,
        settings: &'a Settings,
        now: i64,
    ) -> Runner<'a> {
        Runner {
            snapshot,
            within,
            settings,
            now,
            queries: Vec::new(),
            cost: Cost::default(),
            partial: Vec::new(),
        }
    }

    /// Runs a query; a records answer holds at most `limit` records.
    pub fn run(&mut self, text: &str, limit: usize) -> Result<Answer, ReportError> {
        let err = |source| ReportError::Query {
            query: text.to_string(),
            source,
        };
        self.queries.push(text.to_string());
        let mut query = parse_query(text, self.now, self.settings).map_err(err)?;
        query.and_filter(self.within.clone());
        let out = run(self.snapshot, &query, self.settings, limit).map_err(err)?;
        let c = &mut self.cost;
        c.add_reads(&out.cost);
        c.blocks_skipped_by_time += out.cost.blocks_skipped_by_time;
        c.blocks_skipped_by_filter += out.cost.blocks_skipped_by_filter;
        c.elapsed_ms += out.cost.elapsed_ms;
        if let Some(reason) = out.partial {
            tracing::warn!(query = text, %reason, "a report query was cut short");
            self.partial.push(format!("{text}: {reason}"));
        }
        Ok(out.answer)
    }

    /// Runs a query that makes a table (no table: an empty one).
    pub fn table(&mut self, text: &str) -> Result<Table, ReportError> {
        match self.run(text, 0)? {
            Answer::Table(t) => Ok(t),
            Answer::Records { .. } => Ok(Table {
                columns: Vec::new(),
                rows: Vec::new(),
            }),
        }
    }

    /// A `stats count() by (x)` table as a map; a null key becomes `none`.
    pub fn counts(&mut self, text: &str, none: &str) -> Result<BTreeMap<String, u64>, ReportError> {
        let t = self.table(text)?;
        Ok(t.rows
            .iter()
            .filter_map(|row| {
                let n = row.last()?.as_f64()? as u64;
                let key = row
                    .first()?
                    .key_text()
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| none.to_string());
                (n > 0).then_some((key, n))
            })
            .fold(BTreeMap::new(), |mut m, (k, n)| {
                *m.entry(k).or_insert(0) += n;
                m
            }))
    }

    /// The single number of a `stats count()` query.
    pub fn count(&mut self, text: &str) -> Result<u64, ReportError> {
        let t = self.table(text)?;
        Ok(t.rows
            .first()
            .and_then(|r| r.last())
            .and_then(Cell::as_f64)
            .unwrap_or(0.0) as u64)
    }

    /// A `patterns` table as error patterns.
    pub fn patterns(&mut self, text: &str) -> Result<Vec<ErrorPattern>, ReportError> {
        let t = self.table(text)?;
        let (p, c, e) = (t.column("pattern"), t.column("count"), t.column("example"));
        Ok(t.rows
            .iter()
            .map(|row| {
                let text = |i: Option<usize>| match i.and_then(|i| row.get(i)) {
                    Some(Cell::Str(s)) => s.clone(),
                    Some(other) => other.key_text().unwrap_or_default(),
                    None => String::new(),
                };
                ErrorPattern {
                    pattern: text(p),
                    count: c
                        .and_then(|i| row.get(i))
                        .and_then(Cell::as_f64)
                        .unwrap_or(0.0) as u64,
                    example: text(e),
                }
            })
            .collect())
    }
}
