//! Forwarding from a real rsyslog: a private `rsyslogd` (its own config, work folder, pid
//! file and ports) receives lines on an `imtcp` input and forwards them to the real
//! `logyard` binary, with `omfwd` (TCP, RFC 5424) and with `omrelp` (RELP). Every line must
//! arrive once with its host, program, severity and time; with RELP, nothing may be lost
//! across a SIGKILL of logyard (a line whose answer the kill cut off may come twice), and
//! every line comes exactly once across a SIGTERM.
//!
//! Needs `rsyslogd` (Debian package `rsyslog`) and its `omrelp` module (`rsyslog-relp`);
//! `.ci/test` installs both.

mod util;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::Server;

/// The folder of rsyslog's modules (Debian's path).
const MODULES: &str = "/usr/lib/x86_64-linux-gnu/rsyslog";

/// A free TCP port of 127.0.0.1 (bound then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The rsyslogd program: Debian's path, or else the one on `PATH`.
fn rsyslogd() -> PathBuf {
    let debian = PathBuf::from("/usr/sbin/rsyslogd");
    if debian.exists() {
        debian
    } else {
        PathBuf::from("rsyslogd")
    }
}

/// Returns false (and says why) when rsyslogd or one of its modules is missing.
fn have_rsyslog(module: &str) -> bool {
    let found = Command::new(rsyslogd())
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let module_found = modules_dir().join(format!("{module}.so")).exists();
    if !found || !module_found {
        eprintln!(
            "skipped: needs rsyslogd and its {module} module (Debian packages rsyslog, rsyslog-relp)"
        );
    }
    found && module_found
}

/// Where rsyslog's modules are: Debian's path for this machine's architecture.
fn modules_dir() -> PathBuf {
    let candidates = [
        MODULES.to_string(),
        "/usr/lib/aarch64-linux-gnu/rsyslog".to_string(),
        "/usr/lib/rsyslog".to_string(),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("imtcp.so").exists())
        .unwrap_or_else(|| PathBuf::from(MODULES))
}

/// A private rsyslogd, stopped (SIGTERM, then SIGKILL) when dropped.
struct Rsyslogd {
    child: Child,
    input: u16,
}

impl Rsyslogd {
    /// Starts `rsyslogd -n` with an `imtcp` input on a free port of 127.0.0.1, `output`
    /// (the line that loads the output module, if it is not built in) and `forward` (its action) as the only rule; waits until the
    /// input accepts connections.
    fn start(dir: &Path, output: &str, forward: &str) -> Rsyslogd {
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).unwrap();
        let input = free_port();
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\")\n\
                 module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                 module(load=\"imtcp\")\n\
                 {output}\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{input}\" ruleset=\"forward\")\n\
                 ruleset(name=\"forward\") {{\n{forward}\n}}\n",
                work = work.display(),
            ),
        )
        .unwrap();
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .arg("-M")
            .arg(modules_dir())
            .env("TZ", "UTC")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rsyslogd");
        let mut r = Rsyslogd { child, input };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", input)).is_err() {
            if let Ok(Some(status)) = r.child.try_wait() {
                panic!("rsyslogd exited ({status}): see its errors above");
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd's imtcp input never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// Opens a connection to the input.
    fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.input)).expect("connect to rsyslogd's input")
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        util::terminate(&self.child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UTC time as (year, month, day, hour, minute, second).
fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let t = secs % 86_400;
    (year, month, day, t / 3600, t / 60 % 60, t % 60)
}

/// The stamp of line `i`: an hour ago plus `i` seconds (recent, so retention keeps it).
fn stamp_of(i: usize) -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        now - 3600
    });
    base + i as u64
}

/// Line `i` as a host sends it to rsyslog: RFC 3164, host `web-7`, program `billing`,
/// severity error for even lines and info for odd ones, a stamp that tells `i`.
fn legacy_line(i: usize, tag: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let pri = if i.is_multiple_of(2) { 11 } else { 14 };
    let (_, mo, d, h, m, s) = civil(stamp_of(i));
    let month = MONTHS[mo as usize - 1];
    format!("<{pri}>{month} {d:>2} {h:02}:{m:02}:{s:02} web-7 billing[42]: line {i} of {tag}\n")
}

/// Checks a stored line against [`legacy_line`]; returns its number.
fn check_entry(e: &Value, tag: &str) -> usize {
    let msg = e["message"].as_str().unwrap_or_default();
    let i: usize = msg
        .strip_prefix("line ")
        .and_then(|r| r.strip_suffix(&format!(" of {tag}")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message {msg:?} (a leading space?) in {e}"));
    assert_eq!(e["host"], "web-7", "{e}");
    assert_eq!(e["agent"], "billing", "{e}");
    let level = if i.is_multiple_of(2) { "ERROR" } else { "INFO" };
    assert_eq!(e["level"], level, "{e}");
    let (y, mo, d, h, m, s) = civil(stamp_of(i));
    assert_eq!(
        e["timestamp"],
        format!("{y}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
        "line {i}"
    );
    i
}

/// Counts the stored lines of `tag` by number (checking each one).
fn stored(server: &Server, tag: &str) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for e in server.all_of_agent("billing") {
        *seen.entry(check_entry(&e, tag)).or_insert(0) += 1;
    }
    seen
}

/// Waits until `n` distinct lines are stored (or `limit` passed) and returns the counts.
fn wait_for_lines(server: &Server, tag: &str, n: usize, limit: Duration) -> BTreeMap<usize, usize> {
    let deadline = Instant::now() + limit;
    loop {
        let seen = stored(server, tag);
        if seen.len() >= n || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write_config(dir: &Path, listener: &str) -> PathBuf {
    let config = dir.join("logyard.toml");
    std::fs::write(
        &config,
        format!("[[sources]]\ntype = \"syslog\"\n{listener}\nbatch_wait = \"20ms\"\n"),
    )
    .unwrap();
    config
}

#[test]
fn omfwd_forwards_every_line_once_with_host_program_severity_and_time() {
    if !have_rsyslog("imtcp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &format!("listen_tcp = \"127.0.0.1:{port}\""));
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let rsyslog = Rsyslogd::start(
        dir.path(),
        "",
        &format!(
            "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\"\n\
             TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\"\n\
             queue.type=\"LinkedList\" queue.filename=\"logyard\" queue.saveOnShutdown=\"on\"\n\
             action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")"
        ),
    );
    let n = 500;
    let mut conn = rsyslog.connect();
    for i in 0..n {
        conn.write_all(legacy_line(i, "omfwd").as_bytes()).unwrap();
    }
    conn.flush().unwrap();
    let seen = wait_for_lines(&server, "omfwd", n, Duration::from_secs(30));
    // A moment more: a duplicate would show up now.
    std::thread::sleep(Duration::from_millis(500));
    let seen = if seen.len() == n {
        stored(&server, "omfwd")
    } else {
        seen
    };
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "{} lines missing, the first: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "lines stored more than once: {twice:?}");
    let source = server.get("/api/logs?agent=billing&limit=1").1["logs"][0]["source"].clone();
    assert_eq!(source, "syslog:tcp");
}

/// The omrelp action of docs/sources.md, to logyard's RELP port.
fn omrelp(port: u16) -> String {
    format!(
        "action(type=\"omrelp\" target=\"127.0.0.1\" port=\"{port}\"\n\
         template=\"RSYSLOG_SyslogProtocol23Format\"\n\
         queue.type=\"LinkedList\" queue.filename=\"logyard-relp\" queue.saveOnShutdown=\"on\"\n\
         action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")"
    )
}

/// How logyard goes down in the middle of a RELP stream.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Crash {
    Sigkill,
    Sigterm,
}

/// Forwards 300 lines with omrelp and checks each arrived once; then sends 2700 more
/// while logyard is stopped with `how` and started again on the same port and data
/// folder. Checks that no line is lost and returns the lines stored twice.
fn relp_across(how: Crash) -> Vec<usize> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &format!("listen_relp = \"127.0.0.1:{port}\""));
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start(&data, &args);
    let rsyslog = Rsyslogd::start(dir.path(), "module(load=\"omrelp\")", &omrelp(port));
    // Quiet delivery first: every line once.
    let first = 300;
    let mut conn = rsyslog.connect();
    for i in 0..first {
        conn.write_all(legacy_line(i, "relp").as_bytes()).unwrap();
    }
    conn.flush().unwrap();
    let seen = wait_for_lines(&server, "relp", first, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let seen = if seen.len() == first {
        stored(&server, "relp")
    } else {
        seen
    };
    assert_eq!(seen.len(), first, "lines missing before the {how:?}");
    assert!(
        seen.values().all(|c| *c == 1),
        "a line stored twice without a crash: {seen:?}"
    );
    assert_eq!(
        server.get("/api/logs?agent=billing&limit=1").1["logs"][0]["source"],
        "syslog:relp"
    );

    // Lines sent continuously while logyard is killed and started again on the same port
    // and data folder.
    // About 3 s of sending; logyard is killed after the first 400 of them are stored, and
    // the sender goes on while it is down and after it is back.
    let total = 3000;
    let sent = Arc::new(AtomicUsize::new(first));
    let progress = sent.clone();
    let sender = std::thread::spawn(move || {
        for i in first..total {
            conn.write_all(legacy_line(i, "relp").as_bytes()).unwrap();
            progress.store(i + 1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        }
        conn.flush().unwrap();
        conn
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored(&server, "relp").len() < first + 400 {
        assert!(Instant::now() < deadline, "lines stopped arriving");
        std::thread::sleep(Duration::from_millis(20));
    }
    let at_kill = sent.load(Ordering::SeqCst);
    let stopping = Instant::now();
    match how {
        Crash::Sigkill => server.kill(),
        Crash::Sigterm => {
            server.stop();
        }
    }
    eprintln!("logyard went down in {:?}", stopping.elapsed());
    assert!(
        at_kill < total - 500,
        "the sender was nearly done ({at_kill} of {total}) when logyard went down"
    );
    std::thread::sleep(Duration::from_millis(500));
    let server = Server::start(&data, &args);
    let _conn = sender.join().unwrap();
    let seen = wait_for_lines(&server, "relp", total, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let seen = if seen.len() == total {
        stored(&server, "relp")
    } else {
        seen
    };
    let missing: Vec<usize> = (0..total).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost across the {how:?}, the first: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let twice: Vec<(usize, usize)> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(i, c)| (*i, *c))
        .collect();
    eprintln!(
        "{} lines stored twice across the {how:?}: {twice:?}",
        twice.len()
    );
    assert!(
        twice.iter().all(|(_, c)| *c == 2),
        "a line stored more than twice: {twice:?}"
    );
    // rsyslogd stopping closes its session with `close`: logyard sees no error.
    drop(rsyslog);
    let (_, sources) = server.get("/api/sources");
    let source = &sources["sources"][0];
    assert_eq!(source["errors_total"], 0, "{sources}");
    assert_eq!(source["connections"], 0, "{sources}");
    twice.into_iter().map(|(i, _)| i).collect()
}

#[test]
fn omrelp_forwards_every_line_once_and_loses_nothing_across_a_sigkill() {
    if !have_rsyslog("omrelp") {
        return;
    }
    // A line made durable whose answer the kill cut off is sent again by omrelp: only
    // those, at most one window (omrelp's 128 unanswered messages), can be stored twice.
    let twice = relp_across(Crash::Sigkill);
    assert!(
        twice.len() <= 128,
        "more duplicates than one RELP window: {twice:?}"
    );
}

#[test]
fn omrelp_forwards_every_line_once_across_a_sigterm_but_what_omrelp_had_in_flight() {
    if !have_rsyslog("omrelp") {
        return;
    }
    // Stopping, logyard answers every message it stored before it says `serverclose`;
    // omrelp still sends again the message it was sending when the session broke, answered
    // or not (the copy comes in the next session: not a read twice by logyard).
    let twice = relp_across(Crash::Sigterm);
    assert!(
        twice.len() <= 8,
        "more than omrelp's message in flight stored twice across a SIGTERM: {twice:?}"
    );
}

#[test]
fn omrelp_sends_again_after_logyard_closed_its_idle_session() {
    if !have_rsyslog("omrelp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!("listen_relp = \"127.0.0.1:{port}\"\nidle_timeout = \"1s\""),
    );
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let rsyslog = Rsyslogd::start(dir.path(), "module(load=\"omrelp\")", &omrelp(port));
    let mut conn = rsyslog.connect();
    let n = 100;
    for i in 0..n / 2 {
        conn.write_all(legacy_line(i, "idle").as_bytes()).unwrap();
    }
    conn.flush().unwrap();
    assert_eq!(
        wait_for_lines(&server, "idle", n / 2, Duration::from_secs(30)).len(),
        n / 2
    );
    // logyard closes the quiet session (`serverclose`); the next lines open a new one.
    std::thread::sleep(Duration::from_millis(2500));
    for i in n / 2..n {
        conn.write_all(legacy_line(i, "idle").as_bytes()).unwrap();
    }
    conn.flush().unwrap();
    let seen = wait_for_lines(&server, "idle", n, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let seen = if seen.len() == n {
        stored(&server, "idle")
    } else {
        seen
    };
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "missing after the idle close: {missing:?}"
    );
    assert!(seen.values().all(|c| *c == 1), "{seen:?}");
    let (_, sources) = server.get("/api/sources");
    assert_eq!(sources["sources"][0]["errors_total"], 0, "{sources}");
}
