//! Drains and log sessions against real receivers: rsyslog (Debian) over
//! imptcp, imudp and TLS (rsyslog-gnutls), an HTTP logplex receiver
//! written here, and sockets that refuse or stall.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealog_server::Config;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use crate::util::{s, TestServer};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// A real rsyslogd writing what each input receives, raw, to a file.
struct Rsyslog {
    child: Option<Child>,
    dir: PathBuf,
    conf: PathBuf,
    ports: Vec<u16>,
}

impl Rsyslog {
    /// `inputs`: (module input line, file name). The config is rsyslog's
    /// RainerScript; each input gets a ruleset writing `%rawmsg%` lines.
    fn start(dir: &Path, globals: &str, inputs: &[(String, &str)], ports: Vec<u16>) -> Self {
        assert!(
            Command::new("rsyslogd").arg("-v").output().is_ok(),
            "rsyslogd is required (Debian packages rsyslog and rsyslog-gnutls; .ci/run installs them)"
        );
        let mut conf = format!(
            "global(workDirectory=\"{w}\" {globals})\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n",
            w = dir.display()
        );
        for (i, (input, file)) in inputs.iter().enumerate() {
            conf.push_str(&format!(
                "ruleset(name=\"r{i}\") {{ action(type=\"omfile\" file=\"{}\" template=\"raw\") }}\n{}\n",
                dir.join(file).display(),
                input.replace("RULESET", &format!("r{i}"))
            ));
        }
        let path = dir.join("rsyslog.conf");
        std::fs::write(&path, conf).expect("conf");
        let mut r = Self {
            child: None,
            dir: dir.to_path_buf(),
            conf: path,
            ports,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(self.dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        for p in &self.ports {
            while std::net::TcpStream::connect(("127.0.0.1", *p)).is_err() {
                assert!(Instant::now() < deadline, "rsyslogd did not listen on {p}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGTERM: rsyslog closes its inputs and writes what it read.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(c.id() as i32).expect("pid");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let _ = c.wait();
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The seqs in a received file, in order of arrival.
fn seqs_in(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| {
            let at = l.find("seq=\"")? + 5;
            let end = l[at..].find('"')? + at;
            l[at..end].parse().ok()
        })
        .collect()
}

/// `n` logshuttle records of app `api` in `space`, starting at `from`.
fn shuttle(space: &str, from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| {
            format!(
                "{{\"log\":\"line {i}\",\"stream\":\"stdout\",\"kubernetes\":{{\"namespace_name\":\"{space}\",\"pod_name\":\"api-5f6d-x{i}\",\"container_name\":\"api\"}},\"topic\":\"{space}\"}}\n"
            )
        })
        .collect()
}

async fn post_events(srv: &TestServer, token: &str, body: String) -> Value {
    let r = srv
        .http
        .post(srv.url("/log-events"))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    r.json().await.expect("receipt")
}

async fn add_drain(srv: &TestServer, token: &str, path: &str, body: Value) -> Value {
    let r = srv
        .http
        .post(srv.url(path))
        .header("authorization", token)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert_eq!(status, 201, "{v}");
    v
}

async fn drain_status(srv: &TestServer, token: &str, id: &str) -> Value {
    srv.get(Some(token), &format!("/v1/drains/{id}"))
        .await
        .json()
        .await
        .expect("json")
}

/// Waits until `file` holds every seq in `want` (at least once), up to `limit`.
async fn wait_seqs(file: &Path, want: &BTreeSet<u64>, limit: Duration) -> Vec<u64> {
    let deadline = Instant::now() + limit;
    loop {
        let got = seqs_in(&std::fs::read_to_string(file).unwrap_or_default());
        let have: BTreeSet<u64> = got.iter().copied().collect();
        if want.is_subset(&have) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A test CA (`ca.pem`) and a server certificate it signed for localhost
/// (`cert.pem`, `key.pem`): webpki refuses a self-signed CA as the peer.
fn tls_cert(dir: &Path) {
    let run = |args: &[&str]| {
        let st = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("openssl");
        assert!(st.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=sealog test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rsyslog_receives_every_record_over_tcp_udp_and_tls_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    tls_cert(tmp.path());
    let (tcp, udp, tls) = (free_port(), free_port(), free_port());
    let w = tmp.path().display().to_string();
    let _rsyslog = Rsyslog::start(
        tmp.path(),
        &format!(
            "DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{w}/ca.pem\" \
             DefaultNetstreamDriverCertFile=\"{w}/cert.pem\" DefaultNetstreamDriverKeyFile=\"{w}/key.pem\""
        ),
        &[
            (
                format!("module(load=\"imptcp\")\ninput(type=\"imptcp\" address=\"127.0.0.1\" port=\"{tcp}\" ruleset=\"RULESET\")"),
                "tcp.log",
            ),
            (
                format!("module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\" rcvbufSize=\"16m\" ruleset=\"RULESET\")"),
                "udp.log",
            ),
            (
                format!("module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tls}\" ruleset=\"RULESET\")"),
                "tls.log",
            ),
        ],
        vec![tcp, tls],
    );
    let mut config = Config::default();
    config.drains.ca_file = Some(tmp.path().join("ca.pem"));
    let srv = TestServer::start_with(config).await;
    let r = srv.realm("shop").await;
    let wt = s(&r, "write_token").to_string();
    // Records before the drains exist are delivered too: a drain starts at
    // the realm's first record.
    post_events(&srv, &wt, shuttle("prod", 0, 200)).await;
    // Bare token (logshuttle's AUTH_KEY style) and Bearer both work.
    let d_tcp = add_drain(
        &srv,
        &wt,
        "/apps/api-prod/log-drains",
        json!({"url": format!("syslog://127.0.0.1:{tcp}")}),
    )
    .await;
    let d_udp = add_drain(
        &srv,
        &format!("Bearer {wt}"),
        "/apps/api-prod/log-drains",
        json!({"url": format!("syslog+udp://127.0.0.1:{udp}")}),
    )
    .await;
    let d_tls = add_drain(
        &srv,
        &wt,
        "/apps/api-prod/log-drains",
        json!({"url": format!("syslog+tls://localhost:{tls}"), "framing": "octet-counting"}),
    )
    .await;
    assert_eq!(d_tcp["token"], "api-prod");
    assert_eq!(d_tcp["addon"], json!({"id": "", "name": ""}));
    for k in ["id", "url", "created_at", "updated_at"] {
        assert!(d_tcp[k].is_string(), "{k} in {d_tcp}");
    }
    // Another space's records are not selected.
    let mut want = BTreeSet::new();
    want.extend(0..200u64);
    let mut seq = 200;
    for round in 0..10u64 {
        post_events(&srv, &wt, shuttle("dev", round * 1000, 20)).await;
        seq += 20;
        post_events(&srv, &wt, shuttle("prod", 200 + round * 180, 180)).await;
        want.extend(seq..seq + 180);
        seq += 180;
    }
    for (file, d) in [
        ("tcp.log", &d_tcp),
        ("udp.log", &d_udp),
        ("tls.log", &d_tls),
    ] {
        let got = wait_seqs(&tmp.path().join(file), &want, Duration::from_secs(30)).await;
        let have: BTreeSet<u64> = got.iter().copied().collect();
        if have != want {
            let st = drain_status(&srv, &wt, s(d, "id")).await;
            panic!(
                "{file}: {} of {} selected records arrived; drain: {st}",
                have.intersection(&want).count(),
                want.len()
            );
        }
        assert_eq!(have, want, "{file}: every selected record, and only those");
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{file}: in seq order, once each"
        );
        let id = s(d, "id");
        let st = drain_status(&srv, &wt, id).await;
        assert_eq!(st["status"]["state"], "delivering", "{st}");
        assert_eq!(st["status"]["delivered"], want.len() as u64, "{st}");
        assert_eq!(st["status"]["lag"], 0, "{st}");
        assert_eq!(st["status"]["cursor"], seq, "{st}");
        assert!(
            st["status"]["checkpoint"]
                .as_str()
                .is_some_and(|c| c.starts_with("sealog/shop\n")),
            "the latest checkpoint covers the cursor: {st}"
        );
    }
    // The packet is logshuttle's, with realm and seq.
    let text = std::fs::read_to_string(tmp.path().join("tcp.log")).expect("tcp.log");
    let first = text.lines().next().expect("a line");
    assert!(
        first.starts_with("<14>1 ")
            && first.contains(
                " api-prod web.5f6d-x0 - - [sealog@32473 realm=\"shop\" seq=\"0\"] line 0"
            ),
        "{first}"
    );
    let metrics = crate::util::metrics(srv.addr).await;
    assert!(
        metrics.contains("sealog_drain_delivered_records_total{realm=\"shop\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_down_for_10s_and_a_sealog_restart_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut rsyslog = Rsyslog::start(
        tmp.path(),
        "",
        &[(
            format!("module(load=\"imptcp\")\ninput(type=\"imptcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"RULESET\")"),
            "got.log",
        )],
        vec![port],
    );
    let mut config = Config::default();
    config.drains.max_backoff_secs = 1;
    let srv = TestServer::start_with(config.clone()).await;
    let r = srv.realm("shop").await;
    let wt = s(&r, "write_token").to_string();
    add_drain(
        &srv,
        &wt,
        "/apps/api-prod/log-drains",
        json!({"url": format!("syslog+tcp://127.0.0.1:{port}")}),
    )
    .await;
    let mut next = 0u64;
    let send = |srv: &TestServer, from: u64| {
        let (http, url, wt) = (srv.http.clone(), srv.url("/log-events"), wt.clone());
        async move {
            let r = http
                .post(url)
                .bearer_auth(wt)
                .body(shuttle("prod", from, 50))
                .send()
                .await
                .expect("send");
            assert_eq!(r.status(), 201);
        }
    };
    // Records flow; the receiver stops for 10 s while they keep coming and
    // sealog restarts in the middle of the outage.
    for _ in 0..20 {
        send(&srv, next).await;
        next += 50;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rsyslog.stop();
    let down = Instant::now();
    for _ in 0..40 {
        send(&srv, next).await;
        next += 50;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let srv = srv.restart(config).await;
    while down.elapsed() < Duration::from_secs(10) {
        send(&srv, next).await;
        next += 50;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rsyslog.spawn();
    for _ in 0..20 {
        send(&srv, next).await;
        next += 50;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let want: BTreeSet<u64> = (0..next).collect();
    let got = wait_seqs(&tmp.path().join("got.log"), &want, Duration::from_secs(60)).await;
    let have: BTreeSet<u64> = got.iter().copied().collect();
    let missing: Vec<_> = want.difference(&have).take(20).collect();
    assert!(missing.is_empty(), "missing seqs (first 20): {missing:?}");
    eprintln!(
        "receiver outage: {} records, {} lines received ({} repeats)",
        next,
        got.len(),
        got.len() as u64 - next
    );
}

/// Accepts connections on `l` and sends the seq of every line any of them
/// carries.
fn seq_receiver(l: tokio::net::TcpListener) -> tokio::sync::mpsc::UnboundedReceiver<u64> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut r = tokio::io::BufReader::new(c).lines();
                while let Ok(Some(line)) = r.next_line().await {
                    for s in seqs_in(&line) {
                        let _ = tx.send(s);
                    }
                }
            });
        }
    });
    rx
}

/// What the test's HTTP receiver saw.
#[derive(Default)]
struct Seen {
    posts: Vec<(u64, Option<String>, Vec<String>, String)>,
    answers: Vec<u16>,
}

/// A logplex receiver: POST /ok answers the scripted statuses, then 200;
/// POST /bad answers 400. Every body must parse and match its headers.
async fn http_receiver(script: Vec<u16>) -> (std::net::SocketAddr, Arc<Mutex<Seen>>) {
    use axum::http::{HeaderMap, StatusCode};
    let seen = Arc::new(Mutex::new(Seen {
        answers: script,
        ..Seen::default()
    }));
    let ok = {
        let seen = seen.clone();
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let frames =
                    sealog_codec::drain::parse_logplex(&body).expect("logplex body parses");
                let count: usize = headers["logplex-msg-count"]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("count");
                assert_eq!(count, frames.len(), "Logplex-Msg-Count matches the frames");
                assert_eq!(headers["content-type"], "application/logplex-1");
                let frame_id = headers["logplex-frame-id"]
                    .to_str()
                    .expect("ascii")
                    .to_string();
                assert!(headers.contains_key("logplex-drain-token"));
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().expect("ascii").to_string());
                let mut s = seen.lock().expect("lock");
                let status = if s.answers.is_empty() {
                    200
                } else {
                    s.answers.remove(0)
                };
                let lines = frames
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).trim_end().to_string())
                    .collect();
                s.posts.push((u64::from(status), auth, lines, frame_id));
                StatusCode::from_u16(status).expect("status")
            }
        }
    };
    let app = axum::Router::new()
        .route("/ok", axum::routing::post(ok))
        .route(
            "/bad",
            axum::routing::post(|| async { (StatusCode::BAD_REQUEST, "unknown drain token") }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn http_drains_retry_a_500_and_fail_on_a_400() {
    let (addr, seen) = http_receiver(vec![500, 500]).await;
    let mut config = Config::default();
    config.drains.max_backoff_secs = 1;
    config.drains.http_max_frames = 40;
    let srv = TestServer::start_with(config).await;
    let r = srv.realm("web").await;
    let wt = s(&r, "write_token").to_string();
    post_events(&srv, &wt, shuttle("prod", 0, 100)).await;
    let ok = add_drain(
        &srv,
        &wt,
        "/apps/api-prod/log-drains",
        json!({"url": format!("http://drain:s3cret@{addr}/ok")}),
    )
    .await;
    assert_eq!(
        ok["url"],
        format!("http://drain:***@{addr}/ok"),
        "the password is not shown"
    );
    let bad = add_drain(
        &srv,
        &wt,
        "/apps/api-prod/log-drains",
        json!({"url": format!("http://{addr}/bad")}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let delivered: usize = seen
            .lock()
            .expect("lock")
            .posts
            .iter()
            .filter(|p| p.0 == 200)
            .map(|p| p.2.len())
            .sum();
        if delivered >= 100 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let s = seen.lock().expect("lock");
        assert_eq!(s.posts[0].0, 500);
        assert_eq!(s.posts[1].0, 500, "a 500 is retried");
        assert_eq!(
            s.posts[0].3, s.posts[1].3,
            "a retried frame keeps its Logplex-Frame-Id"
        );
        assert_eq!(s.posts[0].3, s.posts[2].3);
        // The retried frames arrive: every seq in 200 answers, in order.
        let seqs: Vec<u64> = s
            .posts
            .iter()
            .filter(|p| p.0 == 200)
            .flat_map(|p| seqs_in(&p.2.join("\n")))
            .collect();
        assert_eq!(seqs, (0..100).collect::<Vec<_>>());
        let basic = format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "drain:s3cret")
        );
        assert!(s
            .posts
            .iter()
            .all(|p| p.1.as_deref() == Some(basic.as_str())));
    }
    let st = drain_status(&srv, &wt, s(&ok, "id")).await;
    assert_eq!(st["status"]["state"], "delivering", "{st}");
    assert!(
        st["status"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{st}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = drain_status(&srv, &wt, s(&bad, "id")).await;
        if st["status"]["state"] == "failing" || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(st["status"]["state"], "failing", "{st}");
    let why = st["status"]["last_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("400") && why.contains("unknown drain token"),
        "{st}"
    );
    assert_eq!(
        st["status"]["cursor"], 0,
        "nothing refused counts as delivered"
    );
    let metrics = crate::util::metrics(srv.addr).await;
    // The gauge is process-wide (other tests' servers set it too); the
    // failures counter is labelled with this test's realm.
    assert!(
        metrics.contains("sealog_drains{state=\"failing\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealog_drain_failures_total{realm=\"web\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_drains_are_refused_with_reasons_and_realms_are_separate() {
    let srv = TestServer::start().await;
    let a = srv.realm("a").await;
    let b = srv.realm("b").await;
    let wt = s(&a, "write_token").to_string();
    for (path, body, want) in [
        ("/apps/api-prod/log-drains", "{\"url\":", "not valid"),
        ("/apps/api-prod/log-drains", "{}", "missing field `url`"),
        (
            "/apps/api-prod/log-drains",
            "{\"url\":\"syslog://h:1\",\"x\":1}",
            "unknown field",
        ),
        (
            "/apps/api-prod/log-drains",
            "{\"url\":\"gopher://h:70\"}",
            "not supported",
        ),
        (
            "/apps/api-prod/log-drains",
            "{\"url\":\"ssh://h:22\"}",
            "syslog+tls",
        ),
        (
            "/apps/api-prod/log-drains",
            "{\"url\":\"syslog://:514\"}",
            "no host",
        ),
        (
            "/apps/api-prod/log-drains",
            "{\"url\":\"syslog://h:0\"}",
            "bad port",
        ),
        (
            "/apps/api-prod/log-drains",
            "{\"url\":\"syslog://h\"}",
            "port",
        ),
        (
            "/apps/apionly/log-drains",
            "{\"url\":\"syslog://h:514\"}",
            "<app>-<space>",
        ),
        (
            "/apps/api-prod/log-drains",
            "{\"url\":\"syslog://h:514\",\"framing\":\"lf\"}",
            "unknown variant",
        ),
        (
            "/v1/drains",
            "{\"url\":\"syslog://h:514\"}",
            "needs a where term",
        ),
        (
            "/v1/drains",
            "{\"url\":\"syslog://h:514\",\"where\":[\"=x\"]}",
            "where",
        ),
    ] {
        let r = srv
            .http
            .post(srv.url(path))
            .bearer_auth(&wt)
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 422, "{path} {body}");
        let e: Value = r.json().await.expect("json");
        assert!(
            e["error"].as_str().is_some_and(|m| m.contains(want)),
            "{path} {body}: {e}"
        );
    }
    // A receiver that counts lines.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let lines = Arc::new(Mutex::new(Vec::<u64>::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut r = tokio::io::BufReader::new(c).lines();
                while let Ok(Some(line)) = r.next_line().await {
                    sink.lock().expect("lock").extend(seqs_in(&line));
                }
            });
        }
    });
    let d = add_drain(
        &srv,
        &wt,
        "/v1/drains",
        json!({"url": format!("syslog://127.0.0.1:{port}"), "where": ["app=api"], "q": "line"}),
    )
    .await;
    let id = s(&d, "id").to_string();
    let again = srv
        .http
        .post(srv.url("/v1/drains"))
        .bearer_auth(&wt)
        .json(&json!({"url": format!("syslog://127.0.0.1:{port}"), "where": ["app=api"], "q": "line"}))
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 409, "the same drain twice");
    // Other tokens: another realm's write token sees nothing and deletes
    // nothing; a query token may not manage drains; no token is 401.
    let other = s(&b, "write_token");
    assert_eq!(
        srv.get(Some(other), &format!("/v1/drains/{id}"))
            .await
            .status(),
        404
    );
    let del = srv
        .http
        .delete(srv.url(&format!("/v1/drains/{id}")))
        .bearer_auth(other)
        .send()
        .await
        .expect("send");
    assert_eq!(del.status(), 404);
    let list: Value = srv
        .get(Some(other), "/v1/drains")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list, json!([]));
    assert_eq!(
        srv.get(Some(s(&a, "query_token")), "/v1/drains")
            .await
            .status(),
        403
    );
    assert_eq!(srv.get(None, "/v1/drains").await.status(), 401);
    // Under the logshuttle paths a drain is only found under its own key.
    let app_drain = add_drain(
        &srv,
        &wt,
        "/apps/api-prod/log-drains",
        json!({"url": format!("syslog://127.0.0.1:{port}")}),
    )
    .await;
    let app_id = s(&app_drain, "id");
    assert_eq!(
        srv.get(Some(&wt), &format!("/apps/api-dev/log-drains/{app_id}"))
            .await
            .status(),
        404
    );
    let wrong_key = srv
        .http
        .delete(srv.url(&format!("/apps/api-dev/log-drains/{app_id}")))
        .bearer_auth(&wt)
        .send()
        .await
        .expect("send");
    assert_eq!(
        wrong_key.status(),
        404,
        "only the drain's own key deletes it"
    );
    let listed: Value = srv
        .get(Some(&wt), "/apps/api-prod/log-drains")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let gone = srv
        .http
        .delete(srv.url(&format!("/apps/api-prod/log-drains/{app_id}")))
        .header("authorization", &wt)
        .send()
        .await
        .expect("send");
    assert_eq!(gone.status(), 200);
    // Delivery, then deletion stops it within 1 s.
    post_events(&srv, &wt, shuttle("prod", 0, 30)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines.lock().expect("lock").len() < 30 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let del = srv
        .http
        .delete(srv.url(&format!("/v1/drains/{id}")))
        .bearer_auth(&wt)
        .send()
        .await
        .expect("send");
    assert_eq!(del.status(), 200);
    let removed: Value = del.json().await.expect("json");
    assert_eq!(removed["id"], id.as_str());
    let at_delete = lines.lock().expect("lock").len();
    assert!(at_delete >= 30, "delivered before the delete: {at_delete}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    post_events(&srv, &wt, shuttle("prod", 100, 30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        lines.lock().expect("lock").len(),
        at_delete,
        "nothing is delivered after the delete"
    );
    assert_eq!(
        srv.get(Some(&wt), &format!("/v1/drains/{id}"))
            .await
            .status(),
        404
    );
    // Drains survive a restart; the cursor file of a removed one is gone.
    let kept = add_drain(
        &srv,
        &wt,
        "/sites/www.example.com/log-drains",
        json!({"url": "syslog+udp://127.0.0.1:9"}),
    )
    .await;
    let srv = srv.restart(Config::default()).await;
    let back: Value = srv
        .get(Some(&wt), "/sites/www.example.com/log-drains")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(back[0]["id"], kept["id"], "{back}");
    assert!(!srv.dir.path().join(format!("drains/{id}.cursor")).exists());
    let health = srv.get(None, "/octhc").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("text"), "overall_status=good");
}

/// Median and p99 of `xs` in ms.
fn pct(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let at = |p: f64| xs[((xs.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

/// Latency of one record from ingest to a receiver that reads lines.
async fn latencies(
    srv: &TestServer,
    wt: &str,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<u64>,
    n: u64,
    from: u64,
) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        let receipt = post_events(srv, wt, shuttle("live", from + i, 1)).await;
        let seq = receipt["first_seq"].as_u64().expect("seq");
        loop {
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("the live drain delivers within 10 s")
                .expect("receiver");
            if got == seq {
                break;
            }
        }
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

async fn ingest_rate(srv: &TestServer, wt: &str) -> f64 {
    let body = shuttle("bulk", 0, 2000);
    let t = Instant::now();
    for _ in 0..10 {
        post_events(srv, wt, body.clone()).await;
    }
    20_000.0 / t.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_and_a_stalled_drain_do_not_slow_a_live_one_or_ingest() {
    let mut config = Config::default();
    config.drains.max_backoff_secs = 1;
    let srv = TestServer::start_with(config).await;
    let r = srv.realm("iso").await;
    let wt = s(&r, "write_token").to_string();
    // Live receiver: reads lines and reports their seqs.
    let live = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let live_port = live.local_addr().expect("addr").port();
    let mut rx = seq_receiver(live);
    // Best of three rounds each: one round swings ±20% on a 2-core machine.
    let mut rate_alone: f64 = 0.0;
    for _ in 0..3 {
        rate_alone = rate_alone.max(ingest_rate(&srv, &wt).await);
    }
    add_drain(
        &srv,
        &wt,
        "/apps/api-live/log-drains",
        json!({"url": format!("syslog://127.0.0.1:{live_port}")}),
    )
    .await;
    let mut alone = latencies(&srv, &wt, &mut rx, 60, 0).await;
    // A closed port, and a receiver that accepts and never reads; both
    // drains select every record, bulk included.
    let dead_port = free_port();
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stall_port = stall.local_addr().expect("addr").port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((c, _)) = stall.accept().await {
            keep.lock().expect("lock").push(c);
        }
    });
    for port in [dead_port, stall_port] {
        add_drain(
            &srv,
            &wt,
            "/v1/drains",
            json!({"url": format!("syslog://127.0.0.1:{port}"), "where": ["source=kubernetes"]}),
        )
        .await;
    }
    let mut rate_with: f64 = 0.0;
    for _ in 0..3 {
        rate_with = rate_with.max(ingest_rate(&srv, &wt).await);
    }
    let mut with = latencies(&srv, &wt, &mut rx, 60, 1000).await;
    let (a50, a99) = pct(&mut alone);
    let (w50, w99) = pct(&mut with);
    eprintln!(
        "isolation: live drain latency alone p50 {a50:.2} ms p99 {a99:.2} ms; \
         with a dead and a stalled drain p50 {w50:.2} ms p99 {w99:.2} ms (p50 ratio {:.2}); \
         ingest {rate_alone:.0} rec/s without drains, {rate_with:.0} rec/s with them (ratio {:.2})",
        w50 / a50,
        rate_with / rate_alone
    );
    // The stalled drain really is stuck behind a full socket.
    let list: Value = srv
        .get(Some(&wt), "/v1/drains")
        .await
        .json()
        .await
        .expect("json");
    let stuck = list
        .as_array()
        .expect("list")
        .iter()
        .find(|d| {
            d["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!(":{stall_port}")))
        })
        .expect("stalled drain");
    assert!(stuck["status"]["lag"].as_u64().unwrap_or(0) > 0, "{stuck}");
    // Timing is reported above; what is asserted is what a shared stall
    // would break: the live drain keeps delivering in well under the
    // stalled one's 30 s write timeout, and ingest keeps going.
    assert!(
        w99 < 2_000.0,
        "live drain p99 {w99:.1} ms next to a stalled drain"
    );
    assert!(
        rate_with > rate_alone / 4.0,
        "ingest {rate_with:.0} vs {rate_alone:.0} rec/s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn log_sessions_send_history_then_tail_and_expire() {
    let mut config = Config::default();
    config.drains.session_ttl_secs = 2;
    let srv = TestServer::start_with(config).await;
    let r = srv.realm("ses").await;
    let wt = s(&r, "write_token").to_string();
    post_events(&srv, &wt, shuttle("prod", 0, 50)).await;
    post_events(&srv, &wt, shuttle("dev", 0, 5)).await;
    let open = |body: Value| {
        let (http, url, qt) = (
            srv.http.clone(),
            srv.url("/log-sessions"),
            s(&r, "query_token").to_string(),
        );
        async move {
            let r = http
                .post(url)
                .bearer_auth(qt)
                .json(&body)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.expect("json")
        }
    };
    // History only: the last 10 of app api in prod, oldest first, then the end.
    let h = open(json!({"app": "api", "space": "prod", "lines": 10, "tail": false})).await;
    let url = s(&h, "logplex_url").to_string();
    assert!(
        url.ends_with(&format!("/log-sessions/{}", s(&h, "id"))),
        "{url}"
    );
    let text = reqwest::get(&url)
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), 10, "{text}");
    assert!(
        got[0].ends_with(" api-prod app[web.5f6d-x40]: line 40"),
        "{text}"
    );
    assert!(got[9].ends_with(": line 49"), "{text}");
    // Tail: two lines of history, then new ones as they commit.
    let t = open(json!({"app": "api", "space": "prod", "lines": 2, "tail": true})).await;
    let resp = reqwest::get(s(&t, "logplex_url")).await.expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let next = |seen: &mut String, b: bytes::Bytes| seen.push_str(&String::from_utf8_lossy(&b));
    use futures_util::StreamExt;
    while seen.lines().count() < 2 {
        let b = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("history")
            .expect("chunk")
            .expect("ok");
        next(&mut seen, b);
    }
    post_events(&srv, &wt, shuttle("prod", 50, 3)).await;
    while seen.lines().count() < 5 {
        let b = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("tail")
            .expect("chunk")
            .expect("ok");
        next(&mut seen, b);
    }
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines[0].ends_with("line 48") && lines[4].ends_with("line 52"),
        "{seen}"
    );
    // Unknown and expired ids are 404; bad bodies are 422.
    assert_eq!(
        reqwest::get(srv.url("/log-sessions/nope"))
            .await
            .expect("get")
            .status(),
        404
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        reqwest::get(&url).await.expect("get").status(),
        404,
        "expired"
    );
    for bad in [
        json!({"app": "api"}),
        json!({"site": "s", "app": "a", "space": "b"}),
        json!({"app": "a", "space": "b", "lines": 10_000_000}),
    ] {
        let r = srv
            .http
            .post(srv.url("/log-sessions"))
            .bearer_auth(&wt)
            .json(&bad)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 422, "{bad}");
    }
    let r = srv
        .http
        .post(srv.url("/log-sessions"))
        .bearer_auth(&srv.admin)
        .json(&json!({"site": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
}

/// A receiver that drops its first connection unread, while no new record
/// comes: the records written on it are sent again at once on the next
/// one, not confirmed by the passing of the resend window.
#[tokio::test(flavor = "multi_thread")]
async fn records_on_a_connection_the_receiver_dropped_go_again_while_idle() {
    let mut config = Config::default();
    config.drains.resend_window_secs = 3;
    config.drains.max_backoff_secs = 1;
    let srv = TestServer::start_with(config).await;
    let r = srv.realm("idle").await;
    let wt = s(&r, "write_token").to_string();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    // The first connection: held 1 s unread, then dropped; then a reader.
    let (give, back) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (first, _) = l.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(first);
        let _ = give.send(l);
    });
    add_drain(
        &srv,
        &wt,
        "/apps/api-prod/log-drains",
        json!({"url": format!("syslog://127.0.0.1:{port}")}),
    )
    .await;
    post_events(&srv, &wt, shuttle("prod", 0, 5)).await;
    let mut rx = seq_receiver(back.await.expect("listener"));
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while got.len() < 5 && Instant::now() < deadline {
        if let Ok(Some(seq)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            got.insert(seq);
        }
    }
    assert_eq!(
        got,
        (0..5).collect::<BTreeSet<u64>>(),
        "sent again without a new record"
    );
}
