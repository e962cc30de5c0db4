//! Which files the tailer follows, and what their records are labelled with.
//!
//! The [`Tailer`](super::Tailer) asks a [`Discover`] at every poll for the live files to
//! follow, and for each followed path the `source`, the agent and the fields its records
//! get. The file source discovers by glob ([`GlobDiscover`]); the Docker source's files mode
//! lists the containers of the Docker data root and labels each log with its container.

use std::path::{Path, PathBuf};

use logyard_model::Value;

/// What the records of one followed path are labelled with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathMeta {
    /// The records' `source` (`file:/var/log/app.log`, `docker:web-1`).
    pub source: String,
    /// The agent of lines that name none.
    pub agent: String,
    /// Fields added to every record that does not carry them already.
    pub fields: Vec<(String, Value)>,
}

/// Lists the files to follow; see the module documentation.
pub(crate) trait Discover: Send {
    /// Returns the live files to follow and the compressed files to read once.
    fn expand(&mut self) -> (Vec<PathBuf>, Vec<PathBuf>);

    /// Returns the labels of a followed path (also of one restored from a checkpoint).
    fn describe(&mut self, path: &Path) -> PathMeta;

    /// Returns false for a followed path that must no longer be followed (a container whose
    /// name the filter now refuses): the tailer drops it with its checkpoint.
    fn wants(&self, path: &Path) -> bool {
        let _ = path;
        true
    }
}

/// The file source's discovery: glob patterns.
#[derive(Debug, Clone)]
pub(crate) struct GlobDiscover {
    /// The patterns of `paths`.
    pub patterns: Vec<String>,
    /// Whether compressed files matching the patterns are read once.
    pub read_gz: bool,
}

impl Discover for GlobDiscover {
    fn expand(&mut self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut live = std::collections::BTreeSet::new();
        let mut gz = std::collections::BTreeSet::new();
        for pattern in &self.patterns {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for p in paths.flatten() {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.ends_with(".gz") {
                    if self.read_gz && p.is_file() {
                        gz.insert(p);
                    }
                } else if !is_rotated_name(&name) {
                    live.insert(p);
                }
            }
        }
        (live.into_iter().collect(), gz.into_iter().collect())
    }

    fn describe(&mut self, path: &Path) -> PathMeta {
        PathMeta {
            source: format!("file:{}", path.display()),
            agent: logyard_parse::agent_from_path(path),
            fields: Vec::new(),
        }
    }
}

/// True for names of compressed files.
pub(crate) fn is_compressed(name: &str) -> bool {
    [".gz", ".zst", ".bz2", ".xz", ".zip"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// True for names that rotation gives (`app.log.1`, `app.log.1.gz`, `app.log-20240115`):
/// a glob that matches them too must not follow them as live files.
pub(crate) fn is_rotated_name(name: &str) -> bool {
    if is_compressed(name) {
        return true;
    }
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if name.rsplit_once('.').is_some_and(|(_, last)| numeric(last)) {
        return true;
    }
    name.rsplit_once('-')
        .is_some_and(|(_, tail)| numeric(tail) && tail.len() >= 8)
}
