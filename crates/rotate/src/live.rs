//! Moving the live file aside: rename (then create a new one), or copy (then truncate).

use std::fs::{self, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::compress::{sync_dir, Budget, BudgetWriter};
use crate::error::RotateError;
use crate::rule::CreateSpec;

pub(crate) fn rename_error(live: &Path, rotated: &Path, e: io::Error) -> RotateError {
    let hint = match e.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "{} disappeared during rotation (another program moved or removed it; is a second rotation tool such as a logrotate cron job handling it?); nothing was rotated",
            live.display()
        ),
        Some(libc::EXDEV) => format!(
            "{} is on another filesystem; use an olddir on the same filesystem, or copytruncate; {} is untouched",
            rotated.display(),
            live.display()
        ),
        _ => format!("{} is untouched; fix the cause and run again", live.display()),
    };
    RotateError::io("rename", live, e, hint)
}

/// Creates the new, empty live file with the given mode and owner (default: the old file's).
pub(crate) fn create_new(
    live: &Path,
    spec: &CreateSpec,
    old: &Metadata,
    mode: u32,
) -> io::Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(live)?;
    f.set_permissions(Permissions::from_mode(mode))?;
    let uid = spec.uid.unwrap_or(old.uid());
    let gid = spec.gid.unwrap_or(old.gid());
    let m = f.metadata()?;
    if m.uid() != uid || m.gid() != gid {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        // chown clears set-id bits; set the mode again.
        f.set_permissions(Permissions::from_mode(mode))?;
    }
    f.sync_all()?;
    sync_dir(live);
    Ok(())
}

/// Copies the live file to `rotated`, catches up with lines appended meanwhile, syncs the
/// copy, and (for copytruncate) truncates the live file at once.
///
/// Lines written between the last read and the truncation are lost: that window is a few
/// system calls wide and is inherent to copytruncate; rename+create has none.
pub(crate) fn copy_live(
    live: &Path,
    rotated: &Path,
    meta: &Metadata,
    truncate: bool,
    budget: &mut Budget,
) -> Result<u64, RotateError> {
    let mut src = OpenOptions::new()
        .read(true)
        .write(truncate)
        .open(live)
        .map_err(|e| rename_error(live, rotated, e))?;
    let dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(rotated)
        .map_err(|e| {
            RotateError::io(
                "create",
                rotated,
                e,
                format!(
                    "{} is untouched; fix the cause and run again",
                    live.display()
                ),
            )
        })?;
    let copy = |src: &mut fs::File, budget: &mut Budget| -> io::Result<u64> {
        let _ = dst.set_permissions(Permissions::from_mode(meta.mode() & 0o7777));
        let mut w = BudgetWriter {
            inner: &dst,
            budget,
        };
        let mut copied = io::copy(src, &mut w)?;
        for _ in 0..3 {
            if src.metadata()?.len() <= copied {
                break;
            }
            copied += io::copy(src, &mut w)?;
        }
        dst.sync_all()?;
        Ok(copied)
    };
    let copied = match copy(&mut src, budget) {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_file(rotated);
            return Err(RotateError::io(
                "copy",
                live,
                e,
                format!(
                    "the partial copy {} was removed and {} is untouched (not truncated); free space and run again",
                    rotated.display(),
                    live.display()
                ),
            ));
        }
    };
    sync_dir(rotated);
    if truncate {
        src.set_len(0).map_err(|e| {
            RotateError::io(
                "truncate",
                live,
                e,
                format!(
                    "its lines are copied to {}, so they will appear twice if the file is not truncated; truncate it by hand (: > {})",
                    rotated.display(),
                    live.display()
                ),
            )
        })?;
    }
    Ok(copied)
}
