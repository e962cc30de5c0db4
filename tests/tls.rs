//! HTTPS and syslog over TLS through the real binary and real clients: curl and Python
//! `requests` trust a test CA and refuse a wrong one; plain HTTP to the HTTPS port is
//! closed, not left hanging; a certificate replaced on disk is served without a restart
//! while a connection opened before keeps working; a client certificate from
//! `tls_client_ca` ingests without a token; RFC 5425 syslog (octet counting over TLS) is
//! stored; a bad certificate file stops the start with the file and a hint.

#[path = "util/ca.rs"]
mod ca;
mod util;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ca::Ca;
use serde_json::Value;
use util::Server;

const INGEST: &str = "ingest-secret-0123456789";
const READ: &str = "read-secret-0123456789abc";

/// Starts a server with `[server]` lines of TLS and two tokens: `shipper` (ingest) and
/// `team` (read); its store keeps everything (the messages carry fixed past times).
fn start(dir: &Path, server_lines: &str, more: &str) -> Result<Server, String> {
    let hash = |s: &str| logyard_api::auth::format_hash(&logyard_api::auth::sha256(s.as_bytes()));
    let config = dir.join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\n{server_lines}\n\
             [store]\nretention_days = 0\n\n\
             [[auth.tokens]]\nname = \"shipper\"\nrole = \"ingest\"\nhash = \"{}\"\n\n\
             [[auth.tokens]]\nname = \"team\"\nrole = \"read\"\nhash = \"{}\"\n{more}",
            hash(INGEST),
            hash(READ)
        ),
    )
    .unwrap();
    Server::try_start(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

fn tls_lines(dir: &Path) -> String {
    format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        dir.join("server.pem").display(),
        dir.join("server-key.pem").display()
    )
}

/// Runs curl with `args`; returns its exit code and what it printed.
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs a Python program with `args`; returns whether it succeeded and what it printed.
fn python(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("python3 is installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// The PEM of the certificate a TLS server at `port` presents now (not verified), as Python's
/// `ssl` sees it: one base64 text without line breaks.
fn served_cert(port: u16) -> String {
    let (ok, out) = python(
        "import ssl, sys\nprint(ssl.get_server_certificate(('127.0.0.1', int(sys.argv[1]))))",
        &[&port.to_string()],
    );
    assert!(ok, "{out}");
    base64_body(&out)
}

fn base64_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn curl_and_requests_trust_the_test_ca_and_refuse_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new(d, "ca");
    let wrong = Ca::new(d, "wrong-ca");
    ca.issue(d, "server", "localhost", false);
    let server = start(d, &tls_lines(d), "").unwrap();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let url = &server.url;
    let cacert = ca.pem.to_str().unwrap();

    let (code, out) = curl(&["--cacert", cacert, &format!("{url}/health")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"status\":\"ok\""), "{out}");
    // Over TLS the UI's session cookie is Secure.
    let (code, out) = curl(&[
        "--cacert",
        cacert,
        "-D",
        "-",
        "-H",
        "content-type: application/json",
        "--data",
        &format!(r#"{{"token": "{READ}"}}"#),
        &format!("{url}/api/session"),
    ]);
    assert_eq!(code, 0, "{out}");
    let cookie = out
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {out}"));
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let (code, out) = curl(&[
        "--cacert",
        cacert,
        "-H",
        &format!("Authorization: Bearer {INGEST}"),
        "-H",
        "content-type: application/json",
        "--data",
        r#"{"agent": "billing", "message": "charged over https"}"#,
        "--fail-with-body",
        &format!("{url}/api/logs"),
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = curl(&[
        "--cacert",
        cacert,
        "-H",
        &format!("Authorization: Bearer {READ}"),
        "--fail-with-body",
        &format!("{url}/api/logs?agent=billing"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("charged over https"), "{out}");

    // Without the test CA, curl refuses the certificate (60: peer certificate not trusted).
    let (code, out) = curl(&[&format!("{url}/health")]);
    assert_eq!(code, 60, "{out}");

    let requests = "import requests, sys\n\
        r = requests.get(sys.argv[1] + '/api/logs?agent=billing', verify=sys.argv[2],\n\
                         headers={'Authorization': 'Bearer ' + sys.argv[3]}, timeout=20)\n\
        r.raise_for_status()\n\
        print(r.json()['logs'][0]['message'])\n";
    let (ok, out) = python(requests, &[url, cacert, READ]);
    assert!(ok, "{out}");
    assert!(out.contains("charged over https"), "{out}");
    let (ok, out) = python(requests, &[url, wrong.pem.to_str().unwrap(), READ]);
    assert!(!ok, "a wrong CA was accepted: {out}");
    assert!(
        out.contains("SSLError") || out.contains("CERTIFICATE_VERIFY_FAILED"),
        "{out}"
    );

    // Plain HTTP to the HTTPS port: the connection is closed at once, not left to hang.
    let started = Instant::now();
    let (code, out) = curl(&[&format!("http://127.0.0.1:{}/health", port_of(url))]);
    assert_ne!(code, 0, "plain HTTP was answered: {out}");
    assert_ne!(code, 28, "plain HTTP hung until curl's timeout: {out}");
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
    server.stop();
}

#[test]
fn a_replaced_certificate_is_served_without_a_restart_and_open_connections_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first_ca = Ca::new(d, "first-ca");
    let second_ca = Ca::new(d, "second-ca");
    let first = first_ca.issue(d, "server", "localhost", false);
    let both = d.join("both.pem");
    std::fs::write(
        &both,
        format!(
            "{}{}",
            std::fs::read_to_string(&first_ca.pem).unwrap(),
            std::fs::read_to_string(&second_ca.pem).unwrap()
        ),
    )
    .unwrap();
    let server = start(d, &tls_lines(d), "").unwrap();
    let port = port_of(&server.url);
    assert_eq!(served_cert(port), base64_body(&first));

    // A client that keeps one connection open across the renewal: a request before, then
    // (once told) a request on the same connection, with the certificate it was served.
    let keeper = "import http.client, ssl, sys, hashlib\n\
        ctx = ssl.create_default_context(cafile=sys.argv[2])\n\
        conn = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)\n\
        for i in range(2):\n\
        \x20   if i == 1:\n\
        \x20       sys.stdin.readline()\n\
        \x20   conn.request('GET', '/health')\n\
        \x20   r = conn.getresponse()\n\
        \x20   r.read()\n\
        \x20   print(r.status, hashlib.sha256(conn.sock.getpeercert(True)).hexdigest(), id(conn.sock), flush=True)\n";
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(keeper)
        .args([&port.to_string(), both.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let before = lines.next().unwrap().unwrap();
    assert!(before.starts_with("200 "), "{before}");

    // Renewal: a certificate from another CA replaces the files.
    let second = second_ca.issue(d, "server", "localhost", false);
    let started = Instant::now();
    wait_for("the new certificate to be served", || {
        served_cert(port) == base64_body(&second)
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    let (code, out) = curl(&[
        "--cacert",
        second_ca.pem.to_str().unwrap(),
        &format!("{}/health", server.url),
    ]);
    assert_eq!(code, 0, "{out}");

    // The connection opened before goes on, on its old session.
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let after = lines.next().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(after, before, "the same connection, certificate and answer");

    // A broken file is refused and the certificate in service kept.
    std::fs::write(
        d.join("server.pem"),
        "-----BEGIN CERTIFICATE-----\ntruncated\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(served_cert(port), base64_body(&second));
    let log = server.stop();
    assert!(
        log.contains("still serving the certificate loaded before"),
        "{log}"
    );
}

#[test]
fn a_client_certificate_from_the_client_ca_ingests_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new(d, "ca");
    let clients = Ca::new(d, "clients");
    let stranger = Ca::new(d, "stranger");
    ca.issue(d, "server", "localhost", false);
    clients.issue(d, "agent", "web-1-shipper", true);
    stranger.issue(d, "intruder", "web-1-shipper", true);
    let lines = format!(
        "{}tls_client_ca = \"{}\"\n",
        tls_lines(d),
        clients.pem.display()
    );
    let server = start(d, &lines, "").unwrap();
    let url = &server.url;
    let cacert = ca.pem.to_str().unwrap();
    let cert = |stem: &str| {
        vec![
            "--cert".to_string(),
            d.join(format!("{stem}.pem")).display().to_string(),
            "--key".to_string(),
            d.join(format!("{stem}-key.pem")).display().to_string(),
        ]
    };
    let post = |extra: &[String]| {
        let mut args: Vec<String> = vec![
            "--cacert".into(),
            cacert.into(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_code}".into(),
            "-H".into(),
            "content-type: application/json".into(),
            "--data".into(),
            r#"{"agent": "web", "message": "sent with a client certificate"}"#.into(),
        ];
        args.extend_from_slice(extra);
        args.push(format!("{url}/api/logs"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args)
    };
    assert_eq!(post(&cert("agent")), (0, "200".to_string()));
    // No certificate and no token: 401; a token still works without a certificate.
    assert_eq!(post(&[]), (0, "401".to_string()));
    assert_eq!(
        post(&["-H".into(), format!("Authorization: Bearer {INGEST}")]),
        (0, "200".to_string())
    );
    // A certificate from another CA fails the handshake.
    let (code, out) = post(&cert("intruder"));
    assert_ne!(code, 0, "{out}");
    // The certificate is an ingest identity: reading needs a token.
    let mut get: Vec<String> = vec![
        "--cacert".into(),
        cacert.into(),
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    get.extend(cert("agent"));
    get.push(format!("{url}/api/logs?agent=web"));
    let (code, out) = curl(&get.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("403"), "{out}");
    assert!(out.contains("client certificate `web-1-shipper`"), "{out}");
    let (code, out) = curl(&[
        "--cacert",
        cacert,
        "-H",
        &format!("Authorization: Bearer {READ}"),
        &format!("{url}/api/logs?agent=web"),
    ]);
    assert_eq!(code, 0, "{out}");
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["logs"].as_array().unwrap().len(), 2, "{out}");
    server.stop();
}

#[test]
fn syslog_over_tls_with_octet_counting_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new(d, "ca");
    ca.issue(d, "syslog", "localhost", false);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = format!(
        "\n[[sources]]\ntype = \"syslog\"\nlisten_tcp = \"127.0.0.1:{port}\"\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        d.join("syslog.pem").display(),
        d.join("syslog-key.pem").display()
    );
    // The HTTP API stays plain here: only the syslog listener has a certificate.
    let server = start(d, "", &source).unwrap();
    let sender = "import socket, ssl, sys\n\
        ctx = ssl.create_default_context(cafile=sys.argv[2])\n\
        with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20) as raw:\n\
        \x20   with ctx.wrap_socket(raw, server_hostname='localhost') as s:\n\
        \x20       for text in sys.argv[3:]:\n\
        \x20           msg = text.encode()\n\
        \x20           s.sendall(str(len(msg)).encode() + b' ' + msg)\n";
    let (ok, out) = python(
        sender,
        &[
            &port.to_string(),
            ca.pem.to_str().unwrap(),
            "<11>1 2024-01-15T10:30:00Z web-1 billing 77 - - payment declined for order 77",
            "<14>1 2024-01-15T10:30:01Z web-1 billing 77 - - second message, same connection",
        ],
    );
    assert!(ok, "{out}");
    let read = |path: &str| -> Value {
        util::client()
            .get(format!("{}{path}", server.url))
            .bearer_auth(READ)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let mut found = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while found.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the syslog messages were not stored: {found:?}; {}",
            read("/api/sources")
        );
        std::thread::sleep(Duration::from_millis(100));
        found = read("/api/logs?agent=billing")["logs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
    }
    let messages: Vec<&str> = found
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"payment declined for order 77"),
        "{messages:?}"
    );
    assert!(
        found.iter().all(|r| r["source"] == "syslog:tls"),
        "{found:?}"
    );
    assert_eq!(found[0]["host"], "web-1");
    // A client that does not trust the CA is refused.
    let other = Ca::new(d, "other");
    let (ok, out) = python(
        sender,
        &[
            &port.to_string(),
            other.pem.to_str().unwrap(),
            "<11>1 - - - - - - x",
        ],
    );
    assert!(!ok && out.contains("CERTIFICATE_VERIFY_FAILED"), "{out}");
    server.stop();
}

#[test]
fn a_missing_or_invalid_certificate_stops_the_start_with_the_file_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new(d, "ca");
    ca.issue(d, "server", "localhost", false);
    let err = start(
        d,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            d.join("absent.pem").display(),
            d.join("server-key.pem").display()
        ),
        "",
    )
    .err()
    .expect("no start without the certificate file");
    assert!(
        err.contains("absent.pem") && err.contains("openssl req"),
        "{err}"
    );

    std::fs::write(d.join("junk.pem"), "hello\n").unwrap();
    let err = start(
        d,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            d.join("server.pem").display(),
            d.join("junk.pem").display()
        ),
        "",
    )
    .err()
    .expect("no start with a key file without a key");
    assert!(
        err.contains("junk.pem") && err.contains("private key"),
        "{err}"
    );

    let err = start(
        d,
        &format!("tls_cert = \"{}\"\n", d.join("server.pem").display()),
        "",
    )
    .err()
    .expect("no start with a certificate and no key");
    assert!(err.contains("tls_key"), "{err}");

    let err = start(
        d,
        "",
        &format!(
            "\n[[sources]]\ntype = \"syslog\"\nname = \"secure\"\nlisten_tcp = \"127.0.0.1:0\"\n\
             tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            d.join("absent.pem").display(),
            d.join("server-key.pem").display()
        ),
    )
    .err()
    .expect("no start with a syslog listener without its certificate");
    assert!(
        err.contains("\"secure\"") && err.contains("absent.pem"),
        "{err}"
    );
}
