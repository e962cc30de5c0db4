//! The catalog: which segments make up the store, how far the WAL has been flushed, and the
//! sources' checkpoints kept with their batches.
//!
//! Kept in `state/catalog.json`, replaced atomically. A segment file that is not in the
//! catalog was written by a flush or merge that did not finish; it is removed at start, and
//! its records are still in the WAL or in the segments it was to replace.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::fsutil::write_atomic;
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
    /// The newest checkpoint each source kept with its batches, as of the last flush (newer
    /// ones are in the WAL).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checkpoints: BTreeMap<String, StoredCheckpoint>,
}

impl Catalog {
    /// Reads the catalog, or returns an empty one when the file does not exist.
    pub fn load(path: &Path) -> Result<Catalog, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Catalog {
                    version: 1,
                    next_segment_id: 1,
                    ..Catalog::default()
                })
            }
            Err(e) => return Err(e.into()),
        };
        let catalog: Catalog =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Catalog {
                path: path.display().to_string(),
                message: format!(
                    "{e}; the file is damaged: restore it from a backup, or move it away to rebuild the store from the WAL only"
                ),
            })?;
        if catalog.version != 1 {
            return Err(StoreError::Catalog {
                path: path.display().to_string(),
                message: format!(
                    "format version {} is not supported by this logyard (version 1)",
                    catalog.version
                ),
            });
        }
        Ok(catalog)
    }

    /// Writes the catalog atomically.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(self).expect("catalog serialises");
        write_atomic(path, &bytes)?;
        Ok(())
    }
}
