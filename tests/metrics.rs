//! `/metrics` of the real binary, parsed by Prometheus's own Python parser
//! (`prometheus_client.parser.text_string_to_metric_families`) and checked against what was
//! ingested.

mod util;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use util::Server;

/// Parses Prometheus text with prometheus_client; returns `[{name, type, samples: [{name,
/// labels, value}]}]`. Fails when the text does not parse.
fn parse_prometheus(text: &str) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
json.dump(out, sys.stdout)
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the text (pip install prometheus_client): {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn samples<'a>(families: &'a [Value], sample: &str) -> Vec<&'a Value> {
    families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .filter(|s| s["name"] == sample)
        .collect()
}

/// 3 000 generated lines, their counts by level and their errors by agent.
fn generated(dir: &Path) -> (Vec<u8>, BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gen_logs.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([
            "--lines", "3000", "--seed", "3", "--format", "jsonl", "--out", "-",
        ])
        .current_dir(dir)
        .output()
        .expect("gen_logs.py");
    assert!(out.status.success());
    let mut levels = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let level = e["level"].as_str().unwrap().to_string();
        if level == "ERROR" || level == "CRITICAL" {
            *errors
                .entry(e["agent"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        *levels.entry(level).or_insert(0) += 1;
    }
    (out.stdout, levels, errors)
}

#[test]
fn metrics_parse_and_match_what_was_ingested() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("logyard.toml");
    std::fs::write(
        &config,
        "[store]\nretention_days = 0\n[metrics]\nmax_agents = 5\n[report]\ndaily_at = \"06:00\"\n",
    )
    .unwrap();
    let (body, levels, errors) = generated(tmp.path());
    let server = Server::start(
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let (status, answer) = server.post("/api/logs", "application/x-ndjson", body.clone());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3000);
    let (status, _) = server.post("/api/logs", "application/json", b"{not json".to_vec());
    assert_eq!(status, 400);
    let (status, _) = server.get("/api/query?q=level:ERROR%20%7C%20stats%20count()");
    assert_eq!(status, 200);
    let (status, _) =
        server.get("/api/report?since=2024-01-15T00:00:00Z&until=2024-01-16T00:00:00Z");
    assert_eq!(status, 200);

    let text = reqwest::blocking::get(format!("{}/metrics", server.url))
        .unwrap()
        .text()
        .unwrap();
    let families = parse_prometheus(&text);
    for f in &families {
        assert!(
            !f["help"].as_str().unwrap().is_empty(),
            "{} has no HELP",
            f["name"]
        );
        let name = f["name"].as_str().unwrap();
        assert!(name.starts_with("logyard_"), "{name}");
        if f["type"] == "counter" {
            // prometheus_client strips `_total` from a counter family's name; its samples
            // carry it.
            assert!(f["samples"].as_array().unwrap().iter().all(|s| s["name"]
                .as_str()
                .unwrap()
                .ends_with("_total")
                || s["name"].as_str().unwrap().ends_with("_created")));
        }
    }

    // Ingested lines by level, summed over sources.
    let mut by_level: BTreeMap<String, u64> = BTreeMap::new();
    for s in samples(&families, "logyard_ingested_lines_total") {
        assert_eq!(s["labels"]["source"], "http");
        *by_level
            .entry(s["labels"]["level"].as_str().unwrap().to_string())
            .or_default() += s["value"].as_f64().unwrap() as u64;
    }
    assert_eq!(by_level, levels);
    let bytes = samples(&families, "logyard_ingested_bytes_total");
    assert_eq!(bytes[0]["value"].as_f64().unwrap() as usize, body.len());
    let rejected = samples(&families, "logyard_rejected_lines_total");
    assert!(rejected
        .iter()
        .any(|s| s["labels"]["reason"] == "invalid_json" && s["value"] == 1.0));

    // Errors by agent: five agents by name, the rest as `other`, nothing lost.
    let errs = samples(&families, "logyard_log_errors_total");
    let named: Vec<&str> = errs
        .iter()
        .map(|s| s["labels"]["agent"].as_str().unwrap())
        .filter(|a| *a != "other")
        .collect();
    assert_eq!(named.len(), 5, "{named:?}");
    for s in &errs {
        let agent = s["labels"]["agent"].as_str().unwrap();
        if agent != "other" {
            assert_eq!(
                s["value"].as_f64().unwrap() as u64,
                errors[agent],
                "{agent}"
            );
        }
    }
    let total: f64 = errs.iter().map(|s| s["value"].as_f64().unwrap()).sum();
    assert_eq!(total as u64, errors.values().sum::<u64>());

    // The query latency histogram, per kind.
    let counts = samples(&families, "logyard_query_duration_seconds_count");
    let kinds: Vec<&str> = counts
        .iter()
        .map(|s| s["labels"]["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"query") && kinds.contains(&"report"),
        "{kinds:?}"
    );
    let inf = samples(&families, "logyard_query_duration_seconds_bucket")
        .into_iter()
        .filter(|s| s["labels"]["kind"] == "query" && s["labels"]["le"] == "+Inf")
        .count();
    assert_eq!(inf, 1);

    // Queue depths and the store.
    for name in [
        "logyard_store_memtable_rows",
        "logyard_store_memtable_bytes",
        "logyard_wal_bytes",
        "logyard_store_bytes",
        "logyard_store_segments",
        "logyard_store_merges_total",
        "logyard_ingest_lines_per_second",
        // The daily report's scheduler runs (daily_at is set) and reports itself.
        "logyard_reports_written_total",
        "logyard_report_last_success_timestamp_seconds",
    ] {
        assert_eq!(samples(&families, name).len(), 1, "{name}");
    }
    let avail = samples(&families, "logyard_filesystem_avail_bytes");
    assert_eq!(avail[0]["labels"]["dir"], "data");
    assert!(avail[0]["value"].as_f64().unwrap() > 0.0);
    let rows = samples(&families, "logyard_store_rows")[0]["value"]
        .as_f64()
        .unwrap()
        + samples(&families, "logyard_store_memtable_rows")[0]["value"]
            .as_f64()
            .unwrap();
    assert_eq!(rows as u64, 3000);
    // The scheduler stops with the server.
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Returns the value of an unlabelled sample in Prometheus text.
fn sample_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Runs a phrase search twice over data in segments, and returns the answers and the text
/// of `/metrics` after them.
fn search_twice(cache_bytes: &str) -> (Value, Value, String) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!("[store]\nretention_days = 0\nflush_interval = \"100ms\"\ncache_bytes = \"{cache_bytes}\"\n"),
    )
    .unwrap();
    let (body, _, _) = generated(tmp.path());
    let server = Server::start(
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let (status, answer) = server.post("/api/logs", "application/x-ndjson", body);
    assert_eq!(status, 200, "{answer}");
    let metrics = || {
        reqwest::blocking::get(format!("{}/metrics", server.url))
            .unwrap()
            .text()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sample_value(&metrics(), "logyard_store_rows") != Some(3000.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the lines never reached a segment"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let q = "/api/query?q=%22connection%20refused%22%20%7C%20stats%20count()";
    let (status, first) = server.get(q);
    assert_eq!(status, 200, "{first}");
    let (_, second) = server.get(q);
    let text = metrics();
    server.stop();
    (first, second, text)
}

#[test]
fn repeated_searches_take_decoded_columns_from_the_cache() {
    let (first, second, text) = search_twice("64MiB");
    assert_eq!(first["rows"], second["rows"]);
    assert!(first["rows"][0][0].as_u64().unwrap() > 0, "{first}");
    let value = |name| sample_value(&text, name).unwrap_or_else(|| panic!("no {name}"));
    assert!(value("logyard_store_cache_misses_total") >= 1.0, "{text}");
    assert!(value("logyard_store_cache_hits_total") >= 1.0, "{text}");
    assert!(value("logyard_store_cache_bytes") > 0.0, "{text}");

    let (off, _, text) = search_twice("0");
    assert_eq!(off["rows"], first["rows"]);
    assert_eq!(
        sample_value(&text, "logyard_store_cache_hits_total"),
        Some(0.0)
    );
    assert_eq!(sample_value(&text, "logyard_store_cache_bytes"), Some(0.0));
}
