//! `sealog migrate` and `--postgres` against the machine's PostgreSQL
//! (`SEALOG_TEST_POSTGRES`; `.ci/run` starts it), each test in a schema of
//! its own.

use crate::util::{events, path_str, Sealog};

fn base_url() -> String {
    std::env::var("SEALOG_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into())
}

/// Tests that use PostgreSQL share it; one that restarts it runs alone.
static PG: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// How a test holds PostgreSQL (dropped after its schema).
#[allow(dead_code)]
enum Hold {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Alone(std::sync::RwLockWriteGuard<'static, ()>),
}

pub struct Schema(String, #[allow(dead_code)] Hold);

impl Schema {
    /// A schema of its own, PostgreSQL shared with other tests.
    pub fn new() -> Self {
        let hold = Hold::Shared(PG.read().unwrap_or_else(std::sync::PoisonError::into_inner));
        Self::make(hold)
    }

    /// A schema of its own, and PostgreSQL to this test alone (it may
    /// restart the server).
    pub fn alone() -> Self {
        let hold = Hold::Alone(
            PG.write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        Self::make(hold)
    }

    fn make(hold: Hold) -> Self {
        let name = format!(
            "sealog_cli{}_{:x}",
            std::process::id(),
            rand::random::<u32>()
        );
        postgres::Client::connect(&base_url(), postgres::NoTls)
            .expect("PostgreSQL is needed (.ci/run starts it)")
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("schema");
        Self(name, hold)
    }

    pub fn url(&self) -> String {
        format!("{} options='-c search_path={}'", base_url(), self.0)
    }

    pub fn sql(&self, q: &str) {
        postgres::Client::connect(&self.url(), postgres::NoTls)
            .expect("connect")
            .batch_execute(q)
            .expect(q);
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&base_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.0));
        }
    }
}

#[test]
fn migrate_copies_a_realm_that_then_verifies_and_answers_the_same_over_postgres() {
    let s = Sealog::new();
    let pg = Schema::new();
    let url = pg.url();
    s.realm("pay");
    let f = s.file("a.ndjson", &events(0, 3000));
    s.run(&["ingest", "--realm", "pay", path_str(&f), "--batch", "700"])
        .ok();
    let old_cp = s.run(&["checkpoint", "--realm", "pay"]).ok().stdout;
    let old_cp_file = s.file("old.checkpoint", old_cp.as_bytes());

    let m = s
        .run(&["migrate", "--realm", "pay", "--to-postgres", &url])
        .ok();
    assert!(
        m.stderr.contains("3000 records in 5 commits copied"),
        "{}",
        m.stderr
    );

    // The same checkpoint, byte for byte: nothing was re-signed.
    let pg_cp = s
        .run(&["--postgres", &url, "checkpoint", "--realm", "pay"])
        .ok()
        .stdout;
    assert_eq!(pg_cp, old_cp);
    let key = s.run(&["realm", "key", "pay"]).ok().stdout;
    let v = s
        .run(&[
            "--postgres",
            &url,
            "verify",
            "--realm",
            "pay",
            "--key",
            key.trim(),
            "--checkpoint",
            path_str(&old_cp_file),
        ])
        .ok();
    assert!(v.stdout.contains("3000"), "{}", v.stdout);

    // Queries answer the same from either store.
    for args in [
        vec!["query", "--realm", "pay", "--where", "app=payments"],
        vec!["query", "--realm", "pay", "--q", "number 299"],
    ] {
        let here = s.run(&args).ok().stdout;
        let mut over = vec!["--postgres", url.as_str()];
        over.extend(&args);
        let there = s.run(&over).ok().stdout;
        assert!(!here.is_empty());
        assert_eq!(here, there, "{args:?}");
    }

    // More records, then migrate again: only the new commit is copied.
    s.run_stdin(&["ingest", "--realm", "pay", "-"], &events(3000, 10))
        .ok();
    let m = s
        .run(&["migrate", "--realm", "pay", "--to-postgres", &url])
        .ok();
    assert!(
        m.stderr
            .contains("10 records in 1 commits copied (3000 were there already)"),
        "{}",
        m.stderr
    );
    let pg_cp = s
        .run(&["--postgres", &url, "checkpoint", "--realm", "pay"])
        .ok()
        .stdout;
    assert_eq!(pg_cp, s.run(&["checkpoint", "--realm", "pay"]).ok().stdout);

    // A bundle exported from PostgreSQL verifies on its own.
    let bundle = s.dir.path().join("pg.bundle");
    s.run(&[
        "--postgres",
        &url,
        "export",
        "--realm",
        "pay",
        "--out",
        path_str(&bundle),
    ])
    .ok();
    s.run(&["verify-bundle", path_str(&bundle), "--key", key.trim()])
        .ok();

    // A record edited in PostgreSQL is caught (exit 1).
    pg.sql("UPDATE sealog_blocks SET body = overlay(body placing '\\x00'::bytea from length(body) - 5) WHERE realm = 'pay' AND first_seq = 0");
    let v = s.run(&[
        "--postgres",
        &url,
        "verify",
        "--realm",
        "pay",
        "--key",
        key.trim(),
    ]);
    assert_eq!(v.code, 1, "{}\n{}", v.stdout, v.stderr);

    // ...and an export of the edited block is refused.
    let e = s.run(&[
        "--postgres",
        &url,
        "export",
        "--realm",
        "pay",
        "--out",
        path_str(&bundle),
    ]);
    assert_ne!(e.code, 0);
    assert!(e.stderr.contains("checksum"), "{}", e.stderr);

    // What is not there yet says so (exit 2).
    let r = s.run_stdin(
        &["--postgres", &url, "ingest", "--realm", "pay", "-"],
        &events(0, 1),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("not available on the PostgreSQL store yet"),
        "{}",
        r.stderr
    );
}

#[test]
fn realms_and_tokens_over_postgres() {
    let s = Sealog::new();
    let pg = Schema::new();
    let url = pg.url();
    let created = s.run(&["--postgres", &url, "realm", "create", "ops"]).ok();
    let c: serde_json::Value = serde_json::from_str(&created.stdout).expect("JSON");
    assert!(c["write_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("slw_")));
    let again = s.run(&["--postgres", &url, "realm", "create", "ops"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    let list = s.run(&["--postgres", &url, "realm", "list"]).ok().stdout;
    assert!(list.contains(r#""name":"ops""#), "{list}");
    let key = s
        .run(&["--postgres", &url, "realm", "key", "ops"])
        .ok()
        .stdout;
    assert_eq!(key.trim(), c["public_key"].as_str().expect("key"));
    let issued = s
        .run(&[
            "--postgres",
            &url,
            "token",
            "issue",
            "--realm",
            "ops",
            "--scope",
            "query",
        ])
        .ok()
        .stdout;
    let t: serde_json::Value = serde_json::from_str(&issued).expect("JSON");
    let tokens = s
        .run(&["--postgres", &url, "token", "list", "--realm", "ops"])
        .ok()
        .stdout;
    assert_eq!(tokens.lines().count(), 3, "{tokens}");
    assert!(
        !tokens.contains(t["token"].as_str().expect("secret")),
        "secrets are never listed"
    );
    let id = t["id"].as_str().expect("id");
    let revoked = s
        .run(&["--postgres", &url, "token", "revoke", id])
        .ok()
        .stdout;
    assert!(revoked.contains("revoked_at"), "{revoked}");
    let missing = s.run(&[
        "--postgres",
        &url,
        "token",
        "revoke",
        "tok_0000000000000000",
    ]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
}

#[test]
fn a_source_that_does_not_verify_is_not_migrated() {
    let s = Sealog::new();
    let pg = Schema::new();
    s.realm("pay");
    let f = s.file("a.ndjson", &events(0, 500));
    s.run(&["ingest", "--realm", "pay", path_str(&f)]).ok();
    // One record's text changed, checksums fixed up.
    sealog_journal::tamper::rewrite_blocks(
        &s.segment("pay"),
        sealog_journal::tamper::Hints::Recompute,
        |first, lines| {
            if first == 0 {
                lines[100] = br#"{"forged":true}"#.to_vec();
            }
        },
    )
    .expect("tamper");
    let m = s.run(&["migrate", "--realm", "pay", "--to-postgres", &pg.url()]);
    assert_eq!(m.code, 1, "{}", m.stderr);
    assert!(m.stderr.contains("does not verify"), "{}", m.stderr);
    let r = s.run(&["--postgres", &pg.url(), "checkpoint", "--realm", "pay"]);
    assert_ne!(r.code, 0, "nothing was copied: {}", r.stdout);
}

#[test]
fn a_realm_goes_to_postgres_and_back_with_the_same_checkpoints() {
    let s = Sealog::new();
    let pg = Schema::new();
    let url = pg.url();
    s.realm("pay");
    let f = s.file("a.ndjson", &events(0, 2500));
    s.run(&["ingest", "--realm", "pay", path_str(&f), "--batch", "1000"])
        .ok();
    let cp = s.run(&["checkpoint", "--realm", "pay"]).ok().stdout;
    let key = s.run(&["realm", "key", "pay"]).ok().stdout;
    s.run(&["migrate", "--realm", "pay", "--to-postgres", &url])
        .ok();

    // Into a data directory that has never seen the realm.
    let back = Sealog::new();
    let m = back
        .run(&["migrate", "--realm", "pay", "--from-postgres", &url])
        .ok();
    assert!(
        m.stderr
            .contains("2500 records in 3 commits copied (0 were there already)"),
        "{}",
        m.stderr
    );
    let created: serde_json::Value = serde_json::from_str(&m.stdout).expect("tokens JSON");
    assert!(created["write_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("slw_")));
    assert_eq!(
        back.run(&["realm", "key", "pay"]).ok().stdout,
        key,
        "the key came along"
    );
    assert_eq!(
        back.run(&["checkpoint", "--realm", "pay"]).ok().stdout,
        cp,
        "the same checkpoint note, byte for byte"
    );
    let old = back.file("old.checkpoint", cp.as_bytes());
    back.run(&["verify", "--realm", "pay", "--checkpoint", path_str(&old)])
        .ok();
    assert_eq!(
        back.run(&["query", "--realm", "pay"]).ok().stdout,
        s.run(&["query", "--realm", "pay"]).ok().stdout
    );

    // Records committed in PostgreSQL since (through the store) follow on
    // a second run; a data-directory realm with another key is refused.
    s.run_stdin(&["ingest", "--realm", "pay", "-"], &events(2500, 7))
        .ok();
    s.run(&["migrate", "--realm", "pay", "--to-postgres", &url])
        .ok();
    let m = back
        .run(&["migrate", "--realm", "pay", "--from-postgres", &url])
        .ok();
    assert!(
        m.stderr
            .contains("7 records in 1 commits copied (2500 were there already)"),
        "{}",
        m.stderr
    );
    let other = Sealog::new();
    other.realm("pay");
    let r = other.run(&["migrate", "--realm", "pay", "--from-postgres", &url]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is signed by key"), "{}", r.stderr);
}
