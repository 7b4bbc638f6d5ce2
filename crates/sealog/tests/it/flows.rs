//! `sealog import vpcflow`, a digest through the server, `sealog digest
//! verify` before and after a flow record is altered on disk; and kill -9
//! right after audit 202s.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::util::{path_str, Sealog, Served};

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn flow_lines(n: usize, salt: u64) -> String {
    let mut s = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
    for i in 0..n as u64 {
        let x = i.wrapping_mul(2_654_435_761).wrapping_add(salt);
        let start = T0 + (x % 7200) as i64;
        s.push_str(&format!(
            "2 123456789012 eni-{} 10.0.0.{} 10.1.0.{} {} 443 6 {} {} {start} {} ACCEPT OK\n",
            x % 3,
            x % 7,
            (x >> 3) % 5,
            40000 + x % 1000,
            1 + x % 9,
            100 + x % 1000,
            start + 30
        ));
    }
    s
}

#[test]
fn import_digest_and_verify_then_tamper() {
    let s = Sealog::new();
    let realm = s.run(&["realm", "create", "flows"]).ok();
    let realm: serde_json::Value = serde_json::from_str(&realm.stdout).expect("json");
    // AWS's layout: one gzipped file, one plain file with two bad lines.
    let day = s
        .dir
        .path()
        .join("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/01/01");
    std::fs::create_dir_all(&day).expect("mkdir");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(flow_lines(3000, 1).as_bytes()).expect("gzip");
    std::fs::write(
        day.join("123456789012_vpcflowlogs_us-east-1_fl-1_20260101T0000Z_abc.log.gz"),
        gz.finish().expect("gzip"),
    )
    .expect("write");
    let mut plain = flow_lines(2000, 2);
    plain.push_str("2 123456789012 eni-1 short\n");
    plain.push_str(
        "2 123456789012 eni-1 10.0.0.1 10.1.0.1 http 443 6 1 1 1767225600 1767225601 ACCEPT OK\n",
    );
    plain.push_str("2 123456789012 eni-1 - - - - - - - 1767225600 1767225660 - NODATA\n");
    std::fs::write(day.join("plain.log"), plain).expect("write");
    let run = s.run(&[
        "import",
        "vpcflow",
        "--realm",
        "flows",
        path_str(&s.dir.path().join("AWSLogs")),
    ]);
    assert_eq!(run.code, 1, "bad lines make exit 1: {}", run.stderr);
    assert!(run.stderr.contains("plain.log:2002:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("plain.log:2003:") && run.stderr.contains("srcport"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("imported 5000 flow records from 2 files"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("skipped 3 header/NODATA/SKIPDATA lines"),
        "{}",
        run.stderr
    );

    // A digest through the server.
    let served = Served::start(&s);
    let http = reqwest::blocking::Client::new();
    let w = realm["write_token"].as_str().expect("w");
    let q = realm["query_token"].as_str().expect("q");
    let (start, stop) = ("2026-01-01T00:30:00Z", "2026-01-01T01:30:00Z");
    let url = format!("{}/v1/digests?start={start}&stop={stop}", served.base);
    let r = http.post(&url).bearer_auth(w).send().expect("post");
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    let digest = loop {
        let r = http.get(&url).bearer_auth(q).send().expect("get");
        if r.status() == 200 {
            break r.text().expect("text");
        }
        assert!(Instant::now() < deadline, "digest not done");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(digest.lines().count() > 10, "{digest}");
    served.stop();

    let ok = s
        .run(&[
            "digest", "verify", "--realm", "flows", "--start", start, "--stop", stop,
        ])
        .ok();
    assert!(ok.stdout.contains("verified"), "{}", ok.stdout);

    // Alter one flow inside the window (a careful attacker: block checksums
    // and leaf hints recomputed): verify fails.
    let seg = s.segment("flows");
    let mut altered = false;
    sealog_journal::tamper::rewrite_blocks(
        &seg,
        sealog_journal::tamper::Hints::Recompute,
        |_, lines| {
            for l in lines.iter_mut() {
                let text = String::from_utf8(l.clone()).expect("utf8");
                if !altered
                    && text.contains("\"kind\":\"flow\"")
                    && text.contains("\"time\":\"2026-01-01T01:0")
                {
                    *l = text.replacen("\"bytes\":", "\"bytes\":9", 1).into_bytes();
                    altered = true;
                }
            }
        },
    )
    .expect("rewrite");
    assert!(altered);
    let bad = s.run(&[
        "digest", "verify", "--realm", "flows", "--start", start, "--stop", stop,
    ]);
    assert_ne!(bad.code, 0, "{}", bad.stdout);
    assert!(
        bad.stderr.contains("no longer match the checkpoint"),
        "{}",
        bad.stderr
    );
}

#[test]
fn kill_9_right_after_audit_202s_loses_nothing() {
    let s = Sealog::new();
    let served = Served::start(&s);
    let admin = std::fs::read_to_string(s.data().join("admin.token")).expect("admin");
    let http = reqwest::blocking::Client::new();
    let realm: serde_json::Value = http
        .post(format!("{}/v1/admin/realms", served.base))
        .bearer_auth(admin.trim())
        .json(&serde_json::json!({"name": "audit"}))
        .send()
        .expect("send")
        .json()
        .expect("json");
    let w = realm["write_token"].as_str().expect("w").to_string();
    let q = realm["query_token"].as_str().expect("q").to_string();
    let mut acked = Vec::new();
    for i in 0..200 {
        let body = format!(
            r#"{{"userId":"user-{i}","resourceId":"/r/{i}","context":{{"@class":"uk.gov.gchq.palisade.Context","contents":{{"purpose":"p"}}}},"serviceName":"data-service","timestamp":"2026-01-01T00:00:00Z","serverIP":"10.0.0.1","serverHostname":"h","attributes":{{}},"leafResourceId":"file:/{i}"}}"#
        );
        let r = http
            .post(format!("{}/api/success", served.base))
            .bearer_auth(&w)
            .header("content-type", "application/json")
            .header("x-request-token", format!("req-{i}"))
            .body(body)
            .send()
            .expect("send");
        assert_eq!(r.status(), 202);
        acked.push(i);
    }
    // kill -9 at once after the last 202.
    let st = std::process::Command::new("kill")
        .args(["-9", &served.pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    drop(served);
    let served = Served::start(&s);
    let text = http
        .get(format!(
            "{}/v1/query?where=kind=audit&limit=100000",
            served.base
        ))
        .bearer_auth(&q)
        .send()
        .expect("send")
        .text()
        .expect("text");
    let users: std::collections::HashSet<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["userId"].as_str().expect("userId").to_string()
        })
        .collect();
    for i in acked {
        assert!(
            users.contains(&format!("user-{i}")),
            "user-{i} was acknowledged and lost"
        );
    }
    served.stop();
}
