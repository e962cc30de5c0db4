//! `logyard query`: search a server or a data directory and print the matches.

use std::io::Write;

use anyhow::{bail, Context};
use logyard_model::{format_rfc3339, now_ns, parse_time, Level};
use logyard_query::{parse_filter, Filter, Page, QueryError};
use serde_json::Value;

use crate::cli::QueryArgs;
use crate::config::RawConfig;

/// The largest page the server returns at once.
const SERVER_PAGE: usize = 1000;

/// Builds the query text from the positional query and the filter flags.
fn query_text(args: &QueryArgs) -> anyhow::Result<String> {
    let mut q = args.query.trim().to_string();
    if q.is_empty() {
        q.push('*');
    }
    let mut add = |part: String| q = format!("({q}) {part}");
    if let Some(agent) = &args.agent {
        add(format!("agent:{}", quote(agent)));
    }
    if let Some(level) = &args.level {
        let l =
            Level::normalize(level).with_context(|| format!("--level {level:?} is not a level"))?;
        add(format!("level:{l}"));
    }
    if let Some(level) = &args.min_level {
        let l = Level::normalize(level)
            .with_context(|| format!("--min-level {level:?} is not a level"))?;
        add(format!("level:>={l}"));
    }
    Ok(q)
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Shows a query syntax error under the query, with a caret at its position.
fn syntax_error(q: &str, e: QueryError) -> anyhow::Error {
    match e {
        QueryError::Syntax { message, position } => {
            let caret = " ".repeat(q[..position.min(q.len())].chars().count());
            anyhow::anyhow!("invalid query: {message}\n  {q}\n  {caret}^")
        }
        other => other.into(),
    }
}

/// Runs `logyard query`.
pub fn run(config: RawConfig, args: QueryArgs) -> anyhow::Result<()> {
    let now = now_ns();
    let q = query_text(&args)?;
    let start = args
        .since
        .as_deref()
        .map(|s| parse_time(s, now).context("--since"))
        .transpose()?;
    let end = args
        .until
        .as_deref()
        .map(|s| parse_time(s, now).context("--until"))
        .transpose()?;
    let (records, total): (Vec<Value>, u64) = match (&args.target.server, &args.target.data) {
        (Some(url), _) => fetch(
            url.trim_end_matches('/'),
            &q,
            start,
            end,
            args.offset,
            args.limit,
        )?,
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
            let mut filter = parse_filter(&q, now).map_err(|e| syntax_error(&q, e))?;
            if start.is_some() || end.is_some() {
                filter = Filter::and(vec![filter, Filter::Time { start, end }]);
            }
            let page = Page {
                offset: args.offset,
                limit: args.limit,
            };
            let result = logyard_query::search(&store.snapshot(), &filter, page)?;
            let records = result.records.iter().map(|r| r.to_json(true)).collect();
            (records, result.total)
        }
    };
    let mut out = std::io::stdout().lock();
    if args.ndjson {
        for r in &records {
            writeln!(out, "{r}")?;
        }
    } else if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"logs": records, "total": total})
        )?;
    } else {
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                vec![
                    r["timestamp"].as_str().unwrap_or("").to_string(),
                    r["level"].as_str().unwrap_or("-").to_string(),
                    r["agent"].as_str().unwrap_or("").to_string(),
                    r["message"].as_str().unwrap_or("").replace('\n', "\\n"),
                ]
            })
            .collect();
        write!(
            out,
            "{}",
            crate::table::render(&["TIME", "LEVEL", "AGENT", "MESSAGE"], &rows)
        )?;
        eprintln!("{} of {} matching entries", records.len(), total);
    }
    Ok(())
}

/// Fetches `offset + limit` entries from a server, page by page with the cursor.
fn fetch(
    url: &str,
    q: &str,
    start: Option<i64>,
    end: Option<i64>,
    offset: usize,
    limit: usize,
) -> anyhow::Result<(Vec<Value>, u64)> {
    let client = reqwest::blocking::Client::new();
    let want = offset + limit;
    let mut got: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = 0;
    loop {
        let mut params = vec![
            ("q", q.to_string()),
            (
                "limit",
                (want - got.len()).clamp(0, SERVER_PAGE).to_string(),
            ),
            ("include_raw", "true".into()),
        ];
        if let Some(s) = start {
            params.push(("start", format_rfc3339(s)));
        }
        if let Some(e) = end {
            params.push(("end", format_rfc3339(e)));
        }
        if let Some(c) = &cursor {
            params.push(("cursor", c.clone()));
        }
        let answer = client
            .get(format!("{url}/api/query"))
            .query(&params)
            .send()
            .with_context(|| {
                format!("cannot reach the server at {url}; is `logyard serve` running?")
            })?;
        let status = answer.status();
        let value: Value = answer.json().context("the server's answer is not JSON")?;
        if !status.is_success() {
            let err = &value["error"];
            if let Some(p) = err["position"].as_u64() {
                return Err(syntax_error(
                    q,
                    QueryError::Syntax {
                        message: err["message"].as_str().unwrap_or("").into(),
                        position: p as usize,
                    },
                ));
            }
            bail!("the server answered {status}: {}", err["message"]);
        }
        if cursor.is_none() {
            total = value["total"].as_u64().unwrap_or(0);
        }
        got.extend(value["logs"].as_array().cloned().unwrap_or_default());
        cursor = value["next_cursor"].as_str().map(str::to_string);
        if got.len() >= want || cursor.is_none() || want == 0 {
            break;
        }
    }
    Ok((got.into_iter().skip(offset).take(limit).collect(), total))
}
