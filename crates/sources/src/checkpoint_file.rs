//! A source's checkpoint file: `<state_dir>/checkpoints/<source>.json`, read whole and
//! written atomically (a temporary file beside it, fsync, rename, fsync of the folder), so
//! that a crash leaves the old checkpoint or the new one, never a mix. Every source that
//! keeps a position (file, Docker, SSH, journald) keeps it through [`CheckpointFile`].

use std::fs;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use crate::error::SourceError;

/// What a checkpoint file holds: a source's position, in bytes of its own encoding.
pub(crate) trait CheckpointData: Sized {
    /// The file's bytes.
    fn to_bytes(&self) -> Vec<u8>;

    /// Reads the file's bytes; the error says what is wrong (not JSON, an unknown version).
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
}

/// The checkpoint file of one source.
#[derive(Debug)]
pub(crate) struct CheckpointFile<T> {
    path: PathBuf,
    data: PhantomData<fn() -> T>,
}

impl<T: CheckpointData> CheckpointFile<T> {
    /// The checkpoint file of the source named `source` under `state_dir`.
    pub fn new(state_dir: &Path, source: &str) -> CheckpointFile<T> {
        CheckpointFile {
            path: checkpoint_path(state_dir, source),
            data: PhantomData,
        }
    }

    /// The file's path.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the checkpoint; `None` when there is no file.
    pub fn load(&self) -> Result<Option<T>, SourceError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SourceError::io("read checkpoints from", &self.path, e)),
        };
        T::from_bytes(&bytes).map(Some).map_err(|e| {
            SourceError::io(
                "decode checkpoints from",
                &self.path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, cp: &T) -> Result<(), SourceError> {
        write_atomic(&self.path, &cp.to_bytes())
            .map_err(|e| SourceError::io("write checkpoints to", &self.path, e))
    }
}

/// Writes a file atomically: a temporary file beside it, fsync, rename, fsync of the folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        // The rename is durable once the folder is synced.
        let _ = d.sync_all();
    }
    Ok(())
}

/// The checkpoint file of the source named `source` under `state_dir`
/// (`checkpoints/<name>.json`, characters other than letters, digits, `-`, `_` and `.` as `_`).
pub(crate) fn checkpoint_path(state_dir: &Path, source: &str) -> PathBuf {
    let name: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir.join("checkpoints").join(format!("{name}.json"))
}
