//! Tests of the whole store: append, flush, reopen, replay, merge, retention, quarantine.

use super::*;
use logyard_model::{Level, Value};

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
fn unfinished_writes_are_removed_and_unreadable_unlisted_files_quarantined_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![rec(T0, "kept")]).unwrap();
        store.flush().unwrap();
    }
    let day = dir.path().join("parts/2024-01-15");
    let tmp = day.join("seg-000000000098.parquet.tmp");
    std::fs::write(&tmp, b"half written").unwrap();
    let lone_index = day.join("seg-000000000097.idx");
    std::fs::write(&lone_index, b"an index without data").unwrap();
    let unreadable = day.join("seg-000000000099.parquet");
    std::fs::write(&unreadable, b"not parquet").unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert!(std::fs::metadata(&tmp).is_err());
    assert!(std::fs::metadata(&lone_index).is_err());
    assert!(std::fs::metadata(&unreadable).is_err());
    assert!(dir
        .path()
        .join("quarantine/2024-01-15-seg-000000000099.parquet")
        .is_file());
    assert_eq!(all_messages(&store), ["kept"]);
}

fn catalog_of(dir: &Path) -> Catalog {
    match Catalog::load(&dir.join("state/catalog.json")).unwrap() {
        catalog::Loaded::Found(c) => c,
        other => panic!("no catalog: {other:?}"),
    }
}

/// Every message of the store, each checked to be there once, every block read whole.
fn unique_messages(store: &Store) -> Vec<String> {
    let messages = all_messages(store);
    let mut seen = std::collections::HashSet::new();
    for m in &messages {
        assert!(seen.insert(m), "{m} is stored twice");
    }
    messages
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for day in std::fs::read_dir(dir.join("parts")).unwrap() {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    files.sort();
    files
}

/// A store of two days, three flushes on the first (merged), rows left in the WAL.
fn varied_store(dir: &Path) -> Vec<String> {
    let mut c = config(dir);
    c.merge_fanin = 2;
    let store = Store::open(c).unwrap();
    let mut want = Vec::new();
    for flush in 0..3 {
        let batch: Vec<Record> = (0..5)
            .map(|i| rec(T0 + flush * 10 + i, &format!("f{flush}-{i}")))
            .chain([rec(T0 + DAY + flush, &format!("d2-f{flush}"))])
            .collect();
        want.extend(batch.iter().map(|r| r.message.clone()));
        store.append(batch).unwrap();
        store.flush().unwrap();
    }
    assert!(store.merge().unwrap());
    store.append(vec![rec(T0 + 100, "in the wal")]).unwrap();
    want.push("in the wal".into());
    std::mem::forget(store);
    want.sort();
    want
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn a_missing_catalog_is_rebuilt_from_the_segment_files() {
    for remove in ["state/catalog.json", "state"] {
        let crashed = tempfile::tempdir().unwrap();
        let want = varied_store(crashed.path());
        let dir = tempfile::tempdir().unwrap();
        copy_dir(crashed.path(), dir.path());
        let files = segment_files(dir.path());
        let path = dir.path().join(remove);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(sorted(unique_messages(&store)), want, "{remove}");
        assert_eq!(store.stats().quarantined, 0);
        drop(store);
        // Nothing was deleted that held a row: every file is still there or was a replaced one.
        let catalog = catalog_of(dir.path());
        // The merged day, the three of the second day, and the WAL's row written at the start.
        assert_eq!(catalog.segments.len(), 5, "{:?}", catalog.segments);
        assert_eq!(
            segment_files(dir.path()).len(),
            files.len() + 2,
            "{files:?}"
        );
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(sorted(unique_messages(&store)), want, "{remove}, reopened");
        assert_eq!(store.stats().wal_replayed_records, 0);
    }
}

#[test]
fn a_damaged_catalog_is_moved_aside_and_rebuilt() {
    let crashed = tempfile::tempdir().unwrap();
    let want = varied_store(crashed.path());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(crashed.path(), dir.path());
    std::fs::write(
        dir.path().join("state/catalog.json"),
        b"{\"version\": 1, garbage",
    )
    .unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(sorted(unique_messages(&store)), want);
    drop(store);
    let aside = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("catalog.json.damaged-"))
        .count();
    assert_eq!(aside, 1);
    // A catalog of a newer format is not rebuilt over: the start fails and says why.
    std::fs::write(
        dir.path().join("state/catalog.json"),
        br#"{"version": 2, "flushed_seq": 0, "next_segment_id": 1, "segments": []}"#,
    )
    .unwrap();
    let err = Store::open(config(dir.path())).unwrap_err().to_string();
    assert!(err.contains("format version 2"), "{err}");
}

/// Runs a merge, then puts back the state a crash would leave at one of its steps:
/// `catalog_before` restores the catalog of before the merge (crash before its save),
/// `inputs_back` restores the merged segments' files (crash before their removal);
/// `catalog_lost` removes the catalog as well.
fn interrupted_merge(catalog_before: bool, inputs_back: bool, catalog_lost: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.merge_fanin = 3;
    let store = Store::open(c.clone()).unwrap();
    for i in 0..3 {
        store.append(vec![rec(T0 + i, &format!("m{i}"))]).unwrap();
        store.flush().unwrap();
    }
    let saved: Vec<(PathBuf, Vec<u8>)> = segment_files(dir.path())
        .into_iter()
        .chain([dir.path().join("state/catalog.json")])
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    assert!(store.merge().unwrap());
    drop(store);
    for (p, b) in saved {
        let is_catalog = p.ends_with("catalog.json");
        if (is_catalog && catalog_before) || (!is_catalog && inputs_back) {
            std::fs::write(p, b).unwrap();
        }
    }
    if catalog_lost {
        std::fs::remove_file(dir.path().join("state/catalog.json")).unwrap();
    }
    let store = Store::open(c.clone()).unwrap();
    assert_eq!(unique_messages(&store), ["m0", "m1", "m2"]);
    drop(store);
    let store = Store::open(c).unwrap();
    assert_eq!(unique_messages(&store), ["m0", "m1", "m2"]);
    assert_eq!(store.stats().quarantined, 0);
    let kept_inputs = catalog_before && !catalog_lost;
    assert_eq!(
        segment_files(dir.path()).len(),
        if kept_inputs { 6 } else { 2 }
    );
}

#[test]
fn a_merge_interrupted_at_any_step_keeps_each_row_once() {
    interrupted_merge(true, true, false); // merged file written, catalog not saved
    interrupted_merge(false, true, false); // catalog saved, inputs not removed
    interrupted_merge(true, true, true); // both, and the catalog lost: the merged file wins
}

#[test]
fn a_flush_interrupted_before_its_catalog_keeps_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    store.append(vec![rec(T0, "first")]).unwrap();
    store.flush().unwrap();
    store
        .append(vec![rec(T0 + 1, "day one"), rec(T0 + DAY, "day two")])
        .unwrap();
    let keep = |p: PathBuf| {
        let b = std::fs::read(&p).unwrap();
        (p, b)
    };
    let wal: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| keep(e.unwrap().path()))
        .collect();
    let catalog = keep(dir.path().join("state/catalog.json"));
    store.flush().unwrap();
    drop(store);
    // A crash after both days' segments were written, before the catalog listed them.
    for (p, b) in wal.into_iter().chain([catalog]) {
        std::fs::write(p, b).unwrap();
    }
    for _ in 0..2 {
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(unique_messages(&store), ["first", "day one", "day two"]);
    }
}

#[test]
fn a_missing_or_damaged_index_is_rebuilt_from_its_segment() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("removed", |p| std::fs::remove_file(p).unwrap()),
        ("emptied", |p| std::fs::write(p, b"").unwrap()),
        ("cut", |p| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() / 2]).unwrap();
        }),
        ("flipped", |p| {
            let mut b = std::fs::read(p).unwrap();
            let at = b.len() / 3;
            b[at] ^= 0x10;
            std::fs::write(p, b).unwrap();
        }),
    ];
    for (how, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(config(dir.path())).unwrap();
            store
                .append((0..250).map(|i| rec(T0 + i, &format!("row{i}"))).collect())
                .unwrap();
            store.flush().unwrap();
        }
        let index = segment_files(dir.path())
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        let intact = std::fs::read(&index).unwrap();
        damage(&index);
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(unique_messages(&store).len(), 250, "{how}");
        assert_eq!(store.stats().quarantined, 0, "{how}");
        assert_eq!(
            std::fs::read(&index).unwrap(),
            intact,
            "{how}: the same index again"
        );
        // The rebuilt filters still skip blocks.
        let snap = store.snapshot();
        let hashes: Vec<u64> = {
            let mut h = Vec::new();
            logyard_model::text_hashes("row7", |x| h.push(x));
            h
        };
        let may: Vec<bool> = snap
            .blocks
            .iter()
            .map(|b| b.may_contain_all(&hashes))
            .collect();
        assert!(
            may[0] && may.iter().filter(|&&m| m).count() < may.len(),
            "{how}: {may:?}"
        );
    }
    // An index damaged beside a damaged data file: the segment goes to quarantine.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![rec(T0, "x")]).unwrap();
        store.flush().unwrap();
    }
    for file in segment_files(dir.path()) {
        let mut b = std::fs::read(&file).unwrap();
        b[4] ^= 0xff;
        std::fs::write(&file, b).unwrap();
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.stats().quarantined, 1);
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
    // Later snapshots still know which rows are missing, over their time range only.
    let t0 = T0 * 1_000_000_000;
    assert_eq!(store.snapshot().quarantined_rows(None, None), 50);
    assert_eq!(
        store.snapshot().quarantined_rows(Some(t0), Some(t0 + 1)),
        50
    );
    assert_eq!(
        store
            .snapshot()
            .quarantined_rows(Some(t0 + DAY * 1_000_000_000), None),
        0
    );
    drop(snap);
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.snapshot().quarantined_rows(None, None), 50);
    drop(store);
    // Once its files are taken out of quarantine/, the segment is forgotten.
    for f in std::fs::read_dir(dir.path().join("quarantine")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.snapshot().quarantined_rows(None, None), 0);
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
    // Accepted: this store keeps everything.
    assert_eq!(all_messages(&store), ["old", "new"]);
    drop(store);
    c.retention_days = 7;
    // A process that does not prune (a command reading the directory) deletes nothing.
    let store = Store::open(c.clone()).unwrap();
    assert_eq!(all_messages(&store), ["old", "new"]);
    assert_eq!(store.stats().retention_dropped_days, 0);
    drop(store);
    c.prune = true;
    let store = Store::open(c).unwrap();
    assert_eq!(all_messages(&store), ["new"]);
    assert_eq!(store.stats().retention_dropped_days, 1);
}

#[test]
fn entries_past_the_retention_are_refused_at_append() {
    let dir = tempfile::tempdir().unwrap();
    let now_s = logyard_model::now_ns() / 1_000_000_000;
    let mut c = config(dir.path());
    c.retention_days = 7;
    let store = Store::open(c).unwrap();
    let mut batch = vec![
        rec(now_s - 30 * DAY, "old"),
        rec(now_s, "new"),
        rec(now_s - 8 * DAY - DAY / 2, "older than the oldest day kept"),
        rec(now_s - 6 * DAY, "within"),
    ];
    assert_eq!(store.refuse_expired(&mut batch), [0, 2]);
    assert_eq!(batch.len(), 2);
    // Submitted as they are, the old ones are refused all the same.
    store
        .append(vec![rec(now_s - 30 * DAY, "old"), rec(now_s, "kept")])
        .unwrap();
    store.flush().unwrap();
    assert_eq!(all_messages(&store), ["kept"]);
    assert_eq!(store.stats().refused_expired, 3);
    assert_eq!(store.expired_reason(), "older than the retention of 7 days");
}

#[test]
fn the_oldest_day_kept_starts_at_midnight() {
    let day = 86_400 * 1_000_000_000i64;
    let now = 20_000 * day + 3 * 3_600 * 1_000_000_000;
    assert_eq!(crate::oldest_kept(0, now), None);
    assert_eq!(crate::oldest_kept(7, now), Some((20_000 - 7) * day));
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
    c.prune = true;
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
    assert_eq!(catalog_of(dir.path()).segments.len(), 1);
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

/// What the store is doing when a file operation fails.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Ingest,
    Flush,
    Merge,
    Retention,
}

/// Runs `phase` with `fault` armed under the data directory, then writes once more with the
/// fault gone. Returns the messages acknowledged while the fault was armed and in all, and
/// the final directory with, in its `crash/`, the directory as a crash while the fault was
/// armed would have left it.
fn run_faulty_phase(
    dir: &Path,
    phase: Phase,
    fault: fileops::Fault,
) -> (Vec<String>, Vec<String>, tempfile::TempDir) {
    let now_s = logyard_model::now_ns() / 1_000_000_000;
    let mut c = config(dir);
    c.merge_fanin = 2;
    let mut acked = Vec::new();
    let append = |store: &Store, acked: &mut Vec<String>, ts: i64, name: String| {
        let batch: Vec<Record> = (0..3)
            .map(|i| rec(ts + i, &format!("{name}-{i}")))
            .collect();
        let names: Vec<String> = batch.iter().map(|r| r.message.clone()).collect();
        if store.append(batch).is_ok() {
            acked.extend(names);
        }
    };
    // What is there before the fault.
    {
        let store = Store::open(c.clone()).unwrap();
        for i in 0..3 {
            append(&store, &mut acked, now_s - 30 * DAY + i, format!("old{i}"));
            append(&store, &mut acked, now_s + i, format!("before{i}"));
            store.flush().unwrap();
        }
        append(&store, &mut acked, now_s + 10, "unflushed".into());
        std::mem::forget(store);
    }
    let work = tempfile::tempdir().unwrap();
    copy_dir(dir, work.path());
    let dir = work.path();
    let c = StoreConfig {
        data_dir: dir.to_path_buf(),
        ..c
    };
    let fault = fileops::Fault {
        under: dir.to_path_buf(),
        ..fault
    };
    let crashed = tempfile::tempdir().unwrap();
    let guard = fileops::inject(fault);
    let store = match phase {
        Phase::Retention => {
            // Retention runs at open: the open itself may fail, and that is a clear error.
            let mut retained = c.clone();
            retained.retention_days = 7;
            retained.prune = true;
            Store::open(retained)
        }
        _ => Store::open(c.clone()),
    };
    if let Ok(store) = &store {
        match phase {
            Phase::Ingest => {
                for i in 0..4 {
                    append(store, &mut acked, now_s + 20 + i, format!("during{i}"));
                }
            }
            Phase::Flush => {
                let _ = store.flush();
                append(store, &mut acked, now_s + 20, "during".into());
                let _ = store.flush();
            }
            Phase::Merge => {
                let _ = store.merge();
                let _ = store.merge();
            }
            Phase::Retention => {
                let _ = store.apply_retention();
            }
        }
    }
    copy_dir(dir, crashed.path());
    let acked_at_crash = acked.clone();
    drop(guard);
    if let Ok(store) = &store {
        // The fault is gone: writes succeed again.
        let batch = vec![rec(now_s + 40, "after")];
        store
            .append(batch)
            .expect("a write after the fault is gone");
        acked.push("after".into());
    }
    drop(store);
    // The work directory is checked by the caller through `dir`: keep it alive there.
    let kept = tempfile::tempdir().unwrap();
    copy_dir(dir, kept.path());
    (acked_at_crash, acked, merge_dirs(kept, crashed))
}

/// Puts the crashed image beside the final one: `<kept>/crash` (ignored by the store).
fn merge_dirs(kept: tempfile::TempDir, crashed: tempfile::TempDir) -> tempfile::TempDir {
    copy_dir(crashed.path(), &kept.path().join("crash"));
    kept
}

#[test]
fn a_failing_disk_at_any_file_operation_loses_no_acknowledged_row() {
    let mut cases = 0;
    for phase in [Phase::Ingest, Phase::Flush, Phase::Merge, Phase::Retention] {
        for op in fileops::Op::ALL {
            for errno in [libc::ENOSPC, libc::EIO] {
                for (skip, times) in [(0, 1), (3, 1), (0, u64::MAX), (2, u64::MAX)] {
                    cases += 1;
                    let what = format!("{phase:?} {op:?} errno {errno} skip {skip} times {times}");
                    let seed = tempfile::tempdir().unwrap();
                    let fault = fileops::Fault {
                        op,
                        under: PathBuf::new(),
                        errno,
                        skip,
                        times,
                    };
                    let (at_crash, acked, image) = run_faulty_phase(seed.path(), phase, fault);
                    let crash = image.path().join("crash");
                    for (dir, acked) in [(image.path(), &acked), (crash.as_path(), &at_crash)] {
                        let store = Store::open(config(dir))
                            .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
                        let stored = unique_messages(&store);
                        for m in acked {
                            // Retention may drop the old days: that is its job.
                            if m.starts_with("old") {
                                continue;
                            }
                            assert!(
                                stored.contains(m),
                                "{what}: acknowledged {m} lost ({dir:?})"
                            );
                        }
                        // A refused batch is cut off the WAL, when the disk lets it be cut.
                        if times == 1 {
                            for m in stored.iter().filter(|m| m.starts_with("during")) {
                                assert!(acked.contains(m), "{what}: refused {m} stored ({dir:?})");
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 6 * 2 * 4);
}

/// Backups taken while a thread appends and the flusher flushes and merges: each restores
/// every batch acknowledged before it began, and no row twice.
#[test]
fn a_backup_under_ingest_holds_every_acknowledged_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("data"));
    c.flush_interval = Duration::from_millis(5);
    c.merge_fanin = 2;
    let store = Arc::new(Store::open(c).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let (store, stop, acked) = (store.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let msgs: Vec<String> = (0..10).map(|j| format!("m-{n}-{j}")).collect();
                n += 1;
                let recs = msgs.iter().map(|m| rec(T0 + n, m)).collect();
                store.append(recs).unwrap();
                acked.lock().unwrap().extend(msgs);
            }
        })
    };
    let mut backups = Vec::new();
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(60));
        let before = acked.lock().unwrap().clone();
        let to = dir.path().join(format!("backup-{i}"));
        let report = store.backup(&to).unwrap();
        assert!(to.join(backup::MANIFEST).is_file());
        backups.push((to, before, report));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(store.stats().merges > 0, "merges ran meanwhile");
    for (to, before, report) in backups {
        let restored = dir.path().join("restored").join(to.file_name().unwrap());
        let manifest = backup::restore(&to, &restored).unwrap();
        assert_eq!(manifest, report.manifest);
        let copy = Store::open(config(&restored)).unwrap();
        let got = all_messages(&copy);
        let unique: std::collections::HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{}: a row twice", to.display());
        for m in &before {
            assert!(unique.contains(m), "{}: {m} missing", to.display());
        }
        assert_eq!(
            got.len() as u64,
            report.manifest.segment_rows + report.manifest.wal_rows
        );
    }
    // The deletions held off by the backups are done: no WAL file is left behind the flushes.
    store.flush().unwrap();
    assert!(wal::list_files(&dir.path().join("data/wal")).unwrap().len() <= 2);
}

#[test]
fn a_backup_target_must_be_empty_and_outside_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir.path().join("data"))).unwrap();
    store.append(vec![rec(T0, "a")]).unwrap();
    let used = dir.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("x"), "x").unwrap();
    let err = store.backup(&used).unwrap_err().to_string();
    assert!(err.contains("not empty"), "{err}");
    let inside = dir.path().join("data/backup");
    let err = store.backup(&inside).unwrap_err().to_string();
    assert!(err.contains("inside the data directory"), "{err}");
    assert!(!inside.exists());
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = store.backup(&file).unwrap_err().to_string();
    assert!(err.contains("is a file"), "{err}");
}

#[test]
fn a_failed_backup_removes_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir.path().join("data"))).unwrap();
    store.append(vec![rec(T0, "a")]).unwrap();
    store.flush().unwrap();
    store.append(vec![rec(T0, "b")]).unwrap();
    let to = dir.path().join("b");
    let guard = fileops::inject(fileops::Fault {
        op: fileops::Op::Fsync,
        under: to.join("wal"),
        errno: libc::ENOSPC,
        skip: 0,
        times: u64::MAX,
    });
    let err = store.backup(&to).unwrap_err().to_string();
    drop(guard);
    assert!(err.contains("No space left"), "{err}");
    assert!(err.contains("run the backup again"), "{err}");
    assert!(!to.exists(), "the partial backup is removed");
    store.backup(&to).unwrap();
}

#[test]
fn an_empty_store_backs_up_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir.path().join("data"))).unwrap();
    let to = dir.path().join("b");
    let report = store.backup(&to).unwrap();
    assert_eq!(report.manifest.segments, 0);
    let restored = dir.path().join("r");
    backup::restore(&to, &restored).unwrap();
    let copy = Store::open(config(&restored)).unwrap();
    assert!(all_messages(&copy).is_empty());
}

/// The state files of other parts that users would miss (the alert history and cooldowns,
/// the saved queries) travel with the entries, each as one whole version; the store's own
/// catalog is the backup's, and an absent file is no error.
#[test]
fn a_backup_holds_the_alert_state_and_the_saved_queries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(config(&data)).unwrap();
    store.append(vec![rec(T0, "a")]).unwrap();
    std::fs::write(data.join("state/alerts.json"), br#"{"history":[]}"#).unwrap();
    std::fs::write(data.join("state/saved-queries.json"), br#"{"ops":[]}"#).unwrap();
    std::fs::write(data.join("state/unrelated.tmp"), b"x").unwrap();
    let to = dir.path().join("b");
    let report = store.backup(&to).unwrap();
    let listed: Vec<&str> = report
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| p.starts_with("state/"))
        .collect();
    assert_eq!(
        listed,
        [
            "state/catalog.json",
            "state/alerts.json",
            "state/saved-queries.json"
        ]
    );
    let restored = dir.path().join("restored");
    backup::restore(&to, &restored).unwrap();
    assert_eq!(
        std::fs::read(restored.join("state/alerts.json")).unwrap(),
        br#"{"history":[]}"#
    );
    assert_eq!(
        std::fs::read(restored.join("state/saved-queries.json")).unwrap(),
        br#"{"ops":[]}"#
    );
    assert!(!restored.join("state/unrelated.tmp").exists());
    // Without them, a backup is whole too.
    std::fs::remove_file(data.join("state/alerts.json")).unwrap();
    std::fs::remove_file(data.join("state/saved-queries.json")).unwrap();
    let again = dir.path().join("c");
    let report = store.backup(&again).unwrap();
    assert!(!report
        .manifest
        .files
        .iter()
        .any(|f| f.path.ends_with("alerts.json")));
}

#[test]
fn flushes_asked_for_at_once_write_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(config(dir.path())).unwrap());
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for round in 0..50 {
                    let records = (0..10)
                        .map(|i| rec(1_705_276_800 + w * 1000 + round * 10 + i, "x"))
                        .collect();
                    store.append(records).unwrap();
                    store.flush().unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(all_messages(&store).len(), 1000);
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(all_messages(&store).len(), 1000, "after a reopen");
}

#[test]
fn the_field_column_settings_decide_the_columns_a_flush_writes() {
    // The field columns of the one segment a flush of `records` writes, read as stored.
    let columns_written = |rule: field_columns::FieldColumnRule| {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.field_columns = rule;
        let store = Store::open(c).unwrap();
        let records: Vec<Record> = (0..50)
            .map(|i| {
                let mut r = rec(T0 + i, "served");
                r.fields.insert("status".into(), Value::Int(200));
                if i < 5 {
                    r.fields.insert("user".into(), Value::Str("ana".into()));
                }
                r
            })
            .collect();
        store.append(records.clone()).unwrap();
        store.flush().unwrap();
        let snap = store.snapshot();
        let [block] = &snap.blocks[..] else {
            panic!("one block: {}", snap.blocks.len())
        };
        assert!(block.segment().is_some());
        let rows: Vec<usize> = (0..50).collect();
        let mut back = block.records(&rows).unwrap();
        back.iter_mut().for_each(|r| r.seq = 0);
        assert_eq!(back, records);
        let batch = block
            .read(Columns::of(&[schema::col::FIELDS]).with(Columns::FIELD_COLUMNS))
            .unwrap();
        let names = schema::column_names(&batch);
        names[1..].iter().map(|n| n.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        columns_written(field_columns::FieldColumnRule::DEFAULT),
        ["f.status", "f.user"]
    );
    let half = field_columns::FieldColumnRule {
        max: 32,
        min_share: 0.5,
    };
    assert_eq!(columns_written(half), ["f.status"]);
    assert!(columns_written(field_columns::FieldColumnRule::NONE).is_empty());
}
