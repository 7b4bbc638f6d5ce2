//! LogHarbour's query functions over HTTP, for query-token holders (the
//! realm comes from the token):
//!
//! | route | LogHarbour | order |
//! |---|---|---|
//! | `GET /v1/logs` | `GetLogs` | newest first; oldest first when only `from` is given |
//! | `GET /v1/changes` | `GetChanges` (type `C`, `field` inside the changes) | oldest first |
//! | `GET /v1/logs-for-ip?ip=` | `getLogsForIP` (designed, never built upstream) | as `/v1/logs` |
//! | `GET /v1/sets?attr=` | `GetSet`, with the counts | by count, then value |
//! | `GET /v1/apps` | `GetApps` | by name |
//! | `GET /v1/unusual-ips?pct=` | `GetUnusualIP` / `ListUnusualIPs` | by count, then address |
//!
//! Order is the log's own order (seq, the order the records were
//! committed and the order the signed tree proves); `when` is the
//! client's clock and only filters. Pages are at most 10,000 entries
//! (default 100) and carry `next` and `prev` cursors, so paging either way
//! returns every match exactly once, even while the log grows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealog_query::logharbour::{self as lh, LhType, LogsQuery, Pri, SetAttr};
use sealog_query::{Order, Scan};
use sealog_store::Scope;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::realm::RealmHandle;
use crate::routes::read::{page_budget, params, parse_u64};
use crate::state::AppState;

/// Default entries per page (LogHarbour's was 5).
pub const DEFAULT_PAGE: u64 = 100;
/// Most entries per page.
pub const MAX_PAGE: u64 = 10_000;
/// Default distinct values `GetSet` returns.
pub const DEFAULT_SET_LIMIT: u64 = 1_000;
/// Most distinct values `GetSet` returns.
pub const MAX_SET_LIMIT: u64 = 100_000;

/// Where a page starts: strictly before or strictly after a seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Entries with a smaller seq.
    Before(u64),
    /// Entries with a larger seq.
    After(u64),
}

impl Cursor {
    /// Parses `before:N` or `after:N`.
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] naming the form.
    pub fn parse(s: &str) -> Result<Cursor, ApiError> {
        let bad = || {
            ApiError::BadRequest(format!(
                "cursor {s:?} is not before:N or after:N (take it from a page's next or prev)"
            ))
        };
        let (dir, n) = s.split_once(':').ok_or_else(bad)?;
        let n: u64 = n.parse().map_err(|_| bad())?;
        match dir {
            "before" => Ok(Cursor::Before(n)),
            "after" => Ok(Cursor::After(n)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cursor::Before(n) => write!(f, "before:{n}"),
            Cursor::After(n) => write!(f, "after:{n}"),
        }
    }
}

/// Everything a page request asks for.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// The filters.
    pub query: LogsQuery,
    /// The order entries are shown in.
    pub order: Order,
    /// Where the page starts; `None`: at the end `order` starts from.
    pub cursor: Option<Cursor>,
    /// Entries per page.
    pub limit: u64,
    /// Also count every match (a full scan).
    pub count: bool,
}

/// One page of entries.
#[derive(Debug, Clone)]
pub struct Page {
    /// The stored lines, in display order.
    pub lines: Vec<Vec<u8>>,
    /// Continue in display order.
    pub next: Option<Cursor>,
    /// Go back.
    pub prev: Option<Cursor>,
    /// The realm's size the page was read at.
    pub tree_size: u64,
    /// All matches, when asked for.
    pub nrec: Option<u64>,
}

/// Reads one page (blocking: call from `spawn_blocking`).
fn read_page(
    journal: &crate::realm::SharedLog,
    req: &PageRequest,
    max_bytes: u64,
) -> Result<Page, ApiError> {
    let (blocks, size) = {
        let j = journal
            .read()
            .map_err(|_| ApiError::Internal("journal lock poisoned".into()))?;
        (j.blocks().to_vec(), j.size())
    };
    let read_block = |i: usize| match journal.read() {
        Ok(j) => j.read_block(i),
        Err(_) => Err(sealog_journal::JournalError::Poisoned),
    };
    // The scan runs away from the cursor; a page that goes against the
    // display order is reversed afterwards.
    let (scan_order, lo, hi) = match req.cursor {
        None => (req.order, 0, size),
        Some(Cursor::Before(s)) => (Order::Newest, 0, s.min(size)),
        Some(Cursor::After(s)) => (Order::Oldest, s.saturating_add(1).min(size), size),
    };
    let mut found: Vec<(u64, Vec<u8>)> = Vec::new();
    let r = sealog_query::scan(
        &blocks,
        &read_block,
        &req.query,
        Scan {
            order: scan_order,
            limit: Some(req.limit),
            max_bytes: Some(max_bytes),
            seq_from: lo,
            seq_to: hi,
        },
        &mut |seq, line| found.push((seq, line.to_vec())),
    )?;
    let reversed = scan_order != req.order;
    if reversed {
        found.reverse();
    }
    let more_ahead = r.next_cursor.is_some();
    let (first, last) = (found.first().map(|f| f.0), found.last().map(|f| f.0));
    let step = |seq: u64, forward: bool| match (req.order, forward) {
        (Order::Newest, true) | (Order::Oldest, false) => Cursor::Before(seq),
        (Order::Newest, false) | (Order::Oldest, true) => Cursor::After(seq),
    };
    // Forward in display order there is more when the scan ran forward and
    // was stopped, or ran backward from a cursor (the page we came from).
    let next = last
        .filter(|_| if reversed { true } else { more_ahead })
        .map(|s| step(s, true));
    let prev = first
        .filter(|_| {
            if reversed {
                more_ahead
            } else {
                req.cursor.is_some()
            }
        })
        .map(|s| step(s, false));
    // An empty page reached from a cursor still leads back the way it
    // came: `prev` after walking forward, `next` after walking back.
    let back = match (found.is_empty(), req.cursor) {
        (true, Some(Cursor::After(s))) => s.checked_add(1).map(Cursor::Before),
        (true, Some(Cursor::Before(s))) => s.checked_sub(1).map(Cursor::After),
        _ => None,
    };
    let came_forward = matches!(
        (req.order, req.cursor),
        (Order::Newest, Some(Cursor::Before(_))) | (Order::Oldest, Some(Cursor::After(_)))
    );
    let (next, prev) = match back {
        Some(b) if came_forward => (next, Some(b)),
        Some(b) => (Some(b), prev),
        None => (next, prev),
    };
    let nrec = if req.count {
        // Four values at most (the types): no table to bound.
        let counts = lh::count_set(
            &blocks,
            size,
            &read_block,
            &req.query,
            SetAttr::Type,
            u64::MAX,
            None,
        )?;
        counts.map(|c| c.values().sum())
    } else {
        None
    };
    Ok(Page {
        lines: found.into_iter().map(|(_, l)| l).collect(),
        next,
        prev,
        tree_size: size,
        nrec,
    })
}

/// Runs a page request against `realm` within the server's query budget.
///
/// # Errors
/// 503 when the budget is spent; journal errors.
pub async fn page(
    state: &Arc<AppState>,
    realm: &Arc<RealmHandle>,
    req: PageRequest,
) -> Result<(Page, tokio::sync::OwnedSemaphorePermit), ApiError> {
    let (budget, max_bytes) = page_budget(state, realm.name())?;
    let journal = realm.journal().clone();
    let r = tokio::task::spawn_blocking(move || read_page(&journal, &req, max_bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((realm.guard(&state.metrics, r)?, budget))
}

/// Counts per value of `attr` over the entries `q` matches.
///
/// # Errors
/// Journal errors.
pub async fn set(
    state: &Arc<AppState>,
    realm: &Arc<RealmHandle>,
    q: LogsQuery,
    attr: SetAttr,
) -> Result<(HashMap<String, u64>, u64), ApiError> {
    // A count holds a page's share of the query budget while it runs, and
    // its table may not grow past it: a flood of counts over a
    // high-cardinality attribute gets 503s, not the server's memory.
    let (_budget, max_bytes) = page_budget(state, realm.name())?;
    let journal = realm.journal().clone();
    let handle = realm.clone();
    let r = tokio::task::spawn_blocking(move || {
        let (blocks, size) = {
            let j = journal
                .read()
                .map_err(|_| ApiError::Internal("journal lock poisoned".into()))?;
            (j.blocks().to_vec(), j.size())
        };
        let counts = lh::count_set(
            &blocks,
            size,
            &|i| match journal.read() {
                Ok(j) => j.read_block(i),
                Err(_) => Err(sealog_journal::JournalError::Poisoned),
            },
            &q,
            attr,
            max_bytes,
            Some(&handle.facets),
        )?;
        match counts {
            Some(c) => Ok((c, size)),
            None => Err(ApiError::BadRequest(format!(
                "the distinct values of this attribute take more than {} KiB; narrow the filters (app, from/to, ...)",
                max_bytes / 1024
            ))),
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    realm.guard(&state.metrics, r)
}

/// The filters, the order asked for (if any), and the route's own parameters.
type Filters = (LogsQuery, Option<Order>, HashMap<String, String>);

/// The filters every query function takes, read from a query string.
/// Unknown parameters and repeated ones are refused; `extra` names the
/// route's own parameters, returned for the caller to read.
fn filters(ps: &[(String, String)], extra: &[&str]) -> Result<Filters, ApiError> {
    let mut seen: HashMap<String, String> = HashMap::new();
    for (k, v) in ps {
        if seen.insert(k.clone(), v.clone()).is_some() {
            return Err(ApiError::BadRequest(format!(
                "query parameter {k} is given more than once"
            )));
        }
    }
    // Read in the order given, so an error names the first bad one.
    let seen: Vec<(String, String)> = ps.to_vec();
    let mut q = LogsQuery::default();
    let mut own = HashMap::new();
    let (mut from, mut to, mut ndays) = (None, None, None);
    let mut order = None;
    for (k, v) in &seen {
        let text = || Some(v.clone());
        match k.as_str() {
            "app" => q.app = text(),
            "module" => q.module = text(),
            "who" => q.who = text(),
            "class" => q.class = text(),
            "instance" => q.instance = text(),
            "op" => q.op = text(),
            "remote_ip" => q.remote_ip = text(),
            "trace_id" => q.trace_id = text(),
            "system" => q.system = text(),
            "field" => q.field = text(),
            "type" => {
                let t = LhType::parse(v).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "type {v:?} is not C, A, D or U (change, activity, debug, unknown)"
                    ))
                })?;
                q.types = vec![t];
            }
            "pri" => {
                q.min_pri = Some(Pri::parse(v).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "pri {v:?} is not one of Debug2, Debug1, Debug0, Info, Warn, Err, Crit, Sec"
                    ))
                })?)
            }
            "status" => {
                q.status = Some(match v.as_str() {
                    "0" | "success" | "Success" => 0,
                    "1" | "failure" | "Failure" => 1,
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "status {v:?} is not 0 (success) or 1 (failure)"
                        )))
                    }
                })
            }
            "from" => from = Some(time(k, v)?),
            "to" => to = Some(time(k, v)?),
            "ndays" => {
                let n = parse_u64("ndays", v)?;
                if n == 0 || n > 36_500 {
                    return Err(ApiError::BadRequest(format!(
                        "ndays must be 1..36500, got {n}"
                    )));
                }
                ndays = Some(n);
            }
            "order" => {
                order = Some(match v.as_str() {
                    "newest" | "desc" => Order::Newest,
                    "oldest" | "asc" => Order::Oldest,
                    _ => {
                        return Err(ApiError::BadRequest(
                            "order must be newest or oldest".into(),
                        ))
                    }
                })
            }
            other if extra.contains(&other) => {
                own.insert(other.to_string(), v.clone());
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    if q.instance.is_some() && q.class.is_none() {
        return Err(ApiError::BadRequest(
            "instance is only allowed together with class".into(),
        ));
    }
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::BadRequest("to must be after from".into()));
        }
    }
    // `ndays` counts whole days back from today (UTC), and gives way to an
    // explicit bound, as LogHarbour's.
    if from.is_none() && to.is_none() {
        if let Some(n) = ndays {
            from = Some(days_ago(n));
        }
    }
    q.from_ns = from;
    q.to_ns = to;
    let has = |name: &str| seen.iter().any(|(k, _)| k == name);
    if order.is_none() && has("from") && !has("to") {
        order = Some(Order::Oldest);
    }
    Ok((q, order, own))
}

/// The start of the UTC day `n` days before now.
pub fn days_ago(n: u64) -> i64 {
    const DAY: i64 = 86_400_000_000_000;
    let now = sealog_event::now_ns();
    let start = now - now.rem_euclid(DAY);
    start.saturating_sub(DAY.saturating_mul(n as i64))
}

fn time(name: &str, v: &str) -> Result<i64, ApiError> {
    sealog_event::parse_rfc3339(v).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{name} {v:?} is not RFC 3339 (e.g. 2026-11-22T06:00:00Z)"
        ))
    })
}

fn page_params(own: &HashMap<String, String>) -> Result<(Option<Cursor>, u64, bool), ApiError> {
    let cursor = own.get("cursor").map(|c| Cursor::parse(c)).transpose()?;
    let limit = match own.get("limit") {
        None => DEFAULT_PAGE,
        Some(v) => {
            let n = parse_u64("limit", v)?;
            if n == 0 || n > MAX_PAGE {
                return Err(ApiError::BadRequest(format!(
                    "limit must be 1..{MAX_PAGE}, got {n}"
                )));
            }
            n
        }
    };
    let count = match own.get("count").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "count must be true or false, got {v:?}"
            )))
        }
    };
    Ok((cursor, limit, count))
}

/// A page as JSON: `{"logs":[…stored lines…],"next","prev","tree_size"[,"nrec"]}`.
/// The lines are embedded byte for byte, so a client can hash each and
/// check its inclusion against a checkpoint of `tree_size` or later.
fn page_response(page: Page, mut budget: tokio::sync::OwnedSemaphorePermit) -> Response {
    let mut body = Vec::with_capacity(page.lines.iter().map(|l| l.len() + 1).sum::<usize>() + 96);
    body.extend_from_slice(b"{\"logs\":[");
    for (i, l) in page.lines.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(l);
    }
    body.extend_from_slice(b"]");
    let tail = PageTail {
        next: page.next.map(|c| c.to_string()),
        prev: page.prev.map(|c| c.to_string()),
        tree_size: page.tree_size,
        nrec: page.nrec,
    };
    let tail = serde_json::to_vec(&tail).unwrap_or_default();
    // `{"next":…}` → `,"next":…}`
    body.push(b',');
    body.extend_from_slice(&tail[1..]);
    // Keep only what the page holds charged, until it is sent.
    let used = body.len().div_ceil(1024).max(1);
    if used < budget.num_permits() {
        drop(budget.split(budget.num_permits() - used));
    }
    let mut resp = crate::routes::read::chunked(body, budget).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("x-sealog-tree-size", HeaderValue::from(page.tree_size));
    resp
}

#[derive(Serialize)]
struct PageTail {
    next: Option<String>,
    prev: Option<String>,
    tree_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nrec: Option<u64>,
}

async fn query_realm(state: &Arc<AppState>, caller: &Caller) -> Result<Arc<RealmHandle>, ApiError> {
    state
        .realm_async(caller.realm_for(Scope::Query, "read")?)
        .await
}

const PAGE_PARAMS: &[&str] = &["cursor", "limit", "count"];

/// Reads a page route's parameters, lets the route adjust the filters,
/// and answers one page.
async fn serve_page(
    state: &Arc<AppState>,
    caller: &Caller,
    raw: Option<&str>,
    extra: &[&str],
    default_order: Order,
    adjust: impl FnOnce(&mut LogsQuery, &HashMap<String, String>) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    let realm = query_realm(state, caller).await?;
    let mut names = PAGE_PARAMS.to_vec();
    names.extend_from_slice(extra);
    let (mut q, order, own) = filters(&params(raw), &names)?;
    adjust(&mut q, &own)?;
    let (cursor, limit, count) = page_params(&own)?;
    let req = PageRequest {
        query: q,
        order: order.unwrap_or(default_order),
        cursor,
        limit,
        count,
    };
    let (p, budget) = page(state, &realm, req).await?;
    Ok(page_response(p, budget))
}

/// `GET /v1/logs`: `GetLogs`.
pub async fn logs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    serve_page(
        &state,
        &caller,
        raw.as_deref(),
        &[],
        Order::Newest,
        |q, _| {
            logs_rules(q);
            Ok(())
        },
    )
    .await
}

/// The wiki's rule for `GetLogs`: with a priority and no type, data-change
/// entries (which carry no meaningful priority) are left out.
pub fn logs_rules(q: &mut LogsQuery) {
    if q.min_pri.is_some() && q.types.is_empty() {
        q.types = vec![LhType::Activity, LhType::Debug];
    }
}

/// `GET /v1/changes`: `GetChanges`, oldest first.
pub async fn changes(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    serve_page(
        &state,
        &caller,
        raw.as_deref(),
        &[],
        Order::Oldest,
        |q, _| {
            if !q.types.is_empty() && q.types != [LhType::Change] {
                return Err(ApiError::BadRequest(
                    "/v1/changes returns data changes (type C) only".into(),
                ));
            }
            q.types = vec![LhType::Change];
            Ok(())
        },
    )
    .await
}

/// Checks an address as LogHarbour stores them: an IP, or `LOCAL`.
///
/// # Errors
/// [`ApiError::BadRequest`].
pub fn check_ip(ip: &str) -> Result<(), ApiError> {
    if ip == "LOCAL" || ip.parse::<IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "ip {ip:?} is not an IPv4 or IPv6 address (or LOCAL)"
        )))
    }
}

/// `GET /v1/logs-for-ip?ip=`: every entry from one address.
pub async fn logs_for_ip(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    serve_page(
        &state,
        &caller,
        raw.as_deref(),
        &["ip"],
        Order::Newest,
        |q, own| {
            let ip = own
                .get("ip")
                .ok_or_else(|| ApiError::BadRequest("missing query parameter ip".into()))?;
            check_ip(ip)?;
            if q.remote_ip.as_ref().is_some_and(|r| r != ip) {
                return Err(ApiError::BadRequest(
                    "remote_ip and ip name different addresses".into(),
                ));
            }
            q.remote_ip = Some(ip.clone());
            logs_rules(q);
            Ok(())
        },
    )
    .await
}

/// One value and how many entries have it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SetCount {
    /// The value.
    pub value: String,
    /// Entries with it.
    pub count: u64,
}

/// `GET /v1/sets` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SetAnswer {
    /// The attribute counted.
    pub attr: String,
    /// Values by count, then value; at most `limit`.
    pub counts: Vec<SetCount>,
    /// Distinct values in all (more than `counts` holds when truncated).
    pub distinct: u64,
    /// Entries counted.
    pub total: u64,
    /// The realm's size the counts were taken at.
    pub tree_size: u64,
}

/// Sorts counts by count, then value, as LogHarbour's `_count asc`.
pub fn sorted_counts(counts: HashMap<String, u64>) -> Vec<SetCount> {
    let mut v: Vec<SetCount> = counts
        .into_iter()
        .map(|(value, count)| SetCount { value, count })
        .collect();
    v.sort_by(|a, b| a.count.cmp(&b.count).then_with(|| a.value.cmp(&b.value)));
    v
}

/// `GET /v1/sets?attr=`: `GetSet`, with the counts.
pub async fn sets(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<SetAnswer>, ApiError> {
    let realm = query_realm(&state, &caller).await?;
    let (mut q, _, own) = filters(&params(raw.as_deref()), &["attr", "limit"])?;
    let name = own
        .get("attr")
        .ok_or_else(|| ApiError::BadRequest("missing query parameter attr".into()))?;
    let attr = SetAttr::parse(name).map_err(ApiError::BadRequest)?;
    let limit = set_limit(&own)?;
    logs_rules(&mut q);
    let (counts, size) = set(&state, &realm, q, attr).await?;
    let total = counts.values().sum();
    let distinct = counts.len() as u64;
    let mut counts = sorted_counts(counts);
    counts.truncate(limit as usize);
    Ok(Json(SetAnswer {
        attr: name.clone(),
        counts,
        distinct,
        total,
        tree_size: size,
    }))
}

/// `limit` for value lists: 1..100000, default 1000.
fn set_limit(own: &HashMap<String, String>) -> Result<u64, ApiError> {
    match own.get("limit") {
        None => Ok(DEFAULT_SET_LIMIT),
        Some(v) => {
            let n = parse_u64("limit", v)?;
            if n == 0 || n > MAX_SET_LIMIT {
                return Err(ApiError::BadRequest(format!(
                    "limit must be 1..{MAX_SET_LIMIT}, got {n}"
                )));
            }
            Ok(n)
        }
    }
}

/// `GET /v1/apps` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppsAnswer {
    /// Every application with entries, by name.
    pub apps: Vec<String>,
}

/// `GET /v1/apps`: `GetApps`.
pub async fn apps(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<AppsAnswer>, ApiError> {
    let realm = query_realm(&state, &caller).await?;
    let (q, _, _) = filters(&params(raw.as_deref()), &[])?;
    let (counts, _) = set(&state, &realm, q, SetAttr::App).await?;
    let mut apps: Vec<String> = counts.into_keys().collect();
    apps.sort();
    Ok(Json(AppsAnswer { apps }))
}

/// An unusual address, with its place when a GeoIP database is set.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnusualIp {
    /// The address.
    pub ipaddr: String,
    /// Entries from it.
    pub count: u64,
    /// City (English name), if known.
    pub city: Option<String>,
    /// Country (English name), if known.
    pub country: Option<String>,
    /// Latitude, if known.
    pub lat: Option<f64>,
    /// Longitude, if known.
    pub long: Option<f64>,
}

/// `GET /v1/unusual-ips` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnusualAnswer {
    /// Entries with an address.
    pub total: u64,
    /// `max(1, ⌊total · pct / 100⌋)`: an address seen at most this often is unusual.
    pub threshold: u64,
    /// The unusual addresses, rarest first; at most `limit`.
    pub unusual_ips: Vec<UnusualIp>,
    /// Unusual addresses in all (more than the list holds when cut).
    pub unusual: u64,
}

/// Reads `pct` (0.5 ≤ pct ≤ 50).
///
/// # Errors
/// [`ApiError::BadRequest`].
pub fn check_pct(v: &str) -> Result<f64, ApiError> {
    let pct: f64 = v
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite())
        .ok_or_else(|| ApiError::BadRequest(format!("pct {v:?} is not a number")))?;
    if !(0.5..=50.0).contains(&pct) {
        return Err(ApiError::BadRequest(format!(
            "pct must be within 0.5..50, got {pct}"
        )));
    }
    Ok(pct)
}

/// The unusual addresses among `q`'s matches, with their places.
///
/// # Errors
/// Journal errors.
pub async fn unusual(
    state: &Arc<AppState>,
    realm: &Arc<RealmHandle>,
    q: LogsQuery,
    pct: f64,
    limit: usize,
) -> Result<UnusualAnswer, ApiError> {
    let (counts, _) = set(state, realm, q, SetAttr::RemoteIp).await?;
    let total: u64 = counts.values().sum();
    let threshold = ((total as f64 * pct / 100.0).floor() as u64).max(1);
    let all = lh::unusual_ips(&counts, pct);
    let unusual = all.len() as u64;
    let unusual_ips = all
        .into_iter()
        .take(limit)
        .map(|(ip, count)| {
            let place = state.geoip.as_ref().and_then(|g| g.place(&ip));
            let place = place.unwrap_or_default();
            UnusualIp {
                ipaddr: ip,
                count,
                city: place.city,
                country: place.country,
                lat: place.lat,
                long: place.long,
            }
        })
        .collect();
    Ok(UnusualAnswer {
        total,
        threshold,
        unusual_ips,
        unusual,
    })
}

/// `GET /v1/unusual-ips?pct=`: `GetUnusualIP` with the wiki's semantics.
pub async fn unusual_ips(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<UnusualAnswer>, ApiError> {
    let realm = query_realm(&state, &caller).await?;
    let (q, _, own) = filters(&params(raw.as_deref()), &["pct", "limit"])?;
    let pct = check_pct(
        own.get("pct")
            .ok_or_else(|| ApiError::BadRequest("missing query parameter pct".into()))?,
    )?;
    let limit = set_limit(&own)?;
    Ok(Json(unusual(&state, &realm, q, pct, limit as usize).await?))
}

/// A MaxMind DB (GeoLite2/GeoIP2 City) opened at start.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("type", &self.reader.metadata.database_type)
            .finish()
    }
}

/// Where an address is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    /// City, English name.
    pub city: Option<String>,
    /// Country, English name.
    pub country: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub long: Option<f64>,
}

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    city: Option<Names<'a>>,
    #[serde(borrow, default)]
    country: Option<Names<'a>>,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    names: Option<std::collections::BTreeMap<&'a str, &'a str>>,
}

impl Names<'_> {
    fn english(&self) -> Option<String> {
        self.names
            .as_ref()
            .and_then(|n| n.get("en"))
            .map(|s| s.to_string())
    }
}

#[derive(Deserialize)]
struct Location {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

impl GeoIp {
    /// Opens the database at `path`.
    ///
    /// # Errors
    /// The file is missing or not a MaxMind DB.
    pub fn open(path: &std::path::Path) -> Result<GeoIp, String> {
        maxminddb::Reader::open_readfile(path)
            .map(|reader| GeoIp { reader })
            .map_err(|e| format!("GeoIP database {}: {e}", path.display()))
    }

    /// The place of `ip`; `None` for `LOCAL`, a bad address or one the
    /// database does not know.
    pub fn place(&self, ip: &str) -> Option<Place> {
        let addr: IpAddr = ip.parse().ok()?;
        let found = self.reader.lookup(addr).ok()?;
        let rec: CityRecord<'_> = found.decode().ok()??;
        Some(Place {
            city: rec.city.as_ref().and_then(Names::english),
            country: rec.country.as_ref().and_then(Names::english),
            lat: rec.location.as_ref().and_then(|l| l.latitude),
            long: rec.location.as_ref().and_then(|l| l.longitude),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for c in [Cursor::Before(0), Cursor::After(u64::MAX)] {
            assert_eq!(Cursor::parse(&c.to_string()).expect("parse"), c);
        }
        for bad in ["", "before", "before:", "after:-1", "later:3", "before:1x"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_follow_the_wiki() {
        let p = |s: &str| params(Some(s));
        let (q, order, _) = filters(&p("from=2026-01-01T00:00:00Z"), &[]).expect("ok");
        assert_eq!(order, Some(Order::Oldest), "only from: oldest first");
        assert!(q.from_ns.is_some());
        let (_, order, _) = filters(&p("to=2026-01-01T00:00:00Z"), &[]).expect("ok");
        assert_eq!(order, None);
        let (q, _, _) = filters(&p("ndays=3&from=2026-01-01T00:00:00Z"), &[]).expect("ok");
        assert_eq!(
            q.from_ns,
            sealog_event::parse_rfc3339("2026-01-01T00:00:00Z")
        );
        assert!(filters(&p("instance=x"), &[]).is_err());
        assert!(filters(&p("class=c&instance=x"), &[]).is_ok());
        assert!(filters(&p("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"), &[]).is_err());
        assert!(filters(&p("app=a&app=b"), &[]).is_err());
        assert!(filters(&p("pri=Sec"), &[]).is_ok());
        assert!(filters(&p("pri=Urgent"), &[]).is_err());
        assert!(filters(&p("bogus=1"), &[]).is_err());
        assert!(filters(&p("ndays=0"), &[]).is_err());
        let mut q = filters(&p("pri=Warn"), &[]).expect("ok").0;
        logs_rules(&mut q);
        assert_eq!(q.types, vec![LhType::Activity, LhType::Debug]);
        assert!(check_pct("0.4").is_err() && check_pct("50").is_ok() && check_pct("NaN").is_err());
        assert!(check_ip("LOCAL").is_ok() && check_ip("::1").is_ok() && check_ip("1.2.3").is_err());
    }
}
