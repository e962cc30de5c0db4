//! Alerts that no `[[alerts.rules]]` entry makes: the rotation's disk guard, a rotation rule
//! failing for a day, and the daily report, sent through the alert notifiers.

use std::path::PathBuf;
use std::sync::Arc;

use logyard_alert::{AlertHandle, Event};
use logyard_rotate::RotationAlert;

/// Cooldown of disk guard alerts: at most one an hour.
const GUARD_COOLDOWN_NS: i64 = 3_600_000_000_000;
/// Cooldown of a failing rotation rule's alert: one reminder a day.
const FAILING_COOLDOWN_NS: i64 = 24 * 3_600_000_000_000;

/// Sends the rotation daemon's alerts through the notifiers.
pub fn rotation(alerts: AlertHandle) -> logyard_rotate::AlertSink {
    Arc::new(move |alert| {
        alerts.raise(rotation_event(alert));
    })
}

fn rotation_event(alert: RotationAlert) -> Event {
    match alert {
        RotationAlert::DiskGuard { message } => Event {
            rule: "rotate-disk-guard".into(),
            kind: "rotation".into(),
            severity: "warning".into(),
            group: Default::default(),
            message: format!("disk guard: {message}"),
            cooldown: GUARD_COOLDOWN_NS,
        },
        RotationAlert::RuleFailing {
            rule,
            since,
            last_error,
        } => {
            let since = since
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| logyard_model::format_rfc3339(d.as_nanos() as i64))
                .unwrap_or_default();
            let why = last_error
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default();
            Event {
                rule: "rotate-rule-failing".into(),
                kind: "rotation".into(),
                severity: "critical".into(),
                group: [("rule".to_string(), rule.clone())].into(),
                message: format!(
                    "rotation rule {rule:?} has not succeeded since {since}{why}; run `logyard rotate --dry-run --verbose` to see why"
                ),
                cooldown: FAILING_COOLDOWN_NS,
            }
        }
    }
}

/// Sends each daily report through the notifiers: its headline and the files written.
pub fn report(alerts: AlertHandle) -> Arc<dyn logyard_report::Delivery> {
    Arc::new(move |report: &logyard_report::Report, files: &[PathBuf]| {
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        alerts.raise(Event {
            rule: "daily-report".into(),
            kind: "report".into(),
            severity: "info".into(),
            group: Default::default(),
            message: format!("{}; written to {}", report.headline(), files.join(", ")),
            cooldown: 0,
        });
    })
}
