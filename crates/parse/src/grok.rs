//! Grok: Logstash-style patterns (`%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level}
//! %{GREEDYDATA:message}`) expanded with a built-in pattern library and compiled to one
//! [`regex::Regex`].
//!
//! `%{NAME}` inserts a library pattern, `%{NAME:field}` also captures it, and
//! `%{NAME:field:int}` / `:float` types the capture; `(?<field>…)` captures a raw regex.
//! Captures named `timestamp`, `level`, `message`, `agent`/`program`, `host`/`logsource`
//! fill the record; `clientip`, `auth`, `verb`, `request`, `response` become `ip`, `user`,
//! `method`, `path`, `status`; everything else is a field. The library is the common
//! subset of Logstash's `grok-patterns`, rewritten without look-around (`grok_patterns.txt`).

use std::collections::HashMap;
use std::sync::OnceLock;

use logyard_model::{Column, Record, Value};
use regex::{Regex, RegexBuilder};

use crate::error::ParseError;
use crate::fields::{add_field, scalar};
use crate::formats::{Cx, TIME_ERROR};
use crate::level::set_level;
use crate::roles::{key_column, Dialect};
use crate::time::{parse_stamp_with, Stamp};

const LIBRARY: &str = include_str!("grok_patterns.txt");
const MAX_NESTING: usize = 32;

/// A named grok parser from the configuration (`[[parsers]] name = … grok = …`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrokDef {
    /// The parser's name, used in error messages.
    pub name: String,
    /// The grok pattern (`grok`, in Logstash's syntax).
    #[serde(rename = "grok")]
    pub pattern: String,
}

/// How a capture is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    Auto,
    Str,
    Int,
    Float,
}

/// A compiled grok parser.
#[derive(Debug, Clone)]
pub struct Grok {
    name: String,
    regex: Regex,
    /// Field name and type of each capture group `g<i>`.
    captures: Vec<(String, Conv)>,
}

fn library() -> &'static HashMap<&'static str, &'static str> {
    static LIB: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    LIB.get_or_init(|| {
        LIBRARY
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.split_once(' '))
            .collect()
    })
}

/// Returns the names of the built-in patterns.
pub fn pattern_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = library().keys().copied().collect();
    names.sort_unstable();
    names
}

impl Grok {
    /// Expands and compiles a grok pattern; the error names the pattern and the fault.
    pub fn compile(def: &GrokDef) -> Result<Grok, ParseError> {
        let err = |reason: String| ParseError::Grok {
            name: def.name.clone(),
            reason,
        };
        let mut captures = Vec::new();
        let mut out = String::with_capacity(def.pattern.len() * 4);
        expand(&def.pattern, &mut out, &mut captures, 0, &mut Vec::new()).map_err(err)?;
        let regex = RegexBuilder::new(&out)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| err(format!("{e}")))?;
        Ok(Grok {
            name: def.name.clone(),
            regex,
            captures,
        })
    }

    /// Returns the parser's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the expanded regex.
    pub fn regex(&self) -> &str {
        self.regex.as_str()
    }

    /// Fills the record from a matching line; false when the line does not match.
    pub(crate) fn apply(&self, line: &str, rec: &mut Record, cx: &Cx) -> bool {
        let Some(caps) = self.regex.captures(line) else {
            return false;
        };
        let mut message = false;
        for (i, (field, conv)) in self.captures.iter().enumerate() {
            let Some(m) = caps.get(i + 1) else { continue };
            let v = m.as_str();
            message |= put(rec, field, v, *conv, cx);
        }
        if !message {
            rec.message = line.to_string();
        }
        true
    }
}

/// Puts one capture into the record; true when it was the message.
fn put(rec: &mut Record, field: &str, v: &str, conv: Conv, cx: &Cx) -> bool {
    let unquoted = v.strip_prefix('"').and_then(|x| x.strip_suffix('"'));
    // A quoted `agent` is the combined log's user agent, not the program.
    let column = match (field, unquoted) {
        ("agent", Some(_)) => None,
        _ => key_column(field, Dialect::Grok),
    };
    match column {
        Some(Column::Timestamp) => match parse_stamp_with(v, cx.time_format, cx.zone, cx.now) {
            Stamp::Ok(ns) => rec.timestamp = ns,
            Stamp::Invalid(r) => {
                rec.fields.insert(
                    TIME_ERROR.into(),
                    Value::Str(format!("invalid timestamp {v:?}: {r}")),
                );
            }
            Stamp::Unknown => {
                rec.fields.insert(
                    TIME_ERROR.into(),
                    Value::Str(format!("unknown timestamp format {v:?}")),
                );
            }
        },
        Some(Column::Level) => set_level(rec, v),
        Some(Column::Message) => {
            rec.message = v.to_string();
            return true;
        }
        Some(Column::Agent) => rec.agent = v.to_string(),
        Some(Column::Host) => rec.host = v.to_string(),
        _ => put_field(rec, field, v, unquoted, conv),
    }
    false
}

/// Puts a capture that sets no column: a field, some renamed as the access formats name
/// them.
fn put_field(rec: &mut Record, field: &str, v: &str, unquoted: Option<&str>, conv: Conv) {
    match field {
        "agent" => {
            let ua = unquoted.unwrap_or(v);
            if ua != "-" {
                rec.fields
                    .insert("user_agent".into(), Value::Str(ua.to_string()));
            }
        }
        "ident" if v == "-" => {}
        "auth" | "user" if v == "-" => {}
        "auth" => {
            rec.fields.insert("user".into(), Value::Str(v.to_string()));
        }
        "referrer" | "referer" => {
            let r = unquoted.unwrap_or(v);
            if r != "-" {
                rec.fields
                    .insert("referrer".into(), Value::Str(r.to_string()));
            }
        }
        _ => {
            let key = match field {
                "clientip" => "ip",
                "verb" => "method",
                "request" => "path",
                "response" => "status",
                other => other,
            };
            let value = match conv {
                Conv::Auto => scalar(v),
                Conv::Str => Value::Str(v.to_string()),
                Conv::Int => v
                    .trim()
                    .parse()
                    .map(Value::Int)
                    .unwrap_or_else(|_| Value::Str(v.to_string())),
                Conv::Float => v
                    .trim()
                    .parse()
                    .map(Value::Float)
                    .unwrap_or_else(|_| Value::Str(v.to_string())),
            };
            add_field(rec, key, value);
        }
    }
}

/// Expands `%{…}` references and `(?<name>` groups of `pattern` into `out`.
fn expand(
    pattern: &str,
    out: &mut String,
    captures: &mut Vec<(String, Conv)>,
    depth: usize,
    stack: &mut Vec<String>,
) -> Result<(), String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "patterns nest deeper than {MAX_NESTING}: {}",
            stack.join(" -> ")
        ));
    }
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("%{") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed %{{ in {pattern:?}"))?;
            let spec = &after[..end];
            rest = &after[end + 1..];
            let mut parts = spec.splitn(3, ':');
            let name = parts.next().unwrap_or_default();
            let field = parts.next();
            let conv = match parts.next() {
                None => Conv::Auto,
                Some("int") => Conv::Int,
                Some("float") => Conv::Float,
                Some("string") => Conv::Str,
                Some(other) => {
                    return Err(format!(
                        "unknown type {other:?} in %{{{spec}}}: expected int, float or string"
                    ))
                }
            };
            let body = *library().get(name).ok_or_else(|| {
                if stack.is_empty() {
                    format!("unknown pattern %{{{name}}}")
                } else {
                    format!(
                        "unknown pattern %{{{name}}} used by %{{{}}}",
                        stack.join("} -> %{")
                    )
                }
            })?;
            if stack.iter().any(|s| s == name) {
                return Err(format!("pattern %{{{name}}} refers to itself"));
            }
            match field {
                Some(f) if !f.is_empty() => {
                    out.push_str(&format!("(?P<g{}>", captures.len()));
                    captures.push((f.to_string(), conv));
                }
                _ => out.push_str("(?:"),
            }
            stack.push(name.to_string());
            expand(body, out, captures, depth + 1, stack)?;
            stack.pop();
            out.push(')');
        } else if let Some(after) = rest
            .strip_prefix("(?<")
            .filter(|a| !a.starts_with(['=', '!']))
        {
            let end = after
                .find('>')
                .ok_or_else(|| format!("unclosed (?< in {pattern:?}"))?;
            captures.push((after[..end].to_string(), Conv::Auto));
            out.push_str(&format!("(?P<g{}>", captures.len() - 1));
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('\\') {
            // An escaped character is copied as is (so `\%{` stays literal).
            out.push('\\');
            let c = after
                .chars()
                .next()
                .ok_or("pattern ends with a lone backslash")?;
            out.push(c);
            rest = &after[c.len_utf8()..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logyard_model::Level;

    fn grok(p: &str) -> Result<Grok, ParseError> {
        Grok::compile(&GrokDef {
            name: "t".into(),
            pattern: p.into(),
        })
    }

    fn cx() -> Cx<'static> {
        Cx {
            zone: crate::TimeZone::Utc,
            time_format: None,
            now: 1_705_314_600_000_000_000,
            agent_hint: "",
            access_agent: "nginx",
        }
    }

    #[test]
    fn every_library_pattern_compiles() {
        for name in pattern_names() {
            grok(&format!("%{{{name}}}")).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn fills_the_record() {
        let g = grok("%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} \\[%{DATA:thread}\\] %{GREEDYDATA:message}").unwrap();
        let mut r = Record::default();
        assert!(g.apply("2024-01-15T10:30:00Z WARN [main-1] disk low", &mut r, &cx()));
        assert_eq!(r.timestamp, 1_705_314_600_000_000_000);
        assert_eq!(r.level, Some(Level::Warning));
        assert_eq!(r.message, "disk low");
        assert_eq!(r.fields["thread"], Value::Str("main-1".into()));
        assert!(!g.apply("nothing here", &mut Record::default(), &cx()));
    }

    #[test]
    fn combined_apache_log() {
        let g = grok("%{COMBINEDAPACHELOG}").unwrap();
        let mut r = Record::default();
        let line = r#"1.2.3.4 - ana [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 404 2326 "http://x/" "Mozilla/4.08""#;
        assert!(g.apply(line, &mut r, &cx()));
        assert_eq!(r.fields["ip"], Value::Str("1.2.3.4".into()));
        assert_eq!(r.fields["user"], Value::Str("ana".into()));
        assert_eq!(r.fields["method"], Value::Str("GET".into()));
        assert_eq!(r.fields["path"], Value::Str("/a.gif".into()));
        assert_eq!(r.fields["status"], Value::Int(404));
        assert_eq!(r.fields["bytes"], Value::Int(2326));
        assert_eq!(r.fields["user_agent"], Value::Str("Mozilla/4.08".into()));
        assert_eq!(r.timestamp, 971_211_336_000_000_000);
    }

    #[test]
    fn errors_name_the_fault() {
        let e = grok("%{NOPE:x} %{WORD}").unwrap_err().to_string();
        assert!(
            e.contains("unknown pattern %{NOPE}") && e.contains("\"t\""),
            "{e}"
        );
        let e = grok("%{WORD:x:bool}").unwrap_err().to_string();
        assert!(e.contains("unknown type"), "{e}");
        let e = grok("(%{WORD}").unwrap_err().to_string();
        assert!(e.contains("unclosed"), "{e}");
        let e = grok("%{WORD").unwrap_err().to_string();
        assert!(e.contains("unclosed %{"), "{e}");
        let g = grok("(?<user>\\w+)@(?<domain>[a-z.]+)").unwrap();
        let mut r = Record::default();
        assert!(g.apply("mail ana@example.com", &mut r, &cx()));
        assert_eq!(r.fields["domain"], Value::Str("example.com".into()));
    }
}
