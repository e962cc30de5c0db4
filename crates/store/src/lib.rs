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
//! Each part has its file: `writer`, `flush`, `compaction`, `retention`, `files` (deletions
//! that wait for backups, quarantine), `snapshot` (the read surface), `schema`, `segment`,
//! `wal`, `catalog`, `recover`, `backup`, `cache`, `manifest` (what a store with a bucket
//! publishes for query nodes), `follow` (a query node's view of the other nodes' segments),
//! `range_cache` (the ranges read from a bucket, kept on the local disk) and `settings` (the
//! `[store]` and `[storage]` keys, and the nodes' roles).
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

mod aws_files;
pub mod backup;
mod cache;
mod catalog;
pub mod codec;
mod compaction;
pub mod dir;
mod error;
pub mod field_columns;
pub mod fileops;
mod files;
mod flush;
mod follow;
mod fsutil;
mod manifest;
mod memtable;
mod pread;
mod range_cache;
mod recent;
mod recover;
mod retention;
mod s3;
pub mod schema;
pub mod segment;
mod settings;
mod sink;
mod snapshot;
mod storage;
#[cfg(feature = "testing")]
pub mod testing;
mod tier;
mod uploads;
pub mod wal;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logyard_model::Record;
use tokio::sync::{broadcast, oneshot};

pub use backup::{BackupReport, Manifest};
pub use cache::{CacheStats, ColumnCache};
pub use catalog::Catalog;
pub use dir::{FileKey, LocalDir, MemoryDir, SegmentDir};
pub use error::StoreError;
pub use follow::{
    Follow, NodeLink, NodeStatus, RECENT_INTERVAL, RECENT_MAX_BYTES, REFRESH_INTERVAL,
};
pub use fsutil::DirLock;
pub use manifest::{NodeManifest, MANIFEST_HEARTBEAT, MANIFEST_VERSION};
pub use memtable::MemBatch;
pub use range_cache::{RangeCache, RangeCacheStats};
pub use recent::{Recent, RecentHeader};
pub use retention::{expired_reason, oldest_kept};
pub use s3::{S3Config, S3Dir, MANIFEST_OBJECT, NODE_FOLDER, READ_PAUSE, REQUEST_TIMEOUT};
pub use schema::Columns;
pub use segment::{BlockCounts, Segment, SegmentCounts, SegmentMeta};
pub use settings::{
    node_prefix, NodeRole, StorageSettings, StoreSettings, REPLACED_GRACE_REFRESHES,
};
pub use sink::StoreSink;
pub use snapshot::{BlockRef, BlockSource, Gap, Snapshot};
pub use storage::{node_id, Storage, RANGE_CACHE};
pub use tier::{CacheLimits, TieredDir};
pub use uploads::{TierCounters, UploadStats, ERROR_KINDS};
pub use wal::ReplayReport;

use files::{Pin, Pins};
use snapshot::quarantined_ranges;
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
    /// Which fields of a segment get columns of their own.
    pub field_columns: field_columns::FieldColumnRule,
    /// A day's small segments are merged once there are this many.
    pub merge_fanin: usize,
    /// Segments with fewer rows than this are small.
    pub merge_small_rows: u64,
    /// One merge writes at most this many rows (it holds a block of each input at a time).
    pub merge_max_rows: u64,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Most bytes of decoded text columns kept for the next search ([`ColumnCache`]); 0
    /// keeps none.
    pub cache_bytes: u64,
    /// Where segment files live: `parts/` (the default), a bucket, or a given directory.
    pub storage: Storage,
    /// How long the files of segments a merge replaced stay in a shared directory (a
    /// bucket) after the last snapshot here lets go of them: query nodes that read this
    /// store's manifest may still be reading them.
    pub replaced_grace: Duration,
    /// A query node's store: it serves the segments of every node whose manifest is under
    /// this bucket prefix, and refuses writes.
    pub follow: Option<Follow>,
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
            field_columns: field_columns::FieldColumnRule::DEFAULT,
            merge_fanin: 8,
            merge_small_rows: 64 * 1024,
            merge_max_rows: 128 * 1024,
            retention_interval: Duration::from_secs(60),
            cache_bytes: 256 << 20,
            storage: Storage::Local,
            replaced_grace: Duration::ZERO,
            follow: None,
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
    /// The uploads to the bucket, when segments go to one.
    pub uploads: Option<UploadStats>,
    /// The ranges of the bucket's segment files kept on the local disk, when segments are
    /// read from a bucket ([`RangeCache`]).
    pub range_cache: Option<RangeCacheStats>,
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
    /// The segments of the nodes a query node follows.
    followed: Vec<Arc<Segment>>,
    /// Their rows not in the bucket yet, as the nodes sent them.
    followed_mem: Vec<Arc<MemBatch>>,
    /// What of the followed nodes is out of reach.
    followed_gaps: Vec<Gap>,
    /// Time ranges and rows of the segments in quarantine.
    quarantined: Vec<(i64, i64, u64)>,
}

impl View {
    /// The store's own segments, then those of the nodes it follows.
    fn all_segments(&self) -> impl Iterator<Item = &Arc<Segment>> {
        self.segments.iter().chain(&self.followed)
    }

    /// The store's memtable batches: those being flushed, then the active ones, oldest
    /// first.
    fn memtable(&self) -> impl Iterator<Item = &Arc<MemBatch>> {
        self.frozen
            .iter()
            .flat_map(|f| &f.batches)
            .chain(&self.active)
    }

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
    /// Where segment files live.
    segments: Arc<dyn SegmentDir>,
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
    /// Held by a flush from start to end: [`Store::flush`] and the flusher thread take
    /// turns, never writing the same frozen memtable twice.
    flushing: Mutex<()>,
    shutdown: AtomicBool,
    tail: broadcast::Sender<Arc<MemBatch>>,
    cache: Option<Arc<ColumnCache>>,
    /// Backups in progress, and the deletions that wait for them.
    pins: Mutex<Pins>,
    /// Segments a merge replaced whose files wait until no snapshot reads them (where a
    /// deleted file does not stay readable: [`SegmentDir::deleted_files_stay_readable`]).
    unread: Mutex<Vec<(std::sync::Weak<Segment>, SegmentMeta, Instant)>>,
    /// This store's node id, when its segments are where other nodes read them.
    node: Option<String>,
    /// The last manifest published for query nodes.
    published: Mutex<manifest::Published>,
    /// What a query node follows.
    follower: Option<follow::Follower>,
    /// Entries refused as expired and not yet in a log message ([`Inner::warn_refused`]).
    refused_unlogged: AtomicU64,
    /// When the last such message was logged (ns; 0: never).
    refused_logged_at: AtomicI64,
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
        let segments_dir = config.storage.open(&dir)?;
        let node = match segments_dir.catalog_location() {
            Some(_) => Some(node_id(&state)?),
            None => None,
        };
        let follower = config
            .follow
            .as_ref()
            .map(|follow| follow::Follower::new(follow, &dir))
            .transpose()?;
        let opened =
            recover::open_segments(&*segments_dir, &quarantine_dir, &catalog_path, &cache)?;
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
            segments: segments_dir,
            catalog_path,
            quarantine_dir,
            wal: Mutex::new(wal),
            view: RwLock::new(View {
                active,
                active_bytes,
                frozen: Vec::new(),
                segments,
                followed: Vec::new(),
                followed_mem: Vec::new(),
                followed_gaps: Vec::new(),
                quarantined: quarantined_ranges(&catalog),
            }),
            catalog: Mutex::new(catalog),
            checkpoints: Mutex::new(checkpoints),
            counters,
            flush_signal: (Mutex::new(false), Condvar::new()),
            flushing: Mutex::new(()),
            shutdown: AtomicBool::new(false),
            tail,
            cache,
            config,
            pins: Mutex::new(Pins::default()),
            unread: Mutex::new(Vec::new()),
            node,
            published: Mutex::default(),
            follower,
            refused_unlogged: AtomicU64::new(0),
            refused_logged_at: AtomicI64::new(0),
        });
        if opened.changed && recovered_rows {
            inner.flush_once()?;
        }
        if inner.config.prune {
            inner.apply_retention()?;
        }
        if let Some(node) = &inner.node {
            // Before any write is taken: a last manifest of a clean stop says the node is
            // whole, which stops being true with its first new entry.
            inner.publish_manifest(node, false);
        }

        if let Some(follower) = &inner.follower {
            // Served from the first answer on.
            inner.refresh_followed(follower);
            inner.poll_recent(follower);
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
        let mut threads = vec![writer, flusher];
        if inner.follower.is_some() {
            let inner = inner.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("store-follow".into())
                    .spawn(move || {
                        if let Some(follower) = &inner.follower {
                            inner.run_follower(follower);
                        }
                    })?,
            );
        }
        Ok(Store {
            inner,
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(threads),
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
        if self.inner.follower.is_some() {
            return Err(StoreError::ReadOnly);
        }
        let refused = self.refuse_expired(&mut records).len();
        if refused > 0 {
            self.inner.warn_refused(refused);
        }
        self.inner.check_local_budget()?;
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
        for seg in view.followed.iter().chain(&view.segments) {
            for (i, b) in seg.blocks.iter().enumerate() {
                blocks.push(BlockRef {
                    min_ts: b.min_ts,
                    max_ts: b.max_ts,
                    rows: b.rows as usize,
                    source: BlockSource::Segment(seg.clone(), i),
                });
            }
        }
        for batch in view.followed_mem.iter().chain(view.memtable()) {
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
            gaps: view.followed_gaps.clone(),
            inner: self.inner.clone(),
        }
    }

    /// The nodes whose manifests this query node reads, as of the last refresh; `None` for
    /// a store that follows none ([`StoreConfig::follow`]).
    pub fn nodes(&self) -> Option<Vec<NodeStatus>> {
        self.inner.follower.as_ref().map(follow::Follower::statuses)
    }

    /// Reads the followed nodes' manifests, then asks them for their last entries, now (a
    /// query node's store; otherwise nothing).
    pub fn refresh_followed(&self) {
        if let Some(follower) = &self.inner.follower {
            self.inner.refresh_followed(follower);
            self.inner.poll_recent(follower);
        }
    }

    /// Sets where query nodes reach this node for its entries not in the bucket yet: its
    /// manifest names it from the next flusher pass on.
    pub fn set_address(&self, address: Option<String>) {
        self.inner.published.lock().expect("published lock").address = address;
    }

    /// Returns a receiver of every batch as it is acknowledged (for live tail and alerts).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<MemBatch>> {
        self.inner.tail.subscribe()
    }

    /// Writes the memtable to segments now and waits for it.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush_once()
    }

    /// Runs one merge round now (for tests and maintenance), after removing the files of
    /// replaced segments no snapshot reads any more; returns whether it merged.
    pub fn merge(&self) -> Result<bool, StoreError> {
        self.inner.remove_unread();
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
        let mem = view.memtable();
        let mut stats = StoreStats {
            wal_bytes: c.wal_bytes.load(Ordering::Relaxed),
            segments: (view.segments.len() + view.followed.len()) as u64,
            segment_bytes: view.all_segments().map(|s| s.meta.bytes).sum(),
            segment_rows: view.all_segments().map(|s| s.meta.rows).sum(),
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
            uploads: self
                .inner
                .segments
                .upload_counters()
                .map(TierCounters::snapshot),
            range_cache: self.inner.segments.range_cache().or_else(|| {
                self.inner
                    .follower
                    .as_ref()
                    .map(follow::Follower::range_cache)
            }),
            ..StoreStats::default()
        };
        let ranges = view
            .all_segments()
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

    /// Where the segment files live: the `parts/` folder's path, or `s3://bucket/prefix`.
    pub fn segment_location(&self) -> String {
        self.inner.segments.location()
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
                backup::write(
                    &self.inner.config.data_dir,
                    &*self.inner.segments,
                    to,
                    &catalog,
                    &parts,
                    started,
                )
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

#[cfg(test)]
mod tests;
