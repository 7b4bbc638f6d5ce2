//! The PostgreSQL store against the machine's PostgreSQL (`SEALOG_TEST_POSTGRES`,
//! default `host=127.0.0.1 port=5432 user=postgres dbname=test`; `.ci/run`
//! starts it). Each test works in a schema of its own, dropped afterwards.

use std::ops::ControlFlow;

use ed25519_dalek::SigningKey;
use sealog_journal::block;
use sealog_journal::checkpoint::Signer;
use sealog_journal::conformance::{self, Harness};
use sealog_journal::merkle::leaf_hash;
use sealog_journal::verify::{Evidence, Report};
use sealog_journal::{EventRef, JournalError, JournalOptions, LogStore, Receipt};
use sealog_pg::PgLog;

fn base_url() -> String {
    std::env::var("SEALOG_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into())
}

/// A schema of its own for one test, dropped when it goes.
struct Schema {
    name: String,
}

impl Schema {
    fn new() -> Self {
        let name = format!("sealog_t{}_{:x}", std::process::id(), rand::random::<u64>());
        let mut c = postgres::Client::connect(&base_url(), postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {:?} is needed for these tests (.ci/run starts it): {e}",
                base_url()
            )
        });
        c.batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("create schema");
        Self { name }
    }

    fn url(&self) -> String {
        format!("{} options='-c search_path={}'", base_url(), self.name)
    }

    fn client(&self) -> postgres::Client {
        sealog_pg::connect(&self.url()).expect("connect")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&base_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}

fn signer(realm: &str) -> Signer {
    Signer::new(format!("sealog/{realm}"), SigningKey::from_bytes(&[7; 32]))
}

fn writer(s: &Schema, realm: &str, owner: &str) -> PgLog {
    PgLog::open_writer(
        &s.url(),
        realm,
        signer(realm),
        owner,
        JournalOptions::default(),
    )
    .expect("open writer")
}

fn append(log: &mut PgLog, from: usize, n: usize) -> Receipt {
    conformance::append_n(log, from, n)
}

fn verify(s: &Schema, realm: &str, evidence: &Evidence) -> Report {
    let key = signer(realm).verifier();
    sealog_pg::verify_realm(&mut s.client(), realm, &key, evidence, &|_| {}).expect("verify")
}

fn strict() -> Evidence {
    Evidence {
        require_mark: true,
        ..Evidence::default()
    }
}

/// PostgreSQL as a conformance backend.
struct Pg {
    schema: Schema,
    n: u32,
}

impl Harness for Pg {
    type Store = PgLog;

    fn fresh(&mut self) -> PgLog {
        self.n += 1;
        writer(&self.schema, &format!("conf{}", self.n), "conformance")
    }

    fn reopen(&mut self, s: PgLog) -> PgLog {
        let realm = s.realm().to_string();
        drop(s);
        writer(&self.schema, &realm, "conformance")
    }

    fn tamper(&mut self, s: &PgLog, seq: u64) {
        edit_record(&self.schema, s.realm(), seq, |line| {
            let at = line.len() - 3;
            line[at] ^= 1;
        });
    }

    fn verify(&mut self, s: &PgLog) -> Report {
        verify(&self.schema, s.realm(), &strict())
    }
}

/// Rewrites the block holding `seq` with `edit` applied to that record's
/// line, leaf-hash hints and CRC recomputed: only the Merkle log can tell.
fn edit_record(schema: &Schema, realm: &str, seq: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut c = schema.client();
    let row = c
        .query_one(
            "SELECT first_seq, count, min_time, max_time, body FROM sealog_blocks WHERE realm = $1 AND first_seq <= $2 ORDER BY first_seq DESC LIMIT 1",
            &[&realm, &(seq as i64)],
        )
        .expect("block row");
    let (first, count): (i64, i32) = (row.get(0), row.get(1));
    let body: Vec<u8> = row.get(4);
    let d = block::decode_unchecked(&body, count as u32).expect("decode");
    let mut lines: Vec<Vec<u8>> = d.lines().map(<[u8]>::to_vec).collect();
    edit(&mut lines[(seq - first as u64) as usize]);
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let hashes: Vec<_> = refs.iter().map(|l| leaf_hash(l)).collect();
    let b = block::encode(first as u64, &refs, &hashes, (row.get(2), row.get(3)), 1);
    c.execute(
        "UPDATE sealog_blocks SET body = $1, crc = $2 WHERE realm = $3 AND first_seq = $4",
        &[&b.body, &i64::from(b.crc), &realm, &first],
    )
    .expect("update");
}

#[test]
fn postgres_store_passes_conformance() {
    conformance::run_harness(&mut Pg {
        schema: Schema::new(),
        n: 0,
    });
}

#[test]
fn a_second_writer_fences_the_first_and_nothing_forks() {
    let s = Schema::new();
    let mut a = writer(&s, "shop", "writer-a");
    let ra = append(&mut a, 0, 500);
    // Writer b takes the realm over (as when a partition moves).
    let mut b = writer(&s, "shop", "writer-b");
    assert_eq!(b.epoch(), a.epoch() + 1);
    assert_eq!(
        b.size(),
        500,
        "the new owner starts where the old one stopped"
    );
    let rb = append(&mut b, 500, 10);
    // The old owner wakes up and tries to go on: refused, with why.
    let bodies = [br#"{"msg":"late"}"#.to_vec()];
    let events: Vec<EventRef<'_>> = bodies
        .iter()
        .map(|b| EventRef {
            bytes: b,
            time_ns: None,
        })
        .collect();
    match a.append(&events) {
        Err(JournalError::Fenced(why)) => {
            assert!(
                why.contains("writer-a") && why.contains("writer-b"),
                "{why}"
            );
            assert!(why.contains("epoch"), "{why}");
        }
        other => panic!("the old owner's commit must be fenced, got {other:?}"),
    }
    // And it stays refused (poisoned), even after trying to recover.
    assert!(a.append(&events).is_err());
    assert!(matches!(a.recover(), Err(JournalError::Fenced(_))));
    // Nothing forked: b's log extends a's, and the whole realm verifies.
    let key = signer("shop").verifier();
    let ca = key.verify(&ra.checkpoint).expect("a's receipt");
    let cb = key.verify(&rb.checkpoint).expect("b's receipt");
    let proof = b.consistency_proof(ca.size, cb.size).expect("proof");
    sealog_journal::merkle::verify_consistency(ca.size, cb.size, &proof, &ca.root, &cb.root)
        .expect("consistent");
    let report = verify(
        &s,
        "shop",
        &Evidence {
            receipts: vec![ra, rb],
            require_mark: true,
            ..Evidence::default()
        },
    );
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!((report.records, report.evidence), (510, 2));
}

#[test]
fn a_reader_follows_the_writer_and_cannot_append() {
    let s = Schema::new();
    let mut w = writer(&s, "ops", "w");
    append(&mut w, 0, 300);
    let mut r = PgLog::open_reader(&s.url(), "ops", None).expect("reader");
    assert_eq!(r.size(), 300);
    append(&mut w, 300, 700);
    assert_eq!(r.size(), 300, "a reader sees what was there when it looked");
    r.refresh().expect("refresh");
    assert_eq!(r.size(), 1000);
    assert_eq!(
        r.root_at(1000).expect("root"),
        w.root_at(1000).expect("root")
    );
    let mut last = None;
    r.read(990, 1000, &mut |seq, _| {
        last = Some(seq);
        ControlFlow::Continue(())
    })
    .expect("read");
    assert_eq!(last, Some(999));
    let err = r.append(&[EventRef {
        bytes: br#"{"msg":"x"}"#,
        time_ns: None,
    }]);
    assert!(
        matches!(&err, Err(JournalError::Batch(m)) if m.contains("reading")),
        "{err:?}"
    );
    // A reader must name the key the realm is signed with.
    let other = Signer::new("sealog/ops", SigningKey::from_bytes(&[9; 32])).verifier();
    let err = PgLog::open_reader(&s.url(), "ops", Some(&other)).expect_err("wrong key");
    assert!(err.to_string().contains("signed by key"), "{err}");
    let err = PgLog::open_reader(&s.url(), "nope", None).expect_err("no realm");
    assert!(err.to_string().contains("no realm nope"), "{err}");
}

#[test]
fn a_writer_with_another_key_is_refused() {
    let s = Schema::new();
    let mut w = writer(&s, "keys", "w");
    append(&mut w, 0, 3);
    let forger = Signer::new("sealog/keys", SigningKey::from_bytes(&[8; 32]));
    let err = PgLog::open_writer(
        &s.url(),
        "keys",
        forger,
        "forger",
        JournalOptions::default(),
    )
    .expect_err("another key");
    assert!(err.to_string().contains("signed by key"), "{err}");
    // The refused takeover changed nothing: the first writer goes on.
    append(&mut w, 3, 3);
    assert!(verify(&s, "keys", &strict()).ok());
}

#[test]
fn a_bad_tree_hash_and_a_deleted_block_are_found() {
    let s = Schema::new();
    let mut w = writer(&s, "t", "w");
    append(&mut w, 0, 1024);
    append(&mut w, 1024, 1024);
    drop(w);
    assert!(verify(&s, "t", &strict()).ok());

    // A stored tree hash changed: verify names the records it covers.
    let mut c = s.client();
    c.execute(
        "UPDATE sealog_tree_nodes SET hash = decode(repeat('ab', 32), 'hex') WHERE realm = 't' AND position = (SELECT min(position) FROM sealog_tree_nodes WHERE realm = 't')",
        &[],
    )
    .expect("update");
    let report = verify(&s, "t", &strict());
    let f = report.first_bad().expect("the bad tree hash is found");
    assert!(f.reason.contains("stored tree hash"), "{f}");

    // The last block deleted: the realm no longer opens, and verify says
    // records the realm signed for are gone.
    c.execute(
        "DELETE FROM sealog_blocks WHERE realm = 't' AND first_seq = (SELECT max(first_seq) FROM sealog_blocks WHERE realm = 't')",
        &[],
    )
    .expect("delete");
    let err = PgLog::open_reader(&s.url(), "t", None).expect_err("cut-back realm");
    assert!(matches!(err, JournalError::Rollback { .. }), "{err}");
    assert!(!verify(&s, "t", &strict()).ok());
}

#[test]
fn a_consistent_rollback_is_caught_by_a_receipt() {
    let s = Schema::new();
    let mut w = writer(&s, "r", "w");
    let r1 = append(&mut w, 0, 1024);
    let r2 = append(&mut w, 1024, 1024);
    drop(w);
    // Rolled back consistently to the first commit (blocks, checkpoints,
    // tree hashes and the realm row): only a client's receipt for the later
    // records tells, and it does.
    let keep: Vec<i64> = [(0u32, 4u64), (1, 2), (2, 1)]
        .iter()
        .flat_map(|&(h, n)| (0..n).map(move |i| sealog_journal::tree_file::position(h, i) as i64))
        .collect();
    let mut c = s.client();
    c.batch_execute(
        "DELETE FROM sealog_blocks WHERE realm = 'r' AND first_seq >= 1024;
         DELETE FROM sealog_checkpoints WHERE realm = 'r' AND size > 1024;",
    )
    .expect("cut");
    c.execute(
        "DELETE FROM sealog_tree_nodes WHERE realm = 'r' AND NOT position = ANY($1)",
        &[&keep],
    )
    .expect("cut nodes");
    // 1024 records make one perfect subtree: the frontier is the root.
    let root1 = signer("r")
        .verifier()
        .verify(&r1.checkpoint)
        .expect("r1")
        .root;
    c.execute(
        "UPDATE sealog_realms SET size = 1024, checkpoint = $1, frontier = $2 WHERE name = 'r'",
        &[&r1.checkpoint, &root1.to_vec()],
    )
    .expect("roll back");
    let report = verify(&s, "r", &strict());
    assert!(
        report.ok(),
        "a rollback to a signed state is invisible without evidence: {:?}",
        report.findings
    );
    let report = verify(
        &s,
        "r",
        &Evidence {
            receipts: vec![r2],
            require_mark: true,
            ..Evidence::default()
        },
    );
    assert!(!report.ok(), "the receipt of the removed commit catches it");
}

#[test]
fn a_signing_key_named_for_another_realm_is_refused_at_open() {
    let s = Schema::new();
    let err = PgLog::open_writer(
        &s.url(),
        "shop",
        signer("other"),
        "w",
        JournalOptions::default(),
    )
    .expect_err("misnamed key");
    assert!(err.to_string().contains("sealog/other"), "{err}");
}

#[test]
fn a_writer_refuses_a_database_that_went_back_in_time() {
    let s = Schema::new();
    let mut w = writer(&s, "db", "w");
    let r1 = append(&mut w, 0, 1024);
    append(&mut w, 1024, 100);
    // The database comes back without the last commit (a restore, or a
    // standby that lacked it), consistently.
    let root1 = signer("db")
        .verifier()
        .verify(&r1.checkpoint)
        .expect("r1")
        .root;
    let mut c = s.client();
    c.batch_execute(
        "DELETE FROM sealog_blocks WHERE realm = 'db' AND first_seq >= 1024;
         DELETE FROM sealog_checkpoints WHERE realm = 'db' AND size > 1024;",
    )
    .expect("cut");
    c.execute(
        "UPDATE sealog_realms SET size = 1024, checkpoint = $1, frontier = $2 WHERE name = 'db'",
        &[&r1.checkpoint, &root1.to_vec()],
    )
    .expect("roll back");
    // The writer's next commit finds another size at its own epoch...
    let err = w
        .append(&[EventRef {
            bytes: br#"{"msg":"after"}"#,
            time_ns: None,
        }])
        .expect_err("refused");
    assert!(
        err.to_string().contains("changed behind this writer"),
        "{err}"
    );
    // ...and reading the realm again shows it went back: it stays refused,
    // rather than sign a second history from size 1024.
    let err = w.recover().expect_err("rolled back");
    assert!(
        matches!(
            err,
            JournalError::Rollback {
                size: 1024,
                marked: 1124,
                ..
            }
        ),
        "{err}"
    );
    assert!(w
        .append(&[EventRef {
            bytes: br#"{"msg":"x"}"#,
            time_ns: None
        }])
        .is_err());
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM sealog_checkpoints WHERE realm = 'db' AND size > 1024",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(n, 0, "nothing was signed past the rollback");
}

#[test]
fn hostile_rows_are_findings_not_panics_or_hangs() {
    let s = Schema::new();
    let mut c = s.client();
    for (realm, sql) in [
        ("h1", "UPDATE sealog_blocks SET count = 2000000000 WHERE realm = 'h1' AND first_seq = 0"),
        ("h2", "UPDATE sealog_blocks SET crc = crc + 4294967296 WHERE realm = 'h2' AND first_seq = 0"),
        ("h3", "INSERT INTO sealog_blocks SELECT realm, -5, count, min_time, max_time, crc, body FROM sealog_blocks WHERE realm = 'h3' AND first_seq = 0"),
        ("h4", "INSERT INTO sealog_blocks SELECT realm, 9223372036854775807, count, min_time, max_time, crc, body FROM sealog_blocks WHERE realm = 'h4' AND first_seq = 0"),
        // A forged block past the last checkpoint.
        ("h5", "INSERT INTO sealog_blocks SELECT realm, 1124, count, min_time, max_time, crc, body FROM sealog_blocks WHERE realm = 'h5' AND first_seq = 0"),
        // A planted tree hash no record accounts for.
        ("h6", "INSERT INTO sealog_tree_nodes VALUES ('h6', 999999, decode(repeat('cd', 32), 'hex'))"),
        // One tree hash deleted and a later one altered.
        ("h7", "DELETE FROM sealog_tree_nodes WHERE realm = 'h7' AND position = 0;
                UPDATE sealog_tree_nodes SET hash = decode(repeat('ab', 32), 'hex') WHERE realm = 'h7' AND position = 1"),
        // The realm row's frontier changed.
        ("h8", "UPDATE sealog_realms SET frontier = decode(repeat('00', 64), 'hex') WHERE name = 'h8'"),
    ] {
        let mut w = writer(&s, realm, "w");
        append(&mut w, 0, 1024);
        append(&mut w, 1024, 100);
        drop(w);
        assert!(verify(&s, realm, &strict()).ok(), "{realm} verifies before");
        c.batch_execute(sql).expect(sql);
        let report = verify(&s, realm, &strict());
        assert!(!report.ok(), "{realm}: {sql} is found");
        if realm == "h7" {
            let reasons: Vec<&str> = report.findings.iter().map(|f| f.reason.as_str()).collect();
            assert!(reasons.iter().any(|r| r.contains("is missing")), "{reasons:?}");
            assert!(reasons.iter().any(|r| r.contains("differs")), "{reasons:?}");
        }
    }
}

#[test]
fn postgres_realms_tokens_and_drains_pass_conformance() {
    let s = Schema::new();
    let mut realms = sealog_pg::PgRealms::connect(&s.url()).expect("connect");
    sealog_store::realm_store::conformance::run_all(&mut realms);
    // Only the hash is stored.
    let mut c = s.client();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM sealog_tokens WHERE length(sha256) = 32",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(n, 6);
    // Drains and their cursors, and all of it again from a new connection.
    sealog_store::realm_store::conformance::drains(&mut realms);
    use sealog_store::DrainStore;
    let before = realms.drains(None).expect("list");
    drop(realms);
    let realms = sealog_pg::PgRealms::connect(&s.url()).expect("reconnect");
    sealog_store::realm_store::conformance::drains_after_reopen(&realms, &before);
    // Two nodes adding a realm's last drain at once: one gets it, the
    // other is told the realm is full (the cap holds across connections).
    let beta = realms.drains(Some("beta")).expect("list").len();
    for i in beta..sealog_store::MAX_DRAINS_PER_REALM - 1 {
        let mut r = sealog_pg::PgRealms::connect(&s.url()).expect("connect");
        r.add_drain(
            "beta",
            sealog_store::Select::Site {
                site: format!("s{i}.example.com"),
            },
            "syslog://h:514",
            sealog_store::StoredFraming::Newline,
        )
        .expect("under the cap");
    }
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let racers: Vec<_> = (0..4)
        .map(|k| {
            let (url, barrier) = (s.url(), barrier.clone());
            std::thread::spawn(move || {
                let mut r = sealog_pg::PgRealms::connect(&url).expect("connect");
                barrier.wait();
                r.add_drain(
                    "beta",
                    sealog_store::Select::Site {
                        site: format!("race{k}.example.com"),
                    },
                    "syslog://h:514",
                    sealog_store::StoredFraming::Newline,
                )
            })
        })
        .collect();
    let won = racers
        .into_iter()
        .map(|t| t.join().expect("racer"))
        .filter(|r| r.is_ok())
        .count();
    assert_eq!(
        won, 1,
        "exactly one of four concurrent adds takes the last place"
    );
    assert_eq!(
        realms.drains(Some("beta")).expect("list").len(),
        sealog_store::MAX_DRAINS_PER_REALM
    );
    // A hostile row is a named error, not a panic or a guess.
    let id = realms.drains(Some("beta")).expect("list")[0].id.clone();
    c.execute(
        "INSERT INTO sealog_drain_cursors (id, cursor, delivered) VALUES ($1, 5, 5)",
        &[&id],
    )
    .expect("cursor");
    c.execute(
        "ALTER TABLE sealog_drain_cursors DROP CONSTRAINT sealog_drain_cursors_cursor_check",
        &[],
    )
    .expect("drop check");
    c.execute(
        "UPDATE sealog_drain_cursors SET cursor = -5 WHERE id = $1",
        &[&id],
    )
    .expect("plant");
    let e = realms.drain_cursor(&id).expect_err("a negative cursor");
    assert!(e.to_string().contains("cursor is -5"), "{e}");
    c.execute(
        "UPDATE sealog_drains SET select_json = '{\"kind\":\"bogus\"}' WHERE id = $1",
        &[&id],
    )
    .expect("plant");
    let e = realms.drains(Some("beta")).expect_err("a bad selection");
    assert!(e.to_string().contains("selection does not parse"), "{e}");
}

#[test]
fn a_realm_made_in_postgres_is_written_with_its_stored_key() {
    use sealog_store::RealmStore;
    let s = Schema::new();
    let mut realms = sealog_pg::PgRealms::connect(&s.url()).expect("connect");
    let name = sealog_event::RealmName::new("made").expect("name");
    realms.create_realm(&name).expect("create");
    let signer = realms.realm_signer(&name).expect("signer");
    let mut log = PgLog::open_writer(&s.url(), "made", signer, "w", JournalOptions::default())
        .expect("writer");
    append(&mut log, 0, 10);
    let key = realms.verifier_key(&name).expect("key");
    let report =
        sealog_pg::verify_realm(&mut s.client(), "made", &key, &strict(), &|_| {}).expect("verify");
    assert!(report.ok(), "{:?}", report.findings);
    // Another key (this file's test key) does not verify it.
    assert!(!verify(&s, "made", &strict()).ok());
}
