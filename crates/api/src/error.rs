//! The API's error type and its one mapping to HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use logyard_query::QueryError;
use logyard_sources::{SinkError, SinkErrorKind};
use logyard_store::StoreError;

/// An error answer: `{"error": {"code", "message", ["position"]}}` with a status.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable snake_case code.
    pub code: &'static str,
    /// What went wrong and how to fix it.
    pub message: String,
    /// Byte offset into the query, for query errors.
    pub position: Option<usize>,
}

impl ApiError {
    /// Returns a 400 `invalid_parameter` error.
    pub fn bad_param(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }

    /// Returns a 500 `internal` error: something failed that the caller cannot fix.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Returns an error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            position: None,
        }
    }
}

/// Runs a closure on the blocking pool; a panic in it becomes a 500 `internal` error.
pub async fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Runs a fallible closure on the blocking pool: its error converts into an [`ApiError`],
/// a panic becomes a 500 `internal` error.
pub async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    spawn_blocking(f).await?.map_err(Into::into)
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        match e {
            QueryError::Syntax { message, position } => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "query_syntax",
                message,
                position: Some(position),
            },
            QueryError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is shutting down; retry against a running server",
            ),
            StoreError::WriteFailed(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "write_failed",
                format!("{m}; nothing of this request was acknowledged, retry it"),
            ),
            StoreError::ReadOnly => {
                ApiError::new(StatusCode::MISDIRECTED_REQUEST, "read_only", e.to_string())
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

impl From<SinkError> for ApiError {
    fn from(e: SinkError) -> ApiError {
        match e.kind {
            SinkErrorKind::Stopped => StoreError::Closed.into(),
            SinkErrorKind::WriteFailed => StoreError::WriteFailed(e.message).into(),
            SinkErrorKind::ReadOnly => {
                ApiError::new(StatusCode::MISDIRECTED_REQUEST, "read_only", e.message)
            }
            SinkErrorKind::Other => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(p) = self.position {
            error["position"] = p.into();
        }
        (self.status, Json(serde_json::json!({ "error": error }))).into_response()
    }
}
