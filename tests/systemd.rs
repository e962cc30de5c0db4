//! Running under systemd: the unit file passes `systemd-analyze verify`, and the binary speaks
//! systemd's notification protocol to a real `NOTIFY_SOCKET` (a datagram socket this test
//! listens on): `READY=1` only once the store is recovered, `WATCHDOG=1` at half of
//! `WATCHDOG_USEC`, `STOPPING=1` when a stop begins.

mod util;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::Server;

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("packaging/logyard.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("WatchdogSec="));
    // verify checks that ExecStart's program exists: point it at this build.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logyard.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/logyard", util::bin().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is missing: apt-get install systemd (or run .ci/test)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // verify warns about a key it does not know and still exits 0: no warning at all.
    assert!(stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
}

fn receive(socket: &UnixDatagram, within: Duration) -> Option<String> {
    socket.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    socket
        .recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn ready_comes_after_recovery_then_the_watchdog_pings_and_a_stop_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Acknowledged entries left in the WAL by a crash: the next start replays them.
    let first = Server::start(&data, &[]);
    let entries: Vec<Value> = (0..5000)
        .map(|i| json!({"agent": "web", "message": format!("entry {i}")}))
        .collect();
    let (status, _) = first.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(&entries).unwrap(),
    );
    assert_eq!(status, 200);
    first.kill();

    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let started = Instant::now();
    let server = Server::start_with_env(
        &data,
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let ready = receive(&socket, Duration::from_secs(30)).expect("READY=1");
    assert_eq!(ready, "READY=1");
    // Ready means recovered: every acknowledged entry answers at once.
    let (status, page) = server.get("/api/logs?agent=web&limit=1");
    assert_eq!(status, 200);
    assert_eq!(page["total"], 5000, "{page}");
    // Pings at half of WATCHDOG_USEC.
    let mut pings = 0;
    while pings < 3 {
        let message = receive(&socket, Duration::from_secs(5)).expect("a watchdog ping");
        assert_eq!(message, "WATCHDOG=1");
        pings += 1;
    }
    assert!(started.elapsed() >= Duration::from_millis(400));
    // A SIGHUP does not stop it: it reads the configuration again.
    // SAFETY: kill(2) on the pid of our own child with a valid signal.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(server.pid() as libc::pid_t, libc::SIGHUP);
    }
    // It is a reload: RELOADING=1, then READY=1 once done (here a refusal: no file to read).
    let mut reload = Vec::new();
    while reload.len() < 2 {
        let message = receive(&socket, Duration::from_secs(5)).expect("the reload's messages");
        if message != "WATCHDOG=1" {
            reload.push(message);
        }
    }
    assert_eq!(reload, ["RELOADING=1", "READY=1"]);
    assert_eq!(server.get("/health").0, 200);
    server.stop();
    let mut last = String::new();
    while let Some(message) = receive(&socket, Duration::from_secs(2)) {
        last = message;
        if last == "STOPPING=1" {
            break;
        }
    }
    assert_eq!(last, "STOPPING=1");
}

#[test]
fn an_abstract_notify_socket_is_used_too() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("logyard-test-{}", std::process::id());
    let addr = {
        use std::os::linux::net::SocketAddrExt as _;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap()
    };
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    let server = Server::start_with_env(
        &dir.path().join("data"),
        &[],
        &[("NOTIFY_SOCKET", &format!("@{name}"))],
    );
    assert_eq!(
        receive(&socket, Duration::from_secs(30)).as_deref(),
        Some("READY=1")
    );
    drop(server);
}
