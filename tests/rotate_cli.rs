//! `logyard rotate` and the rotation task of `logyard serve`, through the real binary.

mod util;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use util::{run, Server};

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn write_config(dir: &Path, logs: &Path, extra: &str) -> String {
    let config = dir.join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[rotate]]\nname = \"app\"\npaths = [\"{}/*.log\"]\nsize = \"1KiB\"\nkeep = 2\ncompress = \"gzip\"\n{extra}",
            logs.display()
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_string()
}

#[test]
fn dry_run_changes_nothing_then_a_run_rotates_compresses_and_keeps_n() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let config = write_config(dir.path(), &logs, "");
    let live = logs.join("app.log");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    std::fs::write(&live, "x".repeat(2000)).unwrap();
    let out = run(
        dir.path(),
        &["--config", &config, "rotate", "--data", data, "--dry-run"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dry run"), "{text}");
    assert!(text.contains("rotate"), "{text}");
    assert_eq!(
        std::fs::read_dir(&logs).unwrap().count(),
        1,
        "dry run changed files"
    );

    let mut generations = Vec::new();
    for generation in 0..4 {
        let content = format!("generation {generation}\n").repeat(100);
        std::fs::write(&live, &content).unwrap();
        generations.push(content);
        let out = run(dir.path(), &["--config", &config, "rotate", "--data", data]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // keep = 2: the two newest generations, compressed, byte for byte.
    assert_eq!(gunzip(&logs.join("app.log.1.gz")), generations[3]);
    assert_eq!(gunzip(&logs.join("app.log.2.gz")), generations[2]);
    assert!(!logs.join("app.log.3.gz").exists());
    assert_eq!(
        std::fs::read(&live).unwrap().len(),
        0,
        "a new empty file is created"
    );
    assert!(Path::new(data).join("state/rotate.json").is_file());
}

#[test]
fn a_logrotate_configuration_is_read_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("web.log"), "GET / 200\n").unwrap();
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "compress\n\n\"{}/web.log\" {{\n    rotate 3\n    daily\n    nodelaycompress\n}}\n",
            logs.display()
        ),
    )
    .unwrap();
    let state = dir.path().join("state.json");
    let out = run(
        dir.path(),
        &[
            "rotate",
            "--logrotate-conf",
            conf.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--force",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gunzip(&logs.join("web.log.1.gz")), "GET / 200\n");

    // A directive it does not know is named, with the file and the line.
    std::fs::write(&conf, "compress\nfrobnicate\n").unwrap();
    let out = run(
        dir.path(),
        &[
            "rotate",
            "--logrotate-conf",
            conf.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frobnicate") && err.contains("2"), "{err}");
}

#[test]
fn nothing_to_rotate_says_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["rotate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[[rotate]]") && err.contains("--logrotate-conf"),
        "{err}"
    );
}

#[test]
fn serve_rotates_in_the_background_and_reports_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let config = write_config(dir.path(), &logs, "\n[rotation]\ninterval = \"200ms\"\n");
    std::fs::write(logs.join("app.log"), "y".repeat(4096)).unwrap();
    let server = Server::start(&dir.path().join("data"), &["--config", &config]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !logs.join("app.log.1.gz").exists() {
        assert!(Instant::now() < deadline, "serve did not rotate app.log");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(gunzip(&logs.join("app.log.1.gz")), "y".repeat(4096));
    let text = server.metrics_text();
    assert!(text.contains("logyard_rotate_files_total 1"), "{text}");
    assert!(
        text.contains("logyard_rotate_last_success_timestamp_seconds{rule=\"app\"}"),
        "{text}"
    );
}

#[test]
fn a_bad_rotate_rule_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        "[[rotate]]\npaths = [\"/tmp/x.log\"]\nsize = \"ten\"\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["--config", config.to_str().unwrap(), "check-config"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("size"), "{err}");
}
