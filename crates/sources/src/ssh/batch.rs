//! Joining the lines of a command's output into records, while keeping the position of
//! each line until the records it went into are delivered.

use std::collections::VecDeque;

use logyard_model::Record;
use logyard_parse::{LineContext, Multiline, MultilineConfig, Parser};

/// A line waiting in the multi-line joiner, and where the position goes once it is
/// delivered.
#[derive(Debug, Clone)]
pub(crate) enum Pos {
    /// A container line: its stamp and hash.
    Stamp(i64, u64),
    /// A file line: its length in the file, and its bytes (`None` when it was cut).
    Bytes(u64, Option<Vec<u8>>),
}

/// Joins lines into records and keeps the positions of the lines delivered with them.
pub(crate) struct Batcher {
    ml: Multiline,
    queue: VecDeque<(i64, Pos)>,
    pub(crate) records: Vec<Record>,
    released: Vec<Pos>,
    bytes: u64,
}

impl Batcher {
    pub(crate) fn new(cfg: &MultilineConfig) -> Batcher {
        Batcher {
            ml: Multiline::new(cfg.clone()).unwrap_or_else(|_| {
                Multiline::new(MultilineConfig::default()).expect("the default joiner builds")
            }),
            queue: VecDeque::new(),
            records: Vec::new(),
            released: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds a line stamped `ts` (the time of lines that carry none).
    pub(crate) fn push(
        &mut self,
        parser: &mut Parser,
        ctx: &LineContext,
        text: &[u8],
        ts: i64,
        pos: Pos,
    ) {
        self.bytes += text.len() as u64 + 1;
        self.queue.push_back((ts, pos));
        let done = self.ml.push(text, ts);
        self.release(parser, ctx, done);
    }

    /// Releases the pending record (at the end of a command's output).
    pub(crate) fn finish(&mut self, parser: &mut Parser, ctx: &LineContext) {
        let done: Vec<Vec<u8>> = self.ml.flush_all().into_iter().collect();
        self.release(parser, ctx, done);
    }

    fn release(&mut self, parser: &mut Parser, ctx: &LineContext, done: Vec<Vec<u8>>) {
        let n = self.queue.len().saturating_sub(self.ml.pending_lines());
        if n == 0 {
            return;
        }
        let first_ts = self.queue.front().map_or(ctx.received_ns, |(ts, _)| *ts);
        let ctx = LineContext {
            received_ns: first_ts,
            ..*ctx
        };
        for text in done {
            self.records.extend(parser.parse(&text, &ctx));
        }
        self.released
            .extend(self.queue.drain(..n).map(|(_, pos)| pos));
    }

    pub(crate) fn take(&mut self) -> (Vec<Record>, Vec<Pos>, u64) {
        (
            std::mem::take(&mut self.records),
            std::mem::take(&mut self.released),
            std::mem::take(&mut self.bytes),
        )
    }
}
