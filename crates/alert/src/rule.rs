//! Rules: which entries, how many, grouped how, how quiet afterwards; and the shipped
//! defaults that apply when `logyard.toml` configures none.

use std::borrow::Cow;
use std::collections::BTreeMap;

use logyard_model::{Column, Record, Value};
use logyard_query::{parse_query, Filter, Settings};
use serde::{Deserialize, Serialize};

const MINUTE: i64 = 60_000_000_000;

/// When a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// On every matching entry (subject to cooldown).
    Immediate,
    /// On `count` matching entries within `window`, per group.
    Threshold,
    /// On an entry of a known kind of issue (the query is usually a regex), per group.
    Pattern,
    /// When no entry matched for `window`.
    Absence,
    /// A rate far from its baseline, or a message pattern never seen at ERROR or above.
    Anomaly,
}

impl RuleKind {
    /// Returns the name written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Immediate => "immediate",
            RuleKind::Threshold => "threshold",
            RuleKind::Pattern => "pattern",
            RuleKind::Absence => "absence",
            RuleKind::Anomaly => "anomaly",
        }
    }

    /// Returns whether the rule is evaluated on the stream of records (not on the timer).
    pub fn on_stream(self) -> bool {
        matches!(
            self,
            RuleKind::Immediate | RuleKind::Threshold | RuleKind::Pattern
        )
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth a look soon.
    Warning,
    /// Worth waking up for.
    Critical,
}

impl Severity {
    /// Returns the name written in the configuration and notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// When it fires.
    pub kind: RuleKind,
    /// The query text.
    pub query: String,
    /// The compiled filter.
    pub filter: Filter,
    /// Matches needed within the window.
    pub count: u64,
    /// Window (threshold) or silence (absence), ns.
    pub window: i64,
    /// Keys splitting the rule into groups.
    pub group_by: Vec<String>,
    /// Quiet time after firing, ns.
    pub cooldown: i64,
    /// How urgent.
    pub severity: Severity,
    /// Notifier names; empty means all.
    pub notify: Vec<String>,
}

/// The defaults of a kind's optional keys.
pub(crate) struct KindDefaults {
    pub(crate) count: u64,
    pub(crate) window: i64,
    pub(crate) cooldown: i64,
    pub(crate) group_by: Vec<String>,
    pub(crate) severity: Severity,
}

/// The `group_by` key of a message's template (its variable parts replaced).
pub(crate) const PATTERN: &str = "pattern";

/// The `group_by` key of the record's agent.
const AGENT: &str = Column::Agent.name();

impl Rule {
    /// A notification of this rule: its name, kind and severity, the rest empty.
    pub fn notification(&self) -> logyard_notify::Notification {
        logyard_notify::Notification {
            rule: self.name.clone(),
            kind: self.kind.as_str().into(),
            severity: self.severity.as_str().into(),
            ..Default::default()
        }
    }

    pub(crate) fn defaults(kind: RuleKind) -> KindDefaults {
        let (count, group_by, severity) = match kind {
            RuleKind::Immediate => (1, vec![AGENT, PATTERN], Severity::Critical),
            RuleKind::Threshold => (5, vec![AGENT, PATTERN], Severity::Warning),
            RuleKind::Pattern => (1, vec![AGENT], Severity::Warning),
            RuleKind::Absence => (1, vec![], Severity::Warning),
            RuleKind::Anomaly => (10, vec![], Severity::Warning),
        };
        KindDefaults {
            count,
            window: 5 * MINUTE,
            cooldown: 10 * MINUTE,
            group_by: group_by.into_iter().map(String::from).collect(),
            severity,
        }
    }

    /// Returns the group of a record: the values of the `group_by` keys (`pattern` is the
    /// message template; a missing field is the empty string).
    pub fn group_of(&self, record: &Record) -> BTreeMap<String, String> {
        self.group_with(record, &mut |r| logyard_query::template(&r.message))
    }

    /// [`Rule::group_of`], with the message template made by `template` (a cache).
    pub(crate) fn group_with(
        &self,
        record: &Record,
        template: &mut dyn FnMut(&Record) -> String,
    ) -> BTreeMap<String, String> {
        self.group_by
            .iter()
            .map(|key| {
                let value = match key.as_str() {
                    PATTERN => template(record),
                    other => group_value(other, record).into_owned(),
                };
                (key.clone(), value)
            })
            .collect()
    }
}

/// Returns the value of a `group_by` key other than `pattern` for a record, borrowed where
/// the record holds it as text (a missing field is the empty string).
pub(crate) fn group_value<'r>(key: &str, record: &'r Record) -> Cow<'r, str> {
    match Column::parse(key) {
        Some(Column::Agent) => Cow::Borrowed(&record.agent),
        Some(Column::Host) => Cow::Borrowed(&record.host),
        Some(Column::Source) => Cow::Borrowed(&record.source),
        Some(Column::Level) => Cow::Borrowed(record.level.map(|l| l.as_str()).unwrap_or_default()),
        Some(Column::Message) => Cow::Borrowed(&record.message),
        _ => match record.fields.get(key) {
            Some(Value::Str(s)) => Cow::Borrowed(s),
            Some(v) => Cow::Owned(match v.to_json() {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }),
            None => Cow::Borrowed(""),
        },
    }
}

/// A shipped rule: its name, kind, query and severity, and where it differs from its kind's
/// defaults, its count and groups.
#[derive(Debug, Clone, Copy)]
pub struct DefaultRule {
    /// The rule's name.
    pub name: &'static str,
    /// When it fires.
    pub kind: RuleKind,
    /// The query text.
    pub query: &'static str,
    /// How urgent.
    pub severity: Severity,
    /// Matches needed within the window; `None`: the kind's default.
    pub count: Option<u64>,
    /// Keys splitting the rule into groups; `None`: the kind's default.
    pub group_by: Option<&'static [&'static str]>,
}

/// The shipped rules.
pub const DEFAULT_RULES: &[DefaultRule] = &[
    DefaultRule {
        name: "critical",
        kind: RuleKind::Immediate,
        query: "level:>=CRITICAL",
        severity: Severity::Critical,
        count: None,
        group_by: None,
    },
    DefaultRule {
        name: "many-errors",
        kind: RuleKind::Threshold,
        query: "level:ERROR",
        severity: Severity::Warning,
        count: None,
        group_by: None,
    },
    DefaultRule {
        name: "database-connection",
        kind: RuleKind::Pattern,
        query: r#"NOT level:<=INFO ~"(?i)(database|db|postgres|mysql|mongo|redis|sql).*connect.*(refused|failed|lost|closed|reset|timed? ?out|error)|(?i)could not connect to (the )?(server|database)|(?i)connection pool exhausted""#,
        severity: Severity::Critical,
        count: None,
        group_by: None,
    },
    DefaultRule {
        name: "out-of-memory",
        kind: RuleKind::Pattern,
        query: r#"~"(?i)out of memory|OutOfMemoryError|oom[- ]?kill|cannot allocate memory|memory exhausted""#,
        severity: Severity::Critical,
        count: None,
        group_by: None,
    },
    // More than 5 failed logins within 5 minutes from one address (the `ip` field), as the
    // brute-force analysis (`logyard auth`) counts them: single failed logins are routine.
    DefaultRule {
        name: "authentication-failures",
        kind: RuleKind::Threshold,
        query: r#"NOT level:<=DEBUG ip:* ~"(?i)authentication fail|failed password|invalid (user|credentials|password)|login failed|unauthori[sz]ed|permission denied [(]publickey""#,
        severity: Severity::Warning,
        count: Some(6),
        group_by: Some(&["ip"]),
    },
    DefaultRule {
        name: "disk-full",
        kind: RuleKind::Pattern,
        query: r#"~"(?i)no space left on device|disk (is )?full|disk quota exceeded|ENOSPC""#,
        severity: Severity::Critical,
        count: None,
        group_by: None,
    },
    DefaultRule {
        name: "timeouts",
        kind: RuleKind::Pattern,
        query: r#"NOT level:<=INFO ~"(?i)timed? ?out|deadline exceeded|ETIMEDOUT""#,
        severity: Severity::Warning,
        count: None,
        group_by: None,
    },
    DefaultRule {
        name: "error-anomaly",
        kind: RuleKind::Anomaly,
        query: "level:>=ERROR",
        severity: Severity::Warning,
        count: None,
        group_by: None,
    },
];

/// Returns the rules in effect when none is configured.
pub fn default_rules(settings: &Settings) -> Vec<Rule> {
    DEFAULT_RULES
        .iter()
        .map(|r| {
            let DefaultRule {
                name,
                kind,
                query,
                severity,
                count,
                group_by,
            } = *r;
            let d = Rule::defaults(kind);
            let filter = parse_query(query, 0, settings)
                .expect("the default rules parse")
                .filter;
            Rule {
                name: name.into(),
                kind,
                query: query.into(),
                filter,
                count: count.unwrap_or(d.count),
                window: d.window,
                group_by: group_by
                    .map_or(d.group_by, |g| g.iter().map(|k| (*k).to_string()).collect()),
                cooldown: d.cooldown,
                severity,
                notify: Vec::new(),
            }
        })
        .collect()
}
