//! Golden tests of the query language: canonical text, and errors with their positions.

use logyard_query::{parse_query, QueryError, Settings};

/// Each query and the canonical text it prints as (which must parse back to itself).
const CANONICAL: &[(&str, &str)] = &[
    ("", "*"),
    ("   error   ", "error"),
    ("| stats count()", "* | stats count()"),
    ("error|limit 5", "error | limit 5"),
    (
        "level:ERROR | patterns | sort by (count) desc | limit 10",
        "level:ERROR | patterns | sort by (count) desc | limit 10",
    ),
    (
        "* | stats count(),avg(response_time_ms),p95(response_time_ms) by agent",
        "* | stats count(), avg(response_time_ms), p95(response_time_ms) by (agent)",
    ),
    (
        "* | stats count() as n by (agent, level) | sort by (n) desc | limit 3",
        "* | stats count() as n by (agent, level) | sort by (n) desc | limit 3",
    ),
    (
        "* | stats count_distinct(user) as \"distinct users\"",
        "* | stats count_distinct(user) as \"distinct users\"",
    ),
    ("* | top agent", "* | top 10 agent"),
    ("* | histogram 60m by level", "* | histogram 1h by level"),
    ("* | histogram 1.5h", "* | histogram 90m"),
    ("* | sort by (timestamp) asc", "* | sort by (timestamp)"),
    ("* | sort by timestamp desc", "* | sort by (timestamp) desc"),
    (
        "* | fields _time,agent,message",
        "* | fields _time, agent, message",
    ),
    (
        "agent:web-* status:>=500 | stats p99(response_time_ms) by (host) | fields p99(response_time_ms)",
        "agent:web-* status:>=500 | stats p99(response_time_ms) by (host) | fields p99(response_time_ms)",
    ),
];

/// Each bad query, the start of its message, and its byte position.
const ERRORS: &[(&str, &str, usize)] = &[
    ("level:ERROR | stats count(", "expected ')' after 'count('", 26),
    ("* | stats count(x", "expected ')' after 'count(x'", 17),
    ("* | stats", "expected a stats function after 'stats'", 9),
    ("* | stats avg()", "avg() needs a field", 15),
    ("* | stats median(x)", "unknown stats function 'median': expected one of count, count_distinct, sum, avg, min, max, p50, p90, p95, p99", 10),
    ("* | stats count() by", "expected a field name after 'by'", 20),
    ("* | stats count() by (a b)", "expected ')' after 'a'", 24),
    ("* | grep x", "unknown pipe 'grep': expected one of stats, top, histogram, patterns, sort, limit, fields", 4),
    ("* |", "expected a pipe name after '|'", 3),
    ("* | limit", "expected a whole number after 'limit'", 9),
    ("* | limit -1", "expected a whole number after 'limit'", 10),
    ("* | limit 10001", "limit 10001 is above the maximum 10000", 10),
    ("* | top 20000 agent", "top 20000 is above the maximum 10000", 8),
    ("* | histogram", "expected a step after 'histogram'", 13),
    ("* | histogram 0s", "histogram step 0s is below the smallest step", 14),
    ("* | histogram 1h by", "expected a field name after 'by'", 19),
    ("* | sort (a)", "expected 'by' after 'sort'", 9),
    ("* | patterns | top 3 agent", "'top' cannot follow a table pipe ('patterns')", 15),
    ("* | top 3 agent | fields host", "unknown column 'host': the table has agent, count", 25),
    ("* | limit 3 extra", "expected '|' or the end of the query", 12),
    ("(a OR b", "expected `)`", 7),
    ("a) b", "unexpected ')'", 1),
    ("\"unclosed", "unterminated string", 0),
    ("~\"[\"", "invalid regex", 1),
    ("level:LOUD", "unknown level \"LOUD\"", 6),
    ("_time:[2024-01-01T00:00:00Z", "expected `)` or `]`", 6),
];

#[test]
fn canonical_text_round_trips() {
    let settings = Settings::default();
    for (text, canonical) in CANONICAL {
        let q = parse_query(text, 0, &settings).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(q.to_string(), *canonical, "{text}");
        let again = parse_query(canonical, 0, &settings).unwrap();
        assert_eq!(again.to_string(), *canonical);
        assert_eq!(again, q, "{text}");
    }
}

#[test]
fn errors_say_what_and_where() {
    let settings = Settings::default();
    for (text, message, position) in ERRORS {
        match parse_query(text, 0, &settings) {
            Err(QueryError::Syntax {
                message: m,
                position: p,
            }) => {
                assert!(m.starts_with(message), "{text}: {m}");
                assert_eq!(p, *position, "{text}: {m}");
            }
            other => panic!("{text}: expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn any_text_parses_or_fails_in_range() {
    use proptest::prelude::*;
    let pieces = prop_oneof![
        Just("|".to_string()),
        Just(" ".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("stats".to_string()),
        Just("count()".to_string()),
        Just("by".to_string()),
        Just("top".to_string()),
        Just("sort".to_string()),
        Just("limit".to_string()),
        Just("histogram".to_string()),
        Just("patterns".to_string()),
        Just("fields".to_string()),
        Just("desc".to_string()),
        Just("as".to_string()),
        "[a-z0-9]{1,4}",
        "\\PC{1,3}",
    ];
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&proptest::collection::vec(pieces, 0..12), |parts| {
            let text = parts.concat();
            match parse_query(&text, 0, &Settings::default()) {
                Ok(q) => {
                    let canonical = q.to_string();
                    let again = parse_query(&canonical, 0, &Settings::default()).map_err(|e| {
                        TestCaseError::fail(format!("{text:?} → {canonical:?}: {e}"))
                    })?;
                    prop_assert_eq!(again.to_string(), canonical);
                }
                Err(QueryError::Syntax { position, .. }) => prop_assert!(position <= text.len()),
                Err(e) => prop_assert!(false, "{e}"),
            }
            Ok(())
        })
        .unwrap();
}
