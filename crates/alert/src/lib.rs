//! Alerting: rules over the stream of acknowledged records, cooldown, history, notifications.
//!
//! Where it sits: the store hands every acknowledged batch to [`AlertHandle::spawn`]'s task
//! through `Store::subscribe()` (a broadcast: a slow alert task lags and counts what it missed,
//! it never slows ingestion). The [`Engine`] evaluates immediate, threshold and pattern rules on
//! each batch, absence rules on a timer, holds a group back during its cooldown (counting what
//! it held back), and keeps the history. Fired alerts go to the notifiers of `logyard-notify`
//! on another task; the state is saved under `<data_dir>/state/alerts.json`.
//!
//! ```no_run
//! # async fn f(store: std::sync::Arc<logyard_store::Store>) {
//! use logyard_alert::{AlertHandle, AlertsConfig};
//! use logyard_model::SystemClock;
//! let built = AlertsConfig::default().build(&Default::default()).unwrap();
//! let handle = AlertHandle::new(built, std::sync::Arc::new(SystemClock), None);
//! let task = handle.spawn(store.subscribe());
//! // … later
//! handle.stop(task).await;
//! # }
//! ```

mod config;
mod engine;
mod metrics;
mod rule;
mod state;
mod summary;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use logyard_model::{format_rfc3339, Clock};
use logyard_notify::{Delivery, Notifier};
use logyard_store::MemBatch;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, Notify};

pub use config::{AlertsConfig, Built, RuleConfig, DEFAULT_WEBHOOK, DEFAULT_WEBHOOK_ENV};
pub use engine::{AlertRecord, Engine, Event, Group, RuleSummary, MAX_ENTRIES, OVERFLOW_KEY};
pub use metrics::Metrics;
pub use rule::{default_rules, DefaultRule, Rule, RuleKind, Severity, DEFAULT_RULES};
pub use summary::SUMMARY_RULE;

/// Why the alerting configuration or state is refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A rule's query does not parse; `position` is a byte offset into it.
    #[error("rule {rule:?}: invalid query at position {position}: {message}\n  {query}\n  {caret}^\nhint: the query language is described in docs/query.md", caret = " ".repeat(*position))]
    Query {
        /// The rule.
        rule: String,
        /// The query text.
        query: String,
        /// Byte offset of the problem.
        position: usize,
        /// What was expected.
        message: String,
    },
    /// A rule's key has a bad value.
    #[error("rule {rule:?}: {message}\nhint: the keys of [[alerts.rules]] are described in docs/alerting.md")]
    Invalid {
        /// The rule (or `[alerts]`).
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// A notifier is misconfigured.
    #[error("{0}\nhint: the keys of [[alerts.notifiers]] are described in docs/alerting.md")]
    Notifier(String),
    /// No rule has the name asked for.
    #[error("no alert rule is named {0:?}; GET /api/alerts/rules lists them")]
    UnknownRule(String),
    /// The state file cannot be read or written.
    #[error("alert state {path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Whether a notifier's last delivery arrived.
#[derive(Debug, Clone, Default)]
struct NotifierStatus {
    sent: u64,
    failed: u64,
    consecutive_failures: u64,
    last_error: Option<String>,
}

/// Alerts waiting for their notifications.
const QUEUE: usize = 1024;

/// How long a stop waits for the notifications under way; what is not sent by then is
/// saved as pending and sent at the next start.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

struct Shared {
    engine: Mutex<Engine>,
    /// Replaced whole by [`AlertHandle::reconfigure`].
    notifiers: Mutex<Vec<Notifier>>,
    status: Mutex<HashMap<String, NotifierStatus>>,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    state_path: Option<PathBuf>,
    evaluate_every: i64,
    daily_summary_at: Option<i64>,
    query: logyard_query::Settings,
    store: Mutex<Option<Arc<logyard_store::Store>>>,
    /// The notification queue, once the tasks run.
    queue: Mutex<Option<mpsc::Sender<AlertRecord>>>,
    stopping: AtomicBool,
    stop: Notify,
}

/// The running alerting: its state, the API's views of it, its metrics.
#[derive(Clone)]
pub struct AlertHandle {
    shared: Arc<Shared>,
}

/// The tasks of a running [`AlertHandle`], for [`AlertHandle::stop`].
pub struct AlertTask {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AlertHandle {
    /// Creates the alerting of a built configuration; with a state file, restores the
    /// cooldowns and the history saved in it (a missing file is a fresh start; an unreadable
    /// one is logged and set aside).
    pub fn new(built: Built, clock: Arc<dyn Clock>, state_path: Option<PathBuf>) -> AlertHandle {
        let now = clock.now_ns();
        let mut engine = Engine::new(built.rules, built.history, built.max_groups, now);
        if let Some(path) = &state_path {
            match state::load(path) {
                Ok(Some(p)) => engine.restore(p),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "starting with empty alert state"),
            }
        }
        let metrics = Metrics::default();
        AlertHandle {
            shared: Arc::new(Shared {
                engine: Mutex::new(engine),
                notifiers: Mutex::new(built.notifiers),
                status: Mutex::new(HashMap::new()),
                metrics,
                clock,
                state_path,
                evaluate_every: built.evaluate_every,
                daily_summary_at: built.daily_summary_at,
                query: built.query,
                store: Mutex::new(None),
                queue: Mutex::new(None),
                stopping: AtomicBool::new(false),
                stop: Notify::new(),
            }),
        }
    }

    fn notifiers(&self) -> Vec<Notifier> {
        self.shared
            .notifiers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts new rules and notifiers in effect while running (a reload): a rule that keeps
    /// its name keeps its cooldowns, counters and history; alerts already queued go to the
    /// notifiers of the new configuration. The other settings of `built` (history size,
    /// timer, daily summary) are those of the start.
    pub fn reconfigure(&self, built: Built) {
        let now = self.shared.clock.now_ns();
        {
            let mut engine = self.engine();
            let kept = engine.persisted(now);
            let mut next = Engine::new(built.rules, built.history, built.max_groups, now);
            next.restore(kept);
            *engine = next;
        }
        *self
            .shared
            .notifiers
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = built.notifiers;
        self.save();
    }

    /// Gives the store the daily error summary is computed from.
    pub fn with_store(self, store: Arc<logyard_store::Store>) -> AlertHandle {
        *self.shared.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
        self
    }

    /// Starts the evaluation of the stream, the timer and the notification tasks on the
    /// current tokio runtime.
    pub fn spawn(&self, mut rx: broadcast::Receiver<Arc<MemBatch>>) -> AlertTask {
        let (tx, mut queue) = mpsc::channel::<AlertRecord>(QUEUE);
        *self.shared.queue.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx.clone());
        // What the last run queued and could not send before it stopped goes first.
        let pending = self.engine().pending();
        if !pending.is_empty() {
            tracing::info!(
                alerts = pending.len(),
                "sending the notifications left pending by the last stop"
            );
            self.enqueue(&tx, pending);
        }
        let s = self.clone();
        let tx_stream = tx.clone();
        let stream = tokio::spawn(async move {
            loop {
                let batch = tokio::select! {
                    _ = s.shared.stop.notified() => break,
                    b = rx.recv() => b,
                };
                match batch {
                    Ok(batch) => {
                        let fired = s.observe(&batch);
                        s.enqueue(&tx_stream, fired);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        s.shared.metrics.lagged(n);
                        tracing::warn!(
                            batches = n,
                            "alerting fell behind the stream; batches missed"
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
                if s.shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
            }
        });
        let s = self.clone();
        let timer = tokio::spawn(async move {
            let period = std::time::Duration::from_nanos(s.shared.evaluate_every as u64);
            let mut interval = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = s.shared.stop.notified() => break,
                    _ = interval.tick() => {}
                }
                // The daily summary reads the store: off the async workers.
                let step = s.clone();
                let fired = tokio::task::spawn_blocking(move || step.evaluate_timers())
                    .await
                    .unwrap_or_default();
                s.enqueue(&tx, fired);
                if s.shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
            }
        });
        let s = self.clone();
        let notify = tokio::spawn(async move {
            while let Some(alert) = queue.recv().await {
                s.deliver(&alert).await;
            }
        });
        AlertTask {
            tasks: vec![stream, timer, notify],
        }
    }

    /// Fires a system event (the daily report, the rotation's disk guard…) through every
    /// notifier, subject to its own cooldown; callable from any thread. Before
    /// [`AlertHandle::spawn`] or after [`AlertHandle::stop`], it only enters the history.
    /// Returns the alert when one fired.
    pub fn raise(&self, event: Event) -> Option<AlertRecord> {
        let now = self.shared.clock.now_ns();
        let alert = self.engine().raise(event, now)?;
        self.count(std::slice::from_ref(&alert));
        let queue = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(tx) = queue {
            self.enqueue(&tx, vec![alert.clone()]);
        }
        Some(alert)
    }

    /// Stops the tasks and saves the state: notifications under way get a short grace
    /// (half a second); those still queued or being sent are saved as pending and sent at
    /// the next start.
    pub async fn stop(&self, task: AlertTask) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Events raised from now on stay in the history; the queue can then drain and close.
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.shared.stop.notify_waiters();
        let mut tasks = task.tasks;
        let notify = tasks.pop();
        // The stream and timer tasks hold the queue's senders; once they end, the
        // notification task drains the queue, for a bounded time: a receiver that is down
        // must not hold the shutdown (what is left unsent stays in the history).
        for t in tasks {
            if t.await.is_err() {
                tracing::error!("an alerting task panicked");
            }
        }
        if let Some(mut n) = notify {
            if tokio::time::timeout(STOP_GRACE, &mut n).await.is_err() {
                n.abort();
                let left = self.engine().pending().len();
                tracing::warn!(
                    alerts = left,
                    "stopped with notifications still being sent: kept for the next start"
                );
            }
        }
        self.save();
    }

    /// Evaluates a batch now (the stream task's step; tests call it directly).
    pub fn observe(&self, batch: &MemBatch) -> Vec<AlertRecord> {
        let now = self.shared.clock.now_ns();
        let fired = self.engine().observe(batch, now);
        self.count(&fired);
        fired
    }

    /// Evaluates the timer rules now and saves the state if it changed.
    pub fn evaluate_timers(&self) -> Vec<AlertRecord> {
        let now = self.shared.clock.now_ns();
        let mut fired = self.engine().tick(now);
        self.count(&fired);
        fired.extend(self.daily_summary(now));
        let dirty = self.engine().take_dirty();
        if dirty {
            self.save();
        }
        fired
    }

    /// Makes the daily error summary when its time of day has come (within the hour after
    /// it, once a day).
    fn daily_summary(&self, now: i64) -> Option<AlertRecord> {
        let at = self.shared.daily_summary_at?;
        let due = now.div_euclid(summary::DAY) * summary::DAY + at;
        if now < due || now - due >= summary::HOUR {
            return None;
        }
        if self.engine().last_summary.is_some_and(|l| l >= due) {
            return None;
        }
        let store = self
            .shared
            .store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let alert = match summary::make(&store, now, &self.shared.query) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot make the daily error summary");
                return None;
            }
        };
        let mut engine = self.engine();
        engine.last_summary = Some(now);
        Some(engine.push_other(alert))
    }

    fn count(&self, fired: &[AlertRecord]) {
        for a in fired {
            self.shared.metrics.fired(&a.alert.rule);
        }
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.shared.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enqueue(&self, tx: &mpsc::Sender<AlertRecord>, fired: Vec<AlertRecord>) {
        for a in fired {
            if a.silenced || self.targets(&a.alert.rule).is_empty() {
                continue;
            }
            self.engine().enqueued(a.id);
            if let Err(mpsc::error::TrySendError::Full(a)) = tx.try_send(a) {
                // Never wait on the notifiers here: the alert stays in the history.
                self.shared.metrics.dropped();
                let failed = self
                    .targets(&a.alert.rule)
                    .iter()
                    .map(|n| Delivery {
                        notifier: n.name().into(),
                        ok: false,
                        attempts: 0,
                        error: Some("the notification queue was full".into()),
                    })
                    .collect();
                self.engine().delivered(a.id, failed);
            }
        }
    }

    fn targets(&self, rule: &str) -> Vec<Notifier> {
        let notify = self
            .engine()
            .rules()
            .iter()
            .find(|r| r.name == rule)
            .map(|r| r.notify.clone())
            .unwrap_or_default();
        self.notifiers()
            .iter()
            .filter(|n| notify.is_empty() || notify.iter().any(|x| x == n.name()))
            .cloned()
            .collect()
    }

    /// Sends one alert to its rule's notifiers (in parallel) and records the deliveries.
    pub async fn deliver(&self, alert: &AlertRecord) {
        let mut set = tokio::task::JoinSet::new();
        let targets = self.targets(&alert.alert.rule);
        for (i, n) in targets.into_iter().enumerate() {
            let notification = alert.alert.clone();
            set.spawn(async move { (i, n.send(&notification).await) });
        }
        let mut deliveries = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(d) = r {
                deliveries.push(d);
            }
        }
        deliveries.sort_by_key(|d| d.0);
        let deliveries: Vec<Delivery> = deliveries.into_iter().map(|d| d.1).collect();
        {
            let mut status = self.shared.status.lock().unwrap_or_else(|p| p.into_inner());
            for d in &deliveries {
                let s = status.entry(d.notifier.clone()).or_default();
                if d.ok {
                    s.sent += 1;
                    s.consecutive_failures = 0;
                } else {
                    s.failed += 1;
                    s.consecutive_failures += 1;
                    s.last_error = d.error.clone();
                    self.shared.metrics.notifier_failed(&d.notifier);
                    tracing::warn!(notifier = %d.notifier, rule = %alert.alert.rule, error = ?d.error, "notification not delivered");
                }
            }
        }
        self.engine().delivered(alert.id, deliveries);
    }

    /// Silences a rule for `duration` from now (zero lifts it): what it fires meanwhile is
    /// kept in the history and not sent. Saved at once, so a restart keeps it. Returns the
    /// end of the silence, or `None` when lifted; an error when no rule has that name.
    pub fn silence(
        &self,
        rule: &str,
        duration: std::time::Duration,
    ) -> Result<Option<i64>, AlertError> {
        let now = self.shared.clock.now_ns();
        let until = (!duration.is_zero())
            .then(|| now.saturating_add(i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)));
        if !self.engine().silence(rule, until) {
            return Err(AlertError::UnknownRule(rule.to_string()));
        }
        self.save();
        Ok(until)
    }

    /// Writes the state file now (tmp + fsync + rename).
    pub fn save(&self) {
        let Some(path) = &self.shared.state_path else {
            return;
        };
        let p = self.engine().persisted(self.shared.clock.now_ns());
        if let Err(e) = state::save(path, &p) {
            tracing::error!(error = %e, "cannot save the alert state");
        }
    }

    /// Returns the history, newest first, as `GET /api/alerts` answers.
    pub fn alerts_json(&self, limit: usize) -> Value {
        let engine = self.engine();
        let alerts: Vec<Value> = engine.history().take(limit).map(|a| a.to_json()).collect();
        json!({ "alerts": alerts })
    }

    /// Returns the rules and the notifiers' status, as `GET /api/alerts/rules` answers.
    pub fn rules_json(&self) -> Value {
        let now = self.shared.clock.now_ns();
        let engine = self.engine();
        let rules: Vec<Value> = engine
            .rule_summaries(now)
            .into_iter()
            .map(|s| {
                json!({
                    "name": s.rule.name,
                    "kind": s.rule.kind.as_str(),
                    "query": s.rule.query,
                    "severity": s.rule.severity.as_str(),
                    "cooldown_until": s.cooldown_until.map(format_rfc3339),
                    "silenced_until": engine.silenced_until(&s.rule.name, now).map(format_rfc3339),
                    "last_fired": s.last_fired.map(format_rfc3339),
                    "fired": s.fired,
                    "suppressed": s.suppressed,
                })
            })
            .collect();
        drop(engine);
        let status = self.shared.status.lock().unwrap_or_else(|p| p.into_inner());
        let notifiers: Vec<Value> = self
            .notifiers()
            .iter()
            .map(|n| {
                let s = status.get(n.name()).cloned().unwrap_or_default();
                json!({
                    "name": n.name(),
                    "type": n.kind().as_str(),
                    "failing": s.consecutive_failures > 0,
                    "sent": s.sent,
                    "failed": s.failed,
                    "last_error": s.last_error,
                })
            })
            .collect();
        json!({ "rules": rules, "notifiers": notifiers })
    }

    /// Returns the Prometheus text of the alerting metrics.
    pub fn render_metrics(&self) -> String {
        let suppressed: Vec<(String, u64)> = self
            .engine()
            .rule_summaries(i64::MIN)
            .into_iter()
            .map(|s| (s.rule.name.clone(), s.suppressed))
            .collect();
        self.shared.metrics.render_with(&suppressed)
    }

    /// Returns the counters (lagged batches for tests and health).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }
}
