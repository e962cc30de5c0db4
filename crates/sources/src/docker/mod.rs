//! The Docker source: the logs of the containers of one Docker host, read-only.
//!
//! `[[sources]] type = "docker"`: see [`DockerConfig`] for the keys. Two ways to read them:
//!
//! - **files** (module `files`): the json-file logging driver's files under the data root,
//!   `<data_root>/containers/<id>/<id>-json.log`, followed by the file source's tailer
//!   (checkpoints, rotation by the driver's `max-size`/`max-file`). The container's name,
//!   image and labels come from `config.v2.json` beside the log. Nothing under the data root
//!   is ever written.
//! - **api** (module `api`): the Docker Engine API over its unix socket: the containers are
//!   listed, inspected, and their logs followed with `since`, `timestamps` and `follow`. The
//!   position of each container (the time of its last delivered line) is checkpointed after
//!   the sink acknowledged it. The module `engine` is the only code that speaks to the
//!   daemon, and it sends nothing but `GET` requests for listing, inspecting and reading
//!   logs.
//!
//! Either way a record's `agent` is the container's name (unless the line names its own),
//! its `source` is `docker:<name>`, and it carries the fields `container_id`,
//! `container_name`, `image`, `stream` and the container's labels as `label.<key>`.

mod api;
mod container;
mod engine;
mod files;
mod follow;
mod position;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::SourceError;
use crate::file::StartAt;
use crate::settings::{duration, size, BatchSettings, TimeSettings};
use crate::status::StatusHandle;
use crate::{Source, SourceContext};

pub(crate) use container::NameFilter;

/// How the container logs are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerMode {
    /// `files` when `<data_root>/containers` can be listed at start, else `api` (default).
    #[default]
    Auto,
    /// The json-file driver's files under the data root.
    Files,
    /// The Engine API over its unix socket.
    Api,
}

/// The `[[sources]]` keys of `type = "docker"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// The source's name (checkpoint file and metric label); the type by default.
    #[serde(default)]
    pub name: Option<String>,
    /// `auto` (default), `files` or `api`.
    #[serde(default)]
    pub mode: DockerMode,
    /// The Docker data root, whose `containers/` holds the json-file logs (files mode).
    #[serde(default = "default_data_root")]
    pub data_root: PathBuf,
    /// The Engine API's unix socket (api mode).
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Globs of the container names to read (`web-*`); all containers when empty.
    #[serde(default)]
    pub containers: Vec<String>,
    /// Globs of the container names not to read, even when `containers` matches them.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Globs of the label keys kept as `label.<key>` fields (default: every label).
    #[serde(default = "all_labels")]
    pub labels: Vec<String>,
    /// Where to start in the logs of a container seen at the first start: `end` (default)
    /// or `beginning`. Containers found later are read from their start.
    #[serde(default)]
    pub start_at: StartAt,
    /// `timezone`, `timestamp_format`, `timestamp_field`.
    #[serde(flatten)]
    pub time: TimeSettings,
    /// How often containers are listed and the log files looked at (default `1s`, at most
    /// `1h`).
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Longer lines are cut and marked `truncated` (default: `[limits] max_line_bytes`).
    #[serde(default, deserialize_with = "opt_size")]
    pub max_line_bytes: Option<usize>,
    /// `batch_lines`, `max_batch_bytes`, `batch_wait`.
    #[serde(flatten)]
    pub batch: BatchSettings,
    /// A line split by the daemon whose last part does not come is given out after this
    /// long (default `1s`).
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub partial_timeout: Duration,
    /// A rotated log file is read until it stayed unchanged this long (files mode, default
    /// `5s`).
    #[serde(default = "five_seconds", deserialize_with = "duration")]
    pub rotate_wait: Duration,
    /// How long the daemon may take to answer a request (api mode, default `30s`); a log
    /// stream may then last as long as the container runs.
    #[serde(default = "thirty_seconds", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Containers followed at once at most (api mode, default 500); the others are reported
    /// and read when a place frees up.
    #[serde(default = "default_max_containers")]
    pub max_containers: usize,
}

/// The longest `poll_interval` accepted.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3600);

fn default_data_root() -> PathBuf {
    PathBuf::from("/var/lib/docker")
}
fn default_socket() -> PathBuf {
    PathBuf::from("/var/run/docker.sock")
}
fn all_labels() -> Vec<String> {
    vec!["*".into()]
}
fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn default_max_containers() -> usize {
    500
}
fn opt_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    size(d).map(Some)
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            name: None,
            mode: DockerMode::Auto,
            data_root: default_data_root(),
            socket: default_socket(),
            containers: Vec::new(),
            exclude: Vec::new(),
            labels: all_labels(),
            start_at: StartAt::End,
            time: TimeSettings::default(),
            poll_interval: one_second(),
            max_line_bytes: None,
            batch: BatchSettings::default(),
            partial_timeout: one_second(),
            rotate_wait: five_seconds(),
            request_timeout: thirty_seconds(),
            max_containers: default_max_containers(),
        }
    }
}

/// Reads the logs of a Docker host's containers; see the module documentation.
pub struct DockerSource {
    name: String,
    cfg: DockerConfig,
    filter: NameFilter,
    status: StatusHandle,
}

impl DockerSource {
    /// Checks the configuration and builds the source.
    pub fn new(name: &str, cfg: DockerConfig) -> Result<DockerSource, SourceError> {
        let filter = NameFilter::new(&cfg.containers, &cfg.exclude, &cfg.labels)
            .map_err(|e| SourceError::config(name, e))?;
        if cfg.poll_interval.is_zero() || cfg.poll_interval > MAX_POLL_INTERVAL {
            return Err(SourceError::config(
                name,
                "`poll_interval` must be above 0 and at most 1h",
            ));
        }
        if cfg.max_containers == 0 {
            return Err(SourceError::config(
                name,
                "`max_containers` must be above 0",
            ));
        }
        Ok(DockerSource {
            name: name.to_string(),
            cfg,
            filter,
            status: StatusHandle::new(name, "docker"),
        })
    }

    /// The mode to run in: `auto` is `files` when the data root's `containers/` can be
    /// listed now, else `api`.
    fn resolved_mode(&self) -> DockerMode {
        match self.cfg.mode {
            DockerMode::Auto => {
                if std::fs::read_dir(self.cfg.data_root.join("containers")).is_ok() {
                    DockerMode::Files
                } else {
                    DockerMode::Api
                }
            }
            m => m,
        }
    }
}

impl Source for DockerSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "docker"
    }

    fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let mode = self.resolved_mode();
        tracing::info!(source = %self.name, ?mode, "reading container logs");
        match mode {
            DockerMode::Api => api::run(&self, ctx),
            _ => files::run(&self, ctx),
        }
    }
}

#[cfg(test)]
mod tests;
