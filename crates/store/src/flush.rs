//! The flusher thread: every `flush_interval` or `flush_bytes` it freezes the memtable,
//! writes it as segments, records them in the catalog, and only then removes the WAL files
//! they came from; between flushes it merges and applies retention.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logyard_model::Record;

use crate::retention::{day_number, day_of};
use crate::{fsutil, segment, Frozen, Inner, MemBatch, Segment, StoreError};

/// The longest a store whose segments other nodes read waits between two looks at its
/// manifest.
pub(crate) const PUBLISH_TICK: Duration = Duration::from_secs(1);

/// How long a stopping store whose segments other nodes read waits for its last uploads
/// before its last manifest (a slow bucket does not hold a stop; the next start uploads the
/// rest).
const STOP_UPLOAD_WAIT: Duration = Duration::from_secs(5);

impl Inner {
    pub(crate) fn signal_flush(&self) {
        let (lock, cv) = &self.flush_signal;
        *lock.lock().expect("flush lock") = true;
        cv.notify_all();
    }

    /// Flushes every `flush_interval` (or when signalled), then merges and applies
    /// retention; publishes the manifest at least every [`PUBLISH_TICK`] for a store whose
    /// segments other nodes read, so that an upload reaches the query nodes soon whatever
    /// the flush interval.
    pub(crate) fn run_flusher(&self) {
        let mut last_retention = Instant::now();
        let mut last_flush = Instant::now();
        let tick = match self.node {
            Some(_) => self.config.flush_interval.min(PUBLISH_TICK),
            None => self.config.flush_interval,
        };
        loop {
            let signalled = {
                let (lock, cv) = &self.flush_signal;
                let guard = lock.lock().expect("flush lock");
                let (mut guard, _) = cv
                    .wait_timeout_while(guard, tick, |signalled| !*signalled)
                    .expect("flush lock");
                std::mem::replace(&mut *guard, false)
            };
            let stopping = self.shutdown.load(Ordering::SeqCst);
            if !(signalled || stopping || last_flush.elapsed() >= self.config.flush_interval) {
                self.publish();
                continue;
            }
            last_flush = Instant::now();
            if let Err(e) = self.flush_once() {
                tracing::error!(error = %e, "flush failed; will retry");
            }
            if stopping {
                // Drain what the writer acknowledged after the first pass.
                if let Err(e) = self.flush_once() {
                    tracing::error!(error = %e, "final flush failed; the WAL keeps the data");
                }
                if let Some(node) = &self.node {
                    self.await_uploads(STOP_UPLOAD_WAIT);
                    self.publish_manifest(node, true);
                }
                return;
            }
            self.remove_unread();
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
            self.publish();
        }
    }

    /// Publishes the manifest for query nodes, when the segments are where they read them.
    fn publish(&self) {
        if let Some(node) = &self.node {
            self.publish_manifest(node, false);
        }
    }

    /// Freezes the active memtable, writes every frozen part to segments, oldest first.
    pub(crate) fn flush_once(&self) -> Result<(), StoreError> {
        let _flushing = self.flushing.lock().expect("flushing lock");
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

    /// Writes the oldest frozen part of the memtable (`batches`) as one segment per day,
    /// records them in the catalog, and puts them in the view in its place.
    pub(crate) fn write_frozen(&self, batches: &[Arc<MemBatch>]) -> Result<(), StoreError> {
        let records: Vec<&Record> = batches.iter().flat_map(|b| b.records()).collect();
        if records.is_empty() {
            self.view.write().expect("view lock").frozen.remove(0);
            return Ok(());
        }
        let mut records = records;
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
                let meta = segment::write(&*self.segments, id, &day, &recs, self.layout())?;
                new.push(Arc::new(
                    Segment::open(&*self.segments, meta)?.with_cache(self.cache.clone()),
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
        // Under one lock (and the catalog's, as every change of the segments): a snapshot
        // sees the rows in the memtable or in the segments, never in both.
        let mut view = self.view.write().expect("view lock");
        view.segments.extend(new);
        view.frozen.remove(0);
        Ok(())
    }

    /// How segments are cut and compressed.
    pub(crate) fn layout(&self) -> segment::Layout {
        segment::Layout {
            block_rows: self.config.block_rows,
            compression_level: self.config.compression_level,
            fields: self.config.field_columns,
        }
    }
}
