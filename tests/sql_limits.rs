//! SQL cannot crash or stall the server, through the real binary: deeply nested statements
//! are refused (and those at the limit answered), a statement is cut at `query.timeout` even
//! when its operators do not yield, while `/health` keeps answering; text functions and
//! recursive CTEs stay within `query.max_state_bytes`; a regex over
//! `limits.max_regex_bytes` and a report over centuries are refused with a 400.

mod util;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::Server;

/// 2024-01-15T00:00:00Z in seconds.
const T0: i64 = 1_705_276_800;

/// Starts a server with the given extra settings and ingests `rows` entries over four agents.
fn setup(extra_config: &str, rows: usize) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!("[store]\nretention_days = 0\nflush_interval = \"200ms\"\n{extra_config}"),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let agents = ["web", "billing", "auth", "postgres"];
    let mut i = 0;
    while i < rows {
        let n = (rows - i).min(10_000);
        let body: Vec<Value> = (i..i + n)
            .map(|k| {
                json!({
                    "timestamp": chrono::DateTime::from_timestamp(T0 + k as i64, 0)
                        .unwrap()
                        .to_rfc3339(),
                    "level": "INFO",
                    "agent": agents[k % agents.len()],
                    "host": "h1",
                    "message": format!("request {k} answered in {} ms", k % 997),
                })
            })
            .collect();
        let (status, answer) = server.post(
            "/api/logs",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], n);
        i += n;
    }
    (dir, server)
}

fn sql(server: &Server, text: &str) -> (u16, Value) {
    server.post(
        "/api/sql",
        "application/json",
        serde_json::to_vec(&json!({ "sql": text })).unwrap(),
    )
}

/// Asserts that `/health` answers 200.
fn healthy(server: &Server) {
    let (status, answer) = server.get("/health");
    assert_eq!(status, 200, "{answer}");
}

/// The pid of the server serving `data`, found by its command line.
fn pid_of(server: &Server) -> u32 {
    let data = server.data.to_str().unwrap().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&b"serve".as_slice()) && args.contains(&data.as_bytes()) {
            return pid;
        }
    }
    panic!("no server process for {data}");
}

/// A memory figure of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in bytes.
fn memory(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// `1 op 1 op … 1` with `n` terms.
fn chain(op: &str, n: usize) -> String {
    vec!["1"; n].join(op)
}

#[test]
fn nested_statements_are_refused_or_answered_and_the_server_stays_up() {
    // Statements longer than the default 64 KiB are allowed, so that depth is what stops them.
    let (_dir, server) = setup("[limits]\nmax_query_bytes = \"1MiB\"\n", 1000);
    let ors = (0..5000)
        .map(|i| format!("message = 'm{i}'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let unions = ["SELECT 1 AS one"; 3000].join(" UNION ALL ");
    for text in [
        format!("SELECT {} AS n", chain("+", 2000)),
        format!("SELECT {} AS s", ["'x'"; 3000].join(" || ")),
        format!("SELECT count(*) FROM logs WHERE {ors}"),
        unions,
    ] {
        let (status, answer) = sql(&server, &text);
        assert_eq!(status, 400, "{}…: {answer}", &text[..60]);
        assert_eq!(answer["error"]["code"], "sql_not_allowed", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("query.sql_max_depth"),
            "{answer}"
        );
        healthy(&server);
    }

    // At the limit (500 by default), each shape plans and runs.
    let (status, answer) = sql(&server, &format!("SELECT {} AS n", chain("+", 500)));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"], json!([[500]]));
    let (status, answer) = sql(
        &server,
        &format!("SELECT length({}) AS n", ["'x'"; 499].join(" || ")),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"], json!([[499]]));
    // Each `message = '…'` is two levels below its OR.
    let ors = (0..498)
        .map(|i| format!("message = 'request {i} answered in {i} ms'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let (status, answer) = sql(&server, &format!("SELECT count(*) FROM logs WHERE {ors}"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"], json!([[498]]));
    let unions = ["SELECT 1 AS one"; 501].join(" UNION ALL ");
    let (status, answer) = sql(&server, &format!("SELECT count(*) FROM ({unions})"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"], json!([[501]]));
    // One more level is refused.
    let (status, answer) = sql(&server, &format!("SELECT {} AS n", chain("+", 501)));
    assert_eq!(status, 400, "{answer}");
    healthy(&server);
}

#[test]
fn a_self_join_is_cut_at_the_deadline_while_health_answers() {
    let (_dir, server) = setup("[query]\ntimeout = \"2s\"\n", 60_000);
    let server = std::sync::Arc::new(server);
    let started = Instant::now();
    let joins: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let answer = sql(
                    &server,
                    "SELECT count(*) FROM logs a JOIN logs b ON a.agent = b.agent",
                );
                (answer, t.elapsed())
            })
        })
        .collect();
    // While both run, /health answers within a second each time.
    let mut slowest = Duration::ZERO;
    while joins.iter().any(|j| !j.is_finished()) && started.elapsed() < Duration::from_secs(60) {
        let t = Instant::now();
        healthy(&server);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    for join in joins {
        let ((status, answer), took) = join.join().unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["partial"], true, "{answer}");
        assert!(
            answer["reason"].as_str().unwrap().contains("query.timeout"),
            "{answer}"
        );
        assert!(took < Duration::from_secs(10), "a join took {took:?}");
    }
    assert!(slowest < Duration::from_secs(1), "/health took {slowest:?}");
    // The SQL threads are free again.
    let (status, answer) = sql(&server, "SELECT count(*) FROM logs");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"], json!([[60_000]]));
}

#[test]
fn statements_beyond_the_concurrency_wait_then_are_refused() {
    let (_dir, server) = setup(
        "[query]\ntimeout = \"4s\"\nsql_concurrency = 1\nsql_queue_timeout = \"500ms\"\n",
        60_000,
    );
    let server = std::sync::Arc::new(server);
    let long = {
        let server = server.clone();
        std::thread::spawn(move || {
            sql(
                &server,
                "SELECT count(*) FROM logs a JOIN logs b ON a.agent = b.agent",
            )
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    let (status, answer) = sql(&server, "SELECT 1");
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "sql_busy", "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("query.sql_concurrency"));
    let (status, answer) = long.join().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partial"], true, "{answer}");
    let (status, _) = sql(&server, "SELECT 1");
    assert_eq!(status, 200);
}

/// The budget of the memory test, and what the server may take above it: the rows of the
/// answer, allocator slack and the SQL threads' own allocations.
const BUDGET: u64 = 32 << 20;
const MARGIN: u64 = 96 << 20;

#[test]
fn text_functions_and_recursive_ctes_stay_within_the_memory_budget() {
    let (_dir, server) = setup(
        "[query]\nmax_state_bytes = \"32MiB\"\ntimeout = \"10s\"\n",
        20_000,
    );
    // Let the flusher write the rows into a segment, so the memtable no longer grows.
    std::thread::sleep(Duration::from_millis(1000));
    let (status, answer) = sql(&server, "SELECT count(*) FROM logs");
    assert_eq!(status, 200, "{answer}");
    let pid = pid_of(&server);
    let before = memory(pid, "VmRSS:");
    for text in [
        "SELECT sum(length(repeat(message, 2000))) FROM logs",
        "SELECT length(lpad('x', 1000000000))",
        "SELECT length(rpad(message, 100000000)) FROM logs LIMIT 1",
        "WITH RECURSIVE t(n, s) AS (SELECT 1, 'x' UNION ALL \
         SELECT n + 1, s || repeat('y', 1000) FROM t WHERE n < 100000) \
         SELECT max(length(s)) FROM t",
    ] {
        let (status, answer) = sql(&server, text);
        assert!(status == 200 || status == 400, "{text}: {status} {answer}");
        if status == 400 {
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("query.max_state_bytes") || message.contains("WITH RECURSIVE"),
                "{text}: {answer}"
            );
        }
        let peak = memory(pid, "VmHWM:");
        assert!(
            peak < before + BUDGET + MARGIN,
            "{text}: peak RSS {} MiB, {} MiB before",
            peak >> 20,
            before >> 20
        );
        healthy(&server);
    }
}

#[test]
fn a_regex_over_the_size_limit_is_a_400() {
    let (_dir, server) = setup("", 100);
    for text in [
        "SELECT count(*) FROM logs WHERE regexp_like(message, '(a{1000}){1000}')",
        "SELECT count(*) FROM logs WHERE message ~ '(a{1000}){1000}'",
    ] {
        let (status, answer) = sql(&server, text);
        assert_eq!(status, 400, "{text}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("limits.max_regex_bytes"),
            "{answer}"
        );
    }
    healthy(&server);
}

#[test]
fn a_report_over_centuries_is_a_400_that_says_what_range_is_allowed() {
    let (_dir, server) = setup("", 100);
    let (status, answer) =
        server.get("/api/report?since=1900-01-01T00:00:00Z&until=2100-01-01T00:00:00Z");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_parameter", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(!message.contains("1ms"), "{message}");
    assert!(
        message.contains("since") && message.contains("until"),
        "{message}"
    );
    // A year is still a report.
    let (status, answer) =
        server.get("/api/report?since=2024-01-01T00:00:00Z&until=2025-01-01T00:00:00Z");
    assert_eq!(status, 200, "{answer}");
}
