//! `patterns`: message templates with their counts, so that errors are counted by kind.
//!
//! A template is the message with its variable parts folded into placeholders: times
//! `<time>`, UUIDs `<uuid>`, URLs `<url>`, e-mail addresses `<email>`, IP addresses (with a
//! port) `<ip>`, paths of two or more parts `<path>`, double-quoted strings `<str>`, hex ids
//! (`0x…`, or 8+ hex digits with a digit) `<hex>`, and numbers `<num>`.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use logyard_model::schema::Column;
use regex::{Captures, Regex};

use crate::cell::{Cell, FieldRef};
use crate::pipes::{Aggregator, Budget, Table};

/// The table's columns: the template, its count and its newest message.
pub const COLUMNS: [&str; 3] = ["pattern", "count", "example"];

/// Messages longer than this are cut before templating.
const MAX_MESSAGE: usize = 2048;

/// `patterns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patterns;

impl fmt::Display for Patterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("patterns")
    }
}

impl Patterns {
    pub(crate) fn aggregator(&self) -> Box<dyn Aggregator> {
        Box::new(PatternsState {
            templates: HashMap::new(),
        })
    }
}

fn variable_parts() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"(?P<time>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)",
            r"|(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)",
            r"|(?P<url>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>]+)",
            r"|(?P<email>\b[\w.+-]+@[\w-]+\.[\w.-]*\w)",
            r"|(?P<ip>\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?\b|\b(?:[0-9a-fA-F]{1,4}:){5,7}[0-9a-fA-F]{1,4}\b)",
            r"|(?P<path>(?:/[\w.@%+~-]+){2,}/?)",
            r#"|(?P<str>"(?:[^"\\]|\\.)*")"#,
            r"|(?P<hex>\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{8,}\b)",
            r"|(?P<num>\d+(?:\.\d+)?)",
        ))
        .expect("the template regex is valid")
    })
}

/// Returns the template of a message.
pub fn template(message: &str) -> String {
    let mut end = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    variable_parts()
        .replace_all(&message[..end], |c: &Captures<'_>| {
            for name in ["time", "uuid", "url", "email", "ip", "path", "str"] {
                if c.name(name).is_some() {
                    return format!("<{name}>");
                }
            }
            if let Some(hex) = c.name("hex") {
                let h = hex.as_str();
                return if h.bytes().all(|b| b.is_ascii_digit()) {
                    "<num>".into()
                } else if h.starts_with("0x") || h.bytes().any(|b| b.is_ascii_digit()) {
                    "<hex>".into()
                } else {
                    h.to_string()
                };
            }
            "<num>".into()
        })
        .into_owned()
}

struct PatternsState {
    templates: HashMap<String, (u64, (i64, u64), String)>,
}

impl Aggregator for PatternsState {
    fn fields(&self) -> Vec<FieldRef> {
        vec![FieldRef::new(Column::Message.name())]
    }

    fn push(
        &mut self,
        cells: &[Cell],
        ts: i64,
        seq: u64,
        budget: &mut Budget,
    ) -> Result<(), String> {
        let message = match &cells[0] {
            Cell::Str(s) => s.as_str(),
            _ => "",
        };
        let t = template(message);
        if let Some(entry) = self.templates.get_mut(&t) {
            entry.0 += 1;
            if (ts, seq) > entry.1 {
                if message.len() > entry.2.len() {
                    budget.add_bytes(message.len() - entry.2.len())?;
                }
                entry.1 = (ts, seq);
                entry.2 = message.to_string();
            }
            return Ok(());
        }
        budget.add_group(t.len() * 2 + message.len() + 96)?;
        self.templates
            .insert(t, (1, (ts, seq), message.to_string()));
        Ok(())
    }

    fn finish(self: Box<Self>) -> Table {
        let mut rows: Vec<(String, u64, String)> = self
            .templates
            .into_iter()
            .map(|(t, (n, _, example))| (t, n, example))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Table {
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .into_iter()
                .map(|(t, n, e)| vec![Cell::Str(t), Cell::Int(n as i64), Cell::Str(e)])
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipes::tests::round_trip;

    #[test]
    fn syntax() {
        round_trip("level:ERROR | patterns");
        round_trip("level:>=ERROR | patterns | sort by (count) desc | limit 10");
    }

    #[test]
    fn folds_variable_parts() {
        for (message, want) in [
            (
                "connection to 10.0.0.12:5432 refused after 3 tries",
                "connection to <ip> refused after <num> tries",
            ),
            ("user 42 not found", "user <num> not found"),
            (
                "request 550e8400-e29b-41d4-a716-446655440000 failed",
                "request <uuid> failed",
            ),
            (
                "cannot open /var/log/app/x.log: denied",
                "cannot open <path>: denied",
            ),
            ("GET /api/users/17 took 35.2ms", "GET <path> took <num>ms"),
            ("bad key \"abc def\" in config", "bad key <str> in config"),
            (
                "segfault at 0x7ffd3a2b in worker",
                "segfault at <hex> in worker",
            ),
            (
                "trace 4bf92f3577b34da6a3ce929d0e0e4736 dropped",
                "trace <hex> dropped",
            ),
            (
                "at 2024-01-15T10:30:00.123Z the job failed",
                "at <time> the job failed",
            ),
            ("mail to ana@example.com bounced", "mail to <email> bounced"),
            ("fetch https://x.io/a?b=1 failed", "fetch <url> failed"),
            (
                "deadlinesexceeded in accepted",
                "deadlinesexceeded in accepted",
            ),
        ] {
            assert_eq!(template(message), want, "{message}");
        }
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let m = "é".repeat(3000);
        assert!(template(&m).len() <= MAX_MESSAGE);
    }
}
