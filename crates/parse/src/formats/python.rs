//! Python-style text lines:
//! - `2024-01-15 10:30:00 - INFO - AGENT - Message` (level, then agent);
//! - `2024-01-15 10:30:00,123 - name - INFO - Message` (`%(asctime)s - %(name)s - %(levelname)s - %(message)s`);
//! - `[INFO] AGENT: Message` and `[INFO] Message`;
//! - `INFO - Message` and `INFO: Message`;
//! - `INFO:name:Message` (the `logging` default; the `root` logger names no agent).

use logyard_model::Record;

use super::{is_level_word, set_time, split_dash, Cx, Miss, Res};
use crate::fields::extract;
use crate::level::set_level;
use crate::time::scan_iso;

/// Parses any of the Python-style shapes.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    match line.as_bytes().first() {
        Some(b'0'..=b'9') => dashed(line, rec, cx),
        Some(b'[') => bracket(line, rec),
        Some(b'A'..=b'Z') => leading_level(line, rec),
        _ => Err(Miss::No),
    }
}

fn is_agent(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b'@'))
}

fn finish(rec: &mut Record, level: &str, agent: &str, msg: &str) -> Res {
    set_level(rec, level);
    if !agent.is_empty() && agent != "root" {
        rec.agent = agent.to_string();
    }
    rec.message = msg.to_string();
    extract(rec, msg);
    Ok(())
}

fn dashed(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let b = line.as_bytes();
    let (c, n) = scan_iso(b).ok_or(Miss::No)?;
    let rest = line[n..].strip_prefix(" - ").ok_or(Miss::No)?;
    let (a, rest) = split_dash(rest).ok_or(Miss::No)?;
    let (level, agent, msg) = if is_level_word(a) {
        match split_dash(rest) {
            Some((agent, msg)) if is_agent(agent) => (a, agent, msg),
            _ => (a, "", rest),
        }
    } else {
        let (l, msg) = split_dash(rest).ok_or(Miss::No)?;
        if !is_level_word(l) || !is_agent(a) {
            return Err(Miss::No);
        }
        (l, a, msg)
    };
    set_time(rec, &c, &b[..n], cx)?;
    finish(rec, level, agent, msg)
}

fn bracket(line: &str, rec: &mut Record) -> Res {
    let close = line.find("] ").ok_or(Miss::No)?;
    let level = &line[1..close];
    if !is_level_word(level) {
        return Err(Miss::No);
    }
    let rest = &line[close + 2..];
    match rest.split_once(": ") {
        Some((agent, msg)) if is_agent(agent) => finish(rec, level, agent, msg),
        _ => finish(rec, level, "", rest),
    }
}

fn leading_level(line: &str, rec: &mut Record) -> Res {
    let end = line
        .bytes()
        .position(|c| !c.is_ascii_uppercase())
        .unwrap_or(line.len());
    let level = &line[..end];
    if !is_level_word(level) {
        return Err(Miss::No);
    }
    let rest = &line[end..];
    if let Some(msg) = rest.strip_prefix(" - ") {
        return finish(rec, level, "", msg);
    }
    if let Some(msg) = rest.strip_prefix(": ") {
        return finish(rec, level, "", msg.trim_start());
    }
    if let Some(after) = rest.strip_prefix(':') {
        if let Some((name, msg)) = after.split_once(':') {
            if is_agent(name) {
                return finish(rec, level, name, msg);
            }
        }
    }
    Err(Miss::No)
}
