//! HTTP ingest's decoders: the bodies of the native API ([`native`]: `POST /api/logs` and
//! `logyard ingest`), Elasticsearch `_bulk` ([`bulk`]), Loki push ([`loki`]) and OTLP/HTTP
//! logs ([`otlp`]) turned into records, within the limits of [`limits`].
//!
//! They read bytes and return records, rejections and the protocol's answer; they know
//! nothing of HTTP servers or of the store. The API crate mounts their routes, reads the
//! bodies, and writes the records through a [`crate::Sink`].

pub mod bulk;
pub mod limits;
pub mod loki;
pub mod native;
pub mod otlp;

use std::io::Read;

use limits::OverLimit;

/// Why a shipper's request was refused. [`ShipperError::http_status`] is the one mapping from
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
    /// The HTTP status code of this kind of error.
    pub fn http_status(&self) -> u16 {
        match self {
            ShipperError::TooLarge(_) => 413,
            ShipperError::Invalid(_) => 400,
            ShipperError::TimedOut(_) => 408,
            ShipperError::UnsupportedType(_) => 415,
            ShipperError::Unavailable(_) => 503,
            ShipperError::Misdirected(_) => 421,
            ShipperError::Internal(_) => 500,
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

/// Lower-case hex of bytes (trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
