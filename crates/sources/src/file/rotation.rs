//! Rotation awareness: what the tailer does when the file at a followed path changed.
//!
//! - **rename + create**: the path holds a new file. The old one, still open, becomes a
//!   *retired* stream read to its end (and for `rotate_wait` after, for lines the writer
//!   adds before it reopens), then the new file is read from its start.
//! - **copytruncate** and **truncation**: the same file got smaller than the offset read, or
//!   its first line changed. A rotated copy whose first line matches is read from the
//!   committed offset to its end; then the file is read again from 0.
//! - **several rotations between two looks**: rotated files that are neither known nor
//!   older than the last look are whole generations never seen; they are read from 0,
//!   oldest first.
//! - **restart**: the checkpoint's files are found again by device and inode (and first
//!   line) at their path, at the followed path or among its rotated names.

use std::fs::{self, File, Metadata};
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use logyard_model::now_ns;

use super::checkpoint::{PathCheckpoint, StreamCheckpoint};
use super::discover::is_compressed;
use super::fingerprint::{read_full_at, FileId, Fingerprint};
use super::reader::LineReader;
use super::stream::{Entry, Stream};
use super::tailer::Tailer;

/// Rotated files changed this long before the last look still count as new (file times are
/// coarser than the clock).
const MTIME_SLACK_NS: i64 = 1_000_000_000;

/// Files gone before their end that are remembered for their compressed copies.
const LOST_KEPT: usize = 16;

/// Bytes looked at to tell a binary file.
const BINARY_PROBE: usize = 1024;

impl Tailer {
    /// Compares the path with what the entry follows; see the module documentation.
    pub(crate) fn check_path(&mut self, e: &mut Entry) {
        let meta = match fs::metadata(&e.path) {
            Ok(m) => m,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if let Some(cur) = e.current.take() {
                    tracing::info!(source = %self.name, path = %e.path.display(), "file moved or deleted; reading it to its end");
                    e.retired.push(cur);
                    self.save_entry_change(e);
                }
                e.problem = None;
                e.missing_since.get_or_insert_with(Instant::now);
                return;
            }
            Err(err) => {
                self.problem(e, format!("cannot read {}: {err}", e.path.display()));
                return;
            }
        };
        e.missing_since = None;
        if meta.is_dir() {
            let text = format!("{} is a directory, not a file", e.path.display());
            self.problem(e, text);
            return;
        }
        if !meta.is_file() {
            // A FIFO or a device would block or never end: not followed.
            let text = format!("{} is not a regular file", e.path.display());
            self.problem(e, text);
            return;
        }
        let id = FileId::of(&meta);
        match e.current.as_mut() {
            Some(cur) if cur.id == id => {
                // A file that nothing was read from yet but that changed may have been
                // written and copied away (copytruncate) between two looks: its rotated
                // copies are whole generations never read.
                let mtime = mtime_ns(&meta);
                let fresh = cur.reader.pos == 0 && mtime != cur.mtime_ns;
                cur.mtime_ns = mtime;
                let truncated = meta.len() < cur.reader.pos
                    || (cur.fp.len > 0 && !cur.fp.matches(&cur.file).unwrap_or(true));
                if truncated {
                    self.on_truncate(e);
                    return;
                }
                if !cur.fp.complete && meta.len() > u64::from(cur.fp.len) {
                    if let Ok(fp) = Fingerprint::of(&cur.file) {
                        cur.fp = fp;
                    }
                }
                if fresh {
                    self.adopt_generations(e, id);
                }
            }
            Some(_) => {
                tracing::info!(source = %self.name, path = %e.path.display(), "file rotated");
                if let Some(cur) = e.current.take() {
                    e.retired.push(cur);
                }
                self.adopt_generations(e, id);
                self.open_current(e, 0);
            }
            None => {
                if e.skip_id == Some(id) {
                    return;
                }
                let stale = self.settings.ignore_older.is_some_and(|age| {
                    mtime_ns(&meta) < now_ns().saturating_sub(age.as_nanos() as i64)
                });
                let start = if !e.had_stream && (e.initial && self.settings.start_at_end || stale) {
                    if stale {
                        tracing::info!(
                            source = %self.name,
                            path = %e.path.display(),
                            "not changed within ignore_older: following it from its end"
                        );
                    }
                    meta.len()
                } else {
                    0
                };
                if e.had_stream {
                    self.adopt_generations(e, id);
                } else if start == 0 && self.settings.read_older_generations {
                    // A path read from its start for the first time: its rotated files hold
                    // its older lines, to be read first.
                    let seen = std::mem::replace(&mut e.seen_ns, i64::MIN / 2);
                    self.adopt_generations(e, id);
                    e.seen_ns = seen;
                }
                self.open_current(e, start);
            }
        }
    }

    /// The file at the path got smaller or changed its first line.
    fn on_truncate(&mut self, e: &mut Entry) {
        let Some(cur) = e.current.as_ref() else {
            return;
        };
        tracing::info!(source = %self.name, path = %e.path.display(), "file truncated; reading it from its start");
        let (id, fp, committed) = (cur.id, cur.fp, cur.committed);
        self.adopt_generations(e, id);
        let copied = e.retired.iter().any(|s| same_first_line(s.fp, fp));
        if !copied && committed > 0 {
            // The old content may come back compressed (`app.log.1.gz`): read it from here.
            self.remember_lost(fp, committed);
        }
        if let Some(cur) = e.current.as_mut() {
            cur.committed = 0;
            cur.reader.reset(0);
            cur.fp = Fingerprint::of(&cur.file).unwrap_or_default();
        }
        self.save_entry_change(e);
    }

    /// Queues the rotated files that are new since the last look, oldest first. A file that
    /// starts with the same first line as a followed file and is not the same file is its
    /// copy (copytruncate): it is read from that file's committed offset, just before it.
    /// Any other is a whole generation never seen: read from 0.
    fn adopt_generations(&mut self, e: &mut Entry, exclude: FileId) {
        for (path, meta) in self.rotated_siblings(&e.path) {
            let id = FileId::of(&meta);
            if id == exclude || e.knows(id) || mtime_ns(&meta) < e.seen_ns - MTIME_SLACK_NS {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let fp = Fingerprint::of(&file).unwrap_or_default();
            let copy_of = |s: &Stream| fp.len > 0 && same_first_line(s.fp, fp);
            let (offset, at) = if let Some(i) = e.retired.iter().position(copy_of) {
                (e.retired[i].committed.min(meta.len()), i)
            } else if let Some(cur) = e.current.as_ref().filter(|s| copy_of(s)) {
                (cur.committed.min(meta.len()), e.retired.len())
            } else {
                // A generation never seen: among the rotated files, by last write.
                let m = mtime_ns(&meta);
                let at = e
                    .retired
                    .iter()
                    .position(|s| s.file.metadata().is_ok_and(|sm| mtime_ns(&sm) > m))
                    .unwrap_or(e.retired.len());
                (0, at)
            };
            tracing::info!(source = %self.name, path = %path.display(), offset, "reading a rotated file");
            let stream = self.stream(path, id, fp, file, offset);
            e.retired.insert(at, stream);
        }
    }

    /// Rotated names of a path (`app.log.1`, `app.log-20240115`), uncompressed, oldest
    /// first by modification time, then by rotation number.
    pub(crate) fn rotated_siblings(&self, path: &Path) -> Vec<(PathBuf, Metadata)> {
        let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else {
            return Vec::new();
        };
        let base = base.to_string_lossy().into_owned();
        let Ok(rd) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<(i64, u64, PathBuf, Metadata)> = Vec::new();
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&base) else {
                continue;
            };
            if !(rest.starts_with('.') || rest.starts_with('-')) || is_compressed(&name) {
                continue;
            }
            let p = ent.path();
            let Ok(meta) = fs::metadata(&p) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let rank = rest
                .rsplit(['.', '-'])
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            out.push((mtime_ns(&meta), rank, p, meta));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        out.into_iter().map(|(_, _, p, m)| (p, m)).collect()
    }

    /// Opens the file at the path and follows it from `start`.
    fn open_current(&mut self, e: &mut Entry, start: u64) {
        let file = match File::open(&e.path) {
            Ok(f) => f,
            Err(err) => {
                self.problem(e, format!("cannot open {}: {err}", e.path.display()));
                return;
            }
        };
        let Ok(meta) = file.metadata() else {
            return;
        };
        let id = FileId::of(&meta);
        let mut probe = [0u8; BINARY_PROBE];
        let n = read_full_at(&file, &mut probe, 0).unwrap_or(0);
        if probe[..n].contains(&0) {
            e.skip_id = Some(id);
            self.problem(
                e,
                format!(
                    "{} is a binary file (NUL bytes); not followed",
                    e.path.display()
                ),
            );
            return;
        }
        let fp = Fingerprint::of(&file).unwrap_or_default();
        let start = start.min(meta.len());
        let path = e.path.clone();
        e.current = Some(self.stream(path, id, fp, file, start));
        e.had_stream = true;
        e.problem = None;
        e.skip_id = None;
        self.save_entry_change(e);
    }

    fn stream(
        &self,
        path: PathBuf,
        id: FileId,
        fp: Fingerprint,
        file: File,
        offset: u64,
    ) -> Stream {
        let mtime = file.metadata().map_or(0, |m| mtime_ns(&m));
        Stream {
            mtime_ns: mtime,
            path,
            id,
            fp,
            file,
            committed: offset,
            reader: LineReader::new(
                offset,
                self.settings.max_line_bytes,
                self.settings.partial_timeout,
                self.settings.multiline.clone(),
            )
            .wrapped(self.settings.wrapped),
            last_growth: Instant::now(),
        }
    }

    /// Reports a path that cannot be followed (once per distinct problem).
    pub(crate) fn problem(&mut self, e: &mut Entry, text: String) {
        if e.problem.as_deref() != Some(text.as_str()) {
            tracing::warn!(source = %self.name, "{text}");
            self.status.input_error(text.clone());
            e.problem = Some(text);
        }
    }

    /// Rebuilds an entry from its checkpoint, finding its files again.
    pub(crate) fn restore_entry(&mut self, path: &Path, pc: &PathCheckpoint) -> Entry {
        let meta = self.discover.describe(path);
        let mut e = Entry::new(path, meta, false, pc.seen_ns);
        e.done = pc.done.clone();
        e.had_stream = pc.current.is_some() || !pc.retired.is_empty() || !pc.done.is_empty();
        for sc in &pc.retired {
            match self.locate(path, sc) {
                Some(s) => e.retired.push(s),
                None => self.lost(sc),
            }
        }
        if let Some(sc) = &pc.current {
            match self.locate(path, sc) {
                Some(s) if s.path == path => e.current = Some(s),
                Some(s) => e.retired.push(s),
                None => self.lost(sc),
            }
        }
        e
    }

    fn lost(&mut self, sc: &StreamCheckpoint) {
        let text = format!(
            "{} (read up to byte {}) is gone; lines after that offset are lost unless a compressed copy is read",
            sc.path.display(),
            sc.offset
        );
        tracing::warn!(source = %self.name, "{text}");
        self.status.input_error(text);
        self.remember_lost(sc.fp, sc.offset);
    }

    /// Keeps the first line and offset of a file gone before its end (the newest few).
    fn remember_lost(&mut self, fp: Fingerprint, offset: u64) {
        self.lost.push((fp, offset));
        if self.lost.len() > LOST_KEPT {
            self.lost.remove(0);
        }
    }

    /// Finds a checkpointed file by device and inode: at its last path, at the followed path
    /// (where a changed first line is handled as a truncation), or among the rotated names
    /// (where the first line must match too).
    fn locate(&self, followed: &Path, sc: &StreamCheckpoint) -> Option<Stream> {
        let mut tries: Vec<(PathBuf, bool)> = vec![(sc.path.clone(), sc.path == followed)];
        tries.push((followed.to_path_buf(), true));
        tries.extend(
            self.rotated_siblings(followed)
                .into_iter()
                .map(|(p, _)| (p, false)),
        );
        for (p, lenient) in tries {
            if !fs::metadata(&p).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let Ok(file) = File::open(&p) else {
                continue;
            };
            let Ok(meta) = file.metadata() else {
                continue;
            };
            if FileId::of(&meta) != sc.id {
                continue;
            }
            if !lenient && sc.fp.len > 0 && !sc.fp.matches(&file).unwrap_or(false) {
                continue;
            }
            let mut s = self.stream(p, sc.id, sc.fp, file, sc.offset);
            // Unknown: whether an empty file changed while logyard was stopped.
            s.mtime_ns = 0;
            return Some(s);
        }
        None
    }
}

/// True when two fingerprints cover the same first bytes.
pub(crate) fn same_first_line(a: Fingerprint, b: Fingerprint) -> bool {
    a.hash == b.hash && a.len == b.len
}

fn mtime_ns(meta: &Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}
