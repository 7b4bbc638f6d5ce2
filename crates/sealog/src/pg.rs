//! The PostgreSQL store as a [`Backend`] (the global `--postgres URL`),
//! and `sealog migrate`, which copies a realm from the data directory into
//! PostgreSQL.
//!
//! Over PostgreSQL, `realm create|list|key`, `token issue|list|revoke`,
//! `query`, `grep`, `checkpoint`, `verify` and `export` work; `ingest`, `retention`
//! and `tail` say so and stop (records reach a cluster through its ingest
//! nodes, whose writers own the realms).

use sealog_event::RealmName;
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::verify::Evidence;
use sealog_journal::{EventRef, JournalOptions, LogStore, Receipt};
use sealog_pg::PgLog;
use sealog_store::{CreatedRealm, DataDir, IssuedToken, RealmStore, Scope, TokenInfo};

use crate::backend::{Backend, Emit, PageRequest, QuerySpec, TailSpec, Verdict};
use crate::{progress, Failure};

/// A realm's log in PostgreSQL, read through the CLI.
#[derive(Debug)]
pub struct Pg {
    url: String,
}

impl Pg {
    /// The store at `url`.
    pub fn new(url: String) -> Self {
        Self { url }
    }

    fn realms_store(&self) -> Result<sealog_pg::PgRealms, Failure> {
        Ok(sealog_pg::PgRealms::connect(&self.url)?)
    }

    fn reader(&self, realm: &RealmName, key: Option<&VerifierKey>) -> Result<PgLog, Failure> {
        Ok(PgLog::open_reader(&self.url, realm.as_str(), key)?)
    }
}

fn not_yet(what: &str) -> Failure {
    format!("{what} is not available on the PostgreSQL store yet; run it without --postgres").into()
}

impl Backend for Pg {
    fn create_realm(&self, name: &RealmName) -> Result<CreatedRealm, Failure> {
        Ok(self.realms_store()?.create_realm(name)?)
    }

    fn realms(&self) -> Result<Vec<serde_json::Value>, Failure> {
        let r = self.realms_store()?;
        r.realm_names()?
            .into_iter()
            .map(|name| {
                let key = RealmName::new(&name)
                    .map_err(|e| e.to_string())
                    .and_then(|n| r.verifier_key(&n).map_err(|e| e.to_string()))
                    .map(|k| k.to_string());
                Ok(match key {
                    Ok(k) => serde_json::json!({"name": name, "public_key": k}),
                    Err(e) => serde_json::json!({"name": name, "status": "failed", "error": e}),
                })
            })
            .collect()
    }

    fn realm_key(&self, name: &RealmName) -> Result<String, Failure> {
        Ok(self.realms_store()?.verifier_key(name)?.to_string())
    }

    fn issue_token(&self, realm: &RealmName, scope: Scope) -> Result<IssuedToken, Failure> {
        Ok(self.realms_store()?.issue_token(realm.as_str(), scope)?)
    }

    fn tokens(&self, realm: Option<&RealmName>) -> Result<Vec<TokenInfo>, Failure> {
        Ok(self.realms_store()?.tokens(realm.map(RealmName::as_str))?)
    }

    fn revoke_token(&self, id: &str) -> Result<TokenInfo, Failure> {
        Ok(self.realms_store()?.revoke_token(id)?)
    }

    fn ingest(
        &self,
        _realm: &RealmName,
        _events: &[EventRef<'_>],
        _batch: usize,
        _on_commit: &mut dyn FnMut(&Receipt),
    ) -> Result<(), Failure> {
        Err(not_yet(
            "ingest (records reach a PostgreSQL store through its writers)",
        ))
    }

    fn query_page(
        &self,
        realm: &RealmName,
        spec: &QuerySpec,
        page: PageRequest,
        emit: &mut Emit<'_>,
    ) -> Result<Option<u64>, Failure> {
        let log = self.reader(realm, None)?;
        crate::local::scan_store(&log, spec, &spec.filter, page, emit)
    }

    fn checkpoint(&self, realm: &RealmName) -> Result<String, Failure> {
        let log = self.reader(realm, None)?;
        log.latest_checkpoint()
            .map(|c| c.text.clone())
            .ok_or_else(|| format!("realm {realm:?} has no records yet, so no checkpoint").into())
    }

    fn verify(
        &self,
        realm: &RealmName,
        mut evidence: Evidence,
        key: Option<&VerifierKey>,
    ) -> Result<Verdict, Failure> {
        let mut c = sealog_pg::connect_reader(&self.url)?;
        // Without a kept key, the one the realm row names: say so, since
        // whoever can write the database can change it.
        let (key, note) = match key {
            Some(k) => (k.clone(), None),
            None => {
                let k = self.reader(realm, None)?.verifier().clone();
                (
                    k,
                    Some("verified with the key the realm row in PostgreSQL names; pass --key with the key you kept to not trust the database for it".to_string()),
                )
            }
        };
        evidence.require_mark = true;
        let pb = progress::bar(0, "verifying");
        let r = sealog_pg::verify_realm(&mut c, realm.as_str(), &key, &evidence, &|n| {
            pb.set_position(n);
        })?;
        pb.finish_and_clear();
        Ok(Verdict {
            committed: r.committed,
            checkpoints: r.checkpoints,
            evidence: r.evidence,
            findings: r.findings.iter().map(ToString::to_string).collect(),
            notes: r.notes.into_iter().chain(note).collect(),
            key: key.to_string(),
            damage: None,
        })
    }

    fn retention(
        &self,
        _realm: &RealmName,
        _args: &crate::backend::RetentionArgs,
        _dry_run: bool,
    ) -> Result<sealog_server::retention::Report, Failure> {
        Err(not_yet("retention"))
    }

    fn tail(&self, _realm: &RealmName, _spec: &TailSpec) -> Result<(), Failure> {
        Err(not_yet("tail"))
    }
}

/// The verifier over `realm` in PostgreSQL, its high-water mark required.
fn verify_pg(
    c: &mut postgres::Client,
    realm: &RealmName,
    key: &VerifierKey,
) -> Result<sealog_journal::verify::Report, Failure> {
    let strict = Evidence {
        require_mark: true,
        ..Evidence::default()
    };
    Ok(sealog_pg::verify_realm(
        c,
        realm.as_str(),
        key,
        &strict,
        &|_| {},
    )?)
}

/// `sealog migrate --to-postgres URL`: copies `realm`'s log from the data
/// directory into PostgreSQL, commit by commit, byte for byte and with the
/// checkpoints it was signed with. The source is verified first; each
/// commit is checked against its checkpoint before it is written; the copy
/// is verified afterwards. A migration that stopped goes on from where
/// PostgreSQL is (which must be a commit boundary of the source).
///
/// # Errors
/// The source failing verification; the database unreachable; a
/// PostgreSQL realm that is not a prefix of the source.
pub fn migrate_to_postgres(
    data: &std::path::Path,
    realm: &RealmName,
    url: &str,
) -> Result<(), Failure> {
    let dd = DataDir::open(data, "sealog migrate")?;
    let key = dd.verifier_key(realm)?;
    let dir = dd.journal_dir(realm);
    let source = sealog_journal::verify::verify_dir(
        &dir,
        realm.as_str(),
        &key,
        &Evidence {
            require_mark: dd.realm(realm)?.journal_created,
            ..Evidence::default()
        },
        &|_| {},
    )?;
    if !source.ok() {
        return Err(Failure::verify(format!(
            "realm {realm} does not verify in {}, so it is not migrated: {}",
            data.display(),
            source
                .first_bad()
                .map_or_else(String::new, ToString::to_string)
        )));
    }
    let mut log = PgLog::open_writer(
        url,
        realm.as_str(),
        dd.realm_signer(realm)?,
        "sealog migrate",
        JournalOptions::default(),
    )?;
    // The key goes along, so the cluster's writers can write the realm.
    sealog_pg::PgRealms::connect(url)?.keep_key(realm, &dd.realm_signing_key(realm)?)?;
    let start = log.size();
    let pb = progress::bar(source.committed, "migrating");
    let (mut copied, mut commits) = (0u64, 0u64);
    let unacked = sealog_journal::commits::read_sealed_commits(&dir, &mut |c| {
        let end = c.first_seq + c.blocks.iter().map(|b| u64::from(b.count)).sum::<u64>();
        if end <= start {
            // Already in PostgreSQL: it must be the same log there.
            if end == start {
                let here = log.root_at(start)?;
                let there = key.verify(&c.checkpoint)?.root;
                if here != there {
                    return Err(sealog_journal::JournalError::Fork {
                        size: start,
                        path: dir.clone(),
                    });
                }
            }
            return Ok(());
        }
        if c.first_seq < start {
            return Err(sealog_journal::JournalError::Batch(format!(
                "PostgreSQL holds {start} records of realm {realm}, which is not where a commit of the source ends ({}..{end})",
                c.first_seq
            )));
        }
        log.import_commit(c.first_seq, c.blocks, &c.checkpoint)?;
        copied += end - c.first_seq;
        commits += 1;
        pb.set_position(end);
        Ok(())
    })?;
    pb.finish_and_clear();
    let size = log.size();
    drop(log);
    let mut c = sealog_pg::connect_reader(url)?;
    let after = verify_pg(&mut c, realm, &key)?;
    if !after.ok() || size != source.committed {
        return Err(Failure::verify(format!(
            "the copy of realm {realm} in PostgreSQL does not verify ({} of {} records): {}",
            size,
            source.committed,
            after
                .first_bad()
                .map_or_else(String::new, ToString::to_string)
        )));
    }
    eprintln!(
        "migrated realm {realm}: {copied} records in {commits} commits copied ({start} were there already), {size} records in PostgreSQL, verified against key {key}{}",
        if unacked > 0 {
            format!("; {unacked} records after the last checkpoint were never acknowledged and were not copied")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `sealog migrate --from-postgres URL`: copies `realm`'s log from
/// PostgreSQL into the data directory, keeping its key, commit by commit
/// and byte for byte. The source is verified first; each commit's records
/// must give the root its checkpoint was signed for before the data
/// directory's journal commits them (and signs the same note: Ed25519 is
/// deterministic); the copy is verified after. A realm already in the data
/// directory must be a prefix of the source, and only what follows is
/// copied. A realm new to the data directory gets new tokens, printed as
/// `realm create` prints them.
///
/// # Errors
/// The source failing verification; a data-directory realm that is not a
/// prefix of the source or has another key; the database unreachable.
pub fn migrate_from_postgres(
    data: &std::path::Path,
    realm: &RealmName,
    url: &str,
) -> Result<(), Failure> {
    use sealog_journal::merkle::{leaf_hash, Frontier, SubtreeSource};
    let store = sealog_pg::PgRealms::connect_reader(url)?;
    let key = store.verifier_key(realm)?;
    let seed = store.signing_key(realm)?;
    let mut c = sealog_pg::connect_reader(url)?;
    let source = verify_pg(&mut c, realm, &key)?;
    if !source.ok() {
        return Err(Failure::verify(format!(
            "realm {realm} does not verify in PostgreSQL, so it is not migrated: {}",
            source
                .first_bad()
                .map_or_else(String::new, ToString::to_string)
        )));
    }
    let mut dd = DataDir::open(data, "sealog migrate")?;
    let created = match dd.verifier_key(realm) {
        Ok(k) if k == key => None,
        Ok(k) => {
            return Err(format!(
                "realm {realm} in {} is signed by key {k}, not the PostgreSQL realm's {key}",
                data.display()
            )
            .into())
        }
        Err(sealog_store::StoreError::UnknownRealm(_)) => {
            Some(dd.create_realm_with_key(realm, seed)?)
        }
        Err(e) => return Err(e.into()),
    };
    let mut j = dd.open_journal(realm, JournalOptions::default())?;
    let start = j.size();
    // The tree as it is, to check each commit's root before it is signed.
    let mut frontier = {
        let mut hashes = Vec::new();
        let mut at = 0u64;
        for b in (0..64).rev().filter(|b| start >> b & 1 == 1) {
            let end = at + (1u64 << b);
            hashes.push(j.subtree(at, end)?);
            at = end;
        }
        Frontier::from_subtrees(start, &hashes)?
    };
    let (mut copied, mut commits) = (0u64, 0u64);
    sealog_pg::read_sealed_commits(&mut c, realm.as_str(), &mut |commit| {
        let want = key.verify(&commit.checkpoint)?;
        if want.size <= start {
            if want.size == start && want.root != frontier.root() {
                return Err(sealog_journal::JournalError::Fork {
                    size: start,
                    path: data.to_path_buf(),
                });
            }
            return Ok(());
        }
        if commit.first_seq != frontier.size() {
            return Err(sealog_journal::JournalError::Batch(format!(
                "the data directory holds {} records of realm {realm}, which is not where a commit of the source ends",
                frontier.size()
            )));
        }
        let mut sealed = Vec::with_capacity(commit.blocks.len());
        let mut next = frontier.clone();
        for b in commit.blocks {
            let d = sealog_journal::block::decode(&b.body, b.count, b.crc).map_err(|e| {
                sealog_journal::JournalError::Corrupt {
                    seq: b.first_seq,
                    reason: format!("block to migrate: {e}"),
                    path: std::path::PathBuf::from("(PostgreSQL)"),
                }
            })?;
            if (0..d.len()).any(|k| d.is_retained(k)) {
                return Err(sealog_journal::JournalError::Batch(
                    "records removed by retention cannot be migrated yet".into(),
                ));
            }
            let hashes: Vec<_> = (0..d.len()).map(|k| leaf_hash(d.line(k))).collect();
            for h in &hashes {
                next.push(*h, |_, _, _| {});
            }
            sealed.push((b, hashes));
        }
        if next.size() != want.size || next.root() != want.root {
            return Err(sealog_journal::JournalError::Fork {
                size: want.size,
                path: std::path::PathBuf::from("(PostgreSQL)"),
            });
        }
        let receipt = j.commit(sealog_journal::PreparedCommit::from_sealed(
            commit.first_seq,
            sealed,
        )?)?;
        if receipt.checkpoint != commit.checkpoint {
            return Err(sealog_journal::JournalError::Batch(format!(
                "the checkpoint signed for size {} differs from the source's note (it carries other signatures?)",
                want.size
            )));
        }
        copied += want.size - commit.first_seq;
        commits += 1;
        frontier = next;
        Ok(())
    })?;
    let size = j.size();
    drop(j);
    let after = sealog_journal::verify::verify_dir(
        &dd.journal_dir(realm),
        realm.as_str(),
        &key,
        &Evidence {
            require_mark: true,
            ..Evidence::default()
        },
        &|_| {},
    )?;
    if !after.ok() || size != source.committed {
        return Err(Failure::verify(format!(
            "the copy of realm {realm} in {} does not verify ({size} of {} records)",
            data.display(),
            source.committed
        )));
    }
    if let Some(c) = created {
        println!("{}", serde_json::to_string(&c)?);
    }
    eprintln!(
        "migrated realm {realm} from PostgreSQL: {copied} records in {commits} commits copied ({start} were there already), {size} records in {}, verified against key {key}",
        data.display()
    );
    Ok(())
}
