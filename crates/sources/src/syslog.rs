//! The syslog source: UDP and TCP listeners for RFC 3164 and RFC 5424 messages.
//!
//! `[[sources]] type = "syslog"`: see [`SyslogConfig`]. A datagram is one message. On TCP
//! the framing is chosen per connection from its first byte: a digit means octet counting
//! (RFC 6587, `LEN SP MSG`), anything else newline framing (a NUL also ends a message, as
//! some clients send). With `tls_cert` and `tls_key` the TCP listener speaks TLS only
//! (RFC 5425, whose octet-counted framing the first byte detects as on plain TCP), and its
//! certificate is read again when its files change (`logyard-tls`). Records get `source` =
//! `syslog:udp`, `syslog:tcp`, `syslog:tls` or `syslog:relp`, and the host
//! named in the message or else the peer's address. With `listen_relp`, a third listener
//! speaks RELP (rsyslog's `omrelp`) and acknowledges each message once it is durable
//! (module `relp`). Messages are parsed by `logyard-parse`
//! (format `syslog` by default) and handed to the sink in batches (up to `batch_lines` or
//! `batch_wait`) from a blocking thread; while the sink is slow, reading waits.

pub(crate) mod relp;
mod tcp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logyard_model::now_ns;
use logyard_parse::{Format, LineContext, Parser};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::batch::deliver_retrying;
use crate::error::SourceError;
use crate::settings::{default_batch_lines, default_batch_wait, duration, size, ParseSettings};
use crate::status::{SourceState, StatusHandle};
use crate::{Source, SourceContext};

/// The `[[sources]]` keys of `type = "syslog"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// The source's name; `syslog` by default.
    #[serde(default)]
    pub name: Option<String>,
    /// The UDP address to listen on (`127.0.0.1:5514`); none by default.
    #[serde(default)]
    pub listen_udp: Option<String>,
    /// The TCP address to listen on (`127.0.0.1:5514`); none by default.
    #[serde(default)]
    pub listen_tcp: Option<String>,
    /// The TCP address of the RELP listener (`127.0.0.1:2514`): each message is
    /// acknowledged once durable; none by default.
    #[serde(default)]
    pub listen_relp: Option<String>,
    /// `format`, `timezone`, `timestamp_format`, `timestamp_field`.
    #[serde(flatten)]
    pub parse: ParseSettings,
    /// Open TCP and RELP connections at most, together; more are refused and reported
    /// (default 1000).
    #[serde(default = "thousand")]
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed (default `5m`).
    #[serde(default = "five_minutes", deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Longer messages are cut (datagrams, newline frames) or end the connection
    /// (octet-counted frames, RELP frames); default `64KiB`.
    #[serde(default = "sixty_four_k", deserialize_with = "size")]
    pub max_message_bytes: usize,
    /// Records per batch handed to the sink (default 1000).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// A batch is handed over at the latest this long after its first message (default
    /// `100ms`).
    #[serde(default = "default_batch_wait", deserialize_with = "duration")]
    pub batch_wait: Duration,
    /// The receive buffer asked of the kernel for the UDP socket (`SO_RCVBUF`), which holds
    /// the datagrams that arrive while logyard is busy; default `8MiB`. Linux grants at most
    /// `net.core.rmem_max` (the size granted is logged).
    #[serde(default = "eight_mib", deserialize_with = "size")]
    pub receive_buffer: usize,
    /// The PEM certificate chain of the TCP listener; with `tls_key`, it speaks TLS only
    /// (RFC 5425).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

fn thousand() -> usize {
    1000
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}
fn sixty_four_k() -> usize {
    64 * 1024
}
fn eight_mib() -> usize {
    8 << 20
}

impl SyslogConfig {
    /// A configuration with the given listeners and every other key at its default.
    pub fn new(listen_udp: Option<&str>, listen_tcp: Option<&str>) -> SyslogConfig {
        SyslogConfig {
            name: None,
            listen_udp: listen_udp.map(str::to_string),
            listen_tcp: listen_tcp.map(str::to_string),
            listen_relp: None,
            parse: ParseSettings::default(),
            max_connections: thousand(),
            idle_timeout: five_minutes(),
            max_message_bytes: sixty_four_k(),
            batch_lines: default_batch_lines(),
            batch_wait: default_batch_wait(),
            receive_buffer: eight_mib(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// A received message and where it came from.
#[derive(Debug)]
pub(crate) struct Message {
    pub bytes: Vec<u8>,
    /// `syslog:udp`, `syslog:tcp`, `syslog:tls` or `syslog:relp`: the records' `source`.
    pub source: &'static str,
    pub peer: SocketAddr,
    /// Told whether the message was made durable (RELP answers only then); none for the
    /// listeners that do not acknowledge.
    pub ack: Option<oneshot::Sender<bool>>,
}

/// Listens for syslog messages; see the module documentation.
pub struct SyslogSource {
    name: String,
    cfg: SyslogConfig,
    udp: Option<std::net::UdpSocket>,
    tcp: Option<std::net::TcpListener>,
    relp: Option<std::net::TcpListener>,
    tls: Option<logyard_tls::ServerTls>,
    status: StatusHandle,
}

impl SyslogSource {
    /// Checks the configuration and builds the source (it binds when it runs, or at
    /// [`SyslogSource::bind`]).
    pub fn new(name: &str, cfg: SyslogConfig) -> Result<SyslogSource, SourceError> {
        if cfg.listen_udp.is_none() && cfg.listen_tcp.is_none() && cfg.listen_relp.is_none() {
            return Err(SourceError::config(
                name,
                "give at least one of `listen_udp`, `listen_tcp` and `listen_relp` (e.g. \"127.0.0.1:5514\")",
            ));
        }
        for addr in cfg
            .listen_udp
            .iter()
            .chain(&cfg.listen_tcp)
            .chain(&cfg.listen_relp)
        {
            addr.parse::<SocketAddr>().map_err(|e| {
                SourceError::config(name, format!("invalid listen address {addr:?}: {e}"))
            })?;
        }
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                if cfg.listen_tcp.is_none() {
                    return Err(SourceError::config(
                        name,
                        "tls_cert and tls_key secure the TCP listener: give `listen_tcp` too",
                    ));
                }
                let files = logyard_tls::TlsFiles::new(cert, key);
                Some(
                    logyard_tls::ServerTls::one_way(&files)
                        .map_err(|e| SourceError::config(name, e.to_string()))?,
                )
            }
            _ => {
                return Err(SourceError::config(
                    name,
                    "give both tls_cert and tls_key, or neither",
                ))
            }
        };
        Ok(SyslogSource {
            name: name.to_string(),
            cfg,
            udp: None,
            tcp: None,
            relp: None,
            tls,
            status: StatusHandle::new(name, "syslog"),
        })
    }

    /// Binds the listeners now and returns their addresses (UDP, TCP): a port 0 in the
    /// configuration gets a free port. The RELP listener's is [`SyslogSource::relp_addr`].
    pub fn bind(&mut self) -> Result<(Option<SocketAddr>, Option<SocketAddr>), SourceError> {
        if let (Some(addr), None) = (&self.cfg.listen_udp, &self.udp) {
            self.udp = Some(bind_udp(&self.name, addr, self.cfg.receive_buffer)?);
        }
        if let (Some(addr), None) = (&self.cfg.listen_tcp, &self.tcp) {
            let l = std::net::TcpListener::bind(addr)
                .map_err(|e| SourceError::io("bind TCP", addr.as_str(), e))?;
            l.set_nonblocking(true)
                .map_err(|e| SourceError::io("configure", addr.as_str(), e))?;
            self.tcp = Some(l);
        }
        if let (Some(addr), None) = (&self.cfg.listen_relp, &self.relp) {
            let l = std::net::TcpListener::bind(addr)
                .map_err(|e| SourceError::io("bind the RELP listener on", addr.as_str(), e))?;
            l.set_nonblocking(true)
                .map_err(|e| SourceError::io("configure", addr.as_str(), e))?;
            self.relp = Some(l);
        }
        Ok((
            self.udp.as_ref().and_then(|s| s.local_addr().ok()),
            self.tcp.as_ref().and_then(|l| l.local_addr().ok()),
        ))
    }
}

impl SyslogSource {
    /// The address of the RELP listener once bound ([`SyslogSource::bind`]).
    pub fn relp_addr(&self) -> Option<SocketAddr> {
        self.relp.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// Binds a non-blocking UDP socket with the receive buffer asked for, and logs the size the
/// kernel granted (Linux doubles the size asked for its own bookkeeping, and caps it at twice
/// `net.core.rmem_max`).
fn bind_udp(
    name: &str,
    addr: &str,
    receive_buffer: usize,
) -> Result<std::net::UdpSocket, SourceError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|e| SourceError::config(name, format!("invalid listen address {addr:?}: {e}")))?;
    let sock = Socket::new(
        Domain::for_address(parsed),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(|e| SourceError::io("open a UDP socket for", addr, e))?;
    if receive_buffer > 0 {
        if let Err(e) = sock.set_recv_buffer_size(receive_buffer) {
            tracing::warn!(source = name, asked = receive_buffer, error = %e, "cannot set the UDP receive buffer");
        }
    }
    let granted = sock.recv_buffer_size().unwrap_or(0);
    if granted < receive_buffer {
        tracing::warn!(
            source = name,
            asked = receive_buffer,
            granted,
            "the kernel granted a smaller UDP receive buffer than `receive_buffer`: raise `net.core.rmem_max` (sysctl) to allow it"
        );
    } else {
        tracing::info!(
            source = name,
            asked = receive_buffer,
            granted,
            "UDP receive buffer"
        );
    }
    sock.bind(&parsed.into())
        .map_err(|e| SourceError::io("bind UDP", addr, e))?;
    sock.set_nonblocking(true)
        .map_err(|e| SourceError::io("configure", addr, e))?;
    Ok(sock.into())
}

/// Reads how many datagrams the kernel dropped on a UDP socket because its receive buffer
/// was full: the `drops` column of the socket's line in `/proc/net/udp` or `/proc/net/udp6`
/// (Linux). `None` where that cannot be read.
fn kernel_drops(inode: u64) -> Option<u64> {
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            if cols.len() >= 13 && cols[9].parse::<u64>().ok() == Some(inode) {
                return cols[12].parse().ok();
            }
        }
    }
    None
}

/// The inode of a socket, which names it in `/proc/net/udp`.
fn socket_inode(sock: &tokio::net::UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", sock.as_raw_fd()))
        .ok()
        .map(|m| m.ino())
}

impl Source for SyslogSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "syslog"
    }

    fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    fn prepare(&mut self) -> Result<(), SourceError> {
        self.bind().map(|_| ())
    }

    fn run(mut self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        self.bind()?;
        let parser = self
            .cfg
            .parse
            .parser_config(&self.name, &ctx.parser, Format::Syslog)?;
        let parser = Parser::new(parser).map_err(|source| SourceError::Parse {
            name: self.name.clone(),
            source,
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::io("start the runtime of", self.name.as_str(), e))?;
        let listeners = Listeners {
            udp: self.udp.take(),
            tcp: self.tcp.take(),
            relp: self.relp.take(),
        };
        rt.block_on(self.serve(listeners, parser, ctx))
    }
}

/// The bound sockets of a source.
struct Listeners {
    udp: Option<std::net::UdpSocket>,
    tcp: Option<std::net::TcpListener>,
    relp: Option<std::net::TcpListener>,
}

/// How long a stopping source waits for its RELP sessions to send their last answers.
const RELP_DRAIN: Duration = Duration::from_secs(5);

impl SyslogSource {
    async fn serve(
        self: Box<Self>,
        listeners: Listeners,
        parser: Parser,
        ctx: SourceContext,
    ) -> Result<(), SourceError> {
        let Listeners { udp, tcp, relp } = listeners;
        let (stop_tx, stop) = watch::channel(false);
        let (tx, rx) = mpsc::channel::<Message>(4096);
        let cfg = Arc::new(self.cfg.clone());
        let open = Arc::new(AtomicU64::new(0));
        self.status.set_connections(0);
        // Held by each RELP session until its last answer is sent.
        let (live, mut sessions_done) = mpsc::channel::<()>(1);
        let mut tasks = Vec::new();
        if let Some(s) = udp {
            let addr = s.local_addr().ok();
            let sock = tokio::net::UdpSocket::from_std(s)
                .map_err(|e| SourceError::io("listen on", format!("{addr:?}"), e))?;
            tasks.push(tokio::spawn(udp_loop(
                sock,
                tx.clone(),
                stop.clone(),
                cfg.clone(),
                self.status.clone(),
            )));
        }
        if let Some(l) = tcp {
            let addr = l.local_addr().ok();
            let listener = tokio::net::TcpListener::from_std(l)
                .map_err(|e| SourceError::io("listen on", format!("{addr:?}"), e))?;
            tasks.push(tokio::spawn(tcp::accept_loop(
                listener,
                self.tls.as_ref().map(|t| t.acceptor()),
                tx.clone(),
                stop.clone(),
                cfg.clone(),
                self.status.clone(),
                open.clone(),
            )));
        }
        if let Some(l) = relp {
            let addr = l.local_addr().ok();
            let listener = tokio::net::TcpListener::from_std(l)
                .map_err(|e| SourceError::io("listen on", format!("{addr:?}"), e))?;
            tasks.push(tokio::spawn(relp::accept_loop(
                listener,
                tx.clone(),
                stop.clone(),
                cfg.clone(),
                self.status.clone(),
                open.clone(),
                live.clone(),
            )));
        }
        drop(tx);
        drop(live);
        let shutdown = ctx.shutdown.clone();
        tokio::spawn(async move {
            while !shutdown.is_triggered() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = stop_tx.send(true);
        });
        self.status.set_state(SourceState::Running);
        batch_loop(rx, parser, &cfg, &self.status, &ctx).await;
        for t in tasks {
            t.abort();
        }
        // RELP sessions answer what the last batch made durable, then say `serverclose`.
        let _ = tokio::time::timeout(RELP_DRAIN, sessions_done.recv()).await;
        self.status.set_state(SourceState::Stopped);
        Ok(())
    }
}

/// Receives datagrams: each is one message (a trailing newline or NUL is dropped).
async fn udp_loop(
    sock: tokio::net::UdpSocket,
    tx: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
    cfg: Arc<SyslogConfig>,
    status: StatusHandle,
) {
    let mut buf = vec![0u8; 65536];
    let inode = socket_inode(&sock);
    let mut drops_check = tokio::time::interval(Duration::from_secs(1));
    drops_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    status.input_error(format!("cannot receive a datagram: {e}"));
                    continue;
                }
            },
            _ = drops_check.tick() => {
                if let Some(drops) = inode.and_then(kernel_drops) {
                    // The socket was opened by the source: all its drops are the source's.
                    status.set_dropped(drops);
                }
                continue;
            }
            _ = stop.changed() => return,
        };
        let mut msg = &buf[..n];
        while let [rest @ .., b'\n' | b'\r' | 0] = msg {
            msg = rest;
        }
        if msg.len() > cfg.max_message_bytes {
            status.input_error(format!(
                "datagram of {} bytes from {peer} cut to {}",
                msg.len(),
                cfg.max_message_bytes
            ));
            msg = &msg[..cfg.max_message_bytes];
        }
        if msg.is_empty() {
            continue;
        }
        let m = Message {
            bytes: msg.to_vec(),
            source: "syslog:udp",
            peer,
            ack: None,
        };
        if tx.send(m).await.is_err() {
            return;
        }
    }
}

/// Parses messages into records and hands them to the sink in batches. A batch holding
/// messages whose sender waits for an acknowledgement (RELP) is handed over as soon as no
/// more messages are queued, and each of them is told once the batch is durable.
async fn batch_loop(
    mut rx: mpsc::Receiver<Message>,
    mut parser: Parser,
    cfg: &SyslogConfig,
    status: &StatusHandle,
    ctx: &SourceContext,
) {
    let mut batch = Vec::new();
    let mut acks: Vec<oneshot::Sender<bool>> = Vec::new();
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    let mut open = true;
    while open && !ctx.shutdown.is_triggered() {
        let wait = first.map_or(Duration::from_millis(100), |t| {
            cfg.batch_wait.saturating_sub(t.elapsed())
        });
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(m)) => {
                bytes += m.bytes.len() as u64;
                take(&mut parser, m, &mut batch, &mut acks);
                first.get_or_insert_with(Instant::now);
            }
            Ok(None) => open = false,
            Err(_) => {}
        }
        let due = first.is_some_and(|t| t.elapsed() >= cfg.batch_wait);
        // Senders waiting for answers send no more until answered: do not wait for them.
        let awaited = !acks.is_empty() && rx.is_empty();
        let full = batch.len() >= cfg.batch_lines;
        if (!batch.is_empty() || !acks.is_empty()) && (due || !open || full || awaited) {
            let records = std::mem::take(&mut batch);
            let (sink, st, stop) = (ctx.sink.clone(), status.clone(), ctx.shutdown.clone());
            let n = bytes;
            let kept = tokio::task::spawn_blocking(move || {
                deliver_retrying(&*sink, records, n, &st, &stop)
            })
            .await
            .unwrap_or(false);
            for ack in acks.drain(..) {
                let _ = ack.send(kept);
            }
            bytes = 0;
            first = None;
        }
    }
    // Stopping: what was received is still handed over once.
    while let Ok(m) = rx.try_recv() {
        bytes += m.bytes.len() as u64;
        take(&mut parser, m, &mut batch, &mut acks);
    }
    if !batch.is_empty() || !acks.is_empty() {
        let (sink, st) = (ctx.sink.clone(), status.clone());
        let kept = tokio::task::spawn_blocking(move || {
            let n = batch.len() as u64;
            sink.write(batch).map(|()| st.add_lines(n, bytes)).is_ok()
        })
        .await
        .unwrap_or(false);
        for ack in acks {
            let _ = ack.send(kept);
        }
    }
}

/// Parses a message into the batch and keeps its acknowledgement, if any (a message that
/// gives no record is acknowledged with the batch all the same).
fn take(
    parser: &mut Parser,
    m: Message,
    batch: &mut Vec<logyard_model::Record>,
    acks: &mut Vec<oneshot::Sender<bool>>,
) {
    let peer = m.peer.ip().to_string();
    let lctx = LineContext {
        source: m.source,
        agent_hint: "",
        host: &peer,
        received_ns: now_ns(),
    };
    if let Some(rec) = parser.parse(&m.bytes, &lctx) {
        batch.push(rec);
    }
    if let Some(ack) = m.ack {
        acks.push(ack);
    }
}
