//! Palisade's audit-service routes: `POST /api/success`, `POST /api/error`
//! (a realm's write token, and `x-request-token`), and `GET
//! /actuator/health` for its probes. The message handling is
//! [`crate::audit`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealog_store::Scope;
use serde_json::json;

use crate::audit::{self, Kind, Outcome, Verdict};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/success`: an `AuditSuccessMessage`.
pub async fn success(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    receive(state, caller, headers, body, Kind::Success).await
}

/// `POST /api/error`: an `AuditErrorMessage`.
pub async fn error(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    receive(state, caller, headers, body, Kind::Error).await
}

/// The last `x-request-token` (Palisade reads `lastHeader`).
fn request_token(headers: &HeaderMap) -> Result<String, ApiError> {
    let v = headers
        .get_all(audit::REQUEST_TOKEN_HEADER)
        .iter()
        .next_back()
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "missing {} header: every audit message needs the token of the request it audits",
                audit::REQUEST_TOKEN_HEADER
            ))
        })?;
    let t = v.to_str().map_err(|_| {
        ApiError::BadRequest(format!(
            "{} header is not visible ASCII text",
            audit::REQUEST_TOKEN_HEADER
        ))
    })?;
    if t.trim().is_empty() || t.len() > audit::MAX_REQUEST_TOKEN {
        return Err(ApiError::BadRequest(format!(
            "{} header must be 1 to {} characters",
            audit::REQUEST_TOKEN_HEADER,
            audit::MAX_REQUEST_TOKEN
        )));
    }
    Ok(t.to_string())
}

async fn receive(
    state: Arc<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
    kind: Kind,
) -> Result<Response, ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Write, "write")?)
        .await?;
    // Palisade's controller `consumes` JSON; a missing type is taken as JSON.
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedEncoding(format!(
                "content-type {ct:?} is not taken here; send application/json"
            )));
        }
    }
    if crate::front::encoding(&headers)? {
        return Err(ApiError::UnsupportedEncoding(
            "audit messages are sent uncompressed".into(),
        ));
    }
    let token = request_token(&headers)?;
    let _admission = crate::front::admit(&state, &realm, &headers)?;
    let limits = &state.config.limits;
    let raw = crate::front::read_body(
        body,
        limits.max_line_bytes.min(sealog_event::MAX_EVENT_BYTES / 2),
        Duration::from_secs(limits.body_timeout_secs.max(1)),
    )
    .await
    .inspect_err(|_| state.metrics.refused(realm.name(), "body", 1))?;
    let mut grant = caller.0;
    if !grant.still_valid(&state) {
        state.metrics.refused(realm.name(), "token_revoked", 1);
        return Err(ApiError::BadToken);
    }
    match audit::handle(&state, &realm, kind, &token, raw).await? {
        Outcome::Stored(verdict, receipt) => {
            let (status, reason) = match verdict {
                Verdict::Accepted => ("accepted", None),
                Verdict::Rejected(r) => ("rejected", Some(r)),
            };
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"status": status, "reason": reason, "receipt": receipt})),
            )
                .into_response())
        }
        Outcome::Refused(why) => Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": why.reason,
                "field": why.field,
                "status": "invalid",
            })),
        )
            .into_response()),
    }
}

/// `GET /actuator/health`: Spring Actuator's shape for Palisade's probes
/// (`{"status":"UP"}`, or 503 `DOWN` while shutting down).
pub async fn actuator_health(State(state): State<Arc<AppState>>) -> Response {
    if state.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "DOWN"})),
        )
            .into_response();
    }
    Json(json!({"status": "UP"})).into_response()
}
