//! VPC flow-log ingest and digests against an independent aggregation.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use sealog_server::Config;
use serde_json::Value;

use crate::util::{s, TestServer};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

/// `n` flow lines spread over three hours from `T0`, with a header and
/// some NODATA lines (generated, deterministic).
fn flow_log(n: usize) -> (String, usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
    let mut skipped = 1;
    for i in 0..n {
        if i % 997 == 0 {
            out.push_str(&format!(
                "2 123456789012 eni-0 - - - - - - - {T0} {} - NODATA\n",
                T0 + 60
            ));
            skipped += 1;
        }
        let r = next();
        let src = format!("10.0.{}.{}", r % 4, (r >> 8) % 8);
        let dst = format!("10.1.0.{}", (r >> 16) % 6);
        let (sp, dp) = if r % 2 == 0 {
            (
                32768 + (r >> 20) % 20000,
                [22, 80, 443][(r >> 40) as usize % 3],
            )
        } else {
            (
                [22, 80, 443][(r >> 40) as usize % 3],
                32768 + (r >> 20) % 20000,
            )
        };
        let start = T0 + ((r >> 24) % (3 * 3600)) as i64;
        let end = start + ((r >> 36) % 120) as i64;
        let action = if (r >> 50) % 5 == 0 {
            "REJECT"
        } else {
            "ACCEPT"
        };
        let iface = format!("eni-{}", (r >> 44) % 3);
        out.push_str(&format!(
            "2 123456789012 {iface} {src} {dst} {sp} {dp} 6 {} {} {start} {end} {action} OK\n",
            1 + (r >> 28) % 50,
            40 + (r >> 32) % 9000
        ));
    }
    (out, skipped)
}

/// The digest, computed here from the text lines without sealog's code.
fn independent(text: &str, start: i64, stop: i64) -> String {
    let mut groups: BTreeMap<Vec<String>, (u64, u64, i64, i64)> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 14 || f[0] != "2" || f[13].to_lowercase() != "ok" {
            continue;
        }
        let t: i64 = f[10].parse().expect("start");
        if t < start || t >= stop {
            continue;
        }
        let (sp, dp): (u64, u64) = (f[5].parse().expect("sp"), f[6].parse().expect("dp"));
        let (sp, dp) = if sp < dp { (sp, 0) } else { (0, dp) };
        let key = vec![
            f[0].to_string(),
            f[1].to_string(),
            f[2].to_string(),
            f[3].to_string(),
            f[4].to_string(),
            sp.to_string(),
            dp.to_string(),
            f[7].to_string(),
            f[12].to_string(),
            f[13].to_string(),
        ];
        let e = groups.entry(key).or_insert((0, 0, i64::MAX, i64::MIN));
        e.0 += f[8].parse::<u64>().expect("packets");
        e.1 += f[9].parse::<u64>().expect("bytes");
        e.2 = e.2.min(t);
        e.3 = e.3.max(f[11].parse().expect("end"));
    }
    let mut lines: Vec<String> = groups
        .into_iter()
        .map(|(k, (p, b, s, e))| {
            format!(
                "{} {} {} {} {} {} {} {} {p} {b} {s} {e} {} {}\n",
                k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9]
            )
        })
        .collect();
    lines.sort();
    lines.concat()
}

fn rfc(t: i64) -> String {
    sealog_event::format_rfc3339_nanos(t * 1_000_000_000)
}

async fn ingest_flows(srv: &TestServer, w: &str, text: &str) -> u64 {
    let mut skipped = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (i, chunk) in lines.chunks(20_000).enumerate() {
        let body = chunk.join("\n");
        let mut req = srv
            .http
            .post(srv.url("/v1/ingest?format=vpcflow"))
            .bearer_auth(w)
            .header("content-type", "text/plain");
        // One chunk gzipped, as flow logs are stored.
        if i == 1 {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(body.as_bytes()).expect("gzip");
            req = req
                .header("content-encoding", "gzip")
                .body(gz.finish().expect("gzip"));
        } else {
            req = req.body(body);
        }
        let r = req.send().await.expect("send");
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        skipped += r.headers()["x-sealog-skipped-lines"]
            .to_str()
            .expect("ascii")
            .parse::<u64>()
            .expect("number");
    }
    skipped
}

async fn status(srv: &TestServer, method: &str, token: &str, path: &str) -> (u16, String) {
    let r = srv
        .http
        .request(method.parse().expect("method"), srv.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.text().await.expect("text"))
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_of_100000_flows_matches_an_independent_aggregation() {
    let mut config = Config::default();
    config.digests.timeout_secs = 1;
    let srv = TestServer::start_with(config.clone()).await;
    let realm = srv.realm("flows").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));
    let (mut text, skipped) = flow_log(100_000);
    // Window [T0+3600, T0+7200): a flow exactly at stop is out, one exactly
    // at start is in.
    let (start, stop) = (T0 + 3600, T0 + 7200);
    text.push_str(&format!(
        "2 123456789012 eni-9 192.0.2.1 192.0.2.2 5000 53 17 1 100 {stop} {} ACCEPT OK\n",
        stop + 5
    ));
    text.push_str(&format!(
        "2 123456789012 eni-9 192.0.2.3 192.0.2.4 5000 53 17 1 100 {start} {} ACCEPT OK\n",
        start + 5
    ));
    assert_eq!(ingest_flows(&srv, w, &text).await, skipped as u64);

    // Malformed lines are refused with their numbers; nothing of that batch stored.
    let r = srv
        .http
        .post(srv.url("/v1/ingest?format=vpcflow"))
        .bearer_auth(w)
        .body("2 1 eni-1 10.0.0.1 10.0.0.2 443 5000 6 1 60 1600000000 1600000060 ACCEPT OK\n2 1 eni-1\n2 1 eni-1 a b http 1 6 1 1 1 1 ACCEPT OK\n")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    let lines: Vec<u64> = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["line"].as_u64().expect("n"))
        .collect();
    assert_eq!(lines, vec![2, 3], "{v}");

    let window = format!("start={}&stop={}", rfc(start + 59), rfc(stop));
    let path = format!("/v1/digests?{window}");
    assert_eq!(status(&srv, "GET", q, &path).await.0, 404);
    assert_eq!(
        status(&srv, "POST", q, &path).await.0,
        403,
        "a query token cannot request"
    );
    let (code, body) = status(&srv, "POST", w, &path).await;
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (code, body) = status(&srv, "POST", w, &path).await;
    assert_eq!(code, 409, "{body}");
    // Done within 30 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let digest = loop {
        let (code, body) = status(&srv, "GET", q, &path).await;
        match code {
            200 => break body,
            204 => {}
            other => panic!("GET answered {other}: {body}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "digest not done in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let want = independent(&text, start, stop);
    assert!(want.lines().count() > 100, "the window has many groups");
    assert_eq!(digest, want);
    assert!(!digest.contains("192.0.2.1 "), "the flow at stop is out");
    assert!(digest.contains("192.0.2.3 "), "the flow at start is in");
    let (code, body) = status(&srv, "POST", w, &path).await;
    assert_eq!(
        (code, body.contains("already exists")),
        (409, true),
        "{body}"
    );

    // JSON, and upstream's path with the gzipped bytes as stored.
    let j: Value = srv
        .http
        .get(srv.url(&path))
        .bearer_auth(q)
        .header("accept", "application/json")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(j["digest"]["id"], id.as_str());
    assert_eq!(
        j["lines"].as_array().expect("lines").len(),
        want.lines().count()
    );
    let raw = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let r = raw
        .get(srv.url(&format!("/vpcflow/?{window}")))
        .bearer_auth(q)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let gz = r.bytes().await.expect("bytes");
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut plain)
        .expect("gunzip");
    assert_eq!(plain, want);
    // The digest record is in the log.
    let rec = srv
        .get(Some(q), "/v1/query?where=kind=digest")
        .await
        .text()
        .await
        .expect("text");
    let rec: Value = serde_json::from_str(rec.trim()).expect("one digest record");
    assert_eq!(rec["digest"]["id"], id.as_str());
    assert_eq!(rec["digest"]["input"]["from_seq"], 0);

    // Bad windows: 400 with {"message"}.
    for bad in [
        "start=2026-01-02T00:00:00Z&stop=2026-01-01T00:00:00Z",
        "start=yesterday&stop=2026-01-01T00:00:00Z",
        "stop=2026-01-01T00:00:00Z",
    ] {
        let (code, body) = status(&srv, "POST", w, &format!("/v1/digests?{bad}")).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(serde_json::from_str::<Value>(&body).expect("json")["message"].is_string());
    }

    // A marker left by a job that died: 204 and 409 while fresh, then it
    // expires (timeout 1 s) and the window can be queued again.
    let other = format!("start={}&stop={}", rfc(T0), rfc(T0 + 3600));
    let other_path = format!("/v1/digests?{other}");
    let other_id = {
        let (code, body) = status(&srv, "POST", w, &format!("/vpcflow/?{other}")).await;
        assert_eq!((code, body.as_str()), (202, ""));
        // Wait for it, then plant a stale-to-be marker for a third window.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while status(&srv, "GET", q, &other_path).await.0 != 200 {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        status(&srv, "GET", q, &other_path).await.1
    };
    assert_eq!(other_id, independent(&text, T0, T0 + 3600));
    let third = format!("start={}&stop={}", rfc(T0 + 7200), rfc(T0 + 10800));
    let third_path = format!("/v1/digests?{third}");
    let third_id = sealog_server::digest::window(Some(&rfc(T0 + 7200)), Some(&rfc(T0 + 10800)))
        .expect("window")
        .id;
    let marker = srv
        .dir
        .path()
        .join("digests/flows")
        .join(format!("{third_id}.in_progress"));
    std::fs::write(&marker, rfc(chrono_now())).expect("marker");
    assert_eq!(status(&srv, "GET", q, &third_path).await.0, 204);
    let (code, body) = status(&srv, "POST", w, &third_path).await;
    assert_eq!(
        (code, body.contains("being created")),
        (409, true),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        status(&srv, "GET", q, &third_path).await.0,
        404,
        "stale marker"
    );
    assert_eq!(
        status(&srv, "POST", w, &third_path).await.0,
        202,
        "queued again"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while status(&srv, "GET", q, &third_path).await.0 != 200 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The digests survive a restart.
    let srv = srv.restart(config).await;
    let (code, again) = status(&srv, "GET", q, &path).await;
    assert_eq!((code, again == want), (200, true));
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
