//! Reload without restart, through the real binary: `logyard reload` and SIGHUP put a changed
//! rule, source and notifier in effect while lines keep coming (none lost, none doubled), an
//! invalid file is refused with its line and the running configuration keeps working, and
//! tokens change in place.

mod util;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{run, Server, Webhook};

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The configuration of the test: a file source over `globs`, one immediate rule and one
/// webhook notifier.
fn config(globs: &[String], rule_query: &str, hook: &Webhook, extra: &str) -> String {
    let paths: Vec<String> = globs.iter().map(|g| format!("\"{g}\"")).collect();
    format!(
        "[[sources]]\ntype = \"file\"\nname = \"apps\"\npaths = [{}]\npoll_interval = \"200ms\"\n\n\
         [alerts]\nevaluate_every = \"100ms\"\n\n\
         [[alerts.rules]]\nname = \"payments\"\nkind = \"immediate\"\nquery = \"{rule_query}\"\ncooldown = \"1s\"\nnotify = [\"receiver\"]\n\n\
         [[alerts.notifiers]]\nname = \"receiver\"\ntype = \"webhook\"\nurl = \"{}\"\n{extra}",
        paths.join(", "),
        hook.url
    )
}

/// Counts each `line N` message of `agent` stored.
fn stored_counts(server: &Server, agent: &str) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for e in server.all_of_agent(agent) {
        let m = e["message"].as_str().unwrap_or_default();
        if let Some(n) = m.strip_prefix("line ").and_then(|n| n.parse().ok()) {
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    counts
}

fn reload(dir: &Path, server: &Server) -> std::process::Output {
    run(dir, &["reload", "--server", &server.url])
}

fn ingest(server: &Server, agent: &str, level: &str, message: &str) {
    let body = serde_json::json!({"agent": agent, "level": level, "message": message});
    let (status, answer) = server.post(
        "/api/logs",
        "application/json",
        body.to_string().into_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn a_rule_a_source_and_a_notifier_change_under_a_running_server_without_a_lost_line() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (first, second) = (Webhook::start(), Webhook::start());
    let path = dir.path().join("logyard.toml");
    let glob_a = format!("{}/*.log", a.display());
    let glob_b = format!("{}/*.log", b.display());
    std::fs::write(
        &path,
        config(
            std::slice::from_ref(&glob_a),
            "agent:payments level:>=ERROR",
            &first,
            "",
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", path.to_str().unwrap()]);

    // A writer appends numbered lines to a followed file the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let file = a.join("checkout.log");
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file)
                    .unwrap();
                for _ in 0..20 {
                    writeln!(f, "line {n}").unwrap();
                    n += 1;
                }
                written.store(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    wait_for("the first lines", || {
        !stored_counts(&server, "checkout").is_empty()
    });

    // 1. `logyard reload`: the source follows a second folder, the rule takes WARNING, and
    //    the notifier sends to another receiver.
    std::fs::write(b.join("billing.log"), "line 0\nline 1\n").unwrap();
    std::fs::write(
        &path,
        config(
            &[glob_a.clone(), glob_b.clone()],
            "agent:payments level:>=WARNING",
            &second,
            "",
        ),
    )
    .unwrap();
    let out = reload(dir.path(), &server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("sources restarted") && stdout.contains("apps"),
        "{stdout}"
    );
    wait_for("the new folder's lines", || {
        stored_counts(&server, "billing").len() == 2
    });
    ingest(&server, "payments", "WARNING", "card network slow");
    let got = second.wait_for(1);
    assert_eq!(got.len(), 1, "the new rule or notifier is not in effect");
    assert_eq!(got[0]["rule"], "payments");
    assert!(
        first.got.lock().unwrap().is_empty(),
        "the old notifier was used"
    );

    // 2. An invalid file is refused with its line; the running configuration stays.
    std::fs::write(
        &path,
        "[[sources]]\ntype = \"file\"\npaths = [\"/x\"]\nstart_at = \"middle\"\n",
    )
    .unwrap();
    let out = reload(dir.path(), &server);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an invalid file was accepted");
    assert!(
        stderr.contains("logyard.toml: line ")
            && stderr.contains("`middle`")
            && stderr.contains("hint")
            && stderr.contains("stays"),
        "{stderr}"
    );
    std::thread::sleep(Duration::from_millis(1200)); // past the rule's cooldown
    ingest(&server, "payments", "WARNING", "card network slow again");
    assert_eq!(second.wait_for(2).len(), 2, "the running rules stopped");

    // 3. SIGHUP (systemd's ExecReload): a source is added.
    std::fs::write(
        &path,
        config(
            &[glob_a, glob_b],
            "agent:payments level:>=WARNING",
            &second,
            &format!(
                "\n[[sources]]\ntype = \"file\"\nname = \"extra\"\npaths = [\"{}/*.txt\"]\n",
                b.display()
            ),
        ),
    )
    .unwrap();
    std::fs::write(b.join("ledger.txt"), "line 7\n").unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("the source added by SIGHUP", || {
        stored_counts(&server, "ledger").len() == 1
    });

    // Every line written across the reloads is stored once.
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let n = written.load(Ordering::SeqCst);
    wait_for("every line", || {
        stored_counts(&server, "checkout").len() == n
    });
    std::thread::sleep(Duration::from_millis(1000));
    let counts = stored_counts(&server, "checkout");
    let doubled: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(doubled.is_empty(), "stored twice: {doubled:?}");
    assert_eq!(counts.len(), n, "lines lost");
    assert_eq!(stored_counts(&server, "billing").len(), 2);
    let log = server.stop();
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[test]
fn tokens_change_in_place_and_a_server_without_a_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let hash = |t: &str| logyard_api::auth::format_hash(&logyard_api::auth::sha256(t.as_bytes()));
    let (admin, old, new) = (
        "admin-token-0123456789abcdef",
        "reader-old-0123456789abcdef",
        "reader-new-0123456789abcdef",
    );
    let tokens = |reader: (&str, &str)| {
        format!(
            "[[auth.tokens]]\nname = \"ops\"\nrole = \"admin\"\nhash = \"{}\"\n\n\
             [[auth.tokens]]\nname = \"{}\"\nrole = \"read\"\nhash = \"{}\"\n",
            hash(admin),
            reader.0,
            hash(reader.1)
        )
    };
    let path = dir.path().join("logyard.toml");
    std::fs::write(&path, tokens(("old", old))).unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", path.to_str().unwrap()]);
    let get = |token: &str| {
        util::client()
            .get(format!("{}/api/query?q=*", server.url))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!((get(old), get(new)), (200, 401));
    std::fs::write(&path, tokens(("new", new))).unwrap();
    // A read token may not reload.
    let refused = util::client()
        .post(format!("{}/api/admin/reload", server.url))
        .bearer_auth(old)
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let out = std::process::Command::new(util::bin())
        .args(["reload", "--server", &server.url])
        .env("LOGYARD_TOKEN", admin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!((get(old), get(new)), (401, 200));
    drop(server);

    // Without a configuration file there is nothing to read again: a clear refusal.
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    let bare = Server::start(&bare.join("data"), &[]);
    let answer = util::client()
        .post(format!("{}/api/admin/reload", bare.url))
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: Value = answer.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("without a configuration file"),
        "{body}"
    );
}
