//! AWS VPC flow logs (version 2, the default format) as records of kind
//! `flow`, and their digest (asecurityteam go-vpcflow's compaction, with
//! its bugs fixed).
//!
//! A v2 line has 14 space-separated fields: `version account-id
//! interface-id srcaddr dstaddr srcport dstport protocol packets bytes
//! start end action log-status`. [`parse_line`] skips the header line and
//! `NODATA`/`SKIPDATA` lines (counted by the caller) and refuses a line with
//! another number of fields, another version, a non-integer number or a
//! character JSON would need escaped, naming the field: go-vpcflow panicked
//! on a short line and aborted the whole digest on a bad number.
//!
//! The record ([`to_event`]): `{"kind":"flow","version":2,"account_id":...,
//! "interface_id":...,"srcaddr":...,"dstaddr":...,"srcport":N,"dstport":N,
//! "protocol":N,"packets":N,"bytes":N,"start":N,"end":N,"action":...,
//! "log_status":...,"time":"<start as RFC 3339>"}`, so the journal's time
//! index finds a window's flows by their `start`.
//!
//! The digest ([`Digester`]): of the `OK` flows whose `start` is in
//! `[start, stop)` (go-vpcflow ignored the window), keep the lower port and
//! set the other to 0 (as go-vpcflow: `srcport < dstport` keeps the source
//! port, otherwise, equal ports included, the destination port), group by every field but `packets`, `bytes`, `start` and `end`,
//! sum `packets` and `bytes`, and give each group its own earliest `start`
//! and latest `end` (go-vpcflow used the bounds of all lines). One v2 line
//! per group, sorted bytewise (go-vpcflow's order was random), each ending
//! in a newline.

use std::collections::HashMap;

/// Groups by key, hashed with a per-process seed.
type Groups = HashMap<Key, Agg, foldhash::fast::RandomState>;

/// Bytes of a group key kept inline in the map's own slot.
const INLINE: usize = 118;

/// A group key. Short keys (every IPv4 flow) live inline in the map's slot,
/// so a lookup compares the slot it already loaded instead of following a
/// pointer to the heap: with hundreds of thousands of groups that second
/// cache miss was a third of a digest's time. It hashes and compares as
/// the byte slice it holds, so the map is probed with a `&[u8]`.
#[derive(Debug, Clone)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Key {
    fn new(b: &[u8]) -> Self {
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..b.len()].copy_from_slice(b);
                Key::Inline { len, bytes }
            }
            _ => Key::Heap(b.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Fields in a v2 line.
pub const FIELDS: usize = 14;

/// The names of the v2 fields, in order.
pub const FIELD_NAMES: [&str; FIELDS] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// What the digest is: the text recorded with every digest, so a reader
/// knows what was computed.
pub const DEFINITION: &str = "vpcflow-v2 digest: records of kind flow with log_status OK and start in [start, stop); the lower port kept and the other set to 0 (srcport kept when srcport < dstport); grouped by version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol, action, log_status; packets and bytes summed; start the group's minimum, end its maximum; one v2 line per group, sorted bytewise";

/// What one line of a flow log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A flow: its record.
    Flow(Vec<u8>, i64),
    /// Skipped by design: `header`, `nodata` or `skipdata`.
    Skip(&'static str),
}

fn plain(field: &str, v: &str) -> Result<(), String> {
    match v
        .bytes()
        .find(|b| !b.is_ascii_graphic() || *b == b'"' || *b == b'\\')
    {
        None => Ok(()),
        Some(b) => Err(format!(
            "field {field} has a byte 0x{b:02x} a flow log never holds"
        )),
    }
}

fn number<T: std::str::FromStr>(field: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("field {field} is {v:?}, not an integer in range"))
}

/// Parses one line (without its newline).
///
/// # Errors
/// Why the line is not a v2 flow, naming the field.
pub fn parse_line(line: &str) -> Result<Line, String> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.first() == Some(&"version") {
        return Ok(Line::Skip("header"));
    }
    if f.len() != FIELDS {
        return Err(format!(
            "{} fields; a version 2 flow log line has {FIELDS}",
            f.len()
        ));
    }
    if f[0] != "2" {
        return Err(format!(
            "version {:?}; only version 2 (the default format) is read",
            f[0]
        ));
    }
    match f[13].to_ascii_lowercase().as_str() {
        "ok" => {}
        "nodata" => return Ok(Line::Skip("nodata")),
        "skipdata" => return Ok(Line::Skip("skipdata")),
        other => {
            return Err(format!(
                "field log-status is {other:?}; expected OK, NODATA or SKIPDATA"
            ))
        }
    }
    for i in [1, 2, 3, 4, 12] {
        plain(FIELD_NAMES[i], f[i])?;
    }
    let srcport: u16 = number("srcport", f[5])?;
    let dstport: u16 = number("dstport", f[6])?;
    let protocol: u8 = number("protocol", f[7])?;
    let packets: u64 = number("packets", f[8])?;
    let bytes: u64 = number("bytes", f[9])?;
    let start: i64 = number("start", f[10])?;
    let end: i64 = number("end", f[11])?;
    // Seconds that fit the journal's nanosecond clock (years 1970–2262).
    let max = i64::MAX / 1_000_000_000;
    if !(0..=max).contains(&start) || !(0..=max).contains(&end) {
        return Err(format!("start {start} or end {end} is out of range"));
    }
    if end < start {
        return Err(format!("end {end} is before start {start}"));
    }
    let start_ns = start * 1_000_000_000;
    let full = sealog_event::format_rfc3339_nanos(start_ns);
    let time = full.replace(".000000000Z", "Z");
    let mut out = Vec::with_capacity(line.len() + 220);
    out.extend_from_slice(br#"{"kind":"flow","version":2,"account_id":""#);
    out.extend_from_slice(f[1].as_bytes());
    out.extend_from_slice(br#"","interface_id":""#);
    out.extend_from_slice(f[2].as_bytes());
    out.extend_from_slice(br#"","srcaddr":""#);
    out.extend_from_slice(f[3].as_bytes());
    out.extend_from_slice(br#"","dstaddr":""#);
    out.extend_from_slice(f[4].as_bytes());
    let nums = format!(
        r#"","srcport":{srcport},"dstport":{dstport},"protocol":{protocol},"packets":{packets},"bytes":{bytes},"start":{start},"end":{end},"action":""#
    );
    out.extend_from_slice(nums.as_bytes());
    out.extend_from_slice(f[12].as_bytes());
    // Only OK lines are records: the status is written as `OK` whatever
    // its case, so one group never splits on it.
    out.extend_from_slice(br#"","log_status":"OK"#);
    out.extend_from_slice(br#"","time":""#);
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}");
    Ok(Line::Flow(out, start_ns))
}

/// A stored flow record's fields, borrowed from its leaf line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow<'a> {
    /// account-id.
    pub account_id: &'a [u8],
    /// interface-id.
    pub interface_id: &'a [u8],
    /// srcaddr.
    pub srcaddr: &'a [u8],
    /// dstaddr.
    pub dstaddr: &'a [u8],
    /// srcport.
    pub srcport: u16,
    /// dstport.
    pub dstport: u16,
    /// protocol.
    pub protocol: u8,
    /// packets.
    pub packets: u64,
    /// bytes.
    pub bytes: u64,
    /// start (unix seconds).
    pub start: i64,
    /// end (unix seconds).
    pub end: i64,
    /// action.
    pub action: &'a [u8],
    /// log-status.
    pub log_status: &'a [u8],
}

/// Reads `key` (which ends in `"`) at `at`, then the string up to the
/// next `"`; `at` moves past it. The fields of a record [`parse_line`]
/// wrote follow one another, so each key is expected exactly where the
/// previous value ended: no search.
fn str_at<'a>(line: &'a [u8], at: &mut usize, key: &[u8]) -> Option<&'a [u8]> {
    let rest = line.get(*at..)?.strip_prefix(key)?;
    let e = memchr::memchr(b'"', rest)?;
    *at += key.len() + e + 1;
    rest.get(..e)
}

fn num_at(line: &[u8], at: &mut usize, key: &[u8]) -> Option<u64> {
    let rest = line.get(*at..)?.strip_prefix(key)?;
    let len = rest
        .iter()
        .take(21)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let digits = rest.get(..len)?;
    let n = match len {
        // Up to 19 digits: below 10^19, so no overflow check per digit.
        1..=19 => digits
            .iter()
            .fold(0u64, |n, b| n * 10 + u64::from(b - b'0')),
        // 20 digits may still fit a u64 (up to 18446744073709551615).
        20 => digits.iter().try_fold(0u64, |n, b| {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })?,
        _ => return None,
    };
    *at += key.len() + len;
    Some(n)
}

/// The flow in a stored leaf line, when it is a `flow` record as
/// [`parse_line`] writes them (these fields, in this order).
pub fn read_stored(line: &[u8]) -> Option<Flow<'_>> {
    // Anchored: the event's first field, right after the leaf's
    // `received_at` (or at the start of an event not yet stored), so a
    // flow-shaped object nested in another record is not a flow.
    const HEAD: &[u8] = br#""kind":"flow","version":2,"#;
    const STAMP: &[u8] = br#","received_at":""#;
    let event = if line.starts_with(b"{\"kind\"") {
        1
    } else {
        let at = memchr::memmem::find(line, STAMP)? + STAMP.len();
        at + memchr::memchr(b'"', line.get(at..)?)? + 2
    };
    if !line.get(event..)?.starts_with(HEAD) {
        return None;
    }
    let mut at = event + HEAD.len();
    let account_id = str_at(line, &mut at, br#""account_id":""#)?;
    let interface_id = str_at(line, &mut at, br#","interface_id":""#)?;
    let srcaddr = str_at(line, &mut at, br#","srcaddr":""#)?;
    let dstaddr = str_at(line, &mut at, br#","dstaddr":""#)?;
    let srcport = u16::try_from(num_at(line, &mut at, br#","srcport":"#)?).ok()?;
    let dstport = u16::try_from(num_at(line, &mut at, br#","dstport":"#)?).ok()?;
    let protocol = u8::try_from(num_at(line, &mut at, br#","protocol":"#)?).ok()?;
    let packets = num_at(line, &mut at, br#","packets":"#)?;
    let bytes = num_at(line, &mut at, br#","bytes":"#)?;
    let start = i64::try_from(num_at(line, &mut at, br#","start":"#)?).ok()?;
    let end = i64::try_from(num_at(line, &mut at, br#","end":"#)?).ok()?;
    let action = str_at(line, &mut at, br#","action":""#)?;
    let log_status = str_at(line, &mut at, br#","log_status":""#)?;
    Some(Flow {
        account_id,
        interface_id,
        srcaddr,
        dstaddr,
        srcport,
        dstport,
        protocol,
        packets,
        bytes,
        start,
        end,
        action,
        log_status,
    })
}

/// One group's sums and bounds.
#[derive(Debug, Clone, Copy)]
struct Agg {
    packets: u64,
    bytes: u64,
    start: i64,
    end: i64,
}

/// Builds a digest over a window; feed it leaf lines in any order (it
/// merges), then [`Digester::finish`].
#[derive(Debug, Default)]
pub struct Digester {
    start: i64,
    stop: i64,
    groups: Groups,
    key: Vec<u8>,
    /// Flow records in the window with status OK.
    pub flows: u64,
    /// Records that are not flows, or flows outside the window or not OK.
    pub ignored: u64,
}

impl Digester {
    /// A digest of flows with `start` in `[start, stop)` (unix seconds).
    pub fn new(start: i64, stop: i64) -> Self {
        Self {
            start,
            stop,
            ..Self::default()
        }
    }

    /// Takes one leaf line.
    pub fn add_line(&mut self, line: &[u8]) {
        match read_stored(line) {
            Some(f) => self.add(&f),
            None => self.ignored += 1,
        }
    }

    /// Takes one flow.
    pub fn add(&mut self, f: &Flow<'_>) {
        if f.start < self.start || f.start >= self.stop || !f.log_status.eq_ignore_ascii_case(b"ok")
        {
            self.ignored += 1;
            return;
        }
        self.flows += 1;
        let (sp, dp) = if f.srcport < f.dstport {
            (f.srcport, 0)
        } else {
            (0, f.dstport)
        };
        let k = &mut self.key;
        k.clear();
        for part in [f.account_id, f.interface_id, f.srcaddr, f.dstaddr] {
            k.extend_from_slice(part);
            k.push(b' ');
        }
        push_num(k, u64::from(sp));
        k.push(b' ');
        push_num(k, u64::from(dp));
        k.push(b' ');
        push_num(k, u64::from(f.protocol));
        k.push(b'\n');
        k.extend_from_slice(f.action);
        k.push(b' ');
        k.extend_from_slice(f.log_status);
        match self.groups.get_mut(k.as_slice()) {
            Some(a) => {
                a.packets = a.packets.saturating_add(f.packets);
                a.bytes = a.bytes.saturating_add(f.bytes);
                a.start = a.start.min(f.start);
                a.end = a.end.max(f.end);
            }
            None => {
                self.groups.insert(
                    Key::new(k),
                    Agg {
                        packets: f.packets,
                        bytes: f.bytes,
                        start: f.start,
                        end: f.end,
                    },
                );
            }
        }
    }

    /// Folds `other` (same window) into this one.
    pub fn merge(&mut self, mut other: Digester) {
        // Fold the smaller map into the larger.
        if other.groups.len() > self.groups.len() {
            std::mem::swap(&mut self.groups, &mut other.groups);
        }
        self.flows += other.flows;
        self.ignored += other.ignored;
        for (k, b) in other.groups {
            match self.groups.get_mut(&k) {
                Some(a) => {
                    a.packets = a.packets.saturating_add(b.packets);
                    a.bytes = a.bytes.saturating_add(b.bytes);
                    a.start = a.start.min(b.start);
                    a.end = a.end.max(b.end);
                }
                None => {
                    self.groups.insert(k, b);
                }
            }
        }
    }

    /// Groups so far.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// The digest: one v2 line per group, sorted bytewise (lines built and
    /// sorted in parallel).
    pub fn finish(self) -> Vec<u8> {
        use rayon::prelude::*;
        let groups: Vec<(Key, Agg)> = self.groups.into_iter().collect();
        let mut lines: Vec<Vec<u8>> = groups
            .par_iter()
            .map(|(k, a)| {
                let k = k.as_bytes();
                // The key holds "<account> <iface> <src> <dst> <sp> <dp>
                // <proto>\n<action> <status>": the sums go between.
                let (head, tail) = match memchr::memchr(b'\n', k) {
                    Some(i) => (&k[..i], &k[i + 1..]),
                    None => (k, &b""[..]),
                };
                let mut l = Vec::with_capacity(k.len() + 48);
                l.extend_from_slice(b"2 ");
                l.extend_from_slice(head);
                for n in [a.packets, a.bytes] {
                    l.push(b' ');
                    push_num(&mut l, n);
                }
                for n in [a.start, a.end] {
                    l.push(b' ');
                    push_num(&mut l, n.unsigned_abs());
                }
                l.push(b' ');
                l.extend_from_slice(tail);
                l.push(b'\n');
                l
            })
            .collect();
        lines.par_sort_unstable();
        lines.concat()
    }
}

fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str =
        "2 123456789010 eni-1235b8ca 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";

    #[test]
    fn a_line_becomes_a_record_and_reads_back() {
        let Ok(Line::Flow(rec, t)) = parse_line(LINE) else {
            panic!("not a flow");
        };
        assert_eq!(t, 1_418_530_010_000_000_000);
        let v: serde_json::Value = serde_json::from_slice(&rec).expect("json");
        assert_eq!(v["srcport"], 20641);
        assert_eq!(v["time"], "2014-12-14T04:06:50Z");
        assert!(sealog_event::validate(&rec).is_ok());
        let f = read_stored(&rec).expect("stored flow");
        assert_eq!(
            (f.srcport, f.dstport, f.packets, f.bytes),
            (20641, 22, 20, 4249)
        );
        assert_eq!(f.action, b"ACCEPT");
    }

    #[test]
    fn header_nodata_and_bad_lines() {
        assert_eq!(
            parse_line("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"),
            Ok(Line::Skip("header"))
        );
        assert_eq!(
            parse_line("2 123456789010 eni-1 - - - - - - - 1431280876 1431280934 - NODATA"),
            Ok(Line::Skip("nodata"))
        );
        assert_eq!(
            parse_line("2 123456789010 eni-1 - - - - - - - 1431280876 1431280934 - SKIPDATA"),
            Ok(Line::Skip("skipdata"))
        );
        let short = parse_line("2 1 eni 1.1.1.1").expect_err("short");
        assert!(short.contains("4 fields"), "{short}");
        let port = parse_line(&LINE.replace(" 22 ", " ssh ")).expect_err("port");
        assert!(port.contains("dstport"), "{port}");
        let quote = parse_line(&LINE.replace("eni-1235b8ca", "eni\"x")).expect_err("quote");
        assert!(quote.contains("interface-id"), "{quote}");
        assert!(parse_line(&LINE.replacen('2', "3", 1)).is_err());
    }

    #[test]
    fn digest_keeps_the_lower_port_and_per_group_bounds() {
        let mut d = Digester::new(0, i64::MAX);
        for (sp, dp, start, end, action) in [
            (40000, 80, 100, 160, "ACCEPT"),
            (40001, 80, 50, 200, "ACCEPT"),
            (40002, 80, 300, 400, "REJECT"),
            (80, 40003, 10, 20, "ACCEPT"),
        ] {
            let l =
                format!("2 1 eni-1 10.0.0.1 10.0.0.2 {sp} {dp} 6 2 100 {start} {end} {action} OK");
            let Ok(Line::Flow(rec, _)) = parse_line(&l) else {
                panic!("{l}");
            };
            d.add_line(&rec);
        }
        let out = String::from_utf8(d.finish()).expect("utf8");
        assert_eq!(
            out,
            "2 1 eni-1 10.0.0.1 10.0.0.2 0 80 6 2 100 300 400 REJECT OK\n\
             2 1 eni-1 10.0.0.1 10.0.0.2 0 80 6 4 200 50 200 ACCEPT OK\n\
             2 1 eni-1 10.0.0.1 10.0.0.2 80 0 6 2 100 10 20 ACCEPT OK\n"
        );
    }

    #[test]
    fn only_a_records_own_fields_make_a_flow() {
        let Ok(Line::Flow(rec, _)) = parse_line(LINE) else {
            panic!("flow");
        };
        let mut leaf = br#"{"realm":"r","seq":1,"received_at":"2026-01-01T00:00:00Z","#.to_vec();
        leaf.extend_from_slice(&rec[1..]);
        assert!(read_stored(&leaf).is_some());
        let mut nested =
            br#"{"realm":"r","seq":2,"received_at":"2026-01-01T00:00:00Z","x":"#.to_vec();
        nested.extend_from_slice(&rec);
        nested.push(b'}');
        assert!(
            read_stored(&nested).is_none(),
            "a nested flow is not a flow"
        );
        let lower = parse_line(&LINE.replace(" OK", " ok")).expect("ok line");
        assert_eq!(lower, parse_line(LINE).expect("OK line"));
    }

    #[test]
    fn the_largest_counts_read_back() {
        let l = LINE.replace(" 20 4249 ", " 18446744073709551615 10000000000000000000 ");
        let Ok(Line::Flow(rec, _)) = parse_line(&l) else {
            panic!("flow");
        };
        let f = read_stored(&rec).expect("reads back");
        assert_eq!((f.packets, f.bytes), (u64::MAX, 10_000_000_000_000_000_000));
    }

    #[test]
    fn window_is_half_open() {
        let mut d = Digester::new(100, 200);
        for start in [99, 100, 199, 200] {
            let l = format!("2 1 eni-1 a b 1 2 6 1 1 {start} {start} ACCEPT OK");
            let Ok(Line::Flow(rec, _)) = parse_line(&l) else {
                panic!("{l}");
            };
            d.add_line(&rec);
        }
        assert_eq!((d.flows, d.ignored), (2, 2));
    }
}
