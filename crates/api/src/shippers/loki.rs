//! Loki push's route: `POST /loki/api/v1/push`, protobuf + snappy or JSON, decoded by
//! `logyard_sources::http::loki`. The answer is `204`; an error is a `400` (or `413`) with
//! a text body, as Loki answers; entries rejected alone leave the others stored and make
//! the answer a `400` that says so.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use logyard_sources::http::loki::{decode_json, decode_protobuf, Converter};
use logyard_sources::http::unsnappy;

use super::{read_body, rejection_summary, status, write, ShipperError};
use crate::auth::Ingester;
use crate::AppState;

/// The route of Loki push.
pub fn routes() -> Router<AppState> {
    Router::new().route("/loki/api/v1/push", post(push))
}

/// An error answer: its text, as Loki answers.
fn text(e: &ShipperError) -> Response {
    (
        status(e),
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", e.message()),
    )
        .into_response()
}

async fn push(
    State(state): State<AppState>,
    ingester: Ingester,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match accept(&state, &ingester, headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => text(&e),
    }
}

async fn accept(
    state: &AppState,
    ingester: &Ingester,
    headers: HeaderMap,
    body: Body,
) -> Result<(), ShipperError> {
    let content_type = super::content_type(&headers);
    let (bytes, wire) = read_body(state, &headers, body).await?;
    // Protobuf unless said JSON, as Loki decides; a JSON object sent with another type
    // (curl's default form type) is taken as JSON too, since snappy never starts with `{`
    // followed by `"` the way a push body does.
    let json = content_type.contains("json")
        || (content_type != "application/x-protobuf"
            && bytes.trim_ascii_start().starts_with(b"{\""));
    let max_body = state.limits.max_body_bytes;
    let opts = state.ingest.clone();
    let budget = state.limits.budget();
    let pushed = tokio::task::spawn_blocking(move || {
        let mut conv = Converter::new(opts.max_line_bytes, opts.keep_raw, budget);
        if json {
            decode_json(&bytes, &mut conv)?;
        } else {
            let raw = unsnappy(&bytes, max_body)?;
            drop(bytes);
            decode_protobuf(&raw, &mut conv)?;
        }
        Ok::<_, ShipperError>(conv.finish())
    })
    .await?
    .inspect_err(|e| match e {
        ShipperError::TooLarge(_) => state.metrics.add_rejected("body_too_large", 1),
        ShipperError::Invalid(_) => state.metrics.add_rejected("invalid_loki", 1),
        _ => {}
    })?;
    let too_large = pushed.rejected.len();
    let expired = write(state, ingester, pushed.records, wire).await?.len();
    state.metrics.add_rejected("too_large", too_large as u64);
    // Old entries are refused as Loki refuses samples older than `reject_old_samples_max_age`.
    let Some(why) = rejection_summary(&pushed.rejected, expired, state) else {
        return Ok(());
    };
    // As Loki answers a push with invalid entries: the valid ones are stored and the answer
    // is a 400 that says what was rejected (agents do not retry a 4xx).
    Err(ShipperError::Invalid(format!(
        "{} of {} entries were rejected, the others were stored: {}",
        too_large + expired,
        pushed.total,
        why
    )))
}
