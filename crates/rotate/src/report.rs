//! What a run decided and did: the run report, printed by `logyard rotate --dry-run` like
//! `logrotate -d`, and read by the server to update metrics and raise alerts.

use std::fmt;
use std::path::PathBuf;

/// The decision taken for one live file, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The rule's name.
    pub rule: String,
    /// The live file.
    pub path: PathBuf,
    /// Whether it is (or, in a dry run, would be) rotated.
    pub rotate: bool,
    /// Why, in words.
    pub reason: String,
}

/// The kind of an [`Action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// A file renamed (the live file, or an archive shifted to the next number).
    Rename,
    /// A new empty live file created.
    Create,
    /// A live file copied to its rotated name.
    Copy,
    /// A live file truncated after its copy.
    Truncate,
    /// A rotated file compressed (and the uncompressed one removed).
    Compress,
    /// An archive removed (beyond `keep`, older than `max_age`).
    Remove,
    /// A script run (prerotate, postrotate, firstaction, lastaction).
    Script,
    /// Compression left for a later run because the collector has not drained the file.
    Defer,
    /// The disk guard compressed an archive.
    GuardCompress,
    /// The disk guard removed an archive.
    GuardRemove,
}

impl ActionKind {
    /// Returns a short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Rename => "rename",
            ActionKind::Create => "create",
            ActionKind::Copy => "copy",
            ActionKind::Truncate => "truncate",
            ActionKind::Compress => "compress",
            ActionKind::Remove => "remove",
            ActionKind::Script => "script",
            ActionKind::Defer => "defer",
            ActionKind::GuardCompress => "guard-compress",
            ActionKind::GuardRemove => "guard-remove",
        }
    }
}

/// One thing done (or, in a dry run, that would be done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The rule's name.
    pub rule: String,
    /// What.
    pub kind: ActionKind,
    /// The file acted on.
    pub path: PathBuf,
    /// The destination of a rename, copy or compression.
    pub to: Option<PathBuf>,
    /// Details (sizes, the script, the reason).
    pub detail: String,
}

/// A step that failed; the message says where the data is and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The rule's name.
    pub rule: String,
    /// The file concerned.
    pub path: PathBuf,
    /// The error, with a suggestion.
    pub message: String,
}

/// Everything a run decided and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Nothing was changed on disk.
    pub dry_run: bool,
    /// One decision per live file considered.
    pub decisions: Vec<Decision>,
    /// The actions, in order.
    pub actions: Vec<Action>,
    /// The failed steps; the run went on with the other files.
    pub failures: Vec<Failure>,
    /// Disk guard findings to alert on (over budget, still over after cleanup).
    pub guard_alerts: Vec<String>,
    /// Rules whose files were all handled without failure.
    pub rules_ok: Vec<String>,
    /// Live files rotated.
    pub files_rotated: u64,
    /// Bytes of live files rotated.
    pub bytes_rotated: u64,
    /// Bytes of rotated files compressed (their uncompressed size).
    pub bytes_compressed: u64,
    /// Bytes freed on disk: removed archives plus compression savings.
    pub bytes_reclaimed: u64,
}

impl RunReport {
    /// Tells whether no step failed.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }

    pub(crate) fn act(
        &mut self,
        rule: &str,
        kind: ActionKind,
        path: impl Into<PathBuf>,
        to: Option<PathBuf>,
        detail: impl Into<String>,
    ) {
        let a = Action {
            rule: rule.to_string(),
            kind,
            path: path.into(),
            to,
            detail: detail.into(),
        };
        tracing::debug!(rule = %a.rule, kind = a.kind.as_str(), path = %a.path.display(), "{}", a.detail);
        self.actions.push(a);
    }

    pub(crate) fn fail(
        &mut self,
        rule: &str,
        path: impl Into<PathBuf>,
        message: impl Into<String>,
    ) {
        let f = Failure {
            rule: rule.to_string(),
            path: path.into(),
            message: message.into(),
        };
        tracing::warn!(rule = %f.rule, path = %f.path.display(), "{}", f.message);
        self.failures.push(f);
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let would = if self.dry_run { "would " } else { "" };
        if self.dry_run {
            writeln!(f, "dry run: nothing is changed")?;
        }
        for d in &self.decisions {
            let verdict = if d.rotate { "rotate" } else { "keep" };
            writeln!(
                f,
                "[{}] {}: {verdict}: {}",
                d.rule,
                d.path.display(),
                d.reason
            )?;
        }
        for a in &self.actions {
            write!(
                f,
                "[{}] {would}{} {}",
                a.rule,
                a.kind.as_str(),
                a.path.display()
            )?;
            if let Some(to) = &a.to {
                write!(f, " -> {}", to.display())?;
            }
            if !a.detail.is_empty() {
                write!(f, " ({})", a.detail)?;
            }
            writeln!(f)?;
        }
        for g in &self.guard_alerts {
            writeln!(f, "disk guard: {g}")?;
        }
        for x in &self.failures {
            writeln!(f, "error: [{}] {}: {}", x.rule, x.path.display(), x.message)?;
        }
        write!(
            f,
            "{} rotated bytes, {} compressed, {} reclaimed, {} failures",
            self.bytes_rotated,
            self.bytes_compressed,
            self.bytes_reclaimed,
            self.failures.len()
        )
    }
}
