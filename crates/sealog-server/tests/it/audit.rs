//! Palisade's audit service: the seed's examples, the contract-test body,
//! rejected successes, dead letters, and the header rules.

use sealog_server::Config;
use serde_json::{json, Value};

use crate::util::{s, wait_records, TestServer};

/// The README's AuditErrorMessage (its `"stackTrace":[...]` made JSON).
const SEED_ERROR: &str = r#"{
   "userId":"originalUserID",
   "resourceId":"testResourceId",
   "context":{"class":"uk.gov.gchq.palisade.Context","contents":{"purpose":"testContext"}},
   "serviceName":"testServicename",
   "timestamp":"2020-11-26T10:28:54.118082Z",
   "serverIP":"testServerIP",
   "serverHostname":"testServerHostname",
   "attributes":{"messagesSent":"23"},
   "error":{"cause":null,"stackTrace":[],"localizedMessage":"Something went wrong!"}
}"#;

/// The README's AuditSuccessMessage.
const SEED_SUCCESS: &str = r#"{
   "userId":"originalUserID",
   "resourceId":"testResourceId",
   "context":{"class":"uk.gov.gchq.palisade.Context","contents":{"purpose":"testContext"}},
   "serviceName":"testServicename",
   "timestamp":"2020-11-26T10:32:28.818842Z",
   "serverIP":"testServerIP",
   "serverHostname":"testServerHostname",
   "attributes":{"messagesSent":"23"},
   "leafResourceId":"testLeafResourceId"
}"#;

/// The contract tests' error body, with `@class`.
const CONTRACT_ERROR: &str = r#"{"userId":"test-user-id","resourceId":"/test/resourceId",
 "context":{"@class":"uk.gov.gchq.palisade.Context","contents":{"purpose":"purpose"}},
 "serviceName":"user-service","timestamp":"2020-01-01","serverIP":"The IP of the server",
 "serverHostname":"The name of the server","attributes":{"messages":"5"},
 "error":{"cause":null,"stackTrace":[],"message":"exception message","suppressed":[],"localizedMessage":"exception message"}}"#;

async fn post(
    srv: &TestServer,
    route: &str,
    token: &str,
    request_token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut r = srv
        .http
        .post(srv.url(route))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = request_token {
        r = r.header("x-request-token", t);
    }
    let resp = r.send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
    )
}

/// The records `where` selects, parsed.
async fn select(srv: &TestServer, q: &str, filter: &str) -> Vec<Value> {
    srv.get(Some(q), &format!("/v1/query?where={filter}"))
        .await
        .text()
        .await
        .expect("text")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_examples_are_accepted_rejections_kept_and_bad_bodies_dead_lettered() {
    let errors = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    // The README's success example comes from "testServicename": allow it
    // beside Palisade's two services, as a deployment would its own.
    config.audit.success_services = vec![
        "filtered-resource-service".into(),
        "data-service".into(),
        "testServicename".into(),
    ];
    config.audit.error_dir = Some(errors.path().join("audit-errors"));
    let srv = TestServer::start_with(config).await;
    let realm = srv.realm("audit").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));

    // The two seed examples and the contract-test body: 202 accepted, with a receipt.
    for (route, body, token) in [
        ("/api/error", SEED_ERROR, "req-1"),
        ("/api/success", SEED_SUCCESS, "req-2"),
        ("/api/error", CONTRACT_ERROR, "req-3"),
    ] {
        let (status, v) = post(&srv, route, w, Some(token), body).await;
        assert_eq!(status, 202, "{route}: {v}");
        assert_eq!(v["status"], "accepted", "{v}");
        assert_eq!(v["reason"], Value::Null);
        assert_eq!(v["receipt"]["count"], 1, "{v}");
        assert!(s(&v["receipt"], "checkpoint").contains("sealog/audit"));
    }
    // A success from user-service: kept, marked rejected, answered rejected.
    let from_user = SEED_SUCCESS
        .replace("testServicename", "user-service")
        .replace("originalUserID", "user-svc-user");
    let (status, v) = post(&srv, "/api/success", w, Some("req-4"), &from_user).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["status"], "rejected");
    assert!(s(&v, "reason").contains("user-service"), "{v}");

    // Queryable by userId.
    let found = select(&srv, q, "userId=originalUserID").await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|r| r["kind"] == "audit"));
    assert_eq!(found[0]["audit"]["type"], "error");
    assert_eq!(found[0]["audit"]["request_token"], "req-1");
    assert_eq!(found[0]["context"]["class"], "uk.gov.gchq.palisade.Context");
    assert_eq!(found[1]["leafResourceId"], "testLeafResourceId");
    let contract = select(&srv, q, "userId=test-user-id").await;
    assert_eq!(contract.len(), 1);
    let contract = &contract[0];
    assert_eq!(
        contract["context"]["@class"],
        "uk.gov.gchq.palisade.Context"
    );
    let rejected = select(&srv, q, "userId=user-svc-user").await;
    assert_eq!(rejected.len(), 1);
    let rejected = &rejected[0];
    assert_eq!(rejected["audit"]["status"], "rejected");

    // A broken body: 400 naming the field, the raw bytes in Success-<time>.json
    // in the configured directory itself, and a dead-letter record.
    let broken = SEED_SUCCESS.replace("\"userId\":\"originalUserID\",", "");
    let (status, v) = post(&srv, "/api/success", w, Some("req-5"), &broken).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["field"], "userId", "{v}");
    assert!(s(&v, "error").contains("userId"));
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(errors.path().join("audit-errors"))
        .expect("error dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        name.starts_with("Success-") && name.ends_with("Z.json") && !name.contains(':'),
        "{name}"
    );
    assert_eq!(std::fs::read_to_string(&files[0]).expect("file"), broken);
    // Nothing in the parent directory.
    assert_eq!(
        std::fs::read_dir(errors.path()).expect("parent").count(),
        1,
        "only the audit-errors directory"
    );
    // Not JSON at all, on the error route: Error-<time>.json, never overwriting.
    for _ in 0..3 {
        let (status, v) = post(&srv, "/api/error", w, Some("req-6"), "{not json").await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["field"], Value::Null);
    }
    let errs = std::fs::read_dir(errors.path().join("audit-errors"))
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with("Error-")
        })
        .count();
    assert_eq!(errs, 3, "three bodies, three files");
    let dead = select(&srv, q, "kind=audit_dead_letter").await;
    assert_eq!(dead.len(), 4, "{dead:?}");
    assert_eq!(dead[0]["audit"]["field"], "userId");
    assert_eq!(dead[0]["body"], broken.as_str());
    assert!(s(&dead[0]["audit"], "file").ends_with(&name));

    // Wrong types, reserved keys and a non-object.
    for (body, field) in [
        (
            SEED_ERROR.replace(
                "\"attributes\":{\"messagesSent\":\"23\"}",
                "\"attributes\":\"23\"",
            ),
            Some("attributes"),
        ),
        (
            SEED_ERROR.replace("\"userId\":\"originalUserID\"", "\"userId\":null"),
            Some("userId"),
        ),
        (
            SEED_ERROR.replace("\"userId\"", "\"seq\":1,\"userId\""),
            Some("seq"),
        ),
        ("[1,2]".to_string(), None),
        (
            SEED_ERROR.replace(
                "\"serviceName\"",
                "\"serviceName\":\"evil-service\",\"serviceName\"",
            ),
            Some("serviceName"),
        ),
    ] {
        let (status, v) = post(&srv, "/api/error", w, Some("req-7"), &body).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["field"].as_str(), field, "{v}");
    }

    // No x-request-token: 400 with a JSON reason, nothing stored.
    let before = wait_records(srv.addr, q, 0).await.len();
    let (status, v) = post(&srv, "/api/error", w, None, SEED_ERROR).await;
    assert_eq!(status, 400, "{v}");
    assert!(s(&v, "error").contains("x-request-token"), "{v}");
    assert_eq!(wait_records(srv.addr, q, 0).await.len(), before);
    // Another realm's query token and no token at all.
    let (status, _) = post(&srv, "/api/error", q, Some("x"), SEED_ERROR).await;
    assert_eq!(status, 403);
    let r = srv
        .http
        .post(srv.url("/api/success"))
        .header("x-request-token", "t")
        .body(SEED_SUCCESS)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    // A content type Palisade's controller does not consume.
    let r = srv
        .http
        .post(srv.url("/api/success"))
        .bearer_auth(w)
        .header("x-request-token", "t")
        .header("content-type", "text/xml")
        .body(SEED_SUCCESS)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 415);

    // Spring's health shape, no token.
    let h: Value = srv
        .get(None, "/actuator/health")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(h, json!({"status": "UP"}));
    let m = crate::util::metrics(srv.addr).await;
    assert!(m.contains("sealog_audit_messages_total"), "{m}");
    assert!(m.contains("reason=\"audit_invalid\""), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_error_directory_keeps_bodies_in_the_log_only() {
    let errors = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.audit.error_dir = Some(errors.path().to_path_buf());
    config.audit.error_dir_max_bytes = 1000;
    let srv = TestServer::start_with(config).await;
    let realm = srv.realm("full").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));
    let body = format!(
        "{{\"not\": \"an audit message\", \"pad\": \"{}\"}}",
        "x".repeat(600)
    );
    for _ in 0..3 {
        let (status, v) = post(&srv, "/api/error", w, Some("t"), &body).await;
        assert_eq!(status, 400, "{v}");
    }
    let files = std::fs::read_dir(errors.path()).expect("dir").count();
    assert_eq!(files, 1, "one body fits in 1000 bytes, the others do not");
    let dead = select(&srv, q, "kind=audit_dead_letter").await;
    assert_eq!(dead.len(), 3, "every body is in the log");
    assert!(dead[0]["audit"]["file"].is_string());
    assert!(dead[1]["audit"]["file"].is_null() && dead[2]["audit"]["file"].is_null());
    assert_eq!(dead[2]["body"], body.as_str());
}
