//! The metrics of alerting (`/metrics` appends them through the API's metrics sources).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters of alerting.
#[derive(Debug, Default)]
pub struct Metrics {
    fired: Mutex<BTreeMap<String, u64>>,
    notifier_failures: Mutex<BTreeMap<String, u64>>,
    lagged_batches: AtomicU64,
    dropped: AtomicU64,
}

impl Metrics {
    pub(crate) fn fired(&self, rule: &str) {
        *self
            .fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(rule.into())
            .or_default() += 1;
    }

    pub(crate) fn notifier_failed(&self, notifier: &str) {
        *self
            .notifier_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(notifier.into())
            .or_default() += 1;
    }

    pub(crate) fn lagged(&self, batches: u64) {
        self.lagged_batches.fetch_add(batches, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the batches the alert task missed because it fell behind.
    pub fn lagged_batches(&self) -> u64 {
        self.lagged_batches.load(Ordering::Relaxed)
    }

    /// Renders the counters as Prometheus text; `suppressed` is per rule, from the engine.
    pub(crate) fn render_with(&self, suppressed: &[(String, u64)]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP logyard_alerts_fired_total Alerts fired, by rule."
        );
        let _ = writeln!(s, "# TYPE logyard_alerts_fired_total counter");
        for (rule, n) in self.fired.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                s,
                "logyard_alerts_fired_total{{rule=\"{}\"}} {n}",
                escape(rule)
            );
        }
        let _ = writeln!(s, "# HELP logyard_alerts_suppressed_total Matching entries held back by a cooldown, by rule.");
        let _ = writeln!(s, "# TYPE logyard_alerts_suppressed_total counter");
        for (rule, n) in suppressed {
            let _ = writeln!(
                s,
                "logyard_alerts_suppressed_total{{rule=\"{}\"}} {n}",
                escape(rule)
            );
        }
        let _ = writeln!(s, "# HELP logyard_notifier_failures_total Notifications not delivered after every attempt, by notifier.");
        let _ = writeln!(s, "# TYPE logyard_notifier_failures_total counter");
        for (n, c) in self
            .notifier_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "logyard_notifier_failures_total{{notifier=\"{}\"}} {c}",
                escape(n)
            );
        }
        let _ = writeln!(s, "# HELP logyard_alerts_lagged_batches_total Acknowledged batches the alert evaluation missed because it fell behind.");
        let _ = writeln!(s, "# TYPE logyard_alerts_lagged_batches_total counter");
        let _ = writeln!(
            s,
            "logyard_alerts_lagged_batches_total {}",
            self.lagged_batches()
        );
        let _ = writeln!(s, "# HELP logyard_alerts_queue_dropped_total Alerts not notified because the notification queue was full.");
        let _ = writeln!(s, "# TYPE logyard_alerts_queue_dropped_total counter");
        let _ = writeln!(
            s,
            "logyard_alerts_queue_dropped_total {}",
            self.dropped.load(Ordering::Relaxed)
        );
        s
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
