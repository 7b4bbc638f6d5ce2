//! The audit service (GCHQ Palisade's `audit-service`): one place where an
//! `AuditSuccessMessage` or `AuditErrorMessage` is checked, turned into an
//! audit record, and committed. `POST /api/success` and `POST /api/error`
//! call [`handle`]; a Kafka source for Palisade's `success` and `error`
//! topics is meant to call it too, with the record's `x-request-token`
//! header.
//!
//! What Palisade did and sealog keeps: every field is required (a `null`
//! counts as missing); a success message is accepted only from the
//! configured services (`filtered-resource-service` and `data-service` by
//! default); an error message from any service; `context` is any object,
//! with `@class` (the contract tests) or `class` (the README).
//!
//! What sealog changes:
//! - nothing is dropped: a success from another service is kept as an
//!   audit record marked `rejected` with the reason, and answered 202 with
//!   `{"status":"rejected"}`; a body that cannot be read is answered 400
//!   naming the field, and its raw bytes are kept twice, as a file in the
//!   audit error directory itself (Palisade wrote to its parent) and as a
//!   dead-letter record in the realm's log;
//! - the answer comes only after the commit is durable, and is the coded
//!   acknowledgement Palisade's users asked for (gchq/Palisade #289, #122):
//!   `{"status":"accepted"|"rejected","reason":...,"receipt":{...}}`;
//! - a missing `x-request-token` is a 400 with a reason, not a 500.
//!
//! The record: `{"kind":"audit","audit":{"type":"success"|"error",
//! "request_token":...,"status":...,"reason":...},` then every field of the
//! message as sent (so `where userId=...` finds it). A dead letter:
//! `{"kind":"audit_dead_letter","audit":{"type","request_token","reason",
//! "file"},"body":...,"body_bytes":...,"body_sha256":...}`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::realm::RealmHandle;
use crate::state::AppState;

/// The header that carries the request token (Palisade's `Token.HEADER`).
pub const REQUEST_TOKEN_HEADER: &str = "x-request-token";

/// Longest request token accepted.
pub const MAX_REQUEST_TOKEN: usize = 1024;

/// Most bytes of a refused body kept inside its dead-letter record (the
/// file in the error directory has all of it). JSON escaping may grow a
/// byte to six (`\u0001`): 128 KiB stays under the 1 MiB event limit.
pub const DEAD_LETTER_BODY_BYTES: usize = 128 * 1024;

/// Which message a body claims to be (by route, or by Kafka topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `AuditSuccessMessage` (route `/api/success`, topic `success`).
    Success,
    /// `AuditErrorMessage` (route `/api/error`, topic `error`).
    Error,
}

impl Kind {
    /// `success` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::Error => "error",
        }
    }

    /// The dead-letter file prefix, as Palisade named them.
    fn file_prefix(self) -> &'static str {
        match self {
            Kind::Success => "Success-",
            Kind::Error => "Error-",
        }
    }
}

/// The outcome of a message that could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed Palisade's rules.
    Accepted,
    /// Kept, but failed a rule: why.
    Rejected(String),
}

/// Why a body is not an audit message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl Invalid {
    pub(crate) fn field(name: &str, reason: String) -> Self {
        Self {
            field: Some(name.to_string()),
            reason,
        }
    }
}

/// Fields every audit message has, with whether each must be an object.
const BASE_FIELDS: [(&str, bool); 8] = [
    ("userId", false),
    ("resourceId", false),
    ("context", true),
    ("serviceName", false),
    ("timestamp", false),
    ("serverIP", false),
    ("serverHostname", false),
    ("attributes", true),
];

/// Keys a message may not carry: sealog's own and the record's.
const RESERVED: [&str; 5] = ["kind", "audit", "realm", "seq", "received_at"];

/// The first top-level key that appears twice in a JSON object, if any
/// (serde keeps the last and the stored record would keep both: a reader
/// taking the first would see another message than the one judged).
fn duplicate_key(body: &[u8]) -> Option<String> {
    sealog_codec::logshuttle::duplicate_key(body)
}

/// Checks `body` as a message of `kind` and builds its record line.
///
/// # Errors
/// [`Invalid`] naming the field when the body is not such a message.
pub fn check(
    kind: Kind,
    request_token: &str,
    body: &[u8],
    success_services: &[String],
) -> Result<(Vec<u8>, Verdict), Invalid> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Invalid {
        field: None,
        reason: format!("body is not JSON: {e}"),
    })?;
    let Value::Object(obj) = &value else {
        return Err(Invalid {
            field: None,
            reason: "body is not a JSON object".into(),
        });
    };
    let extra: (&str, bool) = match kind {
        Kind::Success => ("leafResourceId", false),
        Kind::Error => ("error", true),
    };
    for (name, is_object) in BASE_FIELDS.iter().copied().chain([extra]) {
        match obj.get(name) {
            None | Some(Value::Null) => {
                return Err(Invalid::field(
                    name,
                    format!("missing required field `{name}`"),
                ))
            }
            Some(Value::Object(_)) if is_object => {}
            Some(Value::String(_)) if !is_object => {}
            Some(_) => {
                let want = if is_object { "an object" } else { "a string" };
                return Err(Invalid::field(
                    name,
                    format!("field `{name}` must be {want}"),
                ));
            }
        }
    }
    if let Some(d) = duplicate_key(body) {
        return Err(Invalid::field(
            &d,
            format!("field `{d}` appears more than once"),
        ));
    }
    if let Some(r) = RESERVED.iter().find(|r| obj.contains_key(**r)) {
        return Err(Invalid::field(
            r,
            format!("field `{r}` is reserved by sealog's audit record"),
        ));
    }
    let service = obj
        .get("serviceName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let verdict = match kind {
        Kind::Success if !success_services.iter().any(|s| s == service) => {
            Verdict::Rejected(format!(
                "an AuditSuccessMessage is accepted only from {}; this one is from {service:?}",
                success_services.join(" or ")
            ))
        }
        _ => Verdict::Accepted,
    };
    let (status, reason) = match &verdict {
        Verdict::Accepted => ("accepted", Value::Null),
        Verdict::Rejected(r) => ("rejected", Value::String(r.clone())),
    };
    let head = json!({
        "type": kind.as_str(),
        "request_token": request_token,
        "status": status,
        "reason": reason,
    });
    let mut line = Vec::with_capacity(body.len() + 160);
    line.extend_from_slice(br#"{"kind":"audit","audit":"#);
    serde_json::to_writer(&mut line, &head).map_err(|e| Invalid {
        field: None,
        reason: e.to_string(),
    })?;
    // The message's own fields follow, as sent (whitespace between tokens
    // dropped so the record is one line).
    let mut compact = Vec::with_capacity(body.len());
    sealog_event::compact_json(body, &mut compact);
    let rest = compact.get(1..).unwrap_or_default();
    if rest.first() != Some(&b'}') {
        line.push(b',');
    }
    line.extend_from_slice(rest);
    sealog_event::validate(&line).map_err(|e| Invalid {
        field: None,
        reason: format!("message cannot be stored: {e}"),
    })?;
    Ok((line, verdict))
}

/// The dead-letter record for a refused body.
pub fn dead_letter(
    kind: Kind,
    request_token: Option<&str>,
    why: &Invalid,
    file: Option<&Path>,
    raw: &[u8],
) -> Vec<u8> {
    let kept = raw.get(..DEAD_LETTER_BODY_BYTES).unwrap_or(raw);
    let v = json!({
        "kind": "audit_dead_letter",
        "audit": {
            "type": kind.as_str(),
            "request_token": request_token,
            "reason": why.reason,
            "field": why.field,
            // The name only: the server's paths are not the reader's business.
            "file": file.and_then(|f| f.file_name()).map(|n| n.to_string_lossy().into_owned()),
        },
        "body": String::from_utf8_lossy(kept),
        "body_bytes": raw.len(),
        "body_truncated": kept.len() < raw.len(),
        "body_sha256": hex::encode(Sha256::digest(raw)),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Writes `raw` to a new file `Success-<UTC time>.json` or
/// `Error-<UTC time>.json` in `dir` (created if missing), the time as
/// Palisade's ISO instant with `:` as `-`; never overwrites: a second
/// body in the same millisecond gets `-2`, `-3`, ... The file and the
/// directory are synced before this returns.
///
/// # Errors
/// I/O errors.
pub fn write_error_file(
    dir: &Path,
    kind: Kind,
    raw: &[u8],
    now_ns: i64,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let full = sealog_event::format_rfc3339_nanos(now_ns);
    // "2026-11-23T22:10:05.123456789Z" → "2026-11-23T22-10-05.123Z"
    let millis = format!("{}Z", full.get(..23).unwrap_or(&full)).replace(':', "-");
    let stem = format!("{}{millis}", kind.file_prefix());
    for n in 1u32..10_000 {
        let name = if n == 1 {
            format!("{stem}.json")
        } else {
            format!("{stem}-{n}.json")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(raw)?;
                f.sync_all()?;
                std::fs::File::open(dir)?.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "{}: no free file name for {stem}",
        dir.display()
    )))
}

/// Writes a refused body to the error directory unless that would take
/// it past `max` bytes (then `Ok(None)`, logged): the directory is shared
/// by every realm and a client could otherwise fill the disk with bodies.
pub(crate) fn keep_error_file(
    counter: &std::sync::Mutex<Option<u64>>,
    dir: &Path,
    max: u64,
    kind: Kind,
    body: &[u8],
) -> std::io::Result<Option<PathBuf>> {
    let mut used = counter
        .lock()
        .map_err(|_| std::io::Error::other("audit error byte count lock poisoned"))?;
    let now = match *used {
        Some(n) => n,
        None => std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0),
    };
    if now.saturating_add(body.len() as u64) > max {
        *used = Some(now);
        tracing::warn!(dir = %dir.display(), used = now, max, "audit error directory is full; the refused body is kept only in its dead-letter record");
        return Ok(None);
    }
    let path = write_error_file(dir, kind, body, sealog_event::now_ns())?;
    *used = Some(now + body.len() as u64);
    Ok(Some(path))
}

/// What [`handle`] answers.
#[derive(Debug)]
pub enum Outcome {
    /// Committed: the verdict and the receipt.
    Stored(Verdict, sealog_journal::Receipt),
    /// Not a message: kept as a dead letter (and a file when it could be
    /// written); the reason and the field.
    Refused(Invalid),
}

/// The audit error directory: configured, or `<data>/audit-errors`.
pub fn error_dir(state: &AppState) -> Result<PathBuf, ApiError> {
    if let Some(d) = &state.config.audit.error_dir {
        return Ok(d.clone());
    }
    Ok(state.data_dir()?.root().join("audit-errors"))
}

/// Checks and commits one message for `realm`; a body that is not a
/// message is written to the error directory and committed as a dead
/// letter. Returns only once the record is durable.
///
/// # Errors
/// Commit failures (503, 507, ...): then nothing was acknowledged.
pub async fn handle(
    state: &AppState,
    realm: &RealmHandle,
    kind: Kind,
    request_token: &str,
    body: Vec<u8>,
) -> Result<Outcome, ApiError> {
    let services = state.config.audit.success_services.clone();
    let token = request_token.to_string();
    let dir = error_dir(state)?;
    let realm_name = realm.name().to_string();
    let max = state.config.audit.error_dir_max_bytes;
    let counter = state.audit_error_bytes.clone();
    let (line, outcome) = tokio::task::spawn_blocking(move || {
        match check(kind, &token, &body, &services) {
            Ok((line, verdict)) => (line, Ok(verdict)),
            Err(why) => {
                let file = match keep_error_file(&counter, &dir, max, kind, &body) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(realm = %realm_name, dir = %dir.display(), cause = %e, "audit body could not be written to the error directory; it is kept as a dead-letter record");
                        None
                    }
                };
                (dead_letter(kind, Some(&token), &why, file.as_deref(), &body), Err(why))
            }
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let time = sealog_event::validate(&line).ok().and_then(|i| i.time_ns);
    let len = line.len();
    let batch = sealog_codec::batch::Batch {
        buf: line,
        events: vec![(0..len, time)],
        ..Default::default()
    };
    let receipt = crate::front::commit(state, realm, batch).await?;
    Ok(match outcome {
        Ok(verdict) => {
            metrics::counter!("sealog_audit_messages_total", "type" => kind.as_str(), "status" => match verdict { Verdict::Accepted => "accepted", Verdict::Rejected(_) => "rejected" }).increment(1);
            Outcome::Stored(verdict, receipt)
        }
        Err(why) => {
            state.metrics.refused(realm.name(), "audit_invalid", 1);
            Outcome::Refused(why)
        }
    })
}
