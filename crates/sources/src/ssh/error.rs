//! Why a remote command did not give its output, said with what to do about it.

use std::time::Duration;

use super::allow::Refused;

/// Why a remote command did not give its output.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The allow-list refused the request; nothing was sent.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The `ssh` client could not be started.
    #[error("cannot start the ssh client {program:?}: {source}; install OpenSSH's client (Debian: `apt-get install openssh-client`) or set `ssh_program`")]
    Spawn {
        /// The program.
        program: String,
        /// The error.
        source: std::io::Error,
    },
    /// The host's key is not in the known-hosts file.
    #[error("the host key of {host} (port {port}) is not in {known_hosts}: check its fingerprint with the host's administrator, then add it, e.g. `ssh-keyscan -p {port} {host} >> {known_hosts}`")]
    HostKeyUnknown {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The known-hosts file.
        known_hosts: String,
    },
    /// The host's key differs from the known one.
    #[error("the host key of {host} (port {port}) does NOT match the one in {known_hosts}: this may be an attack. If the host was reinstalled, remove the old key with `ssh-keygen -R '[{host}]:{port}' -f {known_hosts}` and add the new one after checking its fingerprint")]
    HostKeyChanged {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The known-hosts file.
        known_hosts: String,
    },
    /// The host refused the key.
    #[error("{target} refused the login: check `user` and `identity_file`, and that the key's public half is in the user's ~/.ssh/authorized_keys on the host ({detail})")]
    AuthFailed {
        /// `user@host:port`.
        target: String,
        /// The client's message.
        detail: String,
    },
    /// No SSH answer within the connect timeout.
    #[error("no SSH answer from {target} within {timeout:?} (connect_timeout): check the host and port, the network, and that sshd runs there ({detail})")]
    ConnectTimeout {
        /// `user@host:port`.
        target: String,
        /// The connect timeout.
        timeout: Duration,
        /// The client's message.
        detail: String,
    },
    /// The host could not be reached at all.
    #[error(
        "cannot connect to {target}: {detail}; check the host and port, and that sshd runs there"
    )]
    Unreachable {
        /// `user@host:port`.
        target: String,
        /// The client's message.
        detail: String,
    },
    /// The command ran longer than allowed and was stopped.
    #[error("`{command}` on {target} did not end within {timeout:?} (connect_timeout + command_timeout) and was stopped")]
    CommandTimeout {
        /// The command line.
        command: String,
        /// `user@host:port`.
        target: String,
        /// The whole allowance.
        timeout: Duration,
    },
    /// The command ran and failed.
    #[error("`{command}` on {target} exited with status {status}: {stderr}{hint}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// `user@host:port`.
        target: String,
        /// The exit status.
        status: i32,
        /// The command's error output.
        stderr: String,
        /// What to do, when known.
        hint: &'static str,
    },
    /// The connection failed or ended in the middle.
    #[error("the SSH connection to {target} failed: {detail}")]
    Connection {
        /// `user@host:port`.
        target: String,
        /// The client's message.
        detail: String,
    },
    /// The command was stopped because logyard stops, or its reader gave up.
    #[error("`{0}` was stopped before its end")]
    Stopped(String),
    /// Reading the client's output failed.
    #[error("cannot read the output of ssh: {0}")]
    Io(#[from] std::io::Error),
}

impl RemoteError {
    /// Returns true when the error says the host could not be reached or logged into (as
    /// opposed to a command that ran and failed).
    pub fn is_connection(&self) -> bool {
        !matches!(
            self,
            RemoteError::Refused(_)
                | RemoteError::CommandFailed { .. }
                | RemoteError::CommandTimeout { .. }
                | RemoteError::Stopped(_)
        )
    }
}

/// What to do about a failed command, when its status or message says.
pub(crate) fn hint(status: i32, stderr: &str) -> &'static str {
    if status == 127 || stderr.contains("command not found") {
        " (the program is not on the PATH of the remote user's non-interactive shell)"
    } else if stderr.contains("permission denied") && stderr.contains("docker") {
        " (the remote user may not use Docker: add it to the `docker` group on the host)"
    } else if stderr.contains("No such container") {
        " (see `logyard remote status` for the containers there)"
    } else if stderr.contains("No such file") {
        " (the path does not exist on the host)"
    } else {
        ""
    }
}
