//! Docker json-file lines: `{"log":"message\n","stream":"stdout","time":"2024-01-15T10:30:00.1Z"}`.
//! A `log` without the final newline is a part of a longer line (Docker splits at 16 KiB):
//! the parser joins the parts.

/// A Docker json-file line split into its parts.
pub(crate) struct Docker {
    /// The container's own line (or part of it), without the final newline.
    pub inner: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The daemon's receive time, as written.
    pub time: String,
    /// True when `log` did not end with a newline.
    pub partial: bool,
}

/// Splits a Docker json-file line; `None` when the line is not one.
pub(crate) fn split(line: &str) -> Option<Docker> {
    if !line.starts_with("{\"log\":") {
        return None;
    }
    let serde_json::Value::Object(map) = serde_json::from_str::<serde_json::Value>(line).ok()?
    else {
        return None;
    };
    if map
        .keys()
        .any(|k| !matches!(k.as_str(), "log" | "stream" | "time" | "attrs"))
    {
        return None;
    }
    let mut log = map.get("log")?.as_str()?.to_string();
    let stream = map
        .get("stream")
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string();
    let time = map
        .get("time")
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string();
    let partial = !log.ends_with('\n');
    if !partial {
        log.pop();
        if log.ends_with('\r') {
            log.pop();
        }
    }
    Some(Docker {
        inner: log,
        stream,
        time,
        partial,
    })
}
