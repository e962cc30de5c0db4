//! Syslog RFC 5424: `<165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 [sd@1 k="v"] message`.

use logyard_model::{Level, Record, Value};

use super::{set_time, word, Cx, Miss, Res};
use crate::time::scan_iso;

/// Syslog facility names by number (RFC 5424, table 1).
pub const SYSLOG_FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Reads `<PRI>` at the start: (priority, bytes used).
pub(crate) fn scan_pri(b: &[u8]) -> Option<(u8, usize)> {
    if b.first() != Some(&b'<') {
        return None;
    }
    let mut v: u32 = 0;
    let mut i = 1;
    while i < b.len() && i <= 4 && b[i].is_ascii_digit() {
        v = v * 10 + u32::from(b[i] - b'0');
        i += 1;
    }
    (i > 1 && b.get(i) == Some(&b'>') && v <= 191).then_some((v as u8, i + 1))
}

/// Sets the level and the `facility` field from a priority. The severities that share a
/// level with another (0 emerg and 1 alert are CRITICAL like 2 crit, 5 notice is INFO like
/// 6 info) keep their name in `level_raw`.
pub(crate) fn apply_pri(rec: &mut Record, pri: u8) {
    rec.level = Level::from_syslog_severity(pri & 7);
    let raw = match pri & 7 {
        0 => "emerg",
        1 => "alert",
        5 => "notice",
        _ => "",
    };
    if !raw.is_empty() {
        rec.fields
            .insert(crate::level::LEVEL_RAW.into(), Value::Str(raw.into()));
    }
    rec.fields.insert(
        "facility".into(),
        Value::Str(SYSLOG_FACILITIES[usize::from(pri >> 3)].into()),
    );
}

fn nil(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

/// Parses an RFC 5424 line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let b = line.as_bytes();
    let (pri, used) = scan_pri(b).ok_or(Miss::No)?;
    if b.get(used) != Some(&b'1') || b.get(used + 1) != Some(&b' ') {
        return Err(Miss::No);
    }
    let rest = &line[used + 2..];
    let (stamp, rest) = word(rest);
    if stamp != "-" {
        let (c, n) = scan_iso(stamp.as_bytes()).ok_or(Miss::No)?;
        if n != stamp.len() {
            return Err(Miss::No);
        }
        set_time(rec, &c, stamp.as_bytes(), cx)?;
    }
    let (host, rest) = word(rest);
    let (app, rest) = word(rest);
    let (procid, rest) = word(rest);
    let (msgid, rest) = word(rest);
    if host.is_empty() || app.is_empty() || procid.is_empty() || msgid.is_empty() {
        return Err(Miss::No);
    }
    let msg = if let Some(after) = rest.strip_prefix('-') {
        after.strip_prefix(' ').unwrap_or(after)
    } else if rest.starts_with('[') {
        structured_data(rest, rec).ok_or(Miss::No)?
    } else if rest.is_empty() {
        rest
    } else {
        return Err(Miss::No);
    };
    apply_pri(rec, pri);
    if let Some(h) = nil(host) {
        rec.host = h.to_string();
    }
    if let Some(a) = nil(app) {
        rec.agent = a.to_string();
    }
    if let Some(p) = nil(procid) {
        rec.fields.insert("pid".into(), super::id_value(p));
    }
    if let Some(m) = nil(msgid) {
        rec.fields.insert("msgid".into(), Value::Str(m.to_string()));
    }
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    // rsyslog's RFC 5424 templates write `%STRUCTURED-DATA% %msg%`, and the `msg` of a line
    // it received in RFC 3164 keeps the space that followed `tag:`: that one space goes.
    let msg = msg.strip_prefix(' ').unwrap_or(msg);
    super::syslog_message(rec, msg, cx);
    Ok(())
}

/// Reads `[id k="v" …]…` into `id.k` fields; returns the message after it.
fn structured_data<'a>(s: &'a str, rec: &mut Record) -> Option<&'a str> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        i += 1;
        let id_start = i;
        while i < b.len() && !matches!(b[i], b' ' | b']') {
            i += 1;
        }
        let id = &s[id_start..i];
        loop {
            match b.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => i += 1,
                _ => {
                    let ks = i;
                    while i < b.len() && b[i] != b'=' {
                        i += 1;
                    }
                    let key = &s[ks..i];
                    if b.get(i + 1) != Some(&b'"') {
                        return None;
                    }
                    i += 2;
                    let mut value = String::new();
                    let mut vs = i;
                    loop {
                        match b.get(i)? {
                            b'\\' if matches!(b.get(i + 1), Some(b'"' | b'\\' | b']')) => {
                                value.push_str(&s[vs..i]);
                                vs = i + 1;
                                i += 2;
                            }
                            b'"' => break,
                            _ => i += 1,
                        }
                    }
                    value.push_str(&s[vs..i]);
                    i += 1;
                    rec.fields
                        .insert(format!("{id}.{key}"), crate::fields::scalar(&value));
                }
            }
        }
    }
    let rest = &s[i..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_structured_data() {
        let mut r = Record::default();
        let rest = structured_data(r#"[a@1 x="1" y="q\"z"][b z="w"] hi"#, &mut r).unwrap();
        assert_eq!(rest, "hi");
        assert_eq!(r.fields["a@1.x"], Value::Int(1));
        assert_eq!(r.fields["a@1.y"], Value::Str("q\"z".into()));
        assert_eq!(r.fields["b.z"], Value::Str("w".into()));
        assert!(structured_data("[a x=1]", &mut r).is_none());
        assert_eq!(scan_pri(b"<191>"), Some((191, 5)));
        assert_eq!(scan_pri(b"<192>"), None);
    }
}
