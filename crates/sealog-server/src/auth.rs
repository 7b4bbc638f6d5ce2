//! Bearer-token authentication against the in-memory token table.
//!
//! The table holds SHA-256 hashes only. A presented token is hashed and
//! compared with every live entry in constant time; the answer for an
//! unknown token and a revoked one is the same.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sealog_store::{Scope, TokenInfo};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Hashes of the tokens the server accepts.
#[derive(Debug, Default)]
pub struct TokenTable {
    entries: Vec<([u8; 32], TokenInfo)>,
}

impl TokenTable {
    /// Builds the table from stored tokens (revoked ones are left out).
    pub fn new(tokens: Vec<TokenInfo>) -> Self {
        let entries = tokens
            .into_iter()
            .filter(|t| t.revoked_at.is_none())
            .filter_map(|t| {
                let h: [u8; 32] = hex::decode(&t.sha256).ok()?.try_into().ok()?;
                Some((h, t))
            })
            .collect();
        Self { entries }
    }

    /// The live token matching `token`, if any.
    pub fn find(&self, token: &str) -> Option<&TokenInfo> {
        let want: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (h, info) in &self.entries {
            if bool::from(h.ct_eq(&want)) {
                found = Some(info);
            }
        }
        found
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenInfo);

impl Caller {
    /// The caller's realm if its token has `scope`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] for any other scope.
    pub fn realm_for(&self, scope: Scope, want: &'static str) -> Result<&str, ApiError> {
        if self.0.scope == scope {
            Ok(&self.0.realm)
        } else {
            Err(ApiError::Forbidden {
                have: self.0.scope.to_string(),
                want,
            })
        }
    }

    /// Succeeds for admin tokens.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] otherwise.
    pub fn admin(&self) -> Result<(), ApiError> {
        self.realm_for(Scope::Admin, "administer").map(|_| ())
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated)?;
        let text = value.to_str().map_err(|_| ApiError::Unauthenticated)?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(ApiError::Unauthenticated)?;
        let table = state
            .tokens
            .read()
            .map_err(|_| ApiError::Internal("token table lock poisoned".into()))?;
        let info = table.find(token).ok_or(ApiError::BadToken)?;
        Ok(Caller(info.clone()))
    }
}
