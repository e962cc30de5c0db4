//! Assembles a [`Report`] from the answers of its queries.

use std::collections::{BTreeMap, BTreeSet};

use logyard_model::format_rfc3339;
use logyard_query::{nice_step, Cell, Filter, Settings};
use logyard_store::Snapshot;

use crate::analyses::{self, AuthParams, SlowParams, NO_AGENT};
use crate::anomalies::{agent_anomalies, Baseline};
use crate::queries as q;
use crate::runner::Runner;
use crate::{
    Change, Counts, ErrorBucket, ErrorSeries, PreviousPeriod, Range, Report, ReportError,
    ReportSettings,
};

/// The key of entries without a level.
const NO_LEVEL: &str = "UNKNOWN";
/// Most baseline error templates compared against.
const BASELINE_PATTERNS: usize = 10_000;
/// Most new error patterns reported.
const MAX_NEW_PATTERNS: usize = 10;

/// 1678-01-01T00:00:00Z: the first whole year of the times logyard represents (nanoseconds
/// since 1970 in 64 bits reach back to 1677-09-21).
const EARLIEST_NS: i64 = -9_214_560_000 * 1_000_000_000;

/// Refuses a range whose previous period and baseline periods, each as long as the range,
/// would begin before [`EARLIEST_NS`].
fn check_range(start: i64, end: i64, baseline_periods: usize) -> Result<(), ReportError> {
    let periods = baseline_periods.max(1) as i128 + 1;
    let len = i128::from(end) - i128::from(start);
    if i128::from(end) - periods * len >= i128::from(EARLIEST_NS) {
        return Ok(());
    }
    let day = 86_400_000_000_000_i128;
    let max_days = (i128::from(end) - i128::from(EARLIEST_NS)) / periods / day;
    Err(ReportError::RangeTooLong(format!(
        "the range from since {} to until {} is {} days long; the report compares it with the \
         {} periods of the same length before it (setting report.baseline_periods), which would \
         begin before {}, the earliest time logyard represents: choose since and until at most \
         {max_days} days apart for this until",
        format_rfc3339(start),
        format_rfc3339(end),
        len / day,
        periods - 1,
        format_rfc3339(EARLIEST_NS),
    )))
}

/// Runs the report's queries over `[start, end)` of a snapshot, over the entries of `within`
/// (`Filter::All`: every entry; a token's scope).
pub fn build(
    snapshot: &Snapshot,
    start: i64,
    end: i64,
    within: &Filter,
    settings: &ReportSettings,
    query_settings: &Settings,
) -> Result<Report, ReportError> {
    if start >= end {
        return Err(ReportError::EmptyRange);
    }
    check_range(start, end, settings.baseline_periods)?;
    let mut r = Runner::new(snapshot, within, query_settings, end);
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

    let requests = analyses::requests(
        &mut r,
        &range,
        &SlowParams {
            threshold_ms: settings.slow_ms,
            limit: settings.slow_limit,
            top_paths: settings.top_paths,
        },
    )?;
    // The report lists the IPs with more failures than the setting.
    let auth = analyses::logins(
        &mut r,
        &range,
        &AuthParams {
            min_failures: settings.suspicious_failures.saturating_add(1),
            window: None,
        },
    )?;
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
