//! The local CLI end to end: realms, tokens, ingest, query, checkpoint,
//! verify, export, and what happens with bad input.

use std::os::unix::fs::PermissionsExt;

use sealog_journal::checkpoint::VerifierKey;

use crate::util::{events, path_str, Sealog};

#[test]
fn realms_and_tokens() {
    let s = Sealog::new();
    let out = s.dir.path().join("acme.json");
    let r = s
        .run(&["realm", "create", "acme", "--out", path_str(&out)])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["realm"], "acme");
    assert!(v["write_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("slw_")));
    assert!(v["query_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("slq_")));
    let key: VerifierKey = v["public_key"]
        .as_str()
        .expect("key")
        .parse()
        .expect("verifier key");
    assert_eq!(key.name(), "sealog/acme");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("json");
    assert_eq!(saved, v);
    assert_eq!(
        std::fs::metadata(&out).expect("stat").permissions().mode() & 0o777,
        0o600
    );

    let again = s.run(&["realm", "create", "acme"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let bad = s.run(&["realm", "create", "Bad/Name"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("realm name"), "{}", bad.stderr);

    let list = s.run(&["realm", "list"]).ok();
    assert_eq!(list.stdout.lines().count(), 1);
    let k = s.run(&["realm", "key", "acme"]).ok();
    assert_eq!(k.stdout.trim(), v["public_key"].as_str().expect("key"));

    let t = s
        .run(&["token", "issue", "--realm", "acme", "--scope", "query"])
        .ok();
    let t: serde_json::Value = serde_json::from_str(&t.stdout).expect("json");
    let id = t["id"].as_str().expect("id");
    let listed = s.run(&["token", "list", "--realm", "acme"]).ok();
    assert_eq!(listed.stdout.lines().count(), 3);
    assert!(
        !listed.stdout.contains(t["token"].as_str().expect("secret")),
        "secrets are never listed"
    );
    let revoked = s.run(&["token", "revoke", id]).ok();
    assert!(revoked.stdout.contains("revoked_at"));
    let unknown = s.run(&["token", "revoke", "tok_nope"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("unknown token id"),
        "{}",
        unknown.stderr
    );
    let unknown_realm = s.run(&["token", "issue", "--realm", "ghost", "--scope", "write"]);
    assert_eq!(unknown_realm.code, 2);
    assert!(
        unknown_realm.stderr.contains("unknown realm \"ghost\""),
        "{}",
        unknown_realm.stderr
    );
}

#[test]
fn ingest_query_checkpoint_verify_export() {
    let s = Sealog::new();
    let realm = s.realm("pay");
    let f = s.file("in.ndjson", &events(0, 2000));
    let r = s
        .run(&["ingest", "--realm", "pay", path_str(&f), "--batch", "700"])
        .ok();
    let receipt: serde_json::Value = serde_json::from_str(&r.stdout).expect("receipt json");
    assert_eq!(receipt["first_seq"], 0);
    assert_eq!(receipt["last_seq"], 1999);
    assert_eq!(receipt["count"], 2000);
    let key: VerifierKey = realm["public_key"]
        .as_str()
        .expect("key")
        .parse()
        .expect("key");
    let cp = key
        .verify(receipt["checkpoint"].as_str().expect("note"))
        .expect("receipt checkpoint verifies with the realm key");
    assert_eq!(cp.size, 2000);

    // stdin works too, and seqs continue.
    let r2 = s
        .run_stdin(&["ingest", "--realm", "pay", "-"], &events(2000, 10))
        .ok();
    assert!(r2.stdout.contains("\"first_seq\":2000"), "{}", r2.stdout);

    let q = s
        .run(&[
            "query",
            "--realm",
            "pay",
            "--where",
            "app=payments",
            "--limit",
            "5",
        ])
        .ok();
    let lines: Vec<serde_json::Value> = q
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("leaf line is JSON"))
        .collect();
    assert_eq!(lines.len(), 5);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["app"], "payments");
        assert_eq!(l["seq"], (i * 7) as u64, "matching records in seq order");
        assert_eq!(l["realm"], "pay");
    }
    let newest = s
        .run(&["query", "--realm", "pay", "--newest", "--limit", "1"])
        .ok();
    assert!(newest.stdout.contains("\"seq\":2009,"), "{}", newest.stdout);
    let text = s
        .run(&["query", "--realm", "pay", "--q", "event number 1999\""])
        .ok();
    assert_eq!(text.stdout.lines().count(), 1);
    let window = s
        .run(&[
            "query",
            "--realm",
            "pay",
            "--from",
            "2026-11-22T06:01:00Z",
            "--to",
            "2026-11-22T06:02:00Z",
        ])
        .ok();
    // Event times repeat every hour of n; n in 60..120 and 3660.. fall in this minute.
    assert!(
        window.stdout.lines().count() >= 60,
        "{}",
        window.stdout.lines().count()
    );
    let bad_where = s.run(&["query", "--realm", "pay", "--where", "novalue"]);
    assert_eq!(bad_where.code, 2);
    assert!(
        bad_where.stderr.contains("key=value"),
        "{}",
        bad_where.stderr
    );

    let c = s.run(&["checkpoint", "--realm", "pay"]).ok();
    assert!(c.stdout.starts_with("sealog/pay\n2010\n"), "{}", c.stdout);
    assert_eq!(key.verify(&c.stdout).expect("verifies").size, 2010);

    let v = s.run(&["verify", "--realm", "pay"]).ok();
    assert!(
        v.stdout.starts_with("ok: realm pay: 2010 records"),
        "{}",
        v.stdout
    );

    let bundle = s.dir.path().join("slice.bundle");
    s.run(&[
        "export",
        "--realm",
        "pay",
        "--from-seq",
        "100",
        "--to-seq",
        "199",
        "--out",
        path_str(&bundle),
    ])
    .ok();
    let pk = realm["public_key"].as_str().expect("key");
    let ok = s
        .run(&["verify-bundle", path_str(&bundle), "--key", pk])
        .ok();
    assert!(ok.stdout.contains("100 records"), "{}", ok.stdout);
    // Change one record in the bundle: offline verification fails and names it.
    let text = std::fs::read_to_string(&bundle).expect("read");
    let forged = text.replacen("event number 150\"", "event number 15O\"", 1);
    assert_ne!(forged, text);
    std::fs::write(&bundle, forged).expect("write");
    let bad = s.run(&["verify-bundle", path_str(&bundle), "--key", pk]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("FAILED"), "{}", bad.stderr);
    // A key of another realm is refused.
    let other = s.realm("other");
    let wrong = s.run(&[
        "verify-bundle",
        path_str(&bundle),
        "--key",
        other["public_key"].as_str().expect("key"),
    ]);
    assert_eq!(wrong.code, 1);
}

#[test]
fn malformed_ingest_names_the_line_and_appends_nothing() {
    let s = Sealog::new();
    s.realm("acme");
    let mut input = events(0, 2);
    input.extend_from_slice(b"{\"broken\": tru}\n");
    input.extend_from_slice(&events(2, 2));
    let f = s.file("bad.ndjson", &input);
    let r = s.run(&["ingest", "--realm", "acme", path_str(&f)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("line 3:"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing appended"), "{}", r.stderr);
    assert!(!r.stderr.contains("line 4"), "{}", r.stderr);
    let c = s.run(&["checkpoint", "--realm", "acme"]);
    assert_eq!(c.code, 2, "nothing was committed");
    assert!(c.stderr.contains("no records yet"), "{}", c.stderr);

    for (input, reason) in [
        (&b"[1,2]\n"[..], "JSON object"),
        (&b"{\"seq\":5}\n"[..], "reserved"),
        (&b"{\"a\":\"\xff\"}\n"[..], "UTF-8"),
    ] {
        let r = s.run_stdin(&["ingest", "--realm", "acme", "-"], input);
        assert_eq!(r.code, 2);
        assert!(
            r.stderr.contains("line 1:") && r.stderr.contains(reason),
            "{}",
            r.stderr
        );
    }
    let r = s.run_stdin(&["ingest", "--realm", "ghost", "-"], &events(0, 1));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown realm"), "{}", r.stderr);
    let r = s.run_stdin(&["ingest", "--realm", "acme", "-"], b"\n\n");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no events"), "{}", r.stderr);
}

#[test]
fn a_second_process_gets_a_clear_error() {
    let s = Sealog::new();
    s.realm("acme");
    let held = sealog_store::DataDir::open(&s.data(), "test holder").expect("lock");
    let r = s.run(&["realm", "list"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("in use by another process"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("test holder"), "{}", r.stderr);
    drop(held);
    s.run(&["realm", "list"]).ok();
}

#[test]
fn damaged_metadata_is_a_precise_error() {
    let s = Sealog::new();
    s.realm("acme");
    let tokens = s.data().join("tokens.meta");
    let mut bytes = std::fs::read(&tokens).expect("read");
    let n = bytes.len();
    bytes[n - 10] ^= 0x20;
    std::fs::write(&tokens, bytes).expect("write");
    let r = s.run(&["token", "list"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("tokens.meta") && r.stderr.contains("checksum"),
        "{}",
        r.stderr
    );
    let seg_dir = s.data().join("realms/acme/journal");
    std::fs::create_dir_all(&seg_dir).expect("mkdir");
    std::fs::write(
        seg_dir.join("00000000000000000000.seg"),
        b"GIF89a not a segment, not at all",
    )
    .expect("write");
    let r = s.run(&["query", "--realm", "acme"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a sealog segment"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn receipts_file_with_an_unfinished_last_line() {
    let s = Sealog::new();
    s.realm("rc");
    let f = s.file("in.ndjson", &events(0, 900));
    let receipts = s.dir.path().join("receipts.ndjson");
    s.run(&[
        "ingest",
        "--realm",
        "rc",
        path_str(&f),
        "--batch",
        "300",
        "--receipts-out",
        path_str(&receipts),
    ])
    .ok();
    let text = std::fs::read_to_string(&receipts).expect("read");
    assert_eq!(
        text.lines().count(),
        3,
        "one receipt line per commit: {text}"
    );
    assert!(text.ends_with('\n'));

    // A client killed while writing its last receipt: that line is skipped
    // with a warning, the finished ones are still checked.
    let cut = s.file("cut.ndjson", &text.as_bytes()[..text.len() - 40]);
    let v = s.run(&["verify", "--realm", "rc", "--receipts", path_str(&cut)]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stderr.contains("line 3: unfinished last line skipped"),
        "{}",
        v.stderr
    );
    assert!(
        v.stdout.contains("2 client checkpoints/receipts hold"),
        "{}",
        v.stdout
    );

    // Damage anywhere else is refused, naming the line.
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = &lines[1][..20];
    let bad = s.file("bad.ndjson", format!("{}\n", lines.join("\n")).as_bytes());
    let v = s.run(&["verify", "--realm", "rc", "--receipts", path_str(&bad)]);
    assert_eq!(v.code, 2, "{}{}", v.stdout, v.stderr);
    assert!(v.stderr.contains("line 2: not a receipt"), "{}", v.stderr);
}
