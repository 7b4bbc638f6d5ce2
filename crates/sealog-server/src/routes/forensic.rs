//! The Mojaloop central-kms admin routes: `GET /sidecars`, `POST /inquiry`
//! and `GET /inquiry/{id}`, with the KMS's error codes as JSON
//! `{"code","message"}`. The checking is [`crate::forensic`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealog_store::Scope;
use serde_json::json;

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::forensic::{self, Inquiry, Status};
use crate::state::AppState;

/// A KMS-style error: `{"code": N, "message": "..."}`.
fn kms_error(status: StatusCode, code: u32, message: String) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

/// `GET /sidecars`: the connected sidecar clients (admin token).
pub async fn sidecars(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Json<Vec<serde_json::Value>> {
    Json(state.sidecars.list())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InquiryRequest {
    service: String,
    #[serde(rename = "startTime")]
    start_time: String,
    #[serde(rename = "endTime")]
    end_time: String,
}

fn inquiries_dir(state: &AppState) -> Result<std::path::PathBuf, ApiError> {
    Ok(state.data_dir()?.root().join("inquiries"))
}

/// `POST /inquiry {"service","startTime","endTime"}`: 201 with `Location:
/// /inquiry/{id}`; the admin token, or the query token of the service's
/// realm.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: InquiryRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Ok(kms_error(
                StatusCode::BAD_REQUEST,
                1,
                format!("bad inquiry body: {e}"),
            ))
        }
    };
    let is_admin = caller.admin().is_ok();
    if !is_admin {
        caller.realm_for(Scope::Query, "open an inquiry")?;
    }
    let parse = |what: &str, v: &str| {
        sealog_event::parse_rfc3339(v).ok_or_else(|| {
            format!("{what} {v:?} is not an RFC 3339 instant (e.g. 2017-07-10T15:45:32Z)")
        })
    };
    let (start, end) = match (
        parse("startTime", &req.start_time),
        parse("endTime", &req.end_time),
    ) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(m), _) | (_, Err(m)) => return Ok(kms_error(StatusCode::BAD_REQUEST, 1, m)),
    };
    if start > end
        || end
            .checked_sub(start)
            .is_none_or(|d| d > forensic::MAX_WINDOW_NS)
    {
        return Ok(kms_error(
            StatusCode::BAD_REQUEST,
            40010,
            "The window from startTime to endTime must not be reversed and must be at most 30 days"
                .into(),
        ));
    }
    // A query token sees only its own realm's services: another realm's
    // is as unknown to it as a service no one registered.
    let own = if is_admin {
        None
    } else {
        Some(
            caller
                .realm_for(Scope::Query, "open an inquiry")?
                .to_string(),
        )
    };
    let realm = state
        .sidecars
        .realm_of(&req.service)
        .filter(|r| own.as_ref().is_none_or(|o| o == r));
    let Some(realm) = realm else {
        return Ok(kms_error(
            StatusCode::BAD_REQUEST,
            40002,
            format!("No sidecars are registered for service '{}'", req.service),
        ));
    };
    let name = sealog_event::RealmName::new(&realm).map_err(|_| {
        ApiError::NotFound(format!("service's realm {realm:?} is not a realm name"))
    })?;
    let (journal, key) = {
        let dd = state.data_dir()?;
        (dd.journal_dir(&name), dd.verifier_key(&name)?)
    };
    if state.inquiries.open_count() >= forensic::MAX_OPEN_INQUIRIES {
        return Err(ApiError::Overloaded("too many inquiries in progress"));
    }
    let id = sealog_store::uuid_v4();
    let now = sealog_event::format_rfc3339_nanos(sealog_event::now_ns());
    let q = state.inquiries.insert(
        Inquiry {
            id: id.clone(),
            service: req.service,
            realm,
            start_time: sealog_event::format_rfc3339_nanos(start),
            end_time: sealog_event::format_rfc3339_nanos(end),
            created: now,
            status: Status::Created,
            total: 0,
            completed: 0,
            verified: 0,
            error: None,
            results: Vec::new(),
        },
        state.config.inquiries.max_kept,
    );
    let dir = inquiries_dir(&state)?;
    let slots = state.inquiry_slots.clone();
    let deadline_secs = state.config.inquiries.deadline_secs.max(1);
    let asked = Instant::now();
    tokio::spawn(async move {
        let Ok(_slot) = slots.acquire_owned().await else {
            return;
        };
        // The deadline runs from the request: waiting for a slot counts.
        let window = sealog_journal::commits::Window {
            start_ns: start,
            end_ns: end,
            deadline: Some(asked + Duration::from_secs(deadline_secs)),
        };
        let q2 = q.clone();
        let ran =
            tokio::task::spawn_blocking(move || forensic::run(&q2, &journal, &key, window)).await;
        // An inquiry always completes, even if the check itself failed.
        let done = match q.lock() {
            Ok(mut g) => {
                if let Err(e) = ran {
                    g.error = Some(format!("the check stopped: {e}"));
                    g.status = forensic::Status::Complete;
                }
                Some(g.clone())
            }
            Err(_) => None,
        };
        if let Some(done) = done {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = forensic::save(&dir, &done) {
                    tracing::warn!(inquiry = %done.id, cause = %e, "finished inquiry could not be saved; it is answered from memory until restart");
                }
            })
            .await;
        }
    });
    let location = format!("/inquiry/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(json!({"id": id})),
    )
        .into_response())
}

/// `GET /inquiry/{id}`: its status and one result per commit; 404 with code
/// 40400 when unknown (or not the caller's realm's).
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let is_admin = caller.admin().is_ok();
    let own = if is_admin {
        None
    } else {
        Some(
            caller
                .realm_for(Scope::Query, "read an inquiry")?
                .to_string(),
        )
    };
    let dir = inquiries_dir(&state)?;
    let found = state
        .inquiries
        .get(&id, &dir)
        .filter(|q| own.as_ref().is_none_or(|r| *r == q.realm));
    let Some(q) = found else {
        return Ok(kms_error(
            StatusCode::NOT_FOUND,
            40400,
            format!("Inquiry with id of {id} does not exist"),
        ));
    };
    Ok(Json(q).into_response())
}
