//! Reads for query-token holders: query, checkpoint, proofs, live tail.
//!
//! Query answers NDJSON of leaf lines, byte for byte as stored, with
//! headers that let a client prove what the answer covers:
//!
//! | header | meaning |
//! |---|---|
//! | `x-sealog-tree-size` | the realm's size when the query ran; `GET /v1/checkpoint` or a receipt signs it |
//! | `x-sealog-scanned` | the seq range `lo..hi` examined; every record in it not returned did not match |
//! | `x-sealog-next-cursor` | present when the limit stopped the scan: pass as `cursor` for the next page |

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures_util::stream::{self, Stream, StreamExt};
use sealog_query::{Filter, Order, Scan};
use sealog_store::Scope;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Most records one query returns.
pub const MAX_LIMIT: u64 = 100_000;

pub(crate) fn params(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(url_decode_pairs).unwrap_or_default()
}

/// Splits `a=1&b=2` into decoded pairs (`+` is a space, `%XX` a byte).
fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = |c: u8| (c as char).to_digit(16);
                    match (hex(b[i + 1]), hex(b[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push((h * 16 + l) as u8);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

pub(crate) fn parse_u64(name: &str, v: &str) -> Result<u64, ApiError> {
    v.parse().map_err(|_| {
        ApiError::BadRequest(format!("{name} must be a non-negative integer, got {v:?}"))
    })
}

/// Builds a filter from `from`, `to`, `q` and repeated `where=k:v`.
fn filter_from(params: &[(String, String)]) -> Result<Filter, ApiError> {
    let mut f = Filter::default();
    for (k, v) in params {
        f = match k.as_str() {
            "from" => f
                .with_from(v)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
            "to" => f
                .with_to(v)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
            "q" => f.with_text(v),
            "where" => f
                .with_where(v)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
            _ => f,
        };
    }
    Ok(f)
}

/// The journal's block index and size now, for a scan that reads blocks
/// one at a time without holding the journal.
fn snapshot(
    journal: &crate::realm::SharedLog,
) -> Result<(Vec<sealog_journal::BlockMeta>, u64), ApiError> {
    let j = journal
        .read()
        .map_err(|_| ApiError::Internal("journal lock poisoned".into()))?;
    Ok((j.blocks().to_vec(), j.size()))
}

/// `GET /v1/query?from&to&q&where=k:v&limit&cursor&order=oldest|newest`
pub async fn query(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Query, "read")?)
        .await?;
    let ps = params(raw.as_deref());
    let filter = filter_from(&ps)?;
    let mut limit = 1000u64;
    let mut order = Order::Oldest;
    let mut cursor = None;
    for (k, v) in &ps {
        match k.as_str() {
            "limit" => limit = parse_u64("limit", v)?.min(MAX_LIMIT),
            "cursor" => cursor = Some(parse_u64("cursor", v)?),
            "order" => {
                order = match v.as_str() {
                    "oldest" | "asc" => Order::Oldest,
                    "newest" | "desc" => Order::Newest,
                    _ => {
                        return Err(ApiError::BadRequest(
                            "order must be oldest or newest".into(),
                        ))
                    }
                }
            }
            "from" | "to" | "q" | "where" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    // The page's bytes come out of the server's query budget: a page is cut
    // short (with a next cursor) when the budget is tight, and refused only
    // when not even a small page fits. Memory follows the server, not the
    // number or the slowness of readers.
    let (mut budget, max_bytes) = page_budget(&state, realm.name())?;
    let journal = realm.journal().clone();
    let verified_through = realm.verified_through();
    let result = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let (blocks, size) = snapshot(&journal)?;
        let bounds = match order {
            Order::Oldest => Scan {
                order,
                limit: Some(limit),
                max_bytes: Some(max_bytes),
                seq_from: cursor.unwrap_or(0),
                seq_to: size,
            },
            Order::Newest => Scan {
                order,
                limit: Some(limit),
                max_bytes: Some(max_bytes),
                seq_from: 0,
                seq_to: cursor.unwrap_or(size).min(size),
            },
        };
        let mut body = Vec::new();
        let r = sealog_query::scan(
            &blocks,
            &|i| match journal.read() {
                Ok(j) => j.read_block(i),
                Err(_) => Err(sealog_journal::JournalError::Poisoned),
            },
            &filter,
            bounds,
            &mut |_, line| {
                body.extend_from_slice(line);
                body.push(b'\n');
            },
        )?;
        Ok((body, (r, size)))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (body, result) = realm.guard(&state.metrics, result)?;
    let (r, size) = result;
    // Keep only what the page holds charged, until it is sent.
    let used = body.len().div_ceil(1024).max(1);
    if used < budget.num_permits() {
        drop(budget.split(budget.num_permits() - used));
    }
    let mut resp = chunked(body, budget).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert("x-sealog-tree-size", HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(realm.name()) {
        h.insert("x-sealog-realm", v);
    }
    // Records the background verifier re-hashed and matched to a signed
    // checkpoint: a reader can tell how much of what it got was checked.
    h.insert(
        "x-sealog-verified-through",
        HeaderValue::from(verified_through),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{}..{}", r.scanned.0, r.scanned.1)) {
        h.insert("x-sealog-scanned", v);
    }
    if let Some(c) = r.next_cursor {
        h.insert("x-sealog-next-cursor", HeaderValue::from(c));
    }
    Ok(resp)
}

/// Records `/v1/stats` counts unless asked for another number.
const DEFAULT_SAMPLE: u64 = 200_000;

/// `/v1/stats` scans running at once, server-wide.
static STATS_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `GET /v1/stats?from&to&q&where&buckets&facet&top&sample`: counts over
/// time and the top values of fields among what the filter matches, newest
/// first, at most `sample` records (the console's histogram and facets).
pub async fn stats(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    use sealog_query::stats::{StatsRequest, MAX_BUCKETS, MAX_FACETS, MAX_SAMPLE, MAX_TOP};
    let realm = state
        .realm_async(caller.realm_for(Scope::Query, "read")?)
        .await?;
    let ps = params(raw.as_deref());
    let filter = filter_from(&ps)?;
    let mut req = StatsRequest {
        buckets: 60,
        facets: Vec::new(),
        top: 10,
        sample: DEFAULT_SAMPLE,
        now_ns: sealog_event::now_ns(),
    };
    let within = |name: &str, v: &str, max: u64| -> Result<u64, ApiError> {
        let n = parse_u64(name, v)?;
        if n == 0 || n > max {
            return Err(ApiError::BadRequest(format!(
                "{name} must be 1 to {max}, got {n}"
            )));
        }
        Ok(n)
    };
    for (k, v) in &ps {
        match k.as_str() {
            "buckets" => req.buckets = within("buckets", v, u64::from(MAX_BUCKETS))? as u32,
            "top" => req.top = within("top", v, MAX_TOP as u64)? as usize,
            "sample" => req.sample = within("sample", v, MAX_SAMPLE)?,
            "facet" => {
                if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
                    return Err(ApiError::BadRequest(
                        "facet must be a field name of 1 to 128 bytes".into(),
                    ));
                }
                if !req.facets.contains(v) {
                    if req.facets.len() == MAX_FACETS {
                        return Err(ApiError::BadRequest(format!("at most {MAX_FACETS} facets")));
                    }
                    req.facets.push(v.clone());
                }
            }
            "from" | "to" | "q" | "where" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown stats parameter {other:?}"
                )))
            }
        }
    }
    // Counting scans up to a million records: two at a time per server,
    // each holding its slot until its scan ends (even if its client left).
    let slot = STATS_SLOTS.try_acquire().map_err(|_| {
        state.metrics.refused(realm.name(), "stats_in_flight", 1);
        ApiError::Overloaded("too many counts in flight")
    })?;
    let journal = realm.journal().clone();
    let result = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let _slot = slot;
        let (blocks, size) = snapshot(&journal)?;
        let s = sealog_query::stats::stats(
            &blocks,
            &|i| match journal.read() {
                Ok(j) => j.read_block(i),
                Err(_) => Err(sealog_journal::JournalError::Poisoned),
            },
            &filter,
            &req,
            size,
        )?;
        Ok((s, size))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (s, size) = realm.guard(&state.metrics, result)?;
    let mut v = serde_json::to_value(s).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["size"] = size.into();
    Ok(Json(v))
}

/// Takes one page's share of the server's query budget: the permit to hold
/// until the page is sent, and the bytes the page may fill.
///
/// # Errors
/// [`ApiError::Overloaded`] when not even a small page fits.
pub(crate) fn page_budget(
    state: &AppState,
    realm: &str,
) -> Result<(tokio::sync::OwnedSemaphorePermit, u64), ApiError> {
    let limits = &state.config.limits;
    let page_kib = (limits.max_page_bytes / 1024).max(MIN_PAGE_KIB);
    let room = state.query_kib.available_permits().min(page_kib);
    if room < MIN_PAGE_KIB {
        state.metrics.refused(realm, "query_bytes", 1);
        return Err(ApiError::Overloaded("too many query bytes in flight"));
    }
    let budget = state
        .query_kib
        .clone()
        .try_acquire_many_owned(room as u32)
        .map_err(|_| ApiError::Overloaded("too many query bytes in flight"))?;
    Ok((budget, (room as u64) * 1024))
}

/// Smallest page worth serving from the query budget.
const MIN_PAGE_KIB: usize = 64;

/// A page as a streamed body of 64 KiB chunks that holds its share of the
/// query budget until the last chunk is sent or the client goes away.
pub(crate) fn chunked(
    body: Vec<u8>,
    budget: tokio::sync::OwnedSemaphorePermit,
) -> axum::body::Body {
    const CHUNK: usize = 64 * 1024;
    let body = bytes::Bytes::from(body);
    let chunks: Vec<bytes::Bytes> = (0..body.len())
        .step_by(CHUNK)
        .map(|at| body.slice(at..(at + CHUNK).min(body.len())))
        .collect();
    let stream = stream::iter(chunks).map(move |c| {
        let _held = &budget;
        Ok::<_, Infallible>(c)
    });
    axum::body::Body::from_stream(stream)
}

/// `GET /v1/checkpoint`: the latest signed checkpoint note; with witnesses
/// configured, the newest one a quorum of them cosigned (cosignature lines
/// included), and `?latest` the newest signed one.
pub async fn checkpoint(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut latest = false;
    for (k, v) in params(raw.as_deref()) {
        match (k.as_str(), v.as_str()) {
            ("latest", "" | "1" | "true") => latest = true,
            ("latest", "0" | "false") => latest = false,
            ("latest", _) => {
                return Err(ApiError::BadRequest(format!(
                    "latest takes no value, or true or false; got {v:?}"
                )))
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {k:?}; expected latest"
                )))
            }
        }
    }
    let realm = state
        .realm_async(caller.realm_for(Scope::Query, "read")?)
        .await?;
    let text: String = if latest || !state.witnessing.enabled() {
        realm
            .journal()
            .read()
            .map_err(|_| ApiError::Internal("journal lock poisoned".into()))?
            .latest_checkpoint()
            .map(|c| c.text.clone())
            .ok_or_else(|| {
                ApiError::NotFound("the realm has no records yet, so no checkpoint".into())
            })?
    } else {
        let st = state.clone();
        let r = realm.clone();
        let got = tokio::task::spawn_blocking(move || st.witnessing.cosigned(&st, &r))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        match got {
            Ok(t) => t.to_string(),
            Err(why) => return Err(ApiError::NotFound(why)),
        }
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// An inclusion proof.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InclusionProof {
    /// The leaf's seq.
    pub seq: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// Base64 hashes, bottom-up (RFC 9162 order).
    pub hashes: Vec<String>,
}

/// A consistency proof.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    /// Older size.
    pub from: u64,
    /// Newer size.
    pub to: u64,
    /// Base64 hashes (RFC 9162 order).
    pub hashes: Vec<String>,
}

fn need(ps: &[(String, String)], name: &str) -> Result<u64, ApiError> {
    let v = ps
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::BadRequest(format!("missing query parameter {name}")))?;
    parse_u64(name, v)
}

/// `GET /v1/proof/inclusion?seq&size` (size defaults to the current size).
pub async fn inclusion(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<InclusionProof>, ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Query, "read")?)
        .await?;
    let ps = params(raw.as_deref());
    let seq = need(&ps, "seq")?;
    let size = match ps.iter().any(|(k, _)| k == "size") {
        true => Some(need(&ps, "size")?),
        false => None,
    };
    on_journal(&state, &realm, move |j| {
        let size = size.unwrap_or(j.size());
        let hashes = j.inclusion_proof(seq, size)?;
        Ok(Json(InclusionProof {
            seq,
            tree_size: size,
            hashes: hashes.iter().map(|h| B64.encode(h)).collect(),
        }))
    })
    .await
}

/// Runs `f` on `realm`'s journal (read-locked) off the async threads; a
/// failure that fails the realm is recorded as such.
async fn on_journal<T: Send + 'static>(
    state: &Arc<AppState>,
    realm: &Arc<crate::realm::RealmHandle>,
    f: impl FnOnce(&dyn sealog_journal::LogStore) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let journal = realm.journal().clone();
    let r = tokio::task::spawn_blocking(move || {
        let j = journal
            .read()
            .map_err(|_| ApiError::Internal("journal lock poisoned".into()))?;
        f(&**j)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    realm.guard(&state.metrics, r)
}

/// `GET /v1/proof/consistency?from&to`
pub async fn consistency(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Query, "read")?)
        .await?;
    let ps = params(raw.as_deref());
    let (from, to) = (need(&ps, "from")?, need(&ps, "to")?);
    on_journal(&state, &realm, move |j| {
        let hashes = j.consistency_proof(from, to)?;
        Ok(Json(ConsistencyProof {
            from,
            to,
            hashes: hashes.iter().map(|h| B64.encode(h)).collect(),
        }))
    })
    .await
}

/// A range proof: what recomputes the root of `tree_size` records from
/// records `[from, to)` alone.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RangeProof {
    /// First record covered.
    pub from: u64,
    /// End of the range (exclusive).
    pub to: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// Base64 hashes: every maximal subtree outside the range, left to right.
    pub hashes: Vec<String>,
}

/// Most records one range proof covers.
pub const MAX_RANGE: u64 = 1_000_000;

/// `GET /v1/proof/range?from&to&size` (size defaults to the current size):
/// a client that holds records `[from, to)` (from `/v1/query`) hashes them
/// and recomputes the signed root in one request.
pub async fn range(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<RangeProof>, ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Query, "read")?)
        .await?;
    let ps = params(raw.as_deref());
    let (from, to) = (need(&ps, "from")?, need(&ps, "to")?);
    if to.saturating_sub(from) > MAX_RANGE {
        return Err(ApiError::BadRequest(format!(
            "a range proof covers at most {MAX_RANGE} records"
        )));
    }
    let size = match ps.iter().any(|(k, _)| k == "size") {
        true => Some(need(&ps, "size")?),
        false => None,
    };
    on_journal(&state, &realm, move |j| {
        let size = size.unwrap_or(j.size());
        let hashes = j.range_proof(from, to, size)?;
        Ok(Json(RangeProof {
            from,
            to,
            tree_size: size,
            hashes: hashes.iter().map(|h| B64.encode(h)).collect(),
        }))
    })
    .await
}

/// `GET /v1/tail?q&where&since_seq`: Server-Sent Events, one record per
/// event (`id` = seq, `data` = the leaf line), from now or from `since_seq`.
pub async fn tail(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let realm = state
        .realm_async(caller.realm_for(Scope::Query, "read")?)
        .await?;
    let ps = params(raw.as_deref());
    let filter = filter_from(&ps)?;
    let permit = state.tail_permits(&realm)?;
    let committed = realm.committed();
    // "Now" is the journal's committed size, the same one receipts report.
    let now = realm
        .journal()
        .read()
        .map_err(|_| ApiError::Internal("journal lock poisoned".into()))?
        .size();
    let cursor = match ps.iter().find(|(k, _)| k == "since_seq") {
        Some((_, v)) => {
            let s = parse_u64("since_seq", v)?;
            if s > now {
                return Err(ApiError::BadRequest(format!(
                    "since_seq {s} is past the realm's size {now}"
                )));
            }
            s
        }
        None => now,
    };
    let session = TailSession {
        cursor,
        committed,
        journal: realm.journal().clone(),
        filter: Arc::new(filter),
        shutdown: state.shutdown.clone(),
        tokens: state.token_changes.subscribe(),
        grant: caller.0,
        state: state.clone(),
        done: false,
        _permit: permit,
    };
    let stream = stream::unfold(session, |mut s| async move {
        let events = s.next_events().await?;
        Some((events, s))
    })
    .flat_map(|events| stream::iter(events.into_iter().map(Ok)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One live tail: where it is, what it filters, and the token it runs
/// under, re-checked before every batch of events it sends.
struct TailSession {
    cursor: u64,
    committed: tokio::sync::watch::Receiver<u64>,
    journal: crate::realm::SharedLog,
    filter: Arc<Filter>,
    shutdown: tokio_util::sync::CancellationToken,
    tokens: tokio::sync::watch::Receiver<u64>,
    grant: crate::auth::Grant,
    state: Arc<AppState>,
    done: bool,
    _permit: (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ),
}

impl TailSession {
    /// The next events to send; `None` ends the stream.
    async fn next_events(&mut self) -> Option<Vec<Event>> {
        if self.done {
            return None;
        }
        loop {
            if !self.grant.still_valid(&self.state) {
                // Revoked: one last event says why, then the stream ends.
                self.done = true;
                return Some(vec![Event::default()
                    .event("error")
                    .data("token is not valid; the tail is closed")]);
            }
            let size = *self.committed.borrow_and_update();
            if self.cursor < size {
                let to = size.min(self.cursor + 4096);
                let (j, f) = (self.journal.clone(), self.filter.clone());
                let from = self.cursor;
                let events = tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    if let Ok(j) = j.read() {
                        let _ = j.read(from, to, &mut |seq, line| {
                            if f.matches(line) {
                                out.push(
                                    Event::default()
                                        .id(seq.to_string())
                                        .data(String::from_utf8_lossy(line)),
                                );
                            }
                            std::ops::ControlFlow::Continue(())
                        });
                    }
                    out
                })
                .await
                .unwrap_or_default();
                self.cursor = to;
                if !events.is_empty() && self.grant.still_valid(&self.state) {
                    return Some(events);
                }
                continue;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                changed = self.committed.changed() => if changed.is_err() { return None },
                _ = self.tokens.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let p = url_decode_pairs("where=app%3Apayments&q=a+b&where=k.x:1&limit=5&x");
        assert_eq!(p[0], ("where".into(), "app:payments".into()));
        assert_eq!(p[1], ("q".into(), "a b".into()));
        assert_eq!(p[4], ("x".into(), String::new()));
        let p = url_decode_pairs("q=%zz%4");
        assert_eq!(p[0].1, "%zz%4");
        let p = url_decode_pairs("q=%\u{e9}\u{e9}");
        assert_eq!(
            p[0].1, "%\u{e9}\u{e9}",
            "no panic on multi-byte text after %"
        );
    }
}
