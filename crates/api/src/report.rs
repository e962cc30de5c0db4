//! `GET /api/report`: the report of a range (`docs/reports.md`) as JSON, Markdown or HTML.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use logyard_model::now_ns;
use logyard_report::{build, render, Format, ReportError};

use crate::auth::ReadScope;
use crate::error::{spawn_blocking, ApiError};
use crate::read::{query_settings, time_param};
use crate::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/report", get(report))
}

/// `GET /api/report?since=&until=&format=`: `since` defaults to `24h` (before `until`),
/// `until` to now, `format` to `json` (also `md`, `html`).
pub async fn report(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let now = now_ns();
    let format = match params.get("format").filter(|f| !f.is_empty()) {
        None => Format::Json,
        Some(f) => Format::parse(f).ok_or_else(|| {
            ApiError::bad_param(format!("format {f:?} is not known: use json, md or html"))
        })?,
    };
    let end = time_param(&params, &["until", "end"], now)?.unwrap_or(now);
    let start = time_param(&params, &["since", "start"], end)?.unwrap_or(end - 86_400_000_000_000);
    if start >= end {
        return Err(ApiError::bad_param("since must be before until"));
    }
    let store = state.store.clone();
    let settings = state.report.clone();
    let qs = query_settings(&state);
    let within = scope.filter();
    let report =
        spawn_blocking(move || build(&store.snapshot(), start, end, &within, &settings, &qs))
            .await?;
    let report = match report {
        Ok(r) => r,
        Err(ReportError::Query { source, .. }) => return Err(source.into()),
        Err(e) => return Err(ApiError::bad_param(e.to_string())),
    };
    // The HTML report carries its style inline and loads nothing: its own policy.
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
            ),
        ],
        render(&report, format),
    )
        .into_response())
}
