//! The HTTP writer against a real server on 127.0.0.1: 100,000 entries
//! while the server restarts once arrive exactly once; with the server
//! down the fallback file fills and is replayed when it is back.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealog_client::{HttpConfig, HttpWriter, Logger, LoggerContext, Priority, Writer};

mod common;
use common::{realm, s, serve};

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn tokens(addr: SocketAddr, dir: &std::path::Path) -> (String, String) {
    let r = realm(addr, dir).await;
    (s(&r, "write_token"), s(&r, "query_token"))
}

/// Every stored entry's id, checking none is stored twice.
async fn stored_ids(addr: SocketAddr, q: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = 0u64;
    loop {
        let r = reqwest::Client::new()
            .get(format!(
                "http://{addr}/v1/query?limit=100000&cursor={cursor}"
            ))
            .bearer_auth(q)
            .send()
            .await
            .expect("query");
        let next = r
            .headers()
            .get("x-sealog-next-cursor")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let text = r.text().await.expect("body");
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).expect("line");
            if let Some(id) = v["id"].as_str() {
                ids.push(id.to_string());
            }
        }
        match next {
            Some(c) => cursor = c,
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_entries_across_a_restart_arrive_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let server = serve(dir.path(), Some(addr)).await;
    let (w, q) = tokens(addr, dir.path()).await;
    let fallback = dir.path().join("fallback.ndjson");
    let mut cfg = HttpConfig::new(format!("http://{addr}"), w, &fallback);
    cfg.query_token = Some(q.clone());
    cfg.retry_for = Duration::from_secs(30);
    let writer = Arc::new(HttpWriter::start(cfg).expect("writer"));
    let log = Logger::new(&LoggerContext::new(Priority::Info), "shop", writer.clone());
    let total = 100_000usize;
    let producer = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..total {
                log.with_who(format!("user{}", i % 100))
                    .log_activity("order", &i);
                // About a second of production in all, so the restart
                // below lands while entries are in flight.
                if i % 5_000 == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        })
    };
    // Restart the server while entries flow: once some have arrived and
    // before the producer is done, whatever this machine's speed.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while writer.stats().delivered < 10_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing delivered in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !producer.is_finished(),
        "the producer still runs at the restart"
    );
    server.shutdown().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = serve(dir.path(), Some(addr)).await;
    producer.await.expect("producer");
    let w2 = writer.clone();
    tokio::task::spawn_blocking(move || w2.flush())
        .await
        .expect("flush");
    let stats = writer.stats();
    let ids = stored_ids(addr, &q).await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no entry stored twice ({stats:?})");
    assert_eq!(ids.len(), total, "every entry stored ({stats:?})");
    assert_eq!(stats.refused, 0);
    assert!(
        stats.failures > 0,
        "the restart hit requests in flight: {stats:?}"
    );
    let w3 = writer.clone();
    tokio::task::spawn_blocking(move || w3.close())
        .await
        .expect("close");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_down_the_fallback_file_fills_and_is_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let server = serve(dir.path(), Some(addr)).await;
    let (w, q) = tokens(addr, dir.path()).await;
    server.shutdown().await;
    let fallback = dir.path().join("fallback.ndjson");
    let mut cfg = HttpConfig::new(format!("http://{addr}"), w, &fallback);
    cfg.retry_for = Duration::from_millis(200);
    cfg.query_token = Some(q.clone());
    let writer = Arc::new(HttpWriter::start(cfg).expect("writer"));
    for i in 0..2_500 {
        writer.write(
            format!("{{\"id\":\"e{i}\",\"app\":\"shop\",\"type\":\"A\",\"pri\":\"Info\"}}\n")
                .as_bytes(),
        );
    }
    let w2 = writer.clone();
    tokio::task::spawn_blocking(move || w2.flush())
        .await
        .expect("flush");
    // Kept in the fallback file, or in the copy a failed replay left.
    let replaying = dir.path().join("fallback.ndjson.replaying");
    let kept: usize = [&fallback, &replaying]
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(kept, 2_500, "every entry kept while the server is down");
    assert_eq!(writer.stats().to_fallback, 2_500);

    let server = serve(dir.path(), Some(addr)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while writer.stats().replayed < 2_500 {
        assert!(
            Instant::now() < deadline,
            "replayed within 30 s: {:?}",
            writer.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !fallback.exists() && !replaying.exists(),
        "the fallback files are removed once replayed"
    );
    let ids = stored_ids(addr, &q).await;
    let want: Vec<String> = (0..2_500).map(|i| format!("e{i}")).collect();
    assert_eq!(ids, want, "all of them, once, in order");
    let w3 = writer.clone();
    tokio::task::spawn_blocking(move || w3.close())
        .await
        .expect("close");
    server.shutdown().await;
}

/// One invalid line costs only itself; entries spilled because the queue
/// was full are sent while the server is healthy, and a flush waits for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_costs_only_itself_and_spilled_entries_are_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), None).await;
    let (w, q) = tokens(server.addr, dir.path()).await;
    let fallback = dir.path().join("fallback.ndjson");
    let mut cfg = HttpConfig::new(format!("http://{}", server.addr), w, &fallback);
    cfg.queue = 8;
    cfg.batch_records = 10;
    let writer = Arc::new(HttpWriter::start(cfg).expect("writer"));
    for i in 0..500 {
        let line = if i == 5 {
            "{\"id\":\"bad\",\n".to_string()
        } else {
            format!("{{\"id\":\"e{i}\",\"app\":\"shop\",\"type\":\"A\",\"pri\":\"Info\"}}\n")
        };
        writer.write(line.as_bytes());
    }
    let w2 = writer.clone();
    tokio::task::spawn_blocking(move || w2.flush())
        .await
        .expect("flush");
    let st = writer.stats();
    assert!(st.to_fallback > 0, "the small queue spilled: {st:?}");
    assert_eq!(st.refused, 1, "{st:?}");
    let mut ids = stored_ids(server.addr, &q).await;
    ids.sort();
    let mut want: Vec<String> = (0..500)
        .filter(|i| *i != 5)
        .map(|i| format!("e{i}"))
        .collect();
    want.sort();
    assert_eq!(ids, want, "every good entry once ({st:?})");
    assert!(!fallback.exists());
    let w3 = writer.clone();
    tokio::task::spawn_blocking(move || w3.close())
        .await
        .expect("close");
    server.shutdown().await;
}
