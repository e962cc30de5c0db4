//! Where the segments are: `GET /api/storage` and `GET /api/nodes` (an administrator's), and
//! `GET /api/node/recent` (what a query node asks this node for; a token that reads every
//! agent). `POST /api/admin/backup`: a consistent copy of the running server's data written
//! on the server's host ([`logyard_store::Store::backup`]).

use std::path::PathBuf;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use logyard_store::{BackupReport, StoreError};
use serde_json::{json, Value};

use crate::error::{blocking, spawn_blocking, ApiError};
use crate::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/backup", post(backup))
        .route("/api/storage", get(storage))
        .route("/api/nodes", get(nodes))
        .route("/api/node/recent", get(recent))
}

/// `GET /api/node/recent?known=<ids>&since=<seq>&max_bytes=<n>`: this node's cut for a
/// query node that follows it ([`logyard_store::Store::recent`], in its wire format): the
/// segments it has in the bucket, and the rows of the rest (those of segments `known` and
/// memtable rows up to `since` left out; those of segments up to about `max_bytes`, by
/// default [`logyard_store::RECENT_MAX_BYTES`]).
pub async fn recent(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let bad = |what: &str, value: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{what} {value:?} is not a number"),
        )
    };
    let known = match params.get("known").map(String::as_str) {
        None | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|id| id.parse::<u64>().map_err(|_| bad("known segment", id)))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let since = match params.get("since") {
        None => 0,
        Some(s) => s.parse::<u64>().map_err(|_| bad("since", s))?,
    };
    let max_bytes = match params.get("max_bytes") {
        None => logyard_store::RECENT_MAX_BYTES,
        Some(s) => s.parse::<u64>().map_err(|_| bad("max_bytes", s))?,
    };
    let store = state.store.clone();
    let cut = blocking(move || store.recent(&known, since, max_bytes)).await?;
    let Some(cut) = cut else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_shared",
            "this node keeps its segments in its data directory: query nodes follow nodes with [storage] type = \"s3\"",
        ));
    };
    let body = spawn_blocking(move || cut.encode()).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Bytes::from(body),
    )
        .into_response())
}

/// `GET /api/nodes`: on a query node (`serve --role query`), the nodes whose manifests it
/// reads, with their ages, segments and errors; elsewhere an empty list.
pub async fn nodes(State(state): State<AppState>) -> Json<Value> {
    let followed = state.store.nodes();
    let nodes: Vec<Value> = followed
        .iter()
        .flatten()
        .map(|n| {
            json!({
                "node": n.node,
                "location": n.location,
                "address": n.address,
                "written_at": n.written_at,
                "age_seconds": n.age_seconds,
                "segments": n.segments,
                "rows": n.rows,
                "bytes": n.bytes,
                "recent_rows": n.recent_rows,
                "linked": n.linked,
                "error": n.error,
            })
        })
        .collect();
    Json(json!({
        "following": followed.is_some(),
        "nodes": nodes,
    }))
}

/// `GET /api/storage`: where segment files live and, with a bucket, its uploads, its reads
/// and its last error.
pub async fn storage(State(state): State<AppState>) -> Json<Value> {
    let stats = state.store.stats();
    let tier = stats.uploads.as_ref();
    let uploads = tier.map(|u| {
        json!({
            "pending_files": u.pending_files,
            "pending_bytes": u.pending_bytes,
            "lag_seconds": (u.upload_lag_seconds * 1000.0).round() / 1000.0,
            "uploaded_files": u.uploaded_files,
            "uploaded_bytes": u.uploaded_bytes,
            "errors": u.errors,
            "evicted_files": u.evicted_files,
        })
    });
    let downloads = tier.map(|u| {
        json!({
            "requests": u.downloads,
            "bytes": u.downloaded_bytes,
            "errors": u.download_errors,
        })
    });
    let range_cache = stats
        .range_cache
        .map(|r| json!({"bytes": r.bytes, "chunks": r.chunks, "hits": r.hits, "misses": r.misses}));
    let last_error = tier.and_then(|u| u.last_error.as_ref()).map(
        |(message, ns)| json!({"message": message, "time": logyard_model::format_rfc3339(*ns)}),
    );
    Json(json!({
        "type": if uploads.is_some() { "s3" } else { "local" },
        "location": state.store.segment_location(),
        "segments": stats.segments,
        "segment_bytes": stats.segment_bytes,
        "uploads": uploads,
        "downloads": downloads,
        "range_cache": range_cache,
        "last_error": last_error,
    }))
}

/// The JSON answer of a backup.
pub fn report_json(report: &BackupReport) -> Value {
    let m = &report.manifest;
    json!({
        "to": report.to.display().to_string(),
        "created": m.created,
        "logyard_version": m.logyard_version,
        "segments": m.segments,
        "segment_rows": m.segment_rows,
        "wal_files": m.wal_files,
        "wal_rows": m.wal_rows,
        "wal_bytes": m.wal_bytes(),
        "files": m.files.len(),
        "bytes": m.bytes(),
        "linked_files": report.linked_files,
        "copied_files": report.copied_files,
        "quarantined_left_out": m.quarantined_left_out,
        "elapsed_ms": report.elapsed.as_secs_f64() * 1000.0,
    })
}

/// `POST /api/admin/backup` with `{"to": "/absolute/dir"}`: runs the backup on a blocking
/// thread while ingest goes on, and answers its report.
pub async fn backup(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let hint = "send {\"to\": \"/absolute/path/on/the/server\"}";
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not JSON ({e}); {hint}"),
        )
    })?;
    let Some(to) = request.get("to").and_then(Value::as_str) else {
        return Err(ApiError::bad_param(format!(
            "the body has no \"to\" directory; {hint}"
        )));
    };
    let to = PathBuf::from(to);
    if !to.is_absolute() {
        return Err(ApiError::bad_param(format!(
            "\"to\" must be an absolute path on the server's host, not {}; {hint}",
            to.display()
        )));
    }
    let store = state.store.clone();
    let done = spawn_blocking(move || store.backup(&to)).await?;
    match done {
        Ok(report) => Ok(Json(report_json(&report))),
        Err(StoreError::BackupTarget(m)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "backup_target", m))
        }
        Err(StoreError::Backup(m)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backup_failed",
            m,
        )),
        Err(e) => Err(e.into()),
    }
}
