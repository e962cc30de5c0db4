//! The SSH source: collects the logs of a remote host's Docker containers and files over
//! SSH, read-only, with an allow-list of commands and an audit log.
//!
//! `[[sources]] type = "ssh"`: see [`SshConfig`]. Every `interval` the source runs
//! `docker ps`, then `docker logs --timestamps --since <checkpoint> NAME` for each selected
//! container and `tail -c +N PATH` for each configured file, through OpenSSH's client (see
//! [`client`]). Only the commands of the [`allow`] list can be built; each one run is
//! written to the [`audit`] log. Lines delivered before are skipped at the boundary (see
//! the checkpoint module), and a position is checkpointed only after the sink acknowledged the
//! lines before it, so that neither a restart of logyard nor a connection lost in the
//! middle of an output repeats or loses a line.
//!
//! Records get `source = "ssh:<host>/<container>"` (or `ssh:<host>:<path>`), `host` the
//! host's name, and `agent` the container's name (or the file's stem) unless the line names
//! one.

pub mod allow;
pub mod audit;
mod batch;
mod checkpoint;
pub mod client;
pub mod docker;
mod error;
pub mod poll;

use std::path::{Path, PathBuf};
use std::time::Duration;

use logyard_parse::{Format, MultilineConfig, MultilineMode, Parser};
use serde::Deserialize;

pub use allow::{AllowList, Refused, RemoteCommand};
pub use audit::{AuditEntry, AuditLog};
pub use client::{Remote, RemoteError, SshTarget};
pub use poll::{PollError, PollReport, Poller};

use crate::error::SourceError;
use crate::file::StartAt;
use crate::settings::{default_batch_lines, duration, size, ParseSettings};
use crate::status::{RemoteStatus, SourceState, StatusHandle};
use crate::{Source, SourceContext};

/// The audit log's file name in the data directory.
pub const AUDIT_FILE: &str = "remote-audit.log";

/// The `[[sources]]` keys of `type = "ssh"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshConfig {
    /// The source's name (checkpoint file and metric label); the type by default.
    #[serde(default)]
    pub name: Option<String>,
    /// The host to connect to: a name or an address (required).
    pub host: String,
    /// The host's name in records and tables (default: `host`).
    #[serde(default)]
    pub host_name: Option<String>,
    /// The SSH port (default 22).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The user to log in as (default: the user running logyard).
    #[serde(default)]
    pub user: Option<String>,
    /// The private key to log in with (default: the client's default keys).
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// The known-hosts file holding the host's key (default `~/.ssh/known_hosts`).
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
    /// Container names or globs to collect; absent: every running container; `[]`: none.
    #[serde(default)]
    pub containers: Option<Vec<String>>,
    /// Remote files to collect (absolute paths, no globs); also the only files that
    /// `tail` and `cat` may read on this host.
    #[serde(default)]
    pub paths: Vec<String>,
    /// How often the host is polled (default `30s`).
    #[serde(default = "thirty_seconds", deserialize_with = "duration")]
    pub interval: Duration,
    /// Bound on connecting, banner exchange included (default `10s`).
    #[serde(default = "ten_seconds", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Bound on each command after the connection (default `60s`).
    #[serde(default = "sixty_seconds", deserialize_with = "duration")]
    pub command_timeout: Duration,
    /// Where to start in containers and files never read: `end` (default) or `beginning`.
    #[serde(default)]
    pub start_at: StartAt,
    /// Multi-line joining within one poll's output: `auto` (default), `none`, or a regex.
    #[serde(default = "default_multiline")]
    pub multiline: String,
    /// `format`, `timezone`, `timestamp_format`, `timestamp_field`.
    #[serde(flatten)]
    pub parse: ParseSettings,
    /// Records per batch handed to the sink (default 1000).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// Longer lines are cut and marked `truncated` (default: `[limits] max_line_bytes`).
    #[serde(default, deserialize_with = "opt_size")]
    pub max_line_bytes: Option<usize>,
    /// The audit log (default `<data_dir>/remote-audit.log`).
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// The OpenSSH client (default `ssh`, found on the PATH).
    #[serde(default = "default_ssh")]
    pub ssh_program: PathBuf,
    /// An ssh_config file for the client to read (default: none is read).
    #[serde(default)]
    pub ssh_config: Option<PathBuf>,
    /// Commands share one SSH connection, kept open this long after the last one (default
    /// `0s`: a connection per command).
    #[serde(default = "zero", deserialize_with = "duration")]
    pub control_persist: Duration,
    /// The folder of the shared connections' sockets (default
    /// `<data_dir>/state/ssh-control`); at most [`MAX_CONTROL_DIR`] bytes long.
    #[serde(default)]
    pub control_dir: Option<PathBuf>,
}

/// The longest `control_dir`: a UNIX socket's path holds at most 104 bytes on some
/// systems, and the client adds a 40-character name and a 17-character temporary suffix.
pub const MAX_CONTROL_DIR: usize = 46;

fn default_port() -> u16 {
    22
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}
fn zero() -> Duration {
    Duration::ZERO
}
fn default_multiline() -> String {
    "auto".into()
}
fn default_ssh() -> PathBuf {
    PathBuf::from("ssh")
}
fn opt_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    size(d).map(Some)
}

impl SshConfig {
    /// A configuration for `host` with every other key at its default.
    pub fn new(host: &str) -> SshConfig {
        SshConfig {
            name: None,
            host: host.to_string(),
            host_name: None,
            port: default_port(),
            user: None,
            identity_file: None,
            known_hosts_file: None,
            containers: None,
            paths: Vec::new(),
            interval: thirty_seconds(),
            connect_timeout: ten_seconds(),
            command_timeout: sixty_seconds(),
            start_at: StartAt::End,
            multiline: default_multiline(),
            parse: ParseSettings::default(),
            batch_lines: default_batch_lines(),
            max_line_bytes: None,
            audit_log: None,
            ssh_program: default_ssh(),
            ssh_config: None,
            control_persist: zero(),
            control_dir: None,
        }
    }

    /// Returns the host's name in records and tables.
    pub fn host_name(&self) -> &str {
        self.host_name.as_deref().unwrap_or(&self.host)
    }

    /// Checks the settings that the client and the allow-list depend on.
    pub fn validate(&self, name: &str) -> Result<AllowList, SourceError> {
        let bad = |r: String| SourceError::config(name, r);
        let word_ok = |w: &str, extra: &str| {
            !w.is_empty()
                && !w.starts_with('-')
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        };
        if !word_ok(&self.host, ".-_:") {
            return Err(bad(format!(
                "`host` {:?} is not a host name or address",
                self.host
            )));
        }
        if let Some(u) = &self.user {
            if !word_ok(u, ".-_") {
                return Err(bad(format!("`user` {u:?} is not a user name")));
            }
        }
        for (key, d) in [
            ("interval", self.interval),
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
        ] {
            if d.is_zero() {
                return Err(bad(format!("`{key}` must be longer than 0")));
            }
        }
        for c in self.containers.iter().flatten() {
            glob::Pattern::new(c)
                .map_err(|e| bad(format!("`containers`: invalid glob {c:?}: {e}")))?;
        }
        if self.batch_lines == 0 {
            return Err(bad("`batch_lines` must be at least 1".into()));
        }
        AllowList::new(&self.paths).map_err(|e| bad(format!("`paths`: {}", e.reason)))
    }

    /// Returns the folder of the control sockets when connections are shared.
    fn control_dir(&self, name: &str, data_dir: &Path) -> Result<Option<PathBuf>, SourceError> {
        if self.control_persist.is_zero() {
            return Ok(None);
        }
        let dir = self
            .control_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("state").join("ssh-control"));
        let len = dir.as_os_str().len();
        if len > MAX_CONTROL_DIR {
            return Err(SourceError::config(
                name,
                format!(
                    "the control socket folder {} is {len} bytes long, more than {MAX_CONTROL_DIR}:                      a socket's path would be too long. Set `control_dir` to a shorter folder                      (e.g. /run/logyard/ssh)",
                    dir.display()
                ),
            ));
        }
        Ok(Some(dir))
    }

    /// Builds the runner of commands on the host; `data_dir` holds the default audit log.
    pub fn remote(
        &self,
        name: &str,
        data_dir: &Path,
        max_line_bytes: usize,
    ) -> Result<Remote, SourceError> {
        let allow = self.validate(name)?;
        let target = SshTarget {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            identity_file: self.identity_file.clone(),
            known_hosts_file: self.known_hosts_file.clone(),
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            ssh_program: self.ssh_program.clone(),
            ssh_config: self.ssh_config.clone(),
            control_dir: self.control_dir(name, data_dir)?,
            control_persist: self.control_persist,
            max_line_bytes: self.max_line_bytes.unwrap_or(max_line_bytes),
        };
        let audit = AuditLog::new(
            self.audit_log
                .clone()
                .unwrap_or_else(|| data_dir.join(AUDIT_FILE)),
        );
        Ok(Remote::new(target, allow, Some(audit)))
    }
}

/// Collects a remote host's logs over SSH; see the module documentation.
pub struct SshSource {
    name: String,
    cfg: SshConfig,
    status: StatusHandle,
}

impl SshSource {
    /// Checks the configuration and builds the source.
    pub fn new(name: &str, cfg: SshConfig) -> Result<SshSource, SourceError> {
        cfg.validate(name)?;
        cfg.multiline
            .parse::<MultilineMode>()
            .map_err(|source| SourceError::Parse {
                name: name.to_string(),
                source,
            })?;
        Ok(SshSource {
            name: name.to_string(),
            cfg,
            status: StatusHandle::new(name, "ssh"),
        })
    }

    /// Builds the poller that does the work, over the context's sink and state folder (the
    /// data directory is the state folder's parent). `logyard remote save` polls it once.
    pub fn poller(&self, ctx: &SourceContext) -> Result<Poller, SourceError> {
        let mut pc = self
            .cfg
            .parse
            .parser_config(&self.name, &ctx.parser, Format::Auto)?;
        let max_line = self.cfg.max_line_bytes.unwrap_or(pc.max_line_bytes);
        pc.max_line_bytes = max_line;
        let wrap = |source| SourceError::Parse {
            name: self.name.clone(),
            source,
        };
        let parser = Parser::new(pc).map_err(wrap)?;
        let mode: MultilineMode = self.cfg.multiline.parse().map_err(wrap)?;
        let data_dir = ctx.state_dir.parent().unwrap_or(Path::new("."));
        let remote = self
            .cfg
            .remote(&self.name, data_dir, max_line)?
            .with_stop(ctx.shutdown.clone());
        // No `containers` key: every running container (no pattern); `[]`: none (no list).
        let containers = match &self.cfg.containers {
            None => Some(Vec::new()),
            Some(list) if list.is_empty() => None,
            Some(list) => Some(
                list.iter()
                    .filter_map(|c| glob::Pattern::new(c).ok())
                    .collect(),
            ),
        };
        let settings = poll::PollSettings {
            name: self.name.clone(),
            host_name: self.cfg.host_name().to_string(),
            containers,
            start_at_end: self.cfg.start_at == StartAt::End,
            multiline: MultilineConfig {
                mode,
                max_bytes: max_line.max(1 << 20),
                ..MultilineConfig::default()
            },
            batch_lines: self.cfg.batch_lines,
        };
        Poller::new(
            settings,
            remote,
            parser,
            ctx.sink.clone(),
            &ctx.state_dir,
            self.status.clone(),
        )
    }
}

impl Source for SshSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "ssh"
    }

    fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let mut poller = self.poller(&ctx)?;
        let mut remote = RemoteStatus {
            host: self.cfg.host_name().to_string(),
            paths: poller.path_status(),
            ..RemoteStatus::default()
        };
        self.status.set_remote(remote.clone());
        self.status.set_state(SourceState::Running);
        let mut was_reachable = true;
        while !ctx.shutdown.is_triggered() {
            match poller.poll(None) {
                Ok(report) => {
                    if !was_reachable {
                        tracing::info!(source = %self.name, host = %self.cfg.host, "remote host reachable again");
                    }
                    was_reachable = true;
                    remote.reachable = true;
                    remote.polls_ok += 1;
                    remote.last_poll = Some(logyard_model::format_rfc3339(logyard_model::now_ns()));
                    remote.containers = report.containers;
                    for e in &report.errors {
                        tracing::warn!(source = %self.name, error = %e, "remote read failed");
                        self.status.input_error(e.clone());
                    }
                    self.status.set_state(SourceState::Running);
                }
                Err(e) => {
                    if ctx.shutdown.is_triggered() {
                        break;
                    }
                    let reached = matches!(&e, PollError::Remote(r) if !r.is_connection())
                        || matches!(e, PollError::Sink(_) | PollError::Checkpoint(_));
                    if !reached {
                        remote.reachable = false;
                        remote.polls_failed += 1;
                    }
                    if was_reachable || reached {
                        tracing::warn!(source = %self.name, host = %self.cfg.host, error = %e, "remote poll failed; retrying every interval");
                    } else {
                        tracing::debug!(source = %self.name, error = %e, "remote poll failed again");
                    }
                    was_reachable = reached;
                    self.status.error(e.to_string());
                }
            }
            remote.paths = poller.path_status();
            self.status.set_remote(remote.clone());
            ctx.shutdown.wait_timeout(self.cfg.interval);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_refuses_unknown_ones() {
        let c: crate::SourceConfig = toml::from_str(
            "type = \"ssh\"\nname = \"prod\"\nhost = \"10.0.0.5\"\nhost_name = \"prod-1\"\nport = 2222\n\
             user = \"deploy\"\nidentity_file = \"/k/id\"\nknown_hosts_file = \"/k/known\"\n\
             containers = [\"web-*\"]\npaths = [\"/var/log/app.log\"]\ninterval = \"5s\"\n\
             connect_timeout = \"2s\"\ncommand_timeout = \"30s\"\nstart_at = \"beginning\"\n",
        )
        .unwrap();
        let crate::SourceConfig::Ssh(s) = &c else {
            panic!("not ssh: {c:?}")
        };
        assert_eq!(s.port, 2222);
        assert_eq!(s.host_name(), "prod-1");
        assert_eq!(s.interval, Duration::from_secs(5));
        assert!(c.build("prod").is_ok());
        let err = toml::from_str::<crate::SourceConfig>("type = \"ssh\"\nhost = \"h\"\nhots = 1\n")
            .unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
    }

    #[test]
    fn refuses_bad_settings() {
        for (key, value) in [
            ("host", "-oProxyCommand=x"),
            ("host", "a b"),
            ("user", "-l"),
        ] {
            let mut c = SshConfig::new("h");
            match key {
                "host" => c.host = value.into(),
                _ => c.user = Some(value.into()),
            }
            assert!(SshSource::new("s", c).is_err(), "{key}={value} accepted");
        }
        let mut c = SshConfig::new("h");
        c.paths = vec!["/var/log/*.log".into()];
        assert!(SshSource::new("s", c).is_err());
        let mut c = SshConfig::new("h");
        c.interval = Duration::ZERO;
        assert!(SshSource::new("s", c).is_err());
    }

    #[test]
    fn shares_connections_only_through_a_short_private_folder() {
        let mut c = SshConfig::new("h");
        assert!(c
            .remote("s", Path::new("/d"), 1024)
            .unwrap()
            .target
            .control_dir
            .is_none());
        c.control_persist = Duration::from_secs(60);
        let r = c.remote("s", Path::new("/var/lib/logyard"), 1024).unwrap();
        assert_eq!(
            r.target.control_dir.as_deref(),
            Some(Path::new("/var/lib/logyard/state/ssh-control"))
        );
        let long = Path::new("/srv/a-rather-long-folder-for-the-data/of-logyard");
        let err = c.remote("s", long, 1024).unwrap_err().to_string();
        assert!(err.contains("control_dir"), "{err}");
        c.control_dir = Some("/run/logyard/ssh".into());
        assert!(c.remote("s", long, 1024).is_ok());
    }
}
