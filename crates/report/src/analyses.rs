//! Analyses of a time range: slow requests and latency, logins and brute force, database
//! errors and connection failures. The daily report shows them; `/api/analyses/*` and the
//! CLI (`logyard slow`, `logyard auth`, `logyard db-errors`) answer each one alone. Each is
//! a few queries of the query language, listed in [`crate::queries`] and answered with the
//! texts that ran ([`Analysis::queries`]).

use std::collections::BTreeMap;

use logyard_model::format_rfc3339;
use logyard_query::{Answer, Cell, Cost, Filter, Settings};
use logyard_store::Snapshot;
use serde::Serialize;

use crate::queries as q;
use crate::runner::Runner;
use crate::{Auth, ErrorPattern, Latency, PathLatency, Range, ReportError, Requests, SuspiciousIp};

/// The key of entries without an agent.
pub(crate) const NO_AGENT: &str = "(none)";

/// An analysis's answer, the queries it ran and what they cost.
#[derive(Debug, Clone)]
pub struct Analysis<T> {
    /// The range looked at.
    pub range: Range,
    /// The answer.
    pub result: T,
    /// The query texts run, in order.
    pub queries: Vec<String>,
    /// Their cost, summed.
    pub cost: Cost,
    /// Queries cut by a budget, with the reason.
    pub partial: Vec<String>,
}

/// What `slow` looks at.
#[derive(Debug, Clone)]
pub struct SlowParams {
    /// A request is slow above this `response_time_ms`.
    pub threshold_ms: f64,
    /// Most slow requests listed.
    pub limit: usize,
    /// Most paths in the latency table by path.
    pub top_paths: usize,
}

/// Slow requests and latency.
#[derive(Debug, Clone, Serialize)]
pub struct SlowRequests {
    /// The threshold, ms.
    pub threshold_ms: f64,
    /// Requests above it.
    pub slow_count: u64,
    /// Every request, the slowest listed, and the percentiles.
    #[serde(flatten)]
    pub requests: Requests,
}

/// What `auth` looks at.
#[derive(Debug, Clone)]
pub struct AuthParams {
    /// An IP is listed with at least this many failed logins in one window.
    pub min_failures: u64,
    /// The window, ns; `None`: the whole range.
    pub window: Option<i64>,
}

/// Reads the window of `auth` (`10m`, `1h`): at least 1 s, and at most `max_buckets`
/// windows over `[start, end)`; the error says what to change.
pub fn parse_window(text: &str, start: i64, end: i64, max_buckets: usize) -> Result<i64, String> {
    let w = logyard_model::parse_duration(text).map_err(|e| format!("window: {e}"))?;
    if w < 1_000_000_000 {
        return Err(format!("window {text} is below the smallest window, 1s"));
    }
    logyard_query::check_buckets(w, start, end, max_buckets).map_err(|e| format!("window: {e}"))?;
    Ok(w)
}

/// Logins and the IPs that fail them.
#[derive(Debug, Clone, Serialize)]
pub struct AuthAnalysis {
    /// Failed and successful logins, and the IPs with at least `min_failures` failures.
    #[serde(flatten)]
    pub auth: Auth,
    /// The threshold.
    pub min_failures: u64,
    /// The window (`10m`), or `null` for the whole range.
    pub window: Option<String>,
}

/// Database errors and connection failures.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseAnalysis {
    /// Entries matching the database error filter.
    pub database_errors: u64,
    /// The same by agent, most first.
    pub by_agent: Vec<AgentCount>,
    /// Their most frequent templates.
    pub top_patterns: Vec<ErrorPattern>,
    /// Entries at WARNING and above that say a connection failed.
    pub connection_failures: u64,
    /// The same by agent, most first.
    pub connection_failures_by_agent: Vec<AgentCount>,
    /// The filters used.
    pub filters: DatabaseFilters,
}

/// The filters of [`DatabaseAnalysis`].
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseFilters {
    /// Database errors (the setting `report.database_filter`).
    pub database: String,
    /// Connection failures ([`q::CONNECTION_FAILURE`]).
    pub connection: String,
}

/// A count of one agent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentCount {
    /// The agent.
    pub agent: String,
    /// Entries.
    pub count: u64,
}

fn analysis<T>(
    snapshot: &Snapshot,
    start: i64,
    end: i64,
    within: &Filter,
    settings: &Settings,
    f: impl FnOnce(&mut Runner, &str) -> Result<T, ReportError>,
) -> Result<Analysis<T>, ReportError> {
    if start >= end {
        return Err(ReportError::EmptyRange);
    }
    let mut runner = Runner::new(snapshot, within, settings, end);
    let range = q::time_range(start, end);
    let result = f(&mut runner, &range)?;
    Ok(Analysis {
        range: Range {
            start: format_rfc3339(start),
            end: format_rfc3339(end),
        },
        result,
        queries: runner.queries,
        cost: runner.cost,
        partial: runner.partial,
    })
}

/// Slow requests (above `threshold_ms`, slowest first) and latency percentiles overall, by
/// agent and by path, over `[start, end)` and the entries of `within` (`Filter::All`: all).
pub fn slow(
    snapshot: &Snapshot,
    start: i64,
    end: i64,
    within: &Filter,
    params: &SlowParams,
    settings: &Settings,
) -> Result<Analysis<SlowRequests>, ReportError> {
    analysis(snapshot, start, end, within, settings, |r, range| {
        let slow_count = r.count(&q::slow_count(range, params.threshold_ms))?;
        Ok(SlowRequests {
            threshold_ms: params.threshold_ms,
            slow_count,
            requests: requests(r, range, params)?,
        })
    })
}

/// Failed and successful logins, and the IPs with at least `min_failures` failures in one
/// window, over `[start, end)` and the entries of `within`.
pub fn auth(
    snapshot: &Snapshot,
    start: i64,
    end: i64,
    within: &Filter,
    params: &AuthParams,
    settings: &Settings,
) -> Result<Analysis<AuthAnalysis>, ReportError> {
    analysis(snapshot, start, end, within, settings, |r, range| {
        Ok(AuthAnalysis {
            auth: logins(r, range, params)?,
            min_failures: params.min_failures,
            window: params.window.map(logyard_query::pipes::format_duration),
        })
    })
}

/// Database errors (by `database_filter`) by agent and template, and connection failures,
/// over `[start, end)` and the entries of `within`.
pub fn database(
    snapshot: &Snapshot,
    start: i64,
    end: i64,
    within: &Filter,
    database_filter: &str,
    top_patterns: usize,
    settings: &Settings,
) -> Result<Analysis<DatabaseAnalysis>, ReportError> {
    analysis(snapshot, start, end, within, settings, |r, range| {
        let by_agent = agent_counts(r.counts(
            &q::database_errors_by_agent(range, database_filter),
            NO_AGENT,
        )?);
        let top_patterns =
            r.patterns(&q::database_patterns(range, database_filter, top_patterns))?;
        let connection_failures_by_agent =
            agent_counts(r.counts(&q::connection_failures_by_agent(range), NO_AGENT)?);
        Ok(DatabaseAnalysis {
            database_errors: by_agent.iter().map(|a| a.count).sum(),
            by_agent,
            top_patterns,
            connection_failures: connection_failures_by_agent.iter().map(|a| a.count).sum(),
            connection_failures_by_agent,
            filters: DatabaseFilters {
                database: database_filter.to_string(),
                connection: q::CONNECTION_FAILURE.to_string(),
            },
        })
    })
}

fn agent_counts(m: BTreeMap<String, u64>) -> Vec<AgentCount> {
    let mut v: Vec<AgentCount> = m
        .into_iter()
        .map(|(agent, count)| AgentCount { agent, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.agent.cmp(&b.agent)));
    v
}

/// Latency rows keyed by their first column (or by nothing).
fn latencies(r: &mut Runner, text: &str) -> Result<Vec<(Option<String>, Latency)>, ReportError> {
    let t = r.table(text)?;
    let col = |name: &str| t.column(name);
    let (n, p50, p95, p99) = (col("requests"), col("p50"), col("p95"), col("p99"));
    let keyed = t.columns.len() > 4;
    Ok(t.rows
        .iter()
        .map(|row| {
            let get = |i: Option<usize>| i.and_then(|i| row.get(i)).and_then(Cell::as_f64);
            let key = if keyed {
                row.first().and_then(Cell::key_text)
            } else {
                None
            };
            (
                key,
                Latency {
                    count: get(n).unwrap_or(0.0) as u64,
                    p50: get(p50),
                    p95: get(p95),
                    p99: get(p99),
                },
            )
        })
        .collect())
}

/// Requests: the count, the slowest above the threshold, and the percentiles.
pub(crate) fn requests(
    r: &mut Runner,
    range: &str,
    s: &SlowParams,
) -> Result<Requests, ReportError> {
    let overall = latencies(r, &q::latency(range))?
        .into_iter()
        .next()
        .map(|(_, l)| l)
        .unwrap_or_default();
    let by_agent = latencies(r, &q::latency_by_agent(range))?
        .into_iter()
        .filter(|(_, l)| l.count > 0)
        .map(|(k, l)| (k.unwrap_or_else(|| NO_AGENT.into()), l))
        .collect();
    let by_path = latencies(r, &q::latency_by_path(range, s.top_paths))?
        .into_iter()
        .filter_map(|(k, l)| {
            Some(PathLatency {
                path: k?,
                latency: l,
            })
        })
        .filter(|p| p.latency.count > 0)
        .collect();
    let slow = match r.run(&q::slow_requests(range, s.threshold_ms, s.limit), s.limit)? {
        Answer::Records { records, .. } => records.iter().map(|r| r.to_json(false)).collect(),
        Answer::Table(_) => Vec::new(),
    };
    Ok(Requests {
        count: overall.count,
        slow,
        latency_ms: overall,
        by_agent,
        by_path,
    })
}

/// Logins, and the IPs with at least `min_failures` failures in one window (or the range).
pub(crate) fn logins(r: &mut Runner, range: &str, p: &AuthParams) -> Result<Auth, ReportError> {
    let failed = r.count(&q::failed_logins(range))?;
    let succeeded = r.count(&q::succeeded_logins(range))?;
    let mut suspicious_ips = Vec::new();
    match p.window {
        None => {
            let t = r.table(&q::failures_by_ip(range))?;
            for row in &t.rows {
                let (Some(ip), Some(failures)) = (
                    row.first().and_then(Cell::key_text),
                    row.last().and_then(Cell::as_f64),
                ) else {
                    continue;
                };
                if failures as u64 >= p.min_failures {
                    suspicious_ips.push(SuspiciousIp {
                        ip,
                        failures: failures as u64,
                        window_start: None,
                    });
                }
            }
        }
        Some(window) => {
            let step = logyard_query::pipes::format_duration(window);
            let t = r.table(&q::failures_by_ip_per_window(range, &step))?;
            // The busiest window of each IP.
            let mut best: BTreeMap<String, (u64, i64)> = BTreeMap::new();
            for row in &t.rows {
                let (Some(Cell::Time(at)), Some(ip), Some(n)) = (
                    row.first(),
                    row.get(1).and_then(Cell::key_text),
                    row.last().and_then(Cell::as_f64),
                ) else {
                    continue;
                };
                let n = n as u64;
                let e = best.entry(ip).or_insert((0, *at));
                if n > e.0 || (n == e.0 && *at < e.1) {
                    *e = (n, *at);
                }
            }
            suspicious_ips.extend(
                best.into_iter()
                    .filter(|(_, (n, _))| *n >= p.min_failures)
                    .map(|(ip, (failures, at))| SuspiciousIp {
                        ip,
                        failures,
                        window_start: Some(format_rfc3339(at)),
                    }),
            );
        }
    }
    suspicious_ips.sort_by(|a, b| b.failures.cmp(&a.failures).then_with(|| a.ip.cmp(&b.ip)));
    Ok(Auth {
        failed,
        succeeded,
        success_rate: (failed + succeeded > 0)
            .then(|| succeeded as f64 / (failed + succeeded) as f64),
        suspicious_ips,
    })
}
