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
    server
        .metric(name)
        .unwrap_or_else(|| panic!("no metric {name} in {}", server.metrics_text()))
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
    // The segment went to quarantine: later answers over its time range still say that
    // rows are missing, and why; those over other times do not.
    let (_, again) = server.get("/api/query?q=line%20%7C%20stats%20count()");
    assert_eq!(again["cost"]["blocks_unreadable"], 0, "{again}");
    assert_eq!(again["partial"], true, "{again}");
    let reason = again["reason"].as_str().unwrap();
    assert!(
        reason.contains("100 row(s)") && reason.contains("quarantine"),
        "{again}"
    );
    let (_, elsewhere) =
        server.get("/api/query?q=_time%3A%5B2001-01-01T00%3A00%3A00Z%2C%202001-01-02T00%3A00%3A00Z)%20%7C%20stats%20count()");
    assert!(
        elsewhere.get("partial").is_none_or(|p| p == false),
        "{elsewhere}"
    );
    assert_eq!(
        metric(&server, "logyard_store_quarantined_segments_total"),
        1.0
    );
    // After a restart too.
    server.stop();
    let server = Server::start(&data, &[]);
    let (_, restarted) = server.get("/api/query?q=line%20%7C%20stats%20count()");
    assert_eq!(restarted["partial"], true, "{restarted}");
}

/// Ingests `batches` batches of `agent`, each flushed to its own segment (a short flush
/// interval and a pause), and stops the server: data in segments only.
fn fill_segments(data: &Path, agent: &str, batches: usize) -> BTreeSet<String> {
    let config = data.with_extension("toml");
    std::fs::write(&config, "[store]\nflush_interval = \"100ms\"\n").unwrap();
    let server = Server::start(data, &["--config", config.to_str().unwrap()]);
    let mut sent = BTreeSet::new();
    for b in 0..batches {
        let messages: Vec<String> = (0..100).map(|i| format!("{agent} {b}-{i}")).collect();
        let body: Vec<Value> = messages
            .iter()
            .map(|m| json!({"agent": agent, "message": m}))
            .collect();
        let (status, answer) = server.post(
            "/api/logs",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(status, 200, "{answer}");
        sent.extend(messages);
        std::thread::sleep(Duration::from_millis(300));
    }
    server.stop();
    sent
}

fn messages_of(server: &Server, agent: &str) -> BTreeSet<String> {
    let stored = server.all_of_agent(agent);
    let set: BTreeSet<String> = stored
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(set.len(), stored.len(), "an entry is stored twice");
    set
}

#[test]
fn a_removed_catalog_is_rebuilt_and_every_row_kept() {
    for remove in ["state/catalog.json", "state"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut sent = fill_segments(&data, "kept", 3);
        // And rows that are only in the WAL.
        let config = data.with_extension("toml");
        std::fs::write(&config, "[store]\nflush_interval = \"1h\"\n").unwrap();
        let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
        let body = json!({"agent": "kept", "message": "only in the wal"});
        server.post(
            "/api/logs",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        );
        sent.insert("only in the wal".into());
        server.kill();

        let path = data.join(remove);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let server = Server::start(&data, &[]);
        assert_eq!(messages_of(&server, "kept"), sent, "{remove} removed");
        let log = server.stop();
        assert!(
            log.contains("the catalog was rebuilt from the segment files"),
            "{log}"
        );
        // And again, from the catalog written at that start.
        let server = Server::start(&data, &[]);
        assert_eq!(
            messages_of(&server, "kept"),
            sent,
            "{remove} removed, second start"
        );
    }
}

#[test]
fn a_damaged_wal_header_keeps_the_files_frames() {
    for byte in [0, 3, 7] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fill_wal(&data, 10);
        let file = wal_files(&data).pop().unwrap();
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[byte] ^= 0x5a;
        std::fs::write(&file, &bytes).unwrap();
        let server = Server::start(&data, &[]);
        assert_eq!(server.all_of_agent("w").len(), 10, "header byte {byte}");
    }
}

#[test]
fn a_flipped_length_field_loses_only_its_frame() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fill_wal(&data, 10);
    let file = wal_files(&data).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    // The fifth frame's length field: after the 8-byte header, frames of `u32 len | u32
    // crc | payload`.
    let mut pos = 8;
    for _ in 0..4 {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    bytes[pos] ^= 0x04;
    std::fs::write(&file, &bytes).unwrap();
    let server = Server::start(&data, &[]);
    let stored = messages_of(&server, "w");
    let expected: BTreeSet<String> = (0..10)
        .filter(|&i| i != 4)
        .map(|i| format!("frame {i}"))
        .collect();
    assert_eq!(stored, expected);
}

#[test]
fn a_removed_or_damaged_index_is_rebuilt_from_its_segment() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 3] = [
        ("removed", |p| std::fs::remove_file(p).unwrap()),
        ("cut", |p| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() / 2]).unwrap();
        }),
        ("flipped", |p| {
            let mut b = std::fs::read(p).unwrap();
            let at = b.len() / 2;
            b[at] ^= 0x08;
            std::fs::write(p, b).unwrap();
        }),
    ];
    for (how, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let sent = fill_segments(&data, "indexed", 1);
        let index = std::fs::read_dir(data.join("parts"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        damage(&index);
        let server = Server::start(&data, &[]);
        assert_eq!(messages_of(&server, "indexed"), sent, "index {how}");
        assert_eq!(
            metric(&server, "logyard_store_quarantined_segments_total"),
            0.0,
            "index {how}"
        );
        let log = server.stop();
        assert!(log.contains("segment index rebuilt"), "{how}: {log}");
        assert!(index.is_file(), "{how}");
    }
}

/// A tmpfs mounted for the length of a test (as root; `None` otherwise).
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions.
        #[allow(unsafe_code)]
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .ok()?;
        status.success().then(|| SmallDisk {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Writes a file until the file system is full.
fn fill_disk(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x55u8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let one = [0u8; 1];
    while f.write_all(&one).is_ok() {}
    let _ = f.sync_all();
}

fn post_batch(server: &Server, agent: &str, batch: usize, size: usize) -> (u16, Vec<String>) {
    let messages: Vec<String> = (0..size).map(|i| format!("{agent} {batch}-{i}")).collect();
    let body: Vec<Value> = messages
        .iter()
        .map(|m| json!({"agent": agent, "message": m}))
        .collect();
    let resp = util::client()
        .post(format!("{}/api/logs", server.url))
        .json(&body)
        .send()
        .unwrap();
    (resp.status().as_u16(), messages)
}

#[test]
fn acknowledged_lines_survive_a_full_disk_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk"), "24m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let data = disk.path.join("data");
    let server = Server::start(&data, &[]);
    let mut acked = BTreeSet::new();
    let (status, messages) = post_batch(&server, "full", 0, 1000);
    assert_eq!(status, 200);
    acked.extend(messages);
    fill_disk(&disk.path.join("filler"));
    // Full: writes are refused, and the flusher fails to start new files meanwhile.
    let mut refused = 0;
    for b in 1..20 {
        let (status, messages) = post_batch(&server, "full", b, 1000);
        match status {
            200 => acked.extend(messages),
            503 => refused += 1,
            other => panic!("answered {other} on a full disk"),
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(refused > 0, "nothing was refused on a full disk");
    std::fs::remove_file(disk.path.join("filler")).unwrap();
    for b in 100..120 {
        let (status, messages) = post_batch(&server, "full", b, 1000);
        assert_eq!(status, 200, "space is free again");
        acked.extend(messages);
    }
    server.kill();
    let server = Server::start(&data, &[]);
    let stored = messages_of(&server, "full");
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged lines lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let log = server.stop();
    drop(disk);
    let _ = log;
}
