//! The [`Parser`]: one per ingest stream (it keeps per-source state: the detected format
//! and partial container lines).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use logyard_model::{Record, Value};

use crate::detect::{candidates, Cache, Format};
use crate::error::ParseError;
use crate::formats::{self, cri, docker, Cx, Miss};
use crate::grok::{Grok, GrokDef};
use crate::multiline::MultilineConfig;
use crate::redact::{RedactConfig, Redactor};
use crate::stream::{Flags, Meta, Streams};
use crate::time::custom::TimeFormat;
use crate::time::{
    epoch_int, epoch_to_ns, parse_stamp, parse_stamp_with, resolve, Stamp, TimeZone,
};

/// A parser's settings (the `[[sources]]` parse options and `[limits]` of the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParserConfig {
    /// `auto` to detect per line, or a fixed format.
    pub format: Format,
    /// The zone of stamps that carry none (default UTC).
    pub timezone: TimeZone,
    /// Grok parsers tried in order before the format (or detection).
    pub grok: Vec<GrokDef>,
    /// What to redact before anything is stored.
    pub redact: RedactConfig,
    /// Longer lines are cut (at a character boundary) and get `truncated` = true.
    pub max_line_bytes: usize,
    /// Keeps the text of JSON lines in `raw` too (text lines always keep it).
    pub keep_raw: bool,
    /// How [`Parser::push`] joins multi-line records (default `auto`).
    pub multiline: MultilineConfig,
    /// The layout of the lines' time stamps when detection cannot know it
    /// (`timestamp_format`): tried first, in text lines' headers and in time fields.
    pub timestamp_format: Option<TimeFormat>,
    /// The field that holds the time (`timestamp_field`): a key of JSON or logfmt lines
    /// (nested keys as `a.b`), a grok capture or a `key=value` pair of a text line.
    pub timestamp_field: Option<String>,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            format: Format::Auto,
            timezone: TimeZone::Utc,
            grok: Vec::new(),
            redact: RedactConfig::default(),
            max_line_bytes: 1 << 20,
            keep_raw: false,
            multiline: MultilineConfig::default(),
            timestamp_format: None,
            timestamp_field: None,
        }
    }
}

/// Where a line comes from.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineContext<'a> {
    /// The record's `source` (`file:/var/log/app.log`, `syslog:udp`, `http`, …).
    pub source: &'a str,
    /// The agent when the line names none, e.g. the file's stem (see [`agent_from_path`]).
    pub agent_hint: &'a str,
    /// The host when the line names none.
    pub host: &'a str,
    /// The receive time in nanoseconds: the timestamp of lines without one, and "now" for
    /// syslog stamps without a year.
    pub received_ns: i64,
}

/// The field that says why a line of a fixed container format (`docker`, `cri`) was kept
/// as plain text: its wrapper was missing or malformed.
pub const WRAPPER_ERROR: &str = "wrapper_error";

/// A Docker json-file line (wrapper and escapes included) is read whole up to this size at
/// least, whatever `max_line_bytes` says.
pub const DOCKER_LINE_BYTES: usize = 128 << 10;

/// Marks a timestamp no format has set yet.
const UNSET: i64 = i64::MIN;

/// Turns lines into records; see the crate documentation.
#[derive(Debug)]
pub struct Parser {
    cfg: ParserConfig,
    grok: Vec<Grok>,
    redactor: Redactor,
    cache: Cache,
    /// Partial container lines waiting for their final part, by source.
    partial: HashMap<String, String>,
    /// Multi-line joining of [`Parser::push`], by source.
    streams: Streams,
}

/// A line decoded and unwrapped, ready for its format.
pub(crate) struct Prepared<'a> {
    pub text: Cow<'a, str>,
    pub flags: Flags,
    /// The container stream (`stdout`, `stderr`) of a wrapped line.
    pub stream: Option<String>,
    /// The container runtime's time of a wrapped line.
    pub time: Option<i64>,
    /// Parse as plain text (a fixed wrapper format whose wrapper is missing).
    pub plain: bool,
}

impl Parser {
    /// Builds a parser; fails when a grok pattern or a redaction regex does not compile.
    pub fn new(cfg: ParserConfig) -> Result<Parser, ParseError> {
        let grok = cfg
            .grok
            .iter()
            .map(Grok::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let redactor = Redactor::new(&cfg.redact)?;
        let streams = Streams::new(cfg.multiline.clone())?;
        Ok(Parser {
            cfg,
            grok,
            redactor,
            cache: Cache::default(),
            partial: HashMap::new(),
            streams,
        })
    }

    /// Returns the configuration.
    pub fn config(&self) -> &ParserConfig {
        &self.cfg
    }

    /// Feeds one line of the source named by `ctx`; appends the records it completes to `out`
    /// (none while a record may still grow, at most two).
    ///
    /// Lines are joined as `ParserConfig::multiline` says; call [`Parser::flush`] now and then
    /// to release a record the stream stopped adding to, and [`Parser::flush_all`] at its end.
    /// Container wrappers are taken off first, so that a stack trace written through Docker
    /// or CRI is joined on the container's own lines.
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
        let ready = self.streams.push(ctx.source, &p.text, meta, now_ns);
        self.emit(ready, ctx, out);
    }

    /// Releases the source's pending record when no line came for the multi-line timeout.
    pub fn flush(&mut self, ctx: &LineContext, now_ns: i64, out: &mut Vec<Record>) {
        let ready = self.streams.flush(ctx.source, now_ns);
        self.emit(ready, ctx, out);
    }

    /// Releases everything held for the source (at the end of a stream): the pending record
    /// and a partial container line.
    pub fn flush_all(&mut self, ctx: &LineContext, out: &mut Vec<Record>) {
        let ready = self.streams.take(ctx.source);
        self.emit(ready, ctx, out);
        out.extend(self.flush_partial(ctx));
    }

    fn emit(&mut self, ready: Vec<(String, Meta)>, ctx: &LineContext, out: &mut Vec<Record>) {
        for (text, meta) in ready {
            out.push(self.finish(&text, meta, ctx));
        }
    }

    /// Returns how many secrets were redacted so far, by kind (`password`, `card`, …, and
    /// the names of extra patterns), for `/metrics`.
    pub fn redaction_counts(&self) -> BTreeMap<String, u64> {
        self.redactor.counts()
    }

    /// Parses one line (with or without its line ending) into a record.
    ///
    /// Returns `None` only for a partial container line (CRI `P`, or Docker `log` without a
    /// final newline): it is kept and joined to the source's next line. Everything else gives
    /// a record, whatever the bytes. Lines are not joined into multi-line records here: see
    /// [`Parser::push`], or put a [`crate::Multiline`] in front.
    pub fn parse(&mut self, line: &[u8], ctx: &LineContext) -> Option<Record> {
        let p = self.prepare(line, ctx)?;
        let meta = Meta {
            flags: p.flags,
            stream: p.stream,
            time: p.time,
            plain: p.plain,
        };
        Some(self.finish(&p.text, meta, ctx))
    }

    /// Decodes a line and unwraps a container wrapper; `None` for a partial line (held).
    pub(crate) fn prepare<'a>(
        &mut self,
        line: &'a [u8],
        ctx: &LineContext,
    ) -> Option<Prepared<'a>> {
        let mut line = line;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        let mut flags = Flags::default();
        let max = self.cfg.max_line_bytes.max(1);
        // A Docker json-file wrapper and its JSON escapes do not count against the limit:
        // the line it carries is cut instead, once unwrapped. The wrapper line itself is
        // bounded by `DOCKER_LINE_BYTES` (the daemon splits lines at 16 KiB).
        let room = if self.cfg.format.detects() && line.starts_with(b"{\"log\":") {
            DOCKER_LINE_BYTES.max(max.saturating_mul(6).saturating_add(4096))
        } else {
            max
        };
        if line.len() > room {
            line = &line[..room];
            flags.truncated = true;
        }
        let mut text = match std::str::from_utf8(line) {
            Ok(s) => Cow::Borrowed(s),
            // The cut fell inside a character: drop its first bytes.
            Err(e) if flags.truncated && e.error_len().is_none() => {
                Cow::Borrowed(std::str::from_utf8(&line[..e.valid_up_to()]).unwrap_or_default())
            }
            Err(_) => {
                flags.invalid_utf8 = true;
                String::from_utf8_lossy(line)
            }
        };
        if memchr::memchr(0, text.as_bytes()).is_some() {
            flags.nul_bytes = true;
            text = Cow::Owned(text.replace('\0', "\u{fffd}"));
        }
        let wrapper = match text.as_bytes().first() {
            Some(b'0'..=b'9') if self.cfg.format.detects() => cri::split(&text).map(|c| {
                let time = c.time.to_ns(self.cfg.timezone).ok();
                (c.inner.to_string(), c.stream.to_string(), time, c.partial)
            }),
            Some(b'{') if self.cfg.format.detects() => docker::split(&text).map(|d| {
                let time = match parse_stamp(&d.time, self.cfg.timezone, ctx.received_ns) {
                    Stamp::Ok(ns) => Some(ns),
                    _ => None,
                };
                (d.inner, d.stream, time, d.partial)
            }),
            _ => None,
        };
        let Some((mut inner, stream, time, partial)) = wrapper else {
            if text.len() > max {
                text = Cow::Owned(cut_at(&text, max).to_string());
                flags.truncated = true;
            }
            let plain = matches!(self.cfg.format, Format::Docker | Format::Cri);
            return Some(Prepared {
                text,
                flags,
                stream: None,
                time: None,
                plain,
            });
        };
        if inner.len() > max {
            inner = cut_at(&inner, max).to_string();
            flags.truncated = true;
        }
        let inner = match self.partial.remove(ctx.source) {
            Some(mut head) => {
                if head.len() + inner.len() > max {
                    flags.truncated = true;
                    let room = max.saturating_sub(head.len());
                    let cut = (0..=room.min(inner.len()))
                        .rev()
                        .find(|i| inner.is_char_boundary(*i))
                        .unwrap_or(0);
                    head.push_str(&inner[..cut]);
                } else {
                    head.push_str(&inner);
                }
                head
            }
            None => inner,
        };
        if partial && inner.len() < max {
            self.partial.insert(ctx.source.to_string(), inner);
            return None;
        }
        let stream = (!stream.is_empty()).then_some(stream);
        Some(Prepared {
            text: Cow::Owned(inner),
            flags,
            stream,
            time,
            plain: false,
        })
    }

    /// Parses a prepared (possibly joined) text into a record.
    pub(crate) fn finish(&mut self, text: &str, meta: Meta, ctx: &LineContext) -> Record {
        let text = self.redactor.redact_line(text);
        let joined = memchr::memchr(b'\n', text.as_bytes()).map(|i| (&text[..i], &text[i + 1..]));
        let mut rec = match joined {
            // A joined record: its first line says what it is (time, level, fields), and the
            // rest (a stack trace) continues its message.
            Some((first, rest)) => {
                let mut rec = self.parse_redacted(first, ctx, meta.flags, meta.time, meta.plain);
                rec.message.push('\n');
                rec.message.push_str(rest);
                if let Some(raw) = &mut rec.raw {
                    raw.push('\n');
                    raw.push_str(rest);
                }
                rec
            }
            None => self.parse_redacted(&text, ctx, meta.flags, meta.time, meta.plain),
        };
        if let Some(stream) = meta.stream {
            rec.fields.insert("stream".into(), Value::Str(stream));
        }
        rec
    }

    /// Returns the partial container line held for a source, as a record (at the end of a
    /// stream, or when it has waited too long).
    pub fn flush_partial(&mut self, ctx: &LineContext) -> Option<Record> {
        let text = self.partial.remove(ctx.source)?;
        Some(self.parse_text(&text, ctx, Flags::default(), None, false))
    }

    fn parse_text(
        &mut self,
        text: &str,
        ctx: &LineContext,
        flags: Flags,
        wrapper_time: Option<i64>,
        plain: bool,
    ) -> Record {
        let text = self.redactor.redact_line(text);
        self.parse_redacted(&text, ctx, flags, wrapper_time, plain)
    }

    /// Parses a text whose secrets are already redacted.
    fn parse_redacted(
        &mut self,
        text: &str,
        ctx: &LineContext,
        flags: Flags,
        wrapper_time: Option<i64>,
        plain: bool,
    ) -> Record {
        let mut rec = Record {
            timestamp: UNSET,
            source: ctx.source.to_string(),
            ..Record::default()
        };
        let access_agent = if self.cfg.format == Format::Apache {
            "apache"
        } else {
            "nginx"
        };
        let cx = Cx {
            zone: self.cfg.timezone,
            now: ctx.received_ns,
            agent_hint: ctx.agent_hint,
            access_agent,
            time_format: self.cfg.timestamp_format.as_ref(),
        };
        let mut structured = false;
        let mut matched = self.grok.iter().any(|g| {
            let ok = g.apply(text, &mut rec, &cx);
            if !ok {
                reset(&mut rec, ctx.source);
            }
            ok
        });
        if !matched && !plain {
            let mut bad = None;
            let auto = self.cfg.format.detects();
            let cached = if auto {
                self.cache.get(ctx.source, text)
            } else {
                None
            };
            let fixed = self.cfg.format.kinds();
            let kinds = cached.iter().chain(
                if auto { candidates(text) } else { fixed }
                    .iter()
                    .filter(|k| Some(**k) != cached),
            );
            for &kind in kinds {
                match kind.run(text, &mut rec, &cx) {
                    Ok(()) => {
                        matched = true;
                        structured = matches!(
                            kind,
                            crate::detect::Kind::Json | crate::detect::Kind::Logfmt
                        );
                        if auto {
                            self.cache.set(text, kind);
                        }
                        break;
                    }
                    Err(Miss::No) => reset(&mut rec, ctx.source),
                    Err(Miss::Bad(field, reason)) => {
                        reset(&mut rec, ctx.source);
                        bad = Some((field, reason));
                        break;
                    }
                }
            }
            if let Some((field, reason)) = bad {
                formats::plain::parse(text, &mut rec, &cx);
                rec.fields.insert(field.to_string(), Value::Str(reason));
                matched = true;
            }
        }
        if !matched {
            formats::plain::parse(text, &mut rec, &cx);
        }
        if plain {
            let reason = if self.cfg.format == Format::Cri {
                "not a CRI line"
            } else {
                "not a Docker json-file line"
            };
            rec.fields
                .insert(WRAPPER_ERROR.into(), Value::Str(reason.into()));
        }
        if self.cfg.timestamp_field.is_some() || self.cfg.timestamp_format.is_some() {
            self.configured_time(text, &mut rec, structured, &cx);
        }
        if rec.timestamp == UNSET {
            rec.timestamp = wrapper_time.unwrap_or(ctx.received_ns);
        }
        if rec.agent.is_empty() {
            rec.agent = ctx.agent_hint.to_string();
        }
        if rec.host.is_empty() {
            rec.host = ctx.host.to_string();
        }
        for (on, name) in [
            (flags.truncated, "truncated"),
            (flags.invalid_utf8, "invalid_utf8"),
            (flags.nul_bytes, "nul_bytes"),
        ] {
            if on {
                rec.fields.insert(name.into(), Value::Bool(true));
            }
        }
        if !structured || self.cfg.keep_raw {
            rec.raw = Some(text.to_string());
        }
        rec
    }
}

impl Parser {
    /// Applies `timestamp_field` and `timestamp_format`: the named field's time wins over
    /// what detection found; without one, a text line's header in the configured layout.
    fn configured_time(&self, text: &str, rec: &mut Record, structured: bool, cx: &Cx) {
        let fmt = self.cfg.timestamp_format.as_ref();
        if let Some(field) = &self.cfg.timestamp_field {
            if let Some(value) = rec.fields.get(field.as_str()) {
                let stamp = match value {
                    Value::Str(s) => parse_stamp_with(s, fmt, cx.zone, cx.now),
                    Value::Int(i) => epoch_int(*i).map_or(Stamp::Unknown, Stamp::Ok),
                    Value::Float(f) => epoch_to_ns(*f).map_or(Stamp::Unknown, Stamp::Ok),
                    _ => Stamp::Unknown,
                };
                let error = match stamp {
                    Stamp::Ok(ns) => {
                        rec.timestamp = ns;
                        rec.fields.remove(field.as_str());
                        rec.fields.remove(formats::TIME_ERROR);
                        return;
                    }
                    Stamp::Invalid(reason) => {
                        format!("invalid timestamp {value} in field {field:?}: {reason}")
                    }
                    Stamp::Unknown => format!(
                        "field {field:?} holds {value}, not a time stamp logyard knows: set timestamp_format"
                    ),
                };
                rec.fields
                    .insert(formats::TIME_ERROR.into(), Value::Str(error));
                return;
            }
        }
        let Some(fmt) = fmt.filter(|_| !structured) else {
            return;
        };
        if let Some((found, start, end)) = fmt.find(text) {
            match resolve(found, cx.zone, cx.now) {
                Ok(ns) => {
                    rec.timestamp = ns;
                    rec.fields.remove(formats::TIME_ERROR);
                }
                Err(reason) => {
                    rec.fields.insert(
                        formats::TIME_ERROR.into(),
                        Value::Str(format!(
                            "invalid timestamp {:?}: {reason}",
                            &text[start..end]
                        )),
                    );
                }
            }
        }
    }
}

/// The longest start of `text` of at most `max` bytes that ends at a character boundary.
fn cut_at(text: &str, max: usize) -> &str {
    let end = (0..=max.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[..end]
}

/// Clears what a parser that gave up may have written.
fn reset(rec: &mut Record, source: &str) {
    if rec.source != source {
        rec.source.clear();
        rec.source.push_str(source);
    }
    rec.timestamp = UNSET;
    rec.level = None;
    rec.agent.clear();
    rec.host.clear();
    rec.message.clear();
    rec.fields.clear();
}

/// Returns the agent a file's name suggests: its stem (`/tmp/billing.log` → `billing`,
/// `app.log.1` → `app`), or the folder's name for generic stems (`/var/log/nginx/access.log`
/// → `nginx`).
pub fn agent_from_path(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let mut stem: &str = &name;
    // Strip rotation and compression suffixes, then the extension: app.log.1.gz -> app.
    while let Some((head, ext)) = stem.rsplit_once('.') {
        let known = ext.bytes().all(|c| c.is_ascii_digit())
            || matches!(
                ext,
                "gz" | "zst"
                    | "bz2"
                    | "xz"
                    | "log"
                    | "txt"
                    | "out"
                    | "err"
                    | "json"
                    | "jsonl"
                    | "ndjson"
            );
        if !known || head.is_empty() {
            break;
        }
        stem = head;
    }
    let stem = stem
        .strip_suffix("_log")
        .or_else(|| stem.strip_suffix("-log"))
        .unwrap_or(stem);
    let generic = matches!(
        stem,
        "access"
            | "error"
            | "output"
            | "stdout"
            | "stderr"
            | "current"
            | "log"
            | "app"
            | "messages"
            | "main"
    );
    if generic {
        if let Some(dir) = path.parent().and_then(|p| p.file_name()) {
            let dir = dir.to_string_lossy();
            if !matches!(dir.as_ref(), "log" | "logs" | "var" | "tmp" | "") {
                return dir.into_owned();
            }
        }
    }
    stem.to_string()
}

/// Renders a record as one flat JSON object: `timestamp`, `level` (when known), `agent`,
/// `host`, `source`, `message`, then the fields at the top level. Parsing the text back with
/// the JSON format gives the same record (for fields whose names are not aliases of those
/// keys); `logyard parse` prints records this way.
pub fn record_to_json(rec: &Record) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &rec.fields {
        m.insert(k.clone(), v.to_json());
    }
    rec.put_columns(&mut m);
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests;
