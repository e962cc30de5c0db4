//! The state file: when each live file was last rotated (JSON, written atomically).
//!
//! Time triggers (`every`, `daily`…) are judged from this record, as logrotate does with
//! its own status file: a file seen for the first time is recorded as rotated now and is
//! not rotated by age until the interval has passed.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compress::{sync_dir, tmp_path};
use crate::error::RotateError;

/// The version written in new state files.
pub const STATE_VERSION: u32 = 1;

/// What is remembered about one live file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// The last rotation (or first sighting), in seconds since the Unix epoch.
    pub last_rotated: i64,
}

/// The content of the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version, [`STATE_VERSION`].
    pub version: u32,
    /// Live file path → its state.
    pub files: BTreeMap<String, FileState>,
}

impl Default for State {
    fn default() -> State {
        State {
            version: STATE_VERSION,
            files: BTreeMap::new(),
        }
    }
}

impl State {
    /// Reads the state file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<State, RotateError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => {
                return Err(RotateError::State {
                    path: path.into(),
                    message: format!("cannot read it: {e}; check its permissions"),
                })
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|e| RotateError::State {
            path: path.into(),
            message: format!(
                "not a logyard state file ({e}); move it aside and run again: time triggers then start counting from now"
            ),
        })?;
        if state.version != STATE_VERSION {
            return Err(RotateError::State {
                path: path.into(),
                message: format!(
                    "version {} is not the supported version {STATE_VERSION}; move it aside and run again",
                    state.version
                ),
            });
        }
        Ok(state)
    }

    /// Writes the state file atomically: a temporary file, fsync, rename, fsync of the
    /// directory.
    pub fn save(&self, path: &Path) -> Result<(), RotateError> {
        let tmp = tmp_path(path);
        let err = |action: &str, p: &Path, e: io::Error| {
            RotateError::io(
                action,
                p,
                e,
                format!(
                    "the previous state in {} is unchanged; rotations done in this run may repeat when age-triggered",
                    path.display()
                ),
            )
        };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                fs::create_dir_all(dir).map_err(|e| err("create the directory of", path, e))?;
            }
        }
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(err("write", &tmp, e));
        }
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err(err("rename state into", path, e));
        }
        sync_dir(path);
        Ok(())
    }
}

/// An exclusive lock on a state file, held for a run so two runs never rotate the same files.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

impl StateLock {
    /// Takes the lock `<state>.lock`, failing at once when another run holds it.
    pub fn acquire(state_path: &Path) -> Result<StateLock, RotateError> {
        let mut s = state_path.as_os_str().to_owned();
        s.push(".lock");
        let path = PathBuf::from(s);
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                let _ = fs::create_dir_all(dir);
            }
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| RotateError::State {
                path: path.clone(),
                message: format!(
                    "cannot open the lock file: {e}; check the directory's permissions"
                ),
            })?;
        // A short wait covers a lock held by a concurrent run finishing, and by a child
        // process between fork and exec (which shares the descriptor for a moment).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut locked = file.try_lock();
        while locked.is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            locked = file.try_lock();
        }
        match locked {
            Ok(()) => Ok(StateLock { _file: file, path }),
            Err(_) => Err(RotateError::State {
                path: state_path.into(),
                message: "another rotation run holds its lock; wait for it to finish (or stop the other `logyard rotate` / `logyard serve`)".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.json");
        assert_eq!(State::load(&p).unwrap(), State::default());
        let mut s = State::default();
        s.files
            .insert("/a.log".into(), FileState { last_rotated: 42 });
        s.save(&p).unwrap();
        assert_eq!(State::load(&p).unwrap(), s);
        fs::write(&p, "logrotate state -- version 2").unwrap();
        let e = State::load(&p).unwrap_err().to_string();
        assert!(e.contains("move it aside"), "{e}");
        let _l = StateLock::acquire(&p).unwrap();
        assert!(StateLock::acquire(&p).is_err());
    }
}
