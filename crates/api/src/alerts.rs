//! `GET /api/alerts` (the history, newest first), `GET /api/alerts/rules` (the rules, their
//! cooldowns and silences, and the notifiers' status), read from the running alerting, and
//! `POST /api/alerts/rules/{name}/silence`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

/// Returns the routes of the alerting endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/alerts", get(list))
        .route("/api/alerts/rules", get(rules))
        .route("/api/alerts/rules/{name}/silence", post(silence))
}

/// The body of `POST /api/alerts/rules/{name}/silence`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    /// How long from now (`30m`, `4h`); `0s` lifts the silence.
    #[serde(rename = "for")]
    pub duration: String,
}

/// Silences a rule for a while, or lifts its silence: what it fires meanwhile enters the
/// history (marked `silenced`) without being sent.
async fn silence(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<SilenceBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("{}; send {{\"for\": \"1h\"}}", e.body_text()),
        )
    })?;
    let alerts = state.alerts.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "alerting is off on this server ([alerts] enabled = false)",
        )
    })?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", m);
    let ns = logyard_model::parse_duration(&body.duration).map_err(|e| bad(e.to_string()))?;
    let duration = u64::try_from(ns)
        .map(std::time::Duration::from_nanos)
        .map_err(|_| bad(format!("for = {:?} cannot be negative", body.duration)))?;
    let until = alerts
        .silence(&name, duration)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()))?;
    Ok(Json(json!({
        "rule": name,
        "silenced_until": until.map(logyard_model::format_rfc3339),
    })))
}

/// Parameters of `GET /api/alerts`.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    /// Most alerts to answer (default 100).
    pub limit: Option<usize>,
}

async fn list(State(state): State<AppState>, Query(p): Query<ListParams>) -> Json<Value> {
    let limit = p.limit.unwrap_or(100);
    Json(match &state.alerts {
        Some(a) => a.alerts_json(limit),
        None => json!({ "alerts": [] }),
    })
}

async fn rules(State(state): State<AppState>) -> Json<Value> {
    Json(match &state.alerts {
        Some(a) => a.rules_json(),
        None => json!({ "rules": [], "notifiers": [] }),
    })
}
