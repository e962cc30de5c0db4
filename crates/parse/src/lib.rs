//! Turns log lines into [`Record`]s: format detection, timestamps, levels, fields,
//! multi-line joining, grok patterns and secret redaction.
//!
//! `parse` sits between the sources (file tail, syslog, HTTP, containers, stdin) and the
//! pipeline: sources frame bytes into lines ([`framing`]), optionally join multi-line
//! records ([`Multiline`]), and hand each line to a [`Parser`], which returns a normalised
//! record. Parsing a line never fails and never panics: a line that fits no format is plain
//! text, and what went wrong is said in a field (`time_error`, `json_error`, `truncated`,
//! `invalid_utf8`, `nul_bytes`).
//!
//! Per line, the parser: cuts the line at `max_line_bytes`, decodes UTF-8, unwraps Docker
//! and CRI wrappers (joining partial lines), redacts secrets, tries the configured grok
//! parsers, then the configured format or detection (JSON, logfmt, syslog, access and error
//! logs, Python and Django styles), and falls back to plain text.
//!
//! Fields the parser itself adds, besides those a line carries:
//!
//! | field | when |
//! | --- | --- |
//! | `level_raw` | the level text was unknown or not the canonical name (`warn`, `E`, `30`), or the syslog severity shares its level with another (`emerg`, `alert`, `notice`) |
//! | `time_error` | the line's stamp was an impossible date or an unknown format; the time is the receive time |
//! | `json_error` | a line starting with `{` was not valid JSON (or nested deeper than 128); it is plain text |
//! | `truncated` | the line was longer than `max_line_bytes` and was cut at a character boundary |
//! | `invalid_utf8` | the line was not UTF-8 and was decoded lossily |
//! | `nul_bytes` | the line held NUL bytes, replaced by U+FFFD |
//! | `stream` | `stdout` or `stderr` of a Docker or CRI line |
//! | `wrapper_error` | with `format = "docker"` or `"cri"`, the line was not such a line (malformed or missing wrapper); it is plain text |
//! | `response_time_ms` | a duration was found (`response_time: 12ms`, `took 1.2s`, `duration=35ms`, an access log's request time) |
//!
//! One [`Parser`] serves one configured source (its format, zone, grok parsers, redaction
//! and multi-line joining); it keeps its per-stream state (detected format, partial
//! container lines, the record being joined) by `LineContext::source`, so one parser can
//! take many files of a glob. [`Parser::push`] is the call for streams: it unwraps
//! container lines, joins multi-line records, then parses; [`Parser::parse`] parses one
//! line on its own (for the HTTP ingest of single lines, or behind a [`Multiline`]).
//!
//! ```
//! use logyard_parse::{LineContext, Parser, ParserConfig};
//! use logyard_model::Level;
//!
//! let mut parser = Parser::new(ParserConfig::default()).unwrap();
//! let ctx = LineContext { source: "file:/tmp/billing.log", agent_hint: "billing", host: "web-1", received_ns: 0 };
//! let rec = parser
//!     .parse(b"2024-01-15 10:30:00 - ERROR - payments - charge failed status=502 took 35 ms", &ctx)
//!     .unwrap();
//! assert_eq!(rec.level, Some(Level::Error));
//! assert_eq!(rec.agent, "payments");
//! assert_eq!(rec.message, "charge failed status=502 took 35 ms");
//! assert_eq!(rec.fields["status"].to_string(), "502");
//! assert_eq!(rec.fields["response_time_ms"].to_string(), "35");
//! assert_eq!(logyard_model::format_rfc3339(rec.timestamp), "2024-01-15T10:30:00Z");
//! ```

mod detect;
mod error;
mod fields;
mod formats;
pub mod framing;
mod grok;
mod level;
mod multiline;
mod parser;
mod redact;
pub mod roles;
mod stream;
mod time;

pub use detect::Format;
pub use error::ParseError;
pub use fields::RESPONSE_TIME_MS;
pub use formats::rfc5424::SYSLOG_FACILITIES;
pub use formats::TIME_ERROR;
pub use grok::{pattern_names as grok_pattern_names, Grok, GrokDef};
pub use level::LEVEL_RAW;
pub use logyard_model::JsonStr;
pub use multiline::{Multiline, MultilineConfig, MultilineMode};
pub use parser::{
    agent_from_path, record_to_json, LineContext, Parser, ParserConfig, DOCKER_LINE_BYTES,
    WRAPPER_ERROR,
};
pub use redact::{
    unescape_json, RedactConfig, RedactPattern, RedactSettings, RedactionCounts, Redactor,
};
pub use roles::{key_column, Dialect};
pub use time::custom::TimeFormat;
pub use time::TimeZone;

#[doc(no_inline)]
pub use logyard_model::Record;
