//! Collects logs for logyard: files followed by glob with rotation awareness and
//! checkpoints, syslog over UDP, TCP and RELP, Docker containers (their json-file logs or
//! the Engine API, read-only), remote hosts over SSH (read-only, allow-listed and audited),
//! the systemd journal (through `journalctl`), and stdin.
//!
//! Sources sit at the head of the write path. They frame bytes into lines, join multi-line
//! records and parse lines with `logyard-parse`, then hand batches of records to a [`Sink`]
//! that the binary gives them in the [`SourceContext`]. Sources do not know the store
//! exists: the store's sink appends to it and answers once the batch is durable, and only
//! then does a source commit its position (a file source's checkpoint).
//!
//! HTTP ingest is decoded here too ([`http`]): the API crate reads the bodies of its routes,
//! decodes them with these decoders and writes the records through the same [`Sink`].
//!
//! The `[[sources]]` entries of the configuration file deserialise into [`SourceConfig`];
//! [`build_all`] is the one registry that turns them into [`Source`]s; [`spawn`] runs one on
//! its own thread, and each source reports a [`SourceStatus`] through a [`StatusHandle`].
//!
//! ```
//! use std::sync::Arc;
//! use logyard_sources::{build_all, spawn, MemorySink, SourceConfig, SourceContext};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("billing.log"), "2024-01-15 10:30:00 - ERROR - charge failed\n").unwrap();
//! let toml = format!(
//!     "type = \"file\"\npaths = [\"{}/*.log\"]\nstart_at = \"beginning\"\nmultiline = \"none\"",
//!     dir.path().display()
//! );
//! let config: SourceConfig = toml::from_str(&toml).unwrap();
//! let sink = Arc::new(MemorySink::new());
//! let ctx = SourceContext::new(sink.clone(), dir.path().join("state"), "web-1");
//! let sources = build_all(&[config]).unwrap();
//! let running: Vec<_> = sources.into_iter().map(|s| spawn(s, ctx.clone())).collect();
//! while sink.records().is_empty() {
//!     std::thread::sleep(std::time::Duration::from_millis(20));
//! }
//! ctx.shutdown.trigger();
//! for r in running {
//!     assert_eq!(r.status.snapshot().name, "file");
//!     r.join().unwrap();
//! }
//! let rec = &sink.records()[0];
//! assert_eq!(rec.agent, "billing");
//! assert_eq!(rec.message, "charge failed");
//! assert!(rec.source.starts_with("file:"));
//! ```

mod batch;
mod checkpoint_file;
pub mod docker;
mod error;
pub mod file;
pub mod http;
pub mod journald;
mod settings;
mod shutdown;
pub mod ssh;
mod status;
pub mod stdin;
pub mod syslog;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use logyard_parse::ParserConfig;
use serde::Deserialize;

pub use docker::{DockerConfig, DockerMode, DockerSource};
pub use error::SourceError;
pub use file::{FileConfig, FileSource};
pub use journald::{JournaldConfig, JournaldSource};
/// The seam between sources and the store, defined with the record in the model crate.
pub use logyard_model::sink::{
    CheckpointToken, MemorySink, Receipt, Sink, SinkAnswer, SinkError, SinkErrorKind,
};
pub use settings::{BatchSettings, ParseSettings, TimeSettings};
pub use shutdown::Shutdown;
pub use ssh::{SshConfig, SshSource};
pub use status::{
    render_file_metrics, render_prometheus, ContainerStatus, FileStatus, RemoteStatus, SourceState,
    SourceStatus, StatusHandle, DEFAULT_MAX_FILE_SERIES,
};
pub use stdin::{StdinConfig, StdinSource};
pub use syslog::{SyslogConfig, SyslogSource};

/// What every source is given to run: where records go, when to stop, where to keep state.
#[derive(Clone)]
pub struct SourceContext {
    /// Where batches go; blocking, returns once they are durable.
    pub sink: Arc<dyn Sink>,
    /// Set when the source must stop.
    pub shutdown: Shutdown,
    /// Where sources keep their state (`<state_dir>/checkpoints/<source>.json`).
    pub state_dir: PathBuf,
    /// This machine's host name, for records whose line names none.
    pub host: String,
    /// The base parser settings (grok parsers, redaction, `max_line_bytes`); each source
    /// sets the format and time zone of its own entry over them.
    pub parser: ParserConfig,
}

impl SourceContext {
    /// Creates a context with a new stop flag and the default parser settings.
    pub fn new(sink: Arc<dyn Sink>, state_dir: impl Into<PathBuf>, host: &str) -> SourceContext {
        SourceContext {
            sink,
            shutdown: Shutdown::new(),
            state_dir: state_dir.into(),
            host: host.to_string(),
            parser: ParserConfig::default(),
        }
    }
}

/// A running collector of log lines; see the crate documentation.
pub trait Source: Send {
    /// Returns the source's unique name.
    fn name(&self) -> &str;

    /// Returns the source's type (`file`, `syslog`, `docker`, `ssh`, `journald`, `stdin`).
    fn kind(&self) -> &'static str;

    /// Returns the handle on the source's status, which stays valid after `run` returns.
    fn status(&self) -> StatusHandle;

    /// Acquires what the source must hold before the server says it is ready (the syslog
    /// listeners' ports), so that a port in use is an error at start and nothing sent after
    /// start is lost. Sources with nothing to acquire keep the default.
    fn prepare(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    /// Runs until `ctx.shutdown` is set or the input ends; blocks the calling thread (run it
    /// on a thread of its own, see [`spawn`]).
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError>;
}

/// One `[[sources]]` entry of the configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// Files followed by glob.
    File(FileConfig),
    /// Syslog over UDP, TCP and RELP.
    Syslog(SyslogConfig),
    /// The logs of a Docker host's containers.
    Docker(DockerConfig),
    /// A remote host's containers and files over SSH (boxed: its many keys would make
    /// every entry as large).
    Ssh(Box<SshConfig>),
    /// The systemd journal, through `journalctl`.
    Journald(JournaldConfig),
    /// Lines from standard input.
    Stdin(StdinConfig),
}

impl SourceConfig {
    /// Returns the type name, as written in `type = "…"`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::File(_) => "file",
            SourceConfig::Syslog(_) => "syslog",
            SourceConfig::Docker(_) => "docker",
            SourceConfig::Ssh(_) => "ssh",
            SourceConfig::Journald(_) => "journald",
            SourceConfig::Stdin(_) => "stdin",
        }
    }

    /// Returns the `name` setting, if any.
    pub fn explicit_name(&self) -> Option<&str> {
        match self {
            SourceConfig::File(c) => c.name.as_deref(),
            SourceConfig::Syslog(c) => c.name.as_deref(),
            SourceConfig::Docker(c) => c.name.as_deref(),
            SourceConfig::Ssh(c) => c.name.as_deref(),
            SourceConfig::Journald(c) => c.name.as_deref(),
            SourceConfig::Stdin(c) => c.name.as_deref(),
        }
    }
}

impl SourceConfig {
    /// Checks the parse settings (`format`, `timezone`, `timestamp_format`,
    /// `timestamp_field`), so that a bad one stops the start instead of the source.
    fn check_parse_settings(&self, name: &str) -> Result<(), SourceError> {
        let (format, time) = match self {
            SourceConfig::File(c) => (c.parse.format.as_deref(), &c.parse.time),
            SourceConfig::Syslog(c) => (c.parse.format.as_deref(), &c.parse.time),
            SourceConfig::Docker(c) => (None, &c.time),
            SourceConfig::Ssh(c) => (c.parse.format.as_deref(), &c.parse.time),
            SourceConfig::Stdin(c) => (c.parse.format.as_deref(), &c.parse.time),
            SourceConfig::Journald(_) => return Ok(()),
        };
        settings::parser_config(
            name,
            &ParserConfig::default(),
            format,
            time,
            logyard_parse::Format::Auto,
        )
        .map(drop)
    }

    /// Builds the source under a name: the registry, one arm per type.
    pub fn build(&self, name: &str) -> Result<Box<dyn Source>, SourceError> {
        self.check_parse_settings(name)?;
        Ok(match self {
            SourceConfig::File(c) => Box::new(FileSource::new(name, c.clone())?),
            SourceConfig::Syslog(c) => Box::new(SyslogSource::new(name, c.clone())?),
            SourceConfig::Docker(c) => Box::new(DockerSource::new(name, c.clone())?),
            SourceConfig::Ssh(c) => Box::new(SshSource::new(name, (**c).clone())?),
            SourceConfig::Journald(c) => Box::new(JournaldSource::new(name, c.clone())?),
            SourceConfig::Stdin(c) => Box::new(StdinSource::new(name, c.clone())),
        })
    }
}

/// Builds every `[[sources]]` entry. A source without a `name` is named after its type
/// (`file`), or `file-2`, `file-3`… for later ones of the same type; names must be unique,
/// as they name checkpoint files and metric labels.
pub fn build_all(configs: &[SourceConfig]) -> Result<Vec<Box<dyn Source>>, SourceError> {
    let names = source_names(configs)?;
    configs
        .iter()
        .zip(&names)
        .map(|(c, n)| c.build(n))
        .collect()
}

/// Returns the name of each `[[sources]]` entry, as [`build_all`] gives them; an error when
/// two are the same.
pub fn source_names(configs: &[SourceConfig]) -> Result<Vec<String>, SourceError> {
    let mut names: Vec<String> = Vec::new();
    let mut per_kind: std::collections::HashMap<&str, usize> = Default::default();
    for c in configs {
        let name = match c.explicit_name() {
            Some(n) => n.to_string(),
            None => {
                let n = per_kind.entry(c.kind()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    c.kind().to_string()
                } else {
                    format!("{}-{n}", c.kind())
                }
            }
        };
        if names.contains(&name) {
            return Err(SourceError::DuplicateName(name));
        }
        names.push(name);
    }
    Ok(names)
}

/// A source running on its own thread.
pub struct RunningSource {
    /// The source's name.
    pub name: String,
    /// Its status, readable at any time.
    pub status: StatusHandle,
    thread: JoinHandle<Result<(), SourceError>>,
}

impl RunningSource {
    /// Waits for the source to stop (set `ctx.shutdown` first) and returns its result.
    pub fn join(self) -> Result<(), SourceError> {
        self.thread.join().unwrap_or_else(|_| {
            Err(SourceError::config(
                &self.name,
                "the source's thread panicked",
            ))
        })
    }

    /// Returns true when the source's thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Runs a source on a thread of its own (not a tokio worker: a source may start its own
/// runtime); its status marks it stopped, or failing with the error, when it ends.
pub fn spawn(source: Box<dyn Source>, ctx: SourceContext) -> RunningSource {
    let name = source.name().to_string();
    let status = source.status();
    let st = status.clone();
    let thread = std::thread::Builder::new()
        .name(format!("source-{name}"))
        .spawn(move || {
            let result = source.run(ctx);
            if let Err(e) = &result {
                tracing::error!(error = %e, "source stopped");
                st.error(e.to_string());
            }
            st.set_state(SourceState::Stopped);
            result
        })
        .expect("the OS refused to start a thread");
    RunningSource {
        name,
        status,
        thread,
    }
}
