//! The command line of the real binary: configuration errors, `ingest` and `query` against a
//! data directory and a server.

mod util;

use serde_json::Value;
use util::{run, Server};

#[test]
fn a_bad_config_is_refused_with_file_line_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[server]\nlisten = \"127.0.0.1:8062\"\nlisen = \"x\"\n",
            "unknown field `lisen`",
            "3",
        ),
        (
            "[store]\nretention_days = \"seven\"\n",
            "retention_days",
            "2",
        ),
        (
            "[store]\nmax_disk_bytes = \"12 parsecs\"\n",
            "unknown unit",
            "2",
        ),
        ("[store]\nflush_interval = \"0s\"\n", "above zero", "2"),
    ];
    for (text, needle, line) in cases {
        let path = dir.path().join("logyard.toml");
        std::fs::write(&path, text).unwrap();
        for args in [
            vec!["check-config"],
            vec!["serve", "--listen", "127.0.0.1:0"],
        ] {
            let mut full = vec!["--config", path.to_str().unwrap()];
            full.extend(args);
            let out = run(dir.path(), &full);
            assert!(!out.status.success(), "{text} was accepted");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(needle), "{text}: {err}");
            assert!(
                err.contains(&format!("logyard.toml: line {line}")),
                "{text}: no file and line in {err}"
            );
        }
    }
    std::fs::write(
        dir.path().join("logyard.toml"),
        "[store]\nretention_days = 3\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check-config"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
}

#[test]
fn ingest_and_query_work_on_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("billing.log");
    // A recent time: entries older than the 7-day retention keeps are refused.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    std::fs::write(
        &log,
        format!("{{\"timestamp\":\"{now}\",\"level\":\"ERROR\",\"message\":\"payment gateway timeout\",\"order\":7}}\n\
         plain text line about a refund\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = run(
        dir.path(),
        &["ingest", "--data", data, log.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(dir.path(), &["query", "--data", data, "--ndjson"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    let error = records.iter().find(|r| r["level"] == "ERROR").unwrap();
    assert_eq!(error["agent"], "billing", "the file's stem names the agent");
    assert_eq!(error["fields"]["order"], 7);
    let plain = records
        .iter()
        .find(|r| r["message"] == "plain text line about a refund")
        .unwrap();
    assert_eq!(plain["raw"], "plain text line about a refund");

    // A table on the terminal's behalf: aligned columns under a header.
    let out = run(
        dir.path(),
        &["query", "--data", data, "--min-level", "ERROR", "timeout"],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{text}");
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0].find("LEVEL"), lines[1].find("ERROR"), "{text}");
}

#[test]
fn ingest_and_query_work_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let log = dir.path().join("orders.log");
    let lines: String = (0..1200)
        .map(|i| format!("{{\"level\":\"INFO\",\"message\":\"order {i} shipped\"}}\n"))
        .collect();
    std::fs::write(&log, lines).unwrap();
    let out = run(
        dir.path(),
        &[
            "ingest",
            "--server",
            &server.url,
            "--batch",
            "500",
            log.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.all_of_agent("orders").len(), 1200);

    let out = run(
        dir.path(),
        &[
            "query",
            "--server",
            &server.url,
            "--agent",
            "orders",
            "--limit",
            "3",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["logs"].as_array().unwrap().len(), 3);

    // A server that is not there: the error says what to do.
    let out = run(dir.path(), &["query", "--server", "http://127.0.0.1:9"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("logyard serve"), "{err}");
}

/// Entries of three agents, some errors, ingested into a server.
fn seeded_server(dir: &std::path::Path) -> Server {
    let server = Server::start(&dir.join("data"), &[]);
    let body: Vec<Value> = (0..30)
        .map(|i| {
            let agent = ["web", "db", "auth"][i % 3];
            serde_json::json!({
                "agent": agent,
                "level": if i % 5 == 0 { "ERROR" } else { "INFO" },
                "message": format!("request {i} took {}ms", i * 10),
                "response_time_ms": i * 10,
            })
        })
        .collect();
    let (status, _) = server.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(status, 200);
    server
}

#[test]
fn query_pipes_print_tables_from_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded_server(dir.path());
    let out = run(
        dir.path(),
        &[
            "query",
            "--server",
            &server.url,
            "level:ERROR | stats count() by (agent) | sort by (agent)",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("AGENT"), "{text}");
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].starts_with("auth") && lines[1].trim_end().ends_with('2'),
        "{text}"
    );
    // The --agent flag narrows the filter, not the pipes.
    let out = run(
        dir.path(),
        &[
            "query",
            "--server",
            &server.url,
            "--agent",
            "web",
            "--json",
            "* | stats count(), max(response_time_ms)",
        ],
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["rows"], serde_json::json!([[10, 270]]), "{answer}");
}

#[test]
fn export_errors_and_tail_work_against_a_server_and_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded_server(dir.path());
    let out = run(
        dir.path(),
        &[
            "export",
            "--server",
            &server.url,
            "--format",
            "csv",
            "agent:db",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.lines().next().unwrap().contains("message"), "{csv}");
    assert_eq!(csv.lines().count(), 11, "a header and 10 rows: {csv}");

    let out = run(dir.path(), &["errors", "--server", &server.url, "--json"]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["total_error_entries"], 6);
    assert_eq!(summary["error_breakdown"]["web"]["error_count"], 2);

    let out = run(dir.path(), &["tail", "--server", &server.url, "-n", "3"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[2].contains("request 29 "),
        "oldest first, newest last: {text}"
    );

    // Follow: a line ingested after the tail started arrives.
    let mut child = std::process::Command::new(util::bin())
        .args([
            "tail",
            "-f",
            "-n",
            "0",
            "--server",
            &server.url,
            "agent:late",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.post(
        "/api/logs",
        "application/json",
        br#"{"agent": "late", "message": "arrived while following"}"#.to_vec(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("arrived while following"), "{line}");

    // The same summary and export from the data directory, once the server is gone.
    server.stop();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = run(dir.path(), &["errors", "--data", data, "--json"]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["total_error_entries"], 6);
    let out = run(
        dir.path(),
        &[
            "export",
            "--data",
            data,
            "--format",
            "ndjson",
            "level:ERROR",
        ],
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 6);
    let out = run(
        dir.path(),
        &["query", "--data", data, "* | top 1 agent", "--ndjson"],
    );
    let row: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Three agents have 10 entries each: ties go by value.
    assert_eq!(row, serde_json::json!({"agent": "auth", "count": 10}));
}
