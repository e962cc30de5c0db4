//! Differential tests against Debian's `logrotate` (package `logrotate`, 3.21 in bookworm).
//!
//! Each case builds the same files in two directories, runs `logrotate` on one and
//! logyard's [`run`] on the other with the same configuration text, and compares the file
//! names, their (decompressed) contents and their modes. Dated names depend on today, so
//! they are never written down: both sides compute them.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use logyard_rotate::{parse_logrotate_str, read_archive, run, NoopObserver, RunOptions};

type Setup = fn(&Path);

struct Case {
    name: &'static str,
    /// The configuration; `@DIR@` stands for the log directory.
    conf: &'static str,
    setup: Setup,
    force: bool,
}

fn logrotate_bin() -> PathBuf {
    for p in ["logrotate", "/usr/sbin/logrotate", "/sbin/logrotate"] {
        if Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return PathBuf::from(p);
        }
    }
    panic!(
        "logrotate is not installed, and the differential tests need it: run `apt-get install -y logrotate` (Debian package logrotate)"
    );
}

fn write(dir: &Path, name: &str, lines: usize) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let mut f = File::create(&p).unwrap();
    for i in 0..lines {
        writeln!(
            f,
            "{name} line {i}: the quick brown fox jumps over the lazy dog"
        )
        .unwrap();
    }
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
}

fn write_gz(dir: &Path, name: &str, text: &str) {
    let f = File::create(dir.join(name)).unwrap();
    let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o644)).unwrap();
}

fn age(dir: &Path, name: &str, days: u64) {
    let t = SystemTime::now() - Duration::from_secs(days * 86_400);
    File::options()
        .write(true)
        .open(dir.join(name))
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// name → (mode, decompressed content) for every file under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if m.is_dir() {
                stack.push(e.path());
                out.insert(rel + "/", (m.permissions().mode() & 0o7777, Vec::new()));
            } else {
                let content = read_archive(&e.path()).unwrap();
                out.insert(rel, (m.permissions().mode() & 0o7777, content));
            }
        }
    }
    out
}

fn show(s: &BTreeMap<String, (u32, Vec<u8>)>) -> String {
    s.iter()
        .map(|(k, (m, c))| {
            format!(
                "  {k} {m:o} {} bytes {:?}\n",
                c.len(),
                String::from_utf8_lossy(&c[..c.len().min(40)])
            )
        })
        .collect()
}

/// Writes both state files as if every `*.log` file in the trees was rotated `days` ago.
fn write_states(base: &Path, logs: &[PathBuf], days: u64) {
    let when = SystemTime::now() - Duration::from_secs(days * 86_400);
    let secs = when
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let local = chrono::DateTime::<chrono::Local>::from(when);
    let stamp = local.format("%Y-%-m-%-d-%-H:%-M:%-S");
    let logs_of = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        v.sort();
        v
    };
    let mut theirs = String::from("logrotate state -- version 2\n");
    for p in logs_of(&logs[0]) {
        theirs.push_str(&format!("\"{}\" {stamp}\n", p.display()));
    }
    fs::write(base.join("logrotate.state"), theirs).unwrap();
    let files: Vec<String> = logs_of(&logs[1])
        .iter()
        .map(|p| format!("{:?}: {{\"last_rotated\": {secs}}}", p.to_string_lossy()))
        .collect();
    let ours = format!("{{\"version\": 1, \"files\": {{{}}}}}", files.join(", "));
    fs::write(base.join("logyard.state"), ours).unwrap();
}

fn check(case: &Case) {
    check_with(case, None, true)
}

fn check_with(case: &Case, state_days: Option<u64>, expect_change: bool) {
    let bin = logrotate_bin();
    let base = tempfile::tempdir().unwrap();
    fs::set_permissions(base.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let mut logs = Vec::new();
    for side in ["logrotate", "logyard"] {
        let top = base.path().join(side);
        let dir = top.join("logs");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&top, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        (case.setup)(&dir);
        logs.push(dir);
    }
    let conf_for = |dir: &Path| case.conf.replace("@DIR@", &dir.to_string_lossy());

    if let Some(days) = state_days {
        write_states(base.path(), &logs, days);
    }
    let before = snapshot(&logs[0]);
    let conf_path = base.path().join("logrotate.conf");
    fs::write(&conf_path, conf_for(&logs[0])).unwrap();
    fs::set_permissions(&conf_path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = Command::new(&bin);
    if case.force {
        cmd.arg("--force");
    }
    let out = cmd
        .arg("-s")
        .arg(base.path().join("logrotate.state"))
        .arg(&conf_path)
        .output()
        .unwrap();
    let theirs_ok = out.status.success();

    let rules = parse_logrotate_str(&conf_for(&logs[1]), &base.path().join("logyard.conf"))
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let opts = RunOptions {
        force: case.force,
        ..RunOptions::new(base.path().join("logyard.state"))
    };
    let report = run(&rules, &opts, &NoopObserver).unwrap();

    let (a, b) = (snapshot(&logs[0]), snapshot(&logs[1]));
    assert!(
        a == b,
        "case {}: trees differ\nlogrotate (exit {}; stderr {}):\n{}logyard:\n{}report:\n{report}",
        case.name,
        out.status,
        String::from_utf8_lossy(&out.stderr),
        show(&a),
        show(&b),
    );
    assert_eq!(
        before != a,
        expect_change,
        "case {}: logrotate changed something: {expect_change}",
        case.name
    );
    if std::env::var_os("SHOW_TREES").is_some() {
        eprintln!("== {}\n{}", case.name, show(&a));
    }
    assert_eq!(
        theirs_ok,
        report.is_success(),
        "case {}: logrotate {} (stderr {}), logyard report:\n{report}",
        case.name,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn app(d: &Path) {
    write(d, "app.log", 50);
}

const CASES: &[Case] = &[
    Case {
        name: "shift numbered archives and drop past rotate",
        conf: "@DIR@/app.log {\n  rotate 3\n}\n",
        setup: |d| {
            app(d);
            for i in 1..=3 {
                write(d, &format!("app.log.{i}"), i);
            }
        },
        force: true,
    },
    Case {
        name: "size trigger on a glob",
        conf: "@DIR@/*.log {\n  size 2k\n  rotate 2\n}\n",
        setup: |d| {
            write(d, "small.log", 3);
            write(d, "big.log", 200);
        },
        force: false,
    },
    Case {
        name: "compress with existing archives",
        conf: "@DIR@/app.log {\n  rotate 2\n  compress\n}\n",
        setup: |d| {
            app(d);
            write_gz(d, "app.log.1.gz", "one\n");
            write_gz(d, "app.log.2.gz", "two\n");
        },
        force: true,
    },
    Case {
        name: "delaycompress",
        conf: "@DIR@/app.log {\n  rotate 3\n  compress\n  delaycompress\n}\n",
        setup: |d| {
            app(d);
            write(d, "app.log.1", 4);
            write_gz(d, "app.log.2.gz", "two\n");
        },
        force: true,
    },
    Case {
        name: "dateext drops the oldest dated archives",
        conf: "@DIR@/app.log {\n  rotate 2\n  dateext\n}\n",
        setup: |d| {
            app(d);
            for day in ["20200101", "20200102", "20200103"] {
                write(d, &format!("app.log-{day}"), 2);
            }
        },
        force: true,
    },
    Case {
        name: "dateext dateformat compress",
        conf: "@DIR@/app.log {\n  rotate 5\n  dateext\n  dateformat .%Y-%m-%d\n  compress\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "dateext delaycompress compresses older dated archives",
        conf: "@DIR@/app.log {\n  rotate 2\n  dateext\n  compress\n  delaycompress\n  create 0600\n}\n",
        setup: |d| {
            app(d);
            for day in ["20200101", "20200102", "20200103"] {
                write(d, &format!("app.log-{day}"), 2);
            }
            write_gz(d, "app.log-20200104.gz", "z\n");
        },
        force: true,
    },
    Case {
        name: "olddir",
        conf: "@DIR@/app.log {\n  rotate 2\n  olddir old\n}\n",
        setup: |d| {
            app(d);
            write(d, "old/app.log.1", 3);
            fs::set_permissions(d.join("old"), fs::Permissions::from_mode(0o755)).unwrap();
        },
        force: true,
    },
    Case {
        name: "copytruncate",
        conf: "@DIR@/app.log {\n  rotate 2\n  copytruncate\n  compress\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "create with a mode",
        conf: "@DIR@/app.log {\n  rotate 1\n  create 0600\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "create keeps the old mode",
        conf: "@DIR@/app.log {\n  rotate 1\n  create\n}\n",
        setup: |d| {
            app(d);
            fs::set_permissions(d.join("app.log"), fs::Permissions::from_mode(0o640)).unwrap();
        },
        force: true,
    },
    Case {
        name: "missingok",
        conf: "@DIR@/missing.log @DIR@/app.log {\n  missingok\n  rotate 1\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "nomissingok fails but rotates the rest",
        conf: "@DIR@/missing.log @DIR@/app.log {\n  rotate 1\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "notifempty",
        conf: "@DIR@/*.log {\n  notifempty\n  rotate 1\n  create\n}\n",
        setup: |d| {
            app(d);
            write(d, "empty.log", 0);
        },
        force: true,
    },
    Case {
        name: "ifempty",
        conf: "@DIR@/*.log {\n  ifempty\n  rotate 1\n  create\n}\n",
        setup: |d| {
            app(d);
            write(d, "empty.log", 0);
        },
        force: true,
    },
    Case {
        name: "maxage",
        conf: "@DIR@/app.log {\n  rotate 5\n  maxage 7\n}\n",
        setup: |d| {
            app(d);
            for (i, days) in [(1, 1), (2, 10), (3, 30)] {
                write(d, &format!("app.log.{i}"), i);
                age(d, &format!("app.log.{i}"), days);
            }
        },
        force: true,
    },
    Case {
        name: "extension",
        conf: "@DIR@/web.log {\n  rotate 2\n  extension .log\n  compress\n}\n",
        setup: |d| {
            write(d, "web.log", 20);
            write_gz(d, "web.1.log.gz", "w1\n");
        },
        force: true,
    },
    Case {
        name: "rotate 0 removes the rotated file",
        conf: "@DIR@/app.log {\n  rotate 0\n  create\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "start 0",
        conf: "@DIR@/app.log {\n  start 0\n  rotate 2\n}\n",
        setup: |d| {
            app(d);
            write(d, "app.log.0", 2);
        },
        force: true,
    },
    Case {
        name: "zstd through compresscmd",
        conf: "@DIR@/app.log {\n  rotate 2\n  compress\n  compresscmd /usr/bin/zstd\n  uncompresscmd /usr/bin/unzstd\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "postrotate gets the log path",
        conf: "@DIR@/app.log {\n  rotate 1\n  postrotate\n    echo done > \"$1.post\"\n  endscript\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "global defaults and quoted paths",
        conf: "rotate 2\ncompress\n\n\"@DIR@/with space.log\" @DIR@/app.log {\n  create 0640\n}\n",
        setup: |d| {
            app(d);
            write(d, "with space.log", 5);
        },
        force: true,
    },
    Case {
        name: "copy leaves the live file",
        conf: "@DIR@/app.log {\n  rotate 1\n  copy\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "dateyesterday",
        conf: "@DIR@/app.log {\n  rotate 1\n  dateext\n  dateyesterday\n}\n",
        setup: app,
        force: true,
    },
    Case {
        name: "sharedscripts run postrotate once",
        conf: "@DIR@/*.log {\n  rotate 1\n  sharedscripts\n  postrotate\n    echo once >> @DIR@/shared.post\n  endscript\n}\n",
        setup: |d| {
            app(d);
            write(d, "other.log", 3);
        },
        force: true,
    },
    Case {
        name: "per-file postrotate runs once per file",
        conf: "@DIR@/*.log {\n  rotate 1\n  postrotate\n    echo \"$1\" | sed 's,.*/,,' >> @DIR@/each.post\n  endscript\n}\n",
        setup: |d| {
            app(d);
            write(d, "other.log", 3);
        },
        force: true,
    },
    Case {
        name: "size in a block overrides a global daily",
        conf: "daily\n@DIR@/*.log {\n  size 1k\n  rotate 1\n  compress\n  notifempty\n}\n",
        setup: |d| {
            app(d);
            write(d, "tiny.log", 1);
            write(d, "empty.log", 0);
        },
        force: false,
    },
];

/// Cases judged from a state file: (case, days since the last rotation, rotates).
const STATEFUL: &[(Case, u64, bool)] = &[
    (
        Case {
            name: "daily after two days",
            conf: "@DIR@/app.log {\n  daily\n  rotate 2\n  compress\n}\n",
            setup: app,
            force: false,
        },
        2,
        true,
    ),
    (
        Case {
            name: "daily rotated today",
            conf: "@DIR@/app.log {\n  daily\n  rotate 2\n}\n",
            setup: app,
            force: false,
        },
        0,
        false,
    ),
    (
        Case {
            name: "weekly after eight days",
            conf: "@DIR@/app.log {\n  weekly\n  rotate 2\n}\n",
            setup: app,
            force: false,
        },
        8,
        true,
    ),
    (
        Case {
            name: "monthly after forty days, minsize met",
            conf: "@DIR@/*.log {\n  monthly\n  minsize 1k\n  rotate 2\n}\n",
            setup: |d| {
                app(d);
                write(d, "tiny.log", 1);
            },
            force: false,
        },
        40,
        true,
    ),
    (
        Case {
            name: "maxsize before the interval",
            conf: "@DIR@/*.log {\n  weekly\n  maxsize 1k\n  rotate 2\n}\n",
            setup: |d| {
                app(d);
                write(d, "tiny.log", 1);
            },
            force: false,
        },
        0,
        true,
    ),
    (
        Case {
            name: "yearly not yet",
            conf: "@DIR@/app.log {\n  yearly\n  rotate 2\n}\n",
            setup: app,
            force: false,
        },
        0,
        false,
    ),
];

#[test]
fn logyard_matches_logrotate_on_time_triggers() {
    for (case, days, changes) in STATEFUL {
        check_with(case, Some(*days), *changes);
    }
}

#[test]
fn logyard_matches_logrotate() {
    for case in CASES {
        check(case);
    }
    assert!(CASES.len() >= 15);
}
