//! `POST /v1/ingest` (NDJSON or a JSON array, optionally gzipped) and
//! `POST /log-events` (logshuttle `LogSpec` lines): both through the one
//! front door ([`crate::front`]); a receipt once the commit is durable; a
//! batch with any bad line is refused whole.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealog_codec::batch::Format;
use sealog_journal::Receipt;
use sealog_store::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /v1/ingest`: NDJSON, or a JSON array (`Content-Type:
/// application/json`, or a body that opens with `[`); with
/// `?format=vpcflow`, AWS VPC flow-log lines (text or gzip), the skipped
/// header and `NODATA`/`SKIPDATA` lines counted in `x-sealog-skipped-lines`.
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Write, "write")?)
        .await?;
    let json_array = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    // `format`: `ndjson` (the default; a JSON array with `Content-Type:
    // application/json` or a body opening with `[`) or `vpcflow`.
    let mut wanted = None;
    for (k, v) in crate::routes::read::params(raw.as_deref()) {
        match k.as_str() {
            "format" => wanted = Some(v),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?}; only format is taken"
                )))
            }
        }
    }
    let format = match wanted.as_deref() {
        Some("vpcflow") => Format::VpcFlow,
        Some("ndjson") | None if json_array => Format::JsonArray,
        Some("ndjson") | None => Format::Ndjson,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format {other:?} is not one of ndjson, vpcflow"
            )))
        }
    };
    let mut grant = caller.0;
    let (receipt, skipped) =
        crate::front::ingest(&state, &mut grant, &realm, &headers, body, format).await?;
    let mut resp = Json(receipt).into_response();
    if format == Format::VpcFlow {
        resp.headers_mut()
            .insert("x-sealog-skipped-lines", HeaderValue::from(skipped));
    }
    Ok(resp)
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
    let (receipt, _) =
        crate::front::ingest(&state, &mut grant, &realm, &headers, body, Format::LogSpec).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}
