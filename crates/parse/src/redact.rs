//! Redaction of secrets before anything is stored: the line is rewritten before it is
//! parsed, so the message, the fields and `raw` all derive from the redacted text.
//!
//! Built in, by one hand-written pass over the line: values of `password`, `passwd`,
//! `secret`, `token`, `api_key` and `authorization` keys (`key=value`, `key: value`, JSON
//! `"key": "value"`), bearer tokens, AWS access key ids (`AKIA…`), private key blocks and
//! card numbers (13 to 19 digits, spaces or dashes allowed, a known issuer prefix and a
//! valid Luhn check digit), and the password of a URL (`postgres://admin:…@db`, the user
//! kept). With `pii`, e-mail addresses too. Extra patterns are regexes with a name. Each
//! replacement reads `[REDACTED:<kind>]` and is counted per kind. Records that arrive decoded
//! (HTTP ingest, the shippers' protocols) go through [`Redactor::redact_record`] instead.
//!
//! The rules read text as it is meant, never as it is escaped: a JSON line's escapes
//! (`pass\u0077ord`, `\/`, Python's `\u00e9` in the middle of a secret) are decoded by
//! [`unescape_json`] before the rules run ([`Redactor::redact_line`]), and decoded records
//! are redacted string by string.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use logyard_model::{Record, Value};
use regex::Regex;

use crate::error::ParseError;

mod cards;

use cards::cards;

/// What to redact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactConfig {
    /// Applies the built-in rules (default true).
    pub builtin: bool,
    /// Also redacts personal data: e-mail addresses (default false).
    pub pii: bool,
    /// Extra patterns: every match is replaced by `[REDACTED:<name>]`.
    pub patterns: Vec<RedactPattern>,
    /// Where the redactors built from this configuration (and its clones) count their
    /// replacements: one total for every source of a process.
    pub counts: RedactionCounts,
}

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            builtin: true,
            pii: false,
            patterns: Vec::new(),
            counts: RedactionCounts::default(),
        }
    }
}

/// `[redact]` of `logyard.toml`: what is removed from lines before they are stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactSettings {
    /// Apply the built-in rules (passwords, tokens, keys, card numbers, URL passwords).
    pub builtin: bool,
    /// Also redact personal data (e-mail addresses).
    pub pii: bool,
    /// Extra patterns.
    pub patterns: Vec<RedactPattern>,
}

impl Default for RedactSettings {
    fn default() -> Self {
        let c = RedactConfig::default();
        RedactSettings {
            builtin: c.builtin,
            pii: c.pii,
            patterns: c.patterns,
        }
    }
}

impl RedactSettings {
    /// The redaction these settings ask for, counting its replacements in `counts`.
    pub fn config(&self, counts: RedactionCounts) -> RedactConfig {
        RedactConfig {
            builtin: self.builtin,
            pii: self.pii,
            patterns: self.patterns.clone(),
            counts,
        }
    }
}

/// Replacements made by kind, shared by every [`Redactor`] given the same counter (clones
/// share it). Counters take no part in comparisons of configurations: any two are equal.
#[derive(Debug, Clone, Default)]
pub struct RedactionCounts(Arc<Mutex<BTreeMap<String, u64>>>);

impl RedactionCounts {
    /// Adds `n` replacements of `kind`.
    pub fn add(&self, kind: &str, n: u64) {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match counts.get_mut(kind) {
            Some(c) => *c += n,
            None => {
                counts.insert(kind.to_string(), n);
            }
        }
    }

    /// Returns the counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl PartialEq for RedactionCounts {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RedactionCounts {}

/// A named extra redaction pattern (`[[redact.patterns]]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactPattern {
    /// The kind shown in the replacement and the counts.
    pub name: String,
    /// The regex (the `regex` crate's syntax).
    pub regex: String,
}

const KINDS: [&str; 11] = [
    "password",
    "secret",
    "token",
    "api_key",
    "authorization",
    "bearer",
    "aws_key",
    "private_key",
    "card",
    "url_password",
    "email",
];
const PASSWORD: usize = 0;
const SECRET: usize = 1;
const TOKEN: usize = 2;
const API_KEY: usize = 3;
const AUTHORIZATION: usize = 4;
const BEARER: usize = 5;
const AWS_KEY: usize = 6;
const PRIVATE_KEY: usize = 7;
const CARD: usize = 8;
const URL_PASSWORD: usize = 9;
/// The first kind of the `pii` rules: counted (and listed) only when they are on.
const EMAIL: usize = 10;

/// Rewrites lines and counts what it replaced.
#[derive(Debug)]
pub struct Redactor {
    builtin: bool,
    pii: bool,
    custom: Vec<(String, Regex)>,
    counts: RedactionCounts,
}

impl Redactor {
    /// Compiles the configuration.
    pub fn new(cfg: &RedactConfig) -> Result<Redactor, ParseError> {
        let custom = cfg
            .patterns
            .iter()
            .map(|p| {
                Regex::new(&p.regex)
                    .map(|r| (p.name.clone(), r))
                    .map_err(|e| ParseError::Regex {
                        name: p.name.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redactor {
            builtin: cfg.builtin,
            pii: cfg.pii,
            custom,
            counts: cfg.counts.clone(),
        })
    }

    /// Returns the number of replacements so far, by kind: every built-in kind and every
    /// configured pattern (0 when none happened), and what else the shared counter holds.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let listed = if self.pii { KINDS.len() } else { EMAIL };
        let mut all: BTreeMap<String, u64> = KINDS[..listed]
            .iter()
            .map(|k| (k.to_string(), 0))
            .chain(self.custom.iter().map(|(k, _)| (k.clone(), 0)))
            .collect();
        all.extend(self.counts.snapshot());
        all
    }

    /// Returns the text with secrets replaced (borrowed when there are none).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = if self.builtin || self.pii {
            self.builtin_pass(text)
        } else {
            Cow::Borrowed(text)
        };
        for (name, re) in &self.custom {
            let n = re.find_iter(&out).count();
            if n > 0 {
                self.counts.add(name, n as u64);
                let replaced = re
                    .replace_all(&out, format!("[REDACTED:{name}]").as_str())
                    .into_owned();
                out = Cow::Owned(replaced);
            }
        }
        out
    }

    /// Redacts a line as [`Redactor::redact`] does, after decoding the escapes of its JSON
    /// strings when it is a JSON object or array (see [`unescape_json`]), so that no escape
    /// hides a secret from the rules.
    pub fn redact_line<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let json = match text.as_bytes().first() {
            // A printable ASCII byte is no white space: the common case needs no trimming.
            Some(&c) if c > b' ' && c < 0x7f => matches!(c, b'{' | b'['),
            _ => matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'[')),
        };
        // `unescape_json` looks for a backslash first: other lines are not searched.
        if !json {
            return self.redact(text);
        }
        match unescape_json(text) {
            Cow::Borrowed(t) => self.redact(t),
            Cow::Owned(t) => Cow::Owned(self.redact(&t).into_owned()),
        }
    }

    /// Redacts a record decoded from something other than a text line (HTTP ingest, the
    /// shippers' protocols): the message, the raw line and every text field by the same
    /// rules, a number that is a card number, and the whole value of a field whose key names
    /// a secret (`password`, `api_key`, …, as in `key=value` text) when the built-in rules
    /// are on. Booleans are left alone.
    pub fn redact_record(&self, record: &mut Record) {
        self.redact_in_place(&mut record.message);
        if let Some(raw) = &mut record.raw {
            self.redact_in_place(raw);
        }
        for (key, value) in record.fields.iter_mut() {
            let kind = if self.builtin {
                key_kind(key.as_bytes())
            } else {
                None
            };
            match (kind, value) {
                (Some(kind), value @ (Value::Int(_) | Value::Float(_))) => {
                    *value = Value::Str(format!("[REDACTED:{}]", KINDS[kind]));
                    self.counts.add(KINDS[kind], 1);
                }
                (Some(kind), Value::Str(s)) if !s.is_empty() && !s.starts_with("[REDACTED") => {
                    *s = format!("[REDACTED:{}]", KINDS[kind]);
                    self.counts.add(KINDS[kind], 1);
                }
                (None, Value::Str(s)) => self.redact_in_place(s),
                (None, value @ Value::Int(_)) if self.builtin => {
                    let text = value.to_string();
                    if let Cow::Owned(out) = self.redact(&text) {
                        *value = Value::Str(out);
                    }
                }
                _ => {}
            }
        }
    }

    /// Replaces the text by its redacted form when something was found.
    fn redact_in_place(&self, text: &mut String) {
        let redacted = match self.redact(text) {
            Cow::Owned(out) => Some(out),
            Cow::Borrowed(_) => None,
        };
        if let Some(out) = redacted {
            *text = out;
        }
    }

    fn builtin_pass<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let b = text.as_bytes();
        let mut hits: Vec<Hit> = Vec::new();
        if self.pii {
            hits.extend(memchr::memchr_iter(b'@', b).filter_map(|i| email(b, i)));
        }
        if !self.builtin {
            return self.replace(text, hits);
        }
        // Vectorised searches for the bytes that separate a key from its value or start a
        // secret (a bearer token is `Bearer`: `bearer` in lower case is found by its key).
        // A URL's `://` starts with a `:` too: its password is found in the same pass, and
        // listed before the keyed values, as a pass of its own would.
        let mut keyed_hits = Vec::new();
        for i in memchr::memchr2_iter(b'=', b':', b) {
            if b[i] == b':' && b.get(i + 1..i + 3) == Some(b"//") {
                hits.extend(url_password(b, i));
            }
            keyed_hits.extend(keyed(b, i));
        }
        hits.append(&mut keyed_hits);
        // The `B` of `-----BEGIN ` starts a key block: found in the same pass, and listed
        // after the keys and tokens, as a pass of its own would.
        let mut key_blocks = Vec::new();
        for i in memchr::memchr2_iter(b'A', b'B', b) {
            let hit = match b[i] {
                b'A' if matches!(b.get(i + 1..i + 4), Some(b"KIA" | b"SIA")) => aws_key(b, i),
                b'B' if b.get(i + 1..i + 7) == Some(b"earer ") => bearer(b, i + 1),
                b'B' if i >= 5
                    && &b[i - 5..i] == b"-----"
                    && b.get(i + 1..i + 6) == Some(b"EGIN ") =>
                {
                    key_blocks.extend(private_key(b, i - 5));
                    None
                }
                _ => None,
            };
            hits.extend(hit);
        }
        hits.append(&mut key_blocks);
        cards(b, &mut hits);
        self.replace(text, hits)
    }

    /// Writes the text with the hits replaced, the first and longest of overlapping ones.
    fn replace<'a>(&self, text: &'a str, mut hits: Vec<Hit>) -> Cow<'a, str> {
        if hits.is_empty() {
            return Cow::Borrowed(text);
        }
        hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
        let mut replaced = [0u64; KINDS.len()];
        let mut out = String::with_capacity(text.len() + 16);
        let mut copied = 0;
        for h in hits {
            if h.start < copied || !text.is_char_boundary(h.start) || !text.is_char_boundary(h.end)
            {
                continue;
            }
            out.push_str(&text[copied..h.start]);
            let q = if h.quote { "\"" } else { "" };
            out.push_str(q);
            out.push_str("[REDACTED:");
            out.push_str(KINDS[h.kind]);
            out.push(']');
            out.push_str(q);
            replaced[h.kind] += 1;
            copied = h.end;
        }
        out.push_str(&text[copied..]);
        for (kind, n) in KINDS.iter().zip(replaced) {
            if n > 0 {
                self.counts.add(kind, n);
            }
        }
        Cow::Owned(out)
    }
}

/// Returns the text with the escapes of its JSON strings decoded: `\uXXXX` (surrogate
/// pairs included), `\/` and the one-letter escapes become the characters they stand for,
/// except those that must stay escaped for the text to remain the same JSON (`\"`, `\\`
/// and control characters). Text outside strings, and escapes that are not valid, are kept
/// as they are. Borrowed when there is nothing to decode.
pub fn unescape_json(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    if memchr::memchr(b'\\', b).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                in_string = !in_string;
                i += 1;
            }
            b'\\' if in_string => {
                let (decoded, len) = match b.get(i + 1) {
                    Some(b'u') => match hex4(b, i + 2) {
                        Some(hi @ 0xD800..=0xDBFF) => match (b.get(i + 6..i + 8), hex4(b, i + 8)) {
                            (Some(b"\\u"), Some(lo @ 0xDC00..=0xDFFF)) => (
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)),
                                12,
                            ),
                            _ => (None, 6),
                        },
                        Some(c) => (char::from_u32(c), 6),
                        None => (None, 2),
                    },
                    Some(b'/') => (Some('/'), 2),
                    Some(b'b') => (Some('\u{8}'), 2),
                    Some(b'f') => (Some('\u{c}'), 2),
                    Some(b'n') => (Some('\n'), 2),
                    Some(b'r') => (Some('\r'), 2),
                    Some(b't') => (Some('\t'), 2),
                    _ => (None, 2),
                };
                out.push_str(&text[copied..i]);
                // A backslash before a multi-byte character keeps the whole character.
                let mut end = (i + len).min(b.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                match decoded {
                    Some('"') => out.push_str("\\\""),
                    Some('\\') => out.push_str("\\\\"),
                    Some('\n') => out.push_str("\\n"),
                    Some('\r') => out.push_str("\\r"),
                    Some('\t') => out.push_str("\\t"),
                    Some(c) if c.is_control() => {
                        out.push_str(&format!("\\u{:04x}", u32::from(c)));
                    }
                    Some(c) => out.push(c),
                    None => out.push_str(&text[i..end]),
                }
                i = end;
                copied = i;
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Four hex digits at `i`.
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
    if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// The password of `scheme://user:password@host`, around the `://` at `i`: the user stays.
fn url_password(b: &[u8], i: usize) -> Option<Hit> {
    // A scheme: a letter, then letters, digits, `+`, `-`, `.`.
    let mut s = i;
    while s > 0 && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'-' | b'.')) {
        s -= 1;
    }
    if s == i || !b[s].is_ascii_alphabetic() {
        return None;
    }
    // The authority ends at a path, a query, a fragment, a space or a quote; its userinfo
    // at its last `@` (a password may hold an unescaped `@`).
    let start = i + 3;
    let mut end = start;
    while end < b.len()
        && !b[end].is_ascii_whitespace()
        && !matches!(
            b[end],
            b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\'
        )
    {
        end += 1;
    }
    let at = start + memchr::memrchr(b'@', &b[start..end])?;
    let colon = start + memchr::memchr(b':', &b[start..at])?;
    let password = &b[colon + 1..at];
    if password.is_empty() || password.starts_with(b"[REDACTED") {
        return None;
    }
    Some(Hit {
        start: colon + 1,
        end: at,
        kind: URL_PASSWORD,
        quote: false,
    })
}

/// An e-mail address around the `@` at `i`: a local part of letters, digits and `._%+-`, and
/// a domain of at least two labels whose last is letters only. The userinfo of a URL
/// (`scheme://user:password@host`) is not an address.
fn email(b: &[u8], i: usize) -> Option<Hit> {
    let local = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut s = i;
    while s > 0 && i - s < 64 && local(b[s - 1]) {
        s -= 1;
    }
    while s < i && b[s] == b'.' {
        s += 1;
    }
    if s == i {
        return None;
    }
    let mut t = s;
    while t > 0 && !b[t - 1].is_ascii_whitespace() && !matches!(b[t - 1], b'"' | b'\'' | b'<') {
        t -= 1;
    }
    if memchr::memmem::find(&b[t..s], b"://").is_some() {
        return None;
    }
    let mut e = i + 1;
    while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'.' | b'-')) {
        e += 1;
    }
    while e > i + 1 && matches!(b[e - 1], b'.' | b'-') {
        e -= 1;
    }
    let domain = &b[i + 1..e];
    let last = domain.rsplit(|c| *c == b'.').next()?;
    let labels = domain.split(|c| *c == b'.').count();
    if labels < 2 || last.len() < 2 || !last.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    if domain.split(|c| *c == b'.').any(<[u8]>::is_empty) {
        return None;
    }
    Some(Hit {
        start: s,
        end: e,
        kind: EMAIL,
        quote: false,
    })
}

/// A span to replace.
struct Hit {
    start: usize,
    end: usize,
    kind: usize,
    /// Wrap the replacement in quotes (a bare JSON value).
    quote: bool,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The kind of secret a key names, by its ending (`db_password`, `X-Auth-Token`, `client_secret`).
fn key_kind(key: &[u8]) -> Option<usize> {
    let last = key.last()? | 0x20;
    if !matches!(last, b'd' | b't' | b'n' | b'y') {
        return None;
    }
    let mut buf = [0u8; 16];
    let tail = &key[key.len().saturating_sub(16)..];
    for (d, s) in buf.iter_mut().zip(tail) {
        *d = s.to_ascii_lowercase();
    }
    let k = &buf[..tail.len()];
    [
        (&b"password"[..], PASSWORD),
        (b"passwd", PASSWORD),
        (b"secret", SECRET),
        (b"secret_key", SECRET),
        (b"access_key", SECRET),
        (b"token", TOKEN),
        (b"api_key", API_KEY),
        (b"apikey", API_KEY),
        (b"api-key", API_KEY),
        (b"authorization", AUTHORIZATION),
    ]
    .iter()
    .find(|(w, _)| k.ends_with(w))
    .map(|(_, kind)| *kind)
}

/// `password=…`, `"api_key": "…"`, `Authorization: Bearer …` around the separator at `j`.
fn keyed(b: &[u8], j: usize) -> Option<Hit> {
    let sep = b[j];
    let mut e = j;
    while e > 0 && b[e - 1] == b' ' {
        e -= 1;
    }
    let mut key_quoted = false;
    if e > 0 && matches!(b[e - 1], b'"' | b'\'') {
        e -= 1;
        key_quoted = b[e] == b'"';
        if e > 0 && b[e - 1] == b'\\' {
            e -= 1;
        }
    }
    // Every key this looks for ends in one of these: most separators stop here.
    if e < 5 {
        return None;
    }
    let tail = [b[e - 3] | 0x20, b[e - 2] | 0x20, b[e - 1] | 0x20];
    if !matches!(&tail, b"ord" | b"swd" | b"ret" | b"key" | b"ken" | b"ion") {
        return None;
    }
    let mut s = e;
    while s > 0 && e - s < 64 && (is_word(b[s - 1]) || b[s - 1] == b'-' || b[s - 1] == b'.') {
        s -= 1;
    }
    if e - s < 5 {
        return None;
    }
    let kind = key_kind(&b[s..e])?;
    let mut v = j + 1;
    while b.get(v) == Some(&b' ') {
        v += 1;
    }
    let (start, end, quoted) = value_span(b, v)?;
    let value = &b[start..end];
    if value.is_empty() || value.starts_with(b"[REDACTED") {
        return None;
    }
    let mut end = end;
    if kind == AUTHORIZATION && !quoted {
        // `Authorization: Bearer abc` hides the scheme's credentials too.
        if b.get(end) == Some(&b' ') {
            let k = end + 1;
            let mut e = k;
            while e < b.len()
                && !b[e].is_ascii_whitespace()
                && !matches!(b[e], b',' | b';' | b'"' | b'\'' | b'\\')
            {
                e += 1;
            }
            if e > k {
                end = e;
            }
        }
    }
    if sep == b':'
        && !quoted
        && !key_quoted
        && kind != PASSWORD
        && kind != AUTHORIZATION
        && !secretish(value)
    {
        return None;
    }
    Some(Hit {
        start,
        end,
        kind,
        quote: key_quoted && !quoted,
    })
}

/// The value at `j`: (start, end, quoted); a quoted value's span excludes its quotes.
fn value_span(b: &[u8], j: usize) -> Option<(usize, usize, bool)> {
    match b.get(j)? {
        b'"' | b'\'' => {
            let q = b[j];
            let mut k = j + 1;
            while k < b.len() && b[k] != q {
                // An escaped character, `\"` included, is part of the value.
                k += if b[k] == b'\\' { 2 } else { 1 };
            }
            let k = k.min(b.len());
            Some((j + 1, k, true))
        }
        b'\\' if b.get(j + 1) == Some(&b'"') => {
            let mut k = j + 2;
            while k < b.len() && !(b[k] == b'\\' && b.get(k + 1) == Some(&b'"')) {
                k += 1;
            }
            Some((j + 2, k, true))
        }
        // An object or an array: its own keys are redacted one by one.
        b'{' | b'[' => None,
        _ => {
            let mut k = j;
            while k < b.len()
                && !b[k].is_ascii_whitespace()
                && !matches!(
                    b[k],
                    b',' | b';' | b'&' | b'"' | b'\'' | b'}' | b']' | b')' | b'\\'
                )
            {
                k += 1;
            }
            Some((j, k, false))
        }
    }
}

/// True for a value that looks like a credential rather than a word of prose.
fn secretish(v: &[u8]) -> bool {
    v.len() >= 16 || (v.len() >= 8 && v.iter().any(u8::is_ascii_digit))
}

/// A bearer token; `p` is where `earer ` was found.
fn bearer(b: &[u8], p: usize) -> Option<Hit> {
    let i = p.checked_sub(1)?;
    if b[i] | 0x20 != b'b' || (i > 0 && is_word(b[i - 1])) {
        return None;
    }
    let start = i + 7;
    let mut k = start;
    while k < b.len()
        && (b[k].is_ascii_alphanumeric()
            || matches!(b[k], b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-'))
    {
        k += 1;
    }
    (k - start >= 8).then_some(Hit {
        start,
        end: k,
        kind: BEARER,
        quote: false,
    })
}

fn aws_key(b: &[u8], i: usize) -> Option<Hit> {
    let end = i + 20;
    let ok = b.len() >= end
        && b[i + 4..end]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && !b.get(end).is_some_and(|c| c.is_ascii_alphanumeric())
        && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
    ok.then_some(Hit {
        start: i,
        end,
        kind: AWS_KEY,
        quote: false,
    })
}

fn private_key(b: &[u8], i: usize) -> Option<Hit> {
    if !b[i..].starts_with(b"-----BEGIN ") {
        return None;
    }
    let head_end = i + memchr::memmem::find(&b[i + 11..], b"-----")? + 11;
    if !b[i..head_end].ends_with(b"PRIVATE KEY") {
        return None;
    }
    let end = match memchr::memmem::find(&b[head_end..], b"-----END ") {
        Some(e) => {
            let tail = head_end + e + 9;
            memchr::memmem::find(&b[tail..], b"-----").map_or(b.len(), |x| tail + x + 5)
        }
        None => b.len(),
    };
    Some(Hit {
        start: i,
        end,
        kind: PRIVATE_KEY,
        quote: false,
    })
}

#[cfg(test)]
mod tests;
