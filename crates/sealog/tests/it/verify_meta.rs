//! `sealog verify` when a metadata file it needs is damaged or missing: a
//! verification failure (exit 1) naming the file, not a usage error.

use crate::util::{events, path_str, Run, Sealog};

/// A realm `acme` with 500 records; returns its verifier key.
fn setup() -> (Sealog, String) {
    let s = Sealog::new();
    let realm = s.realm("acme");
    let f = s.file("in.ndjson", &events(0, 500));
    s.run(&["ingest", "--realm", "acme", path_str(&f)]).ok();
    s.run(&["verify", "--realm", "acme"]).ok();
    let key = realm["public_key"].as_str().expect("key").to_string();
    (s, key)
}

fn flip_byte_near_end(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).expect("read");
    let n = bytes.len();
    bytes[n - 8] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

fn assert_failed(r: &Run, needles: &[&str]) {
    assert_eq!(
        r.code, 1,
        "a verification failure\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.is_empty(), "nothing reported ok: {}", r.stdout);
    for n in needles {
        assert!(r.stderr.contains(n), "expected {n:?} in:\n{}", r.stderr);
    }
}

#[test]
fn damaged_realm_meta_fails_verification() {
    let (s, key) = setup();
    let meta = s.data().join("realms/acme/realm.meta");
    let saved = std::fs::read(&meta).expect("read");
    flip_byte_near_end(&meta);
    let r = s.run(&["verify", "--realm", "acme"]);
    assert_failed(
        &r,
        &["verification FAILED", "realm.meta", "checksum", "--key"],
    );
    // With the key the operator kept, the journal is verified, and the
    // damage to realm.meta still fails the verification.
    let r = s.run(&["verify", "--realm", "acme", "--key", &key]);
    assert_failed(&r, &["realm.meta", "checksum", "500 records"]);
    std::fs::write(&meta, saved).expect("restore");
    s.run(&["verify", "--realm", "acme"]).ok();
}

#[test]
fn missing_realm_meta_fails_verification() {
    let (s, key) = setup();
    std::fs::remove_file(s.data().join("realms/acme/realm.meta")).expect("rm");
    let r = s.run(&["verify", "--realm", "acme"]);
    assert_failed(&r, &["realm.meta is missing", "--key"]);
    let r = s.run(&["verify", "--realm", "acme", "--key", &key]);
    assert_failed(&r, &["realm.meta is missing", "500 records"]);
    // A realm that was never there is still a usage error.
    let r = s.run(&["verify", "--realm", "ghost"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no realm named ghost"), "{}", r.stderr);
}

#[test]
fn damaged_or_missing_data_dir_marker_fails_verification() {
    let (s, _) = setup();
    let marker = s.data().join("sealog.meta");
    let saved = std::fs::read(&marker).expect("read");
    flip_byte_near_end(&marker);
    let r = s.run(&["verify", "--realm", "acme"]);
    assert_failed(&r, &["verification FAILED", "sealog.meta", "checksum"]);
    let r = s.run(&["verify", "--realm", "ghost"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no realm named ghost"), "{}", r.stderr);

    std::fs::remove_file(&marker).expect("rm");
    let r = s.run(&["verify", "--realm", "acme"]);
    assert_failed(&r, &["sealog.meta is missing"]);

    std::fs::write(&marker, saved).expect("restore");
    s.run(&["verify", "--realm", "acme"]).ok();
}
