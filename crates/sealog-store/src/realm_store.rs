//! The realms, keys and tokens interface, and its conformance suite.
//!
//! The data directory keeps realms, their signing keys and hashed tokens
//! in files; the PostgreSQL store (`sealog-pg`) keeps them in tables for
//! the scale-out roles. Both implement [`RealmStore`] and pass
//! [`conformance`].

use sealog_event::RealmName;
use sealog_journal::checkpoint::{Signer, VerifierKey};

use crate::{CreatedRealm, DataDir, IssuedToken, Result, Scope, TokenInfo};

/// Realms with their keys, and tokens, whatever keeps them.
pub trait RealmStore {
    /// Creates a realm with a fresh Ed25519 key and one write and one query
    /// token, all or nothing.
    ///
    /// # Errors
    /// [`crate::StoreError::RealmExists`]; storage errors.
    fn create_realm(&mut self, name: &RealmName) -> Result<CreatedRealm>;
    /// The realms' names, sorted.
    ///
    /// # Errors
    /// Storage errors.
    fn realm_names(&self) -> Result<Vec<String>>;
    /// The realm's verifier key.
    ///
    /// # Errors
    /// [`crate::StoreError::UnknownRealm`]; storage errors.
    fn verifier_key(&self, name: &RealmName) -> Result<VerifierKey>;
    /// The realm's signing key.
    ///
    /// # Errors
    /// [`crate::StoreError::UnknownRealm`]; a key that does not match.
    fn realm_signer(&self, name: &RealmName) -> Result<Signer>;
    /// Issues a token for `realm` (ignored for admin tokens).
    ///
    /// # Errors
    /// [`crate::StoreError::UnknownRealm`]; storage errors.
    fn issue_token(&mut self, realm: &str, scope: Scope) -> Result<IssuedToken>;
    /// Tokens, optionally of one realm (hashes, never secrets).
    ///
    /// # Errors
    /// [`crate::StoreError::UnknownRealm`]; storage errors.
    fn tokens(&self, realm: Option<&str>) -> Result<Vec<TokenInfo>>;
    /// Revokes a token by id; it stops working at once.
    ///
    /// # Errors
    /// [`crate::StoreError::UnknownToken`]; storage errors.
    fn revoke_token(&mut self, id: &str) -> Result<TokenInfo>;
    /// The live token matching `token`.
    ///
    /// # Errors
    /// [`crate::StoreError::BadToken`] for an unknown or revoked token.
    fn authenticate(&self, token: &str) -> Result<TokenInfo>;
}

impl RealmStore for DataDir {
    fn create_realm(&mut self, name: &RealmName) -> Result<CreatedRealm> {
        DataDir::create_realm(self, name)
    }

    fn realm_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.realms()?.into_iter().map(|r| r.name).collect();
        names.sort();
        Ok(names)
    }

    fn verifier_key(&self, name: &RealmName) -> Result<VerifierKey> {
        DataDir::verifier_key(self, name)
    }

    fn realm_signer(&self, name: &RealmName) -> Result<Signer> {
        DataDir::realm_signer(self, name)
    }

    fn issue_token(&mut self, realm: &str, scope: Scope) -> Result<IssuedToken> {
        DataDir::issue_token(self, realm, scope)
    }

    fn tokens(&self, realm: Option<&str>) -> Result<Vec<TokenInfo>> {
        DataDir::tokens(self, realm)
    }

    fn revoke_token(&mut self, id: &str) -> Result<TokenInfo> {
        DataDir::revoke_token(self, id)
    }

    fn authenticate(&self, token: &str) -> Result<TokenInfo> {
        DataDir::authenticate(self, token)
    }
}

/// The checks every [`RealmStore`] must pass; each panics saying what
/// broke.
pub mod conformance {
    use super::RealmStore;
    use crate::{
        DrainCursor, DrainInfo, DrainStore, Scope, Select, StoreError, StoredFraming,
        MAX_DRAINS_PER_REALM,
    };
    use sealog_event::RealmName;
    use sealog_journal::checkpoint::{origin_for, Checkpoint};

    fn rn(s: &str) -> RealmName {
        RealmName::new(s).expect("realm name")
    }

    /// Runs every check on `s`, which must hold no realms.
    pub fn run_all<S: RealmStore>(s: &mut S) {
        realms_keys_and_tokens(s);
        revocation_and_bad_tokens(s);
    }

    /// A created realm has a key that signs for it and two tokens that
    /// authenticate for it with their scopes; only hashes are listed.
    pub fn realms_keys_and_tokens<S: RealmStore>(s: &mut S) {
        let c = s.create_realm(&rn("acme")).expect("create");
        s.create_realm(&rn("beta")).expect("create");
        assert!(
            matches!(s.create_realm(&rn("acme")), Err(StoreError::RealmExists(_))),
            "a taken name is refused"
        );
        assert_eq!(s.realm_names().expect("names"), ["acme", "beta"]);
        let key = s.verifier_key(&rn("acme")).expect("key");
        assert_eq!(key.to_string(), c.public_key);
        assert_eq!(key.name(), origin_for("acme"));
        let signer = s.realm_signer(&rn("acme")).expect("signer");
        let note = signer.sign(&Checkpoint {
            origin: origin_for("acme"),
            size: 1,
            root: [7; 32],
        });
        key.verify(&note.text)
            .expect("the signer signs for the key");
        assert!(
            s.verifier_key(&rn("beta")).expect("key") != key,
            "each realm has its own key"
        );
        assert!(matches!(
            s.verifier_key(&rn("nope")),
            Err(StoreError::UnknownRealm(_))
        ));
        let w = s.authenticate(&c.write_token).expect("write token");
        assert_eq!((w.realm.as_str(), w.scope), ("acme", Scope::Write));
        let q = s.authenticate(&c.query_token).expect("query token");
        assert_eq!((q.realm.as_str(), q.scope), ("acme", Scope::Query));
        let listed = s.tokens(Some("acme")).expect("tokens");
        assert_eq!(listed.len(), 2);
        for t in &listed {
            assert_eq!(t.sha256.len(), 64, "a SHA-256 in hex");
            assert!(!t.sha256.contains(&c.write_token) && t.id.starts_with("tok_"));
        }
        assert_eq!(s.tokens(None).expect("tokens").len(), 4);
        assert!(matches!(
            s.tokens(Some("nope")),
            Err(StoreError::UnknownRealm(_))
        ));
        assert!(matches!(
            s.issue_token("nope", Scope::Write),
            Err(StoreError::UnknownRealm(_))
        ));
    }

    /// Revoked, unknown and malformed tokens are refused alike; admin
    /// tokens belong to no realm.
    pub fn revocation_and_bad_tokens<S: RealmStore>(s: &mut S) {
        let t = s.issue_token("acme", Scope::Query).expect("issue");
        assert!(t.token.starts_with("slq_"));
        assert_eq!(s.authenticate(&t.token).expect("live").id, t.id);
        let r = s.revoke_token(&t.id).expect("revoke");
        assert!(r.revoked_at.is_some());
        assert!(matches!(
            s.authenticate(&t.token),
            Err(StoreError::BadToken)
        ));
        let again = s.revoke_token(&t.id).expect("revoking twice is fine");
        assert_eq!(
            again.revoked_at, r.revoked_at,
            "the first revocation stands"
        );
        assert!(matches!(
            s.revoke_token("tok_missing"),
            Err(StoreError::UnknownToken(_))
        ));
        for bad in [
            "",
            "slw_",
            "slw_nope",
            &t.token[..t.token.len() - 1],
            "' OR 1=1 --",
        ] {
            assert!(
                matches!(s.authenticate(bad), Err(StoreError::BadToken)),
                "{bad:?} is refused"
            );
        }
        let admin = s.issue_token("", Scope::Admin).expect("admin");
        let a = s.authenticate(&admin.token).expect("admin token");
        assert_eq!((a.realm.as_str(), a.scope), ("", Scope::Admin));
    }

    /// Drains and their cursors: checked on the way in, kept oldest first,
    /// owned by one realm, capped, and removed with their cursor. Needs
    /// realms `acme` and `beta` (made by [`realms_keys_and_tokens`]) and no
    /// drains yet.
    pub fn drains<S: RealmStore + DrainStore>(s: &mut S) {
        let app = || Select::App {
            app: "api".into(),
            space: "prod".into(),
        };
        let tls = "syslog+tls://logs.example.com:6514";
        let d = s
            .add_drain("acme", app(), tls, StoredFraming::Newline)
            .expect("add");
        assert_eq!(d.id.len(), 36, "a uuid: {}", d.id);
        assert_eq!(&d.id[14..15], "4", "version 4 uuid: {}", d.id);
        assert_eq!((d.realm.as_str(), d.url.as_str()), ("acme", tls));
        let site = s
            .add_drain(
                "acme",
                Select::Site {
                    site: "www.example.com".into(),
                },
                "https://u:p@h.example.com/logs",
                StoredFraming::OctetCounting,
            )
            .expect("site");
        let filter = s
            .add_drain(
                "acme",
                Select::Filter {
                    terms: vec!["level=error".into()],
                    q: Some("timeout".into()),
                },
                "syslog://h:514",
                StoredFraming::Newline,
            )
            .expect("filter");
        assert_ne!(d.id, site.id);
        let again = s.add_drain("acme", app(), tls, StoredFraming::OctetCounting);
        assert!(
            matches!(again, Err(StoreError::DrainExists(_))),
            "the same url for the same selection is refused: {again:?}"
        );
        let again = s.add_drain(
            "acme",
            Select::Site {
                site: "www.example.com".into(),
            },
            "https://u:p@h.example.com/logs",
            StoredFraming::Newline,
        );
        assert!(
            matches!(&again, Err(StoreError::DrainExists(u)) if u.contains("h.example.com") && !u.contains("u:p")),
            "refused, naming the url without its password: {again:?}"
        );
        for (url, select, want) in [
            ("gopher://h:70", app(), "not supported"),
            ("syslog://h", app(), "explicit port"),
            (
                "syslog://h:514",
                Select::Filter {
                    terms: vec!["nocolon".into()],
                    q: None,
                },
                "field=value",
            ),
            (
                "syslog://h:514",
                Select::Site {
                    site: "a\nb".into(),
                },
                "control characters",
            ),
        ] {
            let e = s
                .add_drain("acme", select, url, StoredFraming::Newline)
                .expect_err(url);
            assert!(
                matches!(e, StoreError::InvalidDrain(_)) && e.to_string().contains(want),
                "{url}: {e}"
            );
        }
        for url in ["syslog://h:514", "gopher://h:70"] {
            let e = s.add_drain("nope", app(), url, StoredFraming::Newline);
            assert!(
                matches!(e, Err(StoreError::UnknownRealm(_))),
                "an unknown realm is named first: {e:?}"
            );
        }
        // Listed oldest first, per realm or all, exactly as added.
        assert_eq!(
            s.drains(Some("acme")).expect("list"),
            vec![d.clone(), site.clone(), filter.clone()]
        );
        assert!(s.drains(Some("beta")).expect("list").is_empty());
        assert_eq!(s.drains(None).expect("all").len(), 3);
        // Another realm neither sees nor removes acme's drains.
        assert!(matches!(
            s.remove_drain("beta", &d.id),
            Err(StoreError::UnknownDrain(_))
        ));
        assert!(matches!(
            s.remove_drain("acme", "not-a-drain"),
            Err(StoreError::UnknownDrain(_))
        ));
        // Cursors: the start until saved, then what was saved.
        assert_eq!(
            s.drain_cursor(&d.id).expect("cursor"),
            DrainCursor::default()
        );
        let c = DrainCursor {
            cursor: 1234,
            delivered: 1300,
            failing: Some("HTTP 403 from the destination".into()),
        };
        s.save_drain_cursor(&d.id, &c).expect("save");
        assert_eq!(s.drain_cursor(&d.id).expect("cursor"), c);
        let c2 = DrainCursor {
            cursor: 2000,
            delivered: 2066,
            failing: None,
        };
        s.save_drain_cursor(&d.id, &c2).expect("save");
        assert_eq!(s.drain_cursor(&d.id).expect("cursor"), c2);
        assert_eq!(
            s.drain_cursor(&site.id).expect("cursor"),
            DrainCursor::default(),
            "each drain has its own cursor"
        );
        // A failure reason quoting a destination's NUL is kept without it.
        let quoted = DrainCursor {
            cursor: 7,
            delivered: 7,
            failing: Some("HTTP 403: \0body".into()),
        };
        s.save_drain_cursor(&site.id, &quoted).expect("save");
        assert_eq!(
            s.drain_cursor(&site.id).expect("cursor").failing.as_deref(),
            Some("HTTP 403: \u{fffd}body")
        );
        // Ids that are no drain's, or a path, name no cursor.
        for bad in ["../drains", "not-a-drain", ""] {
            assert_eq!(s.drain_cursor(bad).expect("cursor"), DrainCursor::default());
            assert!(matches!(
                s.save_drain_cursor(bad, &c2),
                Err(StoreError::UnknownDrain(_))
            ));
        }
        // Removed with its cursor: a later save is refused, not revived.
        assert_eq!(s.remove_drain("acme", &d.id).expect("remove"), d);
        assert!(matches!(
            s.save_drain_cursor(&d.id, &c2),
            Err(StoreError::UnknownDrain(_))
        ));
        assert_eq!(
            s.drain_cursor(&d.id).expect("cursor"),
            DrainCursor::default()
        );
        assert_eq!(
            s.drains(None).expect("all"),
            vec![site.clone(), filter.clone()]
        );
        // The same drain added again is a new drain, from the start.
        let back = s
            .add_drain("acme", app(), tls, StoredFraming::Newline)
            .expect("again");
        assert_ne!(back.id, d.id);
        assert_eq!(
            s.drain_cursor(&back.id).expect("cursor"),
            DrainCursor::default()
        );
        // At most MAX_DRAINS_PER_REALM per realm; another realm has its own.
        for i in s.drains(Some("acme")).expect("list").len()..MAX_DRAINS_PER_REALM {
            s.add_drain(
                "acme",
                app(),
                &format!("syslog://h:{}", 1000 + i),
                StoredFraming::Newline,
            )
            .expect("under the cap");
        }
        let e = s
            .add_drain("acme", app(), "syslog://h:9999", StoredFraming::Newline)
            .expect_err("over the cap");
        assert!(e.to_string().contains("the most allowed"), "{e}");
        s.add_drain("beta", app(), "syslog://h:9999", StoredFraming::Newline)
            .expect("beta has room of its own");
    }

    /// What [`drains`] left is all there after the store is opened again
    /// (call with the store `drains` ran on, reopened, and what it listed
    /// just before).
    pub fn drains_after_reopen<S: DrainStore>(s: &S, before: &[DrainInfo]) {
        assert_eq!(s.drains(None).expect("list"), before, "every field kept");
        let acme = s.drains(Some("acme")).expect("list");
        assert_eq!(acme.len(), MAX_DRAINS_PER_REALM);
        assert_eq!(acme[0].url, "https://u:p@h.example.com/logs");
        assert_eq!(acme[0].framing, StoredFraming::OctetCounting);
        assert!(matches!(acme[1].select, Select::Filter { .. }));
        assert_eq!(s.drains(Some("beta")).expect("list").len(), 1);
        // The cursor saved last for the site drain.
        assert_eq!(
            s.drain_cursor(&acme[0].id).expect("cursor"),
            DrainCursor {
                cursor: 7,
                delivered: 7,
                failing: Some("HTTP 403: \u{fffd}body".into()),
            }
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_data_directory_passes_conformance() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut dd = crate::DataDir::open(d.path(), "test").expect("open");
        super::conformance::run_all(&mut dd);
        super::conformance::drains(&mut dd);
        let before = crate::DrainStore::drains(&dd, None).expect("list");
        drop(dd);
        let dd = crate::DataDir::open(d.path(), "test").expect("reopen");
        super::conformance::drains_after_reopen(&dd, &before);
    }
}
