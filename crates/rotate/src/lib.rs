//! logyard-rotate: logrotate's job for the files applications write, done safely.
//!
//! It sits beside the data flow (`sources → parse → pipeline → store`): it keeps the log
//! files on disk rotated and bounded, shares the configuration file and the metrics, and
//! tells the file collector about renames so no line is lost.
//!
//! - Rules come from `[[rotate]]` tables of `logyard.toml` ([`RotateRuleConfig`]) or from
//!   logrotate's own syntax ([`parse_logrotate_conf`]); both build a [`RotateRule`].
//! - [`run()`] rotates what is due (size, age judged from the state file, or `force`), by
//!   rename + create or copy + truncate, shifts `.1 .2 …` or writes dated names, compresses
//!   with gzip or zstd (verified before the original is removed), keeps N, drops archives past
//!   `max_age`, applies the [`DiskGuard`] and returns a [`RunReport`]. `dry_run` decides and
//!   reports without changing anything, like `logrotate -d`.
//! - [`Daemon`] runs that every interval inside the server; a [`RotationObserver`] hears about
//!   renames and is asked to drain a rotated file before it is compressed.
//! - [`RotateMetrics`] counts what the runs did.
//!
//! ```
//! use logyard_rotate::{parse_logrotate_str, run, NoopObserver, RunOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = dir.path().join("app.log");
//! std::fs::write(&log, "one line\n")?;
//! let conf = format!("{} {{\n  size 1\n  rotate 3\n  compress\n}}\n", log.display());
//! let rules = parse_logrotate_str(&conf, &dir.path().join("logrotate.conf"))?;
//! let opts = RunOptions::new(dir.path().join("state.json"));
//! let report = run(&rules, &opts, &NoopObserver)?;
//! assert!(report.is_success());
//! assert!(dir.path().join("app.log.1.gz").is_file());
//! # Ok(()) }
//! ```

mod compress;
mod config;
mod daemon;
mod disk;
mod error;
mod guard;
mod live;
mod logrotate_conf;
mod metrics;
mod names;
mod observer;
mod options;
mod plan;
mod report;
mod rule;
mod run;
mod state;
mod users;

pub use compress::{open_decoder, read_archive};
pub use config::{
    CreateConfig, CreateSpecConfig, RotateRuleConfig, RotateSettingsConfig, SizeValue,
};
pub use daemon::{AlertSink, Daemon, DaemonHandle, DaemonOptions, RotationAlert, RotationTask};
pub use disk::{filesystem_usage, DiskGuard, FsUsage};
pub use error::RotateError;
pub use logrotate_conf::{parse_logrotate_conf, parse_logrotate_str};
pub use metrics::RotateMetrics;
pub use observer::{NoopObserver, RotationObserver};
pub use options::RunOptions;
pub use plan::run;
pub use report::{Action, ActionKind, Decision, Failure, RunReport};
pub use rule::{
    parse_duration, parse_size, Compression, CreateSpec, DateExt, Interval, Method, RotateRule,
    Scripts,
};
pub use state::{FileState, State, StateLock, STATE_VERSION};
