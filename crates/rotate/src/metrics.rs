//! Counters of rotation runs, rendered in the Prometheus text format by the server.
//!
//! Metric names live here only (`logyard_rotate_*`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::{ActionKind, RunReport};

/// Counters over all runs since the start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RotateMetrics {
    /// Last run without failure, per rule, in seconds since the Unix epoch.
    pub last_success: BTreeMap<String, i64>,
    /// Runs done.
    pub runs: u64,
    /// Files rotated.
    pub files_rotated: u64,
    /// Bytes of live files rotated.
    pub bytes_rotated: u64,
    /// Bytes compressed (uncompressed size).
    pub bytes_compressed: u64,
    /// Bytes freed: archives removed and compression savings.
    pub bytes_reclaimed: u64,
    /// Archives compressed or removed by the disk guard.
    pub guard_actions: u64,
    /// Failed steps.
    pub failures: u64,
    /// Runs that could not run at all (state file locked or unreadable).
    pub run_errors: u64,
}

impl RotateMetrics {
    /// Adds a finished run; `now` is its time in seconds since the Unix epoch. Dry runs are
    /// ignored.
    pub fn record(&mut self, report: &RunReport, now: i64) {
        if report.dry_run {
            return;
        }
        self.runs += 1;
        for rule in &report.rules_ok {
            self.last_success.insert(rule.clone(), now);
        }
        self.files_rotated += report.files_rotated;
        self.bytes_rotated += report.bytes_rotated;
        self.bytes_compressed += report.bytes_compressed;
        self.bytes_reclaimed += report.bytes_reclaimed;
        self.failures += report.failures.len() as u64;
        self.guard_actions += report
            .actions
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::GuardCompress | ActionKind::GuardRemove))
            .count() as u64;
    }

    /// Adds a run that failed before doing anything.
    pub fn record_error(&mut self) {
        self.run_errors += 1;
    }

    /// Renders the counters in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "logyard_rotate_runs_total",
            "Rotation runs done.",
            self.runs,
        );
        counter(
            "logyard_rotate_files_total",
            "Files rotated.",
            self.files_rotated,
        );
        counter(
            "logyard_rotate_rotated_bytes_total",
            "Bytes of live files rotated.",
            self.bytes_rotated,
        );
        counter(
            "logyard_rotate_compressed_bytes_total",
            "Bytes compressed (uncompressed size).",
            self.bytes_compressed,
        );
        counter(
            "logyard_rotate_reclaimed_bytes_total",
            "Bytes freed by removals and compression.",
            self.bytes_reclaimed,
        );
        counter(
            "logyard_rotate_guard_actions_total",
            "Archives compressed or removed by the disk guard.",
            self.guard_actions,
        );
        counter(
            "logyard_rotate_failures_total",
            "Failed rotation steps.",
            self.failures,
        );
        counter(
            "logyard_rotate_run_errors_total",
            "Runs that could not start.",
            self.run_errors,
        );
        let name = "logyard_rotate_last_success_timestamp_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Last run without failure, per rule.\n# TYPE {name} gauge"
        );
        for (rule, t) in &self.last_success {
            let rule = rule
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(s, "{name}{{rule=\"{rule}\"}} {t}");
        }
        s
    }
}
