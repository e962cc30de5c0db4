//! `logyard parse` and `logyard ingest` of text logs in several formats, through the real
//! binary.

mod util;

use serde_json::Value;
use util::run;

const MIXED: &str = "\
2024-01-15 10:30:00 - ERROR - payments - charge failed status=502 took 35 ms
[WARNING] CERBERUS: disk 91% full
<134>1 2024-01-15T10:30:02.123Z web-1 nginx 1234 - - upstream timed out
10.0.0.7 - ana [15/Jan/2024:10:30:03 +0000] \"GET /api/orders HTTP/1.1\" 503 120 \"-\" \"curl/8.0\"
ts=2024-01-15T10:30:04Z level=info msg=\"user logged in\" user=ana
Traceback (most recent call last):
  File \"app.py\", line 3, in <module>
ValueError: bad input
";

fn parse(dir: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let file = dir.join("worker.log");
    std::fs::write(&file, MIXED).unwrap();
    let mut args = vec!["parse", "--ndjson", file.to_str().unwrap()];
    args.extend(extra);
    let out = run(dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn each_format_becomes_the_right_record() {
    let dir = tempfile::tempdir().unwrap();
    let records = parse(dir.path(), &[]);
    // A traceback belongs to the line before it, as `logger.exception` writes them.
    assert_eq!(records.len(), 5, "{records:#?}");
    let r = &records[0];
    assert_eq!(r["timestamp"], "2024-01-15T10:30:00Z");
    assert_eq!(r["level"], "ERROR");
    assert_eq!(r["agent"], "payments");
    assert_eq!(r["fields"]["status"], 502);
    assert_eq!(r["fields"]["response_time_ms"], 35);
    assert_eq!(
        r["source"],
        format!("file:{}", dir.path().join("worker.log").display())
    );
    assert_eq!(records[1]["level"], "WARNING");
    assert_eq!(records[1]["agent"], "CERBERUS");
    assert_eq!(records[2]["agent"], "nginx");
    assert_eq!(records[2]["host"], "web-1");
    assert_eq!(records[2]["timestamp"], "2024-01-15T10:30:02.123Z");
    assert_eq!(records[3]["level"], "ERROR", "5xx access lines are errors");
    assert_eq!(records[3]["fields"]["ip"], "10.0.0.7");
    assert_eq!(records[3]["fields"]["path"], "/api/orders");
    assert_eq!(records[4]["level"], "INFO");
    assert_eq!(records[4]["fields"]["user"], "ana");
    let last = records[4]["message"].as_str().unwrap();
    assert!(
        last.starts_with("user logged in\nTraceback") && last.ends_with("ValueError: bad input"),
        "{last}"
    );
    // Every text record keeps its line.
    assert_eq!(
        records[1]["raw"], "[WARNING] CERBERUS: disk 91% full",
        "{:#?}",
        records[1]
    );
}

#[test]
fn a_fixed_format_and_a_time_zone_apply() {
    let dir = tempfile::tempdir().unwrap();
    let records = parse(dir.path(), &["--timezone", "+02:00"]);
    assert_eq!(
        records[0]["timestamp"], "2024-01-15T08:30:00Z",
        "zone-less stamps"
    );
    assert_eq!(
        records[2]["timestamp"], "2024-01-15T10:30:02.123Z",
        "zoned stamps"
    );
    let records = parse(dir.path(), &["--format", "plain"]);
    assert_eq!(records[1]["message"], "[WARNING] CERBERUS: disk 91% full");
    let out = run(dir.path(), &["parse", "--format", "yaml", "-"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("logfmt"), "the error lists the formats: {err}");
}

#[test]
fn ingested_text_logs_are_found_by_their_parsed_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("worker.log");
    // Recent times: the store drops days past its 7-day retention when it opens.
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let text: String = (0..50)
        .map(|i| {
            let level = if i % 10 == 0 { "ERROR" } else { "INFO" };
            format!("{now} - {level} - worker - job {i} done password=hunter{i} took {i} ms\n")
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = run(
        dir.path(),
        &["ingest", "--data", data, file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        dir.path(),
        &[
            "query",
            "--data",
            data,
            "--ndjson",
            "level:ERROR response_time_ms:>=20",
        ],
    );
    let found: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(found.len(), 3, "jobs 20, 30 and 40");
    assert_eq!(found[0]["fields"]["response_time_ms"], 40);
    for r in &found {
        let raw = r["raw"].as_str().unwrap();
        assert!(!raw.contains("hunter"), "a secret reached the store: {raw}");
        assert!(raw.contains("password="), "{raw}");
    }
}

#[test]
fn grok_parsers_and_redaction_patterns_come_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        r#"
[[parsers]]
name = "myapp"
grok = "%{TIMESTAMP_ISO8601:timestamp} \\[%{WORD:module}\\] %{LOGLEVEL:level} %{GREEDYDATA:message}"

[[redact.patterns]]
name = "employee_id"
regex = "EMP-[0-9]{6}"
"#,
    )
    .unwrap();
    let file = dir.path().join("app.log");
    std::fs::write(
        &file,
        "2024-01-15T10:30:00Z [billing] WARN refund for EMP-123456 delayed\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "parse",
            "--ndjson",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["level"], "WARNING");
    assert_eq!(r["fields"]["module"], "billing");
    assert_eq!(r["message"], "refund for [REDACTED:employee_id] delayed");
    assert!(!r["raw"].as_str().unwrap().contains("EMP-123456"));

    std::fs::write(
        &config,
        "[[parsers]]\nname = \"broken\"\ngrok = \"%{NOSUCHPATTERN:x}\"\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["--config", config.to_str().unwrap(), "check-config"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken") && err.contains("NOSUCHPATTERN"),
        "{err}"
    );
}
