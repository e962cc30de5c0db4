//! What each source reports for `GET /api/sources` and `/metrics`.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

/// The life state of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Built, not yet running.
    #[default]
    Starting,
    /// Collecting.
    Running,
    /// Collecting, but the last attempt to read or deliver failed (see `last_error`).
    Failing,
    /// Finished (shutdown, or the end of its input).
    Stopped,
}

/// A followed file and how far it is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileStatus {
    /// The file's path.
    pub path: String,
    /// The offset up to which lines are delivered and checkpointed.
    pub offset: u64,
    /// The file's size at the last look.
    pub size: u64,
    /// Why the file is not followed (`is a directory`, `binary file`, `permission denied`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A container read by a Docker source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerStatus {
    /// The container's short id (12 hex digits).
    pub id: String,
    /// The container's name: the agent and the `docker:<name>` source of its records.
    pub name: String,
    /// Records delivered from the container since start.
    pub lines_total: u64,
    /// The daemon's RFC 3339 time of the last line delivered (api mode): how far behind the
    /// container's log the source is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_line_time: Option<String>,
    /// True while its log is followed (false once it stopped or was removed and read to
    /// its end, or while it waits for a place under `max_containers`).
    pub following: bool,
    /// Why the container is not read, or read without its name and labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The state of a remote host collected over SSH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoteStatus {
    /// The host as configured.
    pub host: String,
    /// Whether the last poll reached the host.
    pub reachable: bool,
    /// The RFC 3339 time of the last poll that reached the host.
    pub last_poll: Option<String>,
    /// Polls that reached the host since start.
    pub polls_ok: u64,
    /// Polls that failed to reach it (unreachable, refused key, closed mid-stream).
    pub polls_failed: u64,
    /// The containers collected at the last poll.
    pub containers: Vec<String>,
    /// The remote files collected, with the offset delivered (`size` is that offset too:
    /// the remote size is not asked for).
    pub paths: Vec<FileStatus>,
}

/// A source's state and counters, serialised as one entry of `GET /api/sources`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SourceStatus {
    /// The source's name (unique; the label of its metrics).
    pub name: String,
    /// The source's type: `file`, `syslog`, `docker`, `ssh`, `journald`, `stdin`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Running, failing or stopped.
    pub state: SourceState,
    /// Files followed, with offsets (file sources only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileStatus>,
    /// Containers read (Docker sources only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerStatus>,
    /// Open connections (TCP syslog only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    /// The remote host and what is collected from it (SSH sources only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteStatus>,
    /// The RFC 3339 time the last line was read.
    pub last_line_time: Option<String>,
    /// Lines (records) read since start.
    pub lines_total: u64,
    /// Bytes read since start.
    pub bytes_total: u64,
    /// Lines per second over the last few seconds.
    pub lines_per_sec: f64,
    /// Errors since start (unreadable files, sink failures, bad frames, refused connections).
    pub errors_total: u64,
    /// The text of the last error.
    pub last_error: Option<String>,
    /// Datagrams the kernel dropped because the socket's receive buffer was full (UDP
    /// syslog on Linux, read from `/proc/net/udp` every second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_total: Option<u64>,
}

#[derive(Debug)]
struct Inner {
    status: SourceStatus,
    /// Lines total and the instant of the older rate sample.
    rate_from: (Instant, u64),
    /// The newer rate sample.
    rate_to: (Instant, u64),
}

/// A shared handle on a source's status: the source updates it, the binary reads it.
#[derive(Debug, Clone)]
pub struct StatusHandle {
    inner: Arc<Mutex<Inner>>,
}

impl StatusHandle {
    /// Creates the status of a source.
    pub fn new(name: &str, kind: &str) -> StatusHandle {
        let now = Instant::now();
        StatusHandle {
            inner: Arc::new(Mutex::new(Inner {
                status: SourceStatus {
                    name: name.to_string(),
                    kind: kind.to_string(),
                    ..SourceStatus::default()
                },
                rate_from: (now, 0),
                rate_to: (now, 0),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns a copy of the status, with the current line rate.
    pub fn snapshot(&self) -> SourceStatus {
        let mut g = self.lock();
        roll_rate(&mut g);
        let (t0, n0) = g.rate_from;
        let secs = t0.elapsed().as_secs_f64();
        let mut s = g.status.clone();
        s.lines_per_sec = if secs > 0.0 {
            (s.lines_total.saturating_sub(n0)) as f64 / secs
        } else {
            0.0
        };
        s
    }

    /// Counts lines and bytes read.
    pub fn add_lines(&self, lines: u64, bytes: u64) {
        if lines == 0 && bytes == 0 {
            return;
        }
        let mut g = self.lock();
        g.status.lines_total += lines;
        g.status.bytes_total += bytes;
        if lines > 0 {
            g.status.last_line_time = Some(logyard_model::format_rfc3339(logyard_model::now_ns()));
        }
        roll_rate(&mut g);
    }

    /// Counts an error, keeps its text and marks the source failing.
    pub fn error(&self, text: impl Into<String>) {
        let mut g = self.lock();
        g.status.errors_total += 1;
        g.status.last_error = Some(text.into());
        if g.status.state != SourceState::Stopped {
            g.status.state = SourceState::Failing;
        }
    }

    /// Counts an error and keeps its text without marking the source failing (bad input
    /// that the source survives: a refused connection, an over-long frame).
    pub fn input_error(&self, text: impl Into<String>) {
        let mut g = self.lock();
        g.status.errors_total += 1;
        g.status.last_error = Some(text.into());
    }

    /// Sets the count of input the kernel dropped before the source could read it.
    pub fn set_dropped(&self, n: u64) {
        self.lock().status.dropped_total = Some(n);
    }

    /// Sets the life state.
    pub fn set_state(&self, state: SourceState) {
        self.lock().status.state = state;
    }

    /// Replaces the list of followed files.
    pub fn set_files(&self, files: Vec<FileStatus>) {
        self.lock().status.files = files;
    }

    /// Replaces the list of containers read.
    pub fn set_containers(&self, containers: Vec<ContainerStatus>) {
        self.lock().status.containers = containers;
    }

    /// Replaces the state of the remote host (SSH sources).
    pub fn set_remote(&self, remote: RemoteStatus) {
        self.lock().status.remote = Some(remote);
    }

    /// Sets the number of open connections.
    pub fn set_connections(&self, n: u64) {
        self.lock().status.connections = Some(n);
    }
}

/// Keeps the rate window between about 5 and 10 seconds long.
fn roll_rate(g: &mut Inner) {
    let now = Instant::now();
    if now.duration_since(g.rate_to.0).as_secs_f64() >= 5.0 {
        g.rate_from = g.rate_to;
        g.rate_to = (now, g.status.lines_total);
    }
}

/// Renders the sources' counters as Prometheus text (HELP and TYPE lines included). Labels
/// are the source's name and type only, never file paths, so that series stay bounded; the
/// per-file series are [`render_file_metrics`]'s, under their own bound.
pub fn render_prometheus(statuses: &[SourceStatus]) -> String {
    let mut out = String::new();
    type Getter = fn(&SourceStatus) -> f64;
    let metrics: [(&str, &str, &str, Getter); 5] = [
        (
            "logyard_source_lines_total",
            "counter",
            "Lines read by a source.",
            |s| s.lines_total as f64,
        ),
        (
            "logyard_source_bytes_total",
            "counter",
            "Bytes read by a source.",
            |s| s.bytes_total as f64,
        ),
        (
            "logyard_source_errors_total",
            "counter",
            "Errors met by a source (unreadable files, sink failures, bad frames).",
            |s| s.errors_total as f64,
        ),
        (
            "logyard_source_up",
            "gauge",
            "1 when the source is running without a current error, else 0.",
            |s| f64::from(u8::from(s.state == SourceState::Running)),
        ),
        (
            "logyard_source_files",
            "gauge",
            "Files followed by a file source.",
            |s| s.files.len() as f64,
        ),
    ];
    for (name, kind, help, get) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in statuses {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\",type=\"{}\"}} {}",
                escape(&s.name),
                escape(&s.kind),
                get(s)
            );
        }
    }
    let remote: Vec<&SourceStatus> = statuses.iter().filter(|s| s.remote.is_some()).collect();
    if !remote.is_empty() {
        type RemoteGetter = fn(&RemoteStatus) -> f64;
        let metrics: [(&str, &str, &str, RemoteGetter); 2] = [
            (
                "logyard_source_remote_reachable",
                "gauge",
                "1 when the last poll of an SSH source reached its host, else 0.",
                |r| f64::from(u8::from(r.reachable)),
            ),
            (
                "logyard_source_remote_polls_failed_total",
                "counter",
                "Polls of an SSH source that did not reach its host or lost it mid-stream.",
                |r| r.polls_failed as f64,
            ),
        ];
        for (name, kind, help, get) in metrics {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in &remote {
                if let Some(r) = &s.remote {
                    let _ = writeln!(
                        out,
                        "{name}{{source=\"{}\",type=\"{}\"}} {}",
                        escape(&s.name),
                        escape(&s.kind),
                        get(r)
                    );
                }
            }
        }
    }
    let dropping: Vec<(&SourceStatus, u64)> = statuses
        .iter()
        .filter_map(|s| s.dropped_total.map(|d| (s, d)))
        .collect();
    if !dropping.is_empty() {
        let name = "logyard_source_dropped_total";
        let _ = writeln!(
            out,
            "# HELP {name} Datagrams the kernel dropped before a UDP syslog source read them (receive buffer full)."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for (s, d) in dropping {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\",type=\"{}\"}} {d}",
                escape(&s.name),
                escape(&s.kind),
            );
        }
    }
    out
}

/// The default of `[metrics] max_file_series`: files with their own series in
/// [`render_file_metrics`].
pub const DEFAULT_MAX_FILE_SERIES: usize = 1000;

/// Renders the size and the read offset of each file followed by the sources, labelled with
/// the source's name and type and the file's path. There is one series per followed file
/// (a file that is no longer followed loses its series), and at most `max_files` files get
/// them: the largest ones, so that an alert on a file's size still sees the biggest. Files
/// that are not followed (`problem` set) have no size and get none.
pub fn render_file_metrics(statuses: &[SourceStatus], max_files: usize) -> String {
    let mut files: Vec<(&SourceStatus, &FileStatus)> = statuses
        .iter()
        .flat_map(|s| s.files.iter().map(move |f| (s, f)))
        .filter(|(_, f)| f.problem.is_none())
        .collect();
    if files.is_empty() {
        return String::new();
    }
    if files.len() > max_files {
        files.sort_by_key(|f| std::cmp::Reverse(f.1.size));
        files.truncate(max_files);
    }
    files.sort_by(|a, b| (&a.0.name, &a.1.path).cmp(&(&b.0.name, &b.1.path)));
    type FileGetter = fn(&FileStatus) -> u64;
    let metrics: [(&str, &str, FileGetter); 2] = [
        (
            "logyard_source_file_size_bytes",
            "The size of a file followed by a file source, at its last look.",
            |f| f.size,
        ),
        (
            "logyard_source_file_offset_bytes",
            "The offset up to which a followed file's lines are stored (size minus this is the backlog).",
            |f| f.offset,
        ),
    ];
    let mut out = String::new();
    for (name, help, get) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (s, f) in &files {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\",type=\"{}\",path=\"{}\"}} {}",
                escape(&s.name),
                escape(&s.kind),
                escape(&f.path),
                get(f)
            );
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, files: &[(&str, u64)]) -> SourceStatus {
        SourceStatus {
            name: name.into(),
            kind: "file".into(),
            files: files
                .iter()
                .map(|(p, size)| FileStatus {
                    path: (*p).into(),
                    offset: size / 2,
                    size: *size,
                    problem: None,
                })
                .collect(),
            ..SourceStatus::default()
        }
    }

    #[test]
    fn file_metrics_have_one_series_per_followed_file() {
        let mut s = source("app", &[("/var/log/a\"b.log", 10), ("/var/log/c.log", 30)]);
        s.files.push(FileStatus {
            path: "/var/log/core".into(),
            offset: 0,
            size: 0,
            problem: Some("binary file".into()),
        });
        let text = render_file_metrics(&[s], DEFAULT_MAX_FILE_SERIES);
        assert!(text.contains(
            "logyard_source_file_size_bytes{source=\"app\",type=\"file\",path=\"/var/log/a\\\"b.log\"} 10\n"
        ), "{text}");
        assert!(text.contains(
            "logyard_source_file_offset_bytes{source=\"app\",type=\"file\",path=\"/var/log/c.log\"} 15\n"
        ), "{text}");
        assert!(!text.contains("core"), "{text}");
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 4);
    }

    #[test]
    fn past_the_bound_the_largest_files_keep_their_series() {
        let a = source("a", &[("/a/1", 5), ("/a/2", 50)]);
        let b = source("b", &[("/b/1", 20)]);
        let text = render_file_metrics(&[a, b], 2);
        let sizes: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("logyard_source_file_size_bytes"))
            .collect();
        assert_eq!(sizes.len(), 2, "{text}");
        assert!(
            sizes[0].contains("/a/2") && sizes[1].contains("/b/1"),
            "{text}"
        );
        assert_eq!(render_file_metrics(&[], 2), "");
    }
}
