//! The syslog source against real clients: util-linux `logger` and Python's
//! `logging.handlers.SysLogHandler`, plus raw sockets for the hostile cases (half a frame
//! and a hang, a 64 KB datagram, 200 connections at once, a flood over `max_connections`).
//!
//! Needs `logger` (Debian package `bsdutils`) and `python3`.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logyard_model::{Level, Record};
use logyard_sources::{
    spawn, MemorySink, RunningSource, Source, SourceContext, SyslogConfig, SyslogSource,
};

struct Server {
    udp: SocketAddr,
    tcp: SocketAddr,
    sink: Arc<MemorySink>,
    ctx: SourceContext,
    running: Option<RunningSource>,
    _state: tempfile::TempDir,
}

impl Server {
    fn start(tune: impl FnOnce(&mut SyslogConfig)) -> Server {
        let mut cfg = SyslogConfig::new(Some("127.0.0.1:0"), Some("127.0.0.1:0"));
        cfg.batch_wait = Duration::from_millis(20);
        tune(&mut cfg);
        let mut src = SyslogSource::new("syslog", cfg).unwrap();
        let (udp, tcp) = src.bind().unwrap();
        let sink = Arc::new(MemorySink::new());
        let state = tempfile::tempdir().unwrap();
        let ctx = SourceContext::new(sink.clone(), state.path(), "collector");
        let running = spawn(Box::new(src) as Box<dyn Source>, ctx.clone());
        Server {
            udp: udp.unwrap(),
            tcp: tcp.unwrap(),
            sink,
            ctx,
            running: Some(running),
            _state: state,
        }
    }

    /// Waits until `n` records arrived (or 10 s passed) and returns them.
    fn wait_for(&self, n: usize) -> Vec<Record> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let recs = self.sink.records();
            if recs.len() >= n || Instant::now() > deadline {
                return recs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn status(&self) -> logyard_sources::SourceStatus {
        self.running.as_ref().unwrap().status.snapshot()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ctx.shutdown.trigger();
        if let Some(r) = self.running.take() {
            r.join().unwrap();
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn logger(args: &[&str]) {
    let out = Command::new("logger")
        .args(args)
        .output()
        .expect("util-linux logger is installed (apt-get install -y bsdutils)");
    assert!(out.status.success(), "logger {args:?}: {out:?}");
}

fn find<'a>(recs: &'a [Record], message: &str) -> &'a Record {
    recs.iter()
        .find(|r| r.message == message)
        .unwrap_or_else(|| panic!("no record {message:?} in {recs:#?}"))
}

#[test]
fn logger_rfc5424_and_rfc3164_over_udp_and_tcp() {
    let s = Server::start(|_| {});
    let (udp, tcp) = (s.udp.port().to_string(), s.tcp.port().to_string());
    let host = hostname();
    logger(&[
        "--rfc5424",
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &udp,
        "-t",
        "billing",
        "-p",
        "local0.err",
        "charge failed udp5424",
    ]);
    logger(&[
        "--rfc3164",
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &udp,
        "-t",
        "web",
        "-p",
        "user.warning",
        "slow request udp3164",
    ]);
    logger(&[
        "--rfc5424",
        "-T",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp,
        "-t",
        "api",
        "-p",
        "daemon.info",
        "started tcp5424",
    ]);
    logger(&[
        "--rfc3164",
        "-T",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp,
        "-t",
        "cron",
        "-p",
        "cron.debug",
        "tick tcp3164",
    ]);
    logger(&[
        "--rfc5424",
        "-T",
        "--octet-count",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp,
        "-t",
        "db",
        "-p",
        "local3.crit",
        "disk full octet",
    ]);
    let recs = s.wait_for(5);
    let cases = [
        (
            "charge failed udp5424",
            "billing",
            Level::Error,
            "syslog:udp",
        ),
        ("slow request udp3164", "web", Level::Warning, "syslog:udp"),
        ("started tcp5424", "api", Level::Info, "syslog:tcp"),
        ("tick tcp3164", "cron", Level::Debug, "syslog:tcp"),
        ("disk full octet", "db", Level::Critical, "syslog:tcp"),
    ];
    for (msg, agent, level, source) in cases {
        let r = find(&recs, msg);
        assert_eq!(r.agent, agent, "{r:?}");
        assert_eq!(r.level, Some(level), "{r:?}");
        assert_eq!(r.host, host, "{r:?}");
        assert_eq!(r.source, source, "{r:?}");
    }
    assert_eq!(recs.len(), 5);
    let st = s.status();
    assert_eq!(st.lines_total, 5);
    assert_eq!(st.errors_total, 0, "{st:?}");
}

#[test]
fn python_syslog_handler_over_udp_and_tcp() {
    let s = Server::start(|_| {});
    let script = format!(
        r#"
import logging, logging.handlers, socket
for name, sock in (("pyudp", socket.SOCK_DGRAM), ("pytcp", socket.SOCK_STREAM)):
    h = logging.handlers.SysLogHandler(address=("127.0.0.1", {port_udp} if sock == socket.SOCK_DGRAM else {port_tcp}), socktype=sock)
    h.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    log = logging.getLogger(name)
    log.addHandler(h)
    log.setLevel(logging.DEBUG)
    log.error("payment failed for " + name)
    log.warning("retrying " + name)
    h.close()
"#,
        port_udp = s.udp.port(),
        port_tcp = s.tcp.port()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let recs = s.wait_for(4);
    for (name, source) in [("pyudp", "syslog:udp"), ("pytcp", "syslog:tcp")] {
        let r = find(&recs, &format!("payment failed for {name}"));
        assert_eq!(
            (
                r.agent.as_str(),
                r.level,
                r.host.as_str(),
                r.source.as_str()
            ),
            (name, Some(Level::Error), "127.0.0.1", source)
        );
        let r = find(&recs, &format!("retrying {name}"));
        assert_eq!(r.level, Some(Level::Warning));
    }
    assert_eq!(recs.len(), 4);
}

#[test]
fn half_a_frame_and_a_hang_is_closed_after_the_idle_timeout() {
    let s = Server::start(|c| c.idle_timeout = Duration::from_millis(300));
    let mut hung = TcpStream::connect(s.tcp).unwrap();
    hung.write_all(b"120 <13>1 2024-01-15T10:30:00Z h app - - - only part")
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let st = s.status();
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or("")
            .contains("unfinished message"),
        "{st:?}"
    );
    assert_eq!(st.connections, Some(0));
    let mut ok = TcpStream::connect(s.tcp).unwrap();
    ok.write_all(b"<13>1 2024-01-15T10:30:00Z h app - - - after the hang\n")
        .unwrap();
    drop(ok);
    let recs = s.wait_for(1);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].message, "after the hang");
}

#[test]
fn a_64k_datagram_arrives_whole_and_a_bigger_limit_breach_is_cut() {
    let s = Server::start(|_| {});
    let head = "<14>1 2024-01-15T10:30:00Z h big - - - ";
    let body = "x".repeat(65_507 - head.len());
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .send_to(format!("{head}{body}").as_bytes(), s.udp)
        .unwrap();
    let recs = s.wait_for(1);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].message.len(), body.len());
    drop(s);

    let s = Server::start(|c| c.max_message_bytes = 1000);
    client
        .send_to(format!("{head}{body}").as_bytes(), s.udp)
        .unwrap();
    let recs = s.wait_for(1);
    assert_eq!(recs[0].message.len(), 1000 - head.len());
    assert!(s.status().last_error.unwrap().contains("cut to 1000"));
}

#[test]
fn two_hundred_connections_at_once() {
    let s = Server::start(|_| {});
    let conns: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(s.tcp).unwrap())
        .collect();
    for (i, mut c) in conns.into_iter().enumerate() {
        let msg = format!("<13>1 2024-01-15T10:30:00Z h app - - - conn {i}");
        c.write_all(format!("{} {msg}", msg.len()).as_bytes())
            .unwrap();
    }
    let recs = s.wait_for(200);
    assert_eq!(recs.len(), 200);
    let mut got: Vec<usize> = recs
        .iter()
        .map(|r| r.message.strip_prefix("conn ").unwrap().parse().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
}

#[test]
fn a_flood_over_max_connections_is_refused_reported_and_survived() {
    let s = Server::start(|c| c.max_connections = 5);
    let held: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(s.tcp).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let extra: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(s.tcp).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let st = s.status();
    assert_eq!(st.connections, Some(5), "{st:?}");
    assert!(st.errors_total >= 20, "{st:?}");
    assert!(st.last_error.unwrap().contains("max_connections"));
    drop(extra);
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = TcpStream::connect(s.tcp).unwrap();
    c.write_all(b"<13>Jan 15 10:30:00 h app: still serving\n")
        .unwrap();
    drop(c);
    let recs = s.wait_for(1);
    assert_eq!(recs.last().unwrap().message, "still serving");
}

/// A sink that fails its first writes, as a store that is briefly unavailable.
struct FlakySink {
    failures_left: std::sync::atomic::AtomicU32,
    inner: MemorySink,
}

impl logyard_sources::Sink for FlakySink {
    fn write(&self, records: Vec<Record>) -> Result<(), logyard_sources::SinkError> {
        use std::sync::atomic::Ordering;
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(logyard_sources::SinkError::other("store unavailable"));
        }
        self.inner.write(records)
    }
}

#[test]
fn a_failing_sink_is_retried_and_nothing_is_dropped() {
    let mut cfg = SyslogConfig::new(Some("127.0.0.1:0"), None);
    cfg.batch_wait = Duration::from_millis(20);
    let mut src = SyslogSource::new("syslog", cfg).unwrap();
    let (udp, _) = src.bind().unwrap();
    let sink = Arc::new(FlakySink {
        failures_left: 3.into(),
        inner: MemorySink::new(),
    });
    let state = tempfile::tempdir().unwrap();
    let ctx = SourceContext::new(sink.clone(), state.path(), "collector");
    let running = spawn(Box::new(src), ctx.clone());
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50 {
        let m = format!("<13>1 2024-01-15T10:30:00Z h app - - - msg {i}");
        client.send_to(m.as_bytes(), udp.unwrap()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.inner.records().len() < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = running.status.snapshot();
    ctx.shutdown.trigger();
    running.join().unwrap();
    let msgs: Vec<String> = sink
        .inner
        .records()
        .iter()
        .map(|r| r.message.clone())
        .collect();
    assert_eq!(
        msgs,
        (0..50).map(|i| format!("msg {i}")).collect::<Vec<_>>()
    );
    assert_eq!(st.errors_total, 3);
    assert_eq!(st.state, logyard_sources::SourceState::Running);
}

#[test]
fn newline_framed_lines_may_start_with_a_digit() {
    let s = Server::start(|c| c.parse.format = Some("auto".into()));
    let mut c = TcpStream::connect(s.tcp).unwrap();
    c.write_all(b"2024-01-15 10:30:00 - ERROR - api - first\n")
        .unwrap();
    c.write_all(b"12").unwrap();
    c.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.write_all(b"34 plain digits\n").unwrap();
    drop(c);
    let recs = s.wait_for(2);
    let msgs: Vec<&str> = recs.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(msgs, ["first", "1234 plain digits"]);
    assert_eq!(recs[0].level, Some(Level::Error));
}

/// A sink that takes its time: the source stops reading while it writes.
struct SlowSink {
    inner: MemorySink,
}

impl logyard_sources::Sink for SlowSink {
    fn write(&self, records: Vec<Record>) -> Result<(), logyard_sources::SinkError> {
        std::thread::sleep(Duration::from_millis(100));
        self.inner.write(records)
    }
}

#[test]
fn datagrams_the_kernel_drops_are_counted() {
    let mut cfg = SyslogConfig::new(Some("127.0.0.1:0"), None);
    cfg.batch_wait = Duration::from_millis(20);
    cfg.receive_buffer = 4096;
    let mut src = SyslogSource::new("syslog", cfg).unwrap();
    let (udp, _) = src.bind().unwrap();
    let sink = Arc::new(SlowSink {
        inner: MemorySink::new(),
    });
    let state = tempfile::tempdir().unwrap();
    let ctx = SourceContext::new(sink.clone(), state.path(), "collector");
    let running = spawn(Box::new(src), ctx.clone());
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = 20_000u64;
    for i in 0..sent {
        let m = format!("<13>1 2024-01-15T10:30:00Z h app - - - msg {i}");
        client.send_to(m.as_bytes(), udp.unwrap()).unwrap();
    }
    // Every datagram sent is either stored or counted as dropped by the kernel.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut stored, mut dropped) = (0, 0);
    while Instant::now() < deadline {
        stored = sink.inner.records().len() as u64;
        dropped = running.status.snapshot().dropped_total.unwrap_or(0);
        if stored + dropped == sent {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = running.status.snapshot();
    ctx.shutdown.trigger();
    running.join().unwrap();
    assert!(dropped > 0, "a 4 KiB buffer overflows: {stored} stored");
    assert_eq!(stored + dropped, sent);
    let text = logyard_sources::render_prometheus(&[status]);
    assert!(
        text.contains(&format!(
            "logyard_source_dropped_total{{source=\"syslog\",type=\"syslog\"}} {dropped}"
        )),
        "{text}"
    );
}
