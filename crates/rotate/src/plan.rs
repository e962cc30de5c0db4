//! A run over a set of rules: expand paths, decide which files are due (and say why), run
//! the scripts in logrotate's order, rotate, and record the state.

use std::collections::BTreeSet;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Datelike, Local, Timelike};

use crate::compress::Budget;
use crate::error::RotateError;
use crate::guard;
use crate::names::Names;
use crate::observer::RotationObserver;
use crate::options::RunOptions;
use crate::report::{ActionKind, Decision, RunReport};
use crate::rule::{Interval, RotateRule};
use crate::run::{finish, rotate_file, unix_secs, Ctx};
use crate::state::{FileState, State, StateLock};

/// Runs every rule once: rotates the files that are due, compresses, cleans up, applies the
/// disk guard and saves the state.
///
/// Failures of single files are listed in [`RunReport::failures`] and the run goes on with
/// the other files; an `Err` means the state file could not be locked, read or written.
pub fn run(
    rules: &[RotateRule],
    opts: &RunOptions,
    observer: &dyn RotationObserver,
) -> Result<RunReport, RotateError> {
    let _lock = if opts.dry_run {
        None
    } else {
        Some(StateLock::acquire(&opts.state_path)?)
    };
    let mut state = State::load(&opts.state_path)?;
    let loaded = state.clone();
    let mut ctx = Ctx {
        opts,
        observer,
        report: RunReport {
            dry_run: opts.dry_run,
            ..RunReport::default()
        },
        budget: Budget {
            remaining: opts.write_budget,
        },
    };
    for rule in rules {
        run_rule(rule, &mut state, &mut ctx);
    }
    if let Some(g) = &opts.guard {
        guard::enforce(rules, g, &mut ctx);
    }
    if !opts.dry_run && state != loaded {
        state.save(&opts.state_path)?;
    }
    Ok(ctx.report)
}

fn run_rule(rule: &RotateRule, state: &mut State, ctx: &mut Ctx<'_>) {
    let failures_before = ctx.report.failures.len();
    let now = unix_secs(ctx.opts.now);
    let mut due = Vec::new();
    for (path, meta) in expand(rule, ctx) {
        let key = path.to_string_lossy().into_owned();
        let last = state.files.get(&key).map(|s| s.last_rotated);
        let (rotate, reason) = decide(rule, &meta, last, ctx.opts);
        if last.is_none() {
            state.files.insert(key, FileState { last_rotated: now });
        }
        if ctx.opts.verbose {
            tracing::info!(rule = %rule.name, path = %path.display(), rotate, "{reason}");
        } else {
            tracing::debug!(rule = %rule.name, path = %path.display(), rotate, "{reason}");
        }
        ctx.report.decisions.push(Decision {
            rule: rule.name.clone(),
            path: path.clone(),
            rotate,
            reason,
        });
        if rotate {
            due.push((path, meta));
        }
    }
    if !due.is_empty() {
        rotate_due(rule, due, state, ctx);
    }
    if ctx.report.failures.len() == failures_before {
        ctx.report.rules_ok.push(rule.name.clone());
    }
}

fn rotate_due(
    rule: &RotateRule,
    due: Vec<(PathBuf, Metadata)>,
    state: &mut State,
    ctx: &mut Ctx<'_>,
) {
    let s = &rule.scripts;
    let all = rule.paths.join(" ");
    let rule_path = PathBuf::from(&rule.name);
    if let Some(cmd) = &s.firstaction {
        if !script(rule, "firstaction", cmd, &all, &rule_path, ctx) {
            return;
        }
    }
    if s.shared {
        if let Some(cmd) = &s.prerotate {
            if !script(rule, "prerotate", cmd, &all, &rule_path, ctx) {
                return;
            }
        }
    }
    let mut pending = Vec::new();
    for (path, meta) in due {
        let arg = path.to_string_lossy().into_owned();
        if !s.shared {
            if let Some(cmd) = &s.prerotate {
                if !script(rule, "prerotate", cmd, &arg, &path, ctx) {
                    continue;
                }
            }
        }
        match rotate_file(rule, &path, &meta, ctx) {
            Ok(p) => {
                state.files.insert(
                    arg.clone(),
                    FileState {
                        last_rotated: unix_secs(ctx.opts.now),
                    },
                );
                if !s.shared {
                    if let Some(cmd) = &s.postrotate {
                        script(rule, "postrotate", cmd, &arg, &path, ctx);
                    }
                }
                pending.push(p);
            }
            Err(e) => ctx.report.fail(&rule.name, &path, e.to_string()),
        }
    }
    if s.shared && !pending.is_empty() {
        if let Some(cmd) = &s.postrotate {
            script(rule, "postrotate", cmd, &all, &rule_path, ctx);
        }
    }
    for p in pending {
        finish(rule, p, ctx);
    }
    if let Some(cmd) = &s.lastaction {
        script(rule, "lastaction", cmd, &all, &rule_path, ctx);
    }
}

/// Runs `sh -c cmd logrotate_script arg`; records a failure when it does not exit 0.
fn script(
    rule: &RotateRule,
    which: &str,
    cmd: &str,
    arg: &str,
    path: &Path,
    ctx: &mut Ctx<'_>,
) -> bool {
    ctx.report.act(
        &rule.name,
        ActionKind::Script,
        path,
        None,
        format!("{which}: {}", cmd.trim()),
    );
    if ctx.opts.dry_run {
        return true;
    }
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .arg("logrotate_script")
        .arg(arg)
        .output();
    let problem = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let err = err.trim();
            let tail: String = err
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!(
                "{} ({})",
                o.status,
                if tail.is_empty() { "no stderr" } else { &tail }
            )
        }
        Err(e) => format!("cannot start /bin/sh: {e}"),
    };
    let consequence = match which {
        "firstaction" => "no file of this rule was rotated",
        "prerotate" => "the file was not rotated",
        _ => "the rotation itself is done and no line was lost; run the command by hand if the application must reopen its log",
    };
    ctx.report.fail(
        &rule.name,
        path,
        format!("{which} script failed: {problem}; {consequence}"),
    );
    false
}

/// The regular files the rule's paths name, each once; reports missing files and paths that
/// cannot be rotated.
fn expand(rule: &RotateRule, ctx: &mut Ctx<'_>) -> Vec<(PathBuf, Metadata)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for pat in &rule.paths {
        let is_glob = pat.contains(['*', '?', '[']);
        let candidates: Vec<PathBuf> = if is_glob {
            match glob::glob(pat) {
                Ok(paths) => paths.filter_map(Result::ok).collect(),
                Err(_) => Vec::new(),
            }
        } else {
            vec![PathBuf::from(pat)]
        };
        if candidates.is_empty() && !rule.missing_ok {
            ctx.report.fail(
                &rule.name,
                pat,
                "no file matches; fix the pattern, or set missingok if the files come and go",
            );
        }
        for p in candidates {
            match fs::symlink_metadata(&p) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !rule.missing_ok {
                        ctx.report.fail(
                            &rule.name,
                            &p,
                            "does not exist; fix the path, or set missingok if the file comes and goes",
                        );
                    } else {
                        ctx.report.decisions.push(Decision {
                            rule: rule.name.clone(),
                            path: p,
                            rotate: false,
                            reason: "missing (missingok)".into(),
                        });
                    }
                }
                Err(e) => ctx.report.fail(
                    &rule.name,
                    &p,
                    format!("cannot stat it: {e}; check the permissions of its directory"),
                ),
                Ok(m) if m.is_dir() => {
                    if !is_glob {
                        ctx.report.fail(
                            &rule.name,
                            &p,
                            format!(
                                "is a directory, not a log file; list its files instead, as in {}/*.log",
                                p.display()
                            ),
                        );
                    }
                }
                Ok(m) if m.file_type().is_symlink() => ctx.report.fail(
                    &rule.name,
                    &p,
                    "is a symbolic link and is not rotated (a link can point anywhere); name its target instead",
                ),
                Ok(m) if !m.is_file() => ctx.report.fail(
                    &rule.name,
                    &p,
                    "is not a regular file (a device, socket or fifo); remove it from the rule",
                ),
                Ok(m) => {
                    if seen.insert(p.clone()) {
                        out.push((p, m));
                    }
                }
            }
        }
    }
    // A broad glob (`dir/*`) also matches the archives of the files it matches: drop them.
    let all: Vec<PathBuf> = out.iter().map(|(p, _)| p.clone()).collect();
    let date_format = rule.date_ext.as_ref().map(|d| d.format.as_str());
    out.retain(|(p, _)| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        !all.iter().any(|o| {
            o != p
                && o.parent() == p.parent()
                && name
                    .as_deref()
                    .is_some_and(|n| Names::new(rule, o).is_archive_name(n, date_format))
        })
    });
    out
}

/// Decides whether a file is due, and why.
pub(crate) fn decide(
    rule: &RotateRule,
    meta: &Metadata,
    last: Option<i64>,
    opts: &RunOptions,
) -> (bool, String) {
    let size = meta.len();
    if size == 0 && !rule.if_empty {
        return (
            false,
            "empty, and empty files are not rotated (notifempty)".into(),
        );
    }
    if opts.force {
        return (true, "forced".into());
    }
    if let Some(max) = rule.max_size {
        if size > max {
            return (true, format!("size {size} is above maxsize {max}"));
        }
    }
    if let Some(s) = rule.size {
        if size >= s {
            return (true, format!("size {size} reached {s}"));
        }
    }
    let mut why = match rule.size {
        Some(s) => format!("size {size} is below {s}"),
        None => format!("size {size}"),
    };
    if let Some(iv) = rule.every {
        let now = unix_secs(opts.now);
        match last {
            None => why.push_str("; first seen now, its age counts from this run"),
            Some(l) if interval_passed(iv, l, now) => {
                if let Some(min) = rule.min_size {
                    if size < min {
                        return (
                            false,
                            format!(
                                "{iv:?} interval passed but size {size} is below minsize {min}"
                            ),
                        );
                    }
                }
                return (
                    true,
                    format!(
                        "{iv:?} interval passed since the last rotation at {}",
                        show(l)
                    ),
                );
            }
            Some(l) => why.push_str(&format!(
                "; {iv:?} interval not passed since the last rotation at {}",
                show(l)
            )),
        }
    }
    (false, why)
}

fn local(secs: i64) -> DateTime<Local> {
    DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .with_timezone(&Local)
}

fn show(secs: i64) -> String {
    local(secs).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Tells whether `iv` has passed between `last` and `now` (seconds), with logrotate's
/// calendar rules for hourly, daily, weekly, monthly and yearly.
pub(crate) fn interval_passed(iv: Interval, last: i64, now: i64) -> bool {
    if now < last {
        return false;
    }
    let (l, n) = (local(last), local(now));
    match iv {
        Interval::Every(d) => (now - last) as u64 >= d.as_secs(),
        Interval::Hourly => (l.date_naive(), l.hour()) != (n.date_naive(), n.hour()),
        Interval::Daily => l.date_naive() != n.date_naive(),
        Interval::Weekly => {
            n.weekday().num_days_from_sunday() < l.weekday().num_days_from_sunday()
                || now - last > 7 * 86_400
        }
        Interval::Monthly => (l.year(), l.month()) != (n.year(), n.month()),
        Interval::Yearly => l.year() != n.year(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calendar_intervals() {
        let day = 86_400;
        let t = 1_705_312_800; // 2024-01-15 10:00 UTC, a Monday
        assert!(interval_passed(
            Interval::Every(Duration::from_secs(60)),
            t,
            t + 60
        ));
        assert!(!interval_passed(
            Interval::Every(Duration::from_secs(60)),
            t,
            t + 59
        ));
        assert!(interval_passed(Interval::Daily, t, t + day));
        assert!(!interval_passed(Interval::Daily, t, t + 60));
        assert!(interval_passed(Interval::Weekly, t, t + 8 * day));
        assert!(interval_passed(Interval::Monthly, t, t + 31 * day));
        assert!(!interval_passed(Interval::Yearly, t, t + 31 * day));
        assert!(!interval_passed(Interval::Daily, t, t - day));
    }
}
