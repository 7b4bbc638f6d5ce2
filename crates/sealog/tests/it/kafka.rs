//! Kafka sources against a real Kafka-protocol broker (tansu), fed by
//! clients made by others: `kcat` (Debian) and Python `confluent-kafka`
//! (`tests/peers/kafka_peer.py`). `.ci/run` installs all three.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Sealog, Served};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn tansu() -> PathBuf {
    if let Ok(p) = std::env::var("SEALOG_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    for p in [
        format!("{home}/.cargo/bin/tansu"),
        "/usr/local/bin/tansu".into(),
    ] {
        if std::path::Path::new(&p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("tansu (the Kafka-protocol broker) is not installed: run .ci/run, or `cargo install tansu --features dynostore`");
}

pub fn python() -> String {
    let py = std::env::var("SEALOG_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import confluent_kafka"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{py} cannot import confluent_kafka: run .ci/run (it makes a venv with it and sets SEALOG_TEST_PYTHON)");
    py
}

pub fn peer_script() -> String {
    format!("{}/tests/peers/kafka_peer.py", env!("CARGO_MANIFEST_DIR"))
}

/// A TCP relay in front of the broker: the broker advertises the relay's
/// port, so every client connection passes through it, and `down()` makes
/// the broker unreachable (every connection reset, new ones refused) while
/// the broker keeps its topics (tansu's store here is in memory).
pub struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    pub fn start(port: u16, target: u16) -> Self {
        let relay = Self {
            port,
            up: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        relay.bring_up(target);
        relay
    }

    pub fn bring_up(&self, target: u16) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).expect("relay bind");
        l.set_nonblocking(true).expect("nonblocking");
        self.up.store(true, Ordering::SeqCst);
        let (up, conns, stop) = (self.up.clone(), self.conns.clone(), self.stop.clone());
        std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => {
                        c.set_nonblocking(false).ok();
                        let Ok(b) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        for s in [&c, &b] {
                            if let Ok(k) = s.try_clone() {
                                conns.lock().expect("lock").push(k);
                            }
                        }
                        for (mut from, mut to) in [
                            (c.try_clone().expect("clone"), b.try_clone().expect("clone")),
                            (b, c),
                        ] {
                            std::thread::spawn(move || {
                                let mut buf = vec![0u8; 64 * 1024];
                                while let Ok(n) = from.read(&mut buf) {
                                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                let _ = to.shutdown(Shutdown::Both);
                                let _ = from.shutdown(Shutdown::Both);
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener is dropped here: connecting is refused.
        });
    }

    /// The broker is gone: connections reset, new ones refused.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        for c in self.conns.lock().expect("lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.down();
    }
}

/// tansu on loopback, reached through a [`Relay`]; killed when dropped.
pub struct Broker {
    child: Child,
    relay: Relay,
    inner: u16,
    pub addr: String,
}

impl Broker {
    pub fn start() -> Self {
        let (inner, outer) = (free_port(), free_port());
        let log = tempfile::NamedTempFile::new().expect("log");
        let child = Command::new(tansu())
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &format!("tcp://127.0.0.1:{inner}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{outer}"),
            ])
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("spawn tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", inner)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let relay = Relay::start(outer, inner);
        Self {
            child,
            relay,
            inner,
            addr: format!("127.0.0.1:{outer}"),
        }
    }

    pub fn create(&self, topic: &str, partitions: u32) {
        let out = Command::new(python())
            .args([
                &peer_script(),
                "create",
                &self.addr,
                topic,
                &partitions.to_string(),
            ])
            .output()
            .expect("kafka_peer create");
        assert!(
            out.status.success(),
            "create {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Produces JSON-described messages with confluent-kafka.
    pub fn produce(&self, topic: &str, messages: &[Value]) {
        let mut child = Command::new(python())
            .args([&peer_script(), "produce", &self.addr, topic])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kafka_peer produce");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            for m in messages {
                writeln!(stdin, "{m}").expect("write");
            }
        }
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "produce to {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Produces `n` messages over `partitions` with confluent-kafka, one
    /// message per record batch.
    ///
    /// One per batch because tansu 0.6 answers a fetch from the middle of
    /// a record batch with the *next* batch (real Kafka returns the batch
    /// holding the offset and the client skips to it): a consumer resuming
    /// at offset 20,176 of a batch 20,000..29,999 gets 30,000 first. sealog
    /// counts such gaps (`sealog_kafka_offset_gaps_total`), but cannot get
    /// the skipped messages from that broker.
    pub fn bulk(&self, topic: &str, partitions: u32, n: u64) {
        let out = Command::new(python())
            .args([
                &peer_script(),
                "bulk",
                &self.addr,
                topic,
                &partitions.to_string(),
                &n.to_string(),
                "0",
                "1",
            ])
            .output()
            .expect("kafka_peer bulk");
        assert!(
            out.status.success(),
            "bulk {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// [`Broker::bulk`], running while the caller goes on.
    pub fn bulk_in_background(&self, topic: &str, partitions: u32, n: u64) -> Child {
        Command::new(python())
            .args([
                &peer_script(),
                "bulk",
                &self.addr,
                topic,
                &partitions.to_string(),
                &n.to_string(),
                "0",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kafka_peer bulk")
    }

    /// Produces one message with kcat (headers `name=value`).
    pub fn kcat(&self, topic: &str, headers: &[&str], value: &[u8]) {
        let mut args = vec![
            "-P".to_string(),
            "-b".into(),
            self.addr.clone(),
            "-t".into(),
            topic.into(),
        ];
        for h in headers {
            args.push("-H".into());
            args.push((*h).into());
        }
        let mut child = Command::new("kcat")
            .args(&args)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kcat is installed (.ci/run installs it)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(value)
            .expect("write");
        let out = child.wait_with_output().expect("kcat");
        assert!(
            out.status.success(),
            "kcat: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Reads `n` messages of `topic` with confluent-kafka.
    pub fn read(&self, topic: &str, n: usize) -> Vec<Value> {
        let out = Command::new(python())
            .args([
                &peer_script(),
                "read",
                &self.addr,
                topic,
                &n.to_string(),
                "30",
            ])
            .output()
            .expect("kafka_peer read");
        assert!(
            out.status.success(),
            "read {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("peer JSON"))
            .collect()
    }

    pub fn down(&self) {
        self.relay.down();
    }

    fn up(&self) {
        self.relay.bring_up(self.inner);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record of a realm, through `/v1/query`.
fn records(base: &str, token: &str) -> Vec<Value> {
    let http = reqwest::blocking::Client::new();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/query?limit=10000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = http.get(&url).bearer_auth(token).send().expect("query");
        assert!(r.status().is_success(), "query: {}", r.status());
        cursor = r
            .headers()
            .get("x-sealog-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r.text().expect("body");
        out.extend(
            body.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("record JSON")),
        );
        if cursor.is_none() {
            return out;
        }
    }
}

fn wait_for(base: &str, token: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let r = records(base, token);
        if r.len() >= n {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records arrived",
            r.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tokens(realm: &Value) -> (String, String) {
    (
        realm["write_token"]
            .as_str()
            .expect("write token")
            .to_string(),
        realm["query_token"]
            .as_str()
            .expect("query token")
            .to_string(),
    )
}

#[test]
fn every_format_from_kcat_and_confluent_kafka() {
    let broker = Broker::start();
    let s = Sealog::new();
    let (_, q) = tokens(&s.realm("k"));
    let (other_w, other_q) = tokens(&s.realm("other"));
    for t in [
        "prod",
        "alamoweblogs",
        "istio-access-logs",
        "alamobuildlogs",
        "success",
        "error",
        "lh",
        "nd",
    ] {
        broker.create(t, 1);
    }
    let conf = s.file(
        "sealog.toml",
        format!(
            "[kafka]\nbrokers = \"{}\"\n\n[[kafka.sources]]\nrealm = \"k\"\ntopics = [\"lh\"]\nformat = \"logharbour\"\ndlq = true\nlinger_ms = 5\n\n[[kafka.sources]]\nrealm = \"k\"\ntopics = [\"nd\"]\nformat = \"ndjson\"\ndlq = true\nlinger_ms = 5\n",
            broker.addr
        )
        .as_bytes(),
    );
    let server = Served::start_with(
        &s,
        &[
            "--config",
            conf.to_str().expect("path"),
            "--kafka",
            &broker.addr,
            "--kafka-source",
            "k@/pro.*/:logshuttle",
            "--kafka-source",
            "k@alamoweblogs:logshuttle-web",
            "--kafka-source",
            "k@istio-access-logs:logshuttle-istio",
            "--kafka-source",
            "k@alamobuildlogs:logshuttle-build",
            "--kafka-source",
            "k@success:palisade-success",
            "--kafka-source",
            "k@error:palisade-error",
        ],
        None,
    );
    // kcat: logshuttle's inputs and Palisade's.
    broker.kcat("prod", &[], br#"{"log":"GET /cart 200\n","stream":"stdout","time":"2026-11-24T01:00:00.5Z","space":"prod","docker":{"container_id":"c1"},"kubernetes":{"namespace_name":"prod","pod_id":"p1","pod_name":"shop-7d9-x2","container_name":"shop--worker","labels":{"name":"shop","pod-template-hash":"7d9"},"host":"node-3"},"topic":"prod","tag":"kube.prod"}"#);
    broker.kcat("prod", &[], br#"{"log":"Phase: Running/waiting --  reason=CrashLoopBackOff","stream":"stdout","time":"2026-11-24T01:00:01Z","kubernetes":{"namespace_name":"prod","pod_name":"shop-7d9-x2","container_name":"shop"},"topic":"prod"}"#);
    broker.kcat("alamoweblogs", &[], b"hostname=shop-prod.example.com path=/cart method=GET status=200 source=10.1.2.3%3A443 total=12ms site_domain=www.example.com site_path=/shop/cart timestamp=2026-11-24T01:00:00Z");
    broker.kcat("istio-access-logs", &[], br#"{"common_properties":{"upstream_cluster":"outbound|80||shop.prod.svc.cluster.local","time_to_last_rx_byte":"0.003s","time_to_last_upstream_tx_byte":"0.001s","time_to_last_upstream_rx_byte":"0.0025s","time_to_last_downstream_tx_byte":"0.004s","tls_properties":{"tls_version":"TLSv1_2","tls_sni_hostname":"shop.example.com"}},"protocol_version":"HTTP11","request":{"request_method":"POST","authority":"shop.example.com","path":"/pay","original_path":"/pay","request_id":"r-2","forwarded_for":"5.6.7.8","request_headers_bytes":"100"},"response":{"response_code":201,"response_headers_bytes":"50","response_body_bytes":"30"}}"#);
    broker.kcat("alamobuildlogs", &[], br#"{"build":12,"job":"shop-prod-12","message":"Step 4/9 : ARG NPM_TOKEN=npm_s3cr3t","metadata":"shop-prod"}"#);
    let success = br#"{"userId":"alice","resourceId":"file:/data/a.txt","context":{"class":"uk.gov.gchq.palisade.Context","contents":{"purpose":"audit"}},"serverMetadata":{"username":"svc","ip":"10.0.0.1","hostname":"h1"},"attributes":{},"timestamp":"2026-11-24T01:00:00Z","serverIP":"10.0.0.1","serverHostname":"h1","serviceName":"filtered-resource-service","leafResourceId":"file:/data/a.txt"}"#;
    broker.kcat(
        "success",
        &["x-request-token=first", "x-request-token=req-77"],
        success,
    );
    let error = br#"{"userId":"bob","resourceId":"file:/data/b.txt","context":{"class":"uk.gov.gchq.palisade.Context","contents":{}},"serverMetadata":{},"attributes":{},"timestamp":"2026-11-24T01:00:00Z","serverIP":"10.0.0.2","serverHostname":"h2","serviceName":"data-service","error":{"message":"denied"}}"#;
    broker.kcat("error", &["x-request-token=req-78"], error);
    broker.kcat("error", &[], error);
    // confluent-kafka: LogHarbour entries of types A, C and D, one routed
    // by a write token, one redelivered, and garbage.
    let a = r#"{"id":"2Za","app":"crux","system":"h1","module":"auth","type":"A","pri":"Info","when":"2026-11-24T01:00:00Z","who":"alice","op":"login","remote_ip":"10.0.0.5","msg":"logged in","data":{"activity_data":"{\"ok\":true}"}}"#;
    let c = r#"{"id":"2Zc","app":"crux","system":"h1","module":"users","type":"C","pri":"Info","when":"2026-11-24T01:00:01Z","class":"user","instance":"u1","status":1,"msg":"changed","data":{"change_data":{"entity":"user","op":"update","changes":[{"field":"email","old_value":"a@x","new_value":"b@x"}]}}}"#;
    let d = r#"{"id":"2Zd","app":"crux","system":"h1","module":"db","type":"D","pri":"Debug0","when":"2026-11-24T01:00:02Z","msg":"query","data":{"debug_data":{"pid":42,"runtime":"go1.22","file":"/src/db.go","line":10,"func":"db.Query","stackTrace":"a:1","data":"{}"}}}"#;
    let routed = r#"{"id":"2Zr","app":"crux","type":"A","pri":"Info","when":"2026-11-24T01:00:03Z","msg":"for the other realm"}"#;
    let big = "x".repeat(5 << 20);
    broker.produce(
        "lh",
        &[
            serde_json::json!({"value": a}),
            serde_json::json!({"value": c}),
            serde_json::json!({"value": d}),
            serde_json::json!({"value": a}),
            serde_json::json!({"value": routed, "headers": [["sealog-token", other_w]]}),
            serde_json::json!({"value": routed, "headers": [["sealog-token", "sl_not_a_token"]]}),
            serde_json::json!({"value": "{\"id\": \"broken"}),
            serde_json::json!({"value_b64": "/w/+AAA=", "key": "bin"}),
            serde_json::json!({"value": big}),
            serde_json::json!({"value": "{\"app\":\"no id\"}"}),
        ],
    );
    // NDJSON: three lines, the middle one bad; the DLQ gets only that one.
    broker.produce(
        "nd",
        &[serde_json::json!({"value": "{\"n\":1}\n{\"n\":\n{\"n\":3}\n"})],
    );
    // prod 2 + web 2 (site copy) + istio 1 + build 1 + success 1 + error 2
    // + lh (a, c, d, 5 refused) 8 + nd 3 = 20
    let recs = wait_for(&server.base, &q, 20, Duration::from_secs(60));
    assert_eq!(recs.len(), 20, "{recs:#?}");
    let by = |topic: &str| -> Vec<&Value> {
        recs.iter()
            .filter(|r| r["kafka"]["topic"] == topic)
            .collect()
    };
    // Provenance on every record.
    for r in &recs {
        let k = &r["kafka"];
        assert!(
            k["partition"].is_u64() && k["offset"].is_u64() && k["timestamp"].is_i64(),
            "{r}"
        );
    }
    let prod = by("prod");
    assert_eq!(
        (
            prod[0]["app"].as_str(),
            prod[0]["proc_type"].as_str(),
            prod[0]["dyno"].as_str()
        ),
        (Some("shop"), Some("worker"), Some("shop-7d9-x2"))
    );
    assert_eq!(prod[1]["msg"], "at=error code=H10 desc=\"App crashed\"");
    let web = by("alamoweblogs");
    assert_eq!(
        (
            web[0]["app"].as_str(),
            web[0]["space"].as_str(),
            web[0]["fwd"].as_str()
        ),
        (Some("shop"), Some("prod"), Some("10.1.2.3:443"))
    );
    assert_eq!(
        (web[1]["app"].as_str(), web[1]["path"].as_str()),
        (Some("www.example.com"), Some("/shop/cart"))
    );
    let istio = by("istio-access-logs");
    assert!(
        istio[0]["msg"]
            .as_str()
            .expect("msg")
            .contains("status=201 connect=1.00ms service=2.50ms total=4.00ms dyno=shop-prod"),
        "{}",
        istio[0]
    );
    let build = by("alamobuildlogs");
    assert_eq!(build[0]["message"], "Step 4/9 : ARG NPM_TOKEN=[redacted]");
    assert!(
        !recs.iter().any(|r| r.to_string().contains("npm_s3cr3t")),
        "the build argument is not stored anywhere"
    );
    let ok = by("success");
    assert_eq!(
        (
            ok[0]["audit"]["status"].as_str(),
            ok[0]["audit"]["request_token"].as_str()
        ),
        (Some("accepted"), Some("req-77")),
        "the last x-request-token wins"
    );
    let err = by("error");
    assert_eq!(err[0]["audit"]["request_token"], "req-78");
    assert_eq!(
        (err[1]["kind"].as_str(), err[1]["audit"]["reason"].as_str()),
        (
            Some("audit_dead_letter"),
            Some("missing x-request-token header")
        )
    );
    let lh = by("lh");
    let kinds: Vec<(&str, &str)> = lh
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap_or("-"),
                r["reason"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("A", "-"),
            ("C", "-"),
            ("D", "-"),
            ("-", "bad_token"),
            ("-", "json_unmarshal_error"),
            ("-", "invalid_utf8"),
            ("-", "too_large"),
            ("-", "missing_id_field")
        ],
        "the redelivered id 2Za is stored once"
    );
    assert_eq!(
        lh[1]["data"]["change_data"]["changes"][0]["new_value"],
        "b@x"
    );
    assert_eq!(lh[6]["body_bytes"], 5 << 20);
    // The routed entry is in the other realm.
    let routed = wait_for(&server.base, &other_q, 1, Duration::from_secs(10));
    assert_eq!(
        (
            routed[0]["id"].as_str(),
            routed[0]["kafka"]["offset"].as_u64()
        ),
        (Some("2Zr"), Some(4))
    );
    // The DLQ has the five, with LogHarbour's headers.
    let dlq = broker.read("lh_dlq", 5);
    assert_eq!(
        dlq.len(),
        5,
        "{dlq:?}\n{}",
        std::fs::read_to_string(s.dir.path().join("serve.log")).unwrap_or_default()
    );
    let h = |m: &Value, k: &str| -> String {
        m["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .find(|h| h[0] == k)
            .map(|h| h[1].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let offsets: Vec<String> = dlq.iter().map(|m| h(m, "original_offset")).collect();
    assert_eq!(offsets, ["5", "6", "7", "8", "9"]);
    assert!(dlq
        .iter()
        .all(|m| h(m, "original_topic") == "lh" && h(m, "original_partition") == "0"));
    assert!(
        h(&dlq[1], "dlq_reason").starts_with("json_unmarshal_error: "),
        "{:?}",
        dlq[1]
    );
    assert_eq!(
        h(&dlq[4], "dlq_reason"),
        "missing_id_field: the entry has no id"
    );
    let nd = by("nd");
    let parts: Vec<(u64, Option<&str>)> = nd
        .iter()
        .map(|r| {
            (
                r["kafka"]["part"].as_u64().unwrap_or(99),
                r["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        [(0, None), (1, Some("json_unmarshal_error")), (2, None)]
    );
    let nd_dlq = broker.read("nd_dlq", 1);
    assert_eq!(nd_dlq.len(), 1, "{nd_dlq:?}");
    assert_eq!(
        nd_dlq[0]["value_b64"], "eyJuIjo=",
        "only the refused line: {{\"n\":"
    );
    assert!(
        h(&nd_dlq[0], "dlq_reason").starts_with("json_unmarshal_error: line 2: "),
        "{:?}",
        nd_dlq[0]
    );
    // Metrics: consumed and refused by reason, lag per partition.
    let metrics = reqwest::blocking::get(format!("{}/metrics", server.base))
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics.contains(r#"sealog_kafka_refused_total{source="k@lh",reason="too_large"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealog_kafka_consumed_total{source=\"k@lh\"} 10"),
        "{metrics}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let lag_line = r#"sealog_kafka_lag{source="k@lh",topic="lh",partition="0"} 0"#;
    loop {
        let m = reqwest::blocking::get(format!("{}/metrics", server.base))
            .expect("metrics")
            .text()
            .expect("text");
        if m.contains(lag_line) {
            break;
        }
        assert!(Instant::now() < deadline, "no lag gauge: {m}");
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop();
    s.run(&["verify", "--realm", "k"]).ok();
}

/// Seq order of a realm's records per partition, and every offset once.
fn check_exactly_once(recs: &[Value], partitions: u32, n: u64) {
    let mut per: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in recs {
        let k = &r["kafka"];
        if r["kind"] == "kafka_position" {
            continue;
        }
        per.entry(k["partition"].as_u64().expect("partition"))
            .or_default()
            .push(k["offset"].as_u64().expect("offset"));
    }
    assert_eq!(per.len() as u32, partitions);
    let mut total = 0;
    for (p, offs) in &per {
        let want: Vec<u64> = (0..(n / u64::from(partitions))).collect();
        if offs != &want {
            let have: BTreeSet<u64> = offs.iter().copied().collect();
            let missing: Vec<u64> = want
                .iter()
                .filter(|o| !have.contains(o))
                .copied()
                .take(20)
                .collect();
            let dups = offs.len() - have.len();
            let sorted = offs.windows(2).all(|w| w[0] < w[1]);
            panic!("partition {p}: {} offsets, missing {missing:?}, {dups} repeated, in order: {sorted}", offs.len());
        }
        total += offs.len() as u64;
    }
    assert_eq!(total, n);
    let ns: BTreeSet<u64> = recs.iter().filter_map(|r| r["n"].as_u64()).collect();
    assert_eq!(ns.len() as u64, n, "every message once");
}

#[test]
fn exactly_once_through_ten_kill_9s() {
    let broker = Broker::start();
    let s = Sealog::new();
    let (_, q) = tokens(&s.realm("eo"));
    broker.create("events", 4);
    // The producer runs while sealog is killed and restarted: the kills
    // come while messages are arriving and being consumed.
    let producer = broker.bulk_in_background("events", 4, 200_000);
    // Small commits: many commit boundaries to be killed at, and slow
    // enough that ten kills come before the end.
    let conf = s.file(
        "eo.toml",
        format!(
            "[kafka]\nbrokers = \"{}\"\n\n[[kafka.sources]]\nrealm = \"eo\"\ntopics = [\"events\"]\nbatch_records = 500\nlinger_ms = 2\n",
            broker.addr
        )
        .as_bytes(),
    );
    let args = ["--config", conf.to_str().expect("path")];
    let mut seed = 0x5eed_u64;
    let mut kills = 0;
    let mut seen_before = 0usize;
    for _ in 0..10 {
        let server = Served::start_with(&s, &args, None);
        // A random moment, 0 to 150 ms after this run began to consume.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = reqwest::blocking::get(format!("{}/metrics", server.base))
                .and_then(|r| r.text())
                .unwrap_or_default();
            if m.contains("sealog_kafka_consumed_total{source=\"eo@events\"}") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the source did not start consuming"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis((seed >> 33) % 300));
        drop(server); // SIGKILL
        kills += 1;
        let server = Served::start_with(&s, &[], None);
        let now = records(&server.base, &q).len();
        drop(server);
        assert!(
            now >= seen_before,
            "acknowledged records never go away ({now} < {seen_before})"
        );
        eprintln!("kill {kills}: {now} records stored");
        seen_before = now;
    }
    assert_eq!(kills, 10);
    let out = producer.wait_with_output().expect("producer");
    assert!(
        out.status.success(),
        "bulk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        seen_before < 200_000,
        "the kills came while consuming ({seen_before} stored)"
    );
    let server = Served::start_with(&s, &args, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut recs = records(&server.base, &q);
    while recs.len() < 200_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        recs = records(&server.base, &q);
    }
    check_exactly_once(&recs, 4, 200_000);
    server.stop();
    s.run(&["verify", "--realm", "eo"]).ok();
}

#[test]
fn broker_gone_for_ten_seconds_loses_and_repeats_nothing() {
    let broker = Broker::start();
    let s = Sealog::new();
    let (_, q) = tokens(&s.realm("bd"));
    broker.create("flow", 2);
    broker.bulk("flow", 2, 20_000);
    let server = Served::start_with(
        &s,
        &["--kafka", &broker.addr, "--kafka-source", "bd@flow:ndjson"],
        None,
    );
    wait_for(&server.base, &q, 20_000, Duration::from_secs(60));
    broker.down();
    // /ready names the source and why.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = reqwest::blocking::get(format!("{}/ready", server.base)).expect("ready");
        let status = r.status();
        let body = r.text().expect("body");
        if status == 503 && body.contains("kafka source bd@flow") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready did not report the broker: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(8));
    broker.up();
    // More messages after the broker is back (the peer produces them with
    // n from 0 again: the offsets tell them apart).
    broker.bulk("flow", 2, 10_000);
    let recs = wait_for(&server.base, &q, 30_000, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(1));
    let recs2 = records(&server.base, &q);
    assert_eq!(recs.len(), recs2.len(), "nothing more arrives");
    let mut per: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in &recs2 {
        per.entry(r["kafka"]["partition"].as_u64().expect("p"))
            .or_default()
            .push(r["kafka"]["offset"].as_u64().expect("o"));
    }
    for (p, offs) in &per {
        assert_eq!(offs, &(0..15_000).collect::<Vec<u64>>(), "partition {p}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = reqwest::blocking::get(format!("{}/ready", server.base)).expect("ready");
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready did not recover: {}",
            r.text().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop();
    s.run(&["verify", "--realm", "bd"]).ok();
}

/// Two sources in one realm and group, one of them `start = latest`,
/// through three clean restarts with messages arriving while sealog is
/// down: every offset once (each source resumes from its own position, not
/// the other's), and a whitespace-only message is a refused record.
#[test]
fn two_sources_in_one_realm_resume_their_own_positions() {
    let broker = Broker::start();
    let s = Sealog::new();
    let (_, q) = tokens(&s.realm("two"));
    broker.create("ha", 1);
    broker.create("hb", 1);
    broker.bulk("ha", 1, 10);
    broker.bulk("hb", 1, 10);
    let conf = s.file(
        "two.toml",
        format!(
            "[kafka]\nbrokers = \"{}\"\n\n[[kafka.sources]]\nrealm = \"two\"\ntopics = [\"ha\"]\nlinger_ms = 5\n\n[[kafka.sources]]\nrealm = \"two\"\ntopics = [\"hb\"]\nstart = \"latest\"\nlinger_ms = 5\n",
            broker.addr
        )
        .as_bytes(),
    );
    let args = ["--config", conf.to_str().expect("path")];
    // hb starts at its end: its first 10 are not consumed.
    let server = Served::start_with(&s, &args, None);
    wait_for(&server.base, &q, 11, Duration::from_secs(30)); // 10 + hb's position
    server.stop();
    let mut want = 11;
    for round in 0..3 {
        server_stop_and_produce(&broker, round);
        want += 20;
        let server = Served::start_with(&s, &args, None);
        wait_for(&server.base, &q, want, Duration::from_secs(30));
        server.stop();
    }
    broker.produce("ha", &[serde_json::json!({"value": "   "})]);
    let server = Served::start_with(&s, &args, None);
    let recs = wait_for(&server.base, &q, want + 1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let recs2 = records(&server.base, &q);
    assert_eq!(recs.len(), recs2.len(), "no more records arrive");
    let offsets = |topic: &str| -> Vec<i64> {
        recs2
            .iter()
            .filter(|r| r["kafka"]["topic"] == topic && r["kind"] != "kafka_position")
            .map(|r| r["kafka"]["offset"].as_i64().expect("offset"))
            .collect()
    };
    assert_eq!(offsets("ha"), (0..41).collect::<Vec<i64>>());
    assert_eq!(offsets("hb"), (10..40).collect::<Vec<i64>>());
    let last = recs2
        .iter()
        .rev()
        .find(|r| r["kafka"]["topic"] == "ha")
        .expect("ha");
    assert_eq!(
        (last["kind"].as_str(), last["reason"].as_str()),
        (Some("kafka_refused"), Some("empty"))
    );
    server.stop();
    // The same topic twice in one group is refused at start.
    let r = s.run(&[
        "serve",
        "--http",
        "127.0.0.1:0",
        "--kafka",
        &broker.addr,
        "--kafka-source",
        "two@ha:ndjson",
        "--kafka-source",
        "two@ha:ndjson",
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("both consume topic ha"), "{}", r.stderr);
    let r = s.run(&[
        "serve",
        "--kafka",
        &broker.addr,
        "--kafka-source",
        "two@/[/:ndjson",
    ]);
    assert!(
        r.code != 0 && r.stderr.contains("topic regex"),
        "{}",
        r.stderr
    );
}

fn server_stop_and_produce(broker: &Broker, _round: u32) {
    broker.bulk("ha", 1, 10);
    broker.bulk("hb", 1, 10);
}

/// sealog-client's Kafka writer (LogHarbour's way: one JSON line per
/// message) into a topic the server's `logharbour` source consumes; and,
/// with no broker, its fallback file.
#[test]
fn the_client_kafka_writer_feeds_the_logharbour_source() {
    use sealog_client::{KafkaConfig, KafkaWriter, Logger, LoggerContext, Priority};
    let broker = Broker::start();
    let s = Sealog::new();
    let (_, q) = tokens(&s.realm("lh"));
    broker.create("log_topic", 1);
    let mut cfg = KafkaConfig::new(
        &broker.addr,
        "log_topic",
        s.dir.path().join("kafka.fallback"),
    );
    // One message per record batch (tansu 0.6 serves batches from their
    // start only; see the module's other tests).
    cfg.options = vec![
        ("batch.num.messages".into(), "1".into()),
        ("linger.ms".into(), "0".into()),
    ];
    let w = Arc::new(KafkaWriter::start(cfg).expect("producer"));
    let log = Logger::new(&LoggerContext::new(Priority::Info), "shop", w.clone());
    for i in 0..200 {
        log.with_who(format!("u{}", i % 4))
            .log_activity("order", &i);
    }
    w.flush(Duration::from_secs(30));
    assert_eq!(w.stats().delivered, 200, "{:?}", w.stats());
    let server = Served::start_with(
        &s,
        &[
            "--kafka",
            &broker.addr,
            "--kafka-source",
            "lh@log_topic:logharbour",
        ],
        None,
    );
    let recs = wait_for(&server.base, &q, 200, Duration::from_secs(60));
    let entries: Vec<&Value> = recs.iter().filter(|r| r["app"] == "shop").collect();
    assert_eq!(entries.len(), 200);
    let ids: BTreeSet<&str> = entries
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 200, "each entry once");
    assert!(entries
        .iter()
        .all(|r| r["type"] == "A" && r["kafka"]["topic"] == "log_topic"));
    server.stop();

    // No broker: what cannot be delivered is kept.
    let dead = format!("127.0.0.1:{}", free_port());
    let fallback = s.dir.path().join("dead.fallback");
    let mut cfg = KafkaConfig::new(&dead, "log_topic", &fallback);
    cfg.options = vec![("message.timeout.ms".into(), "1500".into())];
    let w = KafkaWriter::start(cfg).expect("producer");
    let log = Logger::new(&LoggerContext::new(Priority::Info), "shop", Arc::new(w));
    for _ in 0..10 {
        log.log("kept");
    }
    drop(log);
    let kept = std::fs::read_to_string(&fallback).expect("fallback file");
    assert_eq!(kept.lines().count(), 10, "{kept}");
}
