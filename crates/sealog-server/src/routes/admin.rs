//! Admin API: realms and tokens (admin tokens only).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use sealog_store::{CreatedRealm, IssuedToken, Scope, StoreError, TokenInfo};
use serde::Deserialize;

use crate::auth::Admin;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

/// `POST /v1/admin/realms` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRealm {
    /// The realm's name.
    pub name: String,
}

/// `POST /v1/admin/tokens` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The realm.
    pub realm: String,
    /// `write` or `query`.
    pub scope: Scope,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// `GET /v1/admin/realms`
pub async fn list_realms(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    blocking(move || {
        let dd = state.data_dir()?;
        let mut out = Vec::new();
        for (name, info) in dd.realm_entries()? {
            // A realm that failed to open or a verifier pass is listed with
            // its reason, not hidden.
            let failure = state
                .failed
                .read()
                .ok()
                .and_then(|f| f.get(name.as_str()).cloned())
                .or_else(|| state.realm_now(&name).err().map(|e| e.to_string()));
            let mut v = match info {
                Ok(info) => {
                    serde_json::to_value(&info).map_err(|e| ApiError::Internal(e.to_string()))?
                }
                Err(e) => serde_json::json!({"name": name, "error": e.to_string()}),
            };
            if let (Some(o), Some(reason)) = (v.as_object_mut(), failure) {
                o.insert("status".into(), "failed".into());
                o.entry("error").or_insert(reason.into());
            }
            out.push(v);
        }
        Ok(Json(out))
    })
    .await
}

/// `POST /v1/admin/realms`: 201 with the new realm's tokens and key.
pub async fn create_realm(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    ApiJson(req): ApiJson<NewRealm>,
) -> Result<(StatusCode, Json<CreatedRealm>), ApiError> {
    blocking(move || {
        let name = sealog_event::RealmName::new(&req.name).map_err(StoreError::from)?;
        let mut dd = state.data_dir()?;
        let created = dd.create_realm(&name)?;
        let handle = state.start_realm(&dd, &name)?;
        state
            .realms
            .write()
            .map_err(|_| ApiError::Internal("realm table lock poisoned".into()))?
            .insert(req.name.clone(), handle);
        state.publish_realm_counts();
        state.reload_tokens(&dd)?;
        Ok((StatusCode::CREATED, Json(created)))
    })
    .await
}

/// `GET /v1/admin/tokens?realm=R`
pub async fn list_tokens(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let mut realm = None;
    for (k, v) in crate::routes::read::params(raw.as_deref()) {
        match k.as_str() {
            "realm" => realm = Some(v),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    blocking(move || {
        let dd = state.data_dir()?;
        Ok(Json(dd.tokens(realm.as_deref())?))
    })
    .await
}

/// `POST /v1/admin/tokens`: 201 with the secret (shown once).
pub async fn issue_token(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    ApiJson(req): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    if req.scope == Scope::Admin {
        return Err(ApiError::BadRequest(
            "admin tokens are issued only at first start".into(),
        ));
    }
    blocking(move || {
        let mut dd = state.data_dir()?;
        let t = dd.issue_token(&req.realm, req.scope)?;
        state.reload_tokens(&dd)?;
        Ok((StatusCode::CREATED, Json(t)))
    })
    .await
}

/// `DELETE /v1/admin/tokens/{id}`: revokes at once.
pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    blocking(move || {
        let mut dd = state.data_dir()?;
        let t = dd.revoke_token(&id)?;
        state.reload_tokens(&dd)?;
        Ok(Json(t))
    })
    .await
}

/// `POST /v1/admin/verify` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The realm.
    pub realm: String,
    /// Checkpoint notes a client kept.
    #[serde(default)]
    pub checkpoints: Vec<String>,
    /// Receipts a client kept.
    #[serde(default)]
    pub receipts: Vec<sealog_journal::Receipt>,
    /// A verifier key the client pinned: used instead of the one in
    /// `realm.meta`, which an attacker with the disk could have replaced.
    #[serde(default)]
    pub key: Option<String>,
}

/// `POST /v1/admin/retention` body: LogHarbour's cleanup options.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    /// The realm.
    pub realm: String,
    /// Remove the bodies of records older than this many days (≥ 1).
    pub days: u32,
    /// Only entries of this app.
    #[serde(default)]
    pub app: Option<String>,
    /// Only entries of this LogHarbour type (A, C, D).
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    /// Only entries of exactly this priority.
    #[serde(default)]
    pub priority: Option<String>,
    /// Only count what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /v1/admin/retention`: removes the bodies of old records, keeping
/// their leaf hashes and a signed retention record, so every checkpoint and
/// proof still verifies and `verify` reports the ranges as retained out.
pub async fn retention(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    ApiJson(req): ApiJson<RetentionRequest>,
) -> Result<Json<crate::retention::Report>, ApiError> {
    blocking(move || {
        let spec = crate::retention::Spec::new(
            req.days,
            req.app.as_deref(),
            req.typ.as_deref(),
            req.priority.as_deref(),
        )
        .map_err(ApiError::BadRequest)?;
        let name = sealog_event::RealmName::new(&req.realm)
            .map_err(|_| StoreError::UnknownRealm(req.realm.clone()))?;
        let handle = state.realm(name.as_str())?;
        let report = crate::retention::run_shared(
            handle.journal(),
            &spec,
            sealog_event::now_ns(),
            req.dry_run,
            std::time::Duration::from_secs(30),
        )
        .map_err(|e| match e {
            e if e.is_storage_full() => ApiError::StorageFull(format!(
                "storage is full; no acknowledged record was changed; retry once space is freed ({e})"
            )),
            sealog_journal::JournalError::Batch(m) | sealog_journal::JournalError::Format { reason: m, .. } => {
                ApiError::Unavailable(format!("retention did not run: {m}"))
            }
            sealog_journal::JournalError::Poisoned => {
                ApiError::Unavailable("the realm's journal is recovering from a failed write; retry".into())
            }
            other => ApiError::Internal(other.to_string()),
        })?;
        if !req.dry_run && report.removed > 0 {
            tracing::info!(realm = %name, policy = %report.policy, removed = report.removed, record = report.record_id, "retention ran");
        }
        Ok(Json(report))
    })
    .await
}

/// The verifier's report as JSON.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// True when nothing is wrong.
    pub ok: bool,
    /// Records read.
    pub records: u64,
    /// Records covered by the last checkpoint.
    pub committed: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Client checkpoints and receipts checked.
    pub evidence: u64,
    /// Problems, first bad seq first.
    #[schema(value_type = Vec<crate::openapi::VerifyFinding>)]
    pub findings: Vec<serde_json::Value>,
    /// Remarks that are not failures.
    pub notes: Vec<String>,
    /// Records whose bodies retention removed, by retention record.
    #[schema(value_type = Vec<crate::openapi::RetainedOut>)]
    pub retained: Vec<serde_json::Value>,
    /// The key used.
    pub key: String,
}

/// `POST /v1/admin/verify`: runs the offline verifier over a realm's files
/// while the server keeps serving (an append in progress shows as a note).
pub async fn verify(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyReport>, ApiError> {
    blocking(move || {
        let pinned = match &req.key {
            Some(k) => Some(
                k.parse::<sealog_journal::checkpoint::VerifierKey>()
                    .map_err(|e| ApiError::BadRequest(format!("key: {e}")))?,
            ),
            None => None,
        };
        let name = sealog_event::RealmName::new(&req.realm)
            .map_err(|_| StoreError::UnknownRealm(req.realm.clone()))?;
        let (dir, key, require_mark) = {
            let dd = state.data_dir()?;
            let info = dd.realm(&name);
            let key = match pinned {
                Some(k) => k,
                None => dd.verifier_key(&name)?,
            };
            let require_mark = info.map(|i| i.journal_created).unwrap_or(true);
            (dd.journal_dir(&name), key, require_mark)
        };
        if !dir.is_dir() {
            return Ok(Json(VerifyReport {
                ok: false,
                records: 0,
                committed: 0,
                checkpoints: 0,
                evidence: 0,
                findings: vec![serde_json::json!({"seq": 0, "end": null, "reason": "the journal directory is missing", "text": "seq 0: the journal directory is missing"})],
                notes: Vec::new(),
                retained: Vec::new(),
                key: key.to_string(),
            }));
        }
        let evidence = sealog_journal::verify::Evidence {
            checkpoints: req.checkpoints,
            receipts: req.receipts,
            require_mark,
        };
        let r = sealog_journal::verify::verify_dir(&dir, &req.realm, &key, &evidence, &|_| {})?;
        Ok(Json(VerifyReport {
            ok: r.ok(),
            records: r.records,
            committed: r.committed,
            checkpoints: r.checkpoints,
            evidence: r.evidence,
            findings: r
                .findings
                .iter()
                .map(|f| serde_json::json!({"seq": f.seq, "end": f.end, "reason": f.reason, "text": f.to_string()}))
                .collect(),
            notes: r.notes,
            retained: r
                .retained
                .iter()
                .map(|x| serde_json::json!({"id": x.id, "policy": x.policy, "at": sealog_event::format_rfc3339_nanos(x.at_ns), "records": x.records, "ranges": x.ranges.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>()}))
                .collect(),
            key: key.to_string(),
        }))
    })
    .await
}
