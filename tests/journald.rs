//! The systemd journal as a source, against real journal files: entries written in the
//! journal export format are turned into journal files by `systemd-journal-remote` (Debian's
//! package of that name), and the server reads them through `journalctl --directory …
//! --follow --after-cursor`. Every entry is stored once, with its time, level, agent, host
//! and fields, across a SIGKILL in the middle of collecting.

mod util;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::Server;

/// Where Debian's `systemd-journal-remote` package installs the program.
const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// 2026-01-01T00:00:00Z in µs: entry `i` is stamped one millisecond after the one before.
const BASE_US: u64 = 1_767_225_600_000_000;

/// One journal entry to write.
struct Entry {
    i: u64,
    unit: &'static str,
    message: Vec<u8>,
}

impl Entry {
    fn new(i: u64, unit: &'static str) -> Entry {
        Entry {
            i,
            unit,
            message: format!("{unit} event {i:05}").into_bytes(),
        }
    }

    fn priority(&self) -> u64 {
        self.i % 8
    }

    fn pid(&self) -> u64 {
        1000 + self.i % 7
    }
}

/// Returns the entries in the journal export format: text fields as `KEY=value` lines, a
/// message that is not UTF-8 as the binary form (name, 64-bit little-endian length, bytes).
fn export(entries: &[Entry], boot_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        write!(
            out,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={boot_id}\n\
             PRIORITY={}\n_SYSTEMD_UNIT={}\n_HOSTNAME=node-7\n_PID={}\n_COMM=worker\n",
            BASE_US + e.i * 1000,
            1_000_000 + e.i * 1000,
            e.priority(),
            e.unit,
            e.pid(),
        )
        .unwrap();
        match std::str::from_utf8(&e.message) {
            Ok(m) if !m.contains('\n') => writeln!(out, "MESSAGE={m}").unwrap(),
            _ => {
                out.extend_from_slice(b"MESSAGE\n");
                out.extend_from_slice(&(e.message.len() as u64).to_le_bytes());
                out.extend_from_slice(&e.message);
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }
    out
}

/// Appends entries to a journal file (created when missing) with systemd-journal-remote.
fn write_journal(file: &Path, entries: &[Entry]) {
    assert!(
        Path::new(JOURNAL_REMOTE).is_file(),
        "{JOURNAL_REMOTE} is missing: install Debian's systemd-journal-remote (.ci/test does)"
    );
    // The machine's boot: `journalctl --follow` shows the current boot's entries unless
    // told otherwise, and the source must not depend on that.
    let boot_id: String = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .replace('-', "");
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run systemd-journal-remote");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&export(entries, &boot_id))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A configuration reading `journal`; the store keeps everything, since the entries are
/// stamped on a fixed past day ([`BASE_US`]).
fn config(dir: &Path, journal: &Path, extra: &str) -> PathBuf {
    let config = dir.join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nretention_days = 0\n\n[[sources]]\ntype = \"journald\"\nname = \"journal\"\ndirectory = \"{}\"\n\
             start_at = \"beginning\"\n{extra}",
            journal.display()
        ),
    )
    .unwrap();
    config
}

/// Every stored entry of the journal source, by message.
fn stored(server: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = "/api/query?q=source:journald*&limit=1000".to_string();
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = server.get(&q);
        assert_eq!(status, 200, "{page}");
        out.extend(page["logs"].as_array().expect("logs").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn wait_for(server: &Server, what: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = stored(server);
        if got.len() >= n {
            return got;
        }
        if Instant::now() > deadline {
            let (_, sources) = server.get("/api/sources");
            panic!(
                "timed out waiting for {what}: {} of {n}; sources {sources}",
                got.len()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asserts that every message is stored exactly once, and returns the entries by message.
fn exactly_once(got: &[Value], want: &[String]) -> BTreeMap<String, Value> {
    let mut by_message: BTreeMap<String, Value> = BTreeMap::new();
    for e in got {
        let m = e["message"].as_str().unwrap().to_string();
        assert!(
            by_message.insert(m.clone(), e.clone()).is_none(),
            "stored twice: {m}"
        );
    }
    let missing: Vec<&String> = want
        .iter()
        .filter(|m| !by_message.contains_key(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} entries: {missing:?}",
        missing.len()
    );
    assert_eq!(
        by_message.len(),
        want.len(),
        "entries not written were stored"
    );
    by_message
}

fn field<'a>(e: &'a Value, key: &str) -> &'a Value {
    if !e["fields"].is_null() {
        &e["fields"][key]
    } else {
        &e["metadata"][key]
    }
}

#[test]
fn journal_entries_are_stored_once_with_their_fields_across_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let mut first: Vec<Entry> = (0..300)
        .map(|i| {
            Entry::new(
                i,
                if i % 3 == 0 {
                    "db.service"
                } else {
                    "web.service"
                },
            )
        })
        .collect();
    first[5].message = b"not utf-8: \xff\xfe end".to_vec();
    first[7].message = b"login ok password=hunter2 user=ann".to_vec();
    write_journal(&journal.join("remote.journal"), &first);
    let config = config(dir.path(), &journal, "batch_lines = 5\n");
    let data = dir.path().join("data");
    let mut want: Vec<String> = first
        .iter()
        .map(|e| String::from_utf8_lossy(&e.message).into_owned())
        .collect();
    want[7] = String::new(); // redacted: compared below

    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    let got = wait_for(&server, "the first entries", first.len());
    let redacted = got
        .iter()
        .find(|e| e["message"].as_str().unwrap().starts_with("login ok"))
        .expect("the entry with a password");
    let text = redacted["message"].as_str().unwrap();
    assert!(!text.contains("hunter2"), "a secret was stored: {text}");
    assert!(text.contains("REDACTED"), "{text}");
    want[7] = text.to_string();
    let by_message = exactly_once(&got, &want);

    for e in &first {
        let m = if e.i == 7 {
            want[7].clone()
        } else {
            String::from_utf8_lossy(&e.message).into_owned()
        };
        let r = &by_message[&m];
        let us = BASE_US + e.i * 1000;
        let time = chrono::DateTime::from_timestamp_micros(us as i64).unwrap();
        let stamp = r["timestamp"].as_str().unwrap();
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(stamp).unwrap(),
            time,
            "{r}"
        );
        let level = match e.priority() {
            0..=2 => "CRITICAL",
            3 => "ERROR",
            4 => "WARNING",
            5 | 6 => "INFO",
            _ => "DEBUG",
        };
        assert_eq!(r["level"], level, "{r}");
        assert_eq!(r["agent"], e.unit.trim_end_matches(".service"), "{r}");
        assert_eq!(r["host"], "node-7", "{r}");
        assert_eq!(
            r["source"],
            format!("journald:{}", journal.display()),
            "{r}"
        );
        assert_eq!(field(r, "_SYSTEMD_UNIT"), e.unit, "{r}");
        assert_eq!(field(r, "_HOSTNAME"), "node-7", "{r}");
        assert_eq!(field(r, "_PID").to_string(), e.pid().to_string(), "{r}");
        assert_eq!(field(r, "_COMM"), "worker", "{r}");
    }
    assert_eq!(
        field(
            &by_message["not utf-8: \u{fffd}\u{fffd} end"],
            "invalid_utf8"
        ),
        &Value::Bool(true)
    );

    // More entries, in the same file and in a new one, while the server collects them in
    // small batches; it is killed in the middle.
    let more: Vec<Entry> = (300..1500).map(|i| Entry::new(i, "web.service")).collect();
    let last: Vec<Entry> = (1500..3000).map(|i| Entry::new(i, "db.service")).collect();
    write_journal(&journal.join("remote.journal"), &more);
    write_journal(&journal.join("remote-2.journal"), &last);
    want.extend(
        more.iter()
            .chain(&last)
            .map(|e| String::from_utf8_lossy(&e.message).into_owned()),
    );
    let got = wait_for(&server, "some of the new entries", first.len() + 100);
    let before_kill = got.len();
    server.kill();
    assert!(
        before_kill < want.len(),
        "every entry was stored before the kill ({before_kill}): the test killed nothing in the middle"
    );

    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    let got = wait_for(&server, "every entry after the restart", want.len());
    std::thread::sleep(Duration::from_millis(1500));
    let got = if got.len() == want.len() {
        stored(&server)
    } else {
        got
    };
    exactly_once(&got, &want);
    let (_, sources) = server.get("/api/sources");
    let journal_status = &sources["sources"][0];
    assert_eq!(journal_status["type"], "journald", "{sources}");
    assert_eq!(journal_status["state"], "running", "{sources}");
    server.stop();
}

#[test]
fn only_the_chosen_units_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let entries: Vec<Entry> = (0..90)
        .map(|i| match i % 3 {
            0 => Entry::new(i, "db.service"),
            1 => Entry::new(i, "web.service"),
            _ => Entry::new(i, "cron.service"),
        })
        .collect();
    write_journal(&journal.join("remote.journal"), &entries);
    let config = config(dir.path(), &journal, "units = [\"db.service\", \"cron\"]\n");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    let want: Vec<String> = entries
        .iter()
        .filter(|e| e.unit != "web.service")
        .map(|e| String::from_utf8_lossy(&e.message).into_owned())
        .collect();
    let got = wait_for(&server, "the chosen units' entries", want.len());
    std::thread::sleep(Duration::from_millis(1000));
    let got = if got.len() == want.len() {
        stored(&server)
    } else {
        got
    };
    let by_message = exactly_once(&got, &want);
    assert!(by_message.values().all(|e| e["agent"] != "web"));
    server.stop();
}

#[test]
fn a_missing_directory_is_reported_in_the_source_status() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("not-there");
    let config = config(dir.path(), &journal, "");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, sources) = server.get("/api/sources");
        let s = &sources["sources"][0];
        if s["state"] == "failing" {
            let err = s["last_error"].as_str().unwrap_or_default();
            assert!(err.contains("journalctl"), "{sources}");
            assert!(err.contains("not-there"), "{sources}");
            break;
        }
        assert!(Instant::now() < deadline, "no failure reported: {sources}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Once the folder exists the source recovers and collects.
    std::fs::create_dir(&journal).unwrap();
    write_journal(
        &journal.join("remote.journal"),
        &[Entry::new(1, "db.service")],
    );
    wait_for(&server, "the entry once the folder exists", 1);
    server.stop();
}
