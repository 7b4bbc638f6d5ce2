//! The query role: reads a realm's log from PostgreSQL with the realm's
//! query token, as the single node answers them: `GET /v1/query`,
//! `/v1/checkpoint`, `/v1/proof/inclusion`, `/v1/proof/consistency`, and
//! the live tail `GET /v1/tail` (Server-Sent Events).
//! Any number of query nodes may run; each keeps every realm it serves
//! open for reading and reads what the writers committed since when their
//! notices (on [`RECEIPTS_CHANNEL`]) say the realm moved. A tail wakes on
//! those notices too, and looks again every second in case one was lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use futures_util::StreamExt as _;
use postgres::fallible_iterator::FallibleIterator;
use sealog_journal::LogStore;
use sealog_pg::{PgLog, PgRealms};
use sealog_query::{Filter, Order, Scan};
use sealog_store::{RealmStore, Scope, StoreError};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{refuse, Cluster, Notice, RECEIPTS_CHANNEL};

/// Most records one page may hold.
const MAX_LIMIT: u64 = 100_000;

/// Most bytes one page may hold.
const MAX_PAGE_BYTES: u64 = 16 << 20;

/// Most tail sessions one query node serves at once.
const MAX_TAILS: usize = 256;

/// Tails of one realm one query node serves at once.
const MAX_REALM_TAILS: usize = 32;

/// Most records one tail reads from the store per step.
const TAIL_STEP: u64 = 4096;

/// Most bytes of records one tail holds per step (what a client that stops
/// reading can make the node keep).
const TAIL_STEP_BYTES: u64 = 1 << 20;

/// How long a tail waits for a store it cannot read, or a token it cannot
/// check, before it ends with an error event.
const TAIL_GIVE_UP: Duration = Duration::from_secs(10);

/// How long shutdown waits for open connections (a tail whose client
/// stopped reading would hold it forever).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often a tail checks its token again, and looks for records when no
/// notice came.
const TAIL_RECHECK: Duration = Duration::from_secs(1);

struct Node {
    c: Cluster,
    realms: Mutex<Option<PgRealms>>,
    /// Open readers by realm.
    logs: Mutex<HashMap<String, Arc<Mutex<PgLog>>>>,
    /// Realms a notice said moved since their reader last looked (`*`:
    /// notices may have been missed, every reader looks again).
    moved: Arc<Mutex<HashSet<String>>>,
    /// The latest tree this node served of each realm (size, root).
    seen: Mutex<HashMap<String, (u64, [u8; 32])>>,
    /// Bumped on every writer's notice (and a reconnect): wakes the tails.
    moves: tokio::sync::watch::Sender<u64>,
    /// Tail sessions left.
    tails: Arc<tokio::sync::Semaphore>,
    /// Tail sessions left per realm.
    realm_tails: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Ends the tails at shutdown.
    stop: CancellationToken,
}

/// An answer other than the one asked for: its status and why.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        refuse(self.0, self.1)
    }
}

/// Serves the query role on `listener` until `stop`.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    c: Cluster,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> Result<(), String> {
    let moved: Arc<Mutex<HashSet<String>>> = Arc::default();
    let moves = tokio::sync::watch::Sender::new(0u64);
    {
        let (url, moved, moves, stop) = (
            c.postgres.clone(),
            moved.clone(),
            moves.clone(),
            stop.clone(),
        );
        std::thread::Builder::new()
            .name("sealog-moves".into())
            .spawn(move || follow(&url, &moved, &moves, &stop))
            .map_err(|e| e.to_string())?;
    }
    let node = Arc::new(Node {
        c,
        realms: Mutex::new(None),
        logs: Mutex::default(),
        moved,
        seen: Mutex::default(),
        moves,
        tails: Arc::new(tokio::sync::Semaphore::new(MAX_TAILS)),
        realm_tails: Mutex::default(),
        stop: stop.clone(),
    });
    let app = Router::new()
        .route("/v1/query", get(query))
        .route("/v1/tail", get(tail))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/proof/inclusion", get(inclusion))
        .route("/v1/proof/consistency", get(consistency))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(node);
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    tokio::select! {
        r = std::future::IntoFuture::into_future(server) => r.map_err(|e| e.to_string()),
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "connections still open after the shutdown grace; closing them");
            Ok(())
        }
    }
}

/// Notes the realms writers committed to, so their readers look again; on
/// a lost connection every reader looks again.
fn follow(
    url: &str,
    moved: &Mutex<HashSet<String>>,
    moves: &tokio::sync::watch::Sender<u64>,
    stop: &CancellationToken,
) {
    while !stop.is_cancelled() {
        let mut client = match sealog_pg::connect_reader(url)
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {RECEIPTS_CHANNEL}"))
                    .map_err(|e| e.to_string())?;
                Ok(c)
            }) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "query node cannot follow commits");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Ok(mut m) = moved.lock() {
            m.insert("*".into());
        }
        moves.send_modify(|n| *n += 1);
        let mut notes = client.notifications();
        while !stop.is_cancelled() {
            match notes.timeout_iter(Duration::from_millis(500)).next() {
                Ok(Some(n)) => {
                    if let (Ok(notice), Ok(mut m)) =
                        (serde_json::from_str::<Notice>(n.payload()), moved.lock())
                    {
                        m.insert(notice.receipt.realm);
                    }
                    moves.send_modify(|n| *n += 1);
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
}

fn params(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn number(ps: &[(String, String)], name: &str) -> Result<Option<u64>, Refusal> {
    match ps.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => v.parse().map(Some).map_err(|_| {
            Refusal(
                StatusCode::BAD_REQUEST,
                format!("{name} must be a non-negative integer, not {v:?}"),
            )
        }),
    }
}

impl Node {
    /// The realm a query token is for.
    fn realm_of(&self, headers: &HeaderMap) -> Result<String, Refusal> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.trim()
                    .strip_prefix("Bearer ")
                    .unwrap_or(v.trim())
                    .to_string()
            })
            .ok_or_else(|| Refusal(StatusCode::UNAUTHORIZED, "a query token is required".into()))?;
        let mut realms = self
            .realms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if realms.is_none() {
            *realms = Some(PgRealms::connect_reader(&self.c.postgres).map_err(|e| {
                Refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot check the token: {e}"),
                )
            })?);
        }
        let t = match realms.as_ref().map(|r| r.authenticate(&token)) {
            Some(Ok(t)) => t,
            Some(Err(StoreError::BadToken)) => {
                return Err(Refusal(
                    StatusCode::UNAUTHORIZED,
                    "unknown or revoked token".into(),
                ))
            }
            Some(Err(e)) => {
                *realms = None;
                return Err(Refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot check the token: {e}"),
                ));
            }
            None => {
                return Err(Refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no database".into(),
                ))
            }
        };
        if t.scope != Scope::Query {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                format!(
                    "a {} token cannot read; use the realm's query token",
                    t.scope
                ),
            ));
        }
        Ok(t.realm)
    }

    /// The realm's reader, brought up to date if a writer moved it. A
    /// reader opened anew must extend what this node last served of the
    /// realm, so a store restored to an older state, or failed over to a
    /// standby that lacks commits, is refused rather than served.
    fn log(&self, realm: &str) -> Result<Arc<Mutex<PgLog>>, Refusal> {
        let unavailable = |e: sealog_journal::JournalError| {
            Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        };
        let all = self.moved.lock().is_ok_and(|mut m| m.remove("*"));
        let mut logs = self
            .logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if all {
            // The notices were not followed for a while: every reader looks again.
            logs.clear();
        }
        if let Some(l) = logs.get(realm).cloned() {
            drop(logs);
            if self.moved.lock().is_ok_and(|mut m| m.remove(realm)) {
                let mut r = l.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // A refused refresh keeps the reader as it was, so it goes
                // on refusing a store that went back in time.
                r.refresh().map_err(|e| {
                    if let Ok(mut m) = self.moved.lock() {
                        m.insert(realm.to_string());
                    }
                    unavailable(e)
                })?;
                self.saw(realm, &r);
            }
            return Ok(l);
        }
        let fresh = PgLog::open_reader(&self.c.postgres, realm, None).map_err(unavailable)?;
        let seen = self.seen.lock().ok().and_then(|s| s.get(realm).copied());
        if let Some((size, root)) = seen {
            let extends = fresh.size() >= size && fresh.root_at(size).is_ok_and(|r| r == root);
            if !extends {
                return Err(Refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "realm {realm} in PostgreSQL (size {}) does not extend the tree of {size} records this node served: the store went back in time or was rewritten",
                        fresh.size()
                    ),
                ));
            }
        }
        self.saw(realm, &fresh);
        let l = Arc::new(Mutex::new(fresh));
        logs.insert(realm.to_string(), l.clone());
        Ok(l)
    }

    /// Remembers the tree a reader serves.
    fn saw(&self, realm: &str, l: &PgLog) {
        if let (Some(cp), Ok(mut s)) = (l.latest_checkpoint(), self.seen.lock()) {
            s.insert(realm.to_string(), (cp.checkpoint.size, cp.checkpoint.root));
        }
    }
}

/// Runs `f` on the caller's realm off the async threads.
async fn on_realm<T: Send + 'static>(
    n: Arc<Node>,
    headers: HeaderMap,
    f: impl FnOnce(&PgLog) -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(move || {
        let realm = n.realm_of(&headers)?;
        let log = n.log(&realm)?;
        let l = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&l)
    })
    .await
    .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn store_error(e: &sealog_journal::JournalError) -> Refusal {
    use sealog_journal::JournalError as E;
    match e {
        E::OutOfRange { .. } | E::Proof(_) => Refusal(StatusCode::BAD_REQUEST, e.to_string()),
        E::Store { .. } => Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        _ => Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn checkpoint(State(n): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let r = on_realm(n, headers, |l| {
        l.latest_checkpoint()
            .map(|c| c.text.clone())
            .ok_or_else(|| {
                Refusal(
                    StatusCode::NOT_FOUND,
                    "the realm has no records yet, so no checkpoint".into(),
                )
            })
    })
    .await;
    match r {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => e.into_response(),
    }
}

fn b64(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes
        .iter()
        .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
        .collect()
}

async fn inclusion(
    State(n): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let ps = params(raw.as_deref());
    let (seq, size) = match (number(&ps, "seq"), number(&ps, "size")) {
        (Ok(Some(seq)), Ok(size)) => (seq, size),
        (Ok(None), _) => return refuse(StatusCode::BAD_REQUEST, "seq is required".into()),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    on_realm(n, headers, move |l| {
        let size = size.unwrap_or(l.size());
        let hashes = l.inclusion_proof(seq, size).map_err(|e| store_error(&e))?;
        Ok(Json(json!({"seq": seq, "tree_size": size, "hashes": b64(&hashes)})).into_response())
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

async fn consistency(
    State(n): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let ps = params(raw.as_deref());
    let (from, to) = match (number(&ps, "from"), number(&ps, "to")) {
        (Ok(Some(a)), Ok(Some(b))) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
        _ => return refuse(StatusCode::BAD_REQUEST, "from and to are required".into()),
    };
    on_realm(n, headers, move |l| {
        let hashes = l.consistency_proof(from, to).map_err(|e| store_error(&e))?;
        Ok(Json(json!({"from": from, "to": to, "hashes": b64(&hashes)})).into_response())
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// Applies `k=v` to `filter` if it is one of the filter's parameters
/// (`from`, `to`, `q`, `where`); false if it is not.
fn filter_param(filter: &mut Filter, k: &str, v: &str) -> Result<bool, String> {
    let f = filter.clone();
    *filter = match k {
        "from" => f.with_from(v).map_err(|e| e.to_string())?,
        "to" => f.with_to(v).map_err(|e| e.to_string())?,
        "q" => f.with_text(v),
        "where" => f.with_where(v).map_err(|e| e.to_string())?,
        _ => return Ok(false),
    };
    Ok(true)
}

async fn query(
    State(n): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let ps = params(raw.as_deref());
    let mut filter = Filter::default();
    let (mut limit, mut order, mut cursor) = (1000u64, Order::Oldest, None);
    for (k, v) in &ps {
        let bad = |e: String| refuse(StatusCode::BAD_REQUEST, e);
        match filter_param(&mut filter, k, v) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => return bad(e),
        }
        match k.as_str() {
            "limit" => match v.parse::<u64>() {
                Ok(l) => limit = l.min(MAX_LIMIT),
                Err(_) => return bad(format!("limit must be a non-negative integer, not {v:?}")),
            },
            "cursor" => match v.parse::<u64>() {
                Ok(c) => cursor = Some(c),
                Err(_) => return bad(format!("cursor must be a non-negative integer, not {v:?}")),
            },
            "order" => {
                order = match v.as_str() {
                    "oldest" | "asc" => Order::Oldest,
                    "newest" | "desc" => Order::Newest,
                    _ => return bad("order must be oldest or newest".into()),
                }
            }
            other => return bad(format!("unknown query parameter {other:?}")),
        }
    }
    let r = on_realm(n, headers, move |l| {
        let size = l.size();
        let (seq_from, seq_to) = match order {
            Order::Oldest => (cursor.unwrap_or(0), size),
            Order::Newest => (0, cursor.unwrap_or(size).min(size)),
        };
        let bounds = Scan {
            order,
            limit: Some(limit),
            max_bytes: Some(MAX_PAGE_BYTES),
            seq_from,
            seq_to,
        };
        let mut body = Vec::new();
        let r = sealog_query::scan(
            l.blocks(),
            &|i| l.read_block(i),
            &filter,
            bounds,
            &mut |_, line| {
                body.extend_from_slice(line);
                body.push(b'\n');
            },
        )
        .map_err(|e| Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        Ok((body, r.next_cursor, size))
    })
    .await;
    match r {
        Ok((body, next, size)) => {
            let mut resp = body.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            h.insert("x-sealog-tree-size", HeaderValue::from(size));
            if let Some(c) = next {
                h.insert("x-sealog-next-cursor", HeaderValue::from(c));
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/tail?q&where&from&to&since_seq`: Server-Sent Events, one record
/// per event (`id` = seq, `data` = the record's line), from the realm's
/// size now or from `since_seq`, as the single node's tail. The token is
/// checked again every second; a revoked one gets a last `error` event and
/// the stream ends.
async fn tail(State(n): State<Arc<Node>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let mut filter = Filter::default();
    let mut since = None;
    for (k, v) in params(raw.as_deref()) {
        match filter_param(&mut filter, &k, &v) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
        }
        match k.as_str() {
            "since_seq" => match v.parse::<u64>() {
                Ok(s) => since = Some(s),
                Err(_) => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        format!("since_seq must be a non-negative integer, not {v:?}"),
                    )
                }
            },
            other => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("unknown tail parameter {other:?}"),
                )
            }
        }
    }
    let moves = n.moves.subscribe();
    let (n2, h) = (n.clone(), headers.clone());
    let start = tokio::task::spawn_blocking(move || {
        let realm = n2.realm_of(&h)?;
        // Read the store again first: a since_seq just past what this node
        // has read may be a commit whose notice is on its way.
        if let Ok(mut m) = n2.moved.lock() {
            m.insert(realm.clone());
        }
        let log = n2.log(&realm)?;
        let size = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .size();
        Ok::<_, Refusal>((realm, size))
    })
    .await;
    let (realm, size) = match start {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    // Slots are taken after the token check, so bad tokens cannot hold
    // them, and per realm, so one realm cannot take them all.
    let Ok(permit) = n.tails.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this query node serves {MAX_TAILS} tails already"),
        );
    };
    let realm_slots = n
        .realm_tails
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(realm.clone())
        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(MAX_REALM_TAILS)))
        .clone();
    let Ok(realm_slot) = realm_slots.try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("realm {realm} has {MAX_REALM_TAILS} tails on this query node already"),
        );
    };
    let cursor = match since {
        Some(s) if s > size => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("since_seq {s} is past the realm's size {size}"),
            )
        }
        Some(s) => s,
        None => size,
    };
    let session = Tail {
        n,
        headers,
        realm,
        cursor,
        filter: Arc::new(filter),
        moves,
        checked: std::time::Instant::now(),
        failing_since: None,
        look: false,
        done: false,
        _permits: (permit, realm_slot),
    };
    let events = futures_util::stream::unfold(session, |mut s| async move {
        let events = s.next_events().await?;
        Some((events, s))
    })
    .flat_map(|events| {
        futures_util::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// One live tail on a query node.
struct Tail {
    n: Arc<Node>,
    headers: HeaderMap,
    realm: String,
    /// The next seq to look at.
    cursor: u64,
    filter: Arc<Filter>,
    moves: tokio::sync::watch::Receiver<u64>,
    /// When the token was last found valid.
    checked: std::time::Instant,
    /// Since when the store could not be read, if it cannot.
    failing_since: Option<std::time::Instant>,
    /// Set when a second passed with no notice: the reader reads the
    /// store again itself (a notice may have been lost, and a copy made
    /// by `sealog migrate` sends none).
    look: bool,
    done: bool,
    _permits: (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ),
}

impl Tail {
    /// The last event of a tail that ends.
    fn close(&mut self, why: String) -> Option<Vec<Event>> {
        self.done = true;
        Some(vec![Event::default().event("error").data(why)])
    }

    /// The next events to send; `None` ends the stream.
    async fn next_events(&mut self) -> Option<Vec<Event>> {
        while !self.done {
            if self.n.stop.is_cancelled() {
                return None;
            }
            if self.checked.elapsed() >= TAIL_RECHECK {
                let (n, h) = (self.n.clone(), self.headers.clone());
                match tokio::task::spawn_blocking(move || n.realm_of(&h)).await {
                    Ok(Ok(r)) if r == self.realm => self.checked = std::time::Instant::now(),
                    // The store unreachable: the tail waits, as its reads
                    // do, but not for long with a token it cannot check.
                    Ok(Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, e))) => {
                        if self.checked.elapsed() >= TAIL_GIVE_UP {
                            return self.close(format!(
                                "the token could not be checked for {} s ({e}); the tail is closed",
                                TAIL_GIVE_UP.as_secs()
                            ));
                        }
                    }
                    _ => return self.close("token is not valid; the tail is closed".into()),
                }
            }
            if std::mem::take(&mut self.look) {
                if let Ok(mut m) = self.n.moved.lock() {
                    m.insert(self.realm.clone());
                }
            }
            let _ = self.moves.borrow_and_update();
            let (n, realm, from, f) = (
                self.n.clone(),
                self.realm.clone(),
                self.cursor,
                self.filter.clone(),
            );
            let step = tokio::task::spawn_blocking(move || {
                let log = n.log(&realm).map_err(|r| r.1)?;
                let l = log
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let to = l.size().min(from + TAIL_STEP);
                let mut events = Vec::new();
                let r = sealog_query::scan(
                    l.blocks(),
                    &|i| l.read_block(i),
                    &*f,
                    Scan {
                        order: Order::Oldest,
                        limit: None,
                        max_bytes: Some(TAIL_STEP_BYTES),
                        seq_from: from,
                        seq_to: to,
                    },
                    &mut |seq, line| {
                        events.push(
                            Event::default()
                                .id(seq.to_string())
                                .data(String::from_utf8_lossy(line)),
                        );
                    },
                )
                .map_err(|e| e.to_string())?;
                Ok::<_, String>((events, r.next_cursor.unwrap_or(to).max(from)))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match step {
                Ok((events, next)) => {
                    self.failing_since = None;
                    let moved = next > self.cursor;
                    self.cursor = next;
                    if !events.is_empty() {
                        return Some(events);
                    }
                    if moved {
                        continue;
                    }
                }
                Err(e) => {
                    // A store that cannot be read, or that went back in
                    // time: said, after a while, rather than a silent tail.
                    let since = *self
                        .failing_since
                        .get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= TAIL_GIVE_UP {
                        return self
                            .close(format!("the store cannot be read: {e}; the tail is closed"));
                    }
                }
            }
            tokio::select! {
                () = self.n.stop.cancelled() => return None,
                r = self.moves.changed() => if r.is_err() { return None },
                () = tokio::time::sleep(TAIL_RECHECK) => self.look = true,
            }
        }
        None
    }
}
