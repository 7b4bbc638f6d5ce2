//! Syslog listeners with a real peer: util-linux `logger` over UDP, TCP
//! with octet counting and TCP with newlines; plus unbound listeners that
//! need a token in structured data, and garbage.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use sealog_server::config::SyslogListener;
use sealog_server::{Config, Listeners, Server};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::util::s;

struct Syslog {
    _dir: tempfile::TempDir,
    http: std::net::SocketAddr,
    tcp: std::net::SocketAddr,
    udp: std::net::SocketAddr,
    open_tcp: std::net::SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), sealog_server::ServerError>>,
    realm: Value,
}

async fn start() -> Syslog {
    let dir = tempfile::tempdir().expect("tempdir");
    let realm = {
        let mut dd = sealog_store::DataDir::open(dir.path(), "test").expect("open");
        serde_json::to_value(
            dd.create_realm(&"sys".parse().expect("realm name"))
                .expect("realm"),
        )
        .expect("json")
    };
    let (server, _) = Server::open(dir.path(), Config::default()).expect("open");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let open_tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addrs = (
        http.local_addr().expect("a"),
        tcp.local_addr().expect("a"),
        udp.local_addr().expect("a"),
        open_tcp.local_addr().expect("a"),
    );
    let bound = SyslogListener {
        realm: Some("sys".into()),
        max_message_bytes: 2048,
        ..SyslogListener::default()
    };
    let unbound = SyslogListener {
        realm: None,
        ..SyslogListener::default()
    };
    let listeners = Listeners {
        syslog_tcp: vec![(tcp, bound.clone()), (open_tcp, unbound)],
        syslog_udp: vec![(udp, bound)],
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.serve_with(http, listeners, stop.clone()));
    Syslog {
        _dir: dir,
        http: addrs.0,
        tcp: addrs.1,
        udp: addrs.2,
        open_tcp: addrs.3,
        stop,
        task,
        realm,
    }
}

async fn records(srv: &Syslog, want: usize) -> Vec<Value> {
    crate::util::wait_records(srv.http, s(&srv.realm, "query_token"), want).await
}

fn logger(args: &[&str]) {
    let st = Command::new("logger")
        .args(args)
        .status()
        .expect("util-linux logger");
    assert!(st.success(), "logger {args:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logger_over_udp_tcp_octet_counting_and_tcp_newlines() {
    let srv = start().await;
    let (tcp, udp) = (srv.tcp.port().to_string(), srv.udp.port().to_string());
    tokio::task::spawn_blocking(move || {
        logger(&[
            "-n",
            "127.0.0.1",
            "-P",
            &udp,
            "--udp",
            "--rfc5424",
            "-t",
            "billing",
            "-p",
            "user.warning",
            "--msgid",
            "M1",
            "udp message",
        ]);
        logger(&[
            "-n",
            "127.0.0.1",
            "-P",
            &tcp,
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "-t",
            "payments",
            "-p",
            "local0.err",
            "tcp octet message",
        ]);
        logger(&[
            "-n",
            "127.0.0.1",
            "-P",
            &tcp,
            "--tcp",
            "--rfc3164",
            "-t",
            "auth",
            "-p",
            "auth.notice",
            "tcp newline message",
        ]);
    })
    .await
    .expect("join");
    let recs = records(&srv, 3).await;
    assert_eq!(recs.len(), 3, "{recs:?}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let find = |msg: &str| {
        recs.iter()
            .find(|r| r["msg"] == msg)
            .unwrap_or_else(|| panic!("{msg} missing: {recs:?}"))
    };
    let udp = find("udp message");
    assert_eq!(
        (
            udp["app"].as_str(),
            udp["severity"].as_u64(),
            udp["facility"].as_u64()
        ),
        (Some("billing"), Some(4), Some(1))
    );
    assert_eq!(udp["msgid"], "M1");
    let tcp = find("tcp octet message");
    assert_eq!(
        (
            tcp["app"].as_str(),
            tcp["severity"].as_u64(),
            tcp["facility"].as_u64()
        ),
        (Some("payments"), Some(3), Some(16))
    );
    let bsd = find("tcp newline message");
    assert_eq!(
        (
            bsd["app"].as_str(),
            bsd["severity"].as_u64(),
            bsd["facility"].as_u64()
        ),
        (Some("auth"), Some(5), Some(4))
    );
    for r in [udp, tcp, bsd] {
        assert_eq!(r["host"].as_str(), Some(host.trim()), "{r}");
        assert!(
            r["raw"].as_str().is_some_and(|raw| raw.starts_with('<')),
            "raw kept: {r}"
        );
        assert!(r["time"].is_string(), "{r}");
        assert!(r.get("parse_error").is_none(), "{r}");
    }
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_in_structured_data_and_garbage() {
    let srv = start().await;
    let w = s(&srv.realm, "write_token").to_string();
    let (open_tcp, tcp) = (srv.open_tcp, srv.tcp);
    tokio::task::spawn_blocking(move || {
        // Unbound listener: with a token it lands in the token's realm; without, refused.
        let mut c = TcpStream::connect(open_tcp).expect("connect");
        let with = format!(
            "<14>1 2026-11-22T08:00:00Z h app - - [sealog@32473 token=\"{w}\"] with token\n"
        );
        c.write_all(with.as_bytes()).expect("write");
        c.write_all(b"<14>1 2026-11-22T08:00:00Z h app - - - no token\n")
            .expect("write");
        drop(c);
        // Bound listener: a bad PRI, invalid UTF-8 and random bytes are kept raw;
        // then an octet count over the limit closes the connection.
        let mut c = TcpStream::connect(tcp).expect("connect");
        c.write_all(b"<999>not a pri\n").expect("write");
        c.write_all(b"<13>Nov 22 08:00:00 h app: bytes \xff\xfe here\n")
            .expect("write");
        c.write_all(b"\x01\x02 random \x7f junk\n").expect("write");
        drop(c);
        let mut c = TcpStream::connect(tcp).expect("connect");
        c.write_all(b"22 <13>before the big one99999 x")
            .expect("write");
        std::thread::sleep(Duration::from_millis(200));
        drop(c);
    })
    .await
    .expect("join");
    let recs = records(&srv, 5).await;
    let msgs: Vec<String> = recs
        .iter()
        .map(|r| r["raw"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("with token") && m.contains("[redacted]") && !m.contains("slw_")),
        "{msgs:?}"
    );
    assert!(
        !msgs.iter().any(|m| m.contains("no token")),
        "refused without a token: {msgs:?}"
    );
    let bad = recs
        .iter()
        .find(|r| r["raw"] == "<999>not a pri")
        .expect("bad PRI kept");
    assert_eq!(bad["parse_error"], "no valid <PRI> at the start");
    assert!(
        recs.iter().any(|r| r["raw"]
            .as_str()
            .is_some_and(|m| m.contains("bytes \u{fffd}\u{fffd} here"))),
        "{msgs:?}"
    );
    assert!(
        recs.iter()
            .any(|r| r["raw"].as_str().is_some_and(|m| m.contains("random"))),
        "{msgs:?}"
    );
    assert!(
        recs.iter().any(|r| r["raw"] == "<13>before the big one"),
        "before the oversized count: {msgs:?}"
    );
    let metrics = crate::util::metrics(srv.http).await;
    assert!(
        metrics.contains("reason=\"no_token\"") && metrics.contains("reason=\"syslog_framing\""),
        "{metrics}"
    );
    let recs = records(&srv, 6).await;
    assert!(
        recs.iter().any(|r| r["event"] == "refused"
            && r["listener"] == "syslog-tcp"
            && r["reasons"]["syslog_framing"] == 1),
        "the framing refusal is a record: {recs:?}"
    );
    srv.stop.cancel();
    srv.task.await.expect("join").expect("serve");
}
