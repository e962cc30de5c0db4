//! The engine driven by scripted streams and a driven clock: defaults, thresholds, cooldown
//! with suppressed counts, clock jumps, restart in the middle of a cooldown, config errors.

mod common;

use std::sync::Arc;

use common::*;
use logyard_alert::{AlertHandle, AlertsConfig, Engine};
use logyard_model::Level;
use logyard_model::ManualClock;

fn default_engine(now: i64) -> Engine {
    let built = AlertsConfig::default().build(&Default::default()).unwrap();
    Engine::new(built.rules, 1000, 1000, now)
}

#[test]
fn default_rules_fire_on_critical_and_on_five_errors_of_one_pattern() {
    let mut e = default_engine(T0);
    let fired = e.observe(
        &batch(vec![rec(
            T0,
            Level::Critical,
            "billing",
            "payment service down",
        )]),
        T0,
    );
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].alert.rule, "critical");
    assert_eq!(fired[0].alert.message, "payment service down");
    assert_eq!(fired[0].alert.group["agent"], "billing");

    // Four errors of one pattern: nothing; the fifth within 5 minutes fires.
    for i in 0..4 {
        let t = T0 + i * 30 * SEC;
        let f = e.observe(
            &batch(vec![rec(
                t,
                Level::Error,
                "api",
                &format!("request {i} failed with code 502"),
            )]),
            t,
        );
        assert!(f.is_empty(), "{f:?}");
    }
    // Another agent and another pattern do not count.
    let t = T0 + 2 * MIN + 10 * SEC;
    assert!(e
        .observe(
            &batch(vec![
                rec(t, Level::Error, "web", "request 9 failed with code 502"),
                rec(t, Level::Error, "api", "cache miss")
            ]),
            t
        )
        .is_empty());
    let t = T0 + 4 * MIN;
    let f = e.observe(
        &batch(vec![rec(
            t,
            Level::Error,
            "api",
            "request 77 failed with code 502",
        )]),
        t,
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].alert.rule, "many-errors");
    assert_eq!(f[0].alert.count, 5);
    assert_eq!(f[0].alert.group["agent"], "api");
    assert_eq!(f[0].alert.first_seen, T0);
    assert_eq!(f[0].alert.last_seen, t);
    assert_eq!(f[0].alert.entries.len(), 5);
}

#[test]
fn five_errors_spread_over_more_than_the_window_do_not_fire() {
    let mut e = default_engine(T0);
    for i in 0..10 {
        let t = T0 + i * 2 * MIN;
        let f = e.observe(&batch(vec![rec(t, Level::Error, "api", "disk slow")]), t);
        assert!(f.is_empty(), "at {i}: {f:?}");
    }
}

#[test]
fn default_pattern_rules_know_the_usual_issues() {
    let mut e = default_engine(T0);
    let cases = [
        (
            "database-connection",
            "could not connect to server: Connection refused",
        ),
        (
            "out-of-memory",
            "java.lang.OutOfMemoryError: Java heap space",
        ),
        ("disk-full", "write /var/lib/x: no space left on device"),
        ("timeouts", "upstream request timed out after 30s"),
    ];
    for (i, (rule, message)) in cases.iter().enumerate() {
        let t = T0 + i as i64 * SEC;
        let f = e.observe(
            &batch(vec![rec(t, Level::Warning, &format!("a{i}"), message)]),
            t,
        );
        let rules: Vec<&str> = f.iter().map(|a| a.alert.rule.as_str()).collect();
        assert!(rules.contains(rule), "{message}: {rules:?}");
    }
    let f = e.observe(
        &batch(vec![rec(T0, Level::Info, "x", "all good")]),
        T0 + MIN,
    );
    assert!(f.is_empty());
}

#[test]
fn the_default_authentication_rule_counts_failures_per_address() {
    let mut e = default_engine(T0);
    let failure = |t: i64, ip: &str| {
        let mut r = rec(
            t,
            Level::Info,
            "sshd",
            &format!("Failed password for root from {ip}"),
        );
        r.fields
            .insert("ip".into(), logyard_model::Value::Str(ip.into()));
        r
    };
    // Five from one address within 5 minutes: routine.
    for i in 0..5 {
        let t = T0 + i * 50 * SEC;
        let f = e.observe(&batch(vec![failure(t, "203.0.113.7")]), t);
        assert!(f.is_empty(), "at {i}: {f:?}");
    }
    // Six spread over three other addresses: no group reaches six.
    for i in 0..6 {
        let t = T0 + 4 * MIN + i * SEC;
        let ip = format!("198.51.100.{}", i % 3);
        assert!(e.observe(&batch(vec![failure(t, &ip)]), t).is_empty());
    }
    // A failure without an address does not count towards anyone's.
    let t = T0 + 4 * MIN + 10 * SEC;
    let f = e.observe(
        &batch(vec![rec(
            t,
            Level::Info,
            "sshd",
            "Failed password for root",
        )]),
        t,
    );
    assert!(f.is_empty(), "{f:?}");
    // The sixth from the first address within 5 minutes fires.
    let t = T0 + 4 * MIN + 30 * SEC;
    let f = e.observe(&batch(vec![failure(t, "203.0.113.7")]), t);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].alert.rule, "authentication-failures");
    assert_eq!(f[0].alert.count, 6);
    assert_eq!(f[0].alert.group["ip"], "203.0.113.7");
    assert_eq!(f[0].alert.group.len(), 1);
}

#[test]
fn cooldown_holds_back_and_the_next_alert_carries_the_count() {
    let mut e = default_engine(T0);
    let crit = |t: i64| batch(vec![rec(t, Level::Critical, "db", "replica 3 lost")]);
    assert_eq!(e.observe(&crit(T0), T0).len(), 1);
    for i in 1..=3 {
        assert!(e.observe(&crit(T0 + i * MIN), T0 + i * MIN).is_empty());
    }
    // Still cooling down just before 10 minutes.
    assert!(e
        .observe(&crit(T0 + 10 * MIN - SEC), T0 + 10 * MIN - SEC)
        .is_empty());
    let f = e.observe(&crit(T0 + 10 * MIN), T0 + 10 * MIN);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].alert.suppressed, 4);
    let rules = e.rule_summaries(T0 + 10 * MIN);
    let r = rules.iter().find(|r| r.rule.name == "critical").unwrap();
    assert_eq!(r.cooldown_until, Some(T0 + 20 * MIN));
    assert_eq!(r.last_fired, Some(T0 + 10 * MIN));
    assert_eq!((r.fired, r.suppressed), (2, 4));
}

#[test]
fn a_clock_going_back_neither_fires_nor_stretches_a_cooldown() {
    let mut e = default_engine(T0);
    let crit = |t: i64| batch(vec![rec(t, Level::Critical, "db", "replica 3 lost")]);
    assert_eq!(e.observe(&crit(T0), T0).len(), 1);
    // The clock jumps back an hour: the time between the two readings is unknown, so the
    // cooldown keeps the 10 minutes it had left, counted on the new clock.
    let back = T0 - 60 * MIN;
    assert!(e.observe(&crit(back), back).is_empty());
    assert!(e.observe(&crit(back + 7 * MIN), back + 7 * MIN).is_empty());
    assert!(e
        .observe(&crit(back + 10 * MIN - SEC), back + 10 * MIN - SEC)
        .is_empty());
    let f = e.observe(&crit(back + 10 * MIN), back + 10 * MIN);
    assert_eq!(
        f.len(),
        1,
        "the cooldown ends 10 minutes after firing, not 70"
    );
    assert_eq!(f[0].alert.suppressed, 3);
}

#[test]
fn absence_fires_after_the_silence_once_per_cooldown() {
    let cfg = alerts_config(
        "[alerts]\n[[alerts.rules]]\nname = \"heartbeat\"\nquery = \"agent:cron heartbeat\"\nkind = \"absence\"\nwindow = \"5m\"\ncooldown = \"30m\"\n",
    );
    let built = cfg.build(&Default::default()).unwrap();
    let mut e = Engine::new(built.rules, 100, 100, T0);
    assert!(e.tick(T0 + 4 * MIN).is_empty());
    assert!(e
        .observe(
            &batch(vec![rec(T0, Level::Info, "cron", "heartbeat ok")]),
            T0 + 4 * MIN
        )
        .is_empty());
    assert!(e.tick(T0 + 8 * MIN).is_empty());
    let f = e.tick(T0 + 9 * MIN);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].alert.kind, "absence");
    assert!(f[0].alert.message.contains("5m"), "{}", f[0].alert.message);
    assert!(e.tick(T0 + 20 * MIN).is_empty());
    assert_eq!(e.tick(T0 + 40 * MIN).len(), 1);
}

#[test]
fn a_restart_in_the_middle_of_a_cooldown_does_not_fire_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("alerts.json");
    let clock = Arc::new(ManualClock::new(T0));
    let build = || AlertsConfig::default().build(&Default::default()).unwrap();
    let crit = |t: i64| batch(vec![rec(t, Level::Critical, "db", "replica 3 lost")]);
    let h = AlertHandle::new(build(), clock.clone(), Some(path.clone()));
    assert_eq!(h.observe(&crit(T0)).len(), 1);
    h.save();
    drop(h);

    clock.set(T0 + 5 * MIN);
    let h = AlertHandle::new(build(), clock.clone(), Some(path.clone()));
    assert!(
        h.observe(&crit(T0 + 5 * MIN)).is_empty(),
        "re-fired after restart"
    );
    assert_eq!(h.alerts_json(10)["alerts"].as_array().unwrap().len(), 1);
    let rules = h.rules_json();
    let critical = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "critical")
        .unwrap();
    assert_eq!(critical["cooldown_until"], "2026-11-27T10:10:00Z");
    h.save();
    drop(h);

    clock.set(T0 + 11 * MIN);
    let h = AlertHandle::new(build(), clock.clone(), Some(path));
    let f = h.observe(&crit(T0 + 11 * MIN));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].alert.suppressed, 1);
    assert!(f[0].id > 1, "ids continue across restarts");
}

#[test]
fn a_broken_query_is_a_config_error_with_its_position() {
    let cfg = alerts_config(
        "[alerts]\n[[alerts.rules]]\nname = \"bad\"\nquery = \"level:ERROR AND (agent:x\"\nkind = \"immediate\"\n",
    );
    let e = cfg.build(&Default::default()).unwrap_err().to_string();
    assert!(e.contains("rule \"bad\"") && e.contains("position"), "{e}");
    assert!(e.contains("hint"), "{e}");

    let cfg = alerts_config(
        "[alerts]\n[[alerts.rules]]\nname = \"r\"\nkind = \"threshold\"\nwindow = \"five minutes\"\n",
    );
    assert!(cfg
        .build(&Default::default())
        .unwrap_err()
        .to_string()
        .contains("window"));
    let cfg = alerts_config(
        "[alerts]\n[[alerts.rules]]\nname = \"r\"\nkind = \"immediate\"\nnotify = [\"pager\"]\n",
    );
    assert!(cfg
        .build(&Default::default())
        .unwrap_err()
        .to_string()
        .contains("\"pager\""));
    let cfg = alerts_config(
        "[alerts]\n[[alerts.notifiers]]\nname = \"w\"\ntype = \"webhook\"\nurl = \"localhost:8060\"\n",
    );
    assert!(cfg
        .build(&Default::default())
        .unwrap_err()
        .to_string()
        .contains("url"));
}

#[test]
fn anomaly_fires_on_a_new_error_pattern_after_learning() {
    let mut e = default_engine(T0);
    let err = |t: i64, m: &str| batch(vec![rec(t, Level::Error, "api", m)]);
    let anomalies = |f: Vec<logyard_alert::AlertRecord>| -> Vec<logyard_alert::AlertRecord> {
        f.into_iter()
            .filter(|a| a.alert.rule == "error-anomaly")
            .collect()
    };
    // The first window only learns.
    assert!(anomalies(e.observe(&err(T0 + MIN, "job 1 failed"), T0 + MIN)).is_empty());
    assert!(anomalies(e.observe(&err(T0 + 6 * MIN, "job 2 failed"), T0 + 6 * MIN)).is_empty());
    let f = anomalies(e.observe(&err(T0 + 7 * MIN, "disk controller 3 reset"), T0 + 7 * MIN));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].alert.group["pattern"], "disk controller <num> reset");
    assert_eq!(
        f[0].alert.message,
        "new error pattern: disk controller 3 reset"
    );
    assert!(
        anomalies(e.observe(&err(T0 + 8 * MIN, "disk controller 4 reset"), T0 + 8 * MIN))
            .is_empty()
    );
}

#[test]
fn anomaly_fires_when_the_rate_leaves_its_baseline() {
    let cfg = alerts_config(
        "[alerts]\n[[alerts.rules]]\nname = \"api-rate\"\nquery = \"agent:api\"\nkind = \"anomaly\"\nwindow = \"1m\"\ncount = 5\n",
    );
    let built = cfg.build(&Default::default()).unwrap();
    let mut e = Engine::new(built.rules, 100, 100, T0);
    let info = |t: i64, n: usize| {
        batch(
            (0..n)
                .map(|_| rec(t, Level::Info, "api", "GET /"))
                .collect(),
        )
    };
    // Twelve ordinary minutes of 9 to 11 entries.
    for m in 0..13 {
        let t = T0 + m * MIN + SEC;
        assert!(e.tick(t).is_empty(), "minute {m}");
        assert!(e.observe(&info(t, 9 + (m % 3) as usize), t).is_empty());
    }
    let t = T0 + 13 * MIN + SEC;
    assert!(e.tick(t).is_empty());
    e.observe(&info(t, 60), t);
    let f = e.tick(T0 + 14 * MIN + SEC);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].alert.kind, "anomaly");
    assert_eq!(f[0].alert.count, 60);
    assert_eq!(f[0].alert.group["rate"], "above");
    assert!(
        f[0].alert.message.contains("above the usual 10"),
        "{}",
        f[0].alert.message
    );
    // One evaluation per window.
    assert!(e.tick(T0 + 14 * MIN + 2 * SEC).is_empty());
}
