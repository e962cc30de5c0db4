//! The read API: `/api/logs` and its variants, `/api/query`, `/api/agents`, `/api/stats`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use logyard_model::{format_rfc3339, now_ns, parse_time, Level, RecordId};
use logyard_query::{parse_filter, Cost, Filter, LabelColumn, LevelOp, Page, SearchResult};
use regex::RegexBuilder;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

type Params = Query<HashMap<String, String>>;

/// The largest page `limit` accepts.
pub const MAX_LIMIT: usize = 1000;

fn usize_param(
    params: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: Option<usize>,
) -> Result<usize, ApiError> {
    let Some(text) = params.get(name) else {
        return Ok(default);
    };
    let n: usize = text.trim().parse().map_err(|_| {
        ApiError::bad_param(format!(
            "{name} must be a whole number of 0 or more, got {text:?}"
        ))
    })?;
    if let Some(max) = max {
        if n > max {
            return Err(ApiError::bad_param(format!(
                "{name} {n} is above the maximum {max}; page with offset or the cursor instead"
            )));
        }
    }
    Ok(n)
}

fn time_param(
    params: &HashMap<String, String>,
    names: &[&str],
    now: i64,
) -> Result<Option<i64>, ApiError> {
    for name in names {
        if let Some(text) = params.get(*name).filter(|t| !t.is_empty()) {
            return parse_time(text, now)
                .map(Some)
                .map_err(|e| ApiError::bad_param(format!("{name}: {e}")));
        }
    }
    Ok(None)
}

fn level_param(params: &HashMap<String, String>, name: &str) -> Result<Option<Level>, ApiError> {
    params
        .get(name)
        .filter(|t| !t.is_empty())
        .map(|t| {
            Level::normalize(t).ok_or_else(|| {
                ApiError::bad_param(format!(
                    "{name} {t:?} is not a level: use TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL"
                ))
            })
        })
        .transpose()
}

/// Builds the filter of the seed parameters: time range, agent, level, min_level.
fn seed_filter(
    params: &HashMap<String, String>,
    agent: Option<String>,
    now: i64,
) -> Result<Filter, ApiError> {
    let mut parts = Vec::new();
    let start = time_param(params, &["start_time", "start"], now)?;
    let end = time_param(params, &["end_time", "end"], now)?;
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(ApiError::bad_param("start_time is after end_time"));
        }
    }
    if start.is_some() || end.is_some() {
        parts.push(Filter::Time { start, end });
    }
    if let Some(agent) = agent
        .or_else(|| params.get("agent").cloned())
        .filter(|a| !a.is_empty())
    {
        parts.push(Filter::Label {
            column: LabelColumn::Agent,
            value: agent,
            prefix: false,
        });
    }
    if let Some(level) = level_param(params, "level")? {
        parts.push(Filter::Level(LevelOp::Eq, level));
    }
    if let Some(level) = level_param(params, "min_level")? {
        parts.push(Filter::Level(LevelOp::Ge, level));
    }
    Ok(Filter::and(parts))
}

fn include_raw(params: &HashMap<String, String>) -> bool {
    params
        .get("include_raw")
        .is_some_and(|v| v == "true" || v == "1")
}

/// Renders a cost as in `API.md`.
pub fn cost_json(cost: &Cost) -> Value {
    json!({
        "rows_scanned": cost.rows_scanned,
        "bytes_scanned": cost.bytes_scanned,
        "blocks_skipped_by_time": cost.blocks_skipped_by_time,
        "blocks_skipped_by_filter": cost.blocks_skipped_by_filter,
        "elapsed_ms": (cost.elapsed_ms * 1000.0).round() / 1000.0,
    })
}

async fn run_search(
    state: &AppState,
    filter: Filter,
    page: Page,
) -> Result<SearchResult, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || logyard_query::search(&store.snapshot(), &filter, page))
        .await
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                e.to_string(),
            )
        })?
        .map_err(ApiError::from)
}

async fn logs_page(
    state: AppState,
    params: HashMap<String, String>,
    filter: Filter,
) -> Result<Json<Value>, ApiError> {
    let limit = usize_param(&params, "limit", 100, Some(MAX_LIMIT))?;
    let offset = usize_param(&params, "offset", 0, None)?;
    let raw = include_raw(&params);
    let result = run_search(&state, filter, Page { offset, limit }).await?;
    let logs: Vec<Value> = result.records.iter().map(|r| r.to_json(raw)).collect();
    Ok(Json(json!({
        "logs": logs,
        "total": result.total,
        "limit": limit,
        "offset": offset,
        "cost": cost_json(&result.cost),
    })))
}

/// `GET /api/logs`.
pub async fn get_logs(
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let filter = seed_filter(&params, None, now_ns())?;
    logs_page(state, params, filter).await
}

/// `GET /api/logs/agent/{agent_name}`.
pub async fn get_agent_logs(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let filter = seed_filter(&params, Some(agent), now_ns())?;
    logs_page(state, params, filter).await
}

/// `GET /api/logs/search`: `q` is a regular expression over the message.
pub async fn search_logs(
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let q = params.get("q").filter(|q| !q.is_empty()).ok_or_else(|| {
        ApiError::bad_param("q is required: a regular expression to look for in messages")
    })?;
    if q.len() > state.limits.max_query_bytes {
        return Err(ApiError::bad_param(format!(
            "q is {} bytes, over the limit of {} (setting limits.max_query_bytes)",
            q.len(),
            state.limits.max_query_bytes
        )));
    }
    let regex = RegexBuilder::new(q)
        .size_limit(state.limits.max_regex_bytes)
        .build()
        .map_err(|e| ApiError::bad_param(format!("q is not a valid regular expression: {e}")))?;
    let filter = Filter::and(vec![
        seed_filter(&params, None, now_ns())?,
        Filter::Regex(regex),
    ]);
    logs_page(state, params, filter).await
}

/// `GET /api/query`: the query language, paged newest first with a cursor.
pub async fn query(
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let now = now_ns();
    let q = params.get("q").map(String::as_str).unwrap_or("*");
    if q.len() > state.limits.max_query_bytes {
        return Err(ApiError::bad_param(format!(
            "q is {} bytes, over the limit of {} (setting limits.max_query_bytes)",
            q.len(),
            state.limits.max_query_bytes
        )));
    }
    let mut parts = vec![parse_filter(q, now)?];
    let start = time_param(&params, &["start"], now)?;
    let end = time_param(&params, &["end"], now)?;
    if start.is_some() || end.is_some() {
        parts.push(Filter::Time { start, end });
    }
    if let Some(cursor) = params.get("cursor").filter(|c| !c.is_empty()) {
        let id: RecordId = cursor.parse().map_err(|e: String| {
            ApiError::bad_param(format!(
                "cursor: {e}; pass the next_cursor of the previous answer"
            ))
        })?;
        parts.push(Filter::Before(id));
    }
    let limit = usize_param(&params, "limit", 100, Some(MAX_LIMIT))?;
    let raw = include_raw(&params);
    let result = run_search(&state, Filter::and(parts), Page { offset: 0, limit }).await?;
    let next_cursor = if result.total > result.records.len() as u64 {
        result.records.last().map(|r| r.id().to_string())
    } else {
        None
    };
    let logs: Vec<Value> = result.records.iter().map(|r| r.to_json(raw)).collect();
    Ok(Json(json!({
        "logs": logs,
        "total": result.total,
        "next_cursor": next_cursor,
        "cost": cost_json(&result.cost),
    })))
}

/// `GET /api/agents`.
pub async fn get_agents(
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let filter = seed_filter(&params, None, now_ns())?;
    let store = state.store.clone();
    let agents =
        tokio::task::spawn_blocking(move || logyard_query::agents(&store.snapshot(), &filter))
            .await
            .map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    e.to_string(),
                )
            })??;
    let agents: Vec<Value> = agents
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "count": a.count,
                "last_seen": format_rfc3339(a.last_seen),
                "levels": a.levels,
            })
        })
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `GET /api/stats`.
pub async fn get_stats(
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let filter = seed_filter(&params, None, now_ns())?;
    let store = state.store.clone();
    let summary =
        tokio::task::spawn_blocking(move || logyard_query::summary(&store.snapshot(), &filter))
            .await
            .map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    e.to_string(),
                )
            })??;
    let stats = state.store.stats();
    Ok(Json(json!({
        "total": summary.total,
        "by_level": summary.by_level,
        "by_agent": summary.by_agent,
        "bytes_stored": stats.segment_bytes + stats.wal_bytes,
        "oldest": summary.oldest.map(format_rfc3339),
        "newest": summary.newest.map(format_rfc3339),
        "ingest_rate_per_s": state.rate.per_second(),
        "cost": cost_json(&summary.cost),
    })))
}
