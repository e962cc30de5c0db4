//! nginx error-log lines: `2024/01/15 10:30:00 [error] 123#0: *1 message, client: 1.2.3.4,
//! server: example.com, request: "GET / HTTP/1.1", host: "example.com"`.

use logyard_model::{Record, Value};

use super::{id_value, set_time, Cx, Miss, Res};
use crate::fields::extract;
use crate::level::set_level;
use crate::time::scan_iso;

/// Parses an nginx error-log line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let b = line.as_bytes();
    if b.get(4) != Some(&b'/') {
        return Err(Miss::No);
    }
    let (c, n) = scan_iso(b).ok_or(Miss::No)?;
    let rest = line[n..].strip_prefix(" [").ok_or(Miss::No)?;
    let close = rest.find("] ").ok_or(Miss::No)?;
    let level = &rest[..close];
    if level.is_empty() || level.len() > 8 || !level.bytes().all(|c| c.is_ascii_lowercase()) {
        return Err(Miss::No);
    }
    let rest = &rest[close + 2..];
    let (ids, mut msg) = match rest.find(": ") {
        Some(i) if rest[..i].contains('#') && !rest[..i].contains(' ') => {
            (Some(&rest[..i]), &rest[i + 2..])
        }
        _ => (None, rest),
    };
    set_time(rec, &c, &b[..n], cx)?;
    set_level(rec, level);
    if let Some((pid, tid)) = ids.and_then(|s| s.split_once('#')) {
        rec.fields.insert("pid".into(), id_value(pid));
        rec.fields.insert("tid".into(), id_value(tid));
    }
    if let Some(after) = msg.strip_prefix('*') {
        if let Some((cid, m)) = after.split_once(' ') {
            if let Ok(cid) = cid.parse::<i64>() {
                rec.fields.insert("connection".into(), Value::Int(cid));
                msg = m;
            }
        }
    }
    if let Some(i) = msg.find(", client: ") {
        context(rec, &msg[i + 2..]);
        msg = &msg[..i];
    }
    if rec.agent.is_empty() && cx.agent_hint.is_empty() {
        rec.agent = "nginx".into();
    }
    rec.message = msg.to_string();
    extract(rec, msg);
    Ok(())
}

/// Reads the `, key: value` context nginx appends (`host` becomes `http_host`, `client`
/// becomes `ip`, `request` gives `method` and `path`).
fn context(rec: &mut Record, s: &str) {
    for part in s.split(", ") {
        let Some((k, v)) = part.split_once(": ") else {
            continue;
        };
        let v = v.trim_matches('"');
        match k {
            "client" => {
                rec.fields.insert("ip".into(), Value::Str(v.to_string()));
            }
            "host" => {
                rec.fields
                    .insert("http_host".into(), Value::Str(v.to_string()));
            }
            "request" => {
                let mut it = v.splitn(3, ' ');
                if let (Some(m), Some(p)) = (it.next(), it.next()) {
                    rec.fields
                        .insert("method".into(), Value::Str(m.to_string()));
                    rec.fields.insert("path".into(), Value::Str(p.to_string()));
                }
            }
            k if !k.is_empty() && k.bytes().all(|c| c.is_ascii_lowercase() || c == b'_') => {
                rec.fields.insert(k.to_string(), Value::Str(v.to_string()));
            }
            _ => {}
        }
    }
}
