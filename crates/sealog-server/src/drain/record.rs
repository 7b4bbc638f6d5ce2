//! From a stored record to what a drain or a log session sends: which
//! records a selection takes, logshuttle's syslog packet (with sealog's
//! structured data) and logshuttle's session line.
//!
//! A record's stream fields are read once with a borrowing deserializer;
//! unknown fields are skipped without being built.

use std::borrow::Cow;

use sealog_codec::drain::{logshuttle_host, logshuttle_tag, write_packet, Packet};
use sealog_store::Select;
use serde::Deserialize;

/// The fields of a stored record a drain uses.
#[derive(Debug, Default, Deserialize)]
pub struct Fields<'a> {
    /// The record's seq.
    #[serde(default)]
    pub seq: u64,
    #[serde(borrow, default, deserialize_with = "lenient")]
    received_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    when: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "@timestamp", deserialize_with = "lenient")]
    at_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    app: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    space: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    site: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    site_domain: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    dyno: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    proc_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    severity: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    level: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    msg: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    log: Option<Cow<'a, str>>,
}

/// A string field, or `None` when the field holds anything else (a
/// numeric `level`, an object `host`): a record is never refused for it.
fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Lenient;
    impl<'de> serde::de::Visitor<'de> for Lenient {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            while a
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }
    d.deserialize_any(Lenient)
}

/// A selection ready to test records against.
#[derive(Debug)]
pub enum Matcher {
    /// `app` and `space` equal.
    App {
        /// The app.
        app: String,
        /// The space.
        space: String,
        /// Finders for both names.
        verbatim: Verbatim,
    },
    /// `site` or `site_domain` equal (and a finder for it).
    Site(String, Verbatim),
    /// A query filter.
    Filter(Box<sealog_query::Filter>),
}

/// Finders for the names a selection needs to see verbatim in a line,
/// built once per drain: building one per record was about a tenth of a
/// drain's CPU. A name JSON would escape has none (it cannot be judged by
/// the line's text).
#[derive(Debug)]
pub struct Verbatim(Vec<memchr::memmem::Finder<'static>>);

impl Verbatim {
    fn of(names: &[&str]) -> Self {
        Verbatim(
            names
                .iter()
                .filter(|v| {
                    v.bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
                })
                .map(|v| memchr::memmem::Finder::new(v.as_bytes()).into_owned())
                .collect(),
        )
    }

    fn all_in(&self, line: &[u8]) -> bool {
        self.0.iter().all(|f| f.find(line).is_some())
    }
}

/// `\u` and `\/`: JSON's other spellings of plain characters.
static ESCAPES: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 2]> =
    std::sync::LazyLock::new(|| {
        [
            memchr::memmem::Finder::new(br"\u").into_owned(),
            memchr::memmem::Finder::new(br"\/").into_owned(),
        ]
    });

impl Matcher {
    /// The matcher of a stored selection.
    ///
    /// # Errors
    /// A filter term the query API would refuse (the store checked it, so
    /// only a hand-edited file gets here).
    pub fn new(s: &Select) -> Result<Self, String> {
        Ok(match s {
            Select::App { app, space } => Self::App {
                app: app.clone(),
                space: space.clone(),
                verbatim: Verbatim::of(&[app, space]),
            },
            Select::Site { site } => Self::Site(site.clone(), Verbatim::of(&[site])),
            Select::Filter { terms, q } => {
                let mut f = sealog_query::Filter::default();
                for t in terms {
                    f = f.with_where(t).map_err(|e| e.to_string())?;
                }
                if let Some(q) = q {
                    f = f.with_text(q);
                }
                Self::Filter(Box::new(f))
            }
        })
    }

    /// False when the stored `line` cannot be selected, found without
    /// parsing it: an app or site name that needs no JSON escaping must
    /// appear in it verbatim, and a filter is tested whole. Records of
    /// other apps then cost a substring search, not a parse.
    pub fn may_match(&self, line: &[u8]) -> bool {
        // JSON may spell a plain character as `\u0061` or `\/`: such a
        // line is parsed, never judged by its text.
        let escaped = || ESCAPES.iter().any(|f| f.find(line).is_some());
        match self {
            Self::App { verbatim, .. } | Self::Site(_, verbatim) => {
                verbatim.all_in(line) || escaped()
            }
            Self::Filter(f) => f.matches(line),
        }
    }

    /// True when the record (its stored `line`, its parsed `fields`) is
    /// selected.
    pub fn matches(&self, line: &[u8], fields: &Fields<'_>) -> bool {
        match self {
            Self::App { app, space, .. } => {
                fields.app.as_deref() == Some(app.as_str())
                    && fields.space.as_deref() == Some(space.as_str())
            }
            Self::Site(site, _) => {
                fields.site.as_deref() == Some(site.as_str())
                    || fields.site_domain.as_deref() == Some(site.as_str())
            }
            Self::Filter(f) => f.matches(line),
        }
    }

    /// The site name when this selects a site (the packet's HOSTNAME then).
    fn site(&self) -> Option<&str> {
        match self {
            Self::Site(s, _) => Some(s),
            _ => None,
        }
    }
}

/// Parses a stored line's fields; `None` if it is not a JSON object (a
/// stored record always is).
pub fn fields(line: &[u8]) -> Option<Fields<'_>> {
    serde_json::from_slice(line)
        .ok()
        .or_else(|| owned_fields(line))
}

/// The fields of a line the borrowing reader refused: one with a repeated
/// key, which ingest accepts (the last one wins here). Never a reason to
/// skip a record.
fn owned_fields(line: &[u8]) -> Option<Fields<'static>> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let o = v.as_object()?;
    let g = |k: &str| {
        o.get(k)
            .and_then(serde_json::Value::as_str)
            .map(|s| Cow::Owned(s.to_string()))
    };
    Some(Fields {
        seq: o
            .get("seq")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        received_at: g("received_at"),
        time: g("time"),
        when: g("when"),
        timestamp: g("timestamp"),
        at_timestamp: g("@timestamp"),
        app: g("app"),
        space: g("space"),
        site: g("site"),
        site_domain: g("site_domain"),
        host: g("host"),
        dyno: g("dyno"),
        proc_type: g("proc_type"),
        source: g("source"),
        stream: g("stream"),
        severity: g("severity"),
        level: g("level"),
        msg: g("msg"),
        message: g("message"),
        log: g("log"),
    })
}

impl Fields<'_> {
    /// The record's own time, else when it was received, in ns.
    pub fn time_ns(&self) -> i64 {
        [&self.time, &self.when, &self.timestamp, &self.at_timestamp]
            .into_iter()
            .flatten()
            .find_map(|t| sealog_event::parse_rfc3339(t))
            .or_else(|| {
                self.received_at
                    .as_deref()
                    .and_then(sealog_event::parse_rfc3339)
            })
            .unwrap_or(0)
    }

    /// The message: `msg`, `message` or `log`; `None` when there is none.
    fn text(&self) -> Option<&str> {
        self.msg
            .as_deref()
            .or(self.message.as_deref())
            .or(self.log.as_deref())
    }

    /// True for stderr lines and severities `err` and worse.
    fn is_error(&self) -> bool {
        if self.stream.as_deref() == Some("stderr") {
            return true;
        }
        [&self.severity, &self.level]
            .into_iter()
            .flatten()
            .find_map(|s| sealog_event::severity_of(s))
            .is_some_and(|s| s <= 3)
    }

    /// HOSTNAME: the site for a site drain, `<app>-<space>` for app
    /// records, else the record's `host`.
    fn hostname(&self, m: &Matcher) -> String {
        if let Some(site) = m.site() {
            return site.to_string();
        }
        match (&self.app, &self.space, &self.host) {
            (Some(app), space, _) => logshuttle_host(app, space.as_deref().unwrap_or("")),
            (None, _, Some(h)) => h.to_string(),
            _ => String::new(),
        }
    }

    /// APP-NAME: logshuttle's `<type>.<pod>` for app records, the dyno
    /// (`akkeris/router`) for router and build lines, else the `source`.
    fn tag(&self) -> String {
        match (&self.app, &self.proc_type, &self.dyno) {
            (Some(app), Some(t), Some(d)) => logshuttle_tag(app, t, d),
            (_, _, Some(d)) => d.to_string(),
            _ => self
                .source
                .as_deref()
                .or(self.app.as_deref())
                .unwrap_or("")
                .to_string(),
        }
    }
}

/// The last record's HOSTNAME and APP-NAME, kept while the next has the
/// same stream fields: a batch is mostly lines of a few dynos, and building
/// the tag takes string searches and allocations.
#[derive(Debug, Default)]
pub struct Memo {
    key: Vec<Option<String>>,
    host: String,
    tag: String,
}

impl Memo {
    fn host_and_tag(&mut self, f: &Fields<'_>, m: &Matcher) -> (&str, &str) {
        let now = [&f.app, &f.space, &f.host, &f.proc_type, &f.dyno, &f.source];
        let same = self.key.len() == now.len()
            && self
                .key
                .iter()
                .zip(now)
                .all(|(a, b)| a.as_deref() == b.as_deref());
        if !same {
            self.key = now
                .iter()
                .map(|v| v.as_deref().map(str::to_string))
                .collect();
            self.host = f.hostname(m);
            self.tag = f.tag();
        }
        (&self.host, &self.tag)
    }
}

/// Appends the record's syslog packet (unframed) to `out`.
pub fn packet(
    out: &mut Vec<u8>,
    realm: &str,
    line: &[u8],
    f: &Fields<'_>,
    m: &Matcher,
    memo: &mut Memo,
) {
    let (host, tag) = memo.host_and_tag(f, m);
    let text = f
        .text()
        .map_or_else(|| String::from_utf8_lossy(line), Cow::Borrowed);
    // A time the record spells as plain UTC is copied, not parsed and
    // formatted again (the same text either way).
    let own = [&f.time, &f.when, &f.timestamp, &f.at_timestamp]
        .into_iter()
        .flatten()
        .next()
        .map(|t| t.as_ref());
    let time_text = own.filter(|t| sealog_codec::drain::is_plain_utc(t));
    write_packet(
        out,
        &Packet {
            time_ns: if time_text.is_some() { 0 } else { f.time_ns() },
            time_text,
            host,
            tag,
            stderr: f.is_error(),
            realm,
            seq: f.seq,
            msg: &text,
        },
    );
}

/// Longest message text in a session line (a record may hold 1 MiB; a
/// terminal tail does not need it, and a session's memory stays bounded).
pub const MAX_SESSION_TEXT: usize = 8192;

/// Appends the record's log-session line, as logshuttle's sessions print
/// them (seed-systems §3.8), and a newline:
/// `<time> <app>-<space> app[<type>.<pod>]: <msg>`, or for router and
/// build lines `<time> <host> akkeris/router: <msg>`.
pub fn session_line(out: &mut Vec<u8>, line: &[u8], f: &Fields<'_>, m: &Matcher) {
    // RFC 3339 in whole seconds, UTC, as logshuttle's sessions print it.
    let time = sealog_event::format_rfc3339_nanos(f.time_ns());
    let secs = time.split_once('.').map_or(time.as_str(), |(s, _)| s);
    out.extend_from_slice(secs.trim_end_matches('Z').as_bytes());
    out.push(b'Z');
    out.push(b' ');
    let host = f.hostname(m);
    out.extend_from_slice(if host.is_empty() { "-" } else { &host }.as_bytes());
    out.push(b' ');
    let tag = f.tag();
    if tag.starts_with("akkeris/") {
        out.extend_from_slice(tag.as_bytes());
    } else {
        out.extend_from_slice(b"app[");
        out.extend_from_slice(tag.as_bytes());
        out.push(b']');
    }
    out.extend_from_slice(b": ");
    let text = f
        .text()
        .map_or_else(|| String::from_utf8_lossy(line), Cow::Borrowed);
    let text = text.trim();
    let keep = sealog_codec::drain::cut(text.as_bytes(), MAX_SESSION_TEXT);
    for b in text[..keep].bytes() {
        out.push(if matches!(b, b'\n' | b'\r' | 0) {
            b' '
        } else {
            b
        });
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHUTTLE: &[u8] = br#"{"realm":"acme","seq":7,"received_at":"2026-11-23T10:00:00.5Z","app":"api","space":"prod","dyno":"api-1234567-abcde","proc_type":"web","source":"app","log":"GET /x\n","stream":"stdout","time":"2026-11-23T09:59:59.123456789Z"}"#;

    fn app() -> Matcher {
        Matcher::new(&Select::App {
            app: "api".into(),
            space: "prod".into(),
        })
        .expect("matcher")
    }

    #[test]
    fn a_logshuttle_record_becomes_logshuttles_packet_with_realm_and_seq() {
        let f = fields(SHUTTLE).expect("fields");
        let m = app();
        assert!(m.matches(SHUTTLE, &f));
        let mut out = Vec::new();
        packet(&mut out, "acme", SHUTTLE, &f, &m, &mut Memo::default());
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "<14>1 2026-11-23T09:59:59.123456Z api-prod web.1234567-abcde - - \
             [sealog@32473 realm=\"acme\" seq=\"7\"] GET /x "
        );
        let mut line = Vec::new();
        session_line(&mut line, SHUTTLE, &f, &m);
        assert_eq!(
            String::from_utf8(line).expect("utf8"),
            "2026-11-23T09:59:59Z api-prod app[web.1234567-abcde]: GET /x\n"
        );
    }

    #[test]
    fn selections_take_only_their_records() {
        let other = br#"{"realm":"acme","seq":1,"received_at":"2026-11-23T10:00:00Z","app":"api","space":"dev","msg":"x"}"#;
        let f = fields(other).expect("fields");
        assert!(!app().matches(other, &f));
        let site = br#"{"realm":"acme","seq":2,"received_at":"2026-11-23T10:00:00Z","site_domain":"www.example.com","dyno":"akkeris/router","msg":"status=200","severity":"error"}"#;
        let f = fields(site).expect("fields");
        let m = Matcher::new(&Select::Site {
            site: "www.example.com".into(),
        })
        .expect("matcher");
        assert!(m.matches(site, &f));
        let mut out = Vec::new();
        packet(&mut out, "acme", site, &f, &m, &mut Memo::default());
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.starts_with("<11>1 2026-11-23T10:00:00Z www.example.com akkeris/router - - "),
            "{text}"
        );
        let mut line = Vec::new();
        session_line(&mut line, site, &f, &m);
        assert_eq!(
            String::from_utf8(line).expect("utf8"),
            "2026-11-23T10:00:00Z www.example.com akkeris/router: status=200\n"
        );
        let filter = Matcher::new(&Select::Filter {
            terms: vec!["space=dev".into()],
            q: Some("x".into()),
        })
        .expect("matcher");
        let f = fields(other).expect("fields");
        assert!(filter.matches(other, &f));
        assert!(!filter.matches(SHUTTLE, &fields(SHUTTLE).expect("fields")));
    }

    #[test]
    fn the_prefilter_never_drops_a_selected_record() {
        let m = app();
        assert!(m.may_match(SHUTTLE));
        let other = br#"{"realm":"acme","seq":1,"app":"web","space":"prod","msg":"x"}"#;
        assert!(!m.may_match(other), "app api does not appear");
        // A name that JSON escapes cannot be searched verbatim: parsed.
        let quoted = Matcher::new(&Select::App {
            app: "a\"b".into(),
            space: "prod".into(),
        })
        .expect("matcher");
        let line = br#"{"realm":"acme","seq":1,"app":"a\"b","space":"prod"}"#;
        assert!(quoted.may_match(line));
        assert!(quoted.matches(line, &fields(line).expect("fields")));
    }

    #[test]
    fn repeated_keys_and_escapes_never_drop_a_record() {
        let m = app();
        let dup = br#"{"realm":"acme","seq":6,"app":"api","space":"prod","msg":"a","msg":"b"}"#;
        let f = fields(dup).expect("a repeated key still parses");
        assert!(m.may_match(dup) && m.matches(dup, &f));
        assert_eq!((f.seq, f.text()), (6, Some("b")));
        let esc = br#"{"realm":"acme","seq":7,"app":"\u0061pi","space":"pr\/od","msg":"x"}"#;
        let f = fields(esc).expect("fields");
        assert!(m.may_match(esc), "an escaped name is parsed, not searched");
        assert!(!m.matches(esc, &f), "pr/od is not prod");
        let esc = br#"{"realm":"acme","seq":7,"app":"\u0061pi","space":"prod","msg":"x"}"#;
        assert!(m.may_match(esc) && m.matches(esc, &fields(esc).expect("fields")));
    }

    #[test]
    fn fields_of_other_types_are_skipped_not_refused() {
        let odd = br#"{"realm":"acme","seq":4,"received_at":"2026-11-23T10:00:00Z","level":50,"host":{"name":"h"},"time":1700000000,"msg":"esc\"aped"}"#;
        let f = fields(odd).expect("fields");
        assert!(!f.is_error() && f.host.is_none());
        assert_eq!(f.text(), Some("esc\"aped"));
    }

    #[test]
    fn a_record_without_stream_fields_still_makes_a_packet() {
        let bare = br#"{"realm":"acme","seq":3,"received_at":"2026-11-23T10:00:00Z","n":1}"#;
        let f = fields(bare).expect("fields");
        let mut out = Vec::new();
        packet(&mut out, "acme", bare, &f, &app(), &mut Memo::default());
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.starts_with(
                "<14>1 2026-11-23T10:00:00Z - - - - [sealog@32473 realm=\"acme\" seq=\"3\"] {"
            ),
            "{text}"
        );
    }
}
