//! `top N field`: the N most frequent values of a field, with their counts.

use std::collections::HashMap;
use std::fmt;

use crate::cell::{Cell, FieldRef};
use crate::parse::Parser;
use crate::pipes::{Aggregator, Budget, Table};
use crate::{QueryError, Settings};

/// `top N field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    /// How many values.
    pub n: usize,
    /// The field counted.
    pub field: FieldRef,
}

impl Top {
    pub(crate) fn parse(p: &mut Parser<'_>, settings: &Settings) -> Result<Top, QueryError> {
        p.skip_ws();
        let n = if p.rest().starts_with(|c: char| c.is_ascii_digit()) {
            let (n, at) = p.count("top")?;
            if n > settings.max_limit {
                return Err(QueryError::Syntax {
                    message: format!(
                        "top {n} is above the maximum {} (setting query.max_limit)",
                        settings.max_limit
                    ),
                    position: at,
                });
            }
            n
        } else {
            10
        };
        let field = p.field_ref("top")?;
        Ok(Top { n, field })
    }

    pub(crate) fn aggregator(&self) -> Box<dyn Aggregator> {
        Box::new(TopState {
            top: self.clone(),
            counts: HashMap::new(),
        })
    }
}

impl fmt::Display for Top {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "top {} {}", self.n, self.field)
    }
}

struct TopState {
    top: Top,
    counts: HashMap<Option<String>, (Cell, u64)>,
}

impl Aggregator for TopState {
    fn fields(&self) -> Vec<FieldRef> {
        vec![self.top.field.clone()]
    }

    fn push(&mut self, cells: &[Cell], _: i64, _: u64, budget: &mut Budget) -> Result<(), String> {
        let key = cells[0].key_text();
        if let Some(entry) = self.counts.get_mut(&key) {
            entry.1 += 1;
            return Ok(());
        }
        budget.add_group(cells[0].size() * 2 + 48)?;
        self.counts.insert(key, (cells[0].clone(), 1));
        Ok(())
    }

    fn finish(self: Box<Self>) -> Table {
        let mut rows: Vec<(Cell, u64)> = self.counts.into_values().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.total_cmp(&b.0)));
        rows.truncate(self.top.n);
        Table {
            columns: vec![self.top.field.name.clone(), "count".into()],
            rows: rows
                .into_iter()
                .map(|(v, c)| vec![v, Cell::Int(c as i64)])
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipes::tests::{error, round_trip};

    #[test]
    fn syntax() {
        round_trip("* | top 10 agent");
        round_trip("* | top 3 \"user id\"");
        assert_eq!(
            crate::parse_query("* | top agent", 0, &Default::default())
                .unwrap()
                .to_string(),
            "* | top 10 agent"
        );
        assert_eq!(error("* | top 5").0, "expected a field name after 'top'");
    }
}
