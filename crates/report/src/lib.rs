//! Reports: the picture of a time range of logs, for people.
//!
//! [`build()`] runs a fixed set of queries of the query language (`logyard_query::run`, the
//! same executor as `/api/query`; each query is listed in [`queries`] and in
//! `docs/reports.md`) over a store [`Snapshot`](logyard_store::Snapshot) and assembles a [`Report`]: counts by level
//! and agent against the previous period, the top error patterns, slow requests and latency
//! percentiles, logins and suspicious IPs, database errors, anomalies against a baseline of
//! earlier periods, and errors over time. The report renders as JSON (the shape of
//! `API.md`), Markdown ([`render_markdown`]) or one self-contained HTML file
//! ([`render_html`], with an inline SVG chart). [`Scheduler`] writes it every day and hands
//! it to a [`Delivery`] hook.
//!
//! It sits after the query crate in the data flow: store → query → report → api / cli.
//!
//! ```no_run
//! use logyard_report::{build, ReportSettings};
//! # let store = logyard_store::Store::open(logyard_store::StoreConfig::new("d")).unwrap();
//! let now = logyard_model::now_ns();
//! let report = build(
//!     &store.snapshot(),
//!     now - 86_400_000_000_000,
//!     now,
//!     &logyard_query::Filter::All,
//!     &ReportSettings::default(),
//!     &logyard_query::Settings::default(),
//! )
//! .unwrap();
//! println!("{}", logyard_report::render_markdown(&report));
//! ```

pub mod analyses;
mod anomalies;
mod build;
mod config;
mod document;
mod html;
mod markdown;
pub mod metrics;
pub mod queries;
mod runner;
mod schedule;
mod svg;

use std::collections::BTreeMap;

use serde::Serialize;

pub use anomalies::robust_z;
pub use build::build;
pub use config::ReportConfig;
pub use html::render_html;
pub use markdown::render_markdown;
pub use schedule::{next_run_after, parse_daily_at, Delivery, ScheduleSettings, Scheduler};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// One of the report's queries failed.
    #[error("report query {query:?} failed: {source}")]
    Query {
        /// The query text.
        query: String,
        /// What went wrong.
        source: logyard_query::QueryError,
    },
    /// The range is empty or reversed.
    #[error("the report's range is empty: start must be before end")]
    EmptyRange,
    /// The range is so long that the periods the report compares it with reach back before
    /// the earliest time logyard represents.
    #[error("{0}")]
    RangeTooLong(String),
    /// A report file could not be written.
    #[error("cannot write the report {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// What a report looks at; each is a setting of `[report]`.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// A request is slow above this many milliseconds of `response_time_ms`.
    pub slow_ms: f64,
    /// Most slow requests listed.
    pub slow_limit: usize,
    /// An IP is suspicious with more than this many failed logins in the range.
    pub suspicious_failures: u64,
    /// Most error patterns listed.
    pub top_patterns: usize,
    /// Most paths in the latency table by path.
    pub top_paths: usize,
    /// Earlier periods of the same length that make the anomaly baseline.
    pub baseline_periods: usize,
    /// Robust z-score (median/MAD) above which a value is an anomaly.
    pub anomaly_z: f64,
    /// Least entries (or errors) of a difference that may be called an anomaly.
    pub anomaly_min_count: u64,
    /// The filter of database errors.
    pub database_filter: String,
}

impl Default for ReportSettings {
    fn default() -> ReportSettings {
        ReportSettings {
            slow_ms: 1000.0,
            slow_limit: 20,
            suspicious_failures: 5,
            top_patterns: 10,
            top_paths: 15,
            baseline_periods: 7,
            anomaly_z: 3.5,
            anomaly_min_count: 10,
            database_filter: queries::DATABASE_FILTER.to_string(),
        }
    }
}

/// Which form a report is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The JSON of `API.md`.
    Json,
    /// Markdown.
    Markdown,
    /// One self-contained HTML file.
    Html,
}

impl Format {
    /// Reads `json`, `md` (or `markdown`), `html`.
    pub fn parse(text: &str) -> Option<Format> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "md" | "markdown" => Some(Format::Markdown),
            "html" => Some(Format::Html),
            _ => None,
        }
    }

    /// Returns the file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Markdown => "md",
            Format::Html => "html",
        }
    }

    /// Returns the HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

/// Renders a report in a format.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).expect("a report serialises") + "\n",
        Format::Markdown => render_markdown(report),
        Format::Html => render_html(report),
    }
}

/// A time range, RFC 3339.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Range {
    /// First instant included.
    pub start: String,
    /// First instant after the range.
    pub end: String,
}

/// A report: the JSON shape of `GET /api/report` in `API.md`, plus `requests.by_path` and
/// `errors_over_time`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The range covered, `[start, end)`.
    pub range: Range,
    /// Entries by level and agent, and the previous period's.
    pub counts: Counts,
    /// The most frequent error templates (ERROR and above).
    pub top_error_patterns: Vec<ErrorPattern>,
    /// HTTP requests: entries with `response_time_ms`.
    pub requests: Requests,
    /// Logins.
    pub auth: Auth,
    /// Entries matching the database error filter.
    pub database_errors: u64,
    /// Agents far from their baseline, and new error patterns.
    pub anomalies: Vec<Anomaly>,
    /// Errors (ERROR and above) per bucket of the range, for the chart.
    pub errors_over_time: ErrorSeries,
    /// Queries whose answers were cut by a budget, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<String>,
}

impl Report {
    /// Returns the report in one line, as notifications carry it: the range, entries,
    /// errors, the top error pattern, suspicious IPs and anomalies.
    pub fn headline(&self) -> String {
        let errors: u64 = self
            .counts
            .by_level
            .iter()
            .filter(|(level, _)| matches!(level.as_str(), "ERROR" | "CRITICAL" | "FATAL"))
            .map(|(_, n)| n)
            .sum();
        let mut line = format!(
            "report {} to {}: {} entries, {} errors",
            self.range.start, self.range.end, self.counts.total, errors
        );
        if let Some(p) = self.top_error_patterns.first() {
            line.push_str(&format!("; top error: {} ({})", p.pattern, p.count));
        }
        if self.requests.count > 0 {
            line.push_str(&format!("; {} requests", self.requests.count));
            if let Some(p95) = self.requests.latency_ms.p95 {
                line.push_str(&format!(", p95 {p95:.0} ms"));
            }
        }
        if self.auth.failed > 0 {
            line.push_str(&format!("; {} failed logins", self.auth.failed));
        }
        if !self.auth.suspicious_ips.is_empty() {
            line.push_str(&format!(
                "; {} suspicious IPs",
                self.auth.suspicious_ips.len()
            ));
        }
        if !self.anomalies.is_empty() {
            line.push_str(&format!("; {} anomalies", self.anomalies.len()));
        }
        line
    }
}

/// Counts of entries.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Counts {
    /// Every entry of the range.
    pub total: u64,
    /// By level; entries without a level under `UNKNOWN`.
    pub by_level: BTreeMap<String, u64>,
    /// By agent; entries without an agent under `(none)`.
    pub by_agent: BTreeMap<String, u64>,
    /// The period of the same length just before.
    pub previous_period: PreviousPeriod,
}

/// The period before the report's range, and the change against it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PreviousPeriod {
    /// Its range.
    pub range: Option<Range>,
    /// Every entry of it.
    pub total: u64,
    /// By level.
    pub by_level: BTreeMap<String, u64>,
    /// By agent.
    pub by_agent: BTreeMap<String, u64>,
    /// Change in percent of the previous count (`null` when it was 0).
    pub change_pct: Change,
}

/// Changes in percent.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Change {
    /// Of the total.
    pub total: Option<f64>,
    /// By level.
    pub by_level: BTreeMap<String, Option<f64>>,
    /// By agent.
    pub by_agent: BTreeMap<String, Option<f64>>,
}

/// One error template.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorPattern {
    /// The template, variable parts as placeholders.
    pub pattern: String,
    /// Entries with it.
    pub count: u64,
    /// The newest message with it.
    pub example: String,
}

/// Latency percentiles in milliseconds (`null` without requests).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Latency {
    /// Requests.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// Latency of one path.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathLatency {
    /// The path.
    pub path: String,
    /// Its latency.
    #[serde(flatten)]
    pub latency: Latency,
}

/// HTTP requests.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Requests {
    /// Entries with `response_time_ms`.
    pub count: u64,
    /// Slow requests, slowest first, as API entries.
    pub slow: Vec<serde_json::Value>,
    /// Percentiles over every request.
    pub latency_ms: Latency,
    /// Percentiles by agent.
    pub by_agent: BTreeMap<String, Latency>,
    /// Percentiles of the most requested paths.
    pub by_path: Vec<PathLatency>,
}

/// Logins.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Auth {
    /// Failed logins.
    pub failed: u64,
    /// Successful logins.
    pub succeeded: u64,
    /// succeeded / (succeeded + failed); `null` without logins.
    pub success_rate: Option<f64>,
    /// IPs with more failed logins than the threshold, most first.
    pub suspicious_ips: Vec<SuspiciousIp>,
}

/// An IP with many failed logins.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SuspiciousIp {
    /// The address.
    pub ip: String,
    /// Its failed logins in the range, or in its busiest window.
    pub failures: u64,
    /// The start of that window, when the analysis looks at windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<String>,
}

/// Something far from the usual.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Anomaly {
    /// `volume_spike`, `volume_drop`, `error_rate` or `new_error_pattern`.
    pub kind: String,
    /// The agent concerned.
    pub agent: String,
    /// What was seen against what was expected.
    pub detail: String,
}

/// Errors per bucket.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ErrorSeries {
    /// Bucket width, as a duration (`30m`).
    pub step: String,
    /// Buckets, oldest first, empty ones included.
    pub buckets: Vec<ErrorBucket>,
}

/// One bucket of errors.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorBucket {
    /// Start of the bucket, RFC 3339.
    pub t: String,
    /// Errors in it.
    pub count: u64,
}

/// The level order of the renderings, most severe first.
pub(crate) const LEVEL_ORDER: [&str; 7] = [
    "CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "TRACE", "UNKNOWN",
];

/// Formats a number of milliseconds or a percentage for people.
pub(crate) fn fmt_num(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) => format!("{v:.1}"),
    }
}

/// Formats a change in percent with its sign.
pub(crate) fn fmt_change(x: Option<f64>) -> String {
    match x {
        None => "new".into(),
        Some(v) => format!("{v:+.1}%"),
    }
}
