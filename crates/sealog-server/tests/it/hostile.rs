//! Issue 8's findings as regression tests: revocation reaching live
//! sessions, fair shares and timeouts, bounded query pages, sidecar acks in
//! frame order, syslog listeners bound to realms created later, and one
//! error shape.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sealog_server::config::{SidecarListener, SyslogListener};
use sealog_server::{Config, Listeners, Server};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::sidecar::{frame, read_frames};
use crate::util::{metrics, s, TestServer};

/// A server with an unbound sidecar listener, unbound syslog TCP and UDP
/// listeners, and syslog TCP and UDP listeners bound to realm `late`
/// (which does not exist at start).
struct Full {
    _dir: tempfile::TempDir,
    http: SocketAddr,
    side: SocketAddr,
    tcp: SocketAddr,
    udp: SocketAddr,
    late_tcp: SocketAddr,
    late_udp: SocketAddr,
    admin: String,
    realm: Value,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), sealog_server::ServerError>>,
    client: reqwest::Client,
}

async fn full() -> Full {
    full_with(Config::default()).await
}

async fn full_with(config: Config) -> Full {
    let dir = tempfile::tempdir().expect("tempdir");
    let realm = {
        let mut dd = sealog_store::DataDir::open(dir.path(), "test").expect("open");
        serde_json::to_value(
            dd.create_realm(&"rev".parse().expect("name"))
                .expect("realm"),
        )
        .expect("json")
    };
    let (server, admin) = Server::open(dir.path(), config).expect("open");
    let bind = || async {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
    };
    let udp_bind = || async {
        tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind")
    };
    let (http, side, tcp, late_tcp) = (bind().await, bind().await, bind().await, bind().await);
    let (udp, late_udp) = (udp_bind().await, udp_bind().await);
    let a = |l: &tokio::net::TcpListener| l.local_addr().expect("addr");
    let (h, sd, t, lt) = (a(&http), a(&side), a(&tcp), a(&late_tcp));
    let (u, lu) = (
        udp.local_addr().expect("addr"),
        late_udp.local_addr().expect("addr"),
    );
    let unbound = SyslogListener::default();
    let late = SyslogListener {
        realm: Some("late".into()),
        ..SyslogListener::default()
    };
    let listeners = Listeners {
        sidecar: vec![(side, SidecarListener::default())],
        syslog_tcp: vec![(tcp, unbound.clone()), (late_tcp, late.clone())],
        syslog_udp: vec![(udp, unbound), (late_udp, late)],
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.serve_with(http, listeners, stop.clone()));
    Full {
        _dir: dir,
        http: h,
        side: sd,
        tcp: t,
        udp: u,
        late_tcp: lt,
        late_udp: lu,
        admin: admin.expect("admin"),
        realm,
        stop,
        task,
        client: reqwest::Client::new(),
    }
}

impl Full {
    async fn issue(&self, realm: &str, scope: &str) -> Value {
        let r = self
            .client
            .post(format!("http://{}/v1/admin/tokens", self.http))
            .bearer_auth(&self.admin)
            .json(&serde_json::json!({"realm": realm, "scope": scope}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 201);
        r.json().await.expect("json")
    }

    async fn revoke(&self, token: &Value) {
        let r = self
            .client
            .delete(format!(
                "http://{}/v1/admin/tokens/{}",
                self.http,
                s(token, "id")
            ))
            .bearer_auth(&self.admin)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
    }

    /// Records of the realm `q` reads, waiting up to 10 s for `want`.
    async fn records(&self, q: &str, want: usize) -> Vec<Value> {
        crate::util::wait_records(self.http, q, want).await
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("join").expect("serve");
    }
}

fn syslog_line(token: &str, msg: &str) -> String {
    format!("<14>1 2026-11-23T08:00:00Z h app - - [sealog@32473 token=\"{token}\"] {msg}\n")
}

/// Finding 1: a revoked token stops an open tail, a sidecar connection and
/// syslog (TCP and UDP) senders at their next event, frame or message.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_reaches_live_tail_sidecar_and_syslog_sessions() {
    let srv = full().await;
    let reader = s(&srv.realm, "query_token").to_string();
    let w = srv.issue("rev", "write").await;
    let q = srv.issue("rev", "query").await;
    let wt = s(&w, "token").to_string();

    // A live tail under q.
    let tail = srv
        .client
        .get(format!("http://{}/v1/tail?since_seq=0", srv.http))
        .bearer_auth(s(&q, "token"))
        .send()
        .await
        .expect("tail");
    assert_eq!(tail.status(), 200);
    let mut tail = tail.bytes_stream();

    // One record from each session while the token is live.
    let mut side = TcpStream::connect(srv.side).expect("sidecar");
    let mut wire = frame(format!("{{\"token\":\"{wt}\"}}").as_bytes());
    wire.extend_from_slice(&frame(b"{\"via\":\"sidecar\",\"n\":1}"));
    side.write_all(&wire).expect("write");
    let mut tcp = TcpStream::connect(srv.tcp).expect("syslog tcp");
    tcp.write_all(syslog_line(&wt, "tcp one").as_bytes())
        .expect("write");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.send_to(syslog_line(&wt, "udp one").as_bytes(), srv.udp)
        .expect("send");
    assert_eq!(srv.records(&reader, 3).await.len(), 3);
    let mut seen = String::new();
    while seen.matches("data:").count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), tail.next())
            .await
            .expect("tail delivers")
            .expect("open")
            .expect("bytes");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    srv.revoke(&w).await;
    srv.revoke(&q).await;

    // The tail says why and ends, without waiting for another record.
    let mut rest = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = tail.next().await {
            match chunk {
                Ok(c) => rest.push_str(&String::from_utf8_lossy(&c)),
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the tail did not end after revocation: {rest}"
    );
    assert!(
        rest.contains("event: error") && rest.contains("not valid"),
        "{rest}"
    );

    // The sidecar's next frame is refused, named, and the connection closes.
    side.write_all(&frame(b"{\"via\":\"sidecar\",\"n\":2}"))
        .expect("write");
    let frames = read_frames(&mut side, Duration::from_secs(5));
    let err = frames
        .iter()
        .find(|f| f["type"] == "error")
        .unwrap_or_else(|| panic!("no error frame: {frames:?}"));
    assert_eq!(err["frame"], 3, "{frames:?}");
    assert!(
        err["error"].as_str().is_some_and(|e| e.contains("revoked")),
        "{err}"
    );
    // Syslog: the same connection's next message, and the next datagram.
    tcp.write_all(syslog_line(&wt, "tcp two").as_bytes())
        .expect("write");
    udp.send_to(syslog_line(&wt, "udp two").as_bytes(), srv.udp)
        .expect("send");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = srv.records(&reader, 4).await;
    let text: Vec<String> = after.iter().map(Value::to_string).collect();
    assert_eq!(after.len(), 3, "nothing after revocation: {text:?}");
    let m = metrics(srv.http).await;
    assert!(m.contains("reason=\"token_revoked\""), "{m}");
    assert!(m.contains("reason=\"bad_token\""), "{m}");
    drop(tcp);
    srv.stop().await;
}

/// Finding 6: listeners bound to a realm that does not exist yet refuse
/// (and count) its messages, and deliver them once it is created.
#[tokio::test(flavor = "multi_thread")]
async fn bound_syslog_listeners_serve_a_realm_created_after_start() {
    let srv = full().await;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.send_to(b"<14>Nov 23 08:00:00 h app: before", srv.late_udp)
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !metrics(srv.http).await.contains("reason=\"unknown_realm\"") {
        assert!(Instant::now() < deadline, "the refusal was not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created: Value = srv
        .client
        .post(format!("http://{}/v1/admin/realms", srv.http))
        .bearer_auth(&srv.admin)
        .json(&serde_json::json!({"name": "late"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    udp.send_to(b"<14>Nov 23 08:00:01 h app: after udp", srv.late_udp)
        .expect("send");
    let mut tcp = TcpStream::connect(srv.late_tcp).expect("tcp");
    tcp.write_all(b"<14>Nov 23 08:00:02 h app: after tcp\n")
        .expect("write");
    drop(tcp);
    let got = srv.records(s(&created, "query_token"), 2).await;
    let raw: Vec<&str> = got.iter().filter_map(|v| v["raw"].as_str()).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(raw.iter().any(|r| r.contains("after udp")), "{raw:?}");
    assert!(raw.iter().any(|r| r.contains("after tcp")), "{raw:?}");
    srv.stop().await;
}

/// Finding 7: under load, one connection's acks come in frame order, each
/// naming the frames it covers, errors included.
#[tokio::test(flavor = "multi_thread")]
async fn sidecar_acks_come_in_frame_order_and_name_their_frames() {
    let srv = full().await;
    let wt = s(&srv.realm, "write_token").to_string();
    let addr = srv.side;
    const N: u64 = 20_000;
    let acks = tokio::task::spawn_blocking(move || {
        let mut sock = TcpStream::connect(addr).expect("connect");
        let mut writer = sock.try_clone().expect("clone");
        let sender = std::thread::spawn(move || {
            writer
                .write_all(&frame(format!("{{\"token\":\"{wt}\"}}").as_bytes()))
                .expect("hello");
            // Frame numbers count the hello as 1; every 997th frame is empty (refused).
            for chunk in (2..=N + 1).collect::<Vec<u64>>().chunks(250) {
                let mut wire = Vec::new();
                for f in chunk {
                    if f % 997 == 0 {
                        wire.extend_from_slice(&frame(b""));
                    } else {
                        wire.extend_from_slice(&frame(format!("{{\"f\":{f}}}").as_bytes()));
                    }
                }
                writer.write_all(&wire).expect("write");
            }
            writer
                .shutdown(std::net::Shutdown::Write)
                .expect("shutdown");
        });
        let frames = read_frames(&mut sock, Duration::from_secs(30));
        sender.join().expect("sender");
        frames
    })
    .await
    .expect("join");
    let mut next = 2u64;
    let mut next_seq = 0u64;
    for a in &acks {
        match a["type"].as_str() {
            Some("receipt") => {
                let (first, last) = (
                    a["frames"][0].as_u64().expect("frames"),
                    a["frames"][1].as_u64().expect("frames"),
                );
                assert_eq!(first, next, "receipt out of order: {a}");
                assert_eq!(a["count"].as_u64(), Some(last - first + 1), "{a}");
                // Seqs only grow; a refusal record may take one between.
                let first_seq = a["first_seq"].as_u64().expect("seq");
                assert!(first_seq >= next_seq, "seqs went back: {a}");
                next_seq = first_seq + last - first + 1;
                next = last + 1;
            }
            Some("error") => {
                assert_eq!(a["frame"].as_u64(), Some(next), "error out of order: {a}");
                assert_eq!(next % 997, 0, "only empty frames are refused: {a}");
                next += 1;
            }
            _ => panic!("unexpected frame {a}"),
        }
    }
    assert_eq!(next, N + 2, "every frame answered once");
    srv.stop().await;
}

/// Finding 8: every error is `{"error": ...}` JSON, and a caller without
/// the scope hears 403 before anything about its body.
#[tokio::test(flavor = "multi_thread")]
async fn errors_have_one_json_shape_and_scope_comes_first() {
    let srv = TestServer::start().await;
    let a = srv.realm("alpha").await;
    let c = &srv.http;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            c.post(srv.url("/v1/admin/realms"))
                .bearer_auth(s(&a, "query_token"))
                .header("content-type", "text/plain")
                .body("x"),
            403,
            "cannot administer",
        ),
        (
            c.post(srv.url("/v1/admin/realms"))
                .bearer_auth(&srv.admin)
                .header("content-type", "text/plain")
                .body("{\"name\":\"x\"}"),
            415,
            "application/json",
        ),
        (
            c.post(srv.url("/v1/admin/realms"))
                .bearer_auth(&srv.admin)
                .header("content-type", "application/json")
                .body("{bad"),
            400,
            "not valid JSON",
        ),
        (
            c.post(srv.url("/v1/admin/realms"))
                .bearer_auth(&srv.admin)
                .header("content-type", "application/json")
                .body("{\"name\":\"x\",\"extra\":1}"),
            422,
            "unknown field",
        ),
        (
            c.post(srv.url("/v1/admin/tokens"))
                .bearer_auth(&srv.admin)
                .header("content-type", "application/json")
                .body("{\"realm\":\"alpha\",\"scope\":\"sudo\"}"),
            422,
            "scope",
        ),
        (c.delete(srv.url("/v1/ingest")), 405, "method not allowed"),
        (
            c.put(srv.url("/v1/admin/realms")).bearer_auth(&srv.admin),
            405,
            "method not allowed",
        ),
        (c.get(srv.url("/v1/nope")), 404, "no such route"),
        (
            c.get(srv.url("/v1/admin/tokens?realm=alpha&bogus=1"))
                .bearer_auth(&srv.admin),
            400,
            "bogus",
        ),
    ];
    for (req, status, needle) in cases {
        let r = req.send().await.expect("send");
        let got = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        let body = r.text().await.expect("text");
        assert_eq!(got, status, "{body}");
        assert!(ct.starts_with("application/json"), "{status}: {ct} {body}");
        let v: Value = serde_json::from_str(&body).expect("JSON error body");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(needle)),
            "{status}: {body}"
        );
    }
}

/// Finding 2 (in-process half): one realm's stalled bodies use its share
/// only; others ingest; a stalled body answers 408 and frees its share;
/// `/log-events` is charged like `/v1/ingest`.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalling_realm_uses_only_its_share() {
    let mut config = Config::default();
    config.limits.max_realm_requests = 4;
    config.limits.body_timeout_secs = 2;
    let srv = TestServer::start_with(config).await;
    let a = srv.realm("alpha").await;
    let b = srv.realm("beta").await;
    let stall = |path: &str, token: &str| {
        let mut sock = TcpStream::connect(srv.addr).expect("connect");
        write!(
            sock,
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n{{\"half"
        )
        .expect("write");
        sock
    };
    let started = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..3)
        .map(|_| stall("/v1/ingest", s(&a, "write_token")))
        .collect();
    stalled.push(stall("/log-events", s(&a, "write_token")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Alpha's share is used up, on either route; beta goes on.
    for path in ["/v1/ingest", "/log-events"] {
        let r = srv
            .http
            .post(srv.url(path))
            .bearer_auth(s(&a, "write_token"))
            .body("{\"a\":1}\n")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 503, "{path}");
        assert!(r.headers().contains_key("retry-after"));
        let body = r.text().await.expect("text");
        assert!(body.contains("this realm"), "{body}");
    }
    let t = Instant::now();
    let r = srv.ingest(s(&b, "write_token"), "{\"b\":1}\n").await;
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // The stalled bodies answer 408 after the body timeout.
    for sock in &mut stalled {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut head = [0u8; 64];
        let n = sock.read(&mut head).expect("answer");
        let text = String::from_utf8_lossy(&head[..n]);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    let r = srv.ingest(s(&a, "write_token"), "{\"a\":2}\n").await;
    assert_eq!(r.status(), 200, "the share is free again");
}

/// Finding 3: a page holds at most `max_page_bytes` of records and says
/// where the next one starts; following the cursor returns everything.
#[tokio::test(flavor = "multi_thread")]
async fn query_pages_are_capped_in_bytes() {
    let mut config = Config::default();
    config.limits.max_page_bytes = 64 * 1024;
    let srv = TestServer::start_with(config).await;
    let a = srv.realm("alpha").await;
    let line = |i: u64| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(200));
    let body: String = (0..3000).map(line).collect();
    assert_eq!(srv.ingest(s(&a, "write_token"), body).await.status(), 200);
    let mut cursor: Option<String> = None;
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/v1/query?limit=100000".to_string(),
            Some(c) => format!("/v1/query?limit=100000&cursor={c}"),
        };
        let r = srv.get(Some(s(&a, "query_token")), &path).await;
        assert_eq!(r.status(), 200);
        cursor = r
            .headers()
            .get("x-sealog-next-cursor")
            .map(|v| v.to_str().expect("ascii").to_string());
        let text = r.text().await.expect("text");
        assert!(
            text.len() <= 64 * 1024 + 300,
            "page of {} bytes",
            text.len()
        );
        all.extend(text.lines().map(str::to_string));
        pages += 1;
        if cursor.is_none() {
            break;
        }
    }
    assert!(pages >= 10, "{pages} pages");
    assert_eq!(all.len(), 3000);
    for (i, l) in all.iter().enumerate() {
        let v: Value = serde_json::from_str(l).expect("json");
        assert_eq!(v["i"], i, "{l}");
    }
}

/// Finding 2 (listeners): a sidecar client that never says hello, and
/// sidecar and syslog connections that go silent, are closed.
#[tokio::test(flavor = "multi_thread")]
async fn silent_sidecar_and_syslog_connections_are_closed() {
    let mut config = Config::default();
    config.limits.hello_timeout_secs = 1;
    config.limits.stream_idle_timeout_secs = 2;
    let srv = full_with(config).await;
    let wt = s(&srv.realm, "write_token").to_string();
    let (side, tcp) = (srv.side, srv.tcp);
    let (no_hello, idle_side, idle_syslog) = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut a = TcpStream::connect(side).expect("connect");
        let frames = read_frames(&mut a, Duration::from_secs(10));
        let no_hello = (t.elapsed(), frames);
        let t = Instant::now();
        let mut b = TcpStream::connect(side).expect("connect");
        let mut wire = frame(format!("{{\"token\":\"{wt}\"}}").as_bytes());
        wire.extend_from_slice(&frame(b"{\"then\":\"silence\"}"));
        b.write_all(&wire).expect("write");
        let frames = read_frames(&mut b, Duration::from_secs(10));
        let idle_side = (t.elapsed(), frames);
        let t = Instant::now();
        let mut c = TcpStream::connect(tcp).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let closed = matches!(c.read(&mut buf), Ok(0));
        (no_hello, idle_side, (t.elapsed(), closed))
    })
    .await
    .expect("join");
    assert!(no_hello.0 < Duration::from_secs(5), "{:?}", no_hello.0);
    assert!(
        no_hello
            .1
            .iter()
            .any(|f| f["error"].as_str().is_some_and(|e| e.contains("hello"))),
        "{:?}",
        no_hello.1
    );
    assert!(
        idle_side.0 >= Duration::from_secs(2) && idle_side.0 < Duration::from_secs(6),
        "{:?}",
        idle_side.0
    );
    assert!(
        idle_side.1.iter().any(|f| f["type"] == "receipt"),
        "{:?}",
        idle_side.1
    );
    assert!(
        idle_side
            .1
            .iter()
            .any(|f| f["error"].as_str().is_some_and(|e| e.contains("idle"))),
        "{:?}",
        idle_side.1
    );
    assert!(idle_syslog.1, "the silent syslog connection was closed");
    assert!(
        idle_syslog.0 < Duration::from_secs(6),
        "{:?}",
        idle_syslog.0
    );
    srv.stop().await;
}

/// The hostile review's findings: a body trickled a byte at a time, a
/// sidecar hello trickled likewise, and an unbound syslog connection that
/// never sends a valid token are all cut off by their deadlines; a token
/// revoked while its body arrives commits nothing; one realm cannot take
/// every tail session.
#[tokio::test(flavor = "multi_thread")]
async fn trickles_mid_body_revocation_and_tail_shares() {
    let mut config = Config::default();
    config.limits.body_timeout_secs = 2;
    config.limits.hello_timeout_secs = 2;
    config.limits.max_realm_tail_sessions = 2;
    let srv = full_with(config).await;
    let created: Value = srv
        .client
        .post(format!("http://{}/v1/admin/realms", srv.http))
        .bearer_auth(&srv.admin)
        .json(&serde_json::json!({"name": "other"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let w = srv.issue("rev", "write").await;
    let (http, side, tcp) = (srv.http, srv.side, srv.tcp);
    let wt = s(&w, "token").to_string();

    // A body trickled one byte every 300 ms: 408 once its 2 s are up.
    let trickled = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut sock = TcpStream::connect(http).expect("connect");
        write!(
            sock,
            "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {wt}\r\nContent-Length: 1000\r\n\r\n"
        )
        .expect("write");
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while t.elapsed() < Duration::from_secs(10) {
            if sock.write_all(b" ").is_err() {
                break;
            }
            match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => {}
            }
        }
        (t.elapsed(), String::from_utf8_lossy(&answer).to_string())
    });
    // A sidecar hello trickled likewise, and a tokenless syslog sender.
    let hello = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut sock = TcpStream::connect(side).expect("connect");
        sock.write_all(&1000u32.to_be_bytes()).expect("prefix");
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        while t.elapsed() < Duration::from_secs(10) {
            if sock.write_all(b"x").is_err() {
                break;
            }
            if sock.read(&mut buf).is_ok() {
                break;
            }
        }
        t.elapsed()
    });
    let syslog = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut sock = TcpStream::connect(tcp).expect("connect");
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        while t.elapsed() < Duration::from_secs(10) {
            if sock.write_all(b"<13>no token here\n").is_err() {
                break;
            }
            if matches!(sock.read(&mut buf), Ok(0)) {
                break;
            }
        }
        t.elapsed()
    });
    let (took, answer) = trickled.await.expect("join");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let took = hello.await.expect("join");
    assert!(
        took < Duration::from_secs(5),
        "trickled hello held {took:?}"
    );
    let took = syslog.await.expect("join");
    assert!(
        took < Duration::from_secs(5),
        "tokenless syslog held {took:?}"
    );

    // Revoked while the body arrives: nothing is committed.
    let w2 = srv.issue("rev", "write").await;
    let wt2 = s(&w2, "token").to_string();
    let mut sock = TcpStream::connect(http).expect("connect");
    write!(
        sock,
        "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {wt2}\r\nContent-Length: 16\r\n\r\n{{\"late\":"
    )
    .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    srv.revoke(&w2).await;
    sock.write_all(b"true}\n\n\n").expect("rest of the body");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    let n = sock.read(&mut buf).expect("answer");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    let reader = s(&srv.realm, "query_token").to_string();
    assert!(srv.records(&reader, 1).await.is_empty());

    // Tail shares: rev's third tail is refused; another realm's is not.
    let tail = |token: String| {
        let c = srv.client.clone();
        let url = format!("http://{}/v1/tail", srv.http);
        async move { c.get(url).bearer_auth(token).send().await.expect("send") }
    };
    let t1 = tail(reader.clone()).await;
    let t2 = tail(reader.clone()).await;
    assert_eq!((t1.status().as_u16(), t2.status().as_u16()), (200, 200));
    assert_eq!(tail(reader.clone()).await.status(), 503);
    assert_eq!(
        tail(s(&created, "query_token").to_string()).await.status(),
        200
    );
    drop((t1, t2));
    srv.stop().await;
}
