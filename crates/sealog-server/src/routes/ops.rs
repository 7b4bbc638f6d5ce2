//! `/health`, `/ready`, `/metrics`: the only routes that need no token.

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

/// Readiness: every journal accepts writes and the data directory is writable.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let st = state.clone();
    let problem = tokio::task::spawn_blocking(move || -> Option<String> {
        if st.shutdown.is_cancelled() {
            return Some("shutting down".into());
        }
        let root = st.data.lock().ok()?.root().to_path_buf();
        let probe = root.join(".ready-probe");
        if let Err(e) = std::fs::write(&probe, b"ok").and_then(|_| std::fs::remove_file(&probe)) {
            return Some(format!("data directory is not writable: {e}"));
        }
        let realms = st.realms.read().ok()?;
        for (name, r) in realms.iter() {
            match r.journal().read() {
                Ok(j) if j.is_poisoned() => {
                    return Some(format!(
                        "realm {name}: journal refuses writes after a failure"
                    ))
                }
                Ok(_) => {}
                Err(_) => return Some(format!("realm {name}: journal lock poisoned")),
            }
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
