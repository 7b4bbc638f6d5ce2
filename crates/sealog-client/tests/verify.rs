//! Receipt checks against a real server, and against a server that lies:
//! one that rewrites a stored record, and one whose log forked (a copy of
//! its data directory, same key, that went its own way).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealog_client::{HttpConfig, HttpWriter, Writer};

mod common;
use common::{realm, s, serve};

/// A proxy in front of a server: forwards every request to `upstream`,
/// and, when `tamper` is set, changes one stored record in query answers.
#[derive(Clone)]
struct Proxy {
    upstream: Arc<Mutex<String>>,
    tamper: Arc<Mutex<bool>>,
}

async fn forward(
    axum::extract::State(p): axum::extract::State<Proxy>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let upstream = p.upstream.lock().expect("lock").clone();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let url = format!(
        "{upstream}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut r = reqwest::Client::new()
        .request(parts.method.clone(), url)
        .body(body.to_vec());
    for (k, v) in &parts.headers {
        if k != "host" {
            r = r.header(k, v);
        }
    }
    let Ok(resp) = r.send().await else {
        return axum::response::IntoResponse::into_response(axum::http::StatusCode::BAD_GATEWAY);
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
    if parts.uri.path() == "/v1/query" && *p.tamper.lock().expect("lock") {
        let text = String::from_utf8_lossy(&bytes).replacen("\"n\":", "\"m\":", 1);
        bytes = text.into_bytes();
    }
    let mut out = axum::response::Response::new(axum::body::Body::from(bytes));
    *out.status_mut() = status;
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            out.headers_mut().insert(k, v.clone());
        }
    }
    out
}

async fn proxy(upstream: String) -> (SocketAddr, Proxy) {
    let p = Proxy {
        upstream: Arc::new(Mutex::new(upstream)),
        tamper: Arc::new(Mutex::new(false)),
    };
    let app = axum::Router::new().fallback(forward).with_state(p.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, p)
}

async fn send(w: &Arc<HttpWriter>, from: usize, n: usize) {
    for i in from..from + n {
        w.write(
            format!(
                "{{\"id\":\"e{i}\",\"app\":\"shop\",\"type\":\"A\",\"pri\":\"Info\",\"n\":{i}}}\n"
            )
            .as_bytes(),
        );
    }
    let w = w.clone();
    tokio::task::spawn_blocking(move || w.flush())
        .await
        .expect("flush");
}

fn writer(url: String, r: &serde_json::Value, dir: &std::path::Path) -> Arc<HttpWriter> {
    let mut cfg = HttpConfig::new(url, s(r, "write_token"), dir.join("fallback.ndjson"));
    cfg.query_token = Some(s(r, "query_token"));
    cfg.verifier_key = Some(s(r, "public_key"));
    cfg.batch_records = 50;
    Arc::new(HttpWriter::start(cfg).expect("writer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_receipts_verify_and_a_rewritten_record_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), None).await;
    let r = realm(server.addr, dir.path()).await;
    let (paddr, p) = proxy(format!("http://{}", server.addr)).await;
    let w = writer(format!("http://{paddr}"), &r, dir.path());
    send(&w, 0, 500).await;
    let st = w.stats();
    assert_eq!(st.delivered, 500);
    assert!(st.verified >= 10 && st.verified == st.receipts, "{st:?}");
    assert!(w.violations().is_empty(), "{:?}", w.violations());

    *p.tamper.lock().expect("lock") = true;
    send(&w, 500, 50).await;
    let v = w.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("is not the entry sent"), "{v:?}");
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || w2.close())
        .await
        .expect("close");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_log_is_reported() {
    let dir_a = tempfile::tempdir().expect("tempdir");
    let server = serve(dir_a.path(), None).await;
    let r = realm(server.addr, dir_a.path()).await;
    let (paddr, p) = proxy(format!("http://{}", server.addr)).await;
    let w = writer(format!("http://{paddr}"), &r, dir_a.path());
    send(&w, 0, 100).await;
    server.shutdown().await;

    // Fork: a copy of the data directory, same realm key.
    let dir_b = tempfile::tempdir().expect("tempdir");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", dir_a.path().display()))
        .arg(dir_b.path())
        .status()
        .expect("cp");
    assert!(st.success());
    let a = serve(dir_a.path(), None).await;
    let b = serve(dir_b.path(), None).await;
    let wt = s(&r, "write_token");
    for (srv, body) in [
        (&a, "{\"x\":\"only on a\"}\n"),
        (&b, "{\"x\":\"only on b\"}\n{\"x\":\"b\"}\n"),
    ] {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/v1/ingest", srv.addr))
            .bearer_auth(&wt)
            .body(body)
            .send()
            .await
            .expect("ingest");
        assert_eq!(resp.status(), 200);
    }
    *p.upstream.lock().expect("lock") = format!("http://{}", a.addr);
    send(&w, 100, 10).await;
    assert!(w.violations().is_empty(), "{:?}", w.violations());
    *p.upstream.lock().expect("lock") = format!("http://{}", b.addr);
    send(&w, 110, 10).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.violations().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = w.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("not consistent"), "{v:?}");
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || w2.close())
        .await
        .expect("close");
    a.shutdown().await;
    b.shutdown().await;
}
