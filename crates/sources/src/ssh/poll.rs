//! One poll of a host: the new lines of each selected container and configured file, parsed
//! and handed to the sink in batches, each batch's position checkpointed once the sink
//! acknowledged it. `logyard serve` polls every `interval`; `logyard remote save` polls once.

use std::collections::BTreeSet;
use std::sync::Arc;

use logyard_model::{now_ns, Record};
use logyard_parse::{agent_from_path, LineContext, MultilineConfig, Parser};

use super::allow::RemoteCommand;
use super::batch::{Batcher, Pos};
use super::checkpoint::{fnv1a, CheckpointFile, ContainerPos, PathPos, SshCheckpoint, TAIL_BYTES};
use super::client::{OutputLine, Remote, RemoteError};
use super::docker::{parse_ps, split_stamp, Container};
use crate::error::SourceError;
use crate::status::{FileStatus, StatusHandle};
use logyard_model::sink::Sink;

/// What a poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Containers whose logs were read.
    pub containers: Vec<String>,
    /// Files read.
    pub paths: usize,
    /// Records delivered to the sink.
    pub records: u64,
    /// Lines skipped because they were delivered before.
    pub duplicates: u64,
    /// Containers or files that failed while the host answered (each said once).
    pub errors: Vec<String>,
}

/// Why a poll stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The host did not answer, or the connection failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The sink refused a batch; nothing after the last acknowledged batch is checkpointed.
    #[error("{0}")]
    Sink(String),
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] SourceError),
}

/// The settings of a poller.
pub(crate) struct PollSettings {
    pub name: String,
    pub host_name: String,
    /// The container patterns; empty: every container; `None`: no container (no
    /// `docker ps` either).
    pub containers: Option<Vec<glob::Pattern>>,
    pub start_at_end: bool,
    pub multiline: MultilineConfig,
    pub batch_lines: usize,
}

/// Polls one host; keeps the checkpoint between polls.
pub struct Poller {
    s: PollSettings,
    remote: Remote,
    parser: Parser,
    sink: Arc<dyn Sink>,
    file: CheckpointFile,
    cp: SshCheckpoint,
    live_before: BTreeSet<String>,
    status: StatusHandle,
}

impl Poller {
    /// Builds a poller and loads its checkpoint.
    pub(crate) fn new(
        s: PollSettings,
        remote: Remote,
        parser: Parser,
        sink: Arc<dyn Sink>,
        state_dir: &std::path::Path,
        status: StatusHandle,
    ) -> Result<Poller, SourceError> {
        let file = CheckpointFile::new(state_dir, &s.name);
        let cp = file.load()?.unwrap_or_else(SshCheckpoint::empty);
        Ok(Poller {
            s,
            remote,
            parser,
            sink,
            file,
            cp,
            live_before: BTreeSet::new(),
            status,
        })
    }

    /// Returns the runner of the host.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Returns the files' positions, for the status.
    pub(crate) fn path_status(&self) -> Vec<FileStatus> {
        self.remote
            .allow_list()
            .paths()
            .iter()
            .map(|p| {
                let off = self.cp.paths.get(p).map_or(0, |x| x.offset);
                FileStatus {
                    path: p.clone(),
                    offset: off,
                    size: off,
                    problem: None,
                }
            })
            .collect()
    }

    /// Polls the host once. `floor` (ns) is the oldest time wanted: container logs start
    /// there at the latest, and file lines older than it are skipped (`logyard remote save
    /// HOURS`); `None` follows `start_at` for what was never read.
    pub fn poll(&mut self, floor: Option<i64>) -> Result<PollReport, PollError> {
        let mut report = PollReport::default();
        if let Some(patterns) = &self.s.containers {
            let ps = self.remote.output(&RemoteCommand::DockerPs)?;
            let listed = parse_ps(&ps);
            let chosen: Vec<Container> = listed
                .into_iter()
                .filter(|c| patterns.is_empty() || patterns.iter().any(|p| p.matches(c.name())))
                .filter(|c| c.is_live() || self.live_before.contains(c.name()))
                .collect();
            self.live_before = chosen
                .iter()
                .filter(|c| c.is_live())
                .map(|c| c.name().to_string())
                .collect();
            for c in &chosen {
                match self.container(c.name(), floor, &mut report) {
                    Ok(()) => report.containers.push(c.name().to_string()),
                    Err(PollError::Remote(e)) if !e.is_connection() => {
                        report.errors.push(format!("container {}: {e}", c.name()));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let paths = self.remote.allow_list().paths().to_vec();
        for p in &paths {
            match self.path(p, floor, &mut report) {
                Ok(()) => report.paths += 1,
                Err(PollError::Remote(e)) if !e.is_connection() => {
                    report.errors.push(format!("file {p}: {e}"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Reads a container's new lines.
    fn container(
        &mut self,
        name: &str,
        floor: Option<i64>,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let known = self.cp.containers.get(name).cloned();
        let (since, mut seen) = match (&known, floor) {
            (Some(k), Some(f)) if f > k.since_ns => (Some(f), Vec::new()),
            (Some(k), _) => (Some(k.since_ns), k.at_since.clone()),
            (None, Some(f)) => (Some(f), Vec::new()),
            (None, None) if self.s.start_at_end => (Some(now_ns()), Vec::new()),
            (None, None) => (None, Vec::new()),
        };
        let source = format!("ssh:{}/{name}", self.s.host_name);
        let host = self.s.host_name.clone();
        let cmd = RemoteCommand::DockerLogs {
            container: name.to_string(),
            since,
            timestamps: true,
            tail: None,
        };
        let mut batcher = Batcher::new(&self.s.multiline);
        let mut failure: Option<PollError> = None;
        let mut parser = std::mem::replace(&mut self.parser, placeholder_parser());
        let batch = self.s.batch_lines;
        let result = {
            let remote = self.remote.clone();
            remote.run(&cmd, &mut |l: OutputLine<'_>| {
                let Some((ts, text)) = split_stamp(l.text) else {
                    // Not a container line: Docker's own message (joined by `2>&1`), which
                    // the error of the failed command carries.
                    return true;
                };
                if since.is_some_and(|s| ts < s) {
                    report.duplicates += 1;
                    return true;
                }
                let hash = fnv1a(l.text);
                if Some(ts) == since {
                    if let Some(i) = seen.iter().position(|h| *h == hash) {
                        seen.swap_remove(i);
                        report.duplicates += 1;
                        return true;
                    }
                }
                let ctx = LineContext {
                    source: &source,
                    agent_hint: name,
                    host: &host,
                    received_ns: ts,
                };
                batcher.push(&mut parser, &ctx, text, ts, Pos::Stamp(ts, hash));
                if batcher.records.len() >= batch {
                    if let Err(e) = self.deliver_container(name, &mut batcher, report) {
                        failure = Some(e);
                        return false;
                    }
                }
                true
            })
        };
        let ctx = LineContext {
            source: &source,
            agent_hint: name,
            host: &host,
            received_ns: now_ns(),
        };
        batcher.finish(&mut parser, &ctx);
        self.parser = parser;
        if let Some(e) = failure {
            return Err(e);
        }
        // Lines read before a failure are whole lines: deliver them, then report.
        self.deliver_container(name, &mut batcher, report)?;
        result.map_err(PollError::Remote)?;
        if let (None, Some(s)) = (self.cp.containers.get(name), since) {
            // A container without new lines yet: the next poll goes on from this poll's
            // start, not from its own "now", or lines between the two would be skipped.
            self.cp.containers.insert(
                name.to_string(),
                ContainerPos {
                    since_ns: s,
                    at_since: Vec::new(),
                },
            );
            self.file.save(&self.cp)?;
        }
        Ok(())
    }

    /// Hands a container's batch to the sink, then moves its checkpoint over it.
    fn deliver_container(
        &mut self,
        name: &str,
        batcher: &mut Batcher,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let (records, released, bytes) = batcher.take();
        if released.is_empty() {
            return Ok(());
        }
        self.write(records, bytes, report)?;
        let pos = self.cp.containers.entry(name.to_string()).or_default();
        for p in released {
            if let Pos::Stamp(ts, hash) = p {
                if ts > pos.since_ns {
                    *pos = ContainerPos {
                        since_ns: ts,
                        at_since: vec![hash],
                    };
                } else if ts == pos.since_ns {
                    pos.at_since.push(hash);
                }
            }
        }
        self.file.save(&self.cp)?;
        Ok(())
    }

    /// Reads a file's new lines, from its start when it was truncated or replaced.
    fn path(
        &mut self,
        path: &str,
        floor: Option<i64>,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let known = self.cp.paths.get(path).cloned();
        let skip_existing = known.is_none() && floor.is_none() && self.s.start_at_end;
        let pos = known.unwrap_or_default();
        if pos.offset > 0 && !self.read_path(path, &pos, false, floor, report)? {
            // The bytes before the offset changed: a new file. Read it whole.
            tracing::info!(source = %self.s.name, path, "remote file truncated or replaced; reading it from its start");
            self.cp.paths.insert(path.to_string(), PathPos::default());
            self.read_path(path, &PathPos::default(), false, floor, report)?;
        } else if pos.offset == 0 {
            self.read_path(path, &pos, skip_existing, floor, report)?;
        }
        if !self.cp.paths.contains_key(path) {
            // An empty file, read once: it is known now, and what comes next is new.
            self.cp.paths.insert(path.to_string(), PathPos::default());
            self.file.save(&self.cp)?;
        }
        Ok(())
    }

    /// Reads a file from `pos`; returns false (having delivered nothing) when the bytes
    /// before the offset are not those checkpointed. With `skip`, lines are counted but not
    /// delivered (the first look with `start_at = "end"`).
    fn read_path(
        &mut self,
        path: &str,
        pos: &PathPos,
        skip: bool,
        floor: Option<i64>,
        report: &mut PollReport,
    ) -> Result<bool, PollError> {
        let tail_len = pos.tail_len.min(pos.offset.min(u64::from(u32::MAX)) as u32) as u64;
        let cmd = RemoteCommand::TailFrom {
            path: path.to_string(),
            from: pos.offset - tail_len,
        };
        let source = format!("ssh:{}:{path}", self.s.host_name);
        let agent = agent_from_path(std::path::Path::new(path));
        let host = self.s.host_name.clone();
        let mut verify: Vec<u8> = Vec::new();
        let mut verified = tail_len == 0;
        let mut mismatch = false;
        let mut batcher = Batcher::new(&self.s.multiline);
        let mut skipped = 0u64;
        let mut failure: Option<PollError> = None;
        let mut parser = std::mem::replace(&mut self.parser, placeholder_parser());
        let batch = self.s.batch_lines;
        let received = now_ns();
        let result = {
            let remote = self.remote.clone();
            remote.run(&cmd, &mut |l: OutputLine<'_>| {
                if !verified {
                    verify.extend_from_slice(l.text);
                    if l.terminated {
                        verify.push(b'\n');
                    }
                    if (verify.len() as u64) < tail_len {
                        return true;
                    }
                    verified = true;
                    if verify.len() as u64 != tail_len || fnv1a(&verify) != pos.tail_hash {
                        mismatch = true;
                        return false;
                    }
                    return true;
                }
                if !l.terminated {
                    // A last line still being written: read it whole at the next poll.
                    return true;
                }
                let bytes = (l.raw_len == l.text.len() as u64 + 1).then(|| {
                    let mut b = l.text.to_vec();
                    b.push(b'\n');
                    b
                });
                if skip {
                    skipped += l.raw_len;
                    self.advance_path(path, &[Pos::Bytes(l.raw_len, bytes)]);
                    return true;
                }
                let ctx = LineContext {
                    source: &source,
                    agent_hint: &agent,
                    host: &host,
                    received_ns: received,
                };
                batcher.push(
                    &mut parser,
                    &ctx,
                    l.text,
                    received,
                    Pos::Bytes(l.raw_len, bytes),
                );
                if batcher.records.len() >= batch {
                    if let Err(e) = self.deliver_path(path, &mut batcher, floor, report) {
                        failure = Some(e);
                        return false;
                    }
                }
                true
            })
        };
        if mismatch || (!verified && result.is_ok()) {
            self.parser = parser;
            return Ok(false);
        }
        let ctx = LineContext {
            source: &source,
            agent_hint: &agent,
            host: &host,
            received_ns: received,
        };
        batcher.finish(&mut parser, &ctx);
        self.parser = parser;
        if let Some(e) = failure {
            return Err(e);
        }
        self.deliver_path(path, &mut batcher, floor, report)?;
        if skipped > 0 {
            self.file.save(&self.cp)?;
        }
        result.map(|_| true).map_err(PollError::Remote)
    }

    /// Hands a file's batch to the sink, then moves its checkpoint over it.
    fn deliver_path(
        &mut self,
        path: &str,
        batcher: &mut Batcher,
        floor: Option<i64>,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let (mut records, released, bytes) = batcher.take();
        if released.is_empty() {
            return Ok(());
        }
        if let Some(f) = floor {
            let before = records.len();
            records.retain(|r| r.timestamp >= f);
            report.duplicates += (before - records.len()) as u64;
        }
        self.write(records, bytes, report)?;
        self.advance_path(path, &released);
        self.file.save(&self.cp)?;
        Ok(())
    }

    /// Moves a file's position over delivered lines (in memory).
    fn advance_path(&mut self, path: &str, released: &[Pos]) {
        let pos = self.cp.paths.entry(path.to_string()).or_default();
        // The bytes before the offset: the old tail is not kept, so rebuild it from the
        // lines released now when they are enough, else hash what is known.
        let mut tail: Vec<u8> = Vec::new();
        for p in released {
            if let Pos::Bytes(len, bytes) = p {
                pos.offset += len;
                match bytes {
                    Some(b) => tail.extend_from_slice(b),
                    // A cut line: only its final newline is known.
                    None => {
                        tail.clear();
                        tail.push(b'\n');
                    }
                }
                if tail.len() > 4 * TAIL_BYTES {
                    tail.drain(..tail.len() - TAIL_BYTES);
                }
            }
        }
        if tail.is_empty() {
            return;
        }
        let keep = tail.len().min(TAIL_BYTES);
        let t = &tail[tail.len() - keep..];
        pos.tail_len = keep as u32;
        pos.tail_hash = fnv1a(t);
    }

    /// Writes records to the sink and counts them.
    fn write(
        &self,
        records: Vec<Record>,
        bytes: u64,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let n = records.len() as u64;
        if n > 0 {
            self.sink
                .write(records)
                .map_err(|e| PollError::Sink(e.to_string()))?;
        }
        self.status.add_lines(n, bytes);
        report.records += n;
        Ok(())
    }
}

/// A parser put in place while the real one is lent to a command's line handler.
fn placeholder_parser() -> Parser {
    Parser::new(logyard_parse::ParserConfig::default()).expect("the default parser builds")
}

#[cfg(test)]
mod tests;
