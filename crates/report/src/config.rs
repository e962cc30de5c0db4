//! The `[report]` section of `logyard.toml`: what a report looks at and the daily schedule,
//! with their defaults and checks. `docs/configuration.md` and `docs/reports.md` describe
//! each key.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{parse_daily_at, Format, ReportSettings, ScheduleSettings};

/// `[report]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// `HH:MM`, UTC: when the daily report is written; absent: no daily report.
    pub daily_at: Option<String>,
    /// Where daily reports are written (default `<data_dir>/reports`).
    pub dir: Option<PathBuf>,
    /// Days a daily report is kept; 0 keeps them forever.
    pub keep_days: u32,
    /// Formats of the daily report: `md`, `html`, `json`.
    pub formats: Vec<String>,
    /// A request is slow above this many milliseconds.
    pub slow_ms: f64,
    /// Most slow requests listed.
    pub slow_limit: NonZeroUsize,
    /// An IP is suspicious with more failed logins than this in the range.
    pub suspicious_failures: u64,
    /// Most error patterns listed.
    pub top_patterns: NonZeroUsize,
    /// Earlier periods of the same length that make the anomaly baseline.
    pub baseline_periods: usize,
    /// Robust z-score above which an agent's volume or error rate is an anomaly.
    pub anomaly_z: f64,
    /// The filter (query language) of database errors.
    pub database_filter: String,
}

impl Default for ReportConfig {
    fn default() -> ReportConfig {
        let d = ReportSettings::default();
        ReportConfig {
            daily_at: None,
            dir: None,
            keep_days: 30,
            formats: vec!["html".into(), "md".into(), "json".into()],
            slow_ms: d.slow_ms,
            slow_limit: NonZeroUsize::new(d.slow_limit).expect("a default above zero"),
            suspicious_failures: d.suspicious_failures,
            top_patterns: NonZeroUsize::new(d.top_patterns).expect("a default above zero"),
            baseline_periods: d.baseline_periods,
            anomaly_z: d.anomaly_z,
            database_filter: d.database_filter,
        }
    }
}

impl ReportConfig {
    /// Returns what a report looks at; an error names the key.
    pub fn settings(&self) -> Result<ReportSettings, String> {
        logyard_query::parse_filter(&self.database_filter, 0)
            .map_err(|e| format!("database_filter: {e}"))?;
        let positive = self.anomaly_z.is_finite() && self.anomaly_z > 0.0;
        if !positive || self.slow_ms.is_nan() || self.slow_ms < 0.0 {
            return Err("anomaly_z must be above 0 and slow_ms 0 or more".into());
        }
        Ok(ReportSettings {
            slow_ms: self.slow_ms,
            slow_limit: self.slow_limit.get(),
            suspicious_failures: self.suspicious_failures,
            top_patterns: self.top_patterns.get(),
            baseline_periods: self.baseline_periods,
            anomaly_z: self.anomaly_z,
            database_filter: self.database_filter.clone(),
            ..ReportSettings::default()
        })
    }

    /// Returns the daily report's schedule (files under `data_dir/reports` unless `dir` is
    /// set, its queries within `query`), or `None` without `daily_at`.
    pub fn schedule(
        &self,
        data_dir: &Path,
        query: logyard_query::Settings,
    ) -> Result<Option<ScheduleSettings>, String> {
        let report = self.settings()?;
        let Some(at) = &self.daily_at else {
            return Ok(None);
        };
        let daily_at_minute = parse_daily_at(at).map_err(|e| format!("daily_at: {e}"))?;
        let formats = self
            .formats
            .iter()
            .map(|f| {
                Format::parse(f).ok_or_else(|| format!("formats: {f:?} is not md, html or json"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(ScheduleSettings {
            daily_at_minute,
            dir: self.dir.clone().unwrap_or_else(|| data_dir.join("reports")),
            keep_days: self.keep_days,
            formats,
            report,
            query,
        }))
    }
}
