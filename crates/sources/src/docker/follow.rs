//! Following one container's log through the Engine API: the daemon's pieces of stdout,
//! stderr or TTY output become lines with their time, and the lines a previous reading took
//! already are skipped.
//!
//! With `timestamps=true` the daemon starts every message with its RFC 3339 time and a
//! space. A message that the daemon split (a line over 16 KiB) comes as several frames
//! without a newline, each with its own time: the parts are joined and the line keeps the
//! first part's time. A TTY container's output is one raw stream whose pieces may cut lines
//! anywhere: it is split at newlines.

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::engine::{Chunk, Engine, EngineError};
use super::position::{Position, Skipper, SAME_TIME_KEPT};

/// A line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    /// The container's full id.
    pub id: String,
    /// The daemon's time of the line (ns since the epoch).
    pub ns: i64,
    /// A hash of the stream and the text, to tell lines of one instant apart.
    pub hash: u64,
    /// `stdout` or `stderr` (a TTY container's output is `stdout`).
    pub stream: &'static str,
    /// The line, without its time and newline.
    pub text: Vec<u8>,
}

/// What a follow task tells the run loop.
#[derive(Debug)]
pub(crate) enum Event {
    /// A line not taken before.
    Line(LogLine),
    /// The log stream ended: the container stopped, was removed, or the daemon went away.
    Ended {
        /// The container's full id.
        id: String,
        /// Why, when it was not a plain end.
        error: Option<EngineError>,
    },
}

/// Splits the daemon's pieces into lines; see the module documentation.
#[derive(Debug)]
pub(crate) struct Assembler {
    /// Longer lines are given out in pieces of this size (the parser cuts and marks them).
    max: usize,
    /// The unfinished line of stdout, stderr and the TTY stream.
    tails: [Vec<u8>; 3],
    /// The time of the last line: the time of a line that carries none.
    last_ns: i64,
}

impl Assembler {
    /// An assembler for lines of at most `max` bytes.
    pub fn new(max: usize) -> Assembler {
        Assembler {
            max: max.max(64),
            tails: Default::default(),
            last_ns: 0,
        }
    }

    /// Takes one piece; appends the lines it completes to `out`.
    pub fn push(&mut self, id: &str, chunk: &Chunk, out: &mut Vec<LogLine>) {
        let (slot, bytes, framed): (usize, &Bytes, bool) = match chunk {
            Chunk::Stdout(b) => (0, b, true),
            Chunk::Stderr(b) => (1, b, true),
            Chunk::Console(b) => (2, b, false),
        };
        let mut bytes: &[u8] = bytes;
        if framed && !self.tails[slot].is_empty() {
            // The next part of a split message: its time is the first part's.
            if let Some((_, rest)) = split_time(bytes) {
                bytes = rest;
            }
        }
        while !bytes.is_empty() {
            match bytes.iter().position(|&c| c == b'\n') {
                Some(nl) => {
                    self.tails[slot].extend_from_slice(&bytes[..nl]);
                    bytes = &bytes[nl + 1..];
                    self.emit(id, slot, out);
                }
                None => {
                    self.tails[slot].extend_from_slice(bytes);
                    bytes = &[];
                }
            }
            if self.tails[slot].len() > self.max + 64 {
                self.emit(id, slot, out);
            }
        }
    }

    /// Gives out the unfinished lines (at the end of the stream).
    pub fn finish(&mut self, id: &str, out: &mut Vec<LogLine>) {
        for slot in 0..3 {
            if !self.tails[slot].is_empty() {
                self.emit(id, slot, out);
            }
        }
    }

    fn emit(&mut self, id: &str, slot: usize, out: &mut Vec<LogLine>) {
        let line = std::mem::take(&mut self.tails[slot]);
        let (ns, text) = match split_time(&line) {
            Some((ns, rest)) => (ns, rest),
            None => (self.last_ns, &line[..]),
        };
        let mut text = text.to_vec();
        if text.last() == Some(&b'\r') {
            text.pop();
        }
        self.last_ns = self.last_ns.max(ns);
        let stream = if slot == 1 { "stderr" } else { "stdout" };
        out.push(LogLine {
            id: id.to_string(),
            ns,
            hash: line_hash(stream, &text),
            stream,
            text,
        });
    }
}

/// Splits `2024-01-15T10:30:00.123456789Z rest` into the time and the rest.
fn split_time(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let sp = bytes.iter().take(40).position(|&c| c == b' ')?;
    let stamp = std::str::from_utf8(&bytes[..sp]).ok()?;
    if sp < 20 || !stamp.as_bytes()[0].is_ascii_digit() || stamp.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let ns = logyard_model::parse_time(stamp, 0).ok()?;
    Some((ns, &bytes[sp + 1..]))
}

/// The text of a frame the daemon sent of its own (the 8-byte header, then the message).
fn daemon_error(raw: &[u8]) -> String {
    let body = match raw {
        [3, 0, 0, 0, _, _, _, _, rest @ ..] => rest,
        other => other,
    };
    let text = String::from_utf8_lossy(body);
    text.trim().chars().take(512).collect()
}

/// FNV-1a of the stream's name and the line.
fn line_hash(stream: &str, text: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in stream.as_bytes().iter().chain(&[0]).chain(text) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Follows a container's log from `from` until it ends, sending the lines not taken before,
/// then [`Event::Ended`]. For a container without a TTY, the daemon sends stdout and stderr
/// frames only, and one frame of its own type when it fails to read the log; the client
/// hands such a frame over as raw bytes: it ends the stream with the daemon's message as the
/// error.
pub(crate) async fn follow(
    engine: Engine,
    id: String,
    tty: bool,
    from: Position,
    max_line_bytes: usize,
    tx: mpsc::Sender<Event>,
) {
    let mut skipper = Skipper::new(&from);
    let mut floors = Floors::default();
    let mut asm = Assembler::new(max_line_bytes);
    let mut stream = engine.logs(&id, from.since_secs());
    let mut error = None;
    let mut lines = Vec::new();
    loop {
        let item = stream.next().await;
        match item {
            Some(Ok(Chunk::Console(raw))) if !tty => {
                error = Some(EngineError::Other(format!(
                    "the daemon failed to read the log: {}",
                    daemon_error(&raw)
                )));
                break;
            }
            Some(Ok(chunk)) => asm.push(&id, &chunk, &mut lines),
            Some(Err(e)) => {
                error = Some(e);
                break;
            }
            None => break,
        }
        if !send(&tx, &mut skipper, &mut floors, &mut lines).await {
            return;
        }
    }
    asm.finish(&id, &mut lines);
    if !send(&tx, &mut skipper, &mut floors, &mut lines).await {
        return;
    }
    let _ = tx.send(Event::Ended { id, error }).await;
}

/// The time of the last line sent of each stream of one follow, and the lines sent at that
/// time. The daemon times a stream's lines in the order it writes them, so a line older than
/// its stream's last one is one the daemon sent again; when it rotates the log under a
/// follow it also sends the line at the boundary again, with the same time: a line of that
/// very time already sent is dropped too. (Two equal lines of one stream would need the same
/// nanosecond from the daemon's clock to be taken for one.) Stdout and stderr are timed by
/// two writers and may interleave out of order, so each has its own floor.
#[derive(Debug, Default)]
struct Floors {
    stdout: Floor,
    stderr: Floor,
}

/// One stream's floor: see [`Floors`].
#[derive(Debug, Default)]
struct Floor {
    ns: i64,
    /// Hashes of the lines sent at `ns`, at most [`SAME_TIME_KEPT`].
    at_ns: Vec<u64>,
}

impl Floors {
    /// True when `line` was sent before (older than its stream's last line, or that same
    /// line again); else moves the floor past it.
    fn sent_before(&mut self, line: &LogLine) -> bool {
        let floor = if line.stream == "stderr" {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        if line.ns < floor.ns || line.ns == floor.ns && floor.at_ns.contains(&line.hash) {
            return true;
        }
        if line.ns > floor.ns {
            floor.ns = line.ns;
            floor.at_ns.clear();
        }
        if floor.at_ns.len() < SAME_TIME_KEPT {
            floor.at_ns.push(line.hash);
        }
        false
    }
}

/// Sends the lines not taken before; false when the run loop is gone.
async fn send(
    tx: &mpsc::Sender<Event>,
    skipper: &mut Skipper,
    floors: &mut Floors,
    lines: &mut Vec<LogLine>,
) -> bool {
    for line in lines.drain(..) {
        if skipper.skip(line.ns, line.hash) || floors.sent_before(&line) {
            continue;
        }
        if tx.send(Event::Line(line)).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_older_than_its_streams_last_or_the_same_again_is_a_resend() {
        let line = |stream: &'static str, ns: i64, hash: u64| LogLine {
            id: "c".into(),
            ns,
            hash,
            stream,
            text: Vec::new(),
        };
        let mut floors = Floors::default();
        assert!(!floors.sent_before(&line("stdout", 10, 1)));
        assert!(!floors.sent_before(&line("stdout", 20, 1)));
        // stderr's writer may time a line before stdout's last one: still new.
        assert!(!floors.sent_before(&line("stderr", 15, 1)));
        assert!(floors.sent_before(&line("stdout", 15, 1)), "sent again");
        assert!(
            !floors.sent_before(&line("stdout", 20, 2)),
            "another line of the same time"
        );
        assert!(
            floors.sent_before(&line("stdout", 20, 1)),
            "the line at the boundary again (a rotation under the follow)"
        );
        assert!(floors.sent_before(&line("stdout", 20, 2)));
        assert!(!floors.sent_before(&line("stdout", 21, 1)));
        assert!(floors.sent_before(&line("stderr", 14, 1)));
    }

    fn texts(lines: &[LogLine]) -> Vec<(&str, String)> {
        lines
            .iter()
            .map(|l| (l.stream, String::from_utf8_lossy(&l.text).into_owned()))
            .collect()
    }

    #[test]
    fn frames_become_lines_and_split_messages_are_joined() {
        let mut a = Assembler::new(1 << 20);
        let mut out = Vec::new();
        let out_frame = |s: &str| Chunk::Stdout(Bytes::from(s.to_string()));
        a.push("c", &out_frame("2024-01-15T10:30:00.5Z hello\n"), &mut out);
        a.push(
            "c",
            &out_frame("2024-01-15T10:30:01Z first part "),
            &mut out,
        );
        a.push(
            "c",
            &Chunk::Stderr(Bytes::from("2024-01-15T10:30:01.2Z oops\n")),
            &mut out,
        );
        a.push(
            "c",
            &out_frame("2024-01-15T10:30:02Z and the rest\n"),
            &mut out,
        );
        assert_eq!(
            texts(&out),
            [
                ("stdout", "hello".to_string()),
                ("stderr", "oops".to_string()),
                ("stdout", "first part and the rest".to_string()),
            ]
        );
        assert_eq!(out[0].ns, 1_705_314_600_500_000_000);
        assert_eq!(
            out[2].ns, 1_705_314_601_000_000_000,
            "the first part's time"
        );
    }

    #[test]
    fn tty_output_is_split_at_newlines_wherever_pieces_end() {
        let mut a = Assembler::new(1 << 20);
        let mut out = Vec::new();
        for piece in [
            "2024-01-15T10:30:00Z a\r",
            "\n2024-01-15T10:3",
            "0:01Z b\n2024-01-15T10:30:02Z c",
        ] {
            a.push("c", &Chunk::Console(Bytes::from(piece)), &mut out);
        }
        a.finish("c", &mut out);
        assert_eq!(
            texts(&out),
            [
                ("stdout", "a".to_string()),
                ("stdout", "b".to_string()),
                ("stdout", "c".to_string())
            ]
        );
    }

    #[test]
    fn a_line_without_time_takes_the_last_one_and_long_lines_are_cut() {
        let mut a = Assembler::new(64);
        let mut out = Vec::new();
        a.push(
            "c",
            &Chunk::Stdout(Bytes::from("2024-01-15T10:30:00Z x\n")),
            &mut out,
        );
        a.push("c", &Chunk::Stdout(Bytes::from("no time here\n")), &mut out);
        assert_eq!(out[1].ns, out[0].ns);
        assert_eq!(out[1].text, b"no time here");
        // A line that never ends is given out in pieces rather than held without bound.
        for _ in 0..10 {
            a.push("c", &Chunk::Console(Bytes::from("y".repeat(100))), &mut out);
        }
        assert!(out.len() >= 2 + 5, "{}", out.len());
        assert!(out[2..].iter().all(|l| l.text.len() <= 64 + 64 + 100));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_become_lines_without_panic(
            chunks in proptest::collection::vec(
                (0u8..3, proptest::collection::vec(proptest::num::u8::ANY, 0..200)),
                0..20,
            )
        ) {
            let mut a = Assembler::new(64);
            let mut out = Vec::new();
            for (kind, bytes) in chunks {
                let b = Bytes::from(bytes);
                let chunk = match kind {
                    0 => Chunk::Stdout(b),
                    1 => Chunk::Stderr(b),
                    _ => Chunk::Console(b),
                };
                a.push("c", &chunk, &mut out);
            }
            a.finish("c", &mut out);
            for l in &out {
                proptest::prop_assert!(l.text.len() <= 64 + 64 + 200);
            }
        }
    }
}
