//! Turns the filters DataFusion pushes into the `logs` scan into a store [`Filter`].
//!
//! The filter built here is *implied* by the SQL predicate: every row the predicate keeps,
//! the filter keeps too. So the scan may use it to skip blocks and drop rows early, and
//! DataFusion still applies the exact predicate afterwards (the pushdown is `Inexact`). What
//! cannot be translated becomes [`Filter::All`], which is implied by anything.
//!
//! - `timestamp` / `_time` compared with a time (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`):
//!   a time range, which skips blocks by their min/max time;
//! - `agent`, `host`, `source` equal to a text (`=`, `IN`), or `LIKE 'prefix%'`,
//!   `starts_with(agent, 'prefix')`: a label filter, which the token filter and the blocks'
//!   agent counts can rule out;
//! - `level = 'ERROR'` (`IN` too): a level filter, which the blocks' level counts rule out;
//! - `message = '…'`, `message LIKE '%…%'`, `contains(message, '…')`: the words the text
//!   must hold whole, looked up in each block's token filter (case-sensitive, so not for
//!   `ILIKE`).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::{InList, Like, ScalarFunction};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use logyard_model::schema::{self, Column};
use logyard_model::{parse_time, Level};
use logyard_query::{Filter, LabelColumn, LevelOp};

/// The columns a pushed filter may name, by what the store can do with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Time,
    Label(LabelColumn),
    Level,
    Message,
}

fn column_of(e: &Expr) -> Option<Col> {
    match e {
        Expr::Column(c) => match schema::column_named(&c.name) {
            Some(Column::Timestamp) => Some(Col::Time),
            Some(Column::Agent) => Some(Col::Label(LabelColumn::Agent)),
            Some(Column::Host) => Some(Col::Label(LabelColumn::Host)),
            Some(Column::Source) => Some(Col::Label(LabelColumn::Source)),
            Some(Column::Level) => Some(Col::Level),
            Some(Column::Message) => Some(Col::Message),
            Some(Column::Seq | Column::Raw | Column::Fields) | None => None,
        },
        // A cast of a text column to text (a dictionary to plain text) keeps its values.
        Expr::Cast(c) if is_text(c.field.data_type()) => {
            column_of(&c.expr).filter(|c| *c != Col::Time)
        }
        Expr::Alias(a) => column_of(&a.expr),
        _ => None,
    }
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}

fn text_of(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(v, _) => scalar_text(v),
        Expr::Cast(c) => text_of(&c.expr),
        _ => None,
    }
}

fn scalar_text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s),
        ScalarValue::Dictionary(_, inner) => scalar_text(inner),
        _ => None,
    }
}

/// Returns the time of a literal in ns since the epoch (timestamps of any unit, dates, or
/// RFC 3339 text).
fn time_of(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampNanosecond(Some(t), _) => Some(*t),
            ScalarValue::TimestampMicrosecond(Some(t), _) => t.checked_mul(1_000),
            ScalarValue::TimestampMillisecond(Some(t), _) => t.checked_mul(1_000_000),
            ScalarValue::TimestampSecond(Some(t), _) => t.checked_mul(1_000_000_000),
            ScalarValue::Date32(Some(d)) => i64::from(*d).checked_mul(86_400_000_000_000),
            ScalarValue::Date64(Some(ms)) => ms.checked_mul(1_000_000),
            other => scalar_text(other).and_then(|s| parse_time(s, 0).ok()),
        },
        Expr::Cast(c) => time_of(&c.expr),
        _ => None,
    }
}

/// Returns the store filter implied by one pushed SQL filter ([`Filter::All`] when none).
pub fn translate(e: &Expr) -> Filter {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => Filter::and(vec![translate(left), translate(right)]),
            Operator::Or => {
                let (l, r) = (translate(left), translate(right));
                if matches!(l, Filter::All) || matches!(r, Filter::All) {
                    Filter::All
                } else {
                    Filter::Or(vec![l, r])
                }
            }
            Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
                match (column_of(left), column_of(right)) {
                    (Some(c), None) => compare(c, *op, right),
                    (None, Some(c)) => match op.swap() {
                        Some(op) => compare(c, op, left),
                        None => Filter::All,
                    },
                    _ => Filter::All,
                }
            }
            _ => Filter::All,
        },
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => match column_of(expr) {
            Some(Col::Time) => Filter::and(vec![
                compare(Col::Time, Operator::GtEq, low),
                compare(Col::Time, Operator::LtEq, high),
            ]),
            _ => Filter::All,
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => match column_of(expr) {
            Some(c @ (Col::Label(_) | Col::Level)) if !list.is_empty() => {
                let parts: Vec<Filter> = list.iter().map(|v| compare(c, Operator::Eq, v)).collect();
                if parts.iter().any(|p| matches!(p, Filter::All)) {
                    Filter::All
                } else if parts.len() == 1 {
                    parts.into_iter().next().unwrap_or(Filter::All)
                } else {
                    Filter::Or(parts)
                }
            }
            _ => Filter::All,
        },
        Expr::Like(Like {
            negated: false,
            expr,
            pattern,
            escape_char: None,
            case_insensitive: false,
        }) => match (column_of(expr), text_of(pattern)) {
            (Some(Col::Label(column)), Some(p)) => like_label(column, p),
            (Some(Col::Message), Some(p)) => like_words(p),
            _ => Filter::All,
        },
        Expr::ScalarFunction(ScalarFunction { func, args }) if args.len() == 2 => {
            match (func.name(), column_of(&args[0]), text_of(&args[1])) {
                ("starts_with", Some(Col::Label(column)), Some(p)) => Filter::Label {
                    column,
                    value: p.to_string(),
                    prefix: true,
                },
                ("contains", Some(Col::Message), Some(p)) => inner_words(p),
                _ => Filter::All,
            }
        }
        _ => Filter::All,
    }
}

/// `column op literal`.
fn compare(c: Col, op: Operator, value: &Expr) -> Filter {
    match c {
        Col::Time => {
            let Some(t) = time_of(value) else {
                return Filter::All;
            };
            let after = t.checked_add(1);
            let (start, end) = match op {
                Operator::Eq => (Some(t), after),
                Operator::Gt => (after, None),
                Operator::GtEq => (Some(t), None),
                Operator::Lt => (None, Some(t)),
                Operator::LtEq => (None, after),
                _ => return Filter::All,
            };
            if start.is_none() && end.is_none() {
                return Filter::All;
            }
            Filter::Time { start, end }
        }
        Col::Label(column) if op == Operator::Eq => match text_of(value) {
            Some(v) => Filter::Label {
                column,
                value: v.to_string(),
                prefix: false,
            },
            None => Filter::All,
        },
        // The stored names are the canonical ones; another spelling matches no row in SQL,
        // so its canonical level is still a superset.
        Col::Level if op == Operator::Eq => match text_of(value).and_then(Level::normalize) {
            Some(l) => Filter::Level(LevelOp::Eq, l),
            None => Filter::All,
        },
        Col::Message if op == Operator::Eq => match text_of(value) {
            // The whole message: every token of the text is whole.
            Some(v) => words_of(v, true, true),
            None => Filter::All,
        },
        _ => Filter::All,
    }
}

/// `label LIKE p`: exact without wildcards, a prefix for `text%`.
fn like_label(column: LabelColumn, pattern: &str) -> Filter {
    if pattern.contains('\\') {
        return Filter::All;
    }
    let wild = |c: char| c == '%' || c == '_';
    match pattern.find(wild) {
        None => Filter::Label {
            column,
            value: pattern.to_string(),
            prefix: false,
        },
        Some(i) if i > 0 && pattern[i..].chars().all(|c| c == '%') => Filter::Label {
            column,
            value: pattern[..i].to_string(),
            prefix: true,
        },
        _ => Filter::All,
    }
}

/// `message LIKE p`: the words whole in each literal part of the pattern.
fn like_words(pattern: &str) -> Filter {
    if pattern.contains('\\') {
        return Filter::All;
    }
    let parts: Vec<&str> = pattern.split(['%', '_']).collect();
    let last = parts.len() - 1;
    Filter::and(
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| words_of(p, i == 0, i == last))
            .collect(),
    )
}

/// `contains(message, text)`: the words whole inside the text.
fn inner_words(text: &str) -> Filter {
    words_of(text, false, false)
}

/// The span of the tokens of `text` that are certainly whole words of a message holding it:
/// a token touching an end of the text may be part of a longer one, unless that end is an
/// end of the message (`anchored_start`, `anchored_end`).
fn words_of(text: &str, anchored_start: bool, anchored_end: bool) -> Filter {
    let spans = token_spans(text);
    let whole: Vec<(usize, usize)> = spans
        .into_iter()
        .filter(|&(s, e)| (anchored_start || s > 0) && (anchored_end || e < text.len()))
        .collect();
    match (whole.first(), whole.last()) {
        (Some(&(s, _)), Some(&(_, e))) => Filter::Text(text[s..e].to_string()),
        _ => Filter::All,
    }
}

/// Byte ranges of the tokens of a text (as `logyard_model::tokenize` cuts them).
fn token_spans(text: &str) -> Vec<(usize, usize)> {
    let base = text.as_ptr() as usize;
    logyard_model::tokenize(text)
        .map(|t| {
            let s = t.as_ptr() as usize - base;
            (s, s + t.len())
        })
        .collect()
}

/// Returns whether a filter is worth pushing (it is not [`Filter::All`]).
pub fn is_useful(f: &Filter) -> bool {
    !matches!(f, Filter::All)
}

/// Returns the part of a filter worth evaluating on rows: time ranges, levels and labels
/// read small columns; the word filters only serve to skip blocks (DataFusion checks the
/// SQL predicate on the rows anyway), so they become [`Filter::All`].
pub fn row_filter(f: &Filter) -> Filter {
    match f {
        Filter::Text(_) => Filter::All,
        Filter::And(parts) => Filter::and(parts.iter().map(row_filter).collect()),
        Filter::Or(parts) => {
            let parts: Vec<Filter> = parts.iter().map(row_filter).collect();
            if parts.iter().any(|p| matches!(p, Filter::All)) {
                Filter::All
            } else {
                Filter::Or(parts)
            }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: &Filter) -> String {
        format!("{f:?}")
    }

    #[test]
    fn like_words_keeps_only_whole_tokens() {
        assert_eq!(
            text(&like_words("%connection refused by peer%")),
            text(&Filter::Text("refused by".into()))
        );
        assert!(matches!(like_words("%abc%"), Filter::All));
        assert_eq!(
            text(&like_words("disk full%")),
            text(&Filter::Text("disk".into()))
        );
        assert!(matches!(like_words("%a\\%b%"), Filter::All));
        assert_eq!(
            text(&compare(
                Col::Message,
                Operator::Eq,
                &Expr::Literal(ScalarValue::Utf8(Some("NEEDLE-42 x".into())), None)
            )),
            text(&Filter::Text("NEEDLE-42 x".into()))
        );
    }

    #[test]
    fn labels_and_prefixes() {
        assert!(matches!(
            like_label(LabelColumn::Agent, "web-%"),
            Filter::Label { prefix: true, .. }
        ));
        assert!(matches!(
            like_label(LabelColumn::Agent, "web"),
            Filter::Label { prefix: false, .. }
        ));
        assert!(matches!(
            like_label(LabelColumn::Agent, "%web"),
            Filter::All
        ));
        assert!(matches!(
            like_label(LabelColumn::Agent, "w_b%"),
            Filter::All
        ));
    }

    #[test]
    fn translates_comparisons_lists_and_functions() {
        use datafusion::prelude::{col, lit};
        let t = |v| {
            lit(ScalarValue::TimestampNanosecond(
                Some(v),
                Some("UTC".into()),
            ))
        };
        let f = translate(&col("timestamp").gt_eq(t(5)).and(col("_time").lt(t(9))));
        assert_eq!(time_bounds(&f), (Some(5), Some(9)));
        // Reversed operands and `>`.
        let f = translate(&t(5).lt(col("timestamp")));
        assert_eq!(time_bounds(&f), (Some(6), None));
        assert!(matches!(
            translate(&col("agent").in_list(vec![lit("a"), lit("b")], false)),
            Filter::Or(_)
        ));
        assert!(matches!(
            translate(&col("agent").in_list(vec![lit("a")], true)),
            Filter::All
        ));
        assert!(matches!(
            translate(&col("level").eq(lit("error"))),
            Filter::Level(LevelOp::Eq, Level::Error)
        ));
        // An OR with an untranslatable side implies nothing.
        assert!(matches!(
            translate(&col("agent").eq(lit("a")).or(col("fields").eq(lit("x")))),
            Filter::All
        ));
        assert!(matches!(
            translate(&col("message").not_eq(lit("x"))),
            Filter::All
        ));
        // A cast to another type may change what compares equal: not pushed.
        let cast = |t| {
            Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(col("host")),
                t,
            ))
        };
        assert!(matches!(
            translate(&cast(DataType::Utf8).eq(lit("h1"))),
            Filter::Label { .. }
        ));
        assert!(matches!(
            translate(&cast(DataType::Int64).eq(lit("7"))),
            Filter::All
        ));
    }

    fn time_bounds(f: &Filter) -> (Option<i64>, Option<i64>) {
        f.time_bounds()
    }

    #[test]
    fn row_filter_drops_words() {
        let f = Filter::and(vec![
            Filter::Text("x".into()),
            Filter::Time {
                start: Some(1),
                end: None,
            },
        ]);
        assert!(matches!(row_filter(&f), Filter::Time { .. }));
        let or = Filter::Or(vec![
            Filter::Text("x".into()),
            Filter::Level(LevelOp::Eq, Level::Error),
        ]);
        assert!(matches!(row_filter(&or), Filter::All));
    }
}
