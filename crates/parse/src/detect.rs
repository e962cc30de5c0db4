//! Format names and detection: which parsers to try for a line, cheapest and likeliest
//! first, and a per-source memory of the last format that matched, so that a stream of one
//! format pays detection once while mixed streams stay correct.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use logyard_model::Record;

use crate::error::ParseError;
use crate::formats::{self, Cx, Res};

/// The format of a source's lines: `auto` (detect per line) or one fixed format.
///
/// With a fixed format, a line that does not fit it is kept as plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Detects the format of every line (cached per source).
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
    /// Syslog, RFC 5424 or RFC 3164.
    Syslog,
    /// Syslog RFC 5424.
    Rfc5424,
    /// Syslog RFC 3164 (BSD).
    Rfc3164,
    /// nginx access (common or combined) and error logs.
    Nginx,
    /// Apache access (common or combined) and error logs.
    Apache,
    /// Python-style text lines (`2024-01-15 10:30:00 - INFO - agent - message`, `[INFO] agent:
    /// message`, `INFO - message`, `INFO:name:message`).
    Python,
    /// Django's verbose format.
    Django,
    /// A timestamp, a level and a message, as Java (logback, log4j, Spring Boot) and many
    /// other loggers write.
    Stamped,
    /// Go's glog and Kubernetes' klog (`I0115 10:30:00.123456 1 file.go:12] message`).
    Klog,
    /// Docker json-file lines, unwrapped; the inner line is detected.
    Docker,
    /// Kubernetes CRI lines, unwrapped; the inner line is detected.
    Cri,
    /// Plain text: the whole line is the message.
    Plain,
}

impl Format {
    /// Every format users may name, in the order the docs list them: the registry of
    /// formats (a new one is a variant, its name in [`Format::as_str`], its parsers in
    /// `kinds` and its place here).
    pub const ALL: [Format; 15] = [
        Format::Auto,
        Format::Json,
        Format::Logfmt,
        Format::Syslog,
        Format::Rfc5424,
        Format::Rfc3164,
        Format::Nginx,
        Format::Apache,
        Format::Python,
        Format::Django,
        Format::Stamped,
        Format::Klog,
        Format::Docker,
        Format::Cri,
        Format::Plain,
    ];

    /// Every format name, as accepted by [`Format::from_str`]: those of [`Format::ALL`].
    pub const NAMES: [&'static str; 15] = {
        let mut names = [""; 15];
        let mut i = 0;
        while i < names.len() {
            names[i] = Format::ALL[i].as_str();
            i += 1;
        }
        names
    };

    /// Returns the format's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Syslog => "syslog",
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Nginx => "nginx",
            Format::Apache => "apache",
            Format::Python => "python",
            Format::Django => "django",
            Format::Stamped => "stamped",
            Format::Klog => "klog",
            Format::Docker => "docker",
            Format::Cri => "cri",
            Format::Plain => "plain",
        }
    }

    /// The parsers a fixed format allows; empty for `auto` and the wrappers (detected).
    pub(crate) fn kinds(self) -> &'static [Kind] {
        match self {
            Format::Json => &[Kind::Json],
            Format::Logfmt => &[Kind::Logfmt],
            Format::Syslog => &[Kind::Rfc5424, Kind::Rfc3164],
            Format::Rfc5424 => &[Kind::Rfc5424],
            Format::Rfc3164 => &[Kind::Rfc3164],
            Format::Nginx => &[Kind::Access, Kind::NginxError],
            Format::Apache => &[Kind::Access, Kind::ApacheError],
            Format::Python => &[Kind::Python],
            Format::Django => &[Kind::Django],
            Format::Stamped => &[Kind::Stamped],
            Format::Klog => &[Kind::Klog],
            Format::Plain => &[],
            Format::Auto | Format::Docker | Format::Cri => &[],
        }
    }

    /// True when the format detects per line.
    pub(crate) fn detects(self) -> bool {
        matches!(self, Format::Auto | Format::Docker | Format::Cri)
    }
}

impl FromStr for Format {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = match lower.as_str() {
            "jsonl" | "ndjson" => "json",
            "text" => "plain",
            "kubernetes" | "k8s" => "cri",
            "java" | "logback" | "log4j" | "spring" => "stamped",
            "glog" => "klog",
            other => other,
        };
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == lower)
            .ok_or_else(|| ParseError::UnknownFormat(s.to_string()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Json,
    Logfmt,
    Rfc5424,
    Rfc3164,
    Access,
    NginxError,
    ApacheError,
    Python,
    Django,
    Stamped,
    Klog,
}

impl Kind {
    pub(crate) fn run(self, line: &str, rec: &mut Record, cx: &Cx) -> Res {
        match self {
            Kind::Json => formats::json::parse(line, rec, cx),
            Kind::Logfmt => formats::logfmt::parse(line, rec, cx),
            Kind::Rfc5424 => formats::rfc5424::parse(line, rec, cx),
            Kind::Rfc3164 => formats::rfc3164::parse(line, rec, cx),
            Kind::Access => formats::access::parse(line, rec, cx),
            Kind::NginxError => formats::nginx_error::parse(line, rec, cx),
            Kind::ApacheError => formats::apache_error::parse(line, rec, cx),
            Kind::Python => formats::python::parse(line, rec, cx),
            Kind::Django => formats::django::parse(line, rec, cx),
            Kind::Stamped => formats::stamped::parse(line, rec, cx),
            Kind::Klog => formats::klog::parse(line, rec, cx),
        }
    }
}

/// The parsers worth trying for a line, by its first byte, likeliest first.
pub(crate) fn candidates(line: &str) -> &'static [Kind] {
    match line.as_bytes().first() {
        Some(b'{') => &[Kind::Json],
        Some(b'<') => &[Kind::Rfc5424, Kind::Rfc3164],
        Some(b'[') => &[Kind::Python, Kind::ApacheError, Kind::Stamped],
        Some(b'0'..=b'9') => &[Kind::Python, Kind::NginxError, Kind::Access, Kind::Stamped],
        Some(b'I' | b'W' | b'E' | b'F') => &[
            Kind::Django,
            Kind::Python,
            Kind::Klog,
            Kind::Rfc3164,
            Kind::Logfmt,
            Kind::Access,
        ],
        Some(b'A'..=b'Z') => &[
            Kind::Django,
            Kind::Python,
            Kind::Rfc3164,
            Kind::Logfmt,
            Kind::Access,
        ],
        Some(b'a'..=b'z' | b'_' | b'@') => &[Kind::Logfmt, Kind::Access],
        Some(b':') => &[Kind::Access],
        _ => &[],
    }
}

/// Remembers, per source and per kind of first byte (`{`, `<`, `[`, digit, letter, …), the
/// parser that matched last: a stream of one format pays detection once, and a stream that
/// mixes formats mostly finds its format at the first try too.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    last_source: String,
    last: Classes,
    by_source: HashMap<String, Classes>,
}

type Classes = [Option<Kind>; 8];

/// Sources remembered at most; past this the memory starts again (detection is only slower).
const MAX_SOURCES: usize = 10_000;

fn class(line: &str) -> usize {
    match line.as_bytes().first() {
        Some(b'{') => 0,
        Some(b'<') => 1,
        Some(b'[') => 2,
        Some(b'0'..=b'9') => 3,
        Some(b'A'..=b'Z') => 4,
        Some(b'a'..=b'z' | b'_' | b'@') => 5,
        Some(b':') => 6,
        _ => 7,
    }
}

impl Cache {
    /// Returns the parser that matched the source's last line that began like this one.
    pub fn get(&mut self, source: &str, line: &str) -> Option<Kind> {
        if self.last_source != source {
            if self.last.iter().any(Option::is_some) {
                if self.by_source.len() >= MAX_SOURCES {
                    self.by_source.clear();
                }
                self.by_source
                    .insert(std::mem::take(&mut self.last_source), self.last);
            }
            self.last_source.clear();
            self.last_source.push_str(source);
            self.last = self.by_source.get(source).copied().unwrap_or_default();
        }
        self.last[class(line)]
    }

    /// Records the parser that matched the line (after [`Cache::get`] for its source).
    pub fn set(&mut self, line: &str, kind: Kind) {
        self.last[class(line)] = Some(kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Format::NAMES {
            let f: Format = name.parse().unwrap();
            assert_eq!(f.to_string(), name);
        }
        assert_eq!("JSONL".parse::<Format>().unwrap(), Format::Json);
        let distinct: std::collections::HashSet<&str> = Format::NAMES.into_iter().collect();
        assert_eq!(
            distinct.len(),
            Format::ALL.len(),
            "a format twice in Format::ALL"
        );
        let e = "yaml".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("yaml") && e.contains("logfmt"), "{e}");
    }

    #[test]
    fn cache_is_per_source_and_first_byte() {
        let mut c = Cache::default();
        assert_eq!(c.get("a", "{}"), None);
        c.set("{}", Kind::Json);
        assert_eq!(c.get("b", "{}"), None);
        c.set("[INFO] x", Kind::Python);
        assert_eq!(c.get("a", "{\"x\":1}"), Some(Kind::Json));
        assert_eq!(c.get("a", "[INFO] y"), None);
        assert_eq!(c.get("b", "[WARN] z"), Some(Kind::Python));
    }
}
