//! One test per case of the file source: rotations, truncation, new, deleted, odd and
//! compressed files, start positions, framing, checkpoints and a failing sink.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{append, rotated, shift, Harness};
use crate::file::StartAt;

fn lines(prefix: &str, range: std::ops::Range<usize>) -> (String, Vec<String>) {
    let v: Vec<String> = range.map(|i| format!("{prefix} {i}")).collect();
    let text = v.iter().map(|l| format!("{l}\n")).collect();
    (text, v)
}

#[test]
fn rename_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
    let mut h = Harness::new();
    h.cfg.rotate_wait = Duration::from_secs(3600);
    let p = h.path("app.log");
    let (t1, l1) = lines("old", 0..3);
    append(&p, &t1);
    let mut t = h.tailer();
    t.poll().unwrap();
    std::fs::rename(&p, rotated(&p, 1)).unwrap();
    // The writer has not reopened yet: it still appends to the renamed file.
    let (t2, l2) = lines("late", 0..2);
    append(&rotated(&p, 1), &t2);
    let (t3, l3) = lines("new", 0..2);
    append(&p, &t3);
    t.poll().unwrap();
    let (t4, l4) = lines("later", 0..1);
    append(&rotated(&p, 1), &t4);
    t.poll().unwrap();
    let got = h.sink.lines_of(&h.source("app.log"));
    assert_eq!(got, [l1, l2, l3, l4].concat());
}

#[test]
fn copytruncate_reads_the_copy_from_the_offset_then_the_file_from_zero() {
    let h = Harness::new();
    let p = h.path("app.log");
    let (t1, l1) = lines("a", 0..3);
    append(&p, &t1);
    let mut t = h.tailer();
    t.poll().unwrap();
    let (t2, l2) = lines("b", 0..2);
    append(&p, &t2);
    shift(&p);
    std::fs::copy(&p, rotated(&p, 1)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    let (t3, l3) = lines("c", 0..5);
    append(&p, &t3);
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("app.log")), [l1, l2, l3].concat());
}

#[test]
fn truncation_starts_again_from_zero() {
    let h = Harness::new();
    let p = h.path("app.log");
    let (t1, l1) = lines("before", 0..10);
    append(&p, &t1);
    let mut t = h.tailer();
    t.poll().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    let (t2, l2) = lines("after", 0..2);
    append(&p, &t2);
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("app.log")), [l1, l2].concat());
}

#[test]
fn start_at_end_skips_old_lines_but_new_files_are_read_whole() {
    let mut h = Harness::new();
    h.cfg.start_at = StartAt::End;
    append(&h.path("old.log"), "history\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    append(&h.path("old.log"), "fresh\n");
    append(&h.path("new.log"), "first\nsecond\n");
    append(&h.path("new.log.1"), "rotated name, not followed\n");
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("old.log")), ["fresh"]);
    assert_eq!(h.sink.lines_of(&h.source("new.log")), ["first", "second"]);
    assert_eq!(h.sink.lines().len(), 3);
}

/// Sets a file's last change `age` in the past.
fn age(path: &std::path::Path, age: Duration) {
    let f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - age).unwrap();
}

#[test]
fn the_file_source_reads_new_files_from_their_beginning_by_default() {
    let cfg: crate::FileConfig = toml::from_str("paths = [\"/tmp/*.log\"]").unwrap();
    assert_eq!(cfg.start_at, StartAt::Beginning);
    assert_eq!(cfg.ignore_older, Duration::from_secs(86_400));
    assert_eq!(
        crate::FileConfig::new(&["/tmp/*.log"]).start_at,
        StartAt::Beginning
    );
}

#[test]
fn files_unchanged_within_ignore_older_are_followed_from_their_end() {
    let mut h = Harness::new();
    h.cfg.ignore_older = Duration::from_secs(3600);
    append(&h.path("stale.log"), "last week\n");
    age(&h.path("stale.log"), Duration::from_secs(7 * 86_400));
    append(&h.path("recent.log"), "a minute ago\n");
    age(&h.path("recent.log"), Duration::from_secs(60));
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("recent.log")), ["a minute ago"]);
    assert!(h.sink.lines_of(&h.source("stale.log")).is_empty());
    // What is written to the old file afterwards is read.
    append(&h.path("stale.log"), "today\n");
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("stale.log")), ["today"]);
    // A file that appears later with an old time is skipped as well (a copy, an unpacked
    // archive), and a restart continues from the checkpoints.
    append(&h.path("unpacked.log"), "archived\n");
    age(&h.path("unpacked.log"), Duration::from_secs(30 * 86_400));
    t.poll().unwrap();
    drop(t);
    append(&h.path("unpacked.log"), "appended\n");
    append(&h.path("stale.log"), "later\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("unpacked.log")), ["appended"]);
    assert_eq!(h.sink.lines_of(&h.source("stale.log")), ["today", "later"]);
    assert_eq!(h.sink.lines().len(), 4);
}

#[test]
fn ignore_older_of_zero_reads_files_of_any_age() {
    let mut h = Harness::new();
    h.cfg.ignore_older = Duration::ZERO;
    append(&h.path("ancient.log"), "from 2001\n");
    age(
        &h.path("ancient.log"),
        Duration::from_secs(25 * 365 * 86_400),
    );
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("ancient.log")), ["from 2001"]);
}

#[test]
fn start_at_beginning_reads_everything_and_sets_agent_and_source() {
    let h = Harness::new();
    append(
        &h.path("billing.log"),
        "2024-01-15 10:30:00 - ERROR - charge failed\n",
    );
    let mut t = h.tailer();
    t.poll().unwrap();
    let recs = h.sink.records.lock().unwrap().clone();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].agent, "billing");
    assert_eq!(recs[0].host, "test-host");
    assert_eq!(recs[0].source, h.source("billing.log"));
    assert_eq!(recs[0].level, Some(logyard_model::Level::Error));
}

#[test]
fn a_deleted_file_is_read_to_its_end_and_others_go_on() {
    let h = Harness::new();
    let p = h.path("gone.log");
    append(&p, "one\n");
    append(&h.path("stays.log"), "x\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    f.write_all(b"two\n").unwrap();
    append(&h.path("stays.log"), "y\n");
    t.poll().unwrap();
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("gone.log")), ["one", "two"]);
    assert_eq!(h.sink.lines_of(&h.source("stays.log")), ["x", "y"]);
    assert!(t.entries[&p].current.is_none() && t.entries[&p].retired.is_empty());
}

#[test]
fn a_directory_a_fifo_and_a_binary_file_are_reported_and_skipped() {
    let h = Harness::new();
    std::fs::create_dir(h.path("dir.log")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(h.path("pipe.log"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::fs::write(h.path("blob.log"), b"\x7fELF\x00\x00\x01binary").unwrap();
    append(&h.path("ok.log"), "fine\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), ["fine"]);
    let st = t.status.snapshot();
    let problem = |name: &str| {
        st.files
            .iter()
            .find(|f| f.path.ends_with(name))
            .and_then(|f| f.problem.clone())
            .unwrap_or_default()
    };
    assert!(problem("dir.log").contains("is a directory"), "{st:?}");
    assert!(problem("blob.log").contains("binary"), "{st:?}");
    assert!(problem("pipe.log").contains("not a regular file"), "{st:?}");
    assert_eq!(st.errors_total, 3, "reported once each: {st:?}");
}

#[test]
fn gz_rotated_files_are_read_once() {
    use flate2::write::GzEncoder;
    let mut h = Harness::new();
    h.cfg.read_gz = true;
    h.cfg.paths = vec![format!("{}/app.log*", h.logs.display())];
    let gz = h.path("app.log.2.gz");
    let mut enc = GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
    enc.write_all(b"archived 1\narchived 2\n").unwrap();
    enc.finish().unwrap();
    append(&h.path("app.log"), "live\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    t.poll().unwrap();
    drop(t);
    // Renamed by the next rotation: still the same file, not read again after a restart.
    std::fs::rename(&gz, h.path("app.log.3.gz")).unwrap();
    let mut t = h.tailer();
    t.poll().unwrap();
    let mut got = h.sink.lines();
    got.sort();
    assert_eq!(got, ["archived 1", "archived 2", "live"]);
    let gz_recs = h.sink.lines_of(&format!("file:{}", gz.display()));
    assert_eq!(gz_recs.len(), 2);
}

#[test]
fn a_restart_reads_only_lines_after_the_checkpoint() {
    let h = Harness::new();
    let p = h.path("app.log");
    let (t1, l1) = lines("a", 0..5);
    append(&p, &t1);
    let mut t = h.tailer();
    t.poll().unwrap();
    drop(t); // a crash: nothing but the checkpoints written after each batch survives
    let (t2, l2) = lines("b", 0..5);
    append(&p, &t2);
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("app.log")), [l1, l2].concat());
    let cp = std::fs::read_to_string(t.checkpoint_path()).unwrap();
    assert!(cp.contains("\"offset\": 40"), "{cp}");
}

/// A crash after the sink's acknowledgement and before the checkpoint's rename leaves the
/// previous checkpoint on disk. With a sink that keeps the checkpoint token in the same
/// durable write, nothing is delivered twice; with one that does not, that last batch is.
#[test]
fn crash_between_sink_ack_and_checkpoint_rename() {
    for keep_tokens in [true, false] {
        let h = Harness::new();
        h.sink.keep_tokens.store(keep_tokens, Ordering::SeqCst);
        let p = h.path("app.log");
        append(&p, "one\n");
        let mut t = h.tailer();
        t.poll().unwrap();
        let cp_path = t.checkpoint_path().to_path_buf();
        let before = std::fs::read(&cp_path).unwrap();
        append(&p, "two\n");
        t.poll().unwrap();
        drop(t);
        std::fs::write(&cp_path, before).unwrap(); // the rename never happened
        append(&p, "three\n");
        let mut t = h.tailer();
        t.poll().unwrap();
        let got = h.sink.lines();
        if keep_tokens {
            assert_eq!(got, ["one", "two", "three"]);
        } else {
            assert_eq!(got, ["one", "two", "two", "three"], "the documented window");
        }
    }
}

#[test]
fn a_failing_sink_loses_and_repeats_nothing() {
    let h = Harness::new();
    let p = h.path("app.log");
    let (t1, l1) = lines("x", 0..2500);
    append(&p, &t1);
    let mut t = h.tailer();
    h.sink.fail.store(true, Ordering::SeqCst);
    assert!(t.poll().is_err());
    assert!(t.poll().is_err());
    assert!(t
        .status
        .snapshot()
        .last_error
        .unwrap()
        .contains("disk full"));
    h.sink.fail.store(false, Ordering::SeqCst);
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), l1);
}

#[test]
fn batches_grow_while_the_sink_is_busy_and_checkpoints_follow_the_acks() {
    let mut h = Harness::new();
    h.cfg.batch_lines = 100;
    h.sink.ack_delay_ms.store(30, Ordering::SeqCst);
    let p = h.path("app.log");
    let (text, all) = lines("x", 0..20_000);
    append(&p, &text);
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), all, "every line once, in order");
    let sizes = h.sink.batch_sizes.lock().unwrap().clone();
    assert!(
        sizes.iter().any(|&n| n > 100),
        "batches grow while one is in flight: {sizes:?}"
    );
    assert!(sizes.len() < 200, "{} batches", sizes.len());
    // The checkpoint on disk covers the whole file once the poll returned.
    let cp = std::fs::read_to_string(t.checkpoint_path()).unwrap();
    assert!(cp.contains(&format!("\"offset\": {}", text.len())), "{cp}");
    // A restart reads nothing again.
    drop(t);
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines().len(), all.len());
}

#[test]
fn a_batch_refused_while_the_next_is_read_is_read_again_with_it() {
    let mut h = Harness::new();
    h.cfg.batch_lines = 100;
    h.cfg.max_batch_bytes = 1000;
    h.sink.ack_delay_ms.store(5, Ordering::SeqCst);
    *h.sink.writes_left.lock().unwrap() = Some(3);
    let p = h.path("app.log");
    let (text, all) = lines("x", 0..5000);
    append(&p, &text);
    let mut t = h.tailer();
    assert!(t.poll().is_err());
    let taken = h.sink.lines();
    assert!(!taken.is_empty() && taken.len() < all.len());
    assert_eq!(taken[..], all[..taken.len()]);
    // Nothing was submitted after the refused batch.
    assert_eq!(h.sink.batch_sizes.lock().unwrap().len(), 4);
    *h.sink.writes_left.lock().unwrap() = None;
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), all, "nothing lost, nothing repeated");
}

#[test]
fn partial_lines_wait_for_their_newline_or_the_timeout() {
    let mut h = Harness::new();
    h.cfg.partial_timeout = Duration::from_millis(200);
    let p = h.path("app.log");
    append(&p, "whole\nhal");
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), ["whole"]);
    append(&p, "f\nlast without newline");
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), ["whole", "half"]);
    std::thread::sleep(Duration::from_millis(250));
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), ["whole", "half", "last without newline"]);
}

#[test]
fn long_lines_are_cut_and_flagged() {
    let mut h = Harness::new();
    h.cfg.max_line_bytes = Some(16);
    append(&h.path("app.log"), &format!("{}\nshort\n", "x".repeat(100)));
    let mut t = h.tailer();
    t.poll().unwrap();
    let recs = h.sink.records.lock().unwrap().clone();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].message, "x".repeat(16));
    assert_eq!(recs[0].fields["truncated"].to_string(), "true");
    assert_eq!(recs[1].message, "short");
}

#[test]
fn multiline_auto_joins_a_traceback() {
    let mut h = Harness::new();
    h.cfg.multiline = "auto".into();
    h.cfg.multiline_timeout = Duration::from_millis(100);
    let text = "2024-01-15 10:30:00 - ERROR - api - boom\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: bad\n2024-01-15 10:30:01 - INFO - api - next\n";
    append(&h.path("api.log"), text);
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines().len(), 1);
    std::thread::sleep(Duration::from_millis(150));
    t.poll().unwrap();
    let recs = h.sink.records.lock().unwrap().clone();
    assert_eq!(recs.len(), 2);
    assert!(
        recs[0]
            .raw
            .as_deref()
            .unwrap_or("")
            .contains("ValueError: bad"),
        "{:?}",
        recs[0]
    );
    assert_eq!(recs[1].message, "next");
}

#[test]
fn a_file_replaced_while_stopped_is_read_from_zero_even_with_its_inode_reused() {
    let h = Harness::new();
    let p = h.path("app.log");
    append(&p, "old 1\nold 2\nold 3\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    drop(t);
    std::fs::remove_file(&p).unwrap();
    // The file system often hands the freed inode to the next file.
    append(&p, "new 1\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(
        h.sink.lines_of(&h.source("app.log")),
        ["old 1", "old 2", "old 3", "new 1"]
    );
}

#[test]
fn a_file_rotated_and_compressed_while_stopped_is_read_from_its_gz_copy() {
    use flate2::write::GzEncoder;
    let mut h = Harness::new();
    h.cfg.read_gz = true;
    h.cfg.paths = vec![format!("{}/app.log*", h.logs.display())];
    let p = h.path("app.log");
    append(&p, "a 1\na 2\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    drop(t);
    append(&p, "a 3\na 4\n");
    // logrotate with `compress` and no `delaycompress`, while logyard is stopped.
    let mut enc = GzEncoder::new(
        std::fs::File::create(h.path("app.log.1.gz")).unwrap(),
        Default::default(),
    );
    enc.write_all(&std::fs::read(&p).unwrap()).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(&p).unwrap();
    append(&p, "b 1\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), ["a 1", "a 2", "a 3", "a 4", "b 1"]);
}

#[test]
fn a_stop_in_the_middle_of_a_gz_file_goes_on_after_the_last_delivered_line() {
    use flate2::write::GzEncoder;
    let mut h = Harness::new();
    h.cfg.read_gz = true;
    h.cfg.batch_lines = 10;
    h.cfg.paths = vec![format!("{}/app.log*", h.logs.display())];
    let (text, want) = lines("archived", 0..35);
    let mut enc = GzEncoder::new(
        std::fs::File::create(h.path("app.log.1.gz")).unwrap(),
        Default::default(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    // The store fails from the third batch on: two batches are delivered and checkpointed.
    *h.sink.writes_left.lock().unwrap() = Some(2);
    let mut t = h.tailer();
    assert!(t.poll().is_err());
    drop(t); // a crash
    assert_eq!(h.sink.lines().len(), 20);
    *h.sink.writes_left.lock().unwrap() = None;
    let mut t = h.tailer();
    t.poll().unwrap();
    t.poll().unwrap();
    assert_eq!(h.sink.lines(), want);
}

#[test]
fn an_unreadable_file_is_reported_once_and_others_go_on() {
    let h = Harness::new();
    // Reading the test's own memory at offset 0 fails with EIO, even for root.
    std::os::unix::fs::symlink("/proc/self/mem", h.path("mem.log")).unwrap();
    append(&h.path("ok.log"), "fine\n");
    let mut t = h.tailer();
    for _ in 0..3 {
        t.poll().unwrap();
    }
    assert_eq!(h.sink.lines(), ["fine"]);
    let st = t.status.snapshot();
    let mem = st
        .files
        .iter()
        .find(|f| f.path.ends_with("mem.log"))
        .unwrap();
    assert!(
        mem.problem.as_deref().unwrap_or("").contains("cannot read"),
        "{st:?}"
    );
    assert_eq!(st.errors_total, 1, "{st:?}");
}

#[test]
fn a_big_file_is_read_in_turns_so_a_small_ones_new_line_is_not_held_back() {
    let h = Harness::new();
    // "big" comes first in the order files are looked at; it is several turns long.
    let (big, big_lines) = lines(&"x".repeat(100), 0..120_000);
    assert!(big.len() > 2 * super::super::tailer::TURN_BYTES);
    append(&h.path("a-big.log"), &big);
    append(&h.path("b-small.log"), "fresh line\n");
    let mut t = h.tailer();
    t.poll().unwrap();
    assert_eq!(h.sink.lines_of(&h.source("b-small.log")), ["fresh line"]);
    assert!(t.has_unread(), "the big file has more to read");
    let mut looks = 1;
    while t.has_unread() {
        t.poll().unwrap();
        looks += 1;
    }
    assert!(looks >= 3, "{looks} looks");
    assert_eq!(h.sink.lines_of(&h.source("a-big.log")), big_lines);
}
