//! The daily error summary sent through the notifiers: the last 24 hours of
//! `logyard_query::error_summary` as one notification.

use std::collections::BTreeMap;

use logyard_notify::Notification;
use logyard_query::{error_summary, Filter, QueryError, Settings};
use logyard_store::Store;

use crate::engine::{AlertRecord, MAX_ENTRIES};

pub(crate) const HOUR: i64 = 3_600_000_000_000;
pub(crate) const DAY: i64 = 24 * HOUR;

/// The rule name of the summary in notifications and the history.
pub const SUMMARY_RULE: &str = "daily-summary";

/// Summarises the errors of the 24 hours before `now`.
pub(crate) fn make(
    store: &Store,
    now: i64,
    settings: &Settings,
) -> Result<AlertRecord, QueryError> {
    let since = now - DAY;
    let s = error_summary(&store.snapshot(), since, &Filter::All, settings)?;
    let mut message = format!(
        "{} error entries from {} of {} agents in the last 24 h",
        s.total_error_entries,
        s.agents.len(),
        s.total_agents
    );
    let agents: Vec<String> = s
        .agents
        .iter()
        .take(5)
        .map(|a| format!("{} ({})", a.name, a.count))
        .collect();
    if !agents.is_empty() {
        message.push_str(&format!("; most: {}", agents.join(", ")));
    }
    let patterns: Vec<String> = s
        .top_patterns
        .iter()
        .take(3)
        .map(|(t, n, _)| format!("{t} ({n})"))
        .collect();
    if !patterns.is_empty() {
        message.push_str(&format!("; top patterns: {}", patterns.join(", ")));
    }
    Ok(AlertRecord::new(
        Notification {
            rule: SUMMARY_RULE.into(),
            kind: "summary".into(),
            severity: "info".into(),
            group: BTreeMap::new(),
            count: s.total_error_entries,
            suppressed: 0,
            first_seen: since,
            last_seen: now,
            message,
            entries: s
                .critical
                .iter()
                .take(MAX_ENTRIES)
                .map(|r| r.to_json(false))
                .collect(),
        },
        now,
    ))
}
