//! A whole query: a filter, then pipes; its settings; and its canonical text.

use std::fmt;
use std::time::Duration;

use crate::parse::Parser;
use crate::pipes::{Pipe, NAMES};
use crate::{Filter, Order, QueryError};

/// Limits of every query; each is a setting of `[query]` (and `[limits]` for regexes).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Most groups a `stats`, `top`, `histogram` or `patterns` pipe may hold.
    pub max_groups: usize,
    /// Most bytes of state (groups, distinct values, percentile samples) a query may hold.
    pub max_state_bytes: usize,
    /// How long a query may run before its answer is cut.
    pub timeout: Duration,
    /// The largest `limit N` and `top N`.
    pub max_limit: usize,
    /// Most buckets a histogram may have.
    pub max_buckets: usize,
    /// Largest compiled regex, bytes.
    pub max_regex_bytes: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_groups: 100_000,
            max_state_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
            max_limit: 10_000,
            max_buckets: 10_000,
            max_regex_bytes: 1 << 20,
        }
    }
}

/// A parsed query: the filter, its text, and the pipes.
#[derive(Debug, Clone)]
pub struct Query {
    /// Which records.
    pub filter: Filter,
    filter_text: String,
    /// What to do with them, in order.
    pub pipes: Vec<Pipe>,
    /// Byte offset of each pipe's name, for errors found while running.
    pub(crate) positions: Vec<usize>,
    /// The order of the records when no `sort` pipe gives one (newest first unless set).
    pub order: Order,
}

impl PartialEq for Query {
    fn eq(&self, other: &Query) -> bool {
        self.filter_text == other.filter_text && self.pipes == other.pipes
    }
}

impl Query {
    /// Returns a query of a filter built in code (pipes may be pushed onto it). Such a
    /// filter has no query text: the query prints as `*` followed by its pipes.
    pub fn of_filter(filter: Filter) -> Query {
        Query {
            filter,
            filter_text: "*".into(),
            pipes: Vec::new(),
            positions: Vec::new(),
            order: Order::NewestFirst,
        }
    }

    /// Narrows the filter with another one (a time range, a paging cursor).
    pub fn and_filter(&mut self, extra: Filter) {
        let filter = std::mem::replace(&mut self.filter, Filter::All);
        self.filter = Filter::and(vec![filter, extra]);
    }

    /// Returns the byte offset of a pipe's name in the parsed text.
    pub fn pipe_position(&self, index: usize) -> Option<usize> {
        self.positions.get(index).copied()
    }

    /// Returns whether the answer is a table (a `stats`, `top`, `histogram`, `patterns` or
    /// `fields` pipe), not records.
    pub fn is_table(&self) -> bool {
        self.pipes.iter().any(|p| p.output_columns().is_some())
    }

    /// Returns the columns of the table the query makes, if it makes one.
    pub fn columns(&self) -> Option<Vec<String>> {
        self.pipes
            .iter()
            .fold(None, |cols, p| p.output_columns().or(cols))
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.filter_text)?;
        for pipe in &self.pipes {
            write!(f, " | {pipe}")?;
        }
        Ok(())
    }
}

/// Parses a query: a filter, then `| pipe`s. `now` anchors relative times.
///
/// The text of [`Query`]'s `Display` parses back to the same query.
pub fn parse_query(text: &str, now: i64, settings: &Settings) -> Result<Query, QueryError> {
    let mut p = Parser {
        text,
        pos: 0,
        now,
        max_regex_bytes: settings.max_regex_bytes,
        depth: 0,
    };
    p.skip_ws();
    let filter = if p.rest().is_empty() || p.rest().starts_with('|') {
        Filter::All
    } else {
        p.or()?
    };
    p.skip_ws();
    let filter_end = p.pos;
    let filter_text = match text[..filter_end].trim() {
        "" => "*".to_string(),
        t => t.to_string(),
    };
    let mut pipes: Vec<Pipe> = Vec::new();
    let mut positions = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    loop {
        p.skip_ws();
        if p.rest().is_empty() {
            break;
        }
        if !p.rest().starts_with('|') {
            if p.rest().starts_with(')') {
                return Err(p.error("unexpected ')': no '(' opens it"));
            }
            return Err(p.error(if pipes.is_empty() {
                "expected AND, OR, '|' or the end of the query"
            } else {
                "expected '|' or the end of the query"
            }));
        }
        p.pos += 1;
        p.skip_ws();
        let at = p.pos;
        let pipe = Pipe::parse(&mut p, settings)?;
        check_columns(text, at, p.pos, &pipe, &mut columns, pipes.last())?;
        pipes.push(pipe);
        positions.push(at);
    }
    Ok(Query {
        filter,
        filter_text,
        pipes,
        positions,
        order: Order::NewestFirst,
    })
}

/// Checks that a pipe's column names exist in the table before it, and tracks the columns.
fn check_columns(
    text: &str,
    at: usize,
    end: usize,
    pipe: &Pipe,
    columns: &mut Option<Vec<String>>,
    previous: Option<&Pipe>,
) -> Result<(), QueryError> {
    let name_of = |p: &Pipe| p.to_string().split(' ').next().unwrap_or("").to_string();
    if let Some(cols) = columns.as_ref() {
        if pipe.aggregates() {
            return Err(QueryError::Syntax {
                message: format!(
                    "'{}' cannot follow a table pipe ('{}'): put it before, or drop the other",
                    name_of(pipe),
                    previous.map(name_of).unwrap_or_default()
                ),
                position: at,
            });
        }
        let names: Vec<&str> = match pipe {
            Pipe::Sort(s) => s.by.iter().map(|f| f.name.as_str()).collect(),
            Pipe::Fields(f) => f.fields.iter().map(|f| f.name.as_str()).collect(),
            _ => Vec::new(),
        };
        for name in names {
            if !cols.iter().any(|c| c == name) {
                let offset = text[at..end].find(name).map_or(at, |o| at + o);
                return Err(QueryError::Syntax {
                    message: format!("unknown column '{name}': the table has {}", cols.join(", ")),
                    position: offset,
                });
            }
        }
    }
    if let Some(out) = pipe.output_columns() {
        *columns = Some(out);
    }
    Ok(())
}

/// Returns the names of the pipes, for completion and help.
pub fn pipe_names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().map(|(n, _)| *n)
}
