//! Reading request bodies within the limits: their size (`limits.max_body_bytes`), their
//! time (`server.body_timeout`, enforced by the server on every body) and their end (a body
//! cut by the client is told apart from one that is too large).

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use http_body_util::BodyExt;

use crate::error::ApiError;

/// Why a body could not be read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyReadError {
    /// Over `limits.max_body_bytes`.
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The body ended before its announced length, or the connection broke.
    Incomplete {
        /// Bytes received before it broke.
        received: usize,
        /// What the connection said.
        detail: String,
    },
    /// The body did not arrive within `server.body_timeout`.
    TimedOut {
        /// The text of the timeout.
        detail: String,
    },
}

impl BodyReadError {
    /// The code of the error answer and of the rejection metric.
    pub fn code(&self) -> &'static str {
        match self {
            BodyReadError::TooLarge { .. } => "body_too_large",
            BodyReadError::Incomplete { .. } => "body_incomplete",
            BodyReadError::TimedOut { .. } => "body_timeout",
        }
    }

    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyReadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyReadError::Incomplete { .. } => StatusCode::BAD_REQUEST,
            BodyReadError::TimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// What went wrong and what to do.
    pub fn message(&self) -> String {
        match self {
            BodyReadError::TooLarge { max } => format!(
                "the body is over {max} bytes (setting limits.max_body_bytes); send smaller batches"
            ),
            BodyReadError::Incomplete { received, detail } => format!(
                "the body was cut after {received} bytes ({detail}): the client closed the connection or sent less than its Content-Length; nothing was stored, send the whole body again"
            ),
            BodyReadError::TimedOut { detail } => {
                format!("{detail}; nothing was stored, send the body faster or in smaller batches")
            }
        }
    }
}

impl From<BodyReadError> for ApiError {
    fn from(e: BodyReadError) -> ApiError {
        ApiError::new(e.status(), e.code(), e.message())
    }
}

/// The error a body gives once `server.body_timeout` has passed.
#[derive(Debug, Clone)]
pub struct BodyTimeout(pub std::time::Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive whole within {:?} (setting server.body_timeout)",
            self.0
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// Finds a [`BodyTimeout`] in an error's chain.
fn timeout_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimeout> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<BodyTimeout>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// Reads a body of at most `max` bytes. The rest of a body that is too big is still read,
/// up to four times the limit, and dropped: a client that sends the whole body before it
/// reads the answer then gets the `413`, not a reset connection. A body that breaks off is
/// [`BodyReadError::Incomplete`], not too large.
pub async fn read(body: Body, max: usize) -> Result<Bytes, BodyReadError> {
    use axum::body::HttpBody;
    let mut body = body;
    // The announced length, when there is one within the limit: one allocation.
    let announced = body
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok());
    let mut out = Vec::with_capacity(announced.filter(|&n| n <= max).unwrap_or(0));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                if let Some(t) = timeout_in(&e) {
                    return Err(BodyReadError::TimedOut {
                        detail: t.to_string(),
                    });
                }
                if seen > max {
                    return Err(BodyReadError::TooLarge { max });
                }
                return Err(BodyReadError::Incomplete {
                    received: seen,
                    detail: e.to_string(),
                });
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= max {
            out.extend_from_slice(&data);
        } else {
            out = Vec::new();
            if seen > max.saturating_mul(4) {
                return Err(BodyReadError::TooLarge { max });
            }
        }
    }
    if seen > max {
        return Err(BodyReadError::TooLarge { max });
    }
    Ok(out.into())
}
