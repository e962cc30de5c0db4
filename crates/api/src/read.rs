//! The read API: `/api/logs` and its variants, `/api/query`, `/api/agents`, `/api/stats`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use logyard_model::{format_rfc3339, now_ns, parse_time, Column, Level, RecordId};
use logyard_query::{
    parse_query, Answer, Cost, Filter, LabelColumn, LevelOp, Order, Page, SearchResult, Settings,
    Table,
};
use regex::RegexBuilder;
use serde_json::{json, Value};

use crate::auth::ReadScope;
use crate::error::{blocking, ApiError};
use crate::AppState;

type Params = Query<HashMap<String, String>>;

/// The largest page `limit` accepts.
pub const MAX_LIMIT: usize = 1000;

pub(crate) fn usize_param(
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

pub(crate) fn time_param(
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

/// Reads a time range whose ends may be absent: each end from the first of its parameter
/// names given (the first name is the one errors use); a start after the end is refused.
fn open_range(
    params: &HashMap<String, String>,
    start_names: [&str; 2],
    end_names: [&str; 2],
    now: i64,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let start = time_param(params, &start_names, now)?;
    let end = time_param(params, &end_names, now)?;
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(ApiError::bad_param(format!(
                "{} is after {}",
                start_names[0], end_names[0]
            )));
        }
    }
    Ok((start, end))
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
    let (start, end) = open_range(params, ["start_time", "start"], ["end_time", "end"], now)?;
    if start.is_some() || end.is_some() {
        parts.push(Filter::Time { start, end });
    }
    if let Some(agent) = agent
        .or_else(|| params.get(Column::Agent.name()).cloned())
        .filter(|a| !a.is_empty())
    {
        parts.push(Filter::Label {
            column: LabelColumn::Agent,
            value: agent,
            prefix: false,
        });
    }
    if let Some(level) = level_param(params, Column::Level.name())? {
        parts.push(Filter::Level(LevelOp::Eq, level));
    }
    if let Some(level) = level_param(params, "min_level")? {
        parts.push(Filter::Level(LevelOp::Ge, level));
    }
    Ok(Filter::and(parts))
}

pub(crate) fn include_raw(params: &HashMap<String, String>) -> bool {
    params
        .get("include_raw")
        .is_some_and(|v| v == "true" || v == "1")
}

/// Renders a cost as in `API.md`.
/// `segments_unreachable` only when a segment could not be read.
pub fn cost_json(cost: &Cost) -> Value {
    let mut out = json!({
        "rows_scanned": cost.rows_scanned,
        "bytes_scanned": cost.bytes_scanned,
        "blocks_skipped_by_time": cost.blocks_skipped_by_time,
        "blocks_skipped_by_filter": cost.blocks_skipped_by_filter,
        "blocks_unreadable": cost.blocks_unreadable,
        "elapsed_ms": (cost.elapsed_ms * 1000.0).round() / 1000.0,
    });
    if !cost.segments_unreachable.is_empty() {
        out["segments_unreachable"] = json!(cost.segments_unreachable);
    }
    out
}

pub(crate) async fn run_search(
    state: &AppState,
    filter: Filter,
    page: Page,
) -> Result<SearchResult, ApiError> {
    let store = state.store.clone();
    blocking(move || logyard_query::search(&store.snapshot(), &filter, page)).await
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
    let mut out = json!({
        "logs": logs,
        "total": result.total,
        "limit": limit,
        "offset": offset,
        "cost": cost_json(&result.cost),
    });
    if let Value::Object(map) = &mut out {
        add_partial(map, result.cost.unreadable_reason().as_deref());
    }
    Ok(Json(out))
}

/// `GET /api/logs`.
pub async fn get_logs(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let filter = scope.narrow(seed_filter(&params, None, now_ns())?);
    logs_page(state, params, filter).await
}

/// `GET /api/logs/agent/{agent_name}`.
pub async fn get_agent_logs(
    State(state): State<AppState>,
    scope: ReadScope,
    Path(agent): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let filter = scope.narrow(seed_filter(&params, Some(agent), now_ns())?);
    logs_page(state, params, filter).await
}

/// `GET /api/logs/search`: `q` is a regular expression over the message.
pub async fn search_logs(
    State(state): State<AppState>,
    scope: ReadScope,
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
    let filter = scope.narrow(Filter::and(vec![
        seed_filter(&params, None, now_ns())?,
        Filter::Regex(regex),
    ]));
    logs_page(state, params, filter).await
}

/// Returns the query settings of the server, with the regex size limit of `[limits]`.
pub fn query_settings(state: &AppState) -> Settings {
    let mut settings = state.query.clone();
    settings.max_regex_bytes = state.limits.max_regex_bytes;
    settings
}

/// Parses the `q` parameter (default `*`), refusing text over `limits.max_query_bytes`.
pub fn parse_q(
    state: &AppState,
    params: &HashMap<String, String>,
    now: i64,
) -> Result<logyard_query::Query, ApiError> {
    let q = params
        .get("q")
        .map(String::as_str)
        .filter(|q| !q.trim().is_empty())
        .unwrap_or("*");
    if q.len() > state.limits.max_query_bytes {
        return Err(ApiError::bad_param(format!(
            "q is {} bytes, over the limit of {} (setting limits.max_query_bytes)",
            q.len(),
            state.limits.max_query_bytes
        )));
    }
    Ok(parse_query(q, now, &query_settings(state))?)
}

/// Adds the `start` and `end` parameters to a query's filter.
pub fn add_range(
    query: &mut logyard_query::Query,
    params: &HashMap<String, String>,
    now: i64,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let (start, end) = open_range(params, ["start", "start_time"], ["end", "end_time"], now)?;
    if start.is_some() || end.is_some() {
        query.and_filter(Filter::Time { start, end });
    }
    Ok((start, end))
}

/// Renders a table as `{"columns", "rows"}` plus `partial`/`reason` when it was cut.
pub fn table_json(table: &Table, partial: Option<&str>) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    out.insert("columns".into(), json!(table.columns));
    let rows: Vec<Value> = table
        .rows
        .iter()
        .map(|r| Value::Array(r.iter().map(|c| c.to_json()).collect()))
        .collect();
    out.insert("rows".into(), Value::Array(rows));
    add_partial(&mut out, partial);
    out
}

/// Adds `"partial": true, "reason": …` to an answer that was cut short.
pub fn add_partial(out: &mut serde_json::Map<String, Value>, partial: Option<&str>) {
    if let Some(reason) = partial {
        out.insert("partial".into(), true.into());
        out.insert("reason".into(), reason.into());
    }
}

/// `GET /api/query`: the query language. Records come paged newest first (oldest first with
/// `order=asc`) with a cursor;
/// a table pipe makes the answer `{"columns", "rows"}`.
pub async fn query(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let now = now_ns();
    let mut query = parse_q(&state, &params, now)?;
    add_range(&mut query, &params, now)?;
    query.and_filter(scope.filter());
    query.order = match params.get("order").map(String::as_str) {
        None | Some("" | "desc") => Order::NewestFirst,
        Some("asc") => Order::OldestFirst,
        Some(other) => {
            return Err(ApiError::bad_param(format!(
                "order: `{other}` is neither `desc` (newest first) nor `asc` (oldest first)"
            )))
        }
    };
    if let Some(cursor) = params.get("cursor").filter(|c| !c.is_empty()) {
        let id: RecordId = cursor.parse().map_err(|e: String| {
            ApiError::bad_param(format!(
                "cursor: {e}; pass the next_cursor of the previous answer"
            ))
        })?;
        query.and_filter(query.order.after(id));
    }
    let limit = usize_param(&params, "limit", 100, Some(MAX_LIMIT))?;
    let raw = include_raw(&params);
    let settings = query_settings(&state);
    let store = state.store.clone();
    let plain = query.pipes.is_empty();
    // A page of records counts its matches only as far as it is cheap: `total_exact` says
    // when the count stopped (the UI's facets give the exact count).
    let out = blocking(move || {
        logyard_query::run_counting(&store.snapshot(), &query, &settings, limit, false)
    })
    .await?;
    let mut body = match &out.answer {
        Answer::Records {
            records,
            total,
            total_exact,
        } => {
            let more = *total > records.len() as u64 || !*total_exact;
            let next_cursor = if plain && more {
                records.last().map(|r| r.id().to_string())
            } else {
                None
            };
            let logs: Vec<Value> = records.iter().map(|r| r.to_json(raw)).collect();
            let mut m = serde_json::Map::new();
            m.insert("logs".into(), logs.into());
            m.insert("total".into(), (*total).into());
            if !*total_exact {
                m.insert("total_exact".into(), false.into());
            }
            m.insert("next_cursor".into(), json!(next_cursor));
            add_partial(&mut m, out.partial.as_deref());
            m
        }
        Answer::Table(t) => table_json(t, out.partial.as_deref()),
    };
    body.insert("cost".into(), cost_json(&out.cost));
    Ok(Json(Value::Object(body)))
}

/// `GET /api/agents`.
pub async fn get_agents(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let filter = scope.narrow(seed_filter(&params, None, now_ns())?);
    let store = state.store.clone();
    let agents = blocking(move || logyard_query::agents(&store.snapshot(), &filter)).await?;
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
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let filter = scope.narrow(seed_filter(&params, None, now_ns())?);
    let store = state.store.clone();
    let summary = blocking(move || logyard_query::summary(&store.snapshot(), &filter)).await?;
    let stats = state.store.stats();
    // The store's size and rate cover every agent: a scoped token gets null.
    let whole = !scope.is_scoped();
    Ok(Json(json!({
        "total": summary.total,
        "by_level": summary.by_level,
        "by_agent": summary.by_agent,
        "bytes_stored": whole.then_some(stats.segment_bytes + stats.wal_bytes),
        "oldest": summary.oldest.map(format_rfc3339),
        "newest": summary.newest.map(format_rfc3339),
        "ingest_rate_per_s": whole.then(|| state.rate.per_second()),
        "cost": cost_json(&summary.cost),
    })))
}
