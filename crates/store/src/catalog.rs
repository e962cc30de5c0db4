//! The catalog: which segments make up the store, how far the WAL has been flushed, and the
//! sources' checkpoints kept with their batches.
//!
//! Kept in `state/catalog.json`, replaced atomically. A segment file that is not in the
//! catalog is looked at when the store opens (see `recover`): removed when every row of it is
//! in other segments (a flush or merge that did not finish), kept otherwise. Without a
//! catalog, or with an unreadable one, the catalog is rebuilt from the segment files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::fileops::write_atomic;
use crate::segment::SegmentMeta;
use crate::StoredCheckpoint;

/// The catalog's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Catalog {
    /// Format version, 1.
    pub version: u32,
    /// Every record with a sequence number up to this one is in a segment.
    pub flushed_seq: u64,
    /// The id the next segment gets.
    pub next_segment_id: u64,
    /// The live segments.
    pub segments: Vec<SegmentMeta>,
    /// Segments moved to `quarantine/` as damaged: searches over their time range say that
    /// rows are missing, until their files are removed from there (or retention drops their
    /// day).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<SegmentMeta>,
    /// The newest checkpoint each source kept with its batches, as of the last flush (newer
    /// ones are in the WAL).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checkpoints: BTreeMap<String, StoredCheckpoint>,
    /// Where the segment files live when not in the data directory's `parts/`
    /// ([`crate::SegmentDir::catalog_location`], e.g. `s3://logs/prod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_location: Option<String>,
}

/// What was found at the catalog's path.
#[derive(Debug)]
pub enum Loaded {
    /// A readable catalog.
    Found(Catalog),
    /// No file.
    Missing,
    /// A file that is not a catalog (why, in words).
    Damaged(String),
}

impl Catalog {
    /// An empty catalog, the first of a new store.
    pub fn empty() -> Catalog {
        Catalog {
            version: 1,
            next_segment_id: 1,
            ..Catalog::default()
        }
    }

    /// Reads the catalog. Fails only when the file cannot be read at all, or was written by a
    /// newer format this version does not know (a catalog it must not rebuild over).
    pub fn load(path: &Path) -> Result<Loaded, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(e) => return Err(e.into()),
        };
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        if let Ok(Version { version }) = serde_json::from_slice::<Version>(&bytes) {
            if version > 1 {
                return Err(StoreError::Catalog {
                    path: path.display().to_string(),
                    message: format!(
                        "format version {version} is not supported by this logyard (version 1); run the logyard that wrote it"
                    ),
                });
            }
        }
        match serde_json::from_slice::<Catalog>(&bytes) {
            Ok(catalog) if catalog.version == 1 => Ok(Loaded::Found(catalog)),
            Ok(catalog) => Ok(Loaded::Damaged(format!(
                "format version {}",
                catalog.version
            ))),
            Err(e) => Ok(Loaded::Damaged(e.to_string())),
        }
    }

    /// Writes the catalog atomically.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(self).expect("catalog serialises");
        write_atomic(path, &bytes)?;
        Ok(())
    }
}
