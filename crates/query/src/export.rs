//! Exports: every match of a query as NDJSON, CSV or JSON, written chunk by chunk.
//!
//! A filter (with `limit` and `fields` pipes) streams block by block: one block is held at
//! a time whatever the size of the export. Other pipes (`sort`, `stats`, …) run as a query
//! whose answer (at most [`Settings::max_limit`] records, or its table) is then written;
//! when that answer was cut (by `max_limit` or a budget), the export ends with a sign of it
//! ([`Encoder::partial`]).

use logyard_model::schema::{self, Column};
use logyard_model::Record;
use logyard_store::Snapshot;

use crate::{for_each_match, run, Answer, Cell, FieldRef, Pipe, Query, QueryError, Settings};

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
    /// Reads a format name: `ndjson`, `csv` or `json`.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "ndjson" => Some(Format::Ndjson),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Returns the media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    /// Returns the usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// The columns of an export of whole records.
pub const RECORD_COLUMNS: [&str; 8] = [
    schema::ID,
    Column::Timestamp.name(),
    Column::Level.name(),
    Column::Agent.name(),
    Column::Host.name(),
    Column::Source.name(),
    Column::Message.name(),
    Column::Fields.name(),
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

    /// Writes the sign that the export was cut short, after its rows: the object
    /// `{"partial": true, "reason": "…"}` as the last line (NDJSON) or the last element of
    /// the array (JSON), the line `# partial: …` (CSV).
    pub fn partial(&mut self, out: &mut Vec<u8>, reason: &str) {
        if self.format == Format::Csv {
            let reason = reason.replace(['\r', '\n'], " ");
            out.extend_from_slice(format!("# partial: {reason}\r\n").as_bytes());
        } else {
            let sign = serde_json::json!({"partial": true, "reason": reason});
            self.json_value(out, &sign);
        }
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

/// Writes every match of a query in a format, handing chunks of about 64 KiB to `send`;
/// stops early when `send` returns false (the reader went away).
pub fn export(
    snapshot: &Snapshot,
    query: &Query,
    settings: &Settings,
    format: Format,
    send: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), QueryError> {
    let streamable = query
        .pipes
        .iter()
        .all(|p| matches!(p, Pipe::Limit(_) | Pipe::Fields(_)));
    if streamable {
        stream_matches(snapshot, query, format, send)
    } else {
        stream_answer(snapshot, query, settings, format, send)
    }
}

/// Streams the matches of a filter (with `limit` and `fields` pipes) block by block.
fn stream_matches(
    snapshot: &Snapshot,
    query: &Query,
    format: Format,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), QueryError> {
    let mut limit = usize::MAX;
    let mut fields: Option<Vec<FieldRef>> = None;
    for p in &query.pipes {
        match p {
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
    let mut cost = crate::Cost::default();
    if limit > 0 {
        cost = for_each_match(snapshot, &query.filter, |r| {
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
        if let Some(reason) = cost.unreadable_reason() {
            enc.partial(&mut buf, &reason);
        }
        buf.extend(enc.finish());
        send(buf);
    }
    Ok(())
}

/// Runs a query with other pipes and streams its answer.
fn stream_answer(
    snapshot: &Snapshot,
    query: &Query,
    settings: &Settings,
    format: Format,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), QueryError> {
    let out = run(snapshot, query, settings, settings.max_limit)?;
    let cut = out.partial.clone().or_else(|| match &out.answer {
        Answer::Records { records, total, .. } if (records.len() as u64) < *total => Some(format!(
            "the export holds the first {} of {total} matching entries (setting query.max_limit): narrow the query, or export a filter without sort or table pipes, which streams every match",
            records.len()
        )),
        _ => None,
    });
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
    if let Some(reason) = &cut {
        enc.partial(&mut buf, reason);
    }
    buf.extend(enc.finish());
    send(buf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn encoders_frame_rows() {
        let cols = vec!["a".to_string(), "n".to_string()];
        let row = [Cell::Str("x,y".into()), Cell::Int(3)];
        for (format, want) in [
            (Format::Csv, "a,n\r\n\"x,y\",3\r\n\"x,y\",3\r\n"),
            (
                Format::Ndjson,
                "{\"a\":\"x,y\",\"n\":3}\n{\"a\":\"x,y\",\"n\":3}\n",
            ),
            (
                Format::Json,
                "[{\"a\":\"x,y\",\"n\":3},{\"a\":\"x,y\",\"n\":3}]\n",
            ),
        ] {
            let (mut enc, mut out) = Encoder::new(format, cols.clone());
            enc.row(&mut out, &row);
            enc.row(&mut out, &row);
            out.extend(enc.finish());
            assert_eq!(String::from_utf8(out).unwrap(), want, "{format:?}");
        }
        let (enc, mut out) = Encoder::new(Format::Json, cols.clone());
        out.extend(enc.finish());
        assert_eq!(out, b"[]\n");
        for (format, want) in [
            (Format::Csv, "a,n\r\n\"x,y\",3\r\n# partial: cut by x\r\n"),
            (
                Format::Ndjson,
                "{\"a\":\"x,y\",\"n\":3}\n{\"partial\":true,\"reason\":\"cut by x\"}\n",
            ),
            (
                Format::Json,
                "[{\"a\":\"x,y\",\"n\":3},{\"partial\":true,\"reason\":\"cut by x\"}]\n",
            ),
        ] {
            let (mut enc, mut out) = Encoder::new(format, cols.clone());
            enc.row(&mut out, &row);
            enc.partial(&mut out, "cut by x");
            out.extend(enc.finish());
            assert_eq!(String::from_utf8(out).unwrap(), want, "{format:?}");
        }
    }
}
