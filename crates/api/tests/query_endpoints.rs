//! The query, analysis and export endpoints through the router, without a socket.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use logyard_api::{router, AppState, IngestOptions, Limits};
use logyard_model::{Level, Record, Value};
use logyard_store::{Store, StoreConfig};
use serde_json::{json, Value as Json};
use tower::ServiceExt;

const T0: i64 = 1_705_276_800_000_000_000; // 2024-01-15T00:00:00Z
const SEC: i64 = 1_000_000_000;

struct Fixture {
    state: AppState,
    _dir: tempfile::TempDir,
}

/// 120 records, one a minute from T0: agents web/db, every 10th an ERROR, every 40th a
/// CRITICAL; half flushed to segments, half in the memtable.
fn fixture() -> Fixture {
    // Appending blocks, which the test's runtime thread must not do.
    std::thread::spawn(build_fixture).join().unwrap()
}

fn build_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut c = StoreConfig::new(dir.path());
    c.storage = logyard_store::testing::storage_for(dir.path());
    c.retention_days = 0;
    c.block_rows = 16;
    c.flush_interval = Duration::from_secs(3600);
    let store = Store::open(c).unwrap();
    let records: Vec<Record> = (0..120)
        .map(|i| {
            let mut r = Record::new(
                T0 + i * 60 * SEC,
                format!("request {i} served in {}ms", i * 3),
            );
            r.agent = if i % 2 == 0 { "web" } else { "db" }.into();
            r.source = format!("file:/var/log/{}.log", r.agent);
            r.level = Some(if i % 40 == 0 {
                Level::Critical
            } else if i % 10 == 0 {
                Level::Error
            } else {
                Level::Info
            });
            if r.level >= Some(Level::Error) {
                r.message = format!("connection to 10.0.0.{}:5432 refused", i % 7);
            }
            r.fields.insert("ms".into(), Value::Int(i * 3));
            r
        })
        .collect();
    store.append(records[..60].to_vec()).unwrap();
    store.flush().unwrap();
    store.append(records[60..].to_vec()).unwrap();
    let state = AppState::new(
        Arc::new(store),
        Limits::default(),
        IngestOptions {
            max_line_bytes: 1 << 20,
            keep_raw: false,
            default_source: "http".into(),
        },
    );
    Fixture { state, _dir: dir }
}

fn url(path: &str, params: &[(&str, &str)]) -> String {
    let mut s = path.to_string();
    for (i, (k, v)) in params.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
    }
    s
}

async fn get_raw(f: &Fixture, uri: &str) -> (StatusCode, String, String) {
    let response = router(f.state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let ct = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(f: &Fixture, path: &str, params: &[(&str, &str)]) -> (StatusCode, Json) {
    let (status, _, body) = get_raw(f, &url(path, params)).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

async fn query(f: &Fixture, q: &str) -> (StatusCode, Json) {
    get(f, "/api/query", &[("q", q)]).await
}

#[tokio::test]
async fn stats_answer_a_table() {
    let f = fixture();
    let (s, a) = query(&f, "* | stats count() by (level)").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["columns"], json!(["level", "count()"]));
    assert_eq!(
        a["rows"],
        json!([["CRITICAL", 3], ["ERROR", 9], ["INFO", 108]])
    );
    assert!(a["cost"]["rows_scanned"].is_u64());
    assert!(a.get("logs").is_none());
    let (_, a) = query(
        &f,
        "level:>=ERROR | stats count() as n, max(ms), p50(ms) by (agent) | sort by (n) desc",
    )
    .await;
    assert_eq!(a["columns"], json!(["agent", "n", "max(ms)", "p50(ms)"]));
    assert_eq!(a["rows"], json!([["web", 12, 330, 150]]));
    let (_, a) = query(&f, "* | stats count()").await;
    assert_eq!(a["rows"], json!([[120]]));
    let (_, a) = query(&f, "* | top 1 agent").await;
    assert_eq!(a["rows"], json!([["db", 60]]));
    let (_, a) = query(&f, "agent:web | fields agent, ms | limit 2").await;
    assert_eq!(a["columns"], json!(["agent", "ms"]));
    assert_eq!(a["rows"], json!([["web", 354], ["web", 348]]));
}

#[tokio::test]
async fn records_keep_the_logs_shape_and_sort() {
    let f = fixture();
    let (s, a) = query(&f, "agent:db | sort by (ms) | limit 3").await;
    assert_eq!(s, 200, "{a}");
    let ms: Vec<i64> = a["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["fields"]["ms"].as_i64().unwrap())
        .collect();
    assert_eq!(ms, [3, 9, 15]);
    assert_eq!(a["total"], 3);
    assert!(a["next_cursor"].is_null());
    let (_, a) = get(&f, "/api/query", &[("q", "agent:db"), ("limit", "5")]).await;
    assert_eq!(a["total"], 60);
    assert!(a["next_cursor"].is_string());
}

#[tokio::test]
async fn patterns_count_errors_by_kind() {
    let f = fixture();
    let (s, a) = query(
        &f,
        "level:>=ERROR | patterns | sort by (count) desc | limit 10",
    )
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["columns"], json!(["pattern", "count", "example"]));
    assert_eq!(a["rows"][0][0], "connection to <ip> refused");
    assert_eq!(a["rows"][0][1], 12);
}

#[tokio::test]
async fn histogram_covers_the_range_with_empty_buckets() {
    let f = fixture();
    let (s, a) = get(
        &f,
        "/api/histogram",
        &[
            ("q", "*"),
            ("start", "2024-01-14T23:00:00Z"),
            ("end", "2024-01-15T03:00:00Z"),
            ("step", "1h"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let buckets = a["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 4);
    assert_eq!(
        buckets[0],
        json!({"t": "2024-01-14T23:00:00Z", "counts": {}})
    );
    assert_eq!(buckets[1]["t"], "2024-01-15T00:00:00Z");
    assert_eq!(
        buckets[1]["counts"],
        json!({"CRITICAL": 2, "ERROR": 4, "INFO": 54})
    );
    assert_eq!(buckets[3]["counts"], json!({}));
    let (_, a) = get(
        &f,
        "/api/histogram",
        &[
            ("q", "agent:db"),
            ("start", "2024-01-15T00:00:00Z"),
            ("end", "2024-01-15T04:00:00Z"),
        ],
    )
    .await;
    assert_eq!(
        a["step"], "5m",
        "a round step near a hundredth of the range"
    );
    assert_eq!(a["buckets"].as_array().unwrap().len(), 48);
    assert_eq!(a["buckets"][0]["counts"], json!({"INFO": 2}));
    let (s, a) = get(
        &f,
        "/api/histogram",
        &[
            ("start", "2024-01-01T00:00:00Z"),
            ("end", "2024-02-01T00:00:00Z"),
            ("step", "1s"),
        ],
    )
    .await;
    assert_eq!(s, 400, "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use a step of at least"),
        "{a}"
    );
    let (_, a) = query(
        &f,
        "_time:[2024-01-15T00:00:00Z, 2024-01-15T02:00:00Z) | histogram 1h by level",
    )
    .await;
    assert_eq!(a["columns"], json!(["t", "level", "count"]));
    assert_eq!(a["rows"][0], json!(["2024-01-15T00:00:00Z", "CRITICAL", 2]));
    let (s, a) = query(
        &f,
        "_time:[2024-01-01T00:00:00Z, 2024-12-01T00:00:00Z) | histogram 1s",
    )
    .await;
    assert_eq!(s, 400, "{a}");
    assert_eq!(a["error"]["code"], "query_syntax");
    assert_eq!(a["error"]["position"], 53);
}

#[tokio::test]
async fn query_errors_name_the_position() {
    let f = fixture();
    for (q, position, needle) in [
        (
            "level:ERROR | stats count(",
            26,
            "expected ')' after 'count('",
        ),
        ("(error", 6, "expected `)`"),
        ("\"open", 0, "unterminated string"),
        ("* | frob", 4, "unknown pipe 'frob': expected one of stats"),
        ("* | stats nope(x)", 10, "unknown stats function 'nope'"),
        (
            "* | top 3 agent | sort by (zzz)",
            27,
            "unknown column 'zzz'",
        ),
        ("* | limit 1000000", 10, "above the maximum"),
        ("~\"(\"", 1, "invalid regex"),
        ("~\"\\w{1000}{1000}\"", 1, "too large"),
        ("a)", 1, "unexpected ')'"),
    ] {
        let (s, a) = query(&f, q).await;
        assert_eq!(s, 400, "{q}: {a}");
        assert_eq!(a["error"]["code"], "query_syntax", "{q}");
        assert_eq!(a["error"]["position"], position, "{q}: {a}");
        let m = a["error"]["message"].as_str().unwrap();
        assert!(m.contains(needle), "{q}: {m}");
    }
}

#[tokio::test]
async fn budgets_cut_answers_and_say_why() {
    let mut f = fixture();
    f.state.query.max_groups = 5;
    let (s, a) = query(&f, "* | stats count() by (ms)").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["partial"], true);
    assert!(
        a["reason"].as_str().unwrap().contains("more than 5 groups"),
        "{a}"
    );
    f.state.query.timeout = Duration::ZERO;
    let (_, a) = query(&f, "* | top 3 agent").await;
    assert_eq!(a["partial"], true);
    assert!(a["reason"].as_str().unwrap().contains("deadline"), "{a}");
}

#[tokio::test]
async fn context_lists_neighbours_of_the_same_source() {
    let f = fixture();
    let (_, a) = get(&f, "/api/query", &[("q", "agent:web ms:180")]).await;
    let id = a["logs"][0]["id"].as_str().unwrap().to_string();
    let (s, a) = get(
        &f,
        &format!("/api/logs/{id}/context"),
        &[("before", "2"), ("after", "3")],
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let ms: Vec<i64> = a["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["fields"]["ms"].as_i64().unwrap())
        .collect();
    assert_eq!(ms, [168, 174, 180, 186, 192, 198]);
    let (s, _) = get(
        &f,
        "/api/logs/00000000000000000000000000000000/context",
        &[],
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = get(&f, "/api/logs/nope/context", &[]).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn export_streams_every_format() {
    let f = fixture();
    let (s, ct, body) = get_raw(
        &f,
        &url("/api/export", &[("q", "level:ERROR"), ("format", "csv")]),
    )
    .await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"));
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[0],
        "id,timestamp,level,agent,host,source,message,fields"
    );
    assert_eq!(lines.len(), 10);
    assert!(
        lines[1].contains(",2024-01-15T00:10:00Z,ERROR,web,"),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",\"{\"\"ms\"\":30}\""), "{}", lines[1]);
    let (_, ct, body) = get_raw(&f, &url("/api/export", &[("q", "*")])).await;
    assert_eq!(ct, "application/x-ndjson");
    assert_eq!(body.lines().count(), 120);
    let first: Json = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(first["timestamp"], "2024-01-15T00:00:00Z");
    let (_, _, body) = get_raw(
        &f,
        &url(
            "/api/export",
            &[
                ("q", "agent:db | fields timestamp, ms | limit 2"),
                ("format", "json"),
            ],
        ),
    )
    .await;
    let v: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        json!([{"timestamp": "2024-01-15T00:01:00Z", "ms": 3}, {"timestamp": "2024-01-15T00:03:00Z", "ms": 9}])
    );
    let (_, _, body) = get_raw(
        &f,
        &url(
            "/api/export",
            &[("q", "* | stats count() by (agent)"), ("format", "csv")],
        ),
    )
    .await;
    assert_eq!(body, "agent,count()\r\ndb,60\r\nweb,60\r\n");
    let (s, _, _) = get_raw(&f, &url("/api/export", &[("format", "xml")])).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn errors_summary_has_the_contract_shape() {
    let f = fixture();
    // The fixture's records are from 2024: ask for enough hours to reach them.
    let (s, a) = get(&f, "/api/errors/summary", &[("hours", "200000")]).await;
    assert_eq!(s, 200, "{a}");
    for key in [
        "timestamp",
        "analysis_period_hours",
        "total_agents",
        "agents_with_errors",
        "total_error_entries",
        "error_breakdown",
        "critical_issues",
        "top_patterns",
    ] {
        assert!(a.get(key).is_some(), "{key}: {a}");
    }
    assert_eq!(a["analysis_period_hours"], 200000);
    assert_eq!(a["total_agents"], 2);
    assert_eq!(a["agents_with_errors"], 1);
    assert_eq!(a["total_error_entries"], 12);
    assert_eq!(a["error_breakdown"]["web"]["error_count"], 12);
    assert_eq!(
        a["error_breakdown"]["web"]["recent_errors"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(a["critical_issues"].as_array().unwrap().len(), 3);
    assert_eq!(
        a["top_patterns"][0]["pattern"],
        "connection to <ip> refused"
    );
    assert_eq!(a["top_patterns"][0]["count"], 12);
    let (s, _) = get(&f, "/api/errors/summary", &[("hours", "0")]).await;
    assert_eq!(s, 400);
    let (_, a) = get(&f, "/api/errors/summary", &[]).await;
    assert_eq!(a["analysis_period_hours"], 24);
    assert_eq!(a["total_error_entries"], 0);
}

#[tokio::test]
async fn tail_sends_new_matching_entries() {
    let f = fixture();
    let response = router(f.state.clone())
        .oneshot(
            Request::get(url("/api/tail", &[("q", "level:ERROR")]))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let store = f.state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut quiet = Record::new(T0, "quiet");
        quiet.level = Some(Level::Info);
        let mut loud = Record::new(T0, "loud NEEDLE");
        loud.level = Some(Level::Error);
        store.append(vec![quiet, loud]).unwrap();
    })
    .await
    .unwrap();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    assert!(text.contains("loud NEEDLE"), "{text}");
    assert!(!text.contains("quiet"), "{text}");
    let (s, a) = get(&f, "/api/tail", &[("q", "error|stats count()")]).await;
    assert_eq!(s, 400, "{a}");
    assert_eq!(a["error"]["code"], "query_syntax");
    assert_eq!(a["error"]["position"], 6);
}

/// A start after the end is refused by every endpoint that takes a range, each naming the
/// parameters it was given under.
#[tokio::test]
async fn a_range_that_ends_before_it_starts_is_refused() {
    let f = fixture();
    let (s, a) = get(
        &f,
        "/api/logs",
        &[
            ("start_time", "2024-01-15T11:00:00Z"),
            ("end_time", "2024-01-15T10:00:00Z"),
        ],
    )
    .await;
    assert_eq!(s, 400, "{a}");
    assert_eq!(a["error"]["message"], "start_time is after end_time", "{a}");
    let (s, a) = get(
        &f,
        "/api/query",
        &[
            ("q", "*"),
            ("start", "2024-01-15T11:00:00Z"),
            ("end", "2024-01-15T10:00:00Z"),
        ],
    )
    .await;
    assert_eq!(s, 400, "{a}");
    assert_eq!(a["error"]["message"], "start is after end", "{a}");
    // Equal ends are an empty range, not an error.
    let (s, a) = get(
        &f,
        "/api/query",
        &[
            ("q", "*"),
            ("start", "2024-01-15T10:00:00Z"),
            ("end", "2024-01-15T10:00:00Z"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{a}");
}
