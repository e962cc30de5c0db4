//! The position of a journald source: the cursor of the last entry delivered.
//!
//! It is kept in two places. The sink keeps it in the same durable write as the batch it
//! ends ([`crate::Sink::write_with_checkpoint`]: the store's WAL frame), which is what makes
//! a crash between the two impossible; the file `<state_dir>/checkpoints/<source>.json`
//! keeps it for sinks that keep no token. On start the newer of the two (the larger `seq`)
//! wins.

use serde::{Deserialize, Serialize};

use crate::checkpoint_file::CheckpointData;

/// The format version of the checkpoint.
const VERSION: u32 = 1;

/// Where a journald source goes on from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JournalCheckpoint {
    /// [`VERSION`].
    pub version: u32,
    /// Grows by one with every delivered batch.
    pub seq: u64,
    /// The `__CURSOR` of the last entry delivered: journalctl goes on `--after-cursor`.
    #[serde(default)]
    pub cursor: Option<String>,
    /// With no cursor yet: the time (µs since the epoch) of the first start with
    /// `start_at = "end"`, so that entries written before the first one is delivered are
    /// not skipped by a restart.
    #[serde(default)]
    pub since_us: Option<u64>,
}

impl JournalCheckpoint {
    /// An empty position: nothing delivered yet.
    pub fn empty() -> JournalCheckpoint {
        JournalCheckpoint {
            version: VERSION,
            ..JournalCheckpoint::default()
        }
    }

    /// Encodes the position as the sink's token.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a position written by [`JournalCheckpoint::encode`].
    pub fn decode(data: &[u8]) -> Result<JournalCheckpoint, String> {
        let cp: JournalCheckpoint =
            serde_json::from_slice(data).map_err(|e| format!("invalid checkpoint: {e}"))?;
        if cp.version != VERSION {
            return Err(format!(
                "checkpoint format version {} is not the supported version {VERSION}",
                cp.version
            ));
        }
        Ok(cp)
    }
}

/// The checkpoint file of a source.
pub(crate) type CheckpointFile = crate::checkpoint_file::CheckpointFile<JournalCheckpoint>;

impl CheckpointData for JournalCheckpoint {
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    fn from_bytes(bytes: &[u8]) -> Result<JournalCheckpoint, String> {
        JournalCheckpoint::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let f = CheckpointFile::new(dir.path(), "journal/1");
        assert_eq!(f.load().unwrap(), None);
        let cp = JournalCheckpoint {
            seq: 3,
            cursor: Some("s=a;i=1".into()),
            ..JournalCheckpoint::empty()
        };
        f.save(&cp).unwrap();
        assert_eq!(f.load().unwrap(), Some(cp.clone()));
        assert!(dir.path().join("checkpoints/journal_1.json").is_file());
        assert_eq!(JournalCheckpoint::decode(&cp.encode()).unwrap(), cp);
        let err = JournalCheckpoint::decode(br#"{"version":9,"seq":1}"#).unwrap_err();
        assert!(err.contains("version 9"), "{err}");
        assert!(JournalCheckpoint::decode(b"garbage").is_err());
    }
}
