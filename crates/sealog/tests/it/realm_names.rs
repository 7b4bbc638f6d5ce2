//! Realm names reach the filesystem only validated (issue 8, finding 5):
//! a name that could leave the data directory is refused before anything
//! is opened, and verifying a realm that is not there is a usage error
//! that creates nothing.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::{events, path_str, Sealog};

/// Every path under `root`, recursively.
fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).expect("list").flatten() {
            let p = e.path();
            out.insert(
                p.strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string(),
            );
            if p.is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn a_realm_name_that_leaves_the_data_directory_is_refused_and_creates_nothing() {
    let s = Sealog::new();
    s.realm("acme");
    let f = s.file("in.ndjson", &events(0, 10));
    let key = s
        .run(&["realm", "key", "acme"])
        .ok()
        .stdout
        .trim()
        .to_string();
    // The data directory is <tmp>/data: `../../x` from its `realms/` is <tmp>/x.
    let before = tree(s.dir.path());
    for args in [
        vec!["verify", "--key", &key, "--realm", "../../x"],
        vec!["verify", "--realm", "../x"],
        vec!["ingest", "--realm", "../../x", path_str(&f)],
        vec!["query", "--realm", "../../x"],
        vec!["checkpoint", "--realm", "../x"],
        vec!["export", "--realm", "../x", "--out", "/dev/null"],
        vec!["token", "issue", "--realm", "../x", "--scope", "write"],
        vec!["token", "list", "--realm", "../x"],
        vec!["realm", "key", "../x"],
        vec!["realm", "create", "../x"],
        vec!["verify", "--realm", "acme/../acme"],
        vec!["verify", "--realm", ""],
    ] {
        let r = s.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("realm name"), "{args:?}: {}", r.stderr);
    }
    assert_eq!(tree(s.dir.path()), before, "nothing was created");
}

#[test]
fn verifying_a_realm_that_is_not_there_is_a_usage_error_that_creates_nothing() {
    let s = Sealog::new();
    s.realm("payments");
    let f = s.file("in.ndjson", &events(0, 10));
    s.run(&["ingest", "--realm", "payments", path_str(&f)]).ok();
    let key = s
        .run(&["realm", "key", "payments"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let before = tree(s.dir.path());
    // A mistyped realm used to verify "ok, 0 records".
    for args in [
        vec!["verify", "--realm", "payment"],
        vec!["verify", "--realm", "payment", "--key", &key],
    ] {
        let r = s.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        let want = format!("no realm named payment in {}", s.data().display());
        assert!(r.stderr.contains(&want), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
    assert_eq!(tree(s.dir.path()), before, "nothing was created");

    // Nor is a data directory made to verify a realm in it.
    let missing = s.dir.path().join("no-such-data");
    let r = std::process::Command::new(crate::util::bin())
        .arg("--data")
        .arg(&missing)
        .args(["verify", "--realm", "payments"])
        .env_remove("SEALOG_URL")
        .env_remove("SEALOG_TOKEN")
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("no realm named payments"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(!missing.exists(), "the data directory was created");
    s.run(&["verify", "--realm", "payments"]).ok();
}
