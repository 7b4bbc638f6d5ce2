//! sealog's scale-out roles (SPEC.md §Scale-out): Kafka as the bus,
//! PostgreSQL as the shared store, one sequencer per realm.
//!
//! - **ingest** ([`ingest`]): takes `POST /v1/ingest` with a realm's write
//!   token, validates the batch, produces it to the ingest topic keyed by
//!   realm, and answers with a receipt only once a writer has committed
//!   the records (it listens for the writer's notice); no notice within
//!   the timeout is a 503, never an acknowledgement.
//! - **writer** ([`writer`]): a consumer group over the ingest topic; the
//!   owner of a partition sequences and signs its realms' records, and
//!   commits records, tree hashes, checkpoint, its Kafka positions and the
//!   notices in one PostgreSQL transaction. A commit applies only if the
//!   realm's size and owner epoch and the partition's position are what
//!   this writer last saw, so a paused or cut-off old owner cannot fork a
//!   log or store a message twice.
//! - **query** ([`query`]): `GET /v1/query`, `/v1/checkpoint` and the
//!   inclusion and consistency proofs from PostgreSQL with the realm's
//!   query token; it reads a realm again when the writers' notices say it
//!   moved.

pub mod ingest;
pub mod query;
pub mod writer;

use serde::{Deserialize, Serialize};

/// Where a cluster node finds the bus and the store.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Kafka bootstrap servers.
    pub kafka: String,
    /// The PostgreSQL store.
    pub postgres: String,
    /// The topic ingest nodes produce to and writers consume.
    pub topic: String,
    /// This node's name (in logs, and as a realm's owner).
    pub node: String,
}

/// The PostgreSQL channel writers notify committed batches on.
pub const RECEIPTS_CHANNEL: &str = "sealog_receipts";

/// The Kafka header naming a batch (the ingest node's request).
pub const REQUEST_HEADER: &str = "sealog-request";

/// What a writer tells the ingest nodes when a batch is committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notice {
    /// The batch's request id.
    pub id: String,
    /// Its receipt.
    pub receipt: sealog_journal::Receipt,
}

/// An error answer: `{"error": message}` with `status`, and `Retry-After`
/// on a 503 (the cluster is missing a part for now; the client retries).
pub(crate) fn refuse(status: axum::http::StatusCode, message: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut r = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
    if status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    r
}
