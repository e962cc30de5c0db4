//! The bodies of the Slack, Alertmanager and e-mail formats: the same facts as the webhook's
//! JSON, in each receiver's shape.

use logyard_model::format_rfc3339;
use serde_json::{json, Value};

use crate::Notification;

fn group_text(n: &Notification) -> String {
    n.group
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn headline(n: &Notification) -> String {
    let mut s = format!("[{}] {} ({}): {}", n.severity, n.rule, n.kind, n.message);
    let group = group_text(n);
    if !group.is_empty() {
        s.push_str(&format!(" [{group}]"));
    }
    s
}

fn facts(n: &Notification) -> String {
    format!(
        "count: {}, suppressed: {}, first seen: {}, last seen: {}",
        n.count,
        n.suppressed,
        format_rfc3339(n.first_seen),
        format_rfc3339(n.last_seen)
    )
}

/// Returns a Slack incoming-webhook body: `{"text": …}` with the headline and the facts.
pub fn slack_body(n: &Notification) -> Value {
    json!({ "text": format!("{}\n{}", headline(n), facts(n)) })
}

/// Returns an Alertmanager API v2 body: a list of one alert whose labels are the rule, the
/// severity and the group, and whose annotations carry the message and the counts.
pub fn alertmanager_body(n: &Notification) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!(n.rule));
    labels.insert("severity".into(), json!(n.severity));
    labels.insert("kind".into(), json!(n.kind));
    for (k, v) in &n.group {
        labels.insert(k.clone(), json!(v));
    }
    json!([{
        "labels": labels,
        "annotations": {
            "summary": n.message,
            "count": n.count.to_string(),
            "suppressed": n.suppressed.to_string(),
        },
        "startsAt": format_rfc3339(n.first_seen),
        "generatorURL": "",
    }])
}

/// Returns an e-mail's subject and plain-text body.
pub fn email_text(n: &Notification) -> (String, String) {
    let subject = headline(n).chars().take(200).collect::<String>();
    let mut body = format!("{}\n{}\n", headline(n), facts(n));
    if !n.entries.is_empty() {
        body.push_str("\nentries:\n");
        for e in &n.entries {
            body.push_str(&e.to_string());
            body.push('\n');
        }
    }
    (subject, body)
}
