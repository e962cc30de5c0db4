//! The poller over a stand-in for `ssh` that runs the command line with the local `sh`, and
//! a `docker` that prints a file as `docker logs --timestamps` would, ignoring `--since`
//! (so that every poll sees the lines before the boundary again).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use logyard_model::Record;

use super::*;
use crate::file::StartAt;
use crate::ssh::{SshConfig, SshSource};
use crate::SourceContext;
use logyard_model::sink::MemorySink;
use logyard_model::sink::SinkError;

/// A sink that fails while `fail` is set.
#[derive(Default)]
struct Flaky {
    fail: AtomicBool,
    inner: MemorySink,
}

impl Sink for Flaky {
    fn write(&self, records: Vec<Record>) -> Result<(), SinkError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SinkError::other("disk full"));
        }
        self.inner.write(records)
    }
}

fn script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let st = std::process::Command::new("chmod")
        .arg("755")
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A folder with the stand-ins; returns the `ssh` to use.
fn host(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &bin.join("ssh"),
        "#!/bin/sh\neval cmd=\\${$#}\nPATH=\"$(dirname \"$0\"):$PATH\" exec sh -c \"$cmd\"\n",
    );
    script(
        &bin.join("docker"),
        "#!/bin/sh\nd=$(dirname \"$0\")/..\ncase \"$1\" in\n\
         ps) echo '{\"ID\":\"1\",\"Names\":\"web\",\"Image\":\"x\",\"State\":\"running\",\"Status\":\"Up\"}' ;;\n\
         logs) cat \"$d/web.log\" ;;\nesac\n",
    );
    bin.join("ssh")
}

fn poller(dir: &Path, cfg: SshConfig, sink: Arc<dyn Sink>) -> Poller {
    let source = SshSource::new("remote", cfg).unwrap();
    let ctx = SourceContext::new(sink, dir.join("data/state"), "here");
    source.poller(&ctx).unwrap()
}

fn messages(sink: &Flaky) -> Vec<String> {
    sink.inner
        .records()
        .iter()
        .map(|r| r.message.clone())
        .collect()
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn container_lines_at_the_boundary_stamp_are_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SshConfig::new("h");
    cfg.ssh_program = host(dir.path());
    cfg.start_at = StartAt::Beginning;
    cfg.multiline = "none".into();
    cfg.host_name = Some("prod-1".into());
    let log = dir.path().join("web.log");
    append(
        &log,
        "2024-01-15T10:00:00.000000001Z INFO - a\n\
         2024-01-15T10:00:00.000000002Z INFO - b\n\
         2024-01-15T10:00:00.000000002Z INFO - c\n",
    );
    let sink = Arc::new(Flaky::default());
    let mut p = poller(dir.path(), cfg.clone(), sink.clone());
    let r = p.poll(None).unwrap();
    assert_eq!(r.records, 3);
    assert_eq!(r.containers, vec!["web".to_string()]);
    let rec = &sink.inner.records()[0];
    assert_eq!(rec.source, "ssh:prod-1/web");
    assert_eq!(rec.host, "prod-1");
    assert_eq!(rec.agent, "web");

    // A line of the boundary's very stamp that was not delivered yet, and a newer one; a
    // failing store first: nothing is checkpointed, so they come again.
    append(
        &log,
        "2024-01-15T10:00:00.000000002Z INFO - d\n\
         2024-01-15T10:00:00.000000003Z no stamp of its own\n",
    );
    sink.fail.store(true, Ordering::SeqCst);
    assert!(matches!(p.poll(None), Err(PollError::Sink(_))));
    sink.fail.store(false, Ordering::SeqCst);
    // A restart: a new poller reads the checkpoint file.
    let mut p = poller(dir.path(), cfg, sink.clone());
    let r = p.poll(None).unwrap();
    assert_eq!(r.records, 2, "{r:?}");
    assert_eq!(r.duplicates, 3);
    assert_eq!(messages(&sink), ["a", "b", "c", "d", "no stamp of its own"]);
    let last = sink.inner.records().pop().unwrap();
    assert_eq!(
        logyard_model::format_rfc3339(last.timestamp),
        "2024-01-15T10:00:00.000000003Z"
    );
    assert_eq!(p.poll(None).unwrap().records, 0);
}

#[test]
fn files_resume_at_their_offset_and_restart_when_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("billing.log");
    append(&file, "INFO - one\nINFO - two\n");
    let mut cfg = SshConfig::new("h");
    cfg.ssh_program = host(dir.path());
    cfg.containers = Some(Vec::new());
    cfg.paths = vec![file.display().to_string()];
    cfg.multiline = "none".into();
    let sink = Arc::new(Flaky::default());
    let mut p = poller(dir.path(), cfg.clone(), sink.clone());
    // start_at = "end": what the file holds is skipped.
    assert_eq!(p.poll(None).unwrap().records, 0);
    append(&file, "INFO - three\nINFO - four without its newline");
    assert_eq!(p.poll(None).unwrap().records, 1);
    append(&file, "\n");
    assert_eq!(p.poll(None).unwrap().records, 1);
    assert_eq!(messages(&sink), ["three", "four without its newline"]);
    let source = &sink.inner.records()[0].source;
    assert_eq!(source, &format!("ssh:h:{}", file.display()));
    assert_eq!(sink.inner.records()[0].agent, "billing");

    // Truncated and written again, shorter.
    std::fs::write(&file, "INFO - five\n").unwrap();
    assert_eq!(p.poll(None).unwrap().records, 1);
    // Replaced by a longer file: the bytes before the offset differ.
    std::fs::write(
        &file,
        "INFO - six\nINFO - seven\nINFO - eight\nINFO - nine\n",
    )
    .unwrap();
    let mut p = poller(dir.path(), cfg, sink.clone());
    assert_eq!(p.poll(None).unwrap().records, 4);
    assert_eq!(p.poll(None).unwrap().records, 0);
    assert_eq!(
        messages(&sink),
        [
            "three",
            "four without its newline",
            "five",
            "six",
            "seven",
            "eight",
            "nine"
        ]
    );
}

#[test]
fn with_start_at_end_lines_after_the_first_poll_are_kept_even_after_quiet_polls() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("billing.log");
    std::fs::write(&file, "").unwrap();
    let log = dir.path().join("web.log");
    append(&log, "2000-01-01T00:00:00.000000001Z INFO - long ago\n");
    let mut cfg = SshConfig::new("h");
    cfg.ssh_program = host(dir.path());
    cfg.paths = vec![file.display().to_string()];
    cfg.multiline = "none".into();
    let sink = Arc::new(Flaky::default());
    let mut p = poller(dir.path(), cfg, sink.clone());
    assert_eq!(p.poll(None).unwrap().records, 0);
    // Written after the first poll, stamped before the second one starts.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.9fZ");
    append(&log, &format!("{now} INFO - after the first poll\n"));
    append(&file, "INFO - first line of an empty file\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(p.poll(None).unwrap().records, 2);
    assert_eq!(
        messages(&sink),
        ["after the first poll", "first line of an empty file"]
    );
}

#[test]
fn a_host_that_cannot_be_reached_is_an_error_of_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SshConfig::new("h");
    cfg.ssh_program = dir.path().join("no-such-ssh");
    let sink = Arc::new(Flaky::default());
    let mut p = poller(dir.path(), cfg, sink);
    match p.poll(None) {
        Err(PollError::Remote(e)) => {
            assert!(e.is_connection());
            assert!(e.to_string().contains("openssh-client"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
