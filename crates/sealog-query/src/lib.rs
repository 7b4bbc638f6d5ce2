//! Queries over a realm's journal: time range, substring and field
//! equality, newest or oldest first, with a limit.
//!
//! Blocks whose time range lies outside the query's are skipped without
//! being read. Lines are returned byte for byte as stored, so a client can
//! hash them and check inclusion proofs.
//!
//! ```
//! use sealog_query::Filter;
//! let f = Filter::default().with_text("refund").with_where("app=payments").unwrap();
//! assert!(f.matches(br#"{"realm":"r","seq":0,"received_at":"2026-01-01T00:00:00Z","app":"payments","msg":"refund 3"}"#));
//! ```

use rayon::prelude::*;

use sealog_journal::block::DecodedBlock;
use sealog_journal::{BlockMeta, JournalError, LogStore};
use serde_json::Value;

/// Why a query was refused.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A `--where` term is not `key=value` or `key:value`.
    #[error("where term {0:?} must look like key=value")]
    BadWhere(String),
    /// A time bound is not RFC 3339.
    #[error("time {0:?} is not RFC 3339 (e.g. 2026-11-22T06:00:00Z)")]
    BadTime(String),
    /// Reading the journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Which end of the log to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first (ascending seq).
    #[default]
    Oldest,
    /// Newest first (descending seq).
    Newest,
}

pub mod grep;
pub mod logharbour;
pub mod message_index;
pub mod stats;

/// What a scan asks of each block and each line: [`Filter`] for the
/// generic query, [`logharbour::LogsQuery`] for LogHarbour's functions.
pub trait Matcher: Sync {
    /// True when a block filed over `[min, max]` can hold a match.
    fn block_may_match(&self, b: &BlockMeta) -> bool;
    /// True when the stored line matches.
    fn matches(&self, line: &[u8]) -> bool;
}

impl Matcher for Filter {
    fn block_may_match(&self, b: &BlockMeta) -> bool {
        Filter::block_may_match(self, b)
    }
    fn matches(&self, line: &[u8]) -> bool {
        Filter::matches(self, line)
    }
}

/// Both matchers.
#[derive(Clone, Copy)]
pub struct Both<'a>(pub &'a dyn Matcher, pub &'a dyn Matcher);

impl std::fmt::Debug for Both<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Both(..)")
    }
}

impl Matcher for Both<'_> {
    fn block_may_match(&self, b: &BlockMeta) -> bool {
        self.0.block_may_match(b) && self.1.block_may_match(b)
    }
    fn matches(&self, line: &[u8]) -> bool {
        self.0.matches(line) && self.1.matches(line)
    }
}

/// What a record must satisfy.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    from_ns: Option<i64>,
    to_ns: Option<i64>,
    /// The substring, searched with a finder built once per query (building
    /// one per line was a visible share of a tail's CPU).
    text: Option<memchr::memmem::Finder<'static>>,
    wheres: Vec<Where>,
}

/// One `key=value` term.
#[derive(Debug, Clone)]
struct Where {
    path: Vec<String>,
    value: String,
    /// Set when the value must appear verbatim in a matching line, which
    /// rejects most lines before any JSON parsing.
    verbatim: Option<memchr::memmem::Finder<'static>>,
}

impl Filter {
    /// Records filed at or after `t` (RFC 3339).
    ///
    /// # Errors
    /// [`QueryError::BadTime`].
    pub fn with_from(mut self, t: &str) -> Result<Self, QueryError> {
        self.from_ns =
            Some(sealog_event::parse_rfc3339(t).ok_or_else(|| QueryError::BadTime(t.into()))?);
        Ok(self)
    }

    /// Records filed before `t` (RFC 3339).
    ///
    /// # Errors
    /// [`QueryError::BadTime`].
    pub fn with_to(mut self, t: &str) -> Result<Self, QueryError> {
        self.to_ns =
            Some(sealog_event::parse_rfc3339(t).ok_or_else(|| QueryError::BadTime(t.into()))?);
        Ok(self)
    }

    /// Records whose stored line contains `text` (case-sensitive).
    pub fn with_text(mut self, text: &str) -> Self {
        self.text = Some(memchr::memmem::Finder::new(text.as_bytes()).into_owned());
        self
    }

    /// Records whose field `key` (dots descend into objects) equals
    /// `value`; numbers and booleans compare by their JSON text.
    ///
    /// # Errors
    /// [`QueryError::BadWhere`] unless the term is `key=value` or `key:value`.
    pub fn with_where(mut self, term: &str) -> Result<Self, QueryError> {
        let at = term
            .find(['=', ':'])
            .filter(|at| *at > 0)
            .ok_or_else(|| QueryError::BadWhere(term.into()))?;
        let path: Vec<String> = term[..at].split('.').map(str::to_string).collect();
        let value = term[at + 1..].to_string();
        // Aliased keys compare normalised values, which need not appear verbatim.
        let aliased = matches!(path.as_slice(), [k] if k == "severity" || k == "host");
        let plain = !aliased
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" .-_:@".contains(&b));
        let verbatim = plain.then(|| memchr::memmem::Finder::new(value.as_bytes()).into_owned());
        self.wheres.push(Where {
            path,
            value,
            verbatim,
        });
        Ok(self)
    }

    /// The range's start, ns since the epoch, if it has one.
    pub fn from_ns(&self) -> Option<i64> {
        self.from_ns
    }

    /// The range's end (exclusive), ns since the epoch, if it has one.
    pub fn to_ns(&self) -> Option<i64> {
        self.to_ns
    }

    /// True when a block filed over `[min, max]` can hold a match.
    pub fn block_may_match(&self, b: &BlockMeta) -> bool {
        self.from_ns.is_none_or(|f| b.max_time >= f) && self.to_ns.is_none_or(|t| b.min_time < t)
    }

    /// True when the stored line matches.
    pub fn matches(&self, line: &[u8]) -> bool {
        if let Some(t) = &self.text {
            if t.find(line).is_none() {
                return false;
            }
        }
        // Cheap rejection before parsing: a plain value must appear verbatim,
        // unless the line spells characters as `\u0061` or `\/`.
        let escaped = !self.wheres.is_empty()
            && (memchr::memmem::find(line, br"\u").is_some()
                || memchr::memmem::find(line, br"\/").is_some());
        for w in &self.wheres {
            if !escaped && w.verbatim.as_ref().is_some_and(|f| f.find(line).is_none()) {
                return false;
            }
        }
        if self.from_ns.is_some() || self.to_ns.is_some() {
            let Some(t) = sealog_event::leaf_time(line) else {
                return false;
            };
            if self.from_ns.is_some_and(|f| t < f) || self.to_ns.is_some_and(|to| t >= to) {
                return false;
            }
        }
        if self.wheres.is_empty() {
            return true;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return false;
        };
        self.wheres
            .iter()
            .all(|w| where_matches(&v, &w.path, &w.value))
    }
}

/// Field aliases: `severity` compares the normalised severity of
/// `severity`, `level` or `pri` (LogHarbour); `host` also looks at `system`
/// (LogHarbour's host name). Any other path compares that field.
fn where_matches(v: &Value, path: &[String], want: &str) -> bool {
    if let [only] = path {
        if only == "severity" {
            let Some(want) = sealog_event::severity_of(want) else {
                return false;
            };
            return sealog_event::SEVERITY_FIELDS.iter().any(|f| {
                let got = match v.get(*f) {
                    Some(Value::String(s)) => sealog_event::severity_of(s),
                    Some(Value::Number(n)) => n
                        .as_u64()
                        .and_then(|n| u8::try_from(n).ok())
                        .filter(|n| *n <= 7),
                    _ => None,
                };
                got == Some(want)
            });
        }
        if only == "host" && v.get("host").is_none() {
            return field_equals(v.get("system"), want);
        }
    }
    let mut cur = v;
    for k in path {
        match cur.get(k) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    field_equals(Some(cur), want)
}

fn field_equals(v: Option<&Value>, want: &str) -> bool {
    match v {
        Some(Value::String(s)) => s == want,
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => want.parse::<i64>() == Ok(i),
            (_, Some(u)) => want.parse::<u64>() == Ok(u),
            _ => n.as_f64().is_some_and(|f| want.parse::<f64>() == Ok(f)),
        },
        Some(Value::Bool(b)) => want == if *b { "true" } else { "false" },
        Some(Value::Null) => want == "null",
        _ => false,
    }
}

/// What a query covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryStats {
    /// Records returned.
    pub matched: u64,
    /// Records examined.
    pub scanned: u64,
    /// Blocks skipped by time.
    pub blocks_skipped: u64,
    /// The journal size the query ran against.
    pub size: u64,
}

/// Bounds and order of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Oldest or newest first.
    pub order: Order,
    /// At most this many matches.
    pub limit: Option<u64>,
    /// Stop after the match that brings the emitted lines (each counted
    /// with one byte for its newline) to this many bytes: a page cap that
    /// holds whatever the record sizes are. `None`: no cap.
    pub max_bytes: Option<u64>,
    /// Only seqs at or after this.
    pub seq_from: u64,
    /// Only seqs before this.
    pub seq_to: u64,
}

/// What a scan covered and where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanResult {
    /// Counters.
    pub stats: QueryStats,
    /// The seq range examined, `[lo, hi)`.
    pub scanned: (u64, u64),
    /// When the limit stopped the scan: the cursor for the next page (the
    /// next seq to examine when oldest first, the exclusive upper bound when
    /// newest first).
    pub next_cursor: Option<u64>,
}

/// Blocks decoded and filtered in parallel per step of a scan.
const PARALLEL_BLOCKS: usize = 8;

/// Scans `blocks` (a snapshot of a journal's block index) with `read_block`
/// fetching one decoded block at a time, so the caller can lock per block.
/// Blocks are decoded and filtered in parallel, a few at a time, and matches
/// are emitted in order; a limit stops the scan within one such step.
///
/// # Errors
/// Whatever `read_block` fails with (a damaged block is reported, not skipped).
pub fn scan(
    blocks: &[BlockMeta],
    read_block: &(dyn Fn(usize) -> Result<DecodedBlock, JournalError> + Sync),
    filter: &dyn Matcher,
    bounds: Scan,
    emit: &mut dyn FnMut(u64, &[u8]),
) -> Result<ScanResult, QueryError> {
    let mut r = ScanResult {
        stats: QueryStats {
            size: bounds.seq_to,
            ..QueryStats::default()
        },
        scanned: match bounds.order {
            Order::Oldest => (bounds.seq_from, bounds.seq_from),
            Order::Newest => (bounds.seq_to, bounds.seq_to),
        },
        next_cursor: None,
    };
    let limit = bounds.limit.unwrap_or(u64::MAX);
    let max_bytes = bounds.max_bytes.unwrap_or(u64::MAX);
    let mut bytes = 0u64;
    if limit == 0 || bounds.seq_from >= bounds.seq_to {
        return Ok(r);
    }
    let mut candidates: Vec<usize> = (0..blocks.len())
        .filter(|&i| {
            let m = &blocks[i];
            let (lo, hi) = (m.first_seq, m.first_seq + u64::from(m.count));
            hi > bounds.seq_from && lo < bounds.seq_to
        })
        .collect();
    if bounds.order == Order::Newest {
        candidates.reverse();
    }
    // One block's outcome: matching (seq, line) in scan order, and records examined.
    struct Part {
        matches: Vec<(u64, Vec<u8>)>,
        examined: u64,
        skipped: bool,
        lo: u64,
        hi: u64,
    }
    for step in candidates.chunks(PARALLEL_BLOCKS) {
        let parts: Vec<Result<Part, JournalError>> = step
            .par_iter()
            .map(|&i| {
                let m = &blocks[i];
                let b_lo = m.first_seq;
                let lo = b_lo.max(bounds.seq_from);
                let hi = (b_lo + u64::from(m.count)).min(bounds.seq_to);
                let mut part = Part {
                    matches: Vec::new(),
                    examined: 0,
                    skipped: false,
                    lo,
                    hi,
                };
                if !filter.block_may_match(m) {
                    part.skipped = true;
                    return Ok(part);
                }
                let b = read_block(i)?;
                let mut visit = |seq: u64| {
                    part.examined += 1;
                    let k = (seq - b_lo) as usize;
                    // A record retention removed has no body to match.
                    if b.is_retained(k) {
                        return;
                    }
                    let line = b.line(k);
                    if filter.matches(line) {
                        part.matches.push((seq, line.to_vec()));
                    }
                };
                match bounds.order {
                    Order::Oldest => (lo..hi).for_each(&mut visit),
                    Order::Newest => (lo..hi).rev().for_each(&mut visit),
                }
                Ok(part)
            })
            .collect();
        for part in parts {
            let part = part?;
            if part.skipped {
                r.stats.blocks_skipped += 1;
            }
            let mut stopped = None;
            for (seq, line) in &part.matches {
                emit(*seq, line);
                r.stats.matched += 1;
                bytes += line.len() as u64 + 1;
                if r.stats.matched >= limit || bytes >= max_bytes {
                    stopped = Some(*seq);
                    break;
                }
            }
            match stopped {
                None => {
                    r.stats.scanned += part.examined;
                    match bounds.order {
                        Order::Oldest => r.scanned.1 = part.hi,
                        Order::Newest => r.scanned.0 = part.lo,
                    }
                }
                Some(seq) => {
                    // Only what precedes the last match counts as scanned.
                    match bounds.order {
                        Order::Oldest => {
                            r.stats.scanned += seq + 1 - part.lo;
                            r.scanned.1 = seq + 1;
                        }
                        Order::Newest => {
                            r.stats.scanned += part.hi - seq;
                            r.scanned.0 = seq;
                        }
                    }
                    let more = match bounds.order {
                        Order::Oldest => seq + 1 < bounds.seq_to,
                        Order::Newest => seq > bounds.seq_from,
                    };
                    if more {
                        r.next_cursor = Some(match bounds.order {
                            Order::Oldest => seq + 1,
                            Order::Newest => seq,
                        });
                    }
                    return Ok(r);
                }
            }
        }
    }
    Ok(r)
}

/// Runs `filter` over all of `journal` (any [`LogStore`]), calling `emit(seq, line)` for up to
/// `limit` matches in `order`.
///
/// # Errors
/// Journal read errors (a damaged block is reported, not skipped).
pub fn run(
    journal: &dyn LogStore,
    filter: &Filter,
    order: Order,
    limit: Option<u64>,
    emit: &mut dyn FnMut(u64, &[u8]),
) -> Result<QueryStats, QueryError> {
    let bounds = Scan {
        order,
        limit,
        max_bytes: None,
        seq_from: 0,
        seq_to: journal.size(),
    };
    let r = scan(
        journal.blocks(),
        &|i| journal.read_block(i),
        filter,
        bounds,
        emit,
    )?;
    Ok(r.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = br#"{"realm":"r","seq":3,"received_at":"2026-01-01T00:00:00Z","app":"payments","k":{"ns":"prod"},"n":5,"ok":true,"time":"2026-02-01T00:00:00Z"}"#;

    #[test]
    fn logharbour_entries_map_onto_time_severity_and_host() {
        let lh = br#"{"realm":"r","seq":0,"received_at":"2026-11-22T07:00:00Z","id":"2Xk","app":"payments","system":"web-1","module":"auth","type":"A","pri":"Warn","when":"2026-01-05T10:00:00.5Z","who":"alice","op":"login","status":1,"msg":"bad password"}"#;
        let f = |w: &str| Filter::default().with_where(w).expect("term");
        assert!(f("severity=warning").matches(lh));
        assert!(f("severity=4").matches(lh));
        assert!(!f("severity=err").matches(lh));
        assert!(f("host=web-1").matches(lh));
        assert!(f("who=alice").matches(lh));
        let t = Filter::default()
            .with_from("2026-01-05T09:00:00Z")
            .expect("t")
            .with_to("2026-01-05T11:00:00Z")
            .expect("t");
        assert!(t.matches(lh), "`when` is the event's time");
        assert!(f("severity=info").matches(br#"{"level":"INFO"}"#));
        assert!(f("severity=3").matches(br#"{"severity":3}"#));
    }

    #[test]
    fn filters() {
        let f = |w: &str| Filter::default().with_where(w).expect("term");
        assert!(f("app=payments").matches(LINE));
        assert!(f("app:payments").matches(LINE));
        assert!(!f("app=pay").matches(LINE));
        assert!(f("k.ns=prod").matches(LINE));
        assert!(f("n=5").matches(LINE));
        assert!(f("ok=true").matches(LINE));
        assert!(!f("missing=x").matches(LINE));
        assert!(Filter::default().with_where("=x").is_err());
        let t = Filter::default()
            .with_from("2026-01-15T00:00:00Z")
            .expect("time");
        assert!(
            t.matches(LINE),
            "the event's own time wins over received_at"
        );
        let t = Filter::default()
            .with_to("2026-01-15T00:00:00Z")
            .expect("time");
        assert!(!t.matches(LINE));
        assert!(Filter::default().with_from("yesterday").is_err());
        assert!(Filter::default().with_text("payments").matches(LINE));
        assert!(!Filter::default().with_text("Payments").matches(LINE));
    }
}

#[cfg(test)]
mod escape_tests {
    use super::Filter;

    #[test]
    fn a_value_spelled_with_escapes_still_matches() {
        let f = Filter::default().with_where("app=api").expect("term");
        assert!(f.matches(br#"{"realm":"r","seq":0,"app":"\u0061pi"}"#));
        assert!(f.matches(br#"{"realm":"r","seq":0,"app":"api"}"#));
        assert!(!f.matches(br#"{"realm":"r","seq":0,"app":"\u0062pi"}"#));
    }
}
