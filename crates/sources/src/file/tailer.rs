//! The [`Tailer`]: one look at every followed path per [`Tailer::poll`], reading what was
//! added, delivering it to the sink in batches and committing checkpoints after each
//! acknowledged batch. One batch is in flight at most: the next is read and parsed while
//! the sink makes it durable, and grows meanwhile; checkpoints are written by a thread of
//! their own, and a poll returns once the last one is on disk. The file source's run loop calls `poll` when a file changes or the
//! polling interval passes; tests call it directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use logyard_model::{now_ns, Record};
use logyard_parse::{LineContext, Parser, ParserConfig};

use super::checkpoint::{Checkpoint, CheckpointStore, CheckpointWriter, VERSION};
use super::discover::Discover;
use super::stream::{Entry, Slot, Stream};
use super::Settings;
use crate::error::SourceError;
use crate::shutdown::Shutdown;
use crate::status::{FileStatus, StatusHandle};
use logyard_model::sink::{CheckpointToken, Receipt, Sink};

/// Bytes read from a file at once.
const CHUNK: usize = 256 * 1024;

/// Bytes read from one file in one look at most (a whole number of chunks): a big file is
/// read in turns with the others, so that it does not hold back their new lines while it
/// is read (the next look comes at once while a file has more).
pub(crate) const TURN_BYTES: usize = 16 * CHUNK;

/// Why a poll stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Halt {
    /// The sink failed; nothing after the last acknowledged batch was committed.
    Sink(String),
    /// The source is stopping.
    Shutdown,
}

/// Starts a rotated file again from 0 when it got smaller or changed its first line (it was
/// truncated before it was renamed; its copy, if any, was queued before it).
fn truncated_retired(s: &mut Stream) {
    let size = s.file.metadata().map_or(u64::MAX, |m| m.len());
    let changed = s.fp.len > 0 && !s.fp.matches(&s.file).unwrap_or(true);
    if size < s.reader.pos || changed {
        s.committed = 0;
        s.reader.reset(0);
        s.fp = super::fingerprint::Fingerprint::of(&s.file).unwrap_or_default();
    }
}

/// Follows the files of one file source; see the module documentation.
pub(crate) struct Tailer {
    pub(crate) name: String,
    pub(crate) settings: Settings,
    /// Which files to follow and how to label them.
    pub(crate) discover: Box<dyn Discover>,
    parser: Parser,
    host: String,
    sink: Arc<dyn Sink>,
    /// Writes the checkpoints after their lines are acknowledged.
    writer: CheckpointWriter,
    seq: u64,
    pub(crate) entries: BTreeMap<PathBuf, Entry>,
    pub(crate) gz_done: Vec<(super::fingerprint::FileId, super::fingerprint::Fingerprint)>,
    first_scan: bool,
    /// The compressed file being read, and how far.
    pub(crate) gz_partial: Option<super::checkpoint::GzProgress>,
    /// The read buffer, kept between polls.
    buf: Vec<u8>,
    /// A file was left with bytes to read at the end of its turn ([`TURN_BYTES`]).
    unread: bool,
    /// Files of the checkpoint not found at start: first line and offset delivered, so that
    /// a compressed copy can be read from there.
    pub(crate) lost: Vec<(super::fingerprint::Fingerprint, u64)>,
    pub(crate) status: StatusHandle,
    shutdown: Shutdown,
    /// The records parsed and not yet handed over.
    batch: Vec<Record>,
    /// The bytes of the lines of `batch`.
    batch_bytes: u64,
    /// The batch handed over and not yet acknowledged.
    in_flight: Option<InFlight>,
}

/// A batch handed to the sink and not yet acknowledged.
struct InFlight {
    receipt: Receipt,
    /// The stream's committed offset before the batch: where reading resumes if it fails.
    before: u64,
    /// The checkpoint to commit once it is acknowledged.
    cp: Checkpoint,
    lines: u64,
    bytes: u64,
}

impl Tailer {
    /// Loads the checkpoint (the newer of the file and the sink's copy) and reopens the files
    /// it names.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        settings: Settings,
        discover: Box<dyn Discover>,
        parser: ParserConfig,
        host: &str,
        sink: Arc<dyn Sink>,
        state_dir: &Path,
        status: StatusHandle,
        shutdown: Shutdown,
    ) -> Result<Tailer, SourceError> {
        let store = CheckpointStore::new(state_dir, name);
        let from_file = store.load()?;
        let from_sink =
            sink.stored_checkpoint(name)
                .and_then(|t| match Checkpoint::decode(&t.data) {
                    Ok(cp) => Some(cp),
                    Err(e) => {
                        tracing::warn!(source = name, error = %e, "ignoring the sink's checkpoint");
                        None
                    }
                });
        let cp = match (from_file, from_sink) {
            (Some(f), Some(s)) => Some(if s.seq > f.seq { s } else { f }),
            (f, s) => f.or(s),
        };
        let parser = Parser::new(parser).map_err(|source| SourceError::Parse {
            name: name.to_string(),
            source,
        })?;
        let writer = CheckpointWriter::start(store, name, status.clone());
        let mut t = Tailer {
            name: name.to_string(),
            settings,
            discover,
            parser,
            host: host.to_string(),
            sink,
            writer,
            seq: 0,
            entries: BTreeMap::new(),
            gz_done: Vec::new(),
            first_scan: true,
            gz_partial: None,
            buf: Vec::new(),
            unread: false,
            lost: Vec::new(),
            status,
            shutdown,
            batch: Vec::new(),
            batch_bytes: 0,
            in_flight: None,
        };
        if let Some(cp) = cp {
            t.seq = cp.seq;
            t.gz_done = cp.gz_done.clone();
            t.gz_partial = cp.gz_partial;
            t.lost = cp.lost.clone();
            for (path, pc) in &cp.paths {
                let entry = t.restore_entry(Path::new(path), pc);
                t.entries.insert(PathBuf::from(path), entry);
            }
        }
        Ok(t)
    }

    /// The checkpoint file's path.
    #[cfg(test)]
    pub fn checkpoint_path(&self) -> &Path {
        self.writer.path()
    }

    /// True when some file holds a partial line or multi-line record not yet given out.
    pub fn has_pending(&self) -> bool {
        self.entries.values().any(Entry::has_pending)
    }

    /// True when the last look left a file with bytes to read: look again at once.
    pub fn has_unread(&self) -> bool {
        self.unread
    }

    /// Looks at every followed path once: finds new files, handles rotation and truncation,
    /// reads and delivers what was added.
    pub fn poll(&mut self) -> Result<(), Halt> {
        let now = now_ns();
        self.unread = false;
        let (paths, gz) = self.discover.expand();
        for p in paths {
            if !self.entries.contains_key(&p) {
                let initial = self.first_scan;
                let meta = self.discover.describe(&p);
                self.entries
                    .insert(p.clone(), Entry::new(&p, meta, initial, now));
            }
        }
        let discover = &self.discover;
        self.entries.retain(|p, _| {
            let keep = discover.wants(p);
            if !keep {
                tracing::info!(source = %self.name, path = %p.display(), "no longer followed");
            }
            keep
        });
        for (p, e) in self.entries.iter_mut() {
            let meta = self.discover.describe(p);
            if meta.source != e.source || meta.agent != e.agent || meta.fields != e.fields {
                e.relabel(meta);
            }
        }
        self.first_scan = false;
        let keys: Vec<PathBuf> = self.entries.keys().cloned().collect();
        // First every path is compared with what it held (rotations and truncations are
        // known before any compressed copy is judged), then compressed files are read
        // (older lines first), then what the followed files added.
        for key in &keys {
            if let Some(mut e) = self.entries.remove(key) {
                self.check_path(&mut e);
                self.entries.insert(key.clone(), e);
            }
        }
        let mut result = self.read_gz_files(gz);
        for key in keys {
            if result.is_err() {
                break;
            }
            let Some(mut e) = self.entries.remove(&key) else {
                continue;
            };
            result = self.poll_entry(&mut e);
            if e.forgotten(self.settings.forget_after) {
                tracing::info!(source = %self.name, path = %key.display(), "forgetting a path without a file");
                continue;
            }
            self.entries.insert(key, e);
        }
        self.publish_files();
        if result.is_ok() {
            self.save_checkpoint();
        }
        result
    }

    /// Reads the rotated files of a path, then the file at the path.
    fn poll_entry(&mut self, e: &mut Entry) -> Result<(), Halt> {
        let mut i = 0;
        while i < e.retired.len() {
            let mut s = e.retired.remove(i);
            truncated_retired(&mut s);
            let r = self.drain(e, &mut s, Slot::Retired(i), false);
            let idle = s.last_growth.elapsed() >= self.settings.rotate_wait;
            if r.is_ok() && idle {
                // A rotated file that stopped growing: give out what it holds and let it go.
                let r = self.drain(e, &mut s, Slot::Retired(i), true);
                if r.is_err() {
                    e.retired.insert(i, s);
                    return r;
                }
                e.finish(s.id, s.fp);
                self.save_entry_change(e);
                continue;
            }
            e.retired.insert(i, s);
            r?;
            i += 1;
        }
        if let Some(mut s) = e.current.take() {
            let r = self.drain(e, &mut s, Slot::Current, false);
            e.current = Some(s);
            r?;
        }
        e.seen_ns = now_ns();
        Ok(())
    }

    /// Reads a stream to its current end and delivers its records; with `last`, also gives
    /// out what it holds (the file will not grow).
    pub(crate) fn drain(
        &mut self,
        e: &mut Entry,
        s: &mut Stream,
        slot: Slot,
        last: bool,
    ) -> Result<(), Halt> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(CHUNK, 0);
        let r = self.drain_with(&mut buf, e, s, slot, last);
        self.buf = buf;
        r
    }

    fn drain_with(
        &mut self,
        buf: &mut [u8],
        e: &mut Entry,
        s: &mut Stream,
        slot: Slot,
        last: bool,
    ) -> Result<(), Halt> {
        match self.read_to_end(buf, e, s, slot, last) {
            Ok(()) => self.settle(e, s),
            Err(halt) => {
                // What is acknowledged is committed; what was read after it is read again.
                let _ = self.settle(e, s);
                self.batch.clear();
                self.batch_bytes = 0;
                s.reader.reset(s.committed);
                Err(halt)
            }
        }
    }

    /// Reads a stream to its current end, or for one turn ([`TURN_BYTES`]) unless `last`,
    /// handing batches over as they fill; the last one may still be in flight on return.
    fn read_to_end(
        &mut self,
        buf: &mut [u8],
        e: &mut Entry,
        s: &mut Stream,
        slot: Slot,
        last: bool,
    ) -> Result<(), Halt> {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut turn = 0;
        loop {
            // A file that will not grow (`last`) is read to its end in one turn.
            if !last && turn >= TURN_BYTES {
                self.unread = true;
                break;
            }
            let n = match super::fingerprint::read_full_at(&s.file, buf, s.reader.pos) {
                Ok(n) => n,
                Err(err) => {
                    self.problem(e, format!("cannot read {}: {err}", s.path.display()));
                    break;
                }
            };
            if n == 0 {
                break;
            }
            turn += n;
            e.problem = None;
            s.last_growth = Instant::now();
            let mut at = 0;
            while at < n {
                let limit = self.settings.batch_lines;
                at += s.reader.feed_some(&buf[at..n], now_ns(), &mut lines, limit);
                if lines.len() >= limit {
                    self.parse_into_batch(e, &mut lines);
                    self.hand_over(e, s, slot, false)?;
                    if self.shutdown.is_triggered() {
                        return Err(Halt::Shutdown);
                    }
                }
            }
            if n < buf.len() {
                break;
            }
        }
        if last {
            s.reader.flush_all(now_ns(), &mut lines);
        } else {
            s.reader.flush_timeouts(now_ns(), &mut lines);
        }
        self.parse_into_batch(e, &mut lines);
        if !self.batch.is_empty() || s.reader.done > s.committed {
            self.hand_over(e, s, slot, true)?;
        }
        Ok(())
    }

    /// Parses lines into the batch being built.
    fn parse_into_batch(&mut self, e: &Entry, lines: &mut Vec<Vec<u8>>) {
        if lines.is_empty() {
            return;
        }
        let ctx = LineContext {
            source: &e.source,
            agent_hint: &e.agent,
            host: &self.host,
            received_ns: now_ns(),
        };
        let start = self.batch.len();
        for line in lines.drain(..) {
            self.batch_bytes += line.len() as u64 + 1;
            if self.settings.wrapped {
                // The parts of one line split by the Docker daemon come as one group: the
                // parser joins them, and gives out a part left alone at the group's end.
                for part in line.split(|&c| c == b'\n') {
                    self.batch.extend(self.parser.parse(part, &ctx));
                }
                self.batch.extend(self.parser.flush_partial(&ctx));
            } else {
                self.batch.extend(self.parser.parse(&line, &ctx));
            }
        }
        if !e.fields.is_empty() {
            for rec in &mut self.batch[start..] {
                for (k, v) in &e.fields {
                    rec.fields.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }

    /// Hands the batch to the sink with the checkpoint it leads to. While the previous
    /// batch is still being made durable, the batch grows instead (up to `max_batch_bytes`
    /// of lines), unless `force`: the sink's latency sets the batch size, and reading and
    /// parsing go on during its fsyncs.
    fn hand_over(
        &mut self,
        e: &mut Entry,
        s: &mut Stream,
        slot: Slot,
        force: bool,
    ) -> Result<(), Halt> {
        if let Some(f) = &mut self.in_flight {
            if !force
                && self.batch_bytes < self.settings.max_batch_bytes as u64
                && !f.receipt.is_ready()
            {
                return Ok(());
            }
        }
        self.settle(e, s)?;
        let records = std::mem::take(&mut self.batch);
        // The next batch is likely as long: growing it step by step would copy it each time.
        self.batch.reserve(records.len());
        let bytes = std::mem::take(&mut self.batch_bytes);
        let before = s.committed;
        s.committed = s.reader.done;
        e.cp_seen_ns = e.seen_ns;
        let cp = self.checkpoint_with(e, s, slot);
        let lines = records.len() as u64;
        let token = CheckpointToken {
            key: self.name.clone(),
            seq: cp.seq,
            data: cp.encode().into_bytes(),
        };
        let receipt = self.sink.submit(records, Some(token));
        self.in_flight = Some(InFlight {
            receipt,
            before,
            cp,
            lines,
            bytes,
        });
        Ok(())
    }

    /// Waits for the batch in flight, if any: commits its checkpoint once acknowledged, or
    /// goes back to where it started when the sink failed (nothing after it was handed
    /// over).
    fn settle(&mut self, e: &mut Entry, s: &mut Stream) -> Result<(), Halt> {
        let Some(f) = self.in_flight.take() else {
            return Ok(());
        };
        match f.receipt.wait() {
            Ok(_) => {
                self.status.add_lines(f.lines, f.bytes);
                e.lines += f.lines;
                self.commit(f.cp);
                Ok(())
            }
            Err(err) => {
                let text = err.to_string();
                s.committed = f.before;
                s.reader.reset(f.before);
                self.batch.clear();
                self.batch_bytes = 0;
                self.status.error(text.clone());
                Err(Halt::Sink(text))
            }
        }
    }

    /// Writes records with the checkpoint as a token.
    fn write(&mut self, records: Vec<Record>, cp: &Checkpoint) -> Result<(), String> {
        let token = CheckpointToken {
            key: self.name.clone(),
            seq: cp.seq,
            data: cp.encode().into_bytes(),
        };
        self.sink
            .write_with_checkpoint(records, token)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The whole checkpoint with one entry taken out of the map and one of its streams out
    /// of the entry, with the next sequence number.
    fn checkpoint_with(&mut self, e: &Entry, s: &Stream, slot: Slot) -> Checkpoint {
        let mut cp = self.checkpoint();
        let mut pc = e.checkpoint();
        match slot {
            Slot::Current => pc.current = Some(s.checkpoint()),
            Slot::Retired(i) => pc.retired.insert(i.min(pc.retired.len()), s.checkpoint()),
        }
        cp.paths.insert(e.path.display().to_string(), pc);
        cp
    }

    /// The checkpoint of the entries in the map, with the next sequence number.
    pub(crate) fn checkpoint(&mut self) -> Checkpoint {
        self.seq += 1;
        Checkpoint {
            version: VERSION,
            seq: self.seq,
            paths: self
                .entries
                .iter()
                .map(|(p, e)| (p.display().to_string(), e.checkpoint()))
                .collect(),
            gz_done: self.gz_done.clone(),
            gz_partial: self.gz_partial,
            lost: self.lost.clone(),
        }
    }

    /// Queues a checkpoint whose lines are acknowledged; it is written in the background.
    fn commit(&mut self, cp: Checkpoint) {
        self.writer.save(cp);
    }

    /// Writes the checkpoint when an entry out of the map changed shape (a rotated file
    /// finished, a new file followed).
    pub(crate) fn save_entry_change(&mut self, e: &Entry) {
        let mut cp = self.checkpoint();
        cp.paths
            .insert(e.path.display().to_string(), e.checkpoint());
        self.commit(cp);
    }

    /// Writes the checkpoint of every entry (only when it changed), and waits until it and
    /// those queued before it are written.
    pub(crate) fn save_checkpoint(&mut self) {
        let cp = self.checkpoint();
        self.commit(cp);
        self.writer.flush();
    }

    fn publish_files(&self) {
        let files = self
            .entries
            .values()
            .map(|e| FileStatus {
                path: e.path.display().to_string(),
                offset: e.current.as_ref().map_or(0, |s| s.committed),
                size: e
                    .current
                    .as_ref()
                    .and_then(|s| s.file.metadata().ok())
                    .map_or(0, |m| m.len()),
                problem: e.problem.clone(),
            })
            .collect();
        self.status.set_files(files);
    }

    /// Delivers records that come from no followed path's stream (a compressed file read
    /// once) with the checkpoint they lead to.
    pub(crate) fn deliver_plain(
        &mut self,
        records: Vec<Record>,
        bytes: u64,
        cp: Checkpoint,
    ) -> Result<(), Halt> {
        let n = records.len() as u64;
        match self.write(records, &cp) {
            Ok(()) => {
                self.status.add_lines(n, bytes);
                self.commit(cp);
                Ok(())
            }
            Err(text) => {
                self.status.error(text.clone());
                Err(Halt::Sink(text))
            }
        }
    }

    /// Parses lines of a compressed file.
    pub(crate) fn parse_lines(&mut self, path: &Path, lines: &[Vec<u8>]) -> Vec<Record> {
        let source = format!("file:{}", path.display());
        let agent = logyard_parse::agent_from_path(path);
        let ctx = LineContext {
            source: &source,
            agent_hint: &agent,
            host: &self.host,
            received_ns: now_ns(),
        };
        lines
            .iter()
            .filter_map(|l| self.parser.parse(l, &ctx))
            .collect()
    }
}
