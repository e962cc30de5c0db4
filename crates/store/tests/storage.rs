//! The store over each place its segment files may live: the local folder, an S3 bucket
//! (a real S3 API server, `moto_server`, on 127.0.0.1) and memory. Every scenario runs on
//! each; the memory directory also fails on purpose (a bucket that refuses writes or reads).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logyard_model::{Level, Record};
use logyard_store::dir::DirOp;
use logyard_store::{
    CacheLimits, FileKey, LocalDir, MemoryDir, S3Config, S3Dir, SegmentDir, Storage, Store,
    StoreConfig, StoreError,
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
    /// The bucket (or the directory given alone), when segments go anywhere but `parts/`.
    remote: Option<Arc<dyn SegmentDir>>,
    _moto: Option<Moto>,
}

impl Backend {
    fn local() -> Backend {
        Backend {
            name: "local",
            storage: Storage::Local,
            remote: None,
            _moto: None,
        }
    }

    /// A memory directory alone (no local tier).
    fn memory() -> Backend {
        let dir = MemoryDir::new();
        Backend {
            name: "memory",
            storage: Storage::Dir(Arc::new(dir.clone())),
            remote: Some(Arc::new(dir)),
            _moto: None,
        }
    }

    /// A memory directory as the bucket behind `parts/`, which keeps every local copy.
    fn tiered(bucket: &MemoryDir) -> Backend {
        Backend {
            name: "tiered",
            storage: Storage::Tiered(Arc::new(bucket.clone()), CacheLimits::default()),
            remote: Some(Arc::new(bucket.clone())),
            _moto: None,
        }
    }

    /// A real S3 API (moto) behind `parts/`, with no local cache: uploaded files leave the
    /// disk, and reads go to the bucket.
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
            ..S3Config::default()
        };
        let dir = S3Dir::open(&config).unwrap();
        let no_cache = CacheLimits { bytes: 0, days: 0 };
        Backend {
            name: "s3",
            storage: Storage::S3(config, no_cache),
            remote: Some(Arc::new(dir)),
            _moto: Some(moto),
        }
    }

    fn all() -> Vec<Backend> {
        vec![
            Backend::local(),
            Backend::memory(),
            Backend::tiered(&MemoryDir::new()),
            Backend::s3(),
        ]
    }

    fn config(&self, data_dir: &Path) -> StoreConfig {
        let mut c = StoreConfig::new(data_dir);
        c.flush_interval = Duration::from_secs(3600);
        c.retention_days = 0;
        c.block_rows = 100;
        c.storage = self.storage.clone();
        c
    }

    /// The segment files as the store sees them: in `parts/` and in the bucket.
    fn segments(&self, data_dir: &Path) -> Files {
        Files {
            local: LocalDir::new(data_dir.join("parts")).unwrap(),
            remote: self.remote.clone(),
        }
    }
}

/// The segment files of both tiers.
struct Files {
    local: LocalDir,
    remote: Option<Arc<dyn SegmentDir>>,
}

impl Files {
    /// Every file, in either tier.
    fn list(&self) -> std::io::Result<Vec<FileKey>> {
        let mut keys = self.local.list()?;
        if let Some(remote) = &self.remote {
            keys.extend(remote.list()?);
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// A file's bytes, from the local disk when it is there.
    fn get(&self, key: &FileKey) -> std::io::Result<Bytes> {
        match (self.local.get(key), &self.remote) {
            (Err(e), Some(remote)) if e.kind() == std::io::ErrorKind::NotFound => remote.get(key),
            (local, _) => local,
        }
    }

    /// Replaces a file wherever it is; a new one goes to the bucket when there is one.
    fn put(&self, key: &FileKey, bytes: Bytes) -> std::io::Result<()> {
        let here = self.local.get(key).is_ok();
        match &self.remote {
            Some(remote) if !here || remote.get(key).is_ok() => remote.put(key, bytes.clone())?,
            _ => {}
        }
        if here || self.remote.is_none() {
            self.local.put(key, bytes)?;
        }
        Ok(())
    }

    /// Deletes a file from both tiers.
    fn delete(&self, key: &FileKey) -> std::io::Result<()> {
        self.local.delete(key)?;
        match &self.remote {
            Some(remote) => remote.delete(key),
            None => Ok(()),
        }
    }
}

/// Waits until the store has uploaded every segment file it wrote (at once without a
/// bucket).
fn settle(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.stats().uploads.is_some_and(|u| u.pending_files > 0) {
        assert!(
            Instant::now() < deadline,
            "uploads did not finish: {:?}",
            store.stats().uploads
        );
        std::thread::sleep(Duration::from_millis(20));
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
        settle(&store);
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
        settle(&store);
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
        remote: Some(Arc::new(memory.clone())),
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

#[test]
fn ingest_goes_on_while_the_bucket_refuses_writes_and_uploads_each_file_once_it_is_back() {
    let data = tempfile::tempdir().unwrap();
    let bucket = MemoryDir::new();
    let b = Backend::tiered(&bucket);
    let store = Store::open(b.config(data.path())).unwrap();
    bucket.fail(DirOp::Put, u64::MAX);
    for i in 0..3 {
        store.append(batch(i * 10, 10, 0)).unwrap();
        // Written to the local disk: the flush does not wait for the bucket.
        store.flush().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.stats().uploads.unwrap().errors == 0 {
        assert!(Instant::now() < deadline, "no upload was tried");
        std::thread::sleep(Duration::from_millis(20));
    }
    let uploads = store.stats().uploads.unwrap();
    assert_eq!(uploads.pending_files, 6, "{uploads:?}");
    let parts = LocalDir::new(data.path().join("parts")).unwrap();
    let written: Vec<(FileKey, Bytes)> = parts
        .list()
        .unwrap()
        .into_iter()
        .map(|k| {
            let bytes = parts.get(&k).unwrap();
            (k, bytes)
        })
        .collect();
    assert_eq!(written.len(), 6);
    assert!(bucket.list().unwrap().is_empty());
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 30)]));

    bucket.heal();
    settle(&store);
    assert_eq!(bucket.list().unwrap().len(), 6, "each file once");
    assert_eq!(store.stats().uploads.unwrap().uploaded_files, 6);
    for (key, bytes) in &written {
        assert_eq!(&bucket.get(key).unwrap(), bytes, "{key}");
    }
    store.close();
    drop(store);
    let store = Store::open(b.config(data.path())).unwrap();
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 30)]));
    assert_eq!(
        store.stats().wal_replayed_records,
        0,
        "every row was in a segment"
    );
}

#[test]
fn files_left_to_upload_at_a_stop_are_uploaded_at_the_next_start() {
    let data = tempfile::tempdir().unwrap();
    let bucket = MemoryDir::new();
    let b = Backend::tiered(&bucket);
    {
        let store = Store::open(b.config(data.path())).unwrap();
        bucket.fail(DirOp::Put, u64::MAX);
        store.append(batch(0, 40, 0)).unwrap();
        store.flush().unwrap();
        store.close();
    }
    assert!(bucket.list().unwrap().is_empty());
    bucket.heal();
    let store = Store::open(b.config(data.path())).unwrap();
    settle(&store);
    assert_eq!(bucket.list().unwrap().len(), 2);
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 40)]));
    drop(store);

    // A new disk over the same bucket: refused while the bucket names the first store; once
    // the claim is removed, everything is read from the bucket.
    let fresh = tempfile::tempdir().unwrap();
    let refused = Store::open(b.config(fresh.path())).unwrap_err().to_string();
    assert!(
        refused.contains("holds the segments of another store") && refused.contains("_owner.json"),
        "{refused}"
    );
    // The refusal wrote nothing anywhere.
    assert_eq!(bucket.list().unwrap().len(), 2);
    bucket.release();
    let store = Store::open(b.config(fresh.path())).unwrap();
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 40)]));
}

#[test]
fn the_local_cache_keeps_what_its_limits_allow_and_never_a_file_not_yet_uploaded() {
    let data = tempfile::tempdir().unwrap();
    let bucket = MemoryDir::new();
    let mut b = Backend::tiered(&bucket);
    // Room for about one segment; days before yesterday leave the disk whatever the room.
    b.storage = Storage::Tiered(
        Arc::new(bucket.clone()),
        CacheLimits {
            bytes: 6_000,
            days: 1,
        },
    );
    let mut config = b.config(data.path());
    config.merge_fanin = 100;
    let store = Store::open(config).unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Today's, whatever the hour (a few seconds after midnight, UTC).
    let midnight = now_s - now_s % DAY;
    let today = |i: usize| {
        let mut r = rec(midnight + 10 + i as i64 % 50, &format!("m{i:05}"));
        r.host = format!("host-{i}");
        r
    };
    bucket.fail(DirOp::Put, u64::MAX);
    for round in 0..4 {
        store
            .append((round * 100..round * 100 + 100).map(today).collect())
            .unwrap();
        store.flush().unwrap();
    }
    store.append(batch(0, 50, 0)).unwrap();
    store.flush().unwrap();
    let local = || {
        LocalDir::new(data.path().join("parts"))
            .unwrap()
            .list()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(local().len(), 10, "nothing uploaded: every file stays");

    bucket.heal();
    settle(&store);
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.stats().uploads.unwrap().evicted_files == 0 {
        assert!(Instant::now() < deadline, "nothing evicted");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let kept = local();
    assert!(
        kept.iter().all(|k| k.day != "2024-01-15"),
        "the old day left the disk: {kept:?}"
    );
    let kept_bytes: u64 = kept
        .iter()
        .map(|k| {
            std::fs::metadata(data.path().join("parts").join(&k.day).join(k.file_name()))
                .unwrap()
                .len()
        })
        .sum();
    assert!(kept_bytes <= 6_000, "{kept_bytes} bytes kept: {kept:?}");
    assert!(kept.len() < 8, "{kept:?}");
    assert_eq!(bucket.list().unwrap().len(), 10);
    let mut all: Vec<String> = (0..400).map(|i| format!("m{i:05}")).collect();
    all.extend(expected(&[(0, 50)]));
    all.sort();
    let mut got = messages(&store).unwrap();
    got.sort();
    assert_eq!(got, all, "every row is read, from the disk or the bucket");
}

#[test]
fn a_bucket_prefix_holds_the_segments_of_one_store_only() {
    let b = Backend::s3();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let store = Store::open(b.config(first.path())).unwrap();
    store.append(batch(0, 10, 0)).unwrap();
    store.flush().unwrap();
    let refused = Store::open(b.config(second.path()))
        .unwrap_err()
        .to_string();
    let node = std::fs::read_to_string(first.path().join("state/node-id")).unwrap();
    assert!(
        refused.contains("s3://logs/prod/eu holds the segments of another store")
            && refused.contains(node.trim())
            && refused.contains(&first.path().display().to_string()),
        "{refused}"
    );
    store.close();
    drop(store);
    // The same data directory opens again: the claim is its own.
    let store = Store::open(b.config(first.path())).unwrap();
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 10)]));
}

#[test]
fn every_column_read_from_a_bucket_is_kept_for_the_next_read() {
    use logyard_store::schema::col;
    use logyard_store::Columns;
    for (b, remote) in [(Backend::local(), false), (Backend::memory(), true)] {
        let data = tempfile::tempdir().unwrap();
        let store = Store::open(b.config(data.path())).unwrap();
        store.append(batch(0, 250, 0)).unwrap();
        store.flush().unwrap();
        let times = Columns::of(&[col::TIMESTAMP]);
        let read = |store: &Store| {
            let snap = store.snapshot();
            for block in &snap.blocks {
                assert_eq!(block.read(times).unwrap().num_rows(), block.rows());
            }
        };
        read(&store);
        let before = store.stats().cache;
        read(&store);
        let after = store.stats().cache;
        let hits = after.hits - before.hits;
        // Three blocks of 100 rows at most: each a hit the second time only from a bucket.
        assert_eq!(hits, if remote { 3 } else { 0 }, "{}: {after:?}", b.name);
    }
}

#[test]
fn a_read_of_a_segment_in_the_bucket_fetches_only_what_it_needs() {
    use logyard_store::schema::col;
    use logyard_store::Columns;
    let bucket = MemoryDir::new();
    let data = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(data.path());
    config.flush_interval = Duration::from_secs(3600);
    config.retention_days = 0;
    config.block_rows = 100;
    config.cache_bytes = 0;
    config.storage = Storage::Tiered(Arc::new(bucket.clone()), CacheLimits { bytes: 0, days: 0 });
    {
        let store = Store::open(config.clone()).unwrap();
        // Long messages that do not compress, so that the text columns are most of the file.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let records: Vec<Record> = (0..1000)
            .map(|i| {
                let text: String = (0..300)
                    .map(|_| {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        char::from(b'a' + (x >> 59) as u8 % 26)
                    })
                    .collect();
                rec(T0 + i, &format!("m{i:05} {text}"))
            })
            .collect();
        store.append(records).unwrap();
        store.flush().unwrap();
        settle(&store);
        store.close();
    }
    // Started again with no local copy: the segment is opened from the bucket.
    let store = Store::open(config).unwrap();
    let snap = store.snapshot();
    let meta = snap.blocks[0].segment().expect("a segment block").clone();
    let whole = bucket.get(&meta.data_key()).unwrap().len() as u64;
    let before = store.stats().uploads.unwrap().downloaded_bytes;
    let times = Columns::of(&[col::TIMESTAMP]);
    assert_eq!(snap.blocks[0].read(times).unwrap().num_rows(), 100);
    let fetched = store.stats().uploads.unwrap().downloaded_bytes - before;
    assert!(
        fetched > 0 && fetched * 10 < whole,
        "one column of one block fetched {fetched} bytes of a {whole}-byte file"
    );
}

#[test]
fn with_a_bucket_max_disk_bytes_bounds_the_local_disk_and_drops_no_day() {
    let data = tempfile::tempdir().unwrap();
    let bucket = MemoryDir::new();
    let b = Backend::tiered(&bucket);
    let mut config = b.config(data.path());
    config.max_disk_bytes = 8_000;
    let store = Store::open(config).unwrap();
    // Three days in the bucket, more than the budget: retention keeps them all.
    for day in 0..3 {
        store.append(batch(0, 300, day)).unwrap();
        store.flush().unwrap();
    }
    settle(&store);
    let in_bucket: u64 = store.stats().segment_bytes;
    assert!(in_bucket > 8_000, "{in_bucket}");
    store.apply_retention().unwrap();
    assert_eq!(store.stats().retention_dropped_days, 0);
    assert_eq!(messages(&store).unwrap().len(), 900);

    // The bucket refuses writes: segment files wait on the local disk until the budget is
    // held, and then writes are refused, saying why.
    bucket.fail(DirOp::Put, u64::MAX);
    let mut accepted = 0;
    let refusal = loop {
        match store.append(batch(1000 + accepted, 100, 3)) {
            Ok(_) => accepted += 100,
            Err(e) => break e,
        }
        store.flush().unwrap();
        assert!(accepted < 100_000, "never refused");
    };
    assert!(accepted > 0);
    assert!(matches!(refusal, StoreError::WriteFailed(_)), "{refusal:?}");
    let text = refusal.to_string();
    assert!(
        text.contains("max_disk_bytes") && text.contains("wait for their upload"),
        "{text}"
    );
    let waiting = store.stats().uploads.unwrap().pending_bytes;
    assert!(waiting > 0 && waiting <= 8_000 + 10_000, "{waiting}");
    // Nothing acknowledged is dropped to make room.
    store.apply_retention().unwrap();
    assert_eq!(messages(&store).unwrap().len(), 900 + accepted);

    // The bucket back, the waiting files go up and writes are taken again.
    bucket.heal();
    settle(&store);
    store.append(batch(5000, 10, 3)).unwrap();
    assert_eq!(messages(&store).unwrap().len(), 900 + accepted + 10);
}

/// Messages of a query node's store once its node's manifest lists `want` rows, polled:
/// every answer on the way holds each row once at most.
fn followed_until(query: &Store, want: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        query.refresh_followed();
        let got = messages(query).unwrap();
        let mut unique = got.clone();
        unique.dedup();
        assert_eq!(unique, got, "a row counted twice");
        if got == want {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "served {} of {}",
            got.len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A bucket on moto, and the `[storage]` of nodes sharing its prefix `cluster` (the ingest
/// node's id `ingest-1`, manifests read every 100 ms).
fn cluster() -> (Moto, logyard_store::StorageSettings) {
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let moto = Moto::start();
    moto.create_bucket("logs");
    let settings: logyard_store::StorageSettings = toml::from_str(&format!(
        "type = \"s3\"\nbucket = \"logs\"\nprefix = \"cluster\"\nendpoint = \"{}\"\n\
         region = \"us-east-1\"\nrefresh_interval = \"100ms\"\nnode = \"ingest-1\"\n",
        moto.endpoint
    ))
    .unwrap();
    (moto, settings)
}

/// The configuration of the ingest node of `settings` in `data`, which flushes only when
/// asked: its memtable holds what is appended after a flush.
fn ingest_config(settings: &logyard_store::StorageSettings, data: &Path) -> StoreConfig {
    let mut config = StoreConfig::new(data);
    config.retention_days = 0;
    config.flush_interval = Duration::from_secs(3600);
    settings
        .apply(&mut config, logyard_store::NodeRole::Ingest)
        .unwrap();
    config
}

#[test]
fn a_query_node_follows_its_nodes_merges_without_counting_a_row_twice() {
    use logyard_store::NodeRole;
    let (moto, settings) = cluster();
    let data = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(data.path());
    config.retention_days = 0;
    config.flush_interval = Duration::from_millis(100);
    config.merge_fanin = 3;
    settings.apply(&mut config, NodeRole::Ingest).unwrap();
    let store = Store::open(config).unwrap();
    let query_data = tempfile::tempdir().unwrap();
    let mut query_config = StoreConfig::new(query_data.path());
    settings.apply(&mut query_config, NodeRole::Query).unwrap();
    let query = Store::open(query_config).unwrap();
    assert!(matches!(
        query.append(batch(0, 1, 0)),
        Err(StoreError::ReadOnly)
    ));

    for round in 0..2 {
        store.append(batch(round * 10, 10, 0)).unwrap();
        store.flush().unwrap();
    }
    followed_until(&query, &expected(&[(0, 20)]));
    // A third segment: the day's three are merged into one, which replaces them in the
    // manifest; their files stay a while for readers, then go.
    store.append(batch(20, 10, 0)).unwrap();
    store.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.stats().segments > 1 {
        store.merge().unwrap();
        assert!(Instant::now() < deadline, "no merge");
        std::thread::sleep(Duration::from_millis(50));
    }
    let parquet = |moto: &Moto| {
        moto.keys("logs", "cluster/node=ingest-1/")
            .into_iter()
            .filter(|k| k.ends_with(".parquet"))
            .count()
    };
    followed_until(&query, &expected(&[(0, 30)]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        query.refresh_followed();
        let nodes = query.nodes().unwrap();
        if nodes[0].segments == 1 && parquet(&moto) == 1 {
            break;
        }
        assert_eq!(messages(&query).unwrap(), expected(&[(0, 30)]));
        assert!(
            Instant::now() < deadline,
            "{nodes:?}: {} files",
            parquet(&moto)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(query.nodes().unwrap()[0].node, "ingest-1");
    assert_eq!(query.nodes().unwrap()[0].error, None);
}

/// A node link to one store in this process, cut and restored at will.
#[derive(Debug)]
struct InProcessLink {
    node: std::sync::Mutex<Option<Arc<Store>>>,
}

impl logyard_store::NodeLink for InProcessLink {
    fn recent(
        &self,
        address: &str,
        known: &[u64],
        since: u64,
        max_bytes: u64,
    ) -> Result<Vec<u8>, String> {
        match &*self.node.lock().unwrap() {
            Some(store) => match store.recent(known, since, max_bytes) {
                Ok(Some(recent)) => Ok(recent.encode()),
                Ok(None) => Err("not a node of a bucket".to_string()),
                Err(e) => Err(e.to_string()),
            },
            None => Err(format!("connection refused by {address}")),
        }
    }
}

#[test]
fn a_node_out_of_reach_is_named_as_a_gap_until_it_answers_or_stops_cleanly() {
    use logyard_store::NodeRole;
    let (moto, settings) = cluster();
    let data = tempfile::tempdir().unwrap();
    let config = ingest_config(&settings, data.path());
    let store = Arc::new(Store::open(config.clone()).unwrap());
    store.set_address(Some("http://ingest-1.test".to_string()));
    store.append(batch(0, 10, 0)).unwrap();
    store.flush().unwrap();
    store.append(batch(10, 5, 0)).unwrap();
    settle(&store);

    let link = Arc::new(InProcessLink {
        node: std::sync::Mutex::new(None),
    });
    let query_data = tempfile::tempdir().unwrap();
    let mut query_config = StoreConfig::new(query_data.path());
    settings.apply(&mut query_config, NodeRole::Query).unwrap();
    query_config.follow.as_mut().unwrap().link = Some(link.clone());
    let query = Store::open(query_config).unwrap();

    // The node does not answer: its uploaded segment is served, and the rest is a gap.
    followed_until(&query, &expected(&[(0, 10)]));
    let gaps = query.snapshot().gaps().to_vec();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].name, "node=ingest-1: entries not in the bucket yet");
    assert!(
        gaps[0]
            .reason
            .contains("connection refused by http://ingest-1.test"),
        "{gaps:?}"
    );

    // It answers: its memtable is served and nothing is missing.
    *link.node.lock().unwrap() = Some(store.clone());
    followed_until(&query, &expected(&[(0, 15)]));
    assert_eq!(query.snapshot().gaps(), &[]);

    // It stops cleanly: its last manifest lists every entry, so its silence costs nothing.
    *link.node.lock().unwrap() = None;
    let store = Arc::into_inner(store).expect("the only handle");
    store.close();
    drop(store);
    let manifest = || {
        let text = moto.object("logs", "cluster/node=ingest-1/manifest.json");
        logyard_store::NodeManifest::parse(text.as_bytes()).unwrap()
    };
    assert!(manifest().whole, "the last manifest of a clean stop");
    followed_until(&query, &expected(&[(0, 15)]));
    assert_eq!(query.snapshot().gaps(), &[]);

    // Started again, it is no longer whole before it takes its first entry.
    let store = Store::open(config).unwrap();
    assert!(!manifest().whole, "published at open");
    let deadline = Instant::now() + Duration::from_secs(60);
    while query.snapshot().gaps().is_empty() {
        query.refresh_followed();
        assert!(Instant::now() < deadline, "no gap once the node runs again");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(store);
}

#[test]
fn a_query_node_serves_a_followed_segment_whose_index_is_gone_from_the_bucket() {
    use logyard_store::NodeRole;
    let (moto, settings) = cluster();
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(ingest_config(&settings, data.path())).unwrap();
    store.append(batch(0, 40, 0)).unwrap();
    store.flush().unwrap();
    settle(&store);
    store.close();
    let keys = moto.keys("logs", "cluster/node=ingest-1/");
    let index = keys
        .iter()
        .find(|k| k.ends_with(".idx"))
        .unwrap_or_else(|| panic!("{keys:?}"));
    moto.delete("logs", index);

    // The query node cannot write the index back: it rebuilds it in memory and serves the
    // segment (before, its open failed at every refresh, each reading the whole data file).
    let query_data = tempfile::tempdir().unwrap();
    let mut query_config = StoreConfig::new(query_data.path());
    settings.apply(&mut query_config, NodeRole::Query).unwrap();
    let query = Store::open(query_config).unwrap();
    followed_until(&query, &expected(&[(0, 40)]));
    let status = query.nodes().unwrap_or_default();
    assert_eq!(status[0].error, None, "{status:?}");
    assert!(
        !moto.keys("logs", "cluster/").iter().any(|k| k == index),
        "nothing written by the query node"
    );
}

#[test]
fn a_query_node_holds_no_more_of_a_nodes_rows_not_in_the_bucket_than_it_is_allowed() {
    use logyard_store::{NodeRole, RECENT_MAX_BYTES};
    let (mut moto, settings) = cluster();
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(ingest_config(&settings, data.path())).unwrap());
    store.set_address(Some("http://ingest-1.test".to_string()));
    let link = Arc::new(InProcessLink {
        node: std::sync::Mutex::new(Some(store.clone())),
    });
    let query_node = |max_bytes: u64| {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        settings.apply(&mut config, NodeRole::Query).unwrap();
        let follow = config.follow.as_mut().unwrap();
        follow.link = Some(link.clone());
        follow.recent_max_bytes = max_bytes;
        (dir, Store::open(config).unwrap())
    };
    let (_roomy_dir, roomy) = query_node(RECENT_MAX_BYTES);
    let (_tight_dir, tight) = query_node(0);
    store.append(batch(0, 5, 0)).unwrap();
    followed_until(&roomy, &expected(&[(0, 5)]));
    followed_until(&tight, &expected(&[(0, 5)]));

    // The bucket out of reach: two segments wait on the node's disk for their upload.
    moto.stop();
    store.append(batch(5, 10, 0)).unwrap();
    store.flush().unwrap();
    store.append(batch(15, 20, 0)).unwrap();
    store.flush().unwrap();
    store.append(batch(35, 3, 0)).unwrap();
    let cut = |max_bytes| store.recent(&[], 0, max_bytes).unwrap().unwrap();
    let all = cut(u64::MAX);
    assert_eq!(all.header.unshared_ids.len(), 2, "{:?}", all.header);
    let rows: Vec<usize> = all.unshared.iter().map(|(_, rows)| rows.len()).collect();
    assert_eq!(rows, [15, 20]);
    assert_eq!(all.mem.len(), 3);
    let none = cut(0);
    assert_eq!(none.header.unshared_ids, all.header.unshared_ids);
    assert!(none.unshared.is_empty(), "no room: no segment's rows");
    assert_eq!(none.mem.len(), 3, "the memtable's rows are always sent");

    // Room for them: every entry served, nothing missing.
    followed_until(&roomy, &expected(&[(0, 38)]));
    assert_eq!(roomy.snapshot().gaps(), &[]);
    // No room: the memtable's rows are served, and the segments' rows are named as missing.
    followed_until(&tight, &expected(&[(35, 3)]));
    let gaps = tight.snapshot().gaps().to_vec();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].name, "node=ingest-1: entries not in the bucket yet");
    assert!(
        gaps[0].reason.contains("2 of its segments")
            && gaps[0].reason.contains("[storage] recent_max_bytes"),
        "{gaps:?}"
    );
    let status = tight.nodes().unwrap_or_default();
    assert!(status[0].linked, "{status:?}");
    assert_eq!(status[0].recent_rows, 3, "{status:?}");
}

#[test]
fn ranges_read_from_the_bucket_are_read_from_the_local_disk_after_a_restart() {
    use logyard_store::schema::col;
    use logyard_store::{Columns, RangeCache, RANGE_CACHE};
    let bucket = MemoryDir::new();
    let data = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(data.path());
    config.flush_interval = Duration::from_secs(3600);
    config.retention_days = 0;
    config.block_rows = 1000;
    config.cache_bytes = 0;
    // Uploaded files of days before yesterday leave parts/: every read goes to the bucket,
    // or to the ranges kept of it.
    let limits = CacheLimits {
        bytes: 1 << 30,
        days: 1,
    };
    config.storage = Storage::Tiered(Arc::new(bucket.clone()), limits);
    {
        let store = Store::open(config.clone()).unwrap();
        store.append(batch(0, 100_000, 0)).unwrap();
        store.flush().unwrap();
        settle(&store);
    }
    let columns = Columns::of(&[col::TIMESTAMP, col::MESSAGE]);
    let read_all = |store: &Store| -> usize {
        store
            .snapshot()
            .blocks
            .iter()
            .map(|b| b.read(columns).unwrap().num_rows())
            .sum()
    };
    let first = {
        let store = Store::open(config.clone()).unwrap();
        assert_eq!(read_all(&store), 100_000);
        store.stats()
    };
    let file = bucket
        .list()
        .unwrap()
        .into_iter()
        .find(|k| k.kind == logyard_store::dir::FileKind::Data)
        .unwrap();
    let whole = bucket.get(&file).unwrap().len() as u64;
    assert!(
        whole > RangeCache::CHUNK,
        "{whole} bytes: more than one chunk"
    );
    // Every chunk read is on the disk (some maybe since the first store's own reads).
    let ranges = first.range_cache.unwrap();
    assert!(ranges.bytes >= whole, "{first:?}");
    assert!(data.path().join(RANGE_CACHE).is_dir());

    // Started again: the same reads come from the local disk.
    let store = Store::open(config).unwrap();
    assert_eq!(read_all(&store), 100_000);
    let again = store.stats();
    let ranges = again.range_cache.unwrap();
    assert_eq!(ranges.misses, 0, "nothing fetched again: {again:?}");
    assert!(ranges.hits > 1, "{again:?}");
    let indexes: u64 = bucket
        .list()
        .unwrap()
        .into_iter()
        .filter(|k| k.kind == logyard_store::dir::FileKind::Index)
        .map(|k| bucket.get(&k).unwrap().len() as u64)
        .sum();
    assert_eq!(
        again.uploads.as_ref().unwrap().downloaded_bytes,
        indexes,
        "only the indexes are read from the bucket again: {again:?}"
    );
    assert_eq!(messages(&store).unwrap(), expected(&[(0, 100_000)]));
}
