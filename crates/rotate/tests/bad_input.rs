//! Bad input and failing systems: every error names the file and says what to do, and no
//! line is lost.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use logyard_model::ManualClock;
use logyard_rotate::{
    parse_logrotate_conf, read_archive, run, Daemon, DaemonOptions, DiskGuard, NoopObserver,
    RotateError, RotationAlert, RunOptions,
};

#[test]
fn a_syntax_error_names_file_line_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let conf = p(dir.path(), "app.conf");
    fs::write(&conf, "/var/log/app.log {\n  rotate 3\n  size\n}\n").unwrap();
    let e = parse_logrotate_conf(&conf).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, RotateError::Syntax { line: 3, .. }), "{text}");
    assert!(
        text.starts_with(&format!("{}:3: size takes 1 argument", conf.display())),
        "{text}"
    );
    assert!(text.contains("write it as: size 100k"), "{text}");
}

#[test]
fn an_unknown_directive_is_an_error_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let conf = p(dir.path(), "app.conf");
    fs::write(&conf, "/var/log/app.log {\n  rotate 3\n  shred\n}\n").unwrap();
    let text = parse_logrotate_conf(&conf).unwrap_err().to_string();
    assert!(
        text.starts_with(&format!(
            "{}:3: directive \"shred\" is not supported",
            conf.display()
        )),
        "{text}"
    );
    fs::write(&conf, "/var/log/app.log {\n  frobnicate yes\n}\n").unwrap();
    let text = parse_logrotate_conf(&conf).unwrap_err().to_string();
    assert!(
        text.contains(":2: directive \"frobnicate\"") && text.contains("spelling"),
        "{text}"
    );
}

#[test]
fn a_directory_path_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(p(d, "logs")).unwrap();
    let rules = rules(d, "[[rotate]]\npaths = [\"@DIR@/logs\"]\n");
    let r = run(
        &rules,
        &RunOptions {
            force: true,
            ..opts(d, t0())
        },
        &NoopObserver,
    )
    .unwrap();
    assert_eq!(r.failures.len(), 1, "{r}");
    assert!(
        r.failures[0].message.contains("is a directory")
            && r.failures[0].message.contains("/*.log"),
        "{r}"
    );
    assert!(p(d, "logs").is_dir());
}

#[test]
fn a_file_that_disappears_during_rotation_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The prerotate script plays the other program that removes the file.
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\nprerotate = \"mv \\\"$1\\\" @DIR@/moved\"\n",
    );
    let data = append(&p(d, "app.log"), "a", 5);
    let r = run(
        &rules,
        &RunOptions {
            force: true,
            ..opts(d, t0())
        },
        &NoopObserver,
    )
    .unwrap();
    assert_eq!(r.failures.len(), 1, "{r}");
    let m = &r.failures[0].message;
    assert!(
        m.contains("disappeared during rotation") && m.contains("second rotation tool"),
        "{m}"
    );
    assert_eq!(fs::read(p(d, "moved")).unwrap(), data);
}

#[test]
fn an_unwritable_destination_leaves_the_live_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cases = Vec::new();
    if is_root(d) {
        // Root ignores permission bits. Use places even root cannot write: a rename into
        // procfs (another filesystem) and a copy into sysfs (no new files there).
        cases.push("olddir = \"/proc/self\"\n");
        if Path::new("/sys/kernel").is_dir() {
            cases.push("olddir = \"/sys/kernel\"\ncopytruncate = true\n");
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir(p(d, "ro")).unwrap();
        fs::set_permissions(p(d, "ro"), fs::Permissions::from_mode(0o555)).unwrap();
        cases.push("olddir = \"ro\"\n");
        cases.push("olddir = \"ro\"\ncopytruncate = true\n");
    }
    for extra in cases {
        let data = append(&p(d, "app.log"), "a", 5);
        let rules = rules(
            d,
            &format!("[[rotate]]\npaths = [\"@DIR@/app.log\"]\n{extra}"),
        );
        let o = RunOptions {
            force: true,
            ..opts(d, t0())
        };
        let r = run(&rules, &o, &NoopObserver).unwrap();
        assert_eq!(r.failures.len(), 1, "{extra}: {r}");
        let m = &r.failures[0].message;
        assert!(
            m.starts_with("cannot ") && m.contains("app.log") && m.contains("untouched"),
            "{extra}: {m}"
        );
        assert!(fs::read(p(d, "app.log")).unwrap().ends_with(&data));
        assert_eq!(
            names(d).iter().filter(|n| n.starts_with("app.log")).count(),
            1
        );
    }
}

#[test]
fn a_full_disk_during_copytruncate_keeps_the_live_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\ncopytruncate = true\n",
    );
    let data = append(&p(d, "app.log"), "a", 200);
    let o = RunOptions {
        force: true,
        write_budget: Some(1000),
        ..opts(d, t0())
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert_eq!(r.failures.len(), 1, "{r}");
    let m = &r.failures[0].message;
    assert!(
        m.contains("No space left") && m.contains("not truncated"),
        "{m}"
    );
    assert_eq!(fs::read(p(d, "app.log")).unwrap(), data);
    assert_eq!(names(d), ["app.log"]);
}

#[test]
fn a_full_disk_during_compression_keeps_the_rotated_file_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(d, "[[rotate]]\npaths = [\"@DIR@/app.log\"]\n");
    let data = append(&p(d, "app.log"), "a", 2000);
    let o = RunOptions {
        force: true,
        write_budget: Some(64),
        ..opts(d, t0())
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert_eq!(r.failures.len(), 1, "{r}");
    assert!(
        r.failures[0]
            .message
            .contains("kept uncompressed and whole"),
        "{r}"
    );
    assert_eq!(names(d), ["app.log", "app.log.1"]);
    assert_eq!(fs::read(p(d, "app.log.1")).unwrap(), data);
    // With space again, the next rotation compresses the leftover first.
    let more = append(&p(d, "app.log"), "b", 10);
    let r = run(
        &rules,
        &RunOptions {
            force: true,
            ..opts(d, t0())
        },
        &NoopObserver,
    )
    .unwrap();
    assert!(r.is_success(), "{r}");
    assert_eq!(names(d), ["app.log", "app.log.1.gz", "app.log.2.gz"]);
    assert_eq!(read_archive(&p(d, "app.log.2.gz")).unwrap(), data);
    assert_eq!(read_archive(&p(d, "app.log.1.gz")).unwrap(), more);
}

#[test]
fn a_missing_olddir_or_file_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(&p(d, "app.log"), "a", 5);
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\nolddir = \"archive\"\n[[rotate]]\npaths = [\"@DIR@/gone.log\"]\nmissingok = false\n",
    );
    let r = run(
        &rules,
        &RunOptions {
            force: true,
            ..opts(d, t0())
        },
        &NoopObserver,
    )
    .unwrap();
    let all: Vec<&str> = r.failures.iter().map(|f| f.message.as_str()).collect();
    assert!(all.iter().any(|m| m.contains("mkdir -p")), "{r}");
    assert!(all.iter().any(|m| m.contains("set missingok")), "{r}");
}

#[test]
fn a_corrupt_state_file_stops_the_run_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(p(d, "state.json"), "{not json").unwrap();
    let rules = rules(d, "[[rotate]]\npaths = [\"@DIR@/app.log\"]\n");
    let e = run(&rules, &opts(d, t0()), &NoopObserver)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("state.json") && e.contains("move it aside"),
        "{e}"
    );
}

#[test]
fn bad_toml_values_name_the_key() {
    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        #[allow(dead_code)]
        rotate: Vec<logyard_rotate::RotateRuleConfig>,
    }
    let e =
        toml::from_str::<Doc>("[[rotate]]\npaths = [\"/x\"]\ncompres = \"gzip\"\n").unwrap_err();
    assert!(e.to_string().contains("compres"), "{e}");
}

#[test]
fn the_daemon_runs_on_demand_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\nname = \"app\"\npaths = [\"@DIR@/app.log\"]\nevery = \"1h\"\n",
    );
    append(&p(d, "app.log"), "a", 5);
    let clock = Arc::new(ManualClock::at(t0()));
    let opts = DaemonOptions {
        interval: Duration::from_secs(3600),
        ..DaemonOptions::new(p(d, "state.json"))
    };
    let daemon = Daemon::new(rules, opts, Arc::new(NoopObserver), clock.clone());
    let (join, handle) = daemon.spawn().unwrap();
    assert!(handle.wait_runs(0, Duration::from_secs(10)) >= 1);
    assert_eq!(names(d), ["app.log"]);
    clock.set_time(t0() + Duration::from_secs(7200));
    handle.trigger(false);
    assert!(handle.wait_runs(1, Duration::from_secs(10)) >= 2);
    assert_eq!(names(d), ["app.log", "app.log.1.gz"]);
    handle.stop();
    join.join().unwrap();
    let m = handle.metrics();
    assert_eq!((m.runs, m.files_rotated, m.failures), (2, 1, 0));
    assert!(m.bytes_rotated > 0 && m.bytes_compressed > 0);
    assert_eq!(m.last_success.get("app"), Some(&(1_705_312_800 + 7200)));
    let text = m.render_prometheus();
    assert!(
        text.contains("logyard_rotate_last_success_timestamp_seconds{rule=\"app\"} 1705320000"),
        "{text}"
    );
    assert!(text.contains("logyard_rotate_files_total 1"), "{text}");
    assert!(handle.last_report().unwrap().is_success());
}

#[test]
fn the_daemon_alerts_on_the_disk_guard_and_on_a_rule_failing_for_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\nname = \"bad\"\npaths = [\"@DIR@/bad.log\"]\nsize = \"1\"\npostrotate = \"exit 3\"\n\n[[rotate]]\nname = \"good\"\npaths = [\"@DIR@/good.log\"]\nsize = \"1MiB\"\nkeep = 5\ncompress = \"none\"\n",
    );
    append(&p(d, "good.log"), "live", 5);
    append(&p(d, "good.log.1"), "old", 50);
    let clock = Arc::new(ManualClock::at(t0()));
    let opts = DaemonOptions {
        guard: Some(DiskGuard {
            max_archive_bytes: Some(0),
            max_used_percent: None,
        }),
        ..DaemonOptions::new(p(d, "state.json"))
    };
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    let daemon = Daemon::new(rules, opts, Arc::new(NoopObserver), clock.clone())
        .with_alerts(Arc::new(move |a| sink.lock().unwrap().push(a)));

    append(&p(d, "bad.log"), "a", 5);
    daemon.run_once(false).unwrap();
    let first = std::mem::take(&mut *got.lock().unwrap());
    assert!(
        matches!(&first[..], [RotationAlert::DiskGuard { message }] if message.contains("removing the oldest")),
        "{first:?}"
    );
    // A budget of zero: every archive goes, the live files stay.
    assert_eq!(names(d), ["bad.log", "good.log"]);

    // Failing for less than a day: nothing; from a day on: the rule, since when, and why.
    clock.set_time(t0() + Duration::from_secs(23 * 3600));
    append(&p(d, "bad.log"), "b", 5);
    daemon.run_once(false).unwrap();
    let quiet = std::mem::take(&mut *got.lock().unwrap());
    assert!(
        quiet
            .iter()
            .all(|a| matches!(a, RotationAlert::DiskGuard { .. })),
        "{quiet:?}"
    );
    clock.set_time(t0() + Duration::from_secs(25 * 3600));
    append(&p(d, "bad.log"), "c", 5);
    daemon.run_once(false).unwrap();
    let late = std::mem::take(&mut *got.lock().unwrap());
    let failing: Vec<_> = late
        .iter()
        .filter_map(|a| match a {
            RotationAlert::RuleFailing {
                rule,
                since,
                last_error,
            } => Some((rule.clone(), *since, last_error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failing.len(), 1, "{late:?}");
    assert_eq!(failing[0].0, "bad");
    assert_eq!(failing[0].1, t0());
    let why = failing[0].2.clone().unwrap_or_default();
    assert!(why.contains("postrotate"), "{why}");
}
