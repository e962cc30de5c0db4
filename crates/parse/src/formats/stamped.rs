//! Lines that start with a timestamp and a level, as Java, Go and many other loggers write:
//! - `2024-01-15 10:30:00.123 ERROR [main] com.example.App - message` (logback, log4j);
//! - `2024-01-15T10:30:00.123+00:00  INFO 1234 --- [main] c.e.App : message` (Spring Boot);
//! - `[2024-01-15 10:30:00,123] WARNING in module: message`, `2024-01-15 10:30:00 [error] message`.
//!
//! A `[thread]` becomes the field `thread`, a dotted logger before ` - ` or ` : ` the field
//! `logger`, a Spring Boot pid the field `pid`.

use logyard_model::{Record, Value};

use super::{id_value, set_time, Cx, Miss, Res};
use crate::fields::extract;
use crate::level::{normalize, set_level};
use crate::time::scan_iso;

/// Parses a stamped line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let b = line.as_bytes();
    let open = usize::from(b.first() == Some(&b'['));
    let (c, n) = scan_iso(&b[open..]).ok_or(Miss::No)?;
    let mut k = open + n;
    if open == 1 {
        if b.get(k) != Some(&b']') {
            return Err(Miss::No);
        }
        k += 1;
    }
    let rest = line[k..].strip_prefix(' ').ok_or(Miss::No)?.trim_start();
    let (level, rest) = match rest.strip_prefix('[') {
        Some(r) => r.split_once(']').ok_or(Miss::No)?,
        None => rest.split_once(' ').unwrap_or((rest, "")),
    };
    let level = level.trim_end_matches(':');
    if level.len() < 3
        || !level.bytes().all(|c| c.is_ascii_alphabetic())
        || normalize(level).is_none()
    {
        return Err(Miss::No);
    }
    set_time(rec, &c, &b[open..open + n], cx)?;
    set_level(rec, level);
    let mut rest = rest.trim_start();
    // Spring Boot: `1234 --- [main] logger : message`.
    if let Some((pid, after)) = rest.split_once(" --- ") {
        if !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()) {
            rec.fields.insert("pid".into(), id_value(pid));
            rest = after.trim_start();
        }
    }
    if let Some(after) = rest.strip_prefix('[') {
        if let Some((thread, after)) = after.split_once(']') {
            if !thread.contains('\n') {
                rec.fields
                    .insert("thread".into(), Value::Str(thread.trim().to_string()));
                rest = after.trim_start();
            }
        }
    }
    // Flask: `WARNING in module: message`.
    if let Some((module, after)) = rest.strip_prefix("in ").and_then(|r| r.split_once(": ")) {
        if !module.is_empty() && !module.contains(' ') {
            rec.fields
                .insert("module".into(), Value::Str(module.to_string()));
            rest = after;
        }
    }
    let first_line = rest.split('\n').next().unwrap_or("");
    let logger_end = [" - ", " : ", ": "]
        .iter()
        .filter_map(|sep| first_line.find(sep).map(|i| (i, sep.len())))
        .min();
    if let Some((i, len)) = logger_end {
        let logger = rest[..i].trim_end();
        if !logger.is_empty()
            && !logger.contains(' ')
            && (logger.contains('.') || logger.contains('$'))
        {
            rec.fields
                .insert("logger".into(), Value::Str(logger.to_string()));
            rest = &rest[i + len..];
        }
    }
    rec.message = rest.to_string();
    extract(rec, rest);
    Ok(())
}
