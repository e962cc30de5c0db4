//! `[storage] type = "s3"` through the real binary and a real S3 API server (moto): what a
//! server acknowledges is written to its disk, uploaded to the bucket Hive-style (as
//! `/metrics` shows), and a server started on an empty data directory over the same prefix
//! finds it there.

#[path = "util/moto.rs"]
mod moto;
mod util;

use moto::Moto;
use serde_json::{json, Value};
use util::Server;

const CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
];

fn count(server: &Server, query: &str) -> u64 {
    let (status, answer) = server.get(&format!(
        "/api/query?q={}&start=2024-01-01T00:00:00Z",
        query.replace(' ', "%20").replace('|', "%7C")
    ));
    assert_eq!(status, 200, "{answer}");
    answer["rows"][0][0]
        .as_u64()
        .unwrap_or_else(|| panic!("{answer}"))
}

#[test]
fn a_server_keeps_its_segments_in_the_bucket_and_a_new_one_finds_them() {
    let moto = Moto::start();
    moto.create_bucket("logs");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nretention_days = 0\nflush_interval = \"200ms\"\n\n[storage]\ntype = \"s3\"\nbucket = \"logs\"\nprefix = \"team-a\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n",
            moto.endpoint
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let data = dir.path().join("data");
    let server = Server::start_with_env(&data, &args, &CREDENTIALS);
    let entries: Vec<Value> = (0..500)
        .map(|i| {
            json!({"timestamp": format!("2024-01-{:02}T10:00:{:02}Z", 15 + i % 2, i % 60),
                   "level": if i % 10 == 0 { "error" } else { "info" },
                   "agent": "billing", "message": format!("payment {i} settled")})
        })
        .collect();
    server.post_entries(&entries);
    assert_eq!(count(&server, "* | stats count()"), 500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.metric("logyard_storage_upload_pending_files") != Some(0.0)
        || server
            .metric("logyard_storage_uploaded_files_total")
            .unwrap_or(0.0)
            < 4.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the uploads did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let errors = count(&server, "level:ERROR | stats count()");
    let (status, storage) = server.get("/api/storage");
    assert_eq!(status, 200, "{storage}");
    assert_eq!(storage["type"], "s3");
    assert_eq!(storage["location"], "s3://logs/team-a");
    assert_eq!(storage["uploads"]["pending_files"], 0, "{storage}");
    assert_eq!(storage["uploads"]["errors"], 0, "{storage}");
    server.stop();

    // Another engine reads the bucket as a Hive-partitioned dataset and counts the same.
    let read = moto.read_as_dataset("logs", "team-a");
    assert_eq!(read["rows"], 500, "{read}");
    assert_eq!(
        read["by_day"],
        json!({"2024-01-15": 250, "2024-01-16": 250}),
        "{read}"
    );
    assert_eq!(read["by_level"]["ERROR"], errors, "{read}");

    let keys = moto.keys("logs", "team-a/");
    for day in ["2024-01-15", "2024-01-16"] {
        assert!(
            keys.iter().any(
                |k| k.starts_with(&format!("team-a/day={day}/seg-")) && k.ends_with(".parquet")
            ),
            "{keys:?}"
        );
    }
    // The local copies are the cache (within local_cache_bytes).
    assert!(data.join("parts/2024-01-15").is_dir());

    // An empty data directory over the same prefix is refused while the prefix names the
    // first server; once its claim is removed, the catalog is rebuilt from the bucket.
    let fresh = dir.path().join("fresh");
    let refused = Server::try_start_with_env(&fresh, &args, &CREDENTIALS)
        .err()
        .expect("refused");
    assert!(
        refused.contains("holds the segments of another store") && refused.contains("_owner.json"),
        "{refused}"
    );
    moto.delete("logs", "team-a/_owner.json");
    let server = Server::start_with_env(&fresh, &args, &CREDENTIALS);
    assert_eq!(count(&server, "* | stats count()"), 500);
    assert_eq!(count(&server, "level:ERROR | stats count()"), 50);
    assert_eq!(count(&server, "\"payment 77 settled\" | stats count()"), 1);
}

#[test]
fn a_storage_section_without_its_bucket_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(&config, "[storage]\ntype = \"s3\"\nprefix = \"team-a\"\n").unwrap();
    let error = Server::try_start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .err()
    .expect("refused");
    assert!(error.contains("storage.bucket is missing"), "{error}");
}

#[test]
fn a_local_server_says_its_segments_are_in_its_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let (status, storage) = server.get("/api/storage");
    assert_eq!(status, 200, "{storage}");
    assert_eq!(storage["type"], "local");
    assert_eq!(
        storage["location"],
        data.join("parts").display().to_string()
    );
    assert_eq!(storage["uploads"], Value::Null);
}

/// Waits until a metric reaches `at_least` (60 s at most).
fn wait_metric(server: &Server, name: &str, at_least: f64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.metric(name).unwrap_or(0.0) < at_least {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} stayed below {at_least}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Posts `n` entries of agent `billing` (`payment <i> settled`) of 2024-01-`day`.
fn post_payments(server: &Server, day: u32, n: usize) {
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            json!({"timestamp": format!("2024-01-{day:02}T10:00:{:02}Z", i % 60),
                   "agent": "billing", "message": format!("payment {i} settled")})
        })
        .collect();
    server.post_entries(&entries);
}

/// A server over a bucket at `endpoint` (with more `[storage]` keys) that keeps no local copy
/// and no decoded column: 300 payments of 2024-01-15 are written, uploaded, and their local
/// files removed, and the server is started again, so that every read of them goes to the
/// bucket.
fn reading_from_the_bucket(endpoint: &str, storage_keys: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nretention_days = 0\nflush_interval = \"200ms\"\ncache_bytes = 0\n\n\
             [storage]\ntype = \"s3\"\nbucket = \"logs\"\nendpoint = \"{endpoint}\"\n\
             local_cache_bytes = 0\nlocal_days = 0\n{storage_keys}"
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let data = dir.path().join("data");
    let server = Server::start_with_env(&data, &args, &CREDENTIALS);
    post_payments(&server, 15, 300);
    wait_metric(&server, "logyard_storage_uploaded_files_total", 2.0);
    wait_metric(&server, "logyard_storage_cache_evicted_files_total", 2.0);
    server.stop();
    let server = Server::start_with_env(&data, &args, &CREDENTIALS);
    (dir, server)
}

#[test]
fn with_the_bucket_out_of_reach_a_query_answers_what_it_can_and_names_the_segments_left_out() {
    let mut moto = Moto::start();
    moto.create_bucket("logs");
    let (_dir, server) = reading_from_the_bucket(&moto.endpoint, "");
    assert_eq!(count(&server, "payment | stats count()"), 300);
    let (_, storage) = server.get("/api/storage");
    assert!(
        storage["downloads"]["requests"].as_u64() > Some(0),
        "{storage}"
    );
    assert!(
        storage["downloads"]["bytes"].as_u64() > Some(0),
        "{storage}"
    );
    assert_eq!(storage["downloads"]["errors"], 0, "{storage}");
    assert_eq!(storage["last_error"], Value::Null, "{storage}");

    moto.stop();
    // Newer entries stay readable on the local disk (and wait there for the bucket).
    post_payments(&server, 16, 20);
    let started = std::time::Instant::now();
    let (status, answer) =
        server.get("/api/query?q=payment%20%7C%20stats%20count()&start=2024-01-01T00:00:00Z");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"][0][0], 20, "{answer}");
    assert_eq!(answer["partial"], true, "{answer}");
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("could not be read now"), "{answer}");
    let left_out = answer["cost"]["segments_unreachable"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(!left_out.is_empty(), "{answer}");
    for name in left_out {
        let name = name.as_str().unwrap_or_default();
        assert!(
            name.starts_with("2024-01-15/seg-") && name.ends_with(".parquet"),
            "{answer}"
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the answer took {:?}",
        started.elapsed()
    );

    // The list of entries and an export say the same.
    let (status, answer) = server.get("/api/query?q=payment&start=2024-01-01T00:00:00Z&limit=1000");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["logs"].as_array().map(Vec::len),
        Some(20),
        "{answer}"
    );
    assert_eq!(answer["partial"], true, "{answer}");
    let export = util::client()
        .get(format!(
            "{}/api/export?q=payment&start=2024-01-01T00:00:00Z",
            server.url
        ))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines.len(), 21, "{export}");
    let last: Value = serde_json::from_str(lines[20]).unwrap();
    assert_eq!(last["partial"], true, "{export}");
    let (status, answer) = server.post(
        "/api/sql",
        "application/json",
        serde_json::to_vec(
            &json!({"sql": "SELECT count(*) FROM logs WHERE message LIKE 'payment%'"}),
        )
        .unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"][0][0], 20, "{answer}");
    assert_eq!(answer["partial"], true, "{answer}");
    assert!(
        answer["cost"]["segments_unreachable"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{answer}"
    );
    // The status says what failed; the entries written since wait on the local disk.
    wait_metric(&server, "logyard_storage_upload_pending_files", 1.0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, storage) = server.get("/api/storage");
    assert!(
        storage["downloads"]["errors"].as_u64() > Some(0),
        "{storage}"
    );
    assert!(
        storage["uploads"]["lag_seconds"].as_f64() > Some(1.0),
        "{storage}"
    );
    let last = storage["last_error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last.starts_with("cannot read from the bucket") || last.starts_with("cannot upload"),
        "{storage}"
    );
    assert!(server.metric("logyard_storage_download_errors_total") > Some(0.0));
    assert!(
        server.metric("logyard_storage_request_errors_total{op=\"download\",kind=\"unreachable\"}")
            > Some(0.0)
    );
    assert_eq!(
        server.metric("logyard_storage_request_errors_total{op=\"download\",kind=\"denied\"}"),
        Some(0.0)
    );
    assert!(server.metric("logyard_storage_upload_lag_seconds") > Some(1.0));
    // The server stays healthy: a query of what is local is whole.
    let (status, answer) =
        server.get("/api/query?q=payment%20%7C%20stats%20count()&start=2024-01-16T00:00:00Z");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"][0][0], 20, "{answer}");
    assert!(answer.get("partial").is_none(), "{answer}");
}

#[test]
fn credentials_come_from_the_shared_aws_files_when_the_environment_has_none() {
    let moto = Moto::start();
    moto.create_bucket("logs");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other\n\n\
         [logs]\naws_access_key_id = AKIALOGS\naws_secret_access_key = from-the-file\n",
    )
    .unwrap();
    std::fs::write(
        home.join(".aws/config"),
        "[profile logs]\nregion = us-east-1\n",
    )
    .unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nretention_days = 0\nflush_interval = \"200ms\"\n\n[storage]\ntype = \"s3\"\n\
             bucket = \"logs\"\nendpoint = \"{}\"\n",
            moto.endpoint
        ),
    )
    .unwrap();
    // None of the environment's own keys or region: only the files.
    let home = format!("HOME={}", home.display());
    let mut wrapper = vec!["env"];
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ] {
        wrapper.extend(["-u", name]);
    }
    wrapper.extend([home.as_str(), "AWS_PROFILE=logs"]);
    let server = Server::start_wrapped(
        &wrapper,
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let (status, answer) = server.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(&json!([{"timestamp": "2024-01-15T10:00:00Z", "message": "signed"}]))
            .unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    wait_metric(&server, "logyard_storage_uploaded_files_total", 2.0);
    let (_, storage) = server.get("/api/storage");
    assert_eq!(storage["uploads"]["errors"], 0, "{storage}");
    // No secret of the file in the server's log.
    let log = server.stop();
    assert!(!log.contains("from-the-file"), "{log}");
}

#[test]
fn uploads_that_lag_raise_a_system_alert() {
    let mut moto = Moto::start();
    moto.create_bucket("logs");
    let hook = util::Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nretention_days = 0\nflush_interval = \"200ms\"\n\n[storage]\ntype = \"s3\"\n\
             bucket = \"logs\"\nendpoint = \"{}\"\nalert_after = \"1s\"\n\n[alerts]\n\
             evaluate_every = \"100ms\"\n[[alerts.notifiers]]\nname = \"hermes\"\n\
             type = \"webhook\"\nurl = \"{}\"\n",
            moto.endpoint, hook.url
        ),
    )
    .unwrap();
    let server = Server::start_with_env(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &CREDENTIALS,
    );
    moto.stop();
    let (status, answer) = server.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(&json!([{"timestamp": "2024-01-15T10:00:00Z", "message": "kept"}]))
            .unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    let got = hook.wait_for(1);
    let lag = got
        .iter()
        .find(|a| a["rule"] == "storage-upload-lag")
        .unwrap_or_else(|| panic!("no upload lag alert: {got:?}"));
    assert_eq!(lag["kind"], "storage");
    assert_eq!(lag["severity"], "warning");
    let message = lag["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("for their upload to s3://logs/") && message.contains("last error"),
        "{message}"
    );
    // The entry stays searchable from the local disk.
    assert_eq!(count(&server, "kept | stats count()"), 1);
}

/// A TCP proxy on 127.0.0.1 to `upstream` that can hang: while stalled it keeps every
/// connection and every byte and answers nothing (a bucket that does not answer).
struct HangingProxy {
    endpoint: String,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HangingProxy {
    fn start(upstream: &str) -> HangingProxy {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream, stalled: Arc<AtomicBool>| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            // Stalled: what comes is taken and never passed on.
                            if !stalled.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    flag.clone(),
                );
                pipe(server, client, flag.clone());
            }
        });
        HangingProxy { endpoint, stalled }
    }

    fn stall(&self, on: bool) {
        self.stalled.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_bucket_that_hangs_holds_up_one_read_not_every_query() {
    let moto = Moto::start();
    moto.create_bucket("logs");
    let proxy = HangingProxy::start(&moto.endpoint);
    let (_dir, server) = reading_from_the_bucket(&proxy.endpoint, "request_timeout = \"1s\"\n");
    assert_eq!(count(&server, "payment | stats count()"), 300);

    proxy.stall(true);
    let query = "/api/query?q=payment%20%7C%20stats%20count()&start=2024-01-01T00:00:00Z";
    // The first read waits for the request timeout (and the client's retries) ...
    let (status, answer) = server.get(query);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partial"], true, "{answer}");
    assert_eq!(answer["rows"][0][0], 0, "{answer}");
    // ... the next query does not wait again: the bucket did not answer a moment ago.
    let started = std::time::Instant::now();
    let (_, answer) = server.get(query);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer["partial"], true, "{answer}");
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("did not answer a read"), "{answer}");

    // Answering again, the bucket is read again once the pause is over.
    proxy.stall(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, answer) = server.get(query);
        if answer["rows"][0][0] == 300 {
            assert!(answer.get("partial").is_none(), "{answer}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{answer}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
