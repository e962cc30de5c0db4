//! The shippers' protocols, served beside the native API so that existing agents send here
//! unchanged: Elasticsearch `_bulk` ([`bulk`]), Loki push ([`loki`]) and OTLP/HTTP logs
//! ([`otlp`]).
//!
//! What they share lives here: reading a body within `limits.max_body_bytes` (the
//! decompressed size included, so a small gzip or snappy body cannot expand past the limit),
//! storing records and answering only once they are durable, and the ingest metrics.

pub mod bulk;
pub mod loki;
pub mod otlp;

use std::io::Read;

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderMap};
use logyard_model::Record;
use logyard_store::StoreError;

use crate::ingest::count_by_source_level;
use crate::AppState;

/// Why a request body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Over `limits.max_body_bytes`, before or after decompression.
    TooLarge(String),
    /// A compressed body that does not decompress, or an unknown encoding.
    Undecodable(String),
}

impl BodyError {
    /// The text of the error.
    pub fn message(&self) -> &str {
        match self {
            BodyError::TooLarge(m) | BodyError::Undecodable(m) => m,
        }
    }
}

fn too_large(max: usize, what: &str) -> BodyError {
    BodyError::TooLarge(format!(
        "the {what} is over {max} bytes (setting limits.max_body_bytes); send smaller batches"
    ))
}

/// Reads a body of at most `max` bytes and undoes its `Content-Encoding` (`gzip`, or
/// `identity`), again within `max` bytes. Returns the bytes and the size on the wire.
pub async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Vec<u8>, u64), BodyError> {
    let max = state.limits.max_body_bytes;
    let bytes = to_bytes(body, max).await.map_err(|_| {
        state.metrics.add_rejected("body_too_large", 1);
        too_large(max, "body")
    })?;
    let wire = bytes.len() as u64;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let out = match encoding.as_str() {
        "" | "identity" => bytes.to_vec(),
        "gzip" | "x-gzip" => gunzip(&bytes, max).inspect_err(|e| {
            if matches!(e, BodyError::TooLarge(_)) {
                state.metrics.add_rejected("body_too_large", 1);
            }
        })?,
        other => {
            return Err(BodyError::Undecodable(format!(
                "unsupported Content-Encoding {other:?}: send the body plain or gzip"
            )))
        }
    };
    Ok((out, wire))
}

/// Decompresses gzip, refusing to produce more than `max` bytes.
pub fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Undecodable(format!("the gzip body does not decompress: {e}")))?;
    if out.len() > max {
        return Err(too_large(max, "decompressed body"));
    }
    Ok(out)
}

/// Decompresses a snappy block (the raw format Loki and Prometheus use), refusing to
/// produce more than `max` bytes: the size the block announces is checked first.
pub fn unsnappy(data: &[u8], max: usize) -> Result<Vec<u8>, BodyError> {
    let len = snap::raw::decompress_len(data).map_err(|e| {
        BodyError::Undecodable(format!(
            "the body is not snappy-compressed (block format): {e}"
        ))
    })?;
    if len > max {
        return Err(too_large(max, "decompressed body"));
    }
    snap::raw::Decoder::new().decompress_vec(data).map_err(|e| {
        BodyError::Undecodable(format!(
            "the body is not snappy-compressed (block format): {e}"
        ))
    })
}

/// Returns the `Content-Type` without its parameters, lower-case.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Stores records and returns once they are durable, then counts them in the ingest
/// metrics (by their `source`, which each protocol sets to its name) with `wire_bytes`.
pub async fn store(
    state: &AppState,
    records: Vec<Record>,
    wire_bytes: u64,
) -> Result<(), StoreError> {
    let counts = count_by_source_level(&records);
    if !records.is_empty() {
        state
            .store
            .submit(records)?
            .await
            .map_err(|_| StoreError::Closed)??;
    }
    state.metrics.add_ingested(counts, wire_bytes);
    Ok(())
}

/// Text of a store error for a protocol's own error answer.
pub fn store_error_text(e: &StoreError) -> String {
    match e {
        StoreError::Closed => {
            "the server is shutting down; retry against a running server".to_string()
        }
        StoreError::WriteFailed(m) => {
            format!("{m}; nothing of this request was acknowledged, retry it")
        }
        other => other.to_string(),
    }
}

/// Lower-case hex of bytes (trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
