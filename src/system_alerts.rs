//! Alerts that no `[[alerts.rules]]` entry makes: the rotation's disk guard, a rotation rule
//! failing for a day, the daily report, and uploads to the bucket that lag, sent through the
//! alert notifiers.

use std::path::PathBuf;
use std::sync::Arc;

use logyard_alert::{AlertHandle, Event};
use logyard_rotate::RotationAlert;

/// Cooldown of disk guard alerts: at most one an hour.
const GUARD_COOLDOWN_NS: i64 = 3_600_000_000_000;
/// Cooldown of a failing rotation rule's alert: one reminder a day.
const FAILING_COOLDOWN_NS: i64 = 24 * 3_600_000_000_000;
/// Cooldown of the upload lag alert: one reminder an hour.
const UPLOAD_LAG_COOLDOWN_NS: i64 = 3_600_000_000_000;

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

/// Raises `storage-upload-lag` while the oldest segment file not yet in the bucket has
/// waited `after` or longer (the bucket out of reach, or refusing writes); looks every
/// quarter of `after` (1 to 30 s). Ends when the store has no bucket.
pub async fn watch_uploads(
    store: Arc<logyard_store::Store>,
    alerts: AlertHandle,
    after: std::time::Duration,
) {
    let every = (after / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(30),
    );
    let location = store.segment_location();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Some(uploads) = store.stats().uploads else {
            return;
        };
        if let Some(event) = upload_lag_event(&uploads, &location, after) {
            alerts.raise(event);
        }
    }
}

fn upload_lag_event(
    uploads: &logyard_store::UploadStats,
    location: &str,
    after: std::time::Duration,
) -> Option<Event> {
    if uploads.pending_files == 0 || uploads.upload_lag_seconds < after.as_secs_f64() {
        return None;
    }
    let why = uploads
        .last_error
        .as_ref()
        .map(|(e, _)| format!("; last error: {e}"))
        .unwrap_or_default();
    Some(Event {
        rule: "storage-upload-lag".into(),
        kind: "storage".into(),
        severity: "warning".into(),
        group: Default::default(),
        message: format!(
            "{} segment file(s) have waited {:.0} s for their upload to {location}; they stay \
             on the local disk (ingest goes on within max_disk_bytes){why}",
            uploads.pending_files, uploads.upload_lag_seconds
        ),
        cooldown: UPLOAD_LAG_COOLDOWN_NS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_lag_alert_says_what_waits_and_why() {
        let after = std::time::Duration::from_secs(600);
        let mut u = logyard_store::UploadStats {
            pending_files: 4,
            upload_lag_seconds: 599.0,
            last_error: Some(("cannot upload a segment file: connection refused".into(), 0)),
            ..Default::default()
        };
        assert!(upload_lag_event(&u, "s3://logs/prod", after).is_none());
        u.upload_lag_seconds = 601.0;
        let e = upload_lag_event(&u, "s3://logs/prod", after).unwrap();
        assert_eq!(e.rule, "storage-upload-lag");
        assert_eq!(
            e.message,
            "4 segment file(s) have waited 601 s for their upload to s3://logs/prod; they stay \
             on the local disk (ingest goes on within max_disk_bytes); last error: cannot upload \
             a segment file: connection refused"
        );
        u.pending_files = 0;
        assert!(upload_lag_event(&u, "s3://logs/prod", after).is_none());
    }
}
