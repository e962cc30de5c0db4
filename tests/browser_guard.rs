//! Browsers are clients too, and redaction cannot be dodged, through the real binary on
//! 127.0.0.1: a foreign `Host` (DNS rebinding) is refused, cross-origin writes and cross-site
//! reads are refused and store nothing, no answer allows another origin to read it, the UI
//! carries its security headers; and secrets written with every JSON escape form, in URLs and
//! in Python's `ensure_ascii` output are stored redacted on every ingest endpoint.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use util::Server;

fn start(config: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logyard.toml");
    std::fs::write(&path, config).unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", path.to_str().unwrap()],
    );
    (dir, server)
}

/// `127.0.0.1:PORT` of a server.
fn authority(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// An answer read off the socket: status, lower-case headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends one request with exactly the given headers (a browser's `Host`, `Origin` and
/// `Sec-Fetch-*` included) and reads the whole answer.
fn raw(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut stream = TcpStream::connect(authority(server)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = Vec::new();
    stream.read_to_end(&mut text).unwrap();
    let text = String::from_utf8_lossy(&text).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.into() };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn stored(server: &Server) -> Vec<Value> {
    let (status, page) = server.get("/api/logs?limit=1000&include_raw=true");
    assert_eq!(status, 200, "{page}");
    page["logs"].as_array().cloned().unwrap_or_default()
}

const ENTRY: &str = r#"{"agent": "browser", "message": "written by a web page"}"#;

#[test]
fn a_foreign_host_is_refused_and_the_servers_names_are_not() {
    let (_dir, server) = start("");
    let own = authority(&server);
    let port = own.rsplit(':').next().unwrap().to_string();
    for (method, path, body) in [
        ("GET", "/api/export", ""),
        ("GET", "/api/logs", ""),
        ("POST", "/api/logs", ENTRY),
    ] {
        for host in ["evil.example", &format!("evil.example:{port}")] {
            let a = raw(
                &server,
                method,
                path,
                &[("Host", host), ("Content-Type", "application/json")],
                body,
            );
            assert_eq!(a.status, 421, "{method} {path} Host {host}: {}", a.body);
            let e = a.json();
            assert_eq!(e["error"]["code"], "bad_host", "{}", a.body);
            assert!(
                e["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("allowed_hosts"),
                "{}",
                a.body
            );
        }
    }
    assert!(stored(&server).is_empty(), "a refused POST stored an entry");
    // The names of a loopback listen, with and without the port; /health for any Host.
    for host in [
        own.clone(),
        format!("localhost:{port}"),
        "localhost".into(),
        format!("[::1]:{port}"),
        "127.0.0.1".into(),
    ] {
        let a = raw(&server, "GET", "/api/logs", &[("Host", &host)], "");
        assert_eq!(a.status, 200, "Host {host}: {}", a.body);
    }
    let a = raw(&server, "GET", "/health", &[("Host", "lb.internal")], "");
    assert_eq!(a.status, 200, "{}", a.body);
}

#[test]
fn allowed_hosts_adds_names() {
    let (_dir, server) = start("[server]\nallowed_hosts = [\"logs.example.com\"]\n");
    let a = raw(
        &server,
        "GET",
        "/api/logs",
        &[("Host", "Logs.Example.com")],
        "",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let a = raw(&server, "GET", "/api/logs", &[("Host", "evil.example")], "");
    assert_eq!(a.status, 421, "{}", a.body);
}

#[test]
fn cross_origin_writes_are_refused_and_store_nothing() {
    let (_dir, server) = start("");
    let own = authority(&server);
    for (path, body) in [
        ("/api/logs", ENTRY),
        ("/api/sql", r#"{"sql": "SELECT count(*) FROM logs"}"#),
    ] {
        // What a form or `fetch(…, {mode: "no-cors"})` of another site sends.
        let a = raw(
            &server,
            "POST",
            path,
            &[
                ("Host", &own),
                ("Content-Type", "text/plain"),
                ("Origin", "http://evil.example"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            body,
        );
        assert_eq!(a.status, 403, "POST {path}: {}", a.body);
        assert_eq!(a.json()["error"]["code"], "cross_origin", "{}", a.body);
        // Without Fetch Metadata (older browsers), the Origin alone; `null` (a sandboxed
        // frame) is not an origin of the server either.
        for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
            let a = raw(
                &server,
                "POST",
                path,
                &[
                    ("Host", &own),
                    ("Content-Type", "text/plain"),
                    ("Origin", origin),
                ],
                body,
            );
            assert_eq!(a.status, 403, "POST {path} from {origin}: {}", a.body);
        }
    }
    assert!(stored(&server).is_empty(), "a cross-origin POST was stored");
    // The UI's own requests, and shippers (no Origin at all), are served.
    let a = raw(
        &server,
        "POST",
        "/api/logs",
        &[
            ("Host", &own),
            ("Content-Type", "application/json"),
            ("Origin", &format!("http://{own}")),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        ENTRY,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let a = raw(
        &server,
        "POST",
        "/api/logs",
        &[("Host", &own), ("Content-Type", "application/json")],
        ENTRY,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(stored(&server).len(), 2);
}

#[test]
fn cross_site_reads_get_nothing_a_page_can_use() {
    let (_dir, server) = start("");
    let own = authority(&server);
    // A page of another site fetching the API: refused, and no CORS header either way.
    let a = raw(
        &server,
        "GET",
        "/api/export",
        &[
            ("Host", &own),
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Mode", "cors"),
        ],
        "",
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.json()["error"]["code"], "cross_origin");
    for headers in [
        vec![("Host", own.as_str()), ("Origin", "http://evil.example")],
        vec![("Host", own.as_str())],
    ] {
        let a = raw(&server, "GET", "/api/logs", &headers, "");
        assert_eq!(a.status, 200, "{}", a.body);
        for (name, _) in &a.headers {
            assert!(
                !name.starts_with("access-control-"),
                "a CORS header: {name}"
            );
        }
    }
    // A link followed from another site (a top-level navigation) still opens.
    let a = raw(
        &server,
        "GET",
        "/api/logs",
        &[
            ("Host", &own),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Dest", "document"),
        ],
        "",
    );
    assert_eq!(a.status, 200, "{}", a.body);
}

#[test]
fn the_ui_carries_its_security_headers_and_no_inline_script() {
    let (_dir, server) = start("");
    let own = authority(&server);
    for path in ["/", "/ui/js/main.js", "/api/logs"] {
        let a = raw(&server, "GET", path, &[("Host", &own)], "");
        assert_eq!(a.status, 200, "{path}");
        let csp = a.header("content-security-policy").unwrap_or_default();
        let script = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap_or_default();
        assert_eq!(script, "script-src 'self'", "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(a.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"), "{path}");
        if path == "/" {
            // Every script is a file: the policy above would block an inline one.
            for tag in a.body.split("<script").skip(1) {
                let open = tag.split('>').next().unwrap_or_default();
                assert!(open.contains("src="), "an inline script: <script{open}>");
            }
            assert!(!a.body.contains(" onclick="), "an inline event handler");
        }
    }
}

/// Secrets as JSON text (the escapes are what goes on the wire) and a part of each that
/// must not be stored anywhere.
const SECRETS: &[(&str, &str)] = &[
    (
        "db at postgres://admin:S3cr3tPw1@db.internal/app",
        "S3cr3tPw1",
    ),
    (r"pass\u0077ord=Hunter2Tail9", "Hunter2Tail9"),
    (r"\u0070assword=Hunter3Tail9", "Hunter3Tail9"),
    (r"card \u0034111111111111111 paid", "4111111111111111"),
    (r"card 4111\u003111111111111 paid", "4111111111111111"),
    (
        r"Authorization: Bearer abc\/def.ghiTail123456",
        "ghiTail123456",
    ),
    (r"token=abc\u0064efSecret99 ok", "Secret99"),
    (r"api_key\u003dQwErTy123456", "QwErTy123456"),
    // Python's json.dumps (ensure_ascii): the rest of a secret after a non-ASCII character.
    (r"caf\u00e9 password=s3cr\u00e9tTail77 done", "Tail77"),
    (r"redis:\/\/:R3disPass88@cache:6379", "R3disPass88"),
];

#[test]
fn secrets_in_every_json_escape_form_are_redacted_on_every_ingest_endpoint() {
    let (_dir, server) = start("[store]\nkeep_raw = true\n");
    let own = authority(&server);
    let post = |path: &str, content_type: &str, body: String| {
        let a = raw(
            &server,
            "POST",
            path,
            &[("Host", &own), ("Content-Type", content_type)],
            &body,
        );
        assert!(a.status < 300, "POST {path} ({content_type}): {}", a.body);
        assert!(
            !a.body.contains("\"errors\":true") && !a.body.contains("\"rejected\":1"),
            "POST {path}: {}",
            a.body
        );
    };
    let entry = |s: &str, via: &str| {
        format!(r#"{{"agent": "{via}", "message": "{s}", "metadata": {{"conn": "{s}"}}}}"#)
    };
    let all = |via: &str| {
        SECRETS
            .iter()
            .map(|(s, _)| entry(s, via))
            .collect::<Vec<_>>()
    };
    post(
        "/api/logs",
        "application/json",
        format!("[{}]", all("json").join(",")),
    );
    post(
        "/api/logs",
        "application/x-ndjson",
        all("ndjson").join("\n"),
    );
    post(
        "/api/logs",
        "text/plain",
        format!("[{}]", all("text").join(",")),
    );
    for (s, _) in SECRETS {
        post("/api/logs", "application/json", entry(s, "single"));
    }
    let bulk: String = SECRETS
        .iter()
        .map(|(s, _)| format!("{{\"index\": {{}}}}\n{{\"message\": \"{s}\", \"conn\": \"{s}\"}}\n"))
        .collect();
    post("/app/_bulk", "application/x-ndjson", bulk);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let values: Vec<String> = SECRETS
        .iter()
        .map(|(s, _)| format!(r#"["{now}", "{s}"]"#))
        .collect();
    post(
        "/loki/api/v1/push",
        "application/json",
        format!(
            r#"{{"streams": [{{"stream": {{"job": "loki"}}, "values": [{}]}}]}}"#,
            values.join(",")
        ),
    );
    let records: Vec<String> = SECRETS
        .iter()
        .map(|(s, _)| {
            format!(
                r#"{{"body": {{"stringValue": "{s}"}}, "attributes": [{{"key": "conn", "value": {{"stringValue": "{s}"}}}}]}}"#
            )
        })
        .collect();
    post(
        "/v1/logs",
        "application/json",
        format!(
            r#"{{"resourceLogs": [{{"scopeLogs": [{{"logRecords": [{}]}}]}}]}}"#,
            records.join(",")
        ),
    );
    let logs = stored(&server);
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for l in &logs {
        let key = format!("{} {}", l["source"], l["agent"]);
        *by.entry(key).or_default() += 1;
    }
    assert_eq!(logs.len(), SECRETS.len() * 7, "every entry stored: {by:?}");
    for log in &logs {
        let text = log.to_string();
        for (sent, secret) in SECRETS {
            assert!(
                !text.contains(secret),
                "{secret} (sent as {sent}) stored in clear: {text}"
            );
        }
        assert!(text.contains("REDACTED"), "{text}");
    }
    // The user of a URL stays, and the replacements are counted.
    assert!(logs.iter().any(|l| l["message"]
        .as_str()
        .unwrap_or_default()
        .contains("postgres://admin:[REDACTED:url_password]@db.internal/app")));
    let metrics = util::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("logyard_redactions_total{kind=\"url_password\"}"))
        .unwrap_or_else(|| panic!("no url_password count: {metrics}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 7, "{line}");
}

#[test]
fn personal_data_is_redacted_when_asked() {
    let message = r#"{"message": "mail to ana.lopez@example.com or b\u006fb@example.org"}"#;
    let (_dir, server) = start("[redact]\npii = true\n");
    let (status, answer) = server.post("/api/logs", "application/json", message.into());
    assert_eq!(status, 200, "{answer}");
    let text = Value::Array(stored(&server)).to_string();
    assert!(!text.contains("ana.lopez@example.com"), "{text}");
    assert!(!text.contains("bob@example.org"), "{text}");
    assert!(text.contains("[REDACTED:email]"), "{text}");
    drop(server);
    // Off by default: an address is not a secret.
    let (_dir, server) = start("");
    let (status, answer) = server.post("/api/logs", "application/json", message.into());
    assert_eq!(status, 200, "{answer}");
    let text = Value::Array(stored(&server)).to_string();
    assert!(text.contains("ana.lopez@example.com"), "{text}");
}

#[test]
fn a_rejected_entry_does_not_echo_its_secret() {
    let (_dir, server) = start("");
    let (status, answer) = server.post(
        "/api/logs",
        "application/json",
        br#"[{"message": "m", "timestamp": "Bearer abcdefSecretTail42"}]"#.to_vec(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rejected"], 1, "{answer}");
    assert!(
        !answer.to_string().contains("SecretTail42"),
        "the secret echoed: {answer}"
    );
}
