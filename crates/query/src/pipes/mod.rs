//! Pipes: what a query does with the records its filter selects.
//!
//! One file per pipe holds its syntax, its `Display` (the canonical text the parser reads
//! back) and its operator. [`Pipe`] is the closed set and [`NAMES`] the one table of names
//! that the parser, the error messages and the docs read.
//!
//! Pipes of two kinds chain: *record pipes* (`sort`, `limit`) order and cut the matching
//! records; *table pipes* (`stats`, `top`, `histogram`, `patterns`, `fields`) turn records
//! into a table, after which `sort`, `limit` and `fields` work on the table's columns.

mod fields;
mod histogram;
mod limit;
mod patterns;
mod sort;
mod stats;
mod top;

use std::fmt;
use std::time::Instant;

pub use fields::Fields;
pub(crate) use histogram::HistogramState;
pub use histogram::{format_duration, Histogram, HistogramCounts};
pub use limit::Limit;
pub use patterns::{template, Patterns};
pub use sort::Sort;
pub(crate) use stats::StatsState;
pub use stats::{Stat, StatFn, Stats};
pub use top::Top;

use crate::cell::{write_name, Cell, FieldRef};
use crate::parse::{is_word_char, Parser};
use crate::{QueryError, Settings};

/// One pipe of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Pipe {
    /// `stats count(), avg(f) … [by (fields)]`.
    Stats(Stats),
    /// `top N field`.
    Top(Top),
    /// `histogram STEP [by field]`.
    Histogram(Histogram),
    /// `sort by (fields) [desc]`.
    Sort(Sort),
    /// `limit N`.
    Limit(Limit),
    /// `fields a, b`.
    Fields(Fields),
    /// `patterns`.
    Patterns(Patterns),
}

/// Every pipe: its name and its syntax, in the order the docs list them.
pub const NAMES: &[(&str, &str)] = &[
    (
        "stats",
        "stats count(), avg(field) [as name] … [by (field, …)]",
    ),
    ("top", "top [N] field"),
    ("histogram", "histogram STEP [by field]"),
    ("patterns", "patterns"),
    ("sort", "sort by (field, …) [desc]"),
    ("limit", "limit N"),
    ("fields", "fields field, …"),
];

fn known_pipes() -> String {
    NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

impl Pipe {
    /// Parses one pipe after its `|`.
    pub(crate) fn parse(p: &mut Parser<'_>, settings: &Settings) -> Result<Pipe, QueryError> {
        p.skip_ws();
        let at = p.pos;
        let name = p.name_word();
        if name.is_empty() {
            return Err(p.error(format!(
                "expected a pipe name after '|': one of {}",
                known_pipes()
            )));
        }
        Ok(match name.as_str() {
            "stats" => Pipe::Stats(Stats::parse(p)?),
            "top" => Pipe::Top(Top::parse(p, settings)?),
            "histogram" => Pipe::Histogram(Histogram::parse(p)?),
            "patterns" => Pipe::Patterns(Patterns),
            "sort" => Pipe::Sort(Sort::parse(p)?),
            "limit" => Pipe::Limit(Limit::parse(p, settings)?),
            "fields" => Pipe::Fields(Fields::parse(p)?),
            other => {
                return Err(QueryError::Syntax {
                    message: format!("unknown pipe '{other}': expected one of {}", known_pipes()),
                    position: at,
                })
            }
        })
    }

    /// Returns the columns of the table the pipe makes, or `None` for a record pipe.
    pub fn output_columns(&self) -> Option<Vec<String>> {
        match self {
            Pipe::Stats(s) => Some(s.columns()),
            Pipe::Top(t) => Some(vec![t.field.name.clone(), "count".into()]),
            Pipe::Histogram(h) => Some(h.columns()),
            Pipe::Patterns(_) => Some(patterns::COLUMNS.iter().map(|c| c.to_string()).collect()),
            Pipe::Fields(f) => Some(f.fields.iter().map(|f| f.name.clone()).collect()),
            Pipe::Sort(_) | Pipe::Limit(_) => None,
        }
    }

    /// Returns whether the pipe aggregates records into groups.
    pub fn aggregates(&self) -> bool {
        matches!(
            self,
            Pipe::Stats(_) | Pipe::Top(_) | Pipe::Histogram(_) | Pipe::Patterns(_)
        )
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pipe::Stats(x) => x.fmt(f),
            Pipe::Top(x) => x.fmt(f),
            Pipe::Histogram(x) => x.fmt(f),
            Pipe::Sort(x) => x.fmt(f),
            Pipe::Limit(x) => x.fmt(f),
            Pipe::Fields(x) => x.fmt(f),
            Pipe::Patterns(x) => x.fmt(f),
        }
    }
}

/// A table: named columns and rows aligned with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// Returns the index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// The limits of one query's state and time; exceeding one cuts the answer, with a reason.
#[derive(Debug)]
pub(crate) struct Budget {
    max_groups: usize,
    max_bytes: usize,
    deadline: Instant,
    timeout_ms: u128,
    groups: usize,
    bytes: usize,
}

impl Budget {
    pub(crate) fn new(settings: &Settings, started: Instant) -> Budget {
        Budget {
            max_groups: settings.max_groups,
            max_bytes: settings.max_state_bytes,
            deadline: started + settings.timeout,
            timeout_ms: settings.timeout.as_millis(),
            groups: 0,
            bytes: 0,
        }
    }

    /// Accounts a new group holding `bytes`.
    pub(crate) fn add_group(&mut self, bytes: usize) -> Result<(), String> {
        self.groups += 1;
        if self.groups > self.max_groups {
            return Err(format!(
                "more than {} groups (setting query.max_groups): narrow the filter or group by fewer or coarser fields",
                self.max_groups
            ));
        }
        self.add_bytes(bytes)
    }

    /// Accounts more state bytes.
    pub(crate) fn add_bytes(&mut self, bytes: usize) -> Result<(), String> {
        self.bytes += bytes;
        if self.bytes > self.max_bytes {
            return Err(format!(
                "the query's state passed {} bytes (setting query.max_state_bytes): narrow the filter or the time range",
                self.max_bytes
            ));
        }
        Ok(())
    }

    /// Returns the deadline alone, for the threads of a parallel scan.
    pub(crate) fn deadline(&self) -> crate::parallel::Deadline {
        crate::parallel::Deadline {
            at: self.deadline,
            timeout_ms: self.timeout_ms,
        }
    }

    /// Fails once the deadline has passed.
    pub(crate) fn check_time(&self) -> Result<(), String> {
        if Instant::now() > self.deadline {
            return Err(format!(
                "the query ran past its deadline of {} ms (setting query.timeout): narrow the time range or the filter",
                self.timeout_ms
            ));
        }
        Ok(())
    }
}

/// A pipe that folds rows into groups, block by block.
pub(crate) trait Aggregator {
    /// The fields each row must carry, in the order [`Aggregator::push`] receives them.
    fn fields(&self) -> Vec<FieldRef>;
    /// Adds one row: its cells, timestamp and sequence number.
    fn push(
        &mut self,
        cells: &[Cell],
        ts: i64,
        seq: u64,
        budget: &mut Budget,
    ) -> Result<(), String>;
    /// Returns the table.
    fn finish(self: Box<Self>) -> Table;
}

impl Parser<'_> {
    /// Reads a bare name: word characters but not `,`.
    pub(crate) fn name_word(&mut self) -> String {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !is_word_char(c) || c == ',')
            .unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_string()
    }

    /// Reads a field name: a bare name or a quoted one.
    pub(crate) fn field_ref(&mut self, after: &str) -> Result<FieldRef, QueryError> {
        self.skip_ws();
        if self.rest().starts_with(['"', '\'']) {
            return Ok(FieldRef::new(self.string()?));
        }
        let name = self.name_word();
        if name.is_empty() {
            return Err(self.error(format!("expected a field name after '{after}'")));
        }
        Ok(FieldRef::new(name))
    }

    /// Reads a column name of a table: a field name, or a result name such as `count()` or
    /// `p95(response_time_ms)`.
    pub(crate) fn column_name(&mut self, after: &str) -> Result<FieldRef, QueryError> {
        let mut f = self.field_ref(after)?;
        if self.rest().starts_with('(') {
            let close = self
                .rest()
                .find(')')
                .ok_or_else(|| self.error(format!("expected ')' after '{}('", f.name)))?;
            f.name.push_str(&self.rest()[..=close]);
            self.pos += close + 1;
        }
        Ok(f)
    }

    /// Consumes a character or fails with what was expected where.
    pub(crate) fn expect_char(&mut self, c: char, after: &str) -> Result<(), QueryError> {
        self.skip_ws();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(format!("expected '{c}' after '{after}'")))
        }
    }

    /// Reads a whole number.
    pub(crate) fn count(&mut self, after: &str) -> Result<(usize, usize), QueryError> {
        self.skip_ws();
        let at = self.pos;
        let rest = self.rest();
        let len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error(format!("expected a whole number after '{after}'")));
        }
        let n = rest[..len]
            .parse::<usize>()
            .map_err(|_| QueryError::Syntax {
                message: format!("the number after '{after}' is too large"),
                position: at,
            })?;
        self.pos += len;
        Ok((n, at))
    }

    /// Reads a parenthesised or bare list of field names: `(a, b)` or `a`.
    pub(crate) fn field_list(
        &mut self,
        after: &str,
        column: bool,
    ) -> Result<Vec<FieldRef>, QueryError> {
        self.skip_ws();
        let read = |p: &mut Parser<'_>, after: &str| {
            if column {
                p.column_name(after)
            } else {
                p.field_ref(after)
            }
        };
        if !self.rest().starts_with('(') {
            return Ok(vec![read(self, after)?]);
        }
        self.pos += 1;
        let mut out = vec![read(self, &format!("{after} ("))?];
        loop {
            self.skip_ws();
            if self.rest().starts_with(',') {
                self.pos += 1;
                out.push(read(self, ",")?);
            } else {
                let last = out.last().map(|f| f.name.clone()).unwrap_or_default();
                self.expect_char(')', &last)?;
                return Ok(out);
            }
        }
    }

    /// Consumes a keyword if it comes next.
    pub(crate) fn pipe_keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        self.keyword(kw)
    }
}

/// Writes `(a, b)`.
pub(crate) fn write_list(f: &mut fmt::Formatter<'_>, fields: &[FieldRef]) -> fmt::Result {
    f.write_str("(")?;
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_column(f, &field.name)?;
    }
    f.write_str(")")
}

/// Writes a column name: result names such as `count()` bare, others as field names.
pub(crate) fn write_column(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if let Some(open) = name.find('(') {
        if name.ends_with(')') && name[..open].chars().all(is_word_char) && open > 0 {
            return f.write_str(name);
        }
    }
    write_name(f, name)
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{parse_query, QueryError, Settings};

    /// Asserts that a query parses and prints back exactly as written.
    pub(crate) fn round_trip(text: &str) {
        let q =
            parse_query(text, 0, &Settings::default()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(q.to_string(), text);
        let again = parse_query(&q.to_string(), 0, &Settings::default()).unwrap();
        assert_eq!(again, q, "{text}");
    }

    /// Returns the message and position of a query's error.
    pub(crate) fn error(text: &str) -> (String, usize) {
        match parse_query(text, 0, &Settings::default()) {
            Err(QueryError::Syntax { message, position }) => (message, position),
            other => panic!("{text}: expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn chains_round_trip() {
        for q in [
            "level:ERROR | patterns | sort by (count) desc | limit 10",
            "* | stats count() by (level)",
            "agent:web-* | top 5 agent | fields agent",
            "error | sort by (timestamp) | limit 3",
        ] {
            round_trip(q);
        }
    }

    #[test]
    fn every_name_parses_and_prints_its_name() {
        let samples = [
            "stats count()",
            "top 3 agent",
            "histogram 1h",
            "patterns",
            "sort by (timestamp)",
            "limit 1",
            "fields message",
        ];
        assert_eq!(samples.len(), super::NAMES.len());
        for ((name, _), sample) in super::NAMES.iter().zip(samples) {
            let q = parse_query(&format!("* | {sample}"), 0, &Settings::default()).unwrap();
            assert_eq!(q.pipes[0].to_string().split(' ').next(), Some(*name));
            round_trip(&format!("* | {sample}"));
        }
    }

    #[test]
    fn unknown_pipes_list_the_known_ones() {
        let (m, p) = error("error | frobnicate 3");
        assert_eq!(p, 8);
        assert!(m.contains("unknown pipe 'frobnicate'"), "{m}");
        assert!(m.contains("stats, top, histogram"), "{m}");
        assert_eq!(error("error |").1, 7);
        assert_eq!(error("a | limit 3 |").1, 13);
    }

    #[test]
    fn table_columns_are_checked() {
        let (m, p) = error("* | stats count() by (agent) | sort by (nope)");
        assert_eq!(p, 40, "{m}");
        assert!(m.contains("unknown column 'nope'"), "{m}");
        assert!(m.contains("agent, count()"), "{m}");
        let (m, _) = error("* | top 3 agent | stats count()");
        assert!(m.contains("cannot follow"), "{m}");
    }
}
