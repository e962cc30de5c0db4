//! `POST /api/sql`: one read-only SQL statement over the `logs` table.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use logyard_sql::{SqlAnswer, SqlError};
use serde_json::{json, Value};

use crate::auth::ReadScope;
use crate::error::ApiError;
use crate::read::{add_partial, cost_json, query_settings};
use crate::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/sql", post(sql))
}

impl From<SqlError> for ApiError {
    fn from(e: SqlError) -> ApiError {
        match e {
            SqlError::NotAllowed(m) => ApiError::new(StatusCode::BAD_REQUEST, "sql_not_allowed", m),
            SqlError::Syntax { message, position } => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "query_syntax",
                message,
                position,
            },
            SqlError::Budget(m) => ApiError::new(StatusCode::BAD_REQUEST, "query_budget", m),
            SqlError::Execution(m) => ApiError::new(StatusCode::BAD_REQUEST, "sql_error", m),
            SqlError::Busy(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "sql_busy", m),
            SqlError::Internal(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
            }
        }
    }
}

/// Renders an answer as `{"columns", "rows", "cost"}` plus `partial`/`reason` when it was cut.
pub fn answer_json(answer: &SqlAnswer) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("columns".into(), json!(answer.columns));
    out.insert("rows".into(), json!(answer.rows));
    add_partial(&mut out, answer.partial.as_deref());
    out.insert("cost".into(), cost_json(&answer.cost));
    Value::Object(out)
}

/// `POST /api/sql` with `{"sql": "SELECT … FROM logs …"}`: the answer as a table.
/// A scoped token's statements see only the rows of its scope: the `logs` table itself holds
/// no other.
pub async fn sql(
    State(state): State<AppState>,
    scope: ReadScope,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not JSON ({e}); send {{\"sql\": \"SELECT … FROM logs\"}}"),
        )
    })?;
    let Some(text) = request.get("sql").and_then(Value::as_str) else {
        return Err(ApiError::bad_param(
            "the body has no \"sql\" text; send {\"sql\": \"SELECT … FROM logs\"}",
        ));
    };
    if text.len() > state.limits.max_query_bytes {
        return Err(ApiError::bad_param(format!(
            "sql is {} bytes, over the limit of {} (setting limits.max_query_bytes)",
            text.len(),
            state.limits.max_query_bytes
        )));
    }
    let settings = query_settings(&state);
    let snapshot = std::sync::Arc::new(state.store.snapshot());
    // On the SQL threads, never on the threads that answer requests: a panic there answers
    // 500, and the answer comes by the deadline whatever the statement does.
    let answer = state
        .sql
        .execute(snapshot, scope.filter(), text.to_string(), settings)
        .await?;
    Ok(Json(answer_json(&answer)))
}
