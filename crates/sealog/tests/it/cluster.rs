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
        .env("SEALOG_LOG", "warn")
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

/// The pieces of a cluster test: the store's schema, the broker, realms
/// with their write tokens and keys.
struct Rig {
    s: Sealog,
    pg: Schema,
    broker: Broker,
    tokens: BTreeMap<String, String>,
    keys: BTreeMap<String, String>,
}

impl Rig {
    fn new(realms: &[&str]) -> Self {
        Self::with(Schema::new(), realms)
    }

    fn with(pg: Schema, realms: &[&str]) -> Self {
        let s = Sealog::new();
        let broker = Broker::start();
        broker.create("sealog.ingest", 4);
        let (mut tokens, mut keys) = (BTreeMap::new(), BTreeMap::new());
        for realm in realms {
            let c: Value = serde_json::from_str(
                &s.run(&["--postgres", &pg.url(), "realm", "create", realm])
                    .ok()
                    .stdout,
            )
            .expect("realm JSON");
            tokens.insert(
                realm.to_string(),
                c["write_token"].as_str().expect("t").into(),
            );
            keys.insert(
                realm.to_string(),
                c["public_key"].as_str().expect("k").into(),
            );
        }
        Self {
            s,
            pg,
            broker,
            tokens,
            keys,
        }
    }

    fn ingest(&self, pg_url: &str) -> (Node, String) {
        let port = free_port();
        let n = node(
            pg_url,
            &self.broker.addr,
            &[
                "--role",
                "ingest",
                "--http",
                &format!("127.0.0.1:{port}"),
                "--receipt-timeout-secs",
                "5",
            ],
        );
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(format!("{base}/ready"))
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(Instant::now() < deadline, "ingest node not ready in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        (n, base)
    }

    fn writer(&self, pg_url: &str, name: &str) -> Node {
        node(
            pg_url,
            &self.broker.addr,
            &["--role", "writer", "--node", name],
        )
    }

    /// Checks every realm: verify passes with the receipts as evidence,
    /// every acknowledged record is present, and only batches that were
    /// answered 503 at some point may be there twice.
    fn check(
        &self,
        acked: &[(String, u64, u64, Value)],
        maybe_twice: &std::collections::BTreeSet<u64>,
    ) -> u64 {
        let mut total = 0;
        for (realm, key) in &self.keys {
            let mine: Vec<String> = acked
                .iter()
                .filter(|(r, ..)| r == realm)
                .map(|(.., rc)| rc.to_string())
                .collect();
            let file = self
                .s
                .file(&format!("{realm}.receipts"), mine.join("\n").as_bytes());
            let v = self
                .s
                .run(&[
                    "--postgres",
                    &self.pg.url(),
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
                v.stdout
                    .contains(&format!("{} client checkpoints/receipts hold", mine.len())),
                "{}",
                v.stdout
            );
            let out = self
                .s
                .run(&["--postgres", &self.pg.url(), "query", "--realm", realm])
                .ok()
                .stdout;
            let mut seen: BTreeMap<(u64, u64), u32> = BTreeMap::new();
            for line in out.lines() {
                let v: Value = serde_json::from_str(line).expect("record");
                *seen
                    .entry((v["batch"].as_u64().expect("b"), v["i"].as_u64().expect("i")))
                    .or_default() += 1;
            }
            for (_, b, n, _) in acked.iter().filter(|(r, ..)| r == realm) {
                for i in 0..*n {
                    let c = seen.get(&(*b, i)).copied().unwrap_or(0);
                    assert!(
                        c >= 1,
                        "{realm}: batch {b} record {i} was acknowledged and is missing"
                    );
                    assert!(
                        c == 1 || maybe_twice.contains(b),
                        "{realm}: batch {b} record {i} stored {c} times"
                    );
                }
            }
            total += mine.len() as u64;
        }
        total
    }
}

/// What a load gave: the acknowledged batches (realm, batch, records,
/// receipt), the batches refused at least once, and how many refusals.
type Load = (
    Vec<(String, u64, u64, Value)>,
    std::collections::BTreeSet<u64>,
    u64,
);

/// Posts `body` once: the receipt, or the status of a refusal (503 must
/// carry Retry-After).
fn post_once(
    http: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    body: &str,
) -> Result<Value, u16> {
    match http
        .post(format!("{base}/v1/ingest"))
        .bearer_auth(token)
        .body(body.to_string())
        .send()
    {
        Ok(r) if r.status().as_u16() == 200 => Ok(r.json().expect("receipt")),
        Ok(r) => {
            let status = r.status().as_u16();
            if status == 503 {
                assert!(
                    r.headers().contains_key("retry-after"),
                    "503 without Retry-After"
                );
            }
            Err(status)
        }
        Err(_) => Err(0),
    }
}

/// `clients` threads post batches of `n` records round robin over the
/// realms and `bases` for `secs`, retrying a refused batch (under a new
/// number, the old one noted as perhaps stored). Runs `during` meanwhile.
fn load(
    rig: &Rig,
    bases: &[String],
    clients: u64,
    secs: u64,
    n: u64,
    during: impl FnOnce(),
) -> Load {
    use std::sync::{Arc, Mutex};
    let acked = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new((std::collections::BTreeSet::new(), 0u64)));
    let realms: Vec<String> = rig.tokens.keys().cloned().collect();
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (acked, refused) = (acked.clone(), refused.clone());
            let (realms, bases) = (realms.clone(), bases.to_vec());
            let tokens = rig.tokens.clone();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .expect("client");
                let mut k = 0u64;
                while Instant::now() < stop_at {
                    let b = c * 1_000_000 + k;
                    k += 1;
                    let realm = &realms[(b % realms.len() as u64) as usize];
                    let base = &bases[(k % bases.len() as u64) as usize];
                    match post_once(&http, base, &tokens[realm], &batch(realm, b, n)) {
                        Ok(rc) => {
                            assert_eq!(rc["count"], n);
                            acked.lock().expect("lock").push((realm.clone(), b, n, rc));
                        }
                        Err(status) => {
                            assert!(status == 503 || status == 0, "unexpected status {status}");
                            let mut r = refused.lock().expect("lock");
                            r.0.insert(b);
                            r.1 += 1;
                            drop(r);
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
        })
        .collect();
    during();
    for t in threads {
        t.join().expect("client thread");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    let (maybe, count) = std::mem::take(&mut *refused.lock().expect("lock"));
    (acked, maybe, count)
}

#[test]
fn two_ingest_nodes_two_writers_eight_clients_and_a_writer_killed() {
    let rig = Rig::new(&["r1", "r2", "r3", "r4"]);
    let url = rig.pg.url();
    let mut a = Some(rig.writer(&url, "writer-a"));
    let _b = rig.writer(&url, "writer-b");
    let (_i1, base1) = rig.ingest(&url);
    let (_i2, base2) = rig.ingest(&url);
    // No token, an unknown one, a query token, a body that is not events.
    let http = reqwest::blocking::Client::new();
    let query_token: Value = serde_json::from_str(
        &rig.s
            .run(&[
                "--postgres",
                &url,
                "token",
                "issue",
                "--realm",
                "r1",
                "--scope",
                "query",
            ])
            .ok()
            .stdout,
    )
    .expect("token JSON");
    for (token, body, want) in [
        (None, "{}", 401),
        (Some("slw_nope"), "{}", 401),
        (query_token["token"].as_str(), "{}", 403),
        (Some(rig.tokens["r1"].as_str()), "not json\n", 400),
        (Some(rig.tokens["r1"].as_str()), "", 400),
    ] {
        let mut req = http.post(format!("{base1}/v1/ingest")).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().expect("send");
        assert_eq!(
            r.status().as_u16(),
            want,
            "{token:?} {body:?}: {:?}",
            r.text()
        );
    }
    let t0 = Instant::now();
    let (acked, maybe, refused) = load(&rig, &[base1, base2], 8, 30, 20, || {
        std::thread::sleep(Duration::from_secs(10));
        // SIGKILL mid-run: its partitions move to writer b.
        drop(a.take());
    });
    let total = rig.check(&acked, &maybe);
    query_node_answers_as_the_store(&rig, &url, &acked);
    eprintln!(
        "cluster: {total} batches of 20 acknowledged by 2 ingest nodes in {:.1} s with 8 clients; writer a killed at 10 s; {refused} answers refused (503) and retried",
        t0.elapsed().as_secs_f64()
    );
    assert!(total > 100, "the cluster took only {total} batches");
}

#[test]
fn postgres_gone_mid_load_is_503_with_retry_after_and_nothing_acknowledged_is_lost() {
    let rig = Rig::new(&["p1", "p2"]);
    // Every node reaches PostgreSQL through a relay the test can cut.
    let relay_port = free_port();
    let relay = crate::kafka::Relay::start(relay_port, 5432);
    let schema_opt = rig.pg.url();
    let via = schema_opt.replace("port=5432", &format!("port={relay_port}"));
    assert_ne!(via, schema_opt, "the URL names port 5432");
    let _w = rig.writer(&via, "writer-p");
    let (_i, base) = rig.ingest(&via);
    let (acked, maybe, refused) = load(&rig, std::slice::from_ref(&base), 4, 16, 10, || {
        std::thread::sleep(Duration::from_secs(4));
        relay.down();
        std::thread::sleep(Duration::from_secs(5));
        relay.bring_up(5432);
    });
    assert!(
        refused > 0,
        "no request was refused while PostgreSQL was away"
    );
    // After it came back, batches are taken again by themselves.
    let http = reqwest::blocking::Client::new();
    let mut again = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while again.is_none() && Instant::now() < deadline {
        again = post_once(&http, &base, &rig.tokens["p1"], &batch("p1", 9_999_999, 3)).ok();
    }
    let rc = again.expect("the cluster recovers by itself within 30 s");
    let mut all = acked;
    all.push(("p1".into(), 9_999_999, 3, rc));
    let total = rig.check(&all, &maybe);
    eprintln!("postgres outage: {total} batches acknowledged, {refused} refused while it was away (503 with Retry-After)");
}

fn signal(n: &Node, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &n.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

#[test]
fn a_paused_writer_is_fenced_when_it_wakes_and_nothing_forks() {
    let rig = Rig::new(&["f"]);
    let url = rig.pg.url();
    let log = rig.s.dir.path().join("writer-a.log");
    let a = Node(
        Command::new(bin())
            .args(["--postgres", &url, "serve", "--kafka", &rig.broker.addr])
            .args(["--role", "writer", "--node", "writer-a"])
            .env("SEALOG_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("writer a"),
    );
    let port = free_port();
    let _ingest = node(
        &url,
        &rig.broker.addr,
        &[
            "--role",
            "ingest",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--receipt-timeout-secs",
            "40",
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut retried = 0;
    let first = post(
        &http,
        &base,
        &rig.tokens["f"],
        &batch("f", 0, 10),
        &mut retried,
    );

    // Hold writer a inside its next commit: the claims table is locked, so
    // its check of them waits. Then pause it there.
    let mut lock = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let mut tx = lock.transaction().expect("tx");
    tx.batch_execute("LOCK TABLE sealog_partition_claims IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let (token, body) = (rig.tokens["f"].clone(), batch("f", 1, 10));
    let poster = {
        let (http, base) = (http.clone(), base.clone());
        std::thread::spawn(move || {
            let mut retried = 0;
            post(&http, &base, &token, &body, &mut retried)
        })
    };
    let mut watch = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%sealog_partition_claims%'",
                &[],
            )
            .expect("activity")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writer a never reached its claim check"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&a, "-STOP");
    tx.commit().expect("unlock");

    // Its partitions move to writer b, which commits the batch.
    let _b = rig.writer(&url, "writer-b");
    let second = poster.join().expect("poster");
    assert_eq!(
        second["first_seq"], 10,
        "writer b committed the batch after the first"
    );

    // Writer a wakes up: its commit is refused, and it says why.
    signal(&a, "-CONT");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("fenced") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "writer a did not log a refused commit:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        text.contains("writer-b"),
        "the refusal names the new owner:\n{text}"
    );
    for line in text.lines().filter(|l| l.contains("fenced")) {
        eprintln!("writer a after waking: {line}");
    }
    // Nothing forked, nothing was stored twice: 20 records, both receipts hold.
    let third = post(
        &http,
        &base,
        &rig.tokens["f"],
        &batch("f", 2, 10),
        &mut retried,
    );
    let acked = vec![
        ("f".to_string(), 0, 10, first),
        ("f".to_string(), 1, 10, second),
        ("f".to_string(), 2, 10, third),
    ];
    assert_eq!(rig.check(&acked, &std::collections::BTreeSet::new()), 3);
    let size: i64 = watch
        .query_one("SELECT size FROM sealog_realms WHERE name = 'f'", &[])
        .expect("size")
        .get(0);
    assert_eq!(size, 30, "each batch stored once");
    drop(a);
}

/// The base64 hashes of a proof answer.
fn hashes_of(proof: &Value) -> Vec<[u8; 32]> {
    use base64::Engine as _;
    proof["hashes"]
        .as_array()
        .expect("hashes")
        .iter()
        .map(|h| {
            base64::engine::general_purpose::STANDARD
                .decode(h.as_str().expect("b64"))
                .expect("b64")
                .try_into()
                .expect("32 bytes")
        })
        .collect()
}

/// A query node answers checkpoints, queries and proofs as the store holds
/// them, for the realm of a query token only.
/// A query node on a free port, up; its base URL.
fn query_node(url: &str) -> (Node, String) {
    let port = free_port();
    let q = Node(
        Command::new(bin())
            .args([
                "--postgres",
                url,
                "serve",
                "--role",
                "query",
                "--http",
                &format!("127.0.0.1:{port}"),
            ])
            .env("SEALOG_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("query node"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(format!("{base}/health")).is_err() {
        assert!(Instant::now() < deadline, "query node not up in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (q, base)
}

/// A new query token of `realm` (JSON with `id` and `token`).
fn query_token(rig: &Rig, url: &str, realm: &str) -> Value {
    serde_json::from_str(
        &rig.s
            .run(&[
                "--postgres",
                url,
                "token",
                "issue",
                "--realm",
                realm,
                "--scope",
                "query",
            ])
            .ok()
            .stdout,
    )
    .expect("token")
}

fn query_node_answers_as_the_store(rig: &Rig, url: &str, acked: &[(String, u64, u64, Value)]) {
    let (_q, base) = query_node(url);
    let issued = query_token(rig, url, "r2");
    let token = issued["token"].as_str().expect("token");
    let http = reqwest::blocking::Client::new();
    let get = |path: &str, t: &str| {
        http.get(format!("{base}{path}"))
            .bearer_auth(t)
            .send()
            .expect("get")
    };
    // The checkpoint and a query, as the CLI reads them from the store.
    let cp = get("/v1/checkpoint", token).text().expect("text");
    let cli_cp = rig
        .s
        .run(&["--postgres", url, "checkpoint", "--realm", "r2"])
        .ok()
        .stdout;
    assert_eq!(cp, cli_cp);
    let page = get("/v1/query?where=app:r2&limit=50", token);
    assert_eq!(page.status().as_u16(), 200);
    let lines = page.text().expect("body");
    let cli = rig
        .s
        .run(&["--postgres", url, "query", "--realm", "r2", "--limit", "50"])
        .ok()
        .stdout;
    assert_eq!(lines, cli, "the first 50 records as the store holds them");
    // An inclusion proof of record 7 verifies against the checkpoint.
    let key: sealog_journal::checkpoint::VerifierKey = rig.keys["r2"].parse().expect("key");
    let c = key.verify(&cp).expect("checkpoint verifies");
    let leaf = lines.lines().nth(7).expect("record 7");
    let proof: Value = get(&format!("/v1/proof/inclusion?seq=7&size={}", c.size), token)
        .json()
        .expect("proof");
    let hashes = hashes_of(&proof);
    sealog_journal::merkle::verify_inclusion(
        &sealog_journal::merkle::leaf_hash(leaf.as_bytes()),
        7,
        c.size,
        &hashes,
        &c.root,
    )
    .expect("the inclusion proof verifies");
    // A receipt's checkpoint is consistent with the latest one.
    let (_, _, _, rc) = acked
        .iter()
        .find(|(r, ..)| r == "r2")
        .expect("an r2 receipt");
    let old = key
        .verify(rc["checkpoint"].as_str().expect("cp"))
        .expect("receipt cp");
    let proof: Value = get(
        &format!("/v1/proof/consistency?from={}&to={}", old.size, c.size),
        token,
    )
    .json()
    .expect("proof");
    let hashes = hashes_of(&proof);
    sealog_journal::merkle::verify_consistency(old.size, c.size, &hashes, &old.root, &c.root)
        .expect("the receipt's tree is a prefix of the latest");
    // Only a live query token reads, and only its realm.
    assert_eq!(get("/v1/checkpoint", "slq_nope").status().as_u16(), 401);
    assert_eq!(
        get("/v1/checkpoint", &rig.tokens["r2"]).status().as_u16(),
        403
    );
    assert_eq!(get("/v1/query?limit=x", token).status().as_u16(), 400);
    assert_eq!(
        get(&format!("/v1/proof/inclusion?seq={}", c.size + 5), token)
            .status()
            .as_u16(),
        400
    );
}

/// `pg_ctlcluster` on this machine's cluster (`stop -m fast` or `start`).
fn pg_ctl(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql: Debian's PostgreSQL (.ci/run installs it)")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
        .expect("a PostgreSQL cluster");
    let mut args = vec![
        "--skip-systemctl-redirect",
        version.as_str(),
        "main",
        action,
    ];
    if action == "stop" {
        args.extend(["-m", "fast"]);
    }
    let out = Command::new("pg_ctlcluster")
        .args(&args)
        .output()
        .expect("pg_ctlcluster");
    assert!(
        out.status.success(),
        "pg_ctlcluster {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn postgres_restarted_mid_load_answers_503_then_recovers_and_loses_nothing() {
    // PostgreSQL to this test alone: the other tests do not see it stop.
    let rig = Rig::with(Schema::alone(), &["s1", "s2"]);
    let url = rig.pg.url();
    let _w = rig.writer(&url, "writer-s");
    let (_i, base) = rig.ingest(&url);
    let stopped = std::sync::atomic::AtomicBool::new(false);
    let (acked, maybe, refused) = load(&rig, std::slice::from_ref(&base), 4, 16, 10, || {
        std::thread::sleep(Duration::from_secs(4));
        pg_ctl("stop");
        stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(5));
        pg_ctl("start");
    });
    assert!(stopped.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        refused > 0,
        "no request was refused while PostgreSQL was stopped"
    );
    let http = reqwest::blocking::Client::new();
    let mut again = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while again.is_none() && Instant::now() < deadline {
        again = post_once(&http, &base, &rig.tokens["s1"], &batch("s1", 9_999_999, 3)).ok();
    }
    let rc = again.expect("the cluster recovers by itself within 60 s of the restart");
    let mut all = acked;
    all.push(("s1".into(), 9_999_999, 3, rc));
    let total = rig.check(&all, &maybe);
    eprintln!("postgres restart: {total} batches acknowledged, {refused} refused while it was stopped (503 with Retry-After)");
}

#[test]
fn repeated_batches_are_stored_once_and_poison_messages_do_not_stall_a_partition() {
    let rig = Rig::new(&["q1", "q2"]);
    let url = rig.pg.url();
    // Messages no writer can store, on every partition, ahead of the load:
    // keys that are no realm (or a realm with no key), and a body that is
    // not events for a real realm.
    let mut poison = String::new();
    for i in 0..16 {
        poison.push_str(&format!("nosuch{i}|{{\"msg\":\"x\"}}\n"));
        poison.push_str(&format!("bad name {i}|{{\"msg\":\"x\"}}\n"));
    }
    poison.push_str("q1|not json at all\n");
    let out = Command::new("kcat")
        .args([
            "-P",
            "-b",
            &rig.broker.addr,
            "-t",
            "sealog.ingest",
            "-K",
            "|",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(poison.as_bytes())?;
            c.wait_with_output()
        })
        .expect("kcat is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "kcat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _w = rig.writer(&url, "writer-q");
    let (_i, base) = rig.ingest(&url);
    // A live tail of q1, on a query node, from now. Its filter matches q2's
    // records too: only the token keeps them out.
    let (_q, qbase) = query_node(&url);
    let tail_token = query_token(&rig, &url, "q1");
    let tail = Tail::open(
        &format!("{qbase}/v1/tail?q=batch"),
        tail_token["token"].as_str().expect("token"),
    );
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let send = |realm: &str, b: u64, key: Option<&str>| {
        let mut req = http
            .post(format!("{base}/v1/ingest"))
            .bearer_auth(&rig.tokens[realm])
            .body(batch(realm, b, 5));
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send().expect("send")
    };
    // Both realms are served despite the poison (each has a partition).
    let mut acked = Vec::new();
    for (b, realm) in [(1, "q1"), (2, "q2"), (3, "q1"), (4, "q2")] {
        let r = send(realm, b, None);
        assert_eq!(r.status().as_u16(), 200, "{realm}: {:?}", r.text());
        acked.push((realm.to_string(), b, 5, r.json::<Value>().expect("receipt")));
    }
    // The same batch twice under one Idempotency-Key: one copy, one receipt.
    let first = send("q1", 10, Some("order-10"))
        .json::<Value>()
        .expect("receipt");
    let again = send("q1", 10, Some("order-10"));
    assert_eq!(again.status().as_u16(), 200);
    let again: Value = again.json().expect("receipt");
    assert_eq!(first, again, "the second send gets the first receipt");
    // The same key in another realm is another batch.
    let other = send("q2", 11, Some("order-10"))
        .json::<Value>()
        .expect("receipt");
    assert_eq!(other["realm"], "q2");
    let bad = send("q1", 12, Some("bad key!"));
    assert_eq!(bad.status().as_u16(), 400);
    acked.push(("q1".into(), 10, 5, first));
    acked.push(("q2".into(), 11, 5, other));
    assert_eq!(rig.check(&acked, &std::collections::BTreeSet::new()), 6);
    // The tail saw q1's records (batches 1, 3, 10; 5 each), in seq order,
    // exactly as stored, and none of q2's.
    let seen = tail.wait_for(15, Duration::from_secs(10));
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..15).collect::<Vec<_>>(), "q1's seqs in order");
    let stored = rig
        .s
        .run(&["--postgres", &url, "query", "--realm", "q1"])
        .ok()
        .stdout;
    let lines: Vec<&str> = seen.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines, stored.lines().collect::<Vec<_>>());
    // A batch committed now reaches the tail within 2 s of its receipt,
    // after what it had, once.
    let r = send("q1", 20, None);
    assert_eq!(r.status().as_u16(), 200);
    tail.wait_for(20, Duration::from_secs(2));
    let stored = rig
        .s
        .run(&["--postgres", &url, "query", "--realm", "q1"])
        .ok()
        .stdout;
    let want: Vec<(u64, String)> = stored
        .lines()
        .enumerate()
        .map(|(i, l)| (i as u64, l.to_string()))
        .collect();
    assert_eq!(want.len(), 20);
    assert!(want[15].1.contains(r#""batch":20"#), "{:?}", want[15]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        tail.wait_for(20, Duration::ZERO),
        want,
        "each record once, in order, as stored"
    );
    // Bad tails are refused before they stream.
    let http = reqwest::blocking::Client::new();
    let tok = tail_token["token"].as_str().expect("token");
    for (path, t, want) in [
        ("/v1/tail?since_seq=999", tok, 400),
        ("/v1/tail?color=red", tok, 400),
        ("/v1/tail?where=nocolon", tok, 400),
        ("/v1/tail", "slq_nope", 401),
        ("/v1/tail", rig.tokens["q1"].as_str(), 403),
    ] {
        let r = http
            .get(format!("{qbase}{path}"))
            .bearer_auth(t)
            .send()
            .expect("get");
        assert_eq!(r.status().as_u16(), want, "{path}: {:?}", r.text());
    }
    // Revoked: the tail gets a last error event and ends.
    rig.s
        .run(&[
            "--postgres",
            &url,
            "token",
            "revoke",
            tail_token["id"].as_str().expect("id"),
        ])
        .ok();
    tail.wait_closed(Duration::from_secs(5));
}

/// What a tail has received: records (seq, line), other events
/// ("kind: data"), and whether the stream ended.
type TailSeen = std::sync::Arc<std::sync::Mutex<(Vec<(u64, String)>, Vec<String>, bool)>>;

/// A live tail read on a thread: its events as they come.
struct Tail {
    events: TailSeen,
}

impl Tail {
    fn open(url: &str, token: &str) -> Self {
        use std::io::BufRead as _;
        let r = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .expect("client")
            .get(url)
            .bearer_auth(token)
            .send()
            .expect("tail");
        assert_eq!(r.status().as_u16(), 200, "tail: {:?}", r.text());
        assert_eq!(
            r.headers()["content-type"].to_str().expect("type"),
            "text/event-stream"
        );
        let events: TailSeen = Default::default();
        let out = events.clone();
        std::thread::spawn(move || {
            let (mut id, mut kind) = (None, None);
            for line in std::io::BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse::<u64>().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    let mut e = out.lock().expect("lock");
                    match (kind.take(), id.take()) {
                        (Some(k), _) => e.1.push(format!("{k}: {v}")),
                        (None, Some(seq)) => e.0.push((seq, v.to_string())),
                        (None, None) => e.1.push(format!("no id: {v}")),
                    }
                }
            }
            out.lock().expect("lock").2 = true;
        });
        Self { events }
    }

    /// The first `n` events, waiting up to `within` for them.
    fn wait_for(&self, n: usize, within: Duration) -> Vec<(u64, String)> {
        let deadline = Instant::now() + within;
        loop {
            let e = self.events.lock().expect("lock");
            assert!(e.1.is_empty(), "unexpected events: {:?}", e.1);
            if e.0.len() >= n {
                return e.0.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} tail events within {within:?}: {:?}",
                e.0.len(),
                e.0
            );
            drop(e);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the stream to end with an error event saying why.
    fn wait_closed(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let e = self.events.lock().expect("lock");
            if e.2 {
                assert_eq!(
                    e.1,
                    ["error: token is not valid; the tail is closed"],
                    "the last event says why"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the tail still open after {within:?}"
            );
            drop(e);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
