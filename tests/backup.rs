//! Backup of a running server and restore, through the real binary: `logyard backup` while
//! entries keep arriving, `logyard restore` into a new directory, and a server started on it
//! holds every entry acknowledged before the backup began, each exactly once; a target that
//! is not empty, a damaged backup and a token that is not an administrator's are refused.

mod util;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::Server;

const INGEST: &str = "ingest-secret-0123456789";
const READ: &str = "read-secret-0123456789abc";
const ADMIN: &str = "admin-secret-0123456789ab";

/// Writes a configuration with an ingest, a read and an admin token, frequent flushes and
/// merges (so that segments are written and merged while the backup runs), and no retention.
fn config(dir: &Path) -> PathBuf {
    let hash = |s: &str| logyard_api::auth::format_hash(&logyard_api::auth::sha256(s.as_bytes()));
    let path = dir.join("logyard.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nretention_days = 0\nflush_interval = \"150ms\"\nmerge_fanin = 2\n\n\
             [[auth.tokens]]\nname = \"shipper\"\nrole = \"ingest\"\nhash = \"{}\"\n\n\
             [[auth.tokens]]\nname = \"team\"\nrole = \"read\"\nhash = \"{}\"\n\n\
             [[auth.tokens]]\nname = \"root\"\nrole = \"admin\"\nhash = \"{}\"\n",
            hash(INGEST),
            hash(READ),
            hash(ADMIN)
        ),
    )
    .unwrap();
    path
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Runs `logyard ARGS` with a token in `LOGYARD_TOKEN`.
fn logyard(cwd: &Path, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(util::bin());
    command
        .args(args)
        .current_dir(cwd)
        .env("LOGYARD_LOG", "warn")
        .env_remove("LOGYARD_TOKEN");
    if let Some(t) = token {
        command.env("LOGYARD_TOKEN", t);
    }
    command.output().expect("run logyard")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every entry of an agent, read with the admin token, paging through `/api/logs`.
fn all_of(url: &str, agent: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let page: Value = client()
            .get(format!(
                "{url}/api/logs?agent={agent}&limit=1000&offset={}",
                out.len()
            ))
            .bearer_auth(ADMIN)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let logs = page["logs"].as_array().expect("logs").clone();
        let done = logs.len() < 1000;
        out.extend(logs);
        if done {
            return out;
        }
    }
}

/// One POST of the ingest thread: its messages, and when it was sent and acknowledged.
struct Post {
    messages: Vec<String>,
    acked_at: Option<Instant>,
}

/// Posts batches of 25 entries until `stop`, recording each answer.
fn ingest_until(url: String, stop: Arc<AtomicBool>) -> Vec<Post> {
    let client = client();
    let mut posts = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let messages: Vec<String> = (0..25)
            .map(|j| format!("backup-entry-{n:06}-{j:02}"))
            .collect();
        n += 1;
        let body: Vec<Value> = messages
            .iter()
            .map(|m| json!({"message": m, "agent": "bk", "level": "INFO"}))
            .collect();
        let answer = client
            .post(format!("{url}/api/logs"))
            .bearer_auth(INGEST)
            .json(&body)
            .send();
        let acked_at = match answer {
            Ok(r) if r.status().is_success() => Some(Instant::now()),
            _ => None,
        };
        posts.push(Post { messages, acked_at });
    }
    posts
}

#[test]
fn a_backup_under_ingest_restores_every_acknowledged_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ingest = {
        let (url, stop) = (server.url.clone(), stop.clone());
        std::thread::spawn(move || ingest_until(url, stop))
    };
    // Long enough for several flushes and merges before and during the backup.
    std::thread::sleep(Duration::from_millis(1500));
    let backup_dir = dir.path().join("backup");
    let began = Instant::now();
    let out = logyard(
        dir.path(),
        Some(ADMIN),
        &[
            "backup",
            "--server",
            &server.url,
            "--to",
            backup_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    for word in ["segments", "segment rows", "wal files", "files", "bytes"] {
        assert!(report.contains(word), "{word} in the report:\n{report}");
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let posts = ingest.join().unwrap();
    server.stop();

    let before: Vec<&String> = posts
        .iter()
        .filter(|p| p.acked_at.is_some_and(|t| t < began))
        .flat_map(|p| &p.messages)
        .collect();
    let after = posts
        .iter()
        .filter(|p| p.acked_at.is_some_and(|t| t > began))
        .count();
    assert!(
        before.len() >= 500,
        "only {} entries before the backup",
        before.len()
    );
    assert!(
        after > 0,
        "no batch was acknowledged while or after the backup ran"
    );
    eprintln!(
        "{} entries acknowledged before the backup, {after} batches after it began\n{report}",
        before.len()
    );
    assert!(backup_dir.join("manifest.json").is_file());

    let restored = dir.path().join("restored");
    let out = logyard(
        dir.path(),
        None,
        &[
            "restore",
            "--from",
            backup_dir.to_str().unwrap(),
            "--data",
            restored.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("rows"), "{said}");

    let server = Server::start(&restored, &["--config", config.to_str().unwrap()]);
    let logs = all_of(&server.url, "bk");
    server.stop();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for entry in &logs {
        *seen
            .entry(entry["message"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let doubled: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(doubled.is_empty(), "entries stored twice: {doubled:?}");
    let missing: Vec<_> = before
        .iter()
        .filter(|m| !seen.contains_key(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} entries acknowledged before the backup are missing, e.g. {:?}",
        missing.len(),
        before.len(),
        missing.first()
    );
    let sent: HashSet<&String> = posts.iter().flat_map(|p| &p.messages).collect();
    assert!(seen.keys().all(|m| sent.contains(m)));
}

/// A server with a few hundred entries, some in segments and some only in the WAL.
fn server_with_data(dir: &Path) -> (Server, PathBuf) {
    let config = config(dir);
    let server = Server::start(&dir.join("data"), &["--config", config.to_str().unwrap()]);
    let post = |from: usize| {
        let body: Vec<Value> = (from..from + 100)
            .map(|i| json!({"message": format!("entry {i}"), "agent": "bk"}))
            .collect();
        let r = client()
            .post(format!("{}/api/logs", server.url))
            .bearer_auth(INGEST)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    post(0);
    post(100);
    std::thread::sleep(Duration::from_millis(600));
    post(200);
    (server, config)
}

fn backup_to(dir: &Path, server: &Server, to: &Path) -> Output {
    logyard(
        dir,
        Some(ADMIN),
        &[
            "backup",
            "--server",
            &server.url,
            "--to",
            to.to_str().unwrap(),
        ],
    )
}

#[test]
fn a_backup_refuses_a_target_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server_with_data(dir.path());
    let target = dir.path().join("used");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), "keep me").unwrap();
    let out = backup_to(dir.path(), &server, &target);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not empty"), "{err}");
    assert!(err.contains(target.to_str().unwrap()), "{err}");
    assert_eq!(
        std::fs::read_to_string(target.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1);

    // A relative path would be the server's working directory's: refused.
    let r = client()
        .post(format!("{}/api/admin/backup", server.url))
        .bearer_auth(ADMIN)
        .json(&json!({"to": "relative/dir"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("absolute"),
        "{body}"
    );
    server.stop();
}

#[test]
fn restore_refuses_a_damaged_backup_and_a_used_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (server, config) = server_with_data(dir.path());
    let backup = dir.path().join("backup");
    let out = backup_to(dir.path(), &server, &backup);
    assert!(out.status.success(), "{}", text(&out));
    server.stop();
    let restore = |from: &Path, to: &Path| {
        logyard(
            dir.path(),
            None,
            &[
                "restore",
                "--from",
                from.to_str().unwrap(),
                "--data",
                to.to_str().unwrap(),
            ],
        )
    };

    // A restore into a directory that holds something is refused.
    let used = dir.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("x"), "x").unwrap();
    let out = restore(&backup, &used);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        text(&out)
    );

    // A segment cut short: named, with both sizes.
    let damaged = dir.path().join("damaged");
    copy_tree(&backup, &damaged);
    let segment = find(&damaged.join("parts"), ".parquet");
    let len = std::fs::metadata(&segment).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    f.set_len(len - 100).unwrap();
    drop(f);
    let target = dir.path().join("new1");
    let out = restore(&damaged, &target);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "{err}");
    assert!(err.contains(&format!("{}", len - 100)), "{err}");
    assert!(err.contains(&format!("{len}")), "{err}");
    assert!(!target.join("parts").exists(), "nothing is restored");

    // A WAL file with a flipped byte: same size, wrong checksum.
    let damaged = dir.path().join("damaged2");
    copy_tree(&backup, &damaged);
    let wal = find(&damaged.join("wal"), ".wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    assert!(bytes.len() > 8, "the backup's WAL holds frames");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    let target = dir.path().join("new2");
    let out = restore(&damaged, &target);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("checksum"), "{err}");
    assert!(
        err.contains(wal.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(!target.join("wal").exists(), "nothing is left restored");

    // No manifest: an unfinished backup.
    let damaged = dir.path().join("damaged3");
    copy_tree(&backup, &damaged);
    std::fs::remove_file(damaged.join("manifest.json")).unwrap();
    let out = restore(&damaged, &dir.path().join("new3"));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("manifest.json"),
        "{}",
        text(&out)
    );

    // The intact backup restores all 300 entries.
    let target = dir.path().join("new4");
    let out = restore(&backup, &target);
    assert!(out.status.success(), "{}", text(&out));
    let server = Server::start(&target, &["--config", config.to_str().unwrap()]);
    assert_eq!(all_of(&server.url, "bk").len(), 300);
    server.stop();
}

#[test]
fn only_an_administrator_may_back_up_and_it_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server_with_data(dir.path());
    let to = dir.path().join("b");
    let post = |token: Option<&str>| {
        let mut r = client()
            .post(format!("{}/api/admin/backup", server.url))
            .json(&json!({"to": to.to_str().unwrap()}));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    };
    assert_eq!(post(None).status(), 401);
    for token in [READ, INGEST] {
        let r = post(Some(token));
        assert_eq!(r.status(), 403);
        let body: Value = r.json().unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
    }
    assert!(!to.exists(), "a refused request writes nothing");
    let out = logyard(
        dir.path(),
        Some(READ),
        &[
            "backup",
            "--server",
            &server.url,
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        text(&out)
    );

    let r = post(Some(ADMIN));
    assert_eq!(r.status(), 200);
    let report: Value = r.json().unwrap();
    assert_eq!(report["to"], to.to_str().unwrap(), "{report}");
    assert!(report["segments"].as_u64().unwrap() >= 1, "{report}");
    // The 300 entries, and perhaps the audit record of this very request.
    let rows = report["segment_rows"].as_u64().unwrap() + report["wal_rows"].as_u64().unwrap();
    assert!((300..=301).contains(&rows), "{report}");
    let audit = all_of(&server.url, "logyard-audit");
    assert!(
        audit
            .iter()
            .any(|e| e["fields"]["path"] == "/api/admin/backup" && e["fields"]["token"] == "root"),
        "{audit:?}"
    );
    server.stop();
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// The first file under `dir` (recursively) whose name ends with `suffix`.
fn find(dir: &Path, suffix: &str) -> PathBuf {
    find_in(dir, suffix).unwrap_or_else(|| panic!("no {suffix} under {}", dir.display()))
}

fn find_in(dir: &Path, suffix: &str) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.into_iter().find_map(|path| {
        if path.is_dir() {
            find_in(&path, suffix)
        } else {
            path.to_string_lossy().ends_with(suffix).then_some(path)
        }
    })
}
