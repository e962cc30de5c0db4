//! A store's manifest: the segments it serves from its bucket prefix, published beside them
//! (`<prefix>/manifest.json`) for the query nodes that read that prefix
//! ([`crate::Follow`]).
//!
//! It lists only segments both of whose files are in the bucket (a segment waiting for its
//! upload is not there yet for other readers), is replaced within a second of a change (the
//! flusher looks every second), and at least every [`MANIFEST_HEARTBEAT`] so that its age
//! says whether its node is alive.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::segment::SegmentMeta;
use crate::Inner;

/// The manifest's format version.
pub const MANIFEST_VERSION: u32 = 1;

/// A manifest is published again after this long even when nothing changed.
pub const MANIFEST_HEARTBEAT: Duration = Duration::from_secs(30);

/// What `manifest.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeManifest {
    /// Format version, [`MANIFEST_VERSION`].
    pub version: u32,
    /// The id of the node whose store wrote it (its data directory's `state/node-id`).
    pub node: String,
    /// When it was written, RFC 3339 UTC.
    pub written_at: String,
    /// Every record with a sequence number up to this one is in a segment of the node.
    pub flushed_seq: u64,
    /// Where the node answers query nodes for its entries not in the bucket yet
    /// (`GET <address>/api/node/recent`); `None` when it does not know its address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The segments of the prefix that make up the node's store.
    pub segments: Vec<SegmentMeta>,
    /// Whether the node stopped with every entry it acknowledged in these segments (its
    /// memtable written, every segment uploaded): nothing of it is missing while it does not
    /// answer. False while it runs (an entry may come at any moment) and in older manifests.
    #[serde(default)]
    pub whole: bool,
}

impl NodeManifest {
    /// Reads a manifest, refusing a newer format than this version knows.
    pub fn parse(bytes: &[u8]) -> Result<NodeManifest, String> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version = serde_json::from_slice::<Version>(bytes)
            .map_err(|e| format!("not a manifest: {e}"))?
            .version;
        if version > MANIFEST_VERSION {
            return Err(format!(
                "format version {version} is newer than this logyard's ({MANIFEST_VERSION}): upgrade the query node"
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))
    }
}

/// What a manifest says, but for when it was written: another is published when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Said {
    segments: Vec<u64>,
    flushed_seq: u64,
    address: Option<String>,
    whole: bool,
}

/// The last manifest published and when, and the address the next one names.
#[derive(Debug, Default)]
pub(crate) struct Published {
    last: Option<(Said, Instant)>,
    /// Where query nodes reach this node ([`crate::Store::set_address`]).
    pub(crate) address: Option<String>,
}

impl Inner {
    /// Publishes the manifest when what it says changed, or the last one is
    /// [`MANIFEST_HEARTBEAT`] old; `stopping`: the last one, whole when nothing is left out.
    /// A failure is logged and tried again at the next pass.
    pub(crate) fn publish_manifest(&self, node: &str, stopping: bool) {
        let (mut segments, flushed_seq, memtable_empty) = {
            let catalog = self.catalog.lock().expect("catalog lock");
            let view = self.view.read().expect("view lock");
            let memtable_empty = view.memtable().next().is_none();
            (
                catalog.segments.clone(),
                catalog.flushed_seq,
                memtable_empty,
            )
        };
        let listed = segments.len();
        segments.retain(|m| {
            self.segments.shared(&m.data_key()) && self.segments.shared(&m.index_key())
        });
        let mut published = self.published.lock().expect("published lock");
        let said = Said {
            segments: segments.iter().map(|m| m.id).collect(),
            flushed_seq,
            address: published.address.clone(),
            whole: stopping && memtable_empty && segments.len() == listed,
        };
        if let Some((last, at)) = &published.last {
            if *last == said && at.elapsed() < MANIFEST_HEARTBEAT {
                return;
            }
        }
        let manifest = NodeManifest {
            version: MANIFEST_VERSION,
            node: node.to_string(),
            written_at: logyard_model::format_rfc3339(logyard_model::now_ns()),
            flushed_seq,
            address: said.address.clone(),
            segments,
            whole: said.whole,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        match self.segments.publish(Bytes::from(bytes)) {
            Ok(()) => published.last = Some((said, Instant::now())),
            Err(e) => tracing::warn!(location = %self.segments.location(), error = %e,
                "cannot publish the manifest for query nodes; tried again within a second"),
        }
    }

    /// Waits, at most `limit`, until no segment file waits for its upload: a stopping node
    /// then publishes a whole manifest.
    pub(crate) fn await_uploads(&self, limit: Duration) {
        let Some(counters) = self.segments.upload_counters() else {
            return;
        };
        let deadline = Instant::now() + limit;
        while counters.pending_files.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
