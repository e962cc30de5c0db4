//! Runs `journalctl --follow` as a child process, reads its entries and delivers them in
//! batches, each with the cursor of its last entry; starts journalctl again when it exits.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use logyard_model::{now_ns, Record};
use logyard_parse::Redactor;

use super::checkpoint::{CheckpointFile, JournalCheckpoint};
use super::entry::{decode, Mapping};
use super::JournaldConfig;
use crate::error::SourceError;
use crate::file::StartAt;
use crate::status::{SourceState, StatusHandle};
use crate::SourceContext;
use logyard_model::sink::CheckpointToken;

/// The first bytes of journalctl's error output kept for messages.
const STDERR_KEPT: usize = 16 * 1024;
/// Lines read ahead of the batch being delivered (each at most `max_entry_bytes`).
const CHANNEL_LINES: usize = 64;
/// How often the loop looks at the stop flag and the batch's age.
const TICK: Duration = Duration::from_millis(50);
/// journalctl running this long without exiting counts as started.
const STARTED_AFTER: Duration = Duration::from_secs(1);
/// The first wait before journalctl is started again.
const FIRST_RESTART_WAIT: Duration = Duration::from_secs(1);

/// Returns journalctl's arguments for a position.
pub(crate) fn arguments(cfg: &JournaldConfig, cp: &JournalCheckpoint) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "--output=json",
        // Fields longer than 4096 bytes are printed (as null otherwise).
        "--all",
        "--follow",
        // Every boot: without it, --follow shows the current boot only.
        "--merge",
        // Every entry from the position on: --follow alone shows the last 10 only.
        "--no-tail",
        "--no-pager",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    if let Some(d) = &cfg.directory {
        let mut o = OsString::from("--directory=");
        o.push(d);
        a.push(o);
    }
    match (&cp.cursor, cp.since_us) {
        (Some(c), _) => a.push(format!("--after-cursor={c}").into()),
        (None, Some(us)) => {
            a.push(format!("--since=@{}.{:06}", us / 1_000_000, us % 1_000_000).into())
        }
        (None, None) => {}
    }
    for u in &cfg.units {
        a.push(format!("--unit={u}").into());
    }
    a
}

/// What the reading thread sends.
enum Msg {
    /// One output line, without its `\n`.
    Line(Vec<u8>),
    /// A line longer than `max_entry_bytes`, skipped; its length.
    TooLong(u64),
    /// The end of the output (journalctl exited), or a read error.
    End(Option<std::io::Error>),
}

/// Why one run of journalctl ended.
enum Ended {
    /// The source is stopping.
    Stop,
    /// journalctl exited or could not be run: the reason; and whether it ran long enough
    /// to count as started (the wait before the next start is reset then).
    Failed(String, bool),
}

/// Kills and reaps the child when dropped: the source never leaves journalctl behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The batch being gathered.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    cursor: Option<String>,
    bytes: u64,
    since: Option<Instant>,
}

/// The state of a running source.
struct Follower<'a> {
    name: &'a str,
    cfg: &'a JournaldConfig,
    status: &'a StatusHandle,
    ctx: &'a SourceContext,
    mapping: Mapping,
    redactor: Redactor,
    file: CheckpointFile,
    cp: JournalCheckpoint,
}

/// Runs the source until `ctx.shutdown`.
pub(crate) fn run(
    name: &str,
    cfg: &JournaldConfig,
    status: &StatusHandle,
    ctx: &SourceContext,
) -> Result<(), SourceError> {
    let redactor = Redactor::new(&ctx.parser.redact).map_err(|source| SourceError::Parse {
        name: name.to_string(),
        source,
    })?;
    let file = CheckpointFile::new(&ctx.state_dir, name);
    let from_file = file.load()?;
    let from_sink = ctx.sink.stored_checkpoint(name).and_then(|t| {
        JournalCheckpoint::decode(&t.data)
            .map_err(
                |e| tracing::warn!(source = name, error = %e, "ignoring the sink's checkpoint"),
            )
            .ok()
    });
    let mut cp = match (from_file, from_sink) {
        (Some(f), Some(s)) => {
            if s.seq > f.seq {
                s
            } else {
                f
            }
        }
        (f, s) => f.or(s).unwrap_or_else(JournalCheckpoint::empty),
    };
    if cp.cursor.is_none() && cp.since_us.is_none() && cfg.start_at == StartAt::End {
        // Kept so that a restart before the first entry goes on from the first start.
        cp.since_us = Some((now_ns() / 1000).max(0) as u64);
        file.save(&cp)?;
    }
    let mut f = Follower {
        name,
        cfg,
        status,
        ctx,
        mapping: Mapping {
            source: cfg.source_label(),
            host: ctx.host.clone(),
            max_message_bytes: cfg.max_line_bytes.unwrap_or(ctx.parser.max_line_bytes),
            keep_fields: cfg.keep_fields.clone(),
        },
        redactor,
        file,
        cp,
    };
    let mut wait = FIRST_RESTART_WAIT;
    while !ctx.shutdown.is_triggered() {
        match f.follow_once() {
            Ended::Stop => break,
            Ended::Failed(reason, started) => {
                if ctx.shutdown.is_triggered() {
                    break;
                }
                if started {
                    wait = FIRST_RESTART_WAIT;
                }
                tracing::warn!(source = name, error = %reason, retry_in = ?wait, "journalctl stopped; starting it again");
                status.error(reason);
                ctx.shutdown.wait_timeout(wait);
                wait = (wait * 2).min(cfg.restart_wait);
            }
        }
    }
    Ok(())
}

impl Follower<'_> {
    /// Runs journalctl from the current position until it exits or the source stops.
    fn follow_once(&mut self) -> Ended {
        let program = self.cfg.journalctl.display().to_string();
        let args = arguments(self.cfg, &self.cp);
        tracing::debug!(source = self.name, ?args, "starting journalctl");
        let child = Command::new(&self.cfg.journalctl)
            .args(&args)
            .env("SYSTEMD_COLORS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => ChildGuard(c),
            Err(e) => {
                return Ended::Failed(
                    format!(
                        "cannot run {program}: {e}; install systemd's journalctl or set \
                         `journalctl` to its path"
                    ),
                    false,
                )
            }
        };
        let stderr = child.0.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let _ = (&mut err).take(STDERR_KEPT as u64).read_to_end(&mut kept);
                // Drain the rest so that journalctl never blocks on a full pipe.
                let _ = std::io::copy(&mut err, &mut std::io::sink());
                String::from_utf8_lossy(&kept).into_owned()
            })
        });
        let (tx, rx) = sync_channel(CHANNEL_LINES);
        if let Some(out) = child.0.stdout.take() {
            let max = self.cfg.max_entry_bytes;
            std::thread::spawn(move || read_lines(out, max, tx));
        }
        let started = Instant::now();
        let mut running = false;
        let mut delivered = false;
        let mut batch = Batch::default();
        loop {
            if self.ctx.shutdown.is_triggered() {
                // One attempt: what is not delivered is read again on the next start.
                self.deliver(&mut batch);
                return Ended::Stop;
            }
            let end = match rx.recv_timeout(TICK) {
                Ok(Msg::Line(line)) => {
                    self.push(&line, &mut batch);
                    if batch.records.len() >= self.cfg.batch.batch_lines
                        || batch.bytes >= self.cfg.batch.max_batch_bytes as u64
                    {
                        if !self.deliver(&mut batch) {
                            return Ended::Stop;
                        }
                        delivered = true;
                    }
                    None
                }
                Ok(Msg::TooLong(n)) => {
                    let text = format!(
                        "skipped a journal entry of {n} bytes of JSON, more than \
                         `max_entry_bytes` ({})",
                        self.cfg.max_entry_bytes
                    );
                    tracing::warn!(source = self.name, "{text}");
                    self.status.input_error(text);
                    None
                }
                Ok(Msg::End(e)) => Some(e),
                Err(RecvTimeoutError::Disconnected) => {
                    Some(Some(std::io::Error::other("the reading thread stopped")))
                }
                Err(RecvTimeoutError::Timeout) => None,
            };
            if let Some(err) = end {
                // The lines read are whole entries: deliver them before reporting.
                if !self.deliver(&mut batch) {
                    return Ended::Stop;
                }
                if err.is_some() {
                    // Its output cannot be read any more: it must not run on unread.
                    let _ = child.0.kill();
                }
                let exit = child.0.wait();
                let said = stderr
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                let mut reason = match exit {
                    Ok(s) => format!("{program} exited ({s})"),
                    Err(e) => format!("{program} could not be waited for: {e}"),
                };
                if let Some(e) = err {
                    reason.push_str(&format!("; reading its output failed: {e}"));
                }
                if !said.is_empty() {
                    let said: String = said.chars().take(1000).collect();
                    reason.push_str(": ");
                    reason.push_str(&said.replace('\n', "; "));
                }
                let lasted = running || delivered || started.elapsed() >= STARTED_AFTER;
                return Ended::Failed(reason, lasted);
            }
            if batch
                .since
                .is_some_and(|t| t.elapsed() >= self.cfg.batch.batch_wait)
            {
                if !self.deliver(&mut batch) {
                    return Ended::Stop;
                }
                delivered = true;
            }
            if !running && started.elapsed() >= STARTED_AFTER {
                running = true;
                self.status.set_state(SourceState::Running);
            }
        }
    }

    /// Decodes a line into the batch; a line that is no entry is counted as an error.
    fn push(&mut self, line: &[u8], batch: &mut Batch) {
        match decode(line, &self.mapping, now_ns()) {
            Ok(d) => {
                let mut rec = d.record;
                self.redactor.redact_record(&mut rec);
                batch.records.push(rec);
                batch.bytes += line.len() as u64 + 1;
                batch.since.get_or_insert_with(Instant::now);
                if d.cursor.is_some() {
                    batch.cursor = d.cursor;
                }
            }
            Err(e) => {
                tracing::warn!(source = self.name, error = %e, "skipped a line of journalctl");
                self.status.input_error(e);
            }
        }
    }

    /// Hands the batch to the sink with its last cursor, retrying while the sink fails;
    /// returns false when the source was stopped before the sink took it.
    fn deliver(&mut self, batch: &mut Batch) -> bool {
        let b = std::mem::take(batch);
        if b.records.is_empty() {
            return true;
        }
        let mut next = self.cp.clone();
        next.seq += 1;
        if b.cursor.is_some() {
            next.cursor = b.cursor;
            next.since_us = None;
        }
        let n = b.records.len() as u64;
        let mut wait = Duration::from_millis(100);
        loop {
            let token = CheckpointToken {
                key: self.name.to_string(),
                seq: next.seq,
                data: next.encode(),
            };
            match self
                .ctx
                .sink
                .write_with_checkpoint(b.records.clone(), token)
            {
                Ok(kept) => {
                    self.cp = next;
                    self.status.add_lines(n, b.bytes);
                    if !kept {
                        if let Err(e) = self.file.save(&self.cp) {
                            tracing::error!(source = self.name, error = %e, "cannot save the checkpoint");
                            self.status.error(e.to_string());
                        }
                    }
                    return true;
                }
                Err(e) => {
                    tracing::warn!(source = self.name, error = %e, "sink failed; retrying");
                    self.status.error(e.to_string());
                    if self.ctx.shutdown.wait_timeout(wait) {
                        return false;
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Reads journalctl's output line by line into the channel; a line longer than `max` is
/// read to its end and reported by its length. A last line without its `\n` (journalctl
/// killed while writing) is dropped: its entry is read again from the cursor.
fn read_lines(out: ChildStdout, max: usize, tx: SyncSender<Msg>) {
    let mut r = BufReader::with_capacity(64 << 10, out);
    let mut line: Vec<u8> = Vec::new();
    let mut len: u64 = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Msg::End(Some(e)));
                return;
            }
        };
        if buf.is_empty() {
            let _ = tx.send(Msg::End(None));
            return;
        }
        let (chunk, newline) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        len += chunk.len() as u64;
        if len <= max as u64 {
            line.extend_from_slice(chunk);
        }
        let used = chunk.len() + usize::from(newline);
        r.consume(used);
        if newline {
            let msg = if len <= max as u64 {
                Msg::Line(std::mem::take(&mut line))
            } else {
                line.clear();
                Msg::TooLong(len)
            };
            len = 0;
            if tx.send(msg).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchSettings;

    fn args(cfg: &JournaldConfig, cp: &JournalCheckpoint) -> Vec<String> {
        arguments(cfg, cp)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn asks_journalctl_from_the_position() {
        let mut cfg = JournaldConfig::default();
        let cp = JournalCheckpoint::empty();
        let a = args(&cfg, &cp);
        for want in ["--output=json", "--all", "--follow", "--merge", "--no-tail"] {
            assert!(a.contains(&want.to_string()), "{a:?}");
        }
        assert!(!a
            .iter()
            .any(|x| x.starts_with("--since") || x.contains("cursor")));
        cfg.directory = Some("/srv/journal".into());
        cfg.units = vec!["nginx.service".into(), "cron".into()];
        let since = JournalCheckpoint {
            since_us: Some(1_767_225_600_000_042),
            ..JournalCheckpoint::empty()
        };
        let a = args(&cfg, &since);
        assert!(
            a.contains(&"--since=@1767225600.000042".to_string()),
            "{a:?}"
        );
        assert!(a.contains(&"--directory=/srv/journal".to_string()), "{a:?}");
        assert!(a.ends_with(&["--unit=nginx.service".into(), "--unit=cron".into()]));
        let at = JournalCheckpoint {
            cursor: Some("s=1;i=2".into()),
            ..since
        };
        let a = args(&cfg, &at);
        assert!(a.contains(&"--after-cursor=s=1;i=2".to_string()), "{a:?}");
        assert!(!a.iter().any(|x| x.starts_with("--since")), "{a:?}");
    }

    /// A stand-in for journalctl: writes its arguments to `args`, prints `out`, then sleeps
    /// (or exits with `exit`).
    fn fake_journalctl(dir: &std::path::Path, out: &str, exit: Option<&str>) -> JournaldConfig {
        let script = dir.join("journalctl");
        let end = match exit {
            Some(text) => format!("echo '{text}' >&2\nexit 3\n"),
            None => "exec sleep 30\n".to_string(),
        };
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" >> '{}'\ncat <<'EOF'\n{out}\nEOF\n{end}",
                dir.join("args").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        JournaldConfig {
            journalctl: script,
            start_at: StartAt::Beginning,
            max_entry_bytes: 1024,
            batch: BatchSettings {
                batch_wait: Duration::from_millis(20),
                ..BatchSettings::default()
            },
            ..JournaldConfig::default()
        }
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn skips_bad_lines_counts_them_and_goes_on_after_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!(r#"{{"MESSAGE":"{}"}}"#, "x".repeat(2000));
        let out = format!(
            "{{\"__CURSOR\":\"c1\",\"MESSAGE\":\"one password=hunter2\",\"PRIORITY\":\"3\"}}\n\
             not json\n{long}\n{{\"__CURSOR\":\"c2\",\"MESSAGE\":\"two\"}}"
        );
        let cfg = fake_journalctl(dir.path(), &out, None);
        let sink = std::sync::Arc::new(crate::MemorySink::new());
        let ctx = SourceContext::new(sink.clone(), dir.path().join("state"), "here");
        let src = super::super::JournaldSource::new("j", cfg.clone()).unwrap();
        let running = crate::spawn(Box::new(src), ctx.clone());
        wait_until("two records", || sink.records().len() == 2);
        let status = running.status.snapshot();
        assert_eq!(status.errors_total, 2, "{status:?}");
        assert_eq!(status.lines_total, 2);
        let recs = sink.records();
        assert_eq!(recs[0].level, Some(logyard_model::Level::Error));
        assert!(!recs[0].message.contains("hunter2"), "{}", recs[0].message);
        assert_eq!(recs[1].message, "two");
        assert_eq!(recs[1].host, "here");
        assert_eq!(recs[1].source, "journald");

        // Stopping kills journalctl at once, though it would sleep on.
        let stopping = Instant::now();
        ctx.shutdown.trigger();
        running.join().unwrap();
        assert!(stopping.elapsed() < Duration::from_secs(2));
        let cp = CheckpointFile::new(&ctx.state_dir, "j")
            .load()
            .unwrap()
            .unwrap();
        assert_eq!(cp.cursor.as_deref(), Some("c2"));

        // The next start goes on after the cursor.
        let ctx = SourceContext::new(sink.clone(), dir.path().join("state"), "here");
        let src = super::super::JournaldSource::new("j", cfg).unwrap();
        let running = crate::spawn(Box::new(src), ctx.clone());
        wait_until("a second start", || {
            std::fs::read_to_string(dir.path().join("args"))
                .unwrap_or_default()
                .lines()
                .count()
                == 2
        });
        ctx.shutdown.trigger();
        running.join().unwrap();
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        let second = args.lines().nth(1).unwrap();
        assert!(second.contains("--after-cursor=c2"), "{second}");
    }

    #[test]
    fn reports_an_exit_and_starts_journalctl_again() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = fake_journalctl(
            dir.path(),
            r#"{"__CURSOR":"c1","MESSAGE":"one"}"#,
            Some("Failed to open /nowhere: No such file or directory"),
        );
        let sink = std::sync::Arc::new(crate::MemorySink::new());
        let ctx = SourceContext::new(sink.clone(), dir.path().join("state"), "here");
        let src = super::super::JournaldSource::new("j", cfg).unwrap();
        let running = crate::spawn(Box::new(src), ctx.clone());
        // Each exit is reported once the entries read before it are delivered.
        wait_until("two exits", || running.status.snapshot().errors_total >= 2);
        let status = running.status.snapshot();
        assert_eq!(status.state, SourceState::Failing, "{status:?}");
        let err = status.last_error.unwrap();
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.contains("/nowhere"), "{err}");
        // The entry read before the exit was delivered once; the restart went on after it.
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert!(args.lines().nth(1).unwrap().contains("--after-cursor=c1"));
        ctx.shutdown.trigger();
        running.join().unwrap();
        assert_eq!(sink.records().len(), 2, "each start printed the entry once");

        let mut cfg = JournaldConfig {
            journalctl: dir.path().join("no-such-program"),
            ..JournaldConfig::default()
        };
        cfg.restart_wait = Duration::from_secs(1);
        let ctx = SourceContext::new(sink, dir.path().join("state2"), "here");
        let src = super::super::JournaldSource::new("j", cfg).unwrap();
        let running = crate::spawn(Box::new(src), ctx.clone());
        wait_until("a failure", || {
            running.status.snapshot().state == SourceState::Failing
        });
        let err = running.status.snapshot().last_error.unwrap();
        assert!(
            err.contains("no-such-program") && err.contains("`journalctl`"),
            "{err}"
        );
        ctx.shutdown.trigger();
        running.join().unwrap();
    }
}
