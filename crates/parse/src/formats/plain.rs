//! Plain text: the whole line is the message. Its time is the stamp of its header (see
//! [`crate::time::header`]: at the start, in a leading `[…]` or after one leading token, in
//! the layouts widely used software writes), else the first stamp in its first 128 bytes.
//! A level written in the line's header wins over level words later in it (see
//! [`crate::level::header_level`]); else a level word found anywhere counts when every one
//! agrees.

use logyard_model::{Column, Record, Value};

use super::{Cx, TIME_ERROR};
use crate::fields::extract;
use crate::level::{line_level, set_level};
use crate::time::header::{self, Found};
use crate::time::{resolve, scan_clf, scan_compact, scan_ctime, scan_iso, scan_syslog, Civil};

/// Finds the first timestamp in the text: (civil time, its start, its end).
fn find_stamp(b: &[u8]) -> Option<(Civil, usize, usize)> {
    let limit = b.len().min(128);
    for i in 0..limit {
        let c = b[i];
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let found = if c.is_ascii_digit() {
            let compact = || if i == 0 { scan_compact(b) } else { None };
            scan_iso(&b[i..])
                .or_else(|| scan_clf(&b[i..]))
                .or_else(compact)
        } else if c.is_ascii_alphabetic() {
            scan_ctime(&b[i..]).or_else(|| scan_syslog(&b[i..]))
        } else {
            None
        };
        if let Some((civil, n)) = found {
            return Some((civil, i, i + n));
        }
    }
    None
}

/// Reads a line as plain text; never fails.
pub(crate) fn parse(line: &str, rec: &mut Record, cx: &Cx) {
    let b = line.as_bytes();
    let stamp = header::find(b, cx.now)
        .or_else(|| find_stamp(b).map(|(c, start, end)| (Found::Civil(c), start, end)));
    if let Some((found, start, end)) = stamp {
        match resolve(found, cx.zone, cx.now) {
            Ok(ns) => rec.timestamp = ns,
            Err(reason) => {
                rec.fields.insert(
                    TIME_ERROR.into(),
                    Value::Str(format!(
                        "invalid timestamp {:?}: {reason}",
                        &line[start..end]
                    )),
                );
            }
        }
    }
    if let Some((level, _)) = line_level(line) {
        rec.level = Some(level);
    }
    rec.message = line.to_string();
    extract(rec, line);
    // `level=error` among the words of a line that is not logfmt as a whole.
    if rec.level.is_none() {
        if let Some(Value::Str(text)) = rec.fields.remove(Column::Level.name()) {
            set_level(rec, &text);
        }
    }
}
