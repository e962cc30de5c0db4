//! Tests of the whole store: append, flush, reopen, replay, merge, retention, quarantine.

use super::*;
use logyard_model::Level;

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.flush_interval = Duration::from_secs(3600);
    c.retention_days = 0;
    c.block_rows = 100;
    c
}

fn rec(ts_s: i64, msg: &str) -> Record {
    let mut r = Record::new(ts_s * 1_000_000_000, msg);
    r.agent = "web".into();
    r.level = Some(Level::Info);
    r
}

fn all_messages(store: &Store) -> Vec<String> {
    let snap = store.snapshot();
    let mut out: Vec<(i64, u64, String)> = Vec::new();
    for b in &snap.blocks {
        let rows: Vec<usize> = (0..b.rows()).collect();
        for r in b.records(&rows).unwrap() {
            out.push((r.timestamp, r.seq, r.message));
        }
    }
    out.sort();
    out.into_iter().map(|(_, _, m)| m).collect()
}

const DAY: i64 = 86_400;
const T0: i64 = 1_705_276_800; // 2024-01-15T00:00:00Z

#[test]
fn appended_is_queryable_at_once_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        let ack = store.append(vec![rec(T0, "a"), rec(T0 + 1, "b")]).unwrap();
        assert_eq!(ack.count, 2);
        assert_eq!(all_messages(&store), ["a", "b"]);
        // No flush: the data lives only in the WAL and the memtable.
        std::mem::forget(store);
    }
    // The forgotten store still holds the lock in this process; a real crash releases it.
    // Simulate by removing the lock holder's effect: open a fresh directory copy instead.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    let store = Store::open(config(copy.path())).unwrap();
    assert_eq!(all_messages(&store), ["a", "b"]);
    assert_eq!(store.stats().wal_replayed_records, 2);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn flush_writes_segments_per_day_and_truncates_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    store
        .append(vec![
            rec(T0 + 5, "day1"),
            rec(T0 + DAY + 5, "day2"),
            rec(T0 + 1, "day1-early"),
        ])
        .unwrap();
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!(stats.segments, 2);
    assert_eq!(stats.memtable_rows, 0);
    assert_eq!(all_messages(&store), ["day1-early", "day1", "day2"]);
    assert!(dir.path().join("parts/2024-01-15").is_dir());
    assert!(dir.path().join("parts/2024-01-16").is_dir());
    assert_eq!(wal::list_files(&dir.path().join("wal")).unwrap().len(), 1);
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(all_messages(&store), ["day1-early", "day1", "day2"]);
    assert_eq!(store.stats().wal_replayed_records, 0);
}

#[test]
fn nothing_is_stored_twice_when_wal_outlives_its_flush() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![rec(T0, "once")]).unwrap();
        // Keep a copy of the WAL as it was before the flush removed it.
        let saved: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&wal_dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect();
        store.flush().unwrap();
        drop(store);
        // A crash between the catalog update and the WAL removal leaves both.
        for (p, b) in saved {
            std::fs::write(p, b).unwrap();
        }
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(all_messages(&store), ["once"]);
    store.append(vec![rec(T0 + 1, "next")]).unwrap();
    let snap = store.snapshot();
    let mut seqs: Vec<u64> = Vec::new();
    for b in &snap.blocks {
        let rows: Vec<usize> = (0..b.rows()).collect();
        seqs.extend(b.records(&rows).unwrap().iter().map(|r| r.seq));
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        2,
        "sequence numbers stay unique across restarts"
    );
}

#[test]
fn orphan_segment_files_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![rec(T0, "kept")]).unwrap();
        store.flush().unwrap();
    }
    let orphan = dir.path().join("parts/2024-01-15/seg-000000000099.parquet");
    std::fs::write(&orphan, b"half written").unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert!(std::fs::metadata(&orphan).is_err());
    assert_eq!(all_messages(&store), ["kept"]);
}

#[test]
fn damaged_segment_goes_to_quarantine_and_the_rest_serves() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![rec(T0, "day1")]).unwrap();
        store.append(vec![rec(T0 + DAY, "day2")]).unwrap();
        store.flush().unwrap();
    }
    let victim = std::fs::read_dir(dir.path().join("parts/2024-01-15"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::write(&victim, b"this is garbage, not parquet").unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(all_messages(&store), ["day2"]);
    assert_eq!(store.stats().quarantined, 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("quarantine"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn damage_found_at_read_time_quarantines() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store
            .append((0..50).map(|i| rec(T0 + i, "x")).collect())
            .unwrap();
        store.flush().unwrap();
    }
    let victim = std::fs::read_dir(dir.path().join("parts/2024-01-15"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let mut data = std::fs::read(&victim).unwrap();
    data[10] ^= 0xff; // inside the first page, the footer stays readable
    std::fs::write(&victim, data).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let snap = store.snapshot();
    let block = &snap.blocks[0];
    let err = block.read(Columns::ALL).unwrap_err();
    snap.report_damaged(block, &err);
    assert_eq!(store.snapshot().blocks.len(), 0);
    assert_eq!(store.stats().quarantined, 1);
}

#[test]
fn many_threads_read_one_segment_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.block_rows = 100;
    let store = Store::open(cfg).unwrap();
    store
        .append(
            (0..2000)
                .map(|i| rec(T0 + i, &format!("line {i}")))
                .collect(),
        )
        .unwrap();
    store.flush().unwrap();
    let snap = store.snapshot();
    assert_eq!(snap.blocks.len(), 20);
    std::thread::scope(|s| {
        for t in 0..8 {
            let snap = &snap;
            s.spawn(move || {
                for round in 0..20 {
                    let b = (t * 7 + round) % snap.blocks.len();
                    let rows: Vec<usize> = (0..100).collect();
                    let records = snap.blocks[b].records(&rows).unwrap();
                    assert_eq!(records[0].message, format!("line {}", b * 100));
                    assert_eq!(records[99].message, format!("line {}", b * 100 + 99));
                }
            });
        }
    });
    assert_eq!(store.stats().quarantined, 0);
}

#[test]
fn a_decoding_error_of_an_intact_segment_does_not_quarantine_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    store.append(vec![rec(T0, "kept")]).unwrap();
    store.flush().unwrap();
    let snap = store.snapshot();
    let err = StoreError::Parquet(parquet::errors::ParquetError::General("reader".into()));
    snap.report_damaged(&snap.blocks[0], &err);
    assert_eq!(store.stats().quarantined, 0);
    assert_eq!(all_messages(&store), ["kept"]);
}

#[test]
fn merge_combines_small_segments_of_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.merge_fanin = 3;
    let store = Store::open(c.clone()).unwrap();
    for i in 0..3 {
        store
            .append(vec![rec(T0 + 10 - i, &format!("m{i}"))])
            .unwrap();
        store.flush().unwrap();
    }
    assert_eq!(store.stats().segments, 3);
    assert!(store.merge().unwrap());
    assert_eq!(store.stats().segments, 1);
    assert_eq!(all_messages(&store), ["m2", "m1", "m0"]);
    assert_eq!(
        std::fs::read_dir(dir.path().join("parts/2024-01-15"))
            .unwrap()
            .count(),
        2,
        "one .parquet and one .idx remain"
    );
    drop(store);
    let store = Store::open(c).unwrap();
    assert_eq!(all_messages(&store), ["m2", "m1", "m0"]);
}

#[test]
fn retention_drops_old_days_and_keeps_recent() {
    let dir = tempfile::tempdir().unwrap();
    let now_s = logyard_model::now_ns() / 1_000_000_000;
    let mut c = config(dir.path());
    let store = Store::open(c.clone()).unwrap();
    store
        .append(vec![rec(now_s - 30 * DAY, "old"), rec(now_s, "new")])
        .unwrap();
    store.flush().unwrap();
    // Accepted at ingest even though it is past the retention.
    assert_eq!(all_messages(&store), ["old", "new"]);
    drop(store);
    c.retention_days = 7;
    let store = Store::open(c).unwrap();
    assert_eq!(all_messages(&store), ["new"]);
    assert_eq!(store.stats().retention_dropped_days, 1);
}

#[test]
fn disk_budget_drops_oldest_days() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    let store = Store::open(c.clone()).unwrap();
    for d in 0..3 {
        store
            .append(vec![rec(T0 + d * DAY, &format!("d{d}"))])
            .unwrap();
    }
    store.flush().unwrap();
    let one_day = store.stats().segment_bytes / 3;
    drop(store);
    c.max_disk_bytes = one_day * 2 + one_day / 2 + 200;
    let store = Store::open(c).unwrap();
    let left = all_messages(&store);
    assert!(!left.contains(&"d0".to_string()), "{left:?}");
    assert!(left.contains(&"d2".to_string()), "{left:?}");
}

#[test]
fn second_open_is_refused_while_held() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(config(dir.path())).unwrap();
    let err = Store::open(config(dir.path())).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn subscribers_see_acknowledged_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let mut rx = store.subscribe();
    store.append(vec![rec(T0, "live")]).unwrap();
    let batch = rx.try_recv().unwrap();
    assert_eq!(batch.records()[0].message, "live");
}

#[test]
fn close_flushes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    store.append(vec![rec(T0, "bye")]).unwrap();
    store.close();
    assert!(store.append(vec![rec(T0, "late")]).is_err());
    drop(store);
    let catalog = Catalog::load(&dir.path().join("state/catalog.json")).unwrap();
    assert_eq!(catalog.segments.len(), 1);
}

#[test]
fn checkpoints_kept_with_batches_survive_a_crash_and_a_flush() {
    let cp = |seq: u64| StoredCheckpoint {
        seq,
        data: format!("offset {seq}").into_bytes(),
    };
    let append = |store: &Store, msg: &str, seq: u64| {
        store
            .submit_with_checkpoint(vec![rec(T0 + seq as i64, msg)], "file:app", cp(seq))
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(store.checkpoint("file:app"), None);
        append(&store, "a", 1);
        append(&store, "b", 2);
        assert_eq!(store.checkpoint("file:app"), Some(cp(2)));
        assert_eq!(store.checkpoint("file:other"), None);
        // Only in the WAL: a crash now keeps them (the store is not closed).
        std::mem::forget(store);
    }
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    {
        let store = Store::open(config(copy.path())).unwrap();
        assert_eq!(store.checkpoint("file:app"), Some(cp(2)));
        assert_eq!(all_messages(&store), ["a", "b"]);
        // A flush removes the WAL files that held them: the catalog keeps them.
        store.flush().unwrap();
        append(&store, "c", 3);
        store.flush().unwrap();
        // An older checkpoint (a source restarted from an older file) does not win.
        append(&store, "d", 1);
        assert_eq!(store.checkpoint("file:app"), Some(cp(3)));
    }
    let wal_files = std::fs::read_dir(copy.path().join("wal")).unwrap().count();
    let store = Store::open(config(copy.path())).unwrap();
    assert_eq!(
        store.checkpoint("file:app"),
        Some(cp(3)),
        "{wal_files} WAL files"
    );
    // By time: "d" was written with its checkpoint's second.
    assert_eq!(all_messages(&store), ["a", "d", "b", "c"]);
}
