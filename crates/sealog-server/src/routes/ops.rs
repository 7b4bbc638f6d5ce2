//! `/health`, `/ready`, `/metrics`: with `/v1/openapi.json`, the only routes
//! that need no token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

/// Liveness: the process answers.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: no realm failed to open or failed the verifier, every open
/// journal accepts writes, and the data directory is writable. A 503 names
/// every realm that is not. Realms still being opened in the background
/// after a start are not waited for (a request opens one on the spot); one
/// that fails to open is named as soon as it is found.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let st = state.clone();
    let problem = tokio::task::spawn_blocking(move || -> Option<String> {
        if st.shutdown.is_cancelled() {
            return Some("shutting down".into());
        }
        let (root, fs) = {
            let dd = st.data.lock().ok()?;
            (dd.root().to_path_buf(), dd.vfs().clone())
        };
        let mut problems = Vec::new();
        let probe = root.join(".ready-probe");
        let wrote = fs
            .open(
                &probe,
                sealog_journal::fs::OpenHow::CreateTruncate { mode: 0o600 },
            )
            .and_then(|f| f.write_at(b"ok", 0))
            .and_then(|_| fs.remove_file(&probe));
        if let Err(e) = wrote {
            let _ = fs.remove_file(&probe);
            problems.push(format!("data directory is not writable: {e}"));
        }
        if let Ok(failed) = st.failed.read() {
            let mut names: Vec<_> = failed.iter().collect();
            names.sort();
            for (name, reason) in names {
                problems.push(format!("realm {name} failed to open: {reason}"));
            }
        }
        let realms = st.realms.read().ok()?;
        let mut names: Vec<_> = realms.keys().cloned().collect();
        names.sort();
        for name in names {
            let Some(r) = realms.get(&name) else { continue };
            if let Some(reason) = r.failure() {
                problems.push(format!("realm {name} is failed: {reason}"));
                continue;
            }
            match r.journal().read() {
                Ok(j) => {
                    if let Some(p) = j.poison() {
                        problems.push(format!(
                            "realm {name}: journal refuses writes after a failure ({}){}",
                            p.cause,
                            if p.storage_full {
                                "; storage is full"
                            } else {
                                ""
                            }
                        ));
                    }
                }
                Err(_) => problems.push(format!("realm {name}: journal lock poisoned")),
            }
        }
        problems.extend(st.kafka.problems());
        problems.extend(st.witnessing.problems());
        if !problems.is_empty() {
            return Some(problems.join("; "));
        }
        None
    })
    .await
    .unwrap_or_else(|e| Some(e.to_string()));
    match problem {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(p) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "error": p})),
        )
            .into_response(),
    }
}

/// Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
