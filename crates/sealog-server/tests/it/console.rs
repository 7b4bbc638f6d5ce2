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

    /// Drags the mouse across the element `css`, from `a` to `b` (fractions
    /// of its width), at half its height.
    async fn drag(&self, css: &str, a: f64, b: f64) {
        let e = self.find(css).await;
        let rect = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{e}/rect"),
                Value::Null,
            )
            .await;
        let w = rect["width"].as_f64().expect("width");
        // Pointer offsets are from the element's centre.
        let x = |f: f64| ((f - 0.5) * w).round() as i64;
        let origin = json!({ ELEMENT: e });
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "origin": origin, "x": x(a), "y": 0},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerMove", "duration": 100, "origin": origin, "x": x(b), "y": 0},
                {"type": "pointerUp", "button": 0}
            ]
        }]});
        let v = self.post("/actions", actions).await;
        assert!(v.is_null(), "drag: {v}");
    }

    /// The seqs of the rows shown, in order.
    async fn seqs(&self) -> Vec<u64> {
        serde_json::from_value(
            self.js(
                "return [...document.querySelectorAll('li.row')].map(r => Number(r.dataset.seq))",
            )
            .await,
        )
        .expect("seqs")
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
    b.until(
        "tail connected",
        Duration::from_secs(5),
        "return document.querySelector('#tail').dataset.live === '1'",
    )
    .await;
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
    // /v1/stats refuses what it cannot do, before scanning.
    let realm = srv.realm("shop").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));
    let nine = (0..9)
        .map(|i| format!("facet=f{i}"))
        .collect::<Vec<_>>()
        .join("&");
    for (path, token, want, says) in [
        (
            "/v1/stats?buckets=0",
            Some(q),
            400,
            "buckets must be 1 to 500",
        ),
        (
            "/v1/stats?buckets=501",
            Some(q),
            400,
            "buckets must be 1 to 500",
        ),
        (
            "/v1/stats?sample=1000001",
            Some(q),
            400,
            "sample must be 1 to 1000000",
        ),
        (
            &format!("/v1/stats?{nine}"),
            Some(q),
            400,
            "at most 8 facets",
        ),
        (
            "/v1/stats?color=red",
            Some(q),
            400,
            "unknown stats parameter",
        ),
        ("/v1/stats?where=nocolon", Some(q), 400, "key=value"),
        ("/v1/stats", None, 401, ""),
        ("/v1/stats", Some(w), 403, ""),
    ] {
        let r = srv.get(token, path).await;
        assert_eq!(r.status().as_u16(), want, "{path}");
        let body = r.text().await.expect("body");
        assert!(body.contains(says), "{path}: {body}");
    }
    assert_eq!(srv.ingest(w, records(0, 30)).await.status(), 200);
    let v: Value = srv
        .get(Some(q), "/v1/stats?buckets=5&facet=app&top=1")
        .await
        .json()
        .await
        .expect("stats");
    assert_eq!(
        (v["matched"].as_u64(), v["size"].as_u64()),
        (Some(30), Some(30))
    );
    assert_eq!(v["counts"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        v["facets"]["app"]["top"][0],
        json!({"value": "search", "count": 24})
    );
    assert_eq!(v["facets"]["app"]["other"], 6);
    let total = sealog_server::console::compressed_bytes();
    eprintln!("console assets: {total} bytes gzip-compressed");
    assert!(total < 300 * 1024);
}

/// Signs in at `base` (the console's origin) with `token`.
async fn sign_in(b: &Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/ui")).await;
    b.type_into("input[name=token]", token).await;
    b.click("form.signin button[type=submit]").await;
    b.until(
        "signed in",
        Duration::from_secs(5),
        "return !document.querySelector('#signout').hidden && document.querySelector('#status')?.textContent",
    )
    .await;
}

/// Pins `key` on the Realm page at `base`.
async fn pin(b: &Browser, base: &str, key: &str) {
    b.goto(&format!("{base}/ui#/realm")).await;
    b.find("input[name=key]").await;
    b.js(&format!(
        "document.querySelector('input[name=key]').value = {}",
        json!(key)
    ))
    .await;
    b.click("form.pin button[type=submit]").await;
    b.until(
        "pinned",
        Duration::from_secs(5),
        "return document.querySelector('.size')?.textContent.includes('signature verified')",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn histogram_facets_and_zoom() {
    let srv = TestServer::start().await;
    let realm = srv.realm("shop").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));
    // Five batches 200 ms apart, so the histogram has a spread to zoom in.
    for k in 0..5 {
        assert_eq!(srv.ingest(w, records(k * 50, 50)).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let b = Browser::start().await;
    sign_in(&b, &srv.url(""), q).await;
    b.goto(&format!("{}#/explore?range=all", srv.url("/ui")))
        .await;
    b.until(
        "histogram",
        Duration::from_secs(5),
        "return document.querySelectorAll('#histogram rect.bucket').length === 60 && document.querySelector('#histogram-count').textContent",
    )
    .await;
    assert_eq!(b.text("#histogram-count").await, "250 records");
    let bars: Vec<u64> = serde_json::from_value(
        b.js("return [...document.querySelectorAll('#histogram rect.bucket')].map(r => Number(r.dataset.count))")
            .await,
    )
    .expect("counts");
    assert_eq!(bars.iter().sum::<u64>(), 250, "{bars:?}");
    // The facets: app's and level's top values with their counts.
    let facet = |field: &str, value: &str| {
        format!(".facet-field[data-field='{field}'] button.facet[data-value='{value}']")
    };
    assert_eq!(b.text(&facet("app", "search")).await, "search\n200");
    assert_eq!(b.text(&facet("app", "payments")).await, "payments\n50");
    assert_eq!(b.text(&facet("level", "error")).await, "error\n36");
    b.shot("explore").await;
    // A facet click filters: every 5th record.
    let clicked = Instant::now();
    b.click(&facet("app", "payments")).await;
    b.until(
        "facet filter",
        Duration::from_secs(5),
        "return document.querySelector('#status')?.textContent.startsWith('50 records shown')",
    )
    .await;
    eprintln!("facet click to rows shown: {:?}", clicked.elapsed());
    assert_eq!(
        b.seqs().await,
        (0..250).rev().filter(|i| i % 5 == 0).collect::<Vec<_>>()
    );
    let url = b.js("return location.href").await;
    assert!(
        url.as_str()
            .unwrap_or_default()
            .contains("where=app%3Apayments"),
        "{url}"
    );
    b.until(
        "facet pressed",
        Duration::from_secs(5),
        &format!(
            "return document.querySelector(\"{}\")?.getAttribute('aria-pressed') === 'true'",
            facet("app", "payments")
        ),
    )
    .await;
    // Clicked again, the filter goes.
    b.click(&facet("app", "payments")).await;
    b.until(
        "facet removed",
        Duration::from_secs(5),
        "return document.querySelector('#status')?.textContent.startsWith('100 records shown')",
    )
    .await;
    // A filter typed as `app=payments` shows as that facet, pressed.
    b.goto(&format!(
        "{}#/explore?range=all&where=app%3Dpayments",
        srv.url("/ui")
    ))
    .await;
    b.until(
        "typed filter pressed",
        Duration::from_secs(5),
        &format!(
            "return document.querySelector(\"{}\")?.getAttribute('aria-pressed') === 'true'",
            facet("app", "payments")
        ),
    )
    .await;
    b.goto(&format!("{}#/explore?range=all", srv.url("/ui")))
        .await;
    // Another field, picked by the user.
    b.type_into("input[name=facet]", "msg").await;
    b.click("form.add-facet button[type=submit]").await;
    b.until(
        "picked facet",
        Duration::from_secs(5),
        "return document.querySelectorAll(\".facet-field[data-field='msg'] button.facet\").length === 8",
    )
    .await;
    // Drag across the first half of the histogram: the older records only.
    b.until(
        "histogram again",
        Duration::from_secs(5),
        "return document.querySelectorAll('#histogram rect.bucket').length === 60",
    )
    .await;
    b.drag("#histogram svg", 0.02, 0.5).await;
    b.until(
        "zoomed",
        Duration::from_secs(5),
        "return location.hash.includes('range=custom') && document.querySelector('#histogram-count')?.textContent",
    )
    .await;
    let zoomed = b.text("#histogram-count").await;
    let n: u64 = zoomed
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(
        n > 0 && n < 250,
        "the first half holds some records: {zoomed}"
    );
    let seqs = b.seqs().await;
    assert!(
        !seqs.is_empty() && seqs.iter().all(|s| *s < 250),
        "{seqs:?}"
    );
    assert!(
        seqs.iter().max() < Some(&200),
        "the newest batch is after the zoomed range: {seqs:?}"
    );
    // By keyboard: a bar takes the focus, and Enter zooms into its bucket.
    let before = b.js("return location.hash").await;
    b.js("const r = [...document.querySelectorAll('#histogram rect.bucket')].find(r => r.dataset.count !== '0'); r.focus()")
        .await;
    let focused = b
        .cmd(reqwest::Method::GET, "/element/active", Value::Null)
        .await;
    let id = focused[ELEMENT]
        .as_str()
        .expect("a focused bar")
        .to_string();
    b.post(&format!("/element/{id}/value"), json!({"text": "\u{E007}"}))
        .await;
    b.until(
        "zoomed by keyboard",
        Duration::from_secs(5),
        &format!("return location.hash !== {before} && document.querySelector('#histogram-count')?.textContent"),
    )
    .await;
    // At phone width: one column, nothing wider than the screen.
    b.post("/window/rect", json!({"width": 390, "height": 844}))
        .await;
    b.goto(&format!("{}#/explore?range=all", srv.url("/ui")))
        .await;
    b.until(
        "phone layout",
        Duration::from_secs(5),
        "return document.querySelectorAll('#histogram rect.bucket').length === 60",
    )
    .await;
    let fits = b
        .js("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(fits, true, "no sideways scrolling at 390 px");
    b.shot("phone").await;
    b.post("/window/rect", json!({"width": 1280, "height": 800}))
        .await;
    let log = b.console().await;
    assert!(errors(&log, &[]).is_empty(), "console errors: {log:?}");
}

/// A proxy in front of the server that flips one byte of the first hash of
/// an inclusion proof (mode 1) or of the checkpoint's signature (mode 2),
/// or answers an older, validly signed checkpoint (mode 3: `old`).
async fn tamper_proxy(
    target: std::net::SocketAddr,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    old: std::sync::Arc<std::sync::Mutex<String>>,
) -> String {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (http, mode, old) = (http.clone(), mode.clone(), old.clone());
        async move {
            let path = req
                .uri()
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string());
            let mut fwd = http.request(req.method().clone(), format!("http://{target}{path}"));
            if let Some(a) = req.headers().get("authorization") {
                fwd = fwd.header("authorization", a);
            }
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let r = fwd.body(body).send().await.expect("forward");
            let status = r.status();
            let mut headers = r.headers().clone();
            for h in [
                "content-encoding",
                "content-length",
                "transfer-encoding",
                "connection",
            ] {
                headers.remove(h);
            }
            let mut bytes = r.bytes().await.expect("body").to_vec();
            let m = mode.load(std::sync::atomic::Ordering::SeqCst);
            if m == 1 && path.starts_with("/v1/proof/inclusion") && status == 200 {
                let mut v: Value = serde_json::from_slice(&bytes).expect("proof");
                let mut h = b64
                    .decode(v["hashes"][0].as_str().expect("hash"))
                    .expect("b64");
                h[7] ^= 0x01;
                v["hashes"][0] = b64.encode(h).into();
                bytes = serde_json::to_vec(&v).expect("json");
            }
            if m == 2 && path == "/v1/checkpoint" && status == 200 {
                let text = String::from_utf8(bytes).expect("utf-8");
                let (head, sig) = text.trim_end().rsplit_once(' ').expect("signature line");
                let mut raw = b64.decode(sig).expect("b64");
                raw[20] ^= 0x01;
                bytes = format!("{head} {}\n", b64.encode(raw)).into_bytes();
            }
            if m == 3 && path == "/v1/checkpoint" && status == 200 {
                bytes = old.lock().expect("lock").clone().into_bytes();
            }
            let mut out = Response::new(Body::from(bytes));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            out
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flipped_proof_hash_or_signature_fails_and_names_the_check() {
    let srv = TestServer::start().await;
    let realm = srv.realm("shop").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));
    assert_eq!(srv.ingest(w, records(0, 40)).await.status(), 200);
    let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    let old = srv
        .get(Some(q), "/v1/checkpoint")
        .await
        .text()
        .await
        .expect("checkpoint");
    let old = std::sync::Arc::new(std::sync::Mutex::new(old));
    let base = tamper_proxy(srv.addr, mode.clone(), old).await;
    let b = Browser::start().await;
    sign_in(&b, &base, q).await;
    pin(&b, &base, s(&realm, "public_key")).await;
    b.goto(&format!("{base}/ui#/explore?range=all")).await;
    b.click("li.row[data-seq='17'] button.expand").await;
    let mut verdicts = Vec::new();
    for m in [0u8, 4, 1, 2, 3, 0] {
        if m == 4 {
            // The log grows; the next check must prove it extends the old.
            assert_eq!(srv.ingest(w, records(40, 10)).await.status(), 200);
        }
        mode.store(m % 4, std::sync::atomic::Ordering::SeqCst);
        b.js("document.querySelector(\"li.row[data-seq='17'] .verdict\").replaceChildren()")
            .await;
        b.click("li.row[data-seq='17'] button.verify").await;
        let v = b
            .until(
                "verdict",
                Duration::from_secs(5),
                "const r = document.querySelector(\"li.row[data-seq='17'] .result\"); return r && r.textContent",
            )
            .await;
        verdicts.push(v.as_str().unwrap_or_default().to_string());
        if m == 1 {
            b.shot("verify-failed").await;
        }
    }
    assert_eq!(
        verdicts,
        [
            "Verified",
            "Verified",
            "Failed: inclusion: the proof does not lead to the signed root",
            "Failed: signature: the checkpoint's Ed25519 signature does not verify",
            "Failed: consistency: the tree shrank from 50 to 40 records since this browser last looked",
            "Verified",
        ]
    );
    let steps = b.text("li.row[data-seq='17'] .steps").await;
    assert!(
        steps.contains("consistent with the tree of 50 records this browser saw before"),
        "{steps}"
    );
    // The Realm page checks the same: consistent, then a rollback refused.
    b.goto(&format!("{base}/ui#/realm")).await;
    let said = b
        .until(
            "consistency",
            Duration::from_secs(5),
            "const c = document.querySelector('.consistency'); return c && c.textContent",
        )
        .await;
    assert_eq!(
        said,
        "Consistent with the tree of 50 records this browser saw before."
    );
    mode.store(3, std::sync::atomic::Ordering::SeqCst);
    b.goto(&format!("{base}/ui#/realm?again")).await;
    let said = b
        .until(
            "rollback",
            Duration::from_secs(5),
            "const c = document.querySelector('.consistency'); return c && c.textContent.startsWith('Failed') && c.textContent",
        )
        .await;
    assert_eq!(
        said,
        "Failed: consistency: the tree shrank from 50 to 40 records since this browser last looked"
    );
    let log = b.console().await;
    assert!(errors(&log, &[]).is_empty(), "console errors: {log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_realm_a_huge_record_and_a_server_gone_are_shown_clearly() {
    let mut srv = TestServer::start().await;
    let empty = srv.realm("empty").await;
    let big = srv.realm("big").await;
    let b = Browser::start().await;
    // An empty realm says so.
    sign_in(&b, &srv.url(""), s(&empty, "query_token")).await;
    assert_eq!(b.text("#status").await, "This realm has no records yet.");
    assert_eq!(b.text("#who").await, "realm empty (no records yet)");
    b.shot("empty").await;
    // A 10,000-character record is one row, and expands to all of it.
    let msg = "x".repeat(10_000);
    let line = format!("{{\"app\":\"big\",\"level\":\"info\",\"msg\":\"{msg}\"}}\n");
    assert_eq!(srv.ingest(s(&big, "write_token"), line).await.status(), 200);
    b.click("#signout").await;
    sign_in(&b, &srv.url(""), s(&big, "query_token")).await;
    let h = b
        .js("return document.querySelector(\"li.row[data-seq='0']\").getBoundingClientRect().height")
        .await;
    assert!(
        h.as_f64().is_some_and(|h| h > 0.0 && h < 60.0),
        "one line high: {h}"
    );
    b.click("li.row[data-seq='0'] button.expand").await;
    let json = b.text("li.row[data-seq='0'] pre.json").await;
    assert!(json.contains(&msg));
    // As a facet, the value is cut at 200 characters and offered as text,
    // not as a filter that would match nothing.
    b.goto(&format!("{}#/explore?range=all&facets=msg", srv.url("/ui")))
        .await;
    b.until(
        "cut facet",
        Duration::from_secs(5),
        "return document.querySelector(\".facet-field[data-field='msg'] li.cut\") !== null && document.querySelector(\".facet-field[data-field='msg'] button.facet\") === null",
    )
    .await;
    let w = b
        .js("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(w, true, "no sideways scrolling");
    let log = b.console().await;
    assert!(errors(&log, &[]).is_empty(), "console errors: {log:?}");
    // The server gone: the next search says so.
    srv.shutdown().await;
    b.click("form.search button[type=submit]").await;
    let banner = b
        .until(
            "banner",
            Duration::from_secs(5),
            "const e = document.querySelector('#banner'); return !e.hidden && e.textContent",
        )
        .await;
    assert!(
        banner
            .as_str()
            .unwrap_or_default()
            .starts_with("The server cannot be reached"),
        "{banner}"
    );
    let page = b.js("return document.body.innerText.length").await;
    assert!(page.as_u64() > Some(50), "no blank page");
    let log = b.console().await;
    let errs: Vec<String> = errors(&log, &[])
        .into_iter()
        .filter(|m| !m.contains("ERR_CONNECTION_REFUSED"))
        .collect();
    assert!(
        errs.is_empty(),
        "console errors other than the refused connection: {errs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drains_are_listed_added_delivering_and_removed() {
    use tokio::io::AsyncReadExt as _;
    let srv = TestServer::start().await;
    let realm = srv.realm("shop").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));
    // A syslog receiver the drain delivers to.
    let rx = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = rx.local_addr().expect("addr").port();
    let got = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<u8>::new()));
    {
        let got = got.clone();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = rx.accept().await {
                let got = got.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = c.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        got.lock().await.extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
    }
    let b = Browser::start().await;
    sign_in(&b, &srv.url(""), q).await;
    b.goto(&format!("{}#/drains", srv.url("/ui"))).await;
    // The query token cannot manage drains: the page asks for the write token.
    b.type_into("input[name=write-token]", w).await;
    b.click("form.write-token button[type=submit]").await;
    b.until(
        "empty list",
        Duration::from_secs(5),
        "return document.querySelector('#drains-status')?.textContent === 'No drains yet.'",
    )
    .await;
    // A bad destination is refused with the server's reason.
    b.type_into("input[name=url]", "gopher://h:70").await;
    b.click("form.add-drain button[type=submit]").await;
    let refused = b
        .until(
            "refusal",
            Duration::from_secs(5),
            "const t = document.querySelector('#drains-status').textContent; return t.startsWith('Not added') && t",
        )
        .await;
    assert!(
        refused
            .as_str()
            .unwrap_or_default()
            .contains("not supported"),
        "{refused}"
    );
    b.type_into("input[name=url]", &format!("syslog://127.0.0.1:{port}"))
        .await;
    b.type_into("input[name=drain-where]", "app:payments").await;
    b.click("form.add-drain button[type=submit]").await;
    b.until(
        "listed",
        Duration::from_secs(5),
        "return document.querySelectorAll('#drain-list tr[data-drain]').length === 1",
    )
    .await;
    assert_eq!(srv.ingest(w, records(0, 20)).await.status(), 200);
    // Delivered: the receiver has the payments records, and the page shows it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&got.lock().await).to_string();
        if text.matches("order ").count() >= 4 {
            assert!(
                !text.contains("order 1 handled"),
                "only app:payments: {text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {text:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.goto(&format!("{}#/drains?again", srv.url("/ui"))).await;
    b.until(
        "delivering",
        Duration::from_secs(5),
        "const r = document.querySelector('#drain-list tr[data-drain]'); return r && r.querySelector('.state').textContent === 'delivering' && r.children[3].textContent === '4'",
    )
    .await;
    b.shot("drains").await;
    b.click("#drain-list button.remove").await;
    b.until(
        "removed",
        Duration::from_secs(5),
        "return document.querySelectorAll('#drain-list tr[data-drain]').length === 0",
    )
    .await;
    // The digests page, and the audit view (explore on audit records).
    b.goto(&format!("{}#/digests", srv.url("/ui"))).await;
    b.find("form.digest-window input[name=start]").await;
    b.shot("digests").await;
    b.click("nav a[data-page=audit]").await;
    b.until(
        "audit view",
        Duration::from_secs(5),
        "return document.querySelector('nav a[data-page=audit]').hasAttribute('aria-current') && document.querySelector(\".facet-field[data-field='audit.type']\") !== null",
    )
    .await;
    b.shot("audit").await;
    let log = b.console().await;
    assert!(
        errors(&log, &[422, 400]).is_empty(),
        "console errors: {log:?}"
    );
}
