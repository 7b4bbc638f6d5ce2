//! Validation of one incoming event.
//!
//! An event must be a single JSON object, valid UTF-8, nested no deeper than
//! serde_json's limit (128), and must not carry the fields sealog sets itself.
//! Validation walks the object once and allocates nothing for ordinary
//! events: keys are matched in place and values skipped.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::time_fmt::{parse_time_value, TimeValue};

/// Fields sealog adds to records; an event may not carry them. `realm`,
/// `seq` and `received_at` are on every record; `kafka` is the provenance
/// (topic, partition, offset) only the Kafka consumer writes, and from
/// which it resumes, so no other sender may forge it.
pub const RESERVED_FIELDS: [&str; 4] = ["realm", "seq", "received_at", "kafka"];

/// Fields holding the event's own time, in order of preference.
pub const TIME_FIELDS: [&str; 4] = ["time", "when", "timestamp", "@timestamp"];

/// Deepest nesting of objects and arrays accepted in an event.
pub const MAX_DEPTH: usize = 64;

/// What validation learned about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventInfo {
    /// The event's own time (from [`TIME_FIELDS`]) in ns since the epoch,
    /// when present and readable.
    pub time_ns: Option<i64>,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The line is empty or only whitespace.
    #[error("empty line")]
    Empty,
    /// The line is valid JSON but not an object.
    #[error("event must be a JSON object")]
    NotAnObject,
    /// The event carries a field sealog sets.
    #[error("field {0:?} is reserved: sealog sets it")]
    Reserved(&'static str),
    /// The bytes are not valid UTF-8.
    #[error("invalid UTF-8 at byte {offset}")]
    NotUtf8 {
        /// 0-based offset of the first bad byte.
        offset: usize,
    },
    /// The event spans more than one line (a raw newline between tokens).
    #[error("event spans more than one line; send one JSON object per line")]
    Multiline,
    /// Objects and arrays nest deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The bytes are not valid JSON.
    #[error("invalid JSON at column {column}: {reason}")]
    Syntax {
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        reason: String,
    },
}

/// Checks that `event` (one line, without its newline) is a JSON object sealog
/// can store, and returns its time.
///
/// # Errors
/// Returns [`EventError`] naming the first problem found.
pub fn validate(event: &[u8]) -> Result<EventInfo, EventError> {
    // serde_json does not check UTF-8 inside values it skips.
    if let Err(e) = std::str::from_utf8(event) {
        return Err(EventError::NotUtf8 {
            offset: e.valid_up_to(),
        });
    }
    let first = event.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Err(EventError::Empty),
        Some(b'{') => {}
        Some(_) => {
            // Tell "not JSON" from "JSON, but not an object".
            return match serde_json::from_slice::<IgnoredAny>(event) {
                Ok(_) => Err(EventError::NotAnObject),
                Err(e) => Err(syntax(&e)),
            };
        }
    }
    if memchr::memchr(b'\n', event).is_some() {
        return Err(EventError::Multiline);
    }
    // Only an event with more than MAX_DEPTH brackets can nest that deep;
    // counting them is a SIMD scan, the exact walk is not.
    if memchr::memchr2_iter(b'{', b'[', event).count() > MAX_DEPTH
        && nesting_depth(event) > MAX_DEPTH
    {
        return Err(EventError::TooDeep);
    }
    let mut de = serde_json::Deserializer::from_slice(event);
    let probe = de.deserialize_map(ProbeVisitor).map_err(|e| syntax(&e))?;
    de.end().map_err(|e| syntax(&e))?;
    if let Some(field) = probe.reserved {
        return Err(EventError::Reserved(field));
    }
    Ok(EventInfo {
        time_ns: probe.time.and_then(|(_, t)| t),
    })
}

/// The deepest nesting of `{` and `[` outside strings. serde_json skips
/// ignored values with an explicit stack and no limit, so depth is checked here.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn syntax(e: &serde_json::Error) -> EventError {
    let mut reason = e.to_string();
    // serde_json appends " at line L column C"; the column is reported apart.
    if let Some(at) = reason.find(" at line ") {
        reason.truncate(at);
    }
    EventError::Syntax {
        column: e.column(),
        reason,
    }
}

#[derive(Default)]
struct Probe {
    /// (priority index into TIME_FIELDS, parsed time)
    time: Option<(usize, Option<i64>)>,
    reserved: Option<&'static str>,
    received_at: Option<i64>,
}

/// The time a stored leaf line is filed under: the event's own time when it
/// has a readable one, else its `received_at`. `None` for a line that is not
/// a JSON object.
pub fn leaf_time(line: &[u8]) -> Option<i64> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let probe = de.deserialize_map(ProbeVisitor).ok()?;
    probe.time.and_then(|(_, t)| t).or(probe.received_at)
}

struct ProbeVisitor;

impl<'de> Visitor<'de> for ProbeVisitor {
    type Value = Probe;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
        let mut probe = Probe::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Time(rank) => {
                    let t = map.next_value_seed(TimeSeed)?;
                    if probe.time.is_none_or(|(r, _)| rank < r) {
                        probe.time = Some((rank, t));
                    }
                }
                Key::Reserved("received_at") => {
                    probe.received_at = map.next_value_seed(TimeSeed)?;
                    probe.reserved.get_or_insert("received_at");
                }
                Key::Reserved(field) => {
                    map.next_value::<IgnoredAny>()?;
                    probe.reserved.get_or_insert(field);
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(probe)
    }
}

enum Key {
    Time(usize),
    Reserved(&'static str),
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
        if let Some(rank) = TIME_FIELDS.iter().position(|f| *f == k) {
            return Ok(Key::Time(rank));
        }
        if let Some(f) = RESERVED_FIELDS.iter().find(|f| **f == k) {
            return Ok(Key::Reserved(f));
        }
        Ok(Key::Other)
    }
}

struct TimeSeed;

impl<'de> DeserializeSeed<'de> for TimeSeed {
    type Value = Option<i64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TimeSeed {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a time")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(parse_time_value(TimeValue::Str(s)))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(parse_time_value(TimeValue::Num(n as f64)))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(parse_time_value(TimeValue::Num(n as f64)))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(parse_time_value(TimeValue::Num(n)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_objects_and_reads_time() {
        let i =
            validate(br#"{"msg":"x","when":"2026-01-01T00:00:00Z","time":"1970-01-01T00:00:01Z"}"#)
                .expect("valid");
        assert_eq!(i.time_ns, Some(1_000_000_000), "time outranks when");
        let i = validate(br#"{"@timestamp":1700000000}"#).expect("valid");
        assert_eq!(i.time_ns, Some(1_700_000_000_000_000_000));
        let i = validate(br#"{"time":{"nested":[1,2]}}"#).expect("valid");
        assert_eq!(i.time_ns, None);
        assert_eq!(
            validate(br#"{"ti\u006de":"x"}"#).expect("valid").time_ns,
            None
        );
    }

    #[test]
    fn refusals_are_precise() {
        assert_eq!(validate(b"   "), Err(EventError::Empty));
        assert_eq!(validate(b"{\"a\":\n1}"), Err(EventError::Multiline));
        assert_eq!(validate(b"[1,2]"), Err(EventError::NotAnObject));
        assert_eq!(validate(b"42"), Err(EventError::NotAnObject));
        assert_eq!(validate(br#"{"seq":1}"#), Err(EventError::Reserved("seq")));
        assert!(matches!(
            validate(br#"{"a":1,}"#),
            Err(EventError::Syntax { column: 8, .. })
        ));
        assert!(matches!(
            validate(br#"{"a":1} {"b":2}"#),
            Err(EventError::Syntax { .. })
        ));
        assert_eq!(
            validate(b"{\"a\":\"\xff\"}"),
            Err(EventError::NotUtf8 { offset: 6 })
        );
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(validate(deep.as_bytes()), Err(EventError::TooDeep));
        let ok = format!("{{\"a\":\"{}\"}}", "[".repeat(200));
        assert!(
            validate(ok.as_bytes()).is_ok(),
            "brackets inside strings do not nest"
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = validate(&bytes);
        }

        #[test]
        fn agrees_with_serde_json(s in "[{}\\[\\]\",:a-z0-9 ]{0,40}") {
            let ours = validate(s.as_bytes()).is_ok();
            let theirs = matches!(
                serde_json::from_str::<serde_json::Value>(&s),
                Ok(serde_json::Value::Object(ref m)) if !m.keys().any(|k| RESERVED_FIELDS.contains(&k.as_str()))
            );
            prop_assert_eq!(ours, theirs);
        }
    }
}
