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

use crate::auth::Ingester;
use std::io::Read;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use logyard_model::Record;
use logyard_store::StoreError;

use crate::body::BodyReadError;
use crate::decode::OverLimit;
use crate::ingest::count_by_source_level;
use crate::AppState;

/// Why a shipper's request was refused. [`ShipperError::status`] is the one mapping from
/// these kinds to HTTP statuses; each protocol renders the message in its own error format.
#[derive(Debug, thiserror::Error)]
pub enum ShipperError {
    /// Over a limit of `[limits]`, before or after decompression.
    #[error("{0}")]
    TooLarge(String),
    /// A body that does not decompress or decode, or was cut.
    #[error("{0}")]
    Invalid(String),
    /// A body that did not arrive within `server.body_timeout`.
    #[error("{0}")]
    TimedOut(String),
    /// A content type the protocol does not speak.
    #[error("{0}")]
    UnsupportedType(String),
    /// Nothing could be stored (the server is stopping, or the WAL cannot be written).
    #[error("{0}")]
    Unavailable(String),
    /// Sent to a node that stores nothing (a query node): send it to an ingest node.
    #[error("{0}")]
    Misdirected(String),
    /// A bug.
    #[error("{0}")]
    Internal(String),
}

impl ShipperError {
    /// The HTTP status of this kind of error.
    pub fn status(&self) -> StatusCode {
        match self {
            ShipperError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ShipperError::Invalid(_) => StatusCode::BAD_REQUEST,
            ShipperError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            ShipperError::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ShipperError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ShipperError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            ShipperError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text of the error.
    pub fn message(&self) -> &str {
        match self {
            ShipperError::TooLarge(m)
            | ShipperError::Invalid(m)
            | ShipperError::TimedOut(m)
            | ShipperError::UnsupportedType(m)
            | ShipperError::Unavailable(m)
            | ShipperError::Misdirected(m)
            | ShipperError::Internal(m) => m,
        }
    }
}

impl From<StoreError> for ShipperError {
    fn from(e: StoreError) -> ShipperError {
        match e {
            StoreError::Closed => ShipperError::Unavailable(
                "the server is shutting down; retry against a running server".into(),
            ),
            StoreError::WriteFailed(m) => ShipperError::Unavailable(format!(
                "{m}; nothing of this request was acknowledged, retry it"
            )),
            StoreError::ReadOnly => ShipperError::Misdirected(e.to_string()),
            other => ShipperError::Internal(other.to_string()),
        }
    }
}

impl From<OverLimit> for ShipperError {
    fn from(e: OverLimit) -> ShipperError {
        ShipperError::TooLarge(e.message)
    }
}

impl From<tokio::task::JoinError> for ShipperError {
    fn from(e: tokio::task::JoinError) -> ShipperError {
        ShipperError::Internal(format!("decoding the request failed: {e}"))
    }
}

fn too_large(max: usize, what: &str) -> ShipperError {
    ShipperError::TooLarge(format!(
        "the {what} is over {max} bytes (setting limits.max_body_bytes); send smaller batches"
    ))
}

/// Reads a body of at most `max` bytes and undoes its `Content-Encoding` (`gzip`, or
/// `identity`), again within `max` bytes. Returns the bytes and the size on the wire.
pub async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Vec<u8>, u64), ShipperError> {
    let max = state.limits.max_body_bytes;
    let bytes = crate::body::read(body, max).await.map_err(|e| {
        state.metrics.add_rejected(e.code(), 1);
        match e {
            BodyReadError::TooLarge { .. } => ShipperError::TooLarge(e.message()),
            BodyReadError::TimedOut { .. } => ShipperError::TimedOut(e.message()),
            BodyReadError::Incomplete { .. } => ShipperError::Invalid(e.message()),
        }
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
            if matches!(e, ShipperError::TooLarge(_)) {
                state.metrics.add_rejected("body_too_large", 1);
            }
        })?,
        other => {
            return Err(ShipperError::Invalid(format!(
                "unsupported Content-Encoding {other:?}: send the body plain or gzip"
            )))
        }
    };
    Ok((out, wire))
}

/// Decompresses gzip, refusing to produce more than `max` bytes.
pub fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, ShipperError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ShipperError::Invalid(format!("the gzip body does not decompress: {e}")))?;
    if out.len() > max {
        return Err(too_large(max, "decompressed body"));
    }
    Ok(out)
}

/// Decompresses a snappy block (the raw format Loki and Prometheus use), refusing to
/// produce more than `max` bytes: the size the block announces is checked first.
pub fn unsnappy(data: &[u8], max: usize) -> Result<Vec<u8>, ShipperError> {
    let len = snap::raw::decompress_len(data).map_err(|e| {
        ShipperError::Invalid(format!(
            "the body is not snappy-compressed (block format): {e}"
        ))
    })?;
    if len > max {
        return Err(too_large(max, "decompressed body"));
    }
    snap::raw::Decoder::new().decompress_vec(data).map_err(|e| {
        ShipperError::Invalid(format!(
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

/// Refuses the records the retention would not keep (their indices are returned, for the
/// protocol's answer), writes the labels the token fixes over the others, redacts secrets
/// from them by the `[redact]` rules (counted in `logyard_redactions_total`), stores them
/// and returns once they are durable, then counts them in the ingest metrics (by their
/// `source`, which each protocol sets to its name) with `wire_bytes`.
pub async fn store(
    state: &AppState,
    ingester: &Ingester,
    mut records: Vec<Record>,
    wire_bytes: u64,
) -> Result<Vec<usize>, ShipperError> {
    let expired = state.store.refuse_expired(&mut records);
    ingester.admit(&mut records, wire_bytes);
    for record in &mut records {
        state.redactor.redact_record(record);
    }
    let counts = count_by_source_level(&records);
    if !records.is_empty() {
        state
            .store
            .submit(records)?
            .await
            .map_err(|_| StoreError::Closed)??;
    }
    state.metrics.add_ingested(counts, wire_bytes);
    Ok(expired)
}

/// Why the entries of a request were left out, in one line, or `None` when none was: the
/// first decoding rejection (with how many more), then how many the retention refused.
pub fn rejection_summary(rejected: &[String], expired: usize, state: &AppState) -> Option<String> {
    let mut why = Vec::new();
    if let Some(first) = rejected.first() {
        why.push(match rejected.len() {
            1 => first.clone(),
            n => format!("{first} (and {} more)", n - 1),
        });
    }
    if expired > 0 {
        why.push(format!("{expired} {}", state.store.expired_reason()));
    }
    (!why.is_empty()).then(|| why.join("; "))
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
