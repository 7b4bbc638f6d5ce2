//! The web console in a real browser: Debian's headless Chromium driven by
//! chromedriver over WebDriver, against a real server.
//!
//! The WebDriver client is a few requests written here, not a crate: the
//! tests use eight commands of the protocol (W3C WebDriver, JSON over HTTP),
//! and reqwest is already a test dependency.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{s, TestServer};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One browser session.
struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Driver,
}

impl Browser {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let driver = Driver(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver (Debian's chromium-driver; .ci/run installs it)"),
        );
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{root}/status")).send().await;
            if let Ok(r) = ready {
                let v: Value = r.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver not ready in 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,800"]
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let r: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"));
        Self {
            http,
            base: format!("{root}/session/{id}"),
            _driver: driver,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if method == reqwest::Method::POST {
            req = req.json(&body);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("webdriver JSON");
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, body).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body) in the page; its return value.
    async fn js(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// The element `css` selects, waiting up to 5 s for it.
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self
                .post("/element", json!({"using": "css selector", "value": css}))
                .await;
            if let Some(id) = v[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no {css} in 5 s: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        let v = self.post(&format!("/element/{e}/click"), json!({})).await;
        assert!(v.is_null(), "click {css}: {v}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{e}/clear"), json!({})).await;
        self.post(&format!("/element/{e}/value"), json!({ "text": text }))
            .await;
    }

    /// Waits up to `within` for `script` to return something truthy.
    async fn until(&self, what: &str, within: Duration, script: &str) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.js(script).await;
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return v;
            }
            if Instant::now() >= deadline {
                let page = self.js("return document.body.innerText").await;
                panic!(
                    "{what}: not within {within:?}; the page shows:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{e}/text"),
            Value::Null,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The browser console's entries since the last call.
    async fn console(&self) -> Vec<Value> {
        self.post("/se/log", json!({"type": "browser"}))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Saves a screenshot as `docs/console/<name>.png` when
    /// SEALOG_CONSOLE_SHOTS names the repository root.
    async fn shot(&self, name: &str) {
        let Ok(root) = std::env::var("SEALOG_CONSOLE_SHOTS") else {
            return;
        };
        use base64::Engine as _;
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("png"))
            .expect("base64");
        let dir = std::path::Path::new(&root).join("docs/console");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write png");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = self.base.clone();
        let http = self.http.clone();
        // Best effort: the driver's kill ends the browser too.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let _ = http.delete(url).send().await;
                });
            }
        })
        .join();
    }
}

/// Console entries that are errors, other than the network log of the
/// statuses a test provoked on purpose.
fn errors(log: &[Value], expected: &[u16]) -> Vec<String> {
    log.iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .filter(|m| {
            !expected
                .iter()
                .any(|s| m.contains(&format!("status of {s}")))
        })
        .collect()
}

fn records(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| {
            let app = if i % 5 == 0 { "payments" } else { "search" };
            let level = if i % 7 == 0 { "error" } else { "info" };
            format!("{{\"app\":\"{app}\",\"level\":\"{level}\",\"msg\":\"order {i} handled\"}}\n")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_search_expand_verify_share_and_tail() {
    let srv = TestServer::start().await;
    let realm = srv.realm("shop").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));
    let r = srv.ingest(w, records(0, 250)).await;
    assert_eq!(r.status(), 200);
    let b = Browser::start().await;

    // Sign in: the first page of the newest records.
    b.goto(&srv.url("/ui")).await;
    b.type_into("input[name=token]", q).await;
    b.click("form.signin button[type=submit]").await;
    b.until(
        "first page",
        Duration::from_secs(5),
        "return document.querySelectorAll('li.row[data-seq]').length === 100",
    )
    .await;
    let first: Vec<u64> = serde_json::from_value(
        b.js("return [...document.querySelectorAll('li.row')].map(r => Number(r.dataset.seq))")
            .await,
    )
    .expect("seqs");
    assert_eq!(first, (150..250).rev().collect::<Vec<_>>(), "newest first");
    assert!(b.text("#status").await.contains("tree size 250"));
    assert_eq!(b.text("#who").await, "realm shop");
    // The token is in session storage, never in the URL.
    let url = b.js("return location.href").await;
    assert!(!url.as_str().unwrap_or_default().contains(q), "{url}");
    b.shot("explore").await;

    // Search with a filter: every 5th record, all of them (50), by scrolling.
    b.type_into("input[name=where]", "app:payments").await;
    b.click("form.search button[type=submit]").await;
    b.until(
        "filtered rows",
        Duration::from_secs(5),
        "return document.querySelector('#status').textContent.startsWith('50 records shown')",
    )
    .await;
    let seqs: Vec<u64> = serde_json::from_value(
        b.js("return [...document.querySelectorAll('li.row')].map(r => Number(r.dataset.seq))")
            .await,
    )
    .expect("seqs");
    assert_eq!(
        seqs,
        (0..250).rev().filter(|i| i % 5 == 0).collect::<Vec<_>>()
    );
    let shared = b.js("return location.href").await;
    let shared = shared.as_str().expect("url").to_string();
    assert!(
        shared.contains("where=app%3Apayments"),
        "the URL holds the query: {shared}"
    );

    // Expand one: its stored JSON.
    b.click("li.row[data-seq='245'] button.expand").await;
    let json = b.text("li.row[data-seq='245'] pre.json").await;
    let v: Value = serde_json::from_str(&json).expect("the stored JSON");
    assert_eq!(
        (v["seq"].as_u64(), v["msg"].as_str()),
        (Some(245), Some("order 245 handled"))
    );

    // Verify without a pinned key says what is missing.
    b.click("li.row[data-seq='245'] button.verify").await;
    let verdict = b
        .until(
            "verdict",
            Duration::from_secs(5),
            "return document.querySelector(\"li.row[data-seq='245'] .result\")?.textContent",
        )
        .await;
    assert!(
        verdict
            .as_str()
            .unwrap_or_default()
            .contains("no pinned key"),
        "{verdict}"
    );

    // Pin the realm's key on the realm page; the checkpoint verifies.
    b.goto(&format!("{}#/realm", srv.url("/ui"))).await;
    // Pasted, as a user would paste it.
    b.find("input[name=key]").await;
    b.js(&format!(
        "document.querySelector('input[name=key]').value = {}",
        json!(s(&realm, "public_key"))
    ))
    .await;
    b.click("form.pin button[type=submit]").await;
    b.until(
        "pinned",
        Duration::from_secs(5),
        "return document.querySelector('.size')?.textContent.includes('Tree size 250; signature verified')",
    )
    .await;
    b.shot("realm").await;

    // A shared URL opens the same view; Verify checks the proof here.
    b.goto(&shared).await;
    b.until(
        "shared view",
        Duration::from_secs(5),
        "return document.querySelector('#status').textContent.startsWith('50 records shown')",
    )
    .await;
    b.click("li.row[data-seq='245'] button.expand").await;
    b.click("li.row[data-seq='245'] button.verify").await;
    let verdict = b
        .until(
            "verified",
            Duration::from_secs(5),
            "const r = document.querySelector(\"li.row[data-seq='245'] .result\"); return r && r.textContent !== 'Checking…' && r.textContent",
        )
        .await;
    assert_eq!(verdict, "Verified");
    b.shot("verify").await;

    // Live tail: a record ingested now shows within 2 s.
    b.click("#tail").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = srv.ingest(w, records(250, 1)).await;
    assert_eq!(r.status(), 200);
    let sent = Instant::now();
    b.until(
        "tailed record",
        Duration::from_secs(2),
        "return document.querySelector(\"li.row[data-seq='250']\") !== null",
    )
    .await;
    eprintln!(
        "tail: record 250 shown {:?} after its receipt",
        sent.elapsed()
    );
    b.click("#tail").await;

    let log = b.console().await;
    assert!(errors(&log, &[]).is_empty(), "console errors: {log:?}");

    // A wrong token is refused, clearly.
    b.click("#signout").await;
    b.type_into("input[name=token]", "slq_not-a-token").await;
    b.click("form.signin button[type=submit]").await;
    let e = b
        .until(
            "refusal",
            Duration::from_secs(5),
            "const e = document.querySelector('#signin-error'); return e && !e.hidden && e.textContent",
        )
        .await;
    assert_eq!(e, "That token is unknown or revoked.");
    let log = b.console().await;
    assert!(errors(&log, &[401]).is_empty(), "console errors: {log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_embedded_compressed_and_locked_down() {
    let srv = TestServer::start().await;
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/console.js", "text/javascript"),
        ("/ui/console.css", "text/css"),
    ] {
        let r = srv
            .http
            .get(srv.url(path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(h["content-type"].to_str().expect("type").starts_with(kind));
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    assert_eq!(srv.get(None, "/ui/nope.js").await.status(), 404);
    assert_eq!(srv.get(None, "/ui/../v1/query").await.status(), 401);
    let total = sealog_server::console::compressed_bytes();
    eprintln!("console assets: {total} bytes gzip-compressed");
    assert!(total < 300 * 1024);
}
