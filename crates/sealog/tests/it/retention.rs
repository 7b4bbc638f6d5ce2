//! `sealog retention` (issue 12, acceptance 4): 1,000,000 LogHarbour
//! entries, `--days` removes the older half, the journal shrinks, `verify`
//! passes and reports the retained-out range, a checkpoint from before
//! retention (inside the removed range) is still proven consistent with the
//! newest, and tampering with a surviving record is still caught. Through
//! a server too: the admin route, the proofs, a filtered run, a realm's
//! query token refused.

use std::path::Path;

use sealog_journal::merkle;
use sealog_journal::tamper::{self, Hints};

use crate::util::{path_str, Sealog, Served};

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// LogHarbour entries `from..from + n`, each `age_days` old (minus i ms).
fn entries(from: u64, n: u64, age_days: i64, now: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * 230);
    let apps = ["shop", "bank", "crm", "hr"];
    for i in from..from + n {
        let when = sealog_event::format_rfc3339_nanos(
            now - age_days * NS_PER_DAY - (n - (i - from)) as i64 * 1_000_000,
        );
        let app = apps[(i % 4) as usize];
        let typ = ["A", "C", "D"][(i % 3) as usize];
        out.extend_from_slice(
            format!(
                r#"{{"id":"e{i}","app":"{app}","system":"node{}","module":"orders","type":"{typ}","pri":"Info","who":"user{}","op":"ship","when":"{when}","remote_ip":"10.0.{}.{}","msg":"order {i} shipped"}}"#,
                i % 16,
                i % 1000,
                (i / 256) % 256,
                i % 256
            )
            .as_bytes(),
        );
        out.push(b'\n');
    }
    out
}

fn journal_bytes(s: &Sealog, realm: &str) -> u64 {
    let dir = s.data().join("realms").join(realm).join("journal");
    std::fs::read_dir(&dir)
        .expect("journal dir")
        .map(|e| e.expect("entry").metadata().expect("stat").len())
        .sum()
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn days_removes_the_older_half_of_a_million_and_every_proof_still_holds() {
    let s = Sealog::new();
    s.realm("acme");
    let now = sealog_event::now_ns();
    // 250,000 old entries, a checkpoint kept by a client, 250,000 more old
    // ones, then 500,000 recent ones.
    let f = s.file("a.ndjson", &entries(0, 250_000, 90, now));
    s.run(&["ingest", "--realm", "acme", path_str(&f)]).ok();
    let cp = s.run(&["checkpoint", "--realm", "acme"]).ok().stdout;
    let old_cp = s.file("old.checkpoint", cp.as_bytes());
    let f = s.file("b.ndjson", &entries(250_000, 250_000, 60, now));
    s.run(&["ingest", "--realm", "acme", path_str(&f)]).ok();
    let f = s.file("c.ndjson", &entries(500_000, 500_000, 1, now));
    s.run(&["ingest", "--realm", "acme", path_str(&f)]).ok();
    std::fs::remove_file(&f).expect("rm");
    let before = journal_bytes(&s, "acme");

    // A dry run counts and changes nothing.
    let dry = json(
        &s.run(&["retention", "--realm", "acme", "--days", "30", "--dry-run"])
            .ok()
            .stdout,
    );
    assert_eq!(dry["removed"], 500_000);
    assert_eq!(dry["ranges"], serde_json::json!([[0, 500_000]]));
    assert_eq!(dry["record"], serde_json::Value::Null);
    assert_eq!(journal_bytes(&s, "acme"), before);

    // Without --force and off a terminal it refuses (and says why).
    let r = s.run(&["retention", "--realm", "acme", "--days", "30"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("500000 records") && r.stderr.contains("--force"));
    // Bad words are usage errors.
    let r = s.run(&["retention", "--realm", "acme", "--days", "0", "--force"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("days must be at least 1"), "{}", r.stderr);
    let r = s.run(&["retention", "--realm", "nope", "--days", "3", "--force"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    let done = json(
        &s.run(&["retention", "--realm", "acme", "--days", "30", "--force"])
            .ok()
            .stdout,
    );
    assert_eq!(done["removed"], 500_000);
    assert_eq!(done["record_id"], 1);
    assert!(done["record"]
        .as_str()
        .is_some_and(|t| t.contains("policy days=30\n")));
    let after = journal_bytes(&s, "acme");
    println!(
        "journal: {before} bytes before, {after} after removing half the records ({:.1}%)",
        after as f64 * 100.0 / before as f64
    );
    // Half the bodies went; what stays of them is a tombstone and a hash.
    assert!(
        (after as f64) < before as f64 * 0.65,
        "{before} → {after} bytes"
    );

    // verify passes, with the old checkpoint as evidence, and reports the
    // range as retained out.
    let v = s
        .run(&[
            "verify",
            "--realm",
            "acme",
            "--checkpoint",
            path_str(&old_cp),
        ])
        .ok();
    let out = format!("{}{}", v.stdout, v.stderr);
    assert!(
        out.contains("retained out: 500000 records (seqs 0..500000)"),
        "{out}"
    );
    assert!(out.contains("retention record 1"), "{out}");

    // A query answers from the records left: the oldest is now seq 500000,
    // and a removed one is not found.
    let q = s
        .run(&["query", "--realm", "acme", "--limit", "1"])
        .ok()
        .stdout;
    assert!(q.contains(r#""seq":500000,"#), "{q}");
    let q = s
        .run(&["query", "--realm", "acme", "--where", "id=e1234"])
        .ok()
        .stdout;
    assert!(q.trim().is_empty(), "{q}");

    // An export starts after the removed records by default and verifies;
    // one across them is refused with the reason.
    let bundle = s.dir.path().join("b.bundle");
    let r = s
        .run(&["export", "--realm", "acme", "--out", path_str(&bundle)])
        .ok();
    assert!(
        r.stderr.contains("exported seqs 500000..=999999"),
        "{}",
        r.stderr
    );
    let key = s.run(&["realm", "key", "acme"]).ok().stdout;
    s.run(&["verify-bundle", path_str(&bundle), "--key", key.trim()])
        .ok();
    let r = s.run(&[
        "export",
        "--realm",
        "acme",
        "--from-seq",
        "10",
        "--to-seq",
        "20",
        "--out",
        path_str(&bundle),
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("retained out by retention record 1"),
        "{}",
        r.stderr
    );

    // Tampering with a surviving record is still caught at its seq.
    let journal = s.data().join("realms/acme/journal");
    let target = 700_000u64;
    let mut edited = false;
    for seg in list_segments(&journal) {
        tamper::rewrite_blocks(&seg, Hints::Keep, |first, lines| {
            if (first..first + lines.len() as u64).contains(&target) {
                let l = &mut lines[(target - first) as usize];
                *l = String::from_utf8_lossy(l)
                    .replace("shipped", "refunded")
                    .into_bytes();
                edited = true;
            }
        })
        .expect("tamper");
    }
    assert!(edited);
    let v = s.run(&["verify", "--realm", "acme"]);
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stdout.contains("seq 700000") || v.stderr.contains("seq 700000"),
        "{}{}",
        v.stdout,
        v.stderr
    );
}

fn list_segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs
}

#[test]
fn through_a_server_the_admin_route_runs_it_and_proofs_still_verify() {
    let s = Sealog::new();
    let created = s.realm("shop");
    let query = created["query_token"]
        .as_str()
        .expect("query token")
        .to_string();
    let now = sealog_event::now_ns();
    let f = s.file("a.ndjson", &entries(0, 6_000, 90, now));
    s.run(&["ingest", "--realm", "shop", path_str(&f), "--batch", "1000"])
        .ok();
    let old = s.run(&["checkpoint", "--realm", "shop"]).ok().stdout;
    let f = s.file("b.ndjson", &entries(6_000, 4_000, 1, now));
    s.run(&["ingest", "--realm", "shop", path_str(&f), "--batch", "1000"])
        .ok();
    let key: sealog_journal::checkpoint::VerifierKey = s
        .run(&["realm", "key", "shop"])
        .ok()
        .stdout
        .trim()
        .parse()
        .expect("key");
    let srv = Served::start(&s);
    let admin = std::fs::read_to_string(s.data().join("admin.token")).expect("admin token");
    let admin = admin.trim();
    let http = reqwest::blocking::Client::new();
    let post = |token: &str, body: serde_json::Value| {
        http.post(format!("{}/v1/admin/retention", srv.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .expect("post")
    };
    // No token, a query token: refused.
    let r = http
        .post(format!("{}/v1/admin/retention", srv.base))
        .json(&serde_json::json!({"realm": "shop", "days": 30}))
        .send()
        .expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(
        post(&query, serde_json::json!({"realm": "shop", "days": 30})).status(),
        403
    );
    // Bad values: 400 naming them; unknown realm 404; unknown field 422.
    let r = post(
        admin,
        serde_json::json!({"realm": "shop", "days": 30, "type": "Z"}),
    );
    assert_eq!(r.status(), 400);
    assert!(r.text().expect("body").contains("not a LogHarbour type"));
    assert_eq!(
        post(admin, serde_json::json!({"realm": "none", "days": 30})).status(),
        404
    );
    assert_eq!(
        post(
            admin,
            serde_json::json!({"realm": "shop", "days": 30, "bogus": 1})
        )
        .status(),
        422
    );
    // GetSet counts (from block summaries once made) before and after.
    let shop_count = || -> u64 {
        let v: serde_json::Value = http
            .get(format!("{}/v1/sets?attr=app", srv.base))
            .bearer_auth(&query)
            .send()
            .expect("get")
            .json()
            .expect("json");
        v["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .find(|c| c["value"] == "shop")
            .and_then(|c| c["count"].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(shop_count(), 2_500);
    assert_eq!(shop_count(), 2_500);
    // A filtered run: only app=shop entries older than 30 days.
    let r = post(
        admin,
        serde_json::json!({"realm": "shop", "days": 30, "app": "shop"}),
    );
    assert_eq!(r.status(), 200);
    let rep: serde_json::Value = r.json().expect("json");
    assert_eq!(rep["removed"], 1_500, "{rep}");
    assert_eq!(rep["ranges_total"], 1_500);
    assert_eq!(rep["policy"], "days=30 app=shop");
    assert_eq!(
        shop_count(),
        1_000,
        "the removed entries are no longer counted"
    );
    // The server still takes writes and serves reads and proofs.
    let cp = http
        .get(format!("{}/v1/checkpoint", srv.base))
        .bearer_auth(&query)
        .send()
        .expect("get")
        .text()
        .expect("text");
    let new = key.verify(&cp).expect("new checkpoint");
    let old_text = old.clone();
    let old = key.verify(&old).expect("old checkpoint");
    let proof: serde_json::Value = http
        .get(format!(
            "{}/v1/proof/consistency?from={}&to={}",
            srv.base, old.size, new.size
        ))
        .bearer_auth(&query)
        .send()
        .expect("get")
        .json()
        .expect("json");
    let hashes: Vec<merkle::Hash> = proof["hashes"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| {
            let b = base64_decode(h.as_str().expect("str"));
            b.try_into().expect("32 bytes")
        })
        .collect();
    merkle::verify_consistency(old.size, new.size, &hashes, &old.root, &new.root)
        .expect("the old checkpoint is consistent with the newest");
    // verify through the admin API reports the retained-out records.
    let v: serde_json::Value = http
        .post(format!("{}/v1/admin/verify", srv.base))
        .bearer_auth(admin)
        .json(&serde_json::json!({"realm": "shop", "checkpoints": [old_text]}))
        .send()
        .expect("post")
        .json()
        .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["retained"][0]["records"], 1_500, "{v}");
    assert_eq!(v["retained"][0]["policy"], "days=30 app=shop");
    srv.stop();
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}
