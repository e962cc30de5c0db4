//! Files mode: the json-file driver's logs under the Docker data root, followed by the file
//! source's [`Tailer`] (checkpoints after each acknowledged batch, the driver's rotation to
//! `<id>-json.log.1`, …, nothing lost or read twice across restarts).
//!
//! [`DockerFiles`] lists `<data_root>/containers/<id>/` at every poll. A container is
//! followed when its `<id>-json.log` exists and its name passes the filter; its name, image
//! and labels are read from `config.v2.json` (again when that file changes, as on a rename).
//! A container whose `config.v2.json` is missing or invalid is reported and named after its
//! short id. A removed container's file is read to its end and then dropped. Files are only
//! opened for reading.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use logyard_parse::{Format, MultilineConfig, MultilineMode};

use super::container::{clean_name, short_id, ContainerInfo, NameFilter};
use super::DockerSource;
use crate::error::SourceError;
use crate::file::{Discover, Halt, PathMeta, Settings, StartAt, Tailer};
use crate::settings::parser_config;
use crate::status::{ContainerStatus, SourceState, StatusHandle};
use crate::SourceContext;

/// A container not seen in the data root for this long is forgotten (its file was read to
/// its end long before).
const FORGET_CONTAINER: Duration = Duration::from_secs(3600);

/// What is known of one container directory.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    /// The container, as `config.v2.json` says.
    pub info: ContainerInfo,
    /// The modification time of `config.v2.json` when it was read.
    config_mtime: Option<SystemTime>,
    /// Why `config.v2.json` could not be used.
    pub problem: Option<String>,
    /// When the directory was last listed.
    seen: Instant,
    /// True when the filter lets the container in.
    pub wanted: bool,
}

/// The containers known by id, shared with the run loop for the status.
pub(crate) type KnownMap = Arc<Mutex<HashMap<String, Known>>>;

/// Lists the containers' log files; see the module documentation.
pub(crate) struct DockerFiles {
    name: String,
    root: PathBuf,
    filter: NameFilter,
    known: KnownMap,
    status: StatusHandle,
    root_problem: Option<String>,
    /// False while the data root's `containers/` cannot be listed.
    root_ok: Arc<AtomicBool>,
}

impl DockerFiles {
    /// Lists `<data_root>/containers`.
    pub fn new(name: &str, data_root: &Path, filter: NameFilter, status: StatusHandle) -> Self {
        DockerFiles {
            name: name.to_string(),
            root: data_root.join("containers"),
            filter,
            known: Arc::default(),
            status,
            root_problem: None,
            root_ok: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The flag that tells whether the data root could be listed at the last poll.
    pub fn root_ok(&self) -> Arc<AtomicBool> {
        self.root_ok.clone()
    }

    /// The shared map of known containers.
    pub fn known(&self) -> KnownMap {
        self.known.clone()
    }

    /// Reads (or reads again, when it changed) a container's `config.v2.json`.
    fn refresh(&self, id: &str, known: &mut HashMap<String, Known>) {
        let config = self.root.join(id).join("config.v2.json");
        let mtime = std::fs::metadata(&config)
            .ok()
            .and_then(|m| m.modified().ok());
        if let Some(k) = known.get_mut(id) {
            k.seen = Instant::now();
            if k.config_mtime == mtime && mtime.is_some() {
                return;
            }
        }
        let (info, problem) = match read_config(&config, id) {
            Ok(info) => (info, None),
            Err(text) => (ContainerInfo::unnamed(id), Some(text)),
        };
        if let Some(text) = &problem {
            let old = known.get(id).and_then(|k| k.problem.as_deref());
            if old != Some(text.as_str()) {
                tracing::warn!(source = %self.name, container = short_id(id), "{text}");
                self.status.input_error(text.clone());
            }
        }
        let wanted = self.filter.wants(&info.name);
        known.insert(
            id.to_string(),
            Known {
                info,
                config_mtime: mtime,
                problem,
                seen: Instant::now(),
                wanted,
            },
        );
    }
}

impl Discover for DockerFiles {
    fn expand(&mut self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let dirs = match std::fs::read_dir(&self.root) {
            Ok(rd) => {
                self.root_problem = None;
                self.root_ok.store(true, Ordering::Relaxed);
                rd
            }
            Err(e) => {
                let text = format!("cannot list {}: {e}", self.root.display());
                if self.root_problem.as_deref() != Some(text.as_str()) {
                    tracing::warn!(source = %self.name, "{text}");
                    self.status.error(text.clone());
                    self.root_problem = Some(text);
                }
                self.root_ok.store(false, Ordering::Relaxed);
                return (Vec::new(), Vec::new());
            }
        };
        let mut live = Vec::new();
        let known = self.known.clone();
        let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
        for ent in dirs.flatten() {
            let id = ent.file_name().to_string_lossy().into_owned();
            if !ent.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let log = ent.path().join(format!("{id}-json.log"));
            if !std::fs::metadata(&log).is_ok_and(|m| m.is_file()) {
                // Another logging driver, or a container that never started.
                continue;
            }
            self.refresh(&id, &mut known);
            if known.get(&id).is_some_and(|k| k.wanted) {
                live.push(log);
            }
        }
        known.retain(|_, k| k.seen.elapsed() < FORGET_CONTAINER);
        live.sort();
        (live, Vec::new())
    }

    fn describe(&mut self, path: &Path) -> PathMeta {
        let id = container_of(path);
        let known = self.known.clone();
        let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
        if !known.contains_key(&id) {
            self.refresh(&id, &mut known);
        }
        let info = known
            .get(&id)
            .map_or_else(|| ContainerInfo::unnamed(&id), |k| k.info.clone());
        self.filter.meta(&info)
    }

    fn wants(&self, path: &Path) -> bool {
        let id = container_of(path);
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(&id).is_none_or(|k| k.wanted)
    }
}

/// The container id of a log path: the name of its folder.
fn container_of(path: &Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads a container's name, image and labels from its `config.v2.json`.
pub(crate) fn read_config(path: &Path, id: &str) -> Result<ContainerInfo, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let name = doc
        .get("Name")
        .and_then(|n| n.as_str())
        .map(clean_name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{} has no container `Name`", path.display()))?;
    let config = doc.get("Config");
    let image = config
        .and_then(|c| c.get("Image"))
        .and_then(|i| i.as_str())
        .unwrap_or_default()
        .to_string();
    let labels = config
        .and_then(|c| c.get("Labels"))
        .and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Ok(ContainerInfo {
        id: id.to_string(),
        name,
        image,
        labels,
    })
}

/// Runs the files mode until the source stops.
pub(crate) fn run(src: &DockerSource, ctx: SourceContext) -> Result<(), SourceError> {
    let mut parser = parser_config(
        &src.name,
        &ctx.parser,
        Some("docker"),
        &src.cfg.time,
        Format::Docker,
    )?;
    let max_line_bytes = src.cfg.max_line_bytes.unwrap_or(parser.max_line_bytes);
    parser.max_line_bytes = max_line_bytes;
    let settings = Settings {
        start_at_end: src.cfg.start_at == StartAt::End,
        // A container's log is read whatever its age: `start_at` says where.
        ignore_older: None,
        // The limit applies to the container's line, which the parser cuts once unwrapped
        // and joined; a json-file line carries the wrapper and JSON escapes besides: the
        // reader keeps as much of it as the parser looks at.
        max_line_bytes: logyard_parse::DOCKER_LINE_BYTES
            .max(max_line_bytes.saturating_mul(6).saturating_add(4096)),
        partial_timeout: src.cfg.partial_timeout,
        multiline: MultilineConfig {
            mode: MultilineMode::None,
            ..MultilineConfig::default()
        },
        batch_lines: src.cfg.batch.batch_lines.max(1),
        max_batch_bytes: src.cfg.batch.max_batch_bytes,
        rotate_wait: src.cfg.rotate_wait,
        // A removed container's log is dropped as soon as it is read to its end.
        forget_after: Duration::ZERO,
        read_older_generations: true,
        wrapped: true,
    };
    let discover = DockerFiles::new(
        &src.name,
        &src.cfg.data_root,
        src.filter.clone(),
        src.status.clone(),
    );
    let known = discover.known();
    let root_ok = discover.root_ok();
    let mut tailer = Tailer::new(
        &src.name,
        settings,
        Box::new(discover),
        parser,
        &ctx.host,
        ctx.sink.clone(),
        &ctx.state_dir,
        src.status.clone(),
        ctx.shutdown.clone(),
    )?;
    src.status.set_state(SourceState::Running);
    let mut backoff = Duration::from_millis(100);
    while !ctx.shutdown.is_triggered() {
        match tailer.poll() {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                if root_ok.load(Ordering::Relaxed) {
                    src.status.set_state(SourceState::Running);
                }
            }
            Err(Halt::Shutdown) => break,
            Err(Halt::Sink(text)) => {
                tracing::warn!(source = %src.name, error = %text, "sink failed; retrying");
                ctx.shutdown.wait_timeout(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        publish(&tailer, &known, &src.status);
        let wait = if tailer.has_pending() {
            src.cfg.poll_interval.min(Duration::from_millis(200))
        } else {
            src.cfg.poll_interval
        };
        ctx.shutdown.wait_timeout(wait);
    }
    tailer.save_checkpoint();
    Ok(())
}

/// Publishes one status entry per followed container.
fn publish(tailer: &Tailer, known: &KnownMap, status: &StatusHandle) {
    let known = known.lock().unwrap_or_else(|e| e.into_inner());
    let containers = tailer
        .entries
        .values()
        .map(|e| {
            let id = container_of(&e.path);
            let k = known.get(&id);
            ContainerStatus {
                id: short_id(&id).to_string(),
                name: e.agent.clone(),
                lines_total: e.lines,
                last_line_time: None,
                following: e.current.is_some(),
                problem: e
                    .problem
                    .clone()
                    .or_else(|| k.and_then(|k| k.problem.clone())),
            }
        })
        .collect();
    status.set_containers(containers);
}
