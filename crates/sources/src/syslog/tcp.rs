//! Syslog over TCP: accepting connections up to `max_connections`, and framing each one by
//! octet counting or newlines, chosen from its first byte.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use logyard_parse::framing::{LineSplitter, OctetCounting};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::{Message, SyslogConfig};
use crate::status::StatusHandle;

/// Accepts connections; refuses (closes) those over the limit and reports them.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tx: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
    cfg: Arc<SyslogConfig>,
    status: StatusHandle,
) {
    let open = Arc::new(AtomicU64::new(0));
    status.set_connections(0);
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
        let (tx, stop, cfg, status, open) = (
            tx.clone(),
            stop.clone(),
            cfg.clone(),
            status.clone(),
            open.clone(),
        );
        tokio::spawn(async move {
            connection(stream, peer, tx, stop, &cfg, &status).await;
            status.set_connections(open.fetch_sub(1, Ordering::SeqCst) - 1);
        });
    }
}

/// The framing of a connection, chosen from its first byte.
enum Framing {
    Unknown,
    Octet(OctetCounting),
    Lines(LineSplitter),
}

/// Reads one connection until it closes, idles too long, breaks the framing or the
/// source stops.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    tx: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
    cfg: &SyslogConfig,
    status: &StatusHandle,
) {
    let mut framing = Framing::Unknown;
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
                if let Framing::Lines(s) = &mut framing {
                    if let Some(last) = s.finish() {
                        send(&tx, &last, peer).await;
                    }
                }
                return;
            }
            Ok(Ok(n)) => n,
        };
        let bytes = &mut buf[..n];
        if matches!(framing, Framing::Unknown) {
            framing = if bytes[0].is_ascii_digit() {
                Framing::Octet(OctetCounting::default())
            } else {
                Framing::Lines(LineSplitter::new(cfg.max_message_bytes))
            };
        }
        let mut frames: Vec<Vec<u8>> = Vec::new();
        match &mut framing {
            Framing::Octet(f) => {
                if let Err(e) = f.push(bytes, cfg.max_message_bytes, |m| frames.push(m.to_vec())) {
                    status.input_error(format!("closed the connection from {peer}: {}", e.0));
                    for m in frames {
                        send(&tx, &m, peer).await;
                    }
                    return;
                }
            }
            Framing::Lines(s) => {
                // Some clients end messages with NUL instead of a newline.
                for b in bytes.iter_mut() {
                    if *b == 0 {
                        *b = b'\n';
                    }
                }
                s.push(bytes, |m| frames.push(m.to_vec()));
            }
            Framing::Unknown => {}
        }
        held = if frames.is_empty() { held + n } else { 0 };
        for m in frames {
            if !send(&tx, &m, peer).await {
                return;
            }
        }
    }
}

/// Queues a message (waiting while the queue is full); false when the source stopped.
async fn send(tx: &mpsc::Sender<Message>, bytes: &[u8], peer: SocketAddr) -> bool {
    let mut m = bytes;
    while let [rest @ .., b'\n' | b'\r' | 0] = m {
        m = rest;
    }
    if m.is_empty() {
        return true;
    }
    tx.send(Message {
        bytes: m.to_vec(),
        tcp: true,
        peer,
    })
    .await
    .is_ok()
}
