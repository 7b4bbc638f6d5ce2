//! The OpenAPI 3.1 document of the HTTP API, served at `GET /v1/openapi.json`.
//!
//! Bodies come from the types the handlers send and receive (`ToSchema`
//! derives on [`Receipt`], [`CreatedRealm`], the proof and admin types and
//! the one error body); the operations are listed here, on doc-only stub
//! functions, so the handlers in [`crate::routes`] stay free of
//! documentation attributes. A test checks that every route the router
//! serves is documented and every documented operation is served, so the
//! two cannot drift; `tests/schemathesis/run.sh` checks a live server
//! against the document with every token scope.
//!
//! Every refusal has one body, [`ErrorBody`](crate::error::Body):
//! `{"error": string}` plus `lines` naming refused ingest lines. Responses
//! the router gives for any path (404 for an unknown path, 405 for a
//! method a path does not serve) are in `components.responses` and named
//! in the document's description, since OpenAPI has no place for them on
//! an operation.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sealog_journal::Receipt;
use sealog_store::{CreatedRealm, IssuedToken, Scope, TokenInfo};
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::drain::{DrainState, StatusView};
use crate::error::{Body as ErrorBody, LineError};
use crate::routes::admin::{NewRealm, NewToken, RetentionRequest, VerifyReport, VerifyRequest};
use crate::routes::drains::{
    Addon, CreatedSession, DrainView, NewDrain, NewFilterDrain, NewSession,
};
use crate::routes::logharbour::{AppsAnswer, SetAnswer, SetCount, UnusualAnswer, UnusualIp};
use crate::routes::read::{ConsistencyProof, InclusionProof, RangeProof};

/// The document as served: JSON, built once.
pub fn document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi())
            .expect("the OpenAPI document is plain data and always serializes");
        require_headers(&mut doc);
        serde_json::to_vec(&doc).expect("a JSON value always serializes")
    })
}

/// `GET /v1/openapi.json` (no token).
pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// Response headers that are sent only sometimes; every other documented
/// response header is always sent and is marked `required` (utoipa's
/// `Header` has no such field, so [`document`] sets it on the JSON).
const CONDITIONAL_HEADERS: &[(&str, &str)] = &[
    // A failed realm's 503 carries no retry hint: retrying will not help.
    ("503", "retry-after"),
    // Only when the limit stopped the scan.
    ("200", "x-sealog-next-cursor"),
];

fn require_headers(doc: &mut Value) {
    fn mark(status: &str, response: &mut Value) {
        let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) else {
            return;
        };
        for (name, h) in headers.iter_mut() {
            let conditional = CONDITIONAL_HEADERS
                .iter()
                .any(|(s, n)| *s == status && n.eq_ignore_ascii_case(name));
            if let (false, Some(h)) = (conditional, h.as_object_mut()) {
                h.insert("required".into(), Value::Bool(true));
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in item.values_mut() {
                if let Some(rs) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    for (status, r) in rs.iter_mut() {
                        mark(status, r);
                    }
                }
            }
        }
    }
    // Shared responses carry their status in their name's table below.
    if let Some(rs) = doc
        .pointer_mut("/components/responses")
        .and_then(Value::as_object_mut)
    {
        for (name, r) in rs.iter_mut() {
            let status = SHARED_STATUS
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, s)| s);
            mark(status, r);
        }
    }
}

/// The status each shared response in `components.responses` is used with.
const SHARED_STATUS: &[(&str, &str)] = &[
    ("BadRequest", "400"),
    ("BadLines", "400"),
    ("Unauthorized", "401"),
    ("Forbidden", "403"),
    ("NotFound", "404"),
    ("MethodNotAllowed", "405"),
    ("Timeout", "408"),
    ("Conflict", "409"),
    ("TooLarge", "413"),
    ("UnsupportedMediaType", "415"),
    ("Unprocessable", "422"),
    ("Unavailable", "503"),
    ("StorageFull", "507"),
];

const DESCRIPTION: &str = "\
sealog's HTTP API: ingest with durable receipts, query, Merkle proofs, \
live tail and administration.

**Tokens.** Send `Authorization: Bearer <token>`. A token has one scope \
(`write`, `query` or `admin`) and, except for admin tokens, one realm: the \
realm is always the token's. No token, a malformed header, or an unknown \
or revoked token: 401 with `WWW-Authenticate: Bearer`. A token of another \
scope: 403. `/health`, `/ready`, `/metrics` and `/v1/openapi.json` need no \
token; `/octhc` (logshuttle's health text) and `/actuator/health` \
(Spring's shape, for Palisade's probes) need none, and \
`GET /log-sessions/{id}` takes the session's id as its only credential. \
Drain routes also take the bare write token, as logshuttle's `AUTH_KEY`.

**Errors.** Every refusal is JSON `{\"error\": \"<message>\"}`; a refused \
ingest batch adds `lines`, `[{\"line\", \"reason\"}]`. Besides the \
statuses listed per operation, any path answers 404 (`NotFound`) when it \
is not one of these and 405 (`MethodNotAllowed`) for a method it does not \
serve, and any operation may answer 503 with `Retry-After` when the \
server is over its concurrency limit.";

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(title = "sealog", description = DESCRIPTION, license(name = "Apache-2.0")),
    paths(
        operations::ingest, operations::log_events,
        operations::query, operations::checkpoint, operations::inclusion,
        operations::consistency, operations::range, operations::tail, operations::stats,
        operations::list_realms, operations::create_realm, operations::list_tokens,
        operations::issue_token, operations::revoke_token, operations::verify, operations::retention,
        operations::health, operations::ready, operations::metrics, operations::openapi_json,
        operations::console, operations::console_script, operations::console_style,
        operations::create_app_drain, operations::list_app_drains, operations::get_app_drain,
        operations::delete_app_drain, operations::create_site_drain, operations::list_site_drains,
        operations::get_site_drain, operations::delete_site_drain, operations::create_filter_drain,
        operations::list_drains, operations::get_drain, operations::delete_drain,
        operations::create_session, operations::read_session, operations::octhc,
        operations::audit_success, operations::audit_error, operations::actuator_health,
        operations::sidecars, operations::create_inquiry, operations::get_inquiry,
        operations::post_digest, operations::get_digest, operations::upstream_post_digest,
        operations::upstream_get_digest,
        operations::lh_logs, operations::lh_changes, operations::lh_logs_for_ip, operations::lh_sets,
        operations::lh_apps, operations::lh_unusual_ips, operations::lh_web_highprilog,
        operations::lh_web_activitylog, operations::lh_web_debuglog, operations::lh_web_datachange,
        operations::lh_web_getset, operations::lh_web_getunusualips, operations::lh_web_getapps,
    ),
    components(
        schemas(ErrorBody, LineError, Receipt, RangeProof, Scope, TokenInfo, IssuedToken, CreatedRealm,
            DrainView, Addon, StatusView, DrainState, NewDrain, NewFilterDrain, NewSession, CreatedSession,
            AuditAck, AuditInvalid, ActuatorHealth, KmsError, SidecarView, InquiryCreated,
            crate::forensic::Inquiry, crate::forensic::CommitResult, crate::forensic::Status,
            DigestQueued, DigestMessage, DigestView, crate::digest::Meta, crate::digest::Input,
            LogsPage, Envelope, EnvelopeMessage, SetAnswer, SetCount, AppsAnswer, UnusualAnswer, UnusualIp),
        responses(
            responses::BadRequest, responses::BadLines, responses::Unauthorized, responses::Forbidden, responses::NotFound,
            responses::MethodNotAllowed, responses::Timeout,
            responses::Conflict, responses::TooLarge, responses::UnsupportedMediaType,
            responses::Unprocessable, responses::Unavailable, responses::StorageFull,
        ),
    ),
    modifiers(&Bearer),
    tags(
        (name = "ingest", description = "Append events (write tokens)."),
        (name = "read", description = "Query, checkpoints, proofs and tail (query tokens)."),
        (name = "admin", description = "Realms, tokens and the verifier (admin tokens)."),
        (name = "drains", description = "Drains and log sessions, logshuttle's API (realm write tokens, bare or Bearer)."),
        (name = "ops", description = "Health, readiness, metrics and this document (no token)."),
        (name = "console", description = "The web console's page, script and style sheet (no token: they hold no data)."),
        (name = "audit", description = "Palisade's audit service (realm write tokens)."),
        (name = "forensic", description = "Mojaloop central-kms: sidecars and inquiries (admin token, or the realm's query token)."),
        (name = "logharbour", description = "LogHarbour's query functions and web service (query tokens)."),
        (name = "digests", description = "VPC flow-log digests (write token to request, query or write token to read)."),
    ),
)]
struct ApiDoc;

/// The `bearer` security scheme.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `POST /v1/admin/realms`, `POST /v1/admin/tokens` or, for \
                         the admin token, `<data>/admin.token`. The requirement's role names \
                         the scope the operation needs.",
                    ))
                    .build(),
            ),
        );
    }
}

// ---- Shared bodies that have no Rust type of their own ----------------

/// One event: a JSON object, stored byte for byte with `realm`, `seq` and
/// `received_at` added in front (those three names are reserved).
#[derive(Debug, ToSchema)]
#[schema(example = json!({"time": "2026-11-22T06:00:00Z", "app": "payments", "msg": "card authorised"}))]
pub struct Event(pub serde_json::Map<String, Value>);

/// A fluentd/Kubernetes `LogSpec` object; `kubernetes.container_name` is
/// required (`app--proc_type`).
#[derive(Debug, ToSchema)]
#[schema(example = json!({"log": "started", "stream": "stdout", "time": "2026-11-22T06:00:00Z",
    "kubernetes": {"container_name": "payments--web", "namespace_name": "prod", "pod_name": "payments-web-1"}}))]
pub struct LogSpec(pub serde_json::Map<String, Value>);

/// A realm as `GET /v1/admin/realms` lists it. A realm whose files cannot
/// be read has only `name` and `error`; a failed realm adds
/// `status: "failed"` and `error`.
#[derive(Debug, ToSchema)]
pub struct RealmEntry {
    /// The realm's name.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created_at: Option<String>,
    /// Its checkpoint verifier key (`sealog/<realm>+<id>+<key>`).
    pub public_key: Option<String>,
    /// True when the journal was created with the realm.
    pub journal_created: Option<bool>,
    /// `failed` when the realm failed to open or an integrity check.
    pub status: Option<String>,
    /// Why the realm cannot be read or failed.
    pub error: Option<String>,
}

/// The records one retention record removed, as the verifier found them.
#[derive(Debug, ToSchema)]
pub struct RetainedOut {
    /// The retention record's id.
    pub id: u64,
    /// Its policy (`days=30 app=shop`).
    pub policy: String,
    /// When it was made (RFC 3339).
    pub at: String,
    /// Records removed.
    pub records: u64,
    /// Half-open seq ranges `[start, end)`.
    pub ranges: Vec<[u64; 2]>,
}

/// One problem the verifier found.
#[derive(Debug, ToSchema)]
pub struct VerifyFinding {
    /// The first bad seq.
    pub seq: u64,
    /// The end of the bad range, when known.
    pub end: Option<u64>,
    /// What is wrong.
    pub reason: String,
    /// The finding as one line of text.
    pub text: String,
}

/// The coded acknowledgement of an audit message (gchq/Palisade #289):
/// sent once its record is durable.
#[derive(Debug, ToSchema)]
pub struct AuditAck {
    /// `accepted`, or `rejected` (kept, but it failed a rule).
    pub status: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// The commit's receipt.
    pub receipt: Receipt,
}

/// A body that is not an audit message, or a missing `x-request-token`.
/// The body was kept in the audit error directory and as a dead-letter
/// record (not for a missing header).
#[derive(Debug, ToSchema)]
pub struct AuditInvalid {
    /// What is wrong.
    pub error: String,
    /// The field at fault.
    pub field: Option<String>,
    /// `invalid` when the body was kept as a dead letter.
    pub status: Option<String>,
}

/// Spring Actuator's health shape.
#[derive(Debug, ToSchema)]
pub struct ActuatorHealth {
    /// `UP`, or `DOWN` while shutting down.
    pub status: String,
}

/// The Mojaloop KMS's error body.
#[derive(Debug, ToSchema)]
pub struct KmsError {
    /// 1 (bad body), 40002 (unknown service), 40010 (bad window), 40400
    /// (unknown inquiry).
    pub code: u32,
    /// What is wrong.
    pub message: String,
}

/// A connected sidecar.
#[derive(Debug, ToSchema)]
#[allow(non_snake_case)]
pub struct SidecarView {
    /// Random id of the connection.
    pub id: String,
    /// The service it logs for, when known.
    pub serviceName: Option<String>,
    /// `connected`.
    pub status: String,
    /// Its realm.
    pub realm: String,
    /// Its address.
    pub peer: String,
    /// When it connected.
    pub connected_since: String,
    /// Frames received.
    pub frames: u64,
    /// Bytes of frames received.
    pub bytes: u64,
}

/// A queued inquiry.
#[derive(Debug, ToSchema)]
pub struct InquiryCreated {
    /// Its id.
    pub id: String,
}

/// A queued digest.
#[derive(Debug, ToSchema)]
pub struct DigestQueued {
    /// The digest id (vpcflow-digesterd's UUIDv5).
    pub id: String,
    /// `queued`.
    pub status: String,
}

/// vpcflow-digesterd's error and conflict body.
#[derive(Debug, ToSchema)]
pub struct DigestMessage {
    /// What happened.
    pub message: String,
}

/// A digest as JSON.
#[derive(Debug, ToSchema)]
pub struct DigestView {
    /// What was computed, from which records.
    pub digest: crate::digest::Meta,
    /// The digest's lines.
    pub lines: Vec<String>,
}

/// `GET /health`.
#[derive(Debug, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /ready` when ready.
#[derive(Debug, ToSchema)]
pub struct Ready {
    /// `ready`.
    #[schema(example = "ready")]
    pub status: String,
}

/// Shared responses. Each wraps the error body only to hand its schema to
/// the `ToResponse` derive; none is built at run time.
#[allow(dead_code)]
mod responses {
    use super::ErrorBody;
    use utoipa::ToResponse;

    /// The request is malformed: a parameter, the body or its encoding.
    #[derive(ToResponse)]
    pub struct BadRequest(ErrorBody<'static>);

    /// The batch was refused whole: `lines` names the bad lines (NDJSON lines
    /// count from 1, JSON array elements from 0; the first 100 are listed), or
    /// the body is malformed or holds no events. Nothing was committed.
    #[derive(ToResponse)]
    #[response(example = json!({"error": "1 invalid line(s); nothing was committed",
        "lines": [{"line": 3, "reason": "invalid JSON at column 2: key must be a string"}]}))]
    pub struct BadLines(ErrorBody<'static>);

    /// No token, a malformed `Authorization` header, or a token that is
    /// unknown or revoked (not saying which).
    #[derive(ToResponse)]
    #[response(headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
    pub struct Unauthorized(ErrorBody<'static>);

    /// The token's scope does not allow this operation.
    #[derive(ToResponse)]
    pub struct Forbidden(ErrorBody<'static>);

    /// Not found (the message says what), or no such path.
    #[derive(ToResponse)]
    pub struct NotFound(ErrorBody<'static>);

    /// The path does not serve this method.
    #[derive(ToResponse)]
    pub struct MethodNotAllowed(ErrorBody<'static>);

    /// The request body did not arrive in time.
    #[derive(ToResponse)]
    pub struct Timeout(ErrorBody<'static>);

    /// It exists already.
    #[derive(ToResponse)]
    pub struct Conflict(ErrorBody<'static>);

    /// The body is over the limit (16 MiB by default for ingest, after
    /// decompression).
    #[derive(ToResponse)]
    pub struct TooLarge(ErrorBody<'static>);

    /// The body's media type or encoding is not one the operation takes
    /// (admin bodies must be `application/json`; ingest bodies identity or
    /// gzip).
    #[derive(ToResponse)]
    pub struct UnsupportedMediaType(ErrorBody<'static>);

    /// The JSON body does not have the required shape.
    #[derive(ToResponse)]
    pub struct Unprocessable(ErrorBody<'static>);

    /// Overloaded (too many requests, a full commit queue or in-flight byte
    /// budget, too many tail sessions), shutting down, or the realm refuses
    /// writes for now: retry after `Retry-After` seconds. A realm that failed
    /// to open or an integrity check answers 503 without `Retry-After`.
    #[derive(ToResponse)]
    #[response(headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))]
    pub struct Unavailable(ErrorBody<'static>);

    /// The realm's storage is full; nothing was changed.
    #[derive(ToResponse)]
    #[response(headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))]
    pub struct StorageFull(ErrorBody<'static>);
}

// ---- Parameters --------------------------------------------------------

/// `Content-Encoding` of an ingest body.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ContentEncoding {
    /// As sent.
    Identity,
    /// gzip (the limit applies after decompression).
    Gzip,
}

/// `POST /v1/ingest` body format.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum IngestFormat {
    /// NDJSON, or a JSON array.
    Ndjson,
    /// AWS VPC flow-log lines, version 2.
    Vpcflow,
}

/// `POST`/`GET /v1/digests` (and `/vpcflow/`) parameters. Any other
/// parameter is refused (400).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DigestParams {
    /// Window start (RFC 3339; truncated to the minute, normalised to UTC).
    #[param(example = "2026-11-22T06:00:00Z")]
    pub start: String,
    /// Window stop, exclusive (RFC 3339; truncated to the minute).
    #[param(example = "2026-11-22T07:00:00Z")]
    pub stop: String,
}

/// Record order.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first (from `cursor`).
    Oldest,
    /// Newest first (before `cursor`).
    Newest,
    /// Same as `oldest`.
    Asc,
    /// Same as `newest`.
    Desc,
}

/// `GET /v1/query` parameters. Any other parameter is refused (400).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueryParams {
    /// Records whose own time is at or after this (RFC 3339).
    #[param(example = "2026-11-22T06:00:00Z")]
    pub from: Option<String>,
    /// Records whose own time is before this (RFC 3339).
    pub to: Option<String>,
    /// Records whose stored line contains this text (case-sensitive).
    pub q: Option<String>,
    /// `key:value` or `key=value` (dots descend into objects); repeat to
    /// require several.
    #[param(explode, example = json!(["app:payments"]))]
    pub r#where: Option<Vec<String>>,
    /// Most records returned (default 1000; larger values are cut to 100000).
    pub limit: Option<u64>,
    /// `x-sealog-next-cursor` of the previous page.
    pub cursor: Option<u64>,
    /// `oldest` (default) or `newest` first.
    #[param(inline)]
    pub order: Option<Order>,
}

/// The filters of LogHarbour's query functions. Any other parameter, or
/// one given twice, is refused (400).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// `app` equals.
    pub app: Option<String>,
    /// `C`, `A`, `D` or `U` (or `change`, `activity`, `debug`, `unknown`).
    pub r#type: Option<String>,
    /// `module` equals.
    pub module: Option<String>,
    /// `who` equals.
    pub who: Option<String>,
    /// `class` equals.
    pub class: Option<String>,
    /// `instance` equals (only with `class`).
    pub instance: Option<String>,
    /// `op` equals.
    pub op: Option<String>,
    /// `remote_ip` equals.
    pub remote_ip: Option<String>,
    /// `trace_id` equals.
    pub trace_id: Option<String>,
    /// `system` equals.
    pub system: Option<String>,
    /// `0` success or `1` failure (a missing status is success).
    pub status: Option<String>,
    /// A field named in `data.change_data.changes`.
    pub field: Option<String>,
    /// At least this priority: Debug2, Debug1, Debug0, Info, Warn, Err, Crit, Sec.
    pub pri: Option<String>,
    /// `when` at or after (RFC 3339).
    pub from: Option<String>,
    /// `when` at or before (RFC 3339); must be after `from`.
    pub to: Option<String>,
    /// Since the start of the UTC day this many days ago (1..36500); ignored with `from` or `to`.
    pub ndays: Option<u64>,
    /// `newest` or `oldest` first (the default depends on the route; the
    /// counting routes take it and ignore it).
    pub order: Option<String>,
}

/// LogHarbour page parameters, with [`FilterParams`].
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsParams {
    /// Entries per page, 1..10000 (default 100).
    pub limit: Option<u64>,
    /// A page's `next` or `prev` (`before:N` or `after:N`).
    pub cursor: Option<String>,
    /// Also count every match (`nrec`; a full scan).
    pub count: Option<bool>,
}

/// A page of LogHarbour entries.
#[derive(Debug, ToSchema)]
pub struct LogsPage {
    /// The stored lines, byte for byte.
    #[schema(value_type = Vec<Object>)]
    pub logs: Vec<Value>,
    /// Cursor to continue in the same order; null at the end.
    pub next: Option<String>,
    /// Cursor to go back; null at the start.
    pub prev: Option<String>,
    /// The realm's size the page was read at.
    pub tree_size: u64,
    /// Every match, when `count=true`.
    pub nrec: Option<u64>,
}

/// LogHarbour's response envelope.
#[derive(Debug, ToSchema)]
pub struct Envelope {
    /// `success` or `error`.
    pub status: String,
    /// The payload (null on error).
    pub data: Option<Value>,
    /// Why it failed, one message per broken rule.
    pub messages: Vec<EnvelopeMessage>,
}

/// One envelope message.
#[derive(Debug, ToSchema)]
pub struct EnvelopeMessage {
    /// 100 validation, 101 required, 102 greater, 103 alphabet, 1001 database, 1002 token, 1006 request.
    pub msgid: u32,
    /// The error code.
    pub errcode: String,
    /// The field, as LogHarbour's Go struct names it.
    pub field: Option<String>,
}

/// `GET /v1/checkpoint` parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointParams {
    /// The newest signed checkpoint, whether witnesses cosigned it or not.
    pub latest: Option<bool>,
}

/// `GET /v1/proof/inclusion` parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionParams {
    /// The record's seq.
    pub seq: u64,
    /// The tree size to prove against (default: the current size).
    pub size: Option<u64>,
}

/// `GET /v1/proof/range` parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// First record of the range.
    pub from: u64,
    /// End of the range (exclusive); `from < to <= size`.
    pub to: u64,
    /// The tree size to prove against (default: the current size).
    pub size: Option<u64>,
}

/// `GET /v1/proof/consistency` parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
}

/// `GET /v1/tail` parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TailParams {
    /// Records whose stored line contains this text (case-sensitive).
    pub q: Option<String>,
    /// `key:value` or `key=value`; repeat to require several.
    #[param(explode)]
    pub r#where: Option<Vec<String>>,
    /// Start at this seq instead of now (at most the realm's size).
    pub since_seq: Option<u64>,
}

/// `GET /v1/admin/tokens` parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenListParams {
    /// Only this realm's tokens.
    pub realm: Option<String>,
}

/// The operations, on doc-only stubs (the handlers live in `routes`).
#[allow(dead_code)]
mod operations {
    use super::responses::*;
    use super::*;

    /// Append events
    ///
    /// NDJSON (one object per line; any content type but `application/json`)
    /// or a JSON array of objects, optionally gzipped. The whole batch is
    /// validated first: one bad line refuses it all. The receipt is sent once
    /// the commit is durable and names the seqs and the signed checkpoint
    /// covering them.
    #[utoipa::path(
        post, path = "/v1/ingest", tag = "ingest",
        security(("bearer" = ["write"])),
        params(
            ("Content-Encoding" = inline(Option<ContentEncoding>), Header, description = "`gzip` or `identity`; anything else is refused (415)."),
            ("format" = inline(Option<IngestFormat>), Query, description = "`ndjson` (default) or `vpcflow`: AWS VPC flow-log v2 lines, each stored as a record of kind `flow`; the header and NODATA/SKIPDATA lines are skipped and counted in `x-sealog-skipped-lines`."),
        ),
        request_body(description = "The events.", content(
            (String = "application/x-ndjson", example = json!("{\"app\":\"payments\",\"msg\":\"card authorised\"}\n{\"app\":\"search\",\"msg\":\"index rebuilt\"}\n")),
            (Vec<Event> = "application/json"),
        )),
        responses(
            (status = 200, description = "Committed and durable.", body = Receipt),
            (status = 400, response = BadLines),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn ingest() {}

    /// Append logshuttle events
    ///
    /// fluentd/Kubernetes `LogSpec` JSON: one object, or one per line. Each
    /// gains `app`, `space`, `proc_type`, `source` and (from the pod) `dyno`.
    #[utoipa::path(
        post, path = "/log-events", tag = "ingest",
        security(("bearer" = ["write"])),
        params(("Content-Encoding" = inline(Option<ContentEncoding>), Header, description = "`gzip` or `identity`; anything else is refused (415).")),
        request_body(description = "The log lines.", content(
            (LogSpec = "application/json"),
            (String = "application/x-ndjson", example = json!("{\"log\":\"started\",\"kubernetes\":{\"container_name\":\"payments--web\"}}\n")),
        )),
        responses(
            (status = 201, description = "Committed and durable.", body = Receipt),
            (status = 400, response = BadLines),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn log_events() {}

    /// Query records
    ///
    /// The matching stored lines, byte for byte, as NDJSON. The headers say
    /// what the answer covers, so a client can prove it against a checkpoint.
    #[utoipa::path(
        get, path = "/v1/query", tag = "read",
        security(("bearer" = ["query"])),
        params(QueryParams),
        responses(
            (status = 200, description = "The matching records, one stored line each.",
                content_type = "application/x-ndjson", body = String,
                headers(
                    ("x-sealog-tree-size" = u64, description = "The realm's size when the query ran; `GET /v1/checkpoint` or a receipt signs it."),
                    ("x-sealog-scanned" = String, description = "The seq range `lo..hi` examined: every record in it not returned did not match."),
                    ("x-sealog-next-cursor" = u64, description = "Present when the limit stopped the scan: pass as `cursor` for the next page."),
                    ("x-sealog-verified-through" = u64, description = "Records the background verifier re-hashed and matched to a signed checkpoint."),
                )),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn query() {}

    /// Latest checkpoint
    ///
    /// The latest signed checkpoint note (C2SP `signed-note`). With witnesses
    /// configured (`serve --witness`), the newest checkpoint that a quorum of
    /// them cosigned, with their `cosignature/v1` lines; 404 until there is
    /// one. `?latest` gives the newest signed checkpoint either way.
    #[utoipa::path(
        get, path = "/v1/checkpoint", tag = "read",
        security(("bearer" = ["query"])),
        params(CheckpointParams),
        responses(
            (status = 200, description = "The signed note.", content_type = "text/plain", body = String),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 503, response = Unavailable),
        ),
    )]
    fn checkpoint() {}

    /// Inclusion proof
    ///
    /// RFC 9162 proof that record `seq` is in the tree of `size` records.
    #[utoipa::path(
        get, path = "/v1/proof/inclusion", tag = "read",
        security(("bearer" = ["query"])),
        params(InclusionParams),
        responses(
            (status = 200, description = "The proof.", body = InclusionProof),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn inclusion() {}

    /// Consistency proof
    ///
    /// RFC 9162 proof that the tree of `from` records is a prefix of the tree
    /// of `to` records.
    #[utoipa::path(
        get, path = "/v1/proof/consistency", tag = "read",
        security(("bearer" = ["query"])),
        params(ConsistencyParams),
        responses(
            (status = 200, description = "The proof.", body = ConsistencyProof),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn consistency() {}

    /// Range proof
    ///
    /// The hashes that recompute the root of `size` records from records `[from, to)` alone
    /// (every maximal subtree outside the range, left to right): fetch the records with
    /// `/v1/query?cursor=from&limit=to-from`, hash them (RFC 9162 leaf hashes) and check the
    /// root against a signed checkpoint of that size. At most 1,000,000 records.
    #[utoipa::path(
        get, path = "/v1/proof/range", tag = "read",
        security(("bearer" = ["query"])),
        params(RangeParams),
        responses(
            (status = 200, description = "The proof.", body = RangeProof),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn range() {}

    /// Live tail
    ///
    /// Server-Sent Events, one per matching record (`id` = seq, `data` = the
    /// stored line), from now or from `since_seq`; a comment every 15 s keeps
    /// the stream alive. It ends when the server shuts down.
    #[utoipa::path(
        get, path = "/v1/tail", tag = "read",
        security(("bearer" = ["query"])),
        params(TailParams),
        responses(
            (status = 200, description = "The event stream.", content_type = "text/event-stream", body = String),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn tail() {}

    /// List realms
    #[utoipa::path(
        get, path = "/v1/admin/realms", tag = "admin",
        security(("bearer" = ["admin"])),
        responses(
            (status = 200, description = "Every realm, failed ones with their reason.", body = Vec<RealmEntry>),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn list_realms() {}

    /// Create a realm
    ///
    /// A new realm with its own Ed25519 signing key, a write token and a query
    /// token. The tokens are shown only in this answer.
    #[utoipa::path(
        post, path = "/v1/admin/realms", tag = "admin",
        security(("bearer" = ["admin"])),
        request_body = NewRealm,
        responses(
            (status = 201, description = "Created.", body = CreatedRealm),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 409, response = Conflict),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn create_realm() {}

    /// List tokens
    ///
    /// Stored tokens (ids, scopes, hashes; never the secrets).
    #[utoipa::path(
        get, path = "/v1/admin/tokens", tag = "admin",
        security(("bearer" = ["admin"])),
        params(TokenListParams),
        responses(
            (status = 200, description = "The tokens.", body = Vec<TokenInfo>),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 503, response = Unavailable),
        ),
    )]
    fn list_tokens() {}

    /// Issue a token
    ///
    /// A `write` or `query` token for a realm (admin tokens are issued only at
    /// first start: 400). The secret is shown only in this answer.
    #[utoipa::path(
        post, path = "/v1/admin/tokens", tag = "admin",
        security(("bearer" = ["admin"])),
        request_body = NewToken,
        responses(
            (status = 201, description = "Issued.", body = IssuedToken),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 408, response = Timeout),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn issue_token() {}

    /// Revoke a token
    ///
    /// It stops working at once.
    #[utoipa::path(
        delete, path = "/v1/admin/tokens/{id}", tag = "admin",
        security(("bearer" = ["admin"])),
        params(("id" = String, Path, description = "The token's id (`tok_…`).")),
        responses(
            (status = 200, description = "Revoked (or already revoked).", body = TokenInfo),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn revoke_token() {}

    /// Verify a realm
    ///
    /// Runs the offline verifier over the realm's files while the server keeps
    /// serving, optionally against checkpoints and receipts a client kept and
    /// a pinned key.
    #[utoipa::path(
        post, path = "/v1/admin/verify", tag = "admin",
        security(("bearer" = ["admin"])),
        request_body = VerifyRequest,
        responses(
            (status = 200, description = "The verifier's report (`ok` false when anything is wrong).", body = VerifyReport),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 408, response = Timeout),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
        ),
    )]
    fn verify() {}

    /// Remove old records' bodies, verifiably
    ///
    /// LogHarbour's cleanup (`--days --app --type --priority --dry-run`)
    /// without breaking the proof: the bodies of matching records older
    /// than `days` are replaced by tombstones, their leaf hashes kept, and a
    /// retention record signed with the realm's key says what went and
    /// why. Every checkpoint and proof still verifies; `verify` reports the
    /// ranges as retained out. `dry_run` only counts.
    #[utoipa::path(
        post, path = "/v1/admin/retention", tag = "admin",
        security(("bearer" = ["admin"])),
        request_body = RetentionRequest,
        responses(
            (status = 200, description = "What was removed (or, dry, would be), with the signed retention record.", body = crate::retention::Report),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 408, response = Timeout),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn retention() {}

    /// Add a drain for an app
    ///
    /// logshuttle's call: the realm's records of `app` in `space` go to `url`. The URL is checked now
    /// (422 naming the problem). The write token may be sent bare, as logshuttle's `AUTH_KEY`.
    #[utoipa::path(
        post, path = "/apps/{key}/log-drains", tag = "drains",
        security(("bearer" = ["write"])),
        params(("key" = String, Path, description = "`<app>-<space>`, split at the first `-`.")),
        request_body = NewDrain,
        responses(
            (status = 201, description = "Created; delivery starts at once from the realm's first record.", body = DrainView),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 409, response = Conflict),
            (status = 413, response = TooLarge),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn create_app_drain() {}

    /// List an app's drains
    #[utoipa::path(
        get, path = "/apps/{key}/log-drains", tag = "drains",
        security(("bearer" = ["write"])),
        params(("key" = String, Path, description = "`<app>-<space>`, split at the first `-`.")),
        responses(
            (status = 200, description = "The drains with their status.", body = Vec<DrainView>),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
        ),
    )]
    fn list_app_drains() {}

    /// Show an app's drain
    ///
    /// With its delivery status: state, cursor, lag, last error, delivered count and the latest
    /// checkpoint covering its cursor.
    #[utoipa::path(
        get, path = "/apps/{key}/log-drains/{id}", tag = "drains",
        security(("bearer" = ["write"])),
        params(("key" = String, Path, description = "`<app>-<space>`, split at the first `-`."), ("id" = String, Path, description = "The drain's id.")),
        responses(
            (status = 200, description = "The drain.", body = DrainView),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
        ),
    )]
    fn get_app_drain() {}

    /// Remove an app's drain
    ///
    /// Delivery stops at once. Only the drain's own key and realm may remove it.
    #[utoipa::path(
        delete, path = "/apps/{key}/log-drains/{id}", tag = "drains",
        security(("bearer" = ["write"])),
        params(("key" = String, Path, description = "`<app>-<space>`, split at the first `-`."), ("id" = String, Path, description = "The drain's id.")),
        responses(
            (status = 200, description = "Removed; the drain as it was.", body = DrainView),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn delete_app_drain() {}

    /// Add a drain for a site
    #[utoipa::path(
        post, path = "/sites/{site}/log-drains", tag = "drains",
        security(("bearer" = ["write"])),
        params(("site" = String, Path, description = "The site's domain.")),
        request_body = NewDrain,
        responses(
            (status = 201, description = "Created.", body = DrainView),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 409, response = Conflict),
            (status = 413, response = TooLarge),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn create_site_drain() {}

    /// List a site's drains
    #[utoipa::path(
        get, path = "/sites/{site}/log-drains", tag = "drains",
        security(("bearer" = ["write"])),
        params(("site" = String, Path, description = "The site's domain.")),
        responses(
            (status = 200, description = "The drains with their status.", body = Vec<DrainView>),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn list_site_drains() {}

    /// Show a site's drain
    #[utoipa::path(
        get, path = "/sites/{site}/log-drains/{id}", tag = "drains",
        security(("bearer" = ["write"])),
        params(("site" = String, Path, description = "The site's domain."), ("id" = String, Path, description = "The drain's id.")),
        responses(
            (status = 200, description = "The drain.", body = DrainView),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 503, response = Unavailable),
        ),
    )]
    fn get_site_drain() {}

    /// Remove a site's drain
    #[utoipa::path(
        delete, path = "/sites/{site}/log-drains/{id}", tag = "drains",
        security(("bearer" = ["write"])),
        params(("site" = String, Path, description = "The site's domain."), ("id" = String, Path, description = "The drain's id.")),
        responses(
            (status = 200, description = "Removed; the drain as it was.", body = DrainView),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn delete_site_drain() {}

    /// Add a drain on a query filter
    ///
    /// Records matching every `where` term (`field=value`) and containing `q`, as `/v1/query` takes them.
    #[utoipa::path(
        post, path = "/v1/drains", tag = "drains",
        security(("bearer" = ["write"])),
        request_body = NewFilterDrain,
        responses(
            (status = 201, description = "Created.", body = DrainView),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 409, response = Conflict),
            (status = 413, response = TooLarge),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn create_filter_drain() {}

    /// List every drain of the realm
    #[utoipa::path(
        get, path = "/v1/drains", tag = "drains",
        security(("bearer" = ["write"])),
        responses(
            (status = 200, description = "The drains with their status.", body = Vec<DrainView>),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn list_drains() {}

    /// Show a drain
    #[utoipa::path(
        get, path = "/v1/drains/{id}", tag = "drains",
        security(("bearer" = ["write"])),
        params(("id" = String, Path, description = "The drain's id.")),
        responses(
            (status = 200, description = "The drain.", body = DrainView),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 503, response = Unavailable),
        ),
    )]
    fn get_drain() {}

    /// Remove a drain
    ///
    /// Delivery stops at once.
    #[utoipa::path(
        delete, path = "/v1/drains/{id}", tag = "drains",
        security(("bearer" = ["write"])),
        params(("id" = String, Path, description = "The drain's id.")),
        responses(
            (status = 200, description = "Removed; the drain as it was.", body = DrainView),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, response = NotFound),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn delete_drain() {}

    /// Open a log session
    ///
    /// A capability to read an app's or a site's lines for `session_ttl_secs` (5 minutes):
    /// the last `lines` records, then new ones while `tail` is true. A realm's write or
    /// query token.
    #[utoipa::path(
        post, path = "/log-sessions", tag = "drains",
        security(("bearer" = ["write"]), ("bearer" = ["query"])),
        request_body = NewSession,
        responses(
            (status = 201, description = "Opened.", body = CreatedSession),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 413, response = TooLarge),
            (status = 422, response = Unprocessable),
            (status = 503, response = Unavailable),
        ),
    )]
    fn create_session() {}

    /// Read a log session
    ///
    /// No token: the id is the credential. Plain-text lines in logshuttle's session format
    /// (`<time> <app>-<space> app[<type>.<pod>]: <msg>`), history first; with `tail` the
    /// body stays open for new lines until nothing new comes for `session_idle_secs`.
    #[utoipa::path(
        get, path = "/log-sessions/{id}", tag = "drains",
        params(("id" = String, Path, description = "The session's id.")),
        responses(
            (status = 200, description = "The lines.", content_type = "text/plain", body = String),
            (status = 404, response = NotFound),
            (status = 503, response = Unavailable),
        ),
    )]
    fn read_session() {}

    /// logshuttle's health check
    ///
    /// No token, as logshuttle: `overall_status=good`, or `overall_status=bad,…` naming the
    /// failed check (always 200, as logshuttle).
    #[utoipa::path(
        get, path = "/octhc", tag = "ops",
        responses(
            (status = 200, description = "The health text.", content_type = "text/plain", body = String),
            (status = 503, response = Unavailable),
        ),
    )]
    fn octhc() {}

    /// Audit a success (Palisade)
    ///
    /// An `AuditSuccessMessage`: every field required; accepted only from the configured
    /// services (default `filtered-resource-service`, `data-service`), otherwise kept and
    /// answered `rejected`. 202 only once the record is durable. A body that is not a
    /// message: 400 naming the field, kept in the audit error directory and as a dead letter.
    #[utoipa::path(
        post, path = "/api/success", tag = "audit",
        security(("bearer" = ["write"])),
        params(("x-request-token" = String, Header, description = "The token of the request audited.")),
        request_body(description = "The message.", content((Object = "application/json"))),
        responses(
            (status = 202, description = "Stored and durable.", body = AuditAck),
            (status = 400, description = "Not an audit message, or no `x-request-token`.", body = AuditInvalid),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn audit_success() {}

    /// Audit an error (Palisade)
    ///
    /// An `AuditErrorMessage` (with `error`), accepted from any service; otherwise as
    /// `/api/success`.
    #[utoipa::path(
        post, path = "/api/error", tag = "audit",
        security(("bearer" = ["write"])),
        params(("x-request-token" = String, Header, description = "The token of the request audited.")),
        request_body(description = "The message.", content((Object = "application/json"))),
        responses(
            (status = 202, description = "Stored and durable.", body = AuditAck),
            (status = 400, description = "Not an audit message, or no `x-request-token`.", body = AuditInvalid),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 408, response = Timeout),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 503, response = Unavailable),
            (status = 507, response = StorageFull),
        ),
    )]
    fn audit_error() {}

    /// Spring-style health (Palisade's probes)
    #[utoipa::path(
        get, path = "/actuator/health", tag = "ops",
        responses(
            (status = 200, description = "Up.", body = ActuatorHealth),
            (status = 503, description = "Shutting down.", body = ActuatorHealth),
        ),
    )]
    fn actuator_health() {}

    /// Connected sidecars (Mojaloop KMS)
    #[utoipa::path(
        get, path = "/sidecars", tag = "forensic",
        security(("bearer" = ["admin"])),
        responses(
            (status = 200, description = "The sidecar clients connected now.", body = Vec<SidecarView>),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn sidecars() {}

    /// Open a forensic inquiry (Mojaloop KMS)
    ///
    /// `{"service","startTime","endTime"}`: re-verifies, from the proven log, every commit of
    /// the service's realm sequenced in the window (at most 30 days), in the background.
    #[utoipa::path(
        post, path = "/inquiry", tag = "forensic",
        security(("bearer" = ["admin"]), ("bearer" = ["query"])),
        request_body(description = "The inquiry.", content((Object = "application/json"))),
        responses(
            (status = 201, description = "Queued.", body = InquiryCreated,
                headers(("Location" = String, description = "`/inquiry/{id}`"))),
            (status = 400, description = "40010 bad window, 40002 unknown service, 1 bad body.", body = KmsError),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 413, description = "The body is over 2 MiB.", content_type = "text/plain", body = String),
            (status = 503, response = Unavailable),
        ),
    )]
    fn create_inquiry() {}

    /// Read an inquiry (Mojaloop KMS)
    #[utoipa::path(
        get, path = "/inquiry/{id}", tag = "forensic",
        security(("bearer" = ["admin"]), ("bearer" = ["query"])),
        params(("id" = String, Path, description = "The inquiry's id.")),
        responses(
            (status = 200, description = "Its state and one result per commit.", body = crate::forensic::Inquiry),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, description = "40400: unknown.", body = KmsError),
            (status = 503, response = Unavailable),
        ),
    )]
    fn get_inquiry() {}

    /// Request a flow-log digest
    ///
    /// Marks the window in progress and queues it; the digest is committed to the realm's
    /// log with its input range and checkpoint.
    #[utoipa::path(
        post, path = "/v1/digests", tag = "digests",
        security(("bearer" = ["write"])),
        params(DigestParams),
        responses(
            (status = 202, description = "Queued.", body = DigestQueued,
                headers(("Location" = String, description = "Where to `GET` it."))),
            (status = 400, description = "A bad window.", body = DigestMessage),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 409, description = "Being created, or done.", body = DigestMessage),
            (status = 503, response = Unavailable),
        ),
    )]
    fn post_digest() {}

    /// Read a flow-log digest
    ///
    /// Text (v2 flow lines, sorted); gzip with `Accept-Encoding: gzip`; JSON with its record
    /// with `Accept: application/json`.
    #[utoipa::path(
        get, path = "/v1/digests", tag = "digests",
        security(("bearer" = ["query"]), ("bearer" = ["write"])),
        params(DigestParams),
        responses(
            (status = 200, description = "The digest.", content(
                (String = "text/plain"),
                (DigestView = "application/json"),
            )),
            (status = 204, description = "In progress."),
            (status = 400, description = "A bad window.", body = DigestMessage),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, description = "Unknown.", body = DigestMessage),
            (status = 503, response = Unavailable),
        ),
    )]
    fn get_digest() {}

    /// Request a digest (vpcflow-digesterd's `POST /`)
    #[utoipa::path(
        post, path = "/vpcflow/", tag = "digests",
        security(("bearer" = ["write"])),
        params(DigestParams),
        responses(
            (status = 202, description = "Queued (no body)."),
            (status = 400, description = "A bad window.", body = DigestMessage),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 409, description = "Being created, or done.", body = DigestMessage),
            (status = 503, response = Unavailable),
        ),
    )]
    fn upstream_post_digest() {}

    /// Read a digest (vpcflow-digesterd's `GET /`)
    #[utoipa::path(
        get, path = "/vpcflow/", tag = "digests",
        security(("bearer" = ["query"]), ("bearer" = ["write"])),
        params(DigestParams),
        responses(
            (status = 200, description = "The gzipped digest as stored.", content_type = "application/octet-stream", body = Vec<u8>),
            (status = 204, description = "In progress."),
            (status = 400, description = "A bad window.", body = DigestMessage),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 404, description = "Unknown (no body)."),
            (status = 503, response = Unavailable),
        ),
    )]
    fn upstream_get_digest() {}

    /// LogHarbour GetLogs
    ///
    /// LogHarbour entries (a string `app` and a `type` of C/A/D/U) matching every filter,
    /// newest first (oldest first when only `from` is given). With `pri` and no `type`, data
    /// changes are left out. The stored lines are embedded byte for byte in `logs`.
    #[utoipa::path(
        get, path = "/v1/logs", tag = "logharbour",
        security(("bearer" = ["query"])),
        params(LogsParams, FilterParams),
        responses(
            (status = 200, description = "One page.", body = LogsPage,
                headers(("x-sealog-tree-size" = u64, description = "The realm's size the page was read at."))),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn lh_logs() {}

    /// LogHarbour GetChanges
    ///
    /// Data-change entries (type C), oldest first; `field` matches a field named in
    /// `data.change_data.changes`.
    #[utoipa::path(
        get, path = "/v1/changes", tag = "logharbour",
        security(("bearer" = ["query"])),
        params(LogsParams, FilterParams),
        responses(
            (status = 200, description = "One page.", body = LogsPage,
                headers(("x-sealog-tree-size" = u64, description = "The realm's size the page was read at."))),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn lh_changes() {}

    /// Logs for one address
    ///
    /// Every entry whose `remote_ip` is `ip` (LogHarbour's designed `getLogsForIP`), newest first.
    #[utoipa::path(
        get, path = "/v1/logs-for-ip", tag = "logharbour",
        security(("bearer" = ["query"])),
        params(("ip" = String, Query, description = "An IPv4 or IPv6 address, or `LOCAL`."), LogsParams, FilterParams),
        responses(
            (status = 200, description = "One page.", body = LogsPage,
                headers(("x-sealog-tree-size" = u64, description = "The realm's size the page was read at."))),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn lh_logs_for_ip() {}

    /// LogHarbour GetSet
    ///
    /// How many matching entries have each value of `attr` (one of `app, type, op, instance,
    /// class, module, pri, status, remote_ip, system, who, field`), rarest first.
    #[utoipa::path(
        get, path = "/v1/sets", tag = "logharbour",
        security(("bearer" = ["query"])),
        params(("attr" = String, Query, description = "The attribute counted."),
            ("limit" = Option<u64>, Query, description = "Most values returned (default 1000, at most 100000)."),
            FilterParams),
        responses(
            (status = 200, description = "The counts.", body = SetAnswer),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn lh_sets() {}

    /// LogHarbour GetApps
    ///
    /// Every application with entries, by name.
    #[utoipa::path(
        get, path = "/v1/apps", tag = "logharbour",
        security(("bearer" = ["query"])),
        params(FilterParams),
        responses(
            (status = 200, description = "The applications.", body = AppsAnswer),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn lh_apps() {}

    /// LogHarbour GetUnusualIP
    ///
    /// Addresses seen in at most `max(1, ⌊total·pct/100⌋)` of the matching entries (`LOCAL`
    /// never counts as unusual), with city, country and location from the GeoIP database.
    #[utoipa::path(
        get, path = "/v1/unusual-ips", tag = "logharbour",
        security(("bearer" = ["query"])),
        params(("pct" = f64, Query, description = "Percent, 0.5 to 50."),
            ("limit" = Option<u64>, Query, description = "Most addresses listed (default 1000, at most 100000)."),
            FilterParams),
        responses(
            (status = 200, description = "The unusual addresses.", body = UnusualAnswer),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
    )]
    fn lh_unusual_ips() {}

    /// Entries at or above a priority (LogHarbour web service)
    ///
    /// `{"app","pri","days"[,"search_after_timestamp","search_after_doc_id"]}`; data `{"logs":[…]}`. LogHarbour's envelope `{"status","data","messages"}`; a broken rule is a message
    /// with its msgid, errcode and field.
    #[utoipa::path(
        post, path = "/api/v1/highprilog", tag = "logharbour",
        security(("bearer" = ["query"])),
        request_body(description = "The request.", content((Object = "application/json"))),
        responses(
            (status = 200, description = "`status` success.", body = Envelope,
                headers(("x-sealog-next-cursor" = String, description = "Present when more entries follow: pass it as `search_after_doc_id`."))),
            (status = 400, description = "Broken rules, one message each.", body = Envelope),
            (status = 401, description = "No or a bad token.", body = Envelope,
                headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
            (status = 403, description = "Not a query token.", body = Envelope),
            (status = 408, description = "The body did not arrive in time.", body = Envelope),
            (status = 413, description = "The body is over 64 KiB.", body = Envelope),
            (status = 503, description = "The realm cannot be read now.", body = Envelope),
        ),
    )]
    fn lh_web_highprilog() {}

    /// Activity entries (LogHarbour web service)
    ///
    /// `{"app","days"[,"who","class","instance_id","op","priority",…]}`; data `{"LogEntery":[…],"Nrec":n}`. LogHarbour's envelope `{"status","data","messages"}`; a broken rule is a message
    /// with its msgid, errcode and field.
    #[utoipa::path(
        post, path = "/api/v1/activitylog", tag = "logharbour",
        security(("bearer" = ["query"])),
        request_body(description = "The request.", content((Object = "application/json"))),
        responses(
            (status = 200, description = "`status` success.", body = Envelope,
                headers(("x-sealog-next-cursor" = String, description = "Present when more entries follow: pass it as `search_after_doc_id`."))),
            (status = 400, description = "Broken rules, one message each.", body = Envelope),
            (status = 401, description = "No or a bad token.", body = Envelope,
                headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
            (status = 403, description = "Not a query token.", body = Envelope),
            (status = 408, description = "The body did not arrive in time.", body = Envelope),
            (status = 413, description = "The body is over 64 KiB.", body = Envelope),
            (status = 503, description = "The realm cannot be read now.", body = Envelope),
        ),
    )]
    fn lh_web_activitylog() {}

    /// Debug entries of a module (LogHarbour web service)
    ///
    /// `{"app","module","pri","days"[,"trace_id",…]}`; data `[…]`. LogHarbour's envelope `{"status","data","messages"}`; a broken rule is a message
    /// with its msgid, errcode and field.
    #[utoipa::path(
        post, path = "/api/v1/debuglog", tag = "logharbour",
        security(("bearer" = ["query"])),
        request_body(description = "The request.", content((Object = "application/json"))),
        responses(
            (status = 200, description = "`status` success.", body = Envelope,
                headers(("x-sealog-next-cursor" = String, description = "Present when more entries follow: pass it as `search_after_doc_id`."))),
            (status = 400, description = "Broken rules, one message each.", body = Envelope),
            (status = 401, description = "No or a bad token.", body = Envelope,
                headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
            (status = 403, description = "Not a query token.", body = Envelope),
            (status = 408, description = "The body did not arrive in time.", body = Envelope),
            (status = 413, description = "The body is over 64 KiB.", body = Envelope),
            (status = 503, description = "The realm cannot be read now.", body = Envelope),
        ),
    )]
    fn lh_web_debuglog() {}

    /// Data changes (LogHarbour web service)
    ///
    /// `{"app"[,"who","class","instance","field","days",…]}`; data `{"logs":[…]}`. LogHarbour's envelope `{"status","data","messages"}`; a broken rule is a message
    /// with its msgid, errcode and field.
    #[utoipa::path(
        post, path = "/api/v1/datachange", tag = "logharbour",
        security(("bearer" = ["query"])),
        request_body(description = "The request.", content((Object = "application/json"))),
        responses(
            (status = 200, description = "`status` success.", body = Envelope,
                headers(("x-sealog-next-cursor" = String, description = "Present when more entries follow: pass it as `search_after_doc_id`."))),
            (status = 400, description = "Broken rules, one message each.", body = Envelope),
            (status = 401, description = "No or a bad token.", body = Envelope,
                headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
            (status = 403, description = "Not a query token.", body = Envelope),
            (status = 408, description = "The body did not arrive in time.", body = Envelope),
            (status = 413, description = "The body is over 64 KiB.", body = Envelope),
            (status = 503, description = "The realm cannot be read now.", body = Envelope),
        ),
    )]
    fn lh_web_datachange() {}

    /// Distinct values (LogHarbour web service)
    ///
    /// `{"app","setAttr"[,"type","who","class","instance","op","fromts","tots","ndays","remoteIP","pri"]}`; data `[value…]`. LogHarbour's envelope `{"status","data","messages"}`; a broken rule is a message
    /// with its msgid, errcode and field.
    #[utoipa::path(
        post, path = "/api/v1/getset", tag = "logharbour",
        security(("bearer" = ["query"])),
        request_body(description = "The request.", content((Object = "application/json"))),
        responses(
            (status = 200, description = "`status` success.", body = Envelope),
            (status = 400, description = "Broken rules, one message each.", body = Envelope),
            (status = 401, description = "No or a bad token.", body = Envelope,
                headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
            (status = 403, description = "Not a query token.", body = Envelope),
            (status = 408, description = "The body did not arrive in time.", body = Envelope),
            (status = 413, description = "The body is over 64 KiB.", body = Envelope),
            (status = 503, description = "The realm cannot be read now.", body = Envelope),
        ),
    )]
    fn lh_web_getset() {}

    /// Unusual addresses (LogHarbour web service)
    ///
    /// `{"app","days","unusualPercent"}`; data `{"unusualIPs":[…]}` or `"No unusual IP"`. LogHarbour's envelope `{"status","data","messages"}`; a broken rule is a message
    /// with its msgid, errcode and field.
    #[utoipa::path(
        post, path = "/api/v1/getunusualips", tag = "logharbour",
        security(("bearer" = ["query"])),
        request_body(description = "The request.", content((Object = "application/json"))),
        responses(
            (status = 200, description = "`status` success.", body = Envelope),
            (status = 400, description = "Broken rules, one message each.", body = Envelope),
            (status = 401, description = "No or a bad token.", body = Envelope,
                headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
            (status = 403, description = "Not a query token.", body = Envelope),
            (status = 408, description = "The body did not arrive in time.", body = Envelope),
            (status = 413, description = "The body is over 64 KiB.", body = Envelope),
            (status = 503, description = "The realm cannot be read now.", body = Envelope),
        ),
    )]
    fn lh_web_getunusualips() {}

    /// Applications (LogHarbour web service)
    ///
    /// data `[app…]`. LogHarbour's envelope `{"status","data","messages"}`; a broken rule is a message
    /// with its msgid, errcode and field.
    #[utoipa::path(
        get, path = "/api/v1/getapps", tag = "logharbour",
        security(("bearer" = ["query"])),
        responses(
            (status = 200, description = "`status` success.", body = Envelope),
                        (status = 401, description = "No or a bad token.", body = Envelope,
                headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
            (status = 403, description = "Not a query token.", body = Envelope),
            (status = 503, description = "The realm cannot be read now.", body = Envelope),
        ),
    )]
    fn lh_web_getapps() {}

    /// Liveness
    #[utoipa::path(
        get, path = "/health", tag = "ops",
        responses(
            (status = 200, description = "The process answers.", body = Health),
            (status = 503, response = Unavailable),
        ),
    )]
    fn health() {}

    /// Readiness
    ///
    /// No realm failed to open or failed the verifier, every open journal
    /// accepts writes, and the data directory is writable (realms still
    /// being opened after a start are not waited for).
    #[utoipa::path(
        get, path = "/ready", tag = "ops",
        responses(
            (status = 200, description = "Ready.", body = Ready),
            (status = 503, description = "Not ready: `error` names every problem (`status` is `not ready`).",
                body = ErrorBody),
        ),
    )]
    fn ready() {}

    /// Metrics
    #[utoipa::path(
        get, path = "/metrics", tag = "ops",
        responses(
            (status = 200, description = "Prometheus text format 0.0.4.", content_type = "text/plain", body = String),
            (status = 503, response = Unavailable),
        ),
    )]
    fn metrics() {}

    /// This document
    #[utoipa::path(
        get, path = "/v1/openapi.json", tag = "ops",
        responses(
            (status = 200, description = "The OpenAPI document.", content_type = "application/json", body = Object),
            (status = 503, response = Unavailable),
        ),
    )]
    fn openapi_json() {}

    /// Counts over time and top field values
    ///
    /// The histogram and facets of what the filter matches, newest first,
    /// at most `sample` records: `matched`, `sampled` (true when older
    /// matches were not counted), `scanned_from_seq`, `from_ns`,
    /// `bucket_ns`, `counts` (oldest bucket first), `untimed`, `facets`
    /// (`{field: {top: [{value, count}], other, missing}}`) and `size`.
    #[utoipa::path(
        get, path = "/v1/stats", tag = "read",
        params(
            ("from" = Option<String>, Query, description = "RFC 3339: records at or after."),
            ("to" = Option<String>, Query, description = "RFC 3339: records before."),
            ("q" = Option<String>, Query, description = "Text the stored line contains."),
            ("where" = Option<Vec<String>>, Query, description = "`field:value`, repeatable.", explode = true),
            ("buckets" = Option<u32>, Query, description = "Histogram buckets, 1 to 500 (60).", minimum = 1, maximum = 500),
            ("facet" = Option<Vec<String>>, Query, description = "A field to list the top values of, up to 8.", explode = true),
            ("top" = Option<u32>, Query, description = "Values per facet, 1 to 50 (10).", minimum = 1, maximum = 50),
            ("sample" = Option<u64>, Query, description = "Most records counted, 1 to 1,000,000 (200,000).", minimum = 1, maximum = 1000000),
        ),
        responses(
            (status = 200, description = "The counts.", body = Object),
            (status = 400, response = BadRequest),
            (status = 401, response = Unauthorized),
            (status = 403, response = Forbidden),
            (status = 503, response = Unavailable),
        ),
        security(("bearer" = ["query"])),
    )]
    fn stats() {}

    /// The web console
    #[utoipa::path(
        get, path = "/ui", tag = "console",
        responses(
            (status = 200, description = "The console's page (gzip when accepted).", content_type = "text/html", body = String),
            (status = 503, response = Unavailable),
        ),
    )]
    fn console() {}

    /// The console's script
    #[utoipa::path(
        get, path = "/ui/console.js", tag = "console",
        responses(
            (status = 200, description = "The script (gzip when accepted).", content_type = "text/javascript", body = String),
            (status = 503, response = Unavailable),
        ),
    )]
    fn console_script() {}

    /// The console's style sheet
    #[utoipa::path(
        get, path = "/ui/console.css", tag = "console",
        responses(
            (status = 200, description = "The style sheet (gzip when accepted).", content_type = "text/css", body = String),
            (status = 503, response = Unavailable),
        ),
    )]
    fn console_style() {}
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body as HttpBody;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::error::ApiError;

    const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

    /// `(METHOD, path)` of every route in `routes/mod.rs`. axum cannot list
    /// a router's routes, so the router's source is read: it is one chain of
    /// `.route(PATH, get(..).post(..))` calls. Anything else that adds
    /// routes fails the test until this reader learns it.
    fn routed() -> BTreeSet<(String, String)> {
        let src = include_str!("routes/mod.rs");
        for other in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
            assert!(
                !src.contains(other),
                "routes/mod.rs uses {other}: teach openapi::tests::routed to read it"
            );
        }
        let mut out = BTreeSet::new();
        for (at, _) in src.match_indices(".route(") {
            let rest = &src[at + ".route(".len()..];
            let rest = rest.trim_start();
            let rest = rest
                .strip_prefix('"')
                .expect("route path is a string literal");
            let end = rest.find('"').expect("closing quote");
            let path = &rest[..end];
            // The method router: up to the `)` closing `.route(`.
            let mut depth = 1;
            let mut stop = rest.len();
            for (i, c) in rest[end + 1..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            stop = end + 1 + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let methods = &rest[end + 1..stop];
            let mut found = 0;
            // `get(`, `.post(`: a method name called, not a path segment.
            for (i, _) in methods.match_indices('(') {
                let before = &methods[..i];
                let start = before
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(0, |j| j + 1);
                let m = &before[start..];
                if METHODS.contains(&m) && !before[..start].ends_with(':') {
                    out.insert((m.to_ascii_uppercase(), path.to_string()));
                    found += 1;
                }
            }
            assert!(found > 0, "no method for route {path}");
        }
        assert!(
            out.len() > 10,
            "the router's routes were not found: {out:?}"
        );
        out
    }

    fn doc() -> Value {
        serde_json::from_slice(document()).expect("the document is JSON")
    }

    fn documented(doc: &Value) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for m in item.as_object().expect("path item").keys() {
                if METHODS.contains(&m.as_str()) {
                    out.insert((m.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    fn server() -> (tempfile::TempDir, axum::Router) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, _) =
            crate::Server::open(&dir.path().join("data"), crate::Config::default()).expect("open");
        (dir, crate::routes::router(server.state.clone()))
    }

    #[test]
    fn every_route_is_documented_and_every_operation_is_routed() {
        let routed = routed();
        let documented = documented(&doc());
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routes without an operation in openapi.rs: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "operations in openapi.rs with no route: {extra:?}"
        );
    }

    #[tokio::test]
    async fn the_router_serves_exactly_the_documented_methods() {
        let (_dir, app) = server();
        let documented = documented(&doc());
        let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
        for path in paths {
            let uri = path.replace("{id}", "tok_0");
            for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let req = Request::builder()
                    .method(Method::from_bytes(m.as_bytes()).expect("method"))
                    .uri(&uri)
                    .body(HttpBody::empty())
                    .expect("request");
                let status = app.clone().oneshot(req).await.expect("infallible").status();
                // A session id is its own credential: an unknown one is a
                // lookup miss (404), not an unrouted path.
                if m == "GET" && path == "/log-sessions/{id}" {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{m} {path}");
                    continue;
                }
                if documented.contains(&(m.to_string(), path.clone())) {
                    assert!(
                        status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                        "{m} {path} is documented but answers {status} with no token"
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{m} {path} is routed but not documented"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn the_served_document_is_openapi_3() {
        let (_dir, app) = server();
        let req = Request::get("/v1/openapi.json")
            .body(HttpBody::empty())
            .expect("request");
        let resp = app.oneshot(req).await.expect("infallible");
        assert_eq!(resp.status(), StatusCode::OK, "no token needed");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let v: Value = serde_json::from_slice(&bytes).expect("JSON");
        let version = v["openapi"].as_str().expect("openapi version");
        assert!(version.starts_with("3."), "{version}");
        assert_eq!(
            v["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        // Every operation has its summary, a success and the 503 of the
        // overload layer; every one that needs a token says so and
        // documents 401 and 403.
        for (path, item) in v["paths"].as_object().expect("paths") {
            for (m, op) in item.as_object().expect("item") {
                let rs = &op["responses"];
                assert!(op["summary"].is_string(), "{m} {path}: summary");
                assert!(
                    rs.as_object()
                        .expect("responses")
                        .keys()
                        .any(|s| s.starts_with('2')),
                    "{m} {path}: a success"
                );
                assert!(rs["503"].is_object(), "{m} {path}: 503");
                if op.get("security").is_some() {
                    assert!(rs["401"].is_object() && rs["403"].is_object(), "{m} {path}");
                }
            }
        }
        let q = &v["paths"]["/v1/query"]["get"]["responses"]["200"]["headers"];
        assert_eq!(q["x-sealog-tree-size"]["required"], true);
        assert!(q["x-sealog-next-cursor"].get("required").is_none());
        let shared = &v["components"]["responses"];
        assert_eq!(
            shared["Unauthorized"]["headers"]["WWW-Authenticate"]["required"],
            true
        );
        assert!(shared["Unavailable"]["headers"]["Retry-After"]
            .get("required")
            .is_none());
        assert_eq!(
            shared["StorageFull"]["headers"]["Retry-After"]["required"],
            true
        );
    }

    /// The refusals `error.rs` builds match the shared responses: the body
    /// has only the documented properties and the required headers are sent.
    #[tokio::test]
    async fn refusals_match_the_documented_error_body_and_headers() {
        let v = doc();
        let schema = &v["components"]["schemas"]["ErrorBody"];
        let props = schema["properties"].as_object().expect("properties");
        let cases = [
            ("Unauthorized", ApiError::Unauthenticated),
            (
                "Forbidden",
                ApiError::Forbidden {
                    have: "query".into(),
                    want: "write",
                },
            ),
            ("BadRequest", ApiError::BadRequest("bad".into())),
            (
                "BadLines",
                ApiError::BadLines {
                    count: 1,
                    lines: vec![LineError {
                        line: 1,
                        reason: "not JSON".into(),
                    }],
                },
            ),
            ("TooLarge", ApiError::TooLarge { limit: 1 }),
            ("Timeout", ApiError::Timeout("stalled".into())),
            (
                "UnsupportedMediaType",
                ApiError::UnsupportedEncoding("br".into()),
            ),
            ("Unprocessable", ApiError::Unprocessable("no name".into())),
            ("MethodNotAllowed", ApiError::MethodNotAllowed),
            ("NotFound", ApiError::NotFound("none".into())),
            ("Conflict", ApiError::Conflict("exists".into())),
            ("Unavailable", ApiError::Overloaded("busy")),
            ("StorageFull", ApiError::StorageFull("full".into())),
        ];
        for (name, err) in cases {
            let shared = &v["components"]["responses"][name];
            let status = SHARED_STATUS
                .iter()
                .find(|(n, _)| *n == name)
                .expect("status")
                .1;
            let resp = err.into_response();
            assert_eq!(resp.status().as_str(), status, "{name}");
            for (h, spec) in shared["headers"].as_object().into_iter().flatten() {
                if spec["required"] == true {
                    assert!(resp.headers().contains_key(h.as_str()), "{name}: {h}");
                }
            }
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("body");
            let body: Value = serde_json::from_slice(&bytes).expect("JSON body");
            let body = body.as_object().expect("an object");
            assert!(body["error"].is_string(), "{name}");
            for k in body.keys() {
                assert!(props.contains_key(k), "{name}: undocumented {k}");
            }
        }
    }
}
