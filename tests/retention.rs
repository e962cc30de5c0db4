//! Retention through the real binary: only `logyard serve` deletes by it, every command that
//! opens a data directory leaves it as it was; an entry older than what retention keeps is
//! refused on its way in, said so per entry and counted, never stored to be deleted later.

mod util;

use std::path::Path;

use serde_json::Value;
use util::{run, Server};

const DAY_S: i64 = 86_400;

/// Lines of an NDJSON file, each `days` days old.
fn old_lines(n: usize, days: i64) -> String {
    let t = chrono::Utc::now() - chrono::Duration::seconds(days * DAY_S);
    let stamp = t.format("%Y-%m-%dT%H:%M:%SZ");
    (0..n)
        .map(|i| {
            format!(
                "{{\"timestamp\":\"{stamp}\",\"level\":\"ERROR\",\"message\":\"old line {i}\"}}\n"
            )
        })
        .collect()
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many entries `logyard sql` counts in a data directory (default configuration).
fn count(cwd: &Path, data: &str) -> u64 {
    let out = ok(&run(
        cwd,
        &[
            "sql",
            "--data",
            data,
            "--format",
            "json",
            "SELECT count(*) AS n FROM logs",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["rows"][0][0]
        .as_u64()
        .unwrap_or_else(|| panic!("no count in {out}"))
}

fn post_raw(server: &Server, path: &str, content_type: &str, body: String) -> (u16, String) {
    let resp = util::client()
        .post(format!("{}{path}", server.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

#[test]
fn commands_that_open_a_data_directory_delete_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let log = cwd.join("billing.log");
    std::fs::write(&log, old_lines(2_000, 20)).unwrap();
    // Ingested under a configuration that keeps everything…
    let keep_all = cwd.join("keep-all.toml");
    std::fs::write(&keep_all, "[store]\nretention_days = 0\n").unwrap();
    let data = cwd.join("data");
    let data = data.to_str().unwrap();
    ok(&run(
        cwd,
        &[
            "--config",
            keep_all.to_str().unwrap(),
            "ingest",
            "--data",
            data,
            log.to_str().unwrap(),
        ],
    ));
    // … then read with the default one (7 days): every read answers, nothing goes.
    // (`tail` reads a server only.)
    let reads: [&[&str]; 7] = [
        &[
            "query", "--data", data, "--since", "30d", "--limit", "5000", "--ndjson",
        ],
        &["export", "--data", data, "--since", "30d"],
        &["errors", "--data", data, "--hours", "720"],
        &["slow", "--data", data, "--since", "30d"],
        &["auth", "--data", data, "--since", "30d"],
        &["db-errors", "--data", data, "--since", "30d"],
        &["report", "--data", data, "--since", "30d"],
    ];
    for args in reads {
        let out = run(cwd, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("retention drops"), "{args:?}: {err}");
        assert_eq!(count(cwd, data), 2_000, "after {args:?}");
    }
    let out = ok(&run(
        cwd,
        &[
            "query", "--data", data, "--since", "30d", "--limit", "5000", "--ndjson",
        ],
    ));
    assert_eq!(out.lines().count(), 2_000);
    // Adding to the directory deletes nothing either.
    let recent = cwd.join("recent.log");
    std::fs::write(&recent, old_lines(10, 0)).unwrap();
    ok(&run(
        cwd,
        &["ingest", "--data", data, recent.to_str().unwrap()],
    ));
    assert_eq!(count(cwd, data), 2_010);

    // The server is what applies retention: the 20-day-old days go once it runs.
    let server = Server::start(&cwd.join("data"), &[]);
    let mut left = u64::MAX;
    for _ in 0..100 {
        let (_, v) = server.get("/api/logs?limit=1");
        left = v["total"].as_u64().unwrap_or(u64::MAX);
        if left == 10 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(left, 10, "the server drops the days past the retention");
}

#[test]
fn ingest_refuses_entries_past_the_retention_and_says_which_setting_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let log = cwd.join("mixed.log");
    let mut text = old_lines(30, 20);
    text.push_str(&old_lines(5, 0));
    std::fs::write(&log, text).unwrap();
    let data = cwd.join("data");
    let data = data.to_str().unwrap();
    let out = run(cwd, &["ingest", "--data", data, log.to_str().unwrap()]);
    let err = ok(&out);
    let err = format!("{err}{}", String::from_utf8_lossy(&out.stderr));
    assert!(err.contains("ingested 5 records (30 rejected)"), "{err}");
    assert!(err.contains("older than the retention of 7 days"), "{err}");
    assert!(err.contains("retention_days"), "{err}");
    assert_eq!(count(cwd, data), 5);

    // Against a server: the same refusal, per entry, and counted by reason.
    let server = Server::start(&cwd.join("served"), &[]);
    let out = run(
        cwd,
        &["ingest", "--server", &server.url, log.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ingested 5 records (30 rejected)"), "{err}");
    assert!(err.contains("server's configuration"), "{err}");

    let body = format!(
        "[{{\"agent\": \"a\", \"message\": \"new\"}}, {}]",
        old_lines(1, 9).trim()
    );
    let (_, answer) = server.post("/api/logs", "application/json", body.into_bytes());
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["rejected"], 1, "{answer}");
    assert_eq!(answer["errors"][0]["index"], 1, "{answer}");
    assert_eq!(
        answer["errors"][0]["reason"],
        "older than the retention of 7 days"
    );

    // The shippers refuse them too, each in its protocol's way.
    let old_ns = (chrono::Utc::now().timestamp() - 20 * DAY_S) as i128 * 1_000_000_000;
    let (status, text) = post_raw(
        &server,
        "/loki/api/v1/push",
        "application/json",
        format!(
            r#"{{"streams": [{{"stream": {{"job": "j"}}, "values": [["{old_ns}", "old"], ["{}", "new"]]}}]}}"#,
            chrono::Utc::now().timestamp_nanos_opt().unwrap()
        ),
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("1 of 2 entries were rejected") && text.contains("older than the retention"),
        "{text}"
    );
    let old_stamp = (chrono::Utc::now() - chrono::Duration::days(20)).to_rfc3339();
    let (status, text) = post_raw(
        &server,
        "/logs/_bulk",
        "application/x-ndjson",
        format!(
            "{{\"index\": {{}}}}\n{{\"@timestamp\": \"{old_stamp}\", \"message\": \"old\"}}\n\
             {{\"index\": {{}}}}\n{{\"message\": \"new\"}}\n"
        ),
    );
    assert_eq!(status, 200, "{text}");
    let bulk: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bulk["errors"], true, "{text}");
    assert_eq!(bulk["items"][0]["index"]["status"], 400, "{text}");
    assert_eq!(bulk["items"][1]["index"]["status"], 201, "{text}");

    let metrics = util::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    // 30 by `ingest --server`, 1 by POST /api/logs, 1 by Loki, 1 by the bulk API.
    assert!(
        metrics.contains("logyard_rejected_lines_total{reason=\"expired\"} 33"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("rejected"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
