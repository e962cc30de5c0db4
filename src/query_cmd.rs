//! `logyard query`: search a server or a data directory and print the matches.

use std::io::Write;

use anyhow::{bail, Context};
use logyard_model::{format_rfc3339, now_ns, parse_time, Column, Level};
use logyard_query::{parse_query, Answer, Cell, Filter, QueryError};
use serde_json::Value;

use crate::cli::QueryArgs;
use crate::config::RawConfig;

/// The largest page the server returns at once.
const SERVER_PAGE: usize = 1000;

/// Splits a query into its filter and its pipes (from the first `|` outside quotes and
/// parentheses, the `|` included), so that flags can narrow the filter alone.
fn split_pipes(q: &str) -> (&str, &str) {
    let (mut quote, mut escaped, mut depth) = (None, false, 0usize);
    for (i, c) in q.char_indices() {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            (None, '|') if depth == 0 => return (&q[..i], &q[i..]),
            _ => {}
        }
    }
    (q, "")
}

/// Builds the query text from the positional query and the filter flags.
fn query_text(args: &QueryArgs) -> anyhow::Result<String> {
    let (filter, pipes) = split_pipes(args.query.trim());
    let mut q = filter.trim().to_string();
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
    if !pipes.is_empty() {
        q = format!("{q} {pipes}");
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
    let output = match (&args.target.server, &args.target.data) {
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
            let settings = config.query_settings();
            let mut query = parse_query(&q, now, &settings).map_err(|e| syntax_error(&q, e))?;
            if start.is_some() || end.is_some() {
                let filter = std::mem::replace(&mut query.filter, Filter::All);
                query.filter = Filter::and(vec![filter, Filter::Time { start, end }]);
            }
            let out = logyard_query::run(
                &store.snapshot(),
                &query,
                &settings,
                args.offset + args.limit,
            )
            .map_err(|e| syntax_error(&q, e))?;
            if let Some(why) = &out.partial {
                eprintln!("warning: the answer is partial: {why}");
            }
            match out.answer {
                Answer::Records { records, total, .. } => Output::Logs {
                    records: records
                        .iter()
                        .skip(args.offset)
                        .map(|r| r.to_json(true))
                        .collect(),
                    total,
                },
                Answer::Table(table) => Output::Table {
                    columns: table.columns,
                    rows: table
                        .rows
                        .iter()
                        .map(|row| row.iter().map(Cell::to_json).collect())
                        .collect(),
                },
            }
        }
    };
    let mut out = std::io::stdout().lock();
    match output {
        Output::Logs { records, total } => {
            print_logs(&mut out, &args, &records, total)?;
        }
        Output::Table { columns, rows } => print_table(&mut out, &args, &columns, &rows)?,
    }
    Ok(())
}

/// What a query printed: entries or a table.
enum Output {
    Logs {
        records: Vec<Value>,
        total: u64,
    },
    Table {
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
    },
}

fn print_logs(
    out: &mut impl Write,
    args: &QueryArgs,
    records: &[Value],
    total: u64,
) -> anyhow::Result<()> {
    if args.ndjson {
        for r in records {
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
                    r[Column::Timestamp.name()]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    r[Column::Level.name()].as_str().unwrap_or("-").to_string(),
                    r[Column::Agent.name()].as_str().unwrap_or("").to_string(),
                    r[Column::Message.name()]
                        .as_str()
                        .unwrap_or("")
                        .replace('\n', "\\n"),
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

fn print_table(
    out: &mut impl Write,
    args: &QueryArgs,
    columns: &[String],
    rows: &[Vec<Value>],
) -> anyhow::Result<()> {
    if args.ndjson {
        for row in rows {
            let object: serde_json::Map<String, Value> =
                columns.iter().cloned().zip(row.iter().cloned()).collect();
            writeln!(out, "{}", Value::Object(object))?;
        }
    } else if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"columns": columns, "rows": rows})
        )?;
    } else {
        let text: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| match v {
                        Value::String(s) => s.replace('\n', "\\n"),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        write!(out, "{}", crate::table::render(&header, &text))?;
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
) -> anyhow::Result<Output> {
    let client = crate::cli::http().build()?;
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
        let request = client.get(format!("{url}/api/query")).query(&params);
        let (status, value) = crate::cli::json_answer(crate::cli::send(request, url)?)?;
        if !status.is_success() {
            let message = crate::cli::error_message(&value);
            if let Some(p) = value["error"]["position"].as_u64() {
                return Err(syntax_error(
                    q,
                    QueryError::Syntax {
                        message: message.into(),
                        position: p as usize,
                    },
                ));
            }
            bail!("the server answered {status}: {message}");
        }
        if let Some(columns) = value["columns"].as_array() {
            let columns = columns
                .iter()
                .map(|c| c.as_str().unwrap_or("").to_string())
                .collect();
            let rows = value["rows"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|r| r.as_array().cloned().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default();
            return Ok(Output::Table { columns, rows });
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
    Ok(Output::Logs {
        records: got.into_iter().skip(offset).take(limit).collect(),
        total,
    })
}
