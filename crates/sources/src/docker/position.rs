//! Api mode's positions: how far each container's log is read, by the daemon's time of its
//! lines, and the checkpoint that keeps them.
//!
//! The daemon's `since` is whole seconds, and lines may share a time, so a position is the
//! time of the last line taken and the hashes of the lines taken at that time: reading
//! again from the second of that time skips every older line, and at that very time only the
//! lines already taken (counted, so that two equal lines stay two). The checkpoint is kept
//! in `<state_dir>/checkpoints/<source>.api.json`, written atomically after the sink
//! acknowledged the lines it counts. The files mode's checkpoint is `<source>.json`, so a
//! source that changes modes keeps both.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint_file::{CheckpointData, CheckpointFile};

/// The format version of the api mode's checkpoint files.
pub(crate) const VERSION: u32 = 1;

/// Hashes kept for the lines of one instant, at most (beyond, lines of that same instant
/// may be read twice after a restart).
pub(crate) const SAME_TIME_KEPT: usize = 4096;

/// How far one container's log is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    /// The daemon's time of the last line taken (ns since the epoch).
    pub ns: i64,
    /// Hashes of the lines taken at exactly `ns`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_ns: Vec<u64>,
}

impl Position {
    /// A position before every line of time `ns` and after every older one.
    pub fn at(ns: i64) -> Position {
        Position {
            ns,
            at_ns: Vec::new(),
        }
    }

    /// The `since` to ask the daemon for: the second of the position.
    pub fn since_secs(&self) -> i64 {
        self.ns.max(0) / 1_000_000_000
    }

    /// Moves the position past a line taken.
    pub fn advance(&mut self, ns: i64, hash: u64) {
        if ns > self.ns {
            self.ns = ns;
            self.at_ns.clear();
        }
        if ns == self.ns && self.at_ns.len() < SAME_TIME_KEPT {
            self.at_ns.push(hash);
        }
    }
}

/// Decides which lines of a stream read again from a [`Position`] were taken already.
#[derive(Debug, Clone)]
pub(crate) struct Skipper {
    ns: i64,
    /// Hashes still to skip at `ns`.
    left: Vec<u64>,
}

impl Skipper {
    /// Skips what `from` counts as taken.
    pub fn new(from: &Position) -> Skipper {
        Skipper {
            ns: from.ns,
            left: from.at_ns.clone(),
        }
    }

    /// True when the line was taken already.
    pub fn skip(&mut self, ns: i64, hash: u64) -> bool {
        if ns < self.ns {
            return true;
        }
        if ns == self.ns {
            if let Some(i) = self.left.iter().position(|h| *h == hash) {
                self.left.remove(i);
                return true;
            }
        }
        false
    }
}

/// The api mode's whole checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ApiCheckpoint {
    /// [`VERSION`].
    pub version: u32,
    /// Grows with every write; the newer of the file and a sink's copy wins.
    pub seq: u64,
    /// By full container id.
    pub containers: BTreeMap<String, Position>,
}

impl ApiCheckpoint {
    /// Encodes the checkpoint as JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Decodes a checkpoint, refusing unknown versions and the file mode's checkpoints.
    pub fn decode(bytes: &[u8]) -> Result<ApiCheckpoint, String> {
        let cp: ApiCheckpoint = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if cp.version != VERSION {
            return Err(format!(
                "checkpoint format version {} is not the supported version {VERSION}",
                cp.version
            ));
        }
        Ok(cp)
    }
}

/// The key of the api mode's checkpoint: its file's stem and the sink's token key.
pub(crate) fn token_key(source: &str) -> String {
    format!("{source}.api")
}

/// The api mode's checkpoint file.
pub(crate) type PositionStore = CheckpointFile<ApiCheckpoint>;

/// The api mode's checkpoint file of a source under `state_dir`.
pub(crate) fn position_store(state_dir: &Path, source: &str) -> PositionStore {
    CheckpointFile::new(state_dir, &token_key(source))
}

impl CheckpointData for ApiCheckpoint {
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    fn from_bytes(bytes: &[u8]) -> Result<ApiCheckpoint, String> {
        ApiCheckpoint::decode(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_at_the_boundary_are_skipped_once_each() {
        let mut p = Position::at(0);
        for (ns, h) in [(5, 1), (7, 2), (7, 3), (7, 2)] {
            p.advance(ns, h);
        }
        assert_eq!(p.ns, 7);
        assert_eq!(p.at_ns, [2, 3, 2]);
        assert_eq!(p.since_secs(), 0);
        let mut s = Skipper::new(&p);
        // Read again from the second: older lines, then the three of time 7, then new ones.
        let read = [(5, 1), (7, 2), (7, 3), (7, 2), (7, 2), (7, 4), (8, 1)];
        let kept: Vec<_> = read.iter().filter(|(n, h)| !s.skip(*n, *h)).collect();
        assert_eq!(kept, [&(7, 2), &(7, 4), &(8, 1)]);
    }

    #[test]
    fn a_file_mode_checkpoint_is_refused() {
        assert!(ApiCheckpoint::decode(b"{\"version\":1,\"seq\":3,\"paths\":{}}").is_err());
        let cp = ApiCheckpoint {
            version: VERSION,
            seq: 2,
            containers: [("abc".to_string(), Position::at(9))].into(),
        };
        assert_eq!(ApiCheckpoint::decode(&cp.encode()).unwrap(), cp);
    }
}
