//! Limits of one token and the audit of tokens' use, through the real binary: an ingest token
//! over its rate gets `429` with `Retry-After` and nothing of the refused request is stored;
//! a token past its concurrent queries gets `429`; failed logins, administrators' requests
//! and scope escapes are audit entries of `logyard-audit` (never with the secret), counted in
//! `/metrics`, found by the auth analysis; an address that keeps failing is held.

mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::Client;
use serde_json::{json, Value};
use util::Server;

const ADMIN: &str = "admin-secret-0123456789ab";
const SLOW: &str = "ingest-slow-0123456789ab";
const ONE: &str = "read-one-query-0123456789";
const TEAM: &str = "read-team-0123456789abcd";

fn hash(secret: &str) -> String {
    logyard_api::auth::format_hash(&logyard_api::auth::sha256(secret.as_bytes()))
}

fn start(dir: &Path) -> Server {
    let config = format!(
        "[[auth.tokens]]\nname = \"root\"\nrole = \"admin\"\nhash = \"{}\"\n\n\
         [[auth.tokens]]\nname = \"slow\"\nrole = \"ingest\"\nhash = \"{}\"\n\
         max_lines_per_second = 100\n\n\
         [[auth.tokens]]\nname = \"one\"\nrole = \"read\"\nhash = \"{}\"\n\
         max_concurrent_queries = 1\n\n\
         [[auth.tokens]]\nname = \"team\"\nrole = \"read\"\nhash = \"{}\"\n\
         scope = \"agent:web\"\n",
        hash(ADMIN),
        hash(SLOW),
        hash(ONE),
        hash(TEAM)
    );
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

fn post_lines(server: &Server, token: &str, n: usize, tag: &str) -> reqwest::blocking::Response {
    let entries: Vec<Value> = (0..n)
        .map(|i| json!({"agent": "web", "message": format!("{tag} {i}")}))
        .collect();
    client()
        .post(format!("{}/api/logs", server.url))
        .bearer_auth(token)
        .json(&entries)
        .send()
        .unwrap()
}

fn count(server: &Server, q: &str) -> u64 {
    let resp: Value = client()
        .get(format!("{}/api/query", server.url))
        .query(&[("q", format!("{q} | stats count()"))])
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    resp["rows"][0][0].as_u64().unwrap_or(0)
}

#[test]
fn an_ingest_token_over_its_rate_waits_for_retry_after_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    // 300 lines at 100 a second: admitted (the token goes 2 s into debt) ...
    let resp = post_lines(&server, SLOW, 300, "first");
    assert_eq!(resp.status().as_u16(), 200);
    // ... so the next request is refused before its body is read.
    let resp = post_lines(&server, SLOW, 10, "refused");
    assert_eq!(resp.status().as_u16(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&wait), "Retry-After {wait}");
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_lines_per_second"));
    // Another token is not held by this one's debt.
    assert_eq!(
        post_lines(&server, ADMIN, 5, "other").status().as_u16(),
        200
    );
    // The shippers' endpoints are held the same way.
    let loki = client()
        .post(format!("{}/loki/api/v1/push", server.url))
        .bearer_auth(SLOW)
        .header("content-type", "application/json")
        .body(
            r#"{"streams": [{"stream": {"job": "j"}, "values": [["1700000000000000000", "l"]]}]}"#,
        )
        .send()
        .unwrap();
    assert_eq!(loki.status().as_u16(), 429);
    assert!(loki.headers().contains_key("retry-after"));
    // Honouring Retry-After, the client is admitted again.
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(
        post_lines(&server, SLOW, 10, "after").status().as_u16(),
        200
    );
    assert_eq!(count(&server, "first"), 300);
    assert_eq!(count(&server, "refused"), 0);
    assert_eq!(count(&server, "after"), 10);
    let metrics = client()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("logyard_token_limited_total 2"),
        "{metrics}"
    );
}

#[test]
fn a_token_past_its_concurrent_queries_is_refused_until_one_ends() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let entries: Vec<Value> = (0..20_000)
        .map(|i| json!({"agent": format!("a{}", i % 3), "message": format!("entry {i}")}))
        .collect();
    let resp = client()
        .post(format!("{}/api/logs", server.url))
        .bearer_auth(ADMIN)
        .json(&entries)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // A statement that takes a while: a self-join counted per agent.
    let heavy = json!({"sql": "SELECT a.agent, count(*) FROM logs a JOIN logs b \
                                ON a.agent = b.agent AND a.id < b.id GROUP BY a.agent"});
    let statuses: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let resp = client()
                        .post(format!("{}/api/sql", server.url))
                        .bearer_auth(ONE)
                        .json(&heavy)
                        .send()
                        .unwrap();
                    (resp.status().as_u16(), resp.text().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().any(|(s, _)| *s == 200), "{statuses:?}");
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!refused.is_empty(), "{statuses:?}");
    assert!(refused
        .iter()
        .all(|(_, body)| body.contains("too_many_queries")));
    // Once they ended, the token queries again.
    let resp = client()
        .get(format!("{}/api/query?q=*&limit=1", server.url))
        .bearer_auth(ONE)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn failed_logins_admin_actions_and_scope_escapes_are_audited_and_a_failing_address_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let wrong_secret = "wrong-secret-that-must-never-be-stored";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("team:{wrong_secret}"));
    // Five failed logins (the default report.suspicious_failures): answered 401.
    for i in 0..5 {
        let builder = client().get(format!("{}/api/logs?limit=1", server.url));
        let builder = if i == 0 {
            builder.header("authorization", format!("Basic {basic}"))
        } else {
            builder.bearer_auth(wrong_secret)
        };
        assert_eq!(builder.send().unwrap().status().as_u16(), 401);
    }
    // A request without any token is refused, and not audited.
    let resp = client()
        .get(format!("{}/api/logs", server.url))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // The sixth is still checked; past it, the address is held.
    let resp = client()
        .get(format!("{}/api/logs", server.url))
        .bearer_auth(wrong_secret)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = client()
        .get(format!("{}/api/logs", server.url))
        .bearer_auth(wrong_secret)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 500 && wait <= 600, "{wait}");
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "too_many_failures");
    // A valid token from the same address still works.
    let resp = client()
        .get(format!("{}/api/logs?limit=1", server.url))
        .bearer_auth(TEAM)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // A scope escape, and an administrator's request to an administrator's endpoint.
    let resp = client()
        .get(format!("{}/api/sources", server.url))
        .bearer_auth(TEAM)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = client()
        .delete(format!("{}/api/logs", server.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);

    let started = Instant::now();
    let audit = loop {
        let page: Value = client()
            .get(format!(
                "{}/api/logs?agent=logyard-audit&limit=100",
                server.url
            ))
            .bearer_auth(ADMIN)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if page["total"].as_u64() >= Some(8) || started.elapsed() > Duration::from_secs(10) {
            break page;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let logs = audit["logs"].as_array().unwrap();
    let of = |event: &str| -> Vec<&Value> {
        logs.iter()
            .filter(|e| e["fields"]["event"] == event)
            .collect()
    };
    assert_eq!(of("login_failed").len(), 6, "{audit}");
    assert_eq!(of("scope_refused").len(), 1, "{audit}");
    assert_eq!(of("admin_action").len(), 1, "{audit}");
    assert!(logs.iter().all(|e| e["fields"]["ip"] == "127.0.0.1"));
    assert!(of("login_failed")
        .iter()
        .any(|e| e["fields"]["token"] == "team"));
    assert!(of("scope_refused")[0]["message"]
        .as_str()
        .unwrap()
        .contains("/api/sources"));
    assert_eq!(of("admin_action")[0]["fields"]["token"], "root");
    // The secret is nowhere in the store.
    assert_eq!(count(&server, wrong_secret), 0);
    assert!(!audit.to_string().contains(wrong_secret));
    // The auth analysis finds the brute force against logyard itself.
    let analysis = client()
        .get(format!("{}/api/analyses/auth?hours=1", server.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(analysis.contains("127.0.0.1"), "{analysis}");
    let metrics = client()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "logyard_audit_events_total{event=\"login_failed\"} 6",
        "logyard_audit_events_total{event=\"scope_refused\"} 1",
        "logyard_audit_events_total{event=\"admin_action\"} 1",
        "logyard_auth_throttled_total 1",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
}
