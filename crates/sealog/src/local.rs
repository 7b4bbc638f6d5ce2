//! The data directory itself as a [`Backend`]: each operation opens (and
//! locks) the directory, does one thing and lets it go.

use std::path::{Path, PathBuf};

use sealog_event::RealmName;
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::verify::{verify_dir, Evidence};
use sealog_journal::{EventRef, JournalOptions, Receipt};
use sealog_query::{Order, Scan};
use sealog_store::{CreatedRealm, DataDir, IssuedToken, Scope, StoreError, TokenInfo};

use crate::backend::{Backend, Emit, GrepOptions, PageRequest, QuerySpec, TailSpec, Verdict};
use crate::{ingest, progress, Failure};

/// A data directory no server holds.
#[derive(Debug)]
pub struct Local {
    data: PathBuf,
}

impl Local {
    /// The data directory at `data` (opened by each operation).
    pub fn new(data: &Path) -> Self {
        Self {
            data: data.to_path_buf(),
        }
    }

    fn open(&self, op: &str) -> Result<DataDir, Failure> {
        Ok(DataDir::open(&self.data, &format!("sealog {op}"))?)
    }
}

/// The error for a realm that is not in the data directory.
pub(crate) fn no_realm(realm: &RealmName, data: &Path) -> Failure {
    format!("no realm named {realm} in {}", data.display()).into()
}

/// Runs `scan` with a sink that passes lines to `emit` until it first
/// fails; that failure (a closed pipe, say) is the result.
fn first_write_error<T>(
    emit: &mut Emit<'_>,
    scan: impl FnOnce(&mut dyn FnMut(u64, &[u8])) -> Result<T, sealog_query::QueryError>,
) -> Result<T, Failure> {
    let mut write_err = None;
    let r = scan(&mut |_, line| {
        if write_err.is_none() {
            write_err = emit(line).err();
        }
    })?;
    match write_err {
        Some(e) => Err(e.into()),
        None => Ok(r),
    }
}

impl Local {
    /// One page of `spec`'s scan of the journal, lines checked by `matcher`.
    fn scan_page(
        &self,
        realm: &RealmName,
        spec: &QuerySpec,
        matcher: &dyn sealog_query::Matcher,
        page: PageRequest,
        emit: &mut Emit<'_>,
    ) -> Result<Option<u64>, Failure> {
        let dd = self.open("query")?;
        let j = dd.open_journal(realm, JournalOptions::default())?;
        scan_store(&j, spec, matcher, page, emit)
    }
}

/// One page of `spec`'s scan of a realm's log in any store, lines checked
/// by `matcher`; where the next page starts.
///
/// # Errors
/// Store errors; the first error `emit` returned.
pub(crate) fn scan_store(
    j: &dyn sealog_journal::LogStore,
    spec: &QuerySpec,
    matcher: &dyn sealog_query::Matcher,
    page: PageRequest,
    emit: &mut Emit<'_>,
) -> Result<Option<u64>, Failure> {
    let size = j.size();
    // The same bounds the server computes from its cursor.
    let bounds = match spec.order {
        Order::Oldest => Scan {
            order: spec.order,
            limit: page.limit,
            max_bytes: None,
            seq_from: page.cursor.unwrap_or(0),
            seq_to: size,
        },
        Order::Newest => Scan {
            order: spec.order,
            limit: page.limit,
            max_bytes: None,
            seq_from: 0,
            seq_to: page.cursor.unwrap_or(size).min(size),
        },
    };
    let r = first_write_error(emit, |sink| {
        sealog_query::scan(j.blocks(), &|i| j.read_block(i), matcher, bounds, sink)
    })?;
    tracing::info!(
        matched = r.stats.matched,
        scanned = r.stats.scanned,
        size = r.stats.size,
        "query page done"
    );
    Ok(r.next_cursor)
}

impl Backend for Local {
    fn create_realm(&self, name: &RealmName) -> Result<CreatedRealm, Failure> {
        Ok(self.open("realm create")?.create_realm(name)?)
    }

    fn realms(&self) -> Result<Vec<serde_json::Value>, Failure> {
        let dd = self.open("realm list")?;
        let mut out = Vec::new();
        for (name, r) in dd.realm_entries()? {
            out.push(match r {
                Ok(info) => serde_json::to_value(&info)?,
                Err(e) => serde_json::json!({
                    "name": name,
                    "status": "failed",
                    "error": e.to_string(),
                }),
            });
        }
        Ok(out)
    }

    fn realm_key(&self, name: &RealmName) -> Result<String, Failure> {
        Ok(self.open("realm key")?.verifier_key(name)?.to_string())
    }

    fn issue_token(&self, realm: &RealmName, scope: Scope) -> Result<IssuedToken, Failure> {
        Ok(self.open("token issue")?.issue_token(realm, scope)?)
    }

    fn tokens(&self, realm: Option<&RealmName>) -> Result<Vec<TokenInfo>, Failure> {
        Ok(self
            .open("token list")?
            .tokens(realm.map(RealmName::as_str))?)
    }

    fn revoke_token(&self, id: &str) -> Result<TokenInfo, Failure> {
        Ok(self.open("token revoke")?.revoke_token(id)?)
    }

    fn ingest(
        &self,
        realm: &RealmName,
        events: &[EventRef<'_>],
        batch: usize,
        on_commit: &mut dyn FnMut(&Receipt),
    ) -> Result<(), Failure> {
        let dd = self.open("ingest")?;
        let mut journal = dd.open_journal(realm, JournalOptions::default())?;
        ingest::append_pipelined(&mut journal, events, batch, on_commit)?;
        journal.sync()?;
        Ok(())
    }

    fn query_page(
        &self,
        realm: &RealmName,
        spec: &QuerySpec,
        page: PageRequest,
        emit: &mut Emit<'_>,
    ) -> Result<Option<u64>, Failure> {
        self.scan_page(realm, spec, &spec.filter, page, emit)
    }

    fn query_page_matching(
        &self,
        realm: &RealmName,
        spec: &QuerySpec,
        extra: &dyn sealog_query::Matcher,
        page: PageRequest,
        emit: &mut Emit<'_>,
    ) -> Result<Option<u64>, Failure> {
        self.scan_page(
            realm,
            spec,
            &sealog_query::Both(&spec.filter, extra),
            page,
            emit,
        )
    }

    fn grep(
        &self,
        realm: &RealmName,
        spec: &QuerySpec,
        matcher: &sealog_query::grep::GrepMatcher,
        opts: GrepOptions,
        emit: &mut Emit<'_>,
    ) -> Result<u64, Failure> {
        use sealog_query::message_index::{self, MessageIndex, Plan, INDEX_FILE};
        let Some(plan) = Plan::new(matcher.expr()).filter(|_| opts.index) else {
            return crate::backend::grep_by_pages(self, realm, spec, matcher, opts.limit, emit);
        };
        let dd = self.open("grep")?;
        let j = dd.open_journal(realm, JournalOptions::default())?;
        let index = MessageIndex::open(&dd.journal_dir(realm).with_file_name(INDEX_FILE));
        let known = index.entries();
        let bounds = Scan {
            order: spec.order,
            limit: opts.limit,
            max_bytes: None,
            seq_from: 0,
            seq_to: j.size(),
        };
        // A write that fails (a closed pipe) stops the scan.
        let mut write_err = None;
        let n = message_index::scan(
            j.blocks(),
            &|i| j.read_block(i),
            Some(&index),
            &plan,
            &sealog_query::Both(&spec.filter, matcher),
            bounds,
            opts.count_only,
            &mut |_, line| match emit(line) {
                Ok(()) => true,
                Err(e) => {
                    write_err = Some(e);
                    false
                }
            },
        )?;
        if let Some(e) = write_err {
            return Err(e.into());
        }
        tracing::info!(
            matched = n,
            blocks = j.blocks().len(),
            indexed_before = known,
            indexed_now = index.entries(),
            exact = plan.is_exact(),
            "grep done through the message index"
        );
        index.compact(j.blocks());
        Ok(n)
    }

    fn retention(
        &self,
        realm: &RealmName,
        args: &crate::backend::RetentionArgs,
        dry_run: bool,
    ) -> Result<sealog_server::retention::Report, Failure> {
        let spec = args.spec()?;
        let data = self.data.as_path();
        if !data.join("realms").join(realm.as_str()).is_dir() {
            return Err(no_realm(realm, data));
        }
        let dd = self.open("retention")?;
        let mut j = dd.open_journal(realm, JournalOptions::default())?;
        let report = sealog_server::retention::run(&mut j, &spec, sealog_event::now_ns(), dry_run)?;
        j.sync()?;
        Ok(report)
    }

    fn checkpoint(&self, realm: &RealmName) -> Result<String, Failure> {
        let dd = self.open("checkpoint")?;
        let j = dd.open_journal(realm, JournalOptions::default())?;
        let cp = j.latest_checkpoint().ok_or_else(|| {
            Failure::from(format!(
                "realm {realm:?} has no records yet, so no checkpoint"
            ))
        })?;
        Ok(cp.text.clone())
    }

    fn witnessed(&self, realm: &RealmName) -> Result<Option<String>, Failure> {
        let path = self
            .data
            .join("realms")
            .join(realm.as_str())
            .join(sealog_server::witnessing::WITNESSED_FILE);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("read {}: {e}", path.display()).into()),
        }
    }

    fn verify(
        &self,
        realm: &RealmName,
        mut evidence: Evidence,
        key: Option<&VerifierKey>,
    ) -> Result<Verdict, Failure> {
        let data = self.data.as_path();
        let realm_dir = data.join("realms").join(realm.as_str());
        // Checked before the directory is opened (which would create it and
        // its marker): verifying a realm that is not there creates nothing.
        if !realm_dir.is_dir() {
            return Err(no_realm(realm, data));
        }
        let dd = match DataDir::open(data, "sealog verify") {
            Ok(dd) => dd,
            Err(e) => {
                return Err(match damage(data, &e) {
                    // The files of the realm cannot be trusted without it.
                    Some(what) => Failure::verify(format!(
                        "verification FAILED for realm {realm}: {what}; the realm was not checked"
                    )),
                    None => e.into(),
                });
            }
        };
        // realm.meta holds the verifier key; without it, a key the operator kept.
        let meta = match dd.verifier_key(realm) {
            Ok(k) => Ok(k),
            Err(StoreError::UnknownRealm(_)) => Err(format!(
                "{} is missing",
                realm_dir.join("realm.meta").display()
            )),
            Err(e) => Err(damage(data, &e).ok_or(e)?),
        };
        let key: VerifierKey = match (key, &meta) {
            (Some(k), _) => k.clone(),
            (None, Ok(k)) => k.clone(),
            (None, Err(what)) => {
                return Err(Failure::verify(format!(
                    "verification FAILED for realm {realm}: {what}; it holds the realm's verifier key: \
                     pass the key you kept (`sealog/{realm}+...`, as `sealog realm key` printed it) \
                     with --key to verify the journal without it"
                )))
            }
        };
        let dir = dd.journal_dir(realm);
        // Every realm made by this version has its journal (and mark) from
        // the start; a legacy realm that never took a record may have none.
        let created = dd.realm(realm).map(|i| i.journal_created).unwrap_or(true);
        evidence.require_mark = created;
        if !dir.is_dir() {
            if created {
                return Err(Failure::verify(format!(
                    "verification FAILED for realm {realm}: its journal directory {} is missing",
                    dir.display()
                )));
            }
            return Ok(Verdict {
                notes: vec![format!("realm {realm} has no journal yet (0 records)")],
                key: key.to_string(),
                damage: meta.err(),
                ..Verdict::default()
            });
        }
        let pb = progress::bar(0, "verifying");
        pb.set_length(estimate_records(&dir));
        let r = verify_dir(&dir, realm, &key, &evidence, &|n| pb.set_position(n))?;
        pb.finish_and_clear();
        Ok(Verdict {
            committed: r.committed,
            checkpoints: r.checkpoints,
            evidence: r.evidence,
            findings: r.findings.iter().map(ToString::to_string).collect(),
            notes: r.notes,
            key: key.to_string(),
            damage: meta.err(),
        })
    }

    fn tail(&self, _realm: &RealmName, _spec: &TailSpec) -> Result<(), Failure> {
        Err("tail needs a running server: start `sealog serve` or pass --url".into())
    }
}

/// When `e` says a file of the data directory is damaged or missing (not
/// merely unreadable for lack of permission), what is wrong, naming it.
fn damage(data: &Path, e: &StoreError) -> Option<String> {
    match e {
        StoreError::Format { path, .. } if path == data => Some(format!(
            "{} is missing: the directory is not marked as a sealog data directory",
            data.join("sealog.meta").display()
        )),
        StoreError::Format { .. } => Some(e.to_string()),
        StoreError::Io { source, .. } if source.kind() != std::io::ErrorKind::PermissionDenied => {
            Some(e.to_string())
        }
        _ => None,
    }
}

/// A rough record count for the progress bar: segment bytes at ~50 bytes per record.
fn estimate_records(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len() / 50)
                .sum()
        })
        .unwrap_or(0)
}
