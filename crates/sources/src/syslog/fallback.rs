//! Messages with a priority but no header (`<11>myapp: hello`, as Python's
//! `SysLogHandler` and some embedded devices send): the level and facility come from the
//! priority, the agent from the tag.

use logyard_model::{Level, Record, Value};
use logyard_parse::SYSLOG_FACILITIES;

/// Completes a record that the syslog parsers did not recognise but that starts with a
/// priority; other records are returned as they are.
pub(crate) fn pri_only(mut rec: Record, bytes: &[u8]) -> Record {
    if rec.fields.contains_key("facility") {
        return rec;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return rec;
    };
    let Some(rest) = text.strip_prefix('<') else {
        return rec;
    };
    let Some((pri, body)) = rest.split_once('>') else {
        return rec;
    };
    let Ok(pri) = pri.parse::<u8>() else {
        return rec;
    };
    if pri > 191 || pri.to_string().len() != rest.find('>').unwrap_or(0) {
        return rec;
    }
    if let Some(level) = Level::from_syslog_severity(pri & 7) {
        rec.level = Some(level);
    }
    rec.fields.insert(
        "facility".into(),
        Value::Str(SYSLOG_FACILITIES[usize::from(pri >> 3)].into()),
    );
    let body = body.trim_end_matches(['\0', '\n', '\r']);
    match body.split_once(": ") {
        Some((tag, msg)) if is_tag(tag) => {
            let name = tag.split('[').next().unwrap_or(tag);
            rec.agent = name.to_string();
            if let Some(pid) = tag.split_once('[').and_then(|(_, p)| p.strip_suffix(']')) {
                rec.fields.insert("pid".into(), Value::Str(pid.to_string()));
            }
            rec.message = msg.to_string();
        }
        _ => rec.message = body.to_string(),
    }
    rec
}

fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 48
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./@[]".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_and_tag_without_header() {
        let rec = pri_only(Record::new(0, "x"), b"<11>myapp[42]: disk failed\0");
        assert_eq!(rec.level, Some(Level::Error));
        assert_eq!(rec.agent, "myapp");
        assert_eq!(rec.message, "disk failed");
        assert_eq!(rec.fields["facility"].to_string(), "user");
        assert_eq!(rec.fields["pid"].to_string(), "42");
    }
}
