//! Digest routes: `POST`/`GET /v1/digests?start&stop`, and
//! vpcflow-digesterd's own `POST /` and `GET /` under `/vpcflow/` with
//! its status codes and bodies. `POST` needs the realm's write token (the
//! digest is committed to the realm's log); `GET` its query or write token.
//! The work is [`crate::digest`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealog_store::Scope;
use serde_json::json;

use crate::auth::Caller;
use crate::digest::{self, Found, Refused};
use crate::error::ApiError;
use crate::state::AppState;

fn message(status: StatusCode, m: impl Into<String>) -> Response {
    (status, Json(json!({"message": m.into()}))).into_response()
}

fn read_realm(caller: &Caller) -> Result<&str, ApiError> {
    caller
        .realm_for(Scope::Query, "read digests")
        .or_else(|_| caller.realm_for(Scope::Write, "read digests"))
}

type Params = RawQuery;

/// The query's pairs (the last of a repeated key wins); JSON 400s for
/// anything wrong come from [`window`].
fn pairs(raw: &RawQuery) -> HashMap<String, String> {
    crate::routes::read::params(raw.0.as_deref())
        .into_iter()
        .collect()
}

/// The window, or the 400 message.
fn window(p: &HashMap<String, String>) -> Result<digest::Window, String> {
    if let Some(k) = p.keys().find(|k| *k != "start" && *k != "stop") {
        return Err(format!(
            "unknown query parameter {k:?}; expected start and stop"
        ));
    }
    digest::window(
        p.get("start").map(String::as_str),
        p.get("stop").map(String::as_str),
    )
}

async fn request(
    state: Arc<AppState>,
    caller: Caller,
    p: HashMap<String, String>,
    upstream: bool,
) -> Result<Response, ApiError> {
    let name = caller
        .realm_for(Scope::Write, "request digests")?
        .to_string();
    let w = match window(&p) {
        Ok(w) => w,
        Err(m) => return Ok(message(StatusCode::BAD_REQUEST, m)),
    };
    let realm = state.realm_async(&name).await?;
    let st = state.clone();
    let id = w.id.clone();
    let outcome = tokio::task::spawn_blocking(move || st.digests.request(&st, realm, w))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(match outcome {
        Ok(()) if upstream => StatusCode::ACCEPTED.into_response(),
        Ok(()) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/v1/digests?{}", query_of(&p)))],
            Json(json!({"id": id, "status": "queued"})),
        )
            .into_response(),
        Err(Refused::Exists) => {
            message(StatusCode::CONFLICT, format!("digest {id} already exists"))
        }
        Err(Refused::Busy) => return Err(ApiError::Overloaded("too many digests queued")),
        Err(Refused::InProgress) => message(
            StatusCode::CONFLICT,
            format!("digest {id} is being created"),
        ),
        Err(Refused::Io(e)) => {
            tracing::error!(realm = %name, digest = %id, cause = %e, "digest could not be queued");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    })
}

fn query_of(p: &HashMap<String, String>) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "start={}&stop={}",
        enc(p.get("start").map_or("", String::as_str)),
        enc(p.get("stop").map_or("", String::as_str))
    )
}

/// `POST /v1/digests?start&stop`: 202 queued, 409 in progress or done,
/// 400 `{"message"}` for a bad window.
pub async fn post(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    raw: Params,
) -> Result<Response, ApiError> {
    request(state, caller, pairs(&raw), false).await
}

/// vpcflow-digesterd's `POST /?start&stop`: 202 with no body.
pub async fn upstream_post(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    raw: Params,
) -> Result<Response, ApiError> {
    request(state, caller, pairs(&raw), true).await
}

async fn find(
    state: &Arc<AppState>,
    caller: &Caller,
    p: &HashMap<String, String>,
) -> Result<Result<(digest::Window, Found), Response>, ApiError> {
    let name = read_realm(caller)?.to_string();
    let w = match window(p) {
        Ok(w) => w,
        Err(m) => return Ok(Err(message(StatusCode::BAD_REQUEST, m))),
    };
    let st = state.clone();
    let id = w.id.clone();
    let found = tokio::task::spawn_blocking(move || st.digests.find(&name, &id))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("digest store: {e}")))?;
    Ok(Ok((w, found)))
}

fn gunzip(gz: &[u8]) -> Result<Vec<u8>, ApiError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::Internal(format!("stored digest does not decompress: {e}")))?;
    Ok(out)
}

/// `GET /v1/digests?start&stop`: 200 with the digest (text; gzip on
/// `Accept-Encoding: gzip`; JSON with its record on `Accept:
/// application/json`), 204 while in progress, 404 unknown.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    raw: Params,
) -> Result<Response, ApiError> {
    let p = pairs(&raw);
    let (w, found) = match find(&state, &caller, &p).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (meta, gz) = match found {
        Found::Done(m, gz) => (m, gz),
        Found::InProgress => return Ok(StatusCode::NO_CONTENT.into_response()),
        Found::Absent => {
            return Ok(message(
                StatusCode::NOT_FOUND,
                format!("digest {} does not exist", w.id),
            ))
        }
    };
    let accepts = |h: header::HeaderName, what: &str| {
        headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|p| p.split(';').next().unwrap_or_default().trim() == what)
            })
    };
    if accepts(header::ACCEPT, "application/json") {
        let text = String::from_utf8(gunzip(&gz)?)
            .map_err(|_| ApiError::Internal("stored digest is not UTF-8".into()))?;
        let lines: Vec<&str> = text.lines().collect();
        return Ok(Json(json!({"digest": meta, "lines": lines})).into_response());
    }
    let mut resp = if accepts(header::ACCEPT_ENCODING, "gzip") {
        let mut r = Body::from(gz).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Body::from(gunzip(&gz)?).into_response()
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&meta.sha256) {
        resp.headers_mut().insert("x-sealog-digest-sha256", v);
    }
    Ok(resp)
}

/// vpcflow-digesterd's `GET /?start&stop`: 200 `application/octet-stream`
/// with the gzipped digest as stored, 204 in progress, 404 with no body.
pub async fn upstream_get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    raw: Params,
) -> Result<Response, ApiError> {
    let p = pairs(&raw);
    let (_, found) = match find(&state, &caller, &p).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    Ok(match found {
        Found::Done(_, gz) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            gz,
        )
            .into_response(),
        Found::InProgress => StatusCode::NO_CONTENT.into_response(),
        Found::Absent => StatusCode::NOT_FOUND.into_response(),
    })
}
