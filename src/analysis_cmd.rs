//! `logyard tail`, `logyard export` and `logyard errors`: following, exporting and
//! summarising the logs of a server or a data directory.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::time::Instant;

use anyhow::{bail, Context};
use logyard_model::{now_ns, parse_time, Column};
use logyard_query::export::Format;
use logyard_query::{parse_query, Filter};
use serde_json::Value;

use crate::cli::{ErrorsArgs, ExportArgs, TailArgs, Target};
use crate::config::RawConfig;

/// Opens the store of a data directory for a client command.
pub(crate) fn open_store(
    config: &RawConfig,
    target: &Target,
) -> anyhow::Result<logyard_store::Store> {
    let mut c = config.clone();
    if let Some(d) = &target.data {
        c.server.data_dir = d.clone();
    }
    logyard_store::Store::open(c.store_config()).with_context(|| {
        format!(
            "cannot open the data directory {}",
            c.server.data_dir.display()
        )
    })
}

/// Sends a GET to a server; an error answer becomes an error with the server's message.
pub(crate) fn get(
    url: &str,
    path: &str,
    params: &[(&str, String)],
) -> anyhow::Result<reqwest::blocking::Response> {
    let request = crate::cli::http()
        .timeout(None)
        .build()?
        .get(format!("{}{path}", url.trim_end_matches('/')))
        .query(params);
    let resp = crate::cli::send(request, url)?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        bail!(
            "the server answered {status}: {}",
            crate::cli::error_message(&body)
        );
    }
    Ok(resp)
}

fn entry_line(e: &Value) -> String {
    format!(
        "{}  {:<8} {:<12} {}",
        e[Column::Timestamp.name()].as_str().unwrap_or(""),
        e[Column::Level.name()].as_str().unwrap_or("-"),
        e[Column::Agent.name()].as_str().unwrap_or(""),
        e[Column::Message.name()]
            .as_str()
            .unwrap_or("")
            .replace('\n', "\\n")
    )
}

/// Runs `logyard tail`: the newest entries, oldest first, then (with `-f`) new ones as they
/// are acknowledged, until interrupted.
pub fn tail(args: TailArgs) -> anyhow::Result<()> {
    let url = &args.server;
    let print = |out: &mut std::io::StdoutLock, e: &Value| -> std::io::Result<()> {
        if args.ndjson {
            writeln!(out, "{e}")
        } else {
            writeln!(out, "{}", entry_line(e))
        }
    };
    let mut out = std::io::stdout().lock();
    if args.lines > 0 {
        let answer: Value = get(
            url,
            "/api/query",
            &[("q", args.query.clone()), ("limit", args.lines.to_string())],
        )?
        .json()?;
        for e in answer["logs"].as_array().into_iter().flatten().rev() {
            print(&mut out, e)?;
        }
        out.flush()?;
    }
    if !args.follow {
        return Ok(());
    }
    let resp = get(url, "/api/tail", &[("q", args.query.clone())])?;
    let mut event = String::new();
    for line in BufReader::new(resp).lines() {
        let line = line.context("the server closed the live tail")?;
        if let Some(kind) = line.strip_prefix("event:") {
            event = kind.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            if event == "lagged" {
                eprintln!(
                    "warning: the tail fell behind; {} batches were skipped",
                    data.trim()
                );
            } else if let Ok(e) = serde_json::from_str::<Value>(data.trim()) {
                print(&mut out, &e)?;
                out.flush()?;
            }
        } else if line.is_empty() {
            event.clear();
        }
    }
    Ok(())
}

/// Runs `logyard export`: every match, streamed to standard output in a format, with the
/// bytes written shown on a terminal.
pub fn export(config: RawConfig, args: ExportArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.format)
        .with_context(|| format!("--format {:?}: use ndjson, csv or json", args.format))?;
    let now = now_ns();
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut written = 0u64;
    let mut out = std::io::stdout().lock();
    let report = |written: u64, done: bool| {
        if progress {
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            eprint!(
                "\r{:.1} MiB written ({:.1} MiB/s){}",
                written as f64 / 1048576.0,
                written as f64 / 1048576.0 / secs,
                if done { "\n" } else { "" }
            );
        }
    };
    if let Some(url) = &args.target.server {
        let mut params = vec![("q", args.query.clone()), ("format", args.format.clone())];
        if let Some(s) = &args.since {
            params.push(("start", s.clone()));
        }
        let mut resp = get(url, "/api/export", &params)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = resp.read(&mut buf).context("the export was cut")?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            written += n as u64;
            report(written, false);
        }
    } else {
        let store = open_store(&config, &args.target)?;
        let settings = config.query_settings();
        let mut query = parse_query(&args.query, now, &settings)
            .map_err(|e| anyhow::anyhow!("invalid query: {e}"))?;
        if let Some(s) = &args.since {
            let start = parse_time(s, now).context("--since")?;
            let filter = std::mem::replace(&mut query.filter, Filter::All);
            query.filter = Filter::and(vec![
                filter,
                Filter::Time {
                    start: Some(start),
                    end: None,
                },
            ]);
        }
        let mut failed = None;
        logyard_query::export::export(&store.snapshot(), &query, &settings, format, |chunk| {
            written += chunk.len() as u64;
            report(written, false);
            match out.write_all(&chunk) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e).context("cannot write the export");
        }
    }
    out.flush()?;
    report(written, true);
    Ok(())
}

/// Runs `logyard errors`: the error summary of the last hours.
pub fn errors(config: RawConfig, args: ErrorsArgs) -> anyhow::Result<()> {
    if args.hours == 0 {
        bail!("--hours must be 1 or more");
    }
    let summary: Value = if let Some(url) = &args.target.server {
        get(
            url,
            "/api/errors/summary",
            &[("hours", args.hours.to_string())],
        )?
        .json()?
    } else {
        let store = open_store(&config, &args.target)?;
        let now = now_ns();
        let since = now - args.hours as i64 * 3_600_000_000_000;
        let s = logyard_query::error_summary(
            &store.snapshot(),
            since,
            &logyard_query::Filter::All,
            &config.query_settings(),
        )?;
        logyard_api::analysis::error_summary_json(&s, now, args.hours)
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{} error entries from {} of {} agents in the last {} h",
        summary["total_error_entries"],
        summary["agents_with_errors"],
        summary["total_agents"],
        args.hours
    )?;
    let mut rows: Vec<Vec<String>> = summary["error_breakdown"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(agent, v)| {
            let last = v["recent_errors"][0][Column::Message.name()]
                .as_str()
                .unwrap_or("")
                .to_string();
            vec![agent.clone(), v["error_count"].to_string(), last]
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r[1].parse::<u64>().unwrap_or(0)));
    if !rows.is_empty() {
        writeln!(out)?;
        write!(
            out,
            "{}",
            crate::table::render(&["AGENT", "ERRORS", "LATEST"], &rows)
        )?;
    }
    let patterns: Vec<Vec<String>> = summary["top_patterns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                p["count"].to_string(),
                p["pattern"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    if !patterns.is_empty() {
        writeln!(out)?;
        write!(
            out,
            "{}",
            crate::table::render(&["COUNT", "PATTERN"], &patterns)
        )?;
    }
    let critical = summary["critical_issues"].as_array().map_or(0, Vec::len);
    if critical > 0 {
        writeln!(out, "\n{critical} critical entries:")?;
        for e in summary["critical_issues"].as_array().into_iter().flatten() {
            writeln!(out, "{}", entry_line(e))?;
        }
    }
    Ok(())
}
