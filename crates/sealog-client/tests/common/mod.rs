//! A real sealog server on 127.0.0.1 for the client's tests.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sealog_server::{Config, Server};
use tokio_util::sync::CancellationToken;

pub struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), sealog_server::ServerError>>,
    pub addr: SocketAddr,
}

/// Serves `dir` on `addr` (a port just released is retried for 10 s), or
/// on a free port.
pub async fn serve(dir: &std::path::Path, addr: Option<SocketAddr>) -> Running {
    let (s, _) = Server::open(dir, Config::default()).expect("open");
    let want = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match tokio::net::TcpListener::bind(want).await {
            Ok(l) => break l,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind {want}: {e}"),
        }
    };
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let task = tokio::spawn(s.serve(listener, stop.clone()));
    Running { stop, task, addr }
}

impl Running {
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

/// Creates realm `shop`: its tokens and public key.
pub async fn realm(addr: SocketAddr, dir: &std::path::Path) -> serde_json::Value {
    let admin = std::fs::read_to_string(dir.join("admin.token")).expect("admin token");
    reqwest::Client::new()
        .post(format!("http://{addr}/v1/admin/realms"))
        .bearer_auth(admin.trim())
        .json(&serde_json::json!({"name": "shop"}))
        .send()
        .await
        .expect("create realm")
        .json()
        .await
        .expect("json")
}

pub fn s(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str().expect("string").to_string()
}
