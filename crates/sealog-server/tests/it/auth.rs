//! The auth matrix: every endpoint × {none, malformed, revoked, other
//! realm's, write, query, admin} → the expected status.

use reqwest::Method;

use crate::util::{ndjson, s, TestServer};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    None,
    Malformed,
    Revoked,
    OtherRealmQuery,
    Write,
    Query,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Write,
    Query,
    Admin,
    Nothing,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_against_every_kind_of_token() {
    let srv = TestServer::start().await;
    let a = srv.realm("alpha").await;
    let b = srv.realm("beta").await;
    assert_eq!(
        srv.ingest(s(&a, "write_token"), ndjson(0, 4))
            .await
            .status(),
        200
    );
    assert_eq!(
        srv.ingest(s(&b, "write_token"), "{\"only\":\"beta\"}\n")
            .await
            .status(),
        200
    );
    // A revoked token of alpha.
    let t: serde_json::Value = srv
        .http
        .post(srv.url("/v1/admin/tokens"))
        .bearer_auth(&srv.admin)
        .json(&serde_json::json!({"realm": "alpha", "scope": "query"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let revoked = s(&t, "token").to_string();
    let revoke = srv
        .http
        .delete(srv.url(&format!("/v1/admin/tokens/{}", s(&t, "id"))))
        .bearer_auth(&srv.admin)
        .send()
        .await
        .expect("send");
    assert_eq!(revoke.status(), 200);

    let endpoints: Vec<(Method, String, Option<&str>, Needs)> = vec![
        (
            Method::POST,
            "/v1/ingest".into(),
            Some("{\"m\":1}\n"),
            Needs::Write,
        ),
        (Method::GET, "/v1/query".into(), None, Needs::Query),
        (Method::GET, "/v1/checkpoint".into(), None, Needs::Query),
        (
            Method::GET,
            "/v1/proof/inclusion?seq=0&size=1".into(),
            None,
            Needs::Query,
        ),
        (
            Method::GET,
            "/v1/proof/consistency?from=1&to=1".into(),
            None,
            Needs::Query,
        ),
        (
            Method::GET,
            "/v1/tail?since_seq=0".into(),
            None,
            Needs::Query,
        ),
        (Method::GET, "/v1/admin/realms".into(), None, Needs::Admin),
        (Method::GET, "/v1/admin/tokens".into(), None, Needs::Admin),
        (
            Method::POST,
            "/v1/admin/tokens".into(),
            Some(r#"{"realm":"alpha","scope":"write"}"#),
            Needs::Admin,
        ),
        (Method::GET, "/health".into(), None, Needs::Nothing),
        (Method::GET, "/ready".into(), None, Needs::Nothing),
        (Method::GET, "/metrics".into(), None, Needs::Nothing),
        (Method::GET, "/v1/openapi.json".into(), None, Needs::Nothing),
    ];
    let whos = [
        Who::None,
        Who::Malformed,
        Who::Revoked,
        Who::OtherRealmQuery,
        Who::Write,
        Who::Query,
        Who::Admin,
    ];
    let mut checked = 0;
    for (method, path, body, needs) in &endpoints {
        for who in whos {
            let mut req = srv.http.request(method.clone(), srv.url(path));
            req = match who {
                Who::None => req,
                Who::Malformed => req.header("authorization", "Token abc"),
                Who::Revoked => req.bearer_auth(&revoked),
                Who::OtherRealmQuery => req.bearer_auth(s(&b, "query_token")),
                Who::Write => req.bearer_auth(s(&a, "write_token")),
                Who::Query => req.bearer_auth(s(&a, "query_token")),
                Who::Admin => req.bearer_auth(&srv.admin),
            };
            if let Some(b) = body {
                req = req
                    .header(
                        "content-type",
                        if b.starts_with('{') && b.contains("scope") {
                            "application/json"
                        } else {
                            "application/x-ndjson"
                        },
                    )
                    .body(b.to_string());
            }
            let resp = req.send().await.expect("send");
            let status = resp.status().as_u16();
            let expected = match (needs, who) {
                (Needs::Nothing, _) => 200,
                (_, Who::None | Who::Malformed | Who::Revoked) => 401,
                (Needs::Write, Who::Write) => 200,
                (Needs::Query, Who::Query | Who::OtherRealmQuery) => 200,
                (Needs::Admin, Who::Admin) => {
                    if *method == Method::POST {
                        201
                    } else {
                        200
                    }
                }
                _ => 403,
            };
            assert_eq!(status, expected, "{method} {path} as {who:?}");
            if status == 401 {
                let body: serde_json::Value = resp.json().await.expect("json error body");
                let msg = body["error"].as_str().expect("error");
                assert!(
                    !msg.contains("beta") && !msg.contains("alpha"),
                    "401 says nothing about realms: {msg}"
                );
            } else if who == Who::OtherRealmQuery && *path == "/v1/query" {
                // The realm is the token's: beta's token sees beta only.
                let text = resp.text().await.expect("text");
                assert!(
                    text.contains("\"realm\":\"beta\"") && !text.contains("alpha"),
                    "{text}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, endpoints.len() * whos.len());
    // Revocation takes effect on the next request.
    let w = s(&a, "write_token");
    let tokens: Vec<serde_json::Value> = srv
        .http
        .get(srv.url("/v1/admin/tokens?realm=alpha"))
        .bearer_auth(&srv.admin)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let id = tokens
        .iter()
        .find(|t| t["scope"] == "write" && t["revoked_at"].is_null())
        .and_then(|t| t["id"].as_str())
        .expect("a live write token")
        .to_string();
    assert_eq!(srv.ingest(w, "{\"x\":1}\n").await.status(), 200);
    let _ = srv
        .http
        .delete(srv.url(&format!("/v1/admin/tokens/{id}")))
        .bearer_auth(&srv.admin)
        .send()
        .await
        .expect("send");
    // The first live write token issued may not be `w`; revoke all of alpha's write tokens.
    for t in &tokens {
        if t["scope"] == "write" {
            let _ = srv
                .http
                .delete(srv.url(&format!(
                    "/v1/admin/tokens/{}",
                    t["id"].as_str().unwrap_or("")
                )))
                .bearer_auth(&srv.admin)
                .send()
                .await;
        }
    }
    assert_eq!(srv.ingest(w, "{\"x\":2}\n").await.status(), 401);
}
