//! The JSON forms of `logyard remote`: the document of `save --out FILE` and the summary
//! of `errors --json` (docs/sources.md shows both).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use logyard_model::{format_rfc3339, Level, Record};
use logyard_sources::{Sink, SinkError};
use serde_json::{json, Value};

/// How `save` reads a container's lines, as the document's `collection_source` says.
pub const FROM_CONTAINER: &str = "ssh:docker logs";
/// How `save` reads a remote file's lines (`tail -c +N PATH`).
pub const FROM_FILE: &str = "ssh:tail";

/// A sink that hands every batch to another and keeps a copy of those it accepted.
pub struct TeeSink {
    inner: Arc<dyn Sink>,
    kept: Mutex<Vec<Record>>,
}

impl TeeSink {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Sink>) -> TeeSink {
        TeeSink {
            inner,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// Takes the records accepted so far, in the order they were written.
    pub fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Sink for TeeSink {
    fn write(&self, records: Vec<Record>) -> Result<(), SinkError> {
        let copy = records.clone();
        self.inner.write(records)?;
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(copy);
        Ok(())
    }
}

/// Refuses an `--out` that cannot be written before anything is read: a folder that is
/// missing, or a path that is a folder.
pub fn check_out(out: &Path) -> anyhow::Result<()> {
    if out.file_name().is_none() {
        bail!(
            "--out {}: not a file name; give the path of the JSON file to write",
            out.display()
        );
    }
    let parent = parent_of(out);
    match std::fs::metadata(&parent) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(
            "--out {}: {} is not a folder; give a file in an existing folder",
            out.display(),
            parent.display()
        ),
        Err(e) => bail!(
            "--out {}: the folder {} cannot be used ({e}); create it, or give a file in an existing folder",
            out.display(),
            parent.display()
        ),
    }
    if let Ok(m) = std::fs::metadata(out) {
        if m.is_dir() {
            bail!(
                "--out {} is a folder; give the path of a file (e.g. {}/logs.json)",
                out.display(),
                out.display()
            );
        }
    }
    Ok(())
}

fn parent_of(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `text` to `out` whole: to a temporary file beside it, flushed to disk, then
/// renamed over it, so a reader sees the old document or the new one, never a part.
pub fn write_atomic(out: &Path, text: &[u8]) -> anyhow::Result<()> {
    let name = out
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent_of(out).join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| {
            format!(
                "cannot write {} (through {}): check that its folder is writable and has room, or give another --out",
                out.display(),
                tmp.display()
            )
        });
    }
    Ok(())
}

/// The times of a run of `save`, as the document states them (ns).
pub struct Window {
    /// When the poll started.
    pub collected_at: i64,
    /// The oldest time asked for (`HOURS` back).
    pub since: i64,
    /// When the poll ended.
    pub until: i64,
}

/// Builds the document of `save --out`: every container and file read, each with its
/// lines (oldest first), its first and last time, its host and how it was read.
pub fn save_document(
    host: &str,
    window: &Window,
    containers: &[String],
    paths: &[String],
    records: Vec<Record>,
) -> Value {
    let mut by_source: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for r in records {
        by_source.entry(r.source.clone()).or_default().push(r);
    }
    let mut entry = |key: &str, name: &str, source: String, how: &str| -> Value {
        let mut lines = by_source.remove(&source).unwrap_or_default();
        lines.sort_by_key(|r| r.timestamp);
        let time =
            |r: Option<&Record>| r.map_or(Value::Null, |r| format_rfc3339(r.timestamp).into());
        json!({
            key: name,
            "host": host,
            "collection_source": how,
            "first": time(lines.first()),
            "last": time(lines.last()),
            "count": lines.len(),
            "lines": lines.iter().map(logyard_parse::record_to_json).collect::<Vec<_>>(),
        })
    };
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| entry("container", c, format!("ssh:{host}/{c}"), FROM_CONTAINER))
        .collect();
    let files: Vec<Value> = paths
        .iter()
        .map(|p| entry("path", p, format!("ssh:{host}:{p}"), FROM_FILE))
        .collect();
    json!({
        "host": host,
        "collected_at": format_rfc3339(window.collected_at),
        "since": format_rfc3339(window.since),
        "until": format_rfc3339(window.until),
        "containers": containers,
        "files": files,
    })
}

/// An error pattern of a container: how often, an example, first and last time (ns).
struct Pattern {
    count: u64,
    example: String,
    first: i64,
    last: i64,
}

/// Summarises the lines of `names` (`rows`: each record with its container, oldest first):
/// `total_errors` and, per container, `lines`, `errors`, `levels` (lines by level,
/// `unknown` for lines without one), `first`/`last` (any line), `first_error`/`last_error`
/// and the `top` most frequent `top_errors` (message templates, as the `patterns` pipe makes
/// them).
pub fn summarize(host: &str, names: &[String], rows: &[(Record, String)], top: usize) -> Value {
    let mut total_errors = 0u64;
    let containers: Vec<Value> = names
        .iter()
        .map(|name| {
            let mut levels: BTreeMap<&str, u64> = BTreeMap::new();
            let mut patterns: BTreeMap<String, Pattern> = BTreeMap::new();
            let (mut lines, mut errors) = (0u64, 0u64);
            let (mut first, mut last) = (None::<i64>, None::<i64>);
            let (mut first_error, mut last_error) = (None::<i64>, None::<i64>);
            for (r, _) in rows.iter().filter(|(_, c)| c == name) {
                lines += 1;
                first = Some(first.map_or(r.timestamp, |t| t.min(r.timestamp)));
                last = Some(last.map_or(r.timestamp, |t| t.max(r.timestamp)));
                *levels
                    .entry(r.level.map_or("unknown", Level::as_str))
                    .or_default() += 1;
                if r.level.is_none_or(|l| l < Level::Error) {
                    continue;
                }
                errors += 1;
                first_error = Some(first_error.map_or(r.timestamp, |t| t.min(r.timestamp)));
                last_error = Some(last_error.map_or(r.timestamp, |t| t.max(r.timestamp)));
                let message = r.message.lines().next().unwrap_or("");
                let p = patterns
                    .entry(logyard_query::template(message))
                    .or_insert(Pattern {
                        count: 0,
                        example: String::new(),
                        first: r.timestamp,
                        last: r.timestamp,
                    });
                p.count += 1;
                p.first = p.first.min(r.timestamp);
                if r.timestamp >= p.last || p.example.is_empty() {
                    p.last = r.timestamp;
                    p.example = message.to_string();
                }
            }
            total_errors += errors;
            let mut ranked: Vec<(String, Pattern)> = patterns.into_iter().collect();
            ranked.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.1.first.cmp(&b.1.first)));
            ranked.truncate(top);
            let time = |t: Option<i64>| t.map_or(Value::Null, |t| format_rfc3339(t).into());
            json!({
                "container": name,
                "host": host,
                "lines": lines,
                "errors": errors,
                "levels": levels,
                "first": time(first),
                "last": time(last),
                "first_error": time(first_error),
                "last_error": time(last_error),
                "top_errors": ranked.into_iter().map(|(pattern, p)| json!({
                    "pattern": pattern,
                    "count": p.count,
                    "example": p.example,
                    "first": format_rfc3339(p.first),
                    "last": format_rfc3339(p.last),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"total_errors": total_errors, "containers": containers})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: i64, level: Option<Level>, message: &str, source: &str) -> Record {
        Record {
            timestamp: ts,
            level,
            message: message.into(),
            source: source.into(),
            ..Record::default()
        }
    }

    #[test]
    fn summary_counts_levels_and_ranks_patterns() {
        let rows = vec![
            (rec(1, Some(Level::Info), "up", ""), "a".to_string()),
            (
                rec(2, Some(Level::Error), "timeout order=7", ""),
                "a".into(),
            ),
            (rec(3, Some(Level::Critical), "disk full", ""), "a".into()),
            (rec(4, None, "GET /", ""), "a".into()),
            (
                rec(5, Some(Level::Error), "timeout order=8", ""),
                "a".into(),
            ),
        ];
        let names = vec!["a".to_string(), "idle".to_string()];
        let s = summarize("h", &names, &rows, 1);
        assert_eq!(s["total_errors"], 3);
        let a = &s["containers"][0];
        assert_eq!(a["lines"], 5);
        assert_eq!(a["levels"]["unknown"], 1);
        assert_eq!(a["levels"]["ERROR"], 2);
        assert_eq!(a["top_errors"].as_array().unwrap().len(), 1);
        assert_eq!(a["top_errors"][0]["pattern"], "timeout order=<num>");
        assert_eq!(a["top_errors"][0]["count"], 2);
        assert_eq!(a["top_errors"][0]["example"], "timeout order=8");
        let idle = &s["containers"][1];
        assert_eq!(idle["lines"], 0);
        assert_eq!(idle["first"], Value::Null);
    }

    #[test]
    fn the_document_groups_lines_by_container_and_file() {
        let w = Window {
            collected_at: 0,
            since: 0,
            until: 10,
        };
        let records = vec![
            rec(5, None, "second", "ssh:h/web"),
            rec(3, None, "first", "ssh:h/web"),
            rec(4, Some(Level::Error), "failed", "ssh:h:/var/log/app.log"),
        ];
        let d = save_document(
            "h",
            &w,
            &["web".into(), "idle".into()],
            &["/var/log/app.log".into()],
            records,
        );
        let web = &d["containers"][0];
        assert_eq!(web["lines"][0]["message"], "first");
        assert_eq!(web["count"], 2);
        assert_eq!(web["collection_source"], FROM_CONTAINER);
        assert_eq!(d["containers"][1]["lines"], json!([]));
        assert_eq!(d["files"][0]["lines"][0]["level"], "ERROR");
    }

    #[test]
    fn out_is_checked_and_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.json");
        check_out(&out).unwrap();
        assert!(check_out(dir.path()).is_err());
        let missing = dir.path().join("no/x.json");
        assert!(check_out(&missing)
            .unwrap_err()
            .to_string()
            .contains("create it"));
        write_atomic(&out, b"{}").unwrap();
        write_atomic(&out, b"[1]").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"[1]");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
