//! [`Parser::push`]: the one call per line for a stream of lines: container unwrapping,
//! multi-line joining and parsing, in that order (so that a stack trace written through
//! Docker or CRI is joined on the container's own lines, not on the wrappers).

use std::collections::VecDeque;

use logyard_model::Record;

use crate::multiline::Multiline;
use crate::parser::{LineContext, Meta, Parser};

/// The multi-line state of one source.
#[derive(Debug)]
pub(crate) struct StreamState {
    joiner: Multiline,
    /// One entry per record still in the joiner: what its first line carried.
    metas: VecDeque<Meta>,
}

impl Parser {
    /// Feeds one line of the source named by `ctx`; appends the records it completes to `out`
    /// (none while a record may still grow, at most two).
    ///
    /// Lines are joined as `ParserConfig::multiline` says; call [`Parser::flush`] now and then
    /// to release a record the stream stopped adding to, and [`Parser::flush_all`] at its end.
    pub fn push(&mut self, line: &[u8], ctx: &LineContext, now_ns: i64, out: &mut Vec<Record>) {
        let Some(p) = self.prepare(line, ctx) else {
            return;
        };
        let meta = Meta {
            flags: p.flags,
            stream: p.stream,
            time: p.time,
            plain: p.plain,
        };
        if !self.streams.contains_key(ctx.source) {
            let joiner =
                Multiline::new(self.config().multiline.clone()).expect("checked by Parser::new");
            let state = StreamState {
                joiner,
                metas: VecDeque::new(),
            };
            self.streams.insert(ctx.source.to_string(), state);
        }
        let Some(state) = self.streams.get_mut(ctx.source) else {
            return;
        };
        state.metas.push_back(meta);
        let joined = state.joiner.push_str(&p.text, now_ns);
        if state.joiner.pending_lines() > 1 {
            // The line continued the pending record: its problems are the record's.
            if let Some(m) = state.metas.pop_back() {
                if let Some(first) = state.metas.back_mut() {
                    first.flags.merge(m.flags);
                }
            }
        }
        let ready: Vec<(String, Meta)> = joined
            .into_iter()
            .filter_map(|j| state.metas.pop_front().map(|m| (j, m)))
            .collect();
        self.emit(ready, ctx, out);
    }

    /// Releases the source's pending record when no line came for the multi-line timeout.
    pub fn flush(&mut self, ctx: &LineContext, now_ns: i64, out: &mut Vec<Record>) {
        let Some(state) = self.streams.get_mut(ctx.source) else {
            return;
        };
        let ready: Vec<(String, Meta)> = state
            .joiner
            .flush_str(now_ns)
            .into_iter()
            .filter_map(|j| state.metas.pop_front().map(|m| (j, m)))
            .collect();
        self.emit(ready, ctx, out);
    }

    /// Releases everything held for the source (at the end of a stream): the pending record
    /// and a partial container line.
    pub fn flush_all(&mut self, ctx: &LineContext, out: &mut Vec<Record>) {
        if let Some(mut state) = self.streams.remove(ctx.source) {
            let ready: Vec<(String, Meta)> = state
                .joiner
                .take()
                .into_iter()
                .filter_map(|j| state.metas.pop_front().map(|m| (j, m)))
                .collect();
            self.emit(ready, ctx, out);
        }
        out.extend(self.flush_partial(ctx));
    }

    fn emit(&mut self, ready: Vec<(String, Meta)>, ctx: &LineContext, out: &mut Vec<Record>) {
        for (text, meta) in ready {
            out.push(self.finish(&text, meta, ctx));
        }
    }
}
