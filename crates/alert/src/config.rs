//! `[alerts]`, `[[alerts.rules]]` and `[[alerts.notifiers]]`: [`AlertsConfig`] mirrors the
//! keys; [`AlertsConfig::build`] checks them (query syntax with its position, durations,
//! notifier URLs and names) into [`Rule`]s and notifiers.

use std::collections::HashSet;

use logyard_notify::{Notifier, NotifierConfig};
use logyard_query::{parse_query, Settings};
use serde::Deserialize;

use crate::rule::{default_rules, Rule, RuleKind, Severity};

use crate::AlertError;

/// The receiver notified when no `[[alerts.notifiers]]` is configured.
pub const DEFAULT_WEBHOOK: &str = "http://localhost:8060";

/// The environment variable whose value, when set and not empty, replaces
/// [`DEFAULT_WEBHOOK`] as the default webhook's URL (the teams' alert receiver).
pub const DEFAULT_WEBHOOK_ENV: &str = "HERMES_URL";

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Turns alerting off entirely when false.
    pub enabled: bool,
    /// `[[alerts.rules]]`; empty means the shipped default rules.
    pub rules: Vec<RuleConfig>,
    /// `[[alerts.notifiers]]`; empty means a webhook to [`DEFAULT_WEBHOOK`].
    pub notifiers: Vec<NotifierConfig>,
    /// Alerts kept in the history (newest ones).
    pub history: usize,
    /// How often absence rules are checked and the state is saved (default `10s`).
    pub evaluate_every: String,
    /// Most groups one rule tracks; further groups share one overflow group.
    pub max_groups: usize,
    /// When to send the daily error summary through the notifiers (`"06:00"`, UTC); off
    /// when absent.
    pub daily_summary_at: Option<String>,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            enabled: true,
            rules: Vec::new(),
            notifiers: Vec::new(),
            history: 1000,
            evaluate_every: "10s".into(),
            max_groups: 1000,
            daily_summary_at: None,
        }
    }
}

/// One `[[alerts.rules]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name.
    pub name: String,
    /// Which entries, in the query language (filters only).
    #[serde(default)]
    pub query: Option<String>,
    /// immediate | threshold | pattern | absence | anomaly.
    pub kind: RuleKind,
    /// Matches within `window` that fire (threshold; default 5).
    #[serde(default)]
    pub count: Option<u64>,
    /// The window of a threshold, or the silence of an absence (default 5m).
    #[serde(default)]
    pub window: Option<String>,
    /// Keys whose values split the rule into groups: agent, host, source, level, pattern
    /// (the message template) or any field.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// Quiet time of a group after it fired (default 10m).
    #[serde(default)]
    pub cooldown: Option<String>,
    /// info | warning | critical.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Notifier names; default all of them.
    #[serde(default)]
    pub notify: Option<Vec<String>>,
}

/// What [`AlertsConfig::build`] makes.
#[derive(Debug)]
pub struct Built {
    /// The rules in effect.
    pub rules: Vec<Rule>,
    /// The notifiers.
    pub notifiers: Vec<Notifier>,
    /// Alerts kept.
    pub history: usize,
    /// Timer period, ns.
    pub evaluate_every: i64,
    /// Groups per rule.
    pub max_groups: usize,
    /// Time of day (ns after midnight UTC) of the daily error summary.
    pub daily_summary_at: Option<i64>,
    /// Budgets of the summary's queries.
    pub query: Settings,
}

/// Parses `HH:MM` into ns after midnight.
fn time_of_day(text: &str) -> Option<i64> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some((h * 60 + m) * 60_000_000_000)
}

fn duration(rule: &str, key: &str, text: &str) -> Result<i64, AlertError> {
    match logyard_model::parse_duration(text) {
        Ok(ns) if ns > 0 => Ok(ns),
        _ => Err(AlertError::Invalid {
            rule: rule.into(),
            message: format!("{key} = {text:?} is not a duration above zero; write 30s, 5m, 1h"),
        }),
    }
}

impl RuleConfig {
    /// Checks the rule and compiles its query.
    pub fn build(&self, settings: &Settings, notifiers: &[String]) -> Result<Rule, AlertError> {
        let name = self.name.clone();
        let invalid = |message: String| AlertError::Invalid {
            rule: name.clone(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("the name is empty".into()));
        }
        let query = self.query.clone().unwrap_or_else(|| "*".into());
        let parsed =
            parse_query(&query, logyard_model::now_ns(), settings).map_err(|e| match e {
                logyard_query::QueryError::Syntax { message, position } => AlertError::Query {
                    rule: name.clone(),
                    query: query.clone(),
                    position,
                    message,
                },
                other => invalid(other.to_string()),
            })?;
        if !parsed.pipes.is_empty() {
            return Err(invalid(format!(
                "query {query:?} has pipes; an alert rule takes a filter only"
            )));
        }
        let d = Rule::defaults(self.kind);
        let window = match &self.window {
            Some(w) => duration(&name, "window", w)?,
            None => d.window,
        };
        let cooldown = match &self.cooldown {
            Some(c) => duration(&name, "cooldown", c)?,
            None => d.cooldown,
        };
        let count = self.count.unwrap_or(d.count);
        if count == 0 {
            return Err(invalid("count must be at least 1".into()));
        }
        let notify = self.notify.clone().unwrap_or_default();
        for n in &notify {
            if !notifiers.contains(n) {
                return Err(invalid(format!(
                    "notify names {n:?}, which is not a notifier; the notifiers are {notifiers:?}"
                )));
            }
        }
        Ok(Rule {
            name,
            kind: self.kind,
            query,
            filter: parsed.filter,
            count,
            window,
            group_by: self.group_by.clone().unwrap_or(d.group_by),
            cooldown,
            severity: self.severity.unwrap_or(d.severity),
            notify,
        })
    }
}

impl AlertsConfig {
    /// Checks every rule and notifier and builds them; without rules, the default rules;
    /// without notifiers, the default webhook.
    pub fn build(&self, settings: &Settings) -> Result<Built, AlertError> {
        let notifier_configs = if self.notifiers.is_empty() {
            let mut default = NotifierConfig::webhook("default", DEFAULT_WEBHOOK);
            if std::env::var(DEFAULT_WEBHOOK_ENV).is_ok_and(|v| !v.trim().is_empty()) {
                default.url = None;
                default.url_env = Some(DEFAULT_WEBHOOK_ENV.into());
            }
            vec![default]
        } else {
            self.notifiers.clone()
        };
        let mut names = Vec::new();
        let mut notifiers = Vec::new();
        for n in &notifier_configs {
            if names.contains(&n.name) {
                return Err(AlertError::Notifier(format!(
                    "two notifiers are named {:?}; names must be unique",
                    n.name
                )));
            }
            names.push(n.name.clone());
            notifiers.push(n.build().map_err(|e| AlertError::Notifier(e.to_string()))?);
        }
        let rules = if self.rules.is_empty() {
            default_rules(settings)
        } else {
            let mut seen = HashSet::new();
            let mut rules = Vec::new();
            for r in &self.rules {
                if !seen.insert(r.name.clone()) {
                    return Err(AlertError::Invalid {
                        rule: r.name.clone(),
                        message: "two rules have this name; names must be unique".into(),
                    });
                }
                rules.push(r.build(settings, &names)?);
            }
            rules
        };
        let evaluate_every = duration("[alerts]", "evaluate_every", &self.evaluate_every)?;
        if self.history == 0 {
            return Err(AlertError::Invalid {
                rule: "[alerts]".into(),
                message: "history must be at least 1".into(),
            });
        }
        let daily_summary_at = match &self.daily_summary_at {
            None => None,
            Some(text) => Some(time_of_day(text).ok_or_else(|| AlertError::Invalid {
                rule: "[alerts]".into(),
                message: format!(
                    "daily_summary_at = {text:?} is not a time of day; write \"06:00\" (UTC)"
                ),
            })?),
        };
        Ok(Built {
            daily_summary_at,
            query: settings.clone(),
            rules,
            notifiers,
            history: self.history,
            evaluate_every,
            max_groups: self.max_groups.max(1),
        })
    }
}
