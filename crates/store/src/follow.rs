//! A query node's view of the bucket: the segments that the manifests under a prefix list
//! (its own `manifest.json` and those of its `node=<id>/` folders, one per ingest node),
//! read again every [`Follow::refresh`] and served beside the store's own.
//!
//! Nothing is ever written to a followed prefix: its segments are opened through
//! [`ReadOnly`], and a segment that cannot be read is reported, never quarantined.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::dir::{FileKey, SegmentDir, SegmentFile};
use crate::manifest::NodeManifest;
use crate::s3::{S3Config, S3Dir};
use crate::segment::{Segment, SegmentMeta};
use crate::Inner;

/// What a query node reads: every manifest under a bucket's prefix.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The bucket, and the prefix under which the nodes write (theirs or their `node=<id>/`
    /// folders).
    pub bucket: S3Config,
    /// How often the manifests are read again.
    pub refresh: Duration,
}

/// The default of [`Follow::refresh`] (`[storage] refresh_interval`).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// One node whose manifest a query node reads, as of the last refresh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStatus {
    /// The node's id, from its manifest (empty until one is read).
    pub node: String,
    /// Its prefix, `s3://bucket/prefix[/node=<id>]`.
    pub location: String,
    /// When its manifest was written, RFC 3339.
    pub written_at: Option<String>,
    /// Seconds between that and the last refresh.
    pub age_seconds: Option<f64>,
    /// Segments served from it.
    pub segments: usize,
    /// Their rows.
    pub rows: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Why it is not (wholly) served, if so: no manifest, one that cannot be read, a
    /// segment that cannot be opened, the bucket out of reach.
    pub error: Option<String>,
}

/// The followed prefix and what was read of it.
pub(crate) struct Follower {
    root: S3Dir,
    pub(crate) refresh: Duration,
    nodes: Mutex<BTreeMap<String, FollowedNode>>,
    next_origin: Mutex<u32>,
}

struct FollowedNode {
    /// Tells this node's segments apart from others' with the same ids (in the column cache).
    origin: u32,
    dir: ReadOnly,
    segments: BTreeMap<u64, Arc<Segment>>,
    status: NodeStatus,
}

impl Follower {
    /// Connects to the bucket of `follow` (no request is sent yet).
    pub(crate) fn new(follow: &Follow) -> io::Result<Follower> {
        Ok(Follower {
            root: S3Dir::open(&follow.bucket)?,
            refresh: if follow.refresh.is_zero() {
                REFRESH_INTERVAL
            } else {
                follow.refresh
            },
            nodes: Mutex::new(BTreeMap::new()),
            next_origin: Mutex::new(1),
        })
    }

    /// The nodes as of the last refresh.
    pub(crate) fn statuses(&self) -> Vec<NodeStatus> {
        let nodes = self.nodes.lock().expect("nodes lock");
        nodes.values().map(|n| n.status.clone()).collect()
    }
}

impl Inner {
    /// Reads the manifests again and makes the segments they list the followed part of the
    /// view. A bucket out of reach keeps what was read before (each node says why).
    pub(crate) fn refresh_followed(&self, follower: &Follower) {
        let listed = match follower.root.manifests() {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(location = %follower.root.location(), error = %e, "cannot read the nodes' manifests; serving what was read before");
                let mut nodes = follower.nodes.lock().expect("nodes lock");
                for node in nodes.values_mut() {
                    node.status.error = Some(format!("the bucket did not answer: {e}"));
                }
                return;
            }
        };
        let mut nodes = follower.nodes.lock().expect("nodes lock");
        nodes.retain(|folder, _| listed.iter().any(|(f, _)| f == folder));
        for (folder, manifest) in listed {
            let node = nodes.entry(folder.clone()).or_insert_with(|| {
                let mut next = follower.next_origin.lock().expect("origin lock");
                let origin = *next;
                *next += 1;
                let dir = ReadOnly(follower.root.node_dir(&folder));
                FollowedNode {
                    origin,
                    status: NodeStatus {
                        location: dir.location(),
                        ..NodeStatus::default()
                    },
                    dir,
                    segments: BTreeMap::new(),
                }
            });
            match manifest.as_deref().map(NodeManifest::parse) {
                None => {
                    node.segments.clear();
                    node.status.error = Some(
                        "no manifest.json: its segments were written by a logyard that publishes none; \
                         start its node with this version once (it publishes one at its first flush)"
                            .to_string(),
                    );
                }
                Some(Err(why)) => node.status.error = Some(format!("manifest.json: {why}")),
                Some(Ok(manifest)) => self.follow_manifest(node, manifest),
            }
        }
        let followed: Vec<Arc<Segment>> = nodes
            .values()
            .flat_map(|n| n.segments.values().cloned())
            .collect();
        drop(nodes);
        self.view.write().expect("view lock").followed = followed;
    }

    /// Opens the segments of `manifest` not opened yet, and lets go of those it no longer
    /// lists (merged or dropped by their node).
    fn follow_manifest(&self, node: &mut FollowedNode, manifest: NodeManifest) {
        let wanted: BTreeMap<u64, SegmentMeta> =
            manifest.segments.into_iter().map(|m| (m.id, m)).collect();
        node.segments
            .retain(|id, seg| wanted.get(id).is_some_and(|m| *m == seg.meta));
        let mut error = None;
        for (id, meta) in wanted {
            if node.segments.contains_key(&id) {
                continue;
            }
            match Segment::open(&node.dir, meta) {
                Ok(segment) => {
                    let segment = segment
                        .with_cache(self.cache.clone())
                        .with_origin(node.origin);
                    node.segments.insert(id, Arc::new(segment));
                }
                Err(e) => {
                    tracing::warn!(location = %node.status.location, segment = id, error = %e, "a segment of a followed node cannot be opened; tried again at the next refresh");
                    error.get_or_insert_with(|| format!("segment {id}: {e}"));
                }
            }
        }
        let age = chrono::DateTime::parse_from_rfc3339(&manifest.written_at)
            .ok()
            .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_milliseconds());
        node.status = NodeStatus {
            node: manifest.node,
            location: node.status.location.clone(),
            written_at: Some(manifest.written_at),
            age_seconds: age.map(|ms| ms.max(0) as f64 / 1000.0),
            segments: node.segments.len(),
            rows: node.segments.values().map(|s| s.meta.rows).sum(),
            bytes: node.segments.values().map(|s| s.meta.bytes).sum(),
            error,
        };
    }

    /// Refreshes the followed segments every [`Follower::refresh`] until the store closes.
    pub(crate) fn run_follower(&self, follower: &Follower) {
        let mut last = Instant::now();
        while !self.shutdown.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= follower.refresh {
                self.refresh_followed(follower);
                last = Instant::now();
            }
        }
    }
}

/// A bucket prefix that this store only reads: every write is refused.
#[derive(Debug)]
pub(crate) struct ReadOnly(S3Dir);

fn refused(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{what}: a query node writes nothing to the prefixes it reads"),
    )
}

impl SegmentDir for ReadOnly {
    fn location(&self) -> String {
        self.0.location()
    }

    fn put(&self, key: &FileKey, _bytes: Bytes) -> io::Result<()> {
        Err(refused(&format!("cannot write {key}")))
    }

    fn get(&self, key: &FileKey) -> io::Result<Bytes> {
        self.0.get(key)
    }

    fn open(&self, key: &FileKey) -> io::Result<SegmentFile> {
        self.0.open(key)
    }

    fn delete(&self, key: &FileKey) -> io::Result<()> {
        Err(refused(&format!("cannot delete {key}")))
    }

    fn delete_day(&self, day: &str) -> io::Result<()> {
        Err(refused(&format!("cannot delete the day {day}")))
    }

    fn list(&self) -> io::Result<Vec<FileKey>> {
        self.0.list()
    }

    fn claim(&self, _node: &str, _about: &str) -> io::Result<()> {
        Err(refused("cannot claim the prefix"))
    }

    fn publish(&self, _manifest: Bytes) -> io::Result<()> {
        Err(refused("cannot publish a manifest"))
    }

    fn move_out(&self, key: &FileKey, _to: &Path) -> io::Result<()> {
        Err(refused(&format!("cannot move {key} to quarantine")))
    }

    fn local_path(&self, _key: &FileKey) -> Option<PathBuf> {
        None
    }
}
