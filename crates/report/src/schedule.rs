//! Daily reports: written at `[report] daily_at` (UTC) to `[report] dir`, kept
//! `keep_days`, and handed to a [`Delivery`] hook.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use logyard_model::Clock;
use logyard_store::Store;

use crate::metrics::ReportMetrics;
use crate::{build, render, Format, Report, ReportError, ReportSettings};

const DAY_NS: i64 = 86_400_000_000_000;
/// The file name prefix of scheduled reports: `report-YYYY-MM-DD.<ext>`.
const PREFIX: &str = "report-";

/// Where a written report goes next (the alert notifiers, a mail, …).
pub trait Delivery: Send + Sync {
    /// Receives a report and the files it was written to.
    fn deliver(&self, report: &Report, files: &[PathBuf]);
}

impl<F: Fn(&Report, &[PathBuf]) + Send + Sync> Delivery for F {
    fn deliver(&self, report: &Report, files: &[PathBuf]) {
        self(report, files)
    }
}

/// When and where daily reports are written.
#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// Minutes after 00:00 UTC at which the day's report is made.
    pub daily_at_minute: u32,
    /// Directory of the report files.
    pub dir: PathBuf,
    /// Days a report file is kept; 0 keeps them forever.
    pub keep_days: u32,
    /// Formats written.
    pub formats: Vec<Format>,
    /// What a report looks at.
    pub report: ReportSettings,
    /// Budgets of its queries.
    pub query: logyard_query::Settings,
}

/// Parses `HH:MM` into minutes after midnight.
pub fn parse_daily_at(text: &str) -> Result<u32, String> {
    let err = || format!("invalid time {text:?}: expected HH:MM (24-hour, UTC), as in \"06:00\"");
    let (h, m) = text.trim().split_once(':').ok_or_else(err)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
    if h > 23 || m > 59 || text.trim().len() != 5 {
        return Err(err());
    }
    Ok(h * 60 + m)
}

/// Writes a report every day and hands it to the delivery hook.
pub struct Scheduler {
    store: Arc<Store>,
    settings: ScheduleSettings,
    clock: Arc<dyn Clock>,
    delivery: Option<Arc<dyn Delivery>>,
    next: Mutex<i64>,
    metrics: Arc<ReportMetrics>,
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Scheduler {
    /// Creates a scheduler; its first report is due at the first `daily_at` after now.
    pub fn new(
        store: Arc<Store>,
        settings: ScheduleSettings,
        clock: Arc<dyn Clock>,
        delivery: Option<Arc<dyn Delivery>>,
    ) -> Scheduler {
        let next = next_run_after(clock.now_ns(), settings.daily_at_minute);
        Scheduler {
            store,
            settings,
            clock,
            delivery,
            next: Mutex::new(next),
            metrics: Arc::new(ReportMetrics::default()),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }

    /// Returns the scheduler's metrics.
    pub fn metrics(&self) -> Arc<ReportMetrics> {
        self.metrics.clone()
    }

    /// Returns when the next report is due, nanoseconds since the epoch.
    pub fn next_run(&self) -> i64 {
        *self.next.lock().expect("schedule lock")
    }

    /// Makes the due report if `now` has reached it: the 24 hours before its due time,
    /// written in every format, old files removed, then delivered. Returns the files written
    /// (none when nothing was due). Runs missed while the process was down are skipped.
    pub fn tick(&self, now: i64) -> Result<Vec<PathBuf>, ReportError> {
        let due = {
            let mut next = self.next.lock().expect("schedule lock");
            if now < *next {
                return Ok(Vec::new());
            }
            let due = *next;
            while *next <= now {
                *next += DAY_NS;
            }
            due
        };
        let result = self.write(due);
        match &result {
            Ok(_) => self.metrics.success(now),
            Err(e) => {
                self.metrics.failure();
                tracing::error!(error = %e, "the daily report failed");
            }
        }
        result
    }

    fn write(&self, due: i64) -> Result<Vec<PathBuf>, ReportError> {
        let s = &self.settings;
        let report = build(
            &self.store.snapshot(),
            due - DAY_NS,
            due,
            &logyard_query::Filter::All,
            &s.report,
            &s.query,
        )?;
        let io = |path: &Path, source| ReportError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&s.dir).map_err(|e| io(&s.dir, e))?;
        let date = date_of(due);
        let mut files = Vec::new();
        for &format in &s.formats {
            let path = s.dir.join(format!("{PREFIX}{date}.{}", format.extension()));
            let tmp = path.with_extension(format!("{}.tmp", format.extension()));
            std::fs::write(&tmp, render(&report, format)).map_err(|e| io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
            files.push(path);
        }
        tracing::info!(dir = %s.dir.display(), %date, "daily report written");
        if s.keep_days > 0 {
            prune(&s.dir, due - i64::from(s.keep_days) * DAY_NS);
        }
        if let Some(d) = &self.delivery {
            d.deliver(&report, &files);
        }
        Ok(files)
    }

    /// Runs the scheduler on a thread until [`Scheduler::stop`], checking the clock every
    /// second.
    pub fn spawn(self: Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("report-scheduler".into())
            .spawn(move || loop {
                {
                    let (lock, cvar) = &*self.stop;
                    let stopped = lock.lock().expect("stop lock");
                    let (stopped, _) = cvar
                        .wait_timeout_while(stopped, Duration::from_secs(1), |s| !*s)
                        .expect("stop lock");
                    if *stopped {
                        return;
                    }
                }
                let _ = self.tick(self.clock.now_ns());
            })
    }

    /// Asks the thread of [`Scheduler::spawn`] to end.
    pub fn stop(&self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().expect("stop lock") = true;
        cvar.notify_all();
    }
}

/// Returns the first `minute`-of-the-day (UTC) strictly after `now`.
pub fn next_run_after(now: i64, minute: u32) -> i64 {
    let day = now.div_euclid(DAY_NS) * DAY_NS;
    let at = day + i64::from(minute) * 60_000_000_000;
    if at > now {
        at
    } else {
        at + DAY_NS
    }
}

fn date_of(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns)
        .format("%Y-%m-%d")
        .to_string()
}

/// Removes report files dated before `before`.
fn prune(dir: &Path, before: i64) {
    let cutoff = date_of(before);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(date) = name.strip_prefix(PREFIX).and_then(|r| r.get(..10)) else {
            continue;
        };
        let dated = date.len() == 10
            && date.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if dated && date < cutoff.as_str() {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove an old report");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> i64 {
        logyard_model::parse_time(text, 0).unwrap()
    }

    #[test]
    fn parses_daily_at() {
        assert_eq!(parse_daily_at("06:00"), Ok(360));
        assert_eq!(parse_daily_at("23:59"), Ok(1439));
        assert!(parse_daily_at("24:00").is_err());
        assert!(parse_daily_at("6").is_err());
        assert!(parse_daily_at("6:5").is_err());
    }

    #[test]
    fn next_run_is_strictly_after_now() {
        assert_eq!(
            next_run_after(t("2024-01-15T05:00:00Z"), 360),
            t("2024-01-15T06:00:00Z")
        );
        assert_eq!(
            next_run_after(t("2024-01-15T06:00:00Z"), 360),
            t("2024-01-16T06:00:00Z")
        );
        assert_eq!(
            next_run_after(t("2024-01-15T07:00:00Z"), 360),
            t("2024-01-16T06:00:00Z")
        );
    }

    #[test]
    fn writes_daily_prunes_and_delivers() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = logyard_store::StoreConfig::new(tmp.path().join("data"));
        config.retention_days = 0;
        let store = Arc::new(Store::open(config).unwrap());
        let mut records = Vec::new();
        for i in 0..50 {
            let mut r = logyard_model::Record::new(
                t("2024-01-15T03:00:00Z") + i * 1_000_000_000,
                format!("database connection error: refused {i}"),
            );
            r.level = Some(logyard_model::Level::Error);
            r.agent = "web-app".into();
            records.push(r);
        }
        store.append(records).unwrap();
        let dir = tmp.path().join("reports");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("report-2023-12-01.md"), "old").unwrap();
        std::fs::write(dir.join("notes.txt"), "kept").unwrap();
        let clock = Arc::new(logyard_model::ManualClock::new(t("2024-01-15T05:59:00Z")));
        let delivered: Arc<Mutex<Vec<(u64, usize)>>> = Arc::default();
        let d2 = delivered.clone();
        let hook = move |r: &Report, files: &[PathBuf]| {
            d2.lock().unwrap().push((r.counts.total, files.len()));
        };
        let sched = Scheduler::new(
            store,
            ScheduleSettings {
                daily_at_minute: 360,
                dir: dir.clone(),
                keep_days: 30,
                formats: vec![Format::Json, Format::Markdown, Format::Html],
                report: ReportSettings::default(),
                query: logyard_query::Settings::default(),
            },
            clock.clone(),
            Some(Arc::new(hook)),
        );
        assert!(sched.tick(t("2024-01-15T05:59:59Z")).unwrap().is_empty());
        let files = sched.tick(t("2024-01-15T06:00:01Z")).unwrap();
        assert_eq!(files.len(), 3);
        assert!(dir.join("report-2024-01-15.html").is_file());
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("report-2024-01-15.json")).unwrap())
                .unwrap();
        assert_eq!(json["counts"]["total"], 50);
        assert_eq!(json["database_errors"], 50);
        assert_eq!(json["range"]["end"], "2024-01-15T06:00:00Z");
        assert!(!dir.join("report-2023-12-01.md").exists(), "pruned");
        assert!(dir.join("notes.txt").exists(), "other files stay");
        assert_eq!(*delivered.lock().unwrap(), vec![(50, 3)]);
        // Not twice the same day; the next is due the day after.
        assert!(sched.tick(t("2024-01-15T12:00:00Z")).unwrap().is_empty());
        assert_eq!(sched.next_run(), t("2024-01-16T06:00:00Z"));
        assert_eq!(sched.metrics().written(), 1);
        // The thread stops when asked.
        let sched = Arc::new(sched);
        let h = sched.clone().spawn().unwrap();
        sched.stop();
        h.join().unwrap();
    }
}
