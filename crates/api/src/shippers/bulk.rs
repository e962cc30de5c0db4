//! Elasticsearch `_bulk`'s routes: `POST /_bulk` and `POST /{index}/_bulk`, decoded by
//! `logyard_sources::http::bulk`. The answer is Elasticsearch's, item by item, and every
//! answer of these routes carries `X-Elastic-Product: Elasticsearch`, which the official
//! clients check. [`info_probe`] answers the clients' `GET /` version probe.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use logyard_sources::http::bulk::{answer, parse_bulk_within, Created, ItemError};
use serde_json::json;

use super::{read_body, status, write, ShipperError};
use crate::auth::Ingester;
use crate::AppState;

/// The Elasticsearch version the info probe announces.
pub const VERSION: &str = "8.11.0";

/// The routes of `_bulk`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_bulk", post(bulk_default).put(bulk_default))
        .route("/{index}/_bulk", post(bulk_index).put(bulk_index))
        .layer(middleware::map_response(product_header))
}

async fn product_header(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// Whether a request comes from an Elasticsearch client or shipper rather than a browser.
fn is_es_client(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-elastic-client-meta") {
        return true;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("vnd.elasticsearch") {
        return true;
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    [
        "elasticsearch",
        "elastic-",
        "beat",
        "logstash",
        "vector/",
        "fluent-bit",
    ]
    .iter()
    .any(|k| ua.contains(k))
}

/// Answers `GET /` and `HEAD /` of Elasticsearch clients (`x-elastic-client-meta`, an
/// `application/vnd.elasticsearch` `Accept`, or a shipper's `User-Agent`) with the cluster
/// info they check the version from; every other request goes on (`GET /` is the web UI).
pub async fn info_probe(req: Request, next: Next) -> Response {
    let probe = req.uri().path() == "/"
        && (req.method() == Method::GET || req.method() == Method::HEAD)
        && is_es_client(req.headers());
    if !probe {
        return next.run(req).await;
    }
    let body = json!({
        "name": "logyard",
        "cluster_name": "logyard",
        "cluster_uuid": "logyard",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    });
    product_header(
        (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
    )
    .await
}

/// An Elasticsearch error answer: `{"error": {"root_cause", "type", "reason"}, "status"}`.
fn es_error(e: &ShipperError) -> Response {
    let kind = match e {
        ShipperError::TooLarge(_) => "content_too_long_exception",
        ShipperError::TimedOut(_) => "timeout_exception",
        ShipperError::Invalid(_) | ShipperError::UnsupportedType(_) => "illegal_argument_exception",
        ShipperError::Unavailable(_) => "unavailable_shards_exception",
        ShipperError::Misdirected(_) => "cluster_block_exception",
        ShipperError::Internal(_) => "exception",
    };
    let status = status(e);
    let cause = json!({"type": kind, "reason": e.message()});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "error": {"root_cause": [cause], "type": kind, "reason": e.message()},
            "status": status.as_u16(),
        })
        .to_string(),
    )
        .into_response()
}

async fn bulk_default(
    state: State<AppState>,
    ingester: Ingester,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk(state, ingester, None, headers, body).await
}

async fn bulk_index(
    state: State<AppState>,
    ingester: Ingester,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk(state, ingester, Some(index), headers, body).await
}

async fn bulk(
    State(state): State<AppState>,
    ingester: Ingester,
    index: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match accept(&state, &ingester, index, headers, body).await {
        Ok(response) => response,
        Err(e) => es_error(&e),
    }
}

async fn accept(
    state: &AppState,
    ingester: &Ingester,
    index: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ShipperError> {
    let started = Instant::now();
    let (bytes, wire) = read_body(state, &headers, body).await?;
    let max_line = state.ingest.max_line_bytes;
    let mut budget = state.limits.budget();
    let parsed = tokio::task::spawn_blocking(move || {
        parse_bulk_within(
            &bytes,
            index.as_deref(),
            max_line,
            &mut budget,
            logyard_model::now_ns(),
        )
    })
    .await?
    .inspect_err(|e| {
        if matches!(e, ShipperError::Invalid(_)) {
            state.metrics.add_rejected("invalid_bulk", 1);
        }
    })?;
    let errors = parsed.items.iter().filter(|i| i.is_err()).count();
    state.metrics.add_rejected("invalid_entry", errors as u64);
    let mut items = parsed.items;
    let expired = write(state, ingester, parsed.records, wire).await?;
    if !expired.is_empty() {
        refuse_items(&mut items, &expired, &state.store.expired_reason());
    }
    let took = started.elapsed().as_millis() as u64;
    let answer = tokio::task::spawn_blocking(move || answer(&items, took)).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
}

/// Turns the stored items whose records the store refused (`refused`: indices among the
/// records, which follow the `Ok` items in order) into errors that say why.
fn refuse_items(items: &mut [Result<Created, ItemError>], refused: &[usize], reason: &str) {
    let mut refused = refused.iter().peekable();
    let stored = items.iter_mut().filter(|i| i.is_ok()).enumerate();
    for (record, item) in stored {
        if refused.peek() != Some(&&record) {
            continue;
        }
        refused.next();
        if let Ok(created) = item {
            *item = Err(ItemError {
                op: std::mem::take(&mut created.op),
                index: std::mem::take(&mut created.index),
                id: Some(std::mem::take(&mut created.id)),
                kind: "illegal_argument_exception",
                reason: reason.to_string(),
            });
        }
    }
}
