//! Tokens: random secrets prefixed by scope, stored only as SHA-256 hashes.
//!
//! A token is `slw_` (write), `slq_` (query) or `sla_` (admin) followed by
//! 43 characters of URL-safe base64 (32 random bytes). Each has a public id
//! (`tok_` + 16 hex digits) for listing and revoking. Checking a token hashes
//! it and compares against every stored hash in constant time, so neither
//! timing nor the error says whether a token exists.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use rand::RngCore;
use sealog_event::RealmName;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{meta, now, DataDir, Result, StoreError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Append to one realm.
    Write,
    /// Read, query, tail and prove one realm.
    Query,
    /// Manage realms and tokens.
    Admin,
}

impl Scope {
    /// The scope named `s` (`write`, `query`, `admin`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "write" => Some(Scope::Write),
            "query" => Some(Scope::Query),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Scope::Write => "slw_",
            Scope::Query => "slq_",
            Scope::Admin => "sla_",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Write => "write",
            Scope::Query => "query",
            Scope::Admin => "admin",
        })
    }
}

/// A stored token (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// The realm (empty for admin tokens).
    pub realm: String,
    /// The scope.
    pub scope: Scope,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// When it was issued.
    pub created_at: String,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A freshly issued token: the only time the secret is seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedToken {
    /// Public id.
    pub id: String,
    /// The realm.
    pub realm: String,
    /// The scope.
    pub scope: Scope,
    /// The secret.
    pub token: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenInfo>,
}

/// `name` as a realm name; a name that cannot be one names no realm.
fn known_name(name: &str) -> Result<RealmName> {
    RealmName::new(name).map_err(|_| StoreError::UnknownRealm(name.to_string()))
}

fn hash_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token for `realm` (empty for an admin token) and `scope`: the
/// record to store (its SHA-256, never the secret) and what to hand out
/// once. Any store of tokens mints them here.
pub fn mint(realm: &str, scope: Scope) -> (TokenInfo, IssuedToken) {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = format!("{}{}", scope.prefix(), B64URL.encode(secret));
    let mut idb = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut idb);
    let id = format!("tok_{}", hex::encode(idb));
    let info = TokenInfo {
        id: id.clone(),
        realm: realm.to_string(),
        scope,
        sha256: hash_hex(&token),
        created_at: now(),
        revoked_at: None,
    };
    (
        info,
        IssuedToken {
            id,
            realm: realm.to_string(),
            scope,
            token,
        },
    )
}

impl DataDir {
    fn load_tokens(&self) -> Result<TokenFile> {
        let path = self.root.join("tokens.meta");
        if !self.fs.exists(&path) {
            return Ok(TokenFile::default());
        }
        meta::read(&*self.fs, &path, "sealog-tokens")
    }

    fn save_tokens(&self, f: &TokenFile) -> Result<()> {
        meta::write(
            &*self.fs,
            &self.root.join("tokens.meta"),
            "sealog-tokens",
            f,
            0o600,
        )
    }

    /// Issues a token for `realm` (ignored for admin tokens).
    ///
    /// # Errors
    /// Unknown realm (a name that is not a valid realm name is unknown
    /// too); I/O errors.
    pub fn issue_token(&mut self, realm: &str, scope: Scope) -> Result<IssuedToken> {
        let mut t = self.issue_tokens(realm, &[scope])?;
        Ok(t.remove(0))
    }

    /// Issues one token per scope for `realm` in one write of the token
    /// file: all of them are stored, or none.
    ///
    /// # Errors
    /// Unknown realm; I/O errors.
    pub fn issue_tokens(&mut self, realm: &str, scopes: &[Scope]) -> Result<Vec<IssuedToken>> {
        let pairs: Vec<(&str, Scope)> = scopes.iter().map(|&s| (realm, s)).collect();
        self.issue_tokens_for(&pairs)
    }

    /// Issues a token per (realm, scope) pair, in order, in one write of
    /// the token file: all of them are stored, or none.
    ///
    /// # Errors
    /// Unknown realm; I/O errors.
    pub fn issue_tokens_for(&mut self, pairs: &[(&str, Scope)]) -> Result<Vec<IssuedToken>> {
        let mut f = self.load_tokens()?;
        let mut out = Vec::with_capacity(pairs.len());
        for &(realm, scope) in pairs {
            let realm = if scope == Scope::Admin {
                String::new()
            } else {
                self.realm(&known_name(realm)?)?.name
            };
            let (info, issued) = mint(&realm, scope);
            f.tokens.push(info);
            out.push(issued);
        }
        self.save_tokens(&f)?;
        Ok(out)
    }

    /// Tokens, optionally of one realm.
    ///
    /// # Errors
    /// Unknown realm; I/O and format errors.
    pub fn tokens(&self, realm: Option<&str>) -> Result<Vec<TokenInfo>> {
        if let Some(r) = realm {
            self.realm(&known_name(r)?)?;
        }
        let f = self.load_tokens()?;
        Ok(f.tokens
            .into_iter()
            .filter(|t| realm.is_none_or(|r| t.realm == r))
            .collect())
    }

    /// Revokes a token by id; it stops working at once.
    ///
    /// # Errors
    /// [`StoreError::UnknownToken`]; I/O errors.
    pub fn revoke_token(&mut self, id: &str) -> Result<TokenInfo> {
        let mut f = self.load_tokens()?;
        let t = f
            .tokens
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| StoreError::UnknownToken(id.to_string()))?;
        if t.revoked_at.is_none() {
            t.revoked_at = Some(now());
        }
        let out = t.clone();
        self.save_tokens(&f)?;
        Ok(out)
    }

    /// Finds the live token matching `token`, comparing hashes in constant time.
    ///
    /// # Errors
    /// [`StoreError::BadToken`] for an unknown or revoked token.
    pub fn authenticate(&self, token: &str) -> Result<TokenInfo> {
        let want = Sha256::digest(token.as_bytes());
        let f = self.load_tokens()?;
        let mut found = None;
        for t in &f.tokens {
            let stored = hex::decode(&t.sha256).unwrap_or_default();
            if bool::from(stored.ct_eq(want.as_slice())) {
                found = Some(t);
            }
        }
        match found {
            Some(t) if t.revoked_at.is_none() => Ok(t.clone()),
            _ => Err(StoreError::BadToken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rn(name: &str) -> RealmName {
        RealmName::new(name).expect("a valid realm name")
    }

    #[test]
    fn issue_authenticate_revoke() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut dd = DataDir::open(d.path(), "test").expect("open");
        let c = dd.create_realm(&rn("acme")).expect("create");
        assert!(c.write_token.starts_with("slw_") && c.write_token.len() == 47);
        let w = dd.authenticate(&c.write_token).expect("valid");
        assert_eq!((w.realm.as_str(), w.scope), ("acme", Scope::Write));
        assert_eq!(
            dd.authenticate(&c.query_token).expect("valid").scope,
            Scope::Query
        );
        // Only hashes are on disk.
        let on_disk = std::fs::read_to_string(d.path().join("tokens.meta")).expect("read");
        assert!(!on_disk.contains(&c.write_token));
        assert!(on_disk.contains(&hash_hex(&c.write_token)));
        dd.revoke_token(&w.id).expect("revoke");
        assert!(matches!(
            dd.authenticate(&c.write_token),
            Err(StoreError::BadToken)
        ));
        assert!(matches!(
            dd.authenticate("slw_nope"),
            Err(StoreError::BadToken)
        ));
        assert!(matches!(
            dd.revoke_token("tok_missing"),
            Err(StoreError::UnknownToken(_))
        ));
        let admin = dd.issue_token("", Scope::Admin).expect("admin");
        assert_eq!(
            dd.authenticate(&admin.token).expect("valid").scope,
            Scope::Admin
        );
        assert_eq!(dd.tokens(Some("acme")).expect("list").len(), 2);
        assert_eq!(dd.tokens(None).expect("list").len(), 3);
    }
}
