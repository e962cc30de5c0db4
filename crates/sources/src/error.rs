//! The crate's error types.

use std::path::PathBuf;

/// An error building or running a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A setting of a `[[sources]]` entry is invalid.
    #[error("source {name:?}: {reason}")]
    Config {
        /// The source's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Two sources have the same name (their checkpoints would collide).
    #[error("two sources are named {0:?}: give each `[[sources]]` entry its own `name`")]
    DuplicateName(String),
    /// A parser setting does not compile.
    #[error("source {name:?}: {source}")]
    Parse {
        /// The source's name.
        name: String,
        /// The parser's error.
        source: logyard_parse::ParseError,
    },
    /// A file or socket operation failed in a way the source cannot go on from.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`bind`, `read`, `write checkpoints to`, …).
        action: &'static str,
        /// The path or address concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl SourceError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        SourceError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(name: &str, reason: impl Into<String>) -> Self {
        SourceError::Config {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}
