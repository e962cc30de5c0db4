//! `logyard sql`: one read-only SQL statement over the `logs` table of a server or a data
//! directory, printed as an aligned table, JSON or CSV.

use std::io::Write;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::cli::SqlArgs;
use crate::config::RawConfig;

/// Runs `logyard sql`.
pub fn run(config: RawConfig, args: SqlArgs) -> anyhow::Result<()> {
    let format = args.format.to_ascii_lowercase();
    if !["table", "json", "csv"].contains(&format.as_str()) {
        bail!("--format {:?} is not one of table, json, csv", args.format);
    }
    let answer = match &args.target.server {
        Some(url) => fetch(url, &args.sql)?,
        None => {
            let store = crate::analysis_cmd::open_store(&config, &args.target)?;
            let settings = config.query_settings();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the SQL engine's runtime")?;
            let pool = logyard_sql::SqlPool::new(config.sql_pool());
            let snapshot = std::sync::Arc::new(store.snapshot());
            let answer = runtime
                .block_on(pool.execute(
                    snapshot,
                    logyard_query::Filter::All,
                    args.sql.clone(),
                    settings,
                ))
                .map_err(|e| match e {
                    logyard_sql::SqlError::Syntax {
                        message,
                        position: Some(p),
                    } => anyhow::anyhow!("{}", with_caret(&args.sql, &message, p)),
                    other => anyhow::anyhow!("{other}"),
                })?;
            logyard_api::sql::answer_json(&answer)
        }
    };
    if answer["partial"] == Value::Bool(true) {
        eprintln!(
            "warning: the answer is partial: {}",
            answer["reason"].as_str().unwrap_or("")
        );
    }
    let columns: Vec<String> = answer["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c.as_str().unwrap_or("").to_string())
        .collect();
    let rows: Vec<Vec<Value>> = answer["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_array().cloned().unwrap_or_default())
        .collect();
    let mut out = std::io::stdout().lock();
    match format.as_str() {
        "json" => writeln!(
            out,
            "{}",
            serde_json::json!({"columns": columns, "rows": rows})
        )?,
        "csv" => {
            let line = |cells: Vec<String>| {
                cells
                    .iter()
                    .map(|c| logyard_query::export::csv_field(c))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            write!(out, "{}\r\n", line(columns.clone()))?;
            for row in &rows {
                write!(out, "{}\r\n", line(row.iter().map(cell_text).collect()))?;
            }
        }
        _ => {
            let header: Vec<&str> = columns.iter().map(String::as_str).collect();
            let text: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| cell_text(v).replace('\n', "\\n"))
                        .collect()
                })
                .collect();
            write!(out, "{}", crate::table::render(&header, &text))?;
            eprintln!("{} row(s)", rows.len());
        }
    }
    Ok(())
}

/// A cell as text: strings bare, null empty, numbers and the rest as JSON.
fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Shows an error under the statement, with a caret at its position.
fn with_caret(sql: &str, message: &str, position: usize) -> String {
    let at = position.min(sql.len());
    let line_start = sql[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = sql[at..].find('\n').map_or(sql.len(), |i| at + i);
    let caret = " ".repeat(sql[line_start..at].chars().count());
    format!(
        "invalid SQL: {message}\n  {}\n  {caret}^",
        &sql[line_start..line_end]
    )
}

/// Sends the statement to a server.
fn fetch(url: &str, sql: &str) -> anyhow::Result<Value> {
    let request = crate::cli::http()
        .timeout(None)
        .build()?
        .post(format!("{}/api/sql", url.trim_end_matches('/')))
        .json(&serde_json::json!({ "sql": sql }));
    let (status, body) = crate::cli::json_answer(crate::cli::send(request, url)?)?;
    if !status.is_success() {
        let message = crate::cli::error_message(&body);
        if let Some(p) = body["error"]["position"].as_u64() {
            bail!("{}", with_caret(sql, message, p as usize));
        }
        bail!("the server answered {status}: {message}");
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_the_position() {
        assert_eq!(
            with_caret("SELECT *\nFORM logs", "oops", 9),
            "invalid SQL: oops\n  FORM logs\n  ^"
        );
    }
}
