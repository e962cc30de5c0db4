//! The figures of the uploads to a bucket ([`crate::TieredDir`]), for `/metrics` and the
//! status of the storage.

use std::sync::atomic::{AtomicU64, Ordering};

/// The uploads' counters, updated by the uploading thread.
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
    /// Local copies removed by the cache's limits.
    pub evicted_files: AtomicU64,
}

impl TierCounters {
    /// The figures now.
    pub fn snapshot(&self) -> UploadStats {
        UploadStats {
            pending_files: self.pending_files.load(Ordering::Relaxed),
            uploaded_files: self.uploaded_files.load(Ordering::Relaxed),
            uploaded_bytes: self.uploaded_bytes.load(Ordering::Relaxed),
            errors: self.upload_errors.load(Ordering::Relaxed),
            evicted_files: self.evicted_files.load(Ordering::Relaxed),
        }
    }
}

/// The uploads to the bucket at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Segment files on the local disk not yet in the bucket.
    pub pending_files: u64,
    /// Files uploaded since start.
    pub uploaded_files: u64,
    /// Bytes uploaded since start.
    pub uploaded_bytes: u64,
    /// Uploads that failed since start (each tried again).
    pub errors: u64,
    /// Local copies of uploaded files removed by the cache's limits since start.
    pub evicted_files: u64,
}
