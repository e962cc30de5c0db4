//! Rotation inside the server: a [`Daemon`] runs [`run()`] every interval on its own thread,
//! and at once when asked through its [`DaemonHandle`], until stopped.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use logyard_model::Clock;

use crate::disk::DiskGuard;
use crate::error::RotateError;
use crate::metrics::RotateMetrics;
use crate::observer::RotationObserver;
use crate::options::RunOptions;
use crate::plan::run;
use crate::report::RunReport;
use crate::rule::RotateRule;
use crate::run::unix_secs;

/// Something about rotation that a person should act on; the server sends it through the
/// alert notifiers.
#[derive(Debug, Clone, PartialEq)]
pub enum RotationAlert {
    /// The disk guard acted on archives, or could not free enough.
    DiskGuard {
        /// What it found and did.
        message: String,
    },
    /// A rule has not had a successful run for [`DaemonOptions::alert_after`] or longer.
    RuleFailing {
        /// The rule.
        rule: String,
        /// Since when it has not succeeded (its last success, or the daemon's start).
        since: SystemTime,
        /// The latest failure, if a run reported one.
        last_error: Option<String>,
    },
}

/// Where the daemon sends its [`RotationAlert`]s.
pub type AlertSink = Arc<dyn Fn(RotationAlert) + Send + Sync>;

/// Settings of the daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Time between two checks of the triggers (default 5 minutes).
    pub interval: Duration,
    /// The state file.
    pub state_path: PathBuf,
    /// The disk guard, if any.
    pub guard: Option<DiskGuard>,
    /// How long to wait for the collector to drain a renamed file.
    pub drain_timeout: Duration,
    /// How long to wait after the start before the first run, so that the collectors have
    /// opened the files before any of them is renamed (0 by default).
    pub first_run_after: Duration,
    /// A rule without a successful run for this long raises [`RotationAlert::RuleFailing`]
    /// (default 24 hours).
    pub alert_after: Duration,
}

impl DaemonOptions {
    /// Returns the defaults for a state file.
    pub fn new(state_path: impl Into<PathBuf>) -> DaemonOptions {
        DaemonOptions {
            interval: Duration::from_secs(300),
            state_path: state_path.into(),
            guard: None,
            drain_timeout: Duration::from_secs(10),
            first_run_after: Duration::ZERO,
            alert_after: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Default)]
struct Control {
    stop: bool,
    /// A run was asked for; `true` means forced.
    requested: Option<bool>,
    /// Rules that replace the running ones before the next run (a reload).
    next_rules: Option<Vec<RotateRule>>,
}

struct Shared {
    control: Mutex<Control>,
    wake: Condvar,
    metrics: Mutex<RotateMetrics>,
    last_report: Mutex<Option<RunReport>>,
    runs_done: Mutex<u64>,
    run_done: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Periodic rotation for `logyard serve`.
pub struct Daemon {
    rules: Vec<RotateRule>,
    options: DaemonOptions,
    observer: Arc<dyn RotationObserver>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    alerts: Option<AlertSink>,
    /// Per rule, the last success (or the start) and the latest failure's message.
    health: Mutex<std::collections::HashMap<String, (SystemTime, Option<String>)>>,
}

/// The task under its other name: the server runs it in a thread.
pub type RotationTask = Daemon;

/// Controls a running [`Daemon`] from another thread.
#[derive(Clone)]
pub struct DaemonHandle {
    shared: Arc<Shared>,
}

impl Daemon {
    /// Builds the daemon; `observer` is told about renames, `clock` gives the time of runs.
    pub fn new(
        rules: Vec<RotateRule>,
        options: DaemonOptions,
        observer: Arc<dyn RotationObserver>,
        clock: Arc<dyn Clock>,
    ) -> Daemon {
        let start = clock.now();
        let health = rules
            .iter()
            .map(|r| (r.name.clone(), (start, None)))
            .collect();
        Daemon {
            rules,
            options,
            observer,
            clock,
            alerts: None,
            health: Mutex::new(health),
            shared: Arc::new(Shared {
                control: Mutex::new(Control::default()),
                wake: Condvar::new(),
                metrics: Mutex::new(RotateMetrics::default()),
                last_report: Mutex::new(None),
                runs_done: Mutex::new(0),
                run_done: Condvar::new(),
            }),
        }
    }

    /// Sends the disk guard's alerts and those of failing rules to `sink`.
    pub fn with_alerts(mut self, sink: AlertSink) -> Daemon {
        self.alerts = Some(sink);
        self
    }

    /// Returns a handle to stop the daemon, ask for a run and read its metrics.
    pub fn handle(&self) -> DaemonHandle {
        DaemonHandle {
            shared: self.shared.clone(),
        }
    }

    /// Runs the rules once now and records the outcome in the metrics.
    pub fn run_once(&self, force: bool) -> Result<RunReport, RotateError> {
        let now = self.clock.now();
        let opts = RunOptions {
            force,
            now,
            guard: self.options.guard.clone(),
            drain_timeout: self.options.drain_timeout,
            ..RunOptions::new(self.options.state_path.clone())
        };
        let result = run(&self.rules, &opts, self.observer.as_ref());
        {
            let mut m = lock(&self.shared.metrics);
            match &result {
                Ok(r) => m.record(r, unix_secs(now)),
                Err(_) => m.record_error(),
            }
        }
        match &result {
            Ok(r) => {
                for a in &r.guard_alerts {
                    tracing::warn!("rotate disk guard: {a}");
                    self.alert(RotationAlert::DiskGuard { message: a.clone() });
                }
                *lock(&self.shared.last_report) = Some(r.clone());
            }
            Err(e) => tracing::error!("rotation run failed: {e}"),
        }
        self.check_health(&result, now);
        *lock(&self.shared.runs_done) += 1;
        self.shared.run_done.notify_all();
        result
    }

    /// Records which rules succeeded and raises an alert for each rule without a success for
    /// `alert_after`. A dry or failed run counts as a failure of every rule.
    fn check_health(&self, result: &Result<RunReport, RotateError>, now: SystemTime) {
        let mut health = lock(&self.health);
        for rule in &self.rules {
            let entry = health.entry(rule.name.clone()).or_insert((now, None));
            match result {
                Ok(r) if r.rules_ok.contains(&rule.name) => *entry = (now, None),
                Ok(r) => {
                    if let Some(f) = r.failures.iter().rev().find(|f| f.rule == rule.name) {
                        entry.1 = Some(format!("{}: {}", f.path.display(), f.message));
                    }
                }
                Err(e) => entry.1 = Some(e.to_string()),
            }
            let stale = now
                .duration_since(entry.0)
                .is_ok_and(|d| d >= self.options.alert_after);
            if stale {
                let alert = RotationAlert::RuleFailing {
                    rule: rule.name.clone(),
                    since: entry.0,
                    last_error: entry.1.clone(),
                };
                tracing::error!(rule = %rule.name, "rotation rule has not succeeded for {:?}", self.options.alert_after);
                self.alert(alert);
            }
        }
    }

    fn alert(&self, alert: RotationAlert) {
        if let Some(sink) = &self.alerts {
            sink(alert);
        }
    }

    /// Runs at once, then every interval or when asked, until [`DaemonHandle::stop`].
    pub fn run(mut self) {
        {
            let mut c = lock(&self.shared.control);
            let start = std::time::Instant::now() + self.options.first_run_after;
            loop {
                if c.stop {
                    return;
                }
                let left = start.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                c = self
                    .shared
                    .wake
                    .wait_timeout(c, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let mut force = false;
        loop {
            if let Some(rules) = lock(&self.shared.control).next_rules.take() {
                let start = self.clock.now();
                let mut health = lock(&self.health);
                health.retain(|name, _| rules.iter().any(|r| &r.name == name));
                for r in &rules {
                    health.entry(r.name.clone()).or_insert((start, None));
                }
                drop(health);
                tracing::info!(rules = rules.len(), "rotation rules replaced");
                self.rules = rules;
            }
            let _ = self.run_once(force);
            let mut c = lock(&self.shared.control);
            let deadline = std::time::Instant::now() + self.options.interval;
            loop {
                if c.stop {
                    return;
                }
                if let Some(f) = c.requested.take() {
                    force = f;
                    break;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    force = false;
                    break;
                }
                c = self
                    .shared
                    .wake
                    .wait_timeout(c, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }

    /// Starts [`Daemon::run`] on a thread named `rotate`.
    pub fn spawn(self) -> std::io::Result<(JoinHandle<()>, DaemonHandle)> {
        let handle = self.handle();
        let join = std::thread::Builder::new()
            .name("rotate".into())
            .spawn(move || self.run())?;
        Ok((join, handle))
    }
}

impl DaemonHandle {
    /// Asks the daemon to stop after the current run.
    pub fn stop(&self) {
        lock(&self.shared.control).stop = true;
        self.shared.wake.notify_all();
    }

    /// Replaces the rules (a reload): the daemon takes them before its next run, which
    /// this asks for now (not forced: only what is due rotates). Rotation state is kept per
    /// file, so a rule that keeps its files keeps its history.
    pub fn set_rules(&self, rules: Vec<RotateRule>) {
        let mut c = lock(&self.shared.control);
        c.next_rules = Some(rules);
        c.requested = Some(c.requested.unwrap_or(false));
        drop(c);
        self.shared.wake.notify_all();
    }

    /// Asks for a run now (forced or not), without waiting for it.
    pub fn trigger(&self, force: bool) {
        let mut c = lock(&self.shared.control);
        c.requested = Some(c.requested.unwrap_or(false) || force);
        drop(c);
        self.shared.wake.notify_all();
    }

    /// Returns the number of runs done so far.
    pub fn runs_done(&self) -> u64 {
        *lock(&self.shared.runs_done)
    }

    /// Waits until more than `after` runs are done, at most `timeout`; returns the count.
    pub fn wait_runs(&self, after: u64, timeout: Duration) -> u64 {
        let guard = lock(&self.shared.runs_done);
        let (g, _) = self
            .shared
            .run_done
            .wait_timeout_while(guard, timeout, |n| *n <= after)
            .unwrap_or_else(|p| p.into_inner());
        *g
    }

    /// Returns a copy of the metrics.
    pub fn metrics(&self) -> RotateMetrics {
        lock(&self.shared.metrics).clone()
    }

    /// Returns the report of the last successful run.
    pub fn last_report(&self) -> Option<RunReport> {
        lock(&self.shared.last_report).clone()
    }
}
