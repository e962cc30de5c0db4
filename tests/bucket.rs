//! `[storage] type = "s3"` through the real binary and a real S3 API server (moto): what a
//! server acknowledges lands in the bucket, Hive-style, and a server started on an empty
//! data directory over the same prefix finds it there.

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
    let (status, answer) = server.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(&entries).unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 500);
    assert_eq!(count(&server, "* | stats count()"), 500);
    server.stop();

    let keys = moto.keys("logs", "team-a/");
    for day in ["2024-01-15", "2024-01-16"] {
        assert!(
            keys.iter().any(
                |k| k.starts_with(&format!("team-a/day={day}/seg-")) && k.ends_with(".parquet")
            ),
            "{keys:?}"
        );
    }
    assert!(
        std::fs::read_dir(data.join("parts")).map_or(true, |mut d| d.next().is_none()),
        "no segment file on the local disk"
    );

    // An empty data directory over the same prefix: the catalog is rebuilt from the bucket.
    let fresh = dir.path().join("fresh");
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
