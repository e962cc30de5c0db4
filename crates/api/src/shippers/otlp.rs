//! OTLP/HTTP logs' route: `POST /v1/logs`, protobuf (`application/x-protobuf`) or JSON
//! (`application/json`), optionally gzip, decoded by `logyard_sources::http::otlp`. The
//! answer is an `ExportLogsServiceResponse` in the request's encoding, with
//! `partialSuccess` when some records were rejected; a request that does not decode is a
//! `400` with a `google.rpc.Status`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use logyard_sources::http::otlp::{decode_json, decode_protobuf, proto, Collect};
use prost::Message;

use super::{read_body, rejection_summary, status, write, ShipperError};
use crate::auth::Ingester;
use crate::AppState;

/// The routes of OTLP/HTTP logs.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/logs", post(export))
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Json,
    Protobuf,
}

/// An error answer: a `google.rpc.Status` in the request's encoding.
fn rpc_status(encoding: Encoding, e: &ShipperError) -> Response {
    let code = match e {
        ShipperError::Invalid(_) | ShipperError::UnsupportedType(_) => 3, // INVALID_ARGUMENT
        ShipperError::TooLarge(_) => 8,                                   // RESOURCE_EXHAUSTED
        ShipperError::TimedOut(_) => 4,                                   // DEADLINE_EXCEEDED
        ShipperError::Unavailable(_) => 14,                               // UNAVAILABLE
        ShipperError::Misdirected(_) => 9,                                // FAILED_PRECONDITION
        ShipperError::Internal(_) => 13,                                  // INTERNAL
    };
    let message = e.message().to_string();
    match encoding {
        Encoding::Json => (
            status(e),
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({"code": code, "message": message}).to_string(),
        )
            .into_response(),
        Encoding::Protobuf => (
            status(e),
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            proto::Status { code, message }.encode_to_vec(),
        )
            .into_response(),
    }
}

async fn export(
    State(state): State<AppState>,
    ingester: Ingester,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let encoding = match super::content_type(&headers).as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" | "" => Encoding::Json,
        other => {
            let e = ShipperError::UnsupportedType(format!(
                "unsupported Content-Type {other:?}: send application/x-protobuf or application/json"
            ));
            return rpc_status(Encoding::Json, &e);
        }
    };
    match accept(&state, &ingester, encoding, headers, body).await {
        Ok(response) => response,
        Err(e) => rpc_status(encoding, &e),
    }
}

async fn accept(
    state: &AppState,
    ingester: &Ingester,
    encoding: Encoding,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ShipperError> {
    let (bytes, wire) = read_body(state, &headers, body).await?;
    let max_line_bytes = state.ingest.max_line_bytes;
    let budget = state.limits.budget();
    let decoded = tokio::task::spawn_blocking(move || {
        let mut c = Collect::new(budget, max_line_bytes, logyard_model::now_ns());
        match encoding {
            Encoding::Protobuf => decode_protobuf(&bytes, &mut c)?,
            Encoding::Json => decode_json(&bytes, &mut c)?,
        }
        Ok::<_, ShipperError>((c.records, c.rejected))
    })
    .await?;
    let (records, rejected) = decoded.inspect_err(|e| match e {
        ShipperError::Invalid(_) => state.metrics.add_rejected("invalid_otlp", 1),
        ShipperError::TooLarge(_) => state.metrics.add_rejected("body_too_large", 1),
        _ => {}
    })?;
    let expired = write(state, ingester, records, wire).await?.len();
    state
        .metrics
        .add_rejected("invalid_entry", rejected.len() as u64);
    let partial =
        rejection_summary(&rejected, expired, state).map(|why| proto::ExportLogsPartialSuccess {
            rejected_log_records: (rejected.len() + expired) as i64,
            error_message: why,
        });
    Ok(match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            proto::ExportLogsServiceResponse {
                partial_success: partial,
            }
            .encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => {
            let body = match partial {
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedLogRecords": p.rejected_log_records,
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    })
}
