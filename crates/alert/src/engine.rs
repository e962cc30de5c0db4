//! The evaluation: counts matches per rule and group, fires, holds back during the cooldown,
//! and keeps the history. Pure and synchronous: time comes in as an argument, so tests drive
//! it with any clock.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use logyard_model::{format_rfc3339, Level, Record};
use logyard_notify::{Delivery, Notification};
use logyard_store::MemBatch;
use serde::{Deserialize, Serialize};

use crate::rule::{group_value, Rule, RuleKind, PATTERN};

/// Entries carried by one alert.
pub const MAX_ENTRIES: usize = 10;

/// The group that collects the records of groups beyond `max_groups`.
pub const OVERFLOW_KEY: &str = "_overflow";

/// The values of a rule's `group_by` keys.
pub type Group = BTreeMap<String, String>;

/// A rule's state, for `GET /api/alerts/rules`.
#[derive(Debug, Clone)]
pub struct RuleSummary<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// The end of its latest cooldown, if one is running.
    pub cooldown_until: Option<i64>,
    /// When it last fired.
    pub last_fired: Option<i64>,
    /// Alerts fired.
    pub fired: u64,
    /// Entries held back by cooldowns.
    pub suppressed: u64,
}

/// One fired alert, as the history and `GET /api/alerts` show it: what notifiers receive,
/// with its id, when it fired and how its deliveries went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Unique within this data directory.
    pub id: u64,
    /// The rule, the group, the counts and the entries: what notifiers receive.
    #[serde(flatten)]
    pub alert: Notification,
    /// When it fired (the engine's clock), ns.
    pub fired_at: i64,
    /// One delivery per notifier, filled in once sent.
    pub notified: Vec<Delivery>,
    /// Fired while its rule was silenced: kept in the history, not sent.
    #[serde(default)]
    pub silenced: bool,
}

impl AlertRecord {
    /// An alert that fired at `fired_at`, not yet numbered nor sent.
    pub fn new(alert: Notification, fired_at: i64) -> AlertRecord {
        AlertRecord {
            id: 0,
            alert,
            fired_at,
            notified: Vec::new(),
            silenced: false,
        }
    }

    /// Returns the JSON of `GET /api/alerts`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "rule": self.alert.rule,
            "kind": self.alert.kind,
            "severity": self.alert.severity,
            "group": self.alert.group,
            "count": self.alert.count,
            "suppressed": self.alert.suppressed,
            "first_seen": format_rfc3339(self.alert.first_seen),
            "last_seen": format_rfc3339(self.alert.last_seen),
            "fired_at": format_rfc3339(self.fired_at),
            "message": self.alert.message,
            "notified": self.notified,
            "silenced": self.silenced,
        })
    }
}

/// The message templates of one batch's records, made once however many rules group by
/// pattern (records are told apart by address: they live in the batch being observed).
#[derive(Default)]
struct Templates(hashbrown::HashMap<usize, String>);

impl Templates {
    fn of(&mut self, record: &Record) -> &str {
        let key = record as *const Record as usize;
        self.0
            .entry(key)
            .or_insert_with(|| logyard_query::template(&record.message))
    }
}

/// A group as the engine's maps hold it. It hashes as its (key, value) pairs in key order,
/// as [`GroupRef`] does, so a record's group is looked up from borrowed values and built
/// only when it is new.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupKey(Group);

impl Hash for GroupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for (k, v) in &self.0 {
            k.as_str().hash(state);
            v.as_str().hash(state);
        }
    }
}

/// A record's group, borrowed: (key, value) pairs sorted by key, without duplicates.
struct GroupRef<'a>(&'a [(&'a str, Cow<'a, str>)]);

impl GroupRef<'_> {
    fn to_group(&self) -> Group {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Hash for GroupRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for (k, v) in self.0 {
            k.hash(state);
            v.as_ref().hash(state);
        }
    }
}

impl hashbrown::Equivalent<GroupKey> for GroupRef<'_> {
    fn equivalent(&self, key: &GroupKey) -> bool {
        key.0.len() == self.0.len()
            && key
                .0
                .iter()
                .zip(self.0)
                .all(|((k, v), (rk, rv))| k == rk && v == rv)
    }
}

impl From<&GroupRef<'_>> for GroupKey {
    fn from(r: &GroupRef<'_>) -> GroupKey {
        GroupKey(r.to_group())
    }
}

/// The group that collects the records of groups beyond `max_groups`.
fn overflow_group() -> Group {
    BTreeMap::from([(OVERFLOW_KEY.to_string(), "true".to_string())])
}

/// The groups of one rule.
type Groups = hashbrown::HashMap<GroupKey, GroupState>;

/// The state of one rule and group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GroupState {
    /// Engine times and record times of the matches in the window (at most `count`).
    #[serde(skip)]
    hits: VecDeque<(i64, i64)>,
    /// The last matches, turned into JSON only when the group fires.
    #[serde(skip)]
    entries: VecDeque<Record>,
    pub(crate) cooldown_until: i64,
    pub(crate) suppressed: u64,
    pub(crate) last_fired: Option<i64>,
}

impl GroupState {
    /// Notes that the group fired at `now`: it is quiet for `cooldown`.
    fn fired(&mut self, now: i64, cooldown: i64) {
        self.cooldown_until = now + cooldown;
        self.last_fired = Some(now);
    }
}

/// What a rule's state adds up to, for `GET /api/alerts/rules`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RuleState {
    pub(crate) last_fired: Option<i64>,
    /// Last time (engine clock) an entry matched: absence rules.
    pub(crate) last_match: Option<i64>,
    pub(crate) fired: u64,
    pub(crate) suppressed: u64,
}

/// Most templates an anomaly rule remembers.
const MAX_TEMPLATES: usize = 100_000;
/// Most "new pattern" alerts of one rule per cooldown; further ones share the overflow group.
const MAX_NEW_PATTERN_ALERTS: usize = 10;
/// Past windows of the short baseline.
const RECENT_WINDOWS: i64 = 12;
/// Days of the same-hour baseline.
const BASELINE_DAYS: i64 = 7;
const DAY: i64 = 86_400_000_000_000;

/// An anomaly rule's counts per window and the templates it knows.
#[derive(Debug, Clone, Default)]
struct AnomalyState {
    /// Matches per window index (`now / window`).
    buckets: BTreeMap<i64, u64>,
    /// The last window evaluated.
    evaluated: Option<i64>,
    seen: HashSet<String>,
    /// When recent "new pattern" alerts fired.
    new_alerts: VecDeque<i64>,
}

/// Returns the median of values (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// An alert that no configured rule makes: a system event such as the daily report, the
/// rotation's disk guard or a rotation rule that keeps failing. It goes to every notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The name it carries in the history and notifications (`disk-guard`, `daily-report`).
    pub rule: String,
    /// Its kind (`report`, `rotation`).
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What distinguishes one occurrence from another (a rule, a directory); the cooldown
    /// is kept per name and group.
    pub group: Group,
    /// One line saying what happened and what to do.
    pub message: String,
    /// Further events of the same name and group within this many ns are held back and
    /// counted; 0 sends every one.
    pub cooldown: i64,
}

/// The cooldown of one name and group of [`Event`]s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EventCooldown {
    pub(crate) rule: String,
    pub(crate) group: Group,
    pub(crate) until: i64,
    pub(crate) suppressed: u64,
}

/// The persisted part of the engine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Persisted {
    pub(crate) version: u32,
    pub(crate) next_id: u64,
    /// rule name → (group values, state).
    pub(crate) groups: BTreeMap<String, Vec<(Group, GroupState)>>,
    pub(crate) rules: BTreeMap<String, RuleState>,
    pub(crate) history: Vec<AlertRecord>,
    /// Anomaly rules: the message templates seen at ERROR and above, by rule.
    #[serde(default)]
    pub(crate) templates: BTreeMap<String, Vec<String>>,
    /// When the last daily summary was made.
    #[serde(default)]
    pub(crate) last_summary: Option<i64>,
    /// The cooldowns of system events.
    #[serde(default)]
    pub(crate) events: Vec<EventCooldown>,
    /// The engine clock when saved, so a restart sees the cooldowns as they were.
    pub(crate) saved_at: i64,
    /// Alerts of the history whose notifications were queued and not yet sent when saved
    /// (a stop cut them short): the next start sends them.
    #[serde(default)]
    pub(crate) pending: Vec<u64>,
    /// Rules silenced when saved: until when (ns).
    #[serde(default)]
    pub(crate) silences: BTreeMap<String, i64>,
}

/// The evaluation state of every rule.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Rule>,
    /// Each rule's `group_by` keys, sorted and without duplicates (the order of a group).
    group_keys: Vec<Vec<String>>,
    groups: Vec<Groups>,
    rule_state: Vec<RuleState>,
    anomaly: Vec<AnomalyState>,
    history: VecDeque<AlertRecord>,
    max_history: usize,
    max_groups: usize,
    next_id: u64,
    started: i64,
    last_now: Option<i64>,
    /// When the last daily summary was made.
    pub(crate) last_summary: Option<i64>,
    /// The cooldowns of system events, by name and group.
    events: HashMap<(String, Group), EventCooldown>,
    /// Alerts queued for their notifications and not delivered yet.
    pending: BTreeSet<u64>,
    /// Rules silenced, by name: until when (ns).
    silences: BTreeMap<String, i64>,
    dirty: bool,
}

impl Engine {
    /// Creates an engine for rules, keeping `max_history` alerts, started at `now`.
    pub fn new(rules: Vec<Rule>, max_history: usize, max_groups: usize, now: i64) -> Engine {
        let n = rules.len();
        let group_keys = rules
            .iter()
            .map(|r| {
                let mut keys = r.group_by.clone();
                keys.sort();
                keys.dedup();
                keys
            })
            .collect();
        Engine {
            rules,
            group_keys,
            groups: vec![Groups::default(); n],
            rule_state: vec![RuleState::default(); n],
            anomaly: vec![AnomalyState::default(); n],
            history: VecDeque::new(),
            max_history,
            max_groups,
            next_id: 1,
            started: now,
            last_now: None,
            last_summary: None,
            events: HashMap::new(),
            pending: BTreeSet::new(),
            silences: BTreeMap::new(),
            dirty: false,
        }
    }

    /// Returns the rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Accepts a clock reading: when it went backwards, every stored time moves back by the
    /// same amount, so cooldowns and windows keep their remaining length (a jump back neither
    /// extends a cooldown nor replays a window). Returns the time to use.
    fn advance(&mut self, now: i64) -> i64 {
        if let Some(last) = self.last_now {
            if now < last {
                let back = last - now;
                tracing::warn!(seconds = back / 1_000_000_000, "the clock went backwards");
                for groups in &mut self.groups {
                    for g in groups.values_mut() {
                        g.cooldown_until -= back;
                        for h in &mut g.hits {
                            h.0 -= back;
                        }
                    }
                }
                for r in &mut self.rule_state {
                    if let Some(m) = &mut r.last_match {
                        *m -= back;
                    }
                }
                for e in self.events.values_mut() {
                    e.until -= back;
                }
                self.started -= back;
            }
        }
        self.last_now = Some(now);
        now
    }

    /// Evaluates the stream rules on a batch of acknowledged records; returns the alerts
    /// that fired (already in the history).
    pub fn observe(&mut self, batch: &MemBatch, now: i64) -> Vec<AlertRecord> {
        let now = self.advance(now);
        let mut fired = Vec::new();
        let mut templates = Templates::default();
        // Rules with the same query share one evaluation per batch.
        let mut matches: Vec<Vec<&Record>> = Vec::new();
        let mut of_rule = Vec::with_capacity(self.rules.len());
        {
            let mut evaluated: HashMap<&str, usize> = HashMap::new();
            for rule in &self.rules {
                let i = *evaluated.entry(rule.query.as_str()).or_insert_with(|| {
                    matches.push(logyard_query::matching_records(&rule.filter, batch));
                    matches.len() - 1
                });
                of_rule.push(i);
            }
        }
        for ri in 0..self.rules.len() {
            let matches = &matches[of_rule[ri]];
            if matches.is_empty() {
                continue;
            }
            self.rule_state[ri].last_match = Some(now);
            if self.rules[ri].kind == RuleKind::Anomaly {
                for &record in matches {
                    if let Some(a) = self.anomaly_hit(ri, record, now, &mut templates) {
                        fired.push(a);
                    }
                }
                continue;
            }
            if !self.rules[ri].kind.on_stream() {
                continue;
            }
            for &record in matches {
                if let Some(a) = self.hit(ri, record, now, &mut templates) {
                    fired.push(a);
                }
            }
        }
        fired
    }

    fn hit(
        &mut self,
        ri: usize,
        record: &Record,
        now: i64,
        templates: &mut Templates,
    ) -> Option<AlertRecord> {
        let rule = &self.rules[ri];
        let pattern = if self.group_keys[ri].iter().any(|k| k == PATTERN) {
            templates.of(record)
        } else {
            ""
        };
        let values: Vec<(&str, Cow<'_, str>)> = self.group_keys[ri]
            .iter()
            .map(|k| {
                let v = match k.as_str() {
                    PATTERN => Cow::Borrowed(pattern),
                    other => group_value(other, record),
                };
                (k.as_str(), v)
            })
            .collect();
        let probe = GroupRef(&values);
        let groups = &mut self.groups[ri];
        let overflow = groups.len() >= self.max_groups && !groups.contains_key(&probe);
        let g = if overflow {
            groups.entry(GroupKey(overflow_group())).or_default()
        } else {
            groups.entry_ref(&probe).or_default()
        };
        if now < g.cooldown_until {
            g.suppressed += 1;
            self.rule_state[ri].suppressed += 1;
            self.dirty = true;
            return None;
        }
        g.hits.push_back((now, record.timestamp));
        while g.hits.len() as u64 > rule.count
            || g.hits.front().is_some_and(|h| h.0 <= now - rule.window)
        {
            g.hits.pop_front();
        }
        let keep = MAX_ENTRIES.min(rule.count as usize);
        if (g.hits.len() as u64) < rule.count {
            // Kept until the group fires; a record that fires at once is never copied.
            g.entries.push_back(record.clone());
            while g.entries.len() > keep {
                g.entries.pop_front();
            }
            return None;
        }
        while g.entries.len() + 1 > keep && !g.entries.is_empty() {
            g.entries.pop_front();
        }
        let mut entries: Vec<serde_json::Value> =
            g.entries.drain(..).map(|r| r.to_json(false)).collect();
        if keep > 0 {
            entries.push(record.to_json(false));
        }
        let first = g.hits.iter().map(|h| h.1).min().unwrap_or(record.timestamp);
        let count = g.hits.len() as u64;
        let message = if rule.count == 1 {
            record.message.clone()
        } else {
            format!(
                "{count} entries matching {} within {}; the last: {}",
                rule.query,
                human(rule.window),
                record.message
            )
        };
        let alert = AlertRecord::new(
            Notification {
                group: if overflow {
                    overflow_group()
                } else {
                    probe.to_group()
                },
                count,
                suppressed: std::mem::take(&mut g.suppressed),
                first_seen: first,
                last_seen: record.timestamp,
                message,
                entries,
                ..rule.notification()
            },
            now,
        );
        g.hits.clear();
        g.fired(now, rule.cooldown);
        Some(self.push(ri, alert))
    }

    /// Counts a match of an anomaly rule in its window; fires when its message pattern was
    /// never seen at ERROR or above (after a first window of learning).
    fn anomaly_hit(
        &mut self,
        ri: usize,
        record: &Record,
        now: i64,
        templates: &mut Templates,
    ) -> Option<AlertRecord> {
        let rule = &self.rules[ri];
        let a = &mut self.anomaly[ri];
        *a.buckets.entry(now.div_euclid(rule.window)).or_default() += 1;
        if record.level.is_none_or(|l| l < Level::Error) {
            return None;
        }
        let t = templates.of(record);
        if a.seen.contains(t) || a.seen.len() >= MAX_TEMPLATES {
            return None;
        }
        let t = t.to_string();
        a.seen.insert(t.clone());
        self.dirty = true;
        if now - self.started < rule.window {
            return None; // still learning what is usual
        }
        while a
            .new_alerts
            .front()
            .is_some_and(|&f| f <= now - rule.cooldown)
        {
            a.new_alerts.pop_front();
        }
        let key = if a.new_alerts.len() >= MAX_NEW_PATTERN_ALERTS {
            overflow_group()
        } else {
            BTreeMap::from([(PATTERN.to_string(), t)])
        };
        let g = self.groups[ri].entry(GroupKey(key.clone())).or_default();
        if now < g.cooldown_until {
            g.suppressed += 1;
            self.rule_state[ri].suppressed += 1;
            return None;
        }
        a.new_alerts.push_back(now);
        let alert = AlertRecord::new(
            Notification {
                group: key,
                count: 1,
                suppressed: std::mem::take(&mut g.suppressed),
                first_seen: record.timestamp,
                last_seen: record.timestamp,
                message: format!("new error pattern: {}", record.message),
                entries: vec![record.to_json(false)],
                ..rule.notification()
            },
            now,
        );
        g.fired(now, rule.cooldown);
        Some(self.push(ri, alert))
    }

    /// Compares the last closed window's count of an anomaly rule with its baseline: the
    /// same window of the past days when there are 3 or more, else the last 12 windows
    /// (at least 4). Fires when it is further from the median than 3 robust deviations
    /// (1.4826 × MAD, at least √median and 1) and than `count`.
    fn anomaly_tick(&mut self, ri: usize, now: i64) -> Option<AlertRecord> {
        let rule = &self.rules[ri];
        let w = rule.window;
        let a = &mut self.anomaly[ri];
        let idx = now.div_euclid(w) - 1;
        let first_full = self.started.div_euclid(w) + 1;
        if idx < first_full || a.evaluated.is_some_and(|e| e >= idx) {
            return None;
        }
        a.evaluated = Some(idx);
        let count = |i: i64| a.buckets.get(&i).copied().unwrap_or(0) as f64;
        let per_day = if DAY % w == 0 { DAY / w } else { 0 };
        let mut base: Vec<f64> = if per_day > 0 {
            (1..=BASELINE_DAYS)
                .map(|k| idx - k * per_day)
                .filter(|&i| i >= first_full)
                .map(count)
                .collect()
        } else {
            Vec::new()
        };
        if base.len() < 3 {
            base = (idx - RECENT_WINDOWS..idx)
                .filter(|&i| i >= first_full)
                .map(count)
                .collect();
        }
        let x = count(idx);
        let keep_from = idx - BASELINE_DAYS * per_day.max(1) - RECENT_WINDOWS;
        a.buckets.retain(|&i, _| i >= keep_from);
        if base.len() < 4 {
            return None;
        }
        let m = median(&mut base);
        let mut dev: Vec<f64> = base.iter().map(|b| (b - m).abs()).collect();
        let mad = median(&mut dev);
        let spread = (1.4826 * mad).max(m.sqrt()).max(1.0);
        if (x - m).abs() <= (3.0 * spread).max(rule.count as f64) {
            return None;
        }
        let direction = if x > m { "above" } else { "below" };
        let g = self.groups[ri]
            .entry(GroupKey(BTreeMap::from([(
                "rate".to_string(),
                direction.to_string(),
            )])))
            .or_default();
        if now < g.cooldown_until {
            g.suppressed += 1;
            self.rule_state[ri].suppressed += 1;
            return None;
        }
        let alert = AlertRecord::new(
            Notification {
                group: BTreeMap::from([("rate".to_string(), direction.to_string())]),
                count: x as u64,
                suppressed: std::mem::take(&mut g.suppressed),
                first_seen: idx * w,
                last_seen: (idx + 1) * w,
                message: format!(
                    "{x} entries matching {} in {}, {direction} the usual {m} (MAD {mad})",
                    rule.query,
                    human(w)
                ),
                entries: Vec::new(),
                ..rule.notification()
            },
            now,
        );
        g.fired(now, rule.cooldown);
        Some(self.push(ri, alert))
    }

    /// Adds an alert that no rule made (the daily summary) to the history.
    pub fn push_other(&mut self, mut alert: AlertRecord) -> AlertRecord {
        alert.id = self.next_id;
        self.next_id += 1;
        self.history.push_back(alert.clone());
        while self.history.len() > self.max_history {
            self.history.pop_front();
        }
        self.dirty = true;
        alert
    }

    /// Fires a system event, unless its name and group are in their cooldown, in which case
    /// it is counted and carried by the next one that fires.
    pub fn raise(&mut self, event: Event, now: i64) -> Option<AlertRecord> {
        let now = self.advance(now);
        let key = (event.rule.clone(), event.group.clone());
        let cooldown = self.events.entry(key).or_insert_with(|| EventCooldown {
            rule: event.rule.clone(),
            group: event.group.clone(),
            until: i64::MIN,
            suppressed: 0,
        });
        self.dirty = true;
        if now < cooldown.until {
            cooldown.suppressed += 1;
            return None;
        }
        cooldown.until = now.saturating_add(event.cooldown);
        let suppressed = std::mem::take(&mut cooldown.suppressed);
        Some(self.push_other(AlertRecord::new(
            Notification {
                rule: event.rule,
                kind: event.kind,
                severity: event.severity,
                group: event.group,
                count: 1,
                suppressed,
                first_seen: now,
                last_seen: now,
                message: event.message,
                entries: Vec::new(),
            },
            now,
        )))
    }

    fn push(&mut self, ri: usize, mut alert: AlertRecord) -> AlertRecord {
        alert.silenced = self
            .silenced_until(&alert.alert.rule, alert.fired_at)
            .is_some();
        alert.id = self.next_id;
        self.next_id += 1;
        self.rule_state[ri].fired += 1;
        self.rule_state[ri].last_fired = Some(alert.fired_at);
        self.history.push_back(alert.clone());
        while self.history.len() > self.max_history {
            self.history.pop_front();
        }
        self.dirty = true;
        alert
    }

    /// Evaluates the timer rules (absence); returns the alerts that fired.
    pub fn tick(&mut self, now: i64) -> Vec<AlertRecord> {
        let now = self.advance(now);
        let mut fired = Vec::new();
        for ri in 0..self.rules.len() {
            if self.rules[ri].kind == RuleKind::Anomaly {
                fired.extend(self.anomaly_tick(ri, now));
                continue;
            }
            let rule = &self.rules[ri];
            if rule.kind != RuleKind::Absence {
                continue;
            }
            let since = self.rule_state[ri].last_match.unwrap_or(self.started);
            if now - since < rule.window {
                continue;
            }
            let g = self.groups[ri].entry(GroupKey(Group::new())).or_default();
            if now < g.cooldown_until {
                continue;
            }
            let alert = AlertRecord::new(
                Notification {
                    group: BTreeMap::new(),
                    count: 0,
                    suppressed: std::mem::take(&mut g.suppressed),
                    first_seen: since,
                    last_seen: now,
                    message: format!(
                        "no entry matching {} for {}",
                        rule.query,
                        human(now - since)
                    ),
                    entries: Vec::new(),
                    ..rule.notification()
                },
                now,
            );
            g.fired(now, rule.cooldown);
            fired.push(self.push(ri, alert));
        }
        // Forget idle groups: nothing counted, cooldown over, nothing held back.
        for (ri, groups) in self.groups.iter_mut().enumerate() {
            let window = self.rules[ri].window;
            groups.retain(|_, g| {
                g.suppressed > 0
                    || now < g.cooldown_until
                    || g.hits.back().is_some_and(|h| h.0 > now - window)
            });
        }
        fired
    }

    /// Notes that an alert's notifications are queued: until [`Engine::delivered`], it is
    /// pending, and a state saved meanwhile sends it again at the next start.
    pub fn enqueued(&mut self, id: u64) {
        if self.pending.insert(id) {
            self.dirty = true;
        }
    }

    /// Returns the alerts of the history still waiting for their notifications, oldest
    /// first.
    pub fn pending(&self) -> Vec<AlertRecord> {
        self.history
            .iter()
            .filter(|a| self.pending.contains(&a.id))
            .cloned()
            .collect()
    }

    /// Records the deliveries of an alert in the history.
    pub fn delivered(&mut self, id: u64, deliveries: Vec<Delivery>) {
        self.pending.remove(&id);
        if let Some(a) = self.history.iter_mut().rev().find(|a| a.id == id) {
            a.notified = deliveries;
            self.dirty = true;
        }
    }

    /// Returns the history, newest first.
    pub fn history(&self) -> impl Iterator<Item = &AlertRecord> {
        self.history.iter().rev()
    }

    /// Returns the state of every rule at `now`.
    pub fn rule_summaries(&self, now: i64) -> Vec<RuleSummary<'_>> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let until = self.groups[i]
                    .values()
                    .map(|g| g.cooldown_until)
                    .filter(|&u| u > now)
                    .max();
                let s = &self.rule_state[i];
                RuleSummary {
                    rule: r,
                    cooldown_until: until,
                    last_fired: s.last_fired,
                    fired: s.fired,
                    suppressed: s.suppressed,
                }
            })
            .collect()
    }

    /// Silences a rule until `until` (ns): what it fires meanwhile enters the history
    /// without being sent. `None` lifts the silence. False when no rule has that name.
    pub fn silence(&mut self, rule: &str, until: Option<i64>) -> bool {
        if !self.rules.iter().any(|r| r.name == rule) {
            return false;
        }
        match until {
            Some(u) => self.silences.insert(rule.to_string(), u),
            None => self.silences.remove(rule),
        };
        self.dirty = true;
        true
    }

    /// Until when a rule is silenced at `now`, if it is.
    pub fn silenced_until(&self, rule: &str, now: i64) -> Option<i64> {
        self.silences.get(rule).copied().filter(|&u| u > now)
    }

    /// Returns whether something changed since the last [`Engine::take_dirty`].
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub(crate) fn persisted(&self, now: i64) -> Persisted {
        let mut groups = BTreeMap::new();
        let mut rules = BTreeMap::new();
        let mut templates = BTreeMap::new();
        for (i, r) in self.rules.iter().enumerate() {
            let live: Vec<_> = self.groups[i]
                .iter()
                .filter(|(_, g)| g.cooldown_until > now || g.suppressed > 0)
                .map(|(k, g)| (k.0.clone(), g.clone()))
                .collect();
            if !live.is_empty() {
                groups.insert(r.name.clone(), live);
            }
            rules.insert(r.name.clone(), self.rule_state[i].clone());
            if r.kind == RuleKind::Anomaly && !self.anomaly[i].seen.is_empty() {
                let mut t: Vec<String> = self.anomaly[i].seen.iter().cloned().collect();
                t.sort();
                templates.insert(r.name.clone(), t);
            }
        }
        Persisted {
            version: 1,
            next_id: self.next_id,
            groups,
            rules,
            history: self.history.iter().cloned().collect(),
            templates,
            last_summary: self.last_summary,
            events: self
                .events
                .values()
                .filter(|e| e.until > now || e.suppressed > 0)
                .cloned()
                .collect(),
            saved_at: now,
            pending: self.pending.iter().copied().collect(),
            silences: self
                .silences
                .iter()
                .filter(|(_, &u)| u > now)
                .map(|(r, &u)| (r.clone(), u))
                .collect(),
        }
    }

    pub(crate) fn restore(&mut self, p: Persisted) {
        self.next_id = p.next_id.max(1);
        self.last_summary = p.last_summary;
        self.events = p
            .events
            .into_iter()
            .map(|e| ((e.rule.clone(), e.group.clone()), e))
            .collect();
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(gs) = p.groups.get(&r.name) {
                for (k, g) in gs {
                    self.groups[i].insert(GroupKey(k.clone()), g.clone());
                }
            }
            if let Some(t) = p.templates.get(&r.name) {
                self.anomaly[i].seen = t.iter().cloned().collect();
            }
            if let Some(s) = p.rules.get(&r.name) {
                let mut s = s.clone();
                // The silence of an absence rule counts from this start.
                s.last_match = None;
                self.rule_state[i] = s;
            }
        }
        self.history = p.history.into_iter().collect();
        while self.history.len() > self.max_history {
            self.history.pop_front();
        }
        let names: BTreeSet<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        self.silences = p
            .silences
            .into_iter()
            .filter(|(r, _)| names.contains(r.as_str()))
            .collect();
        let kept: BTreeSet<u64> = self.history.iter().map(|a| a.id).collect();
        self.pending = p
            .pending
            .into_iter()
            .filter(|id| kept.contains(id))
            .collect();
    }
}

/// Formats a duration in ns as `5m`, `90s`, `2h`.
pub fn human(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    if s % 3600 == 0 && s >= 3600 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 && s >= 60 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_borrowed_group_finds_the_group_it_was_made_into() {
        let pairs = [
            ("agent", Cow::Borrowed("api")),
            ("status", Cow::Owned("500".to_string())),
        ];
        let probe = GroupRef(&pairs);
        let key = GroupKey::from(&probe);
        assert_eq!(
            key.0,
            BTreeMap::from([
                ("agent".to_string(), "api".to_string()),
                ("status".to_string(), "500".to_string()),
            ])
        );
        let hasher = hashbrown::DefaultHashBuilder::default();
        assert_eq!(hasher.hash_one(&probe), hasher.hash_one(&key));
        let mut groups = Groups::default();
        groups.insert(key, GroupState::default());
        assert!(groups.contains_key(&probe));
        let other = [("agent", Cow::Borrowed("api"))];
        assert!(!groups.contains_key(&GroupRef(&other)));
    }

    #[test]
    fn the_history_reads_its_older_numeric_times_and_writes_rfc3339() {
        let older = r#"{"id": 7, "rule": "critical", "kind": "immediate", "severity": "critical",
            "group": {"agent": "billing"}, "count": 1, "suppressed": 0,
            "first_seen": 1764237600000000001, "last_seen": 1764237600000000001,
            "fired_at": 1764237601000000000, "message": "down", "entries": [],
            "notified": []}"#;
        let alert: AlertRecord = serde_json::from_str(older).unwrap();
        assert_eq!(alert.alert.first_seen, 1_764_237_600_000_000_001);
        assert_eq!(alert.alert.group["agent"], "billing");
        assert!(!alert.silenced);
        let written = serde_json::to_value(&alert).unwrap();
        assert_eq!(written["first_seen"], "2025-11-27T10:00:00.000000001Z");
        assert_eq!(written["fired_at"], 1_764_237_601_000_000_000_i64);
        let again: AlertRecord = serde_json::from_value(written).unwrap();
        assert_eq!(again, alert);
        let bad = older.replace("1764237600000000001,", "\"yesterday\",");
        let e = serde_json::from_str::<AlertRecord>(&bad).unwrap_err();
        assert!(e.to_string().contains("not an RFC 3339 time"), "{e}");
    }
}
