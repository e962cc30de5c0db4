//! The on-disk format promise: a data directory written by an earlier version opens in this
//! one with every entry in it. `tests/data/store-v1/` was written by logyard 0.1.0 (segments
//! and a WAL tail not yet flushed); this test opens a copy with the current binary and checks
//! the exact entries. `generate_store_v1` (ignored) is how the fixture was made.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use util::Server;

/// Entries in the fixture: the first `FLUSHED` are in segments, the rest only in the WAL.
const ENTRIES: usize = 350;
const FLUSHED: usize = 300;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store-v1")
}

/// The entry `i` of the fixture, as it was posted.
fn entry(i: usize) -> Value {
    // Five seconds apart from 23:50 UTC: the segments cover two days.
    let ts = chrono::DateTime::parse_from_rfc3339("2024-01-15T23:50:00Z").unwrap()
        + chrono::Duration::seconds(5 * i as i64);
    let level = ["INFO", "WARNING", "ERROR", "DEBUG"][i % 4];
    let agent = ["api", "db", "worker"][i % 3];
    json!({
        "timestamp": ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "level": level,
        "agent": agent,
        "host": "fixture-host",
        "message": format!("fixture entry {i} user_id={}", i * 7),
        "metadata": {"n": i, "user": format!("u{}", i % 7)},
    })
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Files under `dir` whose names end with `suffix`.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn a_data_directory_of_format_1_opens_with_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_tree(&fixture(), &data);
    std::fs::remove_file(data.join("README.md")).unwrap();

    // The formats this fixture holds: catalog 1, WAL header version 1, index version 3.
    let catalog: Value =
        serde_json::from_slice(&std::fs::read(data.join("state/catalog.json")).unwrap()).unwrap();
    assert_eq!(catalog["version"], 1);
    assert_eq!(
        catalog["segments"].as_array().unwrap().len(),
        2,
        "{catalog}"
    );
    let wal = files(&data.join("wal"), ".wal");
    let tail: Vec<Vec<u8>> = wal.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(tail.iter().all(|b| b.starts_with(b"LYWAL\0\0\x01")));
    assert!(
        tail.iter().any(|b| b.len() > 8),
        "the fixture keeps entries in its WAL"
    );
    for idx in files(&data.join("parts"), ".idx") {
        let bytes = std::fs::read(&idx).unwrap();
        assert_eq!(&bytes[..8], b"LYIDX\0\0\x03", "{}", idx.display());
    }

    let config = dir.path().join("logyard.toml");
    std::fs::write(&config, "[store]\nretention_days = 0\n").unwrap();
    let out = util::run(
        dir.path(),
        &[
            "query",
            "--config",
            config.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--ndjson",
            "--limit",
            "1000",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: BTreeMap<String, Value> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let message = v["message"].as_str().unwrap().to_string();
        assert!(got.insert(message.clone(), v).is_none(), "{message} twice");
    }
    assert_eq!(got.len(), ENTRIES);
    for i in 0..ENTRIES {
        let want = entry(i);
        let have = &got[want["message"].as_str().unwrap()];
        for key in ["level", "agent", "host"] {
            assert_eq!(have[key], want[key], "entry {i}: {key}");
        }
        let ts = chrono::DateTime::parse_from_rfc3339(have["timestamp"].as_str().unwrap()).unwrap();
        let want_ts =
            chrono::DateTime::parse_from_rfc3339(want["timestamp"].as_str().unwrap()).unwrap();
        assert_eq!(ts, want_ts, "entry {i}");
        assert_eq!(have["fields"]["n"], i, "entry {i}: {have}");
        assert_eq!(have["fields"]["user"], want["metadata"]["user"]);
    }
}

/// Writes the fixture into `$LOGYARD_FIXTURE_OUT` (a new directory) with the binary under
/// test: `LOGYARD_FIXTURE_OUT=/tmp/store-v1 cargo test --test format -- --ignored`.
#[test]
#[ignore = "writes the fixture; run by hand when a new format version needs one"]
fn generate_store_v1() {
    let out = PathBuf::from(std::env::var("LOGYARD_FIXTURE_OUT").expect("LOGYARD_FIXTURE_OUT"));
    assert!(!out.exists(), "{} exists", out.display());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        "[store]\nretention_days = 0\nflush_interval = \"1h\"\n",
    )
    .unwrap();
    let post = |server: &Server, range: std::ops::Range<usize>| {
        let body: Vec<Value> = range.map(entry).collect();
        let (status, answer) = server.post(
            "/api/logs",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(status, 200, "{answer}");
    };
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    // Stopped with SIGTERM: the first entries are flushed into segments.
    let server = Server::start(&data, &args);
    post(&server, 0..FLUSHED);
    server.stop();
    // Killed: the rest stay in the WAL.
    let server = Server::start(&data, &args);
    post(&server, FLUSHED..ENTRIES);
    std::thread::sleep(Duration::from_millis(100));
    server.kill();
    // Not part of the store: the lock, and the alerting's state.
    std::fs::remove_file(data.join("LOCK")).unwrap();
    let _ = std::fs::remove_file(data.join("state/alerts.json"));
    copy_tree(&data, &out);
}
