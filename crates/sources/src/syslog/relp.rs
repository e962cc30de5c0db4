//! Syslog over RELP (the Reliable Event Logging Protocol of rsyslog's `omrelp` and librelp):
//! a message is acknowledged only once it is durable, so a sender that keeps what was not
//! acknowledged loses nothing when logyard crashes.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. The client opens the session with
//! `open` (its offers), sends messages with `syslog` (one message each) and ends with
//! `close`; the server answers each command with `TXNR rsp DATALEN [SP DATA] LF`, in the
//! order of the commands, and announces its own end with `0 serverclose 0`. Transaction
//! numbers start at 1 and grow by one per command (after 999999999 comes 1).
//!
//! Each `syslog` message goes to the source's batch with an acknowledgement channel; the
//! batch loop answers every message of a batch after one durable write of it, so a window
//! of messages (omrelp sends up to 128 unanswered) costs one fsync, not one each. A frame
//! that breaks the format, a wrong transaction number or a message over
//! `max_message_bytes` is answered `500` (when its transaction number could be read),
//! reported, and ends the session.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Message, SyslogConfig};
use crate::status::StatusHandle;

/// The records' `source`.
const SOURCE: &str = "syslog:relp";

/// The largest transaction number; the next one is 1.
const MAX_TXNR: u32 = 999_999_999;

/// The longest command name (librelp's limit).
const MAX_COMMAND: usize = 32;

/// One received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub txnr: u32,
    pub command: String,
    pub data: Vec<u8>,
}

/// Why a stream of bytes is not RELP; the session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError {
    /// The frame's transaction number, when it could be read (the `500` answer carries it).
    pub txnr: Option<u32>,
    pub why: String,
}

impl FrameError {
    fn new(txnr: Option<u32>, why: impl Into<String>) -> FrameError {
        FrameError {
            txnr,
            why: why.into(),
        }
    }
}

/// Splits received bytes into frames.
#[derive(Debug)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    /// Where the unread frames start in `buf` (the frames before were taken).
    start: usize,
    /// The longest DATA accepted (`max_message_bytes`, or the open offers' room).
    max_data: usize,
}

/// How far a frame's header was read.
enum Header {
    /// More bytes are needed.
    Partial,
    /// TXNR, COMMAND, DATALEN and the index of the byte after DATALEN's digits.
    Done(u32, String, usize, usize),
}

impl Framer {
    /// A framer that refuses DATA longer than `max_data` bytes.
    pub(crate) fn new(max_data: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            max_data,
        }
    }

    /// Adds received bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        // Taken frames are dropped here, once per read rather than once per frame.
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet part of a whole frame.
    pub(crate) fn held(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Returns the next whole frame, `None` until one is complete, or why the bytes are
    /// not RELP.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let (txnr, command, len, at) = match self.header()? {
            Header::Partial => return Ok(None),
            Header::Done(t, c, l, a) => (t, c, l, a),
        };
        let (data, end) = if len == 0 {
            (Vec::new(), at)
        } else {
            if len > self.max_data {
                return Err(FrameError::new(
                    Some(txnr),
                    format!(
                        "a `{command}` frame of {len} bytes is longer than max_message_bytes ({})",
                        self.max_data
                    ),
                ));
            }
            let b = &self.buf[self.start..];
            match b.get(at) {
                None => return Ok(None),
                Some(b' ') => {}
                Some(_) => {
                    return Err(FrameError::new(
                        Some(txnr),
                        "no space between DATALEN and the data",
                    ))
                }
            }
            let end = at + 1 + len;
            if b.len() <= end {
                return Ok(None);
            }
            (b[at + 1..end].to_vec(), end)
        };
        match self.buf[self.start..].get(end) {
            None => return Ok(None),
            Some(b'\n') => {}
            Some(_) => {
                return Err(FrameError::new(
                    Some(txnr),
                    format!("the frame does not end with a newline after its {len} data bytes"),
                ))
            }
        }
        self.start += end + 1;
        Ok(Some(Frame {
            txnr,
            command,
            data,
        }))
    }

    /// Reads `TXNR SP COMMAND SP DATALEN` from the start of the buffer.
    fn header(&self) -> Result<Header, FrameError> {
        let b = &self.buf[self.start..];
        let digits = |from: usize, what: &str, txnr: Option<u32>| {
            let n = b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n > 9 {
                return Err(FrameError::new(
                    txnr,
                    format!("{what} has more than 9 digits"),
                ));
            }
            Ok(n)
        };
        let n = digits(0, "the transaction number", None)?;
        if n == b.len() {
            return Ok(Header::Partial);
        }
        if n == 0 || b[n] != b' ' {
            return Err(FrameError::new(
                None,
                "a frame must start with its transaction number and a space",
            ));
        }
        let txnr: u32 = parse_digits(&b[..n]);
        let cmd_start = n + 1;
        let c = b[cmd_start..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        if c > MAX_COMMAND {
            return Err(FrameError::new(
                Some(txnr),
                format!("a command is at most {MAX_COMMAND} letters"),
            ));
        }
        if cmd_start + c == b.len() {
            return Ok(Header::Partial);
        }
        if c == 0 || b[cmd_start + c] != b' ' {
            return Err(FrameError::new(
                Some(txnr),
                "the command must be letters followed by a space",
            ));
        }
        let command = String::from_utf8_lossy(&b[cmd_start..cmd_start + c]).into_owned();
        let len_start = cmd_start + c + 1;
        let l = digits(len_start, "DATALEN", Some(txnr))?;
        if len_start + l == b.len() {
            return Ok(Header::Partial);
        }
        if l == 0 {
            return Err(FrameError::new(Some(txnr), "DATALEN must be a number"));
        }
        let len = parse_digits(&b[len_start..len_start + l]) as usize;
        Ok(Header::Done(txnr, command, len, len_start + l))
    }
}

/// The value of at most 9 ASCII digits.
fn parse_digits(d: &[u8]) -> u32 {
    d.iter()
        .fold(0u32, |n, c| n * 10 + u32::from(c.saturating_sub(b'0')))
}

/// The transaction number after `txnr`.
fn next_txnr(txnr: u32) -> u32 {
    if txnr >= MAX_TXNR {
        1
    } else {
        txnr + 1
    }
}

/// An answer frame: `TXNR rsp LEN [SP DATA] LF`.
pub(crate) fn rsp(txnr: u32, data: &str) -> Vec<u8> {
    if data.is_empty() {
        format!("{txnr} rsp 0\n").into_bytes()
    } else {
        format!("{txnr} rsp {} {data}\n", data.len()).into_bytes()
    }
}

/// The frame that tells the client the server ends the session.
const SERVERCLOSE: &[u8] = b"0 serverclose 0\n";

/// What the writer of a session sends next, in the order of the commands.
enum Answer {
    /// Bytes to send now (after the answers before them).
    Now(Vec<u8>),
    /// `200 OK` for a message once the batch loop says it is durable; if it says it was not
    /// kept, the session ends unanswered (the client sends the message again).
    Durable(u32, oneshot::Receiver<bool>),
    /// The session ends after the answers before.
    Close,
}

/// Accepts RELP sessions; refuses (closes) those over `max_connections` (counted with the
/// TCP listener's in `open`) and reports them. `live` is held by each session until it
/// has sent its last answer, so that a stopping source can wait for them.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tx: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
    cfg: Arc<SyslogConfig>,
    status: StatusHandle,
    open: Arc<AtomicU64>,
    live: mpsc::Sender<()>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    status.input_error(format!("cannot accept a RELP connection: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if open.load(Ordering::SeqCst) >= cfg.max_connections as u64 {
            status.input_error(format!(
                "refused a RELP connection from {peer}: {} connections open (max_connections)",
                cfg.max_connections
            ));
            drop(stream);
            continue;
        }
        status.set_connections(open.fetch_add(1, Ordering::SeqCst) + 1);
        let (tx, stop, cfg, status, open, live) = (
            tx.clone(),
            stop.clone(),
            cfg.clone(),
            status.clone(),
            open.clone(),
            live.clone(),
        );
        tokio::spawn(async move {
            session(stream, peer, tx, stop, &cfg, &status).await;
            status.set_connections(open.fetch_sub(1, Ordering::SeqCst) - 1);
            drop(live);
        });
    }
}

/// Serves one RELP session: reads commands, queues messages, and has a writer task send
/// the answers in order.
async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    tx: mpsc::Sender<Message>,
    stop: watch::Receiver<bool>,
    cfg: &SyslogConfig,
    status: &StatusHandle,
) {
    let _ = stream.set_nodelay(true);
    let (mut read, write) = stream.into_split();
    // Room for omrelp's window (128) many times over; a full queue stops reading.
    let (answers, queue) = mpsc::channel::<Answer>(1024);
    let mut writer = tokio::spawn(write_answers(write, queue, peer, status.clone()));
    tokio::select! {
        // The reader ends first (its `answers` dropped): the writer sends what is left.
        _ = read_commands(&mut read, peer, &tx, stop, cfg, status, answers) => {
            let _ = writer.await;
        }
        // The writer ends first (a message not kept, the client gone): so does the session.
        _ = &mut writer => {}
    }
}

/// Sends the answers in order until the session ends.
async fn write_answers(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut queue: mpsc::Receiver<Answer>,
    peer: SocketAddr,
    status: StatusHandle,
) {
    while let Some(a) = queue.recv().await {
        let bytes = match a {
            Answer::Now(b) => b,
            Answer::Durable(txnr, kept) => match kept.await {
                Ok(true) => rsp(txnr, "200 OK"),
                _ => {
                    // Not kept (the source stopped first): no answer, so the client keeps
                    // the message and sends it again to the next session.
                    status.input_error(format!(
                        "ended the RELP session of {peer}: message {txnr} was not stored"
                    ));
                    break;
                }
            },
            Answer::Close => break,
        };
        if write.write_all(&bytes).await.is_err() {
            break;
        }
    }
    let _ = write.shutdown().await;
}

/// Reads frames until the client closes, the session breaks, idles too long or the
/// source stops.
async fn read_commands(
    read: &mut tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    tx: &mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
    cfg: &SyslogConfig,
    status: &StatusHandle,
    answers: mpsc::Sender<Answer>,
) {
    let answers = &answers;
    let mut framer = Framer::new(cfg.max_message_bytes);
    let mut buf = vec![0u8; 64 * 1024];
    let mut expect = 1u32;
    let mut opened = false;
    let fail = |txnr: Option<u32>, why: String| async move {
        tracing::warn!(peer = %peer, "RELP: {why}");
        status.input_error(format!("ended the RELP session of {peer}: {why}"));
        if let Some(t) = txnr {
            let _ = answers
                .send(Answer::Now(rsp(t, &format!("500 {why}"))))
                .await;
        }
        let _ = answers.send(Answer::Now(SERVERCLOSE.to_vec())).await;
        let _ = answers.send(Answer::Close).await;
    };
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(cfg.idle_timeout, read.read(&mut buf)) => r,
            _ = stop.changed() => {
                // Stopping: the answers of what was queued go out first.
                let _ = answers.send(Answer::Now(SERVERCLOSE.to_vec())).await;
                return;
            }
        };
        let n = match read {
            Err(_) if framer.held() == 0 => {
                // A quiet sender is no error: its next message opens a new session.
                tracing::debug!(peer = %peer, "RELP: closing a session idle for idle_timeout");
                let _ = answers.send(Answer::Now(SERVERCLOSE.to_vec())).await;
                let _ = answers.send(Answer::Close).await;
                return;
            }
            Err(_) => {
                let why = format!(
                    "nothing received for {:?} (idle_timeout), with {} bytes of an unfinished frame",
                    cfg.idle_timeout,
                    framer.held()
                );
                fail(None, why).await;
                return;
            }
            Ok(Err(e)) => {
                status.input_error(format!("RELP connection from {peer}: {e}"));
                return;
            }
            Ok(Ok(0)) => {
                if framer.held() > 0 {
                    status.input_error(format!(
                        "the RELP connection from {peer} closed inside a frame ({} bytes)",
                        framer.held()
                    ));
                }
                return;
            }
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        loop {
            let frame = match framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    fail(e.txnr, e.why).await;
                    return;
                }
            };
            if frame.txnr != expect {
                let why = format!("transaction number {} where {expect} was due", frame.txnr);
                fail(Some(frame.txnr), why).await;
                return;
            }
            expect = next_txnr(expect);
            let answer = match (frame.command.as_str(), opened) {
                ("open", _) => match open_answer(&frame.data) {
                    Ok(offers) => {
                        opened = true;
                        Answer::Now(rsp(frame.txnr, &offers))
                    }
                    Err(why) => {
                        fail(Some(frame.txnr), why).await;
                        return;
                    }
                },
                ("close", _) => {
                    let _ = answers.send(Answer::Now(rsp(frame.txnr, ""))).await;
                    let _ = answers.send(Answer::Now(SERVERCLOSE.to_vec())).await;
                    let _ = answers.send(Answer::Close).await;
                    return;
                }
                (_, false) => {
                    let why = format!("`{}` before `open`", frame.command);
                    fail(Some(frame.txnr), why).await;
                    return;
                }
                ("syslog", true) => {
                    let mut m = &frame.data[..];
                    while let [rest @ .., b'\n' | b'\r' | 0] = m {
                        m = rest;
                    }
                    if m.is_empty() {
                        Answer::Now(rsp(frame.txnr, "200 OK"))
                    } else {
                        let (ack, kept) = oneshot::channel();
                        let msg = Message {
                            bytes: m.to_vec(),
                            source: SOURCE,
                            peer,
                            ack: Some(ack),
                        };
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                        Answer::Durable(frame.txnr, kept)
                    }
                }
                (other, true) => {
                    status.input_error(format!(
                        "RELP session of {peer}: unknown command `{other}` answered 500"
                    ));
                    Answer::Now(rsp(frame.txnr, "500 unknown command"))
                }
            };
            if answers.send(answer).await.is_err() {
                return;
            }
        }
    }
}

/// The answer to `open`: `200 OK` and the server's offers, or why the client's offers do
/// not do.
fn open_answer(data: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        if name == "commands" && !value.split(',').any(|c| c == "syslog") {
            return Err(format!(
                "the client offers the commands {value:?}, and this server takes only `syslog`"
            ));
        }
    }
    Ok(format!(
        "200 OK\nrelp_version=0\nrelp_software=logyard,{}\ncommands=syslog",
        env!("CARGO_PKG_VERSION")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> (Vec<Frame>, Option<FrameError>) {
        // Fed one byte at a time: a frame may arrive in any number of reads.
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for b in input {
            f.push(&[*b]);
            loop {
                match f.next_frame() {
                    Ok(Some(fr)) => out.push(fr),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    #[test]
    fn reads_frames_split_anywhere() {
        let input = b"1 open 30 relp_version=0\ncommands=syslog\n2 syslog 5 hello\n3 close 0\n";
        let (got, err) = frames(input, 100);
        assert_eq!(err, None);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].command, "open");
        assert_eq!(got[0].data, b"relp_version=0\ncommands=syslog");
        assert_eq!(
            got[1],
            Frame {
                txnr: 2,
                command: "syslog".into(),
                data: b"hello".to_vec()
            }
        );
        assert_eq!(got[2].data, b"");
        // In one read, and in two reads split inside the second frame.
        for cut in [input.len(), 40] {
            let mut f = Framer::new(100);
            let mut got = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                f.push(part);
                while let Some(fr) = f.next_frame().unwrap() {
                    got.push(fr.txnr);
                }
            }
            assert_eq!(got, [1, 2, 3]);
            assert_eq!(f.held(), 0);
        }
        // Data may hold newlines and spaces: DATALEN counts them.
        let (got, err) = frames(b"7 syslog 6 a\nb c\n\n", 100);
        assert_eq!(err, None);
        assert_eq!(got[0].data, b"a\nb c\n");
    }

    #[test]
    fn refuses_what_is_not_relp() {
        for (input, txnr) in [
            (&b"hello world\n"[..], None),
            (b"1234567890 syslog 1 x\n", None),
            (b"1 sys-log 1 x\n", Some(1)),
            (b"1 syslog x\n", Some(1)),
            (b"1 syslog 3 abcX", Some(1)),
            (b"1 syslog 3abc\n", Some(1)),
            (b"1 close 0 \n", Some(1)),
        ] {
            let (_, err) = frames(input, 100);
            let err =
                err.unwrap_or_else(|| panic!("{:?} was taken", String::from_utf8_lossy(input)));
            assert_eq!(err.txnr, txnr, "{err:?}");
        }
    }

    #[test]
    fn refuses_data_over_the_limit_before_reading_it() {
        let mut f = Framer::new(10);
        f.push(b"4 syslog 11 ");
        let err = f.next_frame().unwrap_err();
        assert_eq!(err.txnr, Some(4));
        assert!(err.why.contains("max_message_bytes (10)"), "{}", err.why);
        let (got, err) = frames(b"4 syslog 10 0123456789\n", 10);
        assert_eq!((got.len(), err), (1, None));
    }

    proptest::proptest! {
        /// Any bytes, in any reads: frames within the limit or an error, never a panic.
        #[test]
        fn any_bytes_give_frames_or_an_error(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            cut in 0usize..400,
        ) {
            let mut f = Framer::new(64);
            let cut = cut.min(bytes.len());
            'reads: for part in [&bytes[..cut], &bytes[cut..]] {
                f.push(part);
                loop {
                    match f.next_frame() {
                        Ok(Some(fr)) => proptest::prop_assert!(fr.data.len() <= 64),
                        Ok(None) => break,
                        Err(_) => break 'reads,
                    }
                }
            }
        }

        /// Frames written as librelp writes them are read back whole, however split.
        #[test]
        fn written_frames_read_back(
            msgs in proptest::collection::vec("[ -~\n]{0,40}", 1..8),
            cut in 0usize..400,
        ) {
            let mut wire = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                let frame = if m.is_empty() {
                    format!("{} syslog 0\n", i + 1)
                } else {
                    format!("{} syslog {} {m}\n", i + 1, m.len())
                };
                wire.extend_from_slice(frame.as_bytes());
            }
            let cut = cut.min(wire.len());
            let mut f = Framer::new(64);
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                f.push(part);
                while let Some(fr) = f.next_frame().unwrap() {
                    got.push(String::from_utf8(fr.data).unwrap());
                }
            }
            proptest::prop_assert_eq!(got, msgs);
        }
    }

    #[test]
    fn answers_and_transaction_numbers() {
        assert_eq!(rsp(3, "200 OK"), b"3 rsp 6 200 OK\n");
        assert_eq!(rsp(9, ""), b"9 rsp 0\n");
        assert_eq!(next_txnr(1), 2);
        assert_eq!(next_txnr(MAX_TXNR), 1);
        let offers =
            open_answer(b"relp_version=0\nrelp_software=librelp,1.11.0,http://x\ncommands=syslog")
                .unwrap();
        assert!(offers.starts_with("200 OK\nrelp_version=0\n"), "{offers}");
        assert!(offers.ends_with("\ncommands=syslog"), "{offers}");
        assert!(open_answer(b"relp_version=0\ncommands=eventlog").is_err());
    }
}
