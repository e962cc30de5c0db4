//! Kubernetes CRI container-log lines: `2024-01-15T10:30:00.123456789Z stdout F message`.
//! `P` lines are partial: the parser joins them until the `F` line.

use crate::time::{scan_iso, Civil};

/// A CRI line split into its parts.
pub(crate) struct Cri<'a> {
    /// The runtime's receive time.
    pub time: Civil,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// True for a `P` (partial) line.
    pub partial: bool,
    /// The container's own line (or part of it).
    pub inner: &'a str,
}

/// Splits a CRI line; `None` when the line is not one.
pub(crate) fn split(line: &str) -> Option<Cri<'_>> {
    let b = line.as_bytes();
    if !b.first()?.is_ascii_digit() || b.get(10) != Some(&b'T') {
        return None;
    }
    let (time, n) = scan_iso(b)?;
    time.offset?;
    let rest = line[n..].strip_prefix(' ')?;
    let stream = if rest.starts_with("stdout ") {
        "stdout"
    } else if rest.starts_with("stderr ") {
        "stderr"
    } else {
        return None;
    };
    let rest = &rest[7..];
    let (tag, inner) = match rest.find(' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let partial = match tag.split(':').next() {
        Some("F") => false,
        Some("P") => true,
        _ => return None,
    };
    Some(Cri {
        time,
        stream,
        partial,
        inner,
    })
}
