//! `GET /api/alerts` (the history, newest first) and `GET /api/alerts/rules` (the rules, their
//! cooldowns and the notifiers' status), read from the running alerting.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::AppState;

/// Returns the routes of the alerting endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/alerts", get(list))
        .route("/api/alerts/rules", get(rules))
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
