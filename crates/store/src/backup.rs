//! Backup of an open store while it keeps ingesting, and restore of a backup offline.
//!
//! A backup is a directory laid out as a data directory (`parts/`, `wal/`, `state/`) plus a
//! `manifest.json` written last, so that a directory without one is a backup that did not
//! finish. [`Store::backup`](crate::Store::backup) pins the store first: from then on no file
//! is deleted (a merge's inputs, a day dropped by retention, WAL files after a flush) until it
//! ends; the deletions wait and happen then. With the pin held it takes the catalog as of that
//! instant, hard-links (or, across file systems, copies and fsyncs) every segment file the
//! catalog lists, and copies the WAL files present, the one being written only up to the end
//! of its last frame written then. Segments are immutable, so a link is a copy. The alert
//! state and the saved queries ([`OTHER_STATE`]) are copied too, each as one whole version.
//!
//! Why that is consistent: every record with a sequence number up to the catalog's
//! `flushed_seq` is in its segments, and every acknowledged record above it is still in the
//! WAL (WAL files are removed only after a catalog holding their records was saved, and the
//! pin came before the catalog was taken). Recovery of the copy replays only WAL records above
//! `flushed_seq`, so nothing acknowledged before the backup began is missing and nothing is
//! stored twice. Records acknowledged while the backup ran may be in it too.
//!
//! [`restore`] checks a backup (the manifest, then each file's size and CRC32C, and that the
//! catalog reads) and copies it into a new, empty data directory.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Loaded};
use crate::dir::SegmentDir;
use crate::error::StoreError;
use crate::fileops;
use crate::wal;

/// The name of the manifest in a backup directory.
pub const MANIFEST: &str = "manifest.json";

/// The files of `state/` besides the catalog that a backup holds: the alert history and
/// cooldowns, and the saved queries. (Source checkpoints and the rotation state describe
/// the host the server runs on and stay out.)
pub const OTHER_STATE: [&str; 2] = ["alerts.json", "saved-queries.json"];

/// The format of backups this version writes and reads.
pub const BACKUP_FORMAT: u32 = 1;

/// What a backup holds: written into it last.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The backup format, [`BACKUP_FORMAT`].
    pub format: u32,
    /// The version of logyard that wrote it.
    pub logyard_version: String,
    /// When the backup began, RFC 3339.
    pub created: String,
    /// The data directory it was taken of, on the server's host.
    pub source: String,
    /// The catalog's format version.
    pub catalog_version: u32,
    /// Every record up to this sequence number is in the segments.
    pub flushed_seq: u64,
    /// Segments.
    pub segments: u64,
    /// Rows in the segments.
    pub segment_rows: u64,
    /// WAL files.
    pub wal_files: u64,
    /// Records in the WAL files that are not in the segments (replayed at the first start).
    pub wal_rows: u64,
    /// Segments in quarantine at the time, which a backup leaves out.
    pub quarantined_left_out: u64,
    /// Every file of the backup but the manifest.
    pub files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Its path in the backup, `/`-separated (`parts/2024-01-15/seg-000000000001.parquet`).
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// Its CRC32C.
    pub crc32c: u32,
}

impl Manifest {
    /// Bytes of every file.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Bytes of the WAL files.
    pub fn wal_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| f.path.starts_with("wal/"))
            .map(|f| f.bytes)
            .sum()
    }
}

/// What a backup did.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// Where it was written.
    pub to: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Segment files hard-linked (same file system).
    pub linked_files: u64,
    /// Files copied.
    pub copied_files: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// A WAL file to copy: its number, and how many of its bytes (`None`: all of it).
pub(crate) type WalPart = (u64, Option<u64>);

/// Refuses a target that is not empty, is a file, or lies in the data directory; creates it
/// when missing. Returns whether it was created.
pub(crate) fn prepare_target(to: &Path, data_dir: &Path) -> Result<bool, StoreError> {
    let refuse = |why: String| StoreError::BackupTarget(format!("{}: {why}", to.display()));
    let created = match fs::metadata(to) {
        Ok(m) if !m.is_dir() => {
            return Err(refuse(
                "is a file; give a new or empty directory".to_string(),
            ))
        }
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(to).map_err(|e| refuse(format!("cannot create it: {e}")))?;
            true
        }
        Err(e) => return Err(refuse(format!("cannot read it: {e}"))),
    };
    let entries = fs::read_dir(to)
        .map_err(|e| refuse(format!("cannot read it: {e}")))?
        .count();
    if entries > 0 {
        return Err(refuse(format!(
            "is not empty ({entries} entries); give a new or empty directory, a backup never writes over files"
        )));
    }
    let real = fs::canonicalize(to).map_err(|e| refuse(e.to_string()))?;
    if let Ok(data) = fs::canonicalize(data_dir) {
        if real.starts_with(&data) {
            if created {
                let _ = fs::remove_dir(to);
            }
            return Err(refuse(format!(
                "lies inside the data directory {}; give a directory outside it",
                data.display()
            )));
        }
    }
    Ok(created)
}

/// Creates `dir` and its parents, fsyncing each directory made and the parent it was made in.
fn make_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        make_dir(parent)?;
    }
    fs::create_dir(dir)?;
    if let Some(parent) = dir.parent() {
        fileops::sync_dir(parent)?;
    }
    Ok(())
}

/// Copies a file, fsyncs the copy, and returns its CRC32C (of what was read and written,
/// at most `limit` bytes when given).
fn copy_file(from: &Path, to: &Path, limit: Option<u64>) -> io::Result<(u64, u32)> {
    let mut src = File::open(from)?;
    let mut dst = fileops::create(to)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut crc, mut total) = (0u32, 0u64);
    loop {
        let want = match limit {
            Some(l) => (l - total).min(buf.len() as u64) as usize,
            None => buf.len(),
        };
        if want == 0 {
            break;
        }
        let n = src.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        fileops::write_all(&mut dst, to, &buf[..n])?;
        total += n as u64;
    }
    if let Some(l) = limit {
        if total < l {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} holds {total} bytes, fewer than {l}", from.display()),
            ));
        }
    }
    fileops::sync_all(&dst, to)?;
    Ok((total, crc))
}

/// Returns the CRC32C of a whole file.
fn crc_of(path: &Path) -> io::Result<u32> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// Hard-links `from` to `to`, or copies it (with an fsync) when a link is not possible (other
/// file systems); returns whether it was linked.
fn link_or_copy(from: &Path, to: &Path) -> io::Result<bool> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => copy_file(from, to, None).map(|_| false),
    }
}

/// The relative path of a file in a backup, `/`-separated.
fn rel(parts: &[&str]) -> String {
    parts.join("/")
}

/// Writes the backup's files into `to` (prepared, empty): the catalog's segments, the WAL
/// parts, the catalog, then the manifest.
pub(crate) fn write(
    data_dir: &Path,
    segments: &dyn SegmentDir,
    to: &Path,
    catalog: &Catalog,
    wal_parts: &[WalPart],
    started: Instant,
) -> Result<BackupReport, StoreError> {
    let fail = |what: String, e: io::Error| {
        StoreError::Backup(format!(
            "{what}: {e}; the backup in {} is incomplete (it has no {MANIFEST}): remove it, fix the cause, and run the backup again",
            to.display()
        ))
    };
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut files = Vec::new();
    let (mut linked, mut copied) = (0u64, 0u64);
    let mut synced_dirs = Vec::new();
    let parts_to = to.join("parts");
    make_dir(&parts_to).map_err(|e| fail(format!("cannot create {}", parts_to.display()), e))?;
    for meta in &catalog.segments {
        let day_dir = to.join("parts").join(&meta.day);
        if !synced_dirs.contains(&day_dir) {
            make_dir(&day_dir)
                .map_err(|e| fail(format!("cannot create {}", day_dir.display()), e))?;
            synced_dirs.push(day_dir.clone());
        }
        for key in [meta.data_key(), meta.index_key()] {
            let name = key.file_name();
            let dst = day_dir.join(&name);
            let copy = match segments.local_path(&key) {
                Some(from) => link_or_copy(&from, &dst),
                // From a bucket: downloaded whole.
                None => segments
                    .get(&key)
                    .and_then(|bytes| fileops::write_atomic(&dst, &bytes))
                    .map(|()| false),
            };
            let was_linked = copy.map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    StoreError::Backup(format!(
                        "segment {} of {} went to quarantine (found damaged) while the backup ran; the backup in {} is incomplete: remove it and run the backup again",
                        meta.id, meta.day, to.display()
                    ))
                } else {
                    fail(format!("cannot copy {key} from {}", segments.location()), e)
                }
            })?;
            if was_linked {
                linked += 1;
            } else {
                copied += 1;
            }
            let bytes = fs::metadata(&dst)
                .map_err(|e| fail(format!("cannot read {}", dst.display()), e))?
                .len();
            let crc32c = if name.ends_with(".parquet") {
                meta.crc32c
            } else {
                crc_of(&dst).map_err(|e| fail(format!("cannot read {}", dst.display()), e))?
            };
            files.push(FileEntry {
                path: rel(&["parts", &meta.day, &name]),
                bytes,
                crc32c,
            });
        }
    }
    let wal_to = to.join("wal");
    make_dir(&wal_to).map_err(|e| fail(format!("cannot create {}", wal_to.display()), e))?;
    let mut wal_rows = 0u64;
    let mut next_seq = 0u64;
    let mut replay = wal::ReplayReport::default();
    for &(n, limit) in wal_parts {
        let name = wal::file_name(n);
        let from = data_dir.join("wal").join(&name);
        let dst = wal_to.join(&name);
        let (bytes, crc32c) = copy_file(&from, &dst, limit)
            .map_err(|e| fail(format!("cannot copy {}", from.display()), e))?;
        copied += 1;
        // Count the records recovery will replay from the copy.
        let data = fs::read(&dst).map_err(|e| fail(format!("cannot read {}", dst.display()), e))?;
        wal::scan(&data, &mut next_seq, &mut replay, &mut |records, _| {
            wal_rows += records
                .iter()
                .filter(|r| r.seq > catalog.flushed_seq)
                .count() as u64;
        });
        files.push(FileEntry {
            path: rel(&["wal", &name]),
            bytes,
            crc32c,
        });
    }
    let state = to.join("state");
    make_dir(&state).map_err(|e| fail(format!("cannot create {}", state.display()), e))?;
    let mut kept = catalog.clone();
    // The copy holds the segment files in its own parts/, wherever the store keeps them.
    kept.segment_location = None;
    let quarantined_left_out = kept.quarantined.len() as u64;
    kept.quarantined.clear();
    let catalog_path = state.join("catalog.json");
    kept.save(&catalog_path)?;
    let bytes = serde_json::to_vec_pretty(&kept).expect("catalog serialises");
    files.push(FileEntry {
        path: rel(&["state", "catalog.json"]),
        bytes: bytes.len() as u64,
        crc32c: crc32c::crc32c(&bytes),
    });
    // The other parts' state that users would miss. Each is replaced whole by a rename when
    // it changes, so a copy is one version of it; an absent one is no error.
    for name in OTHER_STATE {
        let from = data_dir.join("state").join(name);
        let dst = state.join(name);
        match copy_file(&from, &dst, None) {
            Ok((bytes, crc32c)) => {
                copied += 1;
                files.push(FileEntry {
                    path: rel(&["state", name]),
                    bytes,
                    crc32c,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&dst);
            }
            Err(e) => return Err(fail(format!("cannot copy {}", from.display()), e)),
        }
    }
    for dir in synced_dirs.iter().chain([&parts_to, &wal_to, &state]) {
        fileops::sync_dir(dir).map_err(|e| fail(format!("cannot fsync {}", dir.display()), e))?;
    }
    let manifest = Manifest {
        format: BACKUP_FORMAT,
        logyard_version: env!("CARGO_PKG_VERSION").to_string(),
        created,
        source: data_dir.display().to_string(),
        catalog_version: kept.version,
        flushed_seq: kept.flushed_seq,
        segments: kept.segments.len() as u64,
        segment_rows: kept.segments.iter().map(|m| m.rows).sum(),
        wal_files: wal_parts.len() as u64,
        wal_rows,
        quarantined_left_out,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    fileops::write_atomic(&to.join(MANIFEST), &text)
        .map_err(|e| fail(format!("cannot write {MANIFEST}"), e))?;
    if let Some(parent) = to.parent() {
        let _ = fileops::sync_dir(parent);
    }
    Ok(BackupReport {
        to: to.to_path_buf(),
        manifest,
        linked_files: linked,
        copied_files: copied,
        elapsed: started.elapsed(),
    })
}

/// Removes what a failed backup wrote into `to` (which was empty), and `to` itself when the
/// backup created it.
pub(crate) fn remove_partial(to: &Path, created: bool) {
    for sub in ["parts", "wal", "state", MANIFEST] {
        let path = to.join(sub);
        let _ = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
    if created {
        let _ = fs::remove_dir(to);
    }
}

/// Reads and checks a backup's manifest, then every file it lists (present, its size, its
/// CRC32C when `checksums`), and that the catalog reads and lists only files the backup holds.
pub fn verify(from: &Path, checksums: bool) -> Result<Manifest, StoreError> {
    let bad = |why: String| StoreError::BadBackup(format!("{}: {why}", from.display()));
    let path = from.join(MANIFEST);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad(format!(
                "no {MANIFEST}: not a backup, or one that did not finish; restore from a complete backup (`logyard backup` writes {MANIFEST} last)"
            )))
        }
        Err(e) => return Err(bad(format!("cannot read {MANIFEST}: {e}"))),
    };
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    if let Ok(Format { format }) = serde_json::from_slice::<Format>(&text) {
        if format > BACKUP_FORMAT {
            return Err(bad(format!(
                "backup format {format} is newer than this logyard reads ({BACKUP_FORMAT}); restore it with the logyard that wrote it"
            )));
        }
    }
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
        bad(format!(
            "{MANIFEST} is damaged ({e}); restore from another backup"
        ))
    })?;
    for f in &manifest.files {
        let file = safe_join(from, &f.path).ok_or_else(|| {
            bad(format!(
                "{MANIFEST} names a path outside the backup: {}",
                f.path
            ))
        })?;
        let len = match fs::metadata(&file) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(bad(format!(
                    "{} is missing; the backup is incomplete: restore from another backup",
                    f.path
                )))
            }
            Err(e) => return Err(bad(format!("cannot read {}: {e}", f.path))),
        };
        if len != f.bytes {
            return Err(bad(format!(
                "{} is {len} bytes, the manifest says {}: the file was cut or changed after the backup; restore from another backup",
                f.path, f.bytes
            )));
        }
    }
    if checksums {
        for f in &manifest.files {
            let file = safe_join(from, &f.path).expect("checked above");
            let crc = crc_of(&file).map_err(|e| bad(format!("cannot read {}: {e}", f.path)))?;
            if crc != f.crc32c {
                return Err(bad(checksum_message(&f.path, crc, f.crc32c)));
            }
        }
    }
    let catalog_path = from.join("state").join("catalog.json");
    let catalog = match Catalog::load(&catalog_path) {
        Ok(Loaded::Found(c)) => c,
        Ok(Loaded::Missing) => {
            return Err(bad(
                "state/catalog.json is missing; restore from another backup".to_string(),
            ))
        }
        Ok(Loaded::Damaged(why)) => {
            return Err(bad(format!(
                "state/catalog.json does not read ({why}); restore from another backup"
            )))
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    for meta in &catalog.segments {
        for key in [meta.data_key(), meta.index_key()] {
            let name = format!("parts/{key}");
            if !manifest.files.iter().any(|f| f.path == name) {
                return Err(bad(format!(
                    "the catalog lists {name}, which the manifest does not; restore from another backup"
                )));
            }
        }
    }
    Ok(manifest)
}

fn checksum_message(path: &str, found: u32, want: u32) -> String {
    format!(
        "{path} does not match its checksum (CRC32C {found:08x}, the manifest says {want:08x}): the file was damaged after the backup; restore from another backup"
    )
}

/// Joins a manifest's relative path to `base`, refusing anything but plain names.
fn safe_join(base: &Path, rel: &str) -> Option<PathBuf> {
    let path = Path::new(rel);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| base.join(path))
}

/// Restores the backup in `from` into the data directory `to`, which must be missing or
/// empty: checks the backup ([`verify`], sizes), then copies each file with an fsync,
/// checking its CRC32C as it goes. On any failure what was copied is removed again.
pub fn restore(from: &Path, to: &Path) -> Result<Manifest, StoreError> {
    let manifest = verify(from, false)?;
    let refuse = |why: String| StoreError::BackupTarget(format!("{}: {why}", to.display()));
    let created = match fs::read_dir(to) {
        Ok(entries) => {
            let n = entries.count();
            if n > 0 {
                return Err(refuse(format!(
                    "is not empty ({n} entries); restore into a new or empty directory"
                )));
            }
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            make_dir(to).map_err(|e| refuse(format!("cannot create it: {e}")))?;
            true
        }
        Err(e) => return Err(refuse(format!("cannot read it: {e}"))),
    };
    let copied = (|| {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for f in &manifest.files {
            let src = safe_join(from, &f.path).expect("verified");
            let dst = safe_join(to, &f.path).expect("verified");
            let dir = dst.parent().expect("a file in a directory").to_path_buf();
            if !dirs.contains(&dir) {
                make_dir(&dir).map_err(|e| {
                    StoreError::Backup(format!("cannot create {}: {e}", dir.display()))
                })?;
                dirs.push(dir);
            }
            let (bytes, crc) = copy_file(&src, &dst, None).map_err(|e| {
                StoreError::Backup(format!(
                    "cannot copy {} to {}: {e}",
                    src.display(),
                    dst.display()
                ))
            })?;
            if bytes != f.bytes {
                return Err(StoreError::BadBackup(format!(
                    "{}: {} changed while it was restored ({bytes} bytes, the manifest says {})",
                    from.display(),
                    f.path,
                    f.bytes
                )));
            }
            if crc != f.crc32c {
                return Err(StoreError::BadBackup(format!(
                    "{}: {}",
                    from.display(),
                    checksum_message(&f.path, crc, f.crc32c)
                )));
            }
        }
        for dir in dirs.iter().map(PathBuf::as_path).chain([to]) {
            fileops::sync_dir(dir)
                .map_err(|e| StoreError::Backup(format!("cannot fsync {}: {e}", dir.display())))?;
        }
        Ok(())
    })();
    if let Err(e) = copied {
        remove_partial(to, created);
        return Err(e);
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_join_keeps_to_the_base() {
        let base = Path::new("/b");
        assert_eq!(
            safe_join(base, "parts/2024-01-01/seg-1.parquet"),
            Some(PathBuf::from("/b/parts/2024-01-01/seg-1.parquet"))
        );
        assert_eq!(safe_join(base, "../etc/passwd"), None);
        assert_eq!(safe_join(base, "/etc/passwd"), None);
    }
}
