//! Tests of the Docker source's settings, container filter and `config.v2.json` reading,
//! and of the files mode driven through the real tailer on a temporary data root.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::container::{ContainerInfo, NameFilter};
use super::files::read_config;
use super::{DockerConfig, DockerMode, DockerSource};
use crate::file::StartAt;
use crate::{spawn, MemorySink, SourceConfig, SourceContext};

#[test]
fn settings_have_their_defaults_and_refuse_unknown_keys() {
    let c: SourceConfig = toml::from_str("type = \"docker\"").unwrap();
    let SourceConfig::Docker(d) = &c else {
        panic!("{c:?}")
    };
    assert_eq!(*d, DockerConfig::default());
    assert_eq!(d.mode, DockerMode::Auto);
    assert_eq!(d.data_root, std::path::Path::new("/var/lib/docker"));
    assert_eq!(d.socket, std::path::Path::new("/var/run/docker.sock"));
    assert_eq!(d.start_at, StartAt::End);
    assert_eq!(c.kind(), "docker");

    let c: SourceConfig = toml::from_str(
        "type = \"docker\"\nmode = \"api\"\ncontainers = [\"web-*\"]\nexclude = [\"web-debug\"]\n\
         labels = [\"com.example.*\"]\npoll_interval = \"250ms\"\nmax_line_bytes = \"64KiB\"",
    )
    .unwrap();
    let SourceConfig::Docker(d) = c else { panic!() };
    assert_eq!(d.mode, DockerMode::Api);
    assert_eq!(d.poll_interval, Duration::from_millis(250));
    assert_eq!(d.max_line_bytes, Some(64 << 10));

    let err = toml::from_str::<SourceConfig>("type = \"docker\"\ncontainer = [\"x\"]").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `container`"),
        "{err}"
    );
    let err = toml::from_str::<SourceConfig>("type = \"docker\"\nmode = \"socket\"").unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
}

#[test]
fn bad_globs_and_limits_are_refused_when_built() {
    let cfg = DockerConfig {
        containers: vec!["web-[".into()],
        ..DockerConfig::default()
    };
    let err = DockerSource::new("docker", cfg).err().unwrap().to_string();
    assert!(err.contains("`containers`"), "{err}");
    let cfg = DockerConfig {
        max_containers: 0,
        ..DockerConfig::default()
    };
    assert!(DockerSource::new("docker", cfg).is_err());
    for poll in [Duration::ZERO, Duration::from_secs(7200)] {
        let cfg = DockerConfig {
            poll_interval: poll,
            ..DockerConfig::default()
        };
        let err = DockerSource::new("docker", cfg).err().unwrap().to_string();
        assert!(err.contains("poll_interval"), "{err}");
    }
}

#[test]
fn the_filter_picks_containers_and_labels() {
    let f = NameFilter::new(
        &["web-*".into(), "api".into()],
        &["web-debug".into()],
        &["com.example.*".into()],
    )
    .unwrap();
    assert!(f.wants("web-1") && f.wants("api"));
    assert!(!f.wants("web-debug") && !f.wants("db") && !f.wants("api-2"));
    let all = NameFilter::new(&[], &["db*".into()], &["*".into()]).unwrap();
    assert!(all.wants("anything") && !all.wants("db-1"));

    let c = ContainerInfo {
        id: "0123456789abcdef0123".into(),
        name: "web-1".into(),
        image: "nginx:1.25".into(),
        labels: [
            ("com.example.team".to_string(), "payments".to_string()),
            (
                "org.opencontainers.image.version".to_string(),
                "1.25".to_string(),
            ),
        ]
        .into(),
    };
    let meta = f.meta(&c);
    assert_eq!(meta.source, "docker:web-1");
    assert_eq!(meta.agent, "web-1");
    let keys: Vec<&str> = meta.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "container_id",
            "container_name",
            "image",
            "label.com.example.team"
        ]
    );
    assert_eq!(meta.fields[0].1.to_string(), "0123456789ab");
}

#[test]
fn config_v2_json_gives_the_name_image_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.v2.json");
    std::fs::write(
        &p,
        r#"{"ID":"abc","Name":"/web-1","Config":{"Image":"nginx","Labels":{"a":"1","b":null}},"State":{}}"#,
    )
    .unwrap();
    let c = read_config(&p, "abc").unwrap();
    assert_eq!((c.name.as_str(), c.image.as_str()), ("web-1", "nginx"));
    assert_eq!(c.labels["a"], "1");
    assert_eq!(c.labels["b"], "");

    std::fs::write(&p, r#"{"Config":{}}"#).unwrap();
    assert!(read_config(&p, "abc")
        .unwrap_err()
        .contains("no container `Name`"));
    std::fs::write(&p, "{\"Name\":").unwrap();
    assert!(read_config(&p, "abc")
        .unwrap_err()
        .contains("not valid JSON"));
    std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
    assert!(read_config(&p, "abc").is_err());
    let missing = dir.path().join("nope.json");
    assert!(read_config(&missing, "abc")
        .unwrap_err()
        .contains("cannot read"));
}

fn wrapped(text: &str, stream: &str) -> String {
    serde_json::json!({"log": text, "stream": stream, "time": "2024-01-15T10:30:00.123456789Z"})
        .to_string()
}

#[test]
fn files_mode_reads_json_file_logs_and_keeps_the_data_root_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docker");
    let id = "9".repeat(64);
    let cdir = root.join("containers").join(&id);
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::write(
        cdir.join("config.v2.json"),
        r#"{"Name":"/billing","Config":{"Image":"billing:2","Labels":{"tier":"back"}}}"#,
    )
    .unwrap();
    let lines = [
        wrapped("2024-01-15 10:30:00 - ERROR - charge failed\n", "stderr"),
        wrapped("first half ", "stdout"),
        wrapped("second half\n", "stdout"),
        "garbage".to_string(),
    ];
    std::fs::write(cdir.join(format!("{id}-json.log")), lines.join("\n") + "\n").unwrap();
    let before = listing(&root);

    let cfg = DockerConfig {
        mode: DockerMode::Files,
        data_root: root.clone(),
        start_at: StartAt::Beginning,
        poll_interval: Duration::from_millis(50),
        ..DockerConfig::default()
    };
    let source = DockerSource::new("docker", cfg).unwrap();
    let sink = Arc::new(MemorySink::new());
    let ctx = SourceContext::new(sink.clone(), dir.path().join("state"), "host-1");
    let running = spawn(Box::new(source), ctx.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.records().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    ctx.shutdown.trigger();
    let status = running.status.clone();
    running.join().unwrap();
    let recs = sink.records();
    assert_eq!(recs.len(), 3, "{recs:?}");
    assert_eq!(recs[0].agent, "billing");
    assert_eq!(recs[0].source, "docker:billing");
    assert_eq!(recs[0].message, "charge failed");
    assert_eq!(recs[0].fields["stream"].to_string(), "stderr");
    assert_eq!(recs[0].fields["label.tier"].to_string(), "back");
    assert_eq!(recs[1].message, "first half second half");
    assert_eq!(recs[2].message, "garbage");
    assert_eq!(
        recs[2].fields["wrapper_error"].to_string(),
        "not a Docker json-file line"
    );
    let snap = status.snapshot();
    assert_eq!(snap.kind, "docker");
    assert_eq!(snap.containers.len(), 1);
    assert_eq!(snap.containers[0].name, "billing");
    assert_eq!(snap.containers[0].lines_total, 3);
    assert_eq!(listing(&root), before, "the data root was changed");
}

/// Every path under a folder with its size and modification time.
fn listing(root: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dirs.push(e.path());
            }
            out.push((
                e.path().display().to_string(),
                m.len(),
                m.modified().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn api_mode_without_a_socket_keeps_trying_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DockerConfig {
        mode: DockerMode::Api,
        socket: dir.path().join("absent.sock"),
        poll_interval: Duration::from_millis(50),
        ..DockerConfig::default()
    };
    let source = DockerSource::new("docker", cfg).unwrap();
    let sink = Arc::new(MemorySink::new());
    let ctx = SourceContext::new(sink, dir.path().join("state"), "host-1");
    let running = spawn(Box::new(source), ctx.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.status.snapshot().errors_total == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let snap = running.status.snapshot();
    assert_eq!(snap.state, crate::SourceState::Failing);
    assert_eq!(snap.errors_total, 1, "reported once, not at every try");
    assert!(snap.last_error.unwrap().contains("absent.sock"));
    assert!(!running.is_finished(), "the source stopped");
    ctx.shutdown.trigger();
    running.join().unwrap();
}

/// The crate's source files, with their paths relative to `src/`.
fn sources_of_the_crate() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(&root).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn only_the_engine_module_speaks_to_the_daemon_and_only_to_read() {
    let sources = sources_of_the_crate();
    assert!(sources.len() > 10);
    for (path, text) in &sources {
        if path != "docker/engine.rs" && path != "docker/tests.rs" {
            assert!(
                !text.contains("bollard"),
                "{path} uses the Docker client: only docker/engine.rs may"
            );
        }
    }
    let engine = &sources
        .iter()
        .find(|(p, _)| p == "docker/engine.rs")
        .expect("docker/engine.rs")
        .1;
    // Every call on the client is one of the three GET operations.
    let code: String = engine.split_whitespace().collect();
    let calls: Vec<&str> = code
        .split("self.docker.")
        .skip(1)
        .map(|rest| &rest[..rest.find(['(', ':']).unwrap_or(rest.len())])
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for call in calls {
        assert!(
            matches!(call, "list_containers" | "inspect_container" | "logs"),
            "docker/engine.rs calls `{call}` on the Docker client"
        );
    }
    assert_eq!(
        engine.matches("Docker::connect_with_unix").count(),
        1,
        "the client is made in one place"
    );
}

#[test]
fn files_mode_follows_renames_and_drops_a_container_the_filter_now_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docker");
    let id = "7".repeat(64);
    let cdir = root.join("containers").join(&id);
    std::fs::create_dir_all(&cdir).unwrap();
    let config = cdir.join("config.v2.json");
    std::fs::write(&config, r#"{"Name":"/web-1"}"#).unwrap();
    let log = cdir.join(format!("{id}-json.log"));
    std::fs::write(&log, wrapped("one\n", "stdout") + "\n").unwrap();
    let cfg = DockerConfig {
        mode: DockerMode::Files,
        data_root: root.clone(),
        exclude: vec!["db-*".into()],
        start_at: StartAt::Beginning,
        poll_interval: Duration::from_millis(30),
        ..DockerConfig::default()
    };
    let sink = Arc::new(MemorySink::new());
    let ctx = SourceContext::new(sink.clone(), dir.path().join("state"), "host-1");
    let running = spawn(
        Box::new(DockerSource::new("docker", cfg).unwrap()),
        ctx.clone(),
    );
    let wait = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.records().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait(1);
    std::fs::write(&config, r#"{"Name":"/web-renamed"}"#).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, (wrapped(text, "stdout") + "\n").as_bytes()).unwrap();
    };
    append("two\n");
    wait(2);
    std::fs::write(&config, r#"{"Name":"/db-1"}"#).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    append("three\n");
    std::thread::sleep(Duration::from_millis(300));
    ctx.shutdown.trigger();
    let status = running.status.clone();
    running.join().unwrap();
    let got: Vec<(String, String)> = sink
        .records()
        .iter()
        .map(|r| (r.agent.clone(), r.message.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("web-1".to_string(), "one".to_string()),
            ("web-renamed".to_string(), "two".to_string())
        ]
    );
    assert!(status.snapshot().containers.is_empty());
}

#[test]
fn files_mode_cuts_the_container_line_not_its_wrapper() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docker");
    let id = "5".repeat(64);
    let cdir = root.join("containers").join(&id);
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::write(cdir.join("config.v2.json"), r#"{"Name":"/long"}"#).unwrap();
    let long = format!("{}\n", "x".repeat(300));
    std::fs::write(
        cdir.join(format!("{id}-json.log")),
        wrapped(&long, "stdout") + "\n",
    )
    .unwrap();
    let cfg = DockerConfig {
        mode: DockerMode::Files,
        data_root: root,
        start_at: StartAt::Beginning,
        max_line_bytes: Some(64),
        poll_interval: Duration::from_millis(30),
        ..DockerConfig::default()
    };
    let sink = Arc::new(MemorySink::new());
    let ctx = SourceContext::new(sink.clone(), dir.path().join("state"), "host-1");
    let running = spawn(
        Box::new(DockerSource::new("docker", cfg).unwrap()),
        ctx.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.records().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    ctx.shutdown.trigger();
    running.join().unwrap();
    let recs = sink.records();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].message, "x".repeat(64));
    assert_eq!(recs[0].fields["truncated"].to_string(), "true");
    assert_eq!(recs[0].fields["stream"].to_string(), "stdout");
    assert!(!recs[0].fields.contains_key("wrapper_error"));
}
