//! `POST /v1/ingest` (NDJSON or a JSON array, optionally gzipped) and
//! `POST /log-events` (logshuttle `LogSpec` lines): both through the one
//! front door ([`crate::front`]); a receipt once the commit is durable; a
//! batch with any bad line is refused whole.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use sealog_codec::batch::Format;
use sealog_journal::Receipt;
use sealog_store::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /v1/ingest`: NDJSON, or a JSON array (`Content-Type:
/// application/json`, or a body that opens with `[`).
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Write, "write")?)
        .await?;
    let json_array = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let format = if json_array {
        Format::JsonArray
    } else {
        Format::Ndjson
    };
    let mut grant = caller.0;
    let receipt = crate::front::ingest(&state, &mut grant, &realm, &headers, body, format).await?;
    Ok(Json(receipt))
}

/// `POST /log-events` (logshuttle): fluentd/Kubernetes `LogSpec` JSON, one
/// object per line; each gains `app`, `space`, `dyno` and `proc_type`; 201
/// with the receipt once durable.
pub async fn log_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Write, "write")?)
        .await?;
    let mut grant = caller.0;
    let receipt =
        crate::front::ingest(&state, &mut grant, &realm, &headers, body, Format::LogSpec).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}
