//! systemd's notification protocol (`sd_notify(3)`), for `Type=notify` units.
//!
//! When systemd starts logyard it sets `NOTIFY_SOCKET`: logyard sends `READY=1` there once the
//! store is recovered and the port is open (so `systemctl start` returns when the server
//! answers), `WATCHDOG=1` every half of `WATCHDOG_USEC` from a task of the server's own
//! runtime (so a stuck runtime stops the pings and systemd restarts it), and `STOPPING=1` when
//! a stop begins. Without `NOTIFY_SOCKET` every call does nothing.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go: the socket systemd named, if any.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            match open(&path) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(socket = %path, error = %e, "cannot use NOTIFY_SOCKET; systemd will not hear from logyard");
                    None
                }
            }
        });
        Notifier { target }
    }

    /// Sends one notification (`READY=1`, `STOPPING=1`, …); a failure is logged.
    pub fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.target {
            if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
                tracing::warn!(%state, error = %e, "cannot notify systemd");
            }
        }
    }

    /// How often the watchdog wants a ping: half of `WATCHDOG_USEC`, when it is set for this
    /// process (`WATCHDOG_PID`, when present, names it).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.trim() != std::process::id().to_string() {
                return None;
            }
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }
}

fn open(path: &str) -> io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            SocketAddr::from_abstract_name(name.as_bytes())?
        }
        None => SocketAddr::from_pathname(path)?,
    };
    Ok((UnixDatagram::unbound()?, addr))
}
