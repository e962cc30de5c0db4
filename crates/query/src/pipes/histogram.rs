//! `histogram STEP [by field]`: counts per time bucket aligned to STEP, maybe per value.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use logyard_model::parse_duration;

use crate::cell::{Cell, FieldRef};
use crate::parse::Parser;
use crate::pipes::{Aggregator, Budget, Table};
use crate::QueryError;

/// `histogram STEP [by field]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Bucket width, nanoseconds; buckets start at multiples of it.
    pub step: i64,
    /// Count per value of this field too.
    pub by: Option<FieldRef>,
}

/// Bucket start → value of the `by` field (`None` without one, or when absent) → count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramCounts {
    /// The counts of the non-empty buckets.
    pub buckets: BTreeMap<i64, BTreeMap<Option<String>, u64>>,
}

impl Histogram {
    pub(crate) fn parse(p: &mut Parser<'_>) -> Result<Histogram, QueryError> {
        p.skip_ws();
        let at = p.pos;
        let text = p.name_word();
        if text.is_empty() {
            return Err(p.error("expected a step after 'histogram', as in 1h, 5m, 30s"));
        }
        let step = parse_duration(&text).map_err(|e| QueryError::Syntax {
            message: e.to_string(),
            position: at,
        })?;
        if step < 1_000_000 {
            return Err(QueryError::Syntax {
                message: format!("histogram step {text} is below the smallest step, 1ms"),
                position: at,
            });
        }
        let by = if p.pipe_keyword("by") {
            Some(p.field_ref("by")?)
        } else {
            None
        };
        Ok(Histogram { step, by })
    }

    /// Returns the table's columns: `t`, the `by` field, `count`.
    pub fn columns(&self) -> Vec<String> {
        let mut c = vec!["t".to_string()];
        c.extend(self.by.as_ref().map(|f| f.name.clone()));
        c.push("count".into());
        c
    }

    /// Returns the start of the bucket holding a time.
    pub fn bucket(&self, ts: i64) -> i64 {
        ts.div_euclid(self.step) * self.step
    }

    pub(crate) fn state(&self, range: Option<(i64, i64)>, max_buckets: usize) -> HistogramState {
        HistogramState {
            histogram: self.clone(),
            counts: HashMap::new(),
            range,
            max_buckets,
        }
    }
}

/// Formats a duration in its largest exact unit: `1h`, `90s`, `250ms`.
pub fn format_duration(ns: i64) -> String {
    const UNITS: [(&str, i64); 8] = [
        ("w", 7 * 86_400_000_000_000),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    for (unit, size) in UNITS {
        if ns != 0 && ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

impl fmt::Display for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "histogram {}", format_duration(self.step))?;
        if let Some(by) = &self.by {
            write!(f, " by {by}")?;
        }
        Ok(())
    }
}

/// The running state of a `histogram` pipe.
pub(crate) struct HistogramState {
    histogram: Histogram,
    counts: HashMap<(i64, Option<String>), (Cell, u64)>,
    range: Option<(i64, i64)>,
    max_buckets: usize,
}

impl HistogramState {
    /// Returns the histogram being counted.
    pub(crate) fn histogram(&self) -> &Histogram {
        &self.histogram
    }

    /// Adds `n` records of the bucket holding `ts` whose `by` value is `cell` at once (counted
    /// from block metadata).
    pub(crate) fn add(
        &mut self,
        ts: i64,
        cell: Cell,
        n: u64,
        budget: &mut Budget,
    ) -> Result<(), String> {
        if n == 0 {
            return Ok(());
        }
        let key = (self.histogram.bucket(ts), cell.key_text());
        if let Some(entry) = self.counts.get_mut(&key) {
            entry.1 += n;
            return Ok(());
        }
        budget.add_group(cell.size() * 2 + 64)?;
        self.counts.insert(key, (cell, n));
        Ok(())
    }

    /// Returns the counts of the non-empty buckets.
    pub(crate) fn counts(self) -> HistogramCounts {
        let mut out = HistogramCounts::default();
        for ((t, key), (_, n)) in self.counts {
            out.buckets.entry(t).or_default().insert(key, n);
        }
        out
    }
}

impl Aggregator for HistogramState {
    fn fields(&self) -> Vec<FieldRef> {
        self.histogram.by.iter().cloned().collect()
    }

    fn push(&mut self, cells: &[Cell], ts: i64, _: u64, budget: &mut Budget) -> Result<(), String> {
        let cell = cells.first().cloned().unwrap_or(Cell::Null);
        let key = (self.histogram.bucket(ts), cell.key_text());
        if let Some(entry) = self.counts.get_mut(&key) {
            entry.1 += 1;
            return Ok(());
        }
        budget.add_group(cell.size() * 2 + 64)?;
        self.counts.insert(key, (cell, 1));
        Ok(())
    }

    fn finish(self: Box<Self>) -> Table {
        let columns = self.histogram.columns();
        let h = self.histogram.clone();
        let range = self.range;
        let max_buckets = self.max_buckets;
        let by = h.by.is_some();
        let mut cells: BTreeMap<i64, Vec<(Cell, u64)>> = BTreeMap::new();
        for ((t, _), v) in self.counts {
            cells.entry(t).or_default().push(v);
        }
        // Without `by`, empty buckets are rows too, over the query's time range when it has
        // one (else between the first and the last bucket), unless that is too many.
        if !by {
            let span = match range {
                Some((s, e)) if e > s => Some((h.bucket(s), e)),
                _ => match (cells.keys().next(), cells.keys().next_back()) {
                    (Some(&a), Some(&b)) => Some((a, b.saturating_add(1))),
                    _ => None,
                },
            };
            if let Some((first, end)) = span {
                let n = (end.saturating_sub(first) as i128 + h.step as i128 - 1) / h.step as i128;
                if n <= max_buckets as i128 {
                    let mut t = first;
                    while t < end {
                        cells.entry(t).or_default();
                        t = t.saturating_add(h.step);
                    }
                }
            }
        }
        let mut rows = Vec::new();
        for (t, mut values) in cells {
            if by {
                values.sort_by(|a, b| a.0.total_cmp(&b.0));
                for (v, n) in values {
                    rows.push(vec![Cell::Time(t), v, Cell::Int(n as i64)]);
                }
            } else {
                let n: u64 = values.iter().map(|v| v.1).sum();
                rows.push(vec![Cell::Time(t), Cell::Int(n as i64)]);
            }
        }
        Table { columns, rows }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipes::tests::{error, round_trip};

    #[test]
    fn syntax() {
        round_trip("* | histogram 1h");
        round_trip("* | histogram 5m by level");
        round_trip("* | histogram 90s by \"user id\"");
        assert_eq!(
            crate::parse_query("* | histogram 1.5h", 0, &Default::default())
                .unwrap()
                .to_string(),
            "* | histogram 90m"
        );
        assert_eq!(error("* | histogram").1, 13);
        assert_eq!(error("* | histogram soon").1, 14);
        assert!(error("* | histogram 5ns").0.contains("smallest step"));
    }

    #[test]
    fn buckets_align_below_zero_too() {
        let h = Histogram { step: 10, by: None };
        assert_eq!(h.bucket(25), 20);
        assert_eq!(h.bucket(-5), -10);
        assert_eq!(format_duration(3_600_000_000_000), "1h");
        assert_eq!(format_duration(1_500_000_000), "1500ms");
    }
}
