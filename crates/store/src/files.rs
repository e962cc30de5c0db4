//! Removing and moving the store's files: deletions that wait for the backups in progress
//! ([`Pins`]), segment files whose rows are elsewhere, and damaged segments moved to
//! `quarantine/`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::dir::FileKey;
use crate::snapshot::quarantined_ranges;
use crate::{fsutil, recover, Inner, Segment, SegmentMeta, StoreError};

/// While a backup runs no file of the store is deleted: the deletions wait here and happen
/// when the last backup ends ([`crate::Store::backup`]).
#[derive(Debug, Default)]
pub(crate) struct Pins {
    /// Backups in progress.
    pub(crate) count: usize,
    /// Segment files to remove (a merge's inputs).
    pub(crate) files: Vec<FileKey>,
    /// WAL files up to this number to remove (their records are in segments).
    pub(crate) wal_upto: Option<u64>,
}

/// Holds the store's files in place while it lives; its drop does the deletions that waited.
pub(crate) struct Pin<'a> {
    inner: &'a Inner,
}

impl<'a> Pin<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Pin<'a> {
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

impl Inner {
    /// Removes the files of segments the catalog does not list, whose rows are elsewhere (a
    /// merge's inputs, a failed flush's or merge's output); a file left behind is settled at
    /// the next start.
    pub(crate) fn remove_unlisted<'a>(&self, metas: impl Iterator<Item = &'a SegmentMeta>) {
        let paths: Vec<FileKey> = metas.flat_map(|m| [m.data_key(), m.index_key()]).collect();
        if !self.defer(|pins| pins.files.extend(paths.iter().cloned())) {
            self.remove_files(paths);
        }
    }

    /// Removes the files of segments a merge replaced: at once where a deleted file stays
    /// readable by the snapshots that hold it; otherwise once no snapshot holds the segment
    /// ([`Inner::remove_unread`], called at each pass of the flusher).
    pub(crate) fn remove_replaced(&self, replaced: Vec<Arc<Segment>>) {
        if self.segments.deleted_files_stay_readable() {
            self.remove_unlisted(replaced.iter().map(|s| &s.meta));
            return;
        }
        self.unread.lock().expect("unread lock").extend(
            replaced
                .iter()
                .map(|s| (Arc::downgrade(s), s.meta.clone(), Instant::now())),
        );
        drop(replaced);
        self.remove_unread();
    }

    /// Removes the files of replaced segments that no snapshot holds any more, and that
    /// were replaced at least [`StoreConfig::replaced_grace`] ago (query nodes reading this
    /// store's manifest may hold them too). Those still waiting when the store closes are
    /// settled at the next start (their rows are in the merged segment).
    ///
    /// [`StoreConfig::replaced_grace`]: crate::StoreConfig::replaced_grace
    pub(crate) fn remove_unread(&self) {
        let grace = self.config.replaced_grace;
        let unread: Vec<SegmentMeta> = {
            let mut waiting = self.unread.lock().expect("unread lock");
            let (unread, held): (Vec<_>, Vec<_>) = std::mem::take(&mut *waiting)
                .into_iter()
                .partition(|(segment, _, since)| {
                    segment.strong_count() == 0 && since.elapsed() >= grace
                });
            *waiting = held;
            unread.into_iter().map(|(_, meta, _)| meta).collect()
        };
        if !unread.is_empty() {
            self.remove_unlisted(unread.iter());
        }
    }

    /// Returns whether a backup is in progress.
    pub(crate) fn pinned(&self) -> bool {
        self.pins.lock().expect("pins lock").count > 0
    }

    /// Records a deletion to do once the backups in progress end, and returns true; returns
    /// false (recording nothing) when none is in progress.
    pub(crate) fn defer(&self, record: impl FnOnce(&mut Pins)) -> bool {
        let mut pins = self.pins.lock().expect("pins lock");
        if pins.count == 0 {
            return false;
        }
        record(&mut pins);
        true
    }

    /// Removes segment files whose rows are elsewhere; one left behind is settled at the next
    /// start.
    pub(crate) fn remove_files(&self, keys: Vec<FileKey>) {
        for key in keys {
            if let Err(e) = self.segments.delete(&key) {
                tracing::warn!(file = %key, location = self.segments.location(), error = %e, "cannot remove a segment file whose rows are elsewhere; it is settled at the next start")
            }
        }
    }

    /// Moves a segment found damaged while reading to quarantine, and forgets it.
    pub(crate) fn quarantine(&self, id: u64, reason: &StoreError) {
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
            recover::quarantine_files(&*self.segments, &self.quarantine_dir, &meta.day, meta.id)
        {
            tracing::error!(error = %e, "cannot move a damaged segment to quarantine");
        }
        self.counters.quarantined.fetch_add(1, Ordering::Relaxed);
    }
}
