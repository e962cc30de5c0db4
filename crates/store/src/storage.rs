//! Which [`SegmentDir`] a store opens: the one choice `[storage]` makes.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::dir::{LocalDir, SegmentDir};
use crate::range_cache::RangeCache;
use crate::s3::{S3Config, S3Dir};
use crate::tier::{CacheLimits, TieredDir};

/// The folder of a data directory that holds the ranges read from a bucket
/// ([`RangeCache`]).
pub const RANGE_CACHE: &str = "range-cache";

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
    /// Opens the segment directory of a store whose data directory is `data_dir`. A shared
    /// one (a bucket) is claimed for the node of that data directory ([`node_id`]) before
    /// anything is written to it.
    pub fn open(&self, data_dir: &Path) -> io::Result<Arc<dyn SegmentDir>> {
        let parts = data_dir.join("parts");
        let claimed = |dir: Arc<dyn SegmentDir>| -> io::Result<Arc<dyn SegmentDir>> {
            let node = node_id(&data_dir.join("state"))?;
            dir.claim(&node, &describe(&node, data_dir))?;
            Ok(dir)
        };
        let tiered = |bucket: Arc<dyn SegmentDir>, limits: &CacheLimits| -> io::Result<_> {
            let ranges = RangeCache::open(data_dir.join(RANGE_CACHE), limits.bytes)?;
            Ok(Arc::new(TieredDir::open(
                parts.clone(),
                bucket,
                *limits,
                ranges,
            )?))
        };
        Ok(match self {
            Storage::Local => Arc::new(LocalDir::new(parts)?),
            Storage::S3(config, limits) => {
                tiered(claimed(Arc::new(S3Dir::open(config)?))?, limits)?
            }
            Storage::Tiered(bucket, limits) => tiered(claimed(bucket.clone())?, limits)?,
            Storage::Dir(dir) => claimed(dir.clone())?,
        })
    }
}

/// The id of the store in `state_dir` (its `node-id` file), made at the first call: 16
/// random hex digits.
pub fn node_id(state_dir: &Path) -> io::Result<String> {
    use std::hash::{BuildHasher, Hasher};

    let path = state_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // RandomState's keys come from the operating system's random source.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let id = format!("{:016x}", hasher.finish());
    write_node_id(state_dir, &id)?;
    Ok(id)
}

/// Gives the store in `state_dir` the node id `id` (`[storage] node`): written when the
/// directory has none yet; refused when it has another, whose segments are elsewhere.
pub fn set_node_id(state_dir: &Path, id: &str) -> io::Result<()> {
    let path = state_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(have) if have.trim() == id => Ok(()),
        Ok(have) if !have.trim().is_empty() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} holds the store of node {}, and [storage] node says {id}: start that node \
                 on an empty data directory, or set node = \"{}\"",
                state_dir.parent().unwrap_or(state_dir).display(),
                have.trim(),
                have.trim()
            ),
        )),
        Ok(_) => write_node_id(state_dir, id),
        Err(e) if e.kind() == io::ErrorKind::NotFound => write_node_id(state_dir, id),
        Err(e) => Err(e),
    }
}

fn write_node_id(state_dir: &Path, id: &str) -> io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    crate::fileops::write_atomic(&state_dir.join("node-id"), format!("{id}\n").as_bytes())
}

/// What a claim says of its store: the node, its host and data directory, and when.
fn describe(node: &str, data_dir: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    serde_json::json!({
        "node": node,
        "host": host.trim(),
        "data_dir": data_dir.display().to_string(),
        "claimed": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
    .to_string()
}
