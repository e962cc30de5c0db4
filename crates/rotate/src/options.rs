//! How a run behaves: [`RunOptions`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::disk::DiskGuard;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Decide and report, change nothing (like `logrotate -d`); the state file is not written.
    pub dry_run: bool,
    /// Rotate every file regardless of its triggers (like `logrotate --force`).
    pub force: bool,
    /// Log each decision at info level instead of debug.
    pub verbose: bool,
    /// The JSON state file (last rotation of each file).
    pub state_path: PathBuf,
    /// The time of the run; tests set it to drive time triggers.
    pub now: SystemTime,
    /// How long to wait for the collector to drain a renamed file before compressing it.
    pub drain_timeout: Duration,
    /// The disk guard, checked after the rotations.
    pub guard: Option<DiskGuard>,
    /// Stop writing (as with a full disk) after this many bytes of copies and archives.
    pub write_budget: Option<u64>,
}

impl RunOptions {
    /// Returns options for a real run now, with the state at `state_path`.
    pub fn new(state_path: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            dry_run: false,
            force: false,
            verbose: false,
            state_path: state_path.into(),
            now: SystemTime::now(),
            drain_timeout: Duration::from_secs(10),
            guard: None,
            write_budget: None,
        }
    }
}
