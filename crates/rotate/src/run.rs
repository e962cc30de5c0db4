//! The rotation of one live file: compress leftovers, drop archives past `max_age`, shift
//! numbered archives, rename+create or copy+truncate, then (after postrotate) compress and
//! drop archives past `keep`.
//!
//! Order matters for safety: archives are shifted before the live file is touched, the
//! live file is moved with a single rename (or copied, synced, and only then truncated), and
//! an uncompressed file is removed only after its archive is verified. A failure at any step
//! leaves every line in some file, and the error says which file and what to do.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local};

use crate::compress::{compress_file, sync_dir, Budget};
use crate::error::RotateError;
use crate::live::{copy_live, create_new, rename_error};
use crate::names::{format_date, Names};
use crate::observer::RotationObserver;
use crate::options::RunOptions;
use crate::report::{ActionKind, RunReport};
use crate::rule::{Compression, Method, RotateRule};

/// What a run carries from file to file.
pub(crate) struct Ctx<'a> {
    pub opts: &'a RunOptions,
    pub observer: &'a dyn RotationObserver,
    pub report: RunReport,
    pub budget: Budget,
}

/// A rotated file whose compression and cleanup wait for postrotate.
pub(crate) struct Pending {
    names: Names,
    rotated: PathBuf,
    dispose: Vec<PathBuf>,
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

/// Rotates `live`. Returns the pending compression and cleanup; failures after the live
/// file was moved are recorded in the report and still return the pending part.
pub(crate) fn rotate_file(
    rule: &RotateRule,
    live: &Path,
    meta: &Metadata,
    ctx: &mut Ctx<'_>,
) -> Result<Pending, RotateError> {
    let names = Names::new(rule, live);
    let dry = ctx.opts.dry_run;
    let date_format = rule.date_ext.as_ref().map(|d| d.format.as_str());
    if rule.olddir.is_some()
        && !fs::metadata(&names.dir)
            .map(|m| m.is_dir())
            .unwrap_or(false)
    {
        return Err(RotateError::Rotation {
            path: live.into(),
            message: format!(
                "olddir {} does not exist or is not a directory; create it (mkdir -p {}); {} was not rotated",
                names.dir.display(),
                names.dir.display(),
                live.display()
            ),
        });
    }
    let list = |names: &Names| {
        names.list(date_format).map_err(|e| {
            RotateError::io(
                "list the archives in",
                &names.dir,
                e,
                format!(
                    "{} was not rotated; check the directory's permissions",
                    live.display()
                ),
            )
        })
    };

    // Leftover uncompressed archives: the one delaycompress kept, or ones a failed or
    // deferred compression left behind.
    if rule.compression != Compression::None {
        for a in list(&names)?.into_iter().filter(|a| !a.compressed) {
            let dst = names.with_comp(&a.path);
            if !exists(&dst) {
                compress_step(rule, &a.path, &dst, ctx);
            }
        }
    }

    if let Some(max_age) = rule.max_age {
        let now = ctx.opts.now;
        for a in list(&names)? {
            let age = now.duration_since(a.mtime).unwrap_or(Duration::ZERO);
            if age > max_age {
                remove_archive(rule, &a.path, a.len, "older than max_age", ctx);
            }
        }
    }

    let rotated = match &rule.date_ext {
        Some(d) => {
            let mut t = ctx.opts.now;
            if d.yesterday {
                t -= Duration::from_secs(86_400);
            }
            let rotated = names.dated(&format_date(&d.format, DateTime::<Local>::from(t)));
            if exists(&rotated) || exists(&names.with_comp(&rotated)) {
                return Err(RotateError::Rotation {
                    path: live.into(),
                    message: format!(
                        "destination {} already exists, so {} was not rotated; rotate it on another day, or add %H%M%S to dateformat",
                        rotated.display(),
                        live.display()
                    ),
                });
            }
            rotated
        }
        None => names.numbered(rule.start),
    };

    let mut dispose = Vec::new();
    let mut dry_dispose = Vec::new();
    if rule.date_ext.is_none() {
        let last = rule.start + rule.keep as u64;
        for i in (rule.start..last).rev() {
            for (from, to) in variants(&names, i) {
                if !exists(&from) {
                    continue;
                }
                if !dry {
                    fs::rename(&from, &to).map_err(|e| {
                        RotateError::io(
                            "shift archive",
                            &from,
                            e,
                            format!(
                                "archives above {} were already shifted and {} is untouched; fix the cause and run again",
                                from.display(),
                                live.display()
                            ),
                        )
                    })?;
                }
                if dry && i + 1 == last {
                    dry_dispose.push(to.clone());
                }
                ctx.report
                    .act(&rule.name, ActionKind::Rename, from, Some(to), "shift");
            }
        }
        dispose = variants(&names, last)
            .into_iter()
            .map(|(from, _)| from)
            .collect();
        if dry {
            if rule.keep == 0 {
                dry_dispose.push(rotated.clone());
            }
            dispose = dry_dispose;
        }
        if rule.keep == 0 && exists(&rotated) {
            let len = fs::metadata(&rotated).map(|m| m.len()).unwrap_or(0);
            remove_archive(rule, &rotated, len, "rotate 0", ctx);
        }
    }
    if !dry && exists(&rotated) {
        return Err(RotateError::Rotation {
            path: live.into(),
            message: format!(
                "{} already exists and is not overwritten, so {} was not rotated; move it aside and run again",
                rotated.display(),
                live.display()
            ),
        });
    }

    move_live(rule, live, &rotated, meta, ctx)?;
    ctx.report.bytes_rotated += meta.len();
    ctx.report.files_rotated += 1;
    Ok(Pending {
        names,
        rotated,
        dispose,
    })
}

/// The (compressed, uncompressed) renames that shift archive `i` to `i + 1`.
fn variants(names: &Names, i: u64) -> Vec<(PathBuf, PathBuf)> {
    let mut v = vec![(names.numbered_comp(i), names.numbered_comp(i + 1))];
    if !names.comp.is_empty() {
        v.push((names.numbered(i), names.numbered(i + 1)));
    }
    v
}

fn move_live(
    rule: &RotateRule,
    live: &Path,
    rotated: &Path,
    meta: &Metadata,
    ctx: &mut Ctx<'_>,
) -> Result<(), RotateError> {
    let dry = ctx.opts.dry_run;
    let name = &rule.name;
    match &rule.method {
        Method::Create(_) | Method::Rename => {
            if !dry {
                fs::rename(live, rotated).map_err(|e| rename_error(live, rotated, e))?;
                sync_dir(rotated);
            }
            ctx.report.act(
                name,
                ActionKind::Rename,
                live,
                Some(rotated.into()),
                format!("{} bytes", meta.len()),
            );
            if !dry {
                ctx.observer.renamed(live, rotated);
            }
            if let Method::Create(spec) = &rule.method {
                let mode = spec.mode.unwrap_or(meta.mode() & 0o7777);
                if !dry {
                    if let Err(e) = create_new(live, spec, meta, mode) {
                        ctx.report.fail(
                            name,
                            live,
                            format!(
                                "rotated to {} but cannot create a new {}: {e}; the old lines are safe in {}; create the file by hand (touch, chmod {mode:o}) or let the application recreate it",
                                rotated.display(),
                                live.display(),
                                rotated.display()
                            ),
                        );
                        return Ok(());
                    }
                }
                ctx.report.act(
                    name,
                    ActionKind::Create,
                    live,
                    None,
                    format!("mode {mode:o}"),
                );
            }
        }
        Method::CopyTruncate | Method::Copy => {
            let truncate = rule.method == Method::CopyTruncate;
            let copied = if dry {
                meta.len()
            } else {
                copy_live(live, rotated, meta, truncate, &mut ctx.budget)?
            };
            ctx.report.act(
                name,
                ActionKind::Copy,
                live,
                Some(rotated.into()),
                format!("{copied} bytes"),
            );
            if truncate {
                ctx.report.act(name, ActionKind::Truncate, live, None, "");
            }
        }
    }
    Ok(())
}

/// Compresses `src` to `dst` and removes `src`, after the collector drained it. Records the
/// outcome in the report; returns whether `dst` now holds the data.
pub(crate) fn compress_step(rule: &RotateRule, src: &Path, dst: &Path, ctx: &mut Ctx<'_>) -> bool {
    compress_with(rule, rule.compression, src, dst, ActionKind::Compress, ctx)
}

/// As [`compress_step`], with an explicit compression and action kind (for the disk guard).
pub(crate) fn compress_with(
    rule: &RotateRule,
    compression: Compression,
    src: &Path,
    dst: &Path,
    kind: ActionKind,
    ctx: &mut Ctx<'_>,
) -> bool {
    if ctx.opts.dry_run {
        ctx.report
            .act(&rule.name, kind, src, Some(dst.into()), compression.name());
        return true;
    }
    if !ctx.observer.wait_drained(src, ctx.opts.drain_timeout) {
        ctx.report.act(
            &rule.name,
            ActionKind::Defer,
            src,
            Some(dst.into()),
            "the collector has not read it to its end; compressed on a later run",
        );
        return false;
    }
    match compress_file(src, dst, compression, &mut ctx.budget) {
        Ok(sizes) => {
            if let Err(e) = fs::remove_file(src) {
                ctx.report.fail(
                    &rule.name,
                    src,
                    format!(
                        "compressed to {} (verified) but cannot remove the uncompressed file: {e}; remove it by hand",
                        dst.display()
                    ),
                );
            } else {
                ctx.report.bytes_reclaimed += sizes.input.saturating_sub(sizes.output);
            }
            ctx.report.bytes_compressed += sizes.input;
            ctx.report.act(
                &rule.name,
                kind,
                src,
                Some(dst.into()),
                format!(
                    "{} {} -> {} bytes",
                    compression.name(),
                    sizes.input,
                    sizes.output
                ),
            );
            true
        }
        Err(e) => {
            ctx.report.fail(&rule.name, src, e.to_string());
            false
        }
    }
}

/// Removes an archive, recording it.
pub(crate) fn remove_archive(
    rule: &RotateRule,
    path: &Path,
    len: u64,
    why: &str,
    ctx: &mut Ctx<'_>,
) {
    remove_with(rule, path, len, why, ActionKind::Remove, ctx);
}

/// As [`remove_archive`], with an explicit action kind.
pub(crate) fn remove_with(
    rule: &RotateRule,
    path: &Path,
    len: u64,
    why: &str,
    kind: ActionKind,
    ctx: &mut Ctx<'_>,
) -> bool {
    if !ctx.opts.dry_run {
        if let Err(e) = fs::remove_file(path) {
            if e.kind() != io::ErrorKind::NotFound {
                ctx.report.fail(
                    &rule.name,
                    path,
                    format!("cannot remove old archive: {e}; remove it by hand or fix permissions"),
                );
            }
            return false;
        }
    }
    ctx.report.bytes_reclaimed += len;
    ctx.report
        .act(&rule.name, kind, path, None, format!("{why}, {len} bytes"));
    true
}

/// Compresses the rotated file (unless delaycompress) and removes archives past `keep`.
pub(crate) fn finish(rule: &RotateRule, p: Pending, ctx: &mut Ctx<'_>) {
    if rule.compression != Compression::None && !rule.delay_compress {
        let dst = p.names.with_comp(&p.rotated);
        compress_step(rule, &p.rotated, &dst, ctx);
    }
    let why = format!("beyond keep {}", rule.keep);
    for d in &p.dispose {
        if let Ok(m) = fs::symlink_metadata(d) {
            remove_archive(rule, d, m.len(), &why, ctx);
        } else if ctx.opts.dry_run {
            remove_archive(rule, d, 0, &why, ctx);
        }
    }
    if let Some(d) = &rule.date_ext {
        let mut list = match p.names.list(Some(&d.format)) {
            Ok(l) => l,
            Err(e) => {
                ctx.report.fail(
                    &rule.name,
                    &p.names.dir,
                    format!("cannot list archives to apply keep: {e}; old archives stay until the next run"),
                );
                return;
            }
        };
        list.sort_by(|a, b| a.path.file_name().cmp(&b.path.file_name()));
        let count = list.len() + usize::from(ctx.opts.dry_run);
        let excess = count.saturating_sub(rule.keep);
        for a in list.into_iter().take(excess) {
            remove_archive(rule, &a.path, a.len, &why, ctx);
        }
    }
}

/// Seconds since the Unix epoch of `t` (negative before 1970).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}
