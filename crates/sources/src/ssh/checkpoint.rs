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
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::SourceError;

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

/// Reads and writes the checkpoint file.
#[derive(Debug)]
pub(crate) struct CheckpointFile {
    path: PathBuf,
}

impl CheckpointFile {
    /// The checkpoint file of a source under `state_dir`.
    pub fn new(state_dir: &Path, source: &str) -> CheckpointFile {
        CheckpointFile {
            path: crate::settings::checkpoint_path(state_dir, source),
        }
    }

    /// Loads the checkpoint; a missing file is an empty one.
    pub fn load(&self) -> Result<SshCheckpoint, SourceError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SshCheckpoint {
                    version: VERSION,
                    ..SshCheckpoint::default()
                })
            }
            Err(e) => return Err(SourceError::io("read checkpoints from", &self.path, e)),
        };
        let bad = |e: std::io::Error| SourceError::io("decode checkpoints from", &self.path, e);
        let cp: SshCheckpoint = serde_json::from_slice(&text)
            .map_err(|e| bad(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        if cp.version != VERSION {
            return Err(bad(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "checkpoint format version {} is not the supported version {VERSION}",
                    cp.version
                ),
            )));
        }
        Ok(cp)
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, cp: &SshCheckpoint) -> Result<(), SourceError> {
        let err = |e| SourceError::io("write checkpoints to", &self.path, e);
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(cp).map_err(|e| err(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&text).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if let Ok(d) = std::fs::File::open(dir) {
            // The rename is durable once the folder is synced.
            let _ = d.sync_all();
        }
        Ok(())
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
        assert_eq!(f.load().unwrap().version, VERSION);
        let mut cp = f.load().unwrap();
        cp.containers.insert(
            "web".into(),
            ContainerPos {
                since_ns: 5,
                at_since: vec![1, 2],
            },
        );
        f.save(&cp).unwrap();
        assert_eq!(f.load().unwrap(), cp);
        assert!(dir.path().join("checkpoints/ssh_prod_1.json").is_file());
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
