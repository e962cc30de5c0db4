//! The embedded log store of logyard: a WAL, a memtable and immutable Parquet segments.
//!
//! Write path: [`Store::submit`] hands a batch to the writer thread, which gives its records
//! sequence numbers, appends it to the WAL with the other batches waiting (group commit),
//! fsyncs, adds it to the memtable (queryable at once) and only then acknowledges it. A
//! flusher thread turns the memtable into segments every `flush_interval` or `flush_bytes`,
//! records them in the catalog, and only then removes the WAL files they came from. The same
//! thread merges small segments of a day and applies retention.
//!
//! Read path: [`Store::snapshot`] returns the blocks (segment row groups and memtable batches)
//! visible at that instant; each can be skipped by time or token filter and read by column.
//!
//! On [`Store::open`] the catalog is loaded (or rebuilt from the segment files when it is
//! missing or damaged), segments are opened (a damaged index is rebuilt from its data file,
//! a damaged data file is moved to `quarantine/`), segment files the catalog does not list
//! are removed only when other segments hold all their rows and kept otherwise, and the WAL
//! is replayed, skipping what is already in segments: nothing acknowledged is lost and
//! nothing is stored twice. Files are only ever deleted by retention, by a merge replacing
//! its inputs, or as provably redundant.
//!
//! ```no_run
//! use logyard_model::Record;
//! use logyard_store::{Store, StoreConfig};
//!
//! let store = Store::open(StoreConfig::new("./logyard-data")).unwrap();
//! store.append(vec![Record::new(0, "hello")]).unwrap();
//! let snapshot = store.snapshot();
//! assert!(snapshot.blocks.iter().map(|b| b.rows()).sum::<usize>() >= 1);
//! ```

pub mod backup;
mod cache;
mod catalog;
pub mod codec;
mod error;
pub mod fileops;
mod fsutil;
mod memtable;
mod pread;
mod recover;
mod schema;
pub mod segment;
pub mod wal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use logyard_model::Record;
use tokio::sync::{broadcast, oneshot};

pub use backup::{BackupReport, Manifest};
pub use cache::{CacheStats, ColumnCache};
pub use catalog::Catalog;
pub use error::StoreError;
pub use fsutil::DirLock;
pub use memtable::MemBatch;
pub use segment::{BlockCounts, Columns, Segment, SegmentCounts, SegmentMeta};
pub use wal::ReplayReport;

use wal::Wal;

/// When the WAL is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Once per group of batches written together (group commit); the default.
    Batch,
    /// Once per batch, never grouping.
    Always,
    /// Never: acknowledged batches can be lost on a machine crash (not on a process crash).
    Never,
}

/// The store's settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Where everything lives.
    pub data_dir: PathBuf,
    /// Days to keep; 0 keeps data forever. Entries older than the oldest day kept are
    /// refused at append ([`Store::refuse_expired`]) in every process; whole days are
    /// deleted only where [`StoreConfig::prune`] is set.
    pub retention_days: u32,
    /// Whether this process deletes by `retention_days` and `max_disk_bytes`. Only the
    /// server sets it: a command that opens a data directory to read it (or to add to it)
    /// never changes what it keeps. Off by default.
    pub prune: bool,
    /// Drop the oldest days while the store is bigger than this; 0 means no limit.
    pub max_disk_bytes: u64,
    /// When the WAL is fsynced.
    pub fsync: FsyncPolicy,
    /// The memtable is written to segments at least this often.
    pub flush_interval: Duration,
    /// ... or as soon as it holds this many bytes.
    pub flush_bytes: usize,
    /// Writers wait while the memtable, flushing included, holds more than this.
    pub max_memtable_bytes: usize,
    /// Rows per block (Parquet row group), the unit of skipping.
    pub block_rows: usize,
    /// The zstd level of segment files, 1 (fastest) to 22 (smallest).
    pub compression_level: i32,
    /// A day's small segments are merged once there are this many.
    pub merge_fanin: usize,
    /// Segments with fewer rows than this are small.
    pub merge_small_rows: u64,
    /// One merge reads at most this many rows (it holds them in memory).
    pub merge_max_rows: u64,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Most bytes of decoded text columns kept for the next search ([`ColumnCache`]); 0
    /// keeps none.
    pub cache_bytes: u64,
}

impl StoreConfig {
    /// Returns the default settings for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            retention_days: 7,
            prune: false,
            max_disk_bytes: 0,
            fsync: FsyncPolicy::Batch,
            flush_interval: Duration::from_secs(1),
            flush_bytes: 16 << 20,
            max_memtable_bytes: 512 << 20,
            block_rows: 8 * 1024,
            compression_level: 3,
            merge_fanin: 8,
            merge_small_rows: 64 * 1024,
            merge_max_rows: 128 * 1024,
            retention_interval: Duration::from_secs(60),
            cache_bytes: 256 << 20,
        }
    }
}

/// What an append was given: the sequence numbers of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    /// Sequence number of the first record.
    pub first_seq: u64,
    /// Number of records.
    pub count: usize,
}

/// Counters and gauges of the store, for `/metrics` and `/api/stats`.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Bytes in WAL files.
    pub wal_bytes: u64,
    /// Live segments.
    pub segments: u64,
    /// Bytes of live segments.
    pub segment_bytes: u64,
    /// Rows in live segments.
    pub segment_rows: u64,
    /// Rows in the memtable.
    pub memtable_rows: u64,
    /// Bytes held by the memtable.
    pub memtable_bytes: u64,
    /// Records acknowledged since start.
    pub appended_records: u64,
    /// Batches (WAL frames) acknowledged since start.
    pub appended_batches: u64,
    /// Memtable flushes since start.
    pub flushes: u64,
    /// Segment merges since start.
    pub merges: u64,
    /// Segments moved to quarantine since start.
    pub quarantined: u64,
    /// Damaged WAL frames found by replay at start.
    pub wal_damaged_frames: u64,
    /// Records recovered from the WAL at start.
    pub wal_replayed_records: u64,
    /// Days dropped by retention since start.
    pub retention_dropped_days: u64,
    /// Entries refused since start because retention would not keep them.
    pub refused_expired: u64,
    /// Earliest timestamp stored, if any.
    pub oldest_ts: Option<i64>,
    /// Latest timestamp stored, if any.
    pub newest_ts: Option<i64>,
    /// The cache of decoded text columns (zero when it is off).
    pub cache: CacheStats,
}

#[derive(Default)]
struct Counters {
    appended_records: AtomicU64,
    appended_batches: AtomicU64,
    flushes: AtomicU64,
    merges: AtomicU64,
    quarantined: AtomicU64,
    wal_damaged_frames: AtomicU64,
    wal_replayed_records: AtomicU64,
    retention_dropped_days: AtomicU64,
    refused_expired: AtomicU64,
    wal_bytes: AtomicU64,
}

struct Frozen {
    batches: Vec<Arc<MemBatch>>,
    wal_upto: u64,
}

#[derive(Default)]
struct View {
    active: Vec<Arc<MemBatch>>,
    active_bytes: usize,
    frozen: Vec<Frozen>,
    segments: Vec<Arc<Segment>>,
    /// Time ranges and rows of the segments in quarantine.
    quarantined: Vec<(i64, i64, u64)>,
}

impl View {
    fn memtable_bytes(&self) -> usize {
        self.active_bytes
            + self
                .frozen
                .iter()
                .flat_map(|f| &f.batches)
                .map(|b| b.bytes())
                .sum::<usize>()
    }
}

struct Request {
    records: Vec<Record>,
    /// A source's checkpoint (under its key) to keep with the batch.
    checkpoint: Option<KeyedCheckpoint>,
    reply: oneshot::Sender<Result<AppendAck, StoreError>>,
}

/// A source's checkpoint kept by the store in the same WAL frame as the batch it follows,
/// so that the source can restart after the last batch the store holds even when its own
/// checkpoint file was not written yet ([`Store::submit_with_checkpoint`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCheckpoint {
    /// The source's sequence number of the checkpoint: the higher one is the newer.
    pub seq: u64,
    /// The source's encoding of it.
    pub data: Vec<u8>,
}

/// A checkpoint under the key of its source.
pub type KeyedCheckpoint = (String, StoredCheckpoint);

/// Keeps the newer of two checkpoints of a key.
fn keep_newer(map: &mut BTreeMap<String, StoredCheckpoint>, key: String, cp: StoredCheckpoint) {
    match map.get(&key) {
        Some(have) if have.seq >= cp.seq => {}
        _ => {
            map.insert(key, cp);
        }
    }
}

struct Inner {
    config: StoreConfig,
    parts: PathBuf,
    catalog_path: PathBuf,
    quarantine_dir: PathBuf,
    wal: Mutex<Wal>,
    view: RwLock<View>,
    catalog: Mutex<Catalog>,
    /// The newest acknowledged checkpoint of each source; saved in the catalog at each
    /// flush, before the WAL files holding them are removed.
    checkpoints: Mutex<BTreeMap<String, StoredCheckpoint>>,
    counters: Counters,
    flush_signal: (Mutex<bool>, Condvar),
    shutdown: AtomicBool,
    tail: broadcast::Sender<Arc<MemBatch>>,
    cache: Option<Arc<ColumnCache>>,
    /// Backups in progress, and the deletions that wait for them.
    pins: Mutex<Pins>,
    /// Entries refused as expired and not yet in a log message ([`Inner::warn_refused`]).
    refused_unlogged: AtomicU64,
    /// When the last such message was logged (ns; 0: never).
    refused_logged_at: AtomicI64,
}

/// While a backup runs no file of the store is deleted: the deletions wait here and happen
/// when the last backup ends ([`Store::backup`]).
#[derive(Debug, Default)]
struct Pins {
    /// Backups in progress.
    count: usize,
    /// Segment files to remove (a merge's inputs).
    files: Vec<PathBuf>,
    /// WAL files up to this number to remove (their records are in segments).
    wal_upto: Option<u64>,
}

/// Holds the store's files in place while it lives; its drop does the deletions that waited.
struct Pin<'a> {
    inner: &'a Inner,
}

impl<'a> Pin<'a> {
    fn new(inner: &'a Inner) -> Pin<'a> {
        inner.pins.lock().expect("pins lock").count += 1;
        Pin { inner }
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        let inner = self.inner;
        // The WAL lock first, as the flusher takes it before the pins.
        let wal = inner.wal.lock().expect("wal lock");
        let (files, wal_upto) = {
            let mut pins = inner.pins.lock().expect("pins lock");
            pins.count -= 1;
            if pins.count > 0 {
                return;
            }
            (std::mem::take(&mut pins.files), pins.wal_upto.take())
        };
        if let Some(upto) = wal_upto {
            if let Err(e) = wal.remove_upto(upto) {
                tracing::warn!(error = %e, "cannot remove WAL files whose records are in segments; the next flush tries again");
            }
            inner.counters.wal_bytes.store(
                fsutil::dir_size(&inner.config.data_dir.join("wal")),
                Ordering::Relaxed,
            );
        }
        drop(wal);
        inner.remove_files(files);
    }
}

/// The store. Cheap to share behind an `Arc`; closing happens on drop.
pub struct Store {
    inner: Arc<Inner>,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    _lock: DirLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.inner.config.data_dir)
            .finish()
    }
}

/// Days since the epoch, UTC.
fn day_number(ts: i64) -> i64 {
    ts.div_euclid(86_400 * 1_000_000_000)
}

/// The first instant of the oldest day that `retention_days` keeps at `now`, or `None` when
/// it keeps everything. Retention drops whole days older than the day of `now -
/// retention_days`, so an entry before this instant would be deleted at its next pass.
pub fn oldest_kept(retention_days: u32, now: i64) -> Option<i64> {
    if retention_days == 0 {
        return None;
    }
    let cutoff = now.saturating_sub(i64::from(retention_days) * 86_400 * 1_000_000_000);
    Some(cutoff - cutoff.rem_euclid(86_400 * 1_000_000_000))
}

/// Why an entry older than what `retention_days` keeps is refused.
pub fn expired_reason(retention_days: u32) -> String {
    let unit = if retention_days == 1 { "day" } else { "days" };
    format!("older than the retention of {retention_days} {unit}")
}

fn day_of(ts: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts)
        .format("%Y-%m-%d")
        .to_string()
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir`, recovers it, and starts its threads.
    ///
    /// Fails if another process holds the data directory.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir)?;
        let lock = DirLock::acquire(&dir)?;
        let parts = dir.join("parts");
        let state = dir.join("state");
        let wal_dir = dir.join("wal");
        let quarantine_dir = dir.join("quarantine");
        for d in [&parts, &state, &wal_dir] {
            std::fs::create_dir_all(d)?;
        }
        let catalog_path = state.join("catalog.json");
        let counters = Counters::default();
        let cache = ColumnCache::new(config.cache_bytes);
        let opened = recover::open_segments(&parts, &quarantine_dir, &catalog_path, &cache)?;
        let mut catalog = opened.catalog;
        let segments = opened.segments;
        counters
            .quarantined
            .fetch_add(opened.quarantined, Ordering::Relaxed);
        let flushed = catalog.flushed_seq;
        let mut max_seq = catalog
            .segments
            .iter()
            .map(|m| m.max_seq)
            .max()
            .unwrap_or(0)
            .max(flushed);
        let mut active = Vec::new();
        let mut active_bytes = 0;
        let mut checkpoints = catalog.checkpoints.clone();
        let report = wal::replay(&wal_dir, &quarantine_dir, |mut records, checkpoint| {
            if let Some((key, cp)) = checkpoint {
                keep_newer(&mut checkpoints, key, cp);
            }
            records.retain(|r| r.seq > flushed && !opened.adopted.contains(r.seq));
            if let Some(m) = records.iter().map(|r| r.seq).max() {
                max_seq = max_seq.max(m);
            }
            if !records.is_empty() {
                counters
                    .wal_replayed_records
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                let batch = MemBatch::new(records);
                active_bytes += batch.bytes();
                active.push(batch);
            }
        })?;
        if report.damaged_frames > 0 || report.damaged_headers > 0 {
            tracing::warn!(
                damaged_frames = report.damaged_frames,
                damaged_headers = report.damaged_headers,
                truncated_bytes = report.truncated_bytes,
                "the WAL had damaged frames; the intact ones were recovered"
            );
        }
        counters
            .wal_damaged_frames
            .store(report.damaged_frames as u64, Ordering::Relaxed);
        let wal = Wal::create(&wal_dir)?;
        // The catalog changed at this start (files adopted, or rebuilt): it is saved only when
        // every replayed row is in a segment, so that a crash in between replays nothing twice.
        let recovered_rows = !active.is_empty();
        if opened.changed {
            catalog.flushed_seq = max_seq;
            if !recovered_rows {
                catalog.save(&catalog_path)?;
            }
        }
        counters
            .wal_bytes
            .store(fsutil::dir_size(&wal_dir), Ordering::Relaxed);

        let (tail, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            parts,
            catalog_path,
            quarantine_dir,
            wal: Mutex::new(wal),
            view: RwLock::new(View {
                active,
                active_bytes,
                frozen: Vec::new(),
                segments,
                quarantined: quarantined_ranges(&catalog),
            }),
            catalog: Mutex::new(catalog),
            checkpoints: Mutex::new(checkpoints),
            counters,
            flush_signal: (Mutex::new(false), Condvar::new()),
            shutdown: AtomicBool::new(false),
            tail,
            cache,
            config,
            pins: Mutex::new(Pins::default()),
            refused_unlogged: AtomicU64::new(0),
            refused_logged_at: AtomicI64::new(0),
        });
        if opened.changed && recovered_rows {
            inner.flush_once()?;
        }
        if inner.config.prune {
            inner.apply_retention()?;
        }

        let (sender, receiver) = mpsc::channel();
        let writer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || inner.run_writer(receiver, max_seq + 1))?
        };
        let flusher = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("store-flusher".into())
                .spawn(move || inner.run_flusher())?
        };
        Ok(Store {
            inner,
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(vec![writer, flusher]),
            _lock: lock,
        })
    }

    /// Hands a batch to the writer; the answer arrives once the batch is durable and queryable.
    pub fn submit(
        &self,
        records: Vec<Record>,
    ) -> Result<oneshot::Receiver<Result<AppendAck, StoreError>>, StoreError> {
        self.send(records, None)
    }

    /// Removes from `records` the entries retention would not keep (older than
    /// [`oldest_kept`]), counts them, and returns their indices in `records` as given.
    /// Every append does this; a caller that answers per entry calls it first to say which.
    pub fn refuse_expired(&self, records: &mut Vec<Record>) -> Vec<usize> {
        let Some(floor) = oldest_kept(self.inner.config.retention_days, logyard_model::now_ns())
        else {
            return Vec::new();
        };
        if records.iter().all(|r| r.timestamp >= floor) {
            return Vec::new();
        }
        let mut refused = Vec::new();
        let mut index = 0;
        records.retain(|r| {
            let keep = r.timestamp >= floor;
            if !keep {
                refused.push(index);
            }
            index += 1;
            keep
        });
        self.inner
            .counters
            .refused_expired
            .fetch_add(refused.len() as u64, Ordering::Relaxed);
        refused
    }

    /// The reason given for an entry [`Store::refuse_expired`] refused.
    pub fn expired_reason(&self) -> String {
        expired_reason(self.inner.config.retention_days)
    }

    fn send(
        &self,
        mut records: Vec<Record>,
        checkpoint: Option<KeyedCheckpoint>,
    ) -> Result<oneshot::Receiver<Result<AppendAck, StoreError>>, StoreError> {
        let refused = self.refuse_expired(&mut records).len();
        if refused > 0 {
            self.inner.warn_refused(refused);
        }
        let (reply, rx) = oneshot::channel();
        let sender = self.sender.lock().expect("sender lock");
        sender
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(Request {
                records,
                checkpoint,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// [`Store::submit`] keeping a source's checkpoint in the same WAL frame as the batch:
    /// once the batch is acknowledged, [`Store::checkpoint`] returns it (or a newer one),
    /// across restarts.
    pub fn submit_with_checkpoint(
        &self,
        records: Vec<Record>,
        key: &str,
        checkpoint: StoredCheckpoint,
    ) -> Result<oneshot::Receiver<Result<AppendAck, StoreError>>, StoreError> {
        self.send(records, Some((key.to_string(), checkpoint)))
    }

    /// The newest checkpoint kept for a source key, if any.
    pub fn checkpoint(&self, key: &str) -> Option<StoredCheckpoint> {
        self.inner
            .checkpoints
            .lock()
            .expect("checkpoints lock")
            .get(key)
            .cloned()
    }

    /// Appends a batch and waits until it is durable and queryable. Not for async contexts:
    /// there, await the receiver of [`Store::submit`].
    pub fn append(&self, records: Vec<Record>) -> Result<AppendAck, StoreError> {
        self.submit(records)?
            .blocking_recv()
            .map_err(|_| StoreError::Closed)?
    }

    /// Returns the blocks visible now: segments' row groups, then memtable batches.
    pub fn snapshot(&self) -> Snapshot {
        let view = self.inner.view.read().expect("view lock");
        let mut blocks = Vec::new();
        for seg in &view.segments {
            for (i, b) in seg.blocks.iter().enumerate() {
                blocks.push(BlockRef {
                    min_ts: b.min_ts,
                    max_ts: b.max_ts,
                    rows: b.rows as usize,
                    source: BlockSource::Segment(seg.clone(), i),
                });
            }
        }
        let mem = view
            .frozen
            .iter()
            .flat_map(|f| f.batches.iter())
            .chain(view.active.iter());
        for batch in mem {
            blocks.push(BlockRef {
                min_ts: batch.min_ts(),
                max_ts: batch.max_ts(),
                rows: batch.records().len(),
                source: BlockSource::Mem(batch.clone()),
            });
        }
        Snapshot {
            blocks,
            quarantined: view.quarantined.clone(),
            inner: self.inner.clone(),
        }
    }

    /// Returns a receiver of every batch as it is acknowledged (for live tail and alerts).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<MemBatch>> {
        self.inner.tail.subscribe()
    }

    /// Writes the memtable to segments now and waits for it.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush_once()
    }

    /// Runs one merge round now (for tests and maintenance); returns whether it merged.
    pub fn merge(&self) -> Result<bool, StoreError> {
        self.inner.merge_once()
    }

    /// Applies retention now.
    pub fn apply_retention(&self) -> Result<(), StoreError> {
        self.inner.apply_retention()
    }

    /// Returns the store's counters and sizes.
    pub fn stats(&self) -> StoreStats {
        let view = self.inner.view.read().expect("view lock");
        let c = &self.inner.counters;
        let mem = view
            .frozen
            .iter()
            .flat_map(|f| f.batches.iter())
            .chain(view.active.iter());
        let mut stats = StoreStats {
            wal_bytes: c.wal_bytes.load(Ordering::Relaxed),
            segments: view.segments.len() as u64,
            segment_bytes: view.segments.iter().map(|s| s.meta.bytes).sum(),
            segment_rows: view.segments.iter().map(|s| s.meta.rows).sum(),
            memtable_bytes: view.memtable_bytes() as u64,
            appended_records: c.appended_records.load(Ordering::Relaxed),
            appended_batches: c.appended_batches.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            merges: c.merges.load(Ordering::Relaxed),
            quarantined: c.quarantined.load(Ordering::Relaxed),
            wal_damaged_frames: c.wal_damaged_frames.load(Ordering::Relaxed),
            wal_replayed_records: c.wal_replayed_records.load(Ordering::Relaxed),
            retention_dropped_days: c.retention_dropped_days.load(Ordering::Relaxed),
            refused_expired: c.refused_expired.load(Ordering::Relaxed),
            cache: self
                .inner
                .cache
                .as_ref()
                .map(|c| c.stats())
                .unwrap_or_default(),
            ..StoreStats::default()
        };
        let ranges = view
            .segments
            .iter()
            .map(|s| (s.meta.min_ts, s.meta.max_ts))
            .chain(mem.map(|b| {
                stats.memtable_rows += b.records().len() as u64;
                (b.min_ts(), b.max_ts())
            }));
        for (lo, hi) in ranges {
            stats.oldest_ts = Some(stats.oldest_ts.map_or(lo, |o| o.min(lo)));
            stats.newest_ts = Some(stats.newest_ts.map_or(hi, |n| n.max(hi)));
        }
        stats
    }

    /// Returns the data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// Writes a consistent copy of the store into `to` (missing or empty, outside the data
    /// directory) while ingest goes on: every entry acknowledged before the call is in it, and
    /// recovery of the copy stores none twice ([`backup`] says how). Merges and retention wait
    /// while it runs, and no file is deleted until it ends. A failed backup removes what it
    /// wrote.
    pub fn backup(&self, to: &Path) -> Result<BackupReport, StoreError> {
        let started = Instant::now();
        let created = backup::prepare_target(to, &self.inner.config.data_dir)?;
        let written = {
            let _pin = Pin::new(&self.inner);
            // Taken after the pin: every WAL file removed before it held only records that
            // this catalog's segments hold.
            let catalog = self.inner.catalog.lock().expect("catalog lock").clone();
            let wal_parts = self.inner.wal.lock().expect("wal lock").written_parts();
            wal_parts.map_err(StoreError::from).and_then(|parts| {
                backup::write(&self.inner.config.data_dir, to, &catalog, &parts, started)
            })
        };
        match written {
            Ok(report) => {
                tracing::info!(to = %to.display(), segments = report.manifest.segments,
                    files = report.manifest.files.len(), bytes = report.manifest.bytes(), "backup written");
                Ok(report)
            }
            Err(e) => {
                backup::remove_partial(to, created);
                Err(e)
            }
        }
    }

    /// Stops accepting writes, writes what is acknowledged to segments, and stops the threads.
    pub fn close(&self) {
        self.sender.lock().expect("sender lock").take();
        self.inner.shutdown.store(true, Ordering::SeqCst);
        self.inner.signal_flush();
        for t in self.threads.lock().expect("threads lock").drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

impl Inner {
    fn signal_flush(&self) {
        let (lock, cv) = &self.flush_signal;
        *lock.lock().expect("flush lock") = true;
        cv.notify_all();
    }

    fn run_writer(&self, receiver: mpsc::Receiver<Request>, mut next_seq: u64) {
        let mut frame = Vec::new();
        while let Ok(first) = receiver.recv() {
            let mut group = vec![first];
            if self.config.fsync != FsyncPolicy::Always {
                let mut bytes = 0;
                while bytes < 32 << 20 {
                    match receiver.try_recv() {
                        Ok(req) => {
                            bytes += req.records.len() * 128;
                            group.push(req);
                        }
                        Err(_) => break,
                    }
                }
            }
            self.wait_for_room();
            let mut wal = self.wal.lock().expect("wal lock");
            let group_start = wal.position();
            let mut written = 0;
            let mut result = Ok(());
            let mut acks = Vec::with_capacity(group.len());
            for req in &mut group {
                let first_seq = next_seq;
                for r in req.records.iter_mut() {
                    r.seq = next_seq;
                    next_seq += 1;
                }
                acks.push(AppendAck {
                    first_seq,
                    count: req.records.len(),
                });
                if req.records.is_empty() && req.checkpoint.is_none() {
                    continue;
                }
                Wal::begin_frame(&mut frame);
                match &req.checkpoint {
                    Some((key, cp)) => codec::encode_batch_with_checkpoint(
                        first_seq,
                        &req.records,
                        key,
                        cp,
                        &mut frame,
                    ),
                    None => codec::encode_batch(first_seq, &req.records, &mut frame),
                }
                match wal.append_frame(&mut frame) {
                    Ok(n) => written += n,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            if result.is_ok() && self.config.fsync != FsyncPolicy::Never {
                result = wal.sync();
            }
            if let Err(e) = result {
                tracing::error!(error = %e, "WAL write failed; the batches are refused");
                // Never write after a torn frame: the group is cut off its file, and the next
                // batch starts a fresh file (refused while none can be started).
                wal.abandon(group_start);
                for req in group {
                    let _ = req.reply.send(Err(StoreError::WriteFailed(format!(
                        "cannot write the WAL: {e}"
                    ))));
                }
                continue;
            }
            self.counters
                .wal_bytes
                .fetch_add(written, Ordering::Relaxed);
            let mut batches = Vec::with_capacity(group.len());
            let mut replies = Vec::with_capacity(group.len());
            {
                let mut view = self.view.write().expect("view lock");
                let mut checkpoints = self.checkpoints.lock().expect("checkpoints lock");
                for req in group {
                    if let Some((key, cp)) = req.checkpoint {
                        keep_newer(&mut checkpoints, key, cp);
                    }
                    if !req.records.is_empty() {
                        let batch = MemBatch::new(req.records);
                        view.active_bytes += batch.bytes();
                        view.active.push(batch.clone());
                        batches.push(batch);
                    }
                    replies.push(req.reply);
                }
                if view.active_bytes >= self.config.flush_bytes {
                    self.signal_flush();
                }
            }
            drop(wal);
            for batch in batches {
                self.counters
                    .appended_records
                    .fetch_add(batch.records().len() as u64, Ordering::Relaxed);
                self.counters
                    .appended_batches
                    .fetch_add(1, Ordering::Relaxed);
                let _ = self.tail.send(batch);
            }
            for (reply, ack) in replies.into_iter().zip(acks) {
                let _ = reply.send(Ok(ack));
            }
        }
    }

    /// Blocks the writer while the memtable is over its budget, so that memory stays bounded
    /// when segments cannot be written as fast as batches arrive.
    fn wait_for_room(&self) {
        let start = Instant::now();
        loop {
            let bytes = self.view.read().expect("view lock").memtable_bytes();
            if bytes < self.config.max_memtable_bytes || self.shutdown.load(Ordering::SeqCst) {
                return;
            }
            self.signal_flush();
            if start.elapsed() > Duration::from_secs(1) {
                tracing::warn!(bytes, "ingest is waiting for the memtable to be flushed");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn run_flusher(&self) {
        let mut last_retention = Instant::now();
        loop {
            {
                let (lock, cv) = &self.flush_signal;
                let guard = lock.lock().expect("flush lock");
                let (mut guard, _) = cv
                    .wait_timeout_while(guard, self.config.flush_interval, |signalled| !*signalled)
                    .expect("flush lock");
                *guard = false;
            }
            let stopping = self.shutdown.load(Ordering::SeqCst);
            if let Err(e) = self.flush_once() {
                tracing::error!(error = %e, "flush failed; will retry");
            }
            if stopping {
                // Drain what the writer acknowledged after the first pass.
                if let Err(e) = self.flush_once() {
                    tracing::error!(error = %e, "final flush failed; the WAL keeps the data");
                }
                return;
            }
            match self.merge_once() {
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "merge failed; will retry"),
            }
            if self.config.prune && last_retention.elapsed() >= self.config.retention_interval {
                last_retention = Instant::now();
                if let Err(e) = self.apply_retention() {
                    tracing::error!(error = %e, "retention failed; will retry");
                }
            }
        }
    }

    /// Freezes the active memtable, writes every frozen part to segments, oldest first.
    fn flush_once(&self) -> Result<(), StoreError> {
        {
            let mut wal = self.wal.lock().expect("wal lock");
            let mut view = self.view.write().expect("view lock");
            if !view.active.is_empty() {
                let wal_upto = wal.rotate()?;
                let batches = std::mem::take(&mut view.active);
                view.active_bytes = 0;
                view.frozen.push(Frozen { batches, wal_upto });
            }
        }
        loop {
            let (batches, wal_upto) = {
                let view = self.view.read().expect("view lock");
                match view.frozen.first() {
                    Some(f) => (f.batches.clone(), f.wal_upto),
                    None => return Ok(()),
                }
            };
            self.write_frozen(&batches)?;
            {
                let mut view = self.view.write().expect("view lock");
                view.frozen.remove(0);
            }
            let wal = self.wal.lock().expect("wal lock");
            if !self.defer(|pins| pins.wal_upto = pins.wal_upto.max(Some(wal_upto))) {
                wal.remove_upto(wal_upto)?;
            }
            self.counters.wal_bytes.store(
                fsutil::dir_size(&self.config.data_dir.join("wal")),
                Ordering::Relaxed,
            );
            drop(wal);
            self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes a frozen memtable as one segment per day and publishes them.
    fn write_frozen(&self, batches: &[Arc<MemBatch>]) -> Result<(), StoreError> {
        let mut records: Vec<&Record> = batches.iter().flat_map(|b| b.records()).collect();
        if records.is_empty() {
            return Ok(());
        }
        records.sort_unstable_by_key(|r| (r.timestamp, r.seq));
        let max_seq = records.iter().map(|r| r.seq).max().unwrap_or(0);
        // Records are sorted by time, so each day is one run: name it once per run.
        let mut by_day: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
        for run in records.chunk_by(|a, b| day_number(a.timestamp) == day_number(b.timestamp)) {
            by_day
                .entry(day_of(run[0].timestamp))
                .or_default()
                .extend_from_slice(run);
        }
        let mut catalog = self.catalog.lock().expect("catalog lock");
        let mut new = Vec::new();
        let written = (|| {
            for (day, recs) in by_day {
                let id = catalog.next_segment_id;
                catalog.next_segment_id += 1;
                let meta = segment::write(&self.parts, id, &day, &recs, self.layout())?;
                new.push(Arc::new(
                    Segment::open(&self.parts, meta)?.with_cache(self.cache.clone()),
                ));
            }
            let mut next = catalog.clone();
            next.segments.extend(new.iter().map(|s| s.meta.clone()));
            next.flushed_seq = next.flushed_seq.max(max_seq);
            // The WAL files about to be removed may hold the newest checkpoints: kept here.
            next.checkpoints = self.checkpoints.lock().expect("checkpoints lock").clone();
            next.save(&self.catalog_path)?;
            Ok(next)
        })();
        let next = match written {
            Ok(next) => next,
            Err(e) => {
                // Not in the catalog, and every row still in the WAL: redundant.
                self.remove_unlisted(new.iter().map(|s| &s.meta));
                return Err(e);
            }
        };
        *catalog = next;
        self.view.write().expect("view lock").segments.extend(new);
        Ok(())
    }

    /// How segments are cut and compressed.
    fn layout(&self) -> segment::Layout {
        segment::Layout {
            block_rows: self.config.block_rows,
            compression_level: self.config.compression_level,
        }
    }

    /// Merges the small segments of the first day that has `merge_fanin` of them.
    fn merge_once(&self) -> Result<bool, StoreError> {
        if self.pinned() {
            return Ok(false);
        }
        let victims: Vec<Arc<Segment>> = {
            let view = self.view.read().expect("view lock");
            let mut by_day: BTreeMap<&str, Vec<&Arc<Segment>>> = BTreeMap::new();
            for s in &view.segments {
                if s.meta.rows < self.config.merge_small_rows {
                    by_day.entry(s.meta.day.as_str()).or_default().push(s);
                }
            }
            let found = by_day
                .into_values()
                .find(|v| v.len() >= self.config.merge_fanin.max(2));
            let Some(mut candidates) = found else {
                return Ok(false);
            };
            candidates.sort_by_key(|s| s.meta.id);
            let mut rows = 0;
            candidates
                .into_iter()
                .take_while(|s| {
                    rows += s.meta.rows;
                    rows <= self.config.merge_max_rows
                })
                .cloned()
                .collect()
        };
        if victims.len() < 2 {
            return Ok(false);
        }
        let mut records = Vec::new();
        for seg in &victims {
            records.extend(seg.read_all()?);
        }
        records.sort_unstable_by_key(|r| (r.timestamp, r.seq));
        let mut catalog = self.catalog.lock().expect("catalog lock");
        // Retention or quarantine may have removed a victim meanwhile.
        if !victims
            .iter()
            .all(|v| catalog.segments.iter().any(|m| m.id == v.meta.id))
        {
            return Ok(false);
        }
        let id = catalog.next_segment_id;
        catalog.next_segment_id += 1;
        let day = victims[0].meta.day.clone();
        let meta = segment::write(&self.parts, id, &day, &records, self.layout())?;
        let mut next = catalog.clone();
        next.segments
            .retain(|m| !victims.iter().any(|v| v.meta.id == m.id));
        next.segments.push(meta.clone());
        let opened = Segment::open(&self.parts, meta.clone())
            .and_then(|seg| next.save(&self.catalog_path).map(|()| seg));
        let merged = match opened {
            Ok(seg) => Arc::new(seg.with_cache(self.cache.clone())),
            Err(e) => {
                // Not in the catalog, and every row still in the segments it was to replace.
                self.remove_unlisted(std::iter::once(&meta));
                return Err(e);
            }
        };
        *catalog = next;
        {
            let mut view = self.view.write().expect("view lock");
            view.segments
                .retain(|s| !victims.iter().any(|v| v.meta.id == s.meta.id));
            view.segments.push(merged);
        }
        drop(catalog);
        self.remove_unlisted(victims.iter().map(|v| &v.meta));
        self.counters.merges.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(segments = victims.len(), day, "merged small segments");
        Ok(true)
    }

    /// Removes the files of segments the catalog does not list, whose rows are elsewhere (a
    /// merge's inputs, a failed flush's or merge's output); a file left behind is settled at
    /// the next start.
    fn remove_unlisted<'a>(&self, metas: impl Iterator<Item = &'a SegmentMeta>) {
        let paths: Vec<PathBuf> = metas
            .flat_map(|m| [m.data_path(&self.parts), m.index_path(&self.parts)])
            .collect();
        if !self.defer(|pins| pins.files.extend(paths.iter().cloned())) {
            self.remove_files(paths);
        }
    }

    /// Returns whether a backup is in progress.
    fn pinned(&self) -> bool {
        self.pins.lock().expect("pins lock").count > 0
    }

    /// Records a deletion to do once the backups in progress end, and returns true; returns
    /// false (recording nothing) when none is in progress.
    fn defer(&self, record: impl FnOnce(&mut Pins)) -> bool {
        let mut pins = self.pins.lock().expect("pins lock");
        if pins.count == 0 {
            return false;
        }
        record(&mut pins);
        true
    }

    /// Removes segment files whose rows are elsewhere; one left behind is settled at the next
    /// start.
    fn remove_files(&self, paths: Vec<PathBuf>) {
        for path in paths {
            match fileops::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove a segment file whose rows are elsewhere; it is settled at the next start")
                }
            }
        }
    }

    /// Logs entries refused on their way in by a path that does not answer per entry (a
    /// source), at most once a minute, with the total since the last message.
    fn warn_refused(&self, n: usize) {
        const EVERY_NS: i64 = 60 * 1_000_000_000;
        self.refused_unlogged.fetch_add(n as u64, Ordering::Relaxed);
        let now = logyard_model::now_ns();
        let last = self.refused_logged_at.load(Ordering::Relaxed);
        if now - last >= EVERY_NS
            && self
                .refused_logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let entries = self.refused_unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                entries,
                "{}; raise [store] retention_days (0 keeps everything) to store them",
                expired_reason(self.config.retention_days)
            );
        }
    }

    /// Drops whole days past the retention, then the oldest days while over the disk budget.
    fn apply_retention(&self) -> Result<(), StoreError> {
        let mut catalog = self.catalog.lock().expect("catalog lock");
        // Checked under the catalog's lock, which a backup takes after pinning: a run that
        // started first is over before the backup reads the catalog.
        if self.pinned() {
            return Ok(());
        }
        let mut days: Vec<String> = catalog
            .segments
            .iter()
            .chain(&catalog.quarantined)
            .map(|m| m.day.clone())
            .collect();
        days.sort();
        days.dedup();
        let mut drop_days = Vec::new();
        if self.config.retention_days > 0 {
            let cutoff = logyard_model::now_ns()
                - i64::from(self.config.retention_days) * 86_400 * 1_000_000_000;
            // A day goes once all of it is older than the cutoff.
            let cutoff_day = day_of(cutoff);
            drop_days.extend(
                days.iter()
                    .filter(|d| d.as_str() < cutoff_day.as_str())
                    .cloned(),
            );
        }
        if self.config.max_disk_bytes > 0 {
            let wal_bytes = self.counters.wal_bytes.load(Ordering::Relaxed);
            let mut total: u64 = catalog.segments.iter().map(|m| m.bytes).sum::<u64>() + wal_bytes;
            for day in &days {
                if total <= self.config.max_disk_bytes {
                    break;
                }
                let day_bytes: u64 = catalog
                    .segments
                    .iter()
                    .filter(|m| &m.day == day)
                    .map(|m| m.bytes)
                    .sum();
                total -= day_bytes;
                if !drop_days.contains(day) {
                    drop_days.push(day.clone());
                }
            }
        }
        if drop_days.is_empty() {
            return Ok(());
        }
        let mut next = catalog.clone();
        next.segments.retain(|m| !drop_days.contains(&m.day));
        next.quarantined.retain(|m| !drop_days.contains(&m.day));
        next.save(&self.catalog_path)?;
        let ranges = quarantined_ranges(&next);
        *catalog = next;
        {
            let mut view = self.view.write().expect("view lock");
            view.segments.retain(|s| !drop_days.contains(&s.meta.day));
            view.quarantined = ranges;
        }
        for day in &drop_days {
            tracing::info!(day, "retention drops a day");
            if let Err(e) = fileops::remove_dir_all(&self.parts.join(day)) {
                tracing::warn!(day, error = %e, "cannot remove a dropped day's directory");
            }
        }
        self.counters
            .retention_dropped_days
            .fetch_add(drop_days.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Moves a segment found damaged while reading to quarantine, and forgets it.
    fn quarantine(&self, id: u64, reason: &StoreError) {
        let mut catalog = self.catalog.lock().expect("catalog lock");
        let Some(meta) = catalog.segments.iter().find(|m| m.id == id).cloned() else {
            return;
        };
        tracing::warn!(segment = id, error = %reason, "damaged segment moved to quarantine");
        let mut next = catalog.clone();
        next.segments.retain(|m| m.id != id);
        next.quarantined.push(meta.clone());
        if let Err(e) = next.save(&self.catalog_path) {
            tracing::error!(error = %e, "cannot update the catalog for a quarantined segment");
            return;
        }
        let ranges = quarantined_ranges(&next);
        *catalog = next;
        {
            let mut view = self.view.write().expect("view lock");
            view.segments.retain(|s| s.meta.id != id);
            view.quarantined = ranges;
        }
        if let Err(e) =
            recover::quarantine_files(&self.parts, &self.quarantine_dir, &meta.day, meta.id)
        {
            tracing::error!(error = %e, "cannot move a damaged segment to quarantine");
        }
        self.counters.quarantined.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where a block's rows are.
#[derive(Debug, Clone)]
pub enum BlockSource {
    /// A row group of a segment.
    Segment(Arc<Segment>, usize),
    /// A memtable batch.
    Mem(Arc<MemBatch>),
}

/// One block of a snapshot: a segment row group or a memtable batch.
#[derive(Debug, Clone)]
pub struct BlockRef {
    /// Earliest timestamp in the block.
    pub min_ts: i64,
    /// Latest timestamp in the block.
    pub max_ts: i64,
    rows: usize,
    /// Where the rows are.
    pub source: BlockSource,
}

impl BlockRef {
    /// Returns the number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Returns false only if some token hash is certainly absent (memtable blocks: never).
    pub fn may_contain_all(&self, hashes: &[u64]) -> bool {
        match &self.source {
            BlockSource::Segment(seg, i) => seg.blocks[*i].may_contain_all(hashes),
            BlockSource::Mem(_) => true,
        }
    }

    /// Returns whether the block's raw lines and field values may hold every token hash
    /// (memtable blocks: always).
    pub fn others_may_contain_all(&self, hashes: &[u64]) -> bool {
        match &self.source {
            BlockSource::Segment(seg, i) => seg.blocks[*i].others_may_contain_all(hashes),
            BlockSource::Mem(_) => true,
        }
    }

    /// Returns the block's rows by level and agent, when known without reading rows (every
    /// memtable batch; segment blocks written by this version).
    pub fn counts(&self) -> Option<&BlockCounts> {
        match &self.source {
            BlockSource::Segment(seg, i) => seg.blocks[*i].counts.as_ref(),
            BlockSource::Mem(batch) => Some(batch.counts()),
        }
    }

    /// Reads some columns of the block.
    pub fn read(&self, columns: Columns) -> Result<RecordBatch, StoreError> {
        match &self.source {
            BlockSource::Segment(seg, i) => seg.read_block(*i, columns),
            BlockSource::Mem(batch) => Ok(batch.columns(columns)),
        }
    }

    /// Reads whole records at some rows of the block.
    pub fn records(&self, rows: &[usize]) -> Result<Vec<Record>, StoreError> {
        match &self.source {
            BlockSource::Segment(seg, i) => {
                segment::batch_to_records(&seg.read_block(*i, Columns::ALL)?, rows)
            }
            BlockSource::Mem(batch) => {
                Ok(rows.iter().map(|&r| batch.records()[r].clone()).collect())
            }
        }
    }
}

/// The blocks visible at one instant. Holding it keeps them readable.
pub struct Snapshot {
    /// Segment blocks first (by segment), then memtable batches in arrival order.
    pub blocks: Vec<BlockRef>,
    /// Time range and rows of each segment in quarantine.
    quarantined: Vec<(i64, i64, u64)>,
    inner: Arc<Inner>,
}

/// The time ranges and rows of a catalog's quarantined segments.
fn quarantined_ranges(catalog: &Catalog) -> Vec<(i64, i64, u64)> {
    catalog
        .quarantined
        .iter()
        .map(|m| (m.min_ts, m.max_ts, m.rows))
        .collect()
}

impl Snapshot {
    /// Returns the rows of quarantined segments (damaged, moved aside, not searched) whose
    /// time range meets `[start, end)`: an answer over that range misses them.
    pub fn quarantined_rows(&self, start: Option<i64>, end: Option<i64>) -> u64 {
        self.quarantined
            .iter()
            .filter(|(lo, hi, _)| start.is_none_or(|s| *hi >= s) && end.is_none_or(|e| *lo < e))
            .map(|(_, _, rows)| rows)
            .sum()
    }

    /// Reports a block whose read failed as damaged: its segment goes to quarantine.
    ///
    /// A decoding error quarantines the segment only if its file also fails its checksum
    /// now: a segment whose bytes are intact is never moved aside for an error of the reader.
    pub fn report_damaged(&self, block: &BlockRef, error: &StoreError) {
        let BlockSource::Segment(seg, _) = &block.source else {
            return;
        };
        match error {
            StoreError::Corrupt(_) => self.inner.quarantine(seg.meta.id, error),
            StoreError::Parquet(_) if !seg.checksum_matches() => {
                self.inner.quarantine(seg.meta.id, error)
            }
            StoreError::Parquet(_) => tracing::error!(
                segment = seg.meta.id,
                error = %error,
                "a segment with intact bytes could not be decoded; it stays in place"
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
