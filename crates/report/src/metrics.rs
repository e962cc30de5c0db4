//! The report scheduler's metrics, rendered into `/metrics` through the API's metrics
//! sources.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters of scheduled reports.
#[derive(Debug, Default)]
pub struct ReportMetrics {
    written: AtomicU64,
    failed: AtomicU64,
    last_success_s: AtomicI64,
}

impl ReportMetrics {
    /// Counts a report written at `now_ns`.
    pub fn success(&self, now_ns: i64) {
        self.written.fetch_add(1, Ordering::Relaxed);
        self.last_success_s
            .store(now_ns / 1_000_000_000, Ordering::Relaxed);
    }

    /// Counts a report that could not be made or written.
    pub fn failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the reports written.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Renders the metrics as Prometheus text, with `# HELP` and `# TYPE`.
    pub fn render_prometheus(&self) -> String {
        let mut s = String::new();
        let rows = [
            (
                "logyard_reports_written_total",
                "counter",
                "Scheduled reports written.",
                self.written.load(Ordering::Relaxed) as f64,
            ),
            (
                "logyard_reports_failed_total",
                "counter",
                "Scheduled reports that could not be made or written.",
                self.failed.load(Ordering::Relaxed) as f64,
            ),
            (
                "logyard_report_last_success_timestamp_seconds",
                "gauge",
                "When the last scheduled report was written (0: never).",
                self.last_success_s.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        s
    }
}
