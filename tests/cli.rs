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
    // A recent time: older days would be dropped by the 7-day retention when the store opens.
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
