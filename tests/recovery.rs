//! Crash safety and recovery of the real binary: SIGKILL under load, damaged WAL files and
//! segments. After each restart every acknowledged entry is present exactly once.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use util::Server;

/// Posts batches from `clients` threads until `stop`; returns the acknowledged messages.
fn load(url: &str, agent: &str, clients: usize, stop: Arc<AtomicBool>) -> Vec<String> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let url = format!("{url}/api/logs");
            let agent = agent.to_string();
            let stop = stop.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let client = util::client();
                let mut batch_no = 0;
                while !stop.load(Ordering::SeqCst) {
                    let messages: Vec<String> = (0..40)
                        .map(|e| format!("{agent}-c{c}-b{batch_no}-e{e}"))
                        .collect();
                    let body: Vec<Value> = messages
                        .iter()
                        .map(|m| json!({"agent": agent, "message": m, "level": "INFO"}))
                        .collect();
                    batch_no += 1;
                    // A request cut by the kill is not acknowledged; its entries may or may
                    // not be stored, but never twice.
                    let Ok(resp) = client.post(&url).json(&body).send() else {
                        return;
                    };
                    if resp.status().as_u16() != 200 {
                        return;
                    }
                    let Ok(answer) = resp.json::<Value>() else {
                        return;
                    };
                    assert_eq!(answer["accepted"], 40, "{answer}");
                    acked.lock().unwrap().extend(messages);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

fn count_of(server: &Server, agent: &str) -> u64 {
    let (status, agents) = server.get("/api/agents");
    agents["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("/api/agents answered {status}: {agents}"))
        .iter()
        .find(|a| a["name"] == agent)
        .map_or(0, |a| a["count"].as_u64().unwrap())
}

#[test]
fn sigkill_under_load_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // What each earlier round left, checked again after every later restart.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..20 {
        let server = Server::start(&data, &[]);
        for (agent, count) in &counts {
            let now = count_of(&server, agent);
            if now != *count {
                let quarantined: Vec<_> = std::fs::read_dir(data.join("quarantine"))
                    .map(|d| d.map(|e| e.unwrap().file_name()).collect())
                    .unwrap_or_default();
                let log = server.stop();
                panic!(
                    "round {round}: {agent} had {count} entries, now {now} (seed {seed}); \
                     quarantine: {quarantined:?}; server log:\n{log}"
                );
            }
        }
        let agent = format!("round{round}");
        let stop = Arc::new(AtomicBool::new(false));
        let clients = {
            let (url, agent, stop) = (server.url.clone(), agent.clone(), stop.clone());
            std::thread::spawn(move || load(&url, &agent, 4, stop))
        };
        // SIGKILL while the clients are sending, then let them notice.
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..700)));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        let acked = clients.join().expect("clients");

        let server = Server::start(&data, &[]);
        let stored = server.all_of_agent(&agent);
        let mut seen = BTreeSet::new();
        for e in &stored {
            let m = e["message"].as_str().unwrap().to_string();
            assert!(
                seen.insert(m.clone()),
                "round {round}: {m} stored twice (seed {seed})"
            );
        }
        for m in &acked {
            assert!(
                seen.contains(m),
                "round {round}: acknowledged {m} lost (seed {seed})"
            );
        }
        counts.insert(agent, stored.len() as u64);
        // Half the rounds end with a clean stop, half with a second crash right away.
        if round % 2 == 0 {
            server.stop();
        } else {
            server.kill();
        }
    }
    assert!(
        counts.values().sum::<u64>() > 0,
        "the clients stored nothing"
    );
}

fn wal_files(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Ingests `n` single-entry batches (one WAL frame each) and kills the server before it
/// flushes, so that they are only in the WAL.
fn fill_wal(data: &Path, n: usize) {
    let config = data.with_extension("toml");
    std::fs::write(&config, "[store]\nflush_interval = \"1h\"\n").unwrap();
    let server = Server::start(data, &["--config", config.to_str().unwrap()]);
    for i in 0..n {
        let (status, _) = server.post(
            "/api/logs",
            "application/json",
            serde_json::to_vec(&json!({"agent": "w", "message": format!("frame {i}")})).unwrap(),
        );
        assert_eq!(status, 200);
    }
    server.kill();
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = util::client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in {text}"))
}

#[test]
fn a_torn_wal_tail_is_cut_at_the_last_good_frame() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fill_wal(&data, 10);
    let file = wal_files(&data).pop().unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - 7).unwrap();

    let server = Server::start(&data, &[]);
    let messages: BTreeSet<String> = server
        .all_of_agent("w")
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = (0..9).map(|i| format!("frame {i}")).collect();
    assert_eq!(messages, expected);
    assert_eq!(metric(&server, "logyard_wal_damaged_frames_total"), 1.0);
    let log = server.stop();
    assert!(log.contains("damaged frames"), "no warning in {log}");
}

#[test]
fn flipped_bytes_mid_wal_lose_only_that_frame() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fill_wal(&data, 10);
    let file = wal_files(&data).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    bytes[mid + 1] ^= 0xa5;
    std::fs::write(&file, &bytes).unwrap();

    let server = Server::start(&data, &[]);
    let stored = server.all_of_agent("w");
    assert_eq!(stored.len(), 9, "one damaged frame, nine intact");
    assert_eq!(metric(&server, "logyard_wal_damaged_frames_total"), 1.0);
}

#[test]
fn a_garbage_segment_is_quarantined_and_the_rest_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    // Two recent days, inside the retention.
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    for (day, agent) in [(yesterday, "first"), (today, "second")] {
        let body: Vec<Value> = (0..50)
            .map(|i| json!({"timestamp": format!("{day}T10:00:{:02}Z", i), "agent": agent, "message": format!("{agent} {i}")}))
            .collect();
        let (status, _) = server.post(
            "/api/logs",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(status, 200);
    }
    server.stop(); // writes the memtable to segments, one per day
    let day_dir = data.join("parts").join(yesterday.to_string());
    let segment = std::fs::read_dir(&day_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a parquet segment for yesterday");
    std::fs::write(&segment, b"this is not a parquet file at all").unwrap();

    let server = Server::start(&data, &[]);
    assert_eq!(server.all_of_agent("second").len(), 50);
    assert_eq!(server.all_of_agent("first").len(), 0);
    let quarantined: Vec<_> = std::fs::read_dir(data.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(!quarantined.is_empty());
    assert_eq!(
        metric(&server, "logyard_store_quarantined_segments_total"),
        1.0
    );
}

#[test]
fn a_second_server_on_the_same_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start(&data, &[]);
    let err = match Server::try_start(&data, &[]) {
        Ok(_) => panic!("two servers opened one data directory"),
        Err(e) => e,
    };
    assert!(err.contains("is in use by process"), "{err}");
    // Direct CLI access is refused the same way.
    let out = util::run(dir.path(), &["query", "--data", data.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is in use by process"), "{stderr}");
    // SIGKILL releases the lock: the kernel drops it with the process.
    first.kill();
    Server::start(&data, &[]).stop();
}

#[test]
fn damage_found_while_reading_makes_the_answer_say_it_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let body: Vec<Value> = (0..100)
        .map(|i| json!({"agent": "d", "message": format!("line {i}")}))
        .collect();
    server.post(
        "/api/logs",
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    );
    server.stop();
    let segment = std::fs::read_dir(data.join("parts"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[10] ^= 0xff; // inside the first page: the footer stays readable, the checksum fails
    std::fs::write(&segment, bytes).unwrap();

    let server = Server::start(&data, &[]);
    let (status, answer) = server.get("/api/query?q=line%20%7C%20stats%20count()");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partial"], true, "{answer}");
    assert_eq!(answer["cost"]["blocks_unreadable"], 1, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("damaged"),
        "{answer}"
    );
    // The segment went to quarantine: the next answer is whole again, without its rows.
    let (_, again) = server.get("/api/query?q=line%20%7C%20stats%20count()");
    assert_eq!(again["cost"]["blocks_unreadable"], 0, "{again}");
    assert!(again.get("partial").is_none_or(|p| p == false), "{again}");
    assert_eq!(
        metric(&server, "logyard_store_quarantined_segments_total"),
        1.0
    );
}
