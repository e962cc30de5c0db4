//! Syslog RFC 3164 (BSD): `<38>Jan 15 10:30:00 host sshd[1234]: message`, also without the
//! priority (as in `/var/log/syslog`) or with an ISO stamp (rsyslog's high-precision form).
//! The year is inferred: the one that puts the stamp nearest before the receive time + 1 day.
//! A priority with no header at all (`<11>myapp[42]: disk failed`, as Python's
//! `SysLogHandler` and some devices send) keeps the receive time; level and facility come
//! from the priority, the agent from the tag. Without a priority, the level is the one the
//! message's header writes (see [`crate::level::line_level`]).

use logyard_model::Record;

use super::rfc5424::{apply_pri, scan_pri};
use super::{bad_time, word, Cx, Miss, Res};
use crate::level::line_level;
use crate::time::{infer_year, scan_iso, scan_syslog};

/// Splits `tag[pid]:` or `tag:`; `None` when the word is not a tag.
fn tag(w: &str) -> Option<(&str, Option<&str>)> {
    let w = w.strip_suffix(':')?;
    let (name, pid) = match w.find('[') {
        Some(i) => (&w[..i], Some(w[i + 1..].strip_suffix(']')?)),
        None => (w, None),
    };
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b'@'));
    ok.then_some((name, pid))
}

/// Says whether what follows the priority starts like RFC 5424's version (`1 `), which
/// the RFC 5424 parser handles (also when its stamp is bad).
fn looks_like_rfc5424(rest: &[u8]) -> bool {
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    (1..=2).contains(&digits) && rest.get(digits) == Some(&b' ')
}

/// Completes a record of a priority followed directly by `tag: message` or a message.
fn headerless(body: &str, pri: u8, rec: &mut Record, cx: &Cx) -> Res {
    apply_pri(rec, pri);
    let body = body.trim_end_matches(['\0', '\n', '\r']);
    let (first, after_first) = word(body);
    let msg = match tag(first) {
        Some((name, pid)) => {
            rec.agent = name.to_string();
            if let Some(p) = pid {
                rec.fields.insert("pid".into(), super::id_value(p));
            }
            after_first
        }
        None => body,
    };
    super::syslog_message(rec, msg, cx);
    Ok(())
}

/// Parses an RFC 3164 line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let b = line.as_bytes();
    let (pri, used) = match scan_pri(b) {
        Some((p, n)) => (Some(p), n),
        None => (None, 0),
    };
    let rest = &b[used..];
    let stamp_len = if let Some((c, n)) = scan_syslog(rest) {
        rec.timestamp = infer_year(c, cx.zone, cx.now).map_err(|e| bad_time(&rest[..n], e))?;
        n
    } else if let (Some(_), Some((c, n))) = (pri, scan_iso(rest)) {
        super::set_time(rec, &c, &rest[..n], cx)?;
        n
    } else if let Some(p) = pri.filter(|_| !looks_like_rfc5424(rest)) {
        return headerless(&line[used..], p, rec, cx);
    } else {
        return Err(Miss::No);
    };
    let text = line[used + stamp_len..].strip_prefix(' ').ok_or(Miss::No)?;
    let (first, after_first) = word(text);
    let (host, tagged, msg) = if let Some(t) = tag(first) {
        (None, Some(t), after_first)
    } else {
        let (second, after_second) = word(after_first);
        match tag(second) {
            Some(t) => (Some(first), Some(t), after_second),
            None if pri.is_some() && !first.is_empty() => (Some(first), None, after_first),
            None => return Err(Miss::No),
        }
    };
    match pri {
        Some(p) => apply_pri(rec, p),
        None => {
            if let Some((level, _)) = line_level(msg) {
                rec.level = Some(level);
            }
        }
    }
    if let Some(h) = host {
        rec.host = h.to_string();
    }
    if let Some((name, pid)) = tagged {
        rec.agent = name.to_string();
        if let Some(p) = pid {
            rec.fields.insert("pid".into(), super::id_value(p));
        }
    }
    super::syslog_message(rec, msg, cx);
    Ok(())
}
