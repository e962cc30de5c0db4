//! The `[[sources]]` registry, the status and metrics, the stdin source, and the file
//! source's run loop (inotify and polling, a slow sink, a restart).

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logyard_model::Record;
use logyard_sources::{
    build_all, render_prometheus, spawn, MemorySink, Sink, SinkError, SourceConfig, SourceContext,
    SourceError, SourceState, StdinConfig, StdinSource,
};

#[derive(Deserialize)]
struct Root {
    sources: Vec<SourceConfig>,
}
use serde::Deserialize;

fn parse(toml_text: &str) -> Result<Vec<SourceConfig>, String> {
    toml::from_str::<Root>(toml_text)
        .map(|r| r.sources)
        .map_err(|e| e.to_string())
}

#[test]
fn config_file_entries_build_with_defaults_and_unique_names() {
    let cfgs = parse(
        r#"
[[sources]]
type = "file"
paths = ["/tmp/*.log"]
start_at = "end"
multiline = "auto"

[[sources]]
type = "file"
paths = ["/var/log/app/*.log"]
multiline = "^\\d{4}-"
poll_interval = "250ms"
max_line_bytes = "64KiB"

[[sources]]
type = "syslog"
listen_udp = "127.0.0.1:5514"
listen_tcp = "127.0.0.1:5514"

[[sources]]
type = "docker"
containers = ["web-*"]

[[sources]]
type = "stdin"
"#,
    )
    .unwrap();
    let names: Vec<String> = build_all(&cfgs)
        .unwrap()
        .iter()
        .map(|s| format!("{}:{}", s.kind(), s.name()))
        .collect();
    assert_eq!(
        names,
        [
            "file:file",
            "file:file-2",
            "syslog:syslog",
            "docker:docker",
            "stdin:stdin"
        ]
    );
    match &cfgs[1] {
        SourceConfig::File(f) => {
            assert_eq!(f.poll_interval, Duration::from_millis(250));
            assert_eq!(f.max_line_bytes, Some(65536));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_entries_are_refused_with_a_reason() {
    let unknown = parse("[[sources]]\ntype = \"file\"\npaths = [\"/x\"]\nstart = \"end\"\n");
    assert!(unknown.unwrap_err().contains("unknown field `start`"));
    let kind = parse("[[sources]]\ntype = \"kafka\"\n");
    assert!(kind.unwrap_err().contains("unknown variant `kafka`"));
    let start = parse("[[sources]]\ntype = \"file\"\npaths = [\"/x\"]\nstart_at = \"middle\"\n");
    assert!(start.is_err());
    let regex =
        parse("[[sources]]\ntype = \"file\"\npaths = [\"/x\"]\nmultiline = \"(\"\n").unwrap();
    assert!(matches!(build_all(&regex), Err(SourceError::Parse { .. })));
    let no_listener = parse("[[sources]]\ntype = \"syslog\"\n").unwrap();
    let err = build_all(&no_listener).err().unwrap().to_string();
    assert!(err.contains("listen_udp"), "{err}");
    let dup = parse("[[sources]]\ntype = \"stdin\"\nname = \"a\"\n[[sources]]\ntype = \"stdin\"\nname = \"a\"\n").unwrap();
    assert!(matches!(
        build_all(&dup),
        Err(SourceError::DuplicateName(_))
    ));
}

#[test]
fn stdin_lines_become_records_and_the_source_stops_at_the_end() {
    let input =
        b"2024-01-15 10:30:00 - ERROR - api - failed\nplain line\nno newline at the end".to_vec();
    let sink = Arc::new(MemorySink::new());
    let dir = tempfile::tempdir().unwrap();
    let ctx = SourceContext::new(sink.clone(), dir.path(), "h1");
    let cfg = StdinConfig {
        multiline: "none".into(),
        ..StdinConfig::default()
    };
    let src = StdinSource::new("stdin", cfg).with_reader(Box::new(std::io::Cursor::new(input)));
    let running = spawn(Box::new(src), ctx);
    let status = running.status.clone();
    running.join().unwrap();
    let recs = sink.records();
    let msgs: Vec<&str> = recs.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(msgs, ["failed", "plain line", "no newline at the end"]);
    assert!(recs.iter().all(|r| r.source == "stdin" && r.host == "h1"));
    assert_eq!(recs[0].agent, "api");
    assert_eq!(recs[1].agent, "stdin");
    let st = status.snapshot();
    assert_eq!((st.state, st.lines_total), (SourceState::Stopped, 3));
}

#[test]
fn prometheus_text_has_help_type_and_bounded_labels() {
    let s = logyard_sources::StatusHandle::new("app-files", "file");
    s.add_lines(3, 42);
    s.error("boom");
    let text = render_prometheus(&[s.snapshot()]);
    assert!(text.contains("# HELP logyard_source_lines_total "));
    assert!(text.contains("# TYPE logyard_source_lines_total counter"));
    assert!(text.contains("logyard_source_lines_total{source=\"app-files\",type=\"file\"} 3"));
    assert!(text.contains("logyard_source_bytes_total{source=\"app-files\",type=\"file\"} 42"));
    assert!(text.contains("logyard_source_errors_total{source=\"app-files\",type=\"file\"} 1"));
    assert!(text.contains("logyard_source_up{source=\"app-files\",type=\"file\"} 0"));
    let json = serde_json::to_value(s.snapshot()).unwrap();
    assert_eq!(json["type"], "file");
    assert_eq!(json["state"], "failing");
    assert_eq!(json["last_error"], "boom");
}

/// A sink that takes its time and counts what it got.
struct SlowSink {
    delay: Duration,
    records: Mutex<Vec<Record>>,
    calls: AtomicU64,
}

impl Sink for SlowSink {
    fn write(&self, records: Vec<Record>) -> Result<(), SinkError> {
        std::thread::sleep(self.delay);
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.records.lock().unwrap().extend(records);
        Ok(())
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_run_loop_follows_new_files_with_a_slow_sink_and_resumes_after_a_restart() {
    for watch in ["notify", "poll"] {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let cfg = parse(&format!(
            "[[sources]]\ntype = \"file\"\npaths = [\"{}/*.log\"]\nmultiline = \"none\"\nwatch = \"{watch}\"\npoll_interval = \"200ms\"\nbatch_lines = 100\n",
            logs.display()
        ))
        .unwrap();
        let sink = Arc::new(SlowSink {
            delay: Duration::from_millis(30),
            records: Mutex::default(),
            calls: AtomicU64::new(0),
        });
        let start = |sink: Arc<SlowSink>| {
            let ctx = SourceContext::new(sink, dir.path().join("state"), "h");
            let src = build_all(&cfg).unwrap().remove(0);
            (spawn(src, ctx.clone()), ctx)
        };
        let (running, ctx) = start(sink.clone());
        wait_until("the source to run", || {
            running.status.snapshot().state == SourceState::Running
        });
        let mut f = std::fs::File::create(logs.join("new.log")).unwrap();
        for i in 0..1000 {
            writeln!(f, "line {i}").unwrap();
        }
        wait_until("1000 lines", || sink.records.lock().unwrap().len() == 1000);
        assert!(sink.calls.load(Ordering::SeqCst) >= 10, "batches of 100");
        ctx.shutdown.trigger();
        running.join().unwrap();
        for i in 1000..1500 {
            writeln!(f, "line {i}").unwrap();
        }
        let (running, ctx) = start(sink.clone());
        wait_until("1500 lines", || sink.records.lock().unwrap().len() >= 1500);
        std::thread::sleep(Duration::from_millis(300));
        ctx.shutdown.trigger();
        let st = running.status.snapshot();
        running.join().unwrap();
        let got: Vec<String> = sink
            .records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.message.clone())
            .collect();
        let want: Vec<String> = (0..1500).map(|i| format!("line {i}")).collect();
        assert_eq!(got, want, "{watch}");
        assert_eq!(st.files.len(), 1);
        assert_eq!(
            st.files[0].offset,
            std::fs::metadata(logs.join("new.log")).unwrap().len()
        );
    }
}
