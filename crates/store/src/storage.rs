//! Which [`SegmentDir`] a store opens: the one choice `[storage]` makes.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::dir::{LocalDir, SegmentDir};
use crate::s3::{S3Config, S3Dir};

/// Where a store keeps its segment files.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// `parts/` in the data directory (the default).
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3(S3Config),
    /// A directory given by the caller (e.g. a [`crate::MemoryDir`]).
    Dir(Arc<dyn SegmentDir>),
}

impl Storage {
    /// Opens the segment directory of a store whose data directory is `data_dir`.
    pub fn open(&self, data_dir: &Path) -> io::Result<Arc<dyn SegmentDir>> {
        Ok(match self {
            Storage::Local => Arc::new(LocalDir::new(data_dir.join("parts"))?),
            Storage::S3(config) => Arc::new(S3Dir::open(config)?),
            Storage::Dir(dir) => dir.clone(),
        })
    }
}
