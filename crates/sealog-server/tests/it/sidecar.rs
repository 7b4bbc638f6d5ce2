//! The sidecar listener with real peers: a Node client written like the
//! seed's client.js, and raw sockets sending garbage.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sealog_server::config::SidecarListener;
use sealog_server::{Config, Server};
use tokio_util::sync::CancellationToken;

use serde_json::Value;

use crate::util::s;

struct SideServer {
    dir: tempfile::TempDir,
    http: std::net::SocketAddr,
    side: std::net::SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), sealog_server::ServerError>>,
    admin: String,
}

/// A server with one sidecar listener, bound to `realm` if given (the realm
/// is created first through a short-lived server on the same directory).
async fn start(realm: Option<&str>) -> (SideServer, serde_json::Value) {
    start_with(realm, |_, _| {}).await
}

/// Like [`start`], letting the test adjust the server and listener config.
async fn start_with(
    realm: Option<&str>,
    adjust: impl FnOnce(&mut Config, &mut SidecarListener),
) -> (SideServer, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let created = {
        let mut dd = sealog_store::DataDir::open(dir.path(), "test").expect("open");
        let c = dd
            .create_realm(&"side".parse().expect("realm name"))
            .expect("realm");
        serde_json::to_value(c).expect("json")
    };
    let mut config = Config::default();
    let mut cfg = SidecarListener {
        realm: realm.map(str::to_string),
        service: Some("central-ledger".into()),
        max_frame_bytes: 4096,
        ..SidecarListener::default()
    };
    adjust(&mut config, &mut cfg);
    let (server, admin) = Server::open(dir.path(), config).expect("open");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let side = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (http_addr, side_addr) = (
        http.local_addr().expect("addr"),
        side.local_addr().expect("addr"),
    );
    let stop = CancellationToken::new();
    let listeners = sealog_server::Listeners {
        sidecar: vec![(side, cfg)],
        ..Default::default()
    };
    let task = tokio::spawn(server.serve_with(http, listeners, stop.clone()));
    (
        SideServer {
            dir,
            http: http_addr,
            side: side_addr,
            stop,
            task,
            admin: admin.expect("admin"),
        },
        created,
    )
}

async fn size(srv: &SideServer, q: &str) -> u64 {
    reqwest::Client::new()
        .get(format!("http://{}/v1/query?limit=1", srv.http))
        .bearer_auth(q)
        .send()
        .await
        .expect("send")
        .headers()["x-sealog-tree-size"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number")
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Reads ack/error frames until the peer closes or `timeout`.
pub fn read_frames(sock: &mut TcpStream, timeout: Duration) -> Vec<serde_json::Value> {
    sock.set_read_timeout(Some(timeout)).expect("timeout");
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= all.len() {
        let len = u32::from_be_bytes([all[at], all[at + 1], all[at + 2], all[at + 3]]) as usize;
        if at + 4 + len > all.len() {
            break;
        }
        out.push(serde_json::from_slice(&all[at + 4..at + 4 + len]).expect("ack frame is JSON"));
        at += 4 + len;
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn node_client_sends_100000_frames_all_committed_and_acked() {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("node is required for this test (Debian package nodejs)");
    }
    let (srv, realm) = start(Some("side")).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/sidecar-client.js");
    let port = srv.side.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args([script, &port, "100000"])
            .output()
            .expect("run node")
    })
    .await
    .expect("join");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("node said: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(summary["why"], "acked", "{summary}");
    assert_eq!(summary["acked"], 100_000);
    assert_eq!(summary["errors"], 0);
    assert!(summary["receipts"].as_u64().expect("n") >= 1);
    assert_eq!(size(&srv, s(&realm, "query_token")).await, 100_000);
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/v1/admin/verify", srv.http))
        .bearer_auth(&srv.admin)
        .json(&serde_json::json!({"realm": "side"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["committed"], 100_000);
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
    drop(srv.dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_gets_its_documented_outcome_and_loses_nothing() {
    let (srv, realm) = start(Some("side")).await;
    let addr = srv.side;
    let results = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        // 1. Good frames, then a 4 GiB length prefix: error frame, close; the good ones are kept.
        let mut a = TcpStream::connect(addr).expect("connect");
        let mut wire = Vec::new();
        for i in 0..10 {
            wire.extend_from_slice(&frame(
                format!("{{\"case\":\"prefix\",\"i\":{i}}}").as_bytes(),
            ));
        }
        wire.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, b'x', b'y']);
        a.write_all(&wire).expect("write");
        out.push(("4GiB", read_frames(&mut a, Duration::from_secs(5))));
        // 2. Zero-length frame, invalid UTF-8, then good frames: errors, connection goes on.
        let mut b = TcpStream::connect(addr).expect("connect");
        let mut wire = frame(b"");
        wire.extend_from_slice(&frame(b"\xff\xfe bad"));
        wire.extend_from_slice(&frame(b"plain text is kept as msg"));
        wire.extend_from_slice(&frame(b"{\"case\":\"after-garbage\"}"));
        b.write_all(&wire).expect("write");
        b.shutdown(std::net::Shutdown::Write).expect("shutdown");
        out.push(("zero+utf8", read_frames(&mut b, Duration::from_secs(5))));
        // 3. Half a frame, then disconnect: nothing from it, earlier frames kept.
        let mut c = TcpStream::connect(addr).expect("connect");
        let mut wire = frame(b"{\"case\":\"before-half\"}");
        wire.extend_from_slice(&[0, 0, 0, 50, b'{', b'"']);
        c.write_all(&wire).expect("write");
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        out.push(("half", read_frames(&mut c, Duration::from_secs(5))));
        // 4. Random bytes: whatever they frame as, the listener survives.
        let mut d = TcpStream::connect(addr).expect("connect");
        let mut x: u64 = 0x9E37_79B9;
        let noise: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        d.write_all(&noise).expect("write");
        let _ = d.shutdown(std::net::Shutdown::Write);
        out.push(("noise", read_frames(&mut d, Duration::from_secs(5))));
        out
    })
    .await
    .expect("join");
    let get = |k: &str| &results.iter().find(|(n, _)| *n == k).expect("case").1;
    let prefix = get("4GiB");
    assert!(
        prefix
            .iter()
            .any(|f| f["type"] == "receipt" && f["count"] == 10),
        "{prefix:?}"
    );
    assert!(
        prefix.iter().any(|f| f["type"] == "error"
            && f["error"]
                .as_str()
                .is_some_and(|e| e.contains("over the limit"))),
        "{prefix:?}"
    );
    let zero = get("zero+utf8");
    let errors: Vec<&str> = zero
        .iter()
        .filter(|f| f["type"] == "error")
        .filter_map(|f| f["error"].as_str())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("empty")) && errors.iter().any(|e| e.contains("UTF-8")),
        "{zero:?}"
    );
    assert_eq!(
        zero.iter()
            .filter(|f| f["type"] == "receipt")
            .map(|f| f["count"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        2
    );
    let half = get("half");
    assert_eq!(
        half.iter()
            .filter(|f| f["type"] == "receipt")
            .map(|f| f["count"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        1
    );

    // Still serving: a new connection commits.
    let addr = srv.side;
    let after = tokio::task::spawn_blocking(move || {
        let mut e = TcpStream::connect(addr).expect("connect");
        e.write_all(&frame(b"{\"case\":\"still-serving\"}"))
            .expect("write");
        e.shutdown(std::net::Shutdown::Write).expect("shutdown");
        read_frames(&mut e, Duration::from_secs(5))
    })
    .await
    .expect("join");
    assert!(after.iter().any(|f| f["type"] == "receipt"), "{after:?}");
    // Every acknowledged record is in the log; the text message was kept.
    let q = s(&realm, "query_token");
    let text = reqwest::Client::new()
        .get(format!("http://{}/v1/query?limit=100000", srv.http))
        .bearer_auth(q)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    for needle in [
        "\"case\":\"prefix\",\"i\":9",
        "after-garbage",
        "before-half",
        "still-serving",
        "plain text is kept as msg",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let metrics = crate::util::metrics(srv.http).await;
    assert!(
        metrics.contains("frame_too_large") && metrics.contains("bad_message"),
        "{metrics}"
    );
    // Refusals are records in the realm's own log.
    let refused: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|v| v["event"] == "refused")
        .collect();
    let total = |reason: &str| {
        refused
            .iter()
            .filter_map(|v| v["reasons"][reason].as_u64())
            .sum::<u64>()
    };
    // The 4 GiB prefix, and the random bytes (they frame as an oversized length).
    assert_eq!(total("frame_too_large"), 2, "{refused:?}");
    assert_eq!(total("bad_message"), 2, "{refused:?}");
    assert_eq!(total("partial_frame"), 1, "{refused:?}");
    assert!(refused.iter().all(|v| v["listener"] == "sidecar"
        && v["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))));
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn unbound_listener_needs_a_hello_with_a_write_token() {
    let (srv, realm) = start(None).await;
    let addr = srv.side;
    let (w, q) = (
        s(&realm, "write_token").to_string(),
        s(&realm, "query_token").to_string(),
    );
    let (good, bad, wrong_scope) = tokio::task::spawn_blocking(move || {
        let mut a = TcpStream::connect(addr).expect("connect");
        let mut wire = frame(format!("{{\"token\":\"{w}\"}}").as_bytes());
        wire.extend_from_slice(&frame(b"{\"via\":\"hello\"}"));
        a.write_all(&wire).expect("write");
        a.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let good = read_frames(&mut a, Duration::from_secs(5));
        let mut b = TcpStream::connect(addr).expect("connect");
        b.write_all(&frame(b"{\"no\":\"hello\"}")).expect("write");
        let bad = read_frames(&mut b, Duration::from_secs(5));
        let mut c = TcpStream::connect(addr).expect("connect");
        c.write_all(&frame(format!("{{\"token\":\"{q}\"}}").as_bytes()))
            .expect("write");
        let wrong = read_frames(&mut c, Duration::from_secs(5));
        (good, bad, wrong)
    })
    .await
    .expect("join");
    assert!(
        good.iter()
            .any(|f| f["type"] == "receipt" && f["count"] == 1),
        "{good:?}"
    );
    assert!(
        bad.iter()
            .any(|f| f["error"].as_str().is_some_and(|e| e.contains("hello"))),
        "{bad:?}"
    );
    assert!(
        wrong_scope.iter().any(|f| f["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot write"))),
        "{wrong_scope:?}"
    );
    assert_eq!(size(&srv, s(&realm, "query_token")).await, 1);
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_acks_does_not_stall_the_server() {
    // Small batches mean ~50,000 acks (~12 MB), far past the socket buffers
    // and the 1,024-ack queue; buffered durability keeps 50,000 commits quick.
    let (srv, realm) = start_with(Some("side"), |c, l| {
        c.durability = sealog_journal::Durability::Buffered;
        l.batch_records = 4;
    })
    .await;
    let addr = srv.side;
    // 200,000 frames; the client never reads, so its receive buffer and our
    // bounded ack queue fill up; records must keep flowing regardless.
    let sender = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(addr).expect("connect");
        let mut wire = Vec::with_capacity(200_000 * 40);
        for i in 0..200_000 {
            wire.extend_from_slice(&frame(format!("{{\"deaf\":{i}}}").as_bytes()));
        }
        c.write_all(&wire).expect("write");
        c
    });
    let q = s(&realm, "query_token").to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while n < 200_000 && std::time::Instant::now() < deadline {
        n = size(&srv, &q).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 200_000, "every frame committed although no ack was read");
    // Acks were dropped (and counted) while the client stays connected.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut metrics = String::new();
    while !metrics.contains("reason=\"ack_dropped\"") && std::time::Instant::now() < deadline {
        metrics = crate::util::metrics(srv.http).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metrics.contains("reason=\"ack_dropped\""),
        "acks were dropped and counted: {metrics}"
    );
    // Shutdown is not held up by a client that is still connected and deaf.
    let conn = sender.await.expect("join");
    let started = std::time::Instant::now();
    srv.stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), srv.task)
        .await
        .expect("shutdown within 10 s with a deaf client connected")
        .expect("join")
        .expect("serve");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(conn);
}

async fn inquiry(
    srv: &SideServer,
    token: &str,
    body: serde_json::Value,
) -> (u16, Option<String>, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/inquiry", srv.http))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ascii").to_string());
    (status, loc, r.json().await.expect("json"))
}

/// Waits for the inquiry at `loc` to complete and returns it.
async fn inquiry_done(srv: &SideServer, token: &str, loc: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = reqwest::Client::new()
            .get(format!("http://{}{loc}", srv.http))
            .bearer_auth(token)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        if v["status"] == "complete" {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "inquiry not complete: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inquiry_verifies_every_commit_and_names_the_altered_one() {
    let (srv, realm) = start_with(Some("side"), |_, l| l.batch_records = 700).await;
    let q = s(&realm, "query_token").to_string();
    let before = sealog_event::format_rfc3339_nanos(sealog_event::now_ns() - 1_000_000_000);
    // 10,000 frames in bursts, each burst acknowledged before the next, so
    // they land in many commits.
    let addr = srv.side;
    let receipts = tokio::task::spawn_blocking(move || {
        let mut sock = TcpStream::connect(addr).expect("connect");
        let mut receipts = 0;
        for burst in 0..10 {
            let mut wire = Vec::new();
            for i in 0..1000 {
                wire.extend_from_slice(&frame(
                    format!("{{\"burst\":{burst},\"i\":{i},\"msg\":\"transfer {burst}-{i}\"}}")
                        .as_bytes(),
                ));
            }
            sock.write_all(&wire).expect("write");
            let mut acked = 0u64;
            let mut pending = Vec::new();
            let mut buf = [0u8; 65536];
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            while acked < 1000 {
                let n = sock.read(&mut buf).expect("read acks");
                assert!(n > 0, "server closed");
                pending.extend_from_slice(&buf[..n]);
                while pending.len() >= 4 {
                    let len = u32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]])
                        as usize;
                    if pending.len() < 4 + len {
                        break;
                    }
                    let v: Value = serde_json::from_slice(&pending[4..4 + len]).expect("ack");
                    assert_eq!(v["type"], "receipt", "{v}");
                    acked += v["count"].as_u64().expect("count");
                    receipts += 1;
                    pending.drain(..4 + len);
                }
            }
        }
        receipts
    })
    .await
    .expect("join");
    assert!(receipts >= 10, "{receipts} commits");
    let after = sealog_event::format_rfc3339_nanos(sealog_event::now_ns() + 1_000_000_000);
    let window =
        serde_json::json!({"service": "central-ledger", "startTime": before, "endTime": after});

    // The KMS's errors.
    let (st, _, v) = inquiry(
        &srv,
        &srv.admin,
        serde_json::json!({"service": "central-ledger", "startTime": after, "endTime": before}),
    )
    .await;
    assert_eq!((st, v["code"].as_u64()), (400, Some(40010)), "{v}");
    let (st, _, v) = inquiry(&srv, &srv.admin, serde_json::json!({"service": "central-ledger", "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-03-01T00:00:00Z"})).await;
    assert_eq!(
        (st, v["code"].as_u64()),
        (400, Some(40010)),
        "over 30 days: {v}"
    );
    let (st, _, v) = inquiry(
        &srv,
        &srv.admin,
        serde_json::json!({"service": "nobody", "startTime": before, "endTime": after}),
    )
    .await;
    assert_eq!((st, v["code"].as_u64()), (400, Some(40002)), "{v}");
    let r = reqwest::get(format!(
        "http://{}/inquiry/00000000-0000-4000-8000-000000000000",
        srv.http
    ))
    .await
    .expect("send");
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new()
        .get(format!(
            "http://{}/inquiry/00000000-0000-4000-8000-000000000000",
            srv.http
        ))
        .bearer_auth(&srv.admin)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], 40400, "{v}");
    // GET /sidecars: admin only.
    let r = reqwest::get(format!("http://{}/sidecars", srv.http))
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new()
        .get(format!("http://{}/sidecars", srv.http))
        .bearer_auth(&q)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);

    // Every commit verified (the realm's query token may ask too).
    let (st, loc, _) = inquiry(&srv, &q, window.clone()).await;
    assert_eq!(st, 201);
    let loc = loc.expect("Location");
    assert!(loc.starts_with("/inquiry/"), "{loc}");
    let v = inquiry_done(&srv, &q, &loc).await;
    let results = v["results"].as_array().expect("results").clone();
    assert!(results.len() >= 10, "{} commits", results.len());
    assert_eq!(v["total"].as_u64(), Some(results.len() as u64));
    assert!(results.iter().all(|r| r["verified"] == true), "{v}");
    let covered: u64 = results
        .iter()
        .map(|r| r["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(covered, 10_000);

    // Alter one record on disk (server stopped): the first record of a
    // commit that spans a tile boundary (see sealog_journal::commits).
    let target = results
        .iter()
        .find(|r| {
            let (a, b) = (
                r["first_seq"].as_u64().expect("a"),
                r["last_seq"].as_u64().expect("b") + 1,
            );
            a < b - b % 256 && b < 10_000
        })
        .expect("a commit spanning a tile boundary")
        .clone();
    let victim = target["first_seq"].as_u64().expect("seq");
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
    let journal = {
        let dd = sealog_store::DataDir::open(srv.dir.path(), "test").expect("open");
        dd.journal_dir(&"side".parse().expect("name"))
    };
    for (_, seg) in sealog_journal::segment::list_segments(&sealog_journal::fs::RealFs, &journal)
        .expect("segments")
    {
        sealog_journal::tamper::rewrite_blocks(
            &seg,
            sealog_journal::tamper::Hints::Recompute,
            |first, lines| {
                for (i, l) in lines.iter_mut().enumerate() {
                    if first + i as u64 == victim {
                        let t = String::from_utf8(l.clone())
                            .expect("utf8")
                            .replace("transfer", "refund!!");
                        *l = t.into_bytes();
                    }
                }
            },
        )
        .expect("rewrite");
    }
    let dir = srv.dir;
    let (server, _) = Server::open(dir.path(), Config::default()).expect("reopen");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let side = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let http_addr = http.local_addr().expect("addr");
    let cfg = SidecarListener {
        realm: Some("side".into()),
        service: Some("central-ledger".into()),
        ..SidecarListener::default()
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.serve_with(
        http,
        sealog_server::Listeners {
            sidecar: vec![(side, cfg)],
            ..Default::default()
        },
        stop.clone(),
    ));
    let srv = SideServer {
        dir,
        http: http_addr,
        side: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        stop,
        task,
        admin: srv.admin,
    };
    let (st, loc, _) = inquiry(&srv, &srv.admin, window).await;
    assert_eq!(st, 201);
    let v = inquiry_done(&srv, &srv.admin, &loc.expect("Location")).await;
    let results = v["results"].as_array().expect("results");
    let bad: Vec<&Value> = results.iter().filter(|r| r["verified"] != true).collect();
    assert_eq!(bad.len(), 1, "only the altered commit: {v}");
    assert_eq!(bad[0]["first_seq"], target["first_seq"]);
    assert!(
        bad[0]["reason"]
            .as_str()
            .expect("reason")
            .contains(&format!("{}", target["first_seq"])),
        "{}",
        bad[0]
    );
    assert_eq!(v["verified"].as_u64(), Some(results.len() as u64 - 1));
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
}

async fn sidecars_listed(srv: &SideServer) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("http://{}/sidecars", srv.http))
        .bearer_auth(&srv.admin)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    v.as_array().expect("array").clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecars_are_listed_while_connected_with_the_service_their_hello_names() {
    let (srv, realm) = start(None).await;
    let w = s(&realm, "write_token").to_string();
    let addr = srv.side;
    let sock = tokio::task::spawn_blocking(move || {
        let mut sock = TcpStream::connect(addr).expect("connect");
        let mut wire =
            frame(format!("{{\"token\":\"{w}\",\"serviceName\":\"ledger-hello\"}}").as_bytes());
        wire.extend_from_slice(&frame(b"{\"msg\":\"one\"}"));
        sock.write_all(&wire).expect("write");
        let mut buf = [0u8; 4096];
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = sock.read(&mut buf).expect("ack");
        assert!(n > 4, "an ack frame");
        sock
    })
    .await
    .expect("join");
    let list = sidecars_listed(&srv).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["serviceName"], "ledger-hello");
    assert_eq!(list[0]["realm"], "side");
    assert_eq!(list[0]["status"], "connected");
    assert_eq!(list[0]["frames"], 2);
    assert!(list[0]["bytes"].as_u64().expect("bytes") > 20);
    // The service the hello named can be inquired about.
    let (st, loc, _) = inquiry(
        &srv,
        &srv.admin,
        serde_json::json!({"service": "ledger-hello", "startTime": "2020-01-01T00:00:00Z", "endTime": "2020-01-02T00:00:00Z"}),
    )
    .await;
    assert_eq!(st, 201);
    let v = inquiry_done(&srv, &srv.admin, &loc.expect("Location")).await;
    assert_eq!(v["total"], 0, "nothing in that window: {v}");
    // Gone from the list once disconnected.
    sock.shutdown(std::net::Shutdown::Both).expect("shutdown");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = sidecars_listed(&srv).await;
        if list.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still listed: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hello_cannot_rebind_a_service_to_another_realm() {
    // The listener binds "central-ledger" to realm side; another realm's
    // write token names it in a hello on a second, unbound listener.
    let (srv, _) = start(Some("side")).await;
    let other = {
        let r = reqwest::Client::new()
            .post(format!("http://{}/v1/admin/realms", srv.http))
            .bearer_auth(&srv.admin)
            .json(&serde_json::json!({"name": "other"}))
            .send()
            .await
            .expect("send");
        r.json::<Value>().await.expect("json")
    };
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
    let (server, _) = Server::open(srv.dir.path(), Config::default()).expect("reopen");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bound = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let open = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (http_addr, open_addr) = (
        http.local_addr().expect("addr"),
        open.local_addr().expect("addr"),
    );
    let stop = CancellationToken::new();
    let listeners = sealog_server::Listeners {
        sidecar: vec![
            (
                bound,
                SidecarListener {
                    realm: Some("side".into()),
                    service: Some("central-ledger".into()),
                    ..SidecarListener::default()
                },
            ),
            (open, SidecarListener::default()),
        ],
        ..Default::default()
    };
    let task = tokio::spawn(server.serve_with(http, listeners, stop.clone()));
    let w = s(&other, "write_token").to_string();
    let frames = tokio::task::spawn_blocking(move || {
        let mut sock = TcpStream::connect(open_addr).expect("connect");
        let mut wire =
            frame(format!("{{\"token\":\"{w}\",\"serviceName\":\"central-ledger\"}}").as_bytes());
        wire.extend_from_slice(&frame(b"{\"msg\":\"hijack\"}"));
        sock.write_all(&wire).expect("write");
        read_frames(&mut sock, Duration::from_secs(5))
    })
    .await
    .expect("join");
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "error");
    assert!(
        frames[0]["error"]
            .as_str()
            .expect("error")
            .contains("bound to another realm"),
        "{frames:?}"
    );
    // The other realm's query token cannot open an inquiry on it either.
    let r = reqwest::Client::new()
        .post(format!("http://{http_addr}/inquiry"))
        .bearer_auth(s(&other, "query_token"))
        .json(&serde_json::json!({"service": "central-ledger", "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-02T00:00:00Z"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], 40002, "{v}");
    stop.cancel();
    task.await.expect("join").expect("serve");
}
