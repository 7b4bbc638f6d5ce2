//! The sealog record, without any I/O.
//!
//! An *event* is one JSON object as a sender wrote it. sealog validates it
//! ([`validate`]), then stores it as a *leaf line*: the same bytes with
//! `realm`, `seq` and `received_at` spliced in at the front ([`LeafBuilder`]).
//! The leaf line is what is hashed into the realm's Merkle log and what query
//! and export return, byte for byte; sealog never re-serialises a record.
//!
//! This crate is not a JSON library: it checks that an event is a well-formed
//! object with no reserved keys and pulls out the event's own time, and leaves
//! every other field alone.
//!
//! ```
//! use sealog_event::{validate, LeafBuilder};
//! let event = br#"{"app":"payments","msg":"paid","time":"2026-11-22T06:00:00Z"}"#;
//! let info = validate(event).expect("a valid event");
//! assert!(info.time_ns.is_some());
//! let mut leaf = Vec::new();
//! LeafBuilder::new("acme", 1_700_000_000_000_000_000).build(7, event, &mut leaf);
//! assert!(leaf.starts_with(br#"{"realm":"acme","seq":7,"received_at":""#));
//! ```

mod realm;
mod severity;
mod time_fmt;
mod validate;

pub use realm::{validate_realm_name, RealmName, RealmNameError, MAX_REALM_NAME};
pub use severity::{severity_of, SEVERITY_FIELDS};
pub use time_fmt::{format_rfc3339_nanos, now_ns, parse_rfc3339, parse_time_value, TimeValue};
pub use validate::{
    leaf_time, validate, EventError, EventInfo, MAX_DEPTH, RESERVED_FIELDS, TIME_FIELDS,
};

/// The largest event (one JSON object, as sent) any ingest path may store:
/// 1 MiB. The journal refuses a batch holding a larger one where it builds
/// blocks, so no path can write a record its readers would refuse; listeners
/// may set lower limits of their own.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Builds leaf lines for one realm and one commit.
///
/// All records sequenced in the same commit share one `received_at`: the
/// moment the batch was sequenced.
#[derive(Debug, Clone)]
pub struct LeafBuilder {
    head: Vec<u8>,
    received_at: Vec<u8>,
    received_at_ns: i64,
}

impl LeafBuilder {
    /// A builder for `realm` (a valid realm name, so it needs no escaping)
    /// stamping records with `received_at_ns` (nanoseconds since the epoch).
    pub fn new(realm: &str, received_at_ns: i64) -> Self {
        let mut head = Vec::with_capacity(realm.len() + 24);
        head.extend_from_slice(br#"{"realm":""#);
        head.extend_from_slice(realm.as_bytes());
        head.extend_from_slice(br#"","seq":"#);
        let mut received_at = Vec::with_capacity(48);
        received_at.extend_from_slice(br#","received_at":""#);
        received_at.extend_from_slice(format_rfc3339_nanos(received_at_ns).as_bytes());
        received_at.push(b'"');
        Self {
            head,
            received_at,
            received_at_ns,
        }
    }

    /// The commit's `received_at`, in nanoseconds since the epoch.
    pub fn received_at_ns(&self) -> i64 {
        self.received_at_ns
    }

    /// Appends the leaf line for `event` (a validated JSON object, no
    /// surrounding whitespace) at `seq` to `out`. No newline is added.
    pub fn build(&self, seq: u64, event: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        let mut digits = itoa_buf();
        out.extend_from_slice(fmt_u64(seq, &mut digits));
        out.extend_from_slice(&self.received_at);
        // `event` starts with `{`; what follows is kept exactly as sent.
        let rest = event.get(1..).unwrap_or_default();
        let empty = rest
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|b| *b == b'}');
        if !empty {
            out.push(b',');
        }
        out.extend_from_slice(rest);
    }
}

/// Appends `json` to `out` without the whitespace between tokens, so a
/// value spread over several lines becomes one line with its bytes
/// otherwise unchanged (re-serialising would reorder or re-escape fields).
pub fn compact_json(json: &[u8], out: &mut Vec<u8>) {
    let (mut in_str, mut esc) = (false, false);
    for &b in json {
        if in_str {
            out.push(b);
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if !b.is_ascii_whitespace() {
            in_str = b == b'"';
            out.push(b);
        }
    }
}

/// The bytes a leaf line for `seq` in `realm` must start with. The verifier
/// uses it to check that every record sits at the position it claims.
pub fn leaf_prefix(realm: &str, seq: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(br#"{"realm":""#);
    out.extend_from_slice(realm.as_bytes());
    out.extend_from_slice(br#"","seq":"#);
    let mut digits = itoa_buf();
    out.extend_from_slice(fmt_u64(seq, &mut digits));
    out.push(b',');
}

/// Reads the `seq` a leaf line claims, if it has the shape sealog writes.
pub fn leaf_seq(line: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(line, br#","seq":"#)? + 7;
    let digits = line.get(at..)?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Appends `v` in decimal to `out`.
pub fn push_decimal(out: &mut Vec<u8>, v: u64) {
    let mut buf = itoa_buf();
    out.extend_from_slice(fmt_u64(v, &mut buf));
}

/// Formats `v` in decimal into `buf`, returning the digits. Hand-rolled
/// because it runs once per record on the ingest hot path.
fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_line_keeps_the_event_bytes() {
        let b = LeafBuilder::new("acme", 0);
        let mut out = Vec::new();
        b.build(42, br#"{ "a":1,"b" : "x"}"#, &mut out);
        assert_eq!(
            out,
            br#"{"realm":"acme","seq":42,"received_at":"1970-01-01T00:00:00.000000000Z", "a":1,"b" : "x"}"#
        );
        assert_eq!(leaf_seq(&out), Some(42));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("leaf is json");
        assert_eq!(v["seq"], 42);
    }

    #[test]
    fn empty_object_gets_no_dangling_comma() {
        let b = LeafBuilder::new("r", 0);
        let mut out = Vec::new();
        b.build(0, b"{ }", &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("leaf is json");
        assert_eq!(v["realm"], "r");
    }

    #[test]
    fn prefix_matches_built_line() {
        let b = LeafBuilder::new("r", 5);
        let mut out = Vec::new();
        b.build(u64::MAX, b"{}", &mut out);
        let mut p = Vec::new();
        leaf_prefix("r", u64::MAX, &mut p);
        p.pop();
        assert!(out.starts_with(&p));
    }
}
