//! The ingest front door of the HTTP API: admission against the server's
//! and the realm's shares, reading a body under size and time limits,
//! decompressing and parsing it off the async runtime with the one batch
//! parser ([`sealog_codec::batch`]), and queueing it on the realm's one
//! commit pipeline. `POST /v1/ingest` and `POST /log-events` differ only in
//! the [`Format`] they pass and the status of success.
//!
//! Fairness: a request is charged, before its body is read, one of its
//! realm's `max_realm_requests` slots and its declared size against both
//! the realm's `max_realm_inflight_bytes` and the server's
//! `max_inflight_bytes`, and holds them until its commit is answered. A
//! realm over its share answers 503 while other realms go on; a body that
//! has not arrived whole within `body_timeout_secs` answers 408 and frees
//! its charge, and a token revoked while the body arrived commits nothing.

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use sealog_codec::batch::{self, BatchError, Format};
use sealog_journal::Receipt;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::error::{ApiError, LineError};
use crate::realm::{CommitRequest, QueueError, RealmHandle};
use crate::state::AppState;

/// Most bad lines listed in a 400.
pub const MAX_LISTED: usize = 100;

/// Bytes past the limit read and discarded before answering 413, so a
/// client still sending an oversized body receives the answer instead of a
/// reset connection. A larger body is cut off.
const DRAIN_PAST_LIMIT: usize = 32 * 1024 * 1024;

/// What an admitted request holds until it is answered.
#[derive(Debug)]
pub struct Admission {
    _slot: OwnedSemaphorePermit,
    _realm_bytes: OwnedSemaphorePermit,
    _server_bytes: OwnedSemaphorePermit,
}

fn kib(bytes: usize, cap: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).clamp(1, cap.max(1))).unwrap_or(u32::MAX)
}

/// Charges a request to its realm's share and the server's budget.
///
/// # Errors
/// [`ApiError::Overloaded`] (503 with `Retry-After`) naming the share that
/// is used up; counted as a refusal.
pub fn admit(
    state: &AppState,
    realm: &RealmHandle,
    headers: &HeaderMap,
) -> Result<Admission, ApiError> {
    let limits = &state.config.limits;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // A gzipped body may inflate to the limit: charge the limit.
    let charge = match declared {
        Some(n) if !headers.contains_key(header::CONTENT_ENCODING) => n.min(limits.max_body_bytes),
        _ => limits.max_body_bytes,
    };
    let refuse = |reason: &'static str, why: &'static str| {
        state.metrics.refused(realm.name(), reason, 1);
        ApiError::Overloaded(why)
    };
    let slot = realm
        .ingest_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            refuse(
                "realm_requests",
                "this realm has too many ingest requests in flight",
            )
        })?;
    // A body larger than a whole budget waits for all of it rather than
    // being refused forever.
    let realm_share = (limits.max_realm_inflight_bytes.max(limits.max_body_bytes) / 1024).max(1);
    let realm_bytes = realm
        .inflight_kib
        .clone()
        .try_acquire_many_owned(kib(charge, realm_share))
        .map_err(|_| {
            refuse(
                "realm_inflight_bytes",
                "this realm has too many ingest bytes in flight",
            )
        })?;
    let server_bytes = state
        .inflight_kib
        .clone()
        .try_acquire_many_owned(kib(charge, (limits.max_inflight_bytes / 1024).max(1)))
        .map_err(|_| refuse("inflight_bytes", "too many ingest bytes in flight"))?;
    Ok(Admission {
        _slot: slot,
        _realm_bytes: realm_bytes,
        _server_bytes: server_bytes,
    })
}

/// Reads a body up to `limit` bytes, the whole of it within `within` (a
/// body trickled a byte at a time cannot hold its share for longer); over
/// the limit, drains up to [`DRAIN_PAST_LIMIT`] more and answers 413.
///
/// # Errors
/// [`ApiError::TooLarge`], [`ApiError::Timeout`], or
/// [`ApiError::BadRequest`] when the body cannot be read.
pub async fn read_body(body: Body, limit: usize, within: Duration) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + within;
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    let mut seen = 0usize;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                return Err(ApiError::Timeout(format!(
                    "the request body did not arrive within {} s",
                    within.as_secs()
                )))
            }
            Ok(None) => break,
            Ok(Some(c)) => {
                c.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?
            }
        };
        seen += chunk.len();
        if seen > limit {
            if seen > limit + DRAIN_PAST_LIMIT {
                break;
            }
            continue;
        }
        out.extend_from_slice(&chunk);
    }
    if seen > limit {
        return Err(ApiError::TooLarge { limit });
    }
    Ok(out)
}

/// The body's content encoding, checked before the body is read.
///
/// # Errors
/// [`ApiError::UnsupportedEncoding`] (415) for anything but identity or gzip.
pub fn encoding(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None | Some(Ok("identity")) => Ok(false),
        Some(Ok("gzip")) => Ok(true),
        Some(Ok(other)) => Err(ApiError::UnsupportedEncoding(format!(
            "unsupported content-encoding {other:?}; send identity or gzip"
        ))),
        Some(Err(_)) => Err(ApiError::UnsupportedEncoding(
            "content-encoding is not text; send identity or gzip".into(),
        )),
    }
}

/// Inflates (when `gzip`) and parses a body; run it off the runtime.
///
/// # Errors
/// 413 past `limit` after inflation, 400 for a bad body or bad lines.
pub fn decode(
    raw: Vec<u8>,
    gzip: bool,
    format: Format,
    limit: usize,
    max_line: usize,
) -> Result<batch::Batch, ApiError> {
    let body = if gzip {
        let mut out = Vec::new();
        // Read one byte past the limit to tell "at the limit" from "over".
        let mut dec = flate2::read::MultiGzDecoder::new(&raw[..]).take(limit as u64 + 1);
        dec.read_to_end(&mut out)
            .map_err(|e| ApiError::BadRequest(format!("gzip body does not decompress: {e}")))?;
        if out.len() > limit {
            return Err(ApiError::TooLarge { limit });
        }
        out
    } else {
        raw
    };
    // An NDJSON body that opens with `[` is a JSON array.
    let format = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') if format == Format::Ndjson => Format::JsonArray,
        _ => format,
    };
    batch::parse(body, format, max_line, MAX_LISTED).map_err(|e| match e {
        BatchError::BadLines { count, lines } => ApiError::BadLines {
            count,
            lines: lines
                .into_iter()
                .map(|b| LineError {
                    line: b.line,
                    reason: b.reason,
                })
                .collect(),
        },
        other => ApiError::BadRequest(other.to_string()),
    })
}

/// Queues parsed events on the realm's commit pipeline and waits for the
/// durable receipt.
///
/// # Errors
/// 503 when the queue is full or the server is closing; the commit's own
/// error otherwise.
pub async fn commit(
    state: &AppState,
    realm: &RealmHandle,
    parsed: batch::Batch,
) -> Result<Receipt, ApiError> {
    let (tx, rx) = oneshot::channel();
    let req = CommitRequest {
        buf: parsed.buf,
        events: parsed.events,
        reply: tx,
    };
    match realm.submit(req) {
        Ok(()) => {}
        Err(QueueError::Full) => {
            state.metrics.refused(realm.name(), "queue_full", 1);
            return Err(ApiError::Overloaded("commit queue is full"));
        }
        Err(QueueError::Closed) => return Err(ApiError::ShuttingDown),
    }
    match rx.await {
        Ok(Ok(receipt)) => Ok(receipt),
        Ok(Err(e)) => Err(match ApiError::from(e) {
            ApiError::RealmFailed { reason, .. } => ApiError::RealmFailed {
                realm: realm.name().to_string(),
                reason,
            },
            other => other,
        }),
        Err(_) => Err(ApiError::ShuttingDown),
    }
}

/// The whole door: admit, read, decode, re-check the token (it may have
/// been revoked while the body arrived), commit. Refusals are counted by
/// reason.
///
/// # Errors
/// Any [`ApiError`] of the steps.
pub async fn ingest(
    state: &AppState,
    grant: &mut crate::auth::Grant,
    realm: &RealmHandle,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<(Receipt, u64), ApiError> {
    let limits = &state.config.limits;
    let gzip = encoding(headers)?;
    let _admission = admit(state, realm, headers)?;
    let raw = read_body(
        body,
        limits.max_body_bytes,
        Duration::from_secs(limits.body_timeout_secs.max(1)),
    )
    .await
    .inspect_err(|_| state.metrics.refused(realm.name(), "body", 1))?;
    let (limit, max_line) = (limits.max_body_bytes, limits.max_line_bytes);
    let parsed = tokio::task::spawn_blocking(move || decode(raw, gzip, format, limit, max_line))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let parsed = parsed.inspect_err(|e| {
        if let ApiError::BadLines { count, .. } = e {
            state
                .metrics
                .refused(realm.name(), "invalid_line", *count as u64);
        }
    })?;
    if !grant.still_valid(state) {
        state.metrics.refused(realm.name(), "token_revoked", 1);
        return Err(ApiError::BadToken);
    }
    let skipped = parsed.skipped;
    if skipped > 0 {
        metrics::counter!("sealog_skipped_lines_total", "realm" => state.metrics.label(realm.name()))
            .increment(skipped);
    }
    Ok((commit(state, realm, parsed).await?, skipped))
}
