//! The file tailer against a model (STYLE.md 3.12): random writes, rotations by rename and
//! by copy, truncations, restarts (clean or crashed) and reads with a sink that may fail.
//! At the end every written line was delivered exactly once and in order per file, except
//! the lines a truncation destroyed before they were read.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proptest::prelude::*;

use super::{append, rotated, shift, Harness};

/// `a.log` and `c.log` are rotated by rename + create, `b.log` by copytruncate (as a
/// logrotate configuration picks one method per file).
const FILES: [&str; 3] = ["a.log", "b.log", "c.log"];
const RENAMED: [usize; 2] = [0, 2];
const COPIED: usize = 1;

#[derive(Debug, Clone)]
enum Action {
    WriteLines { file: usize, n: usize },
    RotateRename { file: usize },
    CopyTruncate { file: usize },
    Truncate { file: usize },
    RestartCollector { crash: bool },
    // A crash that also loses the checkpoint writes of the last read (as if their renames
    // never reached the disk); only with a sink that keeps checkpoints with the records.
    CrashLosingCheckpoints,
    Read { sink_fails: bool },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (0..FILES.len(), 1..6usize).prop_map(|(file, n)| Action::WriteLines { file, n }),
        2 => prop::sample::select(&RENAMED[..]).prop_map(|file| Action::RotateRename { file }),
        2 => Just(Action::CopyTruncate { file: COPIED }),
        1 => (0..FILES.len()).prop_map(|file| Action::Truncate { file }),
        2 => any::<bool>().prop_map(|crash| Action::RestartCollector { crash }),
        1 => Just(Action::CrashLosingCheckpoints),
        5 => prop::bool::weighted(0.2).prop_map(|sink_fails| Action::Read { sink_fails }),
    ]
}

/// What the model knows of one followed file.
#[derive(Default)]
struct ModelFile {
    /// Every line written, in order.
    written: Vec<String>,
    /// The lines now in the live file.
    live: Vec<String>,
    /// Lines destroyed by a truncation before they were delivered.
    lost: HashSet<String>,
}

fn run(actions: Vec<Action>, keep_rotated_open: bool, sink_keeps_checkpoints: bool) {
    let mut h = Harness::new();
    h.sink
        .keep_tokens
        .store(sink_keeps_checkpoints, Ordering::SeqCst);
    if keep_rotated_open {
        h.cfg.rotate_wait = Duration::from_secs(3600);
    }
    let mut model: Vec<ModelFile> = FILES.iter().map(|_| ModelFile::default()).collect();
    for f in FILES {
        append(&h.path(f), "");
    }
    // Starting a collector is its first look at the files (the run loop polls at once).
    let start = || {
        let mut t = h.tailer();
        t.poll().unwrap();
        t
    };
    let mut tailer = start();
    let cp_path = tailer.checkpoint_path().to_path_buf();
    let mut cp_before_read = std::fs::read(&cp_path).ok();
    let mut seq = 0;
    for a in actions {
        match a {
            Action::WriteLines { file, n } => {
                let mut text = String::new();
                for _ in 0..n {
                    seq += 1;
                    let line = format!("line {} {seq}", FILES[file]);
                    text.push_str(&line);
                    text.push('\n');
                    model[file].written.push(line.clone());
                    model[file].live.push(line);
                }
                append(&h.path(FILES[file]), &text);
            }
            Action::RotateRename { file } => {
                let p = h.path(FILES[file]);
                shift(&p);
                std::fs::rename(&p, rotated(&p, 1)).unwrap();
                append(&p, "");
                model[file].live.clear();
            }
            Action::CopyTruncate { file } => {
                let p = h.path(FILES[file]);
                shift(&p);
                std::fs::copy(&p, rotated(&p, 1)).unwrap();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                model[file].live.clear();
            }
            Action::Truncate { file } => {
                let delivered: HashSet<String> = h.sink.lines().into_iter().collect();
                let m = &mut model[file];
                for l in m.live.drain(..) {
                    if !delivered.contains(&l) {
                        m.lost.insert(l);
                    }
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(h.path(FILES[file]))
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
            Action::RestartCollector { crash } => {
                if !crash {
                    tailer.save_checkpoint();
                }
                drop(tailer);
                tailer = start();
            }
            Action::CrashLosingCheckpoints => {
                drop(tailer);
                if sink_keeps_checkpoints {
                    match &cp_before_read {
                        Some(b) => std::fs::write(&cp_path, b).unwrap(),
                        None => {
                            let _ = std::fs::remove_file(&cp_path);
                        }
                    }
                }
                tailer = start();
            }
            Action::Read { sink_fails } => {
                cp_before_read = std::fs::read(&cp_path).ok();
                h.sink.fail.store(sink_fails, Ordering::SeqCst);
                let r = tailer.poll();
                h.sink.fail.store(false, Ordering::SeqCst);
                assert!(sink_fails || r.is_ok(), "{r:?}");
            }
        }
    }
    for _ in 0..3 {
        tailer.poll().unwrap();
    }
    for (i, f) in FILES.iter().enumerate() {
        let want: Vec<String> = model[i]
            .written
            .iter()
            .filter(|l| !model[i].lost.contains(*l))
            .cloned()
            .collect();
        let got = h.sink.lines_of(&h.source(f));
        assert_eq!(got, want, "lines of {f}");
    }
}

/// 96 cases, or `PROPTEST_CASES` for longer runs.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_line_exactly_once_in_order(
        actions in prop::collection::vec(action(), 1..40),
        keep_rotated_open in any::<bool>(),
        sink_keeps_checkpoints in any::<bool>(),
    ) {
        run(actions, keep_rotated_open, sink_keeps_checkpoints);
    }
}

#[test]
fn two_rotations_between_reads_lose_no_generation() {
    use Action::*;
    run(
        vec![
            WriteLines { file: 0, n: 2 },
            Read { sink_fails: false },
            WriteLines { file: 0, n: 2 },
            RotateRename { file: 0 },
            WriteLines { file: 0, n: 2 },
            RotateRename { file: 0 },
            WriteLines { file: 0, n: 2 },
            WriteLines { file: 1, n: 2 },
            CopyTruncate { file: 1 },
            WriteLines { file: 1, n: 1 },
            CopyTruncate { file: 1 },
            RestartCollector { crash: true },
            WriteLines { file: 0, n: 1 },
        ],
        false,
        false,
    );
}
