//! Several nodes over one bucket (`serve --role ingest|query`), through the real binary and
//! a real S3 API server (moto): each ingest node stores under its own `node=<id>/` folder of
//! the prefix and publishes a manifest there; a query node reads every manifest and answers
//! as one node holding the same entries would.

#[path = "util/ca.rs"]
mod ca;
#[path = "util/moto.rs"]
mod moto;
mod util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moto::Moto;
use serde_json::{json, Value};
use util::Server;

const CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
];

/// A running S3 API with the bucket `logs`, and a directory for the nodes.
fn bucket() -> (Moto, tempfile::TempDir) {
    let moto = Moto::start();
    moto.create_bucket("logs");
    (moto, tempfile::tempdir().unwrap())
}

/// A configuration file over the bucket `logs` of `endpoint` under `prefix` (or the local
/// folder when `endpoint` is empty), with more `[storage]` keys.
fn config_file(dir: &Path, endpoint: &str, prefix: &str) -> PathBuf {
    config_with(dir, endpoint, prefix, "")
}

fn config_with(dir: &Path, endpoint: &str, prefix: &str, storage_keys: &str) -> PathBuf {
    let path = dir.join(format!("logyard-{prefix}.toml"));
    let storage = if endpoint.is_empty() {
        String::new()
    } else {
        format!(
            "[storage]\ntype = \"s3\"\nbucket = \"logs\"\nprefix = \"{prefix}\"\nendpoint = \"{endpoint}\"\n\
             region = \"us-east-1\"\nrefresh_interval = \"500ms\"\n{storage_keys}"
        )
    };
    std::fs::write(
        &path,
        format!("[store]\nretention_days = 0\nflush_interval = \"200ms\"\n\n{storage}"),
    )
    .unwrap();
    path
}

/// A configuration file of nodes that never flush while they run (their entries stay in
/// their memtables) over the bucket `logs` of `endpoint` under `cluster`, whose query nodes
/// ask for the last entries every 200 ms; `more` goes at the end of `[storage]`.
fn memtable_config(dir: &Path, endpoint: &str, more: &str) -> PathBuf {
    let path = dir.join("logyard.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nretention_days = 0\nflush_interval = \"1h\"\n\n[storage]\ntype = \"s3\"\n\
             bucket = \"logs\"\nprefix = \"cluster\"\nendpoint = \"{endpoint}\"\n\
             region = \"us-east-1\"\nrefresh_interval = \"500ms\"\nrecent_interval = \"200ms\"\n{more}"
        ),
    )
    .unwrap();
    path
}

/// `n` entries of `agent` over two days, one in ten an error.
fn entries(agent: &str, verb: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"timestamp": format!("2024-01-{:02}T10:{:02}:{:02}Z", 15 + i % 2, i / 60 % 60, i % 60),
                   "level": if i % 10 == 0 { "error" } else { "info" },
                   "agent": agent, "message": format!("{agent} {i} {verb}")})
        })
        .collect()
}

/// The rows of a query over all of 2024, sorted.
fn answer(server: &Server, query: &str) -> Value {
    let (status, answer) = server.get(&format!(
        "/api/query?q={}&start=2024-01-01T00:00:00Z",
        query
            .replace(' ', "%20")
            .replace('|', "%7C")
            .replace('"', "%22")
    ));
    assert_eq!(status, 200, "{query}: {answer}");
    answer
}

/// The rows of a whole answer (not partial) to a query, sorted.
fn rows(server: &Server, query: &str) -> Vec<Value> {
    let answer = answer(server, query);
    assert_ne!(answer["partial"], true, "{query}: {answer}");
    let mut rows = answer["rows"].as_array().cloned().unwrap_or_default();
    rows.sort_by_key(|r| r.to_string());
    rows
}

/// Asserts that `* | stats count()` answers `count`, marked partial for the one part of the
/// data named `missing`; returns the answer.
fn partial_count(server: &Server, count: u64, missing: &str) -> Value {
    let partial = answer(server, "* | stats count()");
    assert_eq!(partial["rows"], json!([[count]]), "{partial}");
    assert_eq!(partial["partial"], true, "{partial}");
    assert_eq!(
        partial["cost"]["segments_unreachable"],
        json!([missing]),
        "{partial}"
    );
    partial
}

/// The entries of an agent as (time, level, agent, message), in the answer's order.
fn listed(server: &Server, agent: &str) -> Vec<(String, String, String, String)> {
    server
        .all_of_agent(agent)
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("timestamp"), s("level"), s("agent"), s("message"))
        })
        .collect()
}

/// Waits until the query node serves `rows` rows from the bucket (60 s at most); returns its
/// `/api/nodes` answer.
fn wait_served(query: &Server, rows: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, nodes) = query.get("/api/nodes");
        assert_eq!(status, 200, "{nodes}");
        let served: u64 = nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["rows"].as_u64().unwrap())
            .sum();
        let linked = nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["linked"] == true);
        if served == rows && linked {
            return nodes;
        }
        assert!(
            Instant::now() < deadline,
            "served {served} of {rows}: {nodes}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_ingest_nodes_and_a_query_node_answer_as_one_node_holding_every_entry() {
    let (moto, dir) = bucket();
    let shared = config_file(dir.path(), &moto.endpoint, "cluster");
    let args = |role: &'static str| -> Vec<String> {
        vec![
            "--config".into(),
            shared.display().to_string(),
            "--role".into(),
            role.into(),
        ]
    };
    let start = |name: &str, role: &'static str| {
        let a = args(role);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        Server::start_with_env(&dir.path().join(name), &a, &CREDENTIALS)
    };
    let first = start("first", "ingest");
    let second = start("second", "ingest");
    let query = start("query", "query");
    let local = config_file(dir.path(), "", "single");
    let single = Server::start(
        &dir.path().join("single"),
        &["--config", local.to_str().unwrap()],
    );

    let billing = entries("billing", "settled", 300);
    let search = entries("search", "answered", 200);
    first.post_entries(&billing);
    second.post_entries(&search);
    single.post_entries(&billing);
    single.post_entries(&search);

    let nodes = wait_served(&query, 500);
    let ids: Vec<String> = ["first", "second"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.path().join(n).join("state/node-id"))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let listed_nodes = nodes["nodes"].as_array().unwrap();
    assert_eq!(listed_nodes.len(), 2, "{nodes}");
    for (id, rows) in ids.iter().zip([300, 200]) {
        let node = listed_nodes
            .iter()
            .find(|n| n["node"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} in {nodes}"));
        assert_eq!(node["location"], format!("s3://logs/cluster/node={id}"));
        assert_eq!(node["rows"], rows, "{nodes}");
        assert_eq!(node["error"], Value::Null, "{nodes}");
        assert_eq!(node["linked"], true, "{nodes}");
        assert!(node["age_seconds"].as_f64().unwrap() < 60.0, "{nodes}");
    }

    // Each node wrote under its own folder, Hive-style, with its manifest.
    let keys = moto.keys("logs", "cluster/");
    for id in &ids {
        assert!(
            keys.contains(&format!("cluster/node={id}/manifest.json")),
            "{keys:?}"
        );
        assert!(
            keys.iter().any(
                |k| k.starts_with(&format!("cluster/node={id}/day=2024-01-15/seg-"))
                    && k.ends_with(".parquet")
            ),
            "{keys:?}"
        );
    }

    // Another engine reads the bucket as one Hive-partitioned dataset, by node and day.
    let read = moto.read_as_dataset("logs", "cluster");
    assert_eq!(read["rows"], 500, "{read}");
    assert_eq!(
        read["by_node"],
        json!({ids[0].as_str(): 300, ids[1].as_str(): 200}),
        "{read}"
    );

    for q in [
        "* | stats count()",
        "level:ERROR | stats count()",
        "* | stats count() by agent",
        "* | stats count() by level",
        "\"billing 77 settled\" | stats count()",
        "search | histogram 1d by level",
        "* | top 5 agent",
    ] {
        assert_eq!(rows(&query, q), rows(&single, q), "{q}");
    }
    for agent in ["billing", "search"] {
        assert_eq!(listed(&query, agent), listed(&single, agent), "{agent}");
    }
    let sql = |server: &Server| {
        let (status, answer) = server.post(
            "/api/sql",
            "application/json",
            serde_json::to_vec(&json!({"sql": "SELECT agent, count(*) AS n FROM logs GROUP BY agent ORDER BY agent"})).unwrap(),
        );
        assert_eq!(status, 200, "{answer}");
        answer["rows"].clone()
    };
    assert_eq!(sql(&query), sql(&single));

    // Entries acknowledged a moment ago are in the query node's answers too.
    let late = entries("search", "retried", 20);
    second.post_entries(&late);
    single.post_entries(&late);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&query, "* | stats count() by agent") != rows(&single, "* | stats count() by agent")
    {
        assert!(Instant::now() < deadline, "the last entries are not served");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listed(&query, "search"), listed(&single, "search"));

    // A query node stores nothing: entries go to an ingest node.
    let (status, answer) = query.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(&billing[..1]).unwrap(),
    );
    assert_eq!(status, 421, "{answer}");
    assert_eq!(answer["error"]["code"], "read_only", "{answer}");

    // An ingest node stopped: what it stored stays served from the bucket.
    first.stop();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        rows(&query, "* | stats count()"),
        rows(&single, "* | stats count()")
    );
    query.stop();
    let outside: Vec<String> = moto
        .keys("logs", "")
        .into_iter()
        .filter(|k| {
            !ids.iter()
                .any(|id| k.starts_with(&format!("cluster/node={id}/")))
        })
        .collect();
    assert_eq!(
        outside,
        Vec::<String>::new(),
        "a query node writes nothing to the bucket"
    );
}

#[test]
fn a_prefix_without_a_manifest_is_named_until_its_node_publishes_one() {
    let (moto, dir) = bucket();
    let config = config_file(dir.path(), &moto.endpoint, "legacy");
    let config = config.to_str().unwrap();
    let data = dir.path().join("single");
    let single = Server::start_with_env(&data, &["--config", config], &CREDENTIALS);
    single.post_entries(&entries("billing", "settled", 100));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !moto
        .keys("logs", "legacy/")
        .contains(&"legacy/manifest.json".to_string())
        || single.metric("logyard_storage_upload_pending_files") != Some(0.0)
    {
        assert!(Instant::now() < deadline, "no manifest published");
        std::thread::sleep(Duration::from_millis(100));
    }
    single.stop();
    // As a bucket written by a version that published no manifest.
    moto.delete("logs", "legacy/manifest.json");

    let query = Server::start_with_env(
        &dir.path().join("query"),
        &["--config", config, "--role", "query"],
        &CREDENTIALS,
    );
    let (_, nodes) = query.get("/api/nodes");
    assert_eq!(nodes["following"], true, "{nodes}");
    let node = &nodes["nodes"][0];
    assert_eq!(node["location"], "s3://logs/legacy", "{nodes}");
    assert!(
        node["error"]
            .as_str()
            .is_some_and(|e| e.contains("no manifest.json")),
        "{nodes}"
    );
    // Its segments are not served, and every answer says so.
    partial_count(
        &query,
        0,
        "s3://logs/legacy: every entry (no manifest read)",
    );

    // Its node started again with this version publishes one.
    let single = Server::start_with_env(&data, &["--config", config], &CREDENTIALS);
    let nodes = wait_served(&query, 100);
    assert_eq!(nodes["nodes"][0]["error"], Value::Null, "{nodes}");
    assert_eq!(rows(&query, "* | stats count()"), vec![json!([100])]);
    single.stop();
}

#[test]
fn an_ingest_node_killed_or_started_again_on_an_empty_disk_loses_nothing_uploaded_and_doubles_nothing(
) {
    let (moto, dir) = bucket();
    let config = config_with(
        dir.path(),
        &moto.endpoint,
        "cluster",
        "node = \"ingest-1\"\n",
    );
    let config = config.to_str().unwrap();
    let query = Server::start_with_env(
        &dir.path().join("query"),
        &["--config", config, "--role", "query"],
        &CREDENTIALS,
    );
    let data = dir.path().join("node");
    let ingest = ["--config", config, "--role", "ingest"];
    let node = Server::start_with_env(&data, &ingest, &CREDENTIALS);
    node.post_entries(&entries("billing", "settled", 100));
    // Killed at once: before, during or after its uploads and its manifest.
    node.kill();
    let node = Server::start_with_env(&data, &ingest, &CREDENTIALS);
    let nodes = wait_served(&query, 100);
    assert_eq!(nodes["nodes"][0]["node"], "ingest-1", "{nodes}");
    assert_eq!(
        nodes["nodes"][0]["location"],
        "s3://logs/cluster/node=ingest-1"
    );
    assert_eq!(rows(&query, "* | stats count()"), vec![json!([100])]);

    // Its disk lost: started on an empty one, it takes its folder back from the bucket.
    node.kill();
    std::fs::remove_dir_all(&data).unwrap();
    let node = Server::start_with_env(&data, &ingest, &CREDENTIALS);
    assert_eq!(rows(&node, "* | stats count()"), vec![json!([100])]);
    node.post_entries(&entries("search", "answered", 50));
    wait_served(&query, 150);
    assert_eq!(
        rows(&query, "* | stats count() by agent"),
        vec![json!(["billing", 100]), json!(["search", 50])]
    );
    node.stop();
}

#[test]
fn a_data_directory_of_another_node_is_refused() {
    let (moto, dir) = bucket();
    let data = dir.path().join("node");
    let first = config_with(dir.path(), &moto.endpoint, "a", "node = \"ingest-1\"\n");
    let node = Server::start_with_env(
        &data,
        &["--config", first.to_str().unwrap(), "--role", "ingest"],
        &CREDENTIALS,
    );
    node.stop();
    let second = config_with(dir.path(), &moto.endpoint, "b", "node = \"ingest-2\"\n");
    let refused = Server::try_start_with_env(
        &data,
        &["--config", second.to_str().unwrap(), "--role", "ingest"],
        &CREDENTIALS,
    )
    .err()
    .expect("refused");
    assert!(
        refused.contains("holds the store of node ingest-1, and [storage] node says ingest-2"),
        "{refused}"
    );
    let local = config_file(dir.path(), "", "local");
    let refused = Server::try_start(
        &dir.path().join("other"),
        &["--config", local.to_str().unwrap(), "--role", "query"],
    )
    .err()
    .expect("refused");
    assert!(
        refused.contains("--role query needs [storage] type = \"s3\""),
        "{refused}"
    );
}

#[test]
fn entries_still_in_an_ingest_nodes_memtable_are_served_by_a_query_node_once() {
    let (moto, dir) = bucket();
    // Nothing is flushed while the node runs: its entries are in its memtable only.
    let config = memtable_config(dir.path(), &moto.endpoint, "node = \"ingest-1\"\n");
    let config = config.to_str().unwrap();
    let data = dir.path().join("node");
    let ingest = ["--config", config, "--role", "ingest"];
    let node = Server::start_with_env(&data, &ingest, &CREDENTIALS);
    let query = Server::start_with_env(
        &dir.path().join("query"),
        &["--config", config, "--role", "query"],
        &CREDENTIALS,
    );
    node.post_entries(&entries("billing", "settled", 100));
    let (status, refused) = node.get("/api/node/recent?known=&since=0&max_bytes=lots");
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["error"]["message"], "max_bytes \"lots\" is not a number",
        "{refused}"
    );
    let nodes = wait_served(&query, 100);
    let status = &nodes["nodes"][0];
    assert_eq!(status["linked"], true, "{nodes}");
    assert_eq!(status["recent_rows"], 100, "{nodes}");
    assert_eq!(status["segments"], 0, "{nodes}");
    assert_eq!(rows(&query, "* | stats count()"), vec![json!([100])]);
    node.post_entries(&entries("search", "answered", 10));
    wait_served(&query, 110);
    assert_eq!(
        rows(&query, "* | stats count() by agent"),
        vec![json!(["billing", 100]), json!(["search", 10])]
    );

    // Stopped, the node writes its memtable to segments, uploads them (now or at its next
    // start) and publishes them: served from the bucket then, each row once.
    node.stop();
    let node = Server::start_with_env(&data, &ingest, &CREDENTIALS);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, nodes) = query.get("/api/nodes");
        let status = &nodes["nodes"][0];
        if status["linked"] == true && status["recent_rows"] == 0 && status["rows"] == 110 {
            break;
        }
        assert!(Instant::now() < deadline, "{nodes}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        rows(&query, "* | stats count() by agent"),
        vec![json!(["billing", 100]), json!(["search", 10])]
    );
    // A node that does not answer: what its manifest lists is served, and /api/nodes says so.
    node.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, nodes) = query.get("/api/nodes");
        let status = &nodes["nodes"][0];
        if status["linked"] == false {
            assert!(
                status["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("did not answer")),
                "{nodes}"
            );
            assert_eq!(status["rows"], 110, "{nodes}");
            break;
        }
        assert!(Instant::now() < deadline, "{nodes}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Killed while running, it may have had entries not in the bucket yet: every answer
    // names it as out of reach.
    let partial = partial_count(&query, 110, "node=ingest-1: entries not in the bucket yet");
    assert!(
        partial["reason"]
            .as_str()
            .is_some_and(|r| r.contains("did not answer")),
        "{partial}"
    );
}

#[test]
fn a_query_node_asks_nodes_that_require_tokens_with_the_token_it_is_given() {
    const ADMIN: &str = "admin-secret-0123456789ab";
    let hash = |s: &str| logyard_api::auth::format_hash(&logyard_api::auth::sha256(s.as_bytes()));
    let (moto, dir) = bucket();
    let config = memtable_config(
        dir.path(),
        &moto.endpoint,
        &format!(
            "node_token_env = \"LOGYARD_NODE_TOKEN\"\n\n\
             [[auth.tokens]]\nname = \"root\"\nrole = \"admin\"\nhash = \"{}\"\n",
            hash(ADMIN)
        ),
    );
    let config = config.to_str().unwrap();
    let node = Server::start_with_env(
        &dir.path().join("node"),
        &["--config", config, "--role", "ingest"],
        &CREDENTIALS,
    );
    let client = reqwest::blocking::Client::new();
    let sent = client
        .post(format!("{}/api/logs", node.url))
        .bearer_auth(ADMIN)
        .json(&entries("billing", "settled", 100))
        .send()
        .unwrap();
    assert_eq!(sent.status(), 200);

    let query_args = ["--config", config, "--role", "query"];
    let refused = Server::try_start_with_env(&dir.path().join("query"), &query_args, &CREDENTIALS)
        .err()
        .expect("refused without the token's variable");
    assert!(
        refused.contains("node_token_env names LOGYARD_NODE_TOKEN, which is not set"),
        "{refused}"
    );
    let nodes_of = |query: &Server| -> Value {
        client
            .get(format!("{}/api/nodes", query.url))
            .bearer_auth(ADMIN)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let mut env = CREDENTIALS.to_vec();
    env.push(("LOGYARD_NODE_TOKEN", "not-the-token"));
    let query = Server::start_with_env(&dir.path().join("query"), &query_args, &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = nodes_of(&query);
        let error = nodes["nodes"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if error.contains("401") {
            assert_eq!(nodes["nodes"][0]["linked"], false, "{nodes}");
            assert!(!error.contains("not-the-token"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "{nodes}");
        std::thread::sleep(Duration::from_millis(100));
    }
    query.stop();

    env.pop();
    env.push(("LOGYARD_NODE_TOKEN", ADMIN));
    let query = Server::start_with_env(&dir.path().join("query"), &query_args, &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = nodes_of(&query);
        if nodes["nodes"][0]["linked"] == true {
            // The entries, and the audit records of the wrong token's tries.
            let recent = nodes["nodes"][0]["recent_rows"].as_u64().unwrap();
            assert!(recent > 100, "{nodes}");
            break;
        }
        assert!(Instant::now() < deadline, "{nodes}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_query_node_reaches_nodes_over_https_trusting_the_authority_it_is_given() {
    let (moto, dir) = bucket();
    let d = dir.path();
    let authority = ca::Ca::new(d, "nodes-ca");
    authority.issue(d, "node", "localhost", false);
    // The ingest node serves HTTPS; the query nodes, plain HTTP, differ in what they trust.
    let config = |name: &str, more: &str| -> PathBuf {
        let path = d.join(format!("{name}.toml"));
        let base = std::fs::read_to_string(memtable_config(d, &moto.endpoint, more)).unwrap();
        std::fs::write(&path, base).unwrap();
        path
    };
    let node_config = config(
        "node",
        &format!(
            "node = \"ingest-1\"\n\n[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            d.join("node.pem").display(),
            d.join("node-key.pem").display()
        ),
    );
    let node = Server::start_with_env(
        &d.join("node"),
        &[
            "--config",
            node_config.to_str().unwrap(),
            "--role",
            "ingest",
        ],
        &CREDENTIALS,
    );
    assert!(node.url.starts_with("https://"), "{}", node.url);
    let pem = std::fs::read(&authority.pem).unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let sent = client
        .post(format!("{}/api/logs", node.url))
        .json(&entries("billing", "settled", 100))
        .send()
        .unwrap();
    assert_eq!(sent.status(), 200);

    // Not told of the authority: the node is not linked, and the error says what to set.
    let query_data = d.join("query");
    let untrusting = config("untrusting", "");
    let query = Server::start_with_env(
        &query_data,
        &["--config", untrusting.to_str().unwrap(), "--role", "query"],
        &CREDENTIALS,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, nodes) = query.get("/api/nodes");
        let error = nodes["nodes"][0]["error"].as_str().unwrap_or_default();
        if error.contains("certificate") {
            assert!(error.contains("[storage] node_ca_file"), "{nodes}");
            assert_eq!(nodes["nodes"][0]["linked"], false, "{nodes}");
            break;
        }
        assert!(Instant::now() < deadline, "{nodes}");
        std::thread::sleep(Duration::from_millis(100));
    }
    query.stop();

    // A file that is not PEM, or no file, stops the start and names the key.
    std::fs::write(d.join("not-pem.txt"), "hello").unwrap();
    for (file, said) in [
        ("not-pem.txt", "holds no PEM certificate"),
        ("absent.pem", "cannot be read"),
    ] {
        let bad = config(
            "bad",
            &format!("node_ca_file = \"{}\"\n", d.join(file).display()),
        );
        let refused = Server::try_start_with_env(
            &query_data,
            &["--config", bad.to_str().unwrap(), "--role", "query"],
            &CREDENTIALS,
        )
        .err()
        .expect("refused");
        assert!(
            refused.contains("[storage] node_ca_file") && refused.contains(said),
            "{refused}"
        );
    }

    // Told of it: the entries in the node's memtable are served over HTTPS.
    let trusting = config(
        "trusting",
        &format!("node_ca_file = \"{}\"\n", authority.pem.display()),
    );
    let query = Server::start_with_env(
        &query_data,
        &["--config", trusting.to_str().unwrap(), "--role", "query"],
        &CREDENTIALS,
    );
    let nodes = wait_served(&query, 100);
    assert_eq!(nodes["nodes"][0]["recent_rows"], 100, "{nodes}");
    assert_eq!(rows(&query, "* | stats count()"), vec![json!([100])]);
    drop(node);
}
