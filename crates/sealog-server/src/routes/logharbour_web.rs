//! LogHarbour's web service (seed §2.8), route for route, with its request
//! bodies and its envelope, but behind the realm's query token:
//!
//! ```json
//! {"status":"success","data":<payload>,"messages":[]}
//! {"status":"error","data":null,"messages":[{"msgid":101,"errcode":"required","field":"App"}]}
//! ```
//!
//! Every rule a body breaks is reported, each as one message naming the
//! field as LogHarbour's Go structs do (`App`, `SetAttr`, …):
//!
//! | msgid | errcode | when |
//! |---|---|---|
//! | 101 | `required` | a required field is missing, null or empty |
//! | 102 | `greater` | a number must be greater than 0 (`days`) |
//! | 103 | `alphabet` | `app`, `module` must be letters only |
//! | 100 | `validation_error` | too long, wrong JSON type, an attribute not allowed |
//! | 100 | `invalid_priority` | not a priority name (`Sec` is one: upstream refused it) |
//! | 100 | `invalid_days` | over the route's day limit |
//! | 100 | `invalid_ip` | not an IP address |
//! | 100 | `pagination_error` | a bad `search_after_timestamp` or `search_after_doc_id` |
//! | 1006 | `invalid_request` | the body is not a JSON object (400) |
//! | 1002 | `unauthorized` | no or a bad query token (401), or another scope (403) |
//! | 1001 | `database_error` | the realm cannot be read (503) |
//!
//! Paging: `search_after_timestamp` keeps entries before that time;
//! `search_after_doc_id` takes the `x-sealog-next-cursor` header of the
//! previous page (a sealog cursor, `before:N`), since LogHarbour's pair of
//! timestamp and Elasticsearch id never worked (§2.7).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sealog_query::logharbour::{LhType, LogsQuery, Pri, SetAttr};
use sealog_query::Order;
use serde_json::{json, Map, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::realm::RealmHandle;
use crate::routes::logharbour::{self as v1, Cursor, PageRequest};
use crate::state::AppState;

/// One envelope message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    msgid: u32,
    errcode: &'static str,
    field: Option<String>,
}

fn envelope_error(status: StatusCode, msgs: &[Msg]) -> Response {
    let messages: Vec<Value> = msgs
        .iter()
        .map(|m| {
            let mut o = json!({"msgid": m.msgid, "errcode": m.errcode});
            if let Some(f) = &m.field {
                o["field"] = Value::String(f.clone());
            }
            o
        })
        .collect();
    (
        status,
        axum::Json(json!({"status": "error", "data": null, "messages": messages})),
    )
        .into_response()
}

/// A sealog error as an envelope.
fn from_api(e: ApiError) -> Response {
    let (status, msgid, code) = match &e {
        ApiError::Unauthenticated | ApiError::BadToken => {
            (StatusCode::UNAUTHORIZED, 1002, "unauthorized")
        }
        ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, 1002, "unauthorized"),
        ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, 100, "validation_error"),
        ApiError::Overloaded(_) | ApiError::ShuttingDown => {
            (StatusCode::SERVICE_UNAVAILABLE, 1001, "database_error")
        }
        ApiError::RealmFailed { .. } | ApiError::Unavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, 1001, "database_error")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, 1001, "internal_err"),
    };
    if status.is_server_error() {
        tracing::warn!(cause = %e, "LogHarbour web service call failed");
    }
    let mut resp = envelope_error(
        status,
        &[Msg {
            msgid,
            errcode: code,
            field: None,
        }],
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

fn success(data: Value, next: Option<Cursor>) -> Response {
    let mut resp =
        axum::Json(json!({"status": "success", "data": data, "messages": []})).into_response();
    if let Some(c) = next {
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            resp.headers_mut().insert("x-sealog-next-cursor", v);
        }
    }
    resp
}

/// A request body being checked; every broken rule becomes a message.
struct Body {
    obj: Map<String, Value>,
    msgs: Vec<Msg>,
}

/// `search_after_doc_id` → `SearchAfterDocId`, `setAttr` → `SetAttr`: the
/// Go struct field names LogHarbour's messages carry.
fn go_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut up = true;
    for c in key.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Largest request body the web service reads.
const MAX_BODY: usize = 64 * 1024;

impl Body {
    async fn read(state: &AppState, body: axum::body::Body) -> Result<Body, Response> {
        let within = std::time::Duration::from_secs(state.config.limits.body_timeout_secs.max(1));
        let raw = crate::front::read_body(body, MAX_BODY, within)
            .await
            .map_err(|e| {
                let status = match e {
                    ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
                    _ => StatusCode::BAD_REQUEST,
                };
                envelope_error(
                    status,
                    &[Msg {
                        msgid: 1006,
                        errcode: "invalid_request",
                        field: None,
                    }],
                )
            })?;
        Body::parse(&raw).map_err(|r| *r)
    }

    fn parse(bytes: &[u8]) -> Result<Body, Box<Response>> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(obj)) => Ok(Body {
                obj,
                msgs: Vec::new(),
            }),
            _ => Err(Box::new(envelope_error(
                StatusCode::BAD_REQUEST,
                &[Msg {
                    msgid: 1006,
                    errcode: "invalid_request",
                    field: None,
                }],
            ))),
        }
    }

    fn fail(&mut self, key: &str, msgid: u32, errcode: &'static str) {
        self.msgs.push(Msg {
            msgid,
            errcode,
            field: Some(go_name(key)),
        });
    }

    /// A string field; a missing, null or empty required one is `required`.
    fn string(&mut self, key: &str, required: bool) -> Option<String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(key, 101, "required");
                }
                None
            }
            Some(Value::String(s)) if s.is_empty() => {
                if required {
                    self.fail(key, 101, "required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.fail(key, 100, "validation_error");
                None
            }
        }
    }

    /// A letters-only string of fewer than `max` characters.
    fn alpha(&mut self, key: &str, required: bool, max: Option<usize>) -> Option<String> {
        let s = self.string(key, required)?;
        if !s.chars().all(|c| c.is_ascii_alphabetic()) {
            self.fail(key, 103, "alphabet");
            return None;
        }
        if max.is_some_and(|m| s.chars().count() >= m) {
            self.fail(key, 100, "validation_error");
            return None;
        }
        Some(s)
    }

    /// A whole number of days, 1 up to `max`.
    fn days(&mut self, key: &str, required: bool, max: u64) -> Option<u64> {
        let v = match self.obj.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(key, 101, "required");
                }
                return None;
            }
            Some(v) => v.clone(),
        };
        if v.as_u64().is_some_and(|n| n > max) {
            self.fail(key, 100, "invalid_days");
            return None;
        }
        match v.as_i64() {
            Some(n) if n <= 0 => {
                // A zero is "missing" to Go's validator when required.
                if n == 0 && required {
                    self.fail(key, 101, "required");
                } else {
                    self.fail(key, 102, "greater");
                }
                None
            }
            Some(n) if n as u64 > max => {
                self.fail(key, 100, "invalid_days");
                None
            }
            Some(n) => Some(n as u64),
            None => {
                self.fail(key, 100, "validation_error");
                None
            }
        }
    }

    fn priority(&mut self, key: &str, required: bool) -> Option<Pri> {
        let s = self.string(key, required)?;
        let p = Pri::parse(&s);
        if p.is_none() {
            self.fail(key, 100, "invalid_priority");
        }
        p
    }

    fn time(&mut self, key: &str, errcode: &'static str) -> Option<i64> {
        let s = self.string(key, false)?;
        let t = sealog_event::parse_rfc3339(&s);
        if t.is_none() {
            self.fail(key, 100, errcode);
        }
        t
    }

    /// `search_after_timestamp` and `search_after_doc_id`.
    fn paging(&mut self, q: &mut LogsQuery) -> Option<Cursor> {
        if let Some(t) = self.time("search_after_timestamp", "pagination_error") {
            // Strictly before, newest first.
            let before = t.saturating_sub(1);
            q.to_ns = Some(q.to_ns.map_or(before, |to| to.min(before)));
        }
        let id = self.string("search_after_doc_id", false)?;
        match Cursor::parse(&id) {
            Ok(c) => Some(c),
            Err(_) => {
                self.fail("search_after_doc_id", 100, "pagination_error");
                None
            }
        }
    }

    fn finish(self) -> Result<(), Box<Response>> {
        if self.msgs.is_empty() {
            Ok(())
        } else {
            Err(Box::new(envelope_error(
                StatusCode::BAD_REQUEST,
                &self.msgs,
            )))
        }
    }
}

async fn realm(
    state: &Arc<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Arc<RealmHandle>, Response> {
    let caller = caller.map_err(from_api)?;
    let name = caller
        .realm_for(sealog_store::Scope::Query, "read")
        .map_err(from_api)?;
    state.realm_async(name).await.map_err(from_api)
}

/// The token's realm and the request body, or the envelope refusing them.
async fn start(
    state: &Arc<AppState>,
    caller: Result<Caller, ApiError>,
    body: axum::body::Body,
) -> Result<(Arc<RealmHandle>, Body), Response> {
    let realm = realm(state, caller).await?;
    let b = Body::read(state, body).await?;
    Ok((realm, b))
}

/// Finishes a page route: reads the paging fields, refuses a body that
/// broke any rule, runs the query from `days` ago, and shapes the data.
async fn answer_page(
    state: &Arc<AppState>,
    realm: &Arc<RealmHandle>,
    mut b: Body,
    mut query: LogsQuery,
    days: Option<u64>,
    shape: fn(Vec<Value>, Option<u64>) -> Value,
    count: bool,
) -> Response {
    if query.instance.is_some() && query.class.is_none() {
        let key = if b.obj.contains_key("instance_id") {
            "instance_id"
        } else {
            "instance"
        };
        b.fail(key, 100, "validation_error");
    }
    let cursor = b.paging(&mut query);
    if let Err(resp) = b.finish() {
        return *resp;
    }
    if days.is_some() {
        query.from_ns = days.map(v1::days_ago);
    }
    let req = PageRequest {
        query,
        order: Order::Newest,
        cursor,
        limit: v1::DEFAULT_PAGE,
        count,
    };
    match v1::page(state, realm, req).await {
        Ok((page, _budget)) => {
            let logs = page
                .lines
                .iter()
                .map(|l| serde_json::from_slice(l).unwrap_or(Value::Null))
                .collect();
            success(shape(logs, page.nrec), page.next)
        }
        Err(e) => from_api(e),
    }
}

fn logs_object(logs: Vec<Value>, _: Option<u64>) -> Value {
    json!({"logs": logs})
}

fn activity_data(logs: Vec<Value>, nrec: Option<u64>) -> Value {
    json!({"LogEntery": logs, "Nrec": nrec.unwrap_or(0)})
}

fn array_data(logs: Vec<Value>, _: Option<u64>) -> Value {
    Value::Array(logs)
}

/// `POST /api/v1/highprilog`: `{"app","pri","days"}`, entries at or above
/// `pri` in the last `days` days.
pub async fn highprilog(
    State(state): State<Arc<AppState>>,
    caller: Result<Caller, ApiError>,
    body: axum::body::Body,
) -> Response {
    let (realm, mut b) = match start(&state, caller, body).await {
        Ok(rb) => rb,
        Err(resp) => return resp,
    };
    let mut q = LogsQuery {
        app: b.alpha("app", true, Some(15)),
        min_pri: b.priority("pri", true),
        ..LogsQuery::default()
    };
    v1::logs_rules(&mut q);
    let days = b.days("days", true, 1002);
    answer_page(&state, &realm, b, q, days, logs_object, false).await
}

/// `POST /api/v1/activitylog`: activity entries; data is
/// `{"LogEntery":[…],"Nrec":n}`, LogHarbour's own (misspelt) names.
pub async fn activitylog(
    State(state): State<Arc<AppState>>,
    caller: Result<Caller, ApiError>,
    body: axum::body::Body,
) -> Response {
    let (realm, mut b) = match start(&state, caller, body).await {
        Ok(rb) => rb,
        Err(resp) => return resp,
    };
    let q = LogsQuery {
        app: b.string("app", true),
        who: b.string("who", false),
        class: b.string("class", false),
        instance: b.string("instance_id", false),
        op: b.string("op", false),
        min_pri: b.priority("priority", false),
        types: vec![LhType::Activity],
        ..LogsQuery::default()
    };
    let days = b.days("days", true, 499);
    // Nrec is every match, as LogHarbour's hits.total.
    answer_page(&state, &realm, b, q, days, activity_data, true).await
}

/// `POST /api/v1/debuglog`: debug entries of one module; data is the array.
pub async fn debuglog(
    State(state): State<Arc<AppState>>,
    caller: Result<Caller, ApiError>,
    body: axum::body::Body,
) -> Response {
    let (realm, mut b) = match start(&state, caller, body).await {
        Ok(rb) => rb,
        Err(resp) => return resp,
    };
    let q = LogsQuery {
        app: b.string("app", true),
        module: b.alpha("module", true, None),
        min_pri: b.priority("pri", true),
        trace_id: b.string("trace_id", false),
        types: vec![LhType::Debug],
        ..LogsQuery::default()
    };
    let days = b.days("days", true, 1002);
    answer_page(&state, &realm, b, q, days, array_data, false).await
}

/// `POST /api/v1/datachange`: data changes, `field` matched inside them.
pub async fn datachange(
    State(state): State<Arc<AppState>>,
    caller: Result<Caller, ApiError>,
    body: axum::body::Body,
) -> Response {
    let (realm, mut b) = match start(&state, caller, body).await {
        Ok(rb) => rb,
        Err(resp) => return resp,
    };
    let q = LogsQuery {
        app: b.string("app", true),
        who: b.string("who", false),
        class: b.string("class", false),
        instance: b.string("instance", false),
        field: b.string("field", false),
        types: vec![LhType::Change],
        ..LogsQuery::default()
    };
    let days = b.days("days", false, 1002);
    answer_page(&state, &realm, b, q, days, logs_object, false).await
}

/// `POST /api/v1/getset`: the distinct values of `setAttr`, rarest first
/// (LogHarbour's data drops the counts; `/v1/sets` keeps them).
pub async fn getset(
    State(state): State<Arc<AppState>>,
    caller: Result<Caller, ApiError>,
    body: axum::body::Body,
) -> Response {
    let (realm, mut b) = match start(&state, caller, body).await {
        Ok(rb) => rb,
        Err(resp) => return resp,
    };
    let app = b.string("app", true);
    let attr = b
        .string("setAttr", true)
        .and_then(|a| match SetAttr::parse(&a) {
            Ok(a) => Some(a),
            Err(_) => {
                b.fail("setAttr", 100, "validation_error");
                None
            }
        });
    let mut q = LogsQuery {
        app,
        who: b.string("who", false),
        class: b.string("class", false),
        instance: b.string("instance", false),
        op: b.string("op", false),
        min_pri: b.priority("pri", false),
        ..LogsQuery::default()
    };
    if let Some(t) = b.string("type", false) {
        match LhType::parse(&t) {
            Some(t) => q.types = vec![t],
            None => b.fail("type", 100, "validation_error"),
        }
    }
    if let Some(ip) = b.string("remoteIP", false) {
        if v1::check_ip(&ip).is_err() {
            b.fail("remoteIP", 100, "invalid_ip");
        }
        q.remote_ip = Some(ip);
    }
    if q.instance.is_some() && q.class.is_none() {
        b.fail("instance", 100, "validation_error");
    }
    let from = b.time("fromts", "validation_error");
    let to = b.time("tots", "validation_error");
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            b.fail("tots", 100, "validation_error");
        }
    }
    let ndays = b.days("ndays", false, 99);
    if let Err(resp) = b.finish() {
        return *resp;
    }
    q.from_ns = from.or_else(|| to.is_none().then(|| ndays.map(v1::days_ago)).flatten());
    q.to_ns = to;
    v1::logs_rules(&mut q);
    let Some(attr) = attr else {
        return from_api(ApiError::Internal("setAttr checked above".into()));
    };
    match v1::set(&state, &realm, q, attr).await {
        Ok((counts, _)) => {
            let values: Vec<Value> = v1::sorted_counts(counts)
                .into_iter()
                .take(v1::DEFAULT_SET_LIMIT as usize)
                .map(|c| Value::String(c.value))
                .collect();
            success(Value::Array(values), None)
        }
        Err(e) => from_api(e),
    }
}

/// `GET /api/v1/getapps`: every application, by name.
pub async fn getapps(
    State(state): State<Arc<AppState>>,
    caller: Result<Caller, ApiError>,
) -> Response {
    let realm = match realm(&state, caller).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match v1::set(&state, &realm, LogsQuery::default(), SetAttr::App).await {
        Ok((counts, _)) => {
            let mut apps: Vec<String> = counts.into_keys().collect();
            apps.sort();
            success(json!(apps), None)
        }
        Err(e) => from_api(e),
    }
}

/// `POST /api/v1/getunusualips`: `{"app","days","unusualPercent"}`; data is
/// `{"unusualIPs":[{"ipaddr","city","country","lat","long"}]}`, or the
/// string `"No unusual IP"`.
pub async fn getunusualips(
    State(state): State<Arc<AppState>>,
    caller: Result<Caller, ApiError>,
    body: axum::body::Body,
) -> Response {
    let (realm, mut b) = match start(&state, caller, body).await {
        Ok(rb) => rb,
        Err(resp) => return resp,
    };
    let app = b.string("app", true);
    let days = b.days("days", true, 1002);
    let pct = match b.obj.get("unusualPercent") {
        None | Some(Value::Null) => {
            b.fail("unusualPercent", 101, "required");
            None
        }
        Some(v) => match v.as_f64().map(|p| (p, v1::check_pct(&p.to_string()))) {
            Some((p, Ok(_))) => Some(p),
            _ => {
                b.fail("unusualPercent", 100, "validation_error");
                None
            }
        },
    };
    if let Err(resp) = b.finish() {
        return *resp;
    }
    let q = LogsQuery {
        app,
        from_ns: days.map(v1::days_ago),
        ..LogsQuery::default()
    };
    match v1::unusual(
        &state,
        &realm,
        q,
        pct.unwrap_or(1.0),
        v1::DEFAULT_SET_LIMIT as usize,
    )
    .await
    {
        Ok(a) if a.unusual_ips.is_empty() => success(json!("No unusual IP"), None),
        Ok(a) => {
            let ips: Vec<Value> = a
                .unusual_ips
                .into_iter()
                .map(|u| {
                    json!({"ipaddr": u.ipaddr, "city": u.city, "country": u.country,
                           "lat": u.lat, "long": u.long})
                })
                .collect();
            success(json!({"unusualIPs": ips}), None)
        }
        Err(e) => from_api(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_names() {
        assert_eq!(go_name("app"), "App");
        assert_eq!(go_name("search_after_doc_id"), "SearchAfterDocId");
        assert_eq!(go_name("setAttr"), "SetAttr");
        assert_eq!(go_name("remoteIP"), "RemoteIP");
    }

    #[test]
    fn every_broken_rule_is_one_message() {
        let mut b =
            Body::parse(br#"{"app":"ab1","days":0,"pri":"Loud","module":7}"#).expect("object");
        assert_eq!(b.alpha("app", true, Some(15)), None);
        assert_eq!(b.days("days", true, 1002), None);
        assert_eq!(b.priority("pri", true), None);
        assert_eq!(b.string("module", true), None);
        assert_eq!(b.string("who", true), None);
        let codes: Vec<(u32, &str, String)> = b
            .msgs
            .iter()
            .map(|m| (m.msgid, m.errcode, m.field.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (103, "alphabet", "App".into()),
                (101, "required", "Days".into()),
                (100, "invalid_priority", "Pri".into()),
                (100, "validation_error", "Module".into()),
                (101, "required", "Who".into()),
            ]
        );
        let mut b = Body::parse(br#"{"days":-3,"n":2000}"#).expect("object");
        assert_eq!(b.days("days", true, 10), None);
        assert_eq!(b.days("n", true, 1002), None);
        assert_eq!(b.msgs[0].errcode, "greater");
        assert_eq!(b.msgs[1].errcode, "invalid_days");
        assert!(Body::parse(b"[1]").is_err());
        assert!(Body::parse(b"{").is_err());
    }
}
