//! Which [`SegmentDir`] a store opens: the one choice `[storage]` makes.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::dir::{LocalDir, SegmentDir};
use crate::s3::{S3Config, S3Dir};
use crate::tier::{CacheLimits, TieredDir};

/// Where a store keeps its segment files.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// `parts/` in the data directory (the default).
    #[default]
    Local,
    /// An S3-compatible bucket, behind the data directory's `parts/` as a cache
    /// ([`TieredDir`]).
    S3(S3Config, CacheLimits),
    /// A directory given by the caller as the bucket, behind `parts/` (e.g. a
    /// [`crate::MemoryDir`] that fails on purpose).
    Tiered(Arc<dyn SegmentDir>, CacheLimits),
    /// A directory given by the caller, alone.
    Dir(Arc<dyn SegmentDir>),
}

impl Storage {
    /// Opens the segment directory of a store whose data directory is `data_dir`.
    pub fn open(&self, data_dir: &Path) -> io::Result<Arc<dyn SegmentDir>> {
        let parts = data_dir.join("parts");
        Ok(match self {
            Storage::Local => Arc::new(LocalDir::new(parts)?),
            Storage::S3(config, limits) => Arc::new(TieredDir::open(
                parts,
                Arc::new(S3Dir::open(config)?),
                *limits,
            )?),
            Storage::Tiered(bucket, limits) => {
                Arc::new(TieredDir::open(parts, bucket.clone(), *limits)?)
            }
            Storage::Dir(dir) => dir.clone(),
        })
    }
}
