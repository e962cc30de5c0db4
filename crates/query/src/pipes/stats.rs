//! `stats f(), … [by (fields)]`: aggregates per group of records.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::cell::{Cell, FieldRef};
use crate::parse::Parser;
use crate::pipes::{write_list, Aggregator, Budget, Table};
use crate::QueryError;

/// A stats function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatFn {
    /// `count()`: rows; `count(f)`: rows where `f` is present.
    Count,
    /// `count_distinct(f)`: distinct values of `f`.
    CountDistinct,
    /// `sum(f)` of the numeric values.
    Sum,
    /// `avg(f)` of the numeric values.
    Avg,
    /// `min(f)`: the least value (numbers before strings).
    Min,
    /// `max(f)`: the greatest value.
    Max,
    /// `pNN(f)`: the NN-th percentile (nearest rank) of the numeric values.
    Percentile(u8),
}

/// Every stats function: its name, and whether it needs a field.
pub const FUNCTIONS: &[(&str, StatFn)] = &[
    ("count", StatFn::Count),
    ("count_distinct", StatFn::CountDistinct),
    ("sum", StatFn::Sum),
    ("avg", StatFn::Avg),
    ("min", StatFn::Min),
    ("max", StatFn::Max),
    ("p50", StatFn::Percentile(50)),
    ("p90", StatFn::Percentile(90)),
    ("p95", StatFn::Percentile(95)),
    ("p99", StatFn::Percentile(99)),
];

impl StatFn {
    /// Returns the function's name.
    pub fn name(self) -> &'static str {
        FUNCTIONS
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("count")
    }
}

/// One result of `stats`: a function of a field, maybe renamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The function.
    pub func: StatFn,
    /// Its field; `None` only for `count()`.
    pub field: Option<FieldRef>,
    /// The result's name when given with `as`.
    pub alias: Option<String>,
}

impl Stat {
    /// Returns the result column's name: the alias, or the function as written (`count()`).
    pub fn name(&self) -> String {
        match &self.alias {
            Some(a) => a.clone(),
            None => format!(
                "{}({})",
                self.func.name(),
                self.field.as_ref().map_or("", |f| f.name.as_str())
            ),
        }
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.func.name())?;
        if let Some(field) = &self.field {
            write!(f, "{field}")?;
        }
        f.write_str(")")?;
        if let Some(a) = &self.alias {
            f.write_str(" as ")?;
            crate::cell::write_name(f, a)?;
        }
        Ok(())
    }
}

/// `stats …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The results, in output order.
    pub stats: Vec<Stat>,
    /// The grouping fields; empty for one group of everything.
    pub by: Vec<FieldRef>,
}

impl Stats {
    pub(crate) fn parse(p: &mut Parser<'_>) -> Result<Stats, QueryError> {
        let mut stats = vec![parse_stat(p, "stats")?];
        loop {
            p.skip_ws();
            if p.rest().starts_with(',') {
                p.pos += 1;
                stats.push(parse_stat(p, ",")?);
            } else {
                break;
            }
        }
        let by = if p.pipe_keyword("by") {
            p.field_list("by", false)?
        } else {
            Vec::new()
        };
        Ok(Stats { stats, by })
    }

    /// Returns the table's columns: the grouping fields, then the results.
    pub fn columns(&self) -> Vec<String> {
        self.by
            .iter()
            .map(|f| f.name.clone())
            .chain(self.stats.iter().map(Stat::name))
            .collect()
    }

    /// Returns whether every result is `count()`, which block metadata can answer.
    pub fn counts_only(&self) -> bool {
        self.stats
            .iter()
            .all(|s| s.func == StatFn::Count && s.field.is_none())
    }

    pub(crate) fn state(&self) -> StatsState {
        StatsState {
            stats: self.clone(),
            groups: HashMap::new(),
        }
    }
}

fn parse_stat(p: &mut Parser<'_>, after: &str) -> Result<Stat, QueryError> {
    p.skip_ws();
    let at = p.pos;
    let name = p.name_word();
    if name.is_empty() {
        return Err(p.error(format!("expected a stats function after '{after}'")));
    }
    let Some(&(_, func)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = FUNCTIONS.iter().map(|(n, _)| *n).collect();
        return Err(QueryError::Syntax {
            message: format!(
                "unknown stats function '{name}': expected one of {}",
                known.join(", ")
            ),
            position: at,
        });
    };
    if !p.rest().starts_with('(') {
        return Err(p.error(format!("expected '(' after '{name}'")));
    }
    p.pos += 1;
    p.skip_ws();
    let field = if p.rest().starts_with(')') {
        None
    } else if p.rest().is_empty() {
        return Err(p.error(format!("expected ')' after '{name}('")));
    } else {
        Some(p.field_ref(&format!("{name}("))?)
    };
    let so_far = format!(
        "{name}({}",
        field.as_ref().map_or(String::new(), |f| f.to_string())
    );
    p.expect_char(')', &so_far)?;
    if field.is_none() && func != StatFn::Count {
        return Err(p.error(format!(
            "{name}() needs a field, as in {name}(response_time_ms)"
        )));
    }
    let alias = if p.pipe_keyword("as") {
        Some(p.field_ref("as")?.name)
    } else {
        None
    };
    Ok(Stat { func, field, alias })
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stats ")?;
        for (i, s) in self.stats.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            s.fmt(f)?;
        }
        if !self.by.is_empty() {
            f.write_str(" by ")?;
            write_list(f, &self.by)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Acc {
    Count(u64),
    Distinct(HashSet<String>),
    Sum(f64, u64),
    Min(Option<Cell>),
    Max(Option<Cell>),
    Values(Vec<f64>),
}

impl Acc {
    fn new(func: StatFn) -> Acc {
        match func {
            StatFn::Count => Acc::Count(0),
            StatFn::CountDistinct => Acc::Distinct(HashSet::new()),
            StatFn::Sum | StatFn::Avg => Acc::Sum(0.0, 0),
            StatFn::Min => Acc::Min(None),
            StatFn::Max => Acc::Max(None),
            StatFn::Percentile(_) => Acc::Values(Vec::new()),
        }
    }

    /// Adds a value; returns the bytes of state it added.
    fn add(&mut self, cell: Option<&Cell>) -> usize {
        match (self, cell) {
            (Acc::Count(n), None) => *n += 1,
            (Acc::Count(n), Some(c)) => *n += u64::from(*c != Cell::Null),
            (_, None | Some(Cell::Null)) => {}
            (Acc::Distinct(set), Some(c)) => {
                let text = c.to_string();
                let size = text.len() + 32;
                if set.insert(text) {
                    return size;
                }
            }
            (Acc::Sum(sum, n), Some(c)) => {
                if let Some(x) = c.as_f64() {
                    *sum += x;
                    *n += 1;
                }
            }
            (Acc::Min(best), Some(c)) => {
                if best.as_ref().is_none_or(|b| c.total_cmp(b).is_lt()) {
                    *best = Some(c.clone());
                }
            }
            (Acc::Max(best), Some(c)) => {
                if best.as_ref().is_none_or(|b| c.total_cmp(b).is_gt()) {
                    *best = Some(c.clone());
                }
            }
            (Acc::Values(v), Some(c)) => {
                if let Some(x) = c.as_f64() {
                    v.push(x);
                    return 8;
                }
            }
        }
        0
    }

    fn result(&mut self, func: StatFn) -> Cell {
        match (self, func) {
            (Acc::Count(n), _) => Cell::Int(*n as i64),
            (Acc::Distinct(s), _) => Cell::Int(s.len() as i64),
            (Acc::Sum(_, 0), _) => Cell::Null,
            (Acc::Sum(sum, _), StatFn::Sum) => Cell::number(*sum),
            (Acc::Sum(sum, n), _) => Cell::Float(*sum / *n as f64),
            (Acc::Min(c) | Acc::Max(c), _) => c.clone().unwrap_or(Cell::Null),
            (Acc::Values(v), StatFn::Percentile(p)) => percentile(v, p),
            (Acc::Values(_), _) => Cell::Null,
        }
    }
}

/// Returns the `p`-th percentile by nearest rank: the smallest value with at least `p`% of
/// the values at or below it.
pub fn percentile(values: &mut [f64], p: u8) -> Cell {
    if values.is_empty() {
        return Cell::Null;
    }
    values.sort_by(f64::total_cmp);
    let rank = (f64::from(p) / 100.0 * values.len() as f64).ceil() as usize;
    Cell::number(values[rank.clamp(1, values.len()) - 1])
}

struct Group {
    key: Vec<Cell>,
    accs: Vec<Acc>,
}

/// The running state of a `stats` pipe.
pub(crate) struct StatsState {
    stats: Stats,
    groups: HashMap<Vec<Option<String>>, Group>,
}

impl StatsState {
    fn group(&mut self, key_cells: &[Cell], budget: &mut Budget) -> Result<&mut Group, String> {
        let key: Vec<Option<String>> = key_cells.iter().map(Cell::key_text).collect();
        if !self.groups.contains_key(&key) {
            let bytes = key_cells.iter().map(|c| c.size() * 2).sum::<usize>()
                + 48 * self.stats.stats.len()
                + 64;
            budget.add_group(bytes)?;
            let accs = self.stats.stats.iter().map(|s| Acc::new(s.func)).collect();
            self.groups.insert(
                key.clone(),
                Group {
                    key: key_cells.to_vec(),
                    accs,
                },
            );
        }
        Ok(self.groups.get_mut(&key).expect("inserted"))
    }

    /// Adds `n` rows to a group when every result is `count()`.
    pub(crate) fn add_count(
        &mut self,
        key_cells: &[Cell],
        n: u64,
        budget: &mut Budget,
    ) -> Result<(), String> {
        debug_assert!(self.stats.counts_only());
        let group = self.group(key_cells, budget)?;
        for acc in &mut group.accs {
            if let Acc::Count(c) = acc {
                *c += n;
            }
        }
        Ok(())
    }
}

impl Aggregator for StatsState {
    fn fields(&self) -> Vec<FieldRef> {
        self.stats
            .by
            .iter()
            .cloned()
            .chain(self.stats.stats.iter().filter_map(|s| s.field.clone()))
            .collect()
    }

    fn push(&mut self, cells: &[Cell], _: i64, _: u64, budget: &mut Budget) -> Result<(), String> {
        let nby = self.stats.by.len();
        let funcs: Vec<bool> = self.stats.stats.iter().map(|s| s.field.is_some()).collect();
        let group = self.group(&cells[..nby], budget)?;
        let mut next = nby;
        let mut added = 0;
        for (acc, has_field) in group.accs.iter_mut().zip(funcs) {
            let cell = if has_field {
                next += 1;
                Some(&cells[next - 1])
            } else {
                None
            };
            added += acc.add(cell);
        }
        if added > 0 {
            budget.add_bytes(added)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Table {
        let StatsState { stats, mut groups } = *self;
        if groups.is_empty() && stats.by.is_empty() {
            groups.insert(
                Vec::new(),
                Group {
                    key: Vec::new(),
                    accs: stats.stats.iter().map(|s| Acc::new(s.func)).collect(),
                },
            );
        }
        let mut rows: Vec<Vec<Cell>> = groups
            .into_values()
            .map(|mut g| {
                let mut row = g.key;
                for (acc, s) in g.accs.iter_mut().zip(&stats.stats) {
                    row.push(acc.result(s.func));
                }
                row
            })
            .collect();
        // Groups in a stable order: by their key values.
        let nby = stats.by.len();
        rows.sort_by(|a, b| {
            a[..nby]
                .iter()
                .zip(&b[..nby])
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Table {
            columns: stats.columns(),
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipes::tests::{error, round_trip};

    #[test]
    fn syntax() {
        round_trip("* | stats count()");
        round_trip("* | stats count(), avg(response_time_ms), p95(response_time_ms) by (agent)");
        round_trip("* | stats count_distinct(user) as users, sum(bytes) by (agent, level)");
        round_trip("* | stats min(_time), max(timestamp), p50(x), p90(x), p99(x), count(user)");
        assert_eq!(
            crate::parse_query("* | stats count() by agent", 0, &Default::default())
                .unwrap()
                .to_string(),
            "* | stats count() by (agent)"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            error("level:ERROR | stats count("),
            ("expected ')' after 'count('".to_string(), 26)
        );
        let (m, p) = error("* | stats cnt()");
        assert_eq!(p, 10);
        assert!(
            m.starts_with("unknown stats function 'cnt': expected one of count, count_distinct"),
            "{m}"
        );
        assert_eq!(
            error("* | stats avg()").0,
            "avg() needs a field, as in avg(response_time_ms)"
        );
        assert_eq!(error("* | stats count").0, "expected '(' after 'count'");
        assert_eq!(error("* | stats count() by (a,").1, 24);
        assert_eq!(error("* | stats count() by (a").0, "expected ')' after 'a'");
        assert_eq!(
            error("* | stats").0,
            "expected a stats function after 'stats'"
        );
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50), Cell::Int(50));
        assert_eq!(percentile(&mut v, 99), Cell::Int(99));
        assert_eq!(percentile(&mut [7.5], 95), Cell::Float(7.5));
        assert_eq!(percentile(&mut [], 95), Cell::Null);
    }
}
