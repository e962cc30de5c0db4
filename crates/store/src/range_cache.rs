//! A cache on the local disk of what is read from a bucket's segment files: the byte
//! ranges a query fetched, in aligned chunks of [`CHUNK`] bytes, so that the next query
//! (after a restart too) reads them from the disk instead of over the network.
//!
//! Each chunk is a file `<root>/<namespace>/<day>/seg-<id>.parquet.<chunk>` holding a
//! header (the CRC32C of the bytes, the length of the whole segment file, the chunk's number)
//! and the bytes; a chunk whose header does not match is fetched again, so a torn, damaged or
//! misplaced chunk is never read as data. A check of a segment's checksum reads the bucket,
//! not the cache ([`ReadAt::uncached`]). Chunks are written through [`crate::fileops`]
//! without `fsync` (the bucket holds the truth); a write that fails (a full disk) only leaves
//! the chunk uncached. The least recently used go once the cache holds more than its limit;
//! the limit is that of the local copies of uploaded files (`[storage] local_cache_bytes`),
//! less what those copies take.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bytes::{Bytes, BytesMut};

use crate::dir::{FileKey, ReadAt};
use crate::fileops;

/// The size of a chunk: a read is widened to the chunks it meets.
const CHUNK: u64 = 256 << 10;

/// A chunk file's header: CRC32C of the bytes (u32), length of the segment file (u64), the
/// chunk's number (u64).
const HEADER: usize = 20;

/// The cache of one data directory, shared by every segment file it reads from a bucket.
#[derive(Debug)]
pub struct RangeCache {
    root: PathBuf,
    limit: AtomicU64,
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Numbers the temporary files of chunks being written, one per write.
    writes: AtomicU64,
    /// The chunks being fetched now, by chunk path.
    flights: Mutex<HashMap<PathBuf, Arc<Flight>>>,
}

/// The chunks held: their sizes on disk and when each was last used.
#[derive(Debug, Default)]
struct State {
    chunks: HashMap<PathBuf, (u64, u64)>,
    bytes: u64,
    clock: u64,
}

/// The cache's figures at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeCacheStats {
    /// Bytes of chunk files on the disk.
    pub bytes: u64,
    /// Chunk files.
    pub chunks: u64,
    /// Chunks read from the disk, or fetched by another reader at the same time.
    pub hits: u64,
    /// Chunks fetched from the bucket.
    pub misses: u64,
}

impl RangeCache {
    /// The size of a chunk: a read is widened to the chunks it meets.
    pub const CHUNK: u64 = CHUNK;

    /// Opens the cache in `root` holding at most `limit` bytes; the chunks already there
    /// are kept, the least recently written first to go.
    pub fn open(root: PathBuf, limit: u64) -> io::Result<Arc<RangeCache>> {
        fs::create_dir_all(&root)?;
        let mut found = Vec::new();
        walk(&root, &mut found)?;
        found.sort_by_key(|(_, _, modified)| *modified);
        let mut state = State::default();
        for (path, len, _) in found {
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = fileops::remove_file(&path);
                continue;
            }
            state.clock += 1;
            state.bytes += len;
            state.chunks.insert(path, (len, state.clock));
        }
        let cache = Arc::new(RangeCache {
            root,
            limit: AtomicU64::new(limit),
            state: Mutex::new(state),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            flights: Mutex::default(),
        });
        cache.shrink();
        Ok(cache)
    }

    /// Sets the most bytes held, removing the least recently used chunks beyond it.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
        self.shrink();
    }

    /// The figures now.
    pub fn stats(&self) -> RangeCacheStats {
        let state = self.state.lock().expect("range cache lock");
        RangeCacheStats {
            bytes: state.bytes,
            chunks: state.chunks.len() as u64,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The namespace of the files of a bucket prefix (its location, `s3://bucket/prefix`).
    pub fn namespace(location: &str) -> String {
        location
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "=-.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// `inner`, a segment file of `len` bytes of the bucket, read through the cache under
    /// `namespace` (one per bucket prefix read, [`RangeCache::namespace`]).
    pub fn reader(
        self: &Arc<RangeCache>,
        namespace: &str,
        key: &FileKey,
        len: u64,
        inner: Arc<dyn ReadAt>,
    ) -> Arc<dyn ReadAt> {
        Arc::new(CachedFile {
            cache: self.clone(),
            base: self
                .root
                .join(namespace)
                .join(&key.day)
                .join(key.file_name()),
            len,
            inner,
        })
    }

    /// Removes the chunks of a segment file (deleted from the bucket).
    pub fn forget(&self, namespace: &str, key: &FileKey) {
        let prefix = format!("{}.", key.file_name());
        self.remove_where(&self.root.join(namespace).join(&key.day), |name| {
            name.starts_with(&prefix)
        });
    }

    /// Removes the chunks of every segment file of a day (deleted from the bucket).
    pub fn forget_day(&self, namespace: &str, day: &str) {
        self.remove_where(&self.root.join(namespace).join(day), |_| true);
    }

    /// Removes the chunks of folder `dir` whose names `wanted` picks.
    fn remove_where(&self, dir: &Path, wanted: impl Fn(&str) -> bool) {
        let mut state = self.state.lock().expect("range cache lock");
        let gone: Vec<PathBuf> = state
            .chunks
            .keys()
            .filter(|p| {
                p.parent() == Some(dir)
                    && p.file_name().and_then(|n| n.to_str()).is_some_and(&wanted)
            })
            .cloned()
            .collect();
        for path in gone {
            if let Some((len, _)) = state.chunks.remove(&path) {
                state.bytes -= len;
            }
            let _ = fileops::remove_file(&path);
        }
    }

    /// Reads chunk number `chunk` from the disk: `None` when it is absent, torn, damaged,
    /// another chunk or of another file of the same name.
    fn load(&self, path: &Path, file_len: u64, chunk: u64, want: usize) -> Option<Bytes> {
        let bytes = fs::read(path).ok()?;
        let valid = bytes.len() == HEADER + want
            && bytes[..HEADER] == header(&bytes[HEADER..], file_len, chunk);
        let mut state = self.state.lock().expect("range cache lock");
        if !valid {
            if let Some((len, _)) = state.chunks.remove(path) {
                state.bytes -= len;
            }
            return None;
        }
        state.clock += 1;
        let clock = state.clock;
        if let Some(entry) = state.chunks.get_mut(path) {
            entry.1 = clock;
        }
        drop(state);
        Some(Bytes::from(bytes).slice(HEADER..))
    }

    /// Writes chunk number `chunk`; a failure (a full disk) only leaves it uncached.
    fn store(&self, path: &Path, file_len: u64, chunk: u64, data: &[u8]) {
        if self.limit.load(Ordering::Relaxed) < (HEADER + data.len()) as u64 {
            return;
        }
        let mut bytes = Vec::with_capacity(HEADER + data.len());
        bytes.extend_from_slice(&header(data, file_len, chunk));
        bytes.extend_from_slice(data);
        // A name of its own: readers of the same file write other chunks at once.
        let write = self.writes.fetch_add(1, Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}-{write}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fileops::create(&tmp))
            .and_then(|mut file| fileops::write_all(&mut file, &tmp, &bytes))
            .and_then(|()| fileops::rename(&tmp, path));
        if let Err(e) = written {
            let _ = fileops::remove_file(&tmp);
            tracing::debug!(chunk = %path.display(), error = %e, "cannot keep a chunk read from the bucket");
            return;
        }
        let mut state = self.state.lock().expect("range cache lock");
        state.clock += 1;
        let entry = (bytes.len() as u64, state.clock);
        if let Some((old, _)) = state.chunks.insert(path.to_path_buf(), entry) {
            state.bytes -= old;
        }
        state.bytes += entry.0;
        drop(state);
        self.shrink();
    }

    /// Claims the fetch of the chunk at `path`, or answers the fetch another reader claimed.
    fn claim(self: &Arc<RangeCache>, path: PathBuf) -> Result<Claim, Arc<Flight>> {
        let mut flights = self.flights.lock().expect("range cache flights lock");
        if let Some(theirs) = flights.get(&path) {
            return Err(theirs.clone());
        }
        let flight = Arc::new(Flight::default());
        flights.insert(path.clone(), flight.clone());
        Ok(Claim {
            cache: self.clone(),
            path,
            flight,
            settled: false,
        })
    }

    /// Removes the least recently used chunks while more than the limit is held.
    fn shrink(&self) {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut state = self.state.lock().expect("range cache lock");
        if state.bytes <= limit {
            return;
        }
        // Down to nine tenths, so that the next chunks do not each evict one.
        let target = limit - limit / 10;
        let mut by_use: Vec<(u64, PathBuf, u64)> = state
            .chunks
            .iter()
            .map(|(p, (len, used))| (*used, p.clone(), *len))
            .collect();
        by_use.sort_unstable_by_key(|(used, _, _)| *used);
        for (_, path, len) in by_use {
            if state.bytes <= target {
                break;
            }
            if let Err(e) = fileops::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(chunk = %path.display(), error = %e, "cannot remove a cached chunk");
                    continue;
                }
            }
            state.chunks.remove(&path);
            state.bytes -= len;
        }
    }
}

/// The header of chunk number `chunk` of a file of `file_len` bytes holding `data`.
fn header(data: &[u8], file_len: u64, chunk: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&crc32c::crc32c(data).to_le_bytes());
    h[4..12].copy_from_slice(&file_len.to_le_bytes());
    h[12..].copy_from_slice(&chunk.to_le_bytes());
    h
}

/// Every file under `dir`, with its size and modification time.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64, std::time::SystemTime)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(&entry.path(), out)?;
        } else {
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            out.push((entry.path(), meta.len(), modified));
        }
    }
    Ok(())
}

/// A segment file of the bucket read through the cache.
#[derive(Debug)]
struct CachedFile {
    cache: Arc<RangeCache>,
    /// The chunk files' path, less the chunk's number.
    base: PathBuf,
    len: u64,
    inner: Arc<dyn ReadAt>,
}

impl CachedFile {
    fn chunk_path(&self, chunk: u64) -> PathBuf {
        let mut name = self.base.clone().into_os_string();
        name.push(format!(".{chunk:06}"));
        PathBuf::from(name)
    }

    /// The length of chunk `chunk` (the last one is shorter).
    fn chunk_len(&self, chunk: u64) -> usize {
        (self.len.min((chunk + 1) * CHUNK) - chunk * CHUNK) as usize
    }
}

impl ReadAt for CachedFile {
    fn uncached(&self) -> Option<&dyn ReadAt> {
        Some(&*self.inner)
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        if self.cache.limit.load(Ordering::Relaxed) < HEADER as u64 + CHUNK {
            // No room for a chunk: read only what is asked.
            return self.inner.read_at(offset, len);
        }
        let end = self.len.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Ok(Bytes::new());
        }
        let (first, last) = (offset / CHUNK, (end - 1) / CHUNK);
        let mut parts: Vec<Part> = (first..=last).map(|chunk| self.find(chunk)).collect();
        // Each run of chunks this reader fetches is one request; then the chunks other
        // readers were fetching are awaited (never before: no reader waits holding a claim).
        let mut at = 0;
        while at < parts.len() {
            let run = parts[at..]
                .iter()
                .take_while(|p| matches!(p, Part::Mine(_)))
                .count();
            if run > 0 {
                let fetched = self.fetch(first + at as u64, run)?;
                for (part, data) in parts[at..at + run].iter_mut().zip(fetched) {
                    if let Part::Mine(claim) = std::mem::replace(part, Part::Have(data.clone())) {
                        claim.settle(Some(data));
                    }
                }
            }
            at += run.max(1);
        }
        let mut chunks = Vec::with_capacity(parts.len());
        for (chunk, part) in (first..).zip(parts) {
            chunks.push(match part {
                Part::Have(data) => data,
                Part::Theirs(flight) => match flight.wait() {
                    Some(data) => {
                        self.cache.hits.fetch_add(1, Ordering::Relaxed);
                        data
                    }
                    // Their fetch failed: this reader tries once itself.
                    None => self.fetch(chunk, 1)?.pop().expect("one chunk fetched"),
                },
                Part::Mine(_) => unreachable!("every claimed chunk is fetched"),
            });
        }
        let from = (offset - first * CHUNK) as usize;
        let to = (end - first * CHUNK) as usize;
        if chunks.len() == 1 {
            return Ok(chunks.pop().expect("one chunk").slice(from..to));
        }
        let mut joined = BytesMut::with_capacity(to - from);
        let mut at = 0usize;
        for data in chunks {
            let (lo, hi) = (at.max(from), (at + data.len()).min(to));
            if lo < hi {
                joined.extend_from_slice(&data[lo - at..hi - at]);
            }
            at += data.len();
        }
        Ok(joined.freeze())
    }
}

impl CachedFile {
    /// Where chunk `chunk` comes from: the disk, a fetch of this reader's own, or another
    /// reader's fetch under way.
    fn find(&self, chunk: u64) -> Part {
        let path = self.chunk_path(chunk);
        let want = self.chunk_len(chunk);
        if let Some(data) = self.cache.load(&path, self.len, chunk, want) {
            self.cache.hits.fetch_add(1, Ordering::Relaxed);
            return Part::Have(data);
        }
        match self.cache.claim(path.clone()) {
            Err(theirs) => Part::Theirs(theirs),
            // Kept by a fetch that ended between the first look and the claim.
            Ok(claim) => match self.cache.load(&path, self.len, chunk, want) {
                Some(data) => {
                    self.cache.hits.fetch_add(1, Ordering::Relaxed);
                    claim.settle(Some(data.clone()));
                    Part::Have(data)
                }
                None => Part::Mine(claim),
            },
        }
    }

    /// Fetches `count` chunks from chunk `from` on in one request and keeps each.
    fn fetch(&self, from: u64, count: usize) -> io::Result<Vec<Bytes>> {
        let start = from * CHUNK;
        let to = from + count as u64;
        let got = self
            .inner
            .read_at(start, (self.len.min(to * CHUNK) - start) as usize)?;
        self.cache.misses.fetch_add(count as u64, Ordering::Relaxed);
        let mut chunks = Vec::with_capacity(count);
        for chunk in from..to {
            let at = ((chunk - from) * CHUNK) as usize;
            let want = self.chunk_len(chunk);
            if got.len() < at + want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: the bucket sent fewer bytes than asked",
                        self.base.display()
                    ),
                ));
            }
            let data = got.slice(at..at + want);
            self.cache
                .store(&self.chunk_path(chunk), self.len, chunk, &data);
            chunks.push(data);
        }
        Ok(chunks)
    }
}

/// Where one chunk of a read comes from.
enum Part {
    /// Read from the disk or fetched.
    Have(Bytes),
    /// To be fetched by this reader, which others may await.
    Mine(Claim),
    /// Being fetched by another reader.
    Theirs(Arc<Flight>),
}

/// A chunk being fetched by one reader, awaited by the others that miss it meanwhile, so
/// that readers of neighbouring blocks fetch the chunk between them once.
#[derive(Debug, Default)]
struct Flight {
    /// Empty until the fetch ends; then the bytes, or `None` when the fetch failed.
    done: Mutex<Option<Option<Bytes>>>,
    ready: Condvar,
}

impl Flight {
    /// The fetched bytes, once fetched; `None` when the fetch failed.
    fn wait(&self) -> Option<Bytes> {
        let mut done = self.done.lock().expect("flight lock");
        loop {
            if let Some(result) = done.as_ref() {
                return result.clone();
            }
            done = self.ready.wait(done).expect("flight lock");
        }
    }
}

/// A reader's claim to fetch one chunk: settled with its bytes, or released (as failed)
/// when dropped unsettled, so that no reader waits for a fetch that will not come.
struct Claim {
    cache: Arc<RangeCache>,
    path: PathBuf,
    flight: Arc<Flight>,
    settled: bool,
}

impl Claim {
    /// Hands the chunk (or the failure) to the readers awaiting it.
    fn settle(mut self, data: Option<Bytes>) {
        self.finish(data);
    }

    fn finish(&mut self, data: Option<Bytes>) {
        self.settled = true;
        let mut flights = self.cache.flights.lock().expect("range cache flights lock");
        if flights
            .get(&self.path)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            flights.remove(&self.path);
        }
        drop(flights);
        *self.flight.done.lock().expect("flight lock") = Some(data);
        self.flight.ready.notify_all();
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.settled {
            self.finish(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A file of the bucket in memory, counting the bytes read from it.
    #[derive(Debug)]
    struct Remote {
        bytes: Bytes,
        read: AtomicU64,
    }

    impl ReadAt for Remote {
        fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
            let from = (offset as usize).min(self.bytes.len());
            let to = (from + len).min(self.bytes.len());
            self.read.fetch_add((to - from) as u64, Ordering::Relaxed);
            Ok(self.bytes.slice(from..to))
        }
    }

    fn remote(len: usize) -> Arc<Remote> {
        Arc::new(Remote {
            bytes: (0..len)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<u8>>()
                .into(),
            read: AtomicU64::new(0),
        })
    }

    fn key() -> FileKey {
        FileKey::data("2024-01-15", 7)
    }

    #[test]
    fn a_range_read_once_is_read_from_the_disk_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = remote(1_000_000);
        let len = file.bytes.len() as u64;
        let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
        let reader = cache.reader("s3___logs", &key(), len, file.clone());
        let got = reader.read_at(300_000, 400_000).unwrap();
        assert_eq!(got, file.bytes.slice(300_000..700_000));
        // Widened to whole chunks: 262144..786432.
        assert_eq!(file.read.load(Ordering::Relaxed), 2 * CHUNK);
        assert_eq!(cache.stats().misses, 2);

        let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
        assert_eq!(cache.stats().chunks, 2);
        let reader = cache.reader("s3___logs", &key(), len, file.clone());
        let again = reader.read_at(262_144 + 10, 100).unwrap();
        assert_eq!(again, file.bytes.slice(262_154..262_254));
        assert_eq!(
            file.read.load(Ordering::Relaxed),
            2 * CHUNK,
            "no read of the bucket"
        );
        assert_eq!(cache.stats().hits, 1);
        // The last chunk is short, and a read past the end stops at it.
        let end = reader.read_at(len - 10, 100).unwrap();
        assert_eq!(end, file.bytes.slice(len as usize - 10..));
    }

    #[test]
    fn a_damaged_or_foreign_chunk_is_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = remote(600_000);
        let len = file.bytes.len() as u64;
        let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
        cache
            .reader("ns", &key(), len, file.clone())
            .read_at(0, 10)
            .unwrap();
        let chunk = dir
            .path()
            .join("ns/2024-01-15/seg-000000000007.parquet.000000");
        let mut bytes = fs::read(&chunk).unwrap();
        bytes[HEADER + 5] ^= 0xff;
        fs::write(&chunk, &bytes).unwrap();
        let read = cache
            .reader("ns", &key(), len, file.clone())
            .read_at(0, 10)
            .unwrap();
        assert_eq!(read, file.bytes.slice(0..10));
        assert_eq!(file.read.load(Ordering::Relaxed), 2 * CHUNK);
        // Another file of the same name (another length) does not take its chunks.
        let other = remote(500_000);
        let read = cache
            .reader("ns", &key(), 500_000, other.clone())
            .read_at(0, 10)
            .unwrap();
        assert_eq!(read, other.bytes.slice(0..10));
        assert_eq!(other.read.load(Ordering::Relaxed), CHUNK);
    }

    #[test]
    fn the_least_recently_used_chunks_go_beyond_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = remote(10 * CHUNK as usize);
        let limit = 4 * (CHUNK + HEADER as u64);
        let cache = RangeCache::open(dir.path().into(), limit).unwrap();
        let reader = cache.reader("ns", &key(), 10 * CHUNK, file.clone());
        for chunk in 0..10 {
            reader.read_at(chunk * CHUNK, 1).unwrap();
            // The first chunk, used again each time, stays.
            reader.read_at(0, 1).unwrap();
            assert!(cache.stats().bytes <= limit, "{:?}", cache.stats());
        }
        let read = file.read.load(Ordering::Relaxed);
        reader.read_at(0, 1).unwrap();
        assert_eq!(
            file.read.load(Ordering::Relaxed),
            read,
            "the first chunk was kept"
        );
        cache.set_limit(0);
        assert_eq!(cache.stats().bytes, 0);
        cache.forget("ns", &key());
        assert_eq!(cache.stats().chunks, 0);
    }

    #[test]
    fn readers_of_one_file_at_once_each_keep_their_own_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = 24u64;
        let file = remote((chunks * CHUNK) as usize);
        let len = chunks * CHUNK;
        let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
        std::thread::scope(|scope| {
            for t in 0..6u64 {
                let reader = cache.reader("ns", &key(), len, file.clone());
                scope.spawn(move || {
                    for i in 0..chunks {
                        let chunk = (i * 7 + t * 5) % chunks;
                        reader.read_at(chunk * CHUNK + 3, 10).unwrap();
                    }
                });
            }
        });
        // Read again from the disk alone: every chunk is its own.
        let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
        let reader = cache.reader("ns", &key(), len, file.clone());
        let before = file.read.load(Ordering::Relaxed);
        for chunk in 0..chunks {
            let at = chunk * CHUNK;
            let got = reader.read_at(at, CHUNK as usize).unwrap();
            assert_eq!(
                got,
                file.bytes.slice(at as usize..(at + CHUNK) as usize),
                "chunk {chunk}"
            );
        }
        assert_eq!(
            file.read.load(Ordering::Relaxed),
            before,
            "every chunk was kept"
        );
    }

    /// A file of the bucket that answers slowly, failing its first `fail` reads.
    #[derive(Debug)]
    struct Slow {
        file: Arc<Remote>,
        requests: AtomicU64,
        fail: u64,
    }

    impl ReadAt for Slow {
        fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
            let request = self.requests.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(100));
            if request < self.fail {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the bucket is slow",
                ));
            }
            self.file.read_at(offset, len)
        }
    }

    #[test]
    fn readers_missing_a_chunk_at_once_fetch_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = remote(4 * CHUNK as usize);
        let slow = Arc::new(Slow {
            file: file.clone(),
            requests: AtomicU64::new(0),
            fail: 0,
        });
        let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8u64 {
                let reader = cache.reader("ns", &key(), 4 * CHUNK, slow.clone());
                let file = file.clone();
                scope.spawn(move || {
                    // Neighbouring blocks: each read meets the chunk between them.
                    let at = CHUNK + 1000 * (t + 1);
                    let got = reader.read_at(at, CHUNK as usize).unwrap();
                    assert_eq!(got, file.bytes.slice(at as usize..(at + CHUNK) as usize));
                });
            }
        });
        assert_eq!(
            file.read.load(Ordering::Relaxed),
            2 * CHUNK,
            "chunks 1 and 2 fetched once each"
        );
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.hits), (2, 14), "{stats:?}");
    }

    #[test]
    fn a_failed_fetch_lets_the_readers_awaiting_it_fetch_for_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let file = remote(2 * CHUNK as usize);
        let slow = Arc::new(Slow {
            file: file.clone(),
            requests: AtomicU64::new(0),
            fail: 1,
        });
        let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
        let results: Vec<io::Result<Bytes>> = std::thread::scope(|scope| {
            let readers: Vec<_> = (0..4)
                .map(|i| {
                    let reader = cache.reader("ns", &key(), 2 * CHUNK, slow.clone());
                    // The first reader claims the chunk; the others come while it fetches.
                    std::thread::sleep(std::time::Duration::from_millis(if i == 0 {
                        0
                    } else {
                        20
                    }));
                    scope.spawn(move || reader.read_at(10, 100))
                })
                .collect();
            readers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let failed: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
            .collect();
        assert_eq!(
            failed,
            ["the bucket is slow"],
            "only the fetch that failed fails"
        );
        for got in results.into_iter().flatten() {
            assert_eq!(got, file.bytes.slice(10..110));
        }
        assert_eq!(cache.stats().chunks, 1);
    }

    #[test]
    fn a_full_disk_leaves_reads_whole_and_nothing_cached() {
        let dir = tempfile::tempdir().unwrap();
        let file = remote(3 * CHUNK as usize);
        let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
        let full = fileops::inject(fileops::Fault {
            op: fileops::Op::Write,
            under: dir.path().into(),
            errno: libc::ENOSPC,
            skip: 0,
            times: u64::MAX,
        });
        let reader = cache.reader("ns", &key(), 3 * CHUNK, file.clone());
        let got = reader.read_at(CHUNK - 5, CHUNK as usize).unwrap();
        assert_eq!(
            got,
            file.bytes
                .slice((CHUNK - 5) as usize..(2 * CHUNK - 5) as usize)
        );
        assert!(full.fired() > 0);
        assert_eq!(cache.stats().chunks, 0);
        assert_eq!(cache.stats().bytes, 0);
        let mut left = Vec::new();
        walk(dir.path(), &mut left).unwrap();
        assert!(left.is_empty(), "no temporary file left: {left:?}");
        // The disk has room again: the next read keeps its chunks.
        drop(full);
        reader.read_at(0, 10).unwrap();
        assert_eq!(cache.stats().chunks, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_read_answers_the_files_bytes(
            len in 1usize..1_500_000,
            reads in proptest::collection::vec((0u64..1_600_000, 0usize..700_000), 1..6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let file = remote(len);
            let cache = RangeCache::open(dir.path().into(), 1 << 30).unwrap();
            let reader = cache.reader("ns", &key(), len as u64, file.clone());
            for (offset, n) in reads {
                let got = reader.read_at(offset, n).unwrap();
                let from = (offset as usize).min(len);
                let to = (from + n).min(len);
                prop_assert_eq!(got, file.bytes.slice(from..to));
            }
        }
    }
}
