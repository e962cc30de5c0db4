//! The ingest and read API of the real binary, good and bad input.

mod util;

use serde_json::{json, Value};
use util::Server;

/// A server that keeps everything: the entries of these tests have fixed past times.
fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(&config, "[store]\nretention_days = 0\n").unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    (dir, server)
}

/// A server with the default retention (7 days).
fn server_with_default_retention() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    (dir, server)
}

fn post_json(server: &Server, body: &Value) -> (u16, Value) {
    server.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(body).unwrap(),
    )
}

#[test]
fn health_answers_once_listening() {
    let (_dir, server) = server();
    let (status, body) = server.get("/health");
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert!(body["version"].is_string());
    assert!(body["uptime_s"].is_u64());
}

#[test]
fn an_entry_is_queryable_as_soon_as_acknowledged() {
    let (_dir, server) = server();
    let (status, answer) = post_json(
        &server,
        &json!({"timestamp": "2024-01-15T10:30:00Z", "level": "warn", "agent": "billing",
                "message": "payment gateway timeout", "metadata": {"order": 4411}, "user": "ana"}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"accepted": 1, "rejected": 0, "errors": []}));

    let (status, page) = server.get("/api/logs?agent=billing");
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1);
    let entry = &page["logs"][0];
    assert_eq!(entry["timestamp"], "2024-01-15T10:30:00Z");
    assert_eq!(entry["level"], "WARNING");
    assert_eq!(entry["message"], "payment gateway timeout");
    assert_eq!(entry["source"], "http");
    assert_eq!(entry["fields"]["order"], 4411);
    assert_eq!(entry["metadata"]["user"], "ana");
    assert_eq!(entry["id"].as_str().unwrap().len(), 32);

    let (_, found) = server.get("/api/logs/search?q=gate.ay%20time");
    assert_eq!(found["total"], 1);
    let (_, by_agent) = server.get("/api/logs/agent/billing?min_level=WARNING");
    assert_eq!(by_agent["total"], 1);
    let (_, none) = server.get("/api/logs/agent/billing?level=ERROR");
    assert_eq!(none["total"], 0);
    let (_, agents) = server.get("/api/agents");
    assert_eq!(agents["agents"][0]["name"], "billing");
    assert_eq!(agents["agents"][0]["levels"]["WARNING"], 1);
    let (_, stats) = server.get("/api/stats");
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["by_level"]["WARNING"], 1);
}

#[test]
fn pages_are_newest_first_with_a_total() {
    let (_dir, server) = server();
    let entries: Vec<Value> = (0..25)
        .map(|i| json!({"timestamp": format!("2024-01-15T10:00:{i:02}Z"), "agent": "a", "message": format!("m{i}")}))
        .collect();
    let (status, _) = post_json(&server, &Value::Array(entries));
    assert_eq!(status, 200);
    let (_, page) = server.get("/api/logs?limit=10&offset=5");
    assert_eq!(page["total"], 25);
    assert_eq!(page["limit"], 10);
    assert_eq!(page["offset"], 5);
    let messages: Vec<&str> = page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["m19", "m18", "m17", "m16", "m15", "m14", "m13", "m12", "m11", "m10"]
    );
    let (_, window) = server
        .get("/api/logs?start_time=2024-01-15T10:00:10Z&end_time=2024-01-15T10:00:20Z&limit=1000");
    assert_eq!(window["total"], 10, "start inclusive, end exclusive");
}

#[test]
fn query_pages_oldest_first_with_order_asc_and_its_cursor() {
    let (_dir, server) = server();
    let entries: Vec<Value> = (0..25)
        .map(|i| json!({"timestamp": format!("2024-01-15T10:00:{i:02}Z"), "agent": "a", "message": format!("m{i}")}))
        .collect();
    let (status, _) = post_json(&server, &Value::Array(entries));
    assert_eq!(status, 200);
    let messages = |page: &Value| -> Vec<String> {
        page["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    };
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = server.get(&format!(
            "/api/query?q=agent:a&order=asc&limit=10&cursor={cursor}"
        ));
        assert_eq!(status, 200, "{page}");
        seen.extend(messages(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let all: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    assert_eq!(seen, all, "every entry once, oldest first");
    let (_, newest) = server.get("/api/query?q=*&limit=3");
    assert_eq!(messages(&newest), ["m24", "m23", "m22"]);
    let (status, bad) = server.get("/api/query?q=*&order=up");
    assert_eq!(status, 400);
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("asc"),
        "{bad}"
    );
}

#[test]
fn malformed_json_is_a_400_invalid_json() {
    let (_dir, server) = server();
    let (status, answer) = server.post("/api/logs", "application/json", b"{\"message\": ".to_vec());
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "invalid_json");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not JSON"));
    let (status, answer) = server.post(
        "/api/logs",
        "application/x-ndjson",
        b"hello\nworld\n".to_vec(),
    );
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "invalid_json");
}

#[test]
fn a_bad_entry_is_rejected_alone() {
    let (_dir, server) = server();
    let body = json!([
        {"message": "good one", "agent": "mix"},
        {"agent": "mix"},
        42,
        {"message": "good two", "agent": "mix", "timestamp": "not a time"},
        {"message": "good three", "agent": "mix"}
    ]);
    let (status, answer) = post_json(&server, &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"], 3);
    let indexes: Vec<u64> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2, 3]);
    for e in answer["errors"].as_array().unwrap() {
        assert!(!e["reason"].as_str().unwrap().is_empty());
    }
    let (_, page) = server.get("/api/logs?agent=mix");
    assert_eq!(page["total"], 2);

    // The same in NDJSON, with a broken line in the middle.
    let ndjson = b"{\"message\":\"n1\",\"agent\":\"nd\"}\n{\"message\": oops}\n{\"message\":\"n2\",\"agent\":\"nd\"}\n";
    let (status, answer) = server.post("/api/logs", "application/x-ndjson", ndjson.to_vec());
    assert_eq!(status, 200);
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["errors"][0]["index"], 1);
}

#[test]
fn oversized_bodies_and_lines_get_their_limits() {
    let (_dir, server) = server();
    // 20 MB body, over the 16 MiB default.
    let big = format!("{{\"message\": \"{}\"}}", "x".repeat(20_000_000));
    let (status, answer) = server.post("/api/logs", "application/json", big.into_bytes());
    assert_eq!(status, 413);
    assert_eq!(answer["error"]["code"], "body_too_large");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_body_bytes"));

    // A 2 MB line in NDJSON, over the 1 MiB line limit: that line alone is rejected.
    let body = format!(
        "{{\"message\":\"small\",\"agent\":\"lim\"}}\n{{\"message\":\"{}\",\"agent\":\"lim\"}}\n",
        "y".repeat(2_000_000)
    );
    let (status, answer) = server.post("/api/logs", "application/x-ndjson", body.into_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["errors"][0]["index"], 1);
    assert!(answer["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("max_line_bytes"));
    let (_, metrics) = metrics_text(&server);
    assert!(
        metrics.contains("logyard_rejected_lines_total{reason=\"too_large\"} 1"),
        "{metrics}"
    );
}

fn metrics_text(server: &Server) -> (u16, String) {
    let resp = util::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

#[test]
fn invalid_utf8_is_stored_lossily_with_a_flag() {
    let (_dir, server) = server();
    let mut body = b"{\"message\": \"caf".to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(b" ok\", \"agent\": \"utf\"}");
    let (status, answer) = server.post("/api/logs", "application/json", body);
    assert_eq!(status, 200, "{answer}");
    let (_, page) = server.get("/api/logs?agent=utf");
    let entry = &page["logs"][0];
    assert_eq!(entry["message"], "caf\u{fffd}\u{fffd} ok");
    assert_eq!(entry["fields"]["invalid_utf8"], true);
}

#[test]
fn unknown_level_and_extreme_times_are_kept_or_refused_by_the_retention() {
    let (_dir, server) = server_with_default_retention();
    let body = json!([
        {"message": "odd level", "level": "NOTICE-ME", "agent": "edge"},
        {"message": "from the future", "timestamp": "2099-01-01T00:00:00Z", "agent": "edge"},
        {"message": "from the past", "timestamp": "1971-06-01T00:00:00Z", "agent": "edge"}
    ]);
    let (status, answer) = post_json(&server, &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    // Older than the 7 days kept: refused, rather than stored and deleted a minute later.
    assert_eq!(
        answer["errors"],
        json!([{"index": 2, "reason": "older than the retention of 7 days"}])
    );
    let (_, page) = server.get("/api/logs?agent=edge");
    assert_eq!(page["total"], 2);
    let logs = page["logs"].as_array().unwrap();
    assert_eq!(logs[0]["message"], "from the future");
    let odd = logs.iter().find(|e| e["message"] == "odd level").unwrap();
    assert_eq!(odd["level"], Value::Null);
    assert_eq!(odd["fields"]["level_raw"], "NOTICE-ME");
}

#[test]
fn bad_read_parameters_are_400_with_a_reason() {
    let (_dir, server) = server();
    for (query, needle) in [
        ("/api/logs?limit=100000", "maximum 1000"),
        ("/api/logs?offset=-1", "offset"),
        ("/api/logs?level=LOUD", "is not a level"),
        ("/api/logs?start_time=yesterday-ish", "start_time"),
        ("/api/logs/search?q=(unclosed", "regex"),
    ] {
        let (status, answer) = server.get(query);
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_parameter", "{query}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{query}: {message}");
    }
    let (status, answer) = server.get("/api/nothing-here");
    assert_eq!(status, 404);
    assert_eq!(answer["error"]["code"], "not_found");
}

#[test]
fn metrics_count_what_was_ingested() {
    let (_dir, server) = server();
    let body = json!([
        {"message": "a", "level": "ERROR", "agent": "m"},
        {"message": "b", "level": "ERROR", "agent": "m"},
        {"message": "c", "level": "INFO", "agent": "m"}
    ]);
    post_json(&server, &body);
    let (status, text) = metrics_text(&server);
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE logyard_ingested_lines_total counter"),
        "{text}"
    );
    assert!(
        text.contains("logyard_ingested_lines_total{source=\"http\",level=\"ERROR\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("logyard_ingested_lines_total{source=\"http\",level=\"INFO\"} 1"),
        "{text}"
    );
}

#[test]
fn secrets_in_entries_are_redacted_before_they_are_stored() {
    let (_dir, server) = server();
    let body = json!([
        {"agent": "sec", "message": "login ok password=hunter2 for ana", "token": "abc123def456"},
        {"agent": "sec", "message": "charged card 4111 1111 1111 1111", "metadata": {"api_key": "k-9f8e7d"}}
    ]);
    let (status, answer) = post_json(&server, &body);
    assert_eq!(status, 200, "{answer}");
    let (_, page) = server.get("/api/logs?agent=sec&include_raw=true");
    let text = page.to_string();
    for secret in ["hunter2", "abc123def456", "4111 1111 1111 1111", "k-9f8e7d"] {
        assert!(!text.contains(secret), "{secret} was stored: {text}");
    }
    assert!(text.contains("[REDACTED:password]"), "{text}");
    let (_, metrics) = metrics_text(&server);
    assert!(
        metrics.contains("logyard_redactions_total{kind=\"password\"} 1"),
        "{metrics}"
    );
}
