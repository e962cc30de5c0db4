//! Behaviour of rotation: growth, compression, cleanup by count and age, names, modes,
//! scripts, copytruncate, state, dry run, the collector hook and the disk guard.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local};
use common::*;
use logyard_rotate::{
    read_archive, run, ActionKind, DiskGuard, NoopObserver, RotationObserver, RunOptions, State,
};

#[test]
fn growth_rotates_by_size_keeps_n_and_archives_hold_the_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/*.log\"]\nsize = \"1KiB\"\nkeep = 3\n",
    );
    let log = p(d, "app.log");
    let mut generations = Vec::new();
    let mut now = t0();
    for g in 0..5 {
        let small = append(&log, &format!("gen{g}-a"), 3);
        let r = run(&rules, &opts(d, now), &NoopObserver).unwrap();
        assert!(r.decisions.iter().all(|d| !d.rotate), "below size: {r}");
        let mut data = small;
        data.extend(append(&log, &format!("gen{g}-b"), 60));
        let r = run(&rules, &opts(d, now), &NoopObserver).unwrap();
        assert!(r.is_success() && r.decisions[0].rotate, "{r}");
        assert_eq!(r.bytes_rotated, data.len() as u64);
        generations.push(data);
        now += Duration::from_secs(60);
    }
    assert_eq!(
        names(d),
        ["app.log", "app.log.1.gz", "app.log.2.gz", "app.log.3.gz"]
    );
    assert_eq!(fs::metadata(&log).unwrap().len(), 0);
    for (i, want) in generations.iter().rev().take(3).enumerate() {
        let got = read_archive(&p(d, &format!("app.log.{}.gz", i + 1))).unwrap();
        assert!(got == *want, "archive {} differs", i + 1);
    }
}

#[test]
fn zstd_archives_decompress_to_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/bin.log\"]\ncompress = \"zstd\"\ncompress_level = 19\n",
    );
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(p(d, "bin.log"), &data).unwrap();
    let o = RunOptions {
        force: true,
        ..opts(d, t0())
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert!(r.is_success(), "{r}");
    assert_eq!(read_archive(&p(d, "bin.log.1.zst")).unwrap(), data);
    assert_eq!(r.bytes_compressed, data.len() as u64);
}

#[test]
fn age_trigger_is_judged_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\nevery = \"1d\"\ncompress = \"none\"\n",
    );
    append(&p(d, "app.log"), "a", 5);
    let r = run(&rules, &opts(d, t0()), &NoopObserver).unwrap();
    assert!(
        !r.decisions[0].rotate && r.decisions[0].reason.contains("first seen"),
        "{r}"
    );
    let state = State::load(&p(d, "state.json")).unwrap();
    assert_eq!(
        state.files.values().next().unwrap().last_rotated,
        1_705_312_800
    );
    let r = run(
        &rules,
        &opts(d, t0() + Duration::from_secs(3600)),
        &NoopObserver,
    )
    .unwrap();
    assert!(!r.decisions[0].rotate, "{r}");
    let later = t0() + Duration::from_secs(86_400);
    let r = run(&rules, &opts(d, later), &NoopObserver).unwrap();
    assert!(r.decisions[0].rotate, "{r}");
    assert_eq!(names(d), ["app.log", "app.log.1"]);
    let state = State::load(&p(d, "state.json")).unwrap();
    assert_eq!(
        state.files.values().next().unwrap().last_rotated,
        1_705_312_800 + 86_400
    );
}

#[test]
fn max_age_removes_old_archives_by_modification_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(d, "[[rotate]]\npaths = [\"@DIR@/app.log\"]\nmax_age = \"10d\"\nkeep = 9\ncompress = \"none\"\n");
    let now = SystemTime::now();
    append(&p(d, "app.log"), "live", 3);
    for (i, days) in [(1, 2), (2, 9), (3, 11), (4, 40)] {
        append(&p(d, &format!("app.log.{i}")), "old", 1);
        set_age(&p(d, &format!("app.log.{i}")), now, days);
    }
    let o = RunOptions {
        force: true,
        ..opts(d, now)
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert!(r.is_success(), "{r}");
    assert_eq!(names(d), ["app.log", "app.log.1", "app.log.2", "app.log.3"]);
    let removed: Vec<_> = r
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Remove)
        .collect();
    assert_eq!(removed.len(), 2, "{r}");
}

#[test]
fn dateext_names_use_the_run_time_and_olddir_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(p(d, "old")).unwrap();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\ndateext = true\ndateformat = \"-%Y-%m-%d\"\nolddir = \"old\"\n",
    );
    append(&p(d, "app.log"), "a", 5);
    let now = t0();
    let o = RunOptions {
        force: true,
        ..opts(d, now)
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert!(r.is_success(), "{r}");
    let date = DateTime::<Local>::from(now).format("-%Y-%m-%d").to_string();
    assert_eq!(names(&p(d, "old")), [format!("app.log{date}.gz")]);
    // A second rotation the same day would overwrite: it is refused and says why.
    append(&p(d, "app.log"), "b", 5);
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert!(r.failures[0].message.contains("already exists"), "{r}");
    assert!(fs::metadata(p(d, "app.log")).unwrap().len() > 0);
}

#[test]
fn create_sets_the_mode_of_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\ncreate = { mode = \"0600\" }\n",
    );
    append(&p(d, "app.log"), "a", 5);
    fs::set_permissions(p(d, "app.log"), fs::Permissions::from_mode(0o644)).unwrap();
    let o = RunOptions {
        force: true,
        ..opts(d, t0())
    };
    run(&rules, &o, &NoopObserver).unwrap();
    assert_eq!(
        fs::metadata(p(d, "app.log")).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(
        fs::metadata(p(d, "app.log.1.gz"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o644
    );
}

#[test]
fn a_failing_postrotate_is_reported_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\npostrotate = \"echo reload failed >&2; exit 3\"\n",
    );
    let data = append(&p(d, "app.log"), "a", 5);
    let o = RunOptions {
        force: true,
        ..opts(d, t0())
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert_eq!(r.failures.len(), 1, "{r}");
    let m = &r.failures[0].message;
    assert!(
        m.contains("postrotate") && m.contains("reload failed") && m.contains("no line was lost"),
        "{m}"
    );
    assert_eq!(read_archive(&p(d, "app.log.1.gz")).unwrap(), data);
    assert!(r.rules_ok.is_empty());
}

#[test]
fn postrotate_gets_the_log_path_as_dollar_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\npostrotate = \"echo \\\"$1\\\" > @DIR@/arg\"\n",
    );
    append(&p(d, "app.log"), "a", 5);
    run(
        &rules,
        &RunOptions {
            force: true,
            ..opts(d, t0())
        },
        &NoopObserver,
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(p(d, "arg")).unwrap().trim(),
        p(d, "app.log").to_string_lossy()
    );
}

#[test]
fn copytruncate_keeps_the_inode_and_copies_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\ncopytruncate = true\n",
    );
    let data = append(&p(d, "app.log"), "a", 500);
    let ino = fs::metadata(p(d, "app.log")).unwrap().ino();
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
    let m = fs::metadata(p(d, "app.log")).unwrap();
    assert_eq!((m.ino(), m.len()), (ino, 0));
    assert_eq!(read_archive(&p(d, "app.log.1.gz")).unwrap(), data);
}

#[test]
fn dry_run_explains_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/*.log\"]\nsize = \"100B\"\nkeep = 1\n",
    );
    append(&p(d, "big.log"), "a", 50);
    append(&p(d, "small.log"), "a", 1);
    append(&p(d, "big.log.1.gz"), "old", 1);
    let before = names(d);
    let o = RunOptions {
        dry_run: true,
        ..opts(d, t0())
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert_eq!(names(d), before);
    assert!(fs::symlink_metadata(p(d, "state.json")).is_err());
    let text = r.to_string();
    assert!(text.contains("dry run"), "{text}");
    assert!(text.contains("big.log: rotate: size"), "{text}");
    assert!(text.contains("small.log: keep: size"), "{text}");
    assert!(text.contains("would rename"), "{text}");
    assert!(text.contains("would compress"), "{text}");
    assert!(text.contains("would remove"), "{text}");
}

/// Records calls and refuses to say "drained" until allowed.
#[derive(Default)]
struct Follower {
    renamed: Mutex<Vec<(PathBuf, PathBuf)>>,
    drained: Mutex<bool>,
}

impl RotationObserver for Follower {
    fn renamed(&self, original: &Path, rotated: &Path) {
        self.renamed
            .lock()
            .unwrap()
            .push((original.into(), rotated.into()));
    }
    fn wait_drained(&self, _rotated: &Path, _timeout: Duration) -> bool {
        *self.drained.lock().unwrap()
    }
}

#[test]
fn compression_waits_for_the_collector_to_drain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(d, "[[rotate]]\npaths = [\"@DIR@/app.log\"]\n");
    let data = append(&p(d, "app.log"), "a", 10);
    let f = Follower::default();
    let o = RunOptions {
        force: true,
        ..opts(d, t0())
    };
    let r = run(&rules, &o, &f).unwrap();
    assert_eq!(
        f.renamed.lock().unwrap().as_slice(),
        [(p(d, "app.log"), p(d, "app.log.1"))]
    );
    assert!(r.actions.iter().any(|a| a.kind == ActionKind::Defer), "{r}");
    assert_eq!(names(d), ["app.log", "app.log.1"]);
    *f.drained.lock().unwrap() = true;
    // The next run compresses the leftover before shifting it.
    let more = append(&p(d, "app.log"), "b", 10);
    run(&rules, &o, &f).unwrap();
    assert_eq!(names(d), ["app.log", "app.log.1.gz", "app.log.2.gz"]);
    assert_eq!(read_archive(&p(d, "app.log.2.gz")).unwrap(), data);
    assert_eq!(read_archive(&p(d, "app.log.1.gz")).unwrap(), more);
}

#[test]
fn disk_guard_compresses_then_removes_the_oldest_archives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(
        d,
        "[[rotate]]\npaths = [\"@DIR@/app.log\"]\nkeep = 10\ncompress = \"none\"\n",
    );
    let now = SystemTime::now();
    append(&p(d, "app.log"), "live", 200);
    for i in 1..=4 {
        append(&p(d, &format!("app.log.{i}")), &format!("old{i}"), 100);
        set_age(&p(d, &format!("app.log.{i}")), now, i);
    }
    let live_len = fs::metadata(p(d, "app.log")).unwrap().len();
    let o = RunOptions {
        guard: Some(DiskGuard {
            max_archive_bytes: Some(1500),
            max_used_percent: None,
        }),
        ..opts(d, now)
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert!(r.is_success(), "{r}");
    assert!(!r.guard_alerts.is_empty(), "{r}");
    let kinds: Vec<_> = r.actions.iter().map(|a| a.kind).collect();
    assert!(kinds.contains(&ActionKind::GuardCompress), "{r}");
    // The live file is never touched.
    assert_eq!(fs::metadata(p(d, "app.log")).unwrap().len(), live_len);
    let total: u64 = names(d)
        .iter()
        .filter(|n| n.as_str() != "app.log")
        .map(|n| fs::metadata(p(d, n)).unwrap().len())
        .sum();
    assert!(total <= 1500, "{total} {r}");
    // The newest archive survives longest.
    assert!(
        names(d).iter().any(|n| n.starts_with("app.log.1")),
        "{:?}",
        names(d)
    );

    // A budget of zero removes every archive, then says the live files take the space.
    let o = RunOptions {
        guard: Some(DiskGuard {
            max_archive_bytes: Some(0),
            max_used_percent: None,
        }),
        ..opts(d, now)
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert_eq!(names(d), ["app.log"]);
    assert!(
        r.actions.iter().any(|a| a.kind == ActionKind::GuardRemove),
        "{r}"
    );
}

#[test]
fn disk_guard_by_filesystem_percentage_reports_without_touching_live_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = rules(d, "[[rotate]]\npaths = [\"@DIR@/app.log\"]\n");
    append(&p(d, "app.log"), "live", 10);
    append(&p(d, "app.log.1.gz"), "old", 10);
    let usage = logyard_rotate::filesystem_usage(d).unwrap();
    assert!(usage.size > 0);
    let o = RunOptions {
        dry_run: true,
        guard: Some(DiskGuard {
            max_archive_bytes: None,
            max_used_percent: Some(0.0),
        }),
        ..opts(d, t0())
    };
    let r = run(&rules, &o, &NoopObserver).unwrap();
    assert!(
        r.actions.iter().any(|a| a.kind == ActionKind::GuardRemove),
        "{r}"
    );
    assert!(
        r.guard_alerts
            .iter()
            .any(|a| a.contains("no live file is truncated")),
        "{r}"
    );
    assert_eq!(names(d), ["app.log", "app.log.1.gz"]);
}

/// A small deterministic generator (xorshift), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Reads every archive oldest first, then the live file.
fn everything(d: &Path, live: &str) -> Vec<u8> {
    let mut archives: Vec<(u64, PathBuf)> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let rest = name.strip_prefix(&format!("{live}."))?;
            let n: u64 = rest.split('.').next()?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    archives.sort_by_key(|a| std::cmp::Reverse(a.0));
    let mut all = Vec::new();
    for (_, p) in archives {
        all.extend(read_archive(&p).unwrap());
    }
    all.extend(fs::read(d.join(live)).unwrap());
    all
}

#[test]
fn no_line_is_lost_over_many_random_runs() {
    for seed in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let method = if seed % 2 == 0 {
            "copytruncate = true"
        } else {
            "create = true"
        };
        let compress = ["gzip", "zstd", "none"][(seed % 3) as usize];
        let delay = seed % 4 == 1;
        let rules = rules(
            d,
            &format!(
                "[[rotate]]\npaths = [\"@DIR@/app.log\"]\nsize = \"2KiB\"\nkeep = 1000\ncompress = \"{compress}\"\ndelaycompress = {delay}\n{method}\n"
            ),
        );
        let follower = Follower::default();
        let mut written = Vec::new();
        let mut now = t0();
        for step in 0..40 {
            written.extend(append(
                &p(d, "app.log"),
                &format!("s{seed} step{step}"),
                rng.below(80) as usize,
            ));
            *follower.drained.lock().unwrap() = rng.below(4) != 0;
            let o = RunOptions {
                force: rng.below(5) == 0,
                write_budget: (rng.below(8) == 0).then(|| rng.below(4000)),
                ..opts(d, now)
            };
            run(&rules, &o, &follower).unwrap();
            now += Duration::from_secs(60);
            let all = everything(d, "app.log");
            assert!(
                all == written,
                "seed {seed} step {step}: {} bytes on disk, {} written; files {:?}",
                all.len(),
                written.len(),
                names(d)
            );
        }
        assert!(
            names(d).len() > 5,
            "seed {seed}: too few rotations: {:?}",
            names(d)
        );
    }
}
