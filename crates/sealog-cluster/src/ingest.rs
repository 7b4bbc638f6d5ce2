//! The ingest role: `POST /v1/ingest` with a realm's write token. The
//! batch is validated here, produced to the ingest topic keyed by realm,
//! and acknowledged with the receipt a writer sends once it has committed
//! it (a PostgreSQL notice on [`RECEIPTS_CHANNEL`]). No receipt within the
//! timeout, a broker that does not take the batch, or a database that
//! cannot check the token: 503 with `Retry-After`, never a 2xx.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use postgres::fallible_iterator::FallibleIterator;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use sealog_journal::Receipt;
use sealog_pg::PgRealms;
use sealog_store::{RealmStore, Scope, StoreError};
use serde_json::json;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{refuse, Cluster, Notice, RECEIPTS_CHANNEL, REQUEST_HEADER};

/// Largest batch accepted.
const MAX_BODY: usize = 16 << 20;

/// Batches waiting for their receipt, by request id.
type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Receipt>>>>;

/// Hands each message's delivery report to the request that sent it.
struct Delivery;

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = Box<oneshot::Sender<Result<(), String>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, tx: Self::DeliveryOpaque) {
        let _ = tx.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.to_string()));
    }
}

struct Node {
    c: Cluster,
    producer: ThreadedProducer<Delivery>,
    realms: Mutex<Option<PgRealms>>,
    waiters: Waiters,
    listening: Arc<AtomicBool>,
    timeout: Duration,
}

/// Serves the ingest role on `listener` until `stop`; receipts wait at
/// most `timeout` for a writer.
///
/// # Errors
/// The producer cannot be made; the listener fails.
pub async fn serve(
    c: Cluster,
    listener: tokio::net::TcpListener,
    timeout: Duration,
    stop: CancellationToken,
) -> Result<(), String> {
    let producer: ThreadedProducer<Delivery> = ClientConfig::new()
        .set("bootstrap.servers", &c.kafka)
        .set("client.id", &c.node)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "0")
        // One message per record batch: a consumer resuming inside a batch
        // is then never handed the next one instead (tansu 0.6 does that).
        .set("batch.num.messages", "1")
        .set("message.timeout.ms", "5000")
        .set("message.max.bytes", (MAX_BODY + (64 << 10)).to_string())
        .create_with_context(Delivery)
        .map_err(|e| format!("making the ingest node's Kafka producer: {e}"))?;
    let waiters: Waiters = Arc::default();
    let listening = Arc::new(AtomicBool::new(false));
    {
        let (url, waiters, listening, stop) = (
            c.postgres.clone(),
            waiters.clone(),
            listening.clone(),
            stop.clone(),
        );
        std::thread::Builder::new()
            .name("sealog-receipts".into())
            .spawn(move || listen(&url, &waiters, &listening, &stop))
            .map_err(|e| e.to_string())?;
    }
    let node = Arc::new(Node {
        c,
        producer,
        realms: Mutex::new(None),
        waiters,
        listening,
        timeout,
    });
    let app = Router::new()
        .route("/v1/ingest", post(ingest))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .layer(DefaultBodyLimit::disable())
        .with_state(node);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| e.to_string())
}

async fn ready(State(n): State<Arc<Node>>) -> Response {
    if n.listening.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "not listening for writers' receipts: PostgreSQL is unreachable".into(),
        )
    }
}

/// Dispatches writers' notices to the waiting requests, reconnecting
/// while PostgreSQL is away.
fn listen(url: &str, waiters: &Waiters, listening: &AtomicBool, stop: &CancellationToken) {
    while !stop.is_cancelled() {
        let mut client = match sealog_pg::connect_reader(url) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "receipts listener cannot reach PostgreSQL");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {RECEIPTS_CHANNEL}")) {
            tracing::warn!(error = %e, "LISTEN failed");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        listening.store(true, Ordering::SeqCst);
        let mut notes = client.notifications();
        loop {
            if stop.is_cancelled() {
                return;
            }
            // A new iterator each time: one whose timeout fired never
            // waits again (postgres 0.19's TimeoutIter does not re-arm it).
            match notes.timeout_iter(Duration::from_millis(500)).next() {
                Ok(Some(n)) => {
                    let Ok(notice) = serde_json::from_str::<Notice>(n.payload()) else {
                        continue;
                    };
                    let key = format!("{}\n{}", notice.receipt.realm, notice.id);
                    let tx = waiters.lock().ok().and_then(|mut w| w.remove(&key));
                    if let Some(tx) = tx {
                        let _ = tx.send(notice.receipt);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "receipts listener lost PostgreSQL");
                    break;
                }
            }
        }
        listening.store(false, Ordering::SeqCst);
    }
}

/// The bearer (or bare, logshuttle style) token of a request.
fn token_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    Some(v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string())
}

/// A client's `Idempotency-Key`: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .map_err(|_| "Idempotency-Key is not ASCII".to_string())?;
    let ok = (1..=128).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(Some(k.to_string()))
    } else {
        Err("Idempotency-Key must be 1 to 128 of A-Z a-z 0-9 . _ : -".into())
    }
}

/// Checks a writer's notice before it is passed on as a receipt: the
/// token's realm, the batch's record count, and the checkpoint signed by
/// the realm's key (anyone who can reach the database can `NOTIFY`).
fn check_receipt(n: &Node, realm: &str, count: u64, r: &Receipt) -> Result<(), String> {
    if r.realm != realm || r.count != count || r.last_seq + 1 != r.first_seq + count {
        return Err(format!(
            "a notice for this batch names realm {} and {} records at {}..={}, not {count} records of realm {realm}",
            r.realm, r.count, r.first_seq, r.last_seq
        ));
    }
    let name = sealog_event::RealmName::new(realm).map_err(|e| e.to_string())?;
    let mut realms = n
        .realms
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if realms.is_none() {
        *realms = Some(PgRealms::connect_reader(&n.c.postgres).map_err(|e| e.to_string())?);
    }
    let key = realms
        .as_ref()
        .expect("connected above")
        .verifier_key(&name)
        .map_err(|e| e.to_string())?;
    let cp = key
        .verify(&r.checkpoint)
        .map_err(|e| format!("the receipt's checkpoint: {e}"))?;
    if cp.size <= r.last_seq {
        return Err(format!(
            "the receipt's checkpoint is for {} records, which does not cover seq {}",
            cp.size, r.last_seq
        ));
    }
    Ok(())
}

async fn ingest(
    State(n): State<Arc<Node>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some(token) = token_of(&headers) else {
        return refuse(StatusCode::UNAUTHORIZED, "a write token is required".into());
    };
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    // Nothing is produced that could not be acknowledged.
    if !n.listening.load(Ordering::SeqCst) {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "not listening for writers' receipts (PostgreSQL unreachable); nothing was stored"
                .into(),
        );
    }
    let node = n.clone();
    let auth = tokio::task::spawn_blocking(move || {
        let mut realms = node
            .realms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if realms.is_none() {
            *realms = Some(PgRealms::connect_reader(&node.c.postgres).map_err(StoreError::from)?);
        }
        let r = realms
            .as_ref()
            .expect("connected above")
            .authenticate(&token);
        if matches!(r, Err(StoreError::Journal(_))) {
            // The connection is made again next time.
            *realms = None;
        }
        r
    })
    .await;
    let grant = match auth {
        Ok(Ok(t)) => t,
        Ok(Err(StoreError::BadToken)) => {
            return refuse(StatusCode::UNAUTHORIZED, "unknown or revoked token".into())
        }
        Ok(Err(e)) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check the token: {e}"),
            )
        }
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if grant.scope != Scope::Write {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "a {} token cannot write; use the realm's write token",
                grant.scope
            ),
        );
    }
    // The body is read only for a caller with a write token, and within
    // a deadline (a slow sender does not hold a connection for ever).
    let body: Bytes = match tokio::time::timeout(
        Duration::from_secs(30),
        axum::body::to_bytes(body, MAX_BODY),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body could not be read whole (at most {MAX_BODY} bytes): {e}"),
            )
        }
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the body took over 30 s to arrive".into(),
            )
        }
    };
    let count = match sealog_codec::batch::ndjson_events(&body, sealog_event::MAX_EVENT_BYTES, 10) {
        Ok(r) if r.is_empty() => {
            return refuse(StatusCode::BAD_REQUEST, "body holds no events".into())
        }
        Ok(r) => r.len() as u64,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.to_string(), "detail": format!("{e:?}") })),
            )
                .into_response()
        }
    };
    let id = key.unwrap_or_else(|| {
        let mut b = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        hex::encode(b)
    });
    let (tx, rx) = oneshot::channel();
    // Waiters are per realm: one realm's notice never reaches another's.
    let waiter = format!("{}\n{id}", grant.realm);
    if let Ok(mut w) = n.waiters.lock() {
        if w.contains_key(&waiter) {
            return refuse(
                StatusCode::CONFLICT,
                "a batch with this Idempotency-Key is in flight on this node".into(),
            );
        }
        w.insert(waiter.clone(), tx);
    }
    let forget = |n: &Node| {
        if let Ok(mut w) = n.waiters.lock() {
            w.remove(&waiter);
        }
    };
    let (dtx, drx) = oneshot::channel();
    let record = BaseRecord::with_opaque_to(&n.c.topic, Box::new(dtx))
        .key(grant.realm.as_str())
        .payload(body.as_ref())
        .headers(OwnedHeaders::new().insert(Header {
            key: REQUEST_HEADER,
            value: Some(id.as_str()),
        }));
    let delivered = match n.producer.send(record) {
        Ok(()) => match tokio::time::timeout(Duration::from_secs(10), drx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) | Err(_) => Err("no delivery report".into()),
        },
        Err((e, _)) => Err(e.to_string()),
    };
    drop(body);
    if let Err(e) = delivered {
        forget(&n);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Kafka did not confirm the batch ({e}); it may still be stored, so retry with an Idempotency-Key to store it once"),
        );
    }
    match tokio::time::timeout(n.timeout, rx).await {
        Ok(Ok(receipt)) => {
            let node = n.clone();
            let realm = grant.realm.clone();
            let checked = tokio::task::spawn_blocking(move || {
                check_receipt(&node, &realm, count, &receipt).map(|()| receipt)
            })
            .await;
            match checked {
                Ok(Ok(receipt)) => (StatusCode::OK, Json(receipt)).into_response(),
                Ok(Err(e)) => {
                    tracing::error!(realm = %grant.realm, error = %e, "a notice failed its checks; not acknowledged");
                    refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("the writer's receipt does not check: {e}"),
                    )
                }
                Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        _ => {
            forget(&n);
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no writer committed the batch within {} s (writers or PostgreSQL away); it may still be committed later: retry with an Idempotency-Key to store it once",
                    n.timeout.as_secs()
                ),
            )
        }
    }
}
