//! Where segment files live: a local folder (`parts/`, the default), an S3-compatible
//! bucket ([`crate::S3Dir`]), or memory ([`MemoryDir`], with injectable failures for tests).
//!
//! The store reads and writes segments only through [`SegmentDir`]: whole files are put
//! once (segments are immutable), read whole (the index) or by byte ranges (the Parquet
//! data file: its footer, then the column chunks a query needs), listed at start, and
//! deleted when their rows are provably elsewhere. The WAL, the catalog and quarantine stay
//! on the local disk.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use parquet::errors::{ParquetError, Result as ParquetResult};
use parquet::file::reader::{ChunkReader, Length};

use crate::fileops;
use crate::pread::PreadFile;
use crate::uploads::TierCounters;

/// One of a segment's two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// The Parquet data file.
    Data,
    /// The token-filter sidecar.
    Index,
}

impl FileKind {
    /// The file name's extension.
    pub const fn extension(self) -> &'static str {
        match self {
            FileKind::Data => "parquet",
            FileKind::Index => "idx",
        }
    }
}

/// The name of one segment file: its day, its segment id and which of the two it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    /// The UTC day of its rows, `YYYY-MM-DD`.
    pub day: String,
    /// The segment id.
    pub id: u64,
    /// Data or index.
    pub kind: FileKind,
}

impl FileKey {
    /// The data file of segment `id` of `day`.
    pub fn data(day: &str, id: u64) -> FileKey {
        FileKey {
            day: day.to_string(),
            id,
            kind: FileKind::Data,
        }
    }

    /// The index file of segment `id` of `day`.
    pub fn index(day: &str, id: u64) -> FileKey {
        FileKey {
            kind: FileKind::Index,
            ..FileKey::data(day, id)
        }
    }

    /// The file's name within its day: `seg-<id>.parquet` or `seg-<id>.idx`.
    pub fn file_name(&self) -> String {
        format!("seg-{:012}.{}", self.id, self.kind.extension())
    }

    /// Reads a file name of a day (`seg-<id>.parquet` or `.idx`); `None` for any other.
    pub fn parse(day: &str, name: &str) -> Option<FileKey> {
        let rest = name.strip_prefix("seg-")?;
        let (id, ext) = rest.split_once('.')?;
        let kind = [FileKind::Data, FileKind::Index]
            .into_iter()
            .find(|k| k.extension() == ext)?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(FileKey {
            day: day.to_string(),
            id: id.parse().ok()?,
            kind,
        })
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.day, self.file_name())
    }
}

/// Where the segments' files live.
///
/// Every method may block (a bucket is reached over the network); errors are I/O errors,
/// `NotFound` when the file does not exist.
pub trait SegmentDir: fmt::Debug + Send + Sync {
    /// Where, for messages: a folder's path or `s3://bucket/prefix`.
    fn location(&self) -> String;

    /// Where, as the catalog records it: `None` for the data directory's own `parts/`,
    /// which moves with it. A store refuses to open a catalog recorded elsewhere.
    fn catalog_location(&self) -> Option<String> {
        Some(self.location())
    }

    /// Writes a whole file, durably and atomically: a reader sees all of it or nothing.
    fn put(&self, key: &FileKey, bytes: Bytes) -> io::Result<()>;

    /// Writes whole files in order, each as [`SegmentDir::put`] does (a local folder makes
    /// its directory durable once for all of them).
    fn put_all(&self, files: Vec<(FileKey, Bytes)>) -> io::Result<()> {
        for (key, bytes) in files {
            self.put(&key, bytes)?;
        }
        Ok(())
    }

    /// Reads a whole file.
    fn get(&self, key: &FileKey) -> io::Result<Bytes>;

    /// Opens a file for reads by position.
    fn open(&self, key: &FileKey) -> io::Result<SegmentFile>;

    /// Deletes a file; one already absent is not an error.
    fn delete(&self, key: &FileKey) -> io::Result<()>;

    /// Deletes every file of a day.
    fn delete_day(&self, day: &str) -> io::Result<()>;

    /// Lists every segment file, in key order.
    fn list(&self) -> io::Result<Vec<FileKey>>;

    /// Removes what writes that did not finish left behind (temporary files, empty day
    /// folders); called at start, after the files were settled.
    fn tidy(&self) -> io::Result<()> {
        Ok(())
    }

    /// Claims the directory for the store of node `node` (described by `about`, JSON):
    /// a shared directory (a bucket's prefix) holds the segments of one store only, or each
    /// would take the other's for its own. Succeeds when the directory is unclaimed or
    /// claimed by `node`; fails with `AlreadyExists` and the owner's description otherwise.
    /// The local folder belongs to its data directory (and its lock): nothing to claim.
    fn claim(&self, _node: &str, _about: &str) -> io::Result<()> {
        Ok(())
    }

    /// Publishes the store's manifest ([`crate::NodeManifest`]: the segments it serves from this
    /// directory) where query nodes read it: a bucket prefix's `manifest.json`, replacing the
    /// last one. A folder of the data directory's own has no other reader: nothing to do.
    fn publish(&self, _manifest: Bytes) -> io::Result<()> {
        Ok(())
    }

    /// Whether a file is where the other nodes read it: true but for a local file still
    /// waiting for its upload to the bucket.
    fn shared(&self, _key: &FileKey) -> bool {
        true
    }

    /// Whether a file deleted stays readable by those who opened it (a local file through
    /// its open handle). Where not (a bucket), the files of merged segments are deleted only
    /// once no snapshot reads them.
    fn deleted_files_stay_readable(&self) -> bool {
        false
    }

    /// The uploads' figures, for a directory that uploads to a bucket.
    fn upload_counters(&self) -> Option<&TierCounters> {
        None
    }

    /// The figures of the ranges of the bucket's files kept on the local disk, for a
    /// directory that reads a bucket through a [`crate::RangeCache`].
    fn range_cache(&self) -> Option<crate::RangeCacheStats> {
        None
    }

    /// The file's path when it is on the local disk (a backup links it instead of copying).
    fn local_path(&self, _key: &FileKey) -> Option<PathBuf> {
        None
    }

    /// Moves a file out of the store to the local path `to` (quarantine).
    fn move_out(&self, key: &FileKey, to: &Path) -> io::Result<()> {
        let bytes = self.get(key)?;
        fileops::write_atomic(to, &bytes)?;
        self.delete(key)
    }
}

/// Reads of a file by position.
pub trait ReadAt: fmt::Debug + Send + Sync {
    /// Reads `len` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes>;

    /// The reader behind a cache of this file's bytes, if it is one: a check of the file's
    /// checksum reads there, so that a bad copy is never taken for a damaged file.
    fn uncached(&self) -> Option<&dyn ReadAt> {
        None
    }
}

impl ReadAt for PreadFile {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            match PreadFile::read_at(self, &mut buf[done..], offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        buf.truncate(done);
        Ok(Bytes::from(buf))
    }
}

/// A segment file opened for reads by position, from any [`SegmentDir`]; a Parquet
/// [`ChunkReader`].
#[derive(Debug, Clone)]
pub struct SegmentFile {
    source: Arc<dyn ReadAt>,
    len: u64,
    local: bool,
    /// Byte ranges fetched ahead of a read ([`SegmentFile::prefetch`]), by start offset.
    fetched: Arc<BTreeMap<u64, Bytes>>,
}

impl SegmentFile {
    /// A file of `len` bytes read through `source`; `local` when reads are cheap (the local
    /// disk), so that nothing is fetched ahead.
    pub fn new(source: Arc<dyn ReadAt>, len: u64, local: bool) -> SegmentFile {
        SegmentFile {
            source,
            len,
            local,
            fetched: Arc::default(),
        }
    }

    /// The same file read through what `wrap` makes of its reader (e.g. one that counts).
    pub(crate) fn reading_through(
        self,
        wrap: impl FnOnce(Arc<dyn ReadAt>) -> Arc<dyn ReadAt>,
    ) -> SegmentFile {
        SegmentFile {
            source: wrap(self.source),
            ..self
        }
    }

    /// A local file read with `pread`.
    pub fn local(file: PreadFile) -> SegmentFile {
        let len = Length::len(&file);
        SegmentFile::new(Arc::new(file), len, true)
    }

    /// Whether reads are cheap (a local file).
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// The same file with `ranges` fetched at once (one request each, adjacent ones joined),
    /// so that a block's pages are then read from memory instead of one request each. Local
    /// files are returned as they are.
    pub fn prefetch(&self, ranges: &[Range<u64>]) -> io::Result<SegmentFile> {
        if self.local || ranges.is_empty() {
            return Ok(self.clone());
        }
        let mut sorted = ranges.to_vec();
        sorted.sort_by_key(|r| r.start);
        let mut joined: Vec<Range<u64>> = Vec::new();
        for r in sorted {
            match joined.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => joined.push(r),
            }
        }
        let mut fetched = BTreeMap::new();
        for r in joined {
            let bytes = self.source.read_at(r.start, (r.end - r.start) as usize)?;
            fetched.insert(r.start, bytes);
        }
        Ok(SegmentFile {
            fetched: Arc::new(fetched),
            ..self.clone()
        })
    }

    /// Reads `len` bytes at `offset`, from what was fetched ahead when it holds them.
    pub fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        if let Some((start, bytes)) = self.fetched.range(..=offset).next_back() {
            let from = (offset - start) as usize;
            if from + len <= bytes.len() {
                return Ok(bytes.slice(from..from + len));
            }
        }
        self.source.read_at(offset, len)
    }

    /// Returns the CRC32C of the whole file.
    pub fn crc32c(&self) -> io::Result<u32> {
        const CHUNK: usize = 1 << 20;
        let source = self.source.uncached().unwrap_or(&*self.source);
        let mut crc = 0u32;
        let mut offset = 0u64;
        while offset < self.len {
            let bytes = source.read_at(offset, CHUNK)?;
            if bytes.is_empty() {
                break;
            }
            crc = crc32c::crc32c_append(crc, &bytes);
            offset += bytes.len() as u64;
        }
        Ok(crc)
    }
}

impl Length for SegmentFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader from a position of a [`SegmentFile`], reading ahead in chunks.
pub struct SegmentReader {
    file: SegmentFile,
    pos: u64,
    buffer: Bytes,
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.buffer.is_empty() {
            if self.pos >= self.file.len {
                return Ok(0);
            }
            let want = (self.file.len - self.pos).min(READ_AHEAD.max(buf.len()) as u64);
            self.buffer = self.file.read_at(self.pos, want as usize)?;
            if self.buffer.is_empty() {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.buffer.len());
        buf[..n].copy_from_slice(&self.buffer[..n]);
        self.buffer = self.buffer.slice(n..);
        self.pos += n as u64;
        Ok(n)
    }
}

/// How much a sequential reader asks for at once.
const READ_AHEAD: usize = 8 << 10;

impl ChunkReader for SegmentFile {
    type T = SegmentReader;

    fn get_read(&self, start: u64) -> ParquetResult<SegmentReader> {
        Ok(SegmentReader {
            file: self.clone(),
            pos: start,
            buffer: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> ParquetResult<Bytes> {
        // Kept as an I/O error (see `segment::read_error`): a read that failed is not damage.
        let bytes = self
            .read_at(start, length)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        if bytes.len() != length {
            return Err(ParquetError::General(format!(
                "cannot read {length} bytes at offset {start} of a segment: it ends first"
            )));
        }
        Ok(bytes)
    }
}

/// Segment files in a local folder: `<day>/seg-<id>.parquet` and `.idx`, written under a
/// temporary name, fsynced and renamed into place.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// Segment files under `root` (the data directory's `parts/`), created if missing.
    pub fn new(root: PathBuf) -> io::Result<LocalDir> {
        std::fs::create_dir_all(&root)?;
        Ok(LocalDir { root })
    }

    fn path(&self, key: &FileKey) -> PathBuf {
        self.root.join(&key.day).join(key.file_name())
    }
}

impl SegmentDir for LocalDir {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn catalog_location(&self) -> Option<String> {
        None
    }

    fn deleted_files_stay_readable(&self) -> bool {
        true
    }

    fn put(&self, key: &FileKey, bytes: Bytes) -> io::Result<()> {
        self.put_all(vec![(key.clone(), bytes)])
    }

    fn put_all(&self, files: Vec<(FileKey, Bytes)>) -> io::Result<()> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (key, bytes) in files {
            let path = self.path(&key);
            let dir = path.parent().unwrap_or(&self.root).to_path_buf();
            std::fs::create_dir_all(&dir)?;
            fileops::write_replacing(&path, &bytes)?;
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs.iter().try_for_each(|dir| fileops::sync_dir(dir))
    }

    fn get(&self, key: &FileKey) -> io::Result<Bytes> {
        std::fs::read(self.path(key)).map(Bytes::from)
    }

    fn open(&self, key: &FileKey) -> io::Result<SegmentFile> {
        let file = PreadFile::new(std::fs::File::open(self.path(key))?)?;
        Ok(SegmentFile::local(file))
    }

    fn delete(&self, key: &FileKey) -> io::Result<()> {
        match fileops::remove_file(&self.path(key)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn delete_day(&self, day: &str) -> io::Result<()> {
        match fileops::remove_dir_all(&self.root.join(day)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn list(&self) -> io::Result<Vec<FileKey>> {
        let mut keys = Vec::new();
        for day in std::fs::read_dir(&self.root)? {
            let day = day?;
            if !day.file_type()?.is_dir() {
                continue;
            }
            let day_name = day.file_name().to_string_lossy().to_string();
            for file in std::fs::read_dir(day.path())? {
                let file = file?;
                let name = file.file_name().to_string_lossy().to_string();
                match FileKey::parse(&day_name, &name) {
                    Some(key) => keys.push(key),
                    None if name.ends_with(".tmp") => {}
                    None => {
                        tracing::warn!(file = %file.path().display(), "a file the store does not know is left in place")
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn tidy(&self) -> io::Result<()> {
        for day in std::fs::read_dir(&self.root)? {
            let day = day?.path();
            if !day.is_dir() {
                continue;
            }
            let mut left = 0;
            for file in std::fs::read_dir(&day)? {
                let file = file?.path();
                if file.extension().is_some_and(|e| e == "tmp") {
                    tracing::info!(file = %file.display(), "removing the temporary file of a write that did not finish");
                    fileops::remove_file(&file)?;
                } else {
                    left += 1;
                }
            }
            if left == 0 {
                fileops::remove_dir(&day)?;
            }
        }
        Ok(())
    }

    fn local_path(&self, key: &FileKey) -> Option<PathBuf> {
        Some(self.path(key))
    }

    fn move_out(&self, key: &FileKey, to: &Path) -> io::Result<()> {
        fileops::rename(&self.path(key), to)
    }
}

/// An operation of a [`MemoryDir`], for injected failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirOp {
    /// [`SegmentDir::put`].
    Put,
    /// Reads: [`SegmentDir::get`], [`SegmentDir::open`] and reads of an open file.
    Get,
    /// [`SegmentDir::delete`] and [`SegmentDir::delete_day`].
    Delete,
    /// [`SegmentDir::list`].
    List,
}

/// Segment files in memory, with failures that tests inject ([`MemoryDir::fail`]): the
/// store's behaviour when its bucket is unreachable, without a bucket.
#[derive(Debug, Clone, Default)]
pub struct MemoryDir {
    inner: Arc<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    files: Mutex<BTreeMap<FileKey, Bytes>>,
    /// The claim ([`SegmentDir::claim`]): the node and its description.
    owner: Mutex<Option<(String, String)>>,
    /// The last manifest published ([`SegmentDir::publish`]).
    manifest: Mutex<Option<Bytes>>,
    /// Armed failures: the operation and how many more calls fail.
    faults: Mutex<Vec<(DirOp, u64)>>,
}

impl MemoryDir {
    /// An empty directory.
    pub fn new() -> MemoryDir {
        MemoryDir::default()
    }

    /// Makes the next `times` calls of `op` fail (`u64::MAX`: until [`MemoryDir::heal`]).
    pub fn fail(&self, op: DirOp, times: u64) {
        self.inner
            .faults
            .lock()
            .expect("faults lock")
            .push((op, times));
    }

    /// Disarms every injected failure.
    pub fn heal(&self) {
        self.inner.faults.lock().expect("faults lock").clear();
    }

    /// Removes the claim on the directory (as an operator removes a bucket's owner object).
    pub fn release(&self) {
        *self.inner.owner.lock().expect("owner lock") = None;
    }

    /// The last manifest published to the directory, if any.
    pub fn manifest(&self) -> Option<Bytes> {
        self.inner.manifest.lock().expect("manifest lock").clone()
    }

    /// Replaces a file's bytes as they are (to damage it).
    pub fn overwrite(&self, key: &FileKey, bytes: Bytes) {
        self.inner
            .files
            .lock()
            .expect("files lock")
            .insert(key.clone(), bytes);
    }

    fn check(&self, op: DirOp) -> io::Result<()> {
        self.inner.check(op)
    }
}

impl MemoryInner {
    fn check(&self, op: DirOp) -> io::Result<()> {
        let mut faults = self.faults.lock().expect("faults lock");
        if let Some(fault) = faults.iter_mut().find(|(o, n)| *o == op && *n > 0) {
            fault.1 = fault.1.saturating_sub(1);
            return Err(io::Error::other(format!(
                "injected failure of {op:?} on a memory directory"
            )));
        }
        Ok(())
    }
}

/// The refusal of a directory claimed by another node, described by `owner`.
pub(crate) fn claimed_by(location: &str, owner: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{location} holds the segments of another store ({owner}): give this server its own [storage] prefix; \
             if that store's disk is gone for good, remove the prefix's {OWNER_OBJECT} to take its segments over"
        ),
    )
}

/// The object of a bucket's prefix that names the store that owns it.
pub const OWNER_OBJECT: &str = "_owner.json";

fn not_found(key: &FileKey) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {key}"))
}

/// An open file of a [`MemoryDir`]: each read looks the file up, as a bucket's range
/// request does (a file deleted is gone for its readers too).
#[derive(Debug)]
struct MemoryFile {
    key: FileKey,
    dir: Arc<MemoryInner>,
}

impl ReadAt for MemoryFile {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        self.dir.check(DirOp::Get)?;
        let files = self.dir.files.lock().expect("files lock");
        let bytes = files.get(&self.key).ok_or_else(|| not_found(&self.key))?;
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(len).min(bytes.len());
        Ok(bytes.slice(start..end))
    }
}

impl SegmentDir for MemoryDir {
    fn location(&self) -> String {
        "memory".to_string()
    }

    fn claim(&self, node: &str, about: &str) -> io::Result<()> {
        let mut owner = self.inner.owner.lock().expect("owner lock");
        match &*owner {
            Some((claimed, by)) if claimed != node => Err(claimed_by(&self.location(), by)),
            Some(_) => Ok(()),
            None => {
                *owner = Some((node.to_string(), about.to_string()));
                Ok(())
            }
        }
    }

    fn put(&self, key: &FileKey, bytes: Bytes) -> io::Result<()> {
        self.check(DirOp::Put)?;
        self.overwrite(key, bytes);
        Ok(())
    }

    fn publish(&self, manifest: Bytes) -> io::Result<()> {
        self.check(DirOp::Put)?;
        *self.inner.manifest.lock().expect("manifest lock") = Some(manifest);
        Ok(())
    }

    fn get(&self, key: &FileKey) -> io::Result<Bytes> {
        self.check(DirOp::Get)?;
        let files = self.inner.files.lock().expect("files lock");
        files.get(key).cloned().ok_or_else(|| not_found(key))
    }

    fn open(&self, key: &FileKey) -> io::Result<SegmentFile> {
        let len = self.get(key)?.len() as u64;
        let file = MemoryFile {
            key: key.clone(),
            dir: self.inner.clone(),
        };
        Ok(SegmentFile::new(Arc::new(file), len, false))
    }

    fn delete(&self, key: &FileKey) -> io::Result<()> {
        self.check(DirOp::Delete)?;
        self.inner.files.lock().expect("files lock").remove(key);
        Ok(())
    }

    fn delete_day(&self, day: &str) -> io::Result<()> {
        self.check(DirOp::Delete)?;
        let mut files = self.inner.files.lock().expect("files lock");
        files.retain(|k, _| k.day != day);
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<FileKey>> {
        self.check(DirOp::List)?;
        let files = self.inner.files.lock().expect("files lock");
        Ok(files.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_from_their_names() {
        for key in [
            FileKey::data("2026-12-05", 7),
            FileKey::index("2026-12-05", 7),
        ] {
            assert_eq!(FileKey::parse(&key.day, &key.file_name()), Some(key));
        }
        for name in [
            "seg-.parquet",
            "seg-12.tmp",
            "seg-1x.idx",
            "x-000000000001.idx",
        ] {
            assert_eq!(FileKey::parse("d", name), None, "{name}");
        }
    }

    #[test]
    fn prefetched_ranges_answer_reads_they_hold() {
        let dir = MemoryDir::new();
        let key = FileKey::data("d", 1);
        dir.put(&key, Bytes::from_static(b"0123456789")).unwrap();
        let file = dir.open(&key).unwrap();
        let ahead = file.prefetch(&[2..5, 4..7]).unwrap();
        dir.fail(DirOp::Get, u64::MAX);
        assert_eq!(&ahead.get_bytes(3, 4).unwrap()[..], b"3456");
        assert!(
            ahead.get_bytes(6, 3).is_err(),
            "beyond the prefetched range"
        );
        dir.heal();
        assert_eq!(&file.get_bytes(8, 2).unwrap()[..], b"89");
        assert!(file.get_bytes(8, 5).is_err());
        let mut all = Vec::new();
        file.get_read(1).unwrap().read_to_end(&mut all).unwrap();
        assert_eq!(all, b"123456789");
        assert_eq!(file.crc32c().unwrap(), crc32c::crc32c(b"0123456789"));
    }

    #[test]
    fn a_memory_dir_fails_as_told() {
        let dir = MemoryDir::new();
        let key = FileKey::index("d", 2);
        dir.fail(DirOp::Put, 1);
        assert!(dir.put(&key, Bytes::from_static(b"x")).is_err());
        dir.put(&key, Bytes::from_static(b"x")).unwrap();
        assert_eq!(dir.list().unwrap(), vec![key.clone()]);
        dir.delete_day("d").unwrap();
        assert_eq!(dir.get(&key).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
