//! Alerting through the real binary: a CRITICAL line ingested over HTTP reaches the webhook,
//! `GET /api/alerts` and `logyard alerts` list it, a restart keeps the cooldown, and
//! `check-config` points at a broken rule query.

mod util;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use util::{run, Server, Webhook};

#[test]
fn a_critical_line_reaches_the_webhook_and_the_alert_list() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts]\nevaluate_every = \"100ms\"\n[[alerts.notifiers]]\nname = \"hermes\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            hook.url
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", &config]);
    let line =
        br#"{"message": "payment database is gone", "level": "CRITICAL", "agent": "billing"}"#;
    let (status, answer) = server.post("/api/logs", "application/json", line.to_vec());
    assert_eq!(status, 200, "{answer}");

    let got = hook.wait_for(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["rule"], "critical");
    assert_eq!(got[0]["kind"], "immediate");
    assert_eq!(got[0]["severity"], "critical");
    assert_eq!(got[0]["group"]["agent"], "billing");
    assert_eq!(got[0]["message"], "payment database is gone");
    assert_eq!(got[0]["count"], 1);
    assert_eq!(got[0]["entries"][0]["message"], "payment database is gone");

    let mut alerts = Value::Null;
    for _ in 0..200 {
        alerts = server.get("/api/alerts").1;
        if alerts["alerts"][0]["notified"][0]["ok"] == true {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1, "{alerts}");
    let a = &alerts["alerts"][0];
    assert_eq!(a["rule"], "critical");
    assert_eq!(a["suppressed"], 0);
    assert_eq!(a["notified"][0]["notifier"], "hermes");
    assert_eq!(a["notified"][0]["attempts"], 1);

    let (status, rules) = server.get("/api/alerts/rules");
    assert_eq!(status, 200);
    let names: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "critical",
            "many-errors",
            "database-connection",
            "out-of-memory",
            "authentication-failures",
            "disk-full",
            "timeouts",
            "error-anomaly"
        ]
    );
    assert!(rules["rules"][0]["cooldown_until"].is_string(), "{rules}");

    let out = run(dir.path(), &["alerts", "--server", &server.url]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("FIRED") && lines[0].contains("RULE"),
        "{table}"
    );
    assert!(
        lines[1].contains("critical") && lines[1].contains("hermes:ok"),
        "{table}"
    );
    assert!(lines[1].contains("payment database is gone"), "{table}");
    let out = run(dir.path(), &["alerts", "--json", "--server", &server.url]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["alerts"][0]["rule"], "critical");
    let metrics = util::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("logyard_alerts_fired_total{rule=\"critical\"} 1"),
        "{metrics}"
    );
    server.stop();

    // A restart in the middle of the cooldown: the same line again is held back.
    assert!(data.join("state").join("alerts.json").is_file());
    let server = Server::start(&data, &["--config", &config]);
    let (status, _) = server.post("/api/logs", "application/json", line.to_vec());
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        hook.got.lock().unwrap().len(),
        1,
        "re-fired after the restart"
    );
    let alerts = server.get("/api/alerts").1;
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1);
    server.stop();
}

#[test]
fn check_config_points_at_a_broken_rule_query() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        "[[alerts.rules]]\nname = \"errors\"\nquery = \"level:ERROR AND (agent:x\"\nkind = \"threshold\"\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["--config", config.to_str().unwrap(), "check-config"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("logyard.toml"), "{err}");
    assert!(
        err.contains("rule \"errors\": invalid query at position"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");

    std::fs::write(
        &config,
        "[[alerts.rules]]\nname = \"e\"\nkind = \"immediate\"\nnotify = [\"pager\"]\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["--config", config.to_str().unwrap(), "check-config"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("\"pager\""));
}

/// Writes a config with `body` and a webhook notifier to `hook`; returns its path.
fn config_with_webhook(dir: &std::path::Path, hook: &Webhook, body: &str) -> String {
    let config = dir.join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "{body}\n[alerts]\nevaluate_every = \"100ms\"\n[[alerts.notifiers]]\nname = \"hermes\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            hook.url
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_string()
}

#[test]
fn the_rotation_disk_guard_alerts_through_the_notifiers() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("app.log"), "live line\n").unwrap();
    std::fs::write(logs.join("app.log.1"), "old line\n".repeat(100)).unwrap();
    let hook = Webhook::start();
    let config = config_with_webhook(
        dir.path(),
        &hook,
        &format!(
            "[[rotate]]\nname = \"app\"\npaths = [\"{}/app.log\"]\nsize = \"1MiB\"\nkeep = 5\ncompress = \"none\"\n[rotation]\nmax_archive_bytes = \"10B\"\n",
            logs.display()
        ),
    );
    let server = Server::start(&dir.path().join("data"), &["--config", &config]);
    let got = hook.wait_for(1);
    assert!(!got.is_empty(), "no alert for the disk guard");
    assert_eq!(got[0]["rule"], "rotate-disk-guard");
    assert_eq!(got[0]["kind"], "rotation");
    let message = got[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("disk guard: rotated archives use"),
        "{message}"
    );
    // The archive went; the live file stayed.
    assert!(!logs.join("app.log.1").exists());
    assert_eq!(
        std::fs::read_to_string(logs.join("app.log")).unwrap(),
        "live line\n"
    );
    let (_, alerts) = server.get("/api/alerts");
    assert_eq!(alerts["alerts"][0]["rule"], "rotate-disk-guard");
    server.stop();
}

#[test]
fn the_daily_report_goes_out_through_the_notifiers_at_its_time() {
    use chrono::{Duration as Span, Timelike, Utc};
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    // The next whole minute, with enough time left to start the server before it.
    let now = Utc::now();
    let at = now + Span::seconds(if now.second() > 50 { 120 } else { 60 });
    let reports = dir.path().join("reports");
    let config = config_with_webhook(
        dir.path(),
        &hook,
        &format!(
            "[report]\ndaily_at = \"{:02}:{:02}\"\ndir = \"{}\"\n",
            at.hour(),
            at.minute(),
            reports.display()
        ),
    );
    let server = Server::start(&dir.path().join("data"), &["--config", &config]);
    let line = br#"{"message": "checkout failed", "level": "ERROR", "agent": "shop"}"#;
    let (status, answer) = server.post("/api/logs", "application/json", line.to_vec());
    assert_eq!(status, 200, "{answer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let mut got = Vec::new();
    while std::time::Instant::now() < deadline {
        got = hook.got.lock().unwrap().clone();
        if got.iter().any(|n| n["rule"] == "daily-report") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let report = got
        .iter()
        .find(|n| n["rule"] == "daily-report")
        .unwrap_or_else(|| panic!("no report notification: {got:?}"));
    assert_eq!(report["kind"], "report");
    let message = report["message"].as_str().unwrap();
    assert!(message.contains(": 1 entries, 1 errors"), "{message}");
    assert!(
        message.contains("top error: checkout failed (1)"),
        "{message}"
    );
    assert!(
        message.contains(&reports.display().to_string()),
        "{message}"
    );
    assert!(std::fs::read_dir(&reports).unwrap().count() >= 1);
    server.stop();
}

#[test]
fn a_stop_does_not_wait_for_an_unanswering_receiver_and_the_next_start_sends_what_was_pending() {
    let dir = tempfile::tempdir().unwrap();
    // A receiver that takes connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    silent.set_nonblocking(true).unwrap();
    let hush = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let holder = {
        let silent = silent.try_clone().unwrap();
        let hush = hush.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !hush.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok((conn, _)) = silent.accept() {
                    held.push(conn);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // Closed unread: the cut request never reaches the receiver.
        })
    };
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts]\nevaluate_every = \"100ms\"\n[[alerts.notifiers]]\nname = \"hermes\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"30s\"\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", &config]);
    let line = br#"{"message": "ledger replica is gone", "level": "CRITICAL", "agent": "ledger"}"#;
    let (status, answer) = server.post("/api/logs", "application/json", line.to_vec());
    assert_eq!(status, 200, "{answer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.get("/api/alerts").1["alerts"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        assert!(std::time::Instant::now() < deadline, "no alert fired");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // The notification is under way and will not be answered: the stop does not wait for it.
    let asked = std::time::Instant::now();
    let log = server.stop();
    let took = asked.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "the stop took {took:?}; log: {log}"
    );
    assert!(log.contains("kept for the next start"), "{log}");

    // The receiver answers now: the next start sends the pending notification, once.
    hush.store(true, std::sync::atomic::Ordering::SeqCst);
    holder.join().unwrap();
    let hook = Webhook::on(silent);
    let server = Server::start(&data, &["--config", &config]);
    let got = hook.wait_for(1);
    assert_eq!(got.len(), 1, "the pending notification was not sent");
    assert_eq!(got[0]["rule"], "critical", "{}", got[0]);
    std::thread::sleep(Duration::from_millis(500));
    let log = server.stop();
    // Delivered: a third start sends nothing again.
    let server = Server::start(&data, &["--config", &config]);
    std::thread::sleep(Duration::from_millis(1000));
    server.stop();
    assert_eq!(hook.got.lock().unwrap().len(), 1, "sent twice; log: {log}");
}

#[test]
fn the_default_webhook_and_any_notifier_url_can_come_from_the_environment() {
    // Without notifiers: the default webhook goes to HERMES_URL when it is set.
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    let config = dir.path().join("logyard.toml");
    std::fs::write(&config, "[alerts]\nevaluate_every = \"100ms\"\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let server = Server::start_with_env(
        &dir.path().join("data"),
        &["--config", &config],
        &[("HERMES_URL", &hook.url)],
    );
    let line = br#"{"message": "disk gone", "level": "CRITICAL", "agent": "db"}"#;
    assert_eq!(
        server
            .post("/api/logs", "application/json", line.to_vec())
            .0,
        200
    );
    let got = hook.wait_for(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message"], "disk gone");
    drop(server);

    // A notifier's url_env: its value is used and never shown, even when it fails.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        "[alerts]\nevaluate_every = \"100ms\"\n[[alerts.notifiers]]\nname = \"chat\"\n\
         type = \"slack\"\nurl_env = \"CHAT_HOOK\"\nattempts = 1\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let secret_url = "http://127.0.0.1:9/services/T000/B000/secret-path-0123";
    let server = Server::start_with_env(
        &dir.path().join("data"),
        &["--config", &config],
        &[("CHAT_HOOK", secret_url)],
    );
    server.post("/api/logs", "application/json", line.to_vec());
    let mut rules = Value::Null;
    for _ in 0..250 {
        rules = server.get("/api/alerts/rules").1;
        if rules["notifiers"][0]["failed"].as_u64() >= Some(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let chat = &rules["notifiers"][0];
    assert_eq!(chat["name"], "chat", "{rules}");
    assert_eq!(chat["failed"], 1, "{rules}");
    let error = chat["last_error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{rules}");
    assert!(!rules.to_string().contains("secret-path"), "{rules}");
    assert!(!server.stop().contains("secret-path"), "the URL in the log");

    // Unset: the start is refused, naming the key and the variable.
    let out = run(dir.path(), &["--config", &config, "check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("url_env = \"CHAT_HOOK\""), "{err}");
}

/// The shipped `authentication-failures` rule fires on more than 5 failed logins within 5
/// minutes from one address (the `ip` field the parser takes from `… from IP`), as the
/// brute-force analysis counts them; not on 5, and not on 6 spread over several addresses.
#[test]
fn the_authentication_rule_fires_on_more_than_five_failures_from_one_address() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config_with_webhook(
        dir.path(),
        &hook,
        &format!(
            "[[sources]]\ntype = \"syslog\"\nname = \"net\"\nlisten_tcp = \"127.0.0.1:{port}\"\n"
        ),
    );
    let server = Server::start(&dir.path().join("data"), &["--config", &config]);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut sent = 0;
    let mut send = |ip: &str, n: usize| {
        for i in 0..n {
            let line = format!(
                "<38>1 - bastion sshd 4242 - - Failed password for invalid user admin{i} from {ip} port 5{i}022 ssh2\n"
            );
            conn.write_all(line.as_bytes()).unwrap();
        }
        conn.flush().unwrap();
        sent += n;
        let want = sent;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, page) = server.get("/api/logs?agent=sshd&limit=100");
            let stored = page["logs"].as_array().map_or(0, Vec::len);
            if stored >= want {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{stored} of {want} lines stored"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Several evaluation rounds.
        std::thread::sleep(Duration::from_millis(600));
    };
    let auth_alerts = |hook: &Webhook| -> Vec<Value> {
        hook.got
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "authentication-failures")
            .cloned()
            .collect()
    };

    send("203.0.113.7", 5);
    assert!(auth_alerts(&hook).is_empty(), "fired on 5 failures");
    send("203.0.113.7", 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while auth_alerts(&hook).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = auth_alerts(&hook);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["kind"], "threshold");
    assert_eq!(got[0]["severity"], "warning");
    assert_eq!(got[0]["count"], 6);
    assert_eq!(got[0]["group"], serde_json::json!({"ip": "203.0.113.7"}));

    // Six more, from three other addresses: no group reaches 6.
    for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        send(ip, 2);
    }
    assert_eq!(auth_alerts(&hook).len(), 1, "{:?}", auth_alerts(&hook));
    server.stop();
}

#[test]
fn a_silenced_rule_keeps_its_alerts_in_the_history_unsent_until_lifted_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    let config = config_with_webhook(dir.path(), &hook, "");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", &config]);
    let silence = |server: &Server, rule: &str, dur: &str| {
        server.post(
            &format!("/api/alerts/rules/{rule}/silence"),
            "application/json",
            format!(r#"{{"for": "{dur}"}}"#).into_bytes(),
        )
    };
    let (status, answer) = silence(&server, "critical", "2h");
    assert_eq!(status, 200, "{answer}");
    assert!(answer["silenced_until"].is_string(), "{answer}");
    let (status, answer) = silence(&server, "no-such-rule", "2h");
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = silence(&server, "critical", "soon");
    assert_eq!(status, 400, "{answer}");
    let critical = |agent: &str| {
        format!(r#"{{"message": "disk array gone", "level": "CRITICAL", "agent": "{agent}"}}"#)
            .into_bytes()
    };
    server.post("/api/logs", "application/json", critical("storage"));
    // Fired into the history, marked silenced, and not sent.
    let mut alerts = Value::Null;
    for _ in 0..250 {
        alerts = server.get("/api/alerts").1;
        if alerts["alerts"][0].is_object() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(alerts["alerts"][0]["rule"], "critical", "{alerts}");
    assert_eq!(alerts["alerts"][0]["silenced"], true, "{alerts}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(hook.got.lock().unwrap().is_empty(), "a silenced rule sent");
    // A restart keeps the silence.
    server.stop();
    let server = Server::start(&data, &["--config", &config]);
    let rules = server.get("/api/alerts/rules").1;
    let rule = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "critical")
        .unwrap()
        .clone();
    assert!(rule["silenced_until"].is_string(), "{rules}");
    // Lifted: the next alert is sent.
    let (status, answer) = silence(&server, "critical", "0s");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["silenced_until"], Value::Null);
    server.post("/api/logs", "application/json", critical("network"));
    let got = hook.wait_for(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["group"]["agent"], "network");
}
