//! `logyard ingest`: send files or standard input to a server or straight into a data directory.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::cli::IngestArgs;
use crate::config::RawConfig;

/// Where batches go.
enum Sink {
    Server {
        client: reqwest::blocking::Client,
        url: String,
    },
    Store {
        store: logyard_store::Store,
        opts: logyard_api::IngestOptions,
    },
}

/// One line to send, with where it came from for error messages.
struct Line {
    entry: Value,
    origin: String,
}

/// Totals of a run.
#[derive(Default)]
struct Totals {
    accepted: u64,
    rejected: u64,
}

/// Turns a line into an entry: a JSON object as it is (agent and source added when missing),
/// anything else as a plain-text message.
fn line_entry(bytes: &[u8], agent: &str, source: &str) -> Value {
    let (text, lossy) = match std::str::from_utf8(bytes) {
        Ok(t) => (std::borrow::Cow::Borrowed(t), false),
        Err(_) => (String::from_utf8_lossy(bytes), true),
    };
    let text = text.trim_end_matches(['\r', '\n']);
    let mut entry = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) if text.trim_start().starts_with('{') => Value::Object(map),
        _ => json!({ "message": text, "raw": text }),
    };
    let obj = entry.as_object_mut().expect("an object");
    obj.entry("agent").or_insert_with(|| agent.into());
    obj.entry("source").or_insert_with(|| source.into());
    if lossy {
        obj.insert("invalid_utf8".into(), true.into());
    }
    entry
}

impl Sink {
    fn send(&mut self, lines: &[Line], totals: &mut Totals) -> anyhow::Result<()> {
        let rejections: Vec<(usize, String)> = match self {
            Sink::Server { client, url } => {
                let mut body = String::new();
                for l in lines {
                    body.push_str(&l.entry.to_string());
                    body.push('\n');
                }
                let answer = client
                    .post(format!("{url}/api/logs"))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .with_context(|| {
                        format!("cannot reach the server at {url}; is `logyard serve` running?")
                    })?;
                let status = answer.status();
                let value: Value = answer.json().context("the server's answer is not JSON")?;
                if !status.is_success() {
                    bail!(
                        "the server refused the batch ({status}): {}",
                        value["error"]["message"]
                    );
                }
                totals.accepted += value["accepted"].as_u64().unwrap_or(0);
                value["errors"]
                    .as_array()
                    .map(|errs| {
                        errs.iter()
                            .map(|e| {
                                (
                                    e["index"].as_u64().unwrap_or(0) as usize,
                                    e["reason"].as_str().unwrap_or("").to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Sink::Store { store, opts } => {
                let now = logyard_model::now_ns();
                let mut records = Vec::with_capacity(lines.len());
                let mut rejected = Vec::new();
                for (i, l) in lines.iter().enumerate() {
                    let text = l.entry.to_string();
                    if text.len() > opts.max_line_bytes {
                        rejected.push((i, format!("entry is {} bytes, over the limit of {} (setting limits.max_line_bytes)", text.len(), opts.max_line_bytes)));
                        continue;
                    }
                    match logyard_api::ingest::entry_to_record(
                        l.entry.clone(),
                        Some(&text),
                        opts,
                        now,
                    ) {
                        Ok(r) => records.push(r),
                        Err((_, reason)) => rejected.push((i, reason)),
                    }
                }
                totals.accepted += records.len() as u64;
                if !records.is_empty() {
                    store.append(records).context("cannot write to the store")?;
                }
                rejected
            }
        };
        for (i, reason) in &rejections {
            totals.rejected += 1;
            if totals.rejected <= 10 {
                let origin = lines.get(*i).map_or("?", |l| l.origin.as_str());
                eprintln!("rejected {origin}: {reason}");
            }
        }
        Ok(())
    }
}

/// Runs `logyard ingest`.
pub fn run(config: RawConfig, args: IngestArgs) -> anyhow::Result<()> {
    let mut sink = match (&args.target.server, &args.target.data) {
        (Some(url), _) => Sink::Server {
            client: reqwest::blocking::Client::new(),
            url: url.trim_end_matches('/').to_string(),
        },
        (None, data) => {
            let mut c = config.clone();
            if let Some(d) = data {
                c.server.data_dir = d.clone();
            }
            let store = logyard_store::Store::open(c.store_config()).with_context(|| {
                format!(
                    "cannot open the data directory {}",
                    c.server.data_dir.display()
                )
            })?;
            Sink::Store {
                store,
                opts: config.ingest_options("cli"),
            }
        }
    };
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} lines ({per_sec}) {msg}")
                .expect("valid template"),
        );
        bar
    });
    let started = Instant::now();
    let mut totals = Totals::default();
    let batch = args.batch.max(1);
    for file in &args.files {
        let (reader, stem, source): (Box<dyn Read>, String, String) = if file == Path::new("-") {
            (Box::new(std::io::stdin()), "stdin".into(), "stdin".into())
        } else {
            let f = std::fs::File::open(file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (Box::new(f), stem, format!("file:{}", file.display()))
        };
        let agent = args.agent.clone().unwrap_or(stem);
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let mut buf = Vec::new();
        let mut lines = Vec::with_capacity(batch);
        let mut number = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("cannot read {}", file.display()))?;
            if n == 0 {
                break;
            }
            number += 1;
            if buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            lines.push(Line {
                entry: line_entry(&buf, &agent, &source),
                origin: format!("{}:{number}", file.display()),
            });
            if lines.len() == batch {
                sink.send(&lines, &mut totals)?;
                if let Some(bar) = &progress {
                    bar.inc(lines.len() as u64);
                }
                lines.clear();
            }
        }
        if !lines.is_empty() {
            sink.send(&lines, &mut totals)?;
            if let Some(bar) = &progress {
                bar.inc(lines.len() as u64);
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {} lines ({} rejected) in {:.1}s, {:.0} lines/s",
        totals.accepted,
        totals.rejected,
        secs,
        totals.accepted as f64 / secs.max(1e-9)
    );
    if let Sink::Store { store, .. } = sink {
        store.close();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_entries() {
        let e = line_entry(b"{\"message\":\"m\",\"agent\":\"a\"}\n", "file", "file:x");
        assert_eq!(e["agent"], "a");
        assert_eq!(e["source"], "file:x");
        let e = line_entry(b"plain text\r\n", "web", "file:web.log");
        assert_eq!(e["message"], "plain text");
        assert_eq!(e["agent"], "web");
        let e = line_entry(b"bad \xff byte", "web", "stdin");
        assert_eq!(e["invalid_utf8"], true);
        let e = line_entry(b"[1,2]", "web", "stdin");
        assert_eq!(e["message"], "[1,2]");
    }
}
