//! No request can exhaust the server's memory or descriptors: bodies of millions of tiny
//! entries and decompression bombs are refused with bounded memory, idle connections are
//! closed, and the smaller edges of the ingest and export answers (cut bodies, long Loki
//! lines, bodies past the limit, cut exports, integers past 64 bits). Everything goes
//! through the real binary on 127.0.0.1.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::Server;

/// The peak memory a server may reach under the bodies below: the 16 MiB body, its copies
/// and at most `limits.max_entries_per_request` decoded entries, with wide headroom (the
/// same bodies took 1 to 2 GB when they were decoded whole).
const PEAK_RSS: u64 = 400 << 20;

/// Just under the default `limits.max_body_bytes` (16 MiB).
const BODY: usize = (16 << 20) - 1024;

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

fn post_raw(server: &Server, path: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let resp = util::client()
        .post(format!("{}{path}", server.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .expect("POST answered (not a reset connection)");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

fn assert_peak_rss(server: &Server, what: &str) {
    let peak = server.peak_rss();
    assert!(
        peak < PEAK_RSS,
        "{what}: the server's peak RSS was {} MiB, over {} MiB",
        peak >> 20,
        PEAK_RSS >> 20
    );
}

/// A protobuf varint.
fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-delimited protobuf field.
fn len_field(tag: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push((tag << 3) | 2);
    varint(payload.len(), out);
    out.extend_from_slice(payload);
}

#[test]
fn ndjson_of_millions_of_tiny_entries_is_refused_within_bounded_memory() {
    let (_dir, server) = start("");
    let body = b"{}\n".repeat(BODY / 3);
    let (status, answer) = post_raw(&server, "/api/logs", "application/x-ndjson", body);
    assert_eq!(status, 413, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["error"]["code"], "too_many_entries", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("limits.max_entries_per_request"),
        "{message}"
    );
    // The same as a JSON array of empty objects.
    let mut array = b"[".to_vec();
    array.extend(b"{},".repeat(BODY / 3 - 1));
    array.extend(b"{}]");
    let (status, answer) = post_raw(&server, "/api/logs", "application/json", array);
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("too_many_entries"), "{answer}");
    assert_peak_rss(&server, "NDJSON and array bodies of millions of entries");
    // The server still takes a normal batch.
    let (status, answer) = post_raw(
        &server,
        "/api/logs",
        "application/x-ndjson",
        b"{\"message\":\"after\"}\n".to_vec(),
    );
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn otlp_body_of_millions_of_empty_records_is_refused_within_bounded_memory() {
    let (_dir, server) = start("");
    // ExportLogsServiceRequest { resource_logs (1) { scope_logs (2) { log_records (2) {} × N } } }:
    // `records` is the content of one ScopeLogs, N empty log records.
    let records = [0x12u8, 0x00].repeat((BODY - 16) / 2);
    let mut resource_logs = Vec::new();
    len_field(2, &records, &mut resource_logs);
    drop(records);
    let mut body = Vec::new();
    len_field(1, &resource_logs, &mut body);
    drop(resource_logs);
    let (status, answer) = post_raw(&server, "/v1/logs", "application/x-protobuf", body);
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer.contains("limits.max_entries_per_request"),
        "{answer}"
    );
    assert_peak_rss(&server, "an OTLP body of millions of empty log records");
}

#[test]
fn snappy_loki_bomb_is_refused_within_bounded_memory() {
    let (_dir, server) = start("");
    // PushRequest { streams { labels: "{job=\"bomb\"}", entries {} × N } }, snappy: a body of
    // well under 1 MiB that decompresses to almost 16 MiB.
    let mut stream = Vec::new();
    len_field(1, b"{job=\"bomb\"}", &mut stream);
    stream.extend([0x12u8, 0x00].repeat((BODY - 64) / 2));
    let mut push = Vec::new();
    len_field(1, &stream, &mut push);
    drop(stream);
    let body = snap::raw::Encoder::new().compress_vec(&push).unwrap();
    drop(push);
    assert!(body.len() < 1 << 20, "{} bytes compressed", body.len());
    let (status, answer) = post_raw(&server, "/loki/api/v1/push", "application/x-protobuf", body);
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer.contains("limits.max_entries_per_request"),
        "{answer}"
    );
    assert_peak_rss(
        &server,
        "a snappy-compressed Loki body of millions of entries",
    );
}

#[test]
fn idle_connections_are_closed_so_health_and_ingest_answer_under_a_low_descriptor_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(&config, "[server]\nidle_timeout = \"1s\"\n").unwrap();
    let server = Server::start_with_descriptor_limit(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        256,
    );
    let addr = server.url.trim_start_matches("http://").to_string();
    // More idle sockets than the server has descriptors; they send nothing.
    let idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    let started = Instant::now();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let health = client
        .get(format!("{}/health", server.url))
        .send()
        .expect("/health answers while idle sockets are held");
    assert_eq!(health.status().as_u16(), 200);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(20),
        "/health took {waited:?} behind 400 idle sockets"
    );
    let resp = client
        .post(format!("{}/api/logs", server.url))
        .header("content-type", "application/json")
        .body(r#"{"message": "after the idle sockets", "agent": "fd"}"#)
        .send()
        .expect("ingest answers");
    assert_eq!(resp.status().as_u16(), 200);
    let (status, page) = server.get("/api/logs?agent=fd");
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1, "{page}");
    drop(idle);
}

#[test]
fn loki_rejects_a_line_over_the_limit_and_stores_the_others() {
    let (_dir, server) = start("[limits]\nmax_line_bytes = \"1KiB\"\n");
    let long = "x".repeat(2000);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let body = json!({"streams": [{"stream": {"job": "lokilong"}, "values": [
        [now.to_string(), "a short line"],
        [(now + 1).to_string(), long],
    ]}]});
    let (status, answer) = post_raw(
        &server,
        "/loki/api/v1/push",
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("limits.max_line_bytes"), "{answer}");
    assert!(answer.contains("1 of 2 entries"), "{answer}");
    let stored = server.all_of_agent("lokilong");
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0]["message"], "a short line");
}

#[test]
fn a_body_over_the_limit_to_a_shipper_endpoint_is_answered_413() {
    let (_dir, server) = start("");
    let doc = "{\"index\":{\"_index\":\"big\"}}\n{\"message\":\"filler filler filler\"}\n";
    let body = doc.repeat((20 << 20) / doc.len()).into_bytes();
    let (status, answer) = post_raw(&server, "/_bulk", "application/x-ndjson", body.clone());
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("limits.max_body_bytes"), "{answer}");
    let (status, answer) = post_raw(&server, "/v1/logs", "application/json", body);
    assert_eq!(status, 413, "{answer}");
}

/// Sends a request head announcing `announced` bytes, then `sent` bytes of body, then shuts
/// the writing side; returns the answer's text.
fn cut_request(server: &Server, path: &str, announced: usize, sent: usize) -> String {
    let addr = server.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {announced}\r\n\r\n"
    )
    .unwrap();
    let line = b"{\"message\":\"cut\"}\n";
    let body: Vec<u8> = line.iter().copied().cycle().take(sent).collect();
    s.write_all(&body).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
}

#[test]
fn a_body_cut_by_the_client_is_a_400_not_a_413() {
    let (_dir, server) = start("");
    for path in ["/api/logs", "/_bulk"] {
        let answer = cut_request(&server, path, 100_000, 1_000);
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("cut"), "{path}: {answer}");
        assert!(!answer.contains("body_too_large"), "{path}: {answer}");
    }
    let (_, metrics) = {
        let resp = util::client()
            .get(format!("{}/metrics", server.url))
            .send()
            .unwrap();
        (resp.status(), resp.text().unwrap())
    };
    assert!(
        !metrics.contains("reason=\"body_too_large\""),
        "a cut body counted as too large:\n{metrics}"
    );
}

#[test]
fn an_export_cut_by_a_budget_ends_with_a_partial_sign() {
    let (_dir, server) = start("[query]\nmax_limit = 100\n");
    let body: String = (0..150)
        .map(|i| format!("{{\"message\":\"row {i}\",\"agent\":\"exp\"}}\n"))
        .collect();
    let (status, answer) = post_raw(
        &server,
        "/api/logs",
        "application/x-ndjson",
        body.into_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    let export = |format: &str| {
        let resp = util::client()
            .get(format!(
                "{}/api/export?q=agent:exp%20%7C%20sort%20by%20(message)&format={format}",
                server.url
            ))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.text().unwrap()
    };
    let ndjson = export("ndjson");
    let lines: Vec<&str> = ndjson.lines().collect();
    assert_eq!(lines.len(), 101, "{ndjson}");
    let last: Value = serde_json::from_str(lines[100]).unwrap();
    assert_eq!(last["partial"], true, "{last}");
    assert!(
        last["reason"].as_str().unwrap().contains("query.max_limit"),
        "{last}"
    );
    let array: Value = serde_json::from_str(&export("json")).unwrap();
    let array = array.as_array().unwrap();
    assert_eq!(array.len(), 101);
    assert_eq!(array[100]["partial"], true);
    let csv = export("csv");
    assert!(
        csv.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("# partial: "),
        "{csv}"
    );
    // An export that is whole has no sign.
    let whole = util::client()
        .get(format!(
            "{}/api/export?q=agent:exp%20%7C%20sort%20by%20(message)%20%7C%20limit%2050",
            server.url
        ))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(whole.lines().count(), 50);
    assert!(!whole.contains("\"partial\""));
}

#[test]
fn integers_past_64_bits_are_kept_exact() {
    let (_dir, server) = start("");
    let body = r#"{"message": "big", "agent": "bigint", "n": 123456789012345678901234567890, "u": 18446744073709551615, "neg": -98765432109876543210, "small": 42, "metadata": {"inner": 99999999999999999999999}}"#;
    let (status, answer) = post_raw(&server, "/api/logs", "application/json", body.into());
    assert_eq!(status, 200, "{answer}");
    let stored = server.all_of_agent("bigint");
    let fields = &stored[0]["fields"];
    assert_eq!(fields["n"], "123456789012345678901234567890", "{fields}");
    assert_eq!(fields["u"], "18446744073709551615", "{fields}");
    assert_eq!(fields["neg"], "-98765432109876543210", "{fields}");
    assert_eq!(fields["inner"], "99999999999999999999999", "{fields}");
    assert_eq!(fields["small"], 42, "{fields}");
    // The same through NDJSON and an array.
    let (status, _) = post_raw(
        &server,
        "/api/logs",
        "application/x-ndjson",
        b"{\"message\":\"nd\",\"agent\":\"bigint2\",\"n\":123456789012345678901234567890}\n"
            .to_vec(),
    );
    assert_eq!(status, 200);
    let (status, _) = post_raw(
        &server,
        "/api/logs",
        "application/json",
        b"[{\"message\":\"arr\",\"agent\":\"bigint2\",\"n\":123456789012345678901234567890}]"
            .to_vec(),
    );
    assert_eq!(status, 200);
    for entry in server.all_of_agent("bigint2") {
        assert_eq!(
            entry["fields"]["n"], "123456789012345678901234567890",
            "{entry}"
        );
    }
}
