//! The RELP listener of the syslog source against a hand-written client over a real socket:
//! a session (open, a window of messages, close), answers sent only once the sink made the
//! messages durable and one write for a window, and the sessions it ends: a frame that is
//! not RELP, a wrong transaction number, a message before `open`, an oversized frame.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logyard_model::{Level, Record};
use logyard_sources::{
    spawn, MemorySink, RunningSource, Sink, SinkError, Source, SourceContext, SyslogConfig,
    SyslogSource,
};

/// A sink that counts its writes and holds them while its gate is shut.
#[derive(Default)]
struct GateSink {
    inner: MemorySink,
    writes: AtomicUsize,
    shut: AtomicBool,
}

impl Sink for GateSink {
    fn write(&self, records: Vec<Record>) -> Result<(), SinkError> {
        while self.shut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(records)
    }
}

struct Server {
    relp: SocketAddr,
    sink: Arc<GateSink>,
    ctx: SourceContext,
    running: Option<RunningSource>,
    _state: tempfile::TempDir,
}

impl Server {
    fn start(tune: impl FnOnce(&mut SyslogConfig)) -> Server {
        let mut cfg = SyslogConfig::new(None, None);
        cfg.listen_relp = Some("127.0.0.1:0".into());
        tune(&mut cfg);
        let mut src = SyslogSource::new("syslog", cfg).unwrap();
        src.bind().unwrap();
        let relp = src.relp_addr().unwrap();
        let sink = Arc::new(GateSink::default());
        let state = tempfile::tempdir().unwrap();
        let ctx = SourceContext::new(sink.clone(), state.path(), "collector");
        let running = spawn(Box::new(src) as Box<dyn Source>, ctx.clone());
        Server {
            relp,
            sink,
            ctx,
            running: Some(running),
            _state: state,
        }
    }

    fn status(&self) -> logyard_sources::SourceStatus {
        self.running.as_ref().unwrap().status.snapshot()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sink.shut.store(false, Ordering::SeqCst);
        self.ctx.shutdown.trigger();
        if let Some(r) = self.running.take() {
            r.join().unwrap();
        }
    }
}

/// A RELP client: writes frames, reads answers.
struct Client {
    out: TcpStream,
    inp: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let out = TcpStream::connect(addr).unwrap();
        out.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let inp = BufReader::new(out.try_clone().unwrap());
        Client { out, inp }
    }

    fn send(&mut self, txnr: u32, command: &str, data: &str) {
        let frame = if data.is_empty() {
            format!("{txnr} {command} 0\n")
        } else {
            format!("{txnr} {command} {} {data}\n", data.len())
        };
        self.out.write_all(frame.as_bytes()).unwrap();
    }

    fn open(&mut self) {
        self.send(
            1,
            "open",
            "relp_version=0\nrelp_software=test,1\ncommands=syslog",
        );
        let (txnr, cmd, data) = self.answer().expect("an answer to open");
        assert_eq!((txnr, cmd.as_str()), (1, "rsp"));
        assert!(data.starts_with("200 OK\n"), "{data:?}");
        assert!(data.contains("relp_version=0"), "{data:?}");
        assert!(data.contains("commands=syslog"), "{data:?}");
    }

    /// Reads one frame: `(txnr, command, data)`; `None` at the end of the stream.
    fn answer(&mut self) -> Option<(u32, String, String)> {
        let mut head = Vec::new();
        let mut fields = Vec::new();
        while fields.len() < 3 {
            let mut b = [0u8];
            if self.inp.read(&mut b).ok()? == 0 {
                return None;
            }
            match b[0] {
                b' ' | b'\n' => {
                    fields.push(String::from_utf8(std::mem::take(&mut head)).unwrap());
                    if b[0] == b'\n' {
                        break;
                    }
                }
                c => head.push(c),
            }
        }
        let txnr = fields[0].parse().unwrap();
        let len: usize = fields[2].parse().unwrap();
        let mut data = vec![0u8; len];
        if len > 0 {
            self.inp.read_exact(&mut data).unwrap();
            let mut nl = String::new();
            self.inp.read_line(&mut nl).unwrap();
            assert_eq!(nl, "\n");
        }
        Some((txnr, fields[1].clone(), String::from_utf8(data).unwrap()))
    }

    /// Reads until the server closes; returns what came.
    fn rest(&mut self) -> Vec<(u32, String, String)> {
        std::iter::from_fn(|| self.answer()).collect()
    }
}

fn message(i: usize) -> String {
    let pri = if i.is_multiple_of(2) { 11 } else { 14 };
    format!(
        "<{pri}>1 2026-03-07T10:00:{:02}Z web-7 billing 42 - - message {i}\n",
        i % 60
    )
}

#[test]
fn a_session_stores_every_message_and_answers_each_once_durable() {
    let s = Server::start(|_| {});
    let mut c = Client::connect(s.relp);
    c.open();
    let n = 300;
    // The whole window is sent before any answer is read, as omrelp does.
    for i in 0..n {
        c.send(i as u32 + 2, "syslog", &message(i));
    }
    for i in 0..n {
        let (txnr, cmd, data) = c.answer().expect("an answer");
        assert_eq!(
            (txnr, cmd.as_str(), data.as_str()),
            (i as u32 + 2, "rsp", "200 OK")
        );
    }
    let recs = s.sink.inner.records();
    assert_eq!(recs.len(), n, "every answered message is in the sink");
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.message, format!("message {i}"));
        assert_eq!(r.host, "web-7");
        assert_eq!(r.agent, "billing");
        assert_eq!(r.source, "syslog:relp");
        let level = if i.is_multiple_of(2) {
            Level::Error
        } else {
            Level::Info
        };
        assert_eq!(r.level, Some(level));
    }
    let writes = s.sink.writes.load(Ordering::SeqCst);
    assert!(writes < n / 4, "{writes} writes for {n} messages");
    c.send(n as u32 + 2, "close", "");
    assert_eq!(
        c.rest(),
        [
            (n as u32 + 2, "rsp".to_string(), String::new()),
            (0, "serverclose".to_string(), String::new())
        ]
    );
    assert_eq!(s.status().errors_total, 0);
    assert_eq!(s.status().lines_total, n as u64);
}

#[test]
fn no_answer_before_the_sink_made_the_messages_durable() {
    let s = Server::start(|_| {});
    let mut c = Client::connect(s.relp);
    c.open();
    s.sink.shut.store(true, Ordering::SeqCst);
    for i in 0..5 {
        c.send(i + 2, "syslog", &message(i as usize));
    }
    c.out
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut b = [0u8];
    let early = c.inp.read(&mut b);
    assert!(
        early.is_err(),
        "an answer came while the sink held the write: {early:?}"
    );
    assert!(s.sink.inner.records().is_empty());
    s.sink.shut.store(false, Ordering::SeqCst);
    c.out
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for i in 0..5 {
        let (txnr, _, data) = c.answer().expect("an answer");
        assert_eq!((txnr, data.as_str()), (i + 2, "200 OK"));
    }
    assert_eq!(s.sink.inner.records().len(), 5);
}

#[test]
fn a_frame_that_is_not_relp_ends_the_session_with_a_reported_error() {
    let s = Server::start(|_| {});
    let mut c = Client::connect(s.relp);
    c.out.write_all(b"hello there\n").unwrap();
    assert_eq!(c.rest(), [(0, "serverclose".to_string(), String::new())]);
    let status = s.status();
    assert_eq!(status.errors_total, 1);
    let err = status.last_error.unwrap();
    assert!(err.contains("transaction number"), "{err}");
    // The listener goes on.
    let mut c = Client::connect(s.relp);
    c.open();
}

#[test]
fn a_wrong_transaction_number_or_a_message_before_open_is_answered_500() {
    let s = Server::start(|_| {});
    let mut c = Client::connect(s.relp);
    c.open();
    c.send(2, "syslog", &message(0));
    c.send(7, "syslog", &message(1));
    let got = c.rest();
    assert_eq!(got[0], (2, "rsp".into(), "200 OK".into()));
    assert_eq!(got[1].0, 7);
    assert!(got[1].2.starts_with("500 "), "{got:?}");
    assert!(
        got[1].2.contains("2 was due") || got[1].2.contains("3 was due"),
        "{got:?}"
    );
    assert_eq!(got[2], (0, "serverclose".into(), String::new()));
    assert_eq!(s.sink.inner.records().len(), 1);

    let mut c = Client::connect(s.relp);
    c.send(1, "syslog", &message(0));
    let got = c.rest();
    assert!(got[0].2.starts_with("500 "), "{got:?}");
    assert!(got[0].2.contains("before `open`"), "{got:?}");
    assert_eq!(s.status().errors_total, 2);
}

#[test]
fn a_frame_over_max_message_bytes_is_refused_before_its_data_is_read() {
    let s = Server::start(|c| c.max_message_bytes = 100);
    let mut c = Client::connect(s.relp);
    c.open();
    // Only the header: the server must not wait for the 5000 bytes.
    c.out.write_all(b"2 syslog 5000 ").unwrap();
    let got = c.rest();
    assert_eq!(got[0].0, 2);
    assert!(got[0].2.starts_with("500 "), "{got:?}");
    assert!(got[0].2.contains("max_message_bytes (100)"), "{got:?}");
    assert_eq!(got[1].1, "serverclose");
    assert!(s.sink.inner.records().is_empty());
    assert!(s.status().last_error.unwrap().contains("max_message_bytes"));
}

#[test]
fn stopping_answers_what_was_stored_then_says_serverclose() {
    let s = Server::start(|c| c.batch_wait = Duration::from_millis(20));
    let mut c = Client::connect(s.relp);
    c.open();
    c.send(2, "syslog", &message(0));
    assert_eq!(c.answer().unwrap(), (2, "rsp".into(), "200 OK".into()));
    let started = Instant::now();
    s.ctx.shutdown.trigger();
    let got = c.rest();
    assert_eq!(got, [(0, "serverclose".to_string(), String::new())]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_idle_session_is_closed_without_an_error_and_a_half_frame_with_one() {
    let s = Server::start(|c| c.idle_timeout = Duration::from_millis(300));
    let mut c = Client::connect(s.relp);
    c.open();
    c.send(2, "syslog", &message(0));
    assert_eq!(c.answer().unwrap(), (2, "rsp".into(), "200 OK".into()));
    assert_eq!(c.rest(), [(0, "serverclose".to_string(), String::new())]);
    assert_eq!(s.status().errors_total, 0);

    let mut c = Client::connect(s.relp);
    c.open();
    c.out.write_all(b"2 syslog 50 <11>1 - h").unwrap();
    assert_eq!(c.rest(), [(0, "serverclose".to_string(), String::new())]);
    let status = s.status();
    assert_eq!(status.errors_total, 1);
    assert!(
        status.last_error.unwrap().contains("unfinished frame"),
        "{:?}",
        s.status()
    );
    assert_eq!(s.sink.inner.records().len(), 1);
}
