//! Normalised severity levels.

use std::fmt;
use std::str::FromStr;

/// A normalised severity, ordered from the least to the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Finer than debug.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that did not stop the work.
    Warning,
    /// An operation failed.
    Error,
    /// The service or a large part of it cannot work (FATAL, EMERG, ALERT, CRIT, PANIC, SEVERE).
    Critical,
}

/// The error of [`Level::from_str`]: the text is not a level name logyard knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?}: expected one of TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL")]
pub struct ParseLevelError(pub String);

impl Level {
    /// Every level, from the least to the most severe.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// Returns the canonical upper-case name (`WARNING`, not `WARN`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// Returns the level's rank, 0 for TRACE up to 5 for CRITICAL; the inverse of [`Level::from_rank`].
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// Returns the level of a rank produced by [`Level::rank`].
    pub fn from_rank(rank: u8) -> Option<Level> {
        Level::ALL.get(rank as usize).copied()
    }

    /// Normalises a level name case-insensitively: `warn` → WARNING, `fatal`/`emerg`/`alert`/
    /// `crit`/`panic`/`severe` → CRITICAL, `err` → ERROR, single letters `E W I D T`.
    pub fn normalize(name: &str) -> Option<Level> {
        let name = name.trim();
        if name.len() > 16 {
            return None;
        }
        let upper = name.to_ascii_uppercase();
        Some(match upper.as_str() {
            "TRACE" | "T" | "FINEST" | "FINER" => Level::Trace,
            "DEBUG" | "D" | "DBG" | "FINE" => Level::Debug,
            "INFO" | "I" | "INF" | "INFORMATION" | "NOTICE" | "NOTE" => Level::Info,
            "WARNING" | "WARN" | "W" | "WRN" => Level::Warning,
            "ERROR" | "ERR" | "E" | "ERRO" => Level::Error,
            "CRITICAL" | "CRIT" | "FATAL" | "F" | "C" | "EMERG" | "EMERGENCY" | "ALERT"
            | "PANIC" | "SEVERE" | "FAILURE" => Level::Critical,
            _ => return None,
        })
    }

    /// Maps a syslog severity (0 emergency … 7 debug) to a level.
    pub fn from_syslog_severity(severity: u8) -> Option<Level> {
        Some(match severity {
            0..=2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warning,
            5 | 6 => Level::Info,
            7 => Level::Debug,
            _ => return None,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::normalize(s).ok_or_else(|| ParseLevelError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_aliases() {
        assert_eq!(Level::normalize("warn"), Some(Level::Warning));
        assert_eq!(Level::normalize("Fatal"), Some(Level::Critical));
        assert_eq!(Level::normalize("EMERG"), Some(Level::Critical));
        assert_eq!(Level::normalize("FAILURE"), Some(Level::Critical));
        assert_eq!(Level::normalize("err"), Some(Level::Error));
        assert_eq!(Level::normalize("E"), Some(Level::Error));
        assert_eq!(Level::normalize("verbose-ish"), None);
    }

    #[test]
    fn ranks_round_trip_and_order() {
        for level in Level::ALL {
            assert_eq!(Level::from_rank(level.rank()), Some(level));
        }
        assert!(Level::Critical > Level::Error && Level::Warning > Level::Info);
        assert_eq!(Level::from_rank(6), None);
    }

    #[test]
    fn syslog_severities() {
        assert_eq!(Level::from_syslog_severity(0), Some(Level::Critical));
        assert_eq!(Level::from_syslog_severity(3), Some(Level::Error));
        assert_eq!(Level::from_syslog_severity(7), Some(Level::Debug));
        assert_eq!(Level::from_syslog_severity(8), None);
    }
}
