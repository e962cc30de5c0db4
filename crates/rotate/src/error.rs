//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading rules or rotating files.
///
/// Messages are lowercase, name the file (and line, for configuration) and end with what to
/// do about it.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// A logrotate configuration file that does not parse.
    #[error("{}:{line}: {message}; {hint}", file.display())]
    Syntax {
        /// The configuration file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
        /// What to write instead.
        hint: String,
    },
    /// A logrotate directive that logyard does not implement.
    #[error("{}:{line}: directive {directive:?} is not supported; {hint}", file.display())]
    Unsupported {
        /// The configuration file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The directive as written.
        directive: String,
        /// What to do instead.
        hint: String,
    },
    /// A `[[rotate]]` rule (or a built rule) with a bad value.
    #[error("rotate rule {rule}: {message}")]
    Config {
        /// The rule, named by its first path.
        rule: String,
        /// What is wrong and what to write.
        message: String,
    },
    /// A file operation that failed.
    #[error("cannot {action} {}: {source}; {hint}", path.display())]
    Io {
        /// What was being done ("rename", "compress", …).
        action: String,
        /// The file concerned.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
        /// What to do about it; says where the data is when a step failed half-way.
        hint: String,
    },
    /// A rotation step that failed for a reason other than I/O.
    #[error("{}: {message}", path.display())]
    Rotation {
        /// The log file concerned.
        path: PathBuf,
        /// What happened, where the data is and what to do.
        message: String,
    },
    /// The state file cannot be read or written.
    #[error("state file {}: {message}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

impl RotateError {
    /// Builds an [`RotateError::Io`] error.
    pub fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
        hint: impl Into<String>,
    ) -> RotateError {
        RotateError::Io {
            action: action.into(),
            path: path.into(),
            source,
            hint: hint.into(),
        }
    }
}
