//! SQL over the `logs` table and the analyses, through the real binary: answers checked
//! against truth computed here and against `/api/query`, pruning visible in the cost and in
//! `EXPLAIN`, refused statements, budgets, and the CLI.

#[path = "util/moto.rs"]
mod moto;
mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use util::Server;

/// One generated entry and what the test knows of it.
struct Entry {
    ts: i64,
    level: &'static str,
    agent: &'static str,
    message: String,
    response_ms: Option<u64>,
    ip: Option<&'static str>,
}

const DAY: &str = "2024-01-15";
/// 2024-01-15T00:00:00Z in seconds.
const T0: i64 = 1_705_276_800;
const N: usize = 3000;

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Entries every 10 s from midnight: four agents, levels in turn, web requests with a
/// response time, planted logins, database errors and one rare word.
fn entries() -> Vec<Entry> {
    let levels = ["INFO", "INFO", "WARNING", "ERROR", "DEBUG"];
    (0..N)
        .map(|i| {
            let ts = T0 + i as i64 * 10;
            let level = levels[i % levels.len()];
            let (agent, message, response_ms, ip) = match i % 4 {
                0 => (
                    "web",
                    format!("GET /items/{} answered", i % 7),
                    Some(((i * 37) % 2000) as u64),
                    None,
                ),
                1 => ("billing", format!("invoice {i} settled"), None, None),
                2 => {
                    // 10.0.0.1 fails 8 times early on, 10.0.0.2 3 times; the rest succeed.
                    let k = i / 4;
                    if k < 8 {
                        (
                            "auth",
                            format!("login failed for user u{k}"),
                            None,
                            Some("10.0.0.1"),
                        )
                    } else if k < 11 {
                        (
                            "auth",
                            format!("login failed for user v{k}"),
                            None,
                            Some("10.0.0.2"),
                        )
                    } else {
                        ("auth", format!("login success for user w{k}"), None, None)
                    }
                }
                _ => {
                    let k = i / 4;
                    let text = if k % 50 == 0 {
                        "database query failed: deadlock detected".to_string()
                    } else if k % 50 == 1 {
                        "could not connect: connection refused by 10.1.1.1:5432".to_string()
                    } else {
                        format!("vacuum of table t{k} done")
                    };
                    ("postgres", text, None, None)
                }
            };
            let message = if i == 1234 {
                "the NEEDLE-7 here".to_string()
            } else {
                message
            };
            Entry {
                ts,
                level,
                agent,
                message,
                response_ms,
                ip,
            }
        })
        .collect()
}

fn to_json(e: &Entry) -> Value {
    let mut v = json!({"timestamp": rfc3339(e.ts), "level": e.level, "agent": e.agent,
                       "host": "h1", "message": e.message});
    if let Some(ms) = e.response_ms {
        v["response_time_ms"] = ms.into();
        v["path"] = "/items".into();
    }
    if let Some(ip) = e.ip {
        v["ip"] = ip.into();
    }
    v
}

/// A test's folder and configuration file; with `LOGYARD_TEST_STORAGE=s3`, the real S3 API
/// server (moto) its segments go to, behind a local tier that keeps no copy.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    _moto: Option<moto::Moto>,
}

impl Setup {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts a server with small blocks (so that pruning shows) and the given extra settings,
/// and ingests the entries.
fn setup(extra_config: &str) -> (Setup, Server, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    let mut storage = String::new();
    let moto = (std::env::var("LOGYARD_TEST_STORAGE").as_deref() == Ok("s3")).then(|| {
        // Inherited by the server and the CLI's runs.
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        let moto = moto::Moto::start();
        moto.create_bucket("logs");
        storage = format!(
            "\n[storage]\ntype = \"s3\"\nbucket = \"logs\"\nendpoint = \"{}\"\n\
             local_cache_bytes = 0\nlocal_days = 0\n",
            moto.endpoint
        );
        moto
    });
    std::fs::write(
        &config,
        format!(
            "[store]\nretention_days = 0\nblock_rows = 100\nflush_interval = \"100ms\"\n{extra_config}{storage}"
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let data = entries();
    for chunk in data.chunks(1000) {
        let body: Vec<Value> = chunk.iter().map(to_json).collect();
        let (status, answer) = server.post(
            "/api/logs",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], chunk.len());
    }
    // Let the flusher write segments, so that blocks can be skipped.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let setup = Setup {
        dir,
        config,
        _moto: moto,
    };
    (setup, server, data)
}

fn sql(server: &Server, text: &str) -> (u16, Value) {
    server.post(
        "/api/sql",
        "application/json",
        serde_json::to_vec(&json!({ "sql": text })).unwrap(),
    )
}

fn ok(server: &Server, text: &str) -> Value {
    let (status, answer) = sql(server, text);
    assert_eq!(status, 200, "{text}: {answer}");
    answer
}

fn query(server: &Server, q: &str) -> Value {
    let url = format!(
        "/api/query?q={}",
        q.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
    );
    let (status, answer) = server.get(&url);
    assert_eq!(status, 200, "{q}: {answer}");
    answer
}

/// A two-column table (key, count) as a map.
fn counts(answer: &Value) -> BTreeMap<String, u64> {
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or("").to_string(),
                r[1].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn sql_answers_match_the_truth_and_the_query_language() {
    let (_dir, server, data) = setup("");

    // Counts.
    let all = ok(&server, "SELECT count(*) AS n FROM logs");
    assert_eq!(all["columns"], json!(["n"]));
    assert_eq!(all["rows"], json!([[N]]));
    assert_eq!(query(&server, "* | stats count()")["rows"], json!([[N]]));

    // Group by level, against the truth and /api/query.
    let by_level = ok(
        &server,
        "SELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY level",
    );
    let mut truth: BTreeMap<String, u64> = BTreeMap::new();
    for e in &data {
        *truth.entry(e.level.into()).or_default() += 1;
    }
    assert_eq!(counts(&by_level), truth);
    assert_eq!(
        counts(&query(&server, "* | stats count() by (level)")),
        truth
    );

    // A time range, grouped by agent: skips blocks by time.
    let (from, to) = (T0 + 2 * 3600, T0 + 4 * 3600);
    let ranged = ok(
        &server,
        &format!(
            "SELECT agent, count(*) FROM logs WHERE timestamp >= '{}' AND timestamp < '{}' \
             GROUP BY agent ORDER BY agent",
            rfc3339(from),
            rfc3339(to)
        ),
    );
    let mut truth: BTreeMap<String, u64> = BTreeMap::new();
    for e in data.iter().filter(|e| e.ts >= from && e.ts < to) {
        *truth.entry(e.agent.into()).or_default() += 1;
    }
    assert_eq!(counts(&ranged), truth);
    assert_eq!(
        counts(&query(
            &server,
            &format!(
                "_time:[{}, {}) | stats count() by (agent)",
                rfc3339(from),
                rfc3339(to)
            )
        )),
        truth
    );
    let cost = &ranged["cost"];
    assert!(
        cost["blocks_skipped_by_time"].as_u64().unwrap() > 10,
        "{cost}"
    );
    assert!(cost["rows_scanned"].as_u64().unwrap() < N as u64, "{cost}");

    // The same range with _time and BETWEEN, and EXPLAIN showing the skipped blocks.
    let between = ok(
        &server,
        &format!(
            "SELECT count(*) FROM logs WHERE _time BETWEEN '{}' AND '{}'",
            rfc3339(from),
            rfc3339(to - 1)
        ),
    );
    assert_eq!(between["rows"][0][0], truth.values().sum::<u64>());
    let explain = ok(
        &server,
        &format!(
            "EXPLAIN SELECT count(*) FROM logs WHERE timestamp >= '{}'",
            rfc3339(T0 + 7 * 3600)
        ),
    );
    let plan = explain.to_string();
    assert!(plan.contains("LogsScan: blocks="), "{plan}");
    assert!(plan.contains("skipped by time: "), "{plan}");
    assert!(!plan.contains("skipped by time: 0,"), "{plan}");

    // A rare word: the token filters skip almost every block.
    let needle = ok(
        &server,
        "SELECT agent, message FROM logs WHERE message LIKE '%the NEEDLE-7 here%'",
    );
    assert_eq!(needle["rows"], json!([["auth", "the NEEDLE-7 here"]]));
    let skipped = needle["cost"]["blocks_skipped_by_filter"].as_u64().unwrap();
    assert!(skipped > 20, "{}", needle["cost"]);

    // Labels and levels pushed down give the same counts as the truth.
    let billing_errors = data
        .iter()
        .filter(|e| e.agent == "billing" && e.level == "ERROR")
        .count();
    let answer = ok(
        &server,
        "SELECT count(*) FROM logs WHERE agent = 'billing' AND level = 'ERROR'",
    );
    assert_eq!(answer["rows"][0][0], billing_errors);
    let answer = ok(
        &server,
        "SELECT count(*) FROM logs WHERE agent LIKE 'bill%' OR agent IN ('web')",
    );
    let truth = data
        .iter()
        .filter(|e| e.agent == "billing" || e.agent == "web")
        .count();
    assert_eq!(answer["rows"][0][0], truth);

    // Fields through field() and field_num().
    let slow = data
        .iter()
        .filter(|e| e.response_ms.is_some_and(|ms| ms > 1000))
        .count();
    let answer = ok(
        &server,
        "SELECT count(*) FROM logs WHERE field_num(fields, 'response_time_ms') > 1000",
    );
    assert_eq!(answer["rows"][0][0], slow);
    assert_eq!(
        query(&server, "response_time_ms:>1000 | stats count()")["rows"][0][0],
        slow
    );
    let answer = ok(
        &server,
        "SELECT field(fields, 'ip') AS ip, count(*) AS n FROM logs \
         WHERE message LIKE 'login failed%' GROUP BY 1 ORDER BY n DESC",
    );
    assert_eq!(answer["rows"], json!([["10.0.0.1", 8], ["10.0.0.2", 3]]));

    // Rows: times as RFC 3339, ids as /api/query gives them, numbers as numbers.
    let newest = ok(
        &server,
        "SELECT id, timestamp, level, message FROM logs ORDER BY timestamp DESC LIMIT 1",
    );
    let last = data.last().unwrap();
    let q = query(&server, "* | limit 1");
    assert_eq!(newest["rows"][0][0], q["logs"][0]["id"]);
    assert_eq!(newest["rows"][0][1], rfc3339(last.ts));
    assert_eq!(newest["rows"][0][3], json!(last.message));
    let p95 = ok(
        &server,
        "SELECT avg(field_num(fields, 'response_time_ms')) AS avg_ms FROM logs WHERE agent = 'web'",
    );
    assert!(p95["rows"][0][0].is_f64(), "{p95}");

    // An entry still in the memtable is in the table at once.
    let (status, _) = server.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(
            &json!({"timestamp": format!("{DAY}T23:00:00Z"), "agent": "late", "message": "fresh"}),
        )
        .unwrap(),
    );
    assert_eq!(status, 200);
    let fresh = ok(&server, "SELECT message FROM logs WHERE agent = 'late'");
    assert_eq!(fresh["rows"], json!([["fresh"]]));
}

#[test]
fn sql_refuses_writes_and_reports_errors_with_positions() {
    let (_dir, server, _) = setup("");
    for text in [
        "DROP TABLE logs",
        "INSERT INTO logs (message) VALUES ('x')",
        "DELETE FROM logs",
        "CREATE TABLE t AS SELECT * FROM logs",
        "COPY (SELECT * FROM logs) TO '/tmp/out.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT 1; SELECT 2",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
    ] {
        let (status, answer) = sql(&server, text);
        assert_eq!(status, 400, "{text}: {answer}");
        assert_eq!(
            answer["error"]["code"], "sql_not_allowed",
            "{text}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("read-only") || message.contains("one statement"),
            "{text}: {message}"
        );
    }
    // A syntax error: 400 with DataFusion's message and the position.
    let (status, answer) = sql(&server, "SELECT * FORM logs");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "query_syntax");
    assert_eq!(answer["error"]["position"], 9, "{answer}");
    // A statement cut short: the position is its end.
    let (status, answer) = sql(&server, "SELECT * FROM logs WHERE");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["position"], 24, "{answer}");
    // An unknown column or table: a planning error.
    let (status, answer) = sql(&server, "SELECT nope FROM logs");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "query_syntax");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));
    let (status, answer) = sql(&server, "SELECT * FROM other_table");
    assert_eq!(status, 400, "{answer}");
    // A run-time error.
    let (status, answer) = sql(&server, "SELECT CAST(message AS INT) FROM logs");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "sql_error", "{answer}");
    // Bodies that are not a statement.
    let (status, answer) = server.post("/api/sql", "application/json", b"{not json".to_vec());
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "invalid_json");
    let (status, answer) = server.post("/api/sql", "application/json", b"{\"q\": 1}".to_vec());
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "invalid_parameter");
    // A deeply nested expression is refused, not a crash.
    let deep = format!("SELECT {}1{} FROM logs", "(".repeat(5000), ")".repeat(5000));
    let (status, _) = sql(&server, &deep);
    assert_eq!(status, 400);
    // The server is still up.
    assert_eq!(ok(&server, "SELECT 1 AS one")["rows"], json!([[1]]));
}

#[test]
fn sql_stays_within_the_query_budgets() {
    let (_dir, server, _) =
        setup("[query]\nmax_limit = 50\nmax_state_bytes = \"2MiB\"\ntimeout = \"2s\"\n");
    // More rows than query.max_limit: the first ones, cut, saying why.
    let answer = ok(&server, "SELECT message FROM logs");
    assert_eq!(answer["rows"].as_array().unwrap().len(), 50);
    assert_eq!(answer["partial"], true);
    assert!(answer["reason"]
        .as_str()
        .unwrap()
        .contains("query.max_limit"));
    // More memory than query.max_state_bytes: refused.
    let (status, answer) = sql(
        &server,
        "SELECT v FROM generate_series(1, 5000000) AS t(v) ORDER BY v % 1000, v DESC",
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "query_budget", "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("query.max_state_bytes"));
    // Longer than query.timeout: cut at the deadline.
    let started = std::time::Instant::now();
    let answer = ok(
        &server,
        "SELECT count(*) FROM generate_series(1, 100000000000) AS t(v) WHERE v % 7 = 3",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(answer["partial"], true, "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("query.timeout"));
    assert_eq!(
        ok(&server, "SELECT count(*) FROM logs")["rows"],
        json!([[N]])
    );
}

fn range_params() -> String {
    format!("start={DAY}T00:00:00Z&end=2024-01-16T00:00:00Z")
}

#[test]
fn analyses_answer_the_planted_data() {
    let (dir, server, data) = setup("");

    // Slow requests.
    let (status, slow) = server.get(&format!(
        "/api/analyses/slow?{}&threshold_ms=1000&limit=5",
        range_params()
    ));
    assert_eq!(status, 200, "{slow}");
    let mut times: Vec<u64> = data.iter().filter_map(|e| e.response_ms).collect();
    let requests = times.len();
    times.sort_unstable_by(|a, b| b.cmp(a));
    let above = times.iter().filter(|&&t| t > 1000).count();
    assert_eq!(slow["count"], requests);
    assert_eq!(slow["slow_count"], above);
    let listed: Vec<u64> = slow["slow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fields"]["response_time_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, times[..5].to_vec());
    // Nearest-rank p95 of the truth.
    let mut asc = times.clone();
    asc.sort_unstable();
    let p95 = asc[(0.95 * asc.len() as f64).ceil() as usize - 1];
    assert_eq!(slow["latency_ms"]["p95"].as_f64().unwrap(), p95 as f64);
    assert_eq!(slow["by_agent"]["web"]["count"], requests);
    assert!(slow["queries"][0]
        .as_str()
        .unwrap()
        .contains("response_time_ms:>1000"));
    assert!(slow["cost"]["rows_scanned"].is_u64());

    // Logins: 11 failures (8 from one IP), the rest successes.
    let failed = data
        .iter()
        .filter(|e| e.message.starts_with("login failed"))
        .count();
    let succeeded = data
        .iter()
        .filter(|e| e.message.starts_with("login success"))
        .count();
    let (status, auth) = server.get(&format!(
        "/api/analyses/auth?{}&min_failures=5",
        range_params()
    ));
    assert_eq!(status, 200, "{auth}");
    assert_eq!(auth["failed"], failed);
    assert_eq!(auth["succeeded"], succeeded);
    let rate = auth["success_rate"].as_f64().unwrap();
    assert!((rate - succeeded as f64 / (failed + succeeded) as f64).abs() < 1e-9);
    assert_eq!(
        auth["suspicious_ips"],
        json!([{"ip": "10.0.0.1", "failures": 8}])
    );
    // Per 2-minute window: 10.0.0.1 fails every 40 s from 00:00:20 (3, 3, 2 in its
    // windows), 10.0.0.2 at 00:05:40, 00:06:20 and 00:07:00 (1, 2).
    let (_, windowed) = server.get(&format!(
        "/api/analyses/auth?{}&min_failures=2&window=2m",
        range_params()
    ));
    assert_eq!(
        windowed["suspicious_ips"],
        json!([
            {"ip": "10.0.0.1", "failures": 3, "window_start": format!("{DAY}T00:00:00Z")},
            {"ip": "10.0.0.2", "failures": 2, "window_start": format!("{DAY}T00:06:00Z")}
        ]),
        "{windowed}"
    );
    assert_eq!(windowed["window"], "2m");
    let (status, _) = server.get(&format!("/api/analyses/auth?{}&window=1ms", range_params()));
    assert_eq!(status, 400);

    // Database errors and connection failures (postgres writes ERROR on a fifth of lines).
    let db_errors = data
        .iter()
        .filter(|e| e.agent == "postgres" && e.level == "ERROR")
        .count();
    let conn = data
        .iter()
        .filter(|e| {
            e.message.contains("connection refused") && ["WARNING", "ERROR"].contains(&e.level)
        })
        .count();
    let (status, db) = server.get(&format!("/api/analyses/db?{}", range_params()));
    assert_eq!(status, 200, "{db}");
    assert_eq!(db["database_errors"], db_errors);
    assert_eq!(
        db["by_agent"],
        json!([{"agent": "postgres", "count": db_errors}])
    );
    assert_eq!(db["connection_failures"], conn);
    assert!(!db["top_patterns"].as_array().unwrap().is_empty());

    // The CLI prints the same as aligned tables.
    let cwd = dir.path();
    let config = dir.config.to_str().unwrap();
    let run = |args: &[&str]| -> String {
        let args = [args, &["--config", config]].concat();
        let out = util::run(cwd, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let range = [
        "--since",
        "2024-01-15T00:00:00Z",
        "--until",
        "2024-01-16T00:00:00Z",
    ];
    let url = server.url.clone();
    let mut args = vec!["slow", "--server", &url, "--threshold-ms", "1000"];
    args.extend(range);
    let text = run(&args);
    assert!(
        text.starts_with(&format!("{requests} requests, {above} above 1000 ms")),
        "{text}"
    );
    assert!(text.contains("AGENT  REQUESTS"), "{text}");
    let mut args = vec!["auth", "--server", &url, "--min-failures", "5"];
    args.extend(range);
    let text = run(&args);
    assert!(
        text.contains(&format!(
            "{failed} failed and {succeeded} successful logins"
        )),
        "{text}"
    );
    assert!(text.contains("IP        FAILURES\n10.0.0.1  8\n"), "{text}");
    let mut args = vec!["db-errors", "--server", &url];
    args.extend(range);
    let text = run(&args);
    assert!(
        text.starts_with(&format!(
            "{db_errors} database errors, {conn} connection failures"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("postgres  {db_errors}")), "{text}");

    // SQL from the CLI: table, CSV and JSON, from the server, then from the data directory.
    let statement = "SELECT level, count(*) AS n FROM logs WHERE agent = 'postgres' GROUP BY level ORDER BY level";
    let table = run(&["sql", "--server", &url, statement]);
    let mut truth: BTreeMap<&str, usize> = BTreeMap::new();
    for e in data.iter().filter(|e| e.agent == "postgres") {
        *truth.entry(e.level).or_default() += 1;
    }
    let mut expected = String::new();
    let width = truth.keys().map(|k| k.len()).max().unwrap().max(5);
    expected.push_str(&format!("{:<w$}  n\n", "level", w = width));
    for (level, n) in &truth {
        expected.push_str(&format!("{level:<w$}  {n}\n", w = width));
    }
    assert_eq!(table, expected);
    let csv = run(&["sql", "--server", &url, "--format", "csv", statement]);
    assert!(csv.starts_with("level,n\r\n"), "{csv}");
    let json_text = run(&["sql", "--server", &url, "--format", "json", statement]);
    let v: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(v["columns"], json!(["level", "n"]));
    let out = util::run(cwd, &["sql", "--server", &url, "DROP TABLE logs"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));

    let data_dir = server.data.clone();
    server.stop();
    let offline = run(&["sql", "--data", data_dir.to_str().unwrap(), statement]);
    assert_eq!(offline, expected);
    let mut args = vec!["db-errors", "--data", data_dir.to_str().unwrap(), "--json"];
    args.extend(range);
    let v: Value = serde_json::from_str(&run(&args)).unwrap();
    assert_eq!(v["database_errors"], db_errors);
    let _ = Path::new(".");
}
