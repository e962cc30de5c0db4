//! `/api/analyses/*`: the analyses of the daily report, each alone: slow requests and
//! latency (`slow`), logins and brute force (`auth`), database errors and connection
//! failures (`db`). Each answers the queries it ran (`queries`) and their cost.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use logyard_model::now_ns;
use logyard_report::analyses::{self, Analysis, AuthParams, SlowParams};
use logyard_report::ReportError;
use serde::Serialize;
use serde_json::Value;

use crate::analysis::MAX_HOURS;
use crate::auth::ReadScope;
use crate::error::{blocking, ApiError};
use crate::read::{add_partial, cost_json, query_settings, time_param, usize_param};
use crate::AppState;

type Params = Query<HashMap<String, String>>;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/analyses/slow", get(slow))
        .route("/api/analyses/auth", get(auth))
        .route("/api/analyses/db", get(db))
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> ApiError {
        match e {
            ReportError::Query { source, .. } => source.into(),
            ReportError::EmptyRange => ApiError::bad_param("start must be before end"),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

/// Renders an analysis: `range`, its answer's fields, `queries`, `cost`, and `partial` /
/// `reason` when a query was cut by a budget.
pub fn analysis_json<T: Serialize>(a: &Analysis<T>) -> Value {
    let mut out = serde_json::Map::new();
    out.insert(
        "range".into(),
        serde_json::to_value(&a.range).unwrap_or(Value::Null),
    );
    if let Ok(Value::Object(fields)) = serde_json::to_value(&a.result) {
        out.extend(fields);
    }
    out.insert("queries".into(), a.queries.clone().into());
    let reason = a.partial.join("; ");
    add_partial(&mut out, (!a.partial.is_empty()).then_some(reason.as_str()));
    out.insert("cost".into(), cost_json(&a.cost));
    Value::Object(out)
}

/// The range of an analysis: `start`/`end` when given, else the last `hours` (default 24).
pub fn range_params(params: &HashMap<String, String>, now: i64) -> Result<(i64, i64), ApiError> {
    let end = time_param(params, &["end", "end_time"], now)?.unwrap_or(now);
    let start = match time_param(params, &["start", "start_time"], end)? {
        Some(s) => s,
        None => {
            let hours = usize_param(params, "hours", 24, Some(MAX_HOURS))?;
            if hours == 0 {
                return Err(ApiError::bad_param("hours must be 1 or more"));
            }
            end - hours as i64 * 3_600_000_000_000
        }
    };
    if start >= end {
        return Err(ApiError::bad_param("start must be before end"));
    }
    Ok((start, end))
}

fn f64_param(params: &HashMap<String, String>, name: &str, default: f64) -> Result<f64, ApiError> {
    match params.get(name).filter(|t| !t.is_empty()) {
        None => Ok(default),
        Some(t) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| {
                ApiError::bad_param(format!("{name} must be a number of 0 or more, got {t:?}"))
            }),
    }
}

/// `GET /api/analyses/slow?threshold_ms=1000&hours=24&limit=20&top_paths=15`: requests
/// (entries with `response_time_ms`) above the threshold, slowest first, and the latency
/// percentiles overall, by agent and by path.
pub async fn slow(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let (start, end) = range_params(&params, now_ns())?;
    let settings = query_settings(&state);
    let slow = SlowParams {
        threshold_ms: f64_param(&params, "threshold_ms", state.report.slow_ms)?,
        limit: usize_param(
            &params,
            "limit",
            state.report.slow_limit,
            Some(settings.max_limit),
        )?,
        top_paths: usize_param(
            &params,
            "top_paths",
            state.report.top_paths,
            Some(settings.max_limit),
        )?,
    };
    let store = state.store.clone();
    let within = scope.filter();
    let a =
        blocking(move || analyses::slow(&store.snapshot(), start, end, &within, &slow, &settings))
            .await?;
    Ok(Json(analysis_json(&a)))
}

/// `GET /api/analyses/auth?hours=24&min_failures=6&window=10m`: failed and successful logins,
/// the success rate, and the IPs with at least `min_failures` failed logins in one window
/// (the whole range without `window`).
pub async fn auth(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let (start, end) = range_params(&params, now_ns())?;
    let settings = query_settings(&state);
    let default_min = state.report.suspicious_failures.saturating_add(1) as usize;
    let min_failures = usize_param(&params, "min_failures", default_min, None)? as u64;
    if min_failures == 0 {
        return Err(ApiError::bad_param("min_failures must be 1 or more"));
    }
    let window = params
        .get("window")
        .filter(|w| !w.is_empty())
        .map(|w| analyses::parse_window(w, start, end, settings.max_buckets))
        .transpose()
        .map_err(ApiError::bad_param)?;
    let p = AuthParams {
        min_failures,
        window,
    };
    let store = state.store.clone();
    let within = scope.filter();
    let a = blocking(move || analyses::auth(&store.snapshot(), start, end, &within, &p, &settings))
        .await?;
    Ok(Json(analysis_json(&a)))
}

/// `GET /api/analyses/db?hours=24&top_patterns=10`: database errors by agent and template,
/// and connection failures by agent.
pub async fn db(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let (start, end) = range_params(&params, now_ns())?;
    let settings = query_settings(&state);
    let top = usize_param(
        &params,
        "top_patterns",
        state.report.top_patterns,
        Some(settings.max_limit),
    )?;
    let filter = state.report.database_filter.clone();
    let store = state.store.clone();
    let within = scope.filter();
    let a = blocking(move || {
        analyses::database(
            &store.snapshot(),
            start,
            end,
            &within,
            &filter,
            top,
            &settings,
        )
    })
    .await?;
    Ok(Json(analysis_json(&a)))
}
