//! Starts a real server on 127.0.0.1:0 with a temporary data directory.

use std::net::SocketAddr;

use sealog_server::{Config, Server};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub admin: String,
    pub stop: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<Result<(), sealog_server::ServerError>>>,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Config::default()).await
    }

    pub async fn start_with(config: Config) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (s, admin) = Server::open(dir.path(), config).expect("open server");
        let admin = admin.expect("first start issues an admin token");
        Self::serve(dir, s, admin).await
    }

    pub async fn serve(dir: tempfile::TempDir, s: Server, admin: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let task = tokio::spawn(s.serve(listener, stop.clone()));
        Self {
            dir,
            addr,
            admin,
            stop,
            task: Some(task),
            http: reqwest::Client::new(),
        }
    }

    /// Stops the server and starts a new one on the same data directory.
    pub async fn restart(mut self, config: Config) -> Self {
        self.shutdown().await;
        let (s, again) = Server::open(self.dir.path(), config).expect("reopen");
        assert!(again.is_none(), "the admin token is issued only once");
        let admin = self.admin.clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        Self::serve(dir, s, admin).await
    }

    pub async fn shutdown(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), t)
                .await
                .expect("shutdown within 10 s")
                .expect("task")
                .expect("serve ok");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn realm(&self, name: &str) -> Value {
        let r = self
            .http
            .post(self.url("/v1/admin/realms"))
            .bearer_auth(&self.admin)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 201);
        r.json().await.expect("json")
    }

    pub async fn ingest(&self, token: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(self.url("/v1/ingest"))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .expect("send")
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> reqwest::Response {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("send")
    }
}

pub fn ndjson(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| {
            let app = if i % 3 == 0 { "payments" } else { "search" };
            format!("{{\"app\":\"{app}\",\"n\":{i},\"msg\":\"event {i}\"}}\n")
        })
        .collect()
}

pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().expect("string field")
}

/// The server's Prometheus text.
pub async fn metrics(http: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{http}/metrics"))
        .await
        .expect("get /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The records `query_token` reads at `http`, waiting up to 10 s for `want`.
pub async fn wait_records(
    http: std::net::SocketAddr,
    query_token: &str,
    want: usize,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = reqwest::Client::new()
            .get(format!("http://{http}/v1/query?limit=100000"))
            .bearer_auth(query_token)
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        if lines.len() >= want || std::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
