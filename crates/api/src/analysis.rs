//! Analysis endpoints: `/api/histogram`, `/api/errors/summary`, `/api/logs/{id}/context`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use logyard_model::{format_rfc3339, now_ns, parse_duration, Column, Record, RecordId};
use logyard_query::pipes::Sort;
use logyard_query::{
    check_buckets, nice_step, Answer, FieldRef, Filter, LabelColumn, Page, Pipe, QueryError,
    Settings,
};
use serde_json::{json, Value};

use crate::auth::ReadScope;
use crate::error::{blocking, ApiError};
use crate::read::{add_partial, cost_json, parse_q, query_settings, usize_param};
use crate::AppState;

type Params = Query<HashMap<String, String>>;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/histogram", get(histogram))
        .route("/api/errors/summary", get(errors_summary))
        .route("/api/logs/{id}/context", get(context))
}

/// The key of records without a level in `/api/histogram` counts.
pub const NO_LEVEL: &str = "UNKNOWN";

/// Refuses pipes where only a filter makes sense.
pub(crate) fn filter_only(query: &logyard_query::Query, what: &str) -> Result<(), ApiError> {
    if query.pipes.is_empty() {
        return Ok(());
    }
    let position = query.pipe_position(0).unwrap_or(0);
    Err(QueryError::Syntax {
        message: format!("{what} takes a filter only: remove the pipes ('| …')"),
        position,
    }
    .into())
}

/// `GET /api/histogram?q=&start=&end=&step=`: counts by level per bucket of `[start, end)`,
/// empty buckets included.
pub async fn histogram(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let now = now_ns();
    let mut query = parse_q(&state, &params, now)?;
    filter_only(&query, "/api/histogram")?;
    let end = crate::read::time_param(&params, &["end", "end_time"], now)?.unwrap_or(now);
    let start = match crate::read::time_param(&params, &["start", "start_time"], now)? {
        Some(s) => s,
        None => state
            .store
            .stats()
            .oldest_ts
            .filter(|&o| o < end)
            .unwrap_or(end - 3_600_000_000_000),
    };
    if start >= end {
        return Err(ApiError::bad_param("start must be before end"));
    }
    let settings = query_settings(&state);
    let step = match params.get("step").filter(|s| !s.is_empty()) {
        Some(text) => {
            let step =
                parse_duration(text).map_err(|e| ApiError::bad_param(format!("step: {e}")))?;
            if step < 1_000_000 {
                return Err(ApiError::bad_param(format!(
                    "step {text} is below the smallest step, 1ms"
                )));
            }
            step
        }
        None => nice_step((end - start) / 100),
    };
    let count =
        check_buckets(step, start, end, settings.max_buckets).map_err(ApiError::bad_param)?;
    query.and_filter(Filter::Time {
        start: Some(start),
        end: Some(end),
    });
    query.and_filter(scope.filter());
    let store = state.store.clone();
    let filter = query.filter.clone();
    let s2 = settings.clone();
    let (counts, cost, partial) = blocking(move || {
        logyard_query::histogram(
            &store.snapshot(),
            &filter,
            step,
            Some(FieldRef::new(Column::Level.name())),
            &s2,
        )
    })
    .await?;
    let first = start.div_euclid(step) * step;
    let buckets: Vec<Value> = (0..count as i64)
        .map(|i| {
            let t = first + i * step;
            let levels: BTreeMap<String, u64> = counts
                .buckets
                .get(&t)
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| (k.clone().unwrap_or_else(|| NO_LEVEL.into()), *n))
                        .collect()
                })
                .unwrap_or_default();
            json!({"t": format_rfc3339(t), "counts": levels})
        })
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("buckets".into(), buckets.into());
    out.insert(
        "step".into(),
        logyard_query::pipes::format_duration(step).into(),
    );
    add_partial(&mut out, partial.as_deref());
    out.insert("cost".into(), cost_json(&cost));
    Ok(Json(Value::Object(out)))
}

/// The longest period `/api/errors/summary` accepts: a hundred years.
pub const MAX_HOURS: usize = 24 * 365 * 100;

/// `GET /api/errors/summary?hours=N` (default 24): the errors of the last N hours, by agent,
/// with the critical entries and the most frequent error templates.
pub async fn errors_summary(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let hours = usize_param(&params, "hours", 24, Some(MAX_HOURS))?;
    if hours == 0 {
        return Err(ApiError::bad_param("hours must be 1 or more"));
    }
    let now = now_ns();
    let since = now - hours as i64 * 3_600_000_000_000;
    let settings = query_settings(&state);
    let store = state.store.clone();
    let within = scope.filter();
    let s = blocking(move || {
        logyard_query::error_summary(&store.snapshot(), since, &within, &settings)
    })
    .await?;
    Ok(Json(error_summary_json(&s, now, hours)))
}

/// Renders an error summary in the shape of `GET /api/errors/summary`.
pub fn error_summary_json(s: &logyard_query::ErrorSummary, now: i64, hours: usize) -> Value {
    let breakdown: serde_json::Map<String, Value> = s
        .agents
        .iter()
        .map(|a| {
            let recent: Vec<Value> = a.recent.iter().map(|r| r.to_json(false)).collect();
            (
                a.name.clone(),
                json!({"error_count": a.count, "recent_errors": recent}),
            )
        })
        .collect();
    let critical: Vec<Value> = s.critical.iter().map(|r| r.to_json(false)).collect();
    let patterns: Vec<Value> = s
        .top_patterns
        .iter()
        .map(|(p, n, e)| json!({"pattern": p, "count": n, "example": e}))
        .collect();
    json!({
        "timestamp": format_rfc3339(now),
        "analysis_period_hours": hours,
        "total_agents": s.total_agents,
        "agents_with_errors": s.agents.len(),
        "total_error_entries": s.total_error_entries,
        "error_breakdown": breakdown,
        "critical_issues": critical,
        "top_patterns": patterns,
    })
}

/// The most lines `before` and `after` accept.
pub const MAX_CONTEXT: usize = 1000;

/// `GET /api/logs/{id}/context?before=10&after=10`: the lines of the same source around an
/// entry, oldest first, the entry included.
pub async fn context(
    State(state): State<AppState>,
    scope: ReadScope,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let id: RecordId = id
        .parse()
        .map_err(|e: String| ApiError::bad_param(format!("{e}; use the id of an entry")))?;
    let before = usize_param(&params, "before", 10, Some(MAX_CONTEXT))?;
    let after = usize_param(&params, "after", 10, Some(MAX_CONTEXT))?;
    let settings: Settings = query_settings(&state);
    let store = state.store.clone();
    let logs = blocking(move || -> Result<Option<Vec<Record>>, QueryError> {
        let snapshot = store.snapshot();
        let next = RecordId {
            timestamp: id.timestamp,
            seq: id.seq.saturating_add(1),
        };
        let at = scope.narrow(Filter::and(vec![
            Filter::Time {
                start: Some(id.timestamp),
                end: Some(id.timestamp.saturating_add(1)),
            },
            Filter::Before(next),
        ]));
        let found = logyard_query::search(
            &snapshot,
            &at,
            Page {
                offset: 0,
                limit: 1,
            },
        )?;
        let Some(entry) = found.records.into_iter().find(|r| r.id() == id) else {
            return Ok(None);
        };
        let same_source = Filter::Label {
            column: LabelColumn::Source,
            value: entry.source.clone(),
            prefix: false,
        };
        let older = scope.narrow(Filter::and(vec![same_source.clone(), Filter::Before(id)]));
        let mut logs = logyard_query::search(
            &snapshot,
            &older,
            Page {
                offset: 0,
                limit: before,
            },
        )?
        .records;
        logs.reverse();
        logs.push(entry);
        let newer = scope.narrow(Filter::and(vec![
            same_source,
            Filter::Time {
                start: Some(id.timestamp),
                end: None,
            },
            Filter::Not(Box::new(Filter::Before(next))),
        ]));
        let mut q = logyard_query::Query::of_filter(newer);
        q.pipes.push(Pipe::Sort(Sort {
            by: vec![FieldRef::new(Column::Timestamp.name())],
            desc: false,
        }));
        if let Answer::Records { records, .. } =
            logyard_query::run(&snapshot, &q, &settings, after)?.answer
        {
            logs.extend(records);
        }
        Ok(Some(logs))
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no entry with id {id}; it may have passed retention"),
        )
    })?;
    let raw = crate::read::include_raw(&params);
    let logs: Vec<Value> = logs.iter().map(|r| r.to_json(raw)).collect();
    Ok(Json(json!({ "logs": logs })))
}
