//! Alerts through the running tasks to real receivers on 127.0.0.1: one HTTP receiver per
//! format (webhook, Slack, Alertmanager), an SMTP server (Python's aiosmtpd), retries,
//! timeouts, and a flood of 100,000 CRITICAL records.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use logyard_alert::AlertHandle;
use logyard_model::Level;
use logyard_model::ManualClock;
use serde_json::json;
use tokio::sync::broadcast;

fn handle(toml: &str, clock: Arc<ManualClock>) -> AlertHandle {
    let built = alerts_config(toml).build(&Default::default()).unwrap();
    AlertHandle::new(built, clock, None)
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_slack_and_alertmanager_receive_exactly_the_expected_notifications() {
    let webhook = Receiver::start(vec![]).await;
    let slack = Receiver::start(vec![]).await;
    let am = Receiver::start(vec![]).await;
    let clock = Arc::new(ManualClock::new(T0));
    let h = handle(
        &format!(
            r#"[alerts]
[[alerts.rules]]
name = "many-errors"
query = "level:ERROR"
kind = "threshold"
count = 3
window = "1m"
group_by = ["agent"]
cooldown = "10m"
notify = ["hermes", "slack", "am"]
[[alerts.notifiers]]
name = "hermes"
type = "webhook"
url = "{}"
[[alerts.notifiers]]
name = "slack"
type = "slack"
url = "{}/services/T/B/X"
[[alerts.notifiers]]
name = "am"
type = "alertmanager"
url = "{}"
"#,
            webhook.url, slack.url, am.url
        ),
        clock.clone(),
    );
    let (tx, rx) = broadcast::channel(16);
    let task = h.spawn(rx);
    let err = |t: i64, m: &str| rec(t, Level::Error, "billing", m);
    tx.send(batch(vec![
        err(T0, "charge failed"),
        err(T0 + SEC, "charge failed"),
    ]))
    .unwrap();
    settle().await;
    assert!(webhook.bodies().is_empty());
    clock.set(T0 + 2 * SEC);
    tx.send(batch(vec![err(T0 + 2 * SEC, "refund failed")]))
        .unwrap();
    // Held back by the cooldown.
    settle().await;
    clock.set(T0 + 3 * SEC);
    tx.send(batch(vec![
        err(T0 + 3 * SEC, "charge failed"),
        err(T0 + 4 * SEC, "x"),
    ]))
    .unwrap();
    let got = webhook.wait_for(1).await;
    settle().await;
    assert_eq!(webhook.bodies().len(), 1);
    let mut body = got[0].clone();
    assert_eq!(body["entries"].as_array().unwrap().len(), 3);
    assert_eq!(body["entries"][0]["message"], "charge failed");
    body["entries"] = json!([]);
    assert_eq!(
        body,
        json!({
            "rule": "many-errors", "kind": "threshold", "severity": "warning",
            "group": {"agent": "billing"}, "count": 3, "suppressed": 0,
            "first_seen": "2026-11-27T10:00:00Z", "last_seen": "2026-11-27T10:00:02Z",
            "message": "3 entries matching level:ERROR within 1m; the last: refund failed",
            "entries": []
        })
    );
    let s = slack.wait_for(1).await;
    assert_eq!(slack.got.lock().unwrap()[0].0, "/services/T/B/X");
    let text = s[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("[warning] many-errors (threshold): 3 entries"),
        "{text}"
    );
    assert!(
        text.contains("agent=billing") && text.contains("count: 3, suppressed: 0"),
        "{text}"
    );
    let a = am.wait_for(1).await;
    assert_eq!(am.got.lock().unwrap()[0].0, "/api/v2/alerts");
    assert_eq!(
        a[0][0]["labels"],
        json!({"alertname": "many-errors", "severity": "warning", "kind": "threshold", "agent": "billing"})
    );
    assert_eq!(a[0][0]["annotations"]["count"], "3");
    assert_eq!(a[0][0]["startsAt"], "2026-11-27T10:00:00Z");

    // After the cooldown, the next alert says how many entries were held back.
    clock.set(T0 + 11 * MIN);
    let t = T0 + 11 * MIN;
    tx.send(batch(vec![err(t, "a"), err(t, "b"), err(t, "c")]))
        .unwrap();
    let got = webhook.wait_for(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["suppressed"], 2);
    h.stop(task).await;
    let alerts = h.alerts_json(10);
    let first = &alerts["alerts"][1];
    assert_eq!(
        first["notified"],
        json!([
            {"notifier": "hermes", "ok": true, "attempts": 1, "error": null},
            {"notifier": "slack", "ok": true, "attempts": 1, "error": null},
            {"notifier": "am", "ok": true, "attempts": 1, "error": null}
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_500_and_gives_up_on_a_receiver_that_times_out() {
    let flaky = Receiver::start(vec![Answer::Status(500), Answer::Status(503)]).await;
    let slow = Receiver::start(vec![Answer::Sleep(Duration::from_secs(5)); 3]).await;
    let clock = Arc::new(ManualClock::new(T0));
    let h = handle(
        &format!(
            r#"[alerts]
[[alerts.rules]]
name = "crit"
query = "level:CRITICAL"
kind = "immediate"
[[alerts.notifiers]]
name = "flaky"
type = "webhook"
url = "{}"
backoff = "20ms"
[[alerts.notifiers]]
name = "slow"
type = "webhook"
url = "{}"
attempts = 2
backoff = "10ms"
timeout = "200ms"
"#,
            flaky.url, slow.url
        ),
        clock.clone(),
    );
    let (tx, rx) = broadcast::channel(16);
    let task = h.spawn(rx);
    tx.send(batch(vec![rec(T0, Level::Critical, "db", "primary down")]))
        .unwrap();
    assert_eq!(flaky.wait_for(3).await.len(), 3);
    for _ in 0..200 {
        if !h.alerts_json(1)["alerts"][0]["notified"]
            .as_array()
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let notified = h.alerts_json(1)["alerts"][0]["notified"].clone();
    assert_eq!(
        notified[0],
        json!({"notifier": "flaky", "ok": true, "attempts": 3, "error": null})
    );
    assert_eq!(notified[1]["notifier"], "slow");
    assert_eq!(notified[1]["ok"], false);
    assert_eq!(notified[1]["attempts"], 2);
    assert!(
        notified[1]["error"].as_str().unwrap().contains("timed out"),
        "{notified}"
    );
    let rules = h.rules_json();
    assert_eq!(rules["notifiers"][0]["failing"], false);
    assert_eq!(rules["notifiers"][1]["failing"], true);
    assert!(h
        .render_metrics()
        .contains("logyard_notifier_failures_total{notifier=\"slow\"} 1"));
    h.stop(task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_critical_lines_is_bounded_by_grouping_and_cooldown() {
    let webhook = Receiver::start(vec![]).await;
    let clock = Arc::new(ManualClock::new(T0));
    let h = handle(
        &format!(
            "[alerts]\n[[alerts.notifiers]]\nname = \"w\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            webhook.url
        ),
        clock.clone(),
    );
    // A small channel: the evaluation may lag; the sender must never wait.
    let (tx, rx) = broadcast::channel(8);
    let task = h.spawn(rx);
    let started = Instant::now();
    let mut sent = 0;
    for b in 0..100 {
        let records = (0..1000)
            .map(|i| {
                let n = b * 1000 + i;
                rec(
                    T0 + n,
                    Level::Critical,
                    &format!("agent-{}", n % 4),
                    &format!("worker {n} crashed"),
                )
            })
            .collect();
        let _ = tx.send(batch(records));
        sent += 1000;
        if b % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let send_time = started.elapsed();
    assert_eq!(sent, 100_000);
    assert!(
        send_time < Duration::from_secs(5),
        "sending took {send_time:?}"
    );
    settle().await;
    settle().await;
    let got = webhook.bodies();
    // Four agents, one message pattern: four groups, one notification each per cooldown.
    assert_eq!(got.len(), 4, "{got:?}");
    let text = h.render_metrics();
    assert!(
        text.contains("logyard_alerts_fired_total{rule=\"critical\"} 4"),
        "{text}"
    );
    let lagged = h.metrics().lagged_batches();
    let suppressed: u64 = h.rules_json()["rules"][0]["suppressed"].as_u64().unwrap();
    assert_eq!(suppressed + 4 + lagged * 1000, 100_000, "lagged {lagged}");
    h.stop(task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_to_a_real_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = dir.path().join("mail.txt");
    let script = format!(
        r#"
import asyncio, sys
from aiosmtpd.controller import Controller
class H:
    async def handle_DATA(self, server, session, envelope):
        with open({out:?}, "a") as f:
            f.write("FROM " + envelope.mail_from + "\n")
            f.write("TO " + ",".join(envelope.rcpt_tos) + "\n")
            f.write(envelope.content.decode("utf-8") + "\n----\n")
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port={port})
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#,
        out = out.display().to_string()
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with aiosmtpd (python3 -m pip install aiosmtpd)");
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
    }
    let clock = Arc::new(ManualClock::new(T0));
    let h = handle(
        &format!(
            r#"[alerts]
[[alerts.rules]]
name = "crit"
query = "level:CRITICAL"
kind = "immediate"
[[alerts.notifiers]]
name = "mail"
type = "email"
smtp = "127.0.0.1:{port}"
from = "logyard@example.com"
to = ["ops@example.com", "dev@example.com"]
"#
        ),
        clock.clone(),
    );
    let (tx, rx) = broadcast::channel(16);
    let task = h.spawn(rx);
    tx.send(batch(vec![rec(T0, Level::Critical, "db", "primary down")]))
        .unwrap();
    clock.set(T0 + MIN);
    tx.send(batch(vec![rec(
        T0 + MIN,
        Level::Critical,
        "web",
        ".hidden dot line",
    )]))
    .unwrap();
    let mut text = String::new();
    for _ in 0..500 {
        text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.matches("----").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop(task).await;
    drop(child.stdin.take());
    let _ = child.wait();
    let mails: Vec<&str> = text
        .split("----\n")
        .filter(|m| !m.trim().is_empty())
        .collect();
    assert_eq!(mails.len(), 2, "{text}");
    assert!(
        mails[0].starts_with("FROM logyard@example.com\nTO ops@example.com,dev@example.com\n"),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains(
            "Subject: [critical] crit (immediate): primary down [agent=db pattern=primary down]"
        ),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("count: 1, suppressed: 0"), "{}", mails[0]);
    assert!(
        mails[1].contains("Subject: [critical] crit (immediate): .hidden dot line"),
        "{}",
        mails[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_error_summary_goes_out_once_at_its_time() {
    let dir = tempfile::tempdir().unwrap();
    // Entries of a fixed past day: a store that keeps everything.
    let mut config = logyard_store::StoreConfig::new(dir.path().join("data"));
    config.retention_days = 0;
    let store = Arc::new(logyard_store::Store::open(config).unwrap());
    let mut records = vec![
        rec(T0 - 3 * MIN, Level::Critical, "db", "primary down"),
        rec(T0 - 2 * MIN, Level::Error, "api", "request 1 failed"),
        rec(T0 - MIN, Level::Error, "api", "request 2 failed"),
        rec(T0 - MIN, Level::Info, "web", "fine"),
    ];
    for r in &mut records {
        r.host = "h".into();
    }
    tokio::task::block_in_place(|| store.append(records)).unwrap();
    let webhook = Receiver::start(vec![]).await;
    let clock = Arc::new(ManualClock::new(T0 - MIN));
    let h = handle(
        &format!(
            "[alerts]\ndaily_summary_at = \"10:00\"\n[[alerts.notifiers]]\nname = \"w\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            webhook.url
        ),
        clock.clone(),
    )
    .with_store(store.clone());
    assert!(tokio::task::block_in_place(|| h.evaluate_timers()).is_empty());
    clock.set(T0 + 5 * SEC);
    let fired = tokio::task::block_in_place(|| h.evaluate_timers());
    assert_eq!(fired.len(), 1);
    h.deliver(&fired[0]).await;
    clock.set(T0 + 10 * MIN);
    assert!(
        tokio::task::block_in_place(|| h.evaluate_timers()).is_empty(),
        "one summary a day"
    );
    let got = webhook.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["rule"], "daily-summary");
    assert_eq!(got[0]["kind"], "summary");
    assert_eq!(got[0]["count"], 3);
    let message = got[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "3 error entries from 2 of 3 agents in the last 24 h; most: api (2), db (1)"
        ),
        "{message}"
    );
    assert!(message.contains("request <num> failed (2)"), "{message}");
    assert_eq!(got[0]["entries"][0]["message"], "primary down");
    tokio::task::block_in_place(|| store.close());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_events_reach_every_notifier_once_per_cooldown_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("alerts.json");
    let webhook = Receiver::start(vec![]).await;
    let clock = Arc::new(ManualClock::new(T0));
    let config = format!(
        "[alerts]\n[[alerts.notifiers]]\nname = \"w\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        webhook.url
    );
    let start = || {
        let built = alerts_config(&config).build(&Default::default()).unwrap();
        AlertHandle::new(built, clock.clone(), Some(state.clone()))
    };
    let event = |dir: &str| logyard_alert::Event {
        rule: "disk-guard".into(),
        kind: "rotation".into(),
        severity: "warning".into(),
        group: [("dir".to_string(), dir.to_string())].into(),
        message: format!("{dir} is 93% full"),
        cooldown: 10 * MIN,
    };
    let h = start();
    let (_tx, rx) = broadcast::channel(16);
    let task = h.spawn(rx);
    assert!(h.raise(event("/var/log")).is_some());
    clock.advance(MIN);
    assert!(h.raise(event("/var/log")).is_none(), "in its cooldown");
    assert!(h.raise(event("/srv/log")).is_some(), "another group");
    let got = webhook.wait_for(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["rule"], "disk-guard");
    assert_eq!(got[0]["kind"], "rotation");
    assert_eq!(got[0]["group"]["dir"], "/var/log");
    assert_eq!(got[0]["message"], "/var/log is 93% full");
    assert_eq!(got[1]["group"]["dir"], "/srv/log");
    h.stop(task).await;

    // The cooldown and the held-back count survive a restart.
    clock.advance(MIN);
    let h = start();
    assert!(
        h.raise(event("/var/log")).is_none(),
        "re-fired after restart"
    );
    clock.advance(10 * MIN);
    let (_tx, rx) = broadcast::channel(16);
    let task = h.spawn(rx);
    let fired = h.raise(event("/var/log")).expect("the cooldown is over");
    assert_eq!(fired.alert.suppressed, 2);
    let got = webhook.wait_for(3).await;
    assert_eq!(got[2]["suppressed"], 2);
    h.stop(task).await;
    let history = h.alerts_json(10);
    assert_eq!(history["alerts"].as_array().unwrap().len(), 3);
    assert_eq!(history["alerts"][0]["notified"][0]["ok"], true);
}
