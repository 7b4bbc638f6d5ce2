//! The API's behaviour: receipts and proofs, bad input, tail, overload,
//! restart.

use std::io::Write;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures_util::StreamExt;
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::merkle::{
    leaf_hash, root_from_range, verify_consistency, verify_inclusion, Hash,
};
use sealog_server::Config;
use serde_json::Value;

use crate::util::{ndjson, s, TestServer};

fn hashes(v: &Value) -> Vec<Hash> {
    v["hashes"]
        .as_array()
        .expect("hashes")
        .iter()
        .map(|h| {
            B64.decode(h.as_str().expect("b64"))
                .expect("base64")
                .try_into()
                .expect("32 bytes")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn receipts_checkpoints_and_proofs_verify() {
    let srv = TestServer::start().await;
    let r = srv.realm("pay").await;
    let key: VerifierKey = s(&r, "public_key").parse().expect("key");
    let (w, q) = (s(&r, "write_token"), s(&r, "query_token"));
    let r1: Value = srv
        .ingest(w, ndjson(0, 300))
        .await
        .json()
        .await
        .expect("receipt");
    // A JSON array and a gzipped body are accepted too.
    let array = serde_json::to_string(
        &(300..400)
            .map(|i| serde_json::json!({"n": i, "app": "search"}))
            .collect::<Vec<_>>(),
    )
    .expect("json");
    let resp = srv
        .http
        .post(srv.url("/v1/ingest"))
        .bearer_auth(w)
        .header("content-type", "application/json")
        .body(array)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(ndjson(400, 600).as_bytes()).expect("gzip");
    let resp = srv
        .http
        .post(srv.url("/v1/ingest"))
        .bearer_auth(w)
        .header("content-encoding", "gzip")
        .body(gz.finish().expect("gzip"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let r2: Value = resp.json().await.expect("receipt");
    assert_eq!(
        (r1["first_seq"].as_u64(), r1["last_seq"].as_u64()),
        (Some(0), Some(299))
    );
    assert_eq!(
        (
            r2["first_seq"].as_u64(),
            r2["last_seq"].as_u64(),
            r2["count"].as_u64()
        ),
        (Some(400), Some(999), Some(600))
    );
    let c1 = key
        .verify(s(&r1, "checkpoint"))
        .expect("receipt 1 checkpoint verifies");
    let c2 = key
        .verify(s(&r2, "checkpoint"))
        .expect("receipt 2 checkpoint verifies");
    assert_eq!((c1.size, c2.size), (300, 1000));

    // Leaf lines as served are what was hashed.
    let all = srv.get(Some(q), "/v1/query?limit=100000").await;
    assert_eq!(all.headers()["x-sealog-tree-size"], "1000");
    let text = all.text().await.expect("body");
    let leaves: Vec<Hash> = text.lines().map(|l| leaf_hash(l.as_bytes())).collect();
    assert_eq!(leaves.len(), 1000);
    for seq in [0u64, 1, 150, 299] {
        let p: Value = srv
            .get(
                Some(q),
                &format!("/v1/proof/inclusion?seq={seq}&size={}", c1.size),
            )
            .await
            .json()
            .await
            .expect("proof");
        verify_inclusion(&leaves[seq as usize], seq, c1.size, &hashes(&p), &c1.root)
            .expect("inclusion in receipt 1");
    }
    for seq in [400u64, 555, 999] {
        let p: Value = srv
            .get(Some(q), &format!("/v1/proof/inclusion?seq={seq}&size=1000"))
            .await
            .json()
            .await
            .expect("proof");
        verify_inclusion(&leaves[seq as usize], seq, c2.size, &hashes(&p), &c2.root)
            .expect("inclusion in receipt 2");
    }
    let p: Value = srv
        .get(Some(q), "/v1/proof/consistency?from=300&to=1000")
        .await
        .json()
        .await
        .expect("proof");
    verify_consistency(c1.size, c2.size, &hashes(&p), &c1.root, &c2.root)
        .expect("consistency between receipts");
    // A range proof: records 250..400 recompute both receipts' roots, and a
    // changed record does not.
    for (size, root) in [(c1.size, &c1.root), (c2.size, &c2.root)] {
        let to = size.min(400);
        let p: Value = srv
            .get(
                Some(q),
                &format!("/v1/proof/range?from=250&to={to}&size={size}"),
            )
            .await
            .json()
            .await
            .expect("proof");
        let got = root_from_range(&leaves[250..to as usize], 250, size, &hashes(&p))
            .expect("range proof");
        assert_eq!(&got, root, "range 250..{to} recomputes the root of {size}");
        let mut changed = leaves[250..to as usize].to_vec();
        changed[7] = leaf_hash(b"{\"forged\":1}");
        assert_ne!(
            &root_from_range(&changed, 250, size, &hashes(&p)).expect("shape"),
            root
        );
    }
    for bad in [
        "from=5&to=5",
        "from=10&to=99999",
        "from=0&to=2000000&size=1000",
        "to=3",
    ] {
        assert_eq!(
            srv.get(Some(q), &format!("/v1/proof/range?{bad}"))
                .await
                .status(),
            400,
            "{bad}"
        );
    }
    // Out of range proofs are a 400, not a 500.
    assert_eq!(
        srv.get(Some(q), "/v1/proof/inclusion?seq=5000&size=1000")
            .await
            .status(),
        400
    );
    assert_eq!(
        srv.get(Some(q), "/v1/proof/consistency?from=10&to=99999")
            .await
            .status(),
        400
    );
    assert_eq!(srv.get(Some(q), "/v1/proof/inclusion").await.status(), 400);

    // Filters, order and cursors.
    let page = srv
        .get(Some(q), "/v1/query?where=app:payments&limit=3")
        .await;
    let cursor = page.headers()["x-sealog-next-cursor"]
        .to_str()
        .expect("cursor")
        .to_string();
    let lines: Vec<Value> = page
        .text()
        .await
        .expect("text")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l["seq"].as_u64().expect("seq"))
            .collect::<Vec<_>>(),
        vec![0, 3, 6]
    );
    let next = srv
        .get(
            Some(q),
            &format!("/v1/query?where=app:payments&limit=2&cursor={cursor}"),
        )
        .await;
    let seqs: Vec<u64> = next
        .text()
        .await
        .expect("text")
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect();
    assert_eq!(seqs, vec![9, 12]);
    let newest = srv
        .get(Some(q), "/v1/query?order=newest&limit=1")
        .await
        .text()
        .await
        .expect("text");
    assert!(newest.contains("\"seq\":999,"), "{newest}");
    assert_eq!(srv.get(Some(q), "/v1/query?limit=abc").await.status(), 400);
    assert_eq!(
        srv.get(Some(q), "/v1/query?where=nocolon").await.status(),
        400
    );
    assert_eq!(srv.get(Some(q), "/v1/query?bogus=1").await.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_whole_and_the_server_carries_on() {
    let srv = TestServer::start().await;
    let r = srv.realm("acme").await;
    let (w, q) = (s(&r, "write_token"), s(&r, "query_token"));

    let body = "{\"a\":1}\n{\"a\":2}\n{\"a\":3,,}\n{\"a\":4}\n{\"a\":5}\n";
    let resp = srv.ingest(w, body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["lines"][0]["line"], 3, "{v}");
    assert_eq!(v["lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        srv.get(Some(q), "/v1/checkpoint").await.status(),
        404,
        "nothing committed"
    );

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "non-UTF-8",
            b"{\"a\":\"\xff\xfe\"}\n".to_vec(),
            400,
            "UTF-8",
        ),
        (
            "line over the limit",
            format!("{{\"a\":\"{}\"}}\n", "x".repeat(2 * 1024 * 1024)).into_bytes(),
            400,
            "over the limit",
        ),
        (
            "deeply nested",
            format!("{{\"a\":{}{}}}\n", "[".repeat(500), "]".repeat(500)).into_bytes(),
            400,
            "nesting",
        ),
        (
            "17 MiB body",
            vec![b' '; 17 * 1024 * 1024],
            413,
            "larger than",
        ),
        ("not an object", b"[1,2,3]".to_vec(), 400, "object"),
        ("empty", b"\n\n".to_vec(), 400, "no events"),
    ];
    for (what, body, status, needle) in cases {
        let resp = srv.ingest(w, body).await;
        assert_eq!(resp.status().as_u16(), status, "{what}");
        let text = resp.text().await.expect("text");
        assert!(text.contains(needle), "{what}: {text}");
        assert!(
            text.starts_with("{\"error\""),
            "{what}: errors are JSON: {text}"
        );
    }
    // A gzip bomb: 64 MiB of zeros in ~64 KiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'0'; 64 * 1024 * 1024]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 1024 * 1024);
    let resp = srv
        .http
        .post(srv.url("/v1/ingest"))
        .bearer_auth(w)
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 413);
    let resp = srv
        .http
        .post(srv.url("/v1/ingest"))
        .bearer_auth(w)
        .header("content-encoding", "br")
        .body("x")
        .send()
        .await
        .expect("send");
    // RFC 9110 15.5.16: an unsupported content coding is 415.
    assert_eq!(resp.status(), 415);
    let text = resp.text().await.expect("text");
    assert!(
        text.starts_with("{\"error\"") && text.contains("gzip"),
        "{text}"
    );
    // Unaffected: still healthy and still ingesting; still nothing from the refusals.
    assert_eq!(srv.get(None, "/health").await.status(), 200);
    let ok: Value = srv
        .ingest(w, "{\"fine\":true}\n")
        .await
        .json()
        .await
        .expect("receipt");
    assert_eq!(ok["first_seq"], 0);
    let metrics = srv.get(None, "/metrics").await.text().await.expect("text");
    assert!(metrics.contains("sealog_refused_total"), "{metrics}");
    assert!(
        metrics.contains("sealog_commit_seconds_bucket"),
        "{metrics}"
    );
    assert_eq!(srv.get(None, "/nope").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_streams_new_records() {
    let srv = TestServer::start().await;
    let r = srv.realm("live").await;
    let (w, q) = (s(&r, "write_token").to_string(), s(&r, "query_token"));
    srv.ingest(&w, ndjson(0, 5)).await;
    let resp = srv.get(Some(q), "/v1/tail?where=app:payments").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    srv.ingest(&w, ndjson(5, 10)).await;
    let mut got = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.matches("data: ").count() < 3 {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events arrive in time")
            .expect("stream open")
            .expect("chunk");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    // From now: seqs 6, 9, 12 match (5..15 with n % 3 == 0), none of 0..5.
    assert!(
        got.contains("id: 6\n") && got.contains("id: 9\n") && got.contains("id: 12\n"),
        "{got}"
    );
    assert!(!got.contains("id: 3\n"), "{got}");
    assert!(got.contains("\"app\":\"payments\""), "{got}");
    let back = srv.get(Some(q), "/v1/tail?since_seq=9999").await;
    assert_eq!(back.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_commit_queue_answers_503_with_retry_after() {
    let mut cfg = Config::default();
    cfg.limits.commit_queue = 1;
    cfg.limits.max_group_records = 1;
    let srv = TestServer::start_with(cfg).await;
    let r = srv.realm("busy").await;
    let w = s(&r, "write_token").to_string();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let (http, url, w) = (srv.http.clone(), srv.url("/v1/ingest"), w.clone());
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(w)
                .body(ndjson(i * 10, 10))
                .send()
                .await
                .expect("send");
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or("").to_string());
            (resp.status().as_u16(), retry)
        }));
    }
    let (mut ok, mut busy) = (0u64, 0u64);
    for t in tasks {
        let (status, retry) = t.await.expect("task");
        match status {
            200 => ok += 1,
            503 => {
                busy += 1;
                assert_eq!(retry.as_deref(), Some("1"));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        busy > 0,
        "200 concurrent requests against a queue of 1 must see 503s"
    );
    let q = s(&r, "query_token");
    let size = srv.get(Some(q), "/v1/query?limit=1").await.headers()["x-sealog-tree-size"]
        .to_str()
        .expect("size")
        .parse::<u64>()
        .expect("number");
    assert_eq!(
        size,
        ok * 10,
        "exactly the acknowledged records were committed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_records_and_tokens() {
    let srv = TestServer::start().await;
    let r = srv.realm("keep").await;
    let receipt: Value = srv
        .ingest(s(&r, "write_token"), ndjson(0, 50))
        .await
        .json()
        .await
        .expect("receipt");
    let srv = srv.restart(Config::default()).await;
    let cp = srv
        .get(Some(s(&r, "query_token")), "/v1/checkpoint")
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(
        cp,
        s(&receipt, "checkpoint"),
        "the last receipt's checkpoint is the latest"
    );
    assert_eq!(
        srv.get(Some(&srv.admin), "/v1/admin/realms").await.status(),
        200
    );
    assert_eq!(srv.get(None, "/ready").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inflight_byte_budget_refuses_with_503_and_admits_a_lone_large_body() {
    let mut cfg = Config::default();
    cfg.limits.max_inflight_bytes = 64 * 1024;
    let srv = TestServer::start_with(cfg).await;
    let r = srv.realm("mem").await;
    let w = s(&r, "write_token").to_string();
    // Alone, a body twice the budget is admitted.
    let big = ndjson(0, 4000);
    assert!(big.len() > 128 * 1024);
    assert_eq!(srv.ingest(&w, big).await.status(), 200);
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let (http, url, w) = (srv.http.clone(), srv.url("/v1/ingest"), w.clone());
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(w)
                .body(ndjson(10_000 + i * 500, 500))
                .send()
                .await
                .expect("send");
            (
                resp.status().as_u16(),
                resp.headers().contains_key("retry-after"),
            )
        }));
    }
    let (mut ok, mut busy) = (0u64, 0u64);
    for t in tasks {
        match t.await.expect("task") {
            (200, _) => ok += 1,
            (503, true) => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        busy > 0,
        "100 concurrent 20 KiB bodies against a 64 KiB budget must see 503s"
    );
    let size = srv
        .get(Some(s(&r, "query_token")), "/v1/query?limit=1")
        .await
        .headers()["x-sealog-tree-size"]
        .to_str()
        .expect("size")
        .parse::<u64>()
        .expect("number");
    assert_eq!(size, 4000 + ok * 500);
    let m = srv.get(None, "/metrics").await.text().await.expect("text");
    assert!(m.contains("reason=\"inflight_bytes\""), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logharbour_entries_are_recognised() {
    let srv = TestServer::start().await;
    let r = srv.realm("lh").await;
    // LogHarbour's entry shape (seed-systems §2.2), as its client library writes it.
    let entries = concat!(
        r#"{"id":"2XkL9","app":"payments","system":"web-1","module":"auth","type":"A","pri":"Warn","when":"2026-01-05T10:00:00.5Z","who":"alice","op":"login","status":1,"remote_ip":"10.0.0.7","msg":"bad password","data":{"activity_data":"tries=3"}}"#,
        "\n",
        r#"{"id":"2XkLA","app":"payments","system":"web-2","module":"auth","type":"A","pri":"Info","when":"2026-01-06T10:00:00Z","who":"bob","op":"login","msg":"ok"}"#,
        "\n"
    );
    assert_eq!(
        srv.ingest(s(&r, "write_token"), entries).await.status(),
        200
    );
    let q = s(&r, "query_token");
    let warn = srv
        .get(Some(q), "/v1/query?where=severity:warning")
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(warn.lines().count(), 1);
    assert!(warn.contains("\"who\":\"alice\""), "{warn}");
    // Stored exactly as sent after sealog's own fields.
    assert!(
        warn.contains(r#""id":"2XkL9","app":"payments","system":"web-1""#),
        "{warn}"
    );
    let host = srv
        .get(Some(q), "/v1/query?where=host:web-2")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        host.contains("\"who\":\"bob\"") && host.lines().count() == 1,
        "{host}"
    );
    let day = srv
        .get(
            Some(q),
            "/v1/query?from=2026-01-06T00:00:00Z&to=2026-01-07T00:00:00Z",
        )
        .await
        .text()
        .await
        .expect("text");
    assert!(
        day.contains("\"who\":\"bob\"") && day.lines().count() == 1,
        "`when` is the time: {day}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logshuttle_log_events() {
    let srv = TestServer::start().await;
    let r = srv.realm("akk").await;
    let body = concat!(
        r#"{"log":"GET /cart 200\n","stream":"stdout","time":"2026-11-22T08:00:00Z","kubernetes":{"namespace_name":"prod","pod_name":"shop-5f-abc","container_name":"shop"},"topic":"prod"}"#,
        "\n",
        r#"{"log":"job done","stream":"stderr","kubernetes":{"namespace_name":"prod","pod_name":"shop-5f-xyz","container_name":"shop--worker"}}"#,
        "\n"
    );
    let resp = srv
        .http
        .post(srv.url("/log-events"))
        .bearer_auth(s(&r, "write_token"))
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 201);
    let receipt: Value = resp.json().await.expect("json");
    assert_eq!(receipt["count"], 2);
    let q = s(&r, "query_token");
    let workers = srv
        .get(Some(q), "/v1/query?where=proc_type:worker")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        workers.contains("\"dyno\":\"shop-5f-xyz\"") && workers.lines().count() == 1,
        "{workers}"
    );
    let shop = srv
        .get(Some(q), "/v1/query?where=app:shop&where=space:prod")
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(shop.lines().count(), 2, "{shop}");
    let bad = srv
        .http
        .post(srv.url("/log-events"))
        .bearer_auth(s(&r, "write_token"))
        .body(r#"{"log":"no kubernetes block"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
    assert!(bad
        .text()
        .await
        .expect("text")
        .contains("kubernetes.container_name"));
    let unauth = srv
        .http
        .post(srv.url("/log-events"))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(unauth.status(), 401);
}
