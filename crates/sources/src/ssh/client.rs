//! Runs allowed commands on a host through OpenSSH's client, `ssh`, as a child process.
//!
//! OpenSSH does the host-key checking (`StrictHostKeyChecking=yes` against the configured
//! `known_hosts` file, never updated), key authentication (`BatchMode=yes`: no password or
//! passphrase prompt) and the connect timeout (`ConnectTimeout`, which also bounds the
//! banner exchange). Each command is killed when it has not ended within the connect
//! timeout plus the command timeout, or when logyard stops. With `control_persist`, the
//! commands of a host share one connection (OpenSSH's `ControlMaster`), through a socket in
//! a folder only the user can enter. Every command is written to
//! the [`AuditLog`], refused ones included.

use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::allow::{AllowList, Refused, RemoteCommand};
use super::audit::{AuditEntry, AuditLog};
use super::error::hint;
pub use super::error::RemoteError;
use crate::shutdown::Shutdown;

/// The first bytes of the client's error output kept for messages.
const STDERR_KEPT: usize = 16 * 1024;
/// The last output lines kept for the message of a command that failed without error
/// output, and how much of each.
const LAST_LINES_KEPT: usize = 3;
const LAST_LINE_CHARS: usize = 300;

/// How to reach one host.
#[derive(Debug, Clone, PartialEq)]
pub struct SshTarget {
    /// Host name or address, as `ssh` takes it.
    pub host: String,
    /// The SSH port.
    pub port: u16,
    /// The user to log in as (the client's default when `None`).
    pub user: Option<String>,
    /// The private key (`ssh -i`); only this key is offered when set.
    pub identity_file: Option<PathBuf>,
    /// The known-hosts file that must hold the host's key; `~/.ssh/known_hosts` when `None`.
    pub known_hosts_file: Option<PathBuf>,
    /// Bound on the TCP connect and the SSH banner exchange.
    pub connect_timeout: Duration,
    /// Bound on each command, counted after the connect timeout.
    pub command_timeout: Duration,
    /// The OpenSSH client to run.
    pub ssh_program: PathBuf,
    /// An `ssh_config` file to read; `None` reads none (`-F none`).
    pub ssh_config: Option<PathBuf>,
    /// With a folder: commands share one connection through a control socket there, kept
    /// open for `control_persist` after the last command. `None`: a connection per command.
    pub control_dir: Option<PathBuf>,
    /// How long a shared connection stays open without commands.
    pub control_persist: Duration,
    /// Longer output lines are cut to this many bytes (plus one, which marks the cut).
    pub max_line_bytes: usize,
}

impl SshTarget {
    /// Returns `user@host:port` for messages.
    pub fn display(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}:{}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    pub(crate) fn known_hosts_text(&self) -> String {
        self.known_hosts_file
            .as_ref()
            .map_or("~/.ssh/known_hosts".to_string(), |p| {
                p.display().to_string()
            })
    }

    /// Returns the arguments of `ssh` before the command line.
    fn args(&self) -> Vec<String> {
        let secs = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        let mut a: Vec<String> = vec![
            "-F".into(),
            self.ssh_config
                .as_ref()
                .map_or("none".into(), |p| p.display().to_string()),
            "-T".into(),
        ];
        let mut o = |kv: String| {
            a.push("-o".into());
            a.push(kv);
        };
        o("BatchMode=yes".into());
        o("StrictHostKeyChecking=yes".into());
        o("UpdateHostKeys=no".into());
        o(format!("ConnectTimeout={}", secs(self.connect_timeout)));
        o(format!(
            "ServerAliveInterval={}",
            secs(self.connect_timeout)
        ));
        o("ServerAliveCountMax=3".into());
        o("LogLevel=ERROR".into());
        o("ClearAllForwardings=yes".into());
        o("ForwardAgent=no".into());
        o("ForwardX11=no".into());
        o("PermitLocalCommand=no".into());
        match &self.control_dir {
            Some(dir) => {
                o("ControlMaster=auto".into());
                o(format!("ControlPath={}/%C", dir.display()));
                o(format!("ControlPersist={}", secs(self.control_persist)));
            }
            None => o("ControlPath=none".into()),
        }
        o("RequestTTY=no".into());
        if let Some(k) = &self.known_hosts_file {
            o(format!("UserKnownHostsFile={}", k.display()));
            o("GlobalKnownHostsFile=/dev/null".into());
        }
        if let Some(i) = &self.identity_file {
            o("IdentitiesOnly=yes".into());
            a.push("-i".into());
            a.push(i.display().to_string());
        }
        a.push("-p".into());
        a.push(self.port.to_string());
        if let Some(u) = &self.user {
            a.push("-l".into());
            a.push(u.clone());
        }
        a
    }
}

/// One line of a command's output.
#[derive(Debug)]
pub struct OutputLine<'a> {
    /// The line without its `\n`, cut to `max_line_bytes + 1` bytes.
    pub text: &'a [u8],
    /// The bytes the line took in the output, its `\n` included.
    pub raw_len: u64,
    /// False for a last line without its `\n`.
    pub terminated: bool,
}

/// What a finished command gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Bytes written to standard output.
    pub bytes_out: u64,
}

/// Runs allowed commands on one host and audits them.
#[derive(Debug, Clone)]
pub struct Remote {
    /// How to reach the host.
    pub target: SshTarget,
    allow: AllowList,
    audit: Option<AuditLog>,
    stop: Shutdown,
}

impl Remote {
    /// Builds the runner of a host; `audit` receives an entry per command.
    pub fn new(target: SshTarget, allow: AllowList, audit: Option<AuditLog>) -> Remote {
        Remote {
            target,
            allow,
            audit,
            stop: Shutdown::new(),
        }
    }

    /// Stops running commands when this flag is set.
    pub fn with_stop(mut self, stop: Shutdown) -> Remote {
        self.stop = stop;
        self
    }

    /// Returns the allow-list of the host.
    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// Writes an audit entry for a request the allow-list refused.
    pub fn audit_refused(&self, requested: &str, refused: &Refused) {
        self.audit(AuditEntry {
            time: logyard_model::format_rfc3339(logyard_model::now_ns()),
            host: self.target.host.clone(),
            port: self.target.port,
            user: self.user(),
            command: requested.to_string(),
            sent: false,
            exit_status: None,
            bytes_out: 0,
            duration_ms: 0,
            error: Some(refused.to_string()),
        });
    }

    /// The user logged in as: the configured one, else the local user's name (the
    /// client's default).
    fn user(&self) -> String {
        self.target.user.clone().unwrap_or_else(|| {
            std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_default()
        })
    }

    fn audit(&self, entry: AuditEntry) {
        if let Some(log) = &self.audit {
            if let Err(e) = log.append(&entry) {
                tracing::error!(path = %log.path().display(), error = %e, "cannot write the remote audit log");
            }
        }
    }

    /// Runs a command and returns its whole output (for small outputs: ps, inspect, stats).
    pub fn output(&self, cmd: &RemoteCommand) -> Result<Vec<u8>, RemoteError> {
        let mut out = Vec::new();
        self.run(cmd, &mut |l| {
            out.extend_from_slice(l.text);
            if l.terminated {
                out.push(b'\n');
            }
            true
        })?;
        Ok(out)
    }

    /// Runs a command, calling `on_line` for each line of its output as it arrives; a
    /// `false` from `on_line` stops the command. Lines given before an error stay given.
    pub fn run(
        &self,
        cmd: &RemoteCommand,
        on_line: &mut dyn FnMut(OutputLine<'_>) -> bool,
    ) -> Result<Finished, RemoteError> {
        let line = match self.allow.command_line(cmd) {
            Ok(l) => l,
            Err(refused) => {
                self.audit_refused(&cmd.to_string(), &refused);
                return Err(refused.into());
            }
        };
        let started = Instant::now();
        let time = logyard_model::format_rfc3339(logyard_model::now_ns());
        let result = self.run_line(&line, on_line);
        let (exit_status, bytes_out, error) = match &result {
            Ok((status, f)) => (Some(*status), f.bytes_out, None),
            Err((e, bytes, status)) => (*status, *bytes, Some(e.to_string())),
        };
        self.audit(AuditEntry {
            time,
            host: self.target.host.clone(),
            port: self.target.port,
            user: self.user(),
            command: line,
            sent: true,
            exit_status,
            bytes_out,
            duration_ms: started.elapsed().as_millis() as u64,
            error,
        });
        result.map(|(_, f)| f).map_err(|(e, _, _)| e)
    }

    /// Runs one command line; on error, also returns the bytes read and the exit status.
    #[allow(clippy::type_complexity)]
    fn run_line(
        &self,
        line: &str,
        on_line: &mut dyn FnMut(OutputLine<'_>) -> bool,
    ) -> Result<(i32, Finished), (RemoteError, u64, Option<i32>)> {
        let t = &self.target;
        if let Some(dir) = &t.control_dir {
            // The control socket's folder is the user's alone: whoever can reach the socket
            // runs commands on the host.
            let made = std::fs::create_dir_all(dir).and_then(|()| {
                std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            });
            if let Err(e) = made {
                let e = RemoteError::Io(std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot make the control socket folder {}: {e}",
                        dir.display()
                    ),
                ));
                return Err((e, 0, None));
            }
        }
        let mut child = Command::new(&t.ssh_program)
            .args(t.args())
            .arg("--")
            .arg(&t.host)
            .arg(line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| {
                let e = RemoteError::Spawn {
                    program: t.ssh_program.display().to_string(),
                    source,
                };
                (e, 0, None)
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let child = Arc::new(Mutex::new(child));
        let _guard = KillOnDrop(child.clone());
        let errs = std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(mut s) = stderr {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let room = STDERR_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
            String::from_utf8_lossy(&kept).trim().to_string()
        });
        let allowance = t.connect_timeout + t.command_timeout;
        let deadline = Instant::now() + allowance;
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let killed = Arc::new(Mutex::new(None::<bool>));
        let watchdog = {
            let child = child.clone();
            let killed = killed.clone();
            let stop = self.stop.clone();
            std::thread::spawn(move || loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match done_rx.recv_timeout(left.min(Duration::from_millis(100))) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        let timed_out = left.is_zero();
                        if timed_out || stop.is_triggered() {
                            *killed.lock().unwrap_or_else(|e| e.into_inner()) = Some(timed_out);
                            let _ = child.lock().unwrap_or_else(|e| e.into_inner()).kill();
                            return;
                        }
                    }
                    _ => return,
                }
            })
        };
        let mut bytes = 0u64;
        let mut gave_up = false;
        // The last lines of the output: the message of a command that failed without
        // error output (`docker logs … 2>&1`).
        let mut last: VecDeque<String> = VecDeque::new();
        let read = match stdout {
            Some(out) => split_lines(out, t.max_line_bytes, &mut |l| {
                bytes += l.raw_len;
                if last.len() == LAST_LINES_KEPT {
                    last.pop_front();
                }
                let cut = &l.text[..l.text.len().min(LAST_LINE_CHARS)];
                last.push_back(String::from_utf8_lossy(cut).into_owned());
                if gave_up {
                    return false;
                }
                if !on_line(l) {
                    gave_up = true;
                    let _ = child.lock().unwrap_or_else(|e| e.into_inner()).kill();
                    return false;
                }
                true
            }),
            None => Ok(()),
        };
        let status = loop {
            match child.lock().unwrap_or_else(|e| e.into_inner()).try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let _ = done_tx.send(());
        let _ = watchdog.join();
        let stderr = errs.join().unwrap_or_default();
        let code = status.and_then(|s| s.code());
        let killed = *killed.lock().unwrap_or_else(|e| e.into_inner());
        let target = t.display();
        let last_text = Vec::from(last).join("; ");
        let fail = |e| Err((e, bytes, code));
        if let Some(timed_out) = killed {
            return fail(if timed_out {
                RemoteError::CommandTimeout {
                    command: line.to_string(),
                    target,
                    timeout: allowance,
                }
            } else {
                RemoteError::Stopped(line.to_string())
            });
        }
        if gave_up {
            return fail(RemoteError::Stopped(line.to_string()));
        }
        if let Err(e) = read {
            return fail(RemoteError::Io(e));
        }
        match code {
            Some(0) => Ok((0, Finished { bytes_out: bytes })),
            Some(255) => fail(classify(t, &stderr)),
            Some(status) => fail(RemoteError::CommandFailed {
                command: line.to_string(),
                target,
                status,
                hint: hint(
                    status,
                    if stderr.is_empty() {
                        &last_text
                    } else {
                        &stderr
                    },
                ),
                stderr: match (stderr.is_empty(), last_text.is_empty()) {
                    (false, _) => stderr,
                    (true, false) => last_text.clone(),
                    (true, true) => "(no error output)".into(),
                },
            }),
            None => fail(RemoteError::Connection {
                target,
                detail: format!("ssh ended by a signal: {stderr}"),
            }),
        }
    }
}

/// Splits a stream into lines, keeping at most `max + 1` bytes of each (the rest of an
/// over-long line is counted in `raw_len` and dropped).
fn split_lines(
    mut input: impl Read,
    max: usize,
    emit: &mut dyn FnMut(OutputLine<'_>) -> bool,
) -> std::io::Result<()> {
    let keep = max.max(1) + 1;
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut raw = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let (part, nl) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            raw += part.len() as u64 + u64::from(nl);
            let room = keep.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
            chunk = &chunk[part.len() + usize::from(nl)..];
            if nl {
                let ok = emit(OutputLine {
                    text: &line,
                    raw_len: raw,
                    terminated: true,
                });
                line.clear();
                raw = 0;
                if !ok {
                    return Ok(());
                }
            }
        }
    }
    if raw > 0 {
        emit(OutputLine {
            text: &line,
            raw_len: raw,
            terminated: false,
        });
    }
    Ok(())
}

/// Kills a child that may still run when dropped (a panic between spawn and wait): never
/// leave `ssh` behind.
struct KillOnDrop(Arc<Mutex<Child>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.lock().unwrap_or_else(|e| e.into_inner()).kill();
    }
}

/// Turns the client's error output (exit status 255) into an error that says what to do.
fn classify(t: &SshTarget, stderr: &str) -> RemoteError {
    let detail = stderr.lines().last().unwrap_or("").trim().to_string();
    let has = |s: &str| stderr.contains(s);
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("Host key for") {
        RemoteError::HostKeyChanged {
            host: t.host.clone(),
            port: t.port,
            known_hosts: t.known_hosts_text(),
        }
    } else if has("Host key verification failed") || has("host key is known") {
        RemoteError::HostKeyUnknown {
            host: t.host.clone(),
            port: t.port,
            known_hosts: t.known_hosts_text(),
        }
    } else if has("UNPROTECTED PRIVATE KEY FILE") || has("bad permissions") {
        RemoteError::AuthFailed {
            target: t.display(),
            detail: format!(
                "the client ignores a private key that others may read: `chmod 600 {}`",
                t.identity_file
                    .as_ref()
                    .map_or("the key file".to_string(), |p| p.display().to_string())
            ),
        }
    } else if has("Permission denied") || has("Too many authentication failures") {
        RemoteError::AuthFailed {
            target: t.display(),
            detail,
        }
    } else if has("timed out") {
        RemoteError::ConnectTimeout {
            target: t.display(),
            timeout: t.connect_timeout,
            detail,
        }
    } else if has("Connection refused")
        || has("No route to host")
        || has("Could not resolve hostname")
        || has("Network is unreachable")
    {
        RemoteError::Unreachable {
            target: t.display(),
            detail,
        }
    } else {
        RemoteError::Connection {
            target: t.display(),
            detail: if detail.is_empty() {
                "ssh exited with status 255 and no message".into()
            } else {
                detail
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(String, u64, bool)> {
        let mut out = Vec::new();
        split_lines(input, max, &mut |l| {
            out.push((
                String::from_utf8_lossy(l.text).into_owned(),
                l.raw_len,
                l.terminated,
            ));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn splits_lines_with_their_raw_lengths() {
        assert_eq!(
            lines(b"ab\n\ncdef\ngh", 100),
            vec![
                ("ab".into(), 3, true),
                ("".into(), 1, true),
                ("cdef".into(), 5, true),
                ("gh".into(), 2, false)
            ]
        );
        assert_eq!(
            lines(b"abcdef\nx\n", 2),
            vec![("abc".into(), 7, true), ("x".into(), 2, true)]
        );
    }

    #[test]
    fn builds_strict_ssh_arguments() {
        let t = SshTarget {
            host: "prod-1".into(),
            port: 2222,
            user: Some("deploy".into()),
            identity_file: Some("/k/id".into()),
            known_hosts_file: Some("/k/known".into()),
            connect_timeout: Duration::from_millis(1500),
            command_timeout: Duration::from_secs(60),
            ssh_program: "ssh".into(),
            ssh_config: None,
            control_dir: None,
            control_persist: Duration::ZERO,
            max_line_bytes: 1 << 20,
        };
        let a = t.args().join(" ");
        for part in [
            "-F none",
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
            "ConnectTimeout=2",
            "UserKnownHostsFile=/k/known",
            "-i /k/id",
            "-p 2222",
            "-l deploy",
        ] {
            assert!(a.contains(part), "{part} missing from {a}");
        }
    }
}
