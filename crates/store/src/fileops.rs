//! The one way the store touches its files: create, write, fsync, rename, remove and
//! directory fsync go through these functions, so that tests can make any of them fail.
//!
//! With the `failpoints` feature (and in this crate's tests), `inject` arms a failure of
//! one operation under one directory: the next matching calls return the given OS error
//! (`ENOSPC`, `EIO`, …) as if the disk had. Without it the checks compile to nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// A file operation of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Creating a file.
    Create,
    /// Writing bytes to a file, or cutting it to a length.
    Write,
    /// `fsync`/`fdatasync` of a file.
    Fsync,
    /// Renaming a file.
    Rename,
    /// Removing a file or a directory tree.
    Remove,
    /// `fsync` of a directory (making new, renamed or removed entries durable).
    SyncDir,
}

impl Op {
    /// Every operation, for tests that try each in turn.
    pub const ALL: [Op; 6] = [
        Op::Create,
        Op::Write,
        Op::Fsync,
        Op::Rename,
        Op::Remove,
        Op::SyncDir,
    ];
}

#[cfg(any(test, feature = "failpoints"))]
mod failpoints {
    use super::Op;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;

    /// A failure armed by [`inject`]: matching operations under `under` fail with the OS
    /// error `errno` after `skip` of them have succeeded, `times` times (`u64::MAX`: until
    /// the guard is dropped).
    #[derive(Debug)]
    pub struct Fault {
        /// The operation that fails.
        pub op: Op,
        /// Only paths under this directory.
        pub under: PathBuf,
        /// The OS error returned, e.g. `libc::ENOSPC`.
        pub errno: i32,
        /// Matching calls let through before the first failure.
        pub skip: u64,
        /// Failures before the fault disarms itself.
        pub times: u64,
    }

    struct Armed {
        id: u64,
        fault: Fault,
        seen: u64,
        failed: u64,
    }

    static ANY: AtomicBool = AtomicBool::new(false);
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    static FAULTS: Mutex<Vec<Armed>> = Mutex::new(Vec::new());

    /// Disarms its fault when dropped; tells how often it fired.
    #[derive(Debug)]
    pub struct FaultGuard {
        id: u64,
    }

    impl FaultGuard {
        /// How many calls failed because of this fault so far.
        pub fn fired(&self) -> u64 {
            let faults = FAULTS.lock().expect("faults lock");
            faults
                .iter()
                .find(|a| a.id == self.id)
                .map_or(0, |a| a.failed)
        }
    }

    impl Drop for FaultGuard {
        fn drop(&mut self) {
            let mut faults = FAULTS.lock().expect("faults lock");
            faults.retain(|a| a.id != self.id);
            ANY.store(!faults.is_empty(), Ordering::SeqCst);
        }
    }

    /// Arms a fault until the returned guard is dropped.
    pub fn inject(fault: Fault) -> FaultGuard {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut faults = FAULTS.lock().expect("faults lock");
        faults.push(Armed {
            id,
            fault,
            seen: 0,
            failed: 0,
        });
        ANY.store(true, Ordering::SeqCst);
        FaultGuard { id }
    }

    pub(super) fn check(op: Op, path: &Path) -> io::Result<()> {
        if !ANY.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut faults = FAULTS.lock().expect("faults lock");
        for armed in faults.iter_mut() {
            let f = &armed.fault;
            if f.op != op || !path.starts_with(&f.under) || armed.failed >= f.times {
                continue;
            }
            armed.seen += 1;
            if armed.seen > f.skip {
                armed.failed += 1;
                return Err(io::Error::from_raw_os_error(f.errno));
            }
        }
        Ok(())
    }
}

#[cfg(any(test, feature = "failpoints"))]
pub use failpoints::{inject, Fault, FaultGuard};

#[inline]
fn check(_op: Op, _path: &Path) -> io::Result<()> {
    #[cfg(any(test, feature = "failpoints"))]
    failpoints::check(_op, _path)?;
    Ok(())
}

/// Creates (or truncates) a file for writing.
pub fn create(path: &Path) -> io::Result<File> {
    check(Op::Create, path)?;
    File::create(path)
}

/// Writes all of `bytes` to `file`, which lives at `path`.
pub fn write_all(file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()> {
    check(Op::Write, path)?;
    file.write_all(bytes)
}

/// Cuts `file`, which lives at `path`, to `len` bytes.
pub fn set_len(file: &File, path: &Path, len: u64) -> io::Result<()> {
    check(Op::Write, path)?;
    file.set_len(len)
}

/// Makes `file`'s data and metadata durable.
pub fn sync_all(file: &File, path: &Path) -> io::Result<()> {
    check(Op::Fsync, path)?;
    file.sync_all()
}

/// Makes `file`'s data durable.
pub fn sync_data(file: &File, path: &Path) -> io::Result<()> {
    check(Op::Fsync, path)?;
    file.sync_data()
}

/// Renames a file, replacing `to`.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    check(Op::Rename, to)?;
    fs::rename(from, to)
}

/// Removes a file.
pub fn remove_file(path: &Path) -> io::Result<()> {
    check(Op::Remove, path)?;
    fs::remove_file(path)
}

/// Removes a directory and everything under it.
pub fn remove_dir_all(path: &Path) -> io::Result<()> {
    check(Op::Remove, path)?;
    fs::remove_dir_all(path)
}

/// Removes an empty directory.
pub fn remove_dir(path: &Path) -> io::Result<()> {
    check(Op::Remove, path)?;
    fs::remove_dir(path)
}

/// Flushes a directory's entries (new, renamed or removed files) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    check(Op::SyncDir, dir)?;
    File::open(dir)?.sync_all()
}

/// Opens an existing file for writing (to cut a damaged tail).
pub fn open_write(path: &Path) -> io::Result<File> {
    check(Op::Write, path)?;
    OpenOptions::new().write(true).open(path)
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the
/// directory. The temporary file is removed when a step fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replacing(path, bytes)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to `path` under its temporary name, fsyncs it and renames it into place;
/// the temporary file is removed when a step fails. The directory is not synced: the caller
/// does it once for all the files it writes there ([`write_atomic`] for one file).
pub fn write_replacing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let written = (|| {
        let mut f = create(&tmp)?;
        write_all(&mut f, &tmp, bytes)?;
        sync_all(&f, &tmp)?;
        rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Returns the temporary name used while `path` is being written.
pub fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
