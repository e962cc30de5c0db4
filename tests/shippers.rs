//! The shippers' protocols through their real client libraries (Python), against the real
//! binary: each client in `tests/clients/` sends to a `logyard serve`, then the stored
//! records are read back through the API.
//!
//! A test whose Python packages are missing fails with the install command (see `.ci/test`).

mod util;

use std::process::Command;

use serde_json::Value;
use util::Server;

/// The clients' entries carry fixed past times: the store keeps everything.
const KEEP_ALL: &str = "[store]\nretention_days = 0\n\n";

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("logyard.toml");
    std::fs::write(&config, KEEP_ALL).expect("config");
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    (dir, server)
}

/// Runs `python3 tests/clients/NAME URL` and asserts it succeeded.
fn run_client(name: &str, url: &str) {
    run_client_with(name, url, &[]);
}

/// Runs `python3 tests/clients/NAME URL` with the given environment (the client's credentials).
fn client_output(name: &str, url: &str, env: &[(&str, &str)]) -> std::process::Output {
    let script = format!("{}/tests/clients/{name}", env!("CARGO_MANIFEST_DIR"));
    Command::new("python3")
        .arg(&script)
        .arg(url)
        .envs(env.iter().copied())
        .output()
        .expect("run python3")
}

/// [`client_output`], asserting it succeeded.
fn run_client_with(name: &str, url: &str, env: &[(&str, &str)]) {
    let out = client_output(name, url, env);
    assert!(
        out.status.success(),
        "{name} failed ({}); install the clients with .ci/test's pip line.\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stored entries of an agent, oldest first.
fn entries(server: &Server, agent: &str) -> Vec<Value> {
    let mut logs = server.all_of_agent(agent);
    logs.reverse();
    logs
}

fn by_message<'a>(logs: &'a [Value], message: &str) -> &'a Value {
    logs.iter()
        .find(|e| e["message"] == message)
        .unwrap_or_else(|| panic!("no entry {message:?} in {logs:#?}"))
}

#[test]
fn otlp_http_protobuf_from_the_opentelemetry_sdk() {
    let (_dir, server) = server();
    run_client("otlp.py", &server.url);
    let logs = entries(&server, "checkout");
    assert_eq!(logs.len(), 3, "{logs:#?}");
    let placed = by_message(&logs, "order placed");
    assert_eq!(placed["level"], "INFO");
    assert_eq!(placed["host"], "web-7");
    assert_eq!(placed["source"], "otlp");
    assert_eq!(placed["fields"]["order_id"], 42);
    assert_eq!(placed["fields"]["customer"], "ana");
    assert_eq!(placed["fields"]["deployment.environment"], "test");
    assert_eq!(placed["fields"]["scope.name"], "shop.checkout");
    // The SDK stamps each record with the time it was logged: a few seconds ago at most.
    let t = placed["timestamp"].as_str().expect("timestamp");
    let age = chrono_age_s(t);
    assert!((0.0..120.0).contains(&age), "timestamp {t} is {age} s old");
    assert_eq!(by_message(&logs, "payment slow")["level"], "WARNING");
    let failed = by_message(&logs, "payment failed");
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["fields"]["amount"], 9.5);
    let (status, body) = server.get("/api/query?q=agent:checkout%20level:ERROR");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(1), "{body}");
}

/// Seconds between an RFC 3339 time and now.
fn chrono_age_s(t: &str) -> f64 {
    let then = chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339 timestamp");
    (chrono::Utc::now() - then.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
}

#[test]
fn elasticsearch_bulk_from_the_official_python_client() {
    let (_dir, server) = server();
    run_client("es_bulk.py", &server.url);
    let logs = entries(&server, "cart");
    assert_eq!(logs.len(), 3, "{logs:#?}");
    let saved = by_message(&logs, "cart saved");
    assert_eq!(saved["timestamp"], "2024-01-15T10:30:00Z");
    assert_eq!(saved["level"], "INFO");
    assert_eq!(saved["host"], "web-3");
    assert_eq!(saved["source"], "elasticsearch");
    assert_eq!(saved["fields"]["index"], "logs-shop");
    assert_eq!(saved["fields"]["http.response.status_code"], 200);
    let lost = by_message(&logs, "cart lost");
    assert_eq!(lost["level"], "ERROR");
    assert_eq!(lost["host"], "web-4");
    assert!(
        lost["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2024-01-15T10:30:01.25"),
        "{lost}"
    );
    assert_eq!(by_message(&logs, "third")["fields"]["index"], "logs-other");
    // A browser's GET / is not the Elasticsearch probe.
    let resp = util::client()
        .get(format!("{}/", server.url))
        .header("user-agent", "Mozilla/5.0")
        .send()
        .expect("GET /");
    assert!(resp.headers().get("x-elastic-product").is_none());
}

#[test]
fn loki_push_json_from_python_logging_loki() {
    let (_dir, server) = server();
    let before = chrono::Utc::now();
    run_client("loki.py", &server.url);
    let logs = entries(&server, "inventory");
    assert_eq!(logs.len(), 3, "{logs:#?}");
    for e in &logs {
        assert_eq!(e["host"], "db-2", "{e}");
        assert_eq!(e["source"], "loki", "{e}");
        assert_eq!(e["fields"]["env"], "test", "{e}");
        assert_eq!(e["fields"]["logger"], "inventory.stock", "{e}");
        let t = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
        let age = (t.with_timezone(&chrono::Utc) - before).num_seconds();
        assert!((-5..120).contains(&age), "{e}");
    }
    let reserved = by_message(&logs, "reserved stock sku=X1 qty=3");
    assert_eq!(reserved["level"], "INFO");
    // The line is parsed (JSON here), the stream's `severity` label winning for the level.
    let low = by_message(&logs, "stock low");
    assert_eq!(low["level"], "WARNING", "{low}");
    assert_eq!(low["fields"]["sku"], "X1");
    assert_eq!(low["fields"]["left"], 2);
    let failed = by_message(&logs, "restock failed");
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["fields"]["supplier"], "acme");
}

#[test]
fn secrets_sent_by_shippers_are_redacted_and_counted() {
    let (_dir, server) = server();
    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let bulk = concat!(
        "{\"index\":{}}\n",
        "{\"service\":{\"name\":\"shipsec\"},\"message\":\"db login password=bulkpw1\",\"api_key\":\"k-bulk-77\"}\n"
    );
    let (status, answer) = server.post("/logs/_bulk", "application/x-ndjson", bulk.into());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], false, "{answer}");
    let loki = serde_json::json!({"streams": [{
        "stream": {"app": "shipsec"},
        "values": [[now_ns.to_string(), "pushed token=lokisecret1", {"authorization": "Basic Zm9vOmJhcg=="}]]
    }]});
    let (status, answer) = server.post(
        "/loki/api/v1/push",
        "application/json",
        loki.to_string().into(),
    );
    assert!(status == 204 || status == 200, "{status} {answer}");
    let otlp = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shipsec"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": now_ns.to_string(),
            "severityText": "INFO",
            "body": {"stringValue": "called with Authorization: Bearer eyJotlpsecret"},
            "attributes": [{"key": "db.password", "value": {"stringValue": "otlppw2"}}]
        }]}]
    }]});
    let (status, answer) = server.post("/v1/logs", "application/json", otlp.to_string().into());
    assert_eq!(status, 200, "{answer}");

    let logs = entries(&server, "shipsec");
    assert_eq!(logs.len(), 3, "{logs:#?}");
    let text = serde_json::to_string(&logs).unwrap();
    for secret in [
        "bulkpw1",
        "k-bulk-77",
        "lokisecret1",
        "Zm9vOmJhcg",
        "eyJotlpsecret",
        "otlppw2",
    ] {
        assert!(!text.contains(secret), "{secret} was stored: {text}");
    }
    let bulk = by_message(&logs, "db login password=[REDACTED:password]");
    assert_eq!(bulk["fields"]["api_key"], "[REDACTED:api_key]", "{bulk}");
    let metrics = reqwest::blocking::get(format!("{}/metrics", server.url))
        .and_then(|r| r.text())
        .expect("GET /metrics");
    assert!(
        metrics.contains("logyard_redactions_total{kind=\"password\"} 2"),
        "{metrics}"
    );
}

#[test]
fn the_clients_authenticate_as_their_libraries_offer() {
    const INGEST: &str = "shipper-secret-0123456789";
    const ADMIN: &str = "admin-secret-0123456789ab";
    let hash = |s: &str| logyard_api::auth::format_hash(&logyard_api::auth::sha256(s.as_bytes()));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "{KEEP_ALL}[[auth.tokens]]\nname = \"shipper\"\nrole = \"ingest\"\nhash = \"{}\"\n\n\
             [[auth.tokens]]\nname = \"root\"\nrole = \"admin\"\nhash = \"{}\"\n",
            hash(INGEST),
            hash(ADMIN)
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let basic = format!("shipper:{INGEST}");
    let wrong = "shipper:not-the-secret-000000";
    // Elasticsearch: HTTP Basic and an API key; Loki: Basic; OTLP: a header.
    run_client_with("es_bulk.py", &server.url, &[("LOGYARD_BASIC", &basic)]);
    run_client_with("es_bulk.py", &server.url, &[("LOGYARD_API_KEY", &basic)]);
    run_client_with("loki.py", &server.url, &[("LOGYARD_BASIC", &basic)]);
    run_client_with("otlp.py", &server.url, &[("LOGYARD_TOKEN", INGEST)]);
    // Each refused with a wrong secret or none.
    for (name, env) in [
        ("es_bulk.py", vec![("LOGYARD_BASIC", wrong)]),
        ("es_bulk.py", vec![]),
        ("loki.py", vec![("LOGYARD_BASIC", wrong)]),
        ("otlp.py", vec![("LOGYARD_TOKEN", "not-the-secret-000000")]),
    ] {
        let out = client_output(name, &server.url, &env);
        assert!(
            !out.status.success(),
            "{name} with {env:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let answer: Value = reqwest::blocking::Client::new()
        .get(format!("{}/api/query", server.url))
        .query(&[("q", "NOT agent:logyard-audit | stats count()")])
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["rows"][0][0], 12, "{answer}");
}
