//! The position of an SSH source on its host, in `<state_dir>/checkpoints/<source>.json`,
//! written atomically (tmp, fsync, rename, fsync of the folder) after each batch the sink
//! acknowledged.
//!
//! - For a container: the stamp of the newest delivered line (`since_ns`, asked again as
//!   `docker logs --since`, which includes lines of that very stamp) and the hashes of the
//!   delivered lines that carry that stamp, so that they are not delivered twice.
//! - For a file: the offset after the last delivered line, and a hash of the bytes just
//!   before it (up to 256 bytes). The next read starts that many bytes earlier; when
//!   they differ, or the file is shorter, the file was truncated or replaced and is read
//!   from its start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checkpoint_file::CheckpointData;

/// The format version of the file.
const VERSION: u32 = 1;

/// Bytes before a file's offset whose hash tells the same file from a replaced one.
pub(crate) const TAIL_BYTES: usize = 256;

/// The position in one container's logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerPos {
    /// The stamp (ns) of the newest delivered line.
    pub since_ns: i64,
    /// FNV-1a hashes of the delivered lines stamped `since_ns` (stamp included).
    #[serde(default)]
    pub at_since: Vec<u64>,
}

/// The position in one remote file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PathPos {
    /// Bytes delivered: the next line starts here.
    pub offset: u64,
    /// Bytes before `offset` covered by `tail_hash`.
    pub tail_len: u32,
    /// FNV-1a of those bytes.
    pub tail_hash: u64,
}

/// An SSH source's whole position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SshCheckpoint {
    /// [`VERSION`].
    pub version: u32,
    /// By container name.
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerPos>,
    /// By remote path.
    #[serde(default)]
    pub paths: BTreeMap<String, PathPos>,
}

/// The checkpoint file of a source.
pub(crate) type CheckpointFile = crate::checkpoint_file::CheckpointFile<SshCheckpoint>;

impl CheckpointData for SshCheckpoint {
    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    fn from_bytes(bytes: &[u8]) -> Result<SshCheckpoint, String> {
        let cp: SshCheckpoint = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if cp.version != VERSION {
            return Err(format!(
                "checkpoint format version {} is not the supported version {VERSION}",
                cp.version
            ));
        }
        Ok(cp)
    }
}

impl SshCheckpoint {
    /// A checkpoint of nothing read yet.
    pub fn empty() -> SshCheckpoint {
        SshCheckpoint {
            version: VERSION,
            ..SshCheckpoint::default()
        }
    }
}

/// FNV-1a 64 of bytes: stable across versions and machines, as checkpoints must be.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = CheckpointFile::new(dir.path(), "ssh prod/1");
        assert_eq!(f.load().unwrap(), None);
        let mut cp = SshCheckpoint::empty();
        cp.containers.insert(
            "web".into(),
            ContainerPos {
                since_ns: 5,
                at_since: vec![1, 2],
            },
        );
        f.save(&cp).unwrap();
        assert_eq!(f.load().unwrap(), Some(cp));
        assert!(dir.path().join("checkpoints/ssh_prod_1.json").is_file());
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
