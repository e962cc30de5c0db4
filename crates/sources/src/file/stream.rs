//! One physical file being read, and one followed path with the files it has had.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use logyard_model::Value;

use super::checkpoint::{PathCheckpoint, StreamCheckpoint};
use super::discover::PathMeta;
use super::fingerprint::{FileId, Fingerprint};
use super::reader::LineReader;

/// At most this many finished files are remembered per path.
pub(crate) const DONE_KEPT: usize = 64;

/// A path without a file for this long is forgotten (file sources).
pub(crate) const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// An open file, how far it is delivered and its framing state.
#[derive(Debug)]
pub(crate) struct Stream {
    /// The path the file had when it was opened.
    pub path: PathBuf,
    /// Device and inode.
    pub id: FileId,
    /// The first line's fingerprint.
    pub fp: Fingerprint,
    /// The open file: reading goes on through renames and deletion.
    pub file: File,
    /// Bytes delivered and checkpointed.
    pub committed: u64,
    /// Framing state; `reader.pos` is the next byte to read.
    pub reader: LineReader,
    /// When the file last grew (a rotated file is dropped after it stayed idle).
    pub last_growth: Instant,
    /// The file's modification time at the last look (ns).
    pub mtime_ns: i64,
}

impl Stream {
    /// The stream's checkpoint.
    pub fn checkpoint(&self) -> StreamCheckpoint {
        StreamCheckpoint {
            path: self.path.clone(),
            id: self.id,
            fp: self.fp,
            offset: self.committed,
        }
    }
}

/// Which stream of an entry is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The file at the path.
    Current,
    /// A rotated file, at this index of `retired`.
    Retired(usize),
}

/// A followed path.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The followed path.
    pub path: PathBuf,
    /// The records' `source`: `file:<path>`.
    pub source: String,
    /// The agent when a line names none: the file's stem.
    pub agent: String,
    /// Fields given to every record of the path (a container's id, name and labels).
    pub fields: Vec<(String, Value)>,
    /// Records delivered from the path since start.
    pub lines: u64,
    /// The file at the path.
    pub current: Option<Stream>,
    /// Rotated files still read, oldest first.
    pub retired: Vec<Stream>,
    /// Files read to their end.
    pub done: Vec<(FileId, Fingerprint)>,
    /// Wall time of the last look at the path.
    pub seen_ns: i64,
    /// `seen_ns` as last checkpointed.
    pub cp_seen_ns: i64,
    /// True when the path was present at the first scan without a checkpoint: `start_at`
    /// applies to it. Files found later are new and read from their start.
    pub initial: bool,
    /// True once a file was followed at the path (a file that replaces it is read from 0).
    pub had_stream: bool,
    /// Why the path is not followed, if it is not.
    pub problem: Option<String>,
    /// A file not to follow (binary), until the path holds another.
    pub skip_id: Option<FileId>,
    /// Since when the path holds no file.
    pub missing_since: Option<Instant>,
}

impl Entry {
    /// A newly found path, labelled by `meta`.
    pub fn new(path: &Path, meta: PathMeta, initial: bool, now_ns: i64) -> Entry {
        Entry {
            path: path.to_path_buf(),
            source: meta.source,
            agent: meta.agent,
            fields: meta.fields,
            lines: 0,
            current: None,
            retired: Vec::new(),
            done: Vec::new(),
            seen_ns: now_ns,
            cp_seen_ns: now_ns,
            initial,
            had_stream: false,
            problem: None,
            skip_id: None,
            missing_since: None,
        }
    }

    /// The entry's checkpoint.
    pub fn checkpoint(&self) -> PathCheckpoint {
        PathCheckpoint {
            current: self.current.as_ref().map(Stream::checkpoint),
            retired: self.retired.iter().map(Stream::checkpoint).collect(),
            done: self.done.clone(),
            seen_ns: self.cp_seen_ns,
        }
    }

    /// True when the file is one this path followed or follows.
    pub fn knows(&self, id: FileId) -> bool {
        self.current.as_ref().is_some_and(|s| s.id == id)
            || self.retired.iter().any(|s| s.id == id)
            || self.done.iter().any(|(d, _)| *d == id)
    }

    /// Remembers a file read to its end.
    pub fn finish(&mut self, id: FileId, fp: Fingerprint) {
        self.done.retain(|(d, _)| *d != id);
        self.done.push((id, fp));
        if self.done.len() > DONE_KEPT {
            self.done.remove(0);
        }
    }

    /// Relabels the path (a container renamed or relabelled).
    pub fn relabel(&mut self, meta: PathMeta) {
        self.source = meta.source;
        self.agent = meta.agent;
        self.fields = meta.fields;
    }

    /// True when the path held no file for `after` and nothing of it is left to read: the
    /// entry (and its checkpoint) can go; a file that appears there later is new.
    pub fn forgotten(&self, after: std::time::Duration) -> bool {
        self.current.is_none()
            && self.retired.is_empty()
            && self.missing_since.is_some_and(|t| t.elapsed() >= after)
    }

    /// True when any stream holds bytes not yet given out.
    pub fn has_pending(&self) -> bool {
        self.current
            .iter()
            .chain(&self.retired)
            .any(|s| s.reader.has_pending())
    }
}
