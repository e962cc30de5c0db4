//! Django's verbose format `{levelname} {asctime} {module} {process:d} {thread:d} {message}`:
//! `ERROR 2024-01-15 10:30:00,123 views 1234 140234 Message`; also `LEVEL <stamp> Message`.

use logyard_model::{Record, Value};

use super::{id_value, is_level_word, set_time, word, Cx, Miss, Res};
use crate::fields::extract;
use crate::level::set_level;
use crate::time::scan_iso;

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit())
}

/// Parses a Django verbose line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let (level, rest) = word(line);
    if !is_level_word(level) {
        return Err(Miss::No);
    }
    let (c, n) = scan_iso(rest.as_bytes()).ok_or(Miss::No)?;
    let after = rest[n..].strip_prefix(' ').ok_or(Miss::No)?;
    set_time(rec, &c, &rest.as_bytes()[..n], cx)?;
    set_level(rec, level);
    let (module, r) = word(after);
    let (pid, r) = word(r);
    let (thread, msg) = word(r);
    let msg = if !module.is_empty() && digits(pid) && digits(thread) {
        rec.fields
            .insert("module".into(), Value::Str(module.to_string()));
        rec.fields.insert("pid".into(), id_value(pid));
        rec.fields.insert("thread".into(), id_value(thread));
        msg
    } else {
        after
    };
    rec.message = msg.to_string();
    extract(rec, msg);
    Ok(())
}
