//! API errors and the one place they become HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One refused input line (or array element) of an ingest request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LineError {
    /// 1-based line number (NDJSON) or 0-based index (JSON array).
    pub line: usize,
    /// Why it was refused.
    pub reason: String,
}

/// Everything an API handler can answer with besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or a malformed Authorization header.
    #[error("missing or malformed bearer token")]
    Unauthenticated,
    /// The token is unknown or revoked (not saying which).
    #[error("token is not valid")]
    BadToken,
    /// The token's scope does not allow this.
    #[error("token scope {have} cannot {want}")]
    Forbidden {
        /// The token's scope.
        have: String,
        /// What was attempted.
        want: &'static str,
    },
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Some ingest lines are invalid; nothing was committed.
    #[error("{count} invalid line(s); nothing was committed")]
    BadLines {
        /// How many.
        count: usize,
        /// Which, with reasons (the first 100).
        lines: Vec<LineError>,
    },
    /// The request body stalled.
    #[error("{0}")]
    Timeout(String),
    /// The body's encoding or media type is not one the route takes.
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// The method is not allowed on this route.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The body is well-formed but not what the route takes (a JSON body
    /// with a missing or unknown field).
    #[error("{0}")]
    Unprocessable(String),
    /// The body is too large.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not found.
    #[error("{0}")]
    NotFound(String),
    /// A conflict (e.g. the realm exists).
    #[error("{0}")]
    Conflict(String),
    /// Overloaded: retry after the given seconds.
    #[error("{0}; retry later")]
    Overloaded(&'static str),
    /// Shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// The realm's storage is full: 507 with `Retry-After`.
    #[error("{0}")]
    StorageFull(String),
    /// The realm refuses writes for now (after a write failure): 503 with
    /// `Retry-After`.
    #[error("{0}")]
    Unavailable(String),
    /// The realm failed to open or an integrity check: 503, no retry hint.
    #[error("realm {realm:?} is failed: {reason}")]
    RealmFailed {
        /// The realm.
        realm: String,
        /// Why.
        reason: String,
    },
    /// Something failed inside; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

/// The one JSON body of every refusal.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub(crate) struct Body<'a> {
    /// What was refused and why.
    error: String,
    /// The refused lines of an ingest batch (the first 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    lines: Option<&'a [LineError]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthenticated | ApiError::BadToken => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) | ApiError::BadLines { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Overloaded(_) | ApiError::ShuttingDown | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::RealmFailed { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(detail) => {
                tracing::error!(cause = %detail, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let lines = match &self {
            ApiError::BadLines { lines, .. } => Some(lines.as_slice()),
            _ => None,
        };
        let body = Body {
            error: self.to_string(),
            lines,
        };
        let retry_after = match &self {
            ApiError::RealmFailed { .. } => None,
            ApiError::StorageFull(_) => Some("5"),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some("1"),
            _ => None,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<crate::realm::CommitError> for ApiError {
    fn from(e: crate::realm::CommitError) -> Self {
        use crate::realm::CommitError as C;
        match e {
            C::StorageFull(_) => ApiError::StorageFull(e.to_string()),
            C::Poisoned(_) => ApiError::Unavailable(e.to_string()),
            C::Failed(reason) => ApiError::RealmFailed {
                realm: String::new(),
                reason,
            },
            C::Invalid(m) => ApiError::BadRequest(m),
            C::Closed => ApiError::ShuttingDown,
            C::Io(m) => ApiError::Internal(format!("commit failed: {m}")),
        }
    }
}

impl From<sealog_journal::JournalError> for ApiError {
    fn from(e: sealog_journal::JournalError) -> Self {
        match e {
            sealog_journal::JournalError::OutOfRange { .. }
            | sealog_journal::JournalError::Proof(_) => ApiError::BadRequest(e.to_string()),
            // Committed data (or its derived hashes) read back damaged: the
            // route fails the realm ([`crate::realm::RealmHandle::fail`]).
            e if e.is_integrity() || matches!(e, sealog_journal::JournalError::Format { .. }) => {
                ApiError::RealmFailed {
                    realm: String::new(),
                    reason: e.to_string(),
                }
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<sealog_query::QueryError> for ApiError {
    fn from(e: sealog_query::QueryError) -> Self {
        match e {
            sealog_query::QueryError::Journal(j) => ApiError::from(j),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<sealog_store::StoreError> for ApiError {
    fn from(e: sealog_store::StoreError) -> Self {
        use sealog_store::StoreError as S;
        match e {
            S::UnknownRealm(_) | S::UnknownToken(_) => ApiError::NotFound(e.to_string()),
            S::RealmExists(_) | S::DrainExists(_) => ApiError::Conflict(e.to_string()),
            S::UnknownDrain(_) => ApiError::NotFound(e.to_string()),
            S::InvalidDrain(_) => ApiError::Unprocessable(e.to_string()),
            S::RealmName(_) => ApiError::BadRequest(e.to_string()),
            S::BadToken => ApiError::BadToken,
            S::Io { ref source, .. } if sealog_journal::fs::is_storage_full(source) => {
                ApiError::StorageFull(format!(
                    "storage is full; nothing was changed; retry once space is freed ({e})"
                ))
            }
            S::Journal(ref j) if j.is_storage_full() => ApiError::StorageFull(format!(
                "storage is full; nothing was changed; retry once space is freed ({e})"
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A JSON request body: axum's `Json` with its rejections answered in the
/// API's one error shape (415 without a JSON content type, 400 for bad
/// syntax, 422 for a missing or unknown field, 413 past the limit).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection as R;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(R::MissingJsonContentType(_)) => Err(ApiError::UnsupportedEncoding(
                "send the body as Content-Type: application/json".into(),
            )),
            Err(R::JsonSyntaxError(e)) => Err(ApiError::BadRequest(format!(
                "body is not valid JSON: {}",
                std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string())
            ))),
            Err(R::JsonDataError(e)) => Err(ApiError::Unprocessable(format!(
                "body does not fit: {}",
                std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string())
            ))),
            Err(R::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge {
                    limit: 2 * 1024 * 1024,
                })
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}
