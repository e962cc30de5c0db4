//! `GET /api/tail?q=`: Server-Sent Events of new entries that match a filter.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use logyard_model::now_ns;
use tokio::sync::broadcast::error::RecvError;

use crate::analysis::filter_only;
use crate::auth::ReadScope;
use crate::error::ApiError;
use crate::read::{include_raw, parse_q};
use crate::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/tail", get(tail))
}

/// `GET /api/tail?q=`: one event per new matching entry (its JSON, the id as the event id),
/// as batches are acknowledged; an event `lagged` says how many batches a slow reader missed.
pub async fn tail(
    State(state): State<AppState>,
    scope: ReadScope,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let query = parse_q(&state, &params, now_ns())?;
    filter_only(&query, "/api/tail")?;
    let raw = include_raw(&params);
    let receiver = state.store.subscribe();
    let stopping = state.stopping.subscribe();
    let filter = scope.narrow(query.filter);
    let stream = futures_util::stream::unfold(
        (receiver, VecDeque::new(), stopping),
        move |(mut receiver, mut pending, mut stopping)| {
            let filter = filter.clone();
            async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        return Some((Ok(event), (receiver, pending, stopping)));
                    }
                    let received = tokio::select! {
                        r = receiver.recv() => r,
                        // The server stops: the tail ends, so that the stop need not wait.
                        _ = stopping.wait_for(|s| *s) => return None,
                    };
                    match received {
                        Ok(batch) => {
                            for r in logyard_query::matching_records(&filter, &batch) {
                                pending.push_back(
                                    Event::default()
                                        .id(r.id().to_string())
                                        .data(r.to_json(raw).to_string()),
                                );
                            }
                        }
                        Err(RecvError::Lagged(n)) => pending.push_back(
                            Event::default()
                                .event("lagged")
                                .data(serde_json::json!({ "missed_batches": n }).to_string()),
                        ),
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
