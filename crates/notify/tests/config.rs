//! Notifier configurations: what is refused and why; the formats' bodies.

use logyard_notify::{
    alertmanager_body, email_text, slack_body, Notification, NotifierConfig, NotifierKind, SmtpTls,
};

fn config(kind: NotifierKind) -> NotifierConfig {
    let mut c = NotifierConfig::webhook("n", "http://127.0.0.1:9");
    c.kind = kind;
    c
}

#[test]
fn bad_settings_are_refused_with_the_key() {
    let mut c = config(NotifierKind::Webhook);
    c.url = Some("localhost:8060".into());
    assert!(c.build().unwrap_err().to_string().contains("url"));
    c.url = Some("ftp://hooks.example.com/x".into());
    assert!(c.build().unwrap_err().to_string().contains("http://"));
    c.url = Some("https://hooks.example.com/x".into());
    assert!(c.build().is_ok());
    c.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(c.build().unwrap_err().to_string().contains("ca_file"));
    c.ca_file = Some("Cargo.toml".into());
    assert!(c
        .build()
        .unwrap_err()
        .to_string()
        .contains("no PEM certificate"));
    c.ca_file = None;
    c.url = None;
    assert!(c.build().unwrap_err().to_string().contains("needs url"));
    let mut c = config(NotifierKind::Slack);
    c.backoff = Some("soon".into());
    assert!(c.build().unwrap_err().to_string().contains("backoff"));
    let mut c = config(NotifierKind::Webhook);
    c.attempts = Some(0);
    assert!(c.build().unwrap_err().to_string().contains("attempts"));
    let mut c = config(NotifierKind::Email);
    c.smtp = Some("mail.example.com".into());
    c.from = Some("a@b".into());
    c.to = vec!["c@d".into()];
    assert!(c.build().unwrap_err().to_string().contains("port"));
    c.smtp = Some("mail.example.com:25".into());
    assert!(c.build().is_ok());
    c.to.clear();
    assert!(c.build().unwrap_err().to_string().contains("to ="));
}

#[test]
fn smtp_credentials_come_from_the_environment_or_a_file_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let err = |c: &NotifierConfig| c.build().unwrap_err().to_string();
    let mut c = config(NotifierKind::Email);
    c.smtp = Some("mail.example.com:587".into());
    c.from = Some("a@b".into());
    c.to = vec!["c@d".into()];
    c.username = Some("alerts".into());
    assert!(err(&c).contains("password_env"), "{}", err(&c));
    c.password_env = Some("LOGYARD_TEST_NO_SUCH_VARIABLE".into());
    assert!(err(&c).contains("LOGYARD_TEST_NO_SUCH_VARIABLE"));
    let file = dir.path().join("password");
    std::fs::write(&file, "hunter2\n").unwrap();
    c.password_file = Some(file.clone());
    assert!(err(&c).contains("not both"));
    c.password_env = None;
    let built = c.build().unwrap();
    assert!(!format!("{built:?}").contains("hunter2"));
    c.password_file = Some(dir.path().join("missing"));
    assert!(err(&c).contains("password_file"));
    c.username = None;
    assert!(err(&c).contains("need username"));
    c.password_file = None;
    c.ca_file = Some("Cargo.toml".into());
    assert!(err(&c).contains("no PEM certificate"));

    let mut c = config(NotifierKind::Webhook);
    c.tls = Some(SmtpTls::Starttls);
    assert!(err(&c).contains("tls is a key of email notifiers"));
}

#[test]
fn the_formats_carry_the_same_facts() {
    let n = Notification {
        rule: "r".into(),
        kind: "threshold".into(),
        severity: "warning".into(),
        group: [("agent".to_string(), "billing".to_string())].into(),
        count: 5,
        suppressed: 2,
        first_seen: logyard_model::parse_time("2026-11-27T10:00:00Z", 0).unwrap(),
        last_seen: logyard_model::parse_time("2026-11-27T10:01:00Z", 0).unwrap(),
        message: "boom".into(),
        entries: vec![serde_json::json!({"message": "boom"})],
    };
    assert_eq!(
        slack_body(&n)["text"],
        "[warning] r (threshold): boom [agent=billing]\ncount: 5, suppressed: 2, first seen: 2026-11-27T10:00:00Z, last seen: 2026-11-27T10:01:00Z"
    );
    let am = alertmanager_body(&n);
    assert_eq!(am[0]["labels"]["alertname"], "r");
    assert_eq!(am[0]["labels"]["agent"], "billing");
    assert_eq!(am[0]["annotations"]["suppressed"], "2");
    let (subject, body) = email_text(&n);
    assert_eq!(subject, "[warning] r (threshold): boom [agent=billing]");
    assert!(body.contains("count: 5, suppressed: 2") && body.contains("{\"message\":\"boom\"}"));
    let json = serde_json::to_value(&n).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "count",
            "entries",
            "first_seen",
            "group",
            "kind",
            "last_seen",
            "message",
            "rule",
            "severity",
            "suppressed"
        ]
    );
}
