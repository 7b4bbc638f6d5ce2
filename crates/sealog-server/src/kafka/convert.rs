//! One Kafka message to the records it makes, without I/O but for the
//! audit error files: the format's parser, the `kafka` provenance spliced
//! in front, and a refused record (with the message's first 128 KiB and
//! its SHA-256) for what cannot be read.

use sealog_codec::logshuttle;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit;
use crate::config::KafkaFormat;

/// Bytes of a refused message kept in its record.
pub const REFUSED_BODY_BYTES: usize = 128 * 1024;

/// Room kept for the provenance in front of an event.
const PROVENANCE_ROOM: usize = 1024;

/// What the converter needs of a message.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Milliseconds since the epoch, when the broker or producer gave one.
    pub timestamp_ms: Option<i64>,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub payload: Option<&'a [u8]>,
    /// The last `x-request-token` header (Palisade).
    pub request_token: Option<&'a [u8]>,
    /// The last `sealog-token` header (LogHarbour).
    pub sealog_token: Option<&'a [u8]>,
}

/// One record a message makes.
#[derive(Debug)]
pub struct Out {
    /// The realm, when it is not the source's own (a LogHarbour message
    /// with a `sealog-token`).
    pub realm: Option<String>,
    /// The whole record line, provenance first.
    pub line: Vec<u8>,
    /// The event's own time (else the message's timestamp).
    pub time: Option<i64>,
    /// A LogHarbour `id`, for the redelivery check.
    pub id: Option<String>,
}

/// A message that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short reason for metrics and the DLQ (`invalid_json`, ...).
    pub reason: &'static str,
    /// What exactly was wrong.
    pub detail: String,
    /// The refused part, when only part of the message was refused (an
    /// NDJSON line): the DLQ gets the refused parts, not lines already
    /// stored.
    pub part: Option<Vec<u8>>,
}

impl Refusal {
    fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            part: None,
        }
    }

    /// The `dlq_reason` header value, as LogHarbour writes it
    /// (`json_unmarshal_error: ...`, `missing_id_field`).
    pub fn dlq_reason(&self) -> String {
        format!("{}: {}", self.reason, self.detail)
    }
}

/// Where a token named in a header leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRealm {
    /// A live write token of this realm.
    Realm(String),
    /// Unknown, revoked, or not a write token.
    Refused(&'static str),
}

/// The conversion of one message.
#[derive(Debug, Default)]
pub struct Converted {
    /// Records to store.
    pub records: Vec<Out>,
    /// Refusals (each also has a record in `records`).
    pub refused: Vec<Refusal>,
}

/// The `{"kafka":{...}` head of a record (no closing brace of the
/// record). `line` is set when a message makes several records.
pub fn provenance(m: &Msg<'_>, group: &str, format: KafkaFormat, part: Option<usize>) -> Vec<u8> {
    provenance_with(m, group, format, part, 0)
}

/// [`provenance`] with room for `extra` more bytes (the event).
fn provenance_with(
    m: &Msg<'_>,
    group: &str,
    format: KafkaFormat,
    part: Option<usize>,
    extra: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + m.topic.len() + group.len() + extra);
    out.extend_from_slice(br#"{"kafka":{"topic":"#);
    // Topic names are [a-zA-Z0-9._-]; escape anyway.
    push_json_str(&mut out, m.topic);
    out.extend_from_slice(br#","partition":"#);
    push_i64(&mut out, i64::from(m.partition));
    out.extend_from_slice(br#","offset":"#);
    push_i64(&mut out, m.offset);
    out.extend_from_slice(br#","timestamp":"#);
    match m.timestamp_ms {
        Some(t) => push_i64(&mut out, t),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","key":"#);
    match m.key.map(std::str::from_utf8) {
        None => out.extend_from_slice(b"null"),
        Some(Ok(k)) => push_json_str(&mut out, k),
        Some(Err(_)) => {
            // Not text: kept as base64 under its own name.
            out.extend_from_slice(b"null,\"key_base64\":");
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(m.key.unwrap_or_default());
            push_json_str(&mut out, &b64);
        }
    }
    out.extend_from_slice(br#","group":"#);
    push_json_str(&mut out, group);
    out.extend_from_slice(br#","format":""#);
    out.extend_from_slice(format.as_str().as_bytes());
    out.push(b'"');
    if let Some(p) = part {
        out.extend_from_slice(br#","part":"#);
        push_i64(&mut out, i64::try_from(p).unwrap_or(i64::MAX));
    }
    out.push(b'}');
    out
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    sealog_event::push_decimal(out, v.unsigned_abs());
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly as JSON requires.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `head` (provenance) and then the fields of `event` (a compact JSON
/// object).
fn join(mut head: Vec<u8>, event: &[u8]) -> Vec<u8> {
    let rest = event.get(1..).unwrap_or_default();
    head.reserve(rest.len() + 1);
    if rest.first() != Some(&b'}') {
        head.push(b',');
    }
    head.extend_from_slice(rest);
    head
}

fn ms_to_ns(ms: Option<i64>) -> Option<i64> {
    ms.and_then(|t| t.checked_mul(1_000_000))
}

/// The refused record for a message: provenance, `kind`, the reason, and
/// the first [`REFUSED_BODY_BYTES`] of the body with its length and hash.
pub fn refused_record(head: Vec<u8>, why: &Refusal, body: &[u8]) -> Vec<u8> {
    let kept = body.get(..REFUSED_BODY_BYTES).unwrap_or(body);
    let v = json!({
        "kind": "kafka_refused",
        "reason": why.reason,
        "error": why.detail,
        "body": String::from_utf8_lossy(kept),
        "body_bytes": body.len(),
        "body_truncated": kept.len() < body.len(),
        "body_sha256": hex::encode(Sha256::digest(body)),
    });
    join(
        head,
        &serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

/// A record that only says how far a partition was read: written to the
/// source's realm when a batch's last message for a partition made no
/// record there (a duplicate, or a message for another realm).
pub fn position_record(head: Vec<u8>) -> Vec<u8> {
    join(head, br#"{"kind":"kafka_position"}"#)
}

fn shuttle_refusal(e: &logshuttle::ShuttleError) -> Refusal {
    use logshuttle::ShuttleError as E;
    match e {
        E::NotObject(d) if d == "not an object" => Refusal::new("not_object", "not a JSON object"),
        E::NotObject(d) => Refusal::new("json_unmarshal_error", d.clone()),
        E::Missing(f) => Refusal::new("missing_field", format!("missing field {f}")),
        E::BadToken(t) => Refusal::new("bad_web_log", format!("token {t:?} is not key=value")),
        E::Event(d) => Refusal::new("invalid_event", d.clone()),
    }
}

fn event_refusal(e: &sealog_event::EventError) -> Refusal {
    use sealog_event::EventError as E;
    let reason = match e {
        E::Empty => "empty",
        E::NotAnObject => "not_object",
        E::Reserved(_) => "reserved_field",
        E::NotUtf8 { .. } => "invalid_utf8",
        E::TooDeep => "too_deep",
        E::Multiline | E::Syntax { .. } => "json_unmarshal_error",
    };
    Refusal::new(reason, e.to_string())
}

/// Everything a conversion needs besides the message.
pub struct Ctx<'a> {
    /// The source's format.
    pub format: KafkaFormat,
    /// The consumer group.
    pub group: &'a str,
    /// Palisade: services a success is accepted from.
    pub success_services: &'a [String],
    /// Palisade: where refused bodies are written.
    pub audit_files: Option<&'a AuditFiles>,
    /// LogHarbour: who a `sealog-token` belongs to.
    pub token_realm: &'a dyn Fn(&str) -> TokenRealm,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("format", &self.format)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// The audit error directory and its byte budget.
#[derive(Debug)]
pub struct AuditFiles {
    /// The directory.
    pub dir: std::path::PathBuf,
    /// Its byte budget.
    pub max: u64,
    /// Bytes in it.
    pub used: std::sync::Arc<std::sync::Mutex<Option<u64>>>,
}

/// Converts one message.
pub fn convert(ctx: &Ctx<'_>, m: &Msg<'_>) -> Converted {
    let mut out = Converted::default();
    let body = m.payload.unwrap_or_default();
    let head = |part| provenance(m, ctx.group, ctx.format, part);
    let refuse = |out: &mut Converted, why: Refusal, part| {
        out.records.push(Out {
            realm: None,
            line: refused_record(head(part), &why, body),
            time: ms_to_ns(m.timestamp_ms),
            id: None,
        });
        out.refused.push(why);
    };
    if matches!(
        ctx.format,
        KafkaFormat::PalisadeSuccess | KafkaFormat::PalisadeError
    ) {
        palisade(ctx, m, &mut out);
        return out;
    }
    if m.payload.is_none() || body.is_empty() {
        refuse(
            &mut out,
            Refusal::new("empty", "the message has no value"),
            None,
        );
        return out;
    }
    if body.len() + PROVENANCE_ROOM > sealog_event::MAX_EVENT_BYTES {
        let why = Refusal::new(
            "too_large",
            format!(
                "{} bytes; records hold at most {} bytes",
                body.len(),
                sealog_event::MAX_EVENT_BYTES - PROVENANCE_ROOM
            ),
        );
        refuse(&mut out, why, None);
        return out;
    }
    if ctx.format == KafkaFormat::Ndjson {
        // Bytes as they are: each line's validation finds bad UTF-8.
        ndjson(ctx, m, body, &mut out);
        return out;
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            refuse(&mut out, Refusal::new("invalid_utf8", e.to_string()), None);
            return out;
        }
    };
    let one = |r: Result<(Vec<u8>, Option<i64>), Refusal>| -> Result<Vec<Out>, Refusal> {
        let (ev, time) = r?;
        Ok(vec![Out {
            realm: None,
            line: join(head(None), &ev),
            time: time.or(ms_to_ns(m.timestamp_ms)),
            id: None,
        }])
    };
    let made = match ctx.format {
        KafkaFormat::Logshuttle => one(logshuttle::fluentd(body).map_err(|e| shuttle_refusal(&e))),
        KafkaFormat::LogshuttleIstio => {
            one(logshuttle::istio(body).map_err(|e| shuttle_refusal(&e)))
        }
        KafkaFormat::LogshuttleBuild => {
            one(logshuttle::build_log(body).map_err(|e| shuttle_refusal(&e)))
        }
        KafkaFormat::LogshuttleWeb => web(m, ctx, text),
        KafkaFormat::Logharbour => logharbour(ctx, m, body),
        KafkaFormat::Ndjson | KafkaFormat::PalisadeSuccess | KafkaFormat::PalisadeError => {
            Ok(Vec::new())
        }
    };
    match made {
        Ok(records) => out.records = records,
        Err(why) => refuse(&mut out, why, None),
    }
    out
}

/// `alamoweblogs`: the line, and a copy for the site route when the line
/// names a `site_domain` (host and path then the site's).
fn web(m: &Msg<'_>, ctx: &Ctx<'_>, text: &str) -> Result<Vec<Out>, Refusal> {
    let line = text.trim_end_matches(['\n', '\r']);
    let (ev, time) = logshuttle::web_log(line).map_err(|e| shuttle_refusal(&e))?;
    let time = time.or(ms_to_ns(m.timestamp_ms));
    let site = line
        .split_whitespace()
        .find_map(|t| t.strip_prefix("site_domain="))
        .filter(|s| !s.is_empty());
    let part = site.map(|_| 0);
    let mut recs = vec![Out {
        realm: None,
        line: join(provenance(m, ctx.group, ctx.format, part), &ev),
        time,
        id: None,
    }];
    if let Some(site) = site {
        let site_path = line
            .split_whitespace()
            .find_map(|t| t.strip_prefix("site_path="))
            .unwrap_or("/");
        let mut v: serde_json::Map<String, Value> = serde_json::from_slice(&ev)
            .map_err(|e| Refusal::new("invalid_event", e.to_string()))?;
        v.insert("app".into(), Value::String(site.to_string()));
        v.insert("space".into(), Value::String(String::new()));
        v.insert("host".into(), Value::String(site.to_string()));
        v.insert("path".into(), Value::String(site_path.to_string()));
        v.insert("site_copy".into(), Value::Bool(true));
        let copy =
            serde_json::to_vec(&v).map_err(|e| Refusal::new("invalid_event", e.to_string()))?;
        recs.push(Out {
            realm: None,
            line: join(provenance(m, ctx.group, ctx.format, Some(1)), &copy),
            time,
            id: None,
        });
    }
    Ok(recs)
}

/// LogHarbour: one `LogEntry` with a non-empty `id`, stored as sent; a
/// `sealog-token` header sends it to that token's realm.
fn logharbour(ctx: &Ctx<'_>, m: &Msg<'_>, body: &[u8]) -> Result<Vec<Out>, Refusal> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow, default)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    // The Go client sends each entry with its trailing newline.
    let body = body.trim_ascii();
    let info = sealog_event::validate(body).map_err(|e| event_refusal(&e))?;
    let id: Id<'_> = serde_json::from_slice(body)
        .map_err(|e| Refusal::new("json_unmarshal_error", e.to_string()))?;
    let id = match id.id {
        Some(s) if !s.is_empty() => s.into_owned(),
        _ => return Err(Refusal::new("missing_id_field", "the entry has no id")),
    };
    let realm = match m.sealog_token {
        None => None,
        Some(t) => {
            let t = std::str::from_utf8(t)
                .map_err(|_| Refusal::new("bad_token", "sealog-token is not text"))?;
            match (ctx.token_realm)(t.trim()) {
                TokenRealm::Realm(r) => Some(r),
                TokenRealm::Refused(why) => return Err(Refusal::new("bad_token", why)),
            }
        }
    };
    let mut compact = Vec::with_capacity(body.len());
    sealog_event::compact_json(body, &mut compact);
    Ok(vec![Out {
        realm,
        line: join(provenance(m, ctx.group, ctx.format, None), &compact),
        time: info.time_ns.or(ms_to_ns(m.timestamp_ms)),
        id: Some(id),
    }])
}

/// NDJSON: a record per non-blank line, kept byte for byte (as the HTTP
/// API keeps NDJSON); a bad line is a refused record naming its line, the
/// others are kept.
fn ndjson(ctx: &Ctx<'_>, m: &Msg<'_>, body: &[u8], out: &mut Converted) {
    let body = body.trim_ascii();
    if body.is_empty() {
        let why = Refusal::new("empty", "the message has only whitespace");
        out.records.push(Out {
            realm: None,
            line: refused_record(provenance(m, ctx.group, ctx.format, None), &why, body),
            time: ms_to_ns(m.timestamp_ms),
            id: None,
        });
        out.refused.push(why);
        return;
    }
    if memchr::memchr(b'\n', body).is_none() {
        ndjson_line(ctx, m, body, None, out);
        return;
    }
    let lines = body
        .split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    for (i, l) in lines.enumerate() {
        ndjson_line(ctx, m, l, Some(i), out);
    }
}

fn ndjson_line(ctx: &Ctx<'_>, m: &Msg<'_>, l: &[u8], part: Option<usize>, out: &mut Converted) {
    match sealog_event::validate(l) {
        Ok(info) => {
            let head = provenance_with(m, ctx.group, ctx.format, part, l.len());
            out.records.push(Out {
                realm: None,
                line: join(head, l),
                time: info.time_ns.or(ms_to_ns(m.timestamp_ms)),
                id: None,
            });
        }
        Err(e) => {
            let mut why = event_refusal(&e);
            if let Some(i) = part {
                why.detail = format!("line {}: {}", i + 1, why.detail);
                why.part = Some(l.to_vec());
            }
            let head = provenance(m, ctx.group, ctx.format, part);
            out.records.push(Out {
                realm: None,
                line: refused_record(head, &why, l),
                time: ms_to_ns(m.timestamp_ms),
                id: None,
            });
            out.refused.push(why);
        }
    }
}

/// Palisade: the same checks as `/api/success|error`; a body that is not
/// a message (or has no `x-request-token`) becomes the audit dead-letter
/// record and a file in the error directory.
fn palisade(ctx: &Ctx<'_>, m: &Msg<'_>, out: &mut Converted) {
    let kind = match ctx.format {
        KafkaFormat::PalisadeSuccess => audit::Kind::Success,
        _ => audit::Kind::Error,
    };
    let body = m.payload.unwrap_or_default();
    let token = m.request_token.map(String::from_utf8_lossy);
    let head = provenance(m, ctx.group, ctx.format, None);
    let checked = match &token {
        None => Err(audit::Invalid::field(
            "x-request-token",
            "missing x-request-token header".into(),
        )),
        Some(t) => audit::check(kind, t, body, ctx.success_services),
    };
    match checked {
        Ok((line, verdict)) => {
            let time = sealog_event::validate(&line).ok().and_then(|i| i.time_ns);
            metrics::counter!("sealog_audit_messages_total", "type" => kind.as_str(), "status" => match verdict { audit::Verdict::Accepted => "accepted", audit::Verdict::Rejected(_) => "rejected" }).increment(1);
            out.records.push(Out {
                realm: None,
                line: join(head, &line),
                time: time.or(ms_to_ns(m.timestamp_ms)),
                id: None,
            });
        }
        Err(why) => {
            let file = ctx.audit_files.and_then(|f| {
                audit::keep_error_file(&f.used, &f.dir, f.max, kind, body)
                    .map_err(|e| tracing::error!(dir = %f.dir.display(), cause = %e, "audit body could not be written to the error directory; it is kept as a dead-letter record"))
                    .ok()
                    .flatten()
            });
            let dead = audit::dead_letter(kind, token.as_deref(), &why, file.as_deref(), body);
            let reason = if token.is_none() {
                "missing_request_token"
            } else {
                "invalid_audit_message"
            };
            out.records.push(Out {
                realm: None,
                line: join(head, &dead),
                time: ms_to_ns(m.timestamp_ms),
                id: None,
            });
            out.refused.push(Refusal::new(reason, why.reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(payload: &'a [u8]) -> Msg<'a> {
        Msg {
            topic: "t",
            partition: 2,
            offset: 41,
            timestamp_ms: Some(1_700_000_000_123),
            key: Some(b"k1"),
            payload: Some(payload),
            request_token: None,
            sealog_token: None,
        }
    }

    fn ctx(format: KafkaFormat) -> Ctx<'static> {
        Ctx {
            format,
            group: "g",
            success_services: &[],
            audit_files: None,
            token_realm: &|t: &str| {
                if t == "good" {
                    TokenRealm::Realm("other".into())
                } else {
                    TokenRealm::Refused("unknown or revoked token")
                }
            },
        }
    }

    fn json(line: &[u8]) -> Value {
        serde_json::from_slice(line).expect("record is JSON")
    }

    #[test]
    fn provenance_leads_and_the_event_follows() {
        let c = convert(&ctx(KafkaFormat::Ndjson), &msg(br#"{"a":1, "b": "x"}"#));
        assert!(c.refused.is_empty());
        let line = &c.records[0].line;
        assert!(line.starts_with(br#"{"kafka":{"topic":"t","partition":2,"offset":41,"timestamp":1700000000123,"key":"k1","group":"g","format":"ndjson"},"a":1"#), "{}", String::from_utf8_lossy(line));
        assert_eq!(json(line)["b"], "x");
        assert_eq!(c.records[0].time, Some(1_700_000_000_123_000_000));
        sealog_event::validate(line).expect_err("kafka is reserved for other senders");
    }

    #[test]
    fn ndjson_lines_are_records_and_bad_lines_refused() {
        let c = convert(
            &ctx(KafkaFormat::Ndjson),
            &msg(b"{\"a\":1}\n\nnot json\n{\"kafka\":1}\n"),
        );
        assert_eq!(c.records.len(), 3);
        assert_eq!(c.refused.len(), 2);
        assert_eq!(json(&c.records[1].line)["kind"], "kafka_refused");
        assert_eq!(json(&c.records[1].line)["kafka"]["part"], 1);
        assert_eq!(c.refused[1].reason, "reserved_field");
    }

    #[test]
    fn garbage_is_refused_with_reasons() {
        let c = ctx(KafkaFormat::Logharbour);
        for (body, reason) in [
            (&b"{not json"[..], "json_unmarshal_error"),
            (&b"\xff\xfe"[..], "invalid_utf8"),
            (&br#"{"app":"a"}"#[..], "missing_id_field"),
            (&br#"{"id":""}"#[..], "missing_id_field"),
            (&b"[1,2]"[..], "not_object"),
            (&b""[..], "empty"),
        ] {
            let out = convert(&c, &msg(body));
            assert_eq!(out.refused.len(), 1, "{body:?}");
            assert_eq!(
                out.refused[0].reason, reason,
                "{body:?}: {:?}",
                out.refused[0]
            );
            let v = json(&out.records[0].line);
            assert_eq!(v["kind"], "kafka_refused");
            assert_eq!(v["body_bytes"], body.len());
        }
        let big = vec![b'x'; 5 << 20];
        let out = convert(&c, &msg(&big));
        assert_eq!(out.refused[0].reason, "too_large");
        let v = json(&out.records[0].line);
        assert_eq!(v["body_truncated"], true);
        assert_eq!(v["body_bytes"], 5 << 20);
        assert!(out.records[0].line.len() < 200 * 1024);
    }

    #[test]
    fn logharbour_keeps_id_and_routes_by_token() {
        let body = br#"{"id":"2ZxQ","app":"crux","system":"h1","module":"m","type":"A","pri":"Info","when":"2026-11-24T01:00:00Z","msg":"login","data":{"activity_data":"x"}}"#;
        let c = ctx(KafkaFormat::Logharbour);
        let out = convert(&c, &msg(body));
        assert_eq!(out.records[0].id.as_deref(), Some("2ZxQ"));
        assert_eq!(out.records[0].realm, None);
        assert_eq!(json(&out.records[0].line)["type"], "A");
        let mut m = msg(body);
        m.sealog_token = Some(b"good");
        assert_eq!(convert(&c, &m).records[0].realm.as_deref(), Some("other"));
        m.sealog_token = Some(b"bad");
        let out = convert(&c, &m);
        assert_eq!(out.refused[0].reason, "bad_token");
        assert_eq!(
            out.records[0].realm, None,
            "a refused message stays in the source's realm"
        );
    }

    #[test]
    fn web_logs_get_a_site_copy() {
        let c = ctx(KafkaFormat::LogshuttleWeb);
        let out = convert(&c, &msg(b"hostname=shop-prod.example.com path=/cart site_domain=www.example.com site_path=/shop/cart status=200"));
        assert_eq!(out.records.len(), 2);
        let (a, b) = (json(&out.records[0].line), json(&out.records[1].line));
        assert_eq!(
            (a["app"].as_str(), a["space"].as_str()),
            (Some("shop"), Some("prod"))
        );
        assert_eq!(
            (
                b["app"].as_str(),
                b["path"].as_str(),
                b["site_copy"].as_bool()
            ),
            (Some("www.example.com"), Some("/shop/cart"), Some(true))
        );
        assert_eq!(
            (a["kafka"]["part"].as_u64(), b["kafka"]["part"].as_u64()),
            (Some(0), Some(1))
        );
        let out = convert(&c, &msg(b"hostname=a-b.c notapair"));
        assert_eq!(out.refused[0].reason, "bad_web_log");
    }

    #[test]
    fn palisade_without_token_is_a_dead_letter() {
        let c = ctx(KafkaFormat::PalisadeError);
        let out = convert(&c, &msg(br#"{"userId":"u"}"#));
        assert_eq!(out.refused[0].reason, "missing_request_token");
        let v = json(&out.records[0].line);
        assert_eq!(v["kind"], "audit_dead_letter");
        assert_eq!(v["kafka"]["offset"], 41);
    }

    #[test]
    fn binary_keys_are_kept_as_base64() {
        let mut m = msg(br#"{"a":1}"#);
        m.key = Some(&[0xff, 0x00]);
        let out = convert(&ctx(KafkaFormat::Ndjson), &m);
        let v = json(&out.records[0].line);
        assert_eq!(v["kafka"]["key"], Value::Null);
        assert_eq!(v["kafka"]["key_base64"], "/wA=");
    }
}
