//! A query node's view of the bucket: the segments that the manifests under a prefix list
//! (its own `manifest.json` and those of its `node=<id>/` folders, one per ingest node),
//! read again every [`Follow::refresh`] and served beside the store's own; and, from each
//! node that answers at the address of its manifest, its cut ([`Recent`]): the segments it
//! has in the bucket and the rows it has not uploaded yet, asked for every
//! [`Follow::recent_interval`].
//!
//! Nothing is ever written to a followed prefix: its segments are opened through
//! [`ReadOnly`], and a segment that cannot be read is reported, never quarantined.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::dir::{FileKey, SegmentDir, SegmentFile};
use logyard_model::Record;

use crate::manifest::NodeManifest;
use crate::range_cache::RangeCache;
use crate::recent::Recent;
use crate::s3::{S3Config, S3Dir};
use crate::segment::{Segment, SegmentMeta};
use crate::{Gap, Inner, MemBatch};

/// What a query node reads: every manifest under a bucket's prefix.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The bucket, and the prefix under which the nodes write (theirs or their `node=<id>/`
    /// folders).
    pub bucket: S3Config,
    /// How often the manifests are read again.
    pub refresh: Duration,
    /// How the nodes are asked for their entries not in the bucket yet ([`Recent`]); `None`:
    /// only what their manifests list is served.
    pub link: Option<Arc<dyn NodeLink>>,
    /// How often each node is asked.
    pub recent_interval: Duration,
    /// Most bytes of the ranges read from the nodes' segments kept on the local disk
    /// (`<data dir>/range-cache/`, [`crate::RangeCache`]); 0 keeps none.
    pub cache_bytes: u64,
    /// Most bytes of rows of one node's segments not in the bucket yet held in memory; the
    /// rest is named as out of reach until uploaded (`[storage] recent_max_bytes`).
    pub recent_max_bytes: u64,
}

/// The default of [`Follow::refresh`] (`[storage] refresh_interval`).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The default of [`Follow::recent_interval`] (`[storage] recent_interval`).
pub const RECENT_INTERVAL: Duration = Duration::from_secs(1);

/// The default of [`Follow::recent_max_bytes`] (`[storage] recent_max_bytes`), and what a
/// node sends of its segments not in the bucket yet when the asker names no limit.
pub const RECENT_MAX_BYTES: u64 = 256 << 20;

/// How a query node asks a node, at the address of its manifest, for its cut
/// ([`crate::Store::recent`] in its wire format, [`Recent::encode`]).
pub trait NodeLink: std::fmt::Debug + Send + Sync {
    /// The node's answer to `known` segments and memtable rows up to `since`, with at most
    /// about `max_bytes` of rows of other segments; an error says why there is none.
    fn recent(
        &self,
        address: &str,
        known: &[u64],
        since: u64,
        max_bytes: u64,
    ) -> Result<Vec<u8>, String>;
}

/// One node whose manifest a query node reads, as of the last refresh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStatus {
    /// The node's id, from its manifest (empty until one is read).
    pub node: String,
    /// Its prefix, `s3://bucket/prefix[/node=<id>]`.
    pub location: String,
    /// Where it answers for its last entries, from its manifest.
    pub address: Option<String>,
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
    /// Rows served that are not in the bucket yet (fetched from the node).
    pub recent_rows: u64,
    /// Whether the node answered the last request for its last entries.
    pub linked: bool,
    /// Why it is not (wholly) served, if so: no manifest, one that cannot be read, a
    /// segment that cannot be opened, the bucket or the node out of reach.
    pub error: Option<String>,
}

/// The followed prefix and what was read of it.
pub(crate) struct Follower {
    root: S3Dir,
    /// The ranges read from the nodes' segments.
    ranges: Arc<RangeCache>,
    pub(crate) refresh: Duration,
    link: Option<Arc<dyn NodeLink>>,
    recent_interval: Duration,
    recent_max_bytes: u64,
    /// Held by a refresh or a poll from start to end, network calls included.
    nodes: Mutex<BTreeMap<String, FollowedNode>>,
    /// The nodes' statuses as of the last refresh or poll, for readers that must not wait
    /// for one (`GET /api/nodes`).
    statuses: Mutex<Vec<NodeStatus>>,
    next_origin: AtomicU32,
}

struct FollowedNode {
    /// Tells this node's segments apart from others' with the same ids (in the column cache).
    origin: u32,
    dir: ReadOnly,
    segments: BTreeMap<u64, Arc<Segment>>,
    /// The last manifest read: what is served while the node does not answer.
    manifest: Option<NodeManifest>,
    /// Rows of the node's segments not in the bucket yet, by segment id.
    unshared: BTreeMap<u64, Arc<MemBatch>>,
    /// Rows of the node's memtable, oldest first.
    mem: Vec<Arc<MemBatch>>,
    /// The highest memtable sequence number held.
    since: u64,
    /// Why the node's entries not in the bucket yet are not all served, as of the last time
    /// it was asked: it did not answer, or sent less than it holds (more than
    /// [`Follow::recent_max_bytes`]).
    link_error: Option<String>,
    /// Whether the segments served are those of the node's last answer (else its manifest's).
    linked: bool,
    status: NodeStatus,
}

impl FollowedNode {
    fn recent_rows(&self) -> u64 {
        self.unshared
            .values()
            .chain(&self.mem)
            .map(|b| b.records().len() as u64)
            .sum()
    }

    /// What of the node is out of reach: its entries not in the bucket yet while it does not
    /// answer (none when its manifest says it has none), or all of it without a manifest.
    fn gap(&self) -> Option<Gap> {
        let whole = if self.linked {
            self.link_error.is_none()
        } else {
            self.manifest.as_ref().is_some_and(|m| m.whole)
        };
        if whole {
            return None;
        }
        let name = match &self.manifest {
            Some(m) => format!("node={}: entries not in the bucket yet", m.node),
            None => format!("{}: every entry (no manifest read)", self.status.location),
        };
        let reason = (self.link_error.clone())
            .or_else(|| self.status.error.clone())
            .unwrap_or_else(|| "the node has not been asked for its last entries yet".to_string());
        Some(Gap { name, reason })
    }

    /// Serves the manifest's segments alone, forgetting what the node sent.
    fn unlink(&mut self) {
        self.linked = false;
        self.unshared.clear();
        self.mem.clear();
        self.since = 0;
    }
}

impl Follower {
    /// Connects to the bucket of `follow` (no request is sent yet); what is read of it is
    /// kept in the range cache under `data_dir`.
    pub(crate) fn new(follow: &Follow, data_dir: &Path) -> io::Result<Follower> {
        let or = |d: Duration, default| if d.is_zero() { default } else { d };
        Ok(Follower {
            root: S3Dir::open(&follow.bucket)?,
            ranges: RangeCache::open(data_dir.join(crate::RANGE_CACHE), follow.cache_bytes)?,
            refresh: or(follow.refresh, REFRESH_INTERVAL),
            link: follow.link.clone(),
            recent_interval: or(follow.recent_interval, RECENT_INTERVAL),
            recent_max_bytes: follow.recent_max_bytes,
            nodes: Mutex::new(BTreeMap::new()),
            statuses: Mutex::new(Vec::new()),
            next_origin: AtomicU32::new(1),
        })
    }

    /// The figures of the ranges of the nodes' segments kept on the local disk.
    pub(crate) fn range_cache(&self) -> crate::RangeCacheStats {
        self.ranges.stats()
    }

    /// The nodes as of the last refresh or poll.
    pub(crate) fn statuses(&self) -> Vec<NodeStatus> {
        self.statuses.lock().expect("statuses lock").clone()
    }
}

impl Inner {
    /// Reads the manifests again: nodes come and go, and a node whose last entries are not
    /// fetched is served as its manifest says. A bucket out of reach keeps what was read
    /// before (each node says why).
    pub(crate) fn refresh_followed(&self, follower: &Follower) {
        let listed = match follower.root.manifests() {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(location = %follower.root.location(), error = %e, "cannot read the nodes' manifests; serving what was read before");
                let mut nodes = follower.nodes.lock().expect("nodes lock");
                for node in nodes.values_mut() {
                    node.status.error = Some(format!("the bucket did not answer: {e}"));
                }
                self.publish_followed(follower, &nodes);
                return;
            }
        };
        let mut nodes = follower.nodes.lock().expect("nodes lock");
        nodes.retain(|folder, _| listed.iter().any(|(f, _)| f == folder));
        for (folder, manifest) in listed {
            let node = nodes.entry(folder.clone()).or_insert_with(|| {
                let origin = follower.next_origin.fetch_add(1, Ordering::Relaxed);
                let dir = ReadOnly::new(follower.root.node_dir(&folder), &follower.ranges);
                FollowedNode {
                    origin,
                    status: NodeStatus {
                        location: dir.location(),
                        ..NodeStatus::default()
                    },
                    dir,
                    segments: BTreeMap::new(),
                    manifest: None,
                    unshared: BTreeMap::new(),
                    mem: Vec::new(),
                    since: 0,
                    link_error: None,
                    linked: false,
                }
            });
            match manifest.as_deref().map(NodeManifest::parse) {
                None => {
                    node.unlink();
                    node.manifest = None;
                    node.segments.clear();
                    node.status.error = Some(
                        "no manifest.json: its segments were written by a logyard that publishes none; \
                         start its node with this version once (it publishes one at its first flush)"
                            .to_string(),
                    );
                }
                Some(Err(why)) => node.status.error = Some(format!("manifest.json: {why}")),
                Some(Ok(manifest)) => {
                    node.status.node = manifest.node.clone();
                    node.status.address = manifest.address.clone();
                    node.status.written_at = Some(manifest.written_at.clone());
                    node.status.age_seconds = age_seconds(&manifest.written_at);
                    let error = if node.linked {
                        None
                    } else {
                        self.serve_segments(node, &manifest.segments)
                    };
                    node.manifest = Some(manifest);
                    if !node.linked {
                        node.status.error = node.link_error.clone().or(error);
                    }
                }
            }
            summarize(node);
        }
        self.publish_followed(follower, &nodes);
    }

    /// Asks every node with an address for its last entries ([`Recent`]). A node that
    /// answers is served as it answered; one that does not is served as its manifest says.
    pub(crate) fn poll_recent(&self, follower: &Follower) {
        let Some(link) = &follower.link else {
            return;
        };
        let mut nodes = follower.nodes.lock().expect("nodes lock");
        for node in nodes.values_mut() {
            let Some((id, address)) = node
                .manifest
                .as_ref()
                .map(|m| (m.node.clone(), m.address.clone()))
            else {
                continue;
            };
            let Some(address) = address else {
                let why =
                    "its manifest names no address: its entries not yet in the bucket are not \
                           served (set [server] advertise_url on that node)";
                node.link_error = Some(why.to_string());
                node.status.error = node.link_error.clone();
                continue;
            };
            let known: Vec<u64> = node.unshared.keys().copied().collect();
            let held: u64 = node.unshared.values().map(|b| b.bytes() as u64).sum();
            let room = follower.recent_max_bytes.saturating_sub(held);
            let answer = link
                .recent(&address, &known, node.since, room)
                .and_then(|bytes| Recent::decode(&bytes));
            let segment_error = match answer {
                Ok(recent) if recent.header.node == id => {
                    let (error, withheld) = self.serve_recent(node, recent);
                    node.link_error = (withheld > 0).then(|| {
                        format!(
                            "{withheld} of its segments not in the bucket yet are not served: their \
                             rows take more than [storage] recent_max_bytes ({} MiB) holds; they are \
                             once uploaded",
                            follower.recent_max_bytes >> 20
                        )
                    });
                    error
                }
                Ok(recent) => {
                    node.link_error = Some(format!(
                        "{address} answers as node {}, not {id}: its entries not yet in the bucket are not served",
                        recent.header.node
                    ));
                    self.fall_back(node)
                }
                Err(e) => {
                    if node.linked {
                        tracing::warn!(node = %id, %address, error = %e, "a followed node does not answer; serving what its manifest lists");
                    }
                    node.link_error = Some(format!(
                        "{address} did not answer ({e}): its entries not yet in the bucket are not served"
                    ));
                    self.fall_back(node)
                }
            };
            node.status.error = node.link_error.clone().or(segment_error);
            summarize(node);
        }
        self.publish_followed(follower, &nodes);
    }

    /// Serves a node's manifest alone; returns the first segment that could not be opened.
    fn fall_back(&self, node: &mut FollowedNode) -> Option<String> {
        node.unlink();
        let segments = node
            .manifest
            .as_ref()
            .map(|m| m.segments.clone())
            .unwrap_or_default();
        self.serve_segments(node, &segments)
    }

    /// Serves a node's cut: its segments in the bucket, and the rows of the rest. Returns the
    /// first segment that could not be opened, and how many segments not in the bucket the
    /// node did not send the rows of.
    fn serve_recent(&self, node: &mut FollowedNode, recent: Recent) -> (Option<String>, usize) {
        let error = self.serve_segments(node, &recent.header.shared);
        let header = recent.header;
        node.unshared
            .retain(|id, _| header.unshared_ids.contains(id));
        for (id, rows) in recent.unshared {
            node.unshared.insert(id, MemBatch::new(rows));
        }
        let withheld = header
            .unshared_ids
            .iter()
            .filter(|id| !node.unshared.contains_key(id))
            .count();
        // Memtable rows below the node's memtable are in its segments now.
        let from = header.mem_from.unwrap_or(u64::MAX);
        node.mem = std::mem::take(&mut node.mem)
            .into_iter()
            .filter_map(|batch| {
                if batch.records().iter().all(|r| r.seq >= from) {
                    return Some(batch);
                }
                let kept: Vec<Record> = batch
                    .records()
                    .iter()
                    .filter(|r| r.seq >= from)
                    .cloned()
                    .collect();
                (!kept.is_empty()).then(|| MemBatch::new(kept))
            })
            .collect();
        if let Some(newest) = recent.mem.iter().map(|r| r.seq).max() {
            node.since = node.since.max(newest);
            node.mem.push(MemBatch::new(recent.mem));
        }
        node.linked = true;
        (error, withheld)
    }

    /// Opens the segments listed not opened yet, and lets go of those no longer listed
    /// (merged or dropped by their node). Returns the first that could not be opened.
    fn serve_segments(&self, node: &mut FollowedNode, listed: &[SegmentMeta]) -> Option<String> {
        let wanted: BTreeMap<u64, &SegmentMeta> = listed.iter().map(|m| (m.id, m)).collect();
        node.segments
            .retain(|id, seg| wanted.get(id).is_some_and(|m| **m == seg.meta));
        let mut error = None;
        let new: Vec<SegmentMeta> = wanted
            .into_values()
            .filter(|meta| !node.segments.contains_key(&meta.id))
            .cloned()
            .collect();
        for (meta, opened) in Segment::open_all(&node.dir, new) {
            let id = meta.id;
            match opened {
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
        error
    }

    /// Makes what the nodes serve the followed part of the view, and their statuses those
    /// [`Follower::statuses`] returns.
    fn publish_followed(&self, follower: &Follower, nodes: &BTreeMap<String, FollowedNode>) {
        *follower.statuses.lock().expect("statuses lock") =
            nodes.values().map(|n| n.status.clone()).collect();
        let segments: Vec<Arc<Segment>> = nodes
            .values()
            .flat_map(|n| n.segments.values().cloned())
            .collect();
        let mem: Vec<Arc<MemBatch>> = nodes
            .values()
            .flat_map(|n| n.unshared.values().chain(&n.mem).cloned())
            .collect();
        let gaps = nodes.values().filter_map(FollowedNode::gap).collect();
        let mut view = self.view.write().expect("view lock");
        view.followed = segments;
        view.followed_mem = mem;
        view.followed_gaps = gaps;
    }

    /// Refreshes the manifests every [`Follower::refresh`] and asks the nodes for their last
    /// entries every `recent_interval`, until the store closes.
    pub(crate) fn run_follower(&self, follower: &Follower) {
        let (mut refreshed, mut polled) = (Instant::now(), Instant::now());
        while !self.shutdown.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            if refreshed.elapsed() >= follower.refresh {
                self.refresh_followed(follower);
                refreshed = Instant::now();
            }
            if polled.elapsed() >= follower.recent_interval {
                self.poll_recent(follower);
                polled = Instant::now();
            }
        }
    }
}

/// The figures of a node's status from what it serves.
fn summarize(node: &mut FollowedNode) {
    node.status.segments = node.segments.len();
    node.status.rows =
        node.segments.values().map(|s| s.meta.rows).sum::<u64>() + node.recent_rows();
    node.status.bytes = node.segments.values().map(|s| s.meta.bytes).sum();
    node.status.recent_rows = node.recent_rows();
    node.status.linked = node.linked;
}

/// Seconds since an RFC 3339 time (0 for one in the future).
fn age_seconds(written_at: &str) -> Option<f64> {
    let now = logyard_model::now_ns();
    let then = logyard_model::parse_time(written_at, now).ok()?;
    Some(now.saturating_sub(then).max(0) as f64 / 1e9)
}

/// A bucket prefix that this store only reads: every write is refused; what is read is
/// kept in the range cache.
#[derive(Debug)]
pub(crate) struct ReadOnly {
    dir: S3Dir,
    ranges: Arc<RangeCache>,
    namespace: String,
}

impl ReadOnly {
    fn new(dir: S3Dir, ranges: &Arc<RangeCache>) -> ReadOnly {
        ReadOnly {
            namespace: RangeCache::namespace(&dir.location()),
            dir,
            ranges: ranges.clone(),
        }
    }
}

fn refused(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{what}: a query node writes nothing to the prefixes it reads"),
    )
}

impl SegmentDir for ReadOnly {
    fn location(&self) -> String {
        self.dir.location()
    }

    fn put(&self, key: &FileKey, _bytes: Bytes) -> io::Result<()> {
        Err(refused(&format!("cannot write {key}")))
    }

    fn get(&self, key: &FileKey) -> io::Result<Bytes> {
        self.dir.get(key)
    }

    fn open(&self, key: &FileKey) -> io::Result<SegmentFile> {
        let file = self.dir.open(key)?;
        let len = parquet::file::reader::Length::len(&file);
        Ok(file.reading_through(|inner| self.ranges.reader(&self.namespace, key, len, inner)))
    }

    fn delete(&self, key: &FileKey) -> io::Result<()> {
        Err(refused(&format!("cannot delete {key}")))
    }

    fn delete_day(&self, day: &str) -> io::Result<()> {
        Err(refused(&format!("cannot delete the day {day}")))
    }

    fn list(&self) -> io::Result<Vec<FileKey>> {
        self.dir.list()
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
