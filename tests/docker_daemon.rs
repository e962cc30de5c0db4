//! The Docker source against a real Docker daemon (Debian's `docker.io`): the test of record
//! of both modes, `files` (the json-file driver's logs under the data root) and `api` (the
//! Engine API over the unix socket).
//!
//! Each test starts a private `dockerd` as root in a temporary folder (its own data root,
//! exec root, socket, pid file and empty configuration file; no iptables rules, no bridge, no
//! IP forwarding or masquerading, so the host's network is untouched), imports an image made
//! of `busybox-static`'s `/bin/busybox` (no registry is needed), and runs containers with
//! `--network none`: one started before logyard, one that stopped before logyard started,
//! one started after it that stops while followed, one with a TTY, one with a line longer
//! than the daemon's 16 KiB parts, logs rotated by the json-file driver, and lines written
//! while logyard is stopped; then a container restarted by its restart policy, the daemon
//! itself restarted under a running container (`--live-restore`), containers renamed (to a
//! name the filters keep, and to one they refuse) and removed. Every line must be stored
//! once, with the container's name as agent and its id, name, image, stream and labels as
//! fields. A system Docker daemon is never used nor touched.
//!
//! Not root: skipped with a message. A machine that cannot create containers at all (no
//! namespaces or no cgroups, as inside an unprivileged container) is skipped loudly; a
//! missing `dockerd` or a daemon that fails on a machine that could run containers fails the
//! test.

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::Server;

/// The json-file driver's rotation, for containers whose log is rotated while read: about
/// 35 lines a file.
const ROTATE: &[&str] = &["--log-opt", "max-size=3k", "--log-opt", "max-file=10"];

/// The label every test container carries.
const TEAM_LABEL: &str = "com.example.team=payments";

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid() == 0
    }
}

/// Why this machine cannot create containers at all, if it cannot: a reason outside the
/// project, for which the tests are skipped.
fn cannot_run_containers() -> Option<String> {
    let probe = Command::new("unshare")
        .args([
            "--mount", "--uts", "--ipc", "--net", "--pid", "--fork", "true",
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Some(format!(
                "this machine cannot create namespaces (`unshare --mount --uts --ipc --net --pid` failed: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
        Err(e) => return Some(format!("cannot run `unshare` to probe namespaces: {e}")),
    }
    let cgroups = std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| d.count())
        .unwrap_or(0);
    if cgroups == 0 {
        return Some("no cgroup file system is mounted on /sys/fs/cgroup".into());
    }
    None
}

/// The tests' precondition: root, and a machine that can run containers. `None` (after a
/// printed message) means skip.
fn daemon_or_skip(dir: &Path, test: &str) -> Option<Daemon> {
    if !is_root() {
        eprintln!("skipped {test}: starts a private Docker daemon, which needs root");
        return None;
    }
    if let Some(why) = cannot_run_containers() {
        eprintln!(
            "\n!!!!! SKIPPED {test}: containers cannot run on this machine: {why}.\n\
             !!!!! The Docker source was NOT tested against a real daemon.\n"
        );
        return None;
    }
    Some(Daemon::start(dir))
}

/// A private `dockerd` in a temporary folder. Dropping it removes its containers, stops it
/// and unmounts whatever is still mounted under the folder.
struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
    data_root: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

/// The docker.io package's client (the daemon's own version), else the first in `PATH`.
fn docker_cli() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.is_file() {
        debian
    } else {
        PathBuf::from("docker")
    }
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let dir = dir.join("dockerd");
        let data_root = dir.join("data");
        std::fs::create_dir_all(&data_root).unwrap();
        std::fs::create_dir_all(dir.join("exec")).unwrap();
        std::fs::create_dir_all(dir.join("cli")).unwrap();
        // An empty configuration: a host's /etc/docker/daemon.json must not apply.
        std::fs::write(dir.join("daemon.json"), "{}\n").unwrap();
        let mut daemon = Daemon {
            child: None,
            socket: dir.join("docker.sock"),
            log: dir.join("dockerd.log"),
            data_root,
            dir,
        };
        daemon.spawn();
        daemon.import_busybox();
        daemon
    }

    /// Starts dockerd and waits until it answers. `--live-restore`: its containers run on
    /// while it is stopped and restarted.
    fn spawn(&mut self) {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--ip-forward=false",
                "--ip-masq=false",
                "--live-restore",
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start dockerd ({e}): install Debian's docker.io (.ci/test does), \
                     or run the tests as a user other than root to skip this one"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.docker(&["version"]).is_ok() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("dockerd exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer on {} within 30 s:\n{}",
                self.socket.display(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops dockerd (SIGTERM, then SIGKILL after 20 s); its containers run on.
    fn stop_daemon(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) with the pid of our own child and a valid signal number.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs the docker client against this daemon only.
    fn docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(docker_cli())
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.dir.join("cli"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "docker {args:?}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn must(&self, args: &[&str]) -> String {
        self.docker(args)
            .unwrap_or_else(|e| panic!("{e}\ndockerd's log:\n{}", self.log_text()))
    }

    /// Imports `busybox:local`: `/bin/busybox` of busybox-static and `/bin/sh` linked to it.
    fn import_busybox(&self) {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "no /bin/busybox: install Debian's busybox-static (.ci/test does)"
        );
        let image = self.dir.join("image");
        std::fs::create_dir_all(image.join("bin")).unwrap();
        std::fs::copy(busybox, image.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", image.join("bin/sh")).unwrap();
        let tar = self.dir.join("image.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&image)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar of the image");
        self.must(&["import", tar.to_str().unwrap(), "busybox:local"]);
    }

    /// Starts a detached container with more `docker run` options, logging with json-file
    /// unless they name another `--log-driver`; returns its full id.
    fn run(&self, name: &str, options: &[&str], script: &str) -> String {
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--label",
            TEAM_LABEL,
        ];
        if !options.contains(&"--log-driver") {
            args.extend(["--log-driver", "json-file"]);
        }
        args.extend(options);
        args.extend(["busybox:local", "sh", "-c", script]);
        self.must(&args).trim().to_string()
    }

    /// The lines of a container's log so far, as `docker logs` gives them.
    fn logged_lines(&self, name: &str) -> usize {
        let out = Command::new(docker_cli())
            .args(["logs", name])
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.dir.join("cli"))
            .output()
            .unwrap();
        out.stdout
            .iter()
            .chain(&out.stderr)
            .filter(|&&b| b == b'\n')
            .count()
    }

    /// How many rotated json-file logs (`<id>-json.log.N`) a container has.
    fn rotated_files(&self, id: &str) -> usize {
        let dir = self.data_root.join("containers").join(id);
        let prefix = format!("{id}-json.log.");
        std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .count()
            })
            .unwrap_or(0)
    }

    fn running(&self, name: &str) -> bool {
        self.must(&["inspect", "-f", "{{.State.Running}}", name])
            .trim()
            == "true"
    }

    /// Removes every container, stops the daemon and unmounts what is left mounted under
    /// its folder.
    fn shut_down(&mut self) {
        if let Ok(ids) = self.docker(&["ps", "-aq"]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.docker(&args);
            }
        }
        self.stop_daemon();
        unmount_under(&self.dir);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Detaches every mount whose mount point is under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_point)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let Ok(c) = std::ffi::CString::new(p) else {
            continue;
        };
        // SAFETY: umount2(2) with a valid NUL-terminated path and a valid flag.
        #[allow(unsafe_code)]
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mount_point(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A shell loop printing `<prefix> line <i>` for i in 0..n, every 10th to stderr, `pause`
/// seconds apart, then `tail` (e.g. `sleep 3600`, or `true` to stop).
fn script(prefix: &str, n: usize, pause: &str, tail: &str) -> String {
    format!(
        "i=0; while [ $i -lt {n} ]; do \
           if [ $((i % 10)) -eq 0 ]; then echo \"{prefix} line $i\" >&2; \
           else echo \"{prefix} line $i\"; fi; \
           i=$((i+1)); sleep {pause}; \
         done; {tail}"
    )
}

fn expected(prefix: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{prefix} line {i}")).collect()
}

fn messages(server: &Server, agent: &str) -> Vec<String> {
    server
        .all_of_agent(agent)
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn assert_exactly(what: &str, stored: &[String], expected: &BTreeSet<String>) {
    let distinct: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        stored.len(),
        "{what}: a line was stored twice"
    );
    let missing: Vec<_> = expected.difference(&distinct).collect();
    let extra: Vec<_> = distinct.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, unexpected {extra:?}"
    );
}

/// Checks the labels of one stored line of a container.
fn assert_labelled(server: &Server, name: &str, id: &str, started: chrono::DateTime<chrono::Utc>) {
    let entries = server.all_of_agent(name);
    let out = entries
        .iter()
        .find(|e| e["message"] == format!("{name} line 1"))
        .unwrap_or_else(|| panic!("no line 1 of {name} in {entries:?}"));
    assert_eq!(out["source"], format!("docker:{name}"), "{out}");
    assert_eq!(out["fields"]["container_id"], &id[..12], "{out}");
    assert_eq!(out["fields"]["container_name"], name, "{out}");
    assert_eq!(out["fields"]["image"], "busybox:local", "{out}");
    assert_eq!(out["fields"]["stream"], "stdout", "{out}");
    assert_eq!(out["fields"]["label.com.example.team"], "payments", "{out}");
    let err = entries
        .iter()
        .find(|e| e["message"] == format!("{name} line 0"))
        .unwrap_or_else(|| panic!("no line 0 of {name} in {entries:?}"));
    assert_eq!(err["fields"]["stream"], "stderr", "{err}");
    // The daemon's time of the line.
    let t = out["timestamp"].as_str().unwrap_or_default();
    let t = chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("timestamp of {out}: {e}"))
        .with_timezone(&chrono::Utc);
    let now = chrono::Utc::now();
    assert!(
        t >= started - chrono::Duration::seconds(1) && t <= now,
        "the daemon's time of the line, between {started} and {now}: {out}"
    );
}

fn source<'a>(sources: &'a Value, name: &str) -> &'a Value {
    sources["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no source {name} in {sources}"))
}

/// One scenario for both modes; `mode_keys` are the source's keys that pick the mode and
/// point it at the private daemon.
fn containers_before_during_and_after_logyard(test: &str, mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let Some(daemon) = daemon_or_skip(dir.path(), test) else {
        return;
    };
    let started = chrono::Utc::now();

    // Before logyard: one that runs on (its log rotated by the driver several times), one
    // that already stopped.
    let early = daemon.run(
        "early",
        ROTATE,
        &script("early", 200, "0.005", "sleep 3600"),
    );
    let gone = daemon.run("gone", &[], &script("gone", 20, "0", "true"));
    wait_for("the lines of early and gone", || {
        daemon.logged_lines("early") >= 200 && daemon.logged_lines("gone") >= 20
    });
    wait_for("gone to stop", || !daemon.running("gone"));
    assert!(
        daemon.rotated_files(&early) >= 2,
        "the driver did not rotate early's log: the test would not cover rotation"
    );

    let mode_keys = match mode {
        "files" => format!(
            "mode = \"files\"\ndata_root = \"{}\"\n",
            daemon.data_root.display()
        ),
        _ => format!("mode = \"api\"\nsocket = \"{}\"\n", daemon.socket.display()),
    };
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"docker\"\nname = \"real\"\n{mode_keys}\
             start_at = \"beginning\"\npoll_interval = \"200ms\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start(&data, &args);

    // After logyard: one that writes, then stops while followed; its log is rotated by the
    // driver under the follow (the daemon then sends the line at the boundary again).
    let late = daemon.run("late", ROTATE, &script("late", 100, "0.01", "true"));
    // With a TTY: one raw stream whose lines end in CR LF.
    daemon.run(
        "tty",
        &["-t"],
        "echo tty line 0; echo tty line 1; sleep 3600",
    );
    // A line longer than the daemon's 16 KiB parts.
    daemon.run(
        "big",
        &[],
        "head -c 40000 /dev/zero | tr '\\0' x; echo; echo big line 1; sleep 3600",
    );
    // With the `local` logging driver: no json-file log, only the Engine API can read it.
    daemon.run(
        "compact",
        &["--log-driver", "local"],
        &script("compact", 20, "0", "sleep 3600"),
    );
    wait_for("the lines of early, late, tty and big", || {
        messages(&server, "early").len() >= 200
            && messages(&server, "late").len() >= 100
            && messages(&server, "tty").len() >= 2
            && messages(&server, "big").len() >= 2
    });
    assert_labelled(&server, "early", &early, started);
    assert_labelled(&server, "late", &late, started);

    // Written while logyard is stopped: the restart goes on where it stopped.
    let slow = daemon.run("slow", ROTATE, &script("slow", 150, "0.02", "sleep 3600"));
    wait_for("the first lines of slow", || {
        messages(&server, "slow").len() >= 30
    });
    server.stop();
    wait_for("slow's last line", || daemon.logged_lines("slow") >= 150);
    let server = Server::start(&data, &args);
    wait_for("every line of slow", || {
        messages(&server, "slow").len() >= 150
    });
    // Time for anything read twice to show up.
    std::thread::sleep(Duration::from_millis(1500));

    assert_exactly(
        "early",
        &messages(&server, "early"),
        &expected("early", 200),
    );
    assert_exactly("late", &messages(&server, "late"), &expected("late", 100));
    assert_exactly("slow", &messages(&server, "slow"), &expected("slow", 150));
    assert_labelled(&server, "slow", &slow, started);
    assert_exactly("tty", &messages(&server, "tty"), &expected("tty", 2));
    let tty = &server.all_of_agent("tty")[0];
    assert_eq!(tty["fields"]["stream"], "stdout", "{tty}");
    let mut big = messages(&server, "big");
    big.sort_by_key(|m| m.len());
    assert_eq!(big.len(), 2, "{big:?}");
    assert_eq!(big[0], "big line 1");
    assert_eq!(big[1], "x".repeat(40000), "the long line, joined again");
    if mode == "files" {
        assert!(
            messages(&server, "compact").is_empty(),
            "files mode read a container without a json-file log"
        );
        // The json-file log of a stopped container is still there, and read from its start.
        wait_for("the lines of gone", || {
            messages(&server, "gone").len() >= 20
        });
        assert_exactly("gone", &messages(&server, "gone"), &expected("gone", 20));
        assert_labelled(&server, "gone", &gone, started);
    } else {
        assert_exactly(
            "compact",
            &messages(&server, "compact"),
            &expected("compact", 20),
        );
        // A container stopped before the first start is left alone (as documented).
        assert!(
            messages(&server, "gone").is_empty(),
            "a container stopped before logyard first started was read"
        );
    }
    let (_, sources) = server.get("/api/sources");
    let src = source(&sources, "real");
    assert_eq!(src["type"], "docker", "{src}");
    assert_eq!(src["state"], "running", "{src}");
    let names: Vec<&str> = src["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("{src}"))
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in ["early", "late", "slow"] {
        assert!(names.contains(&name), "{name} not in {src}");
    }
    server.stop();
}

#[test]
fn files_mode_reads_a_real_daemons_containers_exactly_once() {
    containers_before_during_and_after_logyard(
        "files_mode_reads_a_real_daemons_containers_exactly_once",
        "files",
    );
}

#[test]
fn api_mode_reads_a_real_daemons_containers_exactly_once() {
    containers_before_during_and_after_logyard(
        "api_mode_reads_a_real_daemons_containers_exactly_once",
        "api",
    );
}

/// The names of the containers a source shows in `GET /api/sources`.
fn shown_containers(server: &Server) -> Vec<String> {
    let (_, sources) = server.get("/api/sources");
    let src = source(&sources, "real");
    assert_eq!(src["state"], "running", "{src}");
    src["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("{src}"))
        .iter()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect()
}

/// A container restarted by its restart policy, the daemon restarted under a running
/// container, a renamed container and a removed one.
fn restarts_renames_and_removals(test: &str, mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut daemon) = daemon_or_skip(dir.path(), test) else {
        return;
    };
    let mode_keys = match mode {
        "files" => format!(
            "mode = \"files\"\ndata_root = \"{}\"\n",
            daemon.data_root.display()
        ),
        _ => format!("mode = \"api\"\nsocket = \"{}\"\n", daemon.socket.display()),
    };
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"docker\"\nname = \"real\"\n{mode_keys}\
             exclude = [\"*-ignored\"]\npoll_interval = \"200ms\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );

    // Five runs of one container (its restart policy), ten lines each.
    daemon.run(
        "phoenix",
        &["--restart", "on-failure:4"],
        "n=$(cat /runs 2>/dev/null || echo 0); echo $((n+1)) > /runs; i=0; \
         while [ $i -lt 10 ]; do echo \"phoenix run $n line $i\"; i=$((i+1)); done; \
         sleep 0.3; exit 1",
    );
    let phoenix: BTreeSet<String> = (0..5)
        .flat_map(|n| (0..10).map(move |i| format!("phoenix run {n} line {i}")))
        .collect();
    wait_for("the five runs of phoenix", || {
        messages(&server, "phoenix").len() >= 50
    });

    // The daemon stopped and started again while a container writes (live restore).
    daemon.run("steady", &[], &script("steady", 300, "0.01", "sleep 3600"));
    wait_for("the first lines of steady", || {
        messages(&server, "steady").len() >= 30
    });
    daemon.stop_daemon();
    std::thread::sleep(Duration::from_millis(1000));
    daemon.spawn();
    wait_for("every line of steady", || {
        messages(&server, "steady").len() >= 300
    });

    // Renamed while read: the lines after the rename carry the new name; renamed to a name
    // that `exclude` refuses, it is no longer read.
    let wait_go = |name: &str| {
        format!(
            "echo {name} line 0; while [ ! -f /go ]; do sleep 0.05; done; \
             echo {name} line 1; sleep 3600"
        )
    };
    daemon.run("named", &[], &wait_go("named"));
    daemon.run("muted", &[], &wait_go("muted"));
    wait_for("the first lines of named and muted", || {
        !messages(&server, "named").is_empty() && !messages(&server, "muted").is_empty()
    });
    daemon.must(&["rename", "named", "renamed"]);
    daemon.must(&["rename", "muted", "muted-ignored"]);
    wait_for("the new names in the source's status", || {
        let shown = shown_containers(&server);
        shown.contains(&"renamed".to_string()) && !shown.iter().any(|n| n.starts_with("muted"))
    });
    daemon.must(&["exec", "renamed", "busybox", "touch", "/go"]);
    daemon.must(&["exec", "muted-ignored", "busybox", "touch", "/go"]);
    wait_for("the line after the rename", || {
        !messages(&server, "renamed").is_empty()
    });

    // Removed: dropped from the status, the source goes on.
    daemon.must(&["rm", "-f", "steady"]);
    wait_for("steady to be dropped from the status", || {
        !shown_containers(&server).contains(&"steady".to_string())
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert_exactly("phoenix", &messages(&server, "phoenix"), &phoenix);
    assert_exactly(
        "steady",
        &messages(&server, "steady"),
        &expected("steady", 300),
    );
    assert_exactly("named", &messages(&server, "named"), &expected("named", 1));
    assert_exactly("muted", &messages(&server, "muted"), &expected("muted", 1));
    assert!(
        messages(&server, "muted-ignored").is_empty(),
        "a container renamed to an excluded name was read"
    );
    assert_exactly(
        "renamed",
        &messages(&server, "renamed"),
        &["named line 1".to_string()].into_iter().collect(),
    );
    let renamed = &server.all_of_agent("renamed")[0];
    assert_eq!(renamed["source"], "docker:renamed", "{renamed}");
    assert_eq!(renamed["fields"]["container_name"], "renamed", "{renamed}");
    server.stop();
}

#[test]
fn files_mode_follows_restarts_renames_and_removals_of_a_real_daemon() {
    restarts_renames_and_removals(
        "files_mode_follows_restarts_renames_and_removals_of_a_real_daemon",
        "files",
    );
}

#[test]
fn api_mode_follows_restarts_renames_and_removals_of_a_real_daemon() {
    restarts_renames_and_removals(
        "api_mode_follows_restarts_renames_and_removals_of_a_real_daemon",
        "api",
    );
}

#[test]
fn files_mode_as_an_unprivileged_user_needs_cap_dac_read_search() {
    let test = "files_mode_as_an_unprivileged_user_needs_cap_dac_read_search";
    let dir = tempfile::tempdir().unwrap();
    let Some(daemon) = daemon_or_skip(dir.path(), test) else {
        return;
    };
    let id = daemon.run("web", &[], &script("web", 20, "0", "sleep 3600"));
    wait_for("the lines of web", || daemon.logged_lines("web") >= 20);
    // logyard as `nobody`, with a data directory of its own.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"docker\"\nname = \"real\"\nmode = \"files\"\n\
             data_root = \"{}\"\nstart_at = \"beginning\"\npoll_interval = \"200ms\"\n",
            daemon.data_root.display()
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];

    // Without the capability, the data root (root's alone) cannot be listed.
    let server = Server::start_wrapped(&nobody, &data, &args);
    let mut src = Value::Null;
    wait_for("the source to report the data root", || {
        let (_, sources) = server.get("/api/sources");
        src = source(&sources, "real").clone();
        src["state"] == "failing"
    });
    let error = src["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("ermission denied") && error.contains("containers"),
        "{src}"
    );
    server.stop();

    // With CAP_DAC_READ_SEARCH (and nothing else), everything is read, names included.
    let mut with_cap = nobody.to_vec();
    with_cap.extend([
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]);
    let server = Server::start_wrapped(&with_cap, &data, &args);
    wait_for("the lines of web", || messages(&server, "web").len() >= 20);
    assert_exactly("web", &messages(&server, "web"), &expected("web", 20));
    assert_labelled(
        &server,
        "web",
        &id,
        chrono::Utc::now() - chrono::Duration::seconds(60),
    );
    server.stop();
}
