//! `logyard rotate`: rotate the log files of `[[rotate]]` rules or of a logrotate
//! configuration once, as `logrotate` does.

use std::path::PathBuf;

use anyhow::Context;
use logyard_rotate::{parse_logrotate_conf, run, NoopObserver, RunOptions};

use crate::cli::RotateArgs;
use crate::config::RawConfig;

/// Runs one rotation pass; fails when a rule failed, after printing what happened.
pub fn run_once(config: RawConfig, args: RotateArgs) -> anyhow::Result<()> {
    let mut config = config;
    if let Some(data) = args.data {
        config.server.data_dir = data;
    }
    let (mut rules, settings) = config.rotation()?;
    if let Some(conf) = &args.logrotate_conf {
        rules.extend(parse_logrotate_conf(conf)?);
    }
    if rules.is_empty() {
        anyhow::bail!(
            "nothing to rotate: add [[rotate]] rules to the configuration (--config FILE) \
             or name a logrotate configuration with --logrotate-conf FILE"
        );
    }
    let state_path: PathBuf = args.state.unwrap_or(settings.state_path.clone());
    if let Some(dir) = state_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !args.dry_run {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        }
    }
    let opts = RunOptions {
        dry_run: args.dry_run,
        force: args.force,
        verbose: args.verbose || args.dry_run,
        guard: settings.guard.clone(),
        ..RunOptions::new(state_path)
    };
    let report = run(&rules, &opts, &NoopObserver)?;
    print!("{report}");
    if !report.is_success() {
        anyhow::bail!(
            "{} rotation step(s) failed; every line is still in the live file or an archive, \
             see the messages above",
            report.failures.len()
        );
    }
    Ok(())
}
