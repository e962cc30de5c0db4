//! `GET /api/export?q=&start=&end=&format=ndjson|csv|json`: every match, streamed.
//!
//! A filter (with `limit` and `fields` pipes) streams block by block: the server holds one
//! block at a time whatever the size of the export. Other pipes (`sort`, `stats`, …) run as
//! a query whose answer (at most `query.max_limit` records, or its table) is then streamed.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use logyard_model::{now_ns, Record};
use logyard_query::{Answer, Cell, FieldRef, Pipe};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::read::{add_range, parse_q, query_settings};
use crate::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/export", get(export))
}

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 << 10;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON array.
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// The columns of an export of whole records.
pub const RECORD_COLUMNS: [&str; 8] = [
    "id",
    "timestamp",
    "level",
    "agent",
    "host",
    "source",
    "message",
    "fields",
];

/// Writes rows in a format; `columns` is `None` for whole records as JSON entries.
pub struct Encoder {
    format: Format,
    columns: Vec<String>,
    rows: usize,
}

impl Encoder {
    /// Starts an export; returns the encoder and its first bytes (CSV header, `[`).
    pub fn new(format: Format, columns: Vec<String>) -> (Encoder, Vec<u8>) {
        let head = match format {
            Format::Csv => {
                let mut line = columns
                    .iter()
                    .map(|c| csv_field(c))
                    .collect::<Vec<_>>()
                    .join(",");
                line.push_str("\r\n");
                line.into_bytes()
            }
            Format::Json => b"[".to_vec(),
            Format::Ndjson => Vec::new(),
        };
        (
            Encoder {
                format,
                columns,
                rows: 0,
            },
            head,
        )
    }

    fn json_value(&mut self, out: &mut Vec<u8>, value: &serde_json::Value) {
        if self.format == Format::Json && self.rows > 0 {
            out.push(b',');
        }
        self.rows += 1;
        out.extend_from_slice(value.to_string().as_bytes());
        if self.format == Format::Ndjson {
            out.push(b'\n');
        }
    }

    /// Writes one whole record.
    pub fn record(&mut self, out: &mut Vec<u8>, r: &Record) {
        if self.format == Format::Csv {
            let json = r.to_json(false);
            let cells: Vec<String> = RECORD_COLUMNS
                .iter()
                .map(|c| match &json[*c] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect();
            self.csv_line(out, &cells);
        } else {
            self.json_value(out, &r.to_json(false));
        }
    }

    /// Writes one row of cells aligned with the columns.
    pub fn row(&mut self, out: &mut Vec<u8>, cells: &[Cell]) {
        if self.format == Format::Csv {
            let cells: Vec<String> = cells.iter().map(Cell::to_string).collect();
            self.csv_line(out, &cells);
        } else {
            let obj: serde_json::Map<String, serde_json::Value> = self
                .columns
                .iter()
                .cloned()
                .zip(cells.iter().map(Cell::to_json))
                .collect();
            self.json_value(out, &serde_json::Value::Object(obj));
        }
    }

    fn csv_line(&mut self, out: &mut Vec<u8>, cells: &[String]) {
        self.rows += 1;
        let line = cells
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(",");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// Returns the last bytes (`]` for JSON).
    pub fn finish(&self) -> Vec<u8> {
        match self.format {
            Format::Json => b"]\n".to_vec(),
            _ => Vec::new(),
        }
    }
}

/// Quotes a CSV field when it holds a comma, a quote or a line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

type Chunk = Result<Vec<u8>, std::io::Error>;

/// `GET /api/export`.
pub async fn export(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let now = now_ns();
    let mut query = parse_q(&state, &params, now)?;
    add_range(&mut query, &params, now)?;
    let format = match params.get("format").map(String::as_str).unwrap_or("ndjson") {
        "ndjson" => Format::Ndjson,
        "csv" => Format::Csv,
        "json" => Format::Json,
        other => {
            return Err(ApiError::bad_param(format!(
                "format {other:?} is not one of ndjson, csv, json"
            )))
        }
    };
    let settings = query_settings(&state);
    let store = state.store.clone();
    let (tx, rx) = mpsc::channel::<Chunk>(8);
    tokio::task::spawn_blocking(move || {
        let snapshot = store.snapshot();
        let streamable = query
            .pipes
            .iter()
            .all(|p| matches!(p, Pipe::Limit(_) | Pipe::Fields(_)));
        let send = |bytes: Vec<u8>| tx.blocking_send(Ok(bytes)).is_ok();
        let result = if streamable {
            stream_matches(&snapshot, &query, format, send)
        } else {
            stream_answer(&snapshot, &query, &settings, format, send)
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "export stopped");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"logyard-export.{}\"",
                    format.extension()
                ),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Streams the matches of a filter (with `limit` and `fields` pipes) block by block.
fn stream_matches(
    snapshot: &logyard_store::Snapshot,
    query: &logyard_query::Query,
    format: Format,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), logyard_query::QueryError> {
    let mut limit = usize::MAX;
    let mut fields: Option<Vec<FieldRef>> = None;
    for p in &query.pipes {
        match p {
            Pipe::Limit(l) if fields.is_none() => limit = limit.min(l.n),
            Pipe::Limit(l) => limit = limit.min(l.n),
            Pipe::Fields(f) => fields = Some(f.fields.clone()),
            _ => {}
        }
    }
    let columns = fields.as_ref().map_or_else(
        || RECORD_COLUMNS.iter().map(|c| c.to_string()).collect(),
        |f| f.iter().map(|f| f.name.clone()).collect(),
    );
    let (mut enc, mut buf) = Encoder::new(format, columns);
    let mut sent = 0usize;
    let mut open = true;
    if limit > 0 {
        logyard_query::for_each_match(snapshot, &query.filter, |r| {
            match &fields {
                Some(f) => {
                    let cells: Vec<Cell> = f.iter().map(|f| f.of_record(&r)).collect();
                    enc.row(&mut buf, &cells);
                }
                None => enc.record(&mut buf, &r),
            }
            sent += 1;
            if buf.len() >= CHUNK {
                open = send(std::mem::take(&mut buf));
            }
            open && sent < limit
        })?;
    }
    if open {
        buf.extend(enc.finish());
        send(buf);
    }
    Ok(())
}

/// Runs a query with other pipes and streams its answer.
fn stream_answer(
    snapshot: &logyard_store::Snapshot,
    query: &logyard_query::Query,
    settings: &logyard_query::Settings,
    format: Format,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), logyard_query::QueryError> {
    let out = logyard_query::run(snapshot, query, settings, settings.max_limit)?;
    let (mut enc, mut buf) = match &out.answer {
        Answer::Table(t) => Encoder::new(format, t.columns.clone()),
        Answer::Records { .. } => Encoder::new(
            format,
            RECORD_COLUMNS.iter().map(|c| c.to_string()).collect(),
        ),
    };
    match &out.answer {
        Answer::Table(t) => {
            for row in &t.rows {
                enc.row(&mut buf, row);
                if buf.len() >= CHUNK && !send(std::mem::take(&mut buf)) {
                    return Ok(());
                }
            }
        }
        Answer::Records { records, .. } => {
            for r in records {
                enc.record(&mut buf, r);
                if buf.len() >= CHUNK && !send(std::mem::take(&mut buf)) {
                    return Ok(());
                }
            }
        }
    }
    buf.extend(enc.finish());
    send(buf);
    Ok(())
}
