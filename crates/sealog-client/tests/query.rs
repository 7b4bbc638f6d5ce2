//! The client's query functions against a real server, over entries the
//! client's own logger wrote.

use std::sync::Arc;

use sealog_client::{
    ChangeInfo, HttpConfig, HttpWriter, Logger, LoggerContext, LogsParams, Priority, QueryClient,
};

mod common;
use common::{realm, s, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_functions_answer_what_the_logger_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), None).await;
    let r = realm(server.addr, dir.path()).await;
    let url = format!("http://{}", server.addr);
    let w = Arc::new(
        HttpWriter::start(HttpConfig::new(
            &url,
            s(&r, "write_token"),
            dir.path().join("f"),
        ))
        .expect("writer"),
    );
    let log = Logger::new(&LoggerContext::new(Priority::Info), "shop", w.clone());
    for i in 0..300 {
        let l = log
            .with_who(format!("u{}", i % 3))
            .with_remote_ip(if i == 7 { "203.0.113.7" } else { "10.0.0.1" });
        if i % 10 == 0 {
            l.log_data_change(
                "changed",
                ChangeInfo::new("user", "update").add_change(
                    if i % 20 == 0 { "email" } else { "name" },
                    1,
                    2,
                ),
            );
        } else if i % 5 == 0 {
            l.warn().log_activity("slow", &i);
        } else {
            l.log_activity("ok", &i);
        }
    }
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || w2.flush())
        .await
        .expect("flush");
    assert_eq!(w.stats().delivered, 300);

    let q = QueryClient::new(&url, s(&r, "query_token"));
    // GetLogs with paging: u1's 100 entries in pages of 30, newest first.
    let mut p = LogsParams {
        who: Some("u1".into()),
        limit: Some(30),
        ..Default::default()
    };
    let mut seqs = Vec::new();
    loop {
        let page = q.get_logs(&p).await.expect("page");
        seqs.extend(page.logs.iter().map(|e| e["seq"].as_u64().expect("seq")));
        match page.next {
            Some(c) => p.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seqs.len(), 100);
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first");
    // pri leaves data changes out: 30 Warn activities (i % 5 == 0, not % 10).
    let warn = q
        .get_logs(&LogsParams {
            pri: Some("Warn".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("warn");
    assert_eq!(warn.logs.len(), 30);
    let changes = q
        .get_changes(&LogsParams {
            field: Some("email".into()),
            ..Default::default()
        })
        .await
        .expect("changes");
    assert_eq!(changes.logs.len(), 15);
    let ip = q
        .get_logs_for_ip("203.0.113.7", &LogsParams::default())
        .await
        .expect("ip");
    assert_eq!(ip.logs.len(), 1);
    let who = q.get_set("who", &LogsParams::default()).await.expect("set");
    assert_eq!(
        who,
        vec![("u0".into(), 100), ("u1".into(), 100), ("u2".into(), 100)]
    );
    assert_eq!(q.get_apps().await.expect("apps"), vec!["shop".to_string()]);
    let unusual = q
        .get_unusual_ips(1.0, &LogsParams::default())
        .await
        .expect("unusual");
    assert_eq!(unusual.len(), 1);
    assert_eq!(unusual[0]["ipaddr"], "203.0.113.7");
    // A refusal is an error naming the reason.
    let e = q
        .get_logs(&LogsParams {
            instance: Some("x".into()),
            ..Default::default()
        })
        .await
        .expect_err("instance without class");
    assert!(
        e.to_string()
            .contains("instance is only allowed together with class"),
        "{e}"
    );
    let w3 = w.clone();
    tokio::task::spawn_blocking(move || w3.close())
        .await
        .expect("close");
    server.shutdown().await;
}
