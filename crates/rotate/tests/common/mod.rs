//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use logyard_rotate::{RotateRule, RotateRuleConfig, RunOptions};

/// Builds rules from `[[rotate]]` TOML text, with `@DIR@` replaced by `dir`.
pub fn rules(dir: &Path, text: &str) -> Vec<RotateRule> {
    #[derive(serde::Deserialize)]
    struct Doc {
        rotate: Vec<RotateRuleConfig>,
    }
    let text = text.replace("@DIR@", &dir.to_string_lossy());
    let doc: Doc = toml::from_str(&text).expect("toml");
    doc.rotate
        .iter()
        .map(|r| r.build().expect("rule"))
        .collect()
}

/// Options for a run at `now`, state in `dir/state.json`.
pub fn opts(dir: &Path, now: SystemTime) -> RunOptions {
    RunOptions {
        now,
        ..RunOptions::new(dir.join("state.json"))
    }
}

/// A fixed start time for tests that drive time (2024-01-15 10:00:00 UTC).
pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_312_800)
}

/// Appends `n` distinct lines tagged with `tag`; returns the bytes written.
pub fn append(path: &Path, tag: &str, n: usize) -> Vec<u8> {
    use std::io::Write;
    let mut data = Vec::new();
    for i in 0..n {
        writeln!(data, "{tag} {i} {}", "x".repeat(i % 37)).unwrap();
    }
    let mut f = File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(&data).unwrap();
    data
}

/// Sets a file's modification time `days` before `now`.
pub fn set_age(path: &Path, now: SystemTime, days: u64) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(now - Duration::from_secs(days * 86_400))
        .unwrap();
}

/// Sorted file names in `dir`.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("state.json"))
        .collect();
    v.sort();
    v
}

/// `dir/name`.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Whether the tests run as root (permission bits do not stop root).
pub fn is_root(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = dir.join(".probe");
    fs::write(&probe, b"").unwrap();
    let root = fs::metadata(&probe).unwrap().uid() == 0;
    fs::remove_file(probe).unwrap();
    root
}
