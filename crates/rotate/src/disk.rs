//! The disk guard's limits ([`DiskGuard`]) and the usage of a filesystem as `df` counts it;
//! `guard.rs` applies the limits after a run.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Deserialize;

/// Limits on the disk used by rotated archives.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskGuard {
    /// Bytes of archives (all rules together) above which the oldest are compressed, then
    /// removed.
    pub max_archive_bytes: Option<u64>,
    /// Percentage of a filesystem used above which the oldest archives on it are compressed,
    /// then removed.
    pub max_used_percent: Option<f64>,
}

/// Space used on a filesystem, as `df` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    /// Bytes used.
    pub used: u64,
    /// Bytes used plus bytes available to unprivileged users.
    pub size: u64,
}

impl FsUsage {
    /// Returns the used share in percent, after `freed` more bytes are released.
    pub fn percent_after(&self, freed: u64) -> f64 {
        if self.size == 0 {
            return 0.0;
        }
        self.used.saturating_sub(freed) as f64 * 100.0 / self.size as f64
    }
}

/// Returns the usage of the filesystem holding `path` (with `statvfs`).
pub fn filesystem_usage(path: &Path) -> io::Result<FsUsage> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut s = MaybeUninit::<libc::statvfs>::uninit();
    #[allow(unsafe_code)]
    // SAFETY: `c` is a NUL-terminated path that outlives the call, and `s` points to writable
    // memory of the right type; statvfs fills it completely when it returns 0.
    let s = unsafe {
        if libc::statvfs(c.as_ptr(), s.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        s.assume_init()
    };
    let frsize = s.f_frsize as u64;
    let used = (s.f_blocks as u64).saturating_sub(s.f_bfree as u64) * frsize;
    let avail = s.f_bavail as u64 * frsize;
    Ok(FsUsage {
        used,
        size: used + avail,
    })
}
