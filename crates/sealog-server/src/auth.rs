//! Bearer-token authentication against the in-memory token table.
//!
//! The table holds SHA-256 hashes only. A presented token is hashed, the
//! hash looked up in a map (with 10,000 realms a scan of every entry cost
//! most of a millisecond per request), and the entry found compared with
//! it in constant time. The lookup's timing depends only on the hash of
//! what was presented, under the map's random keys, which tells a guesser
//! nothing about any stored token. The answer for an unknown token and a
//! revoked one is the same.

use std::collections::HashMap;
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
    entries: HashMap<[u8; 32], TokenInfo>,
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

    /// The live token with public id `id`, if any.
    pub fn find_id(&self, id: &str) -> Option<&TokenInfo> {
        self.entries.values().find(|t| t.id == id)
    }

    /// The live token matching `token`, if any.
    pub fn find(&self, token: &str) -> Option<&TokenInfo> {
        let want: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let (h, info) = self.entries.get_key_value(&want)?;
        bool::from(h.ct_eq(&want)).then_some(info)
    }
}

/// A token that was valid when a long-lived session (a tail, a sidecar or
/// syslog connection) began, re-checked before every message, batch or
/// event. The check costs one atomic load while the token table is
/// unchanged; after any issue or revocation it looks the token up again,
/// so a revoked token stops at its next message.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token as it was found.
    pub info: TokenInfo,
    generation: u64,
}

impl Grant {
    /// Finds `token` in the live table.
    ///
    /// # Errors
    /// [`ApiError::BadToken`] for an unknown or revoked token.
    pub fn find(state: &AppState, token: &str) -> Result<Self, ApiError> {
        // Read the generation first: a revocation racing this lookup then
        // shows as a changed generation at the first re-check.
        let generation = state.token_generation();
        let table = state
            .tokens
            .read()
            .map_err(|_| ApiError::Internal("token table lock poisoned".into()))?;
        let info = table.find(token).ok_or(ApiError::BadToken)?.clone();
        Ok(Self { info, generation })
    }

    /// True while the token is still live.
    pub fn still_valid(&mut self, state: &AppState) -> bool {
        let now = state.token_generation();
        if now == self.generation {
            return true;
        }
        let live = state
            .tokens
            .read()
            .map(|t| t.find_id(&self.info.id).is_some())
            .unwrap_or(false);
        if live {
            self.generation = now;
        }
        live
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Grant);

impl Caller {
    /// The caller's realm if its token has `scope`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] for any other scope.
    pub fn realm_for(&self, scope: Scope, want: &'static str) -> Result<&str, ApiError> {
        if self.0.info.scope == scope {
            Ok(&self.0.info.realm)
        } else {
            Err(ApiError::Forbidden {
                have: self.0.info.scope.to_string(),
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
        // `Bearer <token>`, or the bare token as logshuttle's clients send
        // their `AUTH_KEY` (one word: `Basic …` and the like stay refused).
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .or_else(|| (!text.contains(char::is_whitespace)).then_some(text))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(ApiError::Unauthenticated)?;
        let grant = Grant::find(state, token)?;
        Ok(Caller(grant))
    }
}

/// An admin caller. As a request-parts extractor it runs before any body
/// extractor, so a wrong token is answered 401/403 before the body is
/// looked at (never 415 or 422 to a caller who may not call at all).
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.admin()?;
        Ok(Admin(caller))
    }
}
