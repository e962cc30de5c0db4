//! The store over each place its segment files may live: the local folder, an S3 bucket
//! (a real S3 API server, `moto_server`, on 127.0.0.1) and memory. Every scenario runs on
//! each; the memory directory also fails on purpose (a bucket that refuses writes or reads).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use logyard_model::{Level, Record};
use logyard_store::dir::DirOp;
use logyard_store::{
    FileKey, MemoryDir, S3Config, S3Dir, SegmentDir, Storage, Store, StoreConfig, StoreError,
};

#[path = "../../../tests/util/moto.rs"]
mod moto;
use moto::Moto;

const DAY: i64 = 86_400;
const T0: i64 = 1_705_276_800; // 2024-01-15T00:00:00Z

/// One place for segment files, with what a scenario needs to reach it.
struct Backend {
    name: &'static str,
    storage: Storage,
    /// The segment directory as the store sees it (to list and damage files).
    dir: Option<Arc<dyn SegmentDir>>,
    _moto: Option<Moto>,
}

impl Backend {
    fn local() -> Backend {
        Backend {
            name: "local",
            storage: Storage::Local,
            dir: None,
            _moto: None,
        }
    }

    fn memory() -> Backend {
        let dir = MemoryDir::new();
        Backend {
            name: "memory",
            storage: Storage::Dir(Arc::new(dir.clone())),
            dir: Some(Arc::new(dir)),
            _moto: None,
        }
    }

    fn s3() -> Backend {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        let moto = Moto::start();
        moto.create_bucket("logs");
        let config = S3Config {
            bucket: "logs".into(),
            prefix: "prod/eu".into(),
            endpoint: moto.endpoint.clone(),
            region: "us-east-1".into(),
        };
        let dir = S3Dir::open(&config).unwrap();
        Backend {
            name: "s3",
            storage: Storage::S3(config),
            dir: Some(Arc::new(dir)),
            _moto: Some(moto),
        }
    }

    fn all() -> Vec<Backend> {
        vec![Backend::local(), Backend::memory(), Backend::s3()]
    }

    fn config(&self, data_dir: &Path) -> StoreConfig {
        let mut c = StoreConfig::new(data_dir);
        c.flush_interval = Duration::from_secs(3600);
        c.retention_days = 0;
        c.block_rows = 100;
        c.storage = self.storage.clone();
        c
    }

    /// The segment directory (the local one is opened on `data_dir/parts`).
    fn segments(&self, data_dir: &Path) -> Arc<dyn SegmentDir> {
        match &self.dir {
            Some(dir) => dir.clone(),
            None => Storage::Local.open(data_dir).unwrap(),
        }
    }
}

fn rec(ts_s: i64, msg: &str) -> Record {
    let mut r = Record::new(ts_s * 1_000_000_000, msg);
    r.agent = "web".into();
    r.level = Some(Level::Info);
    r
}

fn messages(store: &Store) -> Result<Vec<String>, StoreError> {
    let snap = store.snapshot();
    let mut out: Vec<(i64, u64, String)> = Vec::new();
    for b in &snap.blocks {
        let rows: Vec<usize> = (0..b.rows()).collect();
        for r in b.records(&rows)? {
            out.push((r.timestamp, r.seq, r.message));
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, _, m)| m).collect())
}

fn batch(from: usize, n: usize, day: i64) -> Vec<Record> {
    (from..from + n)
        .map(|i| rec(T0 + day * DAY + i as i64, &format!("m{i:05}")))
        .collect()
}

fn expected(ranges: &[(usize, usize)]) -> Vec<String> {
    let mut all: Vec<String> = ranges
        .iter()
        .flat_map(|&(from, n)| (from..from + n).map(|i| format!("m{i:05}")))
        .collect();
    all.sort();
    all
}

#[test]
fn flushed_rows_come_back_after_a_reopen_on_every_backend() {
    for b in Backend::all() {
        let data = tempfile::tempdir().unwrap();
        {
            let store = Store::open(b.config(data.path())).unwrap();
            store.append(batch(0, 250, 0)).unwrap();
            store.append(batch(250, 50, 1)).unwrap();
            store.flush().unwrap();
            store.close();
        }
        let keys = b.segments(data.path()).list().unwrap();
        assert_eq!(
            keys.len(),
            4,
            "{}: two days, data and index: {keys:?}",
            b.name
        );
        assert!(
            keys.contains(&FileKey::data("2024-01-16", keys[2].id)),
            "{}",
            b.name
        );
        let store = Store::open(b.config(data.path())).unwrap();
        let got = messages(&store).unwrap();
        assert_eq!(got, expected(&[(0, 300)]), "{}", b.name);
        assert_eq!(store.stats().quarantined, 0, "{}", b.name);
    }
}

#[test]
fn merges_replace_their_inputs_and_retention_deletes_a_day_on_every_backend() {
    for b in Backend::all() {
        let data = tempfile::tempdir().unwrap();
        let mut config = b.config(data.path());
        config.merge_fanin = 3;
        let store = Store::open(config.clone()).unwrap();
        for i in 0..3 {
            store.append(batch(i * 10, 10, 0)).unwrap();
            store.flush().unwrap();
        }
        store.append(batch(100, 10, 1)).unwrap();
        store.flush().unwrap();
        let segments = b.segments(data.path());
        assert_eq!(segments.list().unwrap().len(), 8, "{}", b.name);
        assert!(
            store.merge().unwrap(),
            "{}: the three segments of a day merge",
            b.name
        );
        let keys = segments.list().unwrap();
        assert_eq!(
            keys.len(),
            4,
            "{}: the merged inputs are deleted: {keys:?}",
            b.name
        );
        assert_eq!(
            messages(&store).unwrap(),
            expected(&[(0, 30), (100, 10)]),
            "{}",
            b.name
        );
        store.close();
        drop(store);

        // Keep one day: the first is dropped, its files deleted.
        let clock_days = (chrono_now_s() - (T0 + DAY)) / DAY;
        config.retention_days = clock_days as u32;
        config.prune = true;
        let store = Store::open(config).unwrap();
        store.apply_retention().unwrap();
        let keys = segments.list().unwrap();
        assert!(
            keys.iter().all(|k| k.day == "2024-01-16") && keys.len() == 2,
            "{}: {keys:?}",
            b.name
        );
        assert_eq!(
            messages(&store).unwrap(),
            expected(&[(100, 10)]),
            "{}",
            b.name
        );
    }
}

fn chrono_now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_missing_catalog_is_rebuilt_from_the_listed_files_on_every_backend() {
    for b in Backend::all() {
        let data = tempfile::tempdir().unwrap();
        {
            let store = Store::open(b.config(data.path())).unwrap();
            store.append(batch(0, 120, 0)).unwrap();
            store.flush().unwrap();
            store.append(batch(500, 7, 2)).unwrap();
            store.flush().unwrap();
            store.close();
        }
        std::fs::remove_file(data.path().join("state/catalog.json")).unwrap();
        // An index without its data file is removed; a data file without its index keeps
        // its rows (the index is rebuilt).
        let segments = b.segments(data.path());
        let orphan = FileKey::index("2024-01-15", 999);
        segments.put(&orphan, Bytes::from_static(b"LYIDX")).unwrap();
        let day3 = segments
            .list()
            .unwrap()
            .into_iter()
            .find(|k| k.day == "2024-01-17" && k.kind == logyard_store::dir::FileKind::Index)
            .unwrap();
        segments.delete(&day3).unwrap();

        let store = Store::open(b.config(data.path())).unwrap();
        assert_eq!(
            messages(&store).unwrap(),
            expected(&[(0, 120), (500, 7)]),
            "{}",
            b.name
        );
        let keys = segments.list().unwrap();
        assert!(!keys.contains(&orphan), "{}: {keys:?}", b.name);
        assert!(keys.contains(&day3), "{}: the index is rebuilt", b.name);
    }
}

#[test]
fn a_damaged_data_file_goes_to_the_local_quarantine_on_every_backend() {
    for b in Backend::all() {
        let data = tempfile::tempdir().unwrap();
        {
            let store = Store::open(b.config(data.path())).unwrap();
            store.append(batch(0, 20, 0)).unwrap();
            store.append(batch(40, 20, 1)).unwrap();
            store.flush().unwrap();
            store.close();
        }
        let segments = b.segments(data.path());
        let damaged = segments
            .list()
            .unwrap()
            .into_iter()
            .find(|k| k.day == "2024-01-15" && k.kind == logyard_store::dir::FileKind::Data)
            .unwrap();
        // Cut in half: no Parquet footer, found at the next start.
        let mut bytes = segments.get(&damaged).unwrap().to_vec();
        bytes.truncate(bytes.len() / 2);
        segments.delete(&damaged).unwrap();
        segments.put(&damaged, Bytes::from(bytes)).unwrap();

        let store = Store::open(b.config(data.path())).unwrap();
        assert_eq!(
            messages(&store).unwrap(),
            expected(&[(40, 20)]),
            "{}",
            b.name
        );
        assert_eq!(store.stats().quarantined, 1, "{}", b.name);
        let kept = data
            .path()
            .join("quarantine")
            .join(format!("2024-01-15-{}", damaged.file_name()));
        assert!(kept.exists(), "{}: {}", b.name, kept.display());
        assert!(!segments.list().unwrap().contains(&damaged), "{}", b.name);
    }
}

#[test]
fn a_directory_that_refuses_writes_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let memory = MemoryDir::new();
    let b = Backend {
        name: "memory",
        storage: Storage::Dir(Arc::new(memory.clone())),
        dir: Some(Arc::new(memory.clone())),
        _moto: None,
    };
    let store = Store::open(b.config(data.path())).unwrap();
    store.append(batch(0, 30, 0)).unwrap();
    memory.fail(DirOp::Put, u64::MAX);
    assert!(
        store.flush().is_err(),
        "the flush fails while writes are refused"
    );
    // Acknowledged and still served, from the memtable.
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 30)]));
    store.append(batch(30, 5, 0)).unwrap();
    memory.heal();
    store.flush().unwrap();
    assert!(!memory.list().unwrap().is_empty());
    store.close();
    drop(store);
    let store = Store::open(b.config(data.path())).unwrap();
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 35)]));
    assert_eq!(
        store.stats().wal_replayed_records,
        0,
        "every row is in a segment"
    );
}

#[test]
fn reads_that_fail_are_errors_and_quarantine_nothing() {
    let data = tempfile::tempdir().unwrap();
    let memory = MemoryDir::new();
    let mut config = StoreConfig::new(data.path());
    config.flush_interval = Duration::from_secs(3600);
    config.retention_days = 0;
    config.block_rows = 10;
    config.cache_bytes = 0;
    config.storage = Storage::Dir(Arc::new(memory.clone()));
    {
        let store = Store::open(config.clone()).unwrap();
        store.append(batch(0, 40, 0)).unwrap();
        store.flush().unwrap();
        store.close();
    }
    // At start: the bucket out of reach stops the opening, it sends nothing to quarantine.
    memory.fail(DirOp::Get, u64::MAX);
    assert!(Store::open(config.clone()).is_err());
    memory.heal();
    let store = Store::open(config).unwrap();
    // While serving: a read fails, then succeeds once the bucket is back.
    memory.fail(DirOp::Get, u64::MAX);
    let snap = store.snapshot();
    let block = &snap.blocks[0];
    let error = block.records(&[0]).unwrap_err();
    snap.report_damaged(block, &error);
    memory.heal();
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 40)]));
    assert_eq!(store.stats().quarantined, 0);
    assert!(
        std::fs::read_dir(data.path().join("quarantine")).map_or(true, |mut d| d.next().is_none())
    );
}

#[test]
fn a_store_opened_with_its_segments_elsewhere_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let b = Backend::memory();
    {
        let store = Store::open(b.config(data.path())).unwrap();
        store.append(batch(0, 10, 0)).unwrap();
        store.flush().unwrap();
        store.close();
    }
    let error = Store::open(Backend::local().config(data.path()))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("its segments are in memory") && error.contains("[storage]"),
        "{error}"
    );
    // Nothing was changed by the refusal.
    let store = Store::open(b.config(data.path())).unwrap();
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 10)]));
}

#[test]
fn a_backup_of_a_bucket_store_restores_as_a_local_one() {
    let b = Backend::s3();
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(b.config(data.path())).unwrap();
    store.append(batch(0, 150, 0)).unwrap();
    store.flush().unwrap();
    store.append(batch(150, 5, 1)).unwrap();
    let copy = tempfile::tempdir().unwrap();
    let to = copy.path().join("backup");
    store.backup(&to).unwrap();
    let restored = copy.path().join("restored");
    logyard_store::backup::restore(&to, &restored).unwrap();
    let local = Store::open(Backend::local().config(&restored)).unwrap();
    assert_eq!(messages(&local).unwrap(), expected(&[(0, 155)]));
}

#[test]
fn a_snapshot_reads_the_segments_a_merge_replaced_until_it_ends() {
    for b in Backend::all() {
        let data = tempfile::tempdir().unwrap();
        let mut config = b.config(data.path());
        config.merge_fanin = 2;
        config.cache_bytes = 0;
        let store = Store::open(config).unwrap();
        for i in 0..2 {
            store.append(batch(i * 10, 10, 0)).unwrap();
            store.flush().unwrap();
        }
        let held = store.snapshot();
        assert!(store.merge().unwrap(), "{}", b.name);
        // The replaced segments' files serve the snapshot taken before the merge.
        let mut read = 0;
        for block in &held.blocks {
            let rows: Vec<usize> = (0..block.rows()).collect();
            read += block.records(&rows).unwrap().len();
        }
        assert_eq!(read, 20, "{}", b.name);
        drop(held);
        assert!(!store.merge().unwrap());
        let keys = b.segments(data.path()).list().unwrap();
        assert_eq!(
            keys.len(),
            2,
            "{}: only the merged segment is left: {keys:?}",
            b.name
        );
        assert_eq!(
            messages(&store).unwrap(),
            expected(&[(0, 20)]),
            "{}",
            b.name
        );
    }
}
