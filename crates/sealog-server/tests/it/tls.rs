//! Syslog over TLS with a real peer: rsyslog (Debian, rsyslog-gnutls)
//! forwarding with omfwd and the gtls driver into sealog; and junk
//! handshakes.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealog_server::config::SyslogListener;
use sealog_server::{Config, Listeners, Server};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::util::s;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

fn cert(dir: &std::path::Path) {
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn rsyslog_forwards_over_tls_and_junk_handshakes_are_refused() {
    assert!(
        Command::new("rsyslogd").arg("-v").output().is_ok(),
        "rsyslogd is required (Debian packages rsyslog and rsyslog-gnutls; .ci/run installs them)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    cert(dir.path());
    let realm = {
        let mut dd = sealog_store::DataDir::open(&dir.path().join("data"), "test").expect("open");
        serde_json::to_value(
            dd.create_realm(&"tls".parse().expect("realm name"))
                .expect("realm"),
        )
        .expect("json")
    };
    let (server, _) = Server::open(&dir.path().join("data"), Config::default()).expect("open");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (http_addr, tls_addr) = (http.local_addr().expect("a"), tls.local_addr().expect("a"));
    let acceptor = sealog_server::syslog::tls_acceptor(
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
    )
    .expect("acceptor");
    let cfg = SyslogListener {
        realm: Some("tls".into()),
        ..SyslogListener::default()
    };
    let listeners = Listeners {
        syslog_tls: vec![(tls, cfg, acceptor)],
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.serve_with(http, listeners, stop.clone()));

    // Junk instead of a ClientHello: that connection is closed, nothing stored.
    let junk = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(tls_addr).expect("connect");
        let _ = c.write_all(b"\x16\x03\x01\x00\x05hello this is not tls at all\n<13>Nov 22 08:00:00 h app: leaked?\n");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut buf = [0u8; 256];
        std::io::Read::read(&mut c, &mut buf).unwrap_or(0)
    })
    .await
    .expect("join");
    let _ = junk;

    // rsyslog: plain TCP in from logger, TLS out to sealog.
    let in_port = free_port();
    let conf = format!(
        r#"global(workDirectory="{w}" DefaultNetstreamDriverCAFile="{w}/cert.pem")
module(load="imtcp")
input(type="imtcp" port="{in_port}" address="127.0.0.1")
action(type="omfwd" target="127.0.0.1" port="{out}" protocol="tcp" StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="anon" template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
"#,
        w = dir.path().display(),
        out = tls_addr.port()
    );
    std::fs::write(dir.path().join("rsyslog.conf"), conf).expect("conf");
    let mut rsyslog = Command::new("rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(dir.path().join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.path().join("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rsyslogd");
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", in_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rsyslogd did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = in_port.to_string();
    tokio::task::spawn_blocking(move || {
        for i in 0..5 {
            let st = Command::new("logger")
                .args([
                    "-n",
                    "127.0.0.1",
                    "-P",
                    &port,
                    "--tcp",
                    "--rfc5424",
                    "-t",
                    "tlsapp",
                    "-p",
                    "daemon.warning",
                ])
                .arg(format!("forwarded over tls {i}"))
                .status()
                .expect("logger");
            assert!(st.success());
        }
    })
    .await
    .expect("join");
    let q = s(&realm, "query_token").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let recs: Vec<Value> = loop {
        let text = reqwest::Client::new()
            .get(format!("http://{http_addr}/v1/query?limit=1000"))
            .bearer_auth(&q)
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text");
        let recs: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        if recs.len() >= 5 || Instant::now() > deadline {
            break recs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = rsyslog.kill();
    let _ = rsyslog.wait();
    assert_eq!(
        recs.len(),
        5,
        "all five arrive through rsyslog over TLS, nothing from the junk connection: {recs:?}"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["msg"], format!("forwarded over tls {i}"), "{r}");
        assert_eq!(r["app"], "tlsapp");
        assert_eq!(
            (r["severity"].as_u64(), r["facility"].as_u64()),
            (Some(4), Some(3))
        );
        assert_eq!(r["host"].as_str(), Some(host.trim()));
    }
    let metrics = crate::util::metrics(http_addr).await;
    assert!(metrics.contains("reason=\"tls_handshake\""), "{metrics}");
    stop.cancel();
    task.await.expect("join").expect("serve");
}

#[test]
fn bad_certificate_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("c.pem"), "not a cert").expect("write");
    std::fs::write(dir.path().join("k.pem"), "not a key").expect("write");
    let e = match sealog_server::syslog::tls_acceptor(
        &dir.path().join("c.pem"),
        &dir.path().join("k.pem"),
    ) {
        Err(e) => e,
        Ok(_) => panic!("a bad certificate must be refused"),
    };
    assert!(e.contains("c.pem") && e.contains("no certificate"), "{e}");
    let e = match sealog_server::syslog::tls_acceptor(
        &dir.path().join("missing.pem"),
        &dir.path().join("k.pem"),
    ) {
        Err(e) => e,
        Ok(_) => panic!("a missing file must be refused"),
    };
    assert!(e.contains("missing.pem"), "{e}");
}
