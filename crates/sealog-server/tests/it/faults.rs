//! Fault injection through the running server, on the simulated filesystem
//! (`sealog_journal::sim_fs`): an fsync error poisons the realm (no receipt,
//! 503 with `Retry-After`, `/ready` names it), the realm recovers by itself
//! once a probe write succeeds, and after a power loss every acknowledged
//! record is there.

use std::path::Path;

use sealog_journal::sim_fs::SimFs;
use sealog_server::{Config, Server};

use crate::util::{ndjson, s, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn fsync_error_poisons_the_realm_and_it_recovers_without_a_restart() {
    let fs = SimFs::new();
    let root = Path::new("/data");
    let (srv, admin) = Server::open_in(fs.clone(), root, Config::default()).expect("open");
    let t = TestServer::serve(
        tempfile::tempdir().expect("tempdir"),
        srv,
        admin.expect("admin token"),
    )
    .await;
    let realm = t.realm("acme").await;
    let w = s(&realm, "write_token").to_string();
    let r = t.ingest(&w, ndjson(0, 10)).await;
    assert_eq!(r.status(), 200);

    // The next fsync fails: no receipt, 503 with Retry-After, the realm is
    // named by /ready.
    fs.fail_syncs(1);
    let r = t.ingest(&w, ndjson(10, 10)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body = r.text().await.expect("body");
    assert!(body.contains("refuses writes"), "{body}");
    let r = t.get(None, "/ready").await;
    assert_eq!(r.status(), 503);
    let ready = r.text().await.expect("body");
    assert!(
        ready.contains("realm acme") && ready.contains("fsync"),
        "{ready}"
    );

    // The next request (after the recovery back-off) finds the disk healthy:
    // the realm cuts back to its last acknowledged commit and takes writes.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let r = t.ingest(&w, ndjson(20, 10)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let receipt: serde_json::Value = r.json().await.expect("receipt");
    assert_eq!(
        receipt["first_seq"], 10,
        "nothing of the failed batch was kept"
    );
    assert_eq!(t.get(None, "/ready").await.status(), 200);

    // Power loss right now: everything acknowledged survives.
    let image = fs.crash_image(7);
    fs.power_off();
    drop(t);
    {
        let dd = sealog_store::DataDir::open_in(image.clone(), root, "check").expect("open image");
        // Regression: the data directory's own entry was never synced into
        // its parent, so a power loss could take the whole directory.
        let toks = dd.tokens(None).expect("tokens");
        assert_eq!(toks.len(), 3, "admin, write and query tokens: {toks:?}");
    }
    let (srv, _) =
        Server::open_in(image, root, Config::default()).expect("reopen after power loss");
    let t = TestServer::serve(tempfile::tempdir().expect("tempdir"), srv, admin_token()).await;
    let q = s(&realm, "query_token").to_string();
    let r = t.get(Some(&q), "/v1/query?limit=100&order=oldest").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20, "{text}");
    assert!(
        lines[10].contains("\"seq\":10") && lines[10].contains("\"n\":20"),
        "{}",
        lines[10]
    );
}

/// The admin token is not needed after the restart above; any string does.
fn admin_token() -> String {
    "unused".into()
}
