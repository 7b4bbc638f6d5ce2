//! Drains and log sessions, logshuttle's API (seed-systems §3.3, §3.8)
//! with its failures fixed: a drain's URL is checked when it is created
//! (422 naming the problem, not 200 "Malformed Request"), a drain belongs
//! to the realm of the write token that made it and only that realm may
//! see or delete it, and `GET` on a drain shows how its delivery stands.
//!
//! - `/apps/{app}-{space}/log-drains[/{id}]`: drains of an app in a space;
//! - `/sites/{site}/log-drains[/{id}]`: drains of a site;
//! - `/v1/drains[/{id}]`: drains on a query filter (`where`, `q`), and
//!   every drain of the realm;
//! - `POST /log-sessions`, `GET /log-sessions/{id}`: log sessions;
//! - `GET /octhc`: logshuttle's health text.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealog_store::{DrainInfo, Scope, Select, StoredFraming};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::drain::session::Session;
use crate::drain::StatusView;
use crate::error::ApiError;
use crate::state::AppState;

/// logshuttle's always-empty `addon` object.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Addon {
    /// Always empty.
    pub id: String,
    /// Always empty.
    pub name: String,
}

/// A drain as the API shows it: logshuttle's drain JSON (`id`, `url`,
/// `created_at`, `updated_at`, `addon`, `token`) plus its realm, selection,
/// framing and delivery status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DrainView {
    /// The drain's id (a random UUID).
    pub id: String,
    /// The destination (a password in it shown as `***`).
    pub url: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was last changed (RFC 3339).
    pub updated_at: String,
    /// Always empty, as logshuttle's.
    pub addon: Addon,
    /// The key it was made under: `<app>-<space>`, the site, or `""` for a
    /// filter drain.
    pub token: String,
    /// Its realm.
    pub realm: String,
    /// Which records: `{"kind":"app","app","space"}`, `{"kind":"site","site"}`
    /// or `{"kind":"filter","where":[…],"q"}`.
    #[schema(value_type = Object)]
    pub select: Select,
    /// `newline` or `octet-counting` (syslog streams).
    #[schema(value_type = String)]
    pub framing: StoredFraming,
    /// How delivery stands (absent only while the server stops).
    pub status: Option<StatusView>,
}

/// `POST …/log-drains` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDrain {
    /// `syslog://`, `syslog+tcp://`, `syslog+udp://`, `syslog+tls://`
    /// (host and port required), `http://` or `https://` (userinfo is sent
    /// as basic authentication).
    pub url: String,
    /// `newline` (default, as logshuttle) or `octet-counting`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub framing: Option<StoredFraming>,
}

/// `POST /v1/drains` body: a drain on a query filter.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFilterDrain {
    /// The destination, as for logshuttle's drains.
    pub url: String,
    /// `field=value` terms, all of which must match (as `/v1/query`'s
    /// `where`).
    #[serde(default, rename = "where")]
    pub terms: Vec<String>,
    /// Text the record must contain (as `/v1/query`'s `q`).
    #[serde(default)]
    pub q: Option<String>,
    /// `newline` (default) or `octet-counting`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub framing: Option<StoredFraming>,
}

/// `POST /log-sessions` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// The app (with `space`).
    #[serde(default)]
    pub app: Option<String>,
    /// The space (with `app`).
    #[serde(default)]
    pub space: Option<String>,
    /// The site (instead of `app` and `space`).
    #[serde(default)]
    pub site: Option<String>,
    /// Records of history sent first (default 100).
    #[serde(default)]
    pub lines: Option<u64>,
    /// Keep sending new records (default false).
    #[serde(default)]
    pub tail: Option<bool>,
}

/// `POST /log-sessions` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedSession {
    /// The session's id: the capability to read it, for `session_ttl_secs`.
    pub id: String,
    /// Where to read it: `<base>/log-sessions/<id>`.
    pub logplex_url: String,
}

/// A JSON body of any content type (logshuttle's clients send none):
/// malformed JSON, a missing or unknown field is a 422 naming the problem
/// (logshuttle answered 200 "Malformed Request"); over 2 MiB is a 413.
#[derive(Debug)]
pub struct AnyJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for AnyJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let b = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::TooLarge {
                    limit: 2 * 1024 * 1024,
                })
            }
            Err(e) => return Err(ApiError::BadRequest(e.body_text())),
        };
        serde_json::from_slice(&b)
            .map(AnyJson)
            .map_err(|e| ApiError::Unprocessable(format!("request body is not valid: {e}")))
    }
}

fn app_key(key: &str) -> Result<(String, String), ApiError> {
    match key.split_once('-') {
        Some((app, space)) if !app.is_empty() && !space.is_empty() => {
            Ok((app.to_string(), space.to_string()))
        }
        _ => Err(ApiError::Unprocessable(format!(
            "app key {key:?} must be <app>-<space>, both non-empty"
        ))),
    }
}

fn key_of(select: &Select) -> String {
    match select {
        Select::App { app, space } => format!("{app}-{space}"),
        Select::Site { site } => site.clone(),
        Select::Filter { .. } => String::new(),
    }
}

async fn view(state: &Arc<AppState>, d: DrainInfo) -> DrainView {
    let (size, checkpoint) = match state.realm_now(&d.realm) {
        Ok(Some(r)) => r.journal().read().map_or((0, None), |j| {
            (
                j.size(),
                j.latest_checkpoint()
                    .map(|c| (c.checkpoint.size, c.text.clone())),
            )
        }),
        _ => (0, None),
    };
    DrainView {
        status: state.drains.status(&d.id, size, checkpoint),
        url: sealog_codec::drain::redacted(&d.url),
        token: key_of(&d.select),
        created_at: d.created_at,
        updated_at: d.updated_at,
        addon: Addon::default(),
        realm: d.realm,
        select: d.select,
        framing: d.framing,
        id: d.id,
    }
}

/// Runs `f` on the data directory off the async threads.
async fn with_dir<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&mut sealog_store::DataDir) -> Result<T, sealog_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut dd = st.data_dir()?;
        f(&mut dd).map_err(ApiError::from)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("drain task: {e}")))?
}

async fn create(
    state: &Arc<AppState>,
    realm: String,
    select: Select,
    url: String,
    framing: Option<StoredFraming>,
) -> Result<Response, ApiError> {
    let d = with_dir(state, move |dd| {
        dd.add_drain(&realm, select, &url, framing.unwrap_or_default())
    })
    .await?;
    tracing::info!(drain = %d.id, realm = %d.realm, url = %sealog_codec::drain::redacted(&d.url), "drain created");
    state.drains.start(state, d.clone());
    Ok((StatusCode::CREATED, Json(view(state, d).await)).into_response())
}

async fn list(
    state: &Arc<AppState>,
    realm: String,
    keep: impl Fn(&Select) -> bool,
) -> Result<Json<Vec<DrainView>>, ApiError> {
    let all = with_dir(state, move |dd| dd.drains(Some(&realm))).await?;
    let mut out = Vec::new();
    for d in all.into_iter().filter(|d| keep(&d.select)) {
        out.push(view(state, d).await);
    }
    Ok(Json(out))
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such log drain or app found".into())
}

async fn one(
    state: &Arc<AppState>,
    realm: String,
    id: &str,
    keep: impl Fn(&Select) -> bool,
) -> Result<DrainInfo, ApiError> {
    let all = with_dir(state, move |dd| dd.drains(Some(&realm))).await?;
    all.into_iter()
        .find(|d| d.id == id && keep(&d.select))
        .ok_or_else(not_found)
}

async fn remove(
    state: &Arc<AppState>,
    realm: String,
    id: String,
    keep: impl Fn(&Select) -> bool,
) -> Result<Json<DrainView>, ApiError> {
    // Only the drain's own key (and realm) may delete it.
    let d = one(state, realm.clone(), &id, keep).await?;
    let v = view(state, d).await;
    state.drains.stop(state, &id);
    with_dir(state, move |dd| dd.remove_drain(&realm, &id)).await?;
    tracing::info!(drain = %v.id, realm = %v.realm, "drain removed");
    Ok(Json(v))
}

fn writer(caller: &Caller) -> Result<String, ApiError> {
    caller
        .realm_for(Scope::Write, "manage drains")
        .map(str::to_string)
}

fn is_app<'a>(app: &'a str, space: &'a str) -> impl Fn(&Select) -> bool + 'a {
    move |s| matches!(s, Select::App { app: a, space: sp } if a == app && sp == space)
}

fn is_site(site: &str) -> impl Fn(&Select) -> bool + '_ {
    move |s| matches!(s, Select::Site { site: x } if x == site)
}

/// `POST /apps/{app}-{space}/log-drains`.
pub async fn create_app(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(key): Path<String>,
    AnyJson(n): AnyJson<NewDrain>,
) -> Result<Response, ApiError> {
    let realm = writer(&caller)?;
    let (app, space) = app_key(&key)?;
    create(&state, realm, Select::App { app, space }, n.url, n.framing).await
}

/// `GET /apps/{app}-{space}/log-drains`.
pub async fn list_app(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Vec<DrainView>>, ApiError> {
    let realm = writer(&caller)?;
    let (app, space) = app_key(&key)?;
    list(&state, realm, is_app(&app, &space)).await
}

/// `GET /apps/{app}-{space}/log-drains/{id}`.
pub async fn get_app(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
) -> Result<Json<DrainView>, ApiError> {
    let realm = writer(&caller)?;
    let (app, space) = app_key(&key)?;
    let d = one(&state, realm, &id, is_app(&app, &space)).await?;
    Ok(Json(view(&state, d).await))
}

/// `DELETE /apps/{app}-{space}/log-drains/{id}`.
pub async fn delete_app(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
) -> Result<Json<DrainView>, ApiError> {
    let realm = writer(&caller)?;
    let (app, space) = app_key(&key)?;
    remove(&state, realm, id, is_app(&app, &space)).await
}

fn site_key(site: &str) -> Result<Select, ApiError> {
    if site.is_empty() {
        return Err(ApiError::Unprocessable("site is empty".into()));
    }
    Ok(Select::Site {
        site: site.to_string(),
    })
}

/// `POST /sites/{site}/log-drains`.
pub async fn create_site(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(site): Path<String>,
    AnyJson(n): AnyJson<NewDrain>,
) -> Result<Response, ApiError> {
    let realm = writer(&caller)?;
    let select = site_key(&site)?;
    create(&state, realm, select, n.url, n.framing).await
}

/// `GET /sites/{site}/log-drains`.
pub async fn list_site(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(site): Path<String>,
) -> Result<Json<Vec<DrainView>>, ApiError> {
    let realm = writer(&caller)?;
    list(&state, realm, is_site(&site)).await
}

/// `GET /sites/{site}/log-drains/{id}`.
pub async fn get_site(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((site, id)): Path<(String, String)>,
) -> Result<Json<DrainView>, ApiError> {
    let realm = writer(&caller)?;
    let d = one(&state, realm, &id, is_site(&site)).await?;
    Ok(Json(view(&state, d).await))
}

/// `DELETE /sites/{site}/log-drains/{id}`.
pub async fn delete_site(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((site, id)): Path<(String, String)>,
) -> Result<Json<DrainView>, ApiError> {
    let realm = writer(&caller)?;
    remove(&state, realm, id, is_site(&site)).await
}

/// `POST /v1/drains`: a drain on a query filter.
pub async fn create_filter(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    AnyJson(n): AnyJson<NewFilterDrain>,
) -> Result<Response, ApiError> {
    let realm = writer(&caller)?;
    for t in &n.terms {
        sealog_query::Filter::default()
            .with_where(t)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    }
    let select = Select::Filter {
        terms: n.terms,
        q: n.q,
    };
    create(&state, realm, select, n.url, n.framing).await
}

/// `GET /v1/drains`: every drain of the realm.
pub async fn list_all(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<DrainView>>, ApiError> {
    let realm = writer(&caller)?;
    list(&state, realm, |_| true).await
}

/// `GET /v1/drains/{id}`.
pub async fn get_any(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DrainView>, ApiError> {
    let realm = writer(&caller)?;
    let d = one(&state, realm, &id, |_| true).await?;
    Ok(Json(view(&state, d).await))
}

/// `DELETE /v1/drains/{id}`.
pub async fn delete_any(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DrainView>, ApiError> {
    let realm = writer(&caller)?;
    remove(&state, realm, id, |_| true).await
}

/// `GET /octhc`: logshuttle's health text (no token, as logshuttle).
pub async fn octhc(State(state): State<Arc<AppState>>) -> Response {
    let data_ok = state
        .data_dir()
        .is_ok_and(|d| d.root().join("sealog.meta").exists());
    let text = if data_ok {
        "overall_status=good"
    } else {
        "overall_status=bad,storage_check=failed"
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// `POST /log-sessions`: a write or query token of the realm.
pub async fn create_session(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    AnyJson(n): AnyJson<NewSession>,
) -> Result<Response, ApiError> {
    let realm = match caller.0.info.scope {
        Scope::Write | Scope::Query => caller.0.info.realm.clone(),
        Scope::Admin => {
            return Err(ApiError::Forbidden {
                have: "admin".into(),
                want: "open a log session (a realm's write or query token can)",
            })
        }
    };
    let field = |name: &str, v: &str| -> Result<(), ApiError> {
        if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
            return Err(ApiError::Unprocessable(format!(
                "{name} must be 1 to 256 bytes without control characters"
            )));
        }
        Ok(())
    };
    let select = match (n.app, n.space, n.site) {
        (Some(app), Some(space), None) => {
            field("app", &app)?;
            field("space", &space)?;
            Select::App { app, space }
        }
        (None, None, Some(site)) => {
            field("site", &site)?;
            Select::Site { site }
        }
        _ => {
            return Err(ApiError::Unprocessable(
                "a log session needs app and space, or site".into(),
            ))
        }
    };
    let max = state.config.drains.session_max_lines;
    let lines = n.lines.unwrap_or(100);
    let lines = usize::try_from(lines)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| ApiError::Unprocessable(format!("lines must be at most {max}")))?;
    let ttl = std::time::Duration::from_secs(state.config.drains.session_ttl_secs.max(1));
    let id = state
        .sessions
        .create(Session {
            realm,
            select,
            lines,
            tail: n.tail.unwrap_or(false),
            expires: std::time::Instant::now() + ttl,
            grant: caller.0,
        })
        .ok_or(ApiError::Overloaded(
            "too many log sessions (of this realm or in all); they expire after session_ttl_secs",
        ))?;
    let base = match &state.config.drains.session_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
                .map_or_else(|| state.config.http.to_string(), str::to_string);
            format!("http://{host}")
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(CreatedSession {
            logplex_url: format!("{base}/log-sessions/{id}"),
            id,
        }),
    )
        .into_response())
}

/// `GET /log-sessions/{id}`: the id is the credential.
pub async fn read_session(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let session = state
        .sessions
        .get(&state, &id)
        .ok_or_else(|| ApiError::NotFound("no such log session (or it expired)".into()))?;
    let realm = state.realm_async(&session.realm).await?;
    let permits = state.tail_permits(&realm)?;
    let body = crate::drain::session::body(state.clone(), &realm, session, permits)
        .map_err(ApiError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}
