//! `POST /v1/ingest`: NDJSON or a JSON array, optionally gzipped; a receipt
//! once the commit is durable; a batch with any bad line is refused whole.

use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use sealog_journal::Receipt;
use sealog_store::Scope;
use tokio::sync::oneshot;

use crate::auth::Caller;
use crate::error::{ApiError, LineError};
use crate::realm::{CommitRequest, QueueError};
use crate::state::AppState;

/// Most line errors listed in a 400.
const MAX_LISTED: usize = 100;

/// Events parsed out of a request body, ready to commit.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The bytes the events live in.
    pub buf: Vec<u8>,
    /// Each event's range in `buf` and its own time.
    pub events: Vec<(Range<usize>, Option<i64>)>,
}

/// Parses and validates a whole body. NDJSON lines are numbered from 1;
/// JSON array elements are numbered from 0.
///
/// # Errors
/// [`ApiError::BadLines`] listing the bad lines, or [`ApiError::BadRequest`].
pub fn parse_body(body: Vec<u8>, json_array: bool, max_line: usize) -> Result<Parsed, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if json_array || first == Some(b'[') {
        return parse_array(&body, max_line);
    }
    let mut parsed = Parsed {
        events: Vec::new(),
        buf: Vec::new(),
    };
    let mut bad = Vec::new();
    let mut count = 0usize;
    let mut start = 0usize;
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        let end = start + line.len();
        let range = trim(&body, start..end);
        start = end + 1;
        if range.is_empty() {
            continue;
        }
        let bytes = &body[range.clone()];
        let res = if bytes.len() > max_line {
            Err(format!(
                "line is {} bytes, over the limit of {max_line}",
                bytes.len()
            ))
        } else {
            sealog_event::validate(bytes).map_err(|e| e.to_string())
        };
        match res {
            Ok(info) => parsed.events.push((range, info.time_ns)),
            Err(reason) => {
                count += 1;
                if bad.len() < MAX_LISTED {
                    bad.push(LineError {
                        line: n + 1,
                        reason,
                    });
                }
            }
        }
    }
    if count > 0 {
        return Err(ApiError::BadLines { count, lines: bad });
    }
    if parsed.events.is_empty() {
        return Err(ApiError::BadRequest("body holds no events".into()));
    }
    parsed.buf = body;
    Ok(parsed)
}

fn trim(body: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && body[r.start].is_ascii_whitespace() {
        r.start += 1;
    }
    while r.end > r.start && body[r.end - 1].is_ascii_whitespace() {
        r.end -= 1;
    }
    r
}

fn parse_array(body: &[u8], max_line: usize) -> Result<Parsed, ApiError> {
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not a JSON array of objects: {e}")))?;
    let mut parsed = Parsed::default();
    let mut bad = Vec::new();
    let mut count = 0;
    for (i, item) in items.iter().enumerate() {
        let at = parsed.buf.len();
        sealog_event::compact_json(item.get().as_bytes(), &mut parsed.buf);
        let bytes = &parsed.buf[at..];
        let res = if bytes.len() > max_line {
            Err(format!(
                "element is {} bytes, over the limit of {max_line}",
                bytes.len()
            ))
        } else {
            sealog_event::validate(bytes).map_err(|e| e.to_string())
        };
        match res {
            Ok(info) => parsed.events.push((at..parsed.buf.len(), info.time_ns)),
            Err(reason) => {
                count += 1;
                if bad.len() < MAX_LISTED {
                    bad.push(LineError { line: i, reason });
                }
            }
        }
    }
    if count > 0 {
        return Err(ApiError::BadLines { count, lines: bad });
    }
    if parsed.events.is_empty() {
        return Err(ApiError::BadRequest("body holds no events".into()));
    }
    Ok(parsed)
}

/// Bytes past the limit read and discarded before answering 413, so a
/// client still sending an oversized body receives the answer instead of a
/// reset connection. A larger body is cut off.
const DRAIN_PAST_LIMIT: usize = 32 * 1024 * 1024;

/// Reads the body up to `limit` bytes; over it, drains up to
/// [`DRAIN_PAST_LIMIT`] more and reports 413.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
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

/// Reads the body up to `limit` bytes after decompression.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, ApiError> {
    let raw = read_limited(body, limit).await?;
    match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None | Some("identity") => Ok(raw),
        Some("gzip") => {
            let mut out = Vec::new();
            // Read one byte past the limit to tell "at the limit" from "over".
            let mut dec = flate2::read::MultiGzDecoder::new(&raw[..]).take(limit as u64 + 1);
            dec.read_to_end(&mut out)
                .map_err(|e| ApiError::BadRequest(format!("gzip body does not decompress: {e}")))?;
            if out.len() > limit {
                return Err(ApiError::TooLarge { limit });
            }
            Ok(out)
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "unsupported content-encoding {other:?}; send identity or gzip"
        ))),
    }
}

/// Queues parsed events for commit and waits for the durable receipt.
async fn commit(
    state: &AppState,
    realm: &crate::realm::RealmHandle,
    parsed: Parsed,
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

/// `POST /log-events` (logshuttle): fluentd/Kubernetes `LogSpec` JSON, one
/// object or one per line; each gains `app`, `space`, `dyno` and
/// `proc_type`; 201 with the receipt once durable.
pub async fn log_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(axum::http::StatusCode, Json<Receipt>), ApiError> {
    let realm_name = caller.realm_for(Scope::Write, "write")?.to_string();
    let realm = state.realm(&realm_name)?;
    let limits = &state.config.limits;
    let body = read_body(body, &headers, limits.max_body_bytes).await?;
    let parsed = tokio::task::spawn_blocking(move || -> Result<Parsed, ApiError> {
        let mut p = Parsed::default();
        let mut bad = Vec::new();
        let mut count = 0;
        for (n, line) in body.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match sealog_codec::logshuttle::fluentd(line) {
                Ok((ev, t)) => {
                    let at = p.buf.len();
                    p.buf.extend_from_slice(&ev);
                    p.events.push((at..p.buf.len(), t));
                }
                Err(e) => {
                    count += 1;
                    if bad.len() < MAX_LISTED {
                        bad.push(LineError {
                            line: n + 1,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        if count > 0 {
            return Err(ApiError::BadLines { count, lines: bad });
        }
        if p.events.is_empty() {
            return Err(ApiError::BadRequest("body holds no log events".into()));
        }
        Ok(p)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let receipt = commit(&state, &realm, parsed).await?;
    Ok((axum::http::StatusCode::CREATED, Json(receipt)))
}

/// The handler.
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let realm_name = caller.realm_for(Scope::Write, "write")?.to_string();
    let realm = state.realm(&realm_name)?;
    let limits = &state.config.limits;
    // Charge the body against the in-flight budget before reading it, and
    // hold the charge until the commit is answered.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let gzipped = headers.contains_key(header::CONTENT_ENCODING);
    let charge = match declared {
        Some(n) if !gzipped => n.min(limits.max_body_bytes),
        _ => limits.max_body_bytes,
    };
    // A body larger than the whole budget waits for all of it rather than
    // being refused forever.
    let budget_kib = (limits.max_inflight_bytes / 1024).max(1);
    let kib = u32::try_from(charge.div_ceil(1024).clamp(1, budget_kib)).unwrap_or(u32::MAX);
    let _permit = match state.inflight_kib.clone().try_acquire_many_owned(kib) {
        Ok(p) => p,
        Err(_) => {
            state.metrics.refused(&realm_name, "inflight_bytes", 1);
            return Err(ApiError::Overloaded("too many ingest bytes in flight"));
        }
    };
    let body = match read_body(body, &headers, limits.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            state.metrics.refused(&realm_name, "body", 1);
            return Err(e);
        }
    };
    let json_array = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let max_line = limits.max_line_bytes;
    let parsed = tokio::task::spawn_blocking(move || parse_body(body, json_array, max_line))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            if let ApiError::BadLines { count, .. } = &e {
                state
                    .metrics
                    .refused(&realm_name, "invalid_line", *count as u64);
            }
            return Err(e);
        }
    };
    Ok(Json(commit(&state, &realm, parsed).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_bad_line_is_named_and_nothing_passes() {
        let body = b"{\"a\":1}\n{\"b\":2}\n{oops}\n{\"d\":4}\n{\"e\":5}\n".to_vec();
        match parse_body(body, false, 1000) {
            Err(ApiError::BadLines { count, lines }) => {
                assert_eq!(count, 1);
                assert_eq!(lines[0].line, 3);
            }
            other => panic!("expected BadLines, got {other:?}"),
        }
    }

    #[test]
    fn arrays_are_compacted_and_kept_in_order() {
        let body = b"[ {\"b\" : 1,\n \"a\": \"x y\\\" z\"}, {\"c\":[1, 2]} ]".to_vec();
        let p = parse_body(body, true, 1000).expect("valid");
        let lines: Vec<&[u8]> = p.events.iter().map(|(r, _)| &p.buf[r.clone()]).collect();
        assert_eq!(lines[0], br#"{"b":1,"a":"x y\" z"}"#);
        assert_eq!(lines[1], br#"{"c":[1,2]}"#);
        match parse_body(b"[{\"a\":1}, 5]".to_vec(), true, 1000) {
            Err(ApiError::BadLines { lines, .. }) => assert_eq!(lines[0].line, 1),
            other => panic!("expected BadLines, got {other:?}"),
        }
    }

    #[test]
    fn long_lines_and_empty_bodies() {
        let long = format!("{{\"a\":\"{}\"}}\n", "x".repeat(100));
        assert!(matches!(
            parse_body(long.into_bytes(), false, 50),
            Err(ApiError::BadLines { .. })
        ));
        assert!(matches!(
            parse_body(b"\n \n".to_vec(), false, 50),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_body(b"[1,".to_vec(), false, 50),
            Err(ApiError::BadRequest(_))
        ));
    }
}
