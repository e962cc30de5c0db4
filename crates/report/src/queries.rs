//! The queries a report runs, in the query language (`docs/query.md`). Each function returns
//! the query text for a time filter `range` (`_time:[start, end)`); `docs/reports.md`
//! lists them with what each part of the report takes from the answer.

/// Entries by level.
pub fn by_level(range: &str) -> String {
    format!("{range} | stats count() by (level)")
}

/// Entries by agent.
pub fn by_agent(range: &str) -> String {
    format!("{range} | stats count() by (agent)")
}

/// Errors (ERROR and above) by agent: the error rate of the anomaly baseline.
pub fn errors_by_agent(range: &str) -> String {
    format!("{range} level:>=ERROR | stats count() by (agent)")
}

/// The most frequent error templates, with an example each.
pub fn error_patterns(range: &str, n: usize) -> String {
    format!("{range} level:>=ERROR | patterns | limit {n}")
}

/// The agent that wrote most of the errors with a given message.
pub fn agent_of_message(range: &str, message: &str) -> String {
    format!("{range} level:>=ERROR {} | top 1 agent", quote(message))
}

/// The `n` slowest requests above a threshold (ms), slowest first.
pub fn slow_requests(range: &str, threshold_ms: f64, n: usize) -> String {
    format!(
        "{range} response_time_ms:>{threshold_ms} | sort by (response_time_ms) desc | limit {n}"
    )
}

/// Requests above a threshold (ms).
pub fn slow_count(range: &str, threshold_ms: f64) -> String {
    format!("{range} response_time_ms:>{threshold_ms} | stats count()")
}

/// The stats of latency: the request count and percentiles, optionally grouped.
fn latency_stats() -> &'static str {
    "stats count(response_time_ms) as requests, p50(response_time_ms) as p50, \
     p95(response_time_ms) as p95, p99(response_time_ms) as p99"
}

/// Requests and latency percentiles over the range.
pub fn latency(range: &str) -> String {
    format!("{range} response_time_ms:* | {}", latency_stats())
}

/// Requests and latency percentiles by agent.
pub fn latency_by_agent(range: &str) -> String {
    format!(
        "{range} response_time_ms:* | {} by (agent)",
        latency_stats()
    )
}

/// Requests and latency percentiles of the most requested paths.
pub fn latency_by_path(range: &str, n: usize) -> String {
    format!(
        "{range} response_time_ms:* path:* | {} by (path) | sort by (requests) desc | limit {n}",
        latency_stats()
    )
}

/// The messages of failed logins (as sshd, PAM-style and application logs write them).
pub const FAILED_LOGIN: &str = r#"("login failed" OR "Failed password")"#;

/// The messages of successful logins.
pub const SUCCEEDED_LOGIN: &str =
    r#"("login success" OR "Accepted publickey" OR "Accepted password")"#;

/// Failed logins.
pub fn failed_logins(range: &str) -> String {
    format!("{range} {FAILED_LOGIN} | stats count()")
}

/// Successful logins.
pub fn succeeded_logins(range: &str) -> String {
    format!("{range} {SUCCEEDED_LOGIN} | stats count()")
}

/// Failed logins by the `ip` field, most first.
pub fn failures_by_ip(range: &str) -> String {
    format!(
        "{range} {FAILED_LOGIN} ip:* | stats count() as failures by (ip) | sort by (failures) desc"
    )
}

/// Failed logins by the `ip` field per window of `step` (a duration such as `10m`).
pub fn failures_by_ip_per_window(range: &str, step: &str) -> String {
    format!("{range} {FAILED_LOGIN} ip:* | histogram {step} by ip")
}

/// The default filter of database errors: errors that say "database", or errors of the
/// usual database agents.
pub const DATABASE_FILTER: &str = "level:>=ERROR (database OR Database OR agent:postgres OR \
     agent:mysql OR agent:mongodb OR agent:redis)";

/// Database errors.
pub fn database_errors(range: &str, filter: &str) -> String {
    format!("{range} ({filter}) | stats count()")
}

/// Database errors by agent.
pub fn database_errors_by_agent(range: &str, filter: &str) -> String {
    format!("{range} ({filter}) | stats count() by (agent)")
}

/// The most frequent templates of database errors.
pub fn database_patterns(range: &str, filter: &str, n: usize) -> String {
    format!("{range} ({filter}) | patterns | limit {n}")
}

/// Lines at WARNING and above that say a connection failed: refused, reset, timed out,
/// lost, or over the server's limit (PostgreSQL, MySQL, Redis, HTTP clients, Node's
/// `ECONNREFUSED`).
pub const CONNECTION_FAILURE: &str = r#"level:>=WARNING (i("connection refused") OR i("connection reset") OR i("connection timed out") OR i("could not connect") OR i("too many connections") OR i("connection lost") OR i("lost connection") OR ECONNREFUSED OR ECONNRESET)"#;

/// Connection failures by agent.
pub fn connection_failures_by_agent(range: &str) -> String {
    format!("{range} {CONNECTION_FAILURE} | stats count() by (agent)")
}

/// Errors per bucket of `step` (a duration such as `30m`).
pub fn errors_histogram(range: &str, step: &str) -> String {
    format!("{range} level:>=ERROR | histogram {step}")
}

/// Error templates of the baseline, to tell the new ones.
pub fn baseline_patterns(range: &str, n: usize) -> String {
    format!("{range} level:>=ERROR | patterns | limit {n}")
}

/// Returns the time filter of `[start, end)`.
pub fn time_range(start: i64, end: i64) -> String {
    format!(
        "_time:[{}, {})",
        logyard_model::format_rfc3339(start),
        logyard_model::format_rfc3339(end)
    )
}

/// Quotes text as a phrase of the query language.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
