//! The routes of the shippers' protocols, served beside the native API so that existing
//! agents send here unchanged: Elasticsearch `_bulk` ([`bulk`]), Loki push ([`loki`]) and
//! OTLP/HTTP logs ([`otlp`]). Their bodies are decoded by `logyard_sources::http`.
//!
//! What the routes share lives here: reading a body within `limits.max_body_bytes` (the
//! decompressed size included, so a small gzip or snappy body cannot expand past the limit),
//! writing records through the sink and answering only once they are durable, and the
//! ingest metrics.

pub mod bulk;
pub mod loki;
pub mod otlp;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use logyard_model::{Level, Record};
use logyard_sources::http::gunzip;
pub use logyard_sources::http::ShipperError;
use logyard_sources::{SinkError, SinkErrorKind};

use crate::auth::Ingester;
use crate::body::BodyReadError;
use crate::AppState;

/// The HTTP status of a shipper's error.
pub fn status(e: &ShipperError) -> StatusCode {
    StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The error of a request whose records the sink did not make durable.
pub fn unstored(e: SinkError) -> ShipperError {
    match e.kind {
        SinkErrorKind::Stopped => ShipperError::Unavailable(
            "the server is shutting down; retry against a running server".into(),
        ),
        SinkErrorKind::WriteFailed => ShipperError::Unavailable(format!(
            "{}; nothing of this request was acknowledged, retry it",
            e.message
        )),
        SinkErrorKind::ReadOnly => ShipperError::Misdirected(e.message),
        SinkErrorKind::Other => ShipperError::Internal(e.message),
    }
}

/// Counts records by `(source kind, level)` for the ingest metric.
pub fn count_by_source_level(records: &[Record]) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for r in records {
        let kind = r.source.split(':').next().unwrap_or("").to_string();
        let level = r.level.map_or("none", Level::as_str).to_string();
        *counts.entry((kind, level)).or_default() += 1;
    }
    counts
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
/// from them by the `[redact]` rules (counted in `logyard_redactions_total`), writes them
/// through the sink and returns once they are durable, then counts them in the ingest
/// metrics (by their `source`, which each protocol sets to its name) with `wire_bytes`.
pub async fn write(
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
        state.sink.submit(records, None).await.map_err(unstored)?;
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
