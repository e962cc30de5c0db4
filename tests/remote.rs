//! Remote hosts over SSH, against a real OpenSSH server: `sshd` from Debian's
//! openssh-server, started on 127.0.0.1 with a temporary host key and authorized key, whose
//! sessions find on their PATH a `docker` that answers from files in Docker's own output
//! formats (tests/remote/docker.py; no Docker engine runs here). The client is the real
//! `logyard` binary: `logyard remote …` and `logyard serve` with a `[[sources]] type = "ssh"`.

mod util;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::Server;

const SSHD: &str = "/usr/sbin/sshd";

/// A running `sshd` and the files of its host.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "logyard-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) must be installed: bash .ci/test installs it");
    assert!(st.success());
}

impl Sshd {
    /// Starts sshd on a free port of 127.0.0.1, as the current user, with the fake docker.
    fn start() -> Sshd {
        assert!(
            Path::new(SSHD).is_file(),
            "{SSHD} is missing: install openssh-server (bash .ci/test does)"
        );
        // sshd started by root wants its privilege separation folder, which the Debian
        // package leaves to systemd to create.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let docker = bin.join("docker");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/remote/docker.py"),
            &docker,
        )
        .unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&docker)
            .status()
            .unwrap();
        let data = d.join("docker-data");
        std::fs::create_dir_all(data.join("containers")).unwrap();
        std::fs::create_dir_all(data.join("inspect")).unwrap();
        let port = free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\n\
                 AuthorizedKeysFile {0}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nPidFile none\n\
                 SetEnv PATH={1}:/usr/local/bin:/usr/bin:/bin\n",
                d.display(),
                bin.display()
            ),
        )
        .unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd");
        let s = Sshd { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                std::fs::read_to_string(s.path("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The host key, as `ssh-keyscan` would write it.
        let key = std::fs::read_to_string(s.path("host_key.pub")).unwrap();
        std::fs::write(
            s.path("known_hosts"),
            format!("[127.0.0.1]:{port} {}", key.trim()),
        )
        .unwrap();
        s.write_fixtures();
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Three containers: web-app and worker running, old-db exited.
    fn write_fixtures(&self) {
        let ps = [
            json!({"Command":"\"/docker-entrypoint.…\"","CreatedAt":"2024-01-15 08:00:00 +0000 UTC","ID":"4f2a9c1be7d3","Image":"nginx:1.25","Labels":"","LocalVolumes":"0","Mounts":"","Names":"web-app","Networks":"bridge","Ports":"0.0.0.0:8080->80/tcp","RunningFor":"2 hours ago","Size":"0B","State":"running","Status":"Up 2 hours"}),
            json!({"Command":"\"python worker.py\"","CreatedAt":"2024-01-15 08:00:00 +0000 UTC","ID":"7b8e2d4a9f01","Image":"acme/worker:3.1","Labels":"","LocalVolumes":"0","Mounts":"","Names":"worker","Networks":"bridge","Ports":"","RunningFor":"2 hours ago","Size":"0B","State":"running","Status":"Up 2 hours (unhealthy)"}),
            json!({"Command":"\"docker-entrypoint.s…\"","CreatedAt":"2024-01-14 08:00:00 +0000 UTC","ID":"c3d4e5f60718","Image":"postgres:16","Labels":"","LocalVolumes":"1","Mounts":"pgdata","Names":"old-db","Networks":"bridge","Ports":"","RunningFor":"26 hours ago","Size":"0B","State":"exited","Status":"Exited (0) 3 hours ago"}),
        ];
        let lines: Vec<String> = ps.iter().map(Value::to_string).collect();
        std::fs::write(self.path("docker-data/ps.jsonl"), lines.join("\n") + "\n").unwrap();
        let stats = [
            json!({"BlockIO":"4.1MB / 0B","CPUPerc":"0.12%","Container":"4f2a9c1be7d3","ID":"4f2a9c1be7d3","MemPerc":"0.35%","MemUsage":"27.6MiB / 7.7GiB","Name":"web-app","NetIO":"1.2MB / 3.4MB","PIDs":"5"}),
            json!({"BlockIO":"0B / 0B","CPUPerc":"97.40%","Container":"7b8e2d4a9f01","ID":"7b8e2d4a9f01","MemPerc":"12.80%","MemUsage":"1012MiB / 7.7GiB","Name":"worker","NetIO":"5kB / 1kB","PIDs":"17"}),
        ];
        let lines: Vec<String> = stats.iter().map(Value::to_string).collect();
        std::fs::write(
            self.path("docker-data/stats.jsonl"),
            lines.join("\n") + "\n",
        )
        .unwrap();
        for (name, status, health, restarts) in [
            ("web-app", "running", "healthy", 0),
            ("worker", "running", "unhealthy", 4),
        ] {
            let inspect = json!({
                "Id": format!("{name}-id"), "Name": format!("/{name}"), "RestartCount": restarts,
                "State": {"Status": status, "Running": true, "Paused": false, "Restarting": false,
                          "OOMKilled": false, "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
                          "StartedAt": "2024-01-15T08:00:01.123456789Z", "FinishedAt": "0001-01-01T00:00:00Z",
                          "Health": {"Status": health, "FailingStreak": if health == "healthy" {0} else {3}, "Log": []}},
                "Config": {"Image": "x"}
            });
            std::fs::write(
                self.path(&format!("docker-data/inspect/{name}.json")),
                inspect.to_string(),
            )
            .unwrap();
        }
        let now = chrono::Utc::now();
        let ago = |mins: i64| now - chrono::Duration::minutes(mins);
        self.log("web-app", "stdout", ago(30), "GET /health 200 in 3ms");
        self.log(
            "web-app",
            "stderr",
            ago(20),
            "ERROR payment gateway timeout order=A-17",
        );
        self.log(
            "web-app",
            "stdout",
            ago(10),
            "{\"level\":\"info\",\"msg\":\"cache warmed\",\"keys\":1200}",
        );
        self.log("worker", "stdout", ago(40), "INFO - job 41 done");
        self.log(
            "worker",
            "stderr",
            ago(5),
            "CRITICAL - out of memory in job 42",
        );
        self.log(
            "old-db",
            "stdout",
            ago(200),
            "LOG:  database system is shut down",
        );
        // Five hours old: outside `logs 1`, inside `save 24`.
        self.log("worker", "stdout", ago(300), "INFO - worker started");
    }

    /// Appends a line to a container's json-file log, stamped `t`.
    fn log(&self, name: &str, stream: &str, t: chrono::DateTime<chrono::Utc>, line: &str) {
        let entry = json!({
            "log": format!("{line}\n"),
            "stream": stream,
            "time": t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        });
        let path = self.path(&format!("docker-data/containers/{name}.log"));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{entry}").unwrap();
    }

    /// The docker calls the host received, as argument lists.
    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.path("docker-data/calls.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The `[[sources]]` entry of this host.
    fn source(&self, extra: &str) -> String {
        format!(
            "[[sources]]\ntype = \"ssh\"\nname = \"prod\"\nhost = \"127.0.0.1\"\nhost_name = \"prod-1\"\n\
             port = {}\nuser = \"{}\"\nidentity_file = \"{}\"\nknown_hosts_file = \"{}\"\n\
             connect_timeout = \"5s\"\ncommand_timeout = \"20s\"\n{extra}\n",
            self.port,
            whoami(),
            self.path("client_key").display(),
            self.path("known_hosts").display(),
        )
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A folder with a logyard.toml and a data directory.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new(config: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("logyard.toml"), config).unwrap();
        Workdir { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `logyard remote ARGS` with this folder's configuration and data directory.
    fn remote(&self, args: &[&str]) -> Output {
        let data = self.data();
        let mut all = vec!["remote", "--data", data.to_str().unwrap()];
        all.extend_from_slice(args);
        util::run(self.dir.path(), &all)
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.data().join("remote-audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every stored record's message, through `logyard query --data`.
    fn stored(&self) -> Vec<Value> {
        let data = self.data();
        let out = util::run(
            self.dir.path(),
            &[
                "query",
                "*",
                "--data",
                data.to_str().unwrap(),
                "--ndjson",
                "--limit",
                "100000",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: Output) -> String {
    let (out, err) = text(&o);
    assert!(o.status.success(), "failed: {err}\n{out}");
    out
}

#[test]
fn remote_commands_read_status_logs_errors_one_container_and_health() {
    let sshd = Sshd::start();
    let w = Workdir::new(&sshd.source(""));

    let status = ok(w.remote(&["status"]));
    assert!(
        status.contains("prod-1") && status.contains("reachable, 3 containers, 2 running"),
        "{status}"
    );
    let table: Vec<&str> = status.lines().skip(1).collect();
    assert!(
        table[0].starts_with("NAME     IMAGE            STATE    STATUS"),
        "{status}"
    );
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("old-db   postgres:16      exited   Exited (0) 3 hours ago")),
        "{status}"
    );

    let logs = ok(w.remote(&["logs"]));
    assert!(logs.contains("GET /health 200"), "{logs}");
    assert!(
        logs.contains("payment gateway timeout"),
        "stderr lines are read too: {logs}"
    );
    assert!(logs.contains("cache warmed"), "{logs}");
    assert!(logs.contains("out of memory in job 42"), "{logs}");
    assert!(!logs.contains("worker started"), "older than 1h: {logs}");
    assert!(
        !logs.contains("database system"),
        "old-db is not running: {logs}"
    );
    // Oldest first.
    assert!(logs.find("job 41 done").unwrap() < logs.find("GET /health").unwrap());
    assert!(ok(w.remote(&["logs", "6"])).contains("worker started"));

    let errors = ok(w.remote(&["errors"]));
    assert!(
        errors.contains("payment gateway timeout") && errors.contains("ERROR"),
        "{errors}"
    );
    assert!(
        errors.contains("out of memory") && errors.contains("CRITICAL"),
        "{errors}"
    );
    assert!(!errors.contains("GET /health"), "{errors}");
    assert!(
        errors.contains("2 errors in the last 1h on prod-1: web-app 1, worker 1"),
        "{errors}"
    );

    let one = ok(w.remote(&["container", "worker", "2"]));
    assert!(
        one.contains("job 41 done") && !one.contains("GET /health"),
        "{one}"
    );
    let missing = w.remote(&["container", "nope"]);
    let (_, err) = text(&missing);
    assert!(!missing.status.success());
    assert!(err.contains("No such container: nope"), "{err}");

    let health = ok(w.remote(&["health"]));
    let first = health.lines().next().unwrap();
    assert!(
        first.starts_with("NAME     STATE    HEALTH     RESTARTS  CPU     MEMORY"),
        "{health}"
    );
    assert!(
        health.contains("worker   running  unhealthy  4         97.40%  1012MiB / 7.7GiB"),
        "{health}"
    );
    assert!(health.contains("needs attention: worker"), "{health}");

    // Every command run is audited with its exit status and size.
    let audit = w.audit();
    assert!(audit.len() >= 10, "{audit:?}");
    let ps = audit
        .iter()
        .find(|e| e["command"].as_str().unwrap().starts_with("docker ps"))
        .unwrap();
    assert_eq!(ps["host"], "127.0.0.1");
    assert_eq!(ps["port"], sshd.port);
    assert_eq!(ps["user"], whoami());
    assert_eq!(ps["sent"], true);
    assert_eq!(ps["exit_status"], 0);
    assert!(ps["bytes_out"].as_u64().unwrap() > 300);
    assert!(ps["duration_ms"].is_u64());
    assert!(ps["time"].as_str().unwrap().ends_with('Z'));
    let failed = audit
        .iter()
        .find(|e| {
            e["command"]
                .as_str()
                .unwrap()
                .contains("logs --timestamps --since")
                && e["command"].as_str().unwrap().contains(" nope ")
        })
        .expect("the failed docker logs is audited");
    assert_eq!(failed["exit_status"], 1);
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("No such container"));
}

#[test]
fn refused_commands_never_reach_the_host() {
    let sshd = Sshd::start();
    let w = Workdir::new(&sshd.source("paths = [\"/var/log/app.log\"]"));
    for args in [
        vec!["run", "docker", "rm", "-f", "web-app"],
        vec!["run", "docker", "exec", "web-app", "sh"],
        vec!["run", "docker", "logs", "-f", "web-app"],
        vec!["run", "cat", "/etc/shadow"],
        vec!["run", "sh", "-c", "id"],
        vec!["container", "web-app;id"],
        vec!["container", "$(id)"],
    ] {
        let o = w.remote(&args);
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{args:?} ran");
        assert!(
            err.contains("refused") && err.contains("nothing was sent"),
            "{args:?}: {err}"
        );
    }
    assert!(
        sshd.calls().is_empty(),
        "a refused command reached the host: {:?}",
        sshd.calls()
    );
    let audit = w.audit();
    assert_eq!(audit.len(), 7, "{audit:?}");
    for e in &audit {
        assert_eq!(e["sent"], false, "{e}");
        assert_eq!(e["exit_status"], Value::Null);
        assert!(e["error"].as_str().unwrap().contains("refused"));
    }
    assert!(audit[0]["command"]
        .as_str()
        .unwrap()
        .contains("docker rm -f web-app"));
    // A refused operation is audited as it was asked for, quoted, never as it would run.
    assert!(
        audit[5]["command"]
            .as_str()
            .unwrap()
            .contains("'web-app;id'"),
        "{}",
        audit[5]
    );

    // An allowed command typed by hand runs, and is the only call the host saw.
    let out = ok(w.remote(&["run", "docker", "logs", "--tail", "1", "web-app"]));
    assert!(out.contains("cache warmed"), "{out}");
    assert_eq!(sshd.calls(), vec![vec!["logs", "--tail", "1", "web-app"]]);
}

#[test]
fn save_stores_each_line_once_across_runs_and_a_dropped_connection() {
    let sshd = Sshd::start();
    let app_log = sshd.path("app.log");
    let stamp = || chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    std::fs::write(
        &app_log,
        format!(
            "{} - INFO - billing - invoice 1 sent\n{} - ERROR - billing - invoice 2 failed\n",
            stamp(),
            stamp()
        ),
    )
    .unwrap();
    let w = Workdir::new(&sshd.source(&format!("paths = [\"{}\"]", app_log.display())));

    let first = ok(w.remote(&["save", "24"]));
    assert!(
        first.contains("saved 8 records from 2 containers and 1 files of prod-1"),
        "{first}"
    );
    let stored = w.stored();
    assert_eq!(stored.len(), 8);
    let web: Vec<&Value> = stored
        .iter()
        .filter(|r| r["source"] == "ssh:prod-1/web-app")
        .collect();
    assert_eq!(web.len(), 3);
    assert!(web.iter().all(|r| r["agent"] == "web-app"), "{web:?}");
    assert!(web.iter().all(|r| r["host"] == "prod-1"));
    let file: Vec<&Value> = stored
        .iter()
        .filter(|r| r["source"].as_str().unwrap().starts_with("ssh:prod-1:/"))
        .collect();
    assert_eq!(file.len(), 2);
    assert_eq!(
        file.iter().find(|r| r["level"] == "ERROR").unwrap()["agent"],
        "billing"
    );

    // A second run finds nothing new: the boundary lines are skipped.
    let again = ok(w.remote(&["save", "24"]));
    assert!(again.contains("saved 0 records"), "{again}");
    assert_eq!(w.stored().len(), 8);

    // New lines, a truncated file, and a connection dropped after the first new line.
    let now = chrono::Utc::now();
    for i in 0..3 {
        sshd.log(
            "web-app",
            "stdout",
            now + chrono::Duration::milliseconds(i),
            &format!("INFO - request {i} served"),
        );
    }
    std::fs::write(
        &app_log,
        format!("{} - WARNING - billing - rotated file line\n", stamp()),
    )
    .unwrap();
    std::fs::write(sshd.path("docker-data/break-web-app"), "").unwrap();
    let broken = w.remote(&["save", "24"]);
    let (_, err) = text(&broken);
    assert!(
        !broken.status.success(),
        "the dropped connection is an error"
    );
    assert!(
        err.contains("SSH connection") || err.contains("closed"),
        "{err}"
    );
    let after_break = w.stored().len();
    assert!(after_break >= 9, "the line before the break is kept");
    let last = ok(w.remote(&["save", "24"]));
    assert!(last.contains("saved"), "{last}");
    let stored = w.stored();
    let messages: Vec<String> = stored
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect();
    let distinct: BTreeSet<&String> = messages.iter().collect();
    assert_eq!(
        distinct.len(),
        messages.len(),
        "a line was stored twice: {messages:?}"
    );
    assert_eq!(messages.len(), 12, "{messages:?}");
    assert!(
        messages.iter().any(|m| m == "rotated file line"),
        "{messages:?}"
    );
    for i in 0..3 {
        assert!(
            messages
                .iter()
                .any(|m| m.contains(&format!("request {i} served"))),
            "{messages:?}"
        );
    }
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ssh_status(server: &Server) -> Value {
    let (_, sources) = server.get("/api/sources");
    sources
        .as_array()
        .or_else(|| sources["sources"].as_array())
        .expect("a list of sources")
        .iter()
        .find(|s| s["type"] == "ssh")
        .cloned()
        .expect("the ssh source is listed")
}

fn messages_of(server: &Server, agent: &str) -> Vec<String> {
    server
        .all_of_agent(agent)
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_ssh_source_collects_periodically_without_duplicates_across_restarts() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("logyard.toml"),
        sshd.source("containers = [\"web-*\"]\ninterval = \"300ms\"\nstart_at = \"beginning\""),
    )
    .unwrap();
    let server = Server::start(&data, &[]);
    wait_for("the first poll", 30, || {
        messages_of(&server, "web-app").len() == 3
    });
    let status = ssh_status(&server);
    assert_eq!(status["name"], "prod");
    assert_eq!(status["state"], "running");
    assert_eq!(status["remote"]["reachable"], true);
    assert_eq!(status["remote"]["containers"], json!(["web-app"]));

    let t0 = chrono::Utc::now();
    for i in 0..5 {
        sshd.log(
            "web-app",
            "stdout",
            t0 + chrono::Duration::microseconds(i),
            &format!("INFO - live line {i}"),
        );
    }
    wait_for("the next polls", 30, || {
        messages_of(&server, "web-app").len() == 8
    });
    let polls = sshd.calls().iter().filter(|c| c[0] == "logs").count();
    wait_for("two more polls", 30, || {
        sshd.calls().iter().filter(|c| c[0] == "logs").count() >= polls + 2
    });
    assert_eq!(
        messages_of(&server, "web-app").len(),
        8,
        "polls repeat nothing"
    );
    let metrics = util::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("logyard_source_remote_reachable{source=\"prod\",type=\"ssh\"} 1"),
        "{metrics}"
    );
    server.stop();

    // Lines written while logyard is stopped arrive once after its restart.
    let t1 = chrono::Utc::now();
    for i in 0..3 {
        sshd.log(
            "web-app",
            "stderr",
            t1 + chrono::Duration::microseconds(i),
            &format!("ERROR - while stopped {i}"),
        );
    }
    let server = Server::start(&data, &[]);
    wait_for("the lines written while stopped", 30, || {
        messages_of(&server, "web-app").len() == 11
    });
    std::thread::sleep(Duration::from_millis(1200));
    let all = messages_of(&server, "web-app");
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 11, "{all:?}");
    assert_eq!(distinct.len(), 11, "a line was stored twice: {all:?}");
    assert!(
        messages_of(&server, "worker").is_empty(),
        "worker is not selected"
    );

    // The host drops the connection in the middle of an output: reported, and the next
    // poll goes on after the lines that came before the drop.
    std::fs::write(sshd.path("docker-data/break-web-app"), "").unwrap();
    let t2 = chrono::Utc::now();
    for i in 0..4 {
        sshd.log(
            "web-app",
            "stdout",
            t2 + chrono::Duration::microseconds(i),
            &format!("INFO - around the drop {i}"),
        );
    }
    wait_for("the lines around the drop", 30, || {
        messages_of(&server, "web-app").len() == 15
    });
    let status = ssh_status(&server);
    assert!(
        status["remote"]["polls_failed"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("SSH connection"),
        "{status}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let all = messages_of(&server, "web-app");
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 15, "{all:?}");
    assert_eq!(distinct.len(), 15, "a line was stored twice: {all:?}");
    assert_eq!(ssh_status(&server)["remote"]["reachable"], true);
    let log = server.stop();
    assert!(log.contains("remote poll failed"), "{log}");
    assert!(log.contains("reachable again"), "{log}");
}

#[test]
fn with_control_persist_the_commands_share_one_login() {
    let sshd = Sshd::start();
    let control = sshd.path("ctl");
    let w = Workdir::new(&sshd.source(&format!(
        "control_persist = \"10s\"\ncontrol_dir = \"{}\"",
        control.display()
    )));
    let logins = || {
        std::fs::read_to_string(sshd.path("sshd.log"))
            .unwrap()
            .matches("Accepted publickey")
            .count()
    };
    ok(w.remote(&["status"]));
    ok(w.remote(&["logs"]));
    ok(w.remote(&["health"]));
    assert!(sshd.calls().len() >= 6, "{:?}", sshd.calls());
    assert_eq!(logins(), 1, "one login for every command");
    let dir = std::fs::metadata(&control).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&dir.permissions()) & 0o777,
        0o700
    );
    // Host keys are still checked: a new connection to an unknown key is refused.
    let other = Workdir::new(
        &sshd
            .source(&format!(
                "control_persist = \"10s\"\ncontrol_dir = \"{}\"",
                sshd.path("ctl2").display()
            ))
            .replace(&sshd.path("known_hosts").display().to_string(), "/dev/null"),
    );
    let (_, err) = text(&other.remote(&["status"]));
    assert!(err.contains("is not in /dev/null"), "{err}");
}

#[test]
fn a_command_that_hangs_is_stopped_at_its_timeout() {
    let sshd = Sshd::start();
    std::fs::write(sshd.path("docker-data/hang-web-app"), "").unwrap();
    let w = Workdir::new(&sshd.source(""));
    let started = Instant::now();
    let o = w.remote(&[
        "container",
        "web-app",
        "--connect-timeout",
        "2s",
        "--command-timeout",
        "1s",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("did not end within 3s") && err.contains("was stopped"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let audit = w.audit();
    assert_eq!(audit[0]["exit_status"], Value::Null);
    assert!(audit[0]["duration_ms"].as_u64().unwrap() >= 3000);
}

#[test]
fn an_unknown_host_key_is_refused_with_what_to_do() {
    let sshd = Sshd::start();
    std::fs::write(sshd.path("known_hosts"), "").unwrap();
    let w = Workdir::new(&sshd.source(""));
    let o = w.remote(&["status"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("is not in") && err.contains("ssh-keyscan -p"),
        "{err}"
    );
    assert!(
        sshd.calls().is_empty(),
        "nothing ran on a host whose key is unknown"
    );
    let audit = w.audit();
    assert_eq!(audit[0]["exit_status"], 255);
    assert!(audit[0]["error"].as_str().unwrap().contains("host key"));

    // A key that changed is told apart.
    let other = sshd.path("other_key");
    keygen(&other);
    let key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    std::fs::write(
        sshd.path("known_hosts"),
        format!("[127.0.0.1]:{} {}", sshd.port, key.trim()),
    )
    .unwrap();
    let (_, err) = text(&w.remote(&["status"]));
    assert!(err.contains("does NOT match"), "{err}");
}

#[test]
fn a_port_that_never_answers_times_out_and_the_source_keeps_going() {
    // Accepts connections (the kernel does) and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = util::run(
        dir.path(),
        &[
            "remote",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--connect-timeout",
            "1s",
            "--known-hosts",
            "/dev/null",
            "--data",
            dir.path().join("data").to_str().unwrap(),
            "status",
        ],
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("no SSH answer") && err.contains("connect_timeout"),
        "{err}"
    );

    let data = dir.path().join("srv");
    std::fs::write(
        dir.path().join("logyard.toml"),
        format!(
            "[[sources]]\ntype = \"ssh\"\nname = \"silent\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             known_hosts_file = \"/dev/null\"\ninterval = \"200ms\"\nconnect_timeout = \"1s\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(&data, &[]);
    wait_for("two failed polls", 30, || {
        ssh_status(&server)["remote"]["polls_failed"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    });
    let s = ssh_status(&server);
    assert_eq!(s["state"], "failing");
    assert_eq!(s["remote"]["reachable"], false);
    assert!(
        s["last_error"].as_str().unwrap().contains("no SSH answer"),
        "{s}"
    );
    let metrics = util::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("logyard_source_remote_reachable{source=\"silent\",type=\"ssh\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logyard_source_up{source=\"silent\",type=\"ssh\"} 0"),
        "{metrics}"
    );
    let log = server.stop();
    assert!(log.contains("remote poll failed"), "{log}");
    drop(silent);
}

/// Reads a JSON file written by `save --out`.
fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Parses an RFC 3339 time of a document.
fn time_of(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {v}"))
        .with_timezone(&chrono::Utc)
}

#[test]
fn save_out_writes_one_json_document_of_the_last_hour() {
    let sshd = Sshd::start();
    let app_log = sshd.path("app.log");
    let now = chrono::Utc::now();
    std::fs::write(
        &app_log,
        format!(
            "{} - ERROR - billing - invoice 2 failed\n",
            now.format("%Y-%m-%d %H:%M:%S")
        ),
    )
    .unwrap();
    let w = Workdir::new(&sshd.source(&format!("paths = [\"{}\"]", app_log.display())));
    let out = w.dir.path().join("reports").join("prod-1.json");
    std::fs::create_dir(out.parent().unwrap()).unwrap();

    // No HOURS: the last hour. worker's "worker started" is five hours old.
    let said = ok(w.remote(&["save", "--out", out.to_str().unwrap()]));
    assert!(
        said.contains("saved 6 records from 2 containers and 1 files of prod-1"),
        "{said}"
    );
    assert!(said.contains(out.to_str().unwrap()), "says where: {said}");
    let doc = read_json(&out);
    assert_eq!(doc["host"], "prod-1", "{doc:#}");
    let collected = time_of(&doc["collected_at"]);
    let since = time_of(&doc["since"]);
    let until = time_of(&doc["until"]);
    assert!(collected >= now - chrono::Duration::seconds(5), "{doc:#}");
    let window = until - since;
    assert!(
        (window - chrono::Duration::hours(1)).num_seconds().abs() <= 5,
        "the default window is an hour: {doc:#}"
    );

    let containers = doc["containers"].as_array().expect("containers");
    let names: BTreeSet<&str> = containers
        .iter()
        .map(|c| c["container"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["web-app", "worker"]), "{doc:#}");
    for c in containers {
        assert_eq!(c["host"], "prod-1", "{c:#}");
        assert_eq!(c["collection_source"], "ssh:docker logs", "{c:#}");
        let lines = c["lines"].as_array().unwrap();
        let first = time_of(&c["first"]);
        let last = time_of(&c["last"]);
        assert_eq!(first, time_of(&lines[0]["timestamp"]), "{c:#}");
        assert_eq!(last, time_of(&lines[lines.len() - 1]["timestamp"]), "{c:#}");
        assert!(first >= since && last <= until, "{c:#}");
        for l in lines {
            assert!(
                l["message"].is_string() && l["timestamp"].is_string(),
                "{l}"
            );
        }
    }
    let messages = |name: &str| -> Vec<String> {
        containers.iter().find(|c| c["container"] == name).unwrap()["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_string())
            .collect()
    };
    let web = messages("web-app");
    assert_eq!(web.len(), 3, "{web:?}");
    assert!(web[0].contains("GET /health"), "oldest first: {web:?}");
    assert!(web[2].contains("cache warmed"), "{web:?}");
    let worker = messages("worker");
    assert_eq!(worker.len(), 2, "{worker:?}");
    assert!(
        !worker.iter().any(|m| m.contains("worker started")),
        "older than an hour: {worker:?}"
    );
    let web_error = &containers
        .iter()
        .find(|c| c["container"] == "web-app")
        .unwrap()["lines"]
        .as_array()
        .unwrap()[1];
    assert_eq!(web_error["level"], "ERROR", "{web_error}");

    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{doc:#}");
    assert_eq!(files[0]["path"], app_log.to_str().unwrap());
    assert_eq!(files[0]["collection_source"], "ssh:tail");
    assert_eq!(files[0]["lines"][0]["level"], "ERROR");

    // Written whole: nothing else is left in the folder.
    let left: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    // The store holds what the document holds.
    assert_eq!(w.stored().len(), 6);

    // A folder that does not exist: refused with what to do, before the host is asked.
    let calls = sshd.calls().len();
    let bad = w.remote(&["save", "--out", "/nonexistent-dir/x.json"]);
    let (_, err) = text(&bad);
    assert!(!bad.status.success());
    assert!(
        err.contains("/nonexistent-dir") && err.contains("create it"),
        "{err}"
    );
    assert_eq!(sshd.calls().len(), calls, "{err}");
}

#[test]
fn errors_json_counts_levels_and_patterns_of_the_last_hour() {
    let sshd = Sshd::start();
    let now = chrono::Utc::now();
    let ago = |mins: i64| now - chrono::Duration::minutes(mins);
    sshd.log(
        "web-app",
        "stderr",
        ago(15),
        "ERROR payment gateway timeout order=A-18",
    );
    // Two hours old: outside the default hour.
    sshd.log(
        "web-app",
        "stderr",
        ago(120),
        "ERROR payment gateway timeout order=A-01",
    );
    let w = Workdir::new(&sshd.source(""));

    let doc: Value = serde_json::from_str(&ok(w.remote(&["errors", "--json"]))).unwrap();
    assert_eq!(doc["host"], "prod-1", "{doc:#}");
    assert_eq!(doc["hours"], 1, "{doc:#}");
    assert_eq!(doc["total_errors"], 3, "{doc:#}");
    let window = time_of(&doc["until"]) - time_of(&doc["since"]);
    assert_eq!(window.num_minutes(), 60, "{doc:#}");
    let containers = doc["containers"].as_array().unwrap();
    let of = |name: &str| containers.iter().find(|c| c["container"] == name).unwrap();

    let web = of("web-app");
    assert_eq!(web["host"], "prod-1");
    assert_eq!(web["lines"], 4, "{web:#}");
    assert_eq!(web["errors"], 2, "{web:#}");
    assert_eq!(web["levels"]["ERROR"], 2, "{web:#}");
    assert_eq!(web["levels"]["INFO"], 1, "{web:#}");
    let top = &web["top_errors"][0];
    assert_eq!(top["count"], 2, "{web:#}");
    assert!(
        top["pattern"]
            .as_str()
            .unwrap()
            .contains("payment gateway timeout order=A-<num>"),
        "{web:#}"
    );
    assert_eq!(time_of(&top["first"]), time_of(&web["first_error"]));
    let first_error = time_of(&web["first_error"]);
    assert!(
        (first_error - ago(20)).num_seconds().abs() <= 1,
        "the oldest error of the hour: {web:#}"
    );
    assert!(time_of(&web["first"]) <= first_error && time_of(&web["last"]) >= first_error);

    let worker = of("worker");
    assert_eq!(worker["errors"], 1, "{worker:#}");
    assert_eq!(worker["levels"]["CRITICAL"], 1, "{worker:#}");
    assert_eq!(
        worker["levels"]["INFO"], 1,
        "worker started is 5 h old: {worker:#}"
    );
    assert!(worker["top_errors"][0]["pattern"]
        .as_str()
        .unwrap()
        .contains("out of memory in job <num>"));

    // HOURS still widens the window; the text form says the same counts.
    let wide: Value = serde_json::from_str(&ok(w.remote(&["errors", "3", "--json"]))).unwrap();
    assert_eq!(wide["total_errors"], 4, "{wide:#}");
    assert_eq!(wide["hours"], 3);
    // The largest HOURS is "everything", not an overflow.
    let all: Value =
        serde_json::from_str(&ok(w.remote(&["errors", "4294967295", "--json"]))).unwrap();
    assert_eq!(all["total_errors"], 4, "{all:#}");
    assert_eq!(all["since"], "1970-01-01T00:00:00Z", "{all:#}");
    let text_form = ok(w.remote(&["errors"]));
    assert!(
        text_form.contains("3 errors in the last 1h on prod-1: web-app 2, worker 1"),
        "{text_form}"
    );
}
