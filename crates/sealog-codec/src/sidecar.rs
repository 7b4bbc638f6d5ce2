//! Sidecar messages as events, and the frames sealog adds to the protocol.
//!
//! A message that is a JSON object is stored with its fields as sent (one
//! line: whitespace between tokens is dropped). Anything else that is UTF-8
//! text (including JSON that sealog cannot store as-is, such as an object
//! with a `seq` of its own) is kept whole as the `msg` of an event
//! `{"msg": ..., "source": "sidecar", "service": ...}`. Invalid UTF-8 and
//! empty messages are refused.
//!
//! sealog's additions, all frames in the same format:
//! - hello (client → server, first frame, only on listeners bound to no
//!   realm): `{"token": "<write token>"}`;
//! - ack (server → client): `{"type":"receipt", "realm", "first_seq",
//!   "last_seq", "count", "checkpoint"}` after each durable commit;
//! - error (server → client): `{"type":"error", "error": "...", "frame": n}`.

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A zero-length frame.
    #[error("empty message")]
    Empty,
    /// The message is not UTF-8.
    #[error("message is not UTF-8 (bad byte at offset {0})")]
    NotUtf8(usize),
}

/// The event for a sidecar message: its JSON line and its own time.
///
/// # Errors
/// [`MessageError`] for empty or non-UTF-8 messages.
pub fn to_event(
    message: &[u8],
    service: Option<&str>,
) -> Result<(Vec<u8>, Option<i64>), MessageError> {
    let text = std::str::from_utf8(message).map_err(|e| MessageError::NotUtf8(e.valid_up_to()))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(MessageError::Empty);
    }
    if trimmed.starts_with('{') {
        let mut line = Vec::with_capacity(trimmed.len());
        sealog_event::compact_json(trimmed.as_bytes(), &mut line);
        if let Ok(info) = sealog_event::validate(&line) {
            return Ok((line, info.time_ns));
        }
    }
    let mut obj = serde_json::Map::new();
    obj.insert("msg".into(), serde_json::Value::String(text.to_string()));
    obj.insert("source".into(), "sidecar".into());
    if let Some(s) = service {
        obj.insert("service".into(), s.into());
    }
    let line = serde_json::to_vec(&obj).unwrap_or_default();
    Ok((line, None))
}

/// A hello frame: the write token, and the sidecar's service name when it
/// gives one (`{"token": "...", "serviceName": "..."}`, the name the
/// Mojaloop sidecar registered with the KMS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The realm's write token.
    pub token: String,
    /// The service the sidecar logs for (1 to 256 characters).
    pub service: Option<String>,
}

/// The hello in a frame, if it is one: an object with `token` and at most
/// `serviceName` besides.
pub fn parse_hello(message: &[u8]) -> Option<Hello> {
    let v: serde_json::Value = serde_json::from_slice(message).ok()?;
    let obj = v.as_object()?;
    let service = match obj.get("serviceName") {
        None => None,
        Some(s) => Some(
            s.as_str()
                .filter(|s| !s.is_empty() && s.len() <= 256)?
                .to_string(),
        ),
    };
    if obj.len() != 1 + usize::from(service.is_some()) {
        return None;
    }
    let token = obj.get("token")?.as_str()?.to_string();
    Some(Hello { token, service })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_keep_their_fields() {
        let (line, t) = to_event(
            b" {\"app\": \"ledger\",\n \"time\":\"2026-01-01T00:00:00Z\"} ",
            Some("svc"),
        )
        .expect("event");
        assert_eq!(line, br#"{"app":"ledger","time":"2026-01-01T00:00:00Z"}"#);
        assert!(t.is_some());
    }

    #[test]
    fn text_and_unstorable_json_are_kept_whole() {
        let (line, _) = to_event(b"plain text \"quoted\"", Some("svc")).expect("event");
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["msg"], "plain text \"quoted\"");
        assert_eq!(v["service"], "svc");
        let (line, _) = to_event(br#"{"seq":5,"x":1}"#, None).expect("event");
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["msg"], r#"{"seq":5,"x":1}"#);
        assert!(sealog_event::validate(&line).is_ok());
    }

    #[test]
    fn refusals_and_hello() {
        assert_eq!(to_event(b"", None), Err(MessageError::Empty));
        assert_eq!(to_event(b"ab\xffcd", None), Err(MessageError::NotUtf8(2)));
        assert_eq!(
            parse_hello(br#"{"token":"slw_x"}"#)
                .map(|h| h.token)
                .as_deref(),
            Some("slw_x")
        );
        assert_eq!(parse_hello(br#"{"token":"slw_x","app":"y"}"#), None);
        assert_eq!(
            parse_hello(br#"{"token":"slw_x","serviceName":"ledger"}"#),
            Some(Hello {
                token: "slw_x".into(),
                service: Some("ledger".into())
            })
        );
        assert_eq!(parse_hello(br#"{"token":"slw_x","serviceName":""}"#), None);
        assert_eq!(parse_hello(b"hello"), None);
    }
}
