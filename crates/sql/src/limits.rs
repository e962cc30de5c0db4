//! Checks of a parsed statement before it is planned: how deep its expressions nest, how many
//! set operations and joins it has, and how large its literal regexes compile.
//!
//! Planning, optimizing and running an expression tree all recurse once per level, so a
//! statement such as `SELECT 1+1+…+1` with thousands of terms needs a stack in proportion.
//! The parser already refuses more than 50 nested parentheses or subqueries, but operator
//! chains (`a OR b OR …`, `x || y || …`) and set operations (`… UNION ALL …`) parse into
//! trees as deep as they are long. These are counted here, walking no deeper than the limit,
//! so that only statements the SQL threads' stacks can hold reach the planner.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, SetExpr,
    TableFactor, Value, Visit, Visitor,
};

use crate::SqlError;

/// Bounds of a statement's shape.
#[derive(Debug, Clone, Copy)]
pub struct ShapeLimits {
    /// Deepest nesting of expressions, and most set operations plus joins.
    pub max_depth: usize,
    /// Largest compiled literal regex, in bytes.
    pub max_regex_bytes: usize,
}

/// Walks a statement and refuses it when it is deeper or larger than `limits` allow.
pub fn check<V: Visit>(statement: &V, limits: ShapeLimits) -> Result<(), SqlError> {
    let mut checker = Checker {
        limits,
        depth: 0,
        combined: 0,
    };
    match statement.visit(&mut checker) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(e) => Err(e),
    }
}

struct Checker {
    limits: ShapeLimits,
    depth: usize,
    /// Set operations and joins seen so far.
    combined: usize,
}

impl Checker {
    fn too_deep(&self) -> SqlError {
        SqlError::NotAllowed(format!(
            "the statement nests expressions more than {} deep (setting query.sql_max_depth): \
             split long chains of operators, use IN (…) instead of many ORs, or raise the setting",
            self.limits.max_depth
        ))
    }

    fn too_many(&self) -> SqlError {
        SqlError::NotAllowed(format!(
            "the statement has more than {} set operations (UNION, INTERSECT, EXCEPT) and joins \
             (setting query.sql_max_depth): run it in parts or raise the setting",
            self.limits.max_depth
        ))
    }

    /// Refuses a literal regex that compiles larger than the limit.
    fn check_regex(&self, pattern: &Expr) -> ControlFlow<SqlError> {
        let Some(text) = literal(pattern) else {
            return ControlFlow::Continue(());
        };
        let max = self.limits.max_regex_bytes;
        match regex::RegexBuilder::new(text)
            .size_limit(max)
            .dfa_size_limit(max)
            .build()
        {
            Ok(_) => ControlFlow::Continue(()),
            Err(regex::Error::CompiledTooBig(_)) => ControlFlow::Break(SqlError::NotAllowed(
                format!(
                    "the regex {} compiles to more than {max} bytes (setting limits.max_regex_bytes): \
                     use fewer or smaller repetitions",
                    shorten(text)
                ),
            )),
            Err(e) => ControlFlow::Break(SqlError::Syntax {
                message: format!("the regex {} does not compile: {e}", shorten(text)),
                position: None,
            }),
        }
    }
}

/// The text of a string literal.
fn literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::EscapedStringLiteral(s) => Some(s),
            _ => None,
        },
        Expr::Nested(inner) => literal(inner),
        _ => None,
    }
}

/// A pattern quoted for a message, cut to a readable length.
fn shorten(text: &str) -> String {
    let cut: String = text.chars().take(60).collect();
    if cut.len() < text.len() {
        format!("'{cut}…'")
    } else {
        format!("'{cut}'")
    }
}

impl Visitor for Checker {
    type Break = SqlError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlError> {
        // Walked without recursion: a chain of `UNION ALL` is as deep as it is long. Bodies in
        // parentheses are queries of their own, counted when they are visited.
        let mut own = 0;
        let mut stack = vec![query.body.as_ref()];
        while let Some(e) = stack.pop() {
            match e {
                SetExpr::SetOperation { left, right, .. } => {
                    own += 1;
                    stack.push(left);
                    stack.push(right);
                }
                SetExpr::Select(select) => {
                    own += select.from.iter().map(|t| t.joins.len()).sum::<usize>();
                }
                _ => {}
            }
        }
        self.combined += own;
        if self.combined > self.limits.max_depth {
            return ControlFlow::Break(self.too_many());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<SqlError> {
        // Joins in parentheses: `(a JOIN b) JOIN c`.
        if let TableFactor::NestedJoin {
            table_with_joins, ..
        } = factor
        {
            self.combined += table_with_joins.joins.len();
            if self.combined > self.limits.max_depth {
                return ControlFlow::Break(self.too_many());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<SqlError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return ControlFlow::Break(self.too_deep());
        }
        match expr {
            Expr::BinaryOp {
                op:
                    BinaryOperator::PGRegexMatch
                    | BinaryOperator::PGRegexIMatch
                    | BinaryOperator::PGRegexNotMatch
                    | BinaryOperator::PGRegexNotIMatch,
                right,
                ..
            } => self.check_regex(right),
            Expr::RLike { pattern, .. } => self.check_regex(pattern),
            Expr::Function(f) => {
                let name = f
                    .name
                    .0
                    .last()
                    .map(|p| p.to_string().to_ascii_lowercase())
                    .unwrap_or_default();
                if !name.starts_with("regexp_") {
                    return ControlFlow::Continue(());
                }
                let FunctionArguments::List(list) = &f.args else {
                    return ControlFlow::Continue(());
                };
                // The pattern is the second argument of every regexp_* function.
                match list.args.get(1) {
                    Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(pattern))) => {
                        self.check_regex(pattern)
                    }
                    _ => ControlFlow::Continue(()),
                }
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<SqlError> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn shape(sql: &str, max_depth: usize) -> Result<(), SqlError> {
        let statements = Parser::parse_sql(&GenericDialect {}, sql).unwrap();
        check(
            &statements[0],
            ShapeLimits {
                max_depth,
                max_regex_bytes: 1 << 20,
            },
        )
    }

    fn chain(op: &str, n: usize) -> String {
        vec!["1"; n].join(op)
    }

    #[test]
    fn counts_depth_set_operations_and_joins() {
        // `1+1` is three expressions: the sum and its two terms, two levels deep.
        assert!(shape("SELECT 1+1", 2).is_ok());
        assert!(shape("SELECT 1+1", 1).is_err());
        assert!(shape(&format!("SELECT {}", chain("+", 100)), 100).is_ok());
        let e = shape(&format!("SELECT {}", chain("+", 102)), 100).unwrap_err();
        assert!(e.to_string().contains("query.sql_max_depth"), "{e}");
        let unions = ["SELECT 1"; 11].join(" UNION ALL ");
        assert!(shape(&unions, 10).is_ok());
        assert!(shape(&format!("{unions} UNION ALL SELECT 2"), 10).is_err());
        let joins = format!(
            "SELECT 1 FROM logs a {}",
            (0..5)
                .map(|i| format!(" JOIN logs b{i} ON a.id = b{i}.id"))
                .collect::<String>()
        );
        assert!(shape(&joins, 5).is_ok());
        assert!(shape(&joins, 4).is_err());
    }

    #[test]
    fn refuses_regexes_over_the_size_limit() {
        for sql in [
            "SELECT regexp_like(message, '(a{1000}){1000}') FROM logs",
            "SELECT * FROM logs WHERE message ~ '(a{1000}){1000}'",
            "SELECT regexp_replace(message, '(a{1000}){1000}', 'b') FROM logs",
        ] {
            let e = shape(sql, 100).unwrap_err();
            assert!(
                e.to_string().contains("limits.max_regex_bytes"),
                "{sql}: {e}"
            );
        }
        assert!(shape("SELECT regexp_like(message, 'a+b') FROM logs", 100).is_ok());
    }
}
