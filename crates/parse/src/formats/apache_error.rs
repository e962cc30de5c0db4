//! Apache error-log lines: `[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] message`
//! and Apache 2.4's `[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328]
//! [client 72.15.99.187:4321] message`.

use logyard_model::{Record, Value};

use super::{id_value, set_time, Cx, Miss, Res};
use crate::fields::extract;
use crate::level::set_level;
use crate::time::scan_ctime;

/// Parses an Apache error-log line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let b = line.as_bytes();
    if b.first() != Some(&b'[') {
        return Err(Miss::No);
    }
    let (c, n) = scan_ctime(&b[1..]).ok_or(Miss::No)?;
    let mut rest = line[n + 1..].strip_prefix("] [").ok_or(Miss::No)?;
    let close = rest.find(']').ok_or(Miss::No)?;
    let level = rest[..close].rsplit(':').next().unwrap_or("");
    if level.is_empty() || !level.bytes().all(|c| c.is_ascii_alphabetic()) {
        return Err(Miss::No);
    }
    if let Some((module, _)) = rest[..close].split_once(':') {
        rec.fields
            .insert("module".into(), Value::Str(module.to_string()));
    }
    set_time(rec, &c, &b[1..n + 1], cx)?;
    set_level(rec, level);
    rest = rest[close + 1..].trim_start();
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else { break };
        let item = &inner[..close];
        if let Some(client) = item.strip_prefix("client ") {
            let ip = client
                .rsplit_once(':')
                .filter(|(ip, _)| ip.contains('.'))
                .map_or(client, |(ip, _)| ip);
            rec.fields.insert("ip".into(), Value::Str(ip.to_string()));
        } else if let Some(ids) = item.strip_prefix("pid ") {
            let (pid, tid) = ids.split_once(":tid ").unwrap_or((ids, ""));
            rec.fields.insert("pid".into(), id_value(pid));
            if !tid.is_empty() {
                rec.fields.insert("tid".into(), id_value(tid));
            }
        } else {
            break;
        }
        rest = inner[close + 1..].trim_start();
    }
    if rec.agent.is_empty() && cx.agent_hint.is_empty() {
        rec.agent = "apache".into();
    }
    rec.message = rest.to_string();
    extract(rec, rest);
    Ok(())
}
