//! What sealog sends to drains, without I/O: destination URLs checked at
//! create time, logshuttle's syslog packet with sealog's structured data,
//! syslog stream framing, and logplex HTTP bodies (seed-systems §3.3,
//! §3.6, §3.7).
//!
//! Differences from logshuttle, on purpose:
//! - a destination is validated when the drain is created (logshuttle
//!   stored anything and logged a dial error a minute later); `ssh://`,
//!   which logshuttle quietly treated as TLS, is refused with a hint;
//! - every packet carries `[sealog@32473 realm="..." seq="N"]`, so a
//!   receiver can see a gap or a repeat;
//! - octet counting (RFC 6587 §3.4.1) is offered besides newline framing.

/// How a drain's records travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `syslog://` or `syslog+tcp://`.
    SyslogTcp,
    /// `syslog+udp://`: one datagram per packet.
    SyslogUdp,
    /// `syslog+tls://` (RFC 5425).
    SyslogTls,
    /// `http://`: logplex frames.
    Http,
    /// `https://`: logplex frames.
    Https,
}

impl Transport {
    /// True for the syslog transports.
    pub fn is_syslog(self) -> bool {
        matches!(self, Self::SyslogTcp | Self::SyslogUdp | Self::SyslogTls)
    }
}

/// A checked drain destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The transport, from the scheme.
    pub transport: Transport,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (explicit for syslog; 80/443 by default for HTTP).
    pub port: u16,
    /// For HTTP: the URL to POST to, without its credentials.
    pub http_url: Option<String>,
    /// For HTTP: user and password from the URL's userinfo, sent as basic
    /// authentication.
    pub basic_auth: Option<(String, String)>,
}

/// Why a destination URL was refused; each names the problem for a 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Not a URL at all.
    #[error("url {url:?} is not a valid URL: {reason}")]
    Malformed {
        /// The URL as given.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// A scheme sealog does not deliver to.
    #[error("url scheme {0:?} is not supported; use syslog://, syslog+tcp://, syslog+udp://, syslog+tls://, http:// or https://")]
    UnknownScheme(String),
    /// `ssh://`, which logshuttle sent over TLS.
    #[error(
        "url scheme \"ssh\" is not supported (logshuttle sent it as TLS syslog); use syslog+tls://"
    )]
    Ssh,
    /// No host.
    #[error("url {0:?} has no host")]
    MissingHost(String),
    /// A port that is missing where required, zero, or out of range.
    #[error("url {url:?} has a bad port: {reason}")]
    BadPort {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Credentials on a syslog URL, which has nowhere to send them.
    #[error("url {0:?}: credentials are only sent to http:// and https:// drains")]
    SyslogCredentials(String),
    /// A path, query or fragment on a syslog URL.
    #[error("url {0:?}: a syslog destination is host:port only")]
    SyslogPath(String),
}

/// Longest destination URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// Checks a destination URL as given to the drain API.
///
/// # Errors
/// A [`DestinationError`] naming the problem.
pub fn parse_destination(raw: &str) -> Result<Destination, DestinationError> {
    let malformed = |reason: String| DestinationError::Malformed {
        url: raw.to_string(),
        reason,
    };
    if raw.len() > MAX_URL_BYTES {
        return Err(malformed(format!("longer than {MAX_URL_BYTES} bytes")));
    }
    // The URL parser would quietly drop them, so two spellings of one
    // destination would be two drains and the stored URL not the used one.
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(malformed(
            "contains whitespace or control characters".into(),
        ));
    }
    let bad_port = |reason| DestinationError::BadPort {
        url: raw.to_string(),
        reason,
    };
    let url = match url::Url::parse(raw) {
        Ok(u) => u,
        Err(url::ParseError::InvalidPort) => return Err(bad_port("not a number from 1 to 65535")),
        Err(url::ParseError::EmptyHost) => return Err(DestinationError::MissingHost(raw.into())),
        Err(e) => return Err(malformed(e.to_string())),
    };
    let transport = match url.scheme() {
        "syslog" | "syslog+tcp" => Transport::SyslogTcp,
        "syslog+udp" => Transport::SyslogUdp,
        "syslog+tls" => Transport::SyslogTls,
        "http" => Transport::Http,
        "https" => Transport::Https,
        "ssh" => return Err(DestinationError::Ssh),
        other => return Err(DestinationError::UnknownScheme(other.to_string())),
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        _ => return Err(DestinationError::MissingHost(raw.into())),
    };
    let port = match (url.port(), transport) {
        (Some(0), _) => return Err(bad_port("port 0 cannot be connected to")),
        (Some(p), _) => p,
        (None, Transport::Http) => 80,
        (None, Transport::Https) => 443,
        (None, _) => return Err(bad_port("a syslog destination needs an explicit port")),
    };
    if transport.is_syslog() {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DestinationError::SyslogCredentials(redacted(raw)));
        }
        if !(url.path().is_empty() || url.path() == "/")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(DestinationError::SyslogPath(raw.into()));
        }
        return Ok(Destination {
            transport,
            host,
            port,
            http_url: None,
            basic_auth: None,
        });
    }
    let basic_auth = (!url.username().is_empty() || url.password().is_some()).then(|| {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(url.username()), decode(url.password().unwrap_or("")))
    });
    let mut bare = url.clone();
    // Cannot fail on an http(s) URL with a host.
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare.set_fragment(None);
    Ok(Destination {
        transport,
        host,
        port,
        http_url: Some(bare.to_string()),
        basic_auth,
    })
}

/// `raw` with any password replaced by `***`, for messages and listings.
pub fn redacted(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// The fields of one drained record, as logshuttle's packet needs them.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// The record's time (its own, else when sealog received it), ns.
    pub time_ns: i64,
    /// The same time as the record spells it, when that is RFC 3339 in UTC
    /// (`...Z`): written from the text, without formatting `time_ns`.
    pub time_text: Option<&'a str>,
    /// HOSTNAME: `<app>-<space>`, or the site ([`logshuttle_host`]).
    pub host: &'a str,
    /// APP-NAME: `<type>.<dyno>` ([`logshuttle_tag`]).
    pub tag: &'a str,
    /// The record came from stderr: severity `err` (3), else `info` (6).
    pub stderr: bool,
    /// The realm, for the structured data.
    pub realm: &'a str,
    /// The record's seq, for the structured data.
    pub seq: u64,
    /// The message text.
    pub msg: &'a str,
}

/// HOSTNAME as logshuttle sets it: `<app>-<space>`, or `<app>` alone when
/// there is no space.
pub fn logshuttle_host(app: &str, space: &str) -> String {
    if space.is_empty() {
        app.to_string()
    } else {
        format!("{app}-{space}")
    }
}

/// APP-NAME as logshuttle sets it: `<type>.<pod>`, with `-<type>-` taken
/// out of the pod name once and then `<app>-` once (`web.1234567-abcde`);
/// a pod named `akkeris/...` is the tag itself.
pub fn logshuttle_tag(app: &str, proc_type: &str, pod: &str) -> String {
    if pod.starts_with("akkeris/") {
        return pod.to_string();
    }
    let pod = pod.replacen(&format!("-{proc_type}-"), "", 1);
    let pod = pod.replacen(&format!("{app}-"), "", 1);
    format!("{proc_type}.{pod}")
}

/// RFC 5424 HOSTNAME and APP-NAME are printable US-ASCII without spaces,
/// at most `max` bytes; anything else becomes `_`, nothing becomes `-`.
fn header_field(out: &mut Vec<u8>, s: &str, max: usize) {
    if s.is_empty() {
        out.push(b'-');
        return;
    }
    for b in s.bytes().take(max) {
        out.push(if (33..=126).contains(&b) { b } else { b'_' });
    }
}

/// Appends logshuttle's packet with sealog's structured data:
/// `<PRI>1 TIME HOST TAG - - [sealog@32473 realm="R" seq="N"] MSG`.
/// TIME is UTC with at most 6 fractional digits, trailing zeros trimmed,
/// as logshuttle formats it; MSG has `\n`, `\r` and NUL made spaces.
pub fn write_packet(out: &mut Vec<u8>, p: &Packet<'_>) {
    out.extend_from_slice(if p.stderr { b"<11>1 " } else { b"<14>1 " });
    if !p.time_text.is_some_and(|t| micros_from_text(out, t)) {
        out.extend_from_slice(micros_time(p.time_ns).as_bytes());
    }
    out.push(b' ');
    header_field(out, p.host, 255);
    out.push(b' ');
    header_field(out, p.tag, 48);
    out.extend_from_slice(b" - - [sealog@32473 realm=\"");
    sd_value(out, p.realm);
    out.extend_from_slice(b"\" seq=\"");
    sealog_event::push_decimal(out, p.seq);
    out.extend_from_slice(b"\"] ");
    for b in p.msg.bytes() {
        out.push(if matches!(b, b'\n' | b'\r' | 0) {
            b' '
        } else {
            b
        });
    }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd_value(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        if matches!(b, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Appends `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` from RFC 3339 text already in
/// UTC, with at most 6 fractional digits and trailing zeros trimmed (what
/// [`micros_time`] makes of the same instant); false, appending nothing,
/// for any other spelling.
fn micros_from_text(out: &mut Vec<u8>, t: &str) -> bool {
    let Some(digits) = plain_utc_fraction(t) else {
        return false;
    };
    out.extend_from_slice(&t.as_bytes()[..19]);
    let keep = &digits[..digits.len().min(6)];
    let end = keep.iter().rposition(|d| *d != b'0').map_or(0, |i| i + 1);
    if end > 0 {
        out.push(b'.');
        out.extend_from_slice(&keep[..end]);
    }
    out.push(b'Z');
    true
}

/// True when `t` is `YYYY-MM-DDTHH:MM:SS[.digits]Z`, which
/// [`write_packet`] writes from the text ([`Packet::time_text`]).
pub fn is_plain_utc(t: &str) -> bool {
    plain_utc_fraction(t).is_some()
}

/// The fractional digits of a plain UTC RFC 3339 time (empty for none).
fn plain_utc_fraction(t: &str) -> Option<&[u8]> {
    let b = t.as_bytes();
    let shape = b.len() >= 20
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && b[b.len() - 1] == b'Z';
    if !shape {
        return None;
    }
    match &b[19..b.len() - 1] {
        [] => Some(&[][..]),
        [b'.', d @ ..] if !d.is_empty() && d.iter().all(u8::is_ascii_digit) => Some(d),
        _ => None,
    }
}

/// `2006-01-02T15:04:05.999999Z` of `ns`.
fn micros_time(ns: i64) -> String {
    let full = sealog_event::format_rfc3339_nanos(ns);
    // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ: keep 6 digits, trim zeros.
    let Some((secs, frac)) = full.trim_end_matches('Z').split_once('.') else {
        return full;
    };
    let micros = frac.get(..6).unwrap_or(frac).trim_end_matches('0');
    if micros.is_empty() {
        format!("{secs}Z")
    } else {
        format!("{secs}.{micros}Z")
    }
}

/// How packets are delimited on a syslog stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// A newline after each packet (RFC 6587 non-transparent framing), as
    /// logshuttle sends; a packet is cut at [`MAX_STREAM_PACKET`] bytes.
    #[default]
    Newline,
    /// `LEN SP PACKET` (RFC 6587 octet counting): no cut, newlines safe.
    OctetCounting,
}

/// Longest packet sent with newline framing (logshuttle's `MaxLogSize`).
pub const MAX_STREAM_PACKET: usize = 99_990;

/// Appends `packet` framed for a syslog stream; true when it was cut.
pub fn frame_stream(out: &mut Vec<u8>, packet: &[u8], framing: Framing) -> bool {
    match framing {
        Framing::Newline => {
            let keep = cut(packet, MAX_STREAM_PACKET);
            out.extend_from_slice(&packet[..keep]);
            out.push(b'\n');
            keep < packet.len()
        }
        Framing::OctetCounting => {
            out.extend_from_slice(packet.len().to_string().as_bytes());
            out.push(b' ');
            out.extend_from_slice(packet);
            false
        }
    }
}

/// The length of `packet` cut to at most `max` bytes, not inside a UTF-8
/// character.
pub fn cut(packet: &[u8], max: usize) -> usize {
    if packet.len() <= max {
        return packet.len();
    }
    let mut end = max;
    while end > 0 && (packet[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    end
}

/// Appends one logplex frame as logshuttle writes it:
/// `LEN SP LINE LF`, where LEN counts the line and its newline.
pub fn logplex_frame(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice((line.len() + 1).to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(line);
    out.push(b'\n');
}

/// Why a logplex body did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogplexError {
    /// A frame does not start with decimal digits and a space.
    #[error("frame at byte {0} does not start with a length and a space")]
    BadLength(usize),
    /// A frame's length runs past the end of the body.
    #[error("frame at byte {at} says {len} bytes, but only {left} remain")]
    Short {
        /// Where the frame starts.
        at: usize,
        /// Its stated length.
        len: usize,
        /// Bytes left in the body.
        left: usize,
    },
}

/// Splits a logplex body into its frames (each as sent, with any trailing
/// newline its length covers).
///
/// # Errors
/// [`LogplexError`] at the first bad frame.
pub fn parse_logplex(body: &[u8]) -> Result<Vec<&[u8]>, LogplexError> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 || body.get(at + digits) != Some(&b' ') {
            return Err(LogplexError::BadLength(at));
        }
        let len: usize = std::str::from_utf8(&body[at..at + digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(LogplexError::BadLength(at))?;
        let start = at + digits + 1;
        let left = body.len() - start;
        if len > left {
            return Err(LogplexError::Short { at, len, left });
        }
        frames.push(&body[start..start + len]);
        at = start + len;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(url: &str) -> String {
        parse_destination(url).expect_err(url).to_string()
    }

    #[test]
    fn destinations_are_checked_at_create_time() {
        let d = parse_destination("syslog+tls://logs.example.com:6514").expect("tls");
        assert_eq!(
            (d.transport, d.host.as_str(), d.port),
            (Transport::SyslogTls, "logs.example.com", 6514)
        );
        let d = parse_destination("syslog://127.0.0.1:514").expect("tcp");
        assert_eq!(d.transport, Transport::SyslogTcp);
        let d = parse_destination("syslog+udp://[::1]:514/").expect("udp");
        assert_eq!(
            (d.transport, d.host.as_str()),
            (Transport::SyslogUdp, "::1")
        );
        let d = parse_destination("https://user:p%40ss@drain.example.com/logs?x=1#frag")
            .expect("https");
        assert_eq!(d.port, 443);
        assert_eq!(d.basic_auth, Some(("user".to_string(), "p@ss".to_string())));
        assert_eq!(
            d.http_url.as_deref(),
            Some("https://drain.example.com/logs?x=1")
        );
        assert_eq!(parse_destination("http://h:8080").expect("http").port, 8080);

        assert!(err("ftp://h:21").contains("scheme \"ftp\" is not supported"));
        assert!(err("ssh://h:22").contains("use syslog+tls://"));
        assert!(
            err("syslog://:514").contains("no host"),
            "{}",
            err("syslog://:514")
        );
        assert!(err("syslog://h").contains("needs an explicit port"));
        assert!(err("syslog://h:0").contains("port 0"));
        assert!(err("syslog://h:70000").contains("bad port"));
        assert!(err("syslog://h:12ab").contains("bad port"));
        assert!(err("syslog://u:secret@h:514").contains("credentials"));
        assert!(!err("syslog://u:secret@h:514").contains("secret"));
        assert!(err("syslog://h:514/path").contains("host:port only"));
        assert!(err("not a url").contains("not a valid URL"));
        assert!(err("syslog://h:514\n").contains("whitespace or control"));
        assert!(err(" syslog://h:514").contains("whitespace or control"));
        assert!(err(&format!("http://h/{}", "a".repeat(3000))).contains("longer than"));
    }

    #[test]
    fn packets_are_logshuttles_plus_realm_and_seq() {
        // Akkeris pods: `<app>-<hash>` for web, `<app>--<type>-<hash>` else.
        let tag = logshuttle_tag("api", "web", "api-1234567-abcde");
        assert_eq!(tag, "web.1234567-abcde");
        assert_eq!(
            logshuttle_tag("api", "worker", "api--worker-89abc-xyz"),
            "worker.89abc-xyz"
        );
        assert_eq!(
            logshuttle_tag("api", "web", "akkeris/router"),
            "akkeris/router"
        );
        let host = logshuttle_host("api", "prod");
        let mut out = Vec::new();
        write_packet(
            &mut out,
            &Packet {
                time_ns: 1_700_000_000_123_400_000,
                time_text: None,
                host: &host,
                tag: &tag,
                stderr: true,
                realm: "r\"1]",
                seq: 42,
                msg: "line one\nline two\r\0end",
            },
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "<11>1 2023-11-14T22:13:20.1234Z api-prod web.1234567-abcde - - \
             [sealog@32473 realm=\"r\\\"1\\]\" seq=\"42\"] line one line two  end"
        );
        let mut out = Vec::new();
        write_packet(
            &mut out,
            &Packet {
                time_ns: 1_700_000_000_000_000_000,
                time_text: None,
                host: "",
                tag: "a b",
                stderr: false,
                realm: "r",
                seq: 0,
                msg: "",
            },
        );
        assert_eq!(
            out,
            b"<14>1 2023-11-14T22:13:20Z - a_b - - [sealog@32473 realm=\"r\" seq=\"0\"] "
        );
    }

    #[test]
    fn stream_framing_cuts_only_newline_frames_and_never_inside_a_character() {
        let long = "é".repeat(MAX_STREAM_PACKET);
        let mut out = Vec::new();
        assert!(frame_stream(&mut out, long.as_bytes(), Framing::Newline));
        assert!(out.len() <= MAX_STREAM_PACKET + 1);
        assert!(std::str::from_utf8(&out).is_ok());
        let mut out = Vec::new();
        assert!(!frame_stream(&mut out, b"a\nb", Framing::OctetCounting));
        assert_eq!(out, b"3 a\nb");
    }

    #[test]
    fn logplex_bodies_parse_and_refuse_garbage() {
        let mut body = Vec::new();
        logplex_frame(&mut body, b"<14>1 first");
        logplex_frame(&mut body, b"");
        assert_eq!(body, b"12 <14>1 first\n1 \n");
        assert_eq!(
            parse_logplex(&body).expect("parses"),
            vec![&b"<14>1 first\n"[..], &b"\n"[..]]
        );
        assert_eq!(parse_logplex(b"x y"), Err(LogplexError::BadLength(0)));
        assert_eq!(
            parse_logplex(b"5 abc"),
            Err(LogplexError::Short {
                at: 0,
                len: 5,
                left: 3
            })
        );
        assert_eq!(
            parse_logplex(b"1234567890 a"),
            Err(LogplexError::BadLength(0))
        );
        assert_eq!(parse_logplex(b""), Ok(vec![]));
    }

    proptest! {
        #[test]
        fn logplex_round_trips(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let mut body = Vec::new();
            for l in &lines {
                logplex_frame(&mut body, l);
            }
            let frames = parse_logplex(&body).expect("own frames parse");
            prop_assert_eq!(frames.len(), lines.len());
            for (f, l) in frames.iter().zip(&lines) {
                prop_assert_eq!(&f[..f.len() - 1], &l[..]);
            }
        }

        #[test]
        fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200), url in ".{0,80}") {
            let _ = parse_logplex(&body);
            let _ = parse_destination(&url);
        }
    }

    #[test]
    fn a_utc_time_text_is_written_as_formatting_its_instant_would() {
        for (text, want) in [
            (
                "2026-11-23T09:59:59.123456789Z",
                "2026-11-23T09:59:59.123456Z",
            ),
            ("2026-11-23T09:59:59.120Z", "2026-11-23T09:59:59.12Z"),
            ("2026-11-23T09:59:59.000Z", "2026-11-23T09:59:59Z"),
            ("2026-11-23T09:59:59Z", "2026-11-23T09:59:59Z"),
        ] {
            let mut out = Vec::new();
            assert!(micros_from_text(&mut out, text), "{text}");
            assert_eq!(String::from_utf8(out).expect("utf8"), want);
            let ns = sealog_event::parse_rfc3339(text).expect("time");
            assert_eq!(micros_time(ns), want, "the same as formatting {text}");
        }
        for other in [
            "2026-11-23T09:59:59+01:00",
            "2026-11-23 09:59:59Z",
            "2026-11-23T09:59:59.Z",
            "x",
        ] {
            let mut out = Vec::new();
            assert!(!micros_from_text(&mut out, other), "{other}");
            assert!(out.is_empty());
        }
    }
}
