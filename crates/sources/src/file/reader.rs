//! Framing of one file's bytes into records with exact offsets: lines end at `\n`, a line
//! longer than the limit is cut (the parser marks it `truncated`), a trailing partial line
//! is held until its newline comes or a timeout passes, and lines are joined by the
//! source's [`Multiline`] joiner. The reader knows through which offset the records it gave
//! out reach, which is what a checkpoint may commit once they are delivered.
//!
//! A reader of Docker json-file lines ([`LineReader::wrapped`]) does not join lines: it
//! keeps the parts of one container line that the daemon split (a `log` without its final
//! newline) and gives them out together, one record of several wrapper lines, so that a
//! checkpoint never falls between two parts of a line.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use logyard_parse::{Multiline, MultilineConfig};

/// Splits a file's bytes into records; see the module documentation.
#[derive(Debug)]
pub(crate) struct LineReader {
    /// The next byte to read from the file.
    pub pos: u64,
    /// The records given out so far reach through this offset.
    pub done: u64,
    /// The current line's first bytes (at most `max + 1`).
    buf: Vec<u8>,
    /// Where the current line starts.
    line_start: u64,
    /// Since when the current line waits for its newline.
    partial_since: Option<Instant>,
    /// The end of the last line handed to the joiner.
    last_line_end: u64,
    max: usize,
    partial_timeout: Duration,
    ml_cfg: MultilineConfig,
    multiline: Multiline,
    /// Docker json-file lines: no joining, split parts kept together.
    wrapped: bool,
    /// Wrapper lines of a split container line, each ending with `\n`.
    group: Vec<u8>,
    /// Since when the group waits for its last part.
    group_since: Option<Instant>,
}

impl LineReader {
    /// Creates a reader at `offset`; the multi-line settings were checked when the source
    /// was built.
    pub fn new(
        offset: u64,
        max_line_bytes: usize,
        partial_timeout: Duration,
        ml_cfg: MultilineConfig,
    ) -> LineReader {
        let multiline = Multiline::new(ml_cfg.clone())
            .unwrap_or_else(|_| Multiline::new(MultilineConfig::default()).expect("default"));
        LineReader {
            pos: offset,
            done: offset,
            buf: Vec::new(),
            line_start: offset,
            partial_since: None,
            last_line_end: offset,
            max: max_line_bytes.max(1),
            partial_timeout,
            ml_cfg,
            multiline,
            wrapped: false,
            group: Vec::new(),
            group_since: None,
        }
    }

    /// Reads Docker json-file lines (see the module documentation) when `on`.
    pub fn wrapped(mut self, on: bool) -> LineReader {
        self.wrapped = on;
        self
    }

    /// Forgets everything not given out and goes back to `offset` (after a failed delivery
    /// or a truncation).
    pub fn reset(&mut self, offset: u64) {
        let wrapped = self.wrapped;
        *self = LineReader::new(offset, self.max, self.partial_timeout, self.ml_cfg.clone())
            .wrapped(wrapped);
    }

    /// True when bytes are held: a partial line or a multi-line record not yet given out.
    pub fn has_pending(&self) -> bool {
        self.pos > self.done
    }

    /// Feeds the bytes read at `self.pos`; pushes completed records to `out`.
    #[cfg(test)]
    pub fn feed(&mut self, chunk: &[u8], now_ns: i64, out: &mut Vec<Vec<u8>>) {
        self.feed_some(chunk, now_ns, out, usize::MAX);
    }

    /// Feeds bytes until `out` holds `limit` records; returns the bytes consumed (the rest
    /// is to be fed again later).
    pub fn feed_some(
        &mut self,
        mut chunk: &[u8],
        now_ns: i64,
        out: &mut Vec<Vec<u8>>,
        limit: usize,
    ) -> usize {
        let total = chunk.len();
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            if out.len() >= limit {
                return total - chunk.len();
            }
            let part = &chunk[..nl];
            self.pos += nl as u64 + 1;
            if self.buf.is_empty() {
                // A whole line in the chunk goes to the joiner as it is, cut to the limit.
                self.line(&part[..part.len().min(self.max + 1)], now_ns, out);
            } else {
                self.take_bytes(part);
                let mut line = std::mem::take(&mut self.buf);
                self.line(&line, now_ns, out);
                line.clear();
                self.buf = line;
            }
            chunk = &chunk[nl + 1..];
        }
        if out.len() >= limit && !chunk.is_empty() {
            return total - chunk.len();
        }
        if !chunk.is_empty() {
            self.take_bytes(chunk);
            self.pos += chunk.len() as u64;
            if self.partial_since.is_none() {
                self.partial_since = Some(Instant::now());
            }
        }
        total
    }

    fn take_bytes(&mut self, part: &[u8]) {
        let room = (self.max + 1).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&part[..part.len().min(room)]);
    }

    /// Hands one line (ending at `self.pos`) to the joiner.
    fn line(&mut self, line: &[u8], now_ns: i64, out: &mut Vec<Vec<u8>>) {
        if self.wrapped {
            let rec = self.wrapped_line(line);
            if self.group.is_empty() {
                // The line ended a container line: everything before it is given out.
                self.done = self.pos;
            }
            self.last_line_end = self.pos;
            self.line_start = self.pos;
            self.partial_since = None;
            out.extend(rec);
            return;
        }
        let start = self.line_start;
        let emitted = self.multiline.push_into(line, now_ns, out) > 0;
        if self.multiline.pending_lines() == 0 {
            self.done = self.pos;
        } else if emitted {
            self.done = start;
        }
        self.last_line_end = self.pos;
        self.line_start = self.pos;
        self.partial_since = None;
    }

    /// Keeps a split part in the group, or returns the group ended by `line`.
    fn wrapped_line(&mut self, line: &[u8]) -> Option<Vec<u8>> {
        // The group is bounded: the parser cuts a joined line at `max_line_bytes` anyway,
        // and the wrappers and JSON escapes add to the raw size.
        let room = self.max.saturating_mul(2).saturating_add(4096);
        if is_split_part(line) && self.group.len() + line.len() < room {
            self.group.extend_from_slice(line);
            self.group.push(b'\n');
            self.group_since.get_or_insert_with(Instant::now);
            return None;
        }
        let mut rec = std::mem::take(&mut self.group);
        rec.extend_from_slice(line);
        self.group_since = None;
        Some(rec)
    }

    /// Gives out what waited too long: a partial line past the partial timeout, and a
    /// multi-line record past the joiner's timeout.
    pub fn flush_timeouts(&mut self, now_ns: i64, out: &mut Vec<Vec<u8>>) {
        if self
            .partial_since
            .is_some_and(|t| t.elapsed() >= self.partial_timeout)
        {
            // A partial line is a record of its own: give it out with what came before it.
            let line = std::mem::take(&mut self.buf);
            self.line(&line, now_ns, out);
            if let Some(rec) = self.multiline.flush_all() {
                out.push(rec);
            }
            self.take_group(out);
            self.done = self.pos;
        }
        if self
            .group_since
            .is_some_and(|t| t.elapsed() >= self.partial_timeout)
        {
            // The last part of a split line never came: give out the parts.
            self.take_group(out);
            self.done = self.last_line_end;
        }
        if self.last_line_end > self.done {
            if let Some(rec) = self.multiline.flush(now_ns) {
                out.push(rec);
                self.done = self.last_line_end;
            }
        }
    }

    /// Gives out everything held (the file will not grow any more).
    pub fn flush_all(&mut self, now_ns: i64, out: &mut Vec<Vec<u8>>) {
        if self.pos > self.line_start {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, now_ns, out);
        }
        if let Some(rec) = self.multiline.flush_all() {
            out.push(rec);
        }
        self.take_group(out);
        self.done = self.pos;
    }

    /// Gives out the parts of a split line held so far.
    fn take_group(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.group.is_empty() {
            let mut rec = std::mem::take(&mut self.group);
            rec.pop();
            out.push(rec);
        }
        self.group_since = None;
    }
}

/// True for a Docker json-file line whose `log` does not end with a newline: a part of a
/// longer line that the daemon split (at 16 KiB).
fn is_split_part(line: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Wrapper<'a> {
        #[serde(borrow)]
        log: Cow<'a, str>,
    }
    line.starts_with(b"{\"log\":")
        && serde_json::from_slice::<Wrapper>(line).is_ok_and(|w| !w.log.ends_with('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logyard_parse::MultilineMode;

    fn reader(mode: MultilineMode) -> LineReader {
        let cfg = MultilineConfig {
            mode,
            ..MultilineConfig::default()
        };
        LineReader::new(0, 8, Duration::from_millis(0), cfg)
    }

    #[test]
    fn offsets_follow_lines_and_partial_lines_wait() {
        let mut r = reader(MultilineMode::None);
        let mut out = Vec::new();
        r.feed(b"ab\ncd\nef", 0, &mut out);
        assert_eq!(out, [b"ab".to_vec(), b"cd".to_vec()]);
        assert_eq!((r.done, r.pos), (6, 8));
        r.feed(b"g\n0123456789abc\n", 0, &mut out);
        assert_eq!(out[2], b"efg");
        assert_eq!(out[3], b"012345678", "cut at max + 1");
        assert_eq!(r.done, 24);
        r.feed(b"tail", 0, &mut out);
        r.flush_timeouts(0, &mut out);
        assert_eq!(out[4], b"tail");
        assert_eq!(r.done, 28);
    }

    #[test]
    fn multiline_records_commit_at_their_start() {
        let cfg = MultilineConfig {
            mode: MultilineMode::Start(r"^\d".into()),
            ..MultilineConfig::default()
        };
        let mut r = LineReader::new(0, 1000, Duration::from_secs(60), cfg);
        let mut out = Vec::new();
        r.feed(b"1 one\n  cont\n2 two\n", 0, &mut out);
        assert_eq!(out, [b"1 one\n  cont".to_vec()]);
        assert_eq!(r.done, 13);
        assert!(r.has_pending());
        r.flush_all(0, &mut out);
        assert_eq!(out[1], b"2 two");
        assert_eq!(r.done, r.pos);
    }

    #[test]
    fn a_json_line_commits_at_once_in_auto_mode() {
        let mut r = LineReader::new(0, 1000, Duration::from_secs(60), MultilineConfig::default());
        let mut out = Vec::new();
        r.feed(b"plain\n{\"msg\":\"x\"}\n", 0, &mut out);
        assert_eq!(out, [b"plain".to_vec(), br#"{"msg":"x"}"#.to_vec()]);
        assert_eq!(r.done, r.pos, "the JSON line does not wait for the timeout");
        assert!(!r.has_pending());
        r.feed(b"plain again\n", 0, &mut out);
        assert_eq!(out.len(), 2, "a plain line may still take a trace");
        assert_eq!(r.done, 18);
    }

    #[test]
    fn wrapped_lines_keep_the_parts_of_a_split_line_together() {
        let mut r = LineReader::new(0, 1000, Duration::from_secs(60), MultilineConfig::default())
            .wrapped(true);
        let part = br#"{"log":"head ","stream":"stdout","time":"t"}"#;
        let last = br#"{"log":"tail\n","stream":"stdout","time":"t"}"#;
        let mut bytes = Vec::new();
        for l in [&part[..], &part[..], &last[..], b"  at not joined"] {
            bytes.extend_from_slice(l);
            bytes.push(b'\n');
        }
        let mut out = Vec::new();
        r.feed(&bytes[..2 * (part.len() + 1)], 0, &mut out);
        assert!(out.is_empty());
        assert_eq!(r.done, 0, "no checkpoint between the parts");
        r.feed(&bytes[2 * (part.len() + 1)..], 0, &mut out);
        assert_eq!(out.len(), 2, "a stack-trace line is not joined: {out:?}");
        let group: Vec<&[u8]> = out[0].split(|&c| c == b'\n').collect();
        assert_eq!(group, [&part[..], &part[..], &last[..]]);
        assert_eq!(out[1], b"  at not joined");
        assert_eq!(r.done, bytes.len() as u64);

        // A group whose last part never comes is given out after the partial timeout.
        let mut r = LineReader::new(
            0,
            1000,
            Duration::from_millis(0),
            MultilineConfig::default(),
        )
        .wrapped(true);
        let mut out = Vec::new();
        r.feed(&[&part[..], b"\n"].concat(), 0, &mut out);
        assert!(out.is_empty() && r.has_pending());
        r.flush_timeouts(0, &mut out);
        assert_eq!(out, [part.to_vec()]);
        assert_eq!(r.done, part.len() as u64 + 1);
    }
}
