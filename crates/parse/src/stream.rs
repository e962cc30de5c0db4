//! Multi-line joining by source: each source's lines go through its own [`Multiline`], and
//! each joined record keeps what its first line carried ([`Meta`]). [`crate::Parser::push`]
//! takes container wrappers off before and parses the joined records after.

use std::collections::{HashMap, VecDeque};

use crate::multiline::{Multiline, MultilineConfig};
use crate::ParseError;

/// What a record keeps from its first line while multi-line joining runs.
#[derive(Debug)]
pub(crate) struct Meta {
    pub flags: Flags,
    pub stream: Option<String>,
    pub time: Option<i64>,
    pub plain: bool,
}

/// Problems of a line found before its format is parsed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Flags {
    pub truncated: bool,
    pub invalid_utf8: bool,
    pub nul_bytes: bool,
}

impl Flags {
    /// Adds another line's problems.
    pub(crate) fn merge(&mut self, other: Flags) {
        self.truncated |= other.truncated;
        self.invalid_utf8 |= other.invalid_utf8;
        self.nul_bytes |= other.nul_bytes;
    }
}

/// The multi-line state of every source.
#[derive(Debug)]
pub(crate) struct Streams {
    config: MultilineConfig,
    by_source: HashMap<String, StreamState>,
}

/// The multi-line state of one source.
#[derive(Debug)]
struct StreamState {
    joiner: Multiline,
    /// One entry per record still in the joiner: what its first line carried.
    metas: VecDeque<Meta>,
}

impl StreamState {
    /// Pairs each joined text with the meta of its first line.
    fn pair(&mut self, joined: impl IntoIterator<Item = String>) -> Vec<(String, Meta)> {
        joined
            .into_iter()
            .filter_map(|j| self.metas.pop_front().map(|m| (j, m)))
            .collect()
    }
}

impl Streams {
    /// Joins as `config` says; fails when its pattern does not compile.
    pub fn new(config: MultilineConfig) -> Result<Streams, ParseError> {
        Multiline::new(config.clone())?;
        Ok(Streams {
            config,
            by_source: HashMap::new(),
        })
    }

    /// Adds one line of `source`; returns the records it completes.
    pub fn push(
        &mut self,
        source: &str,
        text: &str,
        meta: Meta,
        now_ns: i64,
    ) -> Vec<(String, Meta)> {
        if !self.by_source.contains_key(source) {
            let joiner = Multiline::new(self.config.clone()).expect("checked by Streams::new");
            let state = StreamState {
                joiner,
                metas: VecDeque::new(),
            };
            self.by_source.insert(source.to_string(), state);
        }
        let Some(state) = self.by_source.get_mut(source) else {
            return Vec::new();
        };
        state.metas.push_back(meta);
        let joined = state.joiner.push_str(text, now_ns);
        if state.joiner.pending_lines() > 1 {
            // The line continued the pending record: its problems are the record's.
            if let Some(m) = state.metas.pop_back() {
                if let Some(first) = state.metas.back_mut() {
                    first.flags.merge(m.flags);
                }
            }
        }
        state.pair(joined)
    }

    /// Releases the pending record of `source` when no line came for the timeout.
    pub fn flush(&mut self, source: &str, now_ns: i64) -> Vec<(String, Meta)> {
        let Some(state) = self.by_source.get_mut(source) else {
            return Vec::new();
        };
        let joined = state.joiner.flush_str(now_ns);
        state.pair(joined)
    }

    /// Releases everything held for `source` and forgets it.
    pub fn take(&mut self, source: &str) -> Vec<(String, Meta)> {
        let Some(mut state) = self.by_source.remove(source) else {
            return Vec::new();
        };
        let joined = state.joiner.take();
        state.pair(joined)
    }
}
