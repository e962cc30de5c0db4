//! Api mode: the containers of the daemon behind the unix socket, listed every
//! `poll_interval`, each followed by a task of its own ([`follow`](super::follow)), their
//! lines parsed and handed to the sink in batches, and each container's position
//! checkpointed once the sink acknowledged the batch ([`position`](super::position)).
//!
//! Which containers are read: those whose name passes the filter and that run, and those
//! with a checkpoint that stopped while logyard was not reading them (their log is read to
//! its end once). A container of the first listing after a start (running or not then),
//! without a checkpoint, starts where `start_at` says (`end`: its lines from that listing
//! on); one that appears later is read from its start.
//! A container that is gone from the listing is forgotten, with its checkpoint. A renamed
//! container's next lines carry its new name; one whose name the filters refuse (renamed,
//! or the filters changed since its checkpoint) is no longer read, and its position is
//! dropped.
//!
//! Failures do not stop the source: a missing socket, a daemon that does not answer or
//! refuses (permission denied), a stream cut in the middle — each is logged once, counted,
//! shown in the status, and tried again at the next listing from the position reached.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use logyard_model::{now_ns, Record, Value};
use logyard_parse::{Format, LineContext, Parser};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::container::{short_id, ContainerInfo};
use super::engine::{Engine, EngineError};
use super::follow::{follow, Event, LogLine};
use super::position::{position_store, token_key, ApiCheckpoint, Position, PositionStore, VERSION};
use super::DockerSource;
use crate::error::SourceError;
use crate::file::StartAt;
use crate::settings::parser_config;
use crate::status::{ContainerStatus, SourceState};
use crate::SourceContext;
use logyard_model::sink::CheckpointToken;

/// Lines waiting between the follow tasks and the run loop, at most (the tasks wait).
const CHANNEL_LINES: usize = 4096;

/// A container being read, and what its records are labelled with.
#[derive(Debug)]
struct Reading {
    info: ContainerInfo,
    /// `docker:<name>`.
    source: String,
    fields: Vec<(String, Value)>,
    lines: u64,
    problem: Option<String>,
}

/// Starts following a container. Should the reading task fail (a panic in the client of
/// the daemon), it ends like a cut stream, and the container is followed again at the next
/// listing.
fn spawn_follow(
    engine: Engine,
    id: String,
    tty: bool,
    from: Position,
    max_line_bytes: usize,
    tx: mpsc::Sender<Event>,
) -> JoinHandle<()> {
    let inner = tokio::spawn(follow(
        engine,
        id.clone(),
        tty,
        from,
        max_line_bytes,
        tx.clone(),
    ));
    tokio::spawn(async move {
        // Aborting this task (the container is no longer to be read) aborts the reader too.
        let mut inner = AbortOnDrop(inner);
        if let Err(e) = (&mut inner.0).await {
            if e.is_panic() {
                let error = EngineError::Other("the log stream's reader failed".into());
                let _ = tx
                    .send(Event::Ended {
                        id,
                        error: Some(error),
                    })
                    .await;
            }
        }
    })
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The state of the api mode's run loop.
struct ApiRun<'a> {
    src: &'a DockerSource,
    ctx: &'a SourceContext,
    parser: Parser,
    max_line_bytes: usize,
    store: PositionStore,
    /// Positions acknowledged by the sink (what the checkpoint file holds).
    cp: ApiCheckpoint,
    /// Positions of the lines taken by the run loop (batched or delivered).
    read: HashMap<String, Position>,
    tasks: HashMap<String, JoinHandle<()>>,
    containers: HashMap<String, Reading>,
    /// Stopped containers read to their end.
    caught_up: HashSet<String>,
    engine: Option<Engine>,
    listed_once: bool,
    /// The containers of the first listing after the start: `start_at` applies to them.
    initial: HashSet<String>,
    /// The time of that first listing: with `start_at = "end"`, their lines from then on
    /// are read.
    initial_ns: i64,
    /// The last failure to reach the daemon, until it answers again.
    failure: Option<String>,
    batch: Vec<Record>,
    batch_lines: Vec<(String, i64, u64)>,
    batch_bytes: u64,
    batch_since: Option<Instant>,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
}

/// Runs the api mode until the source stops.
pub(crate) fn run(src: &DockerSource, ctx: SourceContext) -> Result<(), SourceError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::io("start a runtime for", &src.cfg.socket, e))?;
    let mut run = ApiRun::new(src, &ctx)?;
    src.status.set_state(SourceState::Running);
    rt.block_on(run.run());
    for (_, t) in run.tasks.drain() {
        t.abort();
    }
    Ok(())
}

impl<'a> ApiRun<'a> {
    fn new(src: &'a DockerSource, ctx: &'a SourceContext) -> Result<ApiRun<'a>, SourceError> {
        let mut cfg = parser_config(&src.name, &ctx.parser, None, &src.cfg.time, Format::Auto)?;
        let max_line_bytes = src.cfg.max_line_bytes.unwrap_or(cfg.max_line_bytes);
        cfg.max_line_bytes = max_line_bytes;
        let parser = Parser::new(cfg).map_err(|source| SourceError::Parse {
            name: src.name.clone(),
            source,
        })?;
        let store = position_store(&ctx.state_dir, &src.name);
        let from_file = store.load()?;
        let key = token_key(&src.name);
        let from_sink = ctx.sink.stored_checkpoint(&key).and_then(|t| {
            ApiCheckpoint::decode(&t.data)
                .map_err(|e| tracing::warn!(source = %src.name, error = %e, "ignoring the sink's checkpoint"))
                .ok()
        });
        let cp = match (from_file, from_sink) {
            (Some(f), Some(s)) => {
                if s.seq > f.seq {
                    s
                } else {
                    f
                }
            }
            (f, s) => f.or(s).unwrap_or(ApiCheckpoint {
                version: VERSION,
                ..ApiCheckpoint::default()
            }),
        };
        let (tx, rx) = mpsc::channel(CHANNEL_LINES);
        Ok(ApiRun {
            src,
            ctx,
            parser,
            max_line_bytes,
            store,
            read: cp.containers.clone().into_iter().collect(),
            cp,
            tasks: HashMap::new(),
            containers: HashMap::new(),
            caught_up: HashSet::new(),
            engine: None,
            listed_once: false,
            initial: HashSet::new(),
            initial_ns: 0,
            failure: None,
            batch: Vec::new(),
            batch_lines: Vec::new(),
            batch_bytes: 0,
            batch_since: None,
            tx,
            rx,
        })
    }

    async fn run(&mut self) {
        let cfg = &self.src.cfg;
        let mut next_list = Instant::now();
        while !self.ctx.shutdown.is_triggered() {
            if Instant::now() >= next_list {
                self.refresh().await;
                self.publish();
                next_list = Instant::now() + cfg.poll_interval;
            }
            let wait = self
                .batch_since
                .map_or(Duration::from_millis(100), |t| {
                    cfg.batch.batch_wait.saturating_sub(t.elapsed())
                })
                .min(Duration::from_millis(100));
            if let Ok(Some(ev)) = tokio::time::timeout(wait, self.rx.recv()).await {
                self.on_event(ev);
            }
            while self.batch.len() < cfg.batch.batch_lines.max(1) {
                match self.rx.try_recv() {
                    Ok(ev) => self.on_event(ev),
                    Err(_) => break,
                }
            }
            let due = self
                .batch_since
                .is_some_and(|t| t.elapsed() >= cfg.batch.batch_wait);
            if due || self.batch.len() >= cfg.batch.batch_lines.max(1) {
                self.deliver().await;
                self.publish();
            }
        }
        // What was taken is delivered once more before stopping; what the sink refuses
        // then is read again at the next start.
        if !self.batch_lines.is_empty() {
            self.try_deliver().await;
        }
    }

    /// Lists the containers and starts following those to read.
    async fn refresh(&mut self) {
        let engine = match &self.engine {
            Some(e) => e.clone(),
            None => match Engine::connect(&self.src.cfg.socket, self.src.cfg.request_timeout) {
                Ok(e) => {
                    self.engine = Some(e.clone());
                    e
                }
                Err(e) => return self.fail(e.to_string()),
            },
        };
        let listed = match engine.list().await {
            Ok(l) => l,
            Err(e) => {
                self.engine = None;
                let socket = self.src.cfg.socket.display();
                return self.fail(format!("cannot list the containers at {socket}: {e}"));
            }
        };
        if self.failure.take().is_some() {
            tracing::info!(source = %self.src.name, "the Docker daemon answers again");
        }
        if self.src.status.snapshot().state == SourceState::Failing {
            self.src.status.set_state(SourceState::Running);
        }
        if !self.listed_once {
            self.initial = listed.iter().map(|c| c.id.clone()).collect();
            self.initial_ns = now_ns();
            self.listed_once = true;
        }
        self.forget_gone(&listed.iter().map(|c| c.id.clone()).collect());
        let mut dirty = false;
        for c in &listed {
            if self.src.filter.wants(&c.name) {
                self.renamed(&c.id, &c.name);
            } else if self.read.contains_key(&c.id) || self.tasks.contains_key(&c.id) {
                self.stop_reading(&c.id, &c.name);
                dirty = true;
            }
        }
        for c in listed {
            if !self.src.filter.wants(&c.name) || self.tasks.contains_key(&c.id) {
                continue;
            }
            let known = self.read.contains_key(&c.id);
            if !(c.running || known && !self.caught_up.contains(&c.id)) {
                continue;
            }
            if self.tasks.len() >= self.src.cfg.max_containers {
                let text = format!(
                    "not followed: {} containers are followed already (`max_containers`)",
                    self.src.cfg.max_containers
                );
                self.problem(&c.id, &c.name, text);
                continue;
            }
            let ins = match engine.inspect(&c.id).await {
                Ok(i) => i,
                Err(EngineError::NotFound) => continue,
                Err(e) => {
                    self.problem(&c.id, &c.name, format!("cannot inspect: {e}"));
                    continue;
                }
            };
            let from = match self.read.get(&c.id) {
                Some(p) => p.clone(),
                None => {
                    let p = if self.initial.contains(&c.id) && self.src.cfg.start_at == StartAt::End
                    {
                        Position::at(self.initial_ns)
                    } else {
                        Position::at(0)
                    };
                    // Kept at once, so that a restart goes on from here, not from its end.
                    self.read.insert(c.id.clone(), p.clone());
                    self.cp.containers.insert(c.id.clone(), p.clone());
                    dirty = true;
                    p
                }
            };
            let info = ins.info.clone();
            let reading = self
                .containers
                .entry(c.id.clone())
                .or_insert_with(|| Reading {
                    info: ContainerInfo::default(),
                    source: String::new(),
                    fields: Vec::new(),
                    lines: 0,
                    problem: None,
                });
            reading.source = format!("docker:{}", info.name);
            reading.fields = self.src.filter.fields(&info);
            reading.info = info;
            reading.problem = None;
            tracing::info!(source = %self.src.name, container = %reading.info.name, since = from.since_secs(), "following a container's log");
            let task = spawn_follow(
                engine.clone(),
                c.id.clone(),
                ins.tty,
                from,
                self.max_line_bytes,
                self.tx.clone(),
            );
            self.tasks.insert(c.id, task);
        }
        if dirty {
            self.save_positions();
        }
    }

    /// Takes a container's new name (`docker rename`): its next lines carry it.
    fn renamed(&mut self, id: &str, name: &str) {
        let Some(r) = self.containers.get_mut(id) else {
            return;
        };
        if r.info.name == name {
            return;
        }
        tracing::info!(source = %self.src.name, container = %name, old = %r.info.name, "container renamed");
        r.info.name = name.to_string();
        r.source = format!("docker:{name}");
        r.fields = self.src.filter.fields(&r.info);
    }

    /// Stops reading a container whose name the filters refuse (renamed, or the filters
    /// changed since its checkpoint was written), and drops its position.
    fn stop_reading(&mut self, id: &str, name: &str) {
        tracing::info!(source = %self.src.name, container = %name, "the filters refuse the container's name: no longer read");
        if let Some(t) = self.tasks.remove(id) {
            t.abort();
        }
        self.read.remove(id);
        self.cp.containers.remove(id);
        self.containers.remove(id);
        self.caught_up.remove(id);
    }

    /// Forgets containers that are gone from the listing (and read to their end).
    fn forget_gone(&mut self, present: &HashSet<String>) {
        let keep = |id: &String, tasks: &HashMap<String, JoinHandle<()>>| {
            present.contains(id) || tasks.contains_key(id)
        };
        let before = self.cp.containers.len();
        let tasks = &self.tasks;
        self.cp.containers.retain(|id, _| keep(id, tasks));
        self.read.retain(|id, _| keep(id, tasks));
        self.containers.retain(|id, _| keep(id, tasks));
        self.caught_up.retain(|id| keep(id, tasks));
        self.initial.retain(|id| keep(id, tasks));
        if self.cp.containers.len() != before {
            self.save_positions();
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Line(line) => self.take(line),
            Event::Ended { id, error } => {
                self.tasks.remove(&id);
                let name = self
                    .containers
                    .get(&id)
                    .map_or_else(|| short_id(&id).to_string(), |r| r.info.name.clone());
                match error {
                    None => {
                        self.caught_up.insert(id);
                    }
                    Some(EngineError::NotFound) => {
                        tracing::info!(source = %self.src.name, container = %name, "container removed");
                    }
                    Some(e) => {
                        self.problem(&id, &name, format!("log stream cut: {e}"));
                    }
                }
            }
        }
    }

    /// Parses a line into the batch.
    fn take(&mut self, line: LogLine) {
        let Some(c) = self.containers.get(&line.id) else {
            return;
        };
        let ctx = LineContext {
            source: &c.source,
            agent_hint: &c.info.name,
            host: &self.ctx.host,
            received_ns: line.ns,
        };
        let rec = self
            .parser
            .parse(&line.text, &ctx)
            .or_else(|| self.parser.flush_partial(&ctx));
        if let Some(mut rec) = rec {
            rec.fields
                .insert("stream".into(), Value::Str(line.stream.into()));
            for (k, v) in &c.fields {
                rec.fields.entry(k.clone()).or_insert_with(|| v.clone());
            }
            self.batch.push(rec);
        }
        self.read
            .entry(line.id.clone())
            .or_default()
            .advance(line.ns, line.hash);
        self.batch_bytes += line.text.len() as u64 + 1;
        self.batch_lines.push((line.id, line.ns, line.hash));
        self.batch_since.get_or_insert_with(Instant::now);
    }

    /// Hands the batch to the sink, retrying until it takes it or the source stops.
    async fn deliver(&mut self) {
        let mut backoff = Duration::from_millis(100);
        while !self.batch_lines.is_empty() {
            if self.try_deliver().await {
                return;
            }
            let until = Instant::now() + backoff;
            while Instant::now() < until {
                if self.ctx.shutdown.is_triggered() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One attempt; true when the sink took the batch (and the checkpoint was advanced).
    /// The sink blocks until the batch is durable: it runs on the blocking pool, off the
    /// runtime's thread.
    async fn try_deliver(&mut self) -> bool {
        let mut next = self.cp.clone();
        next.seq += 1;
        for (id, ns, hash) in &self.batch_lines {
            // A container no longer read (removed, or refused by the filters) gets no
            // position back.
            if !self.read.contains_key(id) {
                continue;
            }
            next.containers
                .entry(id.clone())
                .or_default()
                .advance(*ns, *hash);
        }
        let token = CheckpointToken {
            key: token_key(&self.src.name),
            seq: next.seq,
            data: next.encode(),
        };
        let n = self.batch.len() as u64;
        let sink = self.ctx.sink.clone();
        let records = self.batch.clone();
        let written =
            tokio::task::spawn_blocking(move || sink.write_with_checkpoint(records, token))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::SinkError::other(format!(
                        "the sink's call failed: {e}"
                    )))
                });
        match written {
            Ok(_) => {
                self.src.status.add_lines(n, self.batch_bytes);
                for (id, _, _) in &self.batch_lines {
                    if let Some(c) = self.containers.get_mut(id) {
                        c.lines += 1;
                    }
                }
                self.cp = next;
                self.save_positions();
                self.batch.clear();
                self.batch_lines.clear();
                self.batch_bytes = 0;
                self.batch_since = None;
                if self.failure.is_none()
                    && self.src.status.snapshot().state == SourceState::Failing
                {
                    self.src.status.set_state(SourceState::Running);
                }
                true
            }
            Err(e) => {
                tracing::warn!(source = %self.src.name, error = %e, "sink failed; retrying");
                self.src.status.error(e.to_string());
                false
            }
        }
    }

    fn save_positions(&mut self) {
        if let Err(e) = self.store.save(&self.cp) {
            tracing::warn!(source = %self.src.name, error = %e, "checkpoint not written");
            self.src.status.error(e.to_string());
        }
    }

    /// Reports a failure to reach the daemon (logged once until it answers again).
    fn fail(&mut self, text: String) {
        if self.failure.as_deref() != Some(text.as_str()) {
            tracing::warn!(source = %self.src.name, "{text}");
            self.src.status.error(text.clone());
            self.failure = Some(text);
        } else {
            self.src.status.set_state(SourceState::Failing);
        }
    }

    /// Reports a problem of one container (logged once per distinct problem).
    fn problem(&mut self, id: &str, name: &str, text: String) {
        let r = self
            .containers
            .entry(id.to_string())
            .or_insert_with(|| Reading {
                info: ContainerInfo {
                    id: id.to_string(),
                    name: name.to_string(),
                    ..ContainerInfo::default()
                },
                source: format!("docker:{name}"),
                fields: Vec::new(),
                lines: 0,
                problem: None,
            });
        if r.problem.as_deref() != Some(text.as_str()) {
            tracing::warn!(source = %self.src.name, container = %name, "{text}");
            self.src.status.input_error(text.clone());
            r.problem = Some(text);
        }
    }

    /// Publishes one status entry per container.
    fn publish(&self) {
        let mut list: Vec<ContainerStatus> = self
            .containers
            .iter()
            .map(|(id, r)| ContainerStatus {
                id: short_id(id).to_string(),
                name: r.info.name.clone(),
                lines_total: r.lines,
                last_line_time: self
                    .cp
                    .containers
                    .get(id)
                    .filter(|p| !p.at_ns.is_empty())
                    .map(|p| logyard_model::format_rfc3339(p.ns)),
                following: self.tasks.contains_key(id),
                problem: r.problem.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        self.src.status.set_containers(list);
    }
}
