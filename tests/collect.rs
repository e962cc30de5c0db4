//! Collection by the real server: files followed across its own rotations and restarts,
//! syslog from a real client, and `GET /api/sources`.

mod util;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::Server;

/// Appends lines the way many applications do: open, append, close.
fn append(path: &Path, from: usize, to: usize) {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..to {
        writeln!(f, "{now} - INFO - app - order {i:05} shipped to warehouse").unwrap();
    }
}

fn stored_orders(server: &Server) -> Vec<String> {
    server
        .all_of_agent("app")
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `logs/` and a `logyard.toml` with a file source reading `logs/*.log` from the
/// beginning; returns both paths.
fn follow_logs(dir: &Path) -> (PathBuf, PathBuf) {
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let config = dir.join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\npaths = [\"{}/*.log\"]\nstart_at = \"beginning\"\n",
            logs.display()
        ),
    )
    .unwrap();
    (logs, config)
}

fn assert_exactly_once(stored: &[String], n: usize) {
    let distinct: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "a line was stored twice");
    assert_eq!(stored.len(), n, "lines are missing");
}

#[test]
fn files_are_followed_across_rotations_and_restarts_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\nname = \"apps\"\npaths = [\"{0}/*.log\"]\nstart_at = \"beginning\"\n\n\
             [[rotate]]\nname = \"apps\"\npaths = [\"{0}/*.log\"]\nsize = \"4KiB\"\nkeep = 50\ncompress = \"gzip\"\n\n\
             [rotation]\ninterval = \"300ms\"\n",
            logs.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let live = logs.join("app.log");
    append(&live, 0, 100);
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);

    // Write while the server rotates the file under the writer.
    for batch in 1..30 {
        append(&live, batch * 100, batch * 100 + 100);
        std::thread::sleep(Duration::from_millis(150));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_orders(&server).len() < 3000 {
        if Instant::now() > deadline {
            let stored: BTreeSet<String> = stored_orders(&server).into_iter().collect();
            let missing: Vec<usize> = (0..3000)
                .filter(|i| !stored.iter().any(|m| m.contains(&format!("order {i:05} "))))
                .collect();
            let (_, sources) = server.get("/api/sources");
            let files: Vec<_> = std::fs::read_dir(&logs)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            let log = server.stop();
            panic!("missing {missing:?}; sources {sources}; files {files:?}; log {log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_exactly_once(&stored_orders(&server), 3000);
    // Rotated files, compressed or still being drained before compression.
    let rotated = std::fs::read_dir(&logs)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "app.log")
        .count();
    assert!(
        rotated >= 2,
        "the server did not rotate the file ({rotated} rotated)"
    );

    let (status, sources) = server.get("/api/sources");
    assert_eq!(status, 200);
    let apps = &sources["sources"][0];
    assert_eq!(apps["name"], "apps");
    assert_eq!(apps["type"], "file");
    assert!(apps["lines_total"].as_u64().unwrap() >= 3000, "{sources}");
    assert!(
        apps["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == live.display().to_string()),
        "{sources}"
    );

    // Lines written while the server is down are read once it is back, and only those.
    server.stop();
    append(&live, 3000, 3100);
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    wait_for("3100 lines", || stored_orders(&server).len() >= 3100);
    std::thread::sleep(Duration::from_millis(1000));
    assert_exactly_once(&stored_orders(&server), 3100);
}

#[test]
fn syslog_from_logger_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!("[[sources]]\ntype = \"syslog\"\nlisten_udp = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let status = std::process::Command::new("logger")
        .args([
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-d",
            "--rfc5424",
        ])
        .args([
            "-t",
            "billing",
            "-p",
            "user.err",
            "payment declined for order 77",
        ])
        .status()
        .expect("logger (util-linux) is installed");
    assert!(status.success());
    let mut found = Value::Null;
    wait_for("the syslog line", || {
        let (_, page) = server.get("/api/logs?agent=billing");
        found = page["logs"][0].clone();
        !found.is_null()
    });
    assert_eq!(found["message"], "payment declined for order 77");
    assert_eq!(found["level"], "ERROR");
    assert_eq!(found["source"], "syslog:udp");
}

#[test]
fn a_syslog_port_in_use_stops_the_start_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!("[[sources]]\ntype = \"syslog\"\nname = \"net\"\nlisten_tcp = \"{addr}\"\n"),
    )
    .unwrap();
    let err = match Server::try_start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    ) {
        Ok(server) => {
            server.stop();
            panic!("the server started although {addr} is taken");
        }
        Err(e) => e,
    };
    assert!(err.contains("\"net\""), "{err}");
    assert!(err.contains(&addr.to_string()), "{err}");
}

#[test]
fn secrets_in_collected_lines_are_redacted_and_counted_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, config) = follow_logs(dir.path());
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    std::fs::write(
        logs.join("vault.log"),
        format!("{now} - ERROR - vault - login failed password=hunter2 token=abc123\n"),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let mut stored = Value::Null;
    wait_for("the collected line", || {
        let (_, page) = server.get("/api/logs?agent=vault&include_raw=true");
        stored = page["logs"][0].clone();
        !stored.is_null()
    });
    let text = stored.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("abc123"),
        "{text}"
    );
    assert!(text.contains("password=[REDACTED:password]"), "{text}");
    // One total per kind for the file collector and the HTTP endpoint together.
    let body = br#"{"agent": "vault", "message": "retry password=swordfish"}"#;
    let (status, answer) = server.post("/api/logs", "application/json", body.to_vec());
    assert_eq!(status, 200, "{answer}");
    let metrics = util::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("logyard_redactions_total{kind=\"password\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logyard_redactions_total{kind=\"token\"} 1"),
        "{metrics}"
    );
}

#[test]
fn an_old_checkpoint_file_after_a_crash_repeats_no_line() {
    // The store keeps each batch's checkpoint in the same WAL frame as its lines: after a
    // crash between the store's acknowledgement and the checkpoint file's rename (an older
    // checkpoint file put back here), the source restarts from the store's copy.
    let dir = tempfile::tempdir().unwrap();
    let (logs, config) = follow_logs(dir.path());
    let data = dir.path().join("data");
    let checkpoints = data.join("state").join("checkpoints");
    let checkpoint_file = || {
        let files: Vec<_> = std::fs::read_dir(&checkpoints)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"))
    };
    let live = logs.join("app.log");
    append(&live, 0, 100);
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    wait_for("100 lines", || stored_orders(&server).len() >= 100);
    wait_for("the checkpoint file", || checkpoint_file().is_some());
    std::thread::sleep(Duration::from_millis(500));
    let path = checkpoint_file().unwrap();
    let older = std::fs::read(&path).unwrap();
    append(&live, 100, 300);
    wait_for("300 lines", || stored_orders(&server).len() >= 300);
    std::thread::sleep(Duration::from_millis(500));
    assert_ne!(
        std::fs::read(&path).unwrap(),
        older,
        "the checkpoint file moved on"
    );
    server.kill();
    std::fs::write(&path, &older).unwrap();

    append(&live, 300, 350);
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    wait_for("350 lines", || stored_orders(&server).len() >= 350);
    std::thread::sleep(Duration::from_millis(1500));
    assert_exactly_once(&stored_orders(&server), 350);
}

#[test]
fn serve_follow_reads_files_from_their_beginning_and_continues_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let data = dir.path().join("data");
    let live = logs.join("app.log");
    // Written before the server ever ran: read from the file's beginning.
    append(&live, 0, 200);
    // Unchanged for two days: followed from its end (ignore_older, one day by default).
    let stale = logs.join("old.log");
    std::fs::write(&stale, "2020-01-01 00:00:00 - INFO - old - from long ago\n").unwrap();
    std::fs::File::options()
        .append(true)
        .open(&stale)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(2 * 86_400))
        .unwrap();
    let glob = format!("{}/*.log", logs.display());
    let follow = ["--follow", glob.as_str()];
    let server = Server::start(&data, &follow);
    append(&live, 200, 400);
    wait_for("400 lines", || stored_orders(&server).len() >= 400);
    let log = server.stop();
    // Written while no server runs: read after the restart, from the checkpoint.
    append(&live, 400, 600);
    let server = Server::start(&data, &follow);
    append(&live, 600, 800);
    wait_for("800 lines", || stored_orders(&server).len() >= 800);
    std::thread::sleep(Duration::from_millis(1500));
    // Newest first, ties by id: reversed, the order the lines were written in.
    let mut stored = stored_orders(&server);
    stored.reverse();
    assert_exactly_once(&stored, 800);
    let expected: Vec<String> = (0..800)
        .map(|i| format!("order {i:05} shipped to warehouse"))
        .collect();
    assert_eq!(stored, expected, "out of order; first run's log: {log}");
    assert!(server.all_of_agent("old").is_empty());
    // The source is named `follow` in /api/sources.
    let (_, sources) = server.get("/api/sources");
    assert!(sources.to_string().contains("\"follow\""), "{sources}");
}
