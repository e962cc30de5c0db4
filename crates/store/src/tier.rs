//! Two tiers of segment files: the local disk first, a bucket behind it.
//!
//! A segment is written to the local folder (durable at once, so ingest never waits for the
//! bucket) and uploaded by a thread of its own, retried with backoff while the bucket is
//! out of reach. Reads take the local copy when there is one and the bucket's otherwise (by
//! byte ranges). Local copies of uploaded files are a cache: the oldest go once the folder
//! holds more than `cache_bytes`, or once their day is older than `cache_days`. A file not
//! yet uploaded is never removed from the disk except by a deletion of the store (its rows
//! elsewhere, or its day past the retention), which deletes it in both tiers.
//!
//! What is still to upload needs no state of its own: at start, a local file the bucket
//! does not list is uploaded.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use parquet::file::reader::Length;

use crate::dir::{FileKey, FileKind, LocalDir, ReadAt, SegmentDir, SegmentFile};
use crate::range_cache::RangeCache;
use crate::uploads::TierCounters;

/// How much of the bucket's files the local disk keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most bytes of uploaded segment files kept on the local disk.
    pub bytes: u64,
    /// Uploaded files of days older than this many days (before today, UTC) leave the
    /// local disk; 0 keeps them whatever their age (within `bytes`).
    pub days: u32,
}

impl Default for CacheLimits {
    /// 10 GiB and 2 days.
    fn default() -> CacheLimits {
        CacheLimits {
            bytes: 10 << 30,
            days: 2,
        }
    }
}

/// The local folder and the bucket, with the uploading thread.
#[derive(Debug)]
pub struct TieredDir {
    shared: Arc<Shared>,
    uploader: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    local: LocalDir,
    remote: Arc<dyn SegmentDir>,
    limits: CacheLimits,
    /// Files written locally and not yet uploaded, with when they were written (ns since
    /// the epoch).
    pending: Mutex<BTreeMap<FileKey, Waiting>>,
    wake: Condvar,
    stop: AtomicBool,
    counters: Arc<TierCounters>,
    /// The ranges of the bucket's files read by queries, within what `parts/` leaves of
    /// `limits.bytes`.
    ranges: Arc<RangeCache>,
    /// The bucket's files' namespace in `ranges`.
    namespace: String,
}

/// The first wait after a failed upload; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two tries of an upload.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often the cache's limits are applied when nothing is written (days age).
const IDLE_PASS: Duration = Duration::from_secs(60);

impl TieredDir {
    /// The local folder `local` in front of `remote`; starts uploading what the bucket
    /// lacks. When the bucket cannot be listed, every local file is uploaded again (the
    /// same bytes under the same name). Ranges read from the bucket are kept in `ranges`.
    pub fn open(
        local: PathBuf,
        remote: Arc<dyn SegmentDir>,
        limits: CacheLimits,
        ranges: Arc<RangeCache>,
    ) -> io::Result<TieredDir> {
        let local = LocalDir::new(local)?;
        let here = local.list()?;
        let pending: Vec<FileKey> = match remote.list() {
            Ok(there) => {
                let there: BTreeSet<FileKey> = there.into_iter().collect();
                here.into_iter().filter(|k| !there.contains(k)).collect()
            }
            Err(e) => {
                tracing::warn!(bucket = remote.location(), error = %e, "cannot list the bucket; every local segment file is uploaded again");
                here
            }
        };
        // Waiting since the file was written (its modification time).
        let pending: Vec<(FileKey, Waiting)> = pending
            .into_iter()
            .map(|k| {
                let meta = local.local_path(&k).and_then(|p| std::fs::metadata(p).ok());
                let since_ns = meta
                    .as_ref()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or_else(logyard_model::now_ns, |d| {
                        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
                    });
                let bytes = meta.map_or(0, |m| m.len());
                (k, Waiting { since_ns, bytes })
            })
            .collect();
        let namespace = RangeCache::namespace(&remote.location());
        let shared = Arc::new(Shared {
            local,
            remote,
            ranges,
            namespace,
            limits,
            counters: Arc::default(),
            pending: Mutex::new(BTreeMap::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        shared.add_pending(pending);
        shared.evict();
        let worker = shared.clone();
        let uploader = std::thread::Builder::new()
            .name("logyard-upload".into())
            .spawn(move || worker.upload_loop())?;
        Ok(TieredDir {
            shared,
            uploader: Some(uploader),
        })
    }
}

impl Drop for TieredDir {
    /// Stops the uploads; waits a few seconds for an upload under way, then leaves it to
    /// end on its own (a slow bucket does not hold a stop; what is left is uploaded at the
    /// next start).
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(uploader) = self.uploader.take() {
            let deadline = Instant::now() + STOP_WAIT;
            while !uploader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if uploader.is_finished() {
                let _ = uploader.join();
            }
        }
    }
}

/// How long a stop waits for an upload under way.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A file written locally and not yet uploaded: since when, and its size.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    since_ns: i64,
    bytes: u64,
}

/// Gives the counters the waiting files' number, the time of the oldest and their bytes.
fn publish_pending(counters: &TierCounters, pending: &BTreeMap<FileKey, Waiting>) {
    let oldest = pending.values().map(|w| w.since_ns).min();
    let bytes = pending.values().map(|w| w.bytes).sum();
    counters.set_pending(pending.len(), oldest, bytes);
}

impl Shared {
    fn add_pending(&self, keys: impl IntoIterator<Item = (FileKey, Waiting)>) {
        let mut pending = self.pending.lock().expect("pending lock");
        pending.extend(keys);
        publish_pending(&self.counters, &pending);
        self.wake.notify_all();
    }

    fn forget_pending(&self, wanted: impl Fn(&FileKey) -> bool) {
        let mut pending = self.pending.lock().expect("pending lock");
        pending.retain(|k, _| !wanted(k));
        publish_pending(&self.counters, &pending);
    }

    fn is_pending(&self, key: &FileKey) -> bool {
        self.pending.lock().expect("pending lock").contains_key(key)
    }

    /// Uploads what is pending, oldest first (a segment's data file before its index),
    /// waiting with backoff after a failure; then applies the cache's limits.
    fn upload_loop(&self) {
        let mut backoff = FIRST_BACKOFF;
        // After a failure, new files do not shorten the wait: only the backoff's end does.
        let mut retry_at: Option<Instant> = None;
        loop {
            {
                let mut pending = self.pending.lock().expect("pending lock");
                loop {
                    if self.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let now = Instant::now();
                    let wait = match retry_at {
                        Some(at) if at > now => at - now,
                        Some(_) => break,
                        None if !pending.is_empty() => break,
                        None => IDLE_PASS,
                    };
                    let (guard, timeout) =
                        self.wake.wait_timeout(pending, wait).expect("pending lock");
                    pending = guard;
                    if timeout.timed_out() && retry_at.is_none() {
                        break;
                    }
                }
            }
            match self.upload_pending() {
                Ok(()) => {
                    backoff = FIRST_BACKOFF;
                    retry_at = None;
                    self.evict();
                }
                Err(e) => {
                    self.counters.upload_failed(&e);
                    tracing::warn!(bucket = self.remote.location(), error = %e, retry_in_s = backoff.as_secs(),
                        "cannot upload a segment file; it stays on the local disk and is tried again");
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn upload_pending(&self) -> io::Result<()> {
        let keys: Vec<FileKey> = self
            .pending
            .lock()
            .expect("pending lock")
            .keys()
            .cloned()
            .collect();
        for key in keys {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let bytes = match self.local.get(&key) {
                Ok(bytes) => bytes,
                // Deleted meanwhile: nothing to upload.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.forget_pending(|k| *k == key);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let len = bytes.len() as u64;
            self.remote.put(&key, bytes)?;
            if self.is_pending(&key) {
                self.forget_pending(|k| *k == key);
                self.counters.uploaded_files.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .uploaded_bytes
                    .fetch_add(len, Ordering::Relaxed);
            } else {
                // The store deleted the file while it was uploading: delete it again.
                self.remote.delete(&key)?;
            }
        }
        Ok(())
    }

    /// Removes local copies of uploaded files beyond the cache's limits: those of days
    /// older than `days`, then the oldest segments while the folder is over `bytes`.
    fn evict(&self) {
        let Ok(keys) = self.local.list() else {
            return;
        };
        let oldest_day = (self.limits.days > 0).then(|| {
            let now = chrono::Utc::now() - chrono::Duration::days(i64::from(self.limits.days));
            now.format("%Y-%m-%d").to_string()
        });
        let mut sizes: Vec<(FileKey, u64)> = keys
            .into_iter()
            .filter_map(|k| {
                let len = std::fs::metadata(self.local.local_path(&k)?).ok()?.len();
                Some((k, len))
            })
            .collect();
        let mut total: u64 = sizes.iter().map(|(_, n)| n).sum();
        // Oldest segments first (by day, then id).
        sizes.sort();
        for (key, len) in sizes {
            let too_old = oldest_day.as_deref().is_some_and(|d| key.day.as_str() < d);
            if !too_old && total <= self.limits.bytes {
                continue;
            }
            // Checked and removed under the lock that `put` writes under.
            let pending = self.pending.lock().expect("pending lock");
            if pending.contains_key(&key) {
                continue;
            }
            let removed = self.local.delete(&key);
            drop(pending);
            match removed {
                Ok(()) => {
                    total = total.saturating_sub(len);
                    self.counters.evicted_files.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(file = %key, error = %e, "cannot remove a cached segment file");
                }
            }
        }
        self.ranges
            .set_limit(self.limits.bytes.saturating_sub(total));
    }
}

impl SegmentDir for TieredDir {
    fn location(&self) -> String {
        self.shared.remote.location()
    }

    fn catalog_location(&self) -> Option<String> {
        self.shared.remote.catalog_location()
    }

    fn claim(&self, node: &str, about: &str) -> io::Result<()> {
        self.shared.remote.claim(node, about)
    }

    fn upload_counters(&self) -> Option<&TierCounters> {
        Some(&self.shared.counters)
    }

    fn range_cache(&self) -> Option<crate::RangeCacheStats> {
        Some(self.shared.ranges.stats())
    }

    fn publish(&self, manifest: Bytes) -> io::Result<()> {
        self.shared.remote.publish(manifest)
    }

    fn shared(&self, key: &FileKey) -> bool {
        !self.shared.is_pending(key)
    }

    fn put(&self, key: &FileKey, bytes: Bytes) -> io::Result<()> {
        // Written and marked under one lock: the cache never takes a new file for an
        // uploaded one, and the uploader never sees a mark before its file.
        let mut pending = self.shared.pending.lock().expect("pending lock");
        let waiting = Waiting {
            since_ns: logyard_model::now_ns(),
            bytes: bytes.len() as u64,
        };
        self.shared.local.put(key, bytes)?;
        pending.insert(key.clone(), waiting);
        publish_pending(&self.shared.counters, &pending);
        self.shared.wake.notify_all();
        Ok(())
    }

    fn get(&self, key: &FileKey) -> io::Result<Bytes> {
        match self.shared.local.get(key) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let got = self.shared.remote.get(key);
                self.shared
                    .counters
                    .downloaded(got.as_ref().map(Bytes::len));
                got
            }
            other => other,
        }
    }

    fn open(&self, key: &FileKey) -> io::Result<SegmentFile> {
        match self.shared.local.open(key) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let counters = self.shared.counters.clone();
                let opened = self.shared.remote.open(key);
                if let Err(e) = &opened {
                    self.shared.counters.downloaded(Err(e));
                }
                let file = opened?;
                let len = Length::len(&file);
                Ok(file.reading_through(|inner| {
                    let counted = Arc::new(Counted { inner, counters });
                    (self.shared.ranges).reader(&self.shared.namespace, key, len, counted)
                }))
            }
            other => other,
        }
    }

    fn delete(&self, key: &FileKey) -> io::Result<()> {
        self.shared.forget_pending(|k| k == key);
        self.shared.local.delete(key)?;
        if key.kind == FileKind::Data {
            self.shared.ranges.forget(&self.shared.namespace, key);
        }
        self.shared.remote.delete(key)
    }

    fn delete_day(&self, day: &str) -> io::Result<()> {
        self.shared.forget_pending(|k| k.day == day);
        self.shared.local.delete_day(day)?;
        self.shared.ranges.forget_day(&self.shared.namespace, day);
        self.shared.remote.delete_day(day)
    }

    fn list(&self) -> io::Result<Vec<FileKey>> {
        let mut keys: BTreeSet<FileKey> = self.shared.local.list()?.into_iter().collect();
        keys.extend(self.shared.remote.list()?);
        Ok(keys.into_iter().collect())
    }

    fn tidy(&self) -> io::Result<()> {
        self.shared.local.tidy()
    }

    fn local_path(&self, key: &FileKey) -> Option<PathBuf> {
        self.shared.local.local_path(key).filter(|p| p.exists())
    }

    fn move_out(&self, key: &FileKey, to: &Path) -> io::Result<()> {
        self.shared.forget_pending(|k| k == key);
        match self.shared.local.move_out(key, to) {
            Ok(()) => self.shared.remote.delete(key),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.shared.remote.move_out(key, to),
            Err(e) => Err(e),
        }
    }
}

/// Reads of a bucket's object, counted in the tier's figures.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn ReadAt>,
    counters: Arc<TierCounters>,
}

impl ReadAt for Counted {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let read = self.inner.read_at(offset, len);
        self.counters.downloaded(read.as_ref().map(Bytes::len));
        read
    }
}
