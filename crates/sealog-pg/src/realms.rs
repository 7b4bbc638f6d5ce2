//! [`PgRealms`]: realms, their signing keys and hashed tokens in
//! PostgreSQL, behind the same [`RealmStore`] interface as the data
//! directory.
//!
//! A token is looked up by the SHA-256 of the secret (an indexed column),
//! never by the secret: the lookup's timing depends on a hash an attacker
//! cannot steer byte by byte, which is what the data directory's
//! constant-time comparison protects too.

use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use postgres::Client;
use sealog_event::RealmName;
use sealog_journal::checkpoint::{origin_for, Signer, VerifierKey};
use sealog_journal::JournalError;
use sealog_store::{
    check_destination, check_room, clean_cursor, mint, new_drain, CreatedRealm, DrainCursor,
    DrainInfo, DrainStore, IssuedToken, RealmStore, Scope, Select, StoreError, StoredFraming,
    TokenInfo,
};
use sha2::{Digest, Sha256};

use crate::db;

/// Realms, keys and tokens in a PostgreSQL database.
pub struct PgRealms {
    db: Mutex<Client>,
}

impl std::fmt::Debug for PgRealms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRealms").finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, StoreError>;

fn store(op: &'static str) -> impl Fn(postgres::Error) -> StoreError {
    move |e| StoreError::Journal(db(op, &e))
}

/// `name` as a realm name; a name that cannot be one names no realm.
fn known(name: &str) -> Result<RealmName> {
    RealmName::new(name).map_err(|_| StoreError::UnknownRealm(name.to_string()))
}

fn token_row(r: &postgres::Row) -> Result<TokenInfo> {
    let op = "reading a token from PostgreSQL";
    let get = || -> std::result::Result<_, postgres::Error> {
        Ok((
            r.try_get::<_, String>(0)?,
            r.try_get::<_, String>(1)?,
            r.try_get::<_, String>(2)?,
            r.try_get::<_, Vec<u8>>(3)?,
            r.try_get::<_, String>(4)?,
            r.try_get::<_, Option<String>>(5)?,
        ))
    };
    let (id, realm, scope, sha, created_at, revoked_at) = get().map_err(store(op))?;
    let scope = Scope::parse(&scope).ok_or_else(|| {
        StoreError::Journal(JournalError::Store {
            op,
            reason: format!("token {id} has scope {scope:?}"),
        })
    })?;
    Ok(TokenInfo {
        id,
        realm,
        scope,
        sha256: hex::encode(sha),
        created_at,
        revoked_at,
    })
}

const TOKEN_COLUMNS: &str = "id, realm, scope, sha256, created_at, revoked_at";

const DRAIN_COLUMNS: &str = "id, realm, select_json, url, framing, created_at, updated_at";

fn bad_row(op: &'static str, reason: String) -> StoreError {
    StoreError::Journal(JournalError::Store { op, reason })
}

fn framing_name(f: StoredFraming) -> &'static str {
    match f {
        StoredFraming::Newline => "newline",
        StoredFraming::OctetCounting => "octet-counting",
    }
}

fn drain_row(r: &postgres::Row) -> Result<DrainInfo> {
    let op = "reading a drain from PostgreSQL";
    let get = || -> std::result::Result<_, postgres::Error> {
        Ok((
            r.try_get::<_, String>(0)?,
            r.try_get::<_, String>(1)?,
            r.try_get::<_, String>(2)?,
            r.try_get::<_, String>(3)?,
            r.try_get::<_, String>(4)?,
            r.try_get::<_, String>(5)?,
            r.try_get::<_, String>(6)?,
        ))
    };
    let (id, realm, select, url, framing, created_at, updated_at) = get().map_err(store(op))?;
    let select: Select = serde_json::from_str(&select)
        .map_err(|e| bad_row(op, format!("drain {id}'s selection does not parse: {e}")))?;
    let framing = match framing.as_str() {
        "newline" => StoredFraming::Newline,
        "octet-counting" => StoredFraming::OctetCounting,
        other => return Err(bad_row(op, format!("drain {id} has framing {other:?}"))),
    };
    Ok(DrainInfo {
        id,
        realm,
        select,
        url,
        framing,
        created_at,
        updated_at,
    })
}

/// Advisory lock key space for "adding a drain to this realm" (a drain's
/// checks against the realm's other drains and its insert are one step).
const DRAIN_LOCK: &str = "sealog-drains:";

impl PgRealms {
    /// Connects to `url` (bringing the schema up to date).
    ///
    /// # Errors
    /// The database unreachable; a schema newer than this build.
    pub fn connect(url: &str) -> std::result::Result<Self, JournalError> {
        Ok(Self {
            db: Mutex::new(crate::connect(url)?),
        })
    }

    /// Connects to `url` to check tokens and read keys only: the schema
    /// must already be up to date, and no right to change it is needed.
    ///
    /// # Errors
    /// The database unreachable; a schema at another version.
    pub fn connect_reader(url: &str) -> std::result::Result<Self, JournalError> {
        Ok(Self {
            db: Mutex::new(crate::connect_reader(url)?),
        })
    }

    /// The realm's Ed25519 signing key (for `sealog migrate --from-postgres`,
    /// which keeps a realm's key so its checkpoints stay valid).
    ///
    /// # Errors
    /// [`StoreError::UnknownRealm`] when the realm or its key is not here;
    /// database errors.
    pub fn signing_key(&self, name: &RealmName) -> Result<SigningKey> {
        let op = "reading the realm's signing key from PostgreSQL";
        let row = self
            .client()
            .query_opt(
                "SELECT ed25519_seed FROM sealog_realm_keys WHERE realm = $1",
                &[&name.as_str()],
            )
            .map_err(store(op))?
            // A realm made by a migration has no key here: it cannot be
            // written in this database.
            .ok_or_else(|| StoreError::UnknownRealm(name.to_string()))?;
        let seed: Vec<u8> = row.try_get(0).map_err(store(op))?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| {
            StoreError::Journal(JournalError::Store {
                op,
                reason: "the stored seed is not 32 bytes".into(),
            })
        })?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// Keeps `key` as the signing key of `name` (a realm `sealog migrate`
    /// brought in keeps its key, so the cluster's writers can write it). A
    /// key already there stays; either way it must match the realm's public
    /// key.
    ///
    /// # Errors
    /// No such realm; a key that does not match; database errors.
    pub fn keep_key(&self, name: &RealmName, key: &SigningKey) -> Result<()> {
        let op = "storing the realm's signing key in PostgreSQL";
        let vk = self.verifier_key(name)?;
        if Signer::new(origin_for(name), key.clone()).verifier() != vk {
            return Err(StoreError::Journal(JournalError::Store {
                op,
                reason: format!("the key is not realm {name}'s"),
            }));
        }
        self.client()
            .execute(
                "INSERT INTO sealog_realm_keys (realm, ed25519_seed) VALUES ($1, $2) ON CONFLICT (realm) DO NOTHING",
                &[&name.as_str(), &key.to_bytes().as_slice()],
            )
            .map_err(store(op))?;
        if self.signing_key(name)?.to_bytes() != key.to_bytes() {
            return Err(StoreError::Journal(JournalError::Store {
                op,
                reason: format!("realm {name} already has another signing key here"),
            }));
        }
        Ok(())
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn require_realm(c: &mut Client, name: &str) -> Result<()> {
        let n = c
            .query_opt("SELECT 1 FROM sealog_realms WHERE name = $1", &[&name])
            .map_err(store("reading the realm from PostgreSQL"))?;
        n.map(|_| ())
            .ok_or_else(|| StoreError::UnknownRealm(name.to_string()))
    }

    fn insert_token(t: &mut postgres::Transaction<'_>, info: &TokenInfo) -> Result<()> {
        let sha = hex::decode(&info.sha256).unwrap_or_default();
        t.execute(
            "INSERT INTO sealog_tokens (id, realm, scope, sha256, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&info.id, &info.realm, &info.scope.to_string(), &sha, &info.created_at],
        )
        .map_err(store("storing a token in PostgreSQL"))?;
        Ok(())
    }
}

impl RealmStore for PgRealms {
    fn create_realm(&mut self, name: &RealmName) -> Result<CreatedRealm> {
        let op = "creating the realm in PostgreSQL";
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let signer = Signer::new(origin_for(name), key.clone());
        let public_key = signer.verifier().to_string();
        let mut c = self.client();
        let mut t = c.transaction().map_err(store(op))?;
        let n = t
            .execute(
                "INSERT INTO sealog_realms (name, verifier) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name.as_str(), &public_key],
            )
            .map_err(store(op))?;
        if n == 0 {
            return Err(StoreError::RealmExists(name.to_string()));
        }
        t.execute(
            "INSERT INTO sealog_realm_keys (realm, ed25519_seed) VALUES ($1, $2)",
            &[&name.as_str(), &key.to_bytes().as_slice()],
        )
        .map_err(store(op))?;
        let (w, write) = mint(name.as_str(), Scope::Write);
        let (q, query) = mint(name.as_str(), Scope::Query);
        Self::insert_token(&mut t, &w)?;
        Self::insert_token(&mut t, &q)?;
        t.commit().map_err(store(op))?;
        Ok(CreatedRealm {
            realm: name.to_string(),
            write_token: write.token,
            query_token: query.token,
            public_key,
        })
    }

    fn realm_names(&self) -> Result<Vec<String>> {
        let rows = self
            .client()
            .query("SELECT name FROM sealog_realms ORDER BY name", &[])
            .map_err(store("listing realms in PostgreSQL"))?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(store("listing realms in PostgreSQL")))
            .collect()
    }

    fn verifier_key(&self, name: &RealmName) -> Result<VerifierKey> {
        let op = "reading the realm's key from PostgreSQL";
        let row = self
            .client()
            .query_opt(
                "SELECT verifier FROM sealog_realms WHERE name = $1",
                &[&name.as_str()],
            )
            .map_err(store(op))?
            .ok_or_else(|| StoreError::UnknownRealm(name.to_string()))?;
        let text: String = row.try_get(0).map_err(store(op))?;
        text.parse().map_err(|e| {
            StoreError::Journal(JournalError::Store {
                op,
                reason: format!("realm {name}'s verifier key does not parse: {e}"),
            })
        })
    }

    fn realm_signer(&self, name: &RealmName) -> Result<Signer> {
        let op = "reading the realm's signing key from PostgreSQL";
        let vk = self.verifier_key(name)?;
        let signer = Signer::new(origin_for(name), self.signing_key(name)?);
        if signer.verifier() != vk {
            return Err(StoreError::Journal(JournalError::Store {
                op,
                reason: format!("realm {name}'s signing key does not match its public key"),
            }));
        }
        Ok(signer)
    }

    fn issue_token(&mut self, realm: &str, scope: Scope) -> Result<IssuedToken> {
        let op = "issuing a token in PostgreSQL";
        let realm = if scope == Scope::Admin {
            String::new()
        } else {
            known(realm)?.to_string()
        };
        let mut c = self.client();
        if scope != Scope::Admin {
            Self::require_realm(&mut c, &realm)?;
        }
        let (info, issued) = mint(&realm, scope);
        let mut t = c.transaction().map_err(store(op))?;
        Self::insert_token(&mut t, &info)?;
        t.commit().map_err(store(op))?;
        Ok(issued)
    }

    fn tokens(&self, realm: Option<&str>) -> Result<Vec<TokenInfo>> {
        let op = "listing tokens in PostgreSQL";
        let mut c = self.client();
        let rows = match realm {
            Some(r) => {
                let r = known(r)?;
                Self::require_realm(&mut c, r.as_str())?;
                c.query(
                    &format!("SELECT {TOKEN_COLUMNS} FROM sealog_tokens WHERE realm = $1 ORDER BY created_at, id"),
                    &[&r.as_str()],
                )
            }
            None => c.query(
                &format!("SELECT {TOKEN_COLUMNS} FROM sealog_tokens ORDER BY created_at, id"),
                &[],
            ),
        }
        .map_err(store(op))?;
        rows.iter().map(token_row).collect()
    }

    fn revoke_token(&mut self, id: &str) -> Result<TokenInfo> {
        let op = "revoking a token in PostgreSQL";
        let now = sealog_event::format_rfc3339_nanos(sealog_event::now_ns());
        let row = self
            .client()
            .query_opt(
                &format!("UPDATE sealog_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING {TOKEN_COLUMNS}"),
                &[&id, &now],
            )
            .map_err(store(op))?
            .ok_or_else(|| StoreError::UnknownToken(id.to_string()))?;
        token_row(&row)
    }

    fn authenticate(&self, token: &str) -> Result<TokenInfo> {
        let want = Sha256::digest(token.as_bytes());
        let row = self
            .client()
            .query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM sealog_tokens WHERE sha256 = $1"),
                &[&want.as_slice()],
            )
            .map_err(store("checking a token in PostgreSQL"))?;
        match row.map(|r| token_row(&r)).transpose()? {
            Some(t) if t.revoked_at.is_none() => Ok(t),
            _ => Err(StoreError::BadToken),
        }
    }
}

impl DrainStore for PgRealms {
    fn drains(&self, realm: Option<&str>) -> Result<Vec<DrainInfo>> {
        let op = "listing drains in PostgreSQL";
        let mut c = self.client();
        let rows = match realm {
            Some(r) => c.query(
                &format!("SELECT {DRAIN_COLUMNS} FROM sealog_drains WHERE realm = $1 ORDER BY n"),
                &[&r],
            ),
            None => c.query(
                &format!("SELECT {DRAIN_COLUMNS} FROM sealog_drains ORDER BY n"),
                &[],
            ),
        }
        .map_err(store(op))?;
        rows.iter().map(drain_row).collect()
    }

    fn add_drain(
        &mut self,
        realm: &str,
        select: Select,
        url: &str,
        framing: StoredFraming,
    ) -> Result<DrainInfo> {
        let op = "adding a drain in PostgreSQL";
        let realm = known(realm)?.to_string();
        let mut c = self.client();
        Self::require_realm(&mut c, &realm)?;
        check_destination(&select, url)?;
        let mut t = c.transaction().map_err(store(op))?;
        // Two adds to one realm at once (two query nodes) are checked
        // against each other, not each against the drains before both.
        t.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))",
            &[&DRAIN_LOCK, &realm],
        )
        .map_err(store(op))?;
        let mine = t
            .query(
                &format!("SELECT {DRAIN_COLUMNS} FROM sealog_drains WHERE realm = $1 ORDER BY n"),
                &[&realm],
            )
            .map_err(store(op))?
            .iter()
            .map(drain_row)
            .collect::<Result<Vec<_>>>()?;
        check_room(&realm, &mine.iter().collect::<Vec<_>>(), &select, url)?;
        let d = new_drain(realm, select, url, framing);
        let select_json = serde_json::to_string(&d.select)
            .map_err(|e| bad_row(op, format!("the selection does not serialize: {e}")))?;
        t.execute(
            "INSERT INTO sealog_drains (id, realm, select_json, url, framing, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&d.id, &d.realm, &select_json, &d.url, &framing_name(d.framing), &d.created_at, &d.updated_at],
        )
        .map_err(store(op))?;
        t.commit().map_err(store(op))?;
        Ok(d)
    }

    fn remove_drain(&mut self, realm: &str, id: &str) -> Result<DrainInfo> {
        let row = self
            .client()
            .query_opt(
                &format!("DELETE FROM sealog_drains WHERE id = $1 AND realm = $2 RETURNING {DRAIN_COLUMNS}"),
                &[&id, &realm],
            )
            .map_err(store("removing a drain in PostgreSQL"))?
            .ok_or_else(|| StoreError::UnknownDrain(id.to_string()))?;
        drain_row(&row)
    }

    fn drain_cursor(&self, id: &str) -> Result<DrainCursor> {
        let op = "reading a drain cursor from PostgreSQL";
        let row = self
            .client()
            .query_opt(
                "SELECT cursor, delivered, failing FROM sealog_drain_cursors WHERE id = $1",
                &[&id],
            )
            .map_err(store(op))?;
        let Some(row) = row else {
            return Ok(DrainCursor::default());
        };
        let get = || -> std::result::Result<_, postgres::Error> {
            Ok((
                row.try_get::<_, i64>(0)?,
                row.try_get::<_, i64>(1)?,
                row.try_get::<_, Option<String>>(2)?,
            ))
        };
        let (cursor, delivered, failing) = get().map_err(store(op))?;
        let unsigned = |v: i64, what: &str| {
            u64::try_from(v).map_err(|_| bad_row(op, format!("drain {id}'s {what} is {v}")))
        };
        Ok(DrainCursor {
            cursor: unsigned(cursor, "cursor")?,
            delivered: unsigned(delivered, "delivered count")?,
            failing,
        })
    }

    fn save_drain_cursor(&self, id: &str, c: &DrainCursor) -> Result<()> {
        let op = "saving a drain cursor in PostgreSQL";
        let signed = |v: u64, what: &str| {
            i64::try_from(v)
                .map_err(|_| bad_row(op, format!("drain {id}'s {what} {v} is out of range")))
        };
        let c = clean_cursor(c);
        let (cursor, delivered) = (
            signed(c.cursor, "cursor")?,
            signed(c.delivered, "delivered count")?,
        );
        // Only for a drain that still exists: a removed one stays removed.
        let n = self
            .client()
            .execute(
                "INSERT INTO sealog_drain_cursors (id, cursor, delivered, failing)
                 SELECT id, $2, $3, $4 FROM sealog_drains WHERE id = $1
                 ON CONFLICT (id) DO UPDATE SET cursor = $2, delivered = $3, failing = $4",
                &[&id, &cursor, &delivered, &c.failing],
            )
            .map_err(|e| {
                // Removed between the SELECT and the insert: still gone.
                if e.code() == Some(&postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                    StoreError::UnknownDrain(id.to_string())
                } else {
                    store(op)(e)
                }
            })?;
        if n == 0 {
            return Err(StoreError::UnknownDrain(id.to_string()));
        }
        Ok(())
    }
}
