//! Syslog over TCP: accepting connections up to `max_connections`, with a TLS handshake
//! first when the listener has a certificate (RFC 5425), and framing each one by octet
//! counting or newlines, chosen from its first byte.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use logyard_parse::framing::{LineSplitter, OctetCounting};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::{Message, SyslogConfig};
use crate::status::StatusHandle;

/// Accepts connections; refuses (closes) those over the limit (counted in `open` with the
/// RELP listener's) and reports them.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<logyard_tls::TlsAcceptor>,
    tx: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
    cfg: Arc<SyslogConfig>,
    status: StatusHandle,
    open: Arc<AtomicU64>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: report, breathe, go on.
                    status.input_error(format!("cannot accept a connection: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if open.load(Ordering::SeqCst) >= cfg.max_connections as u64 {
            status.input_error(format!(
                "refused a connection from {peer}: {} connections open (max_connections)",
                cfg.max_connections
            ));
            drop(stream);
            continue;
        }
        status.set_connections(open.fetch_add(1, Ordering::SeqCst) + 1);
        let (tx, stop, cfg, status, open, tls) = (
            tx.clone(),
            stop.clone(),
            cfg.clone(),
            status.clone(),
            open.clone(),
            tls.clone(),
        );
        tokio::spawn(async move {
            match tls {
                None => connection(stream, "syslog:tcp", peer, tx, stop, &cfg, &status).await,
                Some(tls) => {
                    // A handshake is short: a client silent for long holds a slot for nothing.
                    let limit = cfg.idle_timeout.min(HANDSHAKE_TIMEOUT);
                    match tokio::time::timeout(limit, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            connection(stream, "syslog:tls", peer, tx, stop, &cfg, &status).await
                        }
                        Ok(Err(e)) => {
                            status.input_error(format!("TLS handshake with {peer} failed: {e}"))
                        }
                        Err(_) => status.input_error(format!(
                            "TLS handshake with {peer} took longer than {limit:?}"
                        )),
                    }
                }
            }
            status.set_connections(open.fetch_sub(1, Ordering::SeqCst) - 1);
        });
    }
}

/// The longest a TLS handshake may take (less if `idle_timeout` is shorter).
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The framing of a connection, chosen from its first bytes.
enum Framing {
    /// Not known yet: the bytes so far are all digits.
    Unknown(Vec<u8>),
    Octet(OctetCounting),
    Lines(LineSplitter),
}

impl Framing {
    /// Splits bytes into messages; an error ends the connection.
    fn push(&mut self, bytes: &mut [u8], max: usize, out: &mut Vec<Vec<u8>>) -> Result<(), String> {
        if let Framing::Unknown(start) = self {
            // Octet counting starts with digits and a space; anything else is lines (a
            // line may start with a digit too: `2024-01-15 …`).
            start.extend_from_slice(bytes);
            let decided = match start.iter().position(|c| !c.is_ascii_digit()) {
                Some(i) if i > 0 && start[i] == b' ' => Framing::Octet(OctetCounting::default()),
                Some(_) => Framing::Lines(LineSplitter::new(max)),
                None if start.len() > 10 => Framing::Lines(LineSplitter::new(max)),
                None => return Ok(()),
            };
            let mut first = std::mem::take(start);
            *self = decided;
            return self.push(&mut first, max, out);
        }
        match self {
            Framing::Octet(f) => f
                .push(bytes, max, |m| out.push(m.to_vec()))
                .map_err(|e| e.0),
            Framing::Lines(s) => {
                // Some clients end messages with NUL instead of a newline.
                for b in bytes.iter_mut() {
                    if *b == 0 {
                        *b = b'\n';
                    }
                }
                s.push(bytes, |m| out.push(m.to_vec()));
                Ok(())
            }
            Framing::Unknown(_) => Ok(()),
        }
    }

    /// The last message of a stream that ended without its newline.
    fn finish(&mut self) -> Option<Vec<u8>> {
        match self {
            Framing::Lines(s) => s.finish(),
            Framing::Unknown(start) if !start.is_empty() => Some(std::mem::take(start)),
            _ => None,
        }
    }
}

/// Reads one connection until it closes, idles too long, breaks the framing or the
/// source stops.
async fn connection<S: AsyncRead + Unpin>(
    mut stream: S,
    source: &'static str,
    peer: SocketAddr,
    tx: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
    cfg: &SyslogConfig,
    status: &StatusHandle,
) {
    let mut framing = Framing::Unknown(Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    let mut held = 0usize;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(cfg.idle_timeout, stream.read(&mut buf)) => r,
            _ = stop.changed() => return,
        };
        let n = match read {
            Err(_) => {
                let partial = if held > 0 {
                    format!(" with {held} bytes of an unfinished message")
                } else {
                    String::new()
                };
                status.input_error(format!(
                    "closed the idle connection from {peer}{partial} after {:?}",
                    cfg.idle_timeout
                ));
                return;
            }
            Ok(Err(e)) => {
                status.input_error(format!("connection from {peer}: {e}"));
                return;
            }
            Ok(Ok(0)) => {
                if let Some(last) = framing.finish() {
                    send(&tx, &last, source, peer).await;
                }
                return;
            }
            Ok(Ok(n)) => n,
        };
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let res = framing.push(&mut buf[..n], cfg.max_message_bytes, &mut frames);
        held = if frames.is_empty() { held + n } else { 0 };
        for m in frames {
            if !send(&tx, &m, source, peer).await {
                return;
            }
        }
        if let Err(e) = res {
            status.input_error(format!("closed the connection from {peer}: {e}"));
            return;
        }
    }
}

/// Queues a message (waiting while the queue is full); false when the source stopped.
async fn send(
    tx: &mpsc::Sender<Message>,
    bytes: &[u8],
    source: &'static str,
    peer: SocketAddr,
) -> bool {
    let mut m = bytes;
    while let [rest @ .., b'\n' | b'\r' | 0] = m {
        m = rest;
    }
    if m.is_empty() {
        return true;
    }
    tx.send(Message {
        bytes: m.to_vec(),
        source,
        peer,
        ack: None,
    })
    .await
    .is_ok()
}
