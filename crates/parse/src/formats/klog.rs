//! Go's glog and Kubernetes' klog: `I0115 10:30:00.123456   12345 server.go:123] message`
//! (level letter I, W, E or F; month and day; the year is inferred like syslog's). The pid
//! becomes the field `pid`, the `file:line` the field `caller`.

use logyard_model::{Level, Record, Value};

use super::{bad_time, id_value, Cx, Miss, Res};
use crate::fields::extract;
use crate::time::{infer_year, Civil};

fn num(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |v, c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

/// Parses a klog line.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) -> Res {
    let b = line.as_bytes();
    let level = match b.first() {
        Some(b'I') => Level::Info,
        Some(b'W') => Level::Warning,
        Some(b'E') => Level::Error,
        Some(b'F') => Level::Critical,
        _ => return Err(Miss::No),
    };
    if b.len() < 22 || b[5] != b' ' || b[8] != b':' || b[11] != b':' || b[14] != b'.' {
        return Err(Miss::No);
    }
    let frac_end = 15 + b[15..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut c = Civil {
        month: num(&b[1..3]).ok_or(Miss::No)?,
        day: num(&b[3..5]).ok_or(Miss::No)?,
        hour: num(&b[6..8]).ok_or(Miss::No)?,
        minute: num(&b[9..11]).ok_or(Miss::No)?,
        second: num(&b[12..14]).ok_or(Miss::No)?,
        ..Civil::default()
    };
    let frac = &b[15..frac_end.min(24)];
    c.nanos = num(frac).ok_or(Miss::No)? * 10u32.pow(9 - frac.len() as u32);
    let rest = line[frac_end..].trim_start();
    let (pid, rest) = rest.split_once(' ').ok_or(Miss::No)?;
    let (caller, msg) = rest
        .split_once("] ")
        .or_else(|| rest.strip_suffix(']').map(|c| (c, "")))
        .ok_or(Miss::No)?;
    if pid.is_empty()
        || !pid.bytes().all(|c| c.is_ascii_digit())
        || !caller.contains(':')
        || caller.contains(' ')
    {
        return Err(Miss::No);
    }
    rec.timestamp = infer_year(c, cx.zone, cx.now).map_err(|e| bad_time(&b[1..frac_end], e))?;
    rec.level = Some(level);
    rec.fields.insert("pid".into(), id_value(pid));
    rec.fields
        .insert("caller".into(), Value::Str(caller.to_string()));
    rec.message = msg.to_string();
    extract(rec, msg);
    Ok(())
}
