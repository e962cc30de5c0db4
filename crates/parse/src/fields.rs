//! Fields: typed values, well-known names (`status`, `method`, `path`, `ip`, `user`,
//! `request_id`, `response_time_ms`) and the pairs found in free-text messages.

use std::borrow::Cow;

use logyard_model::{Record, Value};

/// The field that holds a request's duration in milliseconds, whatever unit the line used.
pub const RESPONSE_TIME_MS: &str = "response_time_ms";

/// True for the HTTP methods: `GET`, `POST`, `PUT`, `DELETE`, `PATCH`, `HEAD`, `OPTIONS`,
/// `CONNECT` and `TRACE`.
fn is_http_method(word: &str) -> bool {
    matches!(
        word,
        "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS" | "CONNECT" | "TRACE"
    )
}

/// Types a text value: integers (no leading zero) and decimals become numbers, `true`
/// and `false` booleans, anything else stays a string.
pub(crate) fn scalar(text: &str) -> Value {
    let b = text.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
        if digits[0] != b'0' || digits.len() == 1 {
            if let Ok(i) = text.parse() {
                return Value::Int(i);
            }
        }
    } else if is_decimal(digits) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    } else if text == "true" || text == "false" {
        return Value::Bool(text == "true");
    }
    Value::Str(text.to_string())
}

fn is_decimal(b: &[u8]) -> bool {
    let Some(dot) = b.iter().position(|&c| c == b'.') else {
        return false;
    };
    dot > 0
        && dot + 1 < b.len()
        && (b[0] != b'0' || dot == 1)
        && b[..dot].iter().all(u8::is_ascii_digit)
        && b[dot + 1..].iter().all(u8::is_ascii_digit)
}

/// Folds a key for alias matching: lower case without `_`, `-` and `.`; `None` if long.
fn fold(key: &str, buf: &mut [u8; 32]) -> Option<usize> {
    let mut n = 0;
    for &c in key.as_bytes() {
        if matches!(c, b'_' | b'-' | b'.') {
            continue;
        }
        *buf.get_mut(n)? = c.to_ascii_lowercase();
        n += 1;
    }
    Some(n)
}

/// Returns the canonical name of a well-known field alias, or the key itself.
pub(crate) fn canonical_key(key: &str) -> &str {
    if key.len() < 3
        || matches!(
            key,
            "status" | "method" | "path" | "ip" | "user" | "request_id" | "message" | "timestamp"
        )
    {
        return key;
    }
    let mut buf = [0u8; 32];
    let Some(n) = fold(key, &mut buf) else {
        return key;
    };
    match &buf[..n] {
        b"statuscode"
        | b"httpstatus"
        | b"httpstatuscode"
        | b"responsecode"
        | b"httpresponsestatuscode" => "status",
        b"httpmethod" | b"requestmethod" | b"httprequestmethod" => "method",
        b"requestpath" | b"urlpath" | b"requesturi" | b"uri" | b"httppath" => "path",
        b"clientip" | b"remoteaddr" | b"remoteip" | b"ipaddress" | b"sourceip" | b"ipaddr" => "ip",
        b"username" | b"userid" if key.contains("name") => "user",
        b"requestid" | b"reqid" | b"xrequestid" | b"httprequestid" => "request_id",
        _ => key,
    }
}

/// For a duration key, returns the unit in milliseconds that a bare number has.
fn duration_unit(key: &str) -> Option<f64> {
    if !matches!(
        key.as_bytes().first(),
        Some(b'r' | b'R' | b'd' | b'D' | b't' | b'T' | b'e' | b'E' | b'l' | b'L')
    ) || key.len() < 4
    {
        return None;
    }
    let mut buf = [0u8; 32];
    let n = fold(key, &mut buf)?;
    let k = &buf[..n];
    for base in [
        &b"responsetime"[..],
        b"duration",
        b"took",
        b"elapsed",
        b"latency",
        b"requesttime",
    ] {
        if let Some(rest) = k.strip_prefix(base) {
            return match rest {
                b"" if base == b"requesttime" => Some(1000.0),
                b"" | b"ms" | b"millis" => Some(1.0),
                b"s" | b"sec" | b"secs" | b"seconds" => Some(1000.0),
                b"us" | b"micros" => Some(0.001),
                b"ns" | b"nanos" => Some(0.000_001),
                _ => None,
            };
        }
    }
    None
}

/// Reads `1234ms`, `1.2s`, `35 ms`, `1m30s`, `350µs` into milliseconds; a bare number is
/// taken in `default_unit` milliseconds.
pub(crate) fn duration_ms(text: &str, default_unit: f64) -> Option<f64> {
    let t = text.trim();
    if let Ok(x) = t.parse::<f64>() {
        return x.is_finite().then_some(x * default_unit);
    }
    let (mut rest, mut total, mut any) = (t, 0.0, false);
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let x: f64 = rest[..end].parse().ok()?;
        rest = rest[end..].trim_start();
        let uend = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..uend] {
            "ns" => 0.000_001,
            "us" | "µs" | "μs" => 0.001,
            "ms" => 1.0,
            "s" | "sec" | "secs" | "seconds" => 1000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        total += x * unit;
        any = true;
        rest = &rest[uend..];
    }
    any.then_some(total)
}

/// Makes a millisecond value: an integer when whole, else rounded to the microsecond.
pub(crate) fn ms_value(ms: f64) -> Value {
    let r = (ms * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 && r.abs() < 9e15 {
        Value::Int(r as i64)
    } else {
        Value::Float(r)
    }
}

/// Adds a field under its canonical name, typing `status`, and derives `response_time_ms`
/// from duration keys (the original key is kept as well).
pub(crate) fn add_field(rec: &mut Record, key: &str, value: Value) {
    if let Some(unit) = duration_unit(key) {
        let ms = match &value {
            Value::Int(i) => Some(*i as f64 * unit),
            Value::Float(f) => Some(f * unit),
            Value::Str(s) => duration_ms(s, unit),
            Value::Bool(_) => None,
        };
        if key == RESPONSE_TIME_MS {
            rec.fields
                .insert(key.to_string(), ms.map_or(value, ms_value));
            return;
        }
        if let Some(ms) = ms {
            rec.fields
                .entry(RESPONSE_TIME_MS.to_string())
                .or_insert_with(|| ms_value(ms));
        }
    }
    let canonical = canonical_key(key);
    let value = match (canonical, value) {
        ("status", Value::Str(s)) => scalar(&s),
        (_, v) => v,
    };
    rec.fields.insert(canonical.to_string(), value);
}

fn add_if_absent(rec: &mut Record, key: &str, value: Value) {
    rec.fields.entry(key.to_string()).or_insert(value);
}

fn is_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn trim_punct(v: &str) -> &str {
    let mut v = v.trim_end_matches([',', ';', '.', ':']);
    for (open, close) in [('(', ')'), ('[', ']')] {
        if v.ends_with(close) && !v.contains(open) {
            v = &v[..v.len() - 1];
        }
    }
    v
}

/// Returns the IPv4 address a token holds (an optional `:port` and punctuation aside).
pub(crate) fn ipv4_in(token: &str) -> Option<&str> {
    let t = token.trim_start_matches('(');
    if !t.as_bytes().first().is_some_and(u8::is_ascii_digit) || t.len() < 7 {
        return None;
    }
    let t = trim_punct(t);
    let t = t.split_once(':').map_or(t, |(ip, _)| ip);
    let mut parts = 0;
    for p in t.split('.') {
        if p.is_empty()
            || p.len() > 3
            || !p.bytes().all(|c| c.is_ascii_digit())
            || p.parse::<u16>().ok()? > 255
        {
            return None;
        }
        parts += 1;
    }
    (parts == 4).then_some(t)
}

fn is_user_name(t: &str) -> bool {
    t.len() >= 2
        && t.len() <= 64
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'@' | b'-'))
        && !matches!(
            t,
            "is" | "was"
                | "has"
                | "not"
                | "with"
                | "from"
                | "for"
                | "the"
                | "and"
                | "id"
                | "name"
                | "agent"
                | "logged"
                | "updated"
        )
}

/// Finds `key=value` and `key: value` pairs, `GET /path 200`, the first IPv4 address,
/// `user NAME`, `for NAME from IP` and `took 35 ms` in a message, without overwriting
/// fields the record already has.
pub(crate) fn extract(rec: &mut Record, msg: &str) {
    let mut it = Tokens::new(msg);
    let mut prev: &str = "";
    let mut prev2: &str = "";
    let mut prev3: &str = "";
    while let Some((start, tok, eq_at)) = it.next_word() {
        let opened = tok.bytes().take_while(|&c| c == b'(').count();
        let bare = &tok[opened..];
        let first = bare.as_bytes().first().copied().unwrap_or(0);
        // The first `=` of the word (never among its leading parentheses), in `bare`.
        if let Some(eq) = eq_at.map(|e| e - start - opened) {
            let key = &bare[..eq];
            if is_key(key) && eq + 1 < bare.len() {
                let vstart = start + (tok.len() - bare.len()) + eq + 1;
                let value = if msg.as_bytes()[vstart] == b'"' {
                    match msg[vstart + 1..].find('"') {
                        Some(end) => {
                            it.skip_to(vstart + 1 + end + 1);
                            &msg[vstart + 1..vstart + 1 + end]
                        }
                        None => trim_punct(&bare[eq + 1..]),
                    }
                } else {
                    trim_punct(&bare[eq + 1..])
                };
                if !rec.fields.contains_key(canonical_key(key)) {
                    add_field(rec, key, scalar(value));
                }
            }
        } else if let Some(key) = bare.strip_suffix(':').filter(|k| is_key(k)) {
            let unit = duration_unit(key);
            if colon_key(key, unit, prev, it.peek().map_or("", |(_, v)| v)) {
                if let Some((_, next)) = it.peek() {
                    let v = trim_punct(next);
                    if let Some(unit) = unit {
                        let (v, unit_tok) = match it.peek_second() {
                            Some((_, u))
                                if matches!(trim_punct(u), "ms" | "s" | "us" | "µs" | "ns") =>
                            {
                                (Cow::Owned(format!("{v}{}", trim_punct(u))), true)
                            }
                            _ => (Cow::Borrowed(v), false),
                        };
                        if let Some(ms) = duration_ms(&v, unit) {
                            add_if_absent(rec, RESPONSE_TIME_MS, ms_value(ms));
                            it.next();
                            if unit_tok {
                                it.next();
                            }
                        }
                    } else if !v.is_empty() && !rec.fields.contains_key(canonical_key(key)) {
                        add_field(rec, key, scalar(v));
                        it.next();
                    }
                }
            }
        } else if first.is_ascii_uppercase() && is_http_method(bare) {
            if let Some((_, path)) = it.peek().filter(|(_, p)| p.starts_with('/')) {
                add_if_absent(rec, "method", Value::Str(bare.to_string()));
                add_if_absent(rec, "path", Value::Str(trim_punct(path).to_string()));
                it.next();
                let mut next = it.peek();
                if next.is_some_and(|(_, t)| t == "->" || t.starts_with("HTTP/")) {
                    it.next();
                    next = it.peek();
                }
                if let Some(s) = next.and_then(|(_, t)| status_of(t)) {
                    add_if_absent(rec, "status", Value::Int(s));
                    it.next();
                }
            }
        } else if bare == "status" {
            if let Some(s) = it.peek().and_then(|(_, t)| status_of(t)) {
                add_if_absent(rec, "status", Value::Int(s));
            }
        } else if bare == "took" {
            if let Some((_, n)) = it.peek() {
                let text = match it.peek_second() {
                    Some((_, u)) if n.bytes().all(|c| c.is_ascii_digit() || c == b'.') => {
                        Cow::Owned(format!("{n}{}", trim_punct(u)))
                    }
                    _ => Cow::Borrowed(trim_punct(n)),
                };
                if !text.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                    if let Some(ms) = duration_ms(&text, 1.0) {
                        add_if_absent(rec, RESPONSE_TIME_MS, ms_value(ms));
                    }
                }
            }
        } else if bare.len() == 4
            && bare.eq_ignore_ascii_case("user")
            && !rec.fields.contains_key("user")
        {
            if let Some((_, name)) = it.peek() {
                let name = trim_punct(name);
                if is_user_name(name) {
                    add_if_absent(rec, "user", Value::Str(name.to_string()));
                }
            }
        } else if let Some(ip) = ipv4_in(bare) {
            if !rec.fields.contains_key("ip") {
                rec.fields.insert("ip".into(), Value::Str(ip.to_string()));
                if prev == "from" && prev3 == "for" && is_user_name(prev2) {
                    add_if_absent(rec, "user", Value::Str(prev2.to_string()));
                }
            }
        }
        prev3 = prev2;
        prev2 = prev;
        prev = bare;
    }
}

/// Decides whether `key: value` in prose is a pair: a well-known key (`user`, `status`,
/// `response_time`, …), or a snake_case key with a number after it that does not follow a
/// preposition (`retries: 3`, but not `backlog for send_emails: 20 tasks`). `unit` is the
/// key's [`duration_unit`].
fn colon_key(key: &str, unit: Option<f64>, prev: &str, value: &str) -> bool {
    let well_known = matches!(
        key,
        "user" | "ip" | "status" | "method" | "path" | "pid" | "port" | "request_id" | "user_id"
    ) || unit.is_some();
    well_known
        || (key.contains('_')
            && value.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && !matches!(
                prev,
                "for" | "of" | "on" | "to" | "in" | "from" | "by" | "with" | "at" | "user"
            ))
}

fn status_of(t: &str) -> Option<i64> {
    let t = trim_punct(t);
    (t.len() == 3 && t.bytes().all(|c| c.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
        .filter(|s| (100..600).contains(s))
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\t')
}

/// Returns where the word at `i` ends (the index of the next space, tab or newline, or the
/// length) and where its first `=` is. Eight bytes at a time: the lowest byte below `0x21`
/// or equal to `=` in a word of eight is found exactly (higher ones may be false), and is a
/// blank, a `=` or another control byte.
fn word_end(b: &[u8], mut i: usize) -> (usize, Option<usize>) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut eq = None;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        let below = x.wrapping_sub(ONES * 0x21) & !x & HIGH;
        let y = x ^ (ONES * u64::from(b'='));
        let equals = if eq.is_none() {
            y.wrapping_sub(ONES) & !y & HIGH
        } else {
            0
        };
        let found = below | equals;
        if found == 0 {
            i += 8;
            continue;
        }
        let j = i + (found.trailing_zeros() / 8) as usize;
        if is_blank(b[j]) {
            return (j, eq);
        }
        if b[j] == b'=' {
            eq = Some(j);
        }
        i = j + 1;
    }
    while i < b.len() && !is_blank(b[i]) {
        if b[i] == b'=' && eq.is_none() {
            eq = Some(i);
        }
        i += 1;
    }
    (i, eq)
}

/// The words of a message (split on spaces, tabs and newlines) with byte offsets, found in
/// one pass; only the first [`MAX_TOKENS`] are looked at.
struct Tokens<'a> {
    s: &'a str,
    spans: [(u16, u16); MAX_TOKENS],
    /// Where each word's first `=` is ([`NO_EQ`]: none).
    eqs: [u16; MAX_TOKENS],
    n: usize,
    idx: usize,
}

/// Words of a message searched for fields (in its first 64 KiB).
const MAX_TOKENS: usize = 48;

/// A word without `=` (no byte of the first 64 KiB is at this index).
const NO_EQ: u16 = u16::MAX;

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Tokens<'a> {
        // The limit moves back to a character's start: a word never splits a character.
        let mut limit = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(limit) {
            limit -= 1;
        }
        let b = &s.as_bytes()[..limit];
        let mut t = Tokens {
            s,
            spans: [(0, 0); MAX_TOKENS],
            eqs: [NO_EQ; MAX_TOKENS],
            n: 0,
            idx: 0,
        };
        let mut i = 0;
        while t.n < MAX_TOKENS && i < b.len() {
            while i < b.len() && is_blank(b[i]) {
                i += 1;
            }
            let start = i;
            let (end, eq) = word_end(b, i);
            i = end;
            if i > start {
                t.spans[t.n] = (start as u16, i as u16);
                t.eqs[t.n] = eq.map_or(NO_EQ, |e| e as u16);
                t.n += 1;
            }
        }
        t
    }
    fn at(&self, k: usize) -> Option<(usize, &'a str)> {
        if k >= self.n {
            return None;
        }
        let (a, b) = self.spans[k];
        Some((a as usize, &self.s[a as usize..b as usize]))
    }
    fn next(&mut self) -> Option<(usize, &'a str)> {
        let r = self.at(self.idx)?;
        self.idx += 1;
        Some(r)
    }
    /// The next word, and where its first `=` is in the message.
    fn next_word(&mut self) -> Option<(usize, &'a str, Option<usize>)> {
        let (start, word) = self.at(self.idx)?;
        let eq = self.eqs[self.idx];
        self.idx += 1;
        Some((start, word, (eq != NO_EQ).then_some(eq as usize)))
    }
    fn peek(&self) -> Option<(usize, &'a str)> {
        self.at(self.idx)
    }
    fn peek_second(&self) -> Option<(usize, &'a str)> {
        self.at(self.idx + 1)
    }
    /// Skips the words that start before `pos` (the rest of a quoted value).
    fn skip_to(&mut self, pos: usize) {
        while self.idx < self.n && (self.spans[self.idx].0 as usize) < pos {
            self.idx += 1;
        }
    }
}

#[cfg(test)]
mod tests;
