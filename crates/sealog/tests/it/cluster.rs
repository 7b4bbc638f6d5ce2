//! The scale-out roles on one machine: tansu as the bus, the machine's
//! PostgreSQL as the store, `sealog serve --role ingest|writer` as real
//! processes, clients over HTTP.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kafka::Broker;
use crate::postgres::Schema;
use crate::util::{bin, Sealog};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

fn node(pg: &str, broker: &str, args: &[&str]) -> Node {
    let child = Command::new(bin())
        .args(["--postgres", pg, "serve", "--kafka", broker])
        .args(args)
        .env("SEALOG_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node");
    Node(child)
}

/// NDJSON batch `b` of `n` records for `realm`.
fn batch(realm: &str, b: u64, n: u64) -> String {
    (0..n)
        .map(|i| format!(r#"{{"app":"{realm}","batch":{b},"i":{i},"msg":"batch {b} record {i}"}}"#))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Posts until a 200 (503s while the cluster settles are retried, and the
/// batch is noted as perhaps stored); returns the receipt.
fn post(
    http: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    body: &str,
    retried: &mut u32,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = http
            .post(format!("{url}/v1/ingest"))
            .bearer_auth(token)
            .body(body.to_string())
            .send();
        if let Ok(r) = r {
            let status = r.status().as_u16();
            if status == 200 {
                return r.json().expect("receipt JSON");
            }
            assert!(r.headers().contains_key("retry-after"));
            let text = r.text().unwrap_or_default();
            assert_eq!(status, 503, "only 503 is retried: {text}");
            if *retried < 5 {
                eprintln!("503: {text}");
            }
        }
        *retried += 1;
        assert!(Instant::now() < deadline, "no receipt within 90 s");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_writer_killed_mid_run_hands_its_realms_over_and_nothing_is_lost_or_doubled() {
    let s = Sealog::new();
    let pg = Schema::new();
    let url = pg.url();
    let broker = Broker::start();
    broker.create("sealog.ingest", 4);
    let mut tokens = BTreeMap::new();
    let mut keys = BTreeMap::new();
    for realm in ["shop", "ops"] {
        let c: Value = serde_json::from_str(
            &s.run(&["--postgres", &url, "realm", "create", realm])
                .ok()
                .stdout,
        )
        .expect("realm JSON");
        tokens.insert(realm, c["write_token"].as_str().expect("token").to_string());
        keys.insert(realm, c["public_key"].as_str().expect("key").to_string());
    }
    let mut writer_a = Some(node(
        &url,
        &broker.addr,
        &["--role", "writer", "--node", "writer-a"],
    ));
    let mut writer_b = None;
    let port = free_port();
    let _ingest = node(
        &url,
        &broker.addr,
        &["--role", "ingest", "--http", &format!("127.0.0.1:{port}")],
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/ready"))
        .send()
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(Instant::now() < deadline, "ingest node not ready in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Wrong and missing tokens.
    let r = http
        .post(format!("{base}/v1/ingest"))
        .body("{}")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(format!("{base}/v1/ingest"))
        .bearer_auth("slw_nope")
        .body("{}")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(format!("{base}/v1/ingest"))
        .bearer_auth(&tokens["shop"])
        .body("not json\n")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);

    let mut receipts: Vec<(String, u64, Value)> = Vec::new();
    let mut retried = 0;
    for b in 0..40u64 {
        let realm = if b % 2 == 0 { "shop" } else { "ops" };
        let rc = post(
            &http,
            &base,
            &tokens[realm],
            &batch(realm, b, 50),
            &mut retried,
        );
        assert_eq!(rc["count"], 50);
        receipts.push((realm.to_string(), b, rc));
        if b == 19 {
            // Writer A dies mid-run (SIGKILL); writer B takes its partitions.
            drop(writer_a.take());
            writer_b = Some(node(
                &url,
                &broker.addr,
                &["--role", "writer", "--node", "writer-b"],
            ));
        }
    }
    assert!(writer_b.is_some());
    eprintln!("cluster: 40 batches acknowledged, {retried} answers were 503 and retried");

    for (realm, key) in &keys {
        // Every receipt's checkpoint verifies with the realm's key, and the
        // verifier proves each still holds.
        let mine: Vec<&Value> = receipts
            .iter()
            .filter(|(r, _, _)| r == realm)
            .map(|(_, _, rc)| rc)
            .collect();
        let file = s.file(
            &format!("{realm}.receipts"),
            mine.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        );
        let v = s
            .run(&[
                "--postgres",
                &url,
                "verify",
                "--realm",
                realm,
                "--key",
                key,
                "--receipts",
                crate::util::path_str(&file),
            ])
            .ok();
        assert!(
            v.stdout.contains("1000 records")
                && v.stdout.contains("20 client checkpoints/receipts hold"),
            "{}",
            v.stdout
        );
        // Every acknowledged record is there exactly once (a retried 503
        // may have been stored twice; none was acknowledged twice).
        let out = s
            .run(&["--postgres", &url, "query", "--realm", realm])
            .ok()
            .stdout;
        let mut seen: BTreeMap<(u64, u64), u32> = BTreeMap::new();
        for line in out.lines() {
            let v: Value = serde_json::from_str(line).expect("record");
            *seen
                .entry((v["batch"].as_u64().expect("b"), v["i"].as_u64().expect("i")))
                .or_default() += 1;
        }
        for (_, b, rc) in receipts.iter().filter(|(r, _, _)| r == realm) {
            for i in 0..50 {
                assert!(
                    seen.contains_key(&(*b, i)),
                    "{realm}: batch {b} record {i} acknowledged and missing"
                );
            }
            // The receipt's range holds exactly this batch.
            let first = rc["first_seq"].as_u64().expect("first");
            assert_eq!(rc["last_seq"].as_u64().expect("last"), first + 49);
        }
        if retried == 0 {
            assert!(
                seen.values().all(|n| *n == 1),
                "{realm}: a record stored twice"
            );
        }
    }
}
