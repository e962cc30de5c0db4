//! The shippers' protocols through the router with bodies encoded here: Loki protobuf +
//! snappy, OTLP JSON, and bad input of each (broken bulk lines, bodies that do not
//! decompress, decompression bombs, protobuf garbage).

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use logyard_api::{router, AppState, IngestOptions, Limits};
use logyard_sources::http::{loki, otlp};
use logyard_store::{Store, StoreConfig};
use prost::Message;
use serde_json::{json, Value as Json};
use tower::ServiceExt;

const LIMIT: usize = 256 << 10;

struct Fixture {
    state: AppState,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // The fixtures' times are fixed past days: a store that keeps everything.
    let mut config = StoreConfig::new(dir.path());
    config.retention_days = 0;
    let store = Store::open(config).unwrap();
    let limits = Limits {
        max_body_bytes: LIMIT,
        ..Limits::default()
    };
    let ingest = IngestOptions {
        max_line_bytes: 64 << 10,
        keep_raw: false,
        default_source: "http".into(),
    };
    Fixture {
        state: AppState::new(Arc::new(store), limits, ingest),
        _dir: dir,
    }
}

async fn send(f: &Fixture, req: Request<Body>) -> (StatusCode, Response) {
    let resp = router(f.state.clone()).oneshot(req).await.unwrap();
    (resp.status(), resp)
}

async fn body_bytes(resp: Response) -> Vec<u8> {
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

fn post(path: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", content_type);
    if let Some(e) = encoding {
        b = b.header("content-encoding", e);
    }
    b.body(Body::from(body)).unwrap()
}

async fn logs(f: &Fixture, query: &str) -> Vec<Json> {
    let req = Request::get(format!("/api/logs?{query}"))
        .body(Body::empty())
        .unwrap();
    let (status, resp) = send(f, req).await;
    assert_eq!(status, StatusCode::OK);
    let v: Json = serde_json::from_slice(&body_bytes(resp).await).unwrap();
    v["logs"].as_array().unwrap().clone()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn loki_protobuf_with_snappy() {
    let f = fixture();
    let ts = |s| {
        Some(loki::proto::Timestamp {
            seconds: s,
            nanos: 500,
        })
    };
    let push = loki::proto::PushRequest {
        streams: vec![loki::proto::StreamAdapter {
            labels: r#"{service_name="payments", detected_level="warn", instance="10.0.0.1:9100", region="eu \"west\""}"#.into(),
            entries: vec![
                loki::proto::EntryAdapter {
                    timestamp: ts(1_705_314_600),
                    line: "charge retried status=502 attempt=2".into(),
                    structured_metadata: vec![loki::proto::LabelPairAdapter {
                        name: "trace_id".into(),
                        value: "abc123".into(),
                    }],
                },
                loki::proto::EntryAdapter {
                    timestamp: ts(1_705_314_601),
                    line: r#"{"level":"error","msg":"charge failed","user":"ana"}"#.into(),
                    structured_metadata: vec![],
                },
            ],
            hash: 0,
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&push.encode_to_vec())
        .unwrap();
    let (status, resp) = send(
        &f,
        post("/loki/api/v1/push", "application/x-protobuf", None, body),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "{:?}",
        body_bytes(resp).await
    );
    let got = logs(&f, "agent=payments").await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let failed = &got[0];
    assert_eq!(failed["timestamp"], "2024-01-15T10:30:01.000000500Z");
    assert_eq!(failed["message"], "charge failed");
    // The stream's level label wins over the line's.
    assert_eq!(failed["level"], "WARNING");
    assert_eq!(failed["host"], "10.0.0.1:9100");
    assert_eq!(failed["source"], "loki");
    assert_eq!(failed["fields"]["user"], "ana");
    assert_eq!(failed["fields"]["region"], "eu \"west\"");
    let retried = &got[1];
    assert_eq!(retried["message"], "charge retried status=502 attempt=2");
    assert_eq!(retried["fields"]["trace_id"], "abc123");
}

#[tokio::test]
async fn loki_bad_bodies_are_400_or_413_in_text() {
    let f = fixture();
    // Not snappy at all.
    let (status, resp) = send(
        &f,
        post(
            "/loki/api/v1/push",
            "application/x-protobuf",
            None,
            b"\xff\xff\xff\xff\xff\xff".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = String::from_utf8(body_bytes(resp).await).unwrap();
    assert!(text.contains("snappy"), "{text}");
    // Snappy that announces 1 GiB: refused before decompressing.
    let mut bomb = vec![0x80, 0x80, 0x80, 0x80, 0x04];
    bomb.extend_from_slice(&[0u8; 64]);
    let (status, _) = send(
        &f,
        post("/loki/api/v1/push", "application/x-protobuf", None, bomb),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Valid snappy, not a PushRequest.
    let junk = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff")
        .unwrap();
    let (status, resp) = send(
        &f,
        post("/loki/api/v1/push", "application/x-protobuf", None, junk),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = String::from_utf8(body_bytes(resp).await).unwrap();
    assert!(text.contains("PushRequest"), "{text}");
    // JSON with a bad timestamp says where.
    let body = json!({"streams": [{"stream": {"app": "x"}, "values": [["soon", "line"]]}]});
    let (status, resp) = send(
        &f,
        post(
            "/loki/api/v1/push",
            "application/json",
            None,
            body.to_string().into_bytes(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = String::from_utf8(body_bytes(resp).await).unwrap();
    assert!(text.contains("streams[0].values[0]"), "{text}");
    assert!(logs(&f, "limit=10").await.is_empty());
    // JSON sent with curl's default content type is still JSON.
    let body = json!({"streams": [{"stream": {"job": "curl"}, "values": [["1705314600000000000", "hello"]]}]});
    let (status, _) = send(
        &f,
        post(
            "/loki/api/v1/push",
            "application/x-www-form-urlencoded",
            None,
            body.to_string().into_bytes(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(logs(&f, "agent=curl").await[0]["message"], "hello");
}

#[tokio::test]
async fn gzip_bombs_are_refused_on_every_protocol() {
    let f = fixture();
    // 8 MiB of zeros is a few KiB of gzip, well under the body limit on the wire.
    let bomb = gzip(&vec![b' '; 8 << 20]);
    assert!(bomb.len() < LIMIT);
    for (path, ct) in [
        ("/loki/api/v1/push", "application/json"),
        ("/v1/logs", "application/json"),
        ("/_bulk", "application/x-ndjson"),
    ] {
        let (status, resp) = send(&f, post(path, ct, Some("gzip"), bomb.clone())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let text = String::from_utf8(body_bytes(resp).await).unwrap();
        assert!(text.contains("max_body_bytes"), "{path}: {text}");
    }
    // Gzip that is not gzip.
    let (status, _) = send(
        &f,
        post(
            "/loki/api/v1/push",
            "application/json",
            Some("gzip"),
            b"plain".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn otlp_json_maps_and_answers_partial_success() {
    let f = fixture();
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "orders"}},
            {"key": "host.name", "value": {"stringValue": "node-1"}},
            {"key": "k8s.pod.uid", "value": {"stringValue": "p-1"}}
        ]},
        "scopeLogs": [{
            "scope": {"name": "orders.api", "attributes": [{"key": "lib", "value": {"stringValue": "x"}}]},
            "logRecords": [
                {"timeUnixNano": "1705314600000000000", "severityNumber": 17,
                 "body": {"kvlistValue": {"values": [{"key": "event", "value": {"stringValue": "refund"}}, {"key": "n", "value": {"intValue": "2"}}]}},
                 "attributes": [{"key": "http.status_code", "value": {"intValue": "500"}}, {"key": "ok", "value": {"boolValue": false}}],
                 "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"},
                {"timeUnixNano": "1705314601000000000", "severityText": "Warning", "severityNumber": 9,
                 "body": {"stringValue": "slow refund"}},
                {"timeUnixNano": "18446744073709551615", "body": {"stringValue": "from the far future"}}
            ]
        }]
    }]});
    let (status, resp) = send(
        &f,
        post(
            "/v1/logs",
            "application/json",
            None,
            body.to_string().into_bytes(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Json = serde_json::from_slice(&body_bytes(resp).await).unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], 1,
        "{answer}"
    );
    assert!(answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("2262"));
    let got = logs(&f, "agent=orders").await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let slow = &got[0];
    assert_eq!(slow["message"], "slow refund");
    // severityText wins over severityNumber.
    assert_eq!(slow["level"], "WARNING");
    let refund = &got[1];
    assert_eq!(refund["timestamp"], "2024-01-15T10:30:00Z");
    assert_eq!(refund["level"], "ERROR");
    assert_eq!(refund["host"], "node-1");
    assert_eq!(refund["source"], "otlp");
    assert_eq!(refund["message"], r#"{"event":"refund","n":2}"#);
    assert_eq!(refund["fields"]["http.status_code"], 500);
    assert_eq!(refund["fields"]["ok"], false);
    assert_eq!(refund["fields"]["k8s.pod.uid"], "p-1");
    assert_eq!(refund["fields"]["lib"], "x");
    assert_eq!(refund["fields"]["scope.name"], "orders.api");
    assert_eq!(
        refund["fields"]["trace_id"],
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(refund["fields"]["span_id"], "eee19b7ec3c1b174");

    // Gzip JSON, all accepted: `{}`.
    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "zipped"}, "severityNumber": 5}]}]}]});
    let (status, resp) = send(
        &f,
        post(
            "/v1/logs",
            "application/json",
            Some("gzip"),
            gzip(body.to_string().as_bytes()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body_bytes(resp).await, b"{}");

    // The metrics count them under their source.
    let (_, resp) = send(&f, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(body_bytes(resp).await).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("logyard_ingested_lines_total")
                && l.contains("source=\"otlp\"")
                && l.contains("level=\"ERROR\"")),
        "{text}"
    );
}

#[tokio::test]
async fn otlp_garbage_is_a_400_status_in_the_request_encoding() {
    let f = fixture();
    let (status, resp) = send(
        &f,
        post(
            "/v1/logs",
            "application/x-protobuf",
            None,
            b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let s = otlp::proto::Status::decode(body_bytes(resp).await.as_slice()).unwrap();
    assert_eq!(s.code, 3);
    assert!(
        s.message.contains("ExportLogsServiceRequest"),
        "{}",
        s.message
    );
    let (status, resp) = send(
        &f,
        post(
            "/v1/logs",
            "application/json",
            None,
            b"{\"resourceLogs\": 5}".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let s: Json = serde_json::from_slice(&body_bytes(resp).await).unwrap();
    assert_eq!(s["code"], 3);
    assert!(
        s["message"].as_str().unwrap().contains("resourceLogs"),
        "{s}"
    );
    let (status, _) = send(&f, post("/v1/logs", "text/plain", None, b"hi".to_vec())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A valid protobuf request answers an empty ExportLogsServiceResponse.
    let req = otlp::proto::ExportLogsServiceRequest::default();
    let (status, resp) = send(
        &f,
        post(
            "/v1/logs",
            "application/x-protobuf",
            None,
            req.encode_to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer =
        otlp::proto::ExportLogsServiceResponse::decode(body_bytes(resp).await.as_slice()).unwrap();
    assert_eq!(answer.partial_success, None);
}

#[tokio::test]
async fn bulk_rejects_broken_lines_per_item_and_stores_the_rest() {
    let f = fixture();
    let body = concat!(
        "{\"index\":{\"_id\":\"1\"}}\n{\"message\":\"kept one\",\"service\":{\"name\":\"edge\"}}\n",
        "{\"index\":{}}\n{\"message\": broken\n",
        "{\"delete\":{\"_id\":\"1\"}}\n",
        "{\"create\":{}}\n{\"message\":\"kept two\",\"service.name\":\"edge\",\"log.level\":\"warn\"}\n",
    );
    let req = Request::post("/edge-logs/_bulk")
        .header(
            "content-type",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        )
        .header("content-encoding", "gzip")
        .body(Body::from(gzip(body.as_bytes())))
        .unwrap();
    let (status, resp) = send(&f, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp.headers()["x-elastic-product"], "Elasticsearch");
    let answer: Json = serde_json::from_slice(&body_bytes(resp).await).unwrap();
    assert_eq!(answer["errors"], true);
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{answer}");
    assert_eq!(items[0]["index"]["status"], 201);
    assert_eq!(items[0]["index"]["_id"], "1");
    assert_eq!(items[0]["index"]["_index"], "edge-logs");
    assert_eq!(items[0]["index"]["result"], "created");
    assert_eq!(items[1]["index"]["status"], 400);
    assert_eq!(
        items[1]["index"]["error"]["type"],
        "document_parsing_exception"
    );
    assert_eq!(items[2]["delete"]["status"], 400);
    assert_eq!(items[3]["create"]["status"], 201);
    let got = logs(&f, "agent=edge").await;
    let messages: Vec<&str> = got.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages.len(), 2, "{got:#?}");
    assert!(messages.contains(&"kept one") && messages.contains(&"kept two"));

    // A whole-body error is Elasticsearch's error shape, with the product header.
    let (status, resp) = send(
        &f,
        post("/_bulk", "application/x-ndjson", None, b"\n".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["x-elastic-product"], "Elasticsearch");
    let e: Json = serde_json::from_slice(&body_bytes(resp).await).unwrap();
    assert_eq!(e["status"], 400);
    assert!(e["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("body is required"));

    // The clients' version probe, and a browser's GET / that is not one.
    let req = Request::get("/")
        .header("x-elastic-client-meta", "es=8.19.3,py=3.11")
        .body(Body::empty())
        .unwrap();
    let (status, resp) = send(&f, req).await;
    assert_eq!(status, StatusCode::OK);
    let info: Json = serde_json::from_slice(&body_bytes(resp).await).unwrap();
    assert_eq!(info["tagline"], "You Know, for Search");
    assert!(info["version"]["number"]
        .as_str()
        .unwrap()
        .starts_with("8."));
    let req = Request::get("/")
        .header("user-agent", "Mozilla/5.0")
        .body(Body::empty())
        .unwrap();
    let (_, resp) = send(&f, req).await;
    assert!(resp.headers().get("x-elastic-product").is_none());
}
