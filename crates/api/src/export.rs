//! `GET /api/export?q=&start=&end=&format=ndjson|csv|json`: every match, streamed.
//!
//! The export runs on the blocking pool and hands chunks to the response body through a
//! small bounded channel, so a slow reader slows the export down instead of filling memory;
//! a filter streams block by block whatever the size of the export.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use logyard_model::now_ns;
use logyard_query::export::{export as write_export, Format};
use tokio::sync::mpsc;

use crate::auth::ReadScope;
use crate::error::ApiError;
use crate::read::{add_range, parse_q, query_settings};
use crate::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/export", get(export))
}

type Chunk = Result<Vec<u8>, std::io::Error>;

/// `GET /api/export`.
pub async fn export(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let now = now_ns();
    let mut query = parse_q(&state, &params, now)?;
    add_range(&mut query, &params, now)?;
    query.and_filter(scope.filter());
    let name = params.get("format").map_or("ndjson", String::as_str);
    let format = Format::parse(name).ok_or_else(|| {
        ApiError::bad_param(format!("format {name:?} is not one of ndjson, csv, json"))
    })?;
    let settings = query_settings(&state);
    let store = state.store.clone();
    let (tx, rx) = mpsc::channel::<Chunk>(8);
    tokio::task::spawn_blocking(move || {
        let snapshot = store.snapshot();
        let send = |bytes: Vec<u8>| tx.blocking_send(Ok(bytes)).is_ok();
        if let Err(e) = write_export(&snapshot, &query, &settings, format, send) {
            // The status is sent already: end the body with an error, which the client sees
            // as a cut transfer rather than a complete file.
            tracing::warn!(error = %e, "export stopped");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"logyard-export.{}\"",
                    format.extension()
                ),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
