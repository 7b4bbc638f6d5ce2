//! The log side of witnessing, end to end: `sealog serve --witness` with
//! two `sealog witness` processes and quorum 2, under ingest load; a witness
//! gone and back; the realm rolled back on disk and restarted; `verify`,
//! `export` and `verify-bundle` with `--witness`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::cosignature::CosignatureKey;

use crate::util::{events, path_str, Sealog, Served};
use crate::witness::Witness;

/// GET with a bearer token: status and body.
fn get(base: &str, path: &str, token: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .expect("GET");
    (r.status().as_u16(), r.text().expect("body"))
}

fn ingest(base: &str, token: &str, from: u64, n: u64) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}/v1/ingest"))
        .bearer_auth(token)
        .body(events(from, n))
        .send()
        .expect("POST /v1/ingest");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
}

/// The size of `note` after checking the realm's signature and that both
/// witnesses validly cosigned it.
fn cosigned_size(note: &str, log: &VerifierKey, witnesses: &[CosignatureKey]) -> u64 {
    let cp = log.verify(note).expect("the realm's signature");
    for w in witnesses {
        assert!(
            w.cosigned_at(note).expect("valid cosignature").is_some(),
            "no cosignature by {} on {note}",
            w.name()
        );
    }
    cp.size
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

fn serve(s: &Sealog, witnesses: &[&Witness]) -> Served {
    let specs: Vec<String> = witnesses
        .iter()
        .map(|w| format!("{}@{}", w.vkey, w.base))
        .collect();
    let mut args = vec![
        "--witness-quorum",
        "2",
        "--witness-interval",
        "50ms",
        "--witness-max-lag",
        "2s",
    ];
    for w in &specs {
        args.extend(["--witness", w.as_str()]);
    }
    Served::start_with(s, &args, None)
}

fn verify_args(keys: &[String]) -> Vec<&str> {
    let mut a = vec!["verify", "--realm", "acme", "--witness-quorum", "2"];
    for k in keys {
        a.extend(["--witness", k.as_str()]);
    }
    a
}

/// Realm `acme`: its verifier key (text and parsed), write and query
/// tokens.
fn acme(s: &Sealog) -> (String, VerifierKey, String, String) {
    let created: serde_json::Value =
        serde_json::from_str(&s.run(&["realm", "create", "acme"]).ok().stdout).expect("json");
    let log_vkey = created["public_key"].as_str().expect("key").to_string();
    let log_key: VerifierKey = log_vkey.parse().expect("realm key");
    (
        log_vkey,
        log_key,
        created["write_token"].as_str().expect("w").to_string(),
        created["query_token"].as_str().expect("q").to_string(),
    )
}

#[test]
fn two_witnesses_cosign_what_is_served_and_a_rolled_back_realm_loses_its_quorum() {
    let s = Sealog::new();
    let (log_vkey, log_key, w_tok, q_tok) = acme(&s);
    let wdirs = tempfile::tempdir().expect("tempdir");
    let addr2 = free_addr();
    let w1 = Witness::start(
        &wdirs.path().join("w1"),
        "w1.example",
        std::slice::from_ref(&log_vkey),
    );
    let mut w2 = Witness::start_at(
        &wdirs.path().join("w2"),
        &addr2,
        "w2.example",
        std::slice::from_ref(&log_vkey),
    );
    let keys = vec![w1.vkey.clone(), w2.vkey.clone()];
    let wkeys: Vec<CosignatureKey> = keys.iter().map(|k| k.parse().expect("key")).collect();

    // 1. Ten records, cosigned; a copy of the realm as it is then.
    let srv = serve(&s, &[&w1, &w2]);
    let (status, body) = get(&srv.base, "/v1/checkpoint", &q_tok);
    assert_eq!(status, 404, "nothing to cosign yet: {body}");
    ingest(&srv.base, &w_tok, 0, 10);
    wait_until("the first cosigned checkpoint", 20, || {
        get(&srv.base, "/v1/checkpoint", &q_tok).0 == 200
    });
    let note = get(&srv.base, "/v1/checkpoint", &q_tok).1;
    assert_eq!(cosigned_size(&note, &log_key, &wkeys), 10);
    srv.stop();
    let snap = tempfile::tempdir().expect("tempdir");
    copy_dir(&s.data().join("realms/acme"), &snap.path().join("acme"));

    // 2. Under load, every checkpoint served carries both cosignatures and
    // the size never goes back.
    let srv = serve(&s, &[&w1, &w2]);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (base, q, done) = (srv.base.clone(), q_tok.clone(), done.clone());
        let (log_key, wkeys) = (log_key.clone(), wkeys.clone());
        std::thread::spawn(move || {
            let mut sizes = vec![];
            while !done.load(Ordering::Acquire) {
                let (status, note) = get(&base, "/v1/checkpoint", &q);
                assert_eq!(status, 200, "{note}");
                let size = cosigned_size(&note, &log_key, &wkeys);
                assert!(
                    sizes.last().is_none_or(|l| *l <= size),
                    "{sizes:?} then {size}"
                );
                if sizes.last() != Some(&size) {
                    sizes.push(size);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            sizes
        })
    };
    for i in 0..40 {
        ingest(&srv.base, &w_tok, 10 + i * 100, 100);
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_until("all 4,010 records cosigned", 20, || {
        let (_, note) = get(&srv.base, "/v1/checkpoint", &q_tok);
        log_key.verify(&note).map(|c| c.size).ok() == Some(4010)
    });
    done.store(true, Ordering::Release);
    let sizes = reader.join().expect("reader");
    assert!(
        sizes.len() >= 3,
        "the cosigned checkpoint moved with the load: {sizes:?}"
    );
    let m = get(&srv.base, "/metrics", "").1;
    assert!(
        m.contains("sealog_witness_requests_total{witness=\"w1.example\",outcome=\"cosigned\"}")
            && m.contains("sealog_witness_lag_seconds{quantile=\"0.99\"}"),
        "{m}"
    );

    // 3. A witness gone: the served checkpoint stays where the quorum was,
    // ?latest moves on; back, and the quorum returns.
    drop(w2);
    ingest(&srv.base, &w_tok, 4010, 10);
    std::thread::sleep(Duration::from_millis(600));
    let (_, note) = get(&srv.base, "/v1/checkpoint", &q_tok);
    assert_eq!(cosigned_size(&note, &log_key, &wkeys), 4010);
    let (_, latest) = get(&srv.base, "/v1/checkpoint?latest", &q_tok);
    assert_eq!(log_key.verify(&latest).expect("signed").size, 4020);
    assert!(
        wkeys[0].cosigned_at(&latest).expect("ok").is_none(),
        "?latest is the plain signed note"
    );
    w2 = Witness::start_at(
        &wdirs.path().join("w2"),
        &addr2,
        "w2.example",
        std::slice::from_ref(&log_vkey),
    );
    wait_until("the quorum again after the witness came back", 20, || {
        let (_, note) = get(&srv.base, "/v1/checkpoint", &q_tok);
        log_key.verify(&note).map(|c| c.size).ok() == Some(4020)
    });
    let (status, ready) = get(&srv.base, "/ready", "");
    assert_eq!(status, 200, "{ready}");
    srv.stop();

    // 4. Stopped, the data directory verifies with the witnesses, and a
    // bundle carries both cosignatures.
    let ok = s.run(&verify_args(&keys)).ok();
    assert!(
        ok.stdout.starts_with("ok: realm acme: 4020 records"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stderr
            .contains("covered by a checkpoint of size 4020 cosigned"),
        "{}",
        ok.stderr
    );
    let bundle = s.dir.path().join("b.ndjson");
    s.run(&["export", "--realm", "acme", "--out", path_str(&bundle)])
        .ok();
    let mut vb = vec!["verify-bundle", path_str(&bundle), "--key", &log_vkey];
    for k in &keys {
        vb.extend(["--witness", k.as_str()]);
    }
    let out = s.run(&vb).ok();
    assert!(
        out.stdout.contains("cosigned by a quorum of 2"),
        "{}",
        out.stdout
    );
    // A bundle without the cosignatures fails the same check.
    let text = std::fs::read_to_string(&bundle).expect("bundle");
    let (head, rest) = text.split_once('\n').expect("header");
    let mut h: serde_json::Value = serde_json::from_str(head).expect("json");
    let cp = h["checkpoint"].as_str().expect("cp").to_string();
    let body_end = cp.find("\n\n").expect("blank") + 2;
    let own = cp[body_end..]
        .lines()
        .find(|l| l.starts_with("\u{2014} sealog/acme "))
        .expect("the realm's signature");
    h["checkpoint"] = format!("{}{own}\n", &cp[..body_end]).into();
    let stripped = s.file("stripped.ndjson", format!("{h}\n{rest}").as_bytes());
    let mut vb = vec!["verify-bundle", path_str(&stripped), "--key", &log_vkey];
    for k in &keys {
        vb.extend(["--witness", k.as_str()]);
    }
    let out = s.run(&vb);
    assert_eq!(out.code, 1, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("fewer than the quorum of 2"),
        "{}",
        out.stderr
    );

    // 5. Rolled back on disk to the copy of step 1, restarted, and given
    // other records: both witnesses answer 409 with 4020, the quorum is
    // never reached, and the realm says so.
    std::fs::remove_dir_all(s.data().join("realms/acme")).expect("rm");
    copy_dir(&snap.path().join("acme"), &s.data().join("realms/acme"));
    let srv = serve(&s, &[&w1, &w2]);
    ingest(&srv.base, &w_tok, 90_000, 30);
    wait_until("/ready to name the realm without its quorum", 20, || {
        let (status, body) = get(&srv.base, "/ready", "");
        status == 503 && body.contains("realm acme: no quorum of 2 witness cosignatures")
    });
    let (_, ready) = get(&srv.base, "/ready", "");
    for w in ["w1.example", "w2.example"] {
        assert!(
            ready.contains(&format!(
                "{w}: it cosigned size 4020 of this realm, more than the 40 records it holds"
            )),
            "{ready}"
        );
    }
    let (_, note) = get(&srv.base, "/v1/checkpoint", &q_tok);
    assert_eq!(
        cosigned_size(&note, &log_key, &wkeys),
        10,
        "the newest checkpoint with a quorum is still the old one"
    );
    let m = get(&srv.base, "/metrics", "").1;
    assert!(m.contains("sealog_witness_realms_behind 1"), "{m}");
    assert!(m.contains("outcome=\"rolled_back\""), "{m}");
    // Grown past what the witnesses saw, its tree is not an extension of
    // theirs: the consistency proof from 4020 fails (422).
    for i in 0..40 {
        ingest(&srv.base, &w_tok, 100_000 + i * 100, 100);
    }
    wait_until("the witnesses to refuse the proof", 20, || {
        let (_, body) = get(&srv.base, "/ready", "");
        body.contains("w1.example: HTTP 422") && body.contains("w2.example: HTTP 422")
    });
    let (_, note) = get(&srv.base, "/v1/checkpoint", &q_tok);
    assert_eq!(cosigned_size(&note, &log_key, &wkeys), 10);
    srv.stop();
    let bad = s.run(&verify_args(&keys));
    assert_eq!(bad.code, 1, "{} {}", bad.stdout, bad.stderr);
    assert!(
        bad.stderr
            .contains("records 10..4040 are not covered by a checkpoint the witnesses cosigned"),
        "{}",
        bad.stderr
    );
    drop(w2);
}

fn copy_dir(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

/// A witness that takes connections and never answers holds up neither
/// the quorum the others make nor the server's shutdown.
#[test]
fn a_witness_that_never_answers_delays_neither_the_quorum_nor_shutdown() {
    let s = Sealog::new();
    let (log_vkey, log_key, w_tok, q_tok) = acme(&s);
    let wdir = tempfile::tempdir().expect("tempdir");
    let w1 = Witness::start(wdir.path(), "w1.example", std::slice::from_ref(&log_vkey));
    // The silent witness: a socket that accepts and keeps every connection.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let silent_key = sealog_journal::cosignature::Cosigner::new(
        "silent.example",
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    )
    .expect("name")
    .verifier()
    .to_string();
    // Requests may take ten minutes: only answering witnesses can end them.
    let config = s.file("witnessing.toml", b"[witnessing]\ntimeout_secs = 600\n");
    let spec1 = format!("{}@{}", w1.vkey, w1.base);
    let spec2 = format!("{silent_key}@http://{silent_addr}");
    let srv = Served::start_with(
        &s,
        &[
            "--config",
            path_str(&config),
            "--witness",
            &spec1,
            "--witness",
            &spec2,
            "--witness-quorum",
            "1",
            "--witness-interval",
            "50ms",
        ],
        None,
    );
    for i in 0..3 {
        ingest(&srv.base, &w_tok, i * 10, 10);
        let want = (i + 1) * 10;
        wait_until(
            "the quorum of one while the other witness hangs",
            20,
            || {
                let (_, note) = get(&srv.base, "/v1/checkpoint", &q_tok);
                log_key.verify(&note).map(|c| c.size).ok() == Some(want)
            },
        );
    }
    let (_, note) = get(&srv.base, "/v1/checkpoint", &q_tok);
    let w1_key: CosignatureKey = w1.vkey.parse().expect("key");
    assert!(
        w1_key.cosigned_at(&note).expect("valid").is_some(),
        "{note}"
    );
    // Stopped under load: the last round runs after the last commit, so
    // every record acknowledged is covered by the stored cosigned note.
    let loader = {
        let (base, w) = (srv.base.clone(), w_tok.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            let mut acked = 0u64;
            for i in 0u64.. {
                let sent = http
                    .post(format!("{base}/v1/ingest"))
                    .bearer_auth(&w)
                    .body(events(1000 + i * 50, 50))
                    .send();
                match sent {
                    Ok(r) if r.status().as_u16() == 200 => acked += 50,
                    _ => break,
                }
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    srv.stop();
    let log = std::fs::read_to_string(s.dir.path().join("serve.log")).expect("log");
    assert!(
        !log.contains("shutdown took longer"),
        "the hanging witness held up shutdown: {log}"
    );
    assert!(log.contains("sealog: stopped"), "{log}");
    let acked = loader.join().expect("loader");
    assert!(acked > 0, "the load ran before the stop");
    let out = s
        .run(&["verify", "--realm", "acme", "--witness", &w1.vkey])
        .ok();
    assert!(
        out.stderr.contains(&format!(
            "all {n} records are covered by a checkpoint of size {n} cosigned",
            n = 30 + acked
        )),
        "acked {acked}: {} {}",
        out.stdout,
        out.stderr
    );
}
