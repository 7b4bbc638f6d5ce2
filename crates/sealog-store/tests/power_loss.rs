//! Power-loss simulation of the data directory: realm creation and token
//! changes, crashed at every mutating operation on the simulated
//! filesystem ([`SimFs`]).
//!
//! Per crash: the workload runs on a fresh filesystem that loses power just
//! before its `k`-th mutating operation, keeping a log of everything that
//! returned Ok (realms created, tokens issued and revoked, journal
//! receipts); a crash image is reopened and checked: the directory opens,
//! every realm created with Ok is there whole and its journal opens with
//! its receipted records, no realm is half there, no leftover of an
//! interrupted creation remains, tokens issued with Ok authenticate unless
//! revoked with Ok, and tokens revoked with Ok stay revoked. Then the
//! recovered directory takes a new realm and token changes, and a crash
//! image of that is checked again.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealog_event::{LeafBuilder, RealmName};
use sealog_journal::fs::Vfs;
use sealog_journal::sim_fs::SimFs;
use sealog_journal::{prepare, EventRef, Journal, JournalOptions, Receipt};
use sealog_store::{DataDir, Scope, StoreError};

const ROOT: &str = "/srv/sealog";
const REALMS: [&str; 3] = ["alpha", "beta", "gamma"];

fn root() -> &'static Path {
    Path::new(ROOT)
}

fn realms_dir() -> PathBuf {
    root().join("realms")
}

fn opts() -> JournalOptions {
    JournalOptions {
        segment_max_bytes: 4096,
        ..JournalOptions::default()
    }
}

fn open_dir(fs: &Arc<SimFs>) -> Result<DataDir, StoreError> {
    DataDir::open_in(fs.clone(), root(), "power loss test")
}

/// A token that was issued with Ok.
#[derive(Debug, Clone)]
struct Token {
    secret: String,
    realm: String,
    scope: Scope,
}

/// What a run got Ok for.
#[derive(Debug, Default)]
struct Log {
    /// Realms whose creation returned Ok.
    realms: Vec<String>,
    /// The realm being created when the run stopped, if any.
    creating: Option<String>,
    tokens: Vec<Token>,
    /// Secrets of tokens whose revocation returned Ok.
    revoked: HashSet<String>,
    /// The secret of the token being revoked when the run stopped: it may
    /// or may not be revoked.
    revoking: Option<String>,
    /// (realm, receipt, its records).
    receipts: Vec<(String, Receipt, Vec<Vec<u8>>)>,
}

impl Log {
    fn created(&mut self, realm: &str, write: String, query: String) {
        self.creating = None;
        self.realms.push(realm.to_string());
        for (secret, scope) in [(write, Scope::Write), (query, Scope::Query)] {
            self.tokens.push(Token {
                secret,
                realm: realm.to_string(),
                scope,
            });
        }
    }
}

fn lines(j: &Journal, from: u64, to: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    j.read(from, to, &mut |_, line| {
        out.push(line.to_vec());
        ControlFlow::Continue(())
    })
    .expect("read back");
    out
}

fn rn(name: &str) -> RealmName {
    RealmName::new(name).expect("a valid realm name")
}

/// Appends a few events to `realm` and logs the receipt with its records.
/// (Sealed with a known receive time, so the records are known without
/// reading them back: the power may be off by the time the receipt is.)
fn append(dd: &DataDir, realm: &str, tag: &str, log: &mut Log) -> Result<(), StoreError> {
    const RECEIVED_AT: i64 = 1_700_000_000_000_000_000;
    let mut j = dd.open_journal(&rn(realm), opts())?;
    let bodies: Vec<Vec<u8>> = (0..3)
        .map(|i| format!(r#"{{"realm":"{realm}","tag":"{tag}","i":{i}}}"#).into_bytes())
        .collect();
    let events: Vec<EventRef<'_>> = bodies
        .iter()
        .map(|b| EventRef {
            bytes: b,
            time_ns: None,
        })
        .collect();
    let first = j.size();
    let p = prepare(realm, first, &events, RECEIVED_AT, 1)?;
    let r = j.commit(p)?;
    let builder = LeafBuilder::new(realm, RECEIVED_AT);
    let want = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut line = Vec::new();
            builder.build(first + i as u64, b, &mut line);
            line
        })
        .collect();
    log.receipts.push((realm.to_string(), r, want));
    Ok(())
}

/// Opens the directory and creates the realms, appending to each.
fn realm_workload(fs: &Arc<SimFs>, log: &mut Log) -> Result<(), StoreError> {
    let mut dd = open_dir(fs)?;
    for name in REALMS {
        log.creating = Some(name.to_string());
        let c = dd.create_realm(&rn(name))?;
        log.created(name, c.write_token, c.query_token);
        append(&dd, name, "first", log)?;
    }
    Ok(())
}

/// Opens the directory, creates one realm (the set-up), then issues and
/// revokes tokens as `seed` says.
fn token_workload(
    fs: &Arc<SimFs>,
    seed: u64,
    log: &mut Log,
    setup_ops: &mut u64,
) -> Result<(), StoreError> {
    let mut dd = open_dir(fs)?;
    log.creating = Some("acme".into());
    let c = dd.create_realm(&rn("acme"))?;
    log.created("acme", c.write_token, c.query_token);
    *setup_ops = fs.mutating_ops();
    let mut rng = StdRng::seed_from_u64(seed);
    // (id, secret) of tokens that can be revoked.
    let mut live: Vec<(String, String)> = Vec::new();
    for t in &log.tokens {
        let info = dd.authenticate(&t.secret)?;
        live.push((info.id, t.secret.clone()));
    }
    for _ in 0..14 {
        if !live.is_empty() && rng.gen_bool(0.4) {
            let (id, secret) = live.swap_remove(rng.gen_range(0..live.len()));
            log.revoking = Some(secret.clone());
            dd.revoke_token(&id)?;
            log.revoking = None;
            log.revoked.insert(secret);
        } else {
            let scope = [Scope::Write, Scope::Query, Scope::Admin][rng.gen_range(0..3)];
            let t = dd.issue_token("acme", scope)?;
            log.tokens.push(Token {
                secret: t.token.clone(),
                realm: t.realm,
                scope,
            });
            live.push((t.id, t.token));
        }
    }
    Ok(())
}

/// What the crashes of a scenario came to.
#[derive(Debug, Default)]
struct Tally {
    crashes: u64,
    /// The data directory itself was not there yet.
    no_dir_yet: u64,
    /// A realm creation was interrupted and left no realm.
    interrupted_absent: u64,
    /// A realm creation was interrupted after the realm was in place.
    interrupted_present: u64,
    /// Leftovers of an interrupted creation were removed on open.
    leftovers_removed: u64,
    realms_checked: u64,
    tokens_checked: u64,
    revoked_checked: u64,
    receipts_checked: u64,
}

/// Checks the directory on `img` against `log`; returns it open.
fn check_dir(img: &Arc<SimFs>, log: &Log, t: &mut Tally) -> DataDir {
    let had_dir = img.is_dir(root());
    let leftovers = img.is_dir(&realms_dir())
        && img
            .list(&realms_dir())
            .expect("list realms")
            .iter()
            .any(|n| n.starts_with(".creating-"));
    let dd = open_dir(img).unwrap_or_else(|e| panic!("data directory does not open: {e}"));
    let names = img.list(&realms_dir()).expect("list realms");
    assert!(
        !names.iter().any(|n| n.starts_with(".creating-")),
        "leftover of an interrupted creation: {names:?}"
    );
    let entries = dd.realm_entries().expect("realm entries");
    let present: HashSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for (name, info) in &entries {
        let info = info
            .as_ref()
            .unwrap_or_else(|e| panic!("realm {name} is half there: {e}"));
        assert!(info.journal_created);
        let j = dd
            .open_journal(name, opts())
            .unwrap_or_else(|e| panic!("realm {name}: journal does not open: {e}"));
        let key = j.verifier().clone();
        assert_eq!(key.to_string(), info.public_key);
        if let Some(cp) = j.latest_checkpoint() {
            let latest = key.verify(&cp.text).expect("latest checkpoint verifies");
            assert_eq!(latest.size, j.size());
            assert_eq!(j.root_at(j.size()).expect("root"), latest.root);
        }
        for (realm, r, recs) in log.receipts.iter().filter(|(n, _, _)| n == name.as_str()) {
            let cp = key.verify(&r.checkpoint).expect("receipt verifies");
            assert!(j.size() > r.last_seq, "{realm}: receipted records lost");
            assert_eq!(&lines(&j, r.first_seq, r.last_seq + 1), recs);
            assert_eq!(j.root_at(cp.size).expect("root"), cp.root);
            t.receipts_checked += 1;
        }
        t.realms_checked += 1;
    }
    for name in &log.realms {
        assert!(present.contains(name.as_str()), "realm {name} was lost");
    }
    if let Some(name) = &log.creating {
        if present.contains(name.as_str()) {
            t.interrupted_present += 1;
        } else {
            t.interrupted_absent += 1;
        }
    }
    for tok in &log.tokens {
        if log.revoking.as_ref() == Some(&tok.secret) {
            continue;
        }
        let got = dd.authenticate(&tok.secret);
        if log.revoked.contains(&tok.secret) {
            assert!(
                matches!(got, Err(StoreError::BadToken)),
                "a revoked token works again: {got:?}"
            );
            t.revoked_checked += 1;
        } else {
            let info = got.unwrap_or_else(|e| panic!("an issued token was lost: {e}"));
            assert_eq!(info.scope, tok.scope);
            if tok.scope != Scope::Admin {
                assert_eq!(info.realm, tok.realm);
            }
            t.tokens_checked += 1;
        }
    }
    dd.tokens(None).expect("token list reads");
    t.crashes += 1;
    if !had_dir {
        t.no_dir_yet += 1;
    }
    if leftovers {
        t.leftovers_removed += 1;
    }
    dd
}

/// After recovery: the directory takes a new realm, records and token
/// changes, and they survive another power loss.
fn check_writable(img: &Arc<SimFs>, dd: DataDir, log: &Log, seed: u64) {
    let mut dd = dd;
    let mut after = Log {
        realms: log.realms.clone(),
        tokens: log.tokens.clone(),
        revoked: log.revoked.clone(),
        receipts: log.receipts.clone(),
        creating: None,
        revoking: log.revoking.clone(),
    };
    let c = dd
        .create_realm(&rn("after"))
        .expect("create a realm after the crash");
    after.created("after", c.write_token.clone(), c.query_token);
    append(&dd, "after", "after", &mut after).expect("append after the crash");
    for name in &log.realms {
        append(&dd, name, "after", &mut after).expect("append to an old realm");
    }
    let admin = dd.issue_token("", Scope::Admin).expect("issue");
    after.tokens.push(Token {
        secret: admin.token,
        realm: String::new(),
        scope: Scope::Admin,
    });
    let w = dd.authenticate(&c.write_token).expect("valid");
    dd.revoke_token(&w.id).expect("revoke");
    after.revoked.insert(c.write_token);
    drop(dd);
    let img2 = img.crash_image(seed ^ 0x5eed);
    let mut t = Tally::default();
    check_dir(&img2, &after, &mut t);
}

fn report(name: &str, runs: u64, ops: u64, t: &Tally, start: Instant) {
    eprintln!(
        "power loss [{name}]: {runs} workloads, {ops} crash points, {} crashes in {:.1?}: \
         data directory not there yet {}, interrupted creation left no realm {}, \
         interrupted creation left a whole realm {}, leftovers removed {}; checked: \
         realms {}, receipts {}, live tokens {}, revoked tokens {}",
        t.crashes,
        start.elapsed(),
        t.no_dir_yet,
        t.interrupted_absent,
        t.interrupted_present,
        t.leftovers_removed,
        t.realms_checked,
        t.receipts_checked,
        t.tokens_checked,
        t.revoked_checked,
    );
}

#[test]
fn power_loss_during_realm_creation() {
    let start = Instant::now();
    let fs = SimFs::new();
    let mut log = Log::default();
    realm_workload(&fs, &mut log).expect("reference run");
    let total = fs.mutating_ops();
    let runs = 20;
    let mut t = Tally::default();
    for run in 0..runs {
        for k in 1..=total {
            let fs = SimFs::new();
            fs.power_off_after(k);
            let mut log = Log::default();
            if realm_workload(&fs, &mut log).is_ok() {
                // Only a write after the last commit's checkpoint can be
                // lost without failing the run.
                assert_eq!(log.realms.len(), REALMS.len());
            }
            let seed = run * 1_000_003 + k;
            let img = fs.crash_image(seed);
            let dd = check_dir(&img, &log, &mut t);
            check_writable(&img, dd, &log, seed);
        }
    }
    report("realm creation", runs, runs * total, &t, start);
    assert_eq!(t.crashes, runs * total);
    assert!(t.interrupted_absent > 0 && t.interrupted_present > 0);
}

#[test]
fn power_loss_during_token_changes() {
    let start = Instant::now();
    let runs = 45;
    let mut t = Tally::default();
    let mut points = 0;
    for run in 0..runs {
        let fs = SimFs::new();
        let mut setup = 0;
        token_workload(&fs, run, &mut Log::default(), &mut setup).expect("reference run");
        let total = fs.mutating_ops();
        for k in setup + 1..=total {
            let fs = SimFs::new();
            fs.power_off_after(k);
            let mut log = Log::default();
            let mut setup_here = 0;
            assert!(token_workload(&fs, run, &mut log, &mut setup_here).is_err());
            assert_eq!(setup_here, setup, "the crash came after the set-up");
            let seed = run * 1_000_003 + k;
            let img = fs.crash_image(seed);
            let dd = check_dir(&img, &log, &mut t);
            check_writable(&img, dd, &log, seed);
            points += 1;
        }
    }
    report("token issue/revoke", runs, points, &t, start);
    assert_eq!(t.crashes, points);
    assert!(t.revoked_checked > 0);
}
