//! Checkpoints: how far each followed file is delivered, kept in
//! `<state_dir>/checkpoints/<source>.json` and written atomically (tmp, fsync, rename, fsync
//! of the folder). A checkpoint is written only after the sink acknowledged the lines before
//! its offsets, so a restart resumes exactly after the last delivered line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use serde::{Deserialize, Serialize};

use super::fingerprint::{FileId, Fingerprint};
use crate::checkpoint_file::{CheckpointData, CheckpointFile};
use crate::error::SourceError;
use crate::status::StatusHandle;

/// The format version of checkpoint files.
pub(crate) const VERSION: u32 = 1;

/// The position in one physical file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamCheckpoint {
    /// The path the file had when last seen (a rotated file may have moved on since).
    pub path: PathBuf,
    /// Device and inode.
    pub id: FileId,
    /// The first line's fingerprint: tells a reused inode from the file we read.
    pub fp: Fingerprint,
    /// Bytes delivered: the next line starts here.
    pub offset: u64,
}

/// The state of one followed path: the file there now and rotated files still being read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PathCheckpoint {
    /// The file at the path.
    pub current: Option<StreamCheckpoint>,
    /// Rotated files (renamed or copied) not yet read to their end, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<StreamCheckpoint>,
    /// Files of this path read to their end (so a rotated copy is never read twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<(FileId, Fingerprint)>,
    /// Wall time (ns) of the last look at the path: rotated files changed after it are new.
    pub seen_ns: i64,
}

/// A file source's whole checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// [`VERSION`].
    pub version: u32,
    /// Grows with every write; the newer of the file and a sink's copy wins.
    pub seq: u64,
    /// By followed path.
    pub paths: BTreeMap<String, PathCheckpoint>,
    /// Compressed files read once, never to be read again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gz_done: Vec<(FileId, Fingerprint)>,
    /// The compressed file being read, and how far (in decompressed bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gz_partial: Option<GzProgress>,
    /// Files gone (or truncated without a copy) before they were read to their end: their
    /// first line and delivered offset, so that a compressed copy is read from there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<(Fingerprint, u64)>,
}

/// How far a compressed file is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GzProgress {
    /// Device and inode of the compressed file.
    pub id: FileId,
    /// The fingerprint of its decompressed first line.
    pub fp: Fingerprint,
    /// Decompressed bytes delivered.
    pub offset: u64,
}

/// Reads and writes a source's checkpoint file.
#[derive(Debug)]
pub(crate) struct CheckpointStore {
    file: CheckpointFile<Checkpoint>,
    last_written: Option<Checkpoint>,
}

impl CheckpointStore {
    /// The store of a source's checkpoints under `state_dir`.
    pub fn new(state_dir: &Path, source: &str) -> CheckpointStore {
        CheckpointStore {
            file: CheckpointFile::new(state_dir, source),
            last_written: None,
        }
    }

    /// Loads the checkpoint; `None` when there is no file.
    pub fn load(&self) -> Result<Option<Checkpoint>, SourceError> {
        self.file.load()
    }

    /// Writes the checkpoint atomically; does nothing when only its sequence number
    /// changed.
    pub fn save(&mut self, cp: &Checkpoint) -> Result<(), SourceError> {
        if self.last_written.as_ref().is_some_and(|l| {
            Checkpoint {
                seq: cp.seq,
                ..l.clone()
            } == *cp
        }) {
            return Ok(());
        }
        self.file.save(cp)?;
        self.last_written = Some(cp.clone());
        Ok(())
    }
}

impl CheckpointData for Checkpoint {
    fn to_bytes(&self) -> Vec<u8> {
        self.encode().into_bytes()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, String> {
        Checkpoint::decode(bytes).map_err(|e| e.to_string())
    }
}

impl Checkpoint {
    /// Encodes the checkpoint as pretty JSON.
    pub fn encode(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Decodes a checkpoint, refusing unknown versions.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, std::io::Error> {
        let cp: Checkpoint = serde_json::from_slice(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if cp.version != VERSION {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "checkpoint format version {} is not the supported version {VERSION}",
                    cp.version
                ),
            ));
        }
        Ok(cp)
    }
}

/// Writes a source's checkpoints on a thread of its own, so that reading and parsing go on
/// during the fsyncs. Checkpoints queued while one is being written are coalesced: only the
/// newest is written next. Every queued checkpoint must already be safe to commit (its
/// lines acknowledged by the sink).
pub(crate) struct CheckpointWriter {
    #[cfg(test)]
    path: PathBuf,
    shared: Arc<(Mutex<WriterState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct WriterState {
    next: Option<Checkpoint>,
    busy: bool,
    stop: bool,
}

impl CheckpointWriter {
    /// Starts the writer of a checkpoint store; write errors are logged and reported in
    /// the source's status.
    pub fn start(mut store: CheckpointStore, name: &str, status: StatusHandle) -> CheckpointWriter {
        #[cfg(test)]
        let path = store.file.path().to_path_buf();
        let shared: Arc<(Mutex<WriterState>, Condvar)> = Arc::default();
        let theirs = shared.clone();
        let name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("checkpoint-{name}"))
            .spawn(move || {
                let (lock, cv) = &*theirs;
                loop {
                    let cp = {
                        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while st.next.is_none() && !st.stop {
                            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                        }
                        match st.next.take() {
                            Some(cp) => {
                                st.busy = true;
                                cp
                            }
                            None => return,
                        }
                    };
                    if let Err(err) = store.save(&cp) {
                        tracing::warn!(source = %name, error = %err, "checkpoint not written");
                        status.error(err.to_string());
                    }
                    lock.lock().unwrap_or_else(|e| e.into_inner()).busy = false;
                    cv.notify_all();
                }
            })
            .expect("the OS refused to start a thread");
        CheckpointWriter {
            #[cfg(test)]
            path,
            shared,
            thread: Some(thread),
        }
    }

    /// The checkpoint file's path.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a checkpoint; it replaces one queued and not yet being written.
    pub fn save(&self, cp: Checkpoint) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).next = Some(cp);
        cv.notify_all();
    }

    /// Waits until every queued checkpoint is written.
    pub fn flush(&self) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        while st.next.is_some() || st.busy {
            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        // What was queued is written before the thread ends.
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
