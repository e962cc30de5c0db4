//! The audit log of remote commands: one JSON line per command run on a host (or refused
//! before it was sent), appended to `<data_dir>/remote-audit.log` by default.
//!
//! ```json
//! {"time":"2024-01-15T10:30:00.123Z","host":"prod-1","port":22,"user":"deploy",
//!  "command":"docker logs --timestamps --since 2024-01-15T09:30:00.000000000Z web",
//!  "sent":true,"exit_status":0,"bytes_out":5120,"duration_ms":412,"error":null}
//! ```
//!
//! The file is opened for each line in append mode, so a rotation by rename (`[[rotate]]`
//! or logrotate) needs no signal, and several logyard processes may share it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One audited command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When the command was started (RFC 3339 UTC).
    pub time: String,
    /// The host as configured (`host`).
    pub host: String,
    /// The SSH port.
    pub port: u16,
    /// The user logged in as (without a configured one, the local user's name, which the
    /// client uses; empty when unknown).
    pub user: String,
    /// The command line sent, or the text requested when it was refused.
    pub command: String,
    /// Whether the command was sent to the host (false: refused by the allow-list).
    pub sent: bool,
    /// The command's exit status; `null` when it was not sent, timed out or was stopped.
    pub exit_status: Option<i32>,
    /// Bytes the command wrote to standard output.
    pub bytes_out: u64,
    /// How long the command took, in milliseconds.
    pub duration_ms: u64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// An append-only JSON lines file of [`AuditEntry`]s.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The audit log at `path` (created with its folder on the first entry).
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog { path: path.into() }
    }

    /// Returns the file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry as one line. A failure is returned, for the caller to report: the
    /// command has run already.
    pub fn append(&self, entry: &AuditEntry) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // One write of the whole line: appends of lines this short do not interleave.
        f.write_all(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("sub/remote-audit.log"));
        let e = AuditEntry {
            time: "2024-01-15T10:30:00Z".into(),
            host: "prod-1".into(),
            port: 22,
            user: "deploy".into(),
            command: "docker ps".into(),
            sent: true,
            exit_status: Some(0),
            bytes_out: 10,
            duration_ms: 5,
            error: None,
        };
        log.append(&e).unwrap();
        log.append(&AuditEntry {
            sent: false,
            exit_status: None,
            error: Some("refused".into()),
            ..e.clone()
        })
        .unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["exit_status"], 0);
        assert_eq!(lines[1]["sent"], false);
        assert_eq!(lines[1]["exit_status"], serde_json::Value::Null);
    }
}
