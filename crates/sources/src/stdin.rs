//! The stdin source: reads lines from standard input (`logyard serve --stdin`,
//! `some-program | logyard ingest -`); `source` is `stdin`. It stops at the end of input.

use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use logyard_model::now_ns;
use logyard_parse::{Format, LineContext, Multiline, MultilineConfig, MultilineMode, Parser};
use serde::Deserialize;

use crate::batch::deliver_retrying;
use crate::error::SourceError;
use crate::settings::{default_batch_lines, default_batch_wait, duration, ParseSettings};
use crate::status::{SourceState, StatusHandle};
use crate::{Source, SourceContext};

/// The `[[sources]]` keys of `type = "stdin"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {
    /// The source's name; `stdin` by default.
    #[serde(default)]
    pub name: Option<String>,
    /// `format`, `timezone`, `timestamp_format`, `timestamp_field`.
    #[serde(flatten)]
    pub parse: ParseSettings,
    /// The agent of lines that name none (default `stdin`).
    #[serde(default)]
    pub agent: Option<String>,
    /// Multi-line joining: `auto` (default), `none` or a start regex.
    #[serde(default = "auto")]
    pub multiline: String,
    /// Records per batch (default 1000).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// A batch is handed over at the latest this long after its first line (default 100ms).
    #[serde(default = "default_batch_wait", deserialize_with = "duration")]
    pub batch_wait: Duration,
}

fn auto() -> String {
    "auto".into()
}

impl Default for StdinConfig {
    fn default() -> Self {
        StdinConfig {
            name: None,
            parse: ParseSettings::default(),
            agent: None,
            multiline: auto(),
            batch_lines: default_batch_lines(),
            batch_wait: default_batch_wait(),
        }
    }
}

/// Reads lines from standard input, or from any reader given to [`StdinSource::with_reader`].
pub struct StdinSource {
    name: String,
    cfg: StdinConfig,
    input: Option<Box<dyn Read + Send>>,
    status: StatusHandle,
}

impl StdinSource {
    /// Builds the source over the process's standard input.
    pub fn new(name: &str, cfg: StdinConfig) -> StdinSource {
        StdinSource {
            name: name.to_string(),
            cfg,
            input: None,
            status: StatusHandle::new(name, "stdin"),
        }
    }

    /// Reads from `input` instead of standard input (tests, `ingest FILE`).
    pub fn with_reader(mut self, input: Box<dyn Read + Send>) -> StdinSource {
        self.input = Some(input);
        self
    }
}

impl Source for StdinSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "stdin"
    }

    fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let cfg = self
            .cfg
            .parse
            .parser_config(&self.name, &ctx.parser, Format::Auto)?;
        let max_line = cfg.max_line_bytes;
        let wrap = |source| SourceError::Parse {
            name: self.name.clone(),
            source,
        };
        let mut parser = Parser::new(cfg).map_err(wrap)?;
        let mode: MultilineMode = self.cfg.multiline.parse().map_err(wrap)?;
        let mut multiline = Multiline::new(MultilineConfig {
            mode,
            ..MultilineConfig::default()
        })
        .map_err(wrap)?;
        // A reader thread: a blocking read cannot watch the stop flag or a batch deadline.
        let (tx, rx) = mpsc::sync_channel::<Option<Vec<u8>>>(1024);
        let mut input = self.input.unwrap_or_else(|| Box::new(std::io::stdin()));
        std::thread::Builder::new()
            .name(format!("source-{}-read", self.name))
            .spawn(move || {
                let mut split = logyard_parse::framing::LineSplitter::new(max_line);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match input.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let mut lines = Vec::new();
                    split.push(&buf[..n], |l| lines.push(l.to_vec()));
                    for l in lines {
                        if tx.send(Some(l)).is_err() {
                            return;
                        }
                    }
                }
                if let Some(last) = split.finish() {
                    let _ = tx.send(Some(last));
                }
                let _ = tx.send(None);
            })
            .map_err(|e| SourceError::io("start a thread for", "stdin", e))?;
        self.status.set_state(SourceState::Running);
        let agent = self.cfg.agent.clone().unwrap_or_else(|| "stdin".into());
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0u64;
        let mut first_at: Option<Instant> = None;
        let mut ended = false;
        while !ended && !ctx.shutdown.is_triggered() {
            let wait = first_at.map_or(Duration::from_millis(100), |t| {
                self.cfg.batch_wait.saturating_sub(t.elapsed())
            });
            match rx.recv_timeout(wait) {
                Ok(Some(line)) => {
                    bytes += line.len() as u64 + 1;
                    pending.extend(multiline.push(&line, now_ns()));
                    first_at.get_or_insert_with(Instant::now);
                }
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    pending.extend(multiline.flush_all());
                    ended = true;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    pending.extend(multiline.flush(now_ns()));
                }
            }
            let due = first_at.is_some_and(|t| t.elapsed() >= self.cfg.batch_wait);
            if ended || due || pending.len() >= self.cfg.batch_lines {
                let ctx_line = LineContext {
                    source: "stdin",
                    agent_hint: &agent,
                    host: &ctx.host,
                    received_ns: now_ns(),
                };
                let records = pending
                    .drain(..)
                    .filter_map(|l| parser.parse(&l, &ctx_line))
                    .collect();
                if !deliver_retrying(&*ctx.sink, records, bytes, &self.status, &ctx.shutdown) {
                    break;
                }
                bytes = 0;
                first_at = None;
            }
        }
        self.status.set_state(SourceState::Stopped);
        Ok(())
    }
}
