//! Syslog messages, RFC 5424 and RFC 3164, parsed leniently.
//!
//! Every message becomes an event; the raw line is always kept (`raw`).
//! What could be read is added as fields: `facility`, `severity` (numbers),
//! `time` (RFC 3339, when the timestamp is readable), `host`, `app`,
//! `procid`, `msgid`, `sd` (structured data as `{id: {param: value}}`),
//! `msg`, and `parse_error` naming the first thing that could not be read.
//!
//! A `[sealog@32473 token="..."]` structured-data element carries a write
//! token for listeners bound to no realm. It is taken out of `sd` and its
//! value is replaced by `[redacted]` in `raw`: a log must not keep secrets.

/// Event fields in the order they are written; values borrow from the
/// message where they can.
type Fields<'a> = Vec<(&'static str, FieldValue<'a>)>;

/// A field's value: a number, a string, or structured data.
#[derive(Debug, Clone)]
enum FieldValue<'a> {
    Num(u64),
    Str(std::borrow::Cow<'a, str>),
    Sd(Sd<'a>),
}

/// Writes `s` as a JSON string. Hand-written because it runs for every
/// field of every syslog message: runs of bytes that need no escaping
/// (nearly all) are found eight at a time and copied whole.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let b = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < b.len() {
        // Skip clean words; a short tail is padded with a clean byte.
        loop {
            let word = match b.get(i..i + 8) {
                Some(w) => u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or([0; 8])),
                None => {
                    let mut w = [b'a'; 8];
                    for (k, &x) in b[i..].iter().enumerate() {
                        w[k] = x;
                    }
                    u64::from_le_bytes(w)
                }
            };
            if needs_escape8(word) {
                break;
            }
            i = (i + 8).min(b.len());
            if i == b.len() {
                break;
            }
        }
        let Some(&c) = b.get(i) else { break };
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            c if c < 0x20 => {
                out.extend_from_slice(&b[run..i]);
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                i += 1;
                run = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        // Escapes are ASCII, so copying whole byte runs keeps UTF-8 intact.
        out.extend_from_slice(&b[run..i]);
        out.extend_from_slice(esc);
        i += 1;
        run = i;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

/// Writes a field name: the names are this module's constants, plain ASCII
/// that never needs escaping.
fn push_key(out: &mut Vec<u8>, k: &str) {
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Whether any of the eight bytes in `x` is a control character, `"` or
/// `\\` (the classic has-zero-byte and has-less-than bit tricks; exact as a
/// yes/no answer).
#[inline]
fn needs_escape8(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    let q = x ^ (LO * u64::from(b'"'));
    let quote = q.wrapping_sub(LO) & !q & HI;
    let bs = x ^ (LO * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(LO) & !bs & HI;
    (below_space | quote | backslash) != 0
}

fn write_fields(fields: &Fields<'_>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_key(out, k);
        match v {
            FieldValue::Num(n) => sealog_event::push_decimal(out, *n),
            FieldValue::Str(s) => push_json_str(out, s),
            FieldValue::Sd(sd) => {
                out.push(b'{');
                for (j, (id, params)) in sd.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    push_json_str(out, id);
                    out.extend_from_slice(b":{");
                    for (n, (pk, pv)) in params.iter().enumerate() {
                        if n > 0 {
                            out.push(b',');
                        }
                        push_json_str(out, pk);
                        out.push(b':');
                        push_json_str(out, pv);
                    }
                    out.push(b'}');
                }
                out.push(b'}');
            }
        }
    }
    out.push(b'}');
}

/// The private enterprise number sealog's structured data uses.
pub const SEALOG_SD_ID: &str = "sealog@32473";

/// A parsed message, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The event's JSON line.
    pub event: Vec<u8>,
    /// The event's own time in ns, when its timestamp was readable.
    pub time_ns: Option<i64>,
    /// A token from `[sealog@32473 token="..."]`, if present.
    pub token: Option<String>,
}

/// What [`parse_into`] learned besides the event bytes it appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The event's own time in ns, when its timestamp was readable.
    pub time_ns: Option<i64>,
    /// A token from `[sealog@32473 token="..."]`, if present.
    pub token: Option<String>,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses one syslog message (without framing). `now_ns` dates RFC 3164
/// timestamps, which carry no year. Never fails: what cannot be read is
/// named in `parse_error` and the raw line is kept.
pub fn parse(line: &[u8], now_ns: i64) -> Parsed {
    let mut event = Vec::with_capacity(line.len() * 2 + 64);
    let meta = parse_into(line, now_ns, &mut event);
    Parsed {
        event,
        time_ns: meta.time_ns,
        token: meta.token,
    }
}

/// [`parse`], appending the event's JSON to `out` instead of allocating it,
/// so a listener can build a whole batch in one buffer.
pub fn parse_into(line: &[u8], now_ns: i64, out: &mut Vec<u8>) -> Meta {
    // Valid UTF-8 (nearly every line) is borrowed; the lossy path allocates.
    let text = match std::str::from_utf8(line) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(line),
    };
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let mut obj: Fields<'_> = Vec::with_capacity(12);
    let mut token = None;
    let mut time_ns = None;
    let mut error: Option<&'static str> = None;
    obj.push((
        "source",
        FieldValue::Str(std::borrow::Cow::Borrowed("syslog")),
    ));

    let rest = match parse_pri(text) {
        Some((pri, rest)) => {
            obj.push(("facility", FieldValue::Num(u64::from(pri >> 3))));
            obj.push(("severity", FieldValue::Num(u64::from(pri & 7))));
            rest
        }
        None => {
            error = Some("no valid <PRI> at the start");
            text
        }
    };
    let mut raw: std::borrow::Cow<'_, str> = std::borrow::Cow::Borrowed(text);
    if error.is_none() {
        if let Some(r) = rest.strip_prefix("1 ") {
            parse_5424(r, &mut obj, &mut time_ns, &mut token, &mut error);
        } else {
            parse_3164(rest, now_ns, &mut obj, &mut time_ns, &mut error);
        }
    } else {
        obj.push(("msg", FieldValue::Str(text.into())));
    }
    if let Some(t) = &token {
        raw = std::borrow::Cow::Owned(raw.replacen(t.as_str(), "[redacted]", 1));
    }
    if let Some(e) = error {
        obj.push(("parse_error", FieldValue::Str(e.into())));
    }
    obj.push(("raw", FieldValue::Str(raw)));
    write_fields(&obj, out);
    Meta { time_ns, token }
}

fn parse_pri(s: &str) -> Option<(u8, &str)> {
    let rest = s.strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    let pri: u16 = digits.parse().ok()?;
    (pri <= 191).then(|| (pri as u8, &rest[end + 1..]))
}

/// Splits off the next space-separated field.
fn field(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn nil(v: &str) -> Option<&str> {
    (v != "-" && !v.is_empty()).then_some(v)
}

fn parse_5424<'a>(
    s: &'a str,
    obj: &mut Fields<'a>,
    time_ns: &mut Option<i64>,
    token: &mut Option<String>,
    error: &mut Option<&'static str>,
) {
    let (ts, s) = field(s);
    if let Some(ts) = nil(ts) {
        match sealog_event::parse_rfc3339(ts) {
            Some(ns) => {
                *time_ns = Some(ns);
                obj.push(("time", FieldValue::Str(ts.into())));
            }
            None => {
                error.get_or_insert("timestamp is not RFC 3339");
                obj.push(("timestamp", FieldValue::Str(ts.into())));
            }
        }
    }
    let (host, s) = field(s);
    let (app, s) = field(s);
    let (procid, s) = field(s);
    let (msgid, s) = field(s);
    for (k, v) in [
        ("host", host),
        ("app", app),
        ("procid", procid),
        ("msgid", msgid),
    ] {
        if let Some(v) = nil(v) {
            obj.push((k, FieldValue::Str(v.into())));
        }
    }
    let rest = if let Some(r) = s.strip_prefix('-') {
        r
    } else if s.starts_with('[') {
        match parse_sd(s) {
            Some((sd, r)) => {
                let mut kept: Sd<'a> = Vec::with_capacity(sd.len());
                for (id, params) in sd {
                    if id == SEALOG_SD_ID {
                        if let Some((_, t)) = params.iter().find(|(k, _)| *k == "token") {
                            *token = Some(t.to_string());
                        }
                        continue;
                    }
                    // A repeated SD-ID keeps its first element (JSON keys are unique).
                    if !kept.iter().any(|(k, _)| *k == id) {
                        let mut uniq: Vec<(&'a str, std::borrow::Cow<'a, str>)> =
                            Vec::with_capacity(params.len());
                        for (pk, pv) in params {
                            if !uniq.iter().any(|(k, _)| *k == pk) {
                                uniq.push((pk, pv));
                            }
                        }
                        kept.push((id, uniq));
                    }
                }
                if !kept.is_empty() {
                    obj.push(("sd", FieldValue::Sd(kept)));
                }
                r
            }
            None => {
                error.get_or_insert("structured data is malformed");
                s
            }
        }
    } else {
        error.get_or_insert("structured data is missing");
        s
    };
    let msg = rest.strip_prefix(' ').unwrap_or(rest);
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    if !msg.is_empty() {
        obj.push(("msg", FieldValue::Str(msg.into())));
    }
}

/// Structured data: element IDs with their parameters, borrowed from the
/// message unless a value had escapes to undo.
type Sd<'a> = Vec<(&'a str, Vec<(&'a str, std::borrow::Cow<'a, str>)>)>;

/// Parses `[id k="v" ...][...]`, returning the elements and what follows.
fn parse_sd(s: &str) -> Option<(Sd<'_>, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while b.get(i) == Some(&b'[') {
        i += 1;
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b']') {
            i += 1;
        }
        let id = s.get(start..i)?;
        if id.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        loop {
            match b.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => {
                    i += 1;
                    let ks = i;
                    i += memchr::memchr(b'=', b.get(i..)?).unwrap_or(b.len() - i);
                    let key = s.get(ks..i)?;
                    if b.get(i + 1) != Some(&b'"') {
                        return None;
                    }
                    i += 2;
                    let vs = i;
                    let mut val: Option<String> = None;
                    loop {
                        // Copy the run up to the next quote or backslash.
                        let run = memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
                        let stop = i + run;
                        if let Some(v) = val.as_mut() {
                            v.push_str(s.get(i..stop)?);
                        }
                        i = stop;
                        if b[i] == b'"' {
                            i += 1;
                            break;
                        }
                        // A backslash: `\"`, `\\` and `\]` are escapes; any
                        // other keeps its backslash (RFC 5424 section 6.3.3).
                        let v = val.get_or_insert_with(|| s[vs..stop].to_string());
                        let next = *b.get(i + 1)?;
                        if !matches!(next, b'"' | b'\\' | b']') {
                            v.push('\\');
                        }
                        let ch_end = next_char_end(s, i + 1)?;
                        v.push_str(s.get(i + 1..ch_end)?);
                        i = ch_end;
                    }
                    let value = match val {
                        Some(v) => std::borrow::Cow::Owned(v),
                        None => std::borrow::Cow::Borrowed(s.get(vs..i - 1)?),
                    };
                    params.push((key, value));
                }
                _ => return None,
            }
        }
        out.push((id, params));
    }
    Some((out, s.get(i..)?))
}

fn next_char_end(s: &str, i: usize) -> Option<usize> {
    let c = s.get(i..)?.chars().next()?;
    Some(i + c.len_utf8())
}

fn parse_3164<'a>(
    s: &'a str,
    now_ns: i64,
    obj: &mut Fields<'a>,
    time_ns: &mut Option<i64>,
    error: &mut Option<&'static str>,
) {
    // "Mmm dd hh:mm:ss " (day padded with a space or a zero).
    let mut rest = s;
    if let Some((ns, r)) = bsd_time(s, now_ns) {
        *time_ns = Some(ns);
        obj.push((
            "time",
            FieldValue::Str(sealog_event::format_rfc3339_nanos(ns).into()),
        ));
        rest = r;
        // A host name follows unless the next word is the tag.
        let (word, r) = field(rest);
        if !word.is_empty() && !word.ends_with(':') && !word.contains('[') {
            obj.push(("host", FieldValue::Str(word.into())));
            rest = r;
        }
    } else {
        error.get_or_insert("no RFC 3164 timestamp");
    }
    // TAG: up to 32 alphanumerics (lenient: anything up to ':' or '['), then msg.
    let tag_end = rest.find([':', '[', ' ']).unwrap_or(0);
    if tag_end > 0 && tag_end <= 48 {
        let tag = &rest[..tag_end];
        let mut r = &rest[tag_end..];
        if let Some(p) = r.strip_prefix('[') {
            if let Some(close) = p.find(']') {
                obj.push(("procid", FieldValue::Str(p[..close].into())));
                r = &p[close + 1..];
            }
        }
        if let Some(m) = r.strip_prefix(':') {
            obj.push(("app", FieldValue::Str(tag.into())));
            rest = m.strip_prefix(' ').unwrap_or(m);
        }
    }
    if !rest.is_empty() {
        obj.push(("msg", FieldValue::Str(rest.into())));
    }
}

fn bsd_time(s: &str, now_ns: i64) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    if b.len() < 16
        || b[3] != b' '
        || b[6] != b' '
        || b[9] != b':'
        || b[12] != b':'
        || b[15] != b' '
    {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &s[..3])? + 1;
    let day: u32 = s[4..6].trim().parse().ok()?;
    let (h, m, sec): (u32, u32, u32) = (
        s[7..9].parse().ok()?,
        s[10..12].parse().ok()?,
        s[13..15].parse().ok()?,
    );
    let now_year: i32 = sealog_event::format_rfc3339_nanos(now_ns)
        .get(..4)?
        .parse()
        .ok()?;
    // No year in RFC 3164: this year, or last year if that would be > 1 day ahead.
    for year in [now_year, now_year - 1] {
        let stamp = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}Z");
        let ns = sealog_event::parse_rfc3339(&stamp)?;
        if ns <= now_ns + 86_400_000_000_000 {
            return Some((ns, &s[16..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn ev(line: &str) -> Value {
        let p = parse(
            line.as_bytes(),
            sealog_event::parse_rfc3339("2026-11-22T08:00:00Z").expect("now"),
        );
        assert!(
            sealog_event::validate(&p.event).is_ok(),
            "event is storable: {}",
            String::from_utf8_lossy(&p.event)
        );
        serde_json::from_slice(&p.event).expect("json")
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let line = concat!(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] "#,
            "\u{feff}An application event log entry..."
        );
        let v = ev(line);
        assert_eq!(
            (v["facility"].as_u64(), v["severity"].as_u64()),
            (Some(20), Some(5))
        );
        assert_eq!(v["host"], "mymachine.example.com");
        assert_eq!(v["app"], "evntslog");
        assert_eq!(v["msgid"], "ID47");
        assert!(v.get("procid").is_none(), "nil values are left out");
        assert_eq!(v["sd"]["exampleSDID@32473"]["eventSource"], "Application");
        assert_eq!(v["sd"]["examplePriority@32473"]["class"], "high");
        assert_eq!(v["msg"], "An application event log entry...");
        assert_eq!(v["time"], "2003-10-11T22:14:15.003Z");
        assert!(v.get("parse_error").is_none());
    }

    #[test]
    fn sd_escapes_and_the_token() {
        let p = parse(
            br#"<14>1 - host app 99 - [sealog@32473 token="slw_abc"][x@1 q="a\"b\]c\\d"] hi"#,
            0,
        );
        assert_eq!(p.token.as_deref(), Some("slw_abc"));
        let v: Value = serde_json::from_slice(&p.event).expect("json");
        assert_eq!(v["sd"]["x@1"]["q"], r#"a"b]c\d"#);
        assert!(v["sd"].get(SEALOG_SD_ID).is_none());
        assert!(
            !v["raw"].as_str().expect("raw").contains("slw_abc"),
            "the token is redacted"
        );
        assert_eq!(v["procid"], "99");
    }

    #[test]
    fn rfc3164_lenient() {
        let v =
            ev("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(
            (v["facility"].as_u64(), v["severity"].as_u64()),
            (Some(4), Some(2))
        );
        assert_eq!(v["host"], "mymachine");
        assert_eq!(v["app"], "su");
        assert_eq!(v["procid"], "230");
        assert_eq!(v["msg"], "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(v["time"], "2026-10-11T22:14:15.000000000Z");
        // December seen in January belongs to last year.
        let p = parse(
            b"<13>Dec 31 23:59:59 h app: m",
            sealog_event::parse_rfc3339("2027-01-01T00:00:05Z").expect("t"),
        );
        let v: Value = serde_json::from_slice(&p.event).expect("json");
        assert!(v["time"].as_str().expect("time").starts_with("2026-12-31"));
        let v = ev("<13>no timestamp here");
        assert_eq!(v["parse_error"], "no RFC 3164 timestamp");
        assert_eq!(v["msg"], "no timestamp here");
    }

    #[test]
    fn bad_pri_is_kept_raw() {
        for line in [
            "<999>1 - - - - - - x",
            "no pri at all",
            "<>x",
            "<012>x",
            "<1a>x",
        ] {
            let v = ev(line);
            assert_eq!(v["parse_error"], "no valid <PRI> at the start", "{line}");
            assert_eq!(v["raw"], line);
            assert!(v.get("severity").is_none());
        }
    }

    proptest! {
        #[test]
        fn json_strings_match_serde_json(text in "\\PC{0,40}|[\\x00-\\x1f\"\\\\a-z]{0,40}|[a-z0-9 é]{0,70}[\"\\\\\\x01]?[a-z0-9 ]{0,30}") {
            let mut out = Vec::new();
            push_json_str(&mut out, &text);
            prop_assert_eq!(String::from_utf8(out).expect("utf-8"), serde_json::to_string(&text).expect("json"));
        }

        #[test]
        fn never_panics_and_always_storable(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let p = parse(&bytes, 1_700_000_000_000_000_000);
            prop_assert!(sealog_event::validate(&p.event).is_ok());
        }

        #[test]
        fn sd_values_round_trip(value in "[a-z \"\\\\\\]=é]{0,40}") {
            // Escape as RFC 5424 says a sender must: quote, backslash, `]`.
            let mut esc = String::new();
            for c in value.chars() {
                if matches!(c, '"' | '\\' | ']') {
                    esc.push('\\');
                }
                esc.push(c);
            }
            let line = format!("<13>1 - h app - - [x@1 k=\"{esc}\" z=\"1\"] m");
            let v: serde_json::Value = serde_json::from_slice(&parse(line.as_bytes(), 0).event).expect("json");
            prop_assert_eq!(v["sd"]["x@1"]["k"].as_str(), Some(value.as_str()));
            prop_assert_eq!(v["sd"]["x@1"]["z"].as_str(), Some("1"));
            prop_assert_eq!(v["msg"].as_str(), Some("m"));
        }

        #[test]
        fn structured_fuzz(s in "<[0-9]{1,3}>1? ?[ -~]{0,80}\\[[a-z@0-9]{1,8}( [a-z]{1,4}=\"[ -~]{0,10}\"){0,3}\\]?[ -~]{0,20}") {
            let p = parse(s.as_bytes(), 0);
            prop_assert!(sealog_event::validate(&p.event).is_ok());
        }
    }
}

/// How a TCP syslog connection frames its messages (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `MSG-LEN SP MSG`: octet counting.
    OctetCounting,
    /// Messages end at LF (a trailing CR is dropped).
    Newline,
}

/// Why a TCP syslog stream cannot be framed any further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyslogFrameError {
    /// A message (or an octet count) over the limit.
    #[error("message of {len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// The announced or seen length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Octet counting was detected but the count is not `digits SP`.
    #[error("malformed octet count")]
    BadCount,
}

/// Splits a TCP syslog byte stream into messages, detecting the framing
/// from the first byte: a digit means octet counting, anything else LF.
#[derive(Debug, Clone)]
pub struct SyslogFramer {
    framing: Option<Framing>,
    max: usize,
}

impl SyslogFramer {
    /// A framer refusing messages over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { framing: None, max }
    }

    /// The framing detected so far.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// The next message in `buf` (consumed), or `None` when more bytes are
    /// needed. Empty lines are skipped.
    ///
    /// # Errors
    /// [`SyslogFrameError`]; the stream cannot be resynced after one.
    pub fn decode(
        &mut self,
        buf: &mut bytes::BytesMut,
    ) -> Result<Option<bytes::Bytes>, SyslogFrameError> {
        use bytes::Buf;
        loop {
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            let framing = *self.framing.get_or_insert(if first.is_ascii_digit() {
                Framing::OctetCounting
            } else {
                Framing::Newline
            });
            match framing {
                Framing::OctetCounting => {
                    // Tolerate LF between counted messages (some senders add one).
                    if first == b'\n' || first == b'\r' {
                        buf.advance(1);
                        continue;
                    }
                    let Some(sp) = buf.iter().take(12).position(|b| *b == b' ') else {
                        if buf.len() >= 12 || buf.iter().any(|b| !b.is_ascii_digit()) {
                            return Err(SyslogFrameError::BadCount);
                        }
                        return Ok(None);
                    };
                    let digits = &buf[..sp];
                    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                        return Err(SyslogFrameError::BadCount);
                    }
                    let len: u64 = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .ok_or(SyslogFrameError::BadCount)?;
                    if len > self.max as u64 {
                        return Err(SyslogFrameError::TooLarge { len, max: self.max });
                    }
                    let len = len as usize;
                    if buf.len() < sp + 1 + len {
                        return Ok(None);
                    }
                    buf.advance(sp + 1);
                    return Ok(Some(buf.split_to(len).freeze()));
                }
                Framing::Newline => match memchr_lf(buf) {
                    Some(at) => {
                        let mut line = buf.split_to(at + 1);
                        line.truncate(at);
                        if line.last() == Some(&b'\r') {
                            line.truncate(at - 1);
                        }
                        if line.len() > self.max {
                            return Err(SyslogFrameError::TooLarge {
                                len: line.len() as u64,
                                max: self.max,
                            });
                        }
                        if line.is_empty() {
                            continue;
                        }
                        return Ok(Some(line.freeze()));
                    }
                    None if buf.len() > self.max => {
                        return Err(SyslogFrameError::TooLarge {
                            len: buf.len() as u64,
                            max: self.max,
                        })
                    }
                    None => return Ok(None),
                },
            }
        }
    }

    /// What is left at the end of a newline-framed stream without a final
    /// LF is still a message.
    pub fn finish(&mut self, buf: &mut bytes::BytesMut) -> Option<bytes::Bytes> {
        if self.framing == Some(Framing::Newline) && !buf.is_empty() && buf.len() <= self.max {
            let line = buf.split().freeze();
            let trimmed = line
                .strip_suffix(b"\r")
                .map_or(line.clone(), |t| line.slice(..t.len()));
            return (!trimmed.is_empty()).then_some(trimmed);
        }
        None
    }
}

fn memchr_lf(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

#[cfg(test)]
mod framing_tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn detects_octet_counting_and_newlines() {
        let mut f = SyslogFramer::new(100);
        let mut b = BytesMut::from(&b"5 <1>a 4 <2>"[..]);
        assert_eq!(
            f.decode(&mut b).expect("ok").as_deref(),
            Some(&b"<1>a "[..])
        );
        assert_eq!(f.decode(&mut b).expect("ok"), None, "partial");
        b.extend_from_slice(b"x\n4 <3>y");
        assert_eq!(f.decode(&mut b).expect("ok").as_deref(), Some(&b"<2>x"[..]));
        assert_eq!(f.decode(&mut b).expect("ok").as_deref(), Some(&b"<3>y"[..]));
        assert_eq!(f.framing(), Some(Framing::OctetCounting));

        let mut f = SyslogFramer::new(100);
        let mut b = BytesMut::from(&b"<1>one\r\n\n<2>two\n<3>tail"[..]);
        assert_eq!(
            f.decode(&mut b).expect("ok").as_deref(),
            Some(&b"<1>one"[..])
        );
        assert_eq!(
            f.decode(&mut b).expect("ok").as_deref(),
            Some(&b"<2>two"[..])
        );
        assert_eq!(f.decode(&mut b).expect("ok"), None);
        assert_eq!(f.finish(&mut b).as_deref(), Some(&b"<3>tail"[..]));
    }

    #[test]
    fn limits_and_garbage() {
        let mut f = SyslogFramer::new(10);
        let mut b = BytesMut::from(&b"99999999999 x"[..]);
        assert!(matches!(
            f.decode(&mut b),
            Err(SyslogFrameError::BadCount) | Err(SyslogFrameError::TooLarge { .. })
        ));
        let mut f = SyslogFramer::new(10);
        let mut b = BytesMut::from(&b"11 <1>xxxxxxxx"[..]);
        assert_eq!(
            f.decode(&mut b),
            Err(SyslogFrameError::TooLarge { len: 11, max: 10 })
        );
        let mut f = SyslogFramer::new(10);
        let mut b = BytesMut::from(&b"12x4 <1>"[..]);
        assert_eq!(f.decode(&mut b), Err(SyslogFrameError::BadCount));
        let mut f = SyslogFramer::new(10);
        let mut b = BytesMut::from(&b"<1>a very long line without end"[..]);
        assert!(matches!(
            f.decode(&mut b),
            Err(SyslogFrameError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut f = SyslogFramer::new(64);
            let mut b = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = f.decode(&mut b) {}
            let _ = f.finish(&mut b);
        }
    }
}
