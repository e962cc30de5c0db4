//! nginx and Apache access logs, common and combined:
//! `1.2.3.4 - ana [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 2326 "ref" "agent" 0.123`.
//!
//! After the user agent, `key=value` words are fields (`rt=`/`request_time=` in seconds), a
//! bare decimal is nginx's `$request_time` (seconds) and a bare integer Apache's `%D`
//! (microseconds); both become `response_time_ms`. The level comes from the status.

use logyard_model::{Record, Value};

use super::{set_time, word, Cx, Miss, Res};
use crate::fields::{add_field, ms_value, scalar, RESPONSE_TIME_MS};
use crate::level::from_http_status;
use crate::time::scan_clf;

/// Reads a quoted string at the start (`\"` and `\x22` escapes kept as written): (inner, rest).
fn quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' if matches!(b.get(i + 1), None | Some(b' ')) => {
                let rest = &s[i + 1..];
                return Some((&s[1..i], rest.strip_prefix(' ').unwrap_or(rest)));
            }
            _ => i += 1,
        }
    }
    None
}

fn dash(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

/// Parses an access-log line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let (client, rest) = word(line);
    let (_ident, rest) = word(rest);
    let (user, rest) = word(rest);
    if client.is_empty() || !rest.starts_with('[') || client.len() > 255 {
        return Err(Miss::No);
    }
    let (c, n) = scan_clf(&rest.as_bytes()[1..]).ok_or(Miss::No)?;
    if rest.as_bytes().get(n + 1) != Some(&b']') || rest.as_bytes().get(n + 2) != Some(&b' ') {
        return Err(Miss::No);
    }
    let stamp = &rest.as_bytes()[1..n + 1];
    let (request, rest) = quoted(&rest[n + 3..]).ok_or(Miss::No)?;
    let (status_text, rest) = word(rest);
    let (bytes_text, rest) = word(rest);
    let status: i64 = match status_text.parse() {
        Ok(s) if status_text.len() == 3 => s,
        _ => return Err(Miss::No),
    };
    if !(bytes_text == "-" || bytes_text.bytes().all(|c| c.is_ascii_digit()))
        || bytes_text.is_empty()
    {
        return Err(Miss::No);
    }
    set_time(rec, &c, stamp, cx)?;
    let f = &mut rec.fields;
    f.insert("ip".into(), Value::Str(client.to_string()));
    if let Some(u) = dash(user) {
        f.insert("user".into(), Value::Str(u.to_string()));
    }
    let mut parts = request.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(p), proto) if !m.is_empty() && m.bytes().all(|c| c.is_ascii_uppercase()) => {
            f.insert("method".into(), Value::Str(m.to_string()));
            f.insert("path".into(), Value::Str(p.to_string()));
            if let Some(proto) = proto {
                f.insert("protocol".into(), Value::Str(proto.to_string()));
            }
        }
        _ => {
            if let Some(r) = dash(request) {
                f.insert("request".into(), Value::Str(r.to_string()));
            }
        }
    }
    f.insert("status".into(), Value::Int(status));
    if let Ok(n) = bytes_text.parse::<i64>() {
        f.insert("bytes".into(), Value::Int(n));
    }
    let mut rest = rest;
    if let Some((referrer, r)) = quoted(rest) {
        if let Some(v) = dash(referrer) {
            f.insert("referrer".into(), Value::Str(v.to_string()));
        }
        rest = r;
        if let Some((ua, r)) = quoted(rest) {
            if let Some(v) = dash(ua) {
                f.insert("user_agent".into(), Value::Str(v.to_string()));
            }
            rest = r;
        }
    }
    tail(rec, rest);
    rec.level = Some(from_http_status(status));
    if rec.agent.is_empty() && cx.agent_hint.is_empty() {
        rec.agent = cx.access_agent.to_string();
    }
    rec.message = format!("{request} {status_text} {bytes_text}");
    Ok(())
}

/// Reads what custom log formats append after the user agent.
fn tail(rec: &mut Record, mut rest: &str) {
    while !rest.is_empty() {
        if let Some((_, r)) = quoted(rest) {
            rest = r;
            continue;
        }
        let (w, r) = word(rest);
        rest = r;
        if let Some((k, v)) = w.split_once('=') {
            let v = v.trim_matches('"');
            let key = if k == "rt" { "request_time" } else { k };
            add_field(rec, key, scalar(v));
        } else if !rec.fields.contains_key(RESPONSE_TIME_MS) {
            match scalar(w) {
                Value::Float(secs) => {
                    rec.fields
                        .insert(RESPONSE_TIME_MS.into(), ms_value(secs * 1000.0));
                }
                Value::Int(us) => {
                    rec.fields
                        .insert(RESPONSE_TIME_MS.into(), ms_value(us as f64 / 1000.0));
                }
                _ => {}
            }
        }
    }
}
