//! The file source: follows files by glob, survives rotation, and commits a checkpoint per
//! file after each batch the sink acknowledged.
//!
//! `[[sources]] type = "file"`: see [`FileConfig`] for the keys. A tailer does one look
//! at every path per poll; the run loop polls when `notify` reports a change in a watched
//! folder, and every `poll_interval` in any case (or only then, with `watch = "poll"`).

pub(crate) mod checkpoint;
pub(crate) mod discover;
mod fingerprint;
mod gz;
mod reader;
mod rotation;
mod stream;
mod tailer;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use logyard_parse::{Format, MultilineConfig, MultilineMode};
use serde::Deserialize;

use crate::error::SourceError;
use crate::settings::{
    default_batch_lines, default_max_batch_bytes, duration, size, ParseSettings,
};
use crate::status::{SourceState, StatusHandle};
use crate::{Source, SourceContext};

pub(crate) use discover::{Discover, GlobDiscover, PathMeta};
pub(crate) use tailer::{Halt, Tailer};

/// Where to start in a file seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// At its end: only lines written from now on (the default of the Docker and SSH
    /// sources).
    #[default]
    End,
    /// At its start: everything it holds (the default of the file source).
    Beginning,
}

/// How changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify (through the `notify` crate), with a look every `poll_interval` as well.
    #[default]
    Notify,
    /// A look every `poll_interval` only (network file systems, containers without inotify).
    Poll,
}

/// The `[[sources]]` keys of `type = "file"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The source's name (checkpoint file and metric label); the type by default.
    #[serde(default)]
    pub name: Option<String>,
    /// Glob patterns of the files to follow (`/var/log/*.log`); new files are picked up.
    pub paths: Vec<String>,
    /// Where to start in files seen for the first time: `beginning` (default) or `end`.
    #[serde(default = "beginning")]
    pub start_at: StartAt,
    /// A file never seen before whose last change is older than this is followed from its
    /// end (its old lines are skipped); `0s` reads every file whatever its age (default
    /// `1d`).
    #[serde(default = "one_day", deserialize_with = "duration")]
    pub ignore_older: Duration,
    /// Multi-line joining: `auto` (stack traces, the default), `none`, or a regex that
    /// matches the first line of each record.
    #[serde(default = "default_multiline")]
    pub multiline: String,
    /// `format`, `timezone`, `timestamp_format`, `timestamp_field`.
    #[serde(flatten)]
    pub parse: ParseSettings,
    /// `notify` (default) or `poll`.
    #[serde(default)]
    pub watch: WatchMode,
    /// How often every file is looked at, whatever `watch` says (default `1s`).
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// A last line without its newline is given out after this long (default `1s`).
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub partial_timeout: Duration,
    /// A multi-line record is given out when no line came for this long (default `2s`).
    #[serde(default = "two_seconds", deserialize_with = "duration")]
    pub multiline_timeout: Duration,
    /// A rotated file is read until it stayed unchanged this long (default `5s`).
    #[serde(default = "five_seconds", deserialize_with = "duration")]
    pub rotate_wait: Duration,
    /// Longer lines are cut and marked `truncated` (default: `[limits] max_line_bytes`).
    #[serde(default, deserialize_with = "opt_size")]
    pub max_line_bytes: Option<usize>,
    /// Records per batch handed to the sink (default 1000).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// While the sink is still writing the previous batch, the next one grows past
    /// `batch_lines` up to this many bytes of lines (default `8MiB`).
    #[serde(default = "default_max_batch_bytes", deserialize_with = "size")]
    pub max_batch_bytes: usize,
    /// Reads compressed rotated files (`app.log.1.gz`) matching `paths` once (default false).
    #[serde(default)]
    pub read_gz: bool,
}

fn beginning() -> StartAt {
    StartAt::Beginning
}
fn one_day() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_multiline() -> String {
    "auto".into()
}
fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn two_seconds() -> Duration {
    Duration::from_secs(2)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn opt_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    size(d).map(Some)
}

impl FileConfig {
    /// A configuration following `paths` with every other key at its default.
    pub fn new(paths: &[&str]) -> FileConfig {
        FileConfig {
            name: None,
            paths: paths.iter().map(|p| p.to_string()).collect(),
            start_at: StartAt::Beginning,
            ignore_older: one_day(),
            multiline: default_multiline(),
            parse: ParseSettings::default(),
            watch: WatchMode::Notify,
            poll_interval: one_second(),
            partial_timeout: one_second(),
            multiline_timeout: two_seconds(),
            rotate_wait: five_seconds(),
            max_line_bytes: None,
            batch_lines: default_batch_lines(),
            max_batch_bytes: default_max_batch_bytes(),
            read_gz: false,
        }
    }
}

/// Settings resolved from a [`FileConfig`] and the context.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub start_at_end: bool,
    /// A path never read before whose file changed longer ago than this is read from its
    /// end; `None` reads files of any age.
    pub ignore_older: Option<Duration>,
    pub max_line_bytes: usize,
    pub partial_timeout: Duration,
    pub multiline: MultilineConfig,
    pub batch_lines: usize,
    /// A batch grows up to this many bytes of lines while the previous one is in flight.
    pub max_batch_bytes: usize,
    pub rotate_wait: Duration,
    /// A path without a file is forgotten after this long (once nothing is left to read).
    pub forget_after: Duration,
    /// A path read from its start for the first time has its rotated files read first (the
    /// Docker source: a container's older logs); file sources follow live names only.
    pub read_older_generations: bool,
    /// Lines are Docker json-file lines: the parts of a line the daemon split are delivered
    /// together, and multi-line joining is off.
    pub wrapped: bool,
}

/// Follows files by glob; see the module documentation.
pub struct FileSource {
    name: String,
    cfg: FileConfig,
    multiline: MultilineMode,
    status: StatusHandle,
}

impl FileSource {
    /// Checks the configuration and builds the source.
    pub fn new(name: &str, cfg: FileConfig) -> Result<FileSource, SourceError> {
        if cfg.paths.is_empty() {
            return Err(SourceError::config(
                name,
                "`paths` is empty: give at least one glob",
            ));
        }
        for p in &cfg.paths {
            glob::Pattern::new(p)
                .map_err(|e| SourceError::config(name, format!("invalid glob {p:?}: {e}")))?;
        }
        let multiline =
            cfg.multiline
                .parse::<MultilineMode>()
                .map_err(|source| SourceError::Parse {
                    name: name.to_string(),
                    source,
                })?;
        Ok(FileSource {
            name: name.to_string(),
            cfg,
            multiline,
            status: StatusHandle::new(name, "file"),
        })
    }

    /// Builds the tailer that does the work (tests drive it poll by poll).
    pub(crate) fn tailer(&self, ctx: &SourceContext) -> Result<Tailer, SourceError> {
        let parser = self
            .cfg
            .parse
            .parser_config(&self.name, &ctx.parser, Format::Auto)?;
        let max_line_bytes = self.cfg.max_line_bytes.unwrap_or(parser.max_line_bytes);
        let mut parser = parser;
        parser.max_line_bytes = max_line_bytes;
        let settings = Settings {
            start_at_end: self.cfg.start_at == StartAt::End,
            ignore_older: Some(self.cfg.ignore_older).filter(|d| !d.is_zero()),
            max_line_bytes,
            partial_timeout: self.cfg.partial_timeout,
            multiline: MultilineConfig {
                mode: self.multiline.clone(),
                timeout_ns: self.cfg.multiline_timeout.as_nanos() as i64,
                max_bytes: max_line_bytes.max(1 << 20),
                ..MultilineConfig::default()
            },
            batch_lines: self.cfg.batch_lines.max(1),
            max_batch_bytes: self.cfg.max_batch_bytes,
            rotate_wait: self.cfg.rotate_wait,
            forget_after: stream::FORGET_AFTER,
            read_older_generations: false,
            wrapped: false,
        };
        let discover = GlobDiscover {
            patterns: self.cfg.paths.clone(),
            read_gz: self.cfg.read_gz,
        };
        Tailer::new(
            &self.name,
            settings,
            Box::new(discover),
            parser,
            &ctx.host,
            ctx.sink.clone(),
            &ctx.state_dir,
            self.status.clone(),
            ctx.shutdown.clone(),
        )
    }

    /// Starts a watcher on the folders of the globs; `None` when inotify is not available.
    fn watcher(&self, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher as _;
        let mut w = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .map_err(
            |e| tracing::warn!(source = %self.name, error = %e, "inotify unavailable; polling"),
        )
        .ok()?;
        for p in &self.cfg.paths {
            let (dir, recursive) = watch_root(p);
            let mode = if recursive {
                notify::RecursiveMode::Recursive
            } else {
                notify::RecursiveMode::NonRecursive
            };
            if let Err(e) = w.watch(&dir, mode) {
                tracing::debug!(source = %self.name, dir = %dir.display(), error = %e, "not watched; polling");
            }
        }
        Some(w)
    }
}

/// The folder to watch for a glob: its longest prefix without glob characters.
fn watch_root(pattern: &str) -> (PathBuf, bool) {
    let mut dir = PathBuf::new();
    let mut recursive = false;
    let comps: Vec<&str> = pattern.split('/').collect();
    for (i, c) in comps.iter().enumerate() {
        if c.contains(['*', '?', '[', '{']) || i + 1 == comps.len() {
            recursive = comps[i..].len() > 1;
            break;
        }
        dir.push(if c.is_empty() { "/" } else { c });
    }
    if dir.as_os_str().is_empty() {
        dir.push(".");
    }
    (dir, recursive)
}

impl Source for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let mut tailer = self.tailer(&ctx)?;
        let (tx, rx) = mpsc::channel();
        let _watcher = match self.cfg.watch {
            WatchMode::Notify => self.watcher(tx),
            WatchMode::Poll => None,
        };
        self.status.set_state(SourceState::Running);
        let mut backoff = Duration::from_millis(100);
        while !ctx.shutdown.is_triggered() {
            match tailer.poll() {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    self.status.set_state(SourceState::Running);
                }
                Err(Halt::Shutdown) => break,
                Err(Halt::Sink(text)) => {
                    // Nothing after the last acknowledged batch was committed: wait, then
                    // read it again (the sink's backpressure or outage stops reading).
                    tracing::warn!(source = %self.name, error = %text, "sink failed; retrying");
                    ctx.shutdown.wait_timeout(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            let wait = if tailer.has_unread() {
                Duration::ZERO
            } else if tailer.has_pending() {
                self.cfg.poll_interval.min(Duration::from_millis(200))
            } else {
                self.cfg.poll_interval
            };
            wait_for_change(&rx, &ctx, wait);
        }
        tailer.save_checkpoint();
        Ok(())
    }
}

/// Waits until a file event, the stop flag or the timeout, whichever comes first.
fn wait_for_change(rx: &mpsc::Receiver<()>, ctx: &SourceContext, wait: Duration) {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || ctx.shutdown.is_triggered() {
            return;
        }
        match rx.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(()) => {
                // Let a burst of events settle, then read once.
                std::thread::sleep(Duration::from_millis(10));
                while rx.try_recv().is_ok() {}
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                ctx.shutdown.wait_timeout(left);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
