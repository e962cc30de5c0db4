//! Native JSON ingest's route: `POST /api/logs` with one entry, an array, or NDJSON.
//!
//! The body is decoded by `logyard_sources::http::native`; a bad entry is rejected alone
//! with its index and reason, the rest are redacted string by string and written through
//! the sink, and the answer is sent once they are durable.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use logyard_sources::http::native::{decode_body_within, BodyError};
use serde_json::json;

use crate::body::BodyReadError;
use crate::error::{spawn_blocking, ApiError};
use crate::shippers::count_by_source_level;
use crate::AppState;

/// `POST /api/logs`.
pub async fn post_logs(
    State(state): State<AppState>,
    ingester: crate::auth::Ingester,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bytes = crate::body::read(body, state.limits.max_body_bytes)
        .await
        .map_err(|e: BodyReadError| {
            state.metrics.add_rejected(e.code(), 1);
            ApiError::from(e)
        })?;
    let ndjson = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-seq"));
    let opts = state.ingest.clone();
    let len = bytes.len() as u64;
    let redactor = state.redactor.clone();
    let mut budget = state.limits.budget();
    let mut decoded = spawn_blocking(move || {
        let mut decoded =
            decode_body_within(&bytes, ndjson, &opts, &mut budget, logyard_model::now_ns());
        // Secrets go from the decoded strings, so that no JSON escape (`pass\u0077ord`,
        // `\/`, `\u00e9` inside a secret) hides them from the rules.
        if let Ok(d) = &mut decoded {
            for r in &mut d.records {
                redactor.redact_record(r);
            }
            // A reason may quote a value of the entry (a bad timestamp): never a secret.
            for r in &mut d.rejected {
                if let std::borrow::Cow::Owned(reason) = redactor.redact(&r.reason) {
                    r.reason = reason;
                }
            }
        }
        decoded
    })
    .await?
    .map_err(|e| match e {
        BodyError::Invalid(m) => {
            state.metrics.add_rejected("invalid_json", 1);
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", m)
        }
        BodyError::OverLimit(e) => {
            state.metrics.add_rejected(e.code, 1);
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.code, e.message)
        }
    })?;
    for r in &decoded.rejected {
        state.metrics.add_rejected(r.kind, 1);
    }
    let expired = state.store.refuse_expired(&mut decoded.records);
    if !expired.is_empty() {
        let reason = state.store.expired_reason();
        decoded.refuse(&expired, "expired", &reason);
    }
    ingester.admit(&mut decoded.records, len);
    let accepted = decoded.records.len();
    let counts = count_by_source_level(&decoded.records);
    let errors = crate::metrics::errors_by_agent(&decoded.records);
    if accepted > 0 {
        state.sink.submit(decoded.records, None).await?;
    }
    state.metrics.add_ingested(counts, len);
    state.metrics.add_log_errors(errors);
    let errors: Vec<serde_json::Value> = decoded
        .rejected
        .iter()
        .map(|r| json!({"index": r.index, "reason": r.reason}))
        .collect();
    Ok(Json(json!({
        "accepted": accepted,
        "rejected": decoded.rejected.len(),
        "errors": errors,
    })))
}
