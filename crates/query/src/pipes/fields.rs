//! `fields a, b`: keeps some fields of the records, or some columns of a table.

use std::fmt;

use crate::cell::FieldRef;
use crate::parse::Parser;
use crate::pipes::{write_column, Table};
use crate::QueryError;

/// `fields a, b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The fields or columns, in output order.
    pub fields: Vec<FieldRef>,
}

impl Fields {
    pub(crate) fn parse(p: &mut Parser<'_>) -> Result<Fields, QueryError> {
        let mut fields = vec![p.column_name("fields")?];
        loop {
            p.skip_ws();
            if p.rest().starts_with(',') {
                p.pos += 1;
                fields.push(p.column_name(",")?);
            } else {
                return Ok(Fields { fields });
            }
        }
    }

    /// Keeps the named columns of a table, in this pipe's order.
    pub(crate) fn apply(&self, table: Table) -> Table {
        let idx: Vec<Option<usize>> = self.fields.iter().map(|f| table.column(&f.name)).collect();
        Table {
            columns: self.fields.iter().map(|f| f.name.clone()).collect(),
            rows: table
                .rows
                .into_iter()
                .map(|row| {
                    idx.iter()
                        .map(|i| i.map_or(crate::Cell::Null, |i| row[i].clone()))
                        .collect()
                })
                .collect(),
        }
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fields ")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_column(f, &field.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::pipes::tests::{error, round_trip};

    #[test]
    fn syntax() {
        round_trip("* | fields timestamp, agent, message");
        round_trip("* | fields \"my field\", status");
        assert_eq!(error("* | fields").1, 10);
        assert_eq!(error("* | fields a,").1, 13);
    }
}
