//! Token scopes and fixed labels, through the real binary.
//!
//! A `read` token with `scope = "<filter>"` must answer, on every read path, exactly what an
//! unscoped token answers filtered by the scope: the test evaluates each scope itself on the
//! entries an administrator reads, and compares for random queries (seeded) over the query
//! language, the paged and seed endpoints, export, histogram, agents, stats, the error
//! summary, reports, analyses, context, the live tail and SQL (plain, joins, subqueries,
//! set operations, `count(*)` and `EXPLAIN`). Answers that cover every agent at once are
//! refused to scoped tokens. An `ingest` token with `labels` writes them over what its
//! entries say, on every ingest endpoint.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use util::Server;

const ADMIN: &str = "admin-secret-0123456789ab";
const PINNED: &str = "ingest-pinned-0123456789";

const AGENTS: [&str; 4] = ["billing-api", "billing-db", "gatekeeper", "indexer"];
const HOSTS: [&str; 3] = ["web-1", "web-2", "db-1"];
const LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const WORDS: [&str; 5] = ["timeout", "payment", "login", "failed", "ok"];

/// A scope as configured, its SQL equivalent, and the test's own evaluation of it.
struct ScopeCase {
    name: &'static str,
    text: &'static str,
    sql: &'static str,
    keeps: fn(&Value) -> bool,
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name].as_str().unwrap_or("")
}

fn has_word(entry: &Value, word: &str) -> bool {
    field(entry, "message")
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| w == word)
}

fn scopes() -> Vec<ScopeCase> {
    vec![
        ScopeCase {
            name: "billing",
            text: "agent:billing-*",
            sql: "agent LIKE 'billing-%'",
            keeps: |e| field(e, "agent").starts_with("billing-"),
        },
        ScopeCase {
            name: "web1-or-errors",
            text: "host:web-1 OR level:ERROR",
            sql: "host = 'web-1' OR level = 'ERROR'",
            keeps: |e| field(e, "host") == "web-1" || field(e, "level") == "ERROR",
        },
        ScopeCase {
            name: "not-indexer-warn",
            text: "NOT agent:indexer AND level:>=WARNING",
            sql: "agent <> 'indexer' AND level IN ('WARNING', 'ERROR', 'CRITICAL')",
            keeps: |e| {
                field(e, "agent") != "indexer"
                    && ["WARNING", "ERROR", "CRITICAL"].contains(&field(e, "level"))
            },
        },
        ScopeCase {
            name: "timeouts",
            text: "timeout",
            sql: "message LIKE '%timeout%'",
            keeps: |e| has_word(e, "timeout"),
        },
    ]
}

fn secret_of(name: &str) -> String {
    format!("scope-secret-{name}-0123456789")
}

fn hash(secret: &str) -> String {
    logyard_api::auth::format_hash(&logyard_api::auth::sha256(secret.as_bytes()))
}

/// Starts a server with an administrator, one `read` token per scope, an unscoped `read`
/// token (`all`) and an `ingest` token with fixed labels (`pinned`).
fn start(dir: &Path) -> Server {
    let mut config = format!(
        "[[auth.tokens]]\nname = \"root\"\nrole = \"admin\"\nhash = \"{}\"\n\n\
         [[auth.tokens]]\nname = \"all\"\nrole = \"read\"\nhash = \"{}\"\n\n\
         [[auth.tokens]]\nname = \"pinned\"\nrole = \"ingest\"\nhash = \"{}\"\n\
         labels = {{ host = \"pinned-host\", agent = \"pinned-agent\" }}\n\n",
        hash(ADMIN),
        hash(&secret_of("all")),
        hash(PINNED)
    );
    for s in scopes() {
        config.push_str(&format!(
            "[[auth.tokens]]\nname = \"{}\"\nrole = \"read\"\nhash = \"{}\"\nscope = {:?}\n\n",
            s.name,
            hash(&secret_of(s.name)),
            s.text
        ));
    }
    let path = dir.join("logyard.toml");
    std::fs::write(&path, config).unwrap();
    Server::start(&dir.join("data"), &["--config", path.to_str().unwrap()])
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn get(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let resp = client()
        .get(format!("{}{path}", server.url))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn get_ok(server: &Server, token: &str, path: &str) -> Value {
    let (status, body) = get(server, token, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn sql(server: &Server, token: &str, statement: &str) -> Value {
    let resp = client()
        .post(format!("{}/api/sql", server.url))
        .bearer_auth(token)
        .json(&json!({ "sql": statement }))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().unwrap();
    assert_eq!(status, 200, "{statement}: {body}");
    assert!(body.get("partial").is_none(), "{statement}: {body}");
    body
}

fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 300 entries over the last hour, every agent, host, level and word mixed.
fn entries(now_s: i64) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..300)
        .map(|i| {
            let words: Vec<&str> = (0..3).map(|_| WORDS[rng.gen_range(0..5)]).collect();
            json!({
                "timestamp": logyard_model::format_rfc3339((now_s - 3500 + i as i64 * 10) * 1_000_000_000),
                "agent": AGENTS[rng.gen_range(0..4)],
                "host": HOSTS[rng.gen_range(0..3)],
                "level": LEVELS[rng.gen_range(0..5)],
                "message": format!("{} request {i}", words.join(" ")),
            })
        })
        .collect()
}

fn ingest(server: &Server, token: &str, body: &Value) {
    let resp = client()
        .post(format!("{}/api/logs", server.url))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    assert_eq!(status, 200, "{}", resp.text().unwrap());
}

/// A random query of the query language over the test's labels, levels and words.
fn random_query(rng: &mut StdRng) -> String {
    let term = |rng: &mut StdRng| match rng.gen_range(0..5) {
        0 => format!("agent:{}", AGENTS[rng.gen_range(0..4)]),
        1 => format!("host:{}", HOSTS[rng.gen_range(0..3)]),
        2 => format!("level:{}", LEVELS[rng.gen_range(0..5)]),
        3 => format!("level:>={}", LEVELS[rng.gen_range(0..5)]),
        _ => WORDS[rng.gen_range(0..5)].to_string(),
    };
    match rng.gen_range(0..5) {
        0 => "*".to_string(),
        1 => term(rng),
        2 => format!("{} AND {}", term(rng), term(rng)),
        3 => format!("{} OR {}", term(rng), term(rng)),
        _ => format!("NOT {} AND ({} OR {})", term(rng), term(rng), term(rng)),
    }
}

fn ids(logs: &Value) -> BTreeSet<String> {
    logs.as_array()
        .expect("logs")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn count_by(entries: &[&Value], name: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in entries {
        *out.entry(field(e, name).to_string()).or_default() += 1;
    }
    out
}

/// The rows of a table answer as sorted JSON texts (a multiset).
fn rows(answer: &Value) -> Vec<String> {
    let mut out: Vec<String> = answer["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(Value::to_string)
        .collect();
    out.sort();
    out
}

#[test]
fn a_scoped_token_reads_exactly_the_unscoped_answer_filtered_by_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let now_s = logyard_model::now_ns() / 1_000_000_000;
    ingest(&server, ADMIN, &Value::Array(entries(now_s)));
    let everything = get_ok(&server, ADMIN, "/api/query?q=*&limit=1000");
    assert_eq!(everything["logs"].as_array().unwrap().len(), 300);
    let mut rng = StdRng::seed_from_u64(42);
    for scope in scopes() {
        let token = secret_of(scope.name);
        let token = token.as_str();
        let keeps = scope.keeps;
        let what = |path: &str| format!("scope {:?}, {path}", scope.text);

        // The query language, as records and as a table, for random queries.
        for _ in 0..25 {
            let q = random_query(&mut rng);
            let path = format!("/api/query?q={}&limit=1000", enc(&q));
            let all = get_ok(&server, ADMIN, &path);
            let expected: Vec<&Value> = all["logs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| keeps(e))
                .collect();
            let mine = get_ok(&server, token, &path);
            let expected_ids: BTreeSet<String> = expected
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(ids(&mine["logs"]), expected_ids, "{}", what(&path));
            assert_eq!(mine["total"], expected.len(), "{}", what(&path));

            let stats = format!("{q} | stats count() by (agent)");
            let path = format!("/api/query?q={}", enc(&stats));
            let table = get_ok(&server, token, &path);
            let got: BTreeMap<String, u64> = table["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap()))
                .collect();
            assert_eq!(got, count_by(&expected, "agent"), "{}", what(&path));

            let path = format!("/api/export?q={}&format=ndjson", enc(&q));
            let resp = client()
                .get(format!("{}{path}", server.url))
                .bearer_auth(token)
                .send()
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let exported: BTreeSet<String> = resp
                .text()
                .unwrap()
                .lines()
                .map(|l| {
                    let v: Value = serde_json::from_str(l).unwrap();
                    v["id"].as_str().unwrap().to_string()
                })
                .collect();
            assert_eq!(exported, expected_ids, "{}", what(&path));

            let path = format!("/api/histogram?q={}&start=2h", enc(&q));
            let hist = get_ok(&server, token, &path);
            let total: u64 = hist["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|b| b["counts"].as_object().unwrap().values())
                .map(|n| n.as_u64().unwrap())
                .sum();
            assert_eq!(total, expected.len() as u64, "{}", what(&path));
        }

        let all: Vec<&Value> = everything["logs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| keeps(e))
            .collect();
        assert!(!all.is_empty() && all.len() < 300, "{}", scope.text);

        // The seed endpoints.
        let page = get_ok(&server, token, "/api/logs?limit=1000");
        assert_eq!(page["total"], all.len(), "{}", what("/api/logs"));
        let agent = AGENTS[0];
        let page = get_ok(
            &server,
            token,
            &format!("/api/logs/agent/{agent}?limit=1000"),
        );
        let of_agent = all.iter().filter(|e| field(e, "agent") == agent).count();
        assert_eq!(page["total"], of_agent, "{}", what("/api/logs/agent"));
        let page = get_ok(&server, token, "/api/logs/search?q=pay.ent&limit=1000");
        let paying = all.iter().filter(|e| has_word(e, "payment")).count();
        assert_eq!(page["total"], paying, "{}", what("/api/logs/search"));

        // Agents and stats.
        let agents = get_ok(&server, token, "/api/agents");
        let got: BTreeMap<String, u64> = agents["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, count_by(&all, "agent"), "{}", what("/api/agents"));
        let stats = get_ok(&server, token, "/api/stats");
        assert_eq!(stats["total"], all.len(), "{}", what("/api/stats"));
        assert!(stats["bytes_stored"].is_null() && stats["ingest_rate_per_s"].is_null());

        // The error summary, the report and the analyses.
        let errors = all
            .iter()
            .filter(|e| ["ERROR", "CRITICAL"].contains(&field(e, "level")))
            .count();
        let summary = get_ok(&server, token, "/api/errors/summary?hours=2");
        assert_eq!(
            summary["total_error_entries"],
            errors,
            "{}",
            what("/api/errors/summary")
        );
        let report = get_ok(&server, token, "/api/report?since=2h");
        assert_eq!(
            report["counts"]["total"],
            all.len(),
            "{}",
            what("/api/report")
        );
        let outside: Vec<&str> = AGENTS
            .iter()
            .filter(|a| !all.iter().any(|e| field(e, "agent") == **a))
            .copied()
            .collect();
        for path in [
            "/api/report?since=2h",
            "/api/analyses/slow?hours=2",
            "/api/analyses/auth?hours=2",
            "/api/analyses/db?hours=2",
            "/api/errors/summary?hours=2",
        ] {
            let text = get_ok(&server, token, path).to_string();
            for agent in &outside {
                assert!(!text.contains(agent), "{}: {agent} in {text}", what(path));
            }
        }

        // Context: an entry outside the scope is not found; the neighbours of one inside it
        // are all inside it.
        let outsider = everything["logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| !keeps(e))
            .unwrap();
        let (status, _) = get(
            &server,
            token,
            &format!("/api/logs/{}/context", outsider["id"].as_str().unwrap()),
        );
        assert_eq!(status, 404, "{}", what("context of an entry outside"));
        let inside = all[all.len() / 2]["id"].as_str().unwrap();
        let context = get_ok(
            &server,
            token,
            &format!("/api/logs/{inside}/context?before=50&after=50"),
        );
        let shown = context["logs"].as_array().unwrap();
        assert!(shown.iter().any(|e| e["id"] == inside));
        assert!(shown.iter().all(keeps), "{}", what("context"));

        // SQL: each statement answers what the same statement answers over a table holding
        // only the scope's rows.
        let table = format!("(SELECT * FROM logs WHERE {})", scope.sql);
        for template in [
            "SELECT id FROM {T} t",
            "SELECT count(*) AS n FROM {T} t",
            "SELECT agent, level, count(*) AS n FROM {T} t GROUP BY agent, level",
            "SELECT a.id, b.level FROM {T} a JOIN {T} b ON a.agent = b.agent AND a.id < b.id \
             WHERE b.level = 'CRITICAL' AND a.level = 'DEBUG'",
            "SELECT id FROM {T} t WHERE agent IN (SELECT agent FROM {T} u WHERE level = 'CRITICAL')",
            "SELECT (SELECT count(*) FROM {T} u) AS n, max(timestamp) AS newest FROM {T} t",
            "SELECT id FROM {T} t WHERE level = 'ERROR' UNION ALL SELECT id FROM {T} u WHERE host = 'db-1'",
            "WITH e AS (SELECT * FROM {T} t WHERE level >= 'E') SELECT host, count(*) FROM e GROUP BY host",
        ] {
            let mine = sql(&server, token, &template.replace("{T}", "logs"));
            let oracle = sql(&server, ADMIN, &template.replace("{T}", &table));
            assert_eq!(rows(&mine), rows(&oracle), "{}", what(template));
        }
        let n = sql(&server, token, "SELECT count(*) FROM logs");
        assert_eq!(n["rows"][0][0], all.len(), "{}", what("count(*)"));
        for explain in [
            "EXPLAIN SELECT * FROM logs",
            "EXPLAIN ANALYZE SELECT count(*) FROM logs",
        ] {
            let plan = sql(&server, token, explain).to_string();
            // The plan names the scope's own filter (with its level operator), and no agent
            // outside it.
            if scope.text.contains("level:>=WARNING") {
                assert!(plan.contains("level >= WARNING"), "{plan}");
            }
            for agent in outside.iter().filter(|a| !scope.text.contains(**a)) {
                assert!(!plan.contains(agent), "{}: {plan}", what(explain));
            }
        }
    }
    // What covers every agent is refused (after the comparisons above: each refusal writes
    // an audit entry); an unscoped read token gets it.
    for scope in scopes() {
        let token = secret_of(scope.name);
        for path in [
            "/metrics",
            "/api/alerts",
            "/api/alerts/rules",
            "/api/sources",
        ] {
            let (status, body) = get(&server, &token, path);
            assert_eq!(status, 403, "{}, {path}: {body}", scope.text);
            assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(scope.text));
            let resp = client()
                .get(format!("{}{path}", server.url))
                .bearer_auth(secret_of("all"))
                .send()
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{path} unscoped");
        }
    }
    // Refusals are counted.
    let metrics = client()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("logyard_audit_events_total{event=\"scope_refused\"} 16"),
        "{metrics}"
    );
}

/// Reads server-sent events until one whose data contains `marker`; returns the data lines.
fn events_until(resp: Response, marker: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in BufReader::new(resp).lines() {
        let line = line.unwrap();
        if let Some(data) = line.strip_prefix("data:") {
            let v: Value = serde_json::from_str(data.trim()).unwrap();
            let done = v.to_string().contains(marker);
            out.push(v);
            if done {
                return out;
            }
        }
    }
    panic!("the tail ended before {marker}");
}

#[test]
fn a_scoped_live_tail_shows_only_entries_inside_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let tail = Client::builder()
        .build()
        .unwrap()
        .get(format!("{}/api/tail?q=*", server.url))
        .bearer_auth(secret_of("billing"))
        .send()
        .unwrap();
    assert_eq!(tail.status().as_u16(), 200);
    // The subscription starts with the answer; entries sent after it reach the tail.
    std::thread::sleep(Duration::from_millis(300));
    let now_s = logyard_model::now_ns() / 1_000_000_000;
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.push(json!({"timestamp": logyard_model::format_rfc3339(now_s * 1_000_000_000), "agent": AGENTS[i % 4], "message": format!("live {i}")}));
    }
    batch.push(json!({"agent": "billing-api", "message": "live end"}));
    ingest(&server, ADMIN, &Value::Array(batch));
    let seen = events_until(tail, "live end");
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert!(seen
        .iter()
        .all(|e| field(e, "agent").starts_with("billing-")));
}

#[test]
fn an_ingest_token_with_labels_writes_them_over_what_its_entries_say() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let now_ns = logyard_model::now_ns();
    ingest(
        &server,
        PINNED,
        &json!({"agent": "billing-api", "host": "web-1", "message": "native entry"}),
    );
    let loki = json!({"streams": [{
        "stream": {"agent": "billing-api", "host": "web-2"},
        "values": [[now_ns.to_string(), "loki entry"]]
    }]});
    let bulk = "{\"index\": {}}\n{\"message\": \"bulk entry\", \"host\": \"db-1\", \"agent\": \"indexer\"}\n";
    let otlp = json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "billing-api"}},
            {"key": "host.name", "value": {"stringValue": "web-1"}}
        ]},
        "scopeLogs": [{"logRecords": [{"body": {"stringValue": "otlp entry"}}]}]
    }]});
    for (path, content_type, body) in [
        ("/loki/api/v1/push", "application/json", loki.to_string()),
        ("/logs/_bulk", "application/x-ndjson", bulk.to_string()),
        ("/v1/logs", "application/json", otlp.to_string()),
    ] {
        let resp = client()
            .post(format!("{}{path}", server.url))
            .bearer_auth(PINNED)
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        assert!(status.is_success(), "{path}: {text}");
        assert!(!text.contains("\"errors\":true"), "{path}: {text}");
    }
    let page = get_ok(&server, ADMIN, "/api/query?q=*&limit=100");
    let logs = page["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 4, "{page}");
    for entry in logs {
        assert_eq!(field(entry, "host"), "pinned-host", "{entry}");
        assert_eq!(field(entry, "agent"), "pinned-agent", "{entry}");
        // A field that repeats a fixed label's name (Loki's stream labels) is dropped.
        assert!(entry["fields"].get("host").is_none(), "{entry}");
        assert!(entry["fields"].get("agent").is_none(), "{entry}");
    }
}

#[test]
fn scopes_and_labels_are_checked_when_the_configuration_is_read() {
    let dir = tempfile::tempdir().unwrap();
    for (token, expected) in [
        (
            "role = \"ingest\"\nscope = \"agent:a\"",
            "only a `read` token may have a scope",
        ),
        ("role = \"read\"\nscope = \"agent:(\"", "scope \"agent:(\""),
        ("role = \"read\"\nscope = \"*\"", "keeps every entry"),
        (
            "role = \"read\"\nlabels = { host = \"h\" }",
            "only an `ingest` token may fix labels",
        ),
        (
            "role = \"ingest\"\nlabels = { region = \"eu\" }",
            "`region` is not a label",
        ),
    ] {
        let config = dir.path().join("logyard.toml");
        std::fs::write(
            &config,
            format!(
                "[[auth.tokens]]\nname = \"t\"\nhash = \"{}\"\n{token}\n",
                hash(ADMIN)
            ),
        )
        .unwrap();
        let err = Server::try_start(
            &dir.path().join("data"),
            &["--config", config.to_str().unwrap()],
        )
        .err()
        .unwrap_or_else(|| panic!("{token}: the server started"));
        assert!(err.contains(expected), "{token}: {err}");
    }
    // `logyard token new` prints the scope and labels lines, checked the same way.
    let out = util::run(
        dir.path(),
        &[
            "token",
            "new",
            "--name",
            "billing",
            "--role",
            "read",
            "--scope",
            "agent:billing-*",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("scope = \"agent:billing-*\""),
        "{text}"
    );
    let out = util::run(
        dir.path(),
        &[
            "token",
            "new",
            "--name",
            "edge",
            "--role",
            "ingest",
            "--label",
            "host=web-1",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("labels = { host = \"web-1\" }"),
        "{text}"
    );
    let out = util::run(
        dir.path(),
        &[
            "token", "new", "--name", "x", "--role", "ingest", "--scope", "a",
        ],
    );
    assert!(!out.status.success());
}
