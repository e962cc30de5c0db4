//! `logyard slow`, `logyard auth`, `logyard db-errors`: the analyses of
//! `/api/analyses/*` over a server or a data directory, printed as aligned tables.

use std::io::Write;

use anyhow::bail;
use logyard_model::{now_ns, parse_time, Column};
use logyard_query::Filter;
use logyard_report::analyses::{self, AuthParams, SlowParams};
use serde_json::Value;

use crate::analysis_cmd::{get, open_store};
use crate::cli::{AnalysisRange, AuthArgs, DbArgs, SlowArgs};
use crate::config::RawConfig;
use crate::table::render;

/// Query parameters for a server.
type Params = Vec<(&'static str, String)>;

/// Returns `[start, end)` of the flags, and the same as parameters for a server.
fn range(r: &AnalysisRange) -> anyhow::Result<(i64, i64, Params)> {
    let now = now_ns();
    let end = match &r.until {
        Some(u) => parse_time(u, now).map_err(|e| anyhow::anyhow!("--until: {e}"))?,
        None => now,
    };
    let start = match &r.since {
        Some(s) => parse_time(s, end).map_err(|e| anyhow::anyhow!("--since: {e}"))?,
        None => {
            if r.hours == 0 {
                bail!("--hours must be 1 or more");
            }
            end - r.hours as i64 * 3_600_000_000_000
        }
    };
    if start >= end {
        bail!("the range is empty: --since must be before --until");
    }
    let params = vec![
        ("start", logyard_model::format_rfc3339(start)),
        ("end", logyard_model::format_rfc3339(end)),
    ];
    Ok((start, end, params))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.replace('\n', "\\n"),
        Value::Null => "–".into(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() != 0.0 => format!("{x:.1}"),
            Some(x) if x.abs() < 1e15 => format!("{}", x as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn print(
    answer: &Value,
    json: bool,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{answer}")?;
    } else {
        body(&mut out)?;
        if answer["partial"] == Value::Bool(true) {
            eprintln!(
                "warning: the answer is partial: {}",
                text(&answer["reason"])
            );
        }
    }
    Ok(())
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// Runs `logyard slow`.
pub fn slow(config: RawConfig, args: SlowArgs) -> anyhow::Result<()> {
    let (start, end, mut params) = range(&args.range)?;
    let report = config.report_settings()?;
    let threshold_ms = args.threshold_ms.unwrap_or(report.slow_ms);
    if !(threshold_ms.is_finite() && threshold_ms >= 0.0) {
        bail!("--threshold-ms must be a number of 0 or more");
    }
    let limit = args.limit.unwrap_or(report.slow_limit);
    let answer: Value = match &args.range.target.server {
        Some(url) => {
            params.push(("threshold_ms", threshold_ms.to_string()));
            params.push(("limit", limit.to_string()));
            get(url, "/api/analyses/slow", &params)?.json()?
        }
        None => {
            let store = open_store(&config, &args.range.target)?;
            let p = SlowParams {
                threshold_ms,
                limit: limit.min(config.query_settings().max_limit),
                top_paths: report.top_paths,
            };
            let a = analyses::slow(
                &store.snapshot(),
                start,
                end,
                &Filter::All,
                &p,
                &config.query_settings(),
            )?;
            logyard_api::analyses::analysis_json(&a)
        }
    };
    print(&answer, args.json, |out| {
        let l = &answer["latency_ms"];
        writeln!(
            out,
            "{} requests, {} above {} ms; p50 {} ms, p95 {} ms, p99 {} ms",
            answer["count"],
            answer["slow_count"],
            text(&answer["threshold_ms"]),
            text(&l["p50"]),
            text(&l["p95"]),
            text(&l["p99"])
        )?;
        let head = ["REQUESTS", "P50", "P95", "P99"];
        let lat = |l: &Value| ["count", "p50", "p95", "p99"].map(|k| text(&l[k]));
        let by_agent: Vec<Vec<String>> = answer["by_agent"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(agent, l)| std::iter::once(agent.clone()).chain(lat(l)).collect())
            .collect();
        if !by_agent.is_empty() {
            writeln!(out)?;
            let mut h = vec!["AGENT"];
            h.extend(head);
            write!(out, "{}", render(&h, &by_agent))?;
        }
        let by_path: Vec<Vec<String>> = items(&answer["by_path"])
            .map(|p| std::iter::once(text(&p["path"])).chain(lat(p)).collect())
            .collect();
        if !by_path.is_empty() {
            writeln!(out)?;
            let mut h = vec!["PATH"];
            h.extend(head);
            write!(out, "{}", render(&h, &by_path))?;
        }
        let slow: Vec<Vec<String>> = items(&answer["slow"])
            .map(|e| {
                vec![
                    text(&e[Column::Timestamp.name()]),
                    text(&e[Column::Agent.name()]),
                    text(&e[Column::Fields.name()]["response_time_ms"]),
                    text(&e[Column::Fields.name()]["path"]),
                    text(&e[Column::Message.name()]),
                ]
            })
            .collect();
        if !slow.is_empty() {
            writeln!(out)?;
            write!(
                out,
                "{}",
                render(&["TIME", "AGENT", "MS", "PATH", "MESSAGE"], &slow)
            )?;
        }
        Ok(())
    })
}

/// Runs `logyard auth`.
pub fn auth(config: RawConfig, args: AuthArgs) -> anyhow::Result<()> {
    let (start, end, mut params) = range(&args.range)?;
    let report = config.report_settings()?;
    let min_failures = args
        .min_failures
        .unwrap_or(report.suspicious_failures.saturating_add(1));
    if min_failures == 0 {
        bail!("--min-failures must be 1 or more");
    }
    let answer: Value = match &args.range.target.server {
        Some(url) => {
            params.push(("min_failures", min_failures.to_string()));
            if let Some(w) = &args.window {
                params.push(("window", w.clone()));
            }
            get(url, "/api/analyses/auth", &params)?.json()?
        }
        None => {
            let settings = config.query_settings();
            let window = args
                .window
                .as_deref()
                .map(|w| analyses::parse_window(w, start, end, settings.max_buckets))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--{e}"))?;
            let store = open_store(&config, &args.range.target)?;
            let p = AuthParams {
                min_failures,
                window,
            };
            let a = analyses::auth(&store.snapshot(), start, end, &Filter::All, &p, &settings)?;
            logyard_api::analyses::analysis_json(&a)
        }
    };
    print(&answer, args.json, |out| {
        let rate = match answer["success_rate"].as_f64() {
            Some(r) => format!("{:.1}%", r * 100.0),
            None => "–".into(),
        };
        writeln!(
            out,
            "{} failed and {} successful logins (success rate {rate})",
            answer["failed"], answer["succeeded"]
        )?;
        let windowed = !answer["window"].is_null();
        let rows: Vec<Vec<String>> = items(&answer["suspicious_ips"])
            .map(|ip| {
                let mut row = vec![text(&ip["ip"]), text(&ip["failures"])];
                if windowed {
                    row.push(text(&ip["window_start"]));
                }
                row
            })
            .collect();
        writeln!(
            out,
            "{} IP(s) with at least {} failures{}",
            rows.len(),
            answer["min_failures"],
            if windowed {
                format!(" in {}", text(&answer["window"]))
            } else {
                String::new()
            }
        )?;
        if !rows.is_empty() {
            writeln!(out)?;
            let header: &[&str] = if windowed {
                &["IP", "FAILURES", "WINDOW"]
            } else {
                &["IP", "FAILURES"]
            };
            write!(out, "{}", render(header, &rows))?;
        }
        Ok(())
    })
}

/// Runs `logyard db-errors`.
pub fn db(config: RawConfig, args: DbArgs) -> anyhow::Result<()> {
    let (start, end, params) = range(&args.range)?;
    let report = config.report_settings()?;
    let answer: Value = match &args.range.target.server {
        Some(url) => get(url, "/api/analyses/db", &params)?.json()?,
        None => {
            let store = open_store(&config, &args.range.target)?;
            let a = analyses::database(
                &store.snapshot(),
                start,
                end,
                &Filter::All,
                &report.database_filter,
                report.top_patterns,
                &config.query_settings(),
            )?;
            logyard_api::analyses::analysis_json(&a)
        }
    };
    print(&answer, args.json, |out| {
        writeln!(
            out,
            "{} database errors, {} connection failures",
            answer["database_errors"], answer["connection_failures"]
        )?;
        let counts = |v: &Value| -> Vec<Vec<String>> {
            items(v)
                .map(|a| vec![text(&a[Column::Agent.name()]), text(&a["count"])])
                .collect()
        };
        for (title, key) in [
            ("DATABASE ERRORS", "by_agent"),
            ("CONNECTION FAILURES", "connection_failures_by_agent"),
        ] {
            let rows = counts(&answer[key]);
            if !rows.is_empty() {
                writeln!(out)?;
                write!(out, "{}", render(&["AGENT", title], &rows))?;
            }
        }
        let patterns: Vec<Vec<String>> = items(&answer["top_patterns"])
            .map(|p| vec![text(&p["count"]), text(&p["pattern"])])
            .collect();
        if !patterns.is_empty() {
            writeln!(out)?;
            write!(out, "{}", render(&["COUNT", "PATTERN"], &patterns))?;
        }
        Ok(())
    })
}
