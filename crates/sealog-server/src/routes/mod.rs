//! The HTTP routes and the layers around them.

pub mod admin;
pub mod audit;
pub mod digests;
pub mod drains;
pub mod forensic;
pub mod ingest;
pub mod logharbour;
pub mod logharbour_web;
pub mod ops;
pub mod read;

use std::sync::Arc;

use axum::error_handling::HandleErrorLayer;
use axum::routing::{delete, get, post};
use axum::Router;
use tower::ServiceBuilder;

use crate::error::ApiError;
use crate::state::AppState;

/// The router with every route and the overload layers.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.limits.max_concurrency.max(1);
    Router::new()
        .route("/v1/ingest", post(ingest::ingest))
        .route("/log-events", post(ingest::log_events))
        .route("/v1/query", get(read::query))
        .route("/v1/checkpoint", get(read::checkpoint))
        .route("/v1/proof/inclusion", get(read::inclusion))
        .route("/v1/proof/consistency", get(read::consistency))
        .route("/v1/proof/range", get(read::range))
        .route("/v1/tail", get(read::tail))
        .route("/v1/stats", get(read::stats))
        .route("/v1/logs", get(logharbour::logs))
        .route("/v1/changes", get(logharbour::changes))
        .route("/v1/logs-for-ip", get(logharbour::logs_for_ip))
        .route("/v1/sets", get(logharbour::sets))
        .route("/v1/apps", get(logharbour::apps))
        .route("/v1/unusual-ips", get(logharbour::unusual_ips))
        .route("/api/v1/highprilog", post(logharbour_web::highprilog))
        .route("/api/v1/activitylog", post(logharbour_web::activitylog))
        .route("/api/v1/debuglog", post(logharbour_web::debuglog))
        .route("/api/v1/datachange", post(logharbour_web::datachange))
        .route("/api/v1/getset", post(logharbour_web::getset))
        .route("/api/v1/getunusualips", post(logharbour_web::getunusualips))
        .route("/api/v1/getapps", get(logharbour_web::getapps))
        .route(
            "/v1/admin/realms",
            get(admin::list_realms).post(admin::create_realm),
        )
        .route(
            "/v1/admin/tokens",
            get(admin::list_tokens).post(admin::issue_token),
        )
        .route("/v1/admin/tokens/{id}", delete(admin::revoke_token))
        .route("/v1/admin/verify", post(admin::verify))
        .route("/v1/admin/retention", post(admin::retention))
        .route(
            "/apps/{key}/log-drains",
            get(drains::list_app).post(drains::create_app),
        )
        .route(
            "/apps/{key}/log-drains/{id}",
            get(drains::get_app).delete(drains::delete_app),
        )
        .route(
            "/sites/{site}/log-drains",
            get(drains::list_site).post(drains::create_site),
        )
        .route(
            "/sites/{site}/log-drains/{id}",
            get(drains::get_site).delete(drains::delete_site),
        )
        .route(
            "/v1/drains",
            get(drains::list_all).post(drains::create_filter),
        )
        .route(
            "/v1/drains/{id}",
            get(drains::get_any).delete(drains::delete_any),
        )
        .route("/log-sessions", post(drains::create_session))
        .route("/log-sessions/{id}", get(drains::read_session))
        .route("/octhc", get(drains::octhc))
        .route("/api/success", post(audit::success))
        .route("/api/error", post(audit::error))
        .route("/actuator/health", get(audit::actuator_health))
        .route("/sidecars", get(forensic::sidecars))
        .route("/inquiry", post(forensic::create))
        .route("/inquiry/{id}", get(forensic::get))
        .route("/v1/digests", get(digests::get).post(digests::post))
        .route(
            "/vpcflow/",
            get(digests::upstream_get).post(digests::upstream_post),
        )
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .route("/ui", get(crate::console::index))
        .route("/ui/console.js", get(crate::console::script))
        .route("/ui/console.css", get(crate::console::style))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(
            ServiceBuilder::new()
                // Over the concurrency limit: refuse at once, never queue unboundedly.
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Overloaded("too many requests in flight")
                }))
                .load_shed()
                .concurrency_limit(limit),
        )
        .with_state(state)
}
