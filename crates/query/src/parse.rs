//! The query language's filter part: words, phrases, regexes, `field:value`, boolean logic.
//!
//! ```text
//! query   = or
//! or      = and { "OR" and }
//! and     = unary { ["AND"] unary }
//! unary   = ("NOT" | "-") unary | primary        ("-" only at the start of a term)
//! primary = "(" or ")" | "*" | "~" string | string | field ":" [op] value | word
//! op      = ">=" | ">" | "<=" | "<" | "="
//! ```
//!
//! Fields: `level` (names or comparisons), `agent`, `host`, `source` (a trailing `*` makes
//! a prefix match), `_time` (a duration back from now, or `[start, end)` / `[start, end]`),
//! and any other name for a key of the record's fields.

use logyard_model::schema::{self, Column};
use logyard_model::{parse_duration, parse_time, Level};

use crate::filter::{Filter, LabelColumn, LevelOp};
use crate::QueryError;

/// Parses the filter part of a query. `now` anchors relative times.
pub fn parse_filter(text: &str, now: i64) -> Result<Filter, QueryError> {
    let mut p = Parser {
        text,
        pos: 0,
        now,
        max_regex_bytes: crate::Settings::default().max_regex_bytes,
        depth: 0,
    };
    p.skip_ws();
    if p.pos == text.len() {
        return Ok(Filter::All);
    }
    let filter = p.or()?;
    p.skip_ws();
    if p.pos < text.len() {
        if text[p.pos..].starts_with('|') {
            return Err(p.error(
                "pipes (`| stats`, `| limit` …) are not accepted here: only a filter; run the query with `parse_query`",
            ));
        }
        return Err(p.error("expected AND, OR or the end of the query"));
    }
    Ok(filter)
}

/// The parser's cursor over a query's text; the pipes' parsers share it.
pub(crate) struct Parser<'a> {
    pub(crate) text: &'a str,
    pub(crate) pos: usize,
    pub(crate) now: i64,
    /// Largest compiled regex, in bytes.
    pub(crate) max_regex_bytes: usize,
    /// Current nesting of parentheses and negations.
    pub(crate) depth: usize,
}

/// The deepest nesting of parentheses and negations a filter may have.
pub const MAX_DEPTH: usize = 64;

pub(crate) fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || "()\"':|".contains(c))
}

impl<'a> Parser<'a> {
    pub(crate) fn error(&self, message: impl Into<String>) -> QueryError {
        QueryError::Syntax {
            message: message.into(),
            position: self.pos,
        }
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    pub(crate) fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    /// Consumes a keyword followed by a non-word character.
    pub(crate) fn keyword(&mut self, kw: &str) -> bool {
        let rest = self.rest();
        if rest.starts_with(kw) && !rest[kw.len()..].starts_with(is_word_char) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    pub(crate) fn or(&mut self) -> Result<Filter, QueryError> {
        let mut parts = vec![self.and()?];
        loop {
            self.skip_ws();
            if self.keyword("OR") {
                parts.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Filter::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Filter, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            self.skip_ws();
            let rest = self.rest();
            if rest.is_empty() || rest.starts_with(')') || rest.starts_with('|') {
                break;
            }
            let save = self.pos;
            if self.keyword("OR") {
                self.pos = save;
                break;
            }
            self.keyword("AND");
            parts.push(self.unary()?);
        }
        Ok(Filter::and(parts))
    }

    /// Parses a negation or a primary; every nesting passes here, so the depth is bounded
    /// (a deep stack of parentheses would otherwise overflow the thread's stack).
    fn unary(&mut self) -> Result<Filter, QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!(
                "the query nests more than {MAX_DEPTH} levels of parentheses and negations: flatten it"
            )));
        }
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Filter, QueryError> {
        self.skip_ws();
        if self.keyword("NOT") {
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.rest().starts_with('-')
            && self.rest()[1..].starts_with(|c: char| !c.is_whitespace())
        {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Filter, QueryError> {
        self.skip_ws();
        let rest = self.rest();
        if rest.is_empty() {
            return Err(self.error("expected a word, a phrase, a field:value or `(`"));
        }
        if rest.starts_with('(') {
            self.pos += 1;
            let inner = self.or()?;
            self.skip_ws();
            if !self.rest().starts_with(')') {
                return Err(self.error("expected `)`"));
            }
            self.pos += 1;
            return Ok(inner);
        }
        if rest.starts_with('*') && !rest[1..].starts_with(is_word_char) {
            self.pos += 1;
            return Ok(Filter::All);
        }
        if rest.starts_with('~') {
            self.pos += 1;
            let start = self.pos;
            let pattern = self.string()?;
            return regex::RegexBuilder::new(&pattern)
                .size_limit(self.max_regex_bytes)
                .build()
                .map(Filter::Regex)
                .map_err(|e| QueryError::Syntax {
                    message: match e {
                        regex::Error::CompiledTooBig(limit) => format!(
                            "regex is too large: it compiles to more than {limit} bytes (setting limits.max_regex_bytes); make it simpler or search for words instead"
                        ),
                        e => format!("invalid regex: {e}"),
                    },
                    position: start,
                });
        }
        if rest.starts_with('"') || rest.starts_with('\'') {
            return Ok(Filter::Text(self.string()?));
        }
        if rest.starts_with("i(") {
            return self.insensitive();
        }
        let word = self.word();
        if word.is_empty() {
            return Err(self.error("expected a word, a phrase, a field:value or `(`"));
        }
        if self.rest().starts_with(':') {
            self.pos += 1;
            return self.field(word);
        }
        Ok(Filter::Text(word.to_string()))
    }

    /// `i(word)` or `i("phrase")`: the text in the message at token boundaries, whatever
    /// its case; a regex underneath, so it reads every block's messages.
    fn insensitive(&mut self) -> Result<Filter, QueryError> {
        self.pos += 2;
        self.skip_ws();
        let at = self.pos;
        let text = if self.rest().starts_with(['"', '\'']) {
            self.string()?
        } else {
            self.word().to_string()
        };
        if text.is_empty() {
            return Err(QueryError::Syntax {
                message: "expected a word or a quoted phrase after `i(`".into(),
                position: at,
            });
        }
        self.skip_ws();
        if !self.rest().starts_with(')') {
            return Err(self.error("expected `)` to close `i(`"));
        }
        self.pos += 1;
        // Token characters: ASCII letters, digits, `_` and anything outside ASCII.
        const OUTSIDE: &str = r"(?:^|[^0-9A-Za-z_\x{80}-\x{10FFFF}])";
        const AFTER: &str = r"(?:$|[^0-9A-Za-z_\x{80}-\x{10FFFF}])";
        let is_token = |c: char| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii();
        let before = if text.starts_with(is_token) {
            OUTSIDE
        } else {
            ""
        };
        let after = if text.ends_with(is_token) { AFTER } else { "" };
        let pattern = format!("(?i){before}{}{after}", regex::escape(&text));
        regex::RegexBuilder::new(&pattern)
            .size_limit(self.max_regex_bytes)
            .build()
            .map(Filter::Regex)
            .map_err(|e| QueryError::Syntax {
                message: format!("cannot match {text:?} case-insensitively: {e}"),
                position: at,
            })
    }

    pub(crate) fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// Reads a quoted string with `\"`, `\\` and `\n` escapes.
    pub(crate) fn string(&mut self) -> Result<String, QueryError> {
        let quote = match self.rest().chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, c)) if c == quote || c == '\\' => out.push(c),
                    Some((_, c)) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => break,
                },
                c if c == quote => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        self.pos = start;
        Err(self.error(format!("unterminated string: add the closing {quote}")))
    }

    fn value(&mut self) -> Result<String, QueryError> {
        if self.rest().starts_with('"') || self.rest().starts_with('\'') {
            self.string()
        } else {
            let w = self.word();
            if w.is_empty() {
                return Err(self.error("expected a value after `:`"));
            }
            Ok(w.to_string())
        }
    }

    fn op(&mut self) -> Option<LevelOp> {
        for (text, op) in [
            (">=", LevelOp::Ge),
            ("<=", LevelOp::Le),
            (">", LevelOp::Gt),
            ("<", LevelOp::Lt),
            ("=", LevelOp::Eq),
        ] {
            if self.rest().starts_with(text) {
                self.pos += text.len();
                return Some(op);
            }
        }
        None
    }

    fn field(&mut self, name: &str) -> Result<Filter, QueryError> {
        match Column::parse(name) {
            Some(Column::Level) => {
                let op = self.op().unwrap_or(LevelOp::Eq);
                let at = self.pos;
                let value = self.value()?;
                let level = Level::normalize(&value).ok_or(QueryError::Syntax {
                    message: format!(
                        "unknown level {value:?}: expected TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL"
                    ),
                    position: at,
                })?;
                Ok(Filter::Level(op, level))
            }
            Some(label @ (Column::Agent | Column::Host | Column::Source)) => {
                let column = match label {
                    Column::Agent => LabelColumn::Agent,
                    Column::Host => LabelColumn::Host,
                    _ => LabelColumn::Source,
                };
                self.op();
                let quoted = self.rest().starts_with(['"', '\'']);
                let mut value = self.value()?;
                let prefix = !quoted && value.ends_with('*');
                if prefix {
                    value.pop();
                }
                Ok(Filter::Label {
                    column,
                    value,
                    prefix,
                })
            }
            _ if name == schema::TIME_ALIAS => self.time(),
            _ => {
                let at = self.pos;
                if let Some(op) = self.op().filter(|op| *op != LevelOp::Eq) {
                    let value_at = self.pos;
                    let value = self.value()?;
                    let bound: f64 = value.parse().map_err(|_| QueryError::Syntax {
                        message: format!(
                            "expected a number after `{}`, got {value:?}",
                            &self.text[at..value_at]
                        ),
                        position: value_at,
                    })?;
                    return Ok(Filter::FieldCmp {
                        name: name.to_string(),
                        op,
                        bound,
                    });
                }
                let quoted = self.rest().starts_with(['"', '\'']);
                let mut value = self.value()?;
                let prefix = !quoted && value.ends_with('*');
                if prefix {
                    value.pop();
                }
                Ok(Filter::Field {
                    name: name.to_string(),
                    value,
                    prefix,
                })
            }
        }
    }

    fn time(&mut self) -> Result<Filter, QueryError> {
        let at = self.pos;
        if self.rest().starts_with('[') {
            let close = self
                .rest()
                .find([')', ']'])
                .ok_or_else(|| self.error("expected `)` or `]` to close the time range"))?;
            let inner = &self.rest()[1..close];
            let inclusive = self.rest()[close..].starts_with(']');
            let (a, b) = inner
                .split_once(',')
                .ok_or_else(|| self.error("expected `[start, end)`"))?;
            let parse = |s: &str| {
                parse_time(s, self.now).map_err(|e| QueryError::Syntax {
                    message: e.to_string(),
                    position: at,
                })
            };
            let start = parse(a)?;
            let mut end = parse(b)?;
            if inclusive {
                end = end.saturating_add(1);
            }
            self.pos += close + 1;
            return Ok(Filter::Time {
                start: Some(start),
                end: Some(end),
            });
        }
        let value = self.value()?;
        let d = parse_duration(&value).map_err(|e| QueryError::Syntax {
            message: e.to_string(),
            position: at,
        })?;
        Ok(Filter::Time {
            start: Some(self.now - d),
            end: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Filter {
        parse_filter(s, 1_000_000_000_000).unwrap()
    }

    fn err(s: &str) -> (String, usize) {
        match parse_filter(s, 0).unwrap_err() {
            QueryError::Syntax { message, position } => (message, position),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn words_and_negation() {
        assert!(matches!(parse("*"), Filter::All));
        assert!(matches!(parse(""), Filter::All));
        assert!(matches!(parse("NEEDLE-42-5"), Filter::Text(t) if t == "NEEDLE-42-5"));
        match parse("error -debug") {
            Filter::And(parts) => {
                assert!(matches!(&parts[0], Filter::Text(t) if t == "error"));
                assert!(matches!(&parts[1], Filter::Not(_)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_and_levels() {
        assert!(matches!(
            parse("level:>=warn"),
            Filter::Level(LevelOp::Ge, Level::Warning)
        ));
        assert!(
            matches!(parse("agent:web-*"), Filter::Label { prefix: true, ref value, .. } if value == "web-")
        );
        assert!(
            matches!(parse("_time:1h"), Filter::Time { start: Some(s), end: None } if s == 1_000_000_000_000 - 3_600_000_000_000)
        );
        assert!(matches!(parse("a OR b"), Filter::Or(_)));
        assert!(matches!(parse("NOT (a b)"), Filter::Not(_)));
        assert!(matches!(parse("~\"took \\\\d+ms\""), Filter::Regex(_)));
        assert!(matches!(
            parse("response_time_ms:>1000"),
            Filter::FieldCmp { ref name, op: LevelOp::Gt, bound } if name == "response_time_ms" && bound == 1000.0
        ));
        assert!(matches!(parse("user:=ana"), Filter::Field { ref value, .. } if value == "ana"));
        match parse("i(\"Connection Refused\")") {
            Filter::Regex(re) => {
                assert!(re.is_match("upstream: connection refused by peer"));
                assert!(re.is_match("CONNECTION REFUSED"));
                assert!(!re.is_match("connection refusedx"));
            }
            other => panic!("{other:?}"),
        }
        match parse("i(error) agent:web") {
            Filter::And(parts) => assert!(
                matches!(&parts[0], Filter::Regex(re) if re.is_match("an Error:") && !re.is_match("errors"))
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err("i(error"),
            ("expected `)` to close `i(`".to_string(), 7)
        );
        assert_eq!(
            err("i()"),
            (
                "expected a word or a quoted phrase after `i(`".to_string(),
                2
            )
        );
        assert_eq!(
            err("status:>=abc"),
            ("expected a number after `>=`, got \"abc\"".to_string(), 9)
        );
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(err("(a b").1, 4);
        assert_eq!(err("level:loud").1, 6);
        assert!(err("\"open").0.contains("unterminated"));
        assert_eq!(err("a | stats count()").1, 2);
        assert!(err("~\"(\"").0.contains("invalid regex"));
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!(
            "{}a{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert!(parse_filter(&ok, 0).is_ok());
        let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(err(&deep).0.contains("nests more than"));
        assert!(err(&"NOT ".repeat(100_000)).0.contains("nests more than"));
        assert!(err(&format!("{}a", "-".repeat(100_000)))
            .0
            .contains("nests more than"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text either parses or fails with a position inside it; never a panic.
        #[test]
        fn never_panics_and_positions_are_in_range(text in "\\PC{0,40}") {
            match parse_filter(&text, 0) {
                Ok(_) => {}
                Err(QueryError::Syntax { position, .. }) => prop_assert!(position <= text.len()),
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        /// Query-like text built from the grammar's pieces always parses.
        #[test]
        fn grammar_pieces_parse(parts in proptest::collection::vec(prop_oneof![
            "[a-z]{1,8}".prop_map(|s| s),
            "[a-z]{1,5}-[0-9]{1,3}".prop_map(|s| s),
            "\"[a-z ]{0,10}\"".prop_map(|s| s),
            Just("level:>=ERROR".to_string()),
            Just("agent:web-*".to_string()),
            Just("-debug".to_string()),
            Just("_time:5m".to_string()),
        ], 1..6), ors in proptest::collection::vec(any::<bool>(), 6)) {
            let mut q = String::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    q.push_str(if ors[i] { " OR " } else { " " });
                }
                q.push_str(p);
            }
            prop_assert!(parse_filter(&q, 0).is_ok(), "{q}");
            let wrapped = format!("NOT ({q})");
            prop_assert!(parse_filter(&wrapped, 0).is_ok(), "{wrapped}");
        }
    }
}
