//! Assembles a [`Report`] from the answers of its queries.

use std::collections::{BTreeMap, BTreeSet};

use logyard_model::format_rfc3339;
use logyard_query::{nice_step, parse_query, run, Answer, Cell, Settings, Table};
use logyard_store::Snapshot;

use crate::anomalies::{agent_anomalies, Baseline};
use crate::queries as q;
use crate::{
    Auth, Change, Counts, ErrorBucket, ErrorPattern, ErrorSeries, Latency, PathLatency,
    PreviousPeriod, Range, Report, ReportError, ReportSettings, Requests, SuspiciousIp,
};

/// The key of entries without a level.
const NO_LEVEL: &str = "UNKNOWN";
/// The key of entries without an agent.
const NO_AGENT: &str = "(none)";
/// Most baseline error templates compared against.
const BASELINE_PATTERNS: usize = 10_000;
/// Most new error patterns reported.
const MAX_NEW_PATTERNS: usize = 10;

/// Runs the report's queries over `[start, end)` of a snapshot.
pub fn build(
    snapshot: &Snapshot,
    start: i64,
    end: i64,
    settings: &ReportSettings,
    query_settings: &Settings,
) -> Result<Report, ReportError> {
    if start >= end {
        return Err(ReportError::EmptyRange);
    }
    let mut r = Runner {
        snapshot,
        settings: query_settings,
        now: end,
        partial: Vec::new(),
    };
    let len = end - start;
    let range = q::time_range(start, end);
    let prev_start = start.saturating_sub(len);
    let prev_range = q::time_range(prev_start, start);

    let by_level = r.counts(&q::by_level(&range), NO_LEVEL)?;
    let by_agent = r.counts(&q::by_agent(&range), NO_AGENT)?;
    let prev_level = r.counts(&q::by_level(&prev_range), NO_LEVEL)?;
    let prev_agent = r.counts(&q::by_agent(&prev_range), NO_AGENT)?;
    let total: u64 = by_level.values().sum();
    let prev_total: u64 = prev_level.values().sum();
    let counts = Counts {
        total,
        previous_period: PreviousPeriod {
            range: Some(Range {
                start: format_rfc3339(prev_start),
                end: format_rfc3339(start),
            }),
            total: prev_total,
            change_pct: Change {
                total: pct(total, prev_total),
                by_level: changes(&by_level, &prev_level),
                by_agent: changes(&by_agent, &prev_agent),
            },
            by_level: prev_level,
            by_agent: prev_agent,
        },
        by_level,
        by_agent,
    };

    let top_error_patterns = r.patterns(&q::error_patterns(&range, settings.top_patterns))?;

    let requests = r.requests(&range, settings)?;
    let auth = r.auth(&range, settings)?;
    let database_errors = r.count(&q::database_errors(&range, &settings.database_filter))?;

    // Anomalies: agents against the earlier periods; error templates against all of them.
    let mut baseline = Vec::new();
    for i in 1..=settings.baseline_periods as i64 {
        let (s, e) = (start - i * len, start - (i - 1) * len);
        let pr = q::time_range(s, e);
        let totals = if i == 1 {
            counts.previous_period.by_agent.clone()
        } else {
            r.counts(&q::by_agent(&pr), NO_AGENT)?
        };
        let errors = r.counts(&q::errors_by_agent(&pr), NO_AGENT)?;
        baseline.push(Baseline { totals, errors });
    }
    let errors_now = r.counts(&q::errors_by_agent(&range), NO_AGENT)?;
    let mut anomalies = agent_anomalies(&counts.by_agent, &errors_now, &baseline, settings);
    let baseline_start = start - settings.baseline_periods.max(1) as i64 * len;
    let base_range = q::time_range(baseline_start, start);
    if baseline.iter().any(|b| !b.totals.is_empty()) {
        let known: BTreeSet<String> = r
            .patterns(&q::baseline_patterns(&base_range, BASELINE_PATTERNS))?
            .into_iter()
            .map(|p| p.pattern)
            .collect();
        let current = r.patterns(&q::error_patterns(&range, BASELINE_PATTERNS))?;
        for p in current
            .into_iter()
            .filter(|p| !known.contains(&p.pattern))
            .take(MAX_NEW_PATTERNS)
        {
            let agent = r
                .table(&q::agent_of_message(&range, &p.example))?
                .rows
                .first()
                .and_then(|row| row.first())
                .and_then(Cell::key_text)
                .unwrap_or_else(|| NO_AGENT.into());
            anomalies.push(crate::Anomaly {
                kind: "new_error_pattern".into(),
                agent,
                detail: format!(
                    "{} × \"{}\", not seen in the {} earlier period(s)",
                    p.count, p.pattern, settings.baseline_periods
                ),
            });
        }
    }

    let step = nice_step(len / 48).max(1_000_000);
    let step_text = logyard_query::pipes::format_duration(step);
    let hist = r.table(&q::errors_histogram(&range, &step_text))?;
    let by_t: BTreeMap<i64, u64> = hist
        .rows
        .iter()
        .filter_map(|row| match (row.first(), row.last()) {
            (Some(Cell::Time(t)), Some(c)) => Some((*t, c.as_f64().unwrap_or(0.0) as u64)),
            _ => None,
        })
        .collect();
    let first = start.div_euclid(step) * step;
    let buckets = (0..)
        .map(|i| first + i * step)
        .take_while(|&t| t < end)
        .map(|t| ErrorBucket {
            t: format_rfc3339(t),
            count: by_t.get(&t).copied().unwrap_or(0),
        })
        .collect();

    Ok(Report {
        range: Range {
            start: format_rfc3339(start),
            end: format_rfc3339(end),
        },
        counts,
        top_error_patterns,
        requests,
        auth,
        database_errors,
        anomalies,
        errors_over_time: ErrorSeries {
            step: step_text,
            buckets,
        },
        partial: r.partial,
    })
}

/// Runs queries, keeping note of cut answers.
struct Runner<'a> {
    snapshot: &'a Snapshot,
    settings: &'a Settings,
    now: i64,
    partial: Vec<String>,
}

impl Runner<'_> {
    fn run(&mut self, text: &str, limit: usize) -> Result<Answer, ReportError> {
        let err = |source| ReportError::Query {
            query: text.to_string(),
            source,
        };
        let query = parse_query(text, self.now, self.settings).map_err(err)?;
        let out = run(self.snapshot, &query, self.settings, limit).map_err(err)?;
        if let Some(reason) = out.partial {
            tracing::warn!(query = text, %reason, "a report query was cut short");
            self.partial.push(format!("{text}: {reason}"));
        }
        Ok(out.answer)
    }

    fn table(&mut self, text: &str) -> Result<Table, ReportError> {
        match self.run(text, 0)? {
            Answer::Table(t) => Ok(t),
            Answer::Records { .. } => Ok(Table {
                columns: Vec::new(),
                rows: Vec::new(),
            }),
        }
    }

    /// A `stats count() by (x)` table as a map; a null key becomes `none`.
    fn counts(&mut self, text: &str, none: &str) -> Result<BTreeMap<String, u64>, ReportError> {
        let t = self.table(text)?;
        Ok(t.rows
            .iter()
            .filter_map(|row| {
                let n = row.last()?.as_f64()? as u64;
                let key = row
                    .first()?
                    .key_text()
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| none.to_string());
                (n > 0).then_some((key, n))
            })
            .fold(BTreeMap::new(), |mut m, (k, n)| {
                *m.entry(k).or_insert(0) += n;
                m
            }))
    }

    /// The single number of a `stats count()` query.
    fn count(&mut self, text: &str) -> Result<u64, ReportError> {
        let t = self.table(text)?;
        Ok(t.rows
            .first()
            .and_then(|r| r.last())
            .and_then(Cell::as_f64)
            .unwrap_or(0.0) as u64)
    }

    fn patterns(&mut self, text: &str) -> Result<Vec<ErrorPattern>, ReportError> {
        let t = self.table(text)?;
        let (p, c, e) = (t.column("pattern"), t.column("count"), t.column("example"));
        Ok(t.rows
            .iter()
            .map(|row| {
                let text = |i: Option<usize>| match i.and_then(|i| row.get(i)) {
                    Some(Cell::Str(s)) => s.clone(),
                    Some(other) => other.key_text().unwrap_or_default(),
                    None => String::new(),
                };
                ErrorPattern {
                    pattern: text(p),
                    count: c
                        .and_then(|i| row.get(i))
                        .and_then(Cell::as_f64)
                        .unwrap_or(0.0) as u64,
                    example: text(e),
                }
            })
            .collect())
    }

    /// Latency rows keyed by their first column (or by nothing).
    fn latencies(&mut self, text: &str) -> Result<Vec<(Option<String>, Latency)>, ReportError> {
        let t = self.table(text)?;
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

    fn requests(&mut self, range: &str, s: &ReportSettings) -> Result<Requests, ReportError> {
        let overall = self
            .latencies(&q::latency(range))?
            .into_iter()
            .next()
            .map(|(_, l)| l)
            .unwrap_or_default();
        let by_agent = self
            .latencies(&q::latency_by_agent(range))?
            .into_iter()
            .filter(|(_, l)| l.count > 0)
            .map(|(k, l)| (k.unwrap_or_else(|| NO_AGENT.into()), l))
            .collect();
        let by_path = self
            .latencies(&q::latency_by_path(range, s.top_paths))?
            .into_iter()
            .filter_map(|(k, l)| {
                Some(PathLatency {
                    path: k?,
                    latency: l,
                })
            })
            .filter(|p| p.latency.count > 0)
            .collect();
        let slow = match self.run(&q::slow_requests(range, s.slow_limit), s.slow_limit)? {
            Answer::Records { records, .. } => records
                .iter()
                .filter(|r| {
                    r.fields
                        .get("response_time_ms")
                        .and_then(|v| Cell::from_value(v).as_f64())
                        .is_some_and(|ms| ms > s.slow_ms)
                })
                .map(|r| r.to_json(false))
                .collect(),
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

    fn auth(&mut self, range: &str, s: &ReportSettings) -> Result<Auth, ReportError> {
        let failed = self.count(&q::failed_logins(range))?;
        let succeeded = self.count(&q::succeeded_logins(range))?;
        let t = self.table(&q::failures_by_ip(range))?;
        let suspicious_ips = t
            .rows
            .iter()
            .filter_map(|row| {
                let ip = row.first()?.key_text()?;
                let failures = row.last()?.as_f64()? as u64;
                (failures > s.suspicious_failures).then_some(SuspiciousIp { ip, failures })
            })
            .collect();
        Ok(Auth {
            failed,
            succeeded,
            success_rate: (failed + succeeded > 0)
                .then(|| succeeded as f64 / (failed + succeeded) as f64),
            suspicious_ips,
        })
    }
}

/// The change from `before` to `now` in percent; `None` when `before` is 0.
fn pct(now: u64, before: u64) -> Option<f64> {
    (before > 0).then(|| ((now as f64 - before as f64) / before as f64 * 1000.0).round() / 10.0)
}

fn changes(
    now: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, Option<f64>> {
    now.keys()
        .chain(before.keys())
        .map(|k| {
            let n = now.get(k).copied().unwrap_or(0);
            let b = before.get(k).copied().unwrap_or(0);
            (k.clone(), pct(n, b))
        })
        .collect()
}
