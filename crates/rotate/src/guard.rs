//! The disk guard: when the rotated archives of a rule set pass a byte budget, or the
//! filesystem holding them passes a usage threshold, compress and then remove the oldest
//! archives first, and report it so the server can alert.
//!
//! Live files are never touched: a disk that is still full after every archive is gone is
//! reported, not fixed by truncating a file someone is writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::disk::{filesystem_usage, DiskGuard, FsUsage};
use crate::names::{Archive, Names};
use crate::report::ActionKind;
use crate::rule::{Compression, RotateRule};
use crate::run::{compress_with, remove_with, Ctx};

/// An archive with the rule it belongs to.
struct Entry<'r> {
    rule: &'r RotateRule,
    names: Names,
    archive: Archive,
}

/// The live files of a rule (quietly: the run already reported the problems).
fn live_files(rule: &RotateRule) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pat in &rule.paths {
        if let Ok(paths) = glob::glob(pat) {
            for p in paths.filter_map(Result::ok) {
                if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) && !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Applies the guard to the archives of `rules`, recording actions and alerts.
pub(crate) fn enforce(rules: &[RotateRule], guard: &DiskGuard, ctx: &mut Ctx<'_>) {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for rule in rules {
        let date_format = rule.date_ext.as_ref().map(|d| d.format.as_str());
        for live in live_files(rule) {
            let names = Names::new(rule, &live);
            for archive in names.list(date_format).unwrap_or_default() {
                if entries.iter().all(|e| e.archive.path != archive.path) {
                    entries.push(Entry {
                        rule,
                        names: names.clone(),
                        archive,
                    });
                }
            }
        }
    }
    entries.sort_by(|a, b| {
        (a.archive.mtime, &a.archive.path).cmp(&(b.archive.mtime, &b.archive.path))
    });
    let mut total: u64 = entries.iter().map(|e| e.archive.len).sum();
    let mut fs: BTreeMap<PathBuf, (FsUsage, u64)> = BTreeMap::new();
    if guard.max_used_percent.is_some() {
        for e in &entries {
            if !fs.contains_key(&e.names.dir) {
                if let Ok(u) = filesystem_usage(&e.names.dir) {
                    fs.insert(e.names.dir.clone(), (u, 0));
                }
            }
        }
    }
    // Freed bytes are counted per directory; directories on one filesystem share it, so
    // the estimate errs on the side of doing more.
    let over = |total: u64, fs: &BTreeMap<PathBuf, (FsUsage, u64)>, dir: &Path| -> bool {
        guard.max_archive_bytes.is_some_and(|m| total > m)
            || guard.max_used_percent.is_some_and(|p| {
                fs.get(dir)
                    .is_some_and(|(u, freed)| u.percent_after(*freed) > p)
            })
    };
    if !entries.iter().any(|e| over(total, &fs, &e.names.dir)) {
        return;
    }
    let budget = guard
        .max_archive_bytes
        .map(|m| format!(" (budget {m} bytes)"))
        .unwrap_or_default();
    let pct = guard
        .max_used_percent
        .map(|p| format!(", filesystem limit {p}%"))
        .unwrap_or_default();
    ctx.report.guard_alerts.push(format!(
        "rotated archives use {total} bytes{budget}{pct}; compressing, then removing the oldest"
    ));

    // Compression first: it keeps every line.
    for e in entries.iter_mut() {
        if e.archive.compressed || !over(total, &fs, &e.names.dir) {
            continue;
        }
        let compression = match e.rule.compression {
            Compression::None => Compression::Gzip { level: 6 },
            c => c,
        };
        let ext = match e.rule.compression {
            Compression::None => ".gz",
            _ => e.rule.compress_ext.as_str(),
        };
        let mut dst = e.archive.path.as_os_str().to_owned();
        dst.push(ext);
        let dst = PathBuf::from(dst);
        let before = e.archive.len;
        if compress_with(
            e.rule,
            compression,
            &e.archive.path,
            &dst,
            ActionKind::GuardCompress,
            ctx,
        ) && !ctx.opts.dry_run
        {
            let after = std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(before);
            total = total.saturating_sub(before.saturating_sub(after));
            if let Some((_, freed)) = fs.get_mut(&e.names.dir) {
                *freed += before.saturating_sub(after);
            }
            e.archive.path = dst;
            e.archive.len = after;
            e.archive.compressed = true;
        }
    }
    // Then removal, oldest first.
    for e in &entries {
        if !over(total, &fs, &e.names.dir) {
            continue;
        }
        if remove_with(
            e.rule,
            &e.archive.path,
            e.archive.len,
            "disk guard: oldest archive",
            ActionKind::GuardRemove,
            ctx,
        ) {
            total = total.saturating_sub(e.archive.len);
            if let Some((_, freed)) = fs.get_mut(&e.names.dir) {
                *freed += e.archive.len;
            }
        }
    }
    if entries.iter().any(|e| over(total, &fs, &e.names.dir)) {
        ctx.report.guard_alerts.push(format!(
            "still over the limit with {total} bytes of archives left: the live files themselves take the space; no live file is truncated, so free space by hand or raise the limit"
        ));
    }
}
