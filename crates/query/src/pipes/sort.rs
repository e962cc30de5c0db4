//! `sort by (fields) [desc]`: orders records or table rows.

use std::cmp::Ordering;
use std::fmt;

use crate::cell::{Cell, FieldRef};
use crate::parse::Parser;
use crate::pipes::{write_list, Table};
use crate::QueryError;

/// `sort by (a, b) [desc]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The keys, most significant first.
    pub by: Vec<FieldRef>,
    /// Largest first.
    pub desc: bool,
}

impl Sort {
    pub(crate) fn parse(p: &mut Parser<'_>) -> Result<Sort, QueryError> {
        if !p.pipe_keyword("by") {
            return Err(p.error("expected 'by' after 'sort'"));
        }
        let by = p.field_list("sort by", true)?;
        let desc = if p.pipe_keyword("desc") {
            true
        } else {
            p.pipe_keyword("asc");
            false
        };
        Ok(Sort { by, desc })
    }

    /// Compares two rows of key cells in this sort's direction; absent values (nulls) go
    /// last in either direction, so `sort by (response_time_ms) desc` starts with the slowest.
    pub(crate) fn cmp_keys(&self, a: &[Cell], b: &[Cell]) -> Ordering {
        a.iter()
            .zip(b)
            .map(|(x, y)| match (x, y) {
                (Cell::Null, Cell::Null) => Ordering::Equal,
                (Cell::Null, _) => Ordering::Greater,
                (_, Cell::Null) => Ordering::Less,
                _ if self.desc => x.total_cmp(y).reverse(),
                _ => x.total_cmp(y),
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// Sorts a table's rows (stable: equal rows keep their order).
    pub(crate) fn apply(&self, mut table: Table) -> Table {
        let idx: Vec<Option<usize>> = self.by.iter().map(|f| table.column(&f.name)).collect();
        let key = |row: &Vec<Cell>| -> Vec<Cell> {
            idx.iter()
                .map(|i| i.map_or(Cell::Null, |i| row[i].clone()))
                .collect()
        };
        table.rows.sort_by(|a, b| self.cmp_keys(&key(a), &key(b)));
        table
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sort by ")?;
        write_list(f, &self.by)?;
        if self.desc {
            f.write_str(" desc")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::pipes::tests::{error, round_trip};

    #[test]
    fn syntax() {
        round_trip("* | sort by (timestamp)");
        round_trip("* | sort by (agent, status) desc");
        round_trip("* | stats count() by (agent) | sort by (count()) desc");
        assert_eq!(error("* | sort (x)").0, "expected 'by' after 'sort'");
        let (m, p) = error("* | sort by (a");
        assert_eq!((m.as_str(), p), ("expected ')' after 'a'", 14));
    }
}
