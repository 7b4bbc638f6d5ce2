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
