//! The data directory lock and its size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// An exclusive advisory lock on a data directory, held for the life of the value.
///
/// It is an `flock` on `<dir>/LOCK`, so the kernel releases it when the process dies, however
/// it dies. A busy lock is tried again for a second (`LOCK_WAIT`): a child process being
/// started holds a copy of every descriptor until its `exec` closes them, so a lock released
/// an instant ago can still look held.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock, or fails with `WouldBlock` naming the process that holds it.
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let deadline = Instant::now() + LOCK_WAIT;
        let mut taken = flock_exclusive(&file)?;
        while !taken && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            taken = flock_exclusive(&file)?;
        }
        if !taken {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_string()
            } else {
                format!("process {holder}")
            };
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "data directory {} is in use by {who}; stop it, or talk to it with --server URL",
                    dir.display()
                ),
            ));
        }
        file.set_len(0)?;
        file.write_all(std::process::id().to_string().as_bytes())?;
        Ok(DirLock { _file: file })
    }
}

/// How long a busy data directory lock is tried again before the open is refused.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);

#[allow(unsafe_code)]
fn flock_exclusive(file: &File) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Returns the total size of the regular files under `dir`, recursively; 0 when it is missing.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_with_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains(&std::process::id().to_string()));
    }

    #[test]
    fn a_lock_let_go_of_an_instant_later_is_taken() {
        // As when a child process being started still holds a copy of the descriptor.
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        DirLock::acquire(dir.path()).expect("taken once the holder lets go");
        letting_go.join().unwrap();
    }
}
