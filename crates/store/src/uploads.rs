//! The figures of the uploads to a bucket and the reads from it ([`crate::TieredDir`]), for
//! `/metrics` and the status of the storage.

use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// The tier's counters, updated by the uploading thread and the reads of the bucket.
#[derive(Debug, Default)]
pub struct TierCounters {
    /// Files uploaded.
    pub uploaded_files: AtomicU64,
    /// Bytes uploaded.
    pub uploaded_bytes: AtomicU64,
    /// Uploads that failed (each retried later).
    pub upload_errors: AtomicU64,
    /// Files written locally and not yet in the bucket.
    pub pending_files: AtomicU64,
    /// Their bytes.
    pub pending_bytes: AtomicU64,
    /// When the oldest of them was written (ns since the epoch; 0: none pending).
    pub oldest_pending_ns: AtomicI64,
    /// Local copies removed by the cache's limits.
    pub evicted_files: AtomicU64,
    /// Reads from the bucket (whole objects and byte ranges).
    pub downloads: AtomicU64,
    /// Bytes read from the bucket.
    pub downloaded_bytes: AtomicU64,
    /// Reads from the bucket that failed.
    pub download_errors: AtomicU64,
    /// The last failure of an upload or a read, and when (ns since the epoch).
    last_error: Mutex<Option<(String, i64)>>,
    /// Failed uploads and reads by [`ERROR_KINDS`].
    upload_errors_by_kind: [AtomicU64; 4],
    download_errors_by_kind: [AtomicU64; 4],
}

/// The kinds of failed requests: the bucket did not answer (the network, a timeout, a server
/// error), refused the credentials or the request, had no such object, or found a conflict.
pub const ERROR_KINDS: [&str; 4] = ["unreachable", "denied", "not_found", "conflict"];

/// The index in [`ERROR_KINDS`] of an error.
fn kind_of(e: &io::Error) -> usize {
    match e.kind() {
        io::ErrorKind::PermissionDenied => 1,
        io::ErrorKind::NotFound => 2,
        io::ErrorKind::AlreadyExists => 3,
        _ => 0,
    }
}

impl TierCounters {
    /// The figures now.
    pub fn snapshot(&self) -> UploadStats {
        let oldest = self.oldest_pending_ns.load(Ordering::Relaxed);
        let lag_ns = if oldest > 0 {
            (logyard_model::now_ns() - oldest).max(0)
        } else {
            0
        };
        UploadStats {
            pending_files: self.pending_files.load(Ordering::Relaxed),
            pending_bytes: self.pending_bytes.load(Ordering::Relaxed),
            upload_lag_seconds: lag_ns as f64 / 1e9,
            uploaded_files: self.uploaded_files.load(Ordering::Relaxed),
            uploaded_bytes: self.uploaded_bytes.load(Ordering::Relaxed),
            errors: self.upload_errors.load(Ordering::Relaxed),
            evicted_files: self.evicted_files.load(Ordering::Relaxed),
            downloads: self.downloads.load(Ordering::Relaxed),
            downloaded_bytes: self.downloaded_bytes.load(Ordering::Relaxed),
            download_errors: self.download_errors.load(Ordering::Relaxed),
            last_error: self.last_error.lock().expect("error lock").clone(),
            upload_errors_by_kind: std::array::from_fn(|i| {
                self.upload_errors_by_kind[i].load(Ordering::Relaxed)
            }),
            download_errors_by_kind: std::array::from_fn(|i| {
                self.download_errors_by_kind[i].load(Ordering::Relaxed)
            }),
        }
    }

    /// Takes the files waiting for their upload: their number, when the oldest of them was
    /// written (ns since the epoch), and their bytes.
    pub(crate) fn set_pending(&self, files: usize, oldest_ns: Option<i64>, bytes: u64) {
        self.pending_files.store(files as u64, Ordering::Relaxed);
        self.pending_bytes.store(bytes, Ordering::Relaxed);
        self.oldest_pending_ns
            .store(oldest_ns.unwrap_or(0), Ordering::Relaxed);
    }

    /// Counts a read from the bucket: its length, or its error.
    pub(crate) fn downloaded(&self, read: Result<usize, &io::Error>) {
        match read {
            Ok(len) => {
                self.downloads.fetch_add(1, Ordering::Relaxed);
                self.downloaded_bytes
                    .fetch_add(len as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.download_errors.fetch_add(1, Ordering::Relaxed);
                self.download_errors_by_kind[kind_of(e)].fetch_add(1, Ordering::Relaxed);
                self.note_error(&format!("cannot read from the bucket: {e}"));
            }
        }
    }

    /// Counts an upload that failed.
    pub(crate) fn upload_failed(&self, e: &io::Error) {
        self.upload_errors.fetch_add(1, Ordering::Relaxed);
        self.upload_errors_by_kind[kind_of(e)].fetch_add(1, Ordering::Relaxed);
        self.note_error(&format!("cannot upload a segment file: {e}"));
    }

    /// Keeps the last failure.
    pub(crate) fn note_error(&self, text: &str) {
        *self.last_error.lock().expect("error lock") =
            Some((text.to_string(), logyard_model::now_ns()));
    }
}

/// The uploads to the bucket and the reads from it at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadStats {
    /// Segment files on the local disk not yet in the bucket.
    pub pending_files: u64,
    /// Their bytes.
    pub pending_bytes: u64,
    /// How long the oldest of them has waited (0 when none waits).
    pub upload_lag_seconds: f64,
    /// Files uploaded since start.
    pub uploaded_files: u64,
    /// Bytes uploaded since start.
    pub uploaded_bytes: u64,
    /// Uploads that failed since start (each tried again).
    pub errors: u64,
    /// Local copies of uploaded files removed by the cache's limits since start.
    pub evicted_files: u64,
    /// Reads from the bucket since start (whole objects and byte ranges).
    pub downloads: u64,
    /// Bytes read from the bucket since start.
    pub downloaded_bytes: u64,
    /// Reads from the bucket that failed since start.
    pub download_errors: u64,
    /// The last failure of an upload or a read, and when (ns since the epoch).
    pub last_error: Option<(String, i64)>,
    /// Uploads that failed since start, by [`ERROR_KINDS`].
    pub upload_errors_by_kind: [u64; 4],
    /// Reads from the bucket that failed since start, by [`ERROR_KINDS`].
    pub download_errors_by_kind: [u64; 4],
}
