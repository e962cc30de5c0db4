//! The Docker source by the real server: the json-file logs of a data root laid out as
//! Docker lays it out, and the Engine API of a fake daemon on a unix socket; across the
//! json-file driver's rotations and restarts of logyard, nothing lost or stored twice.
//!
//! `tests/docker_daemon.rs` is the test of record against a real Docker daemon, in both
//! modes. The fake engine and fake data roots stay for what a real daemon cannot easily be
//! made to do: torn and hand-edited json-file lines, a broken `config.v2.json`, error frames
//! in a log stream, many lines of one nanosecond, a daemon that is not there yet.

mod util;

#[path = "docker/fake_engine.rs"]
mod fake_engine;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::Server;

use fake_engine::{Container, FakeEngine, Line};

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

fn messages(server: &Server, agent: &str) -> Vec<String> {
    server
        .all_of_agent(agent)
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn assert_exactly(stored: &[String], expected: &BTreeSet<String>) {
    let distinct: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(distinct.len(), stored.len(), "a line was stored twice");
    let missing: Vec<_> = expected.difference(&distinct).collect();
    let extra: Vec<_> = distinct.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
}

fn source<'a>(sources: &'a Value, name: &str) -> &'a Value {
    sources["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no source {name} in {sources}"))
}

fn docker_time() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

/// A container directory as Docker lays it out under `<data_root>/containers/<id>/`.
struct JsonFileContainer {
    dir: PathBuf,
    log: PathBuf,
    id: String,
}

impl JsonFileContainer {
    fn create(root: &Path, id_char: char, name: Option<&str>) -> JsonFileContainer {
        let id: String = std::iter::repeat_n(id_char, 64).collect();
        let dir = root.join("containers").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(name) = name {
            let config = serde_json::json!({
                "ID": id,
                "Name": format!("/{name}"),
                "Created": "2024-01-15T10:00:00.000000000Z",
                "Config": {
                    "Hostname": &id[..12],
                    "Image": format!("example/{name}:1.0"),
                    "Labels": {"com.example.team": "payments", "com.docker.compose.service": name},
                },
                "State": {"Running": true, "Pid": 4242},
                "LogPath": dir.join(format!("{id}-json.log")),
                "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}}},
            });
            std::fs::write(dir.join("config.v2.json"), config.to_string()).unwrap();
        }
        let log = dir.join(format!("{id}-json.log"));
        std::fs::File::create(&log).unwrap();
        JsonFileContainer { dir, log, id }
    }

    /// Appends raw lines to the live log file, as the json-file driver does.
    fn append_raw(&self, lines: &[String]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }

    /// Appends container lines, each wrapped as the driver wraps it.
    fn write(&self, stream: &str, texts: &[String]) {
        let lines: Vec<String> = texts
            .iter()
            .map(|t| {
                serde_json::json!({"log": format!("{t}\n"), "stream": stream, "time": docker_time()})
                    .to_string()
            })
            .collect();
        self.append_raw(&lines);
    }

    /// Rotates as the driver does with `max-file`: `.1` → `.2`, …, the log → `.1`, and a
    /// new empty log.
    fn rotate(&self) {
        for n in (1..5).rev() {
            let from = self.dir.join(format!("{}-json.log.{n}", self.id));
            if from.is_file() {
                let to = self.dir.join(format!("{}-json.log.{}", self.id, n + 1));
                std::fs::rename(from, to).unwrap();
            }
        }
        std::fs::rename(&self.log, self.dir.join(format!("{}-json.log.1", self.id))).unwrap();
        std::fs::File::create(&self.log).unwrap();
    }
}

fn orders(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!("{prefix} order {i:05} shipped"))
        .collect()
}

#[test]
fn files_mode_follows_containers_across_rotations_and_restarts_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docker");
    let web = JsonFileContainer::create(&root, 'a', Some("web-1"));
    let db = JsonFileContainer::create(&root, 'b', Some("db-1"));
    // Older lines in a rotated file: read first, as the container's log starts there.
    web.write("stdout", &orders("web", 0..20));
    web.rotate();
    web.write("stdout", &orders("web", 20..50));
    db.write("stdout", &orders("db", 0..10));
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"docker\"\nname = \"containers\"\nmode = \"files\"\n\
             data_root = \"{}\"\nexclude = [\"db-*\"]\nstart_at = \"beginning\"\n\
             poll_interval = \"200ms\"\nrotate_wait = \"1s\"\n",
            root.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start(&data, &args);
    let mut expected: BTreeSet<String> = orders("web", 0..50).into_iter().collect();
    wait_for("the first 50 lines", || {
        messages(&server, "web-1").len() >= 50
    });

    let entry = server.all_of_agent("web-1")[0].clone();
    assert_eq!(entry["source"], "docker:web-1", "{entry}");
    assert_eq!(entry["fields"]["container_id"], &web.id[..12], "{entry}");
    assert_eq!(entry["fields"]["container_name"], "web-1", "{entry}");
    assert_eq!(entry["fields"]["image"], "example/web-1:1.0", "{entry}");
    assert_eq!(entry["fields"]["stream"], "stdout", "{entry}");
    assert_eq!(
        entry["fields"]["label.com.example.team"], "payments",
        "{entry}"
    );

    // The driver's rotation, twice, while lines are written.
    web.write("stdout", &orders("web", 50..80));
    web.rotate();
    web.write("stderr", &orders("web", 80..120));
    web.rotate();
    web.write("stdout", &orders("web", 120..150));
    expected.extend(orders("web", 50..150));
    wait_for("150 lines", || messages(&server, "web-1").len() >= 150);

    // Written while logyard is down, a rotation included.
    server.stop();
    web.write("stdout", &orders("web", 150..170));
    web.rotate();
    web.write("stdout", &orders("web", 170..200));
    expected.extend(orders("web", 150..200));
    let server = Server::start(&data, &args);
    wait_for("200 lines", || messages(&server, "web-1").len() >= 200);
    std::thread::sleep(Duration::from_millis(1500));
    assert_exactly(&messages(&server, "web-1"), &expected);
    assert!(
        messages(&server, "db-1").is_empty(),
        "an excluded container was read"
    );

    // A container that appears later is read from its start; a removed one is dropped.
    let late = JsonFileContainer::create(&root, 'c', Some("web-2"));
    late.write("stdout", &orders("late", 0..3));
    late.rotate();
    late.write("stdout", &orders("late", 3..5));
    wait_for("the new container", || {
        messages(&server, "web-2").len() >= 5
    });
    std::thread::sleep(Duration::from_millis(500));
    let late_expected: BTreeSet<String> = orders("late", 0..5).into_iter().collect();
    assert_exactly(&messages(&server, "web-2"), &late_expected);
    let container_names = || -> Vec<String> {
        let (_, sources) = server.get("/api/sources");
        let src = source(&sources, "containers");
        assert_eq!(src["type"], "docker");
        assert_eq!(src["state"], "running", "{src}");
        src["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    wait_for("both containers in the status", || {
        let names = container_names();
        names.contains(&"web-1".to_string()) && names.contains(&"web-2".to_string())
    });
    std::fs::remove_dir_all(&late.dir).unwrap();
    wait_for("the removed container to be dropped", || {
        !container_names().contains(&"web-2".to_string())
    });
    assert_exactly(&messages(&server, "web-1"), &expected);
}

#[test]
fn files_mode_keeps_bad_lines_as_text_and_goes_on_without_config() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docker");
    let web = JsonFileContainer::create(&root, 'd', Some("api-1"));
    let nameless = JsonFileContainer::create(&root, 'e', None);
    let broken = JsonFileContainer::create(&root, 'f', Some("broken-1"));
    std::fs::write(
        broken.dir.join("config.v2.json"),
        "{\"Name\": \"/broken-1\", ",
    )
    .unwrap();
    let t = docker_time();
    web.append_raw(&[
        "this line is not json".to_string(),
        "{\"log\":\"cut in the midd".to_string(),
        format!("{{\"log\":\"a long line split \",\"stream\":\"stdout\",\"time\":\"{t}\"}}"),
        format!("{{\"log\":\"by the daemon\\n\",\"stream\":\"stdout\",\"time\":\"{t}\"}}"),
        format!(
            "{{\"log\":\"{{\\\"level\\\":\\\"error\\\",\\\"msg\\\":\\\"payment failed\\\",\\\"order\\\":7}}\\n\",\"stream\":\"stderr\",\"time\":\"{t}\"}}"
        ),
    ]);
    nameless.write("stdout", &["from a container without config".to_string()]);
    broken.write(
        "stdout",
        &["from a container with a broken config".to_string()],
    );
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"docker\"\nmode = \"files\"\ndata_root = \"{}\"\n\
             start_at = \"beginning\"\npoll_interval = \"200ms\"\n",
            root.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    wait_for("the lines of api-1", || {
        server.all_of_agent("api-1").len() >= 4
    });
    let entries = server.all_of_agent("api-1");
    let find = |m: &str| {
        entries
            .iter()
            .find(|e| e["message"].as_str().unwrap_or_default().contains(m))
            .unwrap_or_else(|| panic!("no entry with {m:?} in {entries:?}"))
            .clone()
    };
    let bad = find("this line is not json");
    assert_eq!(
        bad["fields"]["wrapper_error"], "not a Docker json-file line",
        "{bad}"
    );
    let cut = find("cut in the midd");
    assert_eq!(
        cut["fields"]["wrapper_error"], "not a Docker json-file line",
        "{cut}"
    );
    assert_eq!(
        find("a long line split")["message"],
        "a long line split by the daemon"
    );
    let json = find("payment failed");
    assert_eq!(json["level"], "ERROR", "{json}");
    assert_eq!(json["fields"]["order"], 7, "{json}");
    assert_eq!(json["fields"]["stream"], "stderr", "{json}");

    // Without a usable config.v2.json, a container is read under its short id.
    let short_e: String = std::iter::repeat_n('e', 12).collect();
    let short_f: String = std::iter::repeat_n('f', 12).collect();
    wait_for("the nameless containers", || {
        !server.all_of_agent(&short_e).is_empty() && !server.all_of_agent(&short_f).is_empty()
    });
    let mut src = Value::Null;
    wait_for("the problems of config.v2.json in the status", || {
        let (_, sources) = server.get("/api/sources");
        src = source(&sources, "docker").clone();
        let problems = src["containers"].as_array().unwrap().iter().filter(|c| {
            c["problem"]
                .as_str()
                .is_some_and(|p| p.contains("config.v2.json"))
        });
        problems.count() == 2
    });
    assert!(src["errors_total"].as_u64().unwrap() >= 2, "{src}");
    assert_eq!(src["state"], "running", "{src}");
}

fn api_config(dir: &Path, socket: &Path) -> PathBuf {
    let config = dir.join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"docker\"\nname = \"engine\"\nmode = \"api\"\nsocket = \"{}\"\n\
             containers = [\"api-*\"]\nstart_at = \"beginning\"\npoll_interval = \"200ms\"\n",
            socket.display()
        ),
    )
    .unwrap();
    config
}

fn lines(prefix: &str, range: std::ops::Range<usize>, ns: impl Fn(usize) -> i64) -> Vec<Line> {
    range
        .map(|i| Line {
            ns: ns(i),
            stream: if i % 3 == 0 { 2 } else { 1 },
            text: format!("{prefix} line {i:05} done"),
        })
        .collect()
}

fn texts(lines: &[Line]) -> BTreeSet<String> {
    lines.iter().map(|l| l.text.clone()).collect()
}

/// Every request is a GET of the list, an inspection or a log (or a ping or the version).
fn assert_read_only(requests: &[String]) {
    assert!(!requests.is_empty());
    for r in requests {
        let (method, target) = r.split_once(' ').unwrap();
        assert_eq!(method, "GET", "{r}");
        let path = target.split('?').next().unwrap();
        let path = match path.strip_prefix("/v") {
            Some(rest) => &rest[rest.find('/').unwrap()..],
            None => path,
        };
        let segments: Vec<&str> = path.split('/').collect();
        let allowed = matches!(
            segments.as_slice(),
            ["", "containers", "json"]
                | ["", "containers", _, "json"]
                | ["", "containers", _, "logs"]
                | ["", "_ping"]
                | ["", "version"]
        );
        assert!(allowed, "a request other than list, inspect or logs: {r}");
    }
}

#[test]
fn api_mode_reads_through_the_engine_api_exactly_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::default();
    let base = chrono::Utc::now().timestamp_nanos_opt().unwrap() - 60_000_000_000;
    let mut web = Container::new('1', "api-web");
    // Lines 10 to 14 share one instant: the position must tell them apart.
    let at = |i: usize| {
        base + if (10..15).contains(&i) {
            10_000
        } else {
            i as i64 * 1000
        }
    };
    web.lines = lines("web", 0..20, at);
    let mut tty = Container::new('2', "api-tty");
    tty.tty = true;
    tty.lines = lines("tty", 0..10, |i| base + i as i64 * 1000)
        .into_iter()
        .map(|l| Line { stream: 1, ..l })
        .collect();
    let mut other = Container::new('3', "other");
    other.lines = lines("other", 0..5, |i| base + i as i64);
    let mut old = Container::new('4', "api-old");
    old.running = false;
    old.lines = lines("old", 0..5, |i| base + i as i64);
    let mut expected_web = texts(&web.lines);
    let expected_tty = texts(&tty.lines);
    engine.add(web);
    engine.add(tty);
    engine.add(other);
    engine.add(old);
    let socket = engine.serve(&dir.path().join("docker.sock"));
    let config = api_config(dir.path(), &socket);
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];

    let server = Server::start(&data, &args);
    wait_for("the logs of api-web and api-tty", || {
        messages(&server, "api-web").len() >= 20 && messages(&server, "api-tty").len() >= 10
    });
    let entries = server.all_of_agent("api-web");
    let e = entries
        .iter()
        .find(|e| e["message"] == "web line 00003 done")
        .expect("line 3");
    assert_eq!(e["source"], "docker:api-web", "{e}");
    assert_eq!(e["fields"]["stream"], "stderr", "{e}");
    assert_eq!(e["fields"]["container_id"], "111111111111", "{e}");
    assert_eq!(e["fields"]["image"], "example/api-web:1.0", "{e}");
    assert_eq!(e["fields"]["label.com.example.team"], "payments", "{e}");
    assert_eq!(
        e["timestamp"],
        logyard_time(base + 3000),
        "the daemon's time of a line without one"
    );

    // Lines written while it runs, some at the instant of the last ones.
    let more = lines("web", 20..30, |i| {
        base + if i < 23 { 19_000 } else { i as i64 * 1000 }
    });
    expected_web.extend(texts(&more));
    engine.write("api-web", more);
    if !wait_until(|| messages(&server, "api-web").len() >= 30) {
        let got = messages(&server, "api-web");
        let (_, sources) = server.get("/api/sources");
        let log = server.stop();
        panic!(
            "30 lines: got {got:?}\n{sources}\n{log}\n{:?}",
            engine.requests()
        );
    }

    // Written while logyard is down: at the instant of the last delivered line, and later;
    // and a container that stops meanwhile is read to its end.
    server.stop();
    let down = lines("web", 30..40, |i| {
        base + if i < 33 { 29_000 } else { i as i64 * 1000 }
    });
    expected_web.extend(texts(&down));
    engine.write("api-web", down);
    engine.set_running("api-web", false);
    let server = Server::start(&data, &args);
    wait_for("40 lines", || messages(&server, "api-web").len() >= 40);
    std::thread::sleep(Duration::from_millis(1500));
    assert_exactly(&messages(&server, "api-web"), &expected_web);
    assert_exactly(&messages(&server, "api-tty"), &expected_tty);
    assert!(
        messages(&server, "other").is_empty(),
        "a container not in `containers` was read"
    );
    assert!(
        messages(&server, "api-old").is_empty(),
        "a container stopped before the first start was read"
    );

    // A container removed while followed: the source goes on.
    engine.remove("api-tty");
    let mut late = Container::new('5', "api-late");
    late.lines = lines("late", 0..3, |i| base + 100_000 + i as i64);
    engine.add(late);
    wait_for("a container started later", || {
        messages(&server, "api-late").len() >= 3
    });
    let (_, sources) = server.get("/api/sources");
    let src = source(&sources, "engine");
    assert_eq!(src["type"], "docker");
    assert_eq!(src["state"], "running", "{src}");
    let web = src["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api-web")
        .unwrap_or_else(|| panic!("{src}"));
    assert_eq!(web["id"], "111111111111", "{src}");
    assert_eq!(
        web["following"], false,
        "a stopped container read to its end: {src}"
    );
    assert_eq!(web["last_line_time"], logyard_time(base + 39_000), "{src}");
    server.stop();
    assert_read_only(&engine.requests());
    assert!(
        engine
            .requests()
            .iter()
            .any(|r| r.contains("/logs?") && r.contains("since=")),
        "{:?}",
        engine.requests()
    );
}

fn logyard_time(ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap();
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[test]
fn api_mode_without_a_daemon_reports_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let config = api_config(dir.path(), &socket);
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let mut src = Value::Null;
    wait_for("the source to report the missing socket", || {
        let (_, sources) = server.get("/api/sources");
        src = source(&sources, "engine").clone();
        src["state"] == "failing"
    });
    assert!(
        src["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("docker.sock"),
        "{src}"
    );
    let (_, metrics) = {
        let resp = util::client()
            .get(format!("{}/metrics", server.url))
            .send()
            .unwrap();
        (resp.status(), resp.text().unwrap())
    };
    assert!(
        metrics.contains("logyard_source_up{source=\"engine\",type=\"docker\"} 0"),
        "{metrics}"
    );

    // The daemon comes up: the source reads from it without a restart.
    let engine = FakeEngine::default();
    let mut web = Container::new('6', "api-web");
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    web.lines = lines("web", 0..5, |i| now + i as i64);
    engine.add(web);
    engine.serve(&socket);
    wait_for("the lines once the daemon answers", || {
        messages(&server, "api-web").len() >= 5
    });
    wait_for("the source to be running again", || {
        let (_, sources) = server.get("/api/sources");
        source(&sources, "engine")["state"] == "running"
    });
    assert_read_only(&engine.requests());
}

#[test]
fn api_mode_survives_an_error_frame_of_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::default();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let mut c = Container::new('7', "api-err");
    c.lines = vec![
        Line {
            ns: now,
            stream: 1,
            text: "before the error".into(),
        },
        Line {
            ns: now + 1,
            stream: 3,
            text: "error from daemon: log file is corrupt".into(),
        },
        Line {
            ns: now + 2,
            stream: 1,
            text: "after the error".into(),
        },
    ];
    engine.add(c);
    let socket = engine.serve(&dir.path().join("docker.sock"));
    let config = api_config(dir.path(), &socket);
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    wait_for("the line after the error frame", || {
        messages(&server, "api-err").len() >= 2
    });
    std::thread::sleep(Duration::from_millis(800));
    let expected: BTreeSet<String> = ["before the error", "after the error"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_exactly(&messages(&server, "api-err"), &expected);
    let (_, sources) = server.get("/api/sources");
    let src = source(&sources, "engine");
    assert_eq!(src["state"], "running", "{src}");
    assert!(
        src["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("log file is corrupt")),
        "{src}"
    );
    assert_read_only(&engine.requests());
}

#[test]
fn api_mode_start_at_end_reads_only_new_lines_of_the_containers_there_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::default();
    let old = chrono::Utc::now().timestamp_nanos_opt().unwrap() - 60_000_000_000;
    let mut up = Container::new('8', "api-up");
    up.lines = lines("up old", 0..5, |i| old + i as i64);
    let mut down = Container::new('9', "api-down");
    down.running = false;
    down.lines = lines("down old", 0..5, |i| old + i as i64);
    engine.add(up);
    engine.add(down);
    let socket = engine.serve(&dir.path().join("docker.sock"));
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"docker\"\nmode = \"api\"\nsocket = \"{}\"\npoll_interval = \"100ms\"\n",
            socket.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    wait_for("the source to follow api-up", || {
        let (_, sources) = server.get("/api/sources");
        source(&sources, "docker")["containers"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["name"] == "api-up" && c["following"] == true)
            })
    });
    let now = || chrono::Utc::now().timestamp_nanos_opt().unwrap();
    engine.write("api-up", lines("up new", 0..3, |i| now() + i as i64));
    engine.write("api-down", lines("down new", 0..2, |i| now() + i as i64));
    engine.set_running("api-down", true);
    let mut late = Container::new('0', "api-late");
    late.lines = lines("late", 0..2, |i| old + i as i64);
    engine.add(late);
    wait_for("the new lines", || {
        messages(&server, "api-up").len() >= 3
            && messages(&server, "api-down").len() >= 2
            && messages(&server, "api-late").len() >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let want = |prefix: &str, n: usize| -> BTreeSet<String> {
        (0..n)
            .map(|i| format!("{prefix} line {i:05} done"))
            .collect()
    };
    assert_exactly(&messages(&server, "api-up"), &want("up new", 3));
    assert_exactly(&messages(&server, "api-down"), &want("down new", 2));
    assert_exactly(&messages(&server, "api-late"), &want("late", 2));
}

#[test]
fn api_mode_follows_a_rename_and_stops_at_a_refused_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::default();
    let now = || chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let t0 = now();
    let mut kept = Container::new('a', "api-kept");
    kept.lines = lines("kept", 0..2, |i| t0 + i as i64);
    let mut dropped = Container::new('b', "api-dropped");
    dropped.lines = lines("dropped", 0..2, |i| t0 + i as i64);
    engine.add(kept);
    engine.add(dropped);
    let socket = engine.serve(&dir.path().join("docker.sock"));
    // `containers = ["api-*"]`: a name outside it is refused.
    let config = api_config(dir.path(), &socket);
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    wait_for("the first lines", || {
        messages(&server, "api-kept").len() >= 2 && messages(&server, "api-dropped").len() >= 2
    });
    engine.rename("api-kept", "api-renamed");
    engine.rename("api-dropped", "refused");
    wait_for("the new names in the status", || {
        let (_, sources) = server.get("/api/sources");
        let names: Vec<String> = source(&sources, "engine")["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect();
        names.contains(&"api-renamed".to_string())
            && !names.iter().any(|n| n == "api-dropped" || n == "refused")
    });
    engine.write("api-renamed", lines("kept", 2..4, |i| now() + i as i64));
    engine.write("refused", lines("dropped", 2..4, |i| now() + i as i64));
    wait_for("the lines after the rename", || {
        messages(&server, "api-renamed").len() >= 2
    });
    std::thread::sleep(Duration::from_millis(800));
    let want = |prefix: &str, r: std::ops::Range<usize>| -> BTreeSet<String> {
        r.map(|i| format!("{prefix} line {i:05} done")).collect()
    };
    assert_exactly(&messages(&server, "api-kept"), &want("kept", 0..2));
    assert_exactly(&messages(&server, "api-renamed"), &want("kept", 2..4));
    let e = &server.all_of_agent("api-renamed")[0];
    assert_eq!(e["source"], "docker:api-renamed", "{e}");
    assert_eq!(e["fields"]["container_name"], "api-renamed", "{e}");
    assert_exactly(&messages(&server, "api-dropped"), &want("dropped", 0..2));
    assert!(
        messages(&server, "refused").is_empty(),
        "a refused name was read"
    );
    // Its position is dropped with it.
    let cp =
        std::fs::read_to_string(dir.path().join("data/state/checkpoints/engine.api.json")).unwrap();
    assert!(!cp.contains(&"b".repeat(64)), "{cp}");
    assert!(cp.contains(&"a".repeat(64)), "{cp}");
    assert_read_only(&engine.requests());
}
