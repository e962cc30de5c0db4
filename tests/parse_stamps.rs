//! A line's own time and level through the real binary: `logyard parse --ndjson` over the
//! parse crate's golden inputs of time stamps (`stamps`, `json_stamps`, `custom_time`) and
//! levels (`levels`) gives their golden records, and the `timestamp_format` /
//! `timestamp_field` settings work from the command line and from a source in
//! `logyard.toml`.
//!
//! The golden files were made with a receive time of 2024-01-16T00:00:00Z; the binary
//! receives the lines now. So a golden record that has the receive time must have a time
//! of this run, and one whose year was inferred (a layout without a year) must have the
//! same date and time of day in a year that is not in the future.

mod util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{run, Server};

/// The receive time of the golden files.
const GOLDEN_RECEIVED: &str = "2024-01-16T00:00:00Z";

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/parse/tests/golden")
        .join(name)
}

fn ns(text: &str) -> i64 {
    logyard_model::parse_time(text, 0).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Runs `logyard parse --ndjson` over a copy of a golden input named `<name>.log`.
fn parse_golden(dir: &Path, name: &str, extra: &[&str]) -> Vec<Value> {
    let file = dir.join(format!("{name}.log"));
    std::fs::copy(golden(&format!("{name}.input")), &file).unwrap();
    let mut args = vec!["parse", "--ndjson"];
    args.extend(extra);
    args.push(file.to_str().unwrap());
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

/// Compares the binary's records with the golden ones: time, level, message, fields.
fn assert_golden(name: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let before = logyard_model::now_ns();
    let got = parse_golden(dir.path(), name, extra);
    let after = logyard_model::now_ns();
    let want: Vec<Value> = std::fs::read_to_string(golden(&format!("{name}.expected")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let what = format!("{name} record {}: {}", i + 1, w["message"]);
        for key in ["level", "message", "fields"] {
            assert_eq!(g[key], w[key], "{what}: {key}");
        }
        let (gt, wt) = (
            g["timestamp"].as_str().unwrap(),
            w["timestamp"].as_str().unwrap(),
        );
        if wt == GOLDEN_RECEIVED {
            let t = ns(gt);
            assert!(
                before <= t && t <= after,
                "{what}: {gt} is not the receive time"
            );
        } else if gt != wt {
            // A year-less layout: the same date and time, the latest year not in the future.
            assert_eq!(gt[4..], wt[4..], "{what}: {gt} against {wt}");
            assert!(gt[..4] > wt[..4], "{what}: {gt} against {wt}");
            assert!(
                ns(gt) <= after + 86_400_000_000_000,
                "{what}: {gt} is in the future"
            );
            let next_year = format!("{}{}", gt[..4].parse::<i32>().unwrap() + 1, &gt[4..]);
            assert!(
                logyard_model::parse_time(&next_year, 0)
                    .map_or(true, |t| t > after + 86_400_000_000_000),
                "{what}: {gt} is not the latest year"
            );
        }
    }
}

#[test]
fn header_stamps_of_common_software_through_the_binary() {
    assert_golden("stamps", &[]);
}

#[test]
fn levels_of_common_software_through_the_binary() {
    assert_golden("levels", &[]);
}

#[test]
fn json_time_keys_through_the_binary() {
    assert_golden("json_stamps", &[]);
}

#[test]
fn timestamp_options_of_parse() {
    assert_golden(
        "custom_time",
        &[
            "--timestamp-format",
            "%d.%m.%Y %H:%M:%S%.f",
            "--timestamp-field",
            "when",
        ],
    );
}

#[test]
fn a_bad_timestamp_format_is_refused_with_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.log");
    std::fs::write(&file, "x\n").unwrap();
    let out = run(
        dir.path(),
        &[
            "parse",
            "--timestamp-format",
            "%Y-%m-%d",
            file.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--timestamp-format") && err.contains("no hour") && err.contains("strftime"),
        "{err}"
    );
}

#[test]
fn a_file_source_reads_its_configured_layout_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(
        logs.join("billing.log"),
        "16.05.2017 13:53:08 charge accepted\n\
         {\"when\": \"17.05.2017 08:00:00\", \"msg\": \"refund sent\"}\n\
         17/06/09 20:10:40 INFO detected without the setting\n",
    )
    .unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\npaths = [\"{}/*.log\"]\nstart_at = \"beginning\"\n\
             timestamp_format = \"%d.%m.%Y %H:%M:%S\"\ntimestamp_field = \"when\"\n\n\
             [store]\nretention_days = 0\n",
            logs.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut logs = server.all_of_agent("billing");
    while logs.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        logs = server.all_of_agent("billing");
    }
    let mut times: Vec<(String, String)> = logs
        .iter()
        .map(|l| {
            (
                l["timestamp"].as_str().unwrap().to_string(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    times.sort();
    assert_eq!(
        times,
        [
            (
                "2017-05-16T13:53:08Z".into(),
                "16.05.2017 13:53:08 charge accepted".into()
            ),
            ("2017-05-17T08:00:00Z".into(), "refund sent".into()),
            (
                "2017-06-09T20:10:40Z".into(),
                "17/06/09 20:10:40 INFO detected without the setting".into()
            ),
        ],
        "{logs:#?}"
    );
}

#[test]
fn a_bad_timestamp_format_in_the_config_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\npaths = [\"{}/*.log\"]\ntimestamp_format = \"%d.%m.%Y\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let err = match Server::try_start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    ) {
        Ok(_) => panic!("the server started with a timestamp_format without an hour"),
        Err(e) => e,
    };
    assert!(err.contains("%d.%m.%Y") && err.contains("no hour"), "{err}");
}

#[test]
fn timestamp_options_of_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("billing.log");
    // Recent times: the store keeps 7 days by default.
    let t = chrono::Utc::now() - chrono::Duration::hours(1);
    let day_first = t.format("%d.%m.%Y %H:%M:%S").to_string();
    let json = (t - chrono::Duration::minutes(5))
        .format("%d.%m.%Y %H:%M:%S")
        .to_string();
    std::fs::write(
        &file,
        format!(
            "{day_first} charge accepted\n{{\"when\": \"{json}\", \"msg\": \"refund sent\"}}\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = run(
        dir.path(),
        &[
            "ingest",
            "--data",
            data,
            "--timestamp-format",
            "%d.%m.%Y %H:%M:%S",
            "--timestamp-field",
            "when",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        dir.path(),
        &["query", "--data", data, "--ndjson", "agent:billing"],
    );
    let mut found: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["message"].as_str().unwrap().to_string(),
                v["timestamp"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    let rfc = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(
        found,
        [
            (format!("{day_first} charge accepted"), rfc(t)),
            (
                "refund sent".to_string(),
                rfc(t - chrono::Duration::minutes(5))
            ),
        ]
    );
}
