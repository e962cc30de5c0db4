//! Any text sent as a statement, as `POST /api/sql` runs it over a small store: answered or
//! refused, never a panic or a stack overflow, within its deadline and memory budget; a
//! syntax error's position lies inside the text. The property of the `sql_statement` fuzz
//! target (fuzz/), run here on every test run.
use proptest::prelude::*;

#[path = "statement/check.rs"]
mod check;
use check::run;

/// Words of the statements people write over `logs`, so that generated text gets past the
/// parser into planning and running.
const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "logs",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "HAVING",
    "UNION",
    "ALL",
    "WITH",
    "AS",
    "JOIN",
    "ON",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "IS",
    "NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "OVER",
    "(",
    ")",
    ",",
    "*",
    "+",
    "-",
    "/",
    "%",
    "=",
    "<",
    ">",
    "<>",
    "||",
    "1",
    "0",
    "-1",
    "1e308",
    "9223372036854775807",
    "'x'",
    "''",
    "'('",
    "ts",
    "level",
    "agent",
    "host",
    "message",
    "fields",
    "count(*)",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "regexp_like",
    "regexp_replace",
    "date_trunc",
    "'hour'",
    "now()",
    "cast",
    "VARCHAR",
    "BIGINT",
    "TIMESTAMP",
    "to_timestamp",
    "json_get",
    "substr",
    "repeat",
    "string_agg",
    "array_agg",
    "generate_series",
    "range",
    "unnest",
    "values",
    ";",
    "INSERT",
    "DROP",
    "TABLE",
    "COPY",
    "SET",
    "EXPLAIN",
    "row_number()",
    "lag",
    "'.*(a+)+$'",
];

/// Expressions over the table's columns, nested a few levels: well-formed, so that they plan
/// and run (casts that fail, divisions by zero and bad regexes included).
fn expression() -> impl Strategy<Value = String> {
    let leaf = proptest::sample::select(
        &[
            "timestamp",
            "_time",
            "level",
            "agent",
            "host",
            "source",
            "message",
            "raw",
            "fields",
            "id",
            "1",
            "0",
            "-7",
            "2.5",
            "'x'",
            "''",
            "NULL",
            "'web'",
            "'ERROR'",
            "now()",
        ][..],
    )
    .prop_map(str::to_string);
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                inner.clone(),
                proptest::sample::select(
                    &["+", "-", "*", "/", "%", "||", "=", "<", "AND", "OR", "LIKE"][..]
                )
            )
                .prop_map(|(a, b, op)| format!("({a} {op} {b})")),
            (
                inner.clone(),
                proptest::sample::select(
                    &[
                        "length",
                        "upper",
                        "lower",
                        "abs",
                        "trim",
                        "md5",
                        "to_timestamp",
                        "date_trunc('hour', ",
                        "substr(",
                        "coalesce(NULL, ",
                        "regexp_like(",
                        "regexp_replace("
                    ][..]
                )
            )
                .prop_map(|(a, f)| match f {
                    "substr(" => format!("substr({a}, 2, 3)"),
                    "regexp_like(" => format!("regexp_like({a}, '(a|b)+c')"),
                    "regexp_replace(" => format!("regexp_replace({a}, '[0-9]+', 'N')"),
                    f if f.ends_with(' ') => format!("{f}{a})"),
                    f => format!("{f}({a})"),
                }),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(p, a, b)| format!("CASE WHEN {p} THEN {a} ELSE {b} END")),
            (
                inner.clone(),
                proptest::sample::select(
                    &["VARCHAR", "BIGINT", "DOUBLE", "TIMESTAMP", "BOOLEAN"][..]
                )
            )
                .prop_map(|(a, t)| format!("CAST({a} AS {t})")),
        ]
    })
}

/// Statements of the shapes people send: grouped counts, filtered rows, subqueries.
fn statement() -> impl Strategy<Value = String> {
    (expression(), expression(), 0u32..200, 0usize..4).prop_map(|(e, p, n, shape)| match shape {
        0 => format!(
            "SELECT {e} AS x, count(*) FROM logs WHERE {p} GROUP BY x ORDER BY 2 DESC LIMIT {n}"
        ),
        1 => format!("SELECT * FROM logs WHERE {p} ORDER BY timestamp DESC LIMIT {n}"),
        2 => format!("SELECT max(x), min(x) FROM (SELECT {e} AS x FROM logs) WHERE x IS NOT NULL"),
        _ => {
            format!("SELECT agent, {e} FROM logs WHERE agent IN (SELECT agent FROM logs WHERE {p})")
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Well-formed statements of random expressions.
    #[test]
    fn statements_of_random_expressions_are_answered_or_refused(text in statement()) {
        run(&text);
    }

    /// Any text at all.
    #[test]
    fn any_text_is_answered_or_refused(text in any::<String>()) {
        run(&text);
    }

    /// Text made of SQL's words, most of which parses and much of which plans and runs.
    #[test]
    fn statements_of_sql_words_are_answered_or_refused(
        words in proptest::collection::vec(proptest::sample::select(WORDS), 0..28),
        lead in proptest::sample::select(&["SELECT", "SELECT * FROM logs WHERE", "WITH t AS (SELECT", ""][..]),
    ) {
        run(&format!("{lead} {}", words.join(" ")));
    }
}

/// Nesting far past `max_depth`, of each kind the planner recurses on.
#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for (open, close) in [
        ("(", ")"),
        ("(SELECT ", " FROM logs)"),
        ("abs(", ")"),
        ("NOT ", ""),
        ("-", ""),
    ] {
        let depth = 20_000;
        let text = format!("SELECT {}1{}", open.repeat(depth), close.repeat(depth));
        run(&text);
    }
}
