//! The example alerting rules of docs/prometheus-alerts.yml, checked and unit-tested with
//! Prometheus's own `promtool` (Debian's `prometheus` package) against `/metrics` of the
//! real binary.
//!
//! What is real and what is constructed:
//! - real: `promtool check rules` over the file as shipped; two scrapes of a running
//!   `logyard serve` that follows a folder holding a 2 GiB file (sparse: its size is real,
//!   its disk use is not), keeps its segments in a bucket (a real S3 API server, moto) and
//!   ingested ERROR entries between the scrapes; every series fed to promtool, with its
//!   labels and its two values, comes from those scrapes;
//! - constructed: the time axis. The scrapes are a few seconds apart and are placed at 0m
//!   and 1m, and each series is extended from there for hours, as Prometheus would see a
//!   server that goes on as it did between the two scrapes: a counter keeps growing by what
//!   it grew between them, a gauge keeps its second value. `up` is added with the value
//!   Prometheus records for a scrape that succeeded, and the `job` and `instance` labels are
//!   those Prometheus attaches. The rules run over hours of that series, so that their
//!   `for:` and range windows are met.

#[path = "util/moto.rs"]
mod moto;
mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use util::Server;

/// The size of the file the "log file too large" alert must find: over its 1 GiB.
const BIG: u64 = 2 * 1024 * 1024 * 1024;
/// Minutes of series after the two scrapes.
const MINUTES: u32 = 7 * 60 + 10;
/// When the rules are evaluated: 7 h, so that every window (6 h at most) sees the server's
/// steady state only.
const EVAL: &str = "7h";

fn rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus-alerts.yml")
}

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool is missing: install Debian's prometheus package (bash .ci/test does)")
}

fn ok_or_print(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The alert names of the rules file, in order.
fn alert_names() -> Vec<String> {
    std::fs::read_to_string(rules_file())
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// One scrape: each sample by its series text (`name{labels}`), and each family's type.
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn take(server: &Server) -> Scrape {
        let text = reqwest::blocking::get(format!("{}/metrics", server.url))
            .expect("GET /metrics")
            .text()
            .unwrap();
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(t) = line.strip_prefix("# TYPE ") {
                let mut w = t.split_whitespace();
                if let (Some(name), Some(kind)) = (w.next(), w.next()) {
                    types.insert(name.to_string(), kind.to_string());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            // `name{labels} value`: label values may hold spaces, the value cannot.
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            samples.insert(series.to_string(), value);
        }
        Scrape { samples, types }
    }

    /// Whether a series only grows: counters, and the parts of histograms and summaries.
    fn is_counter(&self, series: &str) -> bool {
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s).filter(|f| {
                    matches!(
                        self.types.get(*f).map(String::as_str),
                        Some("histogram" | "summary")
                    )
                })
            })
            .unwrap_or(name);
        matches!(
            self.types.get(family).map(String::as_str),
            Some("counter" | "histogram" | "summary")
        )
    }
}

/// Adds Prometheus's target labels to a series text.
fn with_target(series: &str, instance: &str) -> String {
    let target = format!("job=\"logyard\",instance=\"{instance}\"");
    match series.split_once('{') {
        Some((name, rest)) if rest.starts_with('}') => format!("{name}{{{target}}}"),
        Some((name, rest)) => format!("{name}{{{target},{rest}"),
        None => format!("{series}{{{target}}}"),
    }
}

/// A YAML single-quoted string.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Appends `n` JSON lines of agent `billing`, `errors` of them at ERROR, through the API.
fn ingest(server: &Server, n: usize, errors: usize) {
    let mut body = String::new();
    for i in 0..n {
        let level = if i < errors { "ERROR" } else { "INFO" };
        let _ = writeln!(
            body,
            "{{\"level\":\"{level}\",\"agent\":\"billing\",\"message\":\"invoice {i} handled\"}}"
        );
    }
    let (status, answer) = server.post("/api/logs", "application/x-ndjson", body.into_bytes());
    assert!(status < 300, "{status} {answer}");
}

/// Waits until the file source has read `path` to its end.
fn wait_read(server: &Server, path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, sources) = server.get("/api/sources");
        let done = sources
            .as_array()
            .or_else(|| sources["sources"].as_array())
            .into_iter()
            .flatten()
            .flat_map(|s| s["files"].as_array().cloned().unwrap_or_default())
            .any(|f| {
                f["path"] == path.to_str().unwrap()
                    && f["offset"] == f["size"]
                    && f["size"].as_u64() > Some(BIG)
            });
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the file source did not read {}: {sources}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn example_alert_rules_check_and_fire_on_a_real_scrape() {
    let check = promtool(&["check", "rules", rules_file().to_str().unwrap()]);
    ok_or_print("promtool check rules docs/prometheus-alerts.yml", &check);

    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    // big.log: lines (more than the 1 KiB in which a NUL byte makes a file binary), then a
    // hole up to 2 GiB, then a newline: its size is 2 GiB, and the source, starting at the
    // end of files found at the start, reads none of the hole.
    let big = logs.join("big.log");
    {
        let mut f = std::fs::File::create(&big).unwrap();
        for i in 0..64 {
            writeln!(f, "2026-01-01 00:00:00 INFO request {i} served").unwrap();
        }
        f.set_len(BIG).unwrap();
        drop(f);
        let mut f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
        f.write_all(b"\n").unwrap();
    }
    let small = logs.join("small.log");
    std::fs::write(&small, "2026-01-01 00:00:00 INFO started\n").unwrap();
    // A rotation rule and a daily report as well, so that their metrics, which the rules
    // use, are there too. The rule rotates another folder: not the 2 GiB file.
    // Segments in a bucket, so that the storage tier's metrics are there too.
    let moto = moto::Moto::start();
    moto.create_bucket("logs");
    let rotated = tmp.path().join("rotated");
    std::fs::create_dir(&rotated).unwrap();
    std::fs::write(rotated.join("app.log"), "a line\n").unwrap();
    let config = tmp.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\nname = \"app\"\npaths = [\"{}/*.log\"]\nstart_at = \"end\"\n\n\
             [[rotate]]\npaths = [\"{}/*.log\"]\nsize = \"10MB\"\n\n\
             [report]\ndaily_at = \"06:00\"\ndir = \"{}\"\n\n\
             [storage]\ntype = \"s3\"\nbucket = \"logs\"\nendpoint = \"{}\"\n",
            logs.display(),
            rotated.display(),
            tmp.path().join("reports").display(),
            moto.endpoint
        ),
    )
    .unwrap();
    let server = Server::start_with_env(
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );
    let instance = server.url.trim_start_matches("http://").to_string();

    ingest(&server, 50, 1);
    wait_read(&server, &big);
    // The first rotation run starts 2 s after the server; its rule's timestamp follows.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Scrape::take(&server)
        .samples
        .keys()
        .any(|s| s.starts_with("logyard_rotate_last_success_timestamp_seconds{"))
    {
        assert!(Instant::now() < deadline, "no rotation run within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let first = Scrape::take(&server);
    // Between the scrapes: 2 % errors through the API, new lines in the big file.
    ingest(&server, 100, 2);
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
        for i in 0..10 {
            writeln!(f, "2026-01-01 00:00:{i:02} ERROR payment {i} failed").unwrap();
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    wait_read(&server, &big);
    let second = Scrape::take(&server);

    // Every logyard metric the rules use is one that /metrics answers.
    let rules_text = std::fs::read_to_string(rules_file()).unwrap();
    let used: BTreeSet<&str> = rules_text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("logyard_"))
        .collect();
    let scraped: BTreeSet<&str> = second
        .samples
        .keys()
        .map(|s| s.split('{').next().unwrap())
        .collect();
    let missing: Vec<&&str> = used.difference(&scraped).collect();
    assert!(
        missing.is_empty(),
        "the rules use metrics /metrics does not answer: {missing:?}"
    );

    // The new metric is in the scrape, with the file's real size.
    let size_series = |path: &Path| {
        second
            .samples
            .iter()
            .find(|(s, _)| {
                s.starts_with("logyard_source_file_size_bytes{")
                    && s.contains(&format!("path=\"{}\"", path.display()))
            })
            .map(|(s, v)| (s.clone(), *v))
            .unwrap_or_else(|| {
                panic!(
                    "no size of {} in /metrics: {:?}",
                    path.display(),
                    second.samples.keys()
                )
            })
    };
    let (big_series, big_size) = size_series(&big);
    assert_eq!(big_size, std::fs::metadata(&big).unwrap().len() as f64);
    assert!(big_size > BIG as f64);
    let (_, small_size) = size_series(&small);
    assert_eq!(small_size, std::fs::metadata(&small).unwrap().len() as f64);

    // The input series: every sample of either scrape.
    let mut input = String::new();
    let all: BTreeSet<&String> = first.samples.keys().chain(second.samples.keys()).collect();
    for series in all {
        let a = first.samples.get(series).copied();
        let b = second.samples.get(series).copied();
        if a.is_some_and(|v| !v.is_finite()) || b.is_some_and(|v| !v.is_finite()) {
            continue;
        }
        let values = match (a, b) {
            (Some(a), Some(b)) if second.is_counter(series) => {
                format!("{a} {b}+{}x{MINUTES}", (b - a).max(0.0))
            }
            (Some(a), Some(b)) => format!("{a} {b}+0x{MINUTES}"),
            (None, Some(b)) => format!("_ {b}+0x{MINUTES}"),
            // Gone by the second scrape: stale from then on.
            (Some(a), None) => format!("{a}"),
            (None, None) => unreachable!(),
        };
        let _ = writeln!(
            input,
            "      - series: {}\n        values: {}",
            quoted(&with_target(series, &instance)),
            quoted(&values)
        );
    }
    let _ = writeln!(
        input,
        "      - series: {}\n        values: {}",
        quoted(&format!("up{{job=\"logyard\",instance=\"{instance}\"}}")),
        quoted(&format!("1 1+0x{MINUTES}"))
    );

    // What must fire: the 2 GiB file, and nothing else on this healthy server.
    let big_labels = {
        let mut l = BTreeMap::from([
            ("severity".to_string(), "warning".to_string()),
            ("job".to_string(), "logyard".to_string()),
            ("instance".to_string(), instance.clone()),
        ]);
        let inner = big_series
            .split_once('{')
            .unwrap()
            .1
            .trim_end_matches('}')
            .to_string();
        for pair in inner.split("\",") {
            let (k, v) = pair.split_once("=\"").unwrap();
            l.insert(k.to_string(), v.trim_end_matches('"').to_string());
        }
        l
    };
    let disk_free = {
        let get = |name: &str| {
            second
                .samples
                .iter()
                .find(|(s, _)| s.starts_with(name) && s.contains("dir=\"data\""))
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("no {name} in /metrics"))
        };
        get("logyard_filesystem_avail_bytes") / get("logyard_filesystem_size_bytes")
    };
    let mut tests = String::new();
    for name in alert_names() {
        if name == "LogyardDataDiskNearlyFull" && disk_free < 0.10 {
            // Real data: this machine's disk is nearly full, and the alert rightly fires.
            eprintln!("skipping {name}: the data directory's filesystem has {disk_free:.3} free");
            continue;
        }
        let expected = if name == "LogyardLogFileTooLarge" {
            let labels: String = big_labels
                .iter()
                .map(|(k, v)| format!("              {k}: {}\n", quoted(v)))
                .collect();
            format!(
                "\n          - exp_labels:\n{labels}            exp_annotations:\n              summary: {}\n",
                quoted(&format!(
                    "{} (source {}) on {instance} is over 1 GiB: rotate it (docs/rotation.md)",
                    big_labels["path"], big_labels["source"]
                ))
            )
        } else {
            " []\n".to_string()
        };
        let _ = write!(
            tests,
            "      - eval_time: {EVAL}\n        alertname: {name}\n        exp_alerts:{expected}"
        );
    }
    // Its `for: 15m` is not met 10 minutes in.
    let _ = write!(
        tests,
        "      - eval_time: 10m\n        alertname: LogyardLogFileTooLarge\n        exp_alerts: []\n"
    );

    let unit = format!(
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{input}    alert_rule_test:\n{tests}",
        quoted(rules_file().to_str().unwrap())
    );
    let unit_path = tmp.path().join("alerts-test.yml");
    std::fs::write(&unit_path, &unit).unwrap();
    let out = promtool(&["test", "rules", unit_path.to_str().unwrap()]);
    if !out.status.success() {
        eprintln!("the generated unit-test file:\n{unit}");
    }
    ok_or_print("promtool test rules", &out);
}
