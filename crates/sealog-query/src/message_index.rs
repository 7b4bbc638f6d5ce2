//! The message index that `sealog grep` reads before any block: for every
//! sealed block, each record's message (`message`, else `msg`, exactly as
//! [`crate::grep`] reads it) in one compressed column, kept in a file beside
//! the journal ([`INDEX_FILE`]).
//!
//! Why: a block must be decompressed whole and every line parsed before a
//! `message ~ 'text'` condition can be judged, about 3.5 µs a record; the
//! column holds a tenth of the bytes and is searched with one substring
//! pass. A query made only of `message ~` conditions (with `AND`, `OR`,
//! `NOT`) is answered from the column alone; any other query with a
//! `message ~` term among its `AND`ed ones reads only the blocks, and checks
//! only the records, whose message holds that text. This is the
//! needle-in-a-haystack case Loki answers with Bloom filters, but exact:
//! no false positives, and counts without reading a block.
//!
//! The file is derived data. Each entry is keyed by its block's first seq,
//! record count, body length and CRC32C (retention rewrites a block, which
//! gives it a new key) and carries its own CRC32C; an entry that fails its
//! check, a torn tail, or an entry for a block that no longer exists is
//! ignored and the block is read instead (and indexed again). A file whose
//! stale entries outnumber its current ones is rewritten without them.
//!
//! What the index does not promise:
//! - **It is not evidence.** Its checksums catch damage, not forgery.
//!   Anyone who can write the data directory can forge an entry and change
//!   what grep finds, but never what `sealog verify` proves.
//!   `sealog grep --no-index` reads the blocks only.
//! - **It does not check blocks.** A block the index rules out is not read,
//!   so damage to its body is not reported by grep. This holds for blocks
//!   outside a query's time range too. Damage is found by `sealog verify`
//!   and by the server's background verifier.
//!
//! ```text
//! entry   := "SLMX" first_seq:u64 count:u32 body_len:u32 block_crc:u32
//!            filter_len:u32 payload_len:u32 filter_crc:u32 payload_crc:u32
//!            filter payload                                (little-endian)
//! filter_crc  := CRC32C over the key and lengths (28 bytes), then filter
//! payload_crc := CRC32C over payload
//! filter  := a bitset, one bit per hashed byte trigram of the messages
//! payload := zstd( varint(n) { varint(state) }*n text )
//! state   := 0 not a JSON object (or removed by retention)
//!          | 1 an object without a string message
//!          | 2+len the message, `len` bytes of `text`
//! ```
//!
//! The filter is read first: a block none of whose messages can hold a text
//! the query requires is skipped without its column being decompressed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use memchr::memmem::Finder;
use rayon::prelude::*;
use sealog_journal::block::DecodedBlock;
use sealog_journal::{BlockMeta, JournalError};

use crate::grep::{Expr, Op};
use crate::{Matcher, Order, QueryError, Scan};

/// The index file's name in a realm's directory.
pub const INDEX_FILE: &str = "grep.index";

const MAGIC: &[u8; 4] = b"SLMX";
/// A payload larger than this is damage, not an entry.
const MAX_PAYLOAD: u32 = 256 << 20;
/// Most bytes a column may take decompressed when nothing else bounds it.
const MAX_RAW: u64 = 64 << 20;

/// Most bytes block `b`'s column may take decompressed: its messages are a
/// part of its records, which zstd rarely packs 64 to 1. A column over
/// this is not kept (the block is read each time instead), and an entry
/// that claims more is damage: a hostile index cannot make grep allocate
/// more than this a block.
fn raw_cap(b: &BlockMeta) -> u64 {
    (u64::from(b.body_len()) * 64).clamp(1 << 20, MAX_RAW)
}

/// One record's state in a column.
const NOT_OBJECT: u8 = 0;
const NO_MESSAGE: u8 = 1;
const MESSAGE: u8 = 2;

/// A block's messages.
#[derive(Debug, Clone, Default)]
pub struct MessageColumn {
    state: Vec<u8>,
    /// End of each record's message in the text (start: the previous end).
    ends: Vec<u32>,
    /// The messages, from `text_at` on (a decoded column keeps its whole
    /// decompressed payload here rather than copy the text out of it).
    buf: Vec<u8>,
    text_at: usize,
}

impl PartialEq for MessageColumn {
    fn eq(&self, o: &Self) -> bool {
        self.state == o.state && self.ends == o.ends && self.text() == o.text()
    }
}

impl Eq for MessageColumn {}

/// The message of a stored line as grep reads it: `Err(())` when the line
/// is not a JSON object; else the last `message` field when there is one
/// (a string, or `None`), else the last `msg` field's string.
fn message_of(line: &[u8]) -> Result<Option<Cow<'_, str>>, ()> {
    fn text<'a>(v: serde_json::Value) -> Option<Cow<'a, str>> {
        match v {
            serde_json::Value::String(s) => Some(Cow::Owned(s)),
            _ => None,
        }
    }
    struct Msg<'a> {
        message: Option<Option<Cow<'a, str>>>,
        msg: Option<Option<Cow<'a, str>>>,
    }
    impl<'de> serde::Deserialize<'de> for Msg<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Msg<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Msg<'de>, A::Error> {
                    let mut out = Msg {
                        message: None,
                        msg: None,
                    };
                    while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                        match k.as_ref() {
                            // Parsed whole, as grep parses the fields it
                            // reads: a value that is not valid JSON (a lone
                            // surrogate, a number out of range) anywhere in
                            // it makes the line match nothing.
                            "message" => out.message = Some(text(m.next_value()?)),
                            "msg" => out.msg = Some(text(m.next_value()?)),
                            _ => {
                                m.next_value::<serde::de::IgnoredAny>()?;
                            }
                        }
                    }
                    Ok(out)
                }
            }
            d.deserialize_map(V)
        }
    }
    let m: Msg<'_> = serde_json::from_slice(line).map_err(|_| ())?;
    Ok(match m.message {
        Some(v) => v,
        None => m.msg.flatten(),
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl MessageColumn {
    /// The column of the first `n` records of `b`.
    pub fn of(b: &DecodedBlock, n: usize) -> Self {
        let n = n.min(b.len());
        let mut c = MessageColumn {
            state: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
            buf: Vec::new(),
            text_at: 0,
        };
        for k in 0..n {
            let line = b.line(k);
            let state = if b.is_retained(k) {
                NOT_OBJECT
            } else {
                match message_of(line) {
                    Err(()) => NOT_OBJECT,
                    Ok(None) => NO_MESSAGE,
                    Ok(Some(s)) => {
                        c.buf.extend_from_slice(s.as_bytes());
                        MESSAGE
                    }
                }
            };
            c.state.push(state);
            c.ends.push(c.buf.len() as u32);
        }
        c
    }

    /// Records in the column.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True when it has no records.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    fn text(&self) -> &[u8] {
        &self.buf[self.text_at..]
    }

    fn start(&self, k: usize) -> usize {
        if k == 0 {
            0
        } else {
            self.ends[k - 1] as usize
        }
    }

    /// Record `k`'s message, if it has one.
    pub fn message(&self, k: usize) -> Option<&[u8]> {
        (self.state[k] == MESSAGE).then(|| &self.text()[self.start(k)..self.ends[k] as usize])
    }

    /// The column as an index entry's payload.
    pub fn encode(&self) -> Vec<u8> {
        zstd::bulk::compress(&self.raw(), 1).unwrap_or_default()
    }

    /// The payload before compression.
    fn raw(&self) -> Vec<u8> {
        let text = self.text();
        let mut raw = Vec::with_capacity(self.len() * 2 + text.len() + 8);
        put_varint(&mut raw, self.len() as u64);
        for k in 0..self.len() {
            let v = match self.state[k] {
                MESSAGE => 2 + u64::from(self.ends[k]) - self.start(k) as u64,
                s => u64::from(s),
            };
            put_varint(&mut raw, v);
        }
        raw.extend_from_slice(text);
        raw
    }

    /// Reads a payload [`MessageColumn::encode`] wrote; `None` when it is
    /// not one (damage).
    pub fn decode(payload: &[u8]) -> Option<Self> {
        Self::decode_capped(payload, MAX_RAW)
    }

    /// [`MessageColumn::decode`], refusing a payload that claims more than
    /// `cap` bytes decompressed before anything is allocated.
    fn decode_capped(payload: &[u8], cap: u64) -> Option<Self> {
        thread_local! {
            /// One decompression context a thread, not one a block.
            static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                const { std::cell::RefCell::new(None) };
        }
        let size = zstd::zstd_safe::get_frame_content_size(payload).ok()??;
        if size > cap {
            return None;
        }
        let mut raw = Vec::with_capacity(size as usize);
        DCTX.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = zstd::bulk::Decompressor::new().ok();
            }
            d.as_mut()?.decompress_to_buffer(payload, &mut raw).ok()
        })?;
        if raw.len() as u64 != size {
            return None;
        }
        let mut at = 0;
        let n = usize::try_from(get_varint(&raw, &mut at)?).ok()?;
        if n > raw.len() {
            return None;
        }
        let mut state = Vec::with_capacity(n);
        let mut ends = Vec::with_capacity(n);
        let mut end = 0u64;
        for _ in 0..n {
            let v = get_varint(&raw, &mut at)?;
            if v >= 2 {
                end = end.checked_add(v - 2)?;
                state.push(MESSAGE);
            } else {
                state.push(v as u8);
            }
            ends.push(u32::try_from(end).ok()?);
        }
        if (raw.len() - at) as u64 != end {
            return None;
        }
        Some(MessageColumn {
            state,
            ends,
            buf: raw,
            text_at: at,
        })
    }

    /// Records in `[lo, hi)` whose message contains `f`'s text, as a bitmap
    /// over the column: one pass over the messages' bytes.
    fn containing(&self, f: &Finder<'_>, lo: usize, hi: usize) -> Bits {
        let mut out = Bits::new(self.len());
        let needle = f.needle().len();
        if needle == 0 {
            for k in lo..hi {
                if self.state[k] == MESSAGE {
                    out.set(k);
                }
            }
            return out;
        }
        let end = self.start(hi);
        let mut pos = self.start(lo);
        let mut k = lo;
        let text = self.text();
        while pos < end {
            let Some(i) = f.find(&text[pos..end]) else {
                break;
            };
            let at = pos + i;
            // The record whose message holds `at` (empty ones hold nothing).
            while (self.ends[k] as usize) <= at {
                k += 1;
            }
            let record_end = self.ends[k] as usize;
            if at + needle <= record_end {
                out.set(k);
            }
            // A later match in this record adds nothing; one that crosses
            // into the next record is not a match: go on from its start.
            pos = record_end;
            k += 1;
        }
        out
    }
}

/// The trigram filter of `c` as the index stores it, and whether it may
/// hold `needle` (for the fuzz target and tests).
pub fn filter_check(c: &MessageColumn, needle: &[u8]) -> bool {
    filter_may_hold(&trigram_filter(c), needle)
}

/// A bitmap over a block's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    fn new(len: usize) -> Self {
        Bits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    fn set(&mut self, k: usize) {
        self.words[k / 64] |= 1 << (k % 64);
    }

    /// True when record `k` is in the set.
    pub fn get(&self, k: usize) -> bool {
        self.words[k / 64] >> (k % 64) & 1 == 1
    }

    /// Records in the set.
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    fn and(mut self, o: &Bits) -> Bits {
        self.words
            .iter_mut()
            .zip(&o.words)
            .for_each(|(a, b)| *a &= b);
        self
    }

    fn or(mut self, o: &Bits) -> Bits {
        self.words
            .iter_mut()
            .zip(&o.words)
            .for_each(|(a, b)| *a |= b);
        self
    }

    fn and_not(mut self, o: &Bits) -> Bits {
        self.words
            .iter_mut()
            .zip(&o.words)
            .for_each(|(a, b)| *a &= !b);
        self
    }

    fn of_state(c: &MessageColumn, lo: usize, hi: usize, min: u8) -> Bits {
        let mut out = Bits::new(c.len());
        for k in lo..hi {
            if c.state[k] >= min {
                out.set(k);
            }
        }
        out
    }
}

/// A grep query as the message index can judge it.
#[derive(Debug)]
pub struct Plan {
    /// The query, when it is only `message ~` conditions: the column then
    /// decides every record.
    exact: Option<Node>,
    /// The `message ~` texts: every one of an exact plan's, else those among
    /// the query's `AND`ed terms.
    needles: Vec<Finder<'static>>,
    /// Which of `needles` are among the `AND`ed terms: a record whose
    /// message lacks any of them cannot match.
    must: Vec<usize>,
}

#[derive(Debug)]
enum Node {
    Contains(usize),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    True,
}

/// What the index says about a block's records in a seq range.
#[derive(Debug)]
pub enum Selected {
    /// Exactly these records match the query.
    Exact(Bits),
    /// Only these records can match: read them and check.
    Candidates(Bits),
}

fn is_message_contains(path: &[String], op: Op) -> bool {
    op == Op::Contains && path.len() == 1 && path[0] == "message"
}

impl Plan {
    /// The plan for `expr`, or `None` when the index cannot narrow it (no
    /// `message ~` among its `AND`ed terms, nor only such conditions).
    pub fn new(expr: &Expr) -> Option<Plan> {
        fn node(e: &Expr, needles: &mut Vec<Finder<'static>>) -> Option<Node> {
            Some(match e {
                Expr::True => Node::True,
                Expr::Cond { path, op, value } if is_message_contains(path, *op) => {
                    needles.push(Finder::new(value.as_bytes()).into_owned());
                    Node::Contains(needles.len() - 1)
                }
                Expr::Cond { .. } => return None,
                Expr::And(a, b) => {
                    Node::And(Box::new(node(a, needles)?), Box::new(node(b, needles)?))
                }
                Expr::Or(a, b) => {
                    Node::Or(Box::new(node(a, needles)?), Box::new(node(b, needles)?))
                }
                Expr::Not(a) => Node::Not(Box::new(node(a, needles)?)),
            })
        }
        // `true` alone matches every line, objects or not: no plan.
        if *expr == Expr::True {
            return None;
        }
        // The texts among the `AND`ed terms.
        let mut conjuncts = Vec::new();
        let mut terms = vec![expr];
        while let Some(t) = terms.pop() {
            match t {
                Expr::And(a, b) => {
                    terms.push(b);
                    terms.push(a);
                }
                Expr::Cond { path, op, value } if is_message_contains(path, *op) => {
                    conjuncts.push(value.as_bytes());
                }
                _ => {}
            }
        }
        let mut needles = Vec::new();
        if let Some(exact) = node(expr, &mut needles).filter(|_| !needles.is_empty()) {
            let must = (0..needles.len())
                .filter(|&i| conjuncts.contains(&needles[i].needle()))
                .collect();
            return Some(Plan {
                exact: Some(exact),
                needles,
                must,
            });
        }
        (!conjuncts.is_empty()).then(|| Plan {
            exact: None,
            must: (0..conjuncts.len()).collect(),
            needles: conjuncts
                .iter()
                .map(|t| Finder::new(t).into_owned())
                .collect(),
        })
    }

    /// The texts every match must contain (its `AND`ed `message ~` terms).
    pub fn required(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.must.iter().map(|&i| self.needles[i].needle())
    }

    /// True when the column alone decides the query.
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// What `c` says about records `[lo, hi)` (indices within the block).
    pub fn select(&self, c: &MessageColumn, lo: usize, hi: usize) -> Selected {
        let hi = hi.min(c.len());
        let lo = lo.min(hi);
        let hits: Vec<Bits> = self
            .needles
            .iter()
            .map(|f| c.containing(f, lo, hi))
            .collect();
        match &self.exact {
            Some(node) => {
                let objects = Bits::of_state(c, lo, hi, NO_MESSAGE);
                Selected::Exact(eval(node, &hits, &objects))
            }
            None => {
                let mut all = Bits::of_state(c, lo, hi, NOT_OBJECT);
                for h in &hits {
                    all = all.and(h);
                }
                Selected::Candidates(all)
            }
        }
    }
}

/// `node` over the records of `objects` (the JSON objects in range: a line
/// that is not one matches nothing, `NOT` included).
fn eval(node: &Node, hits: &[Bits], objects: &Bits) -> Bits {
    match node {
        Node::True => objects.clone(),
        Node::Contains(i) => hits[*i].clone(),
        Node::And(a, b) => eval(a, hits, objects).and(&eval(b, hits, objects)),
        Node::Or(a, b) => eval(a, hits, objects).or(&eval(b, hits, objects)),
        Node::Not(a) => objects.clone().and_not(&eval(a, hits, objects)),
    }
}

/// A block's key in the index: it changes whenever the block's bytes do.
type Key = (u64, u32, u32, u32);

fn key_of(b: &BlockMeta) -> Key {
    (b.first_seq, b.count, b.body_len(), b.crc())
}

/// Bits a trigram filter starts with before it is folded down.
const FILTER_START_BITS: usize = 1 << 16;
/// Fewest bits a folded filter keeps.
const FILTER_MIN_BITS: usize = 512;

fn trigram_slot(t: &[u8]) -> u32 {
    let code = u32::from(t[0]) << 16 | u32::from(t[1]) << 8 | u32::from(t[2]);
    let h = code.wrapping_mul(0x9e37_79b1);
    h ^ (h >> 15)
}

/// A block's trigram filter: one bit per hashed byte trigram found inside
/// a message, sized to about four bits per distinct trigram (so about a
/// fifth of its bits are set). A text none of whose trigrams is missing
/// may be in the block; one with a missing trigram is in none of its
/// messages, and the block is skipped without decompressing its column.
fn trigram_filter(c: &MessageColumn) -> Vec<u8> {
    let mut words = vec![0u64; FILTER_START_BITS / 64];
    let text = c.text();
    for k in 0..c.len() {
        if c.state[k] != MESSAGE {
            continue;
        }
        for t in text[c.start(k)..c.ends[k] as usize].windows(3) {
            let slot = trigram_slot(t) as usize & (FILTER_START_BITS - 1);
            words[slot / 64] |= 1 << (slot % 64);
        }
    }
    // Distinct trigrams, estimated from the bits set (linear counting).
    let set: u32 = words.iter().map(|w| w.count_ones()).sum();
    let m = FILTER_START_BITS as f64;
    let distinct = -m * (1.0 - f64::from(set) / m).max(1.0 / m).ln();
    let mut bits = FILTER_START_BITS;
    while bits > FILTER_MIN_BITS && (bits / 2) as f64 >= 4.0 * distinct {
        // Folding halves: slot & (bits/2 - 1) is the slot in the half.
        let half = bits / 128;
        for i in 0..half {
            words[i] |= words[i + half];
        }
        bits /= 2;
    }
    words.truncate(bits / 64);
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// True when every trigram of `needle` has its bit in `filter` (so the
/// needle may be in the block); true for needles under three bytes.
fn filter_may_hold(filter: &[u8], needle: &[u8]) -> bool {
    let bits = filter.len() * 8;
    if !bits.is_power_of_two() || bits < FILTER_MIN_BITS {
        return true;
    }
    needle.windows(3).all(|t| {
        let slot = trigram_slot(t) as usize & (bits - 1);
        filter[slot / 8] >> (slot % 8) & 1 == 1
    })
}

/// What the index holds for a block.
#[derive(Debug)]
pub enum Lookup {
    /// No sound entry: read the block.
    Unknown,
    /// The trigram filter shows a required text is in none of its messages.
    Skip,
    /// The block's column.
    Column(MessageColumn),
}

/// The index file of one realm, opened by one process at a time (the data
/// directory's lock).
#[derive(Debug)]
pub struct MessageIndex {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Read with positioned reads, shared by the scan's threads.
    reader: std::sync::OnceLock<Option<std::fs::File>>,
}

/// Where an entry is: its offset and the lengths of its parts.
#[derive(Debug, Clone, Copy)]
struct Place {
    at: u64,
    filter_len: u32,
    payload_len: u32,
}

#[derive(Debug)]
struct Inner {
    /// Entries in the file, stale and overridden ones included.
    file_entries: usize,
    at: HashMap<Key, Place>,
    /// The end of the last good entry; appends go there.
    good_len: u64,
    file: Option<std::fs::File>,
    /// Appends failed once: stop trying (grep goes on without them).
    failed: bool,
}

/// Entry header: magic, key (20), filter and payload lengths (8), the
/// filter's CRC32C (over key, lengths and filter) and the payload's.
const HEADER: usize = 40;

fn key_and_lengths(key: Key, filter_len: u32, payload_len: u32) -> [u8; 28] {
    let mut h = [0u8; 28];
    h[0..8].copy_from_slice(&key.0.to_le_bytes());
    h[8..12].copy_from_slice(&key.1.to_le_bytes());
    h[12..16].copy_from_slice(&key.2.to_le_bytes());
    h[16..20].copy_from_slice(&key.3.to_le_bytes());
    h[20..24].copy_from_slice(&filter_len.to_le_bytes());
    h[24..28].copy_from_slice(&payload_len.to_le_bytes());
    h
}

fn word(h: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]])
}

/// True when `path` is absent or a regular file: a symlink, FIFO, device
/// or directory in its place is neither read (a FIFO would block grep while
/// it holds the data directory's lock) nor written through.
fn usable(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) => m.file_type().is_file(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

impl MessageIndex {
    /// Opens (or starts) the index at `path`, reading its entries' headers.
    /// Damage ends the readable part; it is overwritten by the next entry.
    pub fn open(path: &Path) -> MessageIndex {
        let mut inner = Inner {
            at: HashMap::new(),
            good_len: 0,
            file: None,
            failed: false,
            file_entries: 0,
        };
        if !usable(path) {
            tracing::warn!(path = %path.display(), "message index is not a regular file; grep reads blocks instead");
            inner.failed = true;
        } else if let Ok(mut f) = std::fs::File::open(path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let mut r = std::io::BufReader::with_capacity(1 << 16, &mut f);
            let mut pos = 0u64;
            let mut h = [0u8; HEADER];
            while pos + HEADER as u64 <= len && r.read_exact(&mut h).is_ok() {
                if &h[0..4] != MAGIC {
                    break;
                }
                let seq = u64::from_le_bytes(h[4..12].try_into().unwrap_or_default());
                let key = (seq, word(&h, 12), word(&h, 16), word(&h, 20));
                let (filter_len, payload_len) = (word(&h, 24), word(&h, 28));
                let end = pos + HEADER as u64 + u64::from(filter_len) + u64::from(payload_len);
                if payload_len > MAX_PAYLOAD
                    || filter_len as usize > FILTER_START_BITS / 8
                    || end > len
                {
                    break;
                }
                inner.at.insert(
                    key,
                    Place {
                        at: pos,
                        filter_len,
                        payload_len,
                    },
                );
                inner.file_entries += 1;
                if r.seek_relative(i64::from(filter_len) + i64::from(payload_len))
                    .is_err()
                {
                    break;
                }
                pos = end;
            }
            inner.good_len = pos;
        }
        MessageIndex {
            path: path.to_path_buf(),
            inner: Mutex::new(inner),
            reader: std::sync::OnceLock::new(),
        }
    }

    /// Blocks with an entry.
    pub fn entries(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.at.len())
    }

    fn damaged(&self, b: &BlockMeta, what: &str) {
        tracing::warn!(path = %self.path.display(), block = b.first_seq, what, "message index entry fails its checksum; the block is read instead");
    }

    /// What the index says of block `b` for `plan`: skip it (its trigram
    /// filter rules out a required text), its column, or nothing sound.
    pub fn lookup(&self, b: &BlockMeta, plan: &Plan) -> Lookup {
        let key = key_of(b);
        let Some(place) = self.inner.lock().ok().and_then(|i| i.at.get(&key).copied()) else {
            return Lookup::Unknown;
        };
        let Some(f) = self
            .reader
            .get_or_init(|| {
                usable(&self.path)
                    .then(|| std::fs::File::open(&self.path).ok())
                    .flatten()
            })
            .as_ref()
        else {
            return Lookup::Unknown;
        };
        let head_len = HEADER + place.filter_len as usize;
        let mut head = vec![0u8; head_len];
        if read_at(f, &mut head, place.at).is_err() {
            return Lookup::Unknown;
        }
        let kl = key_and_lengths(key, place.filter_len, place.payload_len);
        let filter = &head[HEADER..];
        if crc32c::crc32c_append(crc32c::crc32c(&kl), filter) != word(&head, 32) {
            self.damaged(b, "filter");
            return Lookup::Unknown;
        }
        if plan
            .must
            .iter()
            .any(|&i| !filter_may_hold(filter, plan.needles[i].needle()))
        {
            return Lookup::Skip;
        }
        let cap = raw_cap(b);
        if u64::from(place.payload_len) > cap + 4096 {
            self.damaged(b, "column length");
            return Lookup::Unknown;
        }
        let mut payload = vec![0u8; place.payload_len as usize];
        if read_at(f, &mut payload, place.at + head_len as u64).is_err() {
            return Lookup::Unknown;
        }
        if crc32c::crc32c(&payload) != word(&head, 36) {
            self.damaged(b, "column");
            return Lookup::Unknown;
        }
        match MessageColumn::decode_capped(&payload, cap).filter(|c| c.len() == b.count as usize) {
            Some(c) => Lookup::Column(c),
            None => {
                self.damaged(b, "column");
                Lookup::Unknown
            }
        }
    }

    /// Keeps block `b`'s column. Unsynced: a lost entry is made again.
    pub fn put(&self, b: &BlockMeta, c: &MessageColumn) {
        let key = key_of(b);
        let raw = c.raw();
        if raw.len() as u64 > raw_cap(b) {
            return;
        }
        let Ok(payload) = zstd::bulk::compress(&raw, 1) else {
            return;
        };
        let filter = trigram_filter(c);
        let (Ok(payload_len), Ok(filter_len)) =
            (u32::try_from(payload.len()), u32::try_from(filter.len()))
        else {
            return;
        };
        if payload.is_empty() || payload_len > MAX_PAYLOAD {
            return;
        }
        let kl = key_and_lengths(key, filter_len, payload_len);
        let mut entry = Vec::with_capacity(HEADER + filter.len() + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&kl);
        entry.extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&kl), &filter).to_le_bytes());
        entry.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        entry.extend_from_slice(&filter);
        entry.extend_from_slice(&payload);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.failed {
            return;
        }
        let at = inner.good_len;
        let written = (|| -> std::io::Result<()> {
            if inner.file.is_none() {
                if !usable(&self.path) {
                    return Err(std::io::Error::other("not a regular file"));
                }
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&self.path)?;
                // Anything after the last good entry is damage.
                f.set_len(at)?;
                inner.file = Some(f);
            }
            let f = inner
                .file
                .as_mut()
                .ok_or_else(|| std::io::Error::other("no file"))?;
            f.seek(SeekFrom::Start(at))?;
            f.write_all(&entry)
        })();
        match written {
            Ok(()) => {
                inner.good_len = at + entry.len() as u64;
                inner.file_entries += 1;
                inner.at.insert(
                    key,
                    Place {
                        at,
                        filter_len,
                        payload_len,
                    },
                );
            }
            Err(e) => {
                inner.failed = true;
                // What was written may be partial: cut it off again.
                if let Some(f) = &inner.file {
                    let _ = f.set_len(at);
                }
                tracing::warn!(path = %self.path.display(), cause = %e, "message index not extended; grep reads blocks instead");
            }
        }
    }
}

/// Blocks judged in parallel per step of [`scan`].
const PARALLEL_BLOCKS: usize = 32;

/// A grep scan of `blocks` through the message index: blocks are judged by
/// their column (from `index`, else read, judged and added to it), and only
/// the records the column selects are read and checked with `check` (the
/// whole query). With `count_only` and an exact plan no block is read at all
/// once the index holds it. Emits matches in `bounds.order`, at most
/// `bounds.limit`, until `emit` returns false; returns how many matched.
///
/// # Errors
/// Whatever `read_block` fails with (a damaged block is reported, not skipped).
#[allow(clippy::too_many_arguments)]
pub fn scan(
    blocks: &[BlockMeta],
    read_block: &(dyn Fn(usize) -> Result<DecodedBlock, JournalError> + Sync),
    index: Option<&MessageIndex>,
    plan: &Plan,
    check: &dyn Matcher,
    bounds: Scan,
    count_only: bool,
    emit: &mut dyn FnMut(u64, &[u8]) -> bool,
) -> Result<u64, QueryError> {
    let limit = bounds.limit.unwrap_or(u64::MAX);
    if limit == 0 || bounds.seq_from >= bounds.seq_to {
        return Ok(0);
    }
    let mut candidates: Vec<usize> = (0..blocks.len())
        .filter(|&i| {
            let m = &blocks[i];
            let (lo, hi) = (m.first_seq, m.first_seq + u64::from(m.count));
            hi > bounds.seq_from && lo < bounds.seq_to && check.block_may_match(m)
        })
        .collect();
    if bounds.order == Order::Newest {
        candidates.reverse();
    }
    /// One block's outcome: matches in scan order (or only their number).
    struct Part {
        count: u64,
        lines: Vec<(u64, Vec<u8>)>,
    }
    let judge = |i: usize| -> Result<Part, JournalError> {
        let m = &blocks[i];
        let lo = bounds.seq_from.max(m.first_seq) - m.first_seq;
        let hi = bounds.seq_to.min(m.first_seq + u64::from(m.count)) - m.first_seq;
        let (lo, hi) = (lo as usize, hi as usize);
        let mut block = None;
        let found = index.map_or(Lookup::Unknown, |x| x.lookup(m, plan));
        let column = match found {
            Lookup::Skip => {
                return Ok(Part {
                    count: 0,
                    lines: Vec::new(),
                })
            }
            Lookup::Column(c) => c,
            Lookup::Unknown => {
                let b = read_block(i)?;
                let c = MessageColumn::of(&b, m.count as usize);
                if let Some(x) = index {
                    x.put(m, &c);
                }
                block = Some(b);
                c
            }
        };
        let (bits, exact) = match plan.select(&column, lo, hi) {
            Selected::Exact(b) => (b, true),
            Selected::Candidates(b) => (b, false),
        };
        if exact && count_only {
            return Ok(Part {
                count: bits.count(),
                lines: Vec::new(),
            });
        }
        let mut part = Part {
            count: 0,
            lines: Vec::new(),
        };
        if bits.count() == 0 {
            return Ok(part);
        }
        let b = match block {
            Some(b) => b,
            None => read_block(i)?,
        };
        let mut visit = |k: usize| {
            if !bits.get(k) || b.is_retained(k) {
                return;
            }
            let line = b.line(k);
            if check.matches(line) {
                part.count += 1;
                if !count_only {
                    part.lines.push((m.first_seq + k as u64, line.to_vec()));
                }
            }
        };
        match bounds.order {
            Order::Oldest => (lo..hi).for_each(&mut visit),
            Order::Newest => (lo..hi).rev().for_each(&mut visit),
        }
        Ok(part)
    };
    let mut matched = 0u64;
    for step in candidates.chunks(PARALLEL_BLOCKS) {
        let parts: Vec<Result<Part, JournalError>> = step.par_iter().map(|&i| judge(i)).collect();
        for part in parts {
            let part = part?;
            if count_only {
                matched += part.count;
            } else {
                for (seq, line) in &part.lines {
                    if !emit(*seq, line) {
                        return Ok(matched);
                    }
                    matched += 1;
                    if matched >= limit {
                        return Ok(matched);
                    }
                }
            }
            if matched >= limit {
                return Ok(limit);
            }
        }
    }
    Ok(matched)
}

impl MessageIndex {
    /// Rewrites the file with only the current entries of `live` blocks when
    /// stale ones (blocks retention rewrote, damaged or repeated entries)
    /// outnumber them; through a temporary file and a rename, so a crash
    /// leaves the old file or the new one. Takes the index: nothing is read
    /// from it afterwards.
    pub fn compact(self, live: &[BlockMeta]) {
        let Ok(inner) = self.inner.into_inner() else {
            return;
        };
        let keys: std::collections::HashSet<Key> = live.iter().map(key_of).collect();
        let current = inner.at.iter().filter(|(k, _)| keys.contains(k)).count();
        if inner.failed || inner.file_entries <= 2 * current + 64 {
            return;
        }
        let path = &self.path;
        let tmp = path.with_extension("index.tmp");
        let rewritten =
            (|| -> std::io::Result<()> {
                if !usable(path) {
                    return Err(std::io::Error::other("not a regular file"));
                }
                let old = std::fs::read(path)?;
                let mut out = Vec::with_capacity(old.len() / 2);
                let mut places: Vec<&Place> = inner
                    .at
                    .iter()
                    .filter(|(k, _)| keys.contains(k))
                    .map(|(_, p)| p)
                    .collect();
                places.sort_by_key(|p| p.at);
                for p in places {
                    let start = usize::try_from(p.at).map_err(std::io::Error::other)?;
                    let end = start + HEADER + p.filter_len as usize + p.payload_len as usize;
                    out.extend_from_slice(old.get(start..end).ok_or_else(|| {
                        std::io::Error::other("an entry past the end of the file")
                    })?);
                }
                let _ = std::fs::remove_file(&tmp);
                std::fs::write(&tmp, &out)?;
                std::fs::rename(&tmp, path)
            })();
        match rewritten {
            Ok(()) => {
                tracing::info!(path = %path.display(), kept = current, dropped = inner.file_entries - current, "message index compacted")
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(path = %path.display(), cause = %e, "message index not compacted");
            }
        }
    }
}

#[cfg(unix)]
fn read_at(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

#[cfg(not(unix))]
fn read_at(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    let mut f = f;
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn block(lines: &[&str]) -> DecodedBlock {
        let items: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let hashes = vec![[0u8; 32]; lines.len()];
        let e = sealog_journal::block::encode(0, &items, &hashes, (0, 0), 1);
        sealog_journal::block::decode(&e.body, e.count, e.crc).expect("decodes")
    }

    fn column(lines: &[&str]) -> MessageColumn {
        MessageColumn::of(&block(lines), lines.len())
    }

    #[test]
    fn messages_are_read_as_grep_reads_them() {
        let c = column(&[
            r#"{"msg":"a b"}"#,
            r#"{"message":"m","msg":"x"}"#,
            r#"{"message":5,"msg":"x"}"#,
            r#"not json"#,
            r#"[1,2]"#,
            r#"{"msg":"one","msg":"two"}"#,
            r#"{"m\u0065ssage":"esc\n\"q"}"#,
            r#"{"other":1}"#,
            r#"{"message":"abc1","msg":["\udc00"]}"#,
            r#"{"msg":"abc5","message":[1e400]}"#,
        ]);
        assert_eq!(c.message(0), Some(&b"a b"[..]));
        assert_eq!(c.message(1), Some(&b"m"[..]));
        assert_eq!(c.message(2), None);
        assert_eq!(c.state[2], NO_MESSAGE);
        assert_eq!(c.state[3], NOT_OBJECT);
        assert_eq!(c.state[4], NOT_OBJECT);
        assert_eq!(c.message(5), Some(&b"two"[..]));
        assert_eq!(c.message(6), Some(&b"esc\n\"q"[..]));
        assert_eq!(c.state[7], NO_MESSAGE);
        // grep parses `message` and `msg` whole: a bad value in either
        // makes the line match nothing, as here.
        assert_eq!(c.state[8], NOT_OBJECT);
        assert_eq!(c.state[9], NOT_OBJECT);
        assert_eq!(MessageColumn::decode(&c.encode()), Some(c));
    }

    #[test]
    fn the_trigram_filter_holds_every_substring_and_rules_out_others() {
        let msgs: Vec<String> = (0..1024)
            .map(|i| {
                format!(
                    r#"{{"msg":"request served #{} for user{}"}}"#,
                    i * 7919,
                    i % 97
                )
            })
            .collect();
        let refs: Vec<&str> = msgs.iter().map(String::as_str).collect();
        let c = column(&refs);
        let f = trigram_filter(&c);
        assert!(
            f.len() * 8 >= FILTER_MIN_BITS && f.len() * 8 < FILTER_START_BITS,
            "{}",
            f.len()
        );
        for k in 0..c.len() {
            let m = c.message(k).expect("message");
            for a in 0..m.len() {
                for b in a..=m.len() {
                    assert!(filter_may_hold(&f, &m[a..b]));
                }
            }
        }
        let out = ["quasar-7f3a", "timeout", "zzz", "session-renewed"]
            .iter()
            .filter(|t| !filter_may_hold(&f, t.as_bytes()))
            .count();
        assert_eq!(out, 4, "texts that are nowhere are ruled out");
    }

    fn journal(dir: &Path, blocks: usize) -> sealog_journal::Journal {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let signer = sealog_journal::checkpoint::Signer::new("sealog/acme", key);
        let mut j = sealog_journal::Journal::open(
            &dir.join("journal"),
            "acme",
            signer,
            sealog_journal::JournalOptions::default(),
        )
        .expect("open");
        for b in 0..blocks {
            let bodies: Vec<String> = (0..10)
                .map(|i| format!(r#"{{"msg":"m{b} {i}"}}"#))
                .collect();
            let events: Vec<sealog_journal::EventRef<'_>> = bodies
                .iter()
                .map(|b| sealog_journal::EventRef {
                    bytes: b.as_bytes(),
                    time_ns: None,
                })
                .collect();
            j.append(&events).expect("append");
        }
        j
    }

    #[test]
    fn stale_entries_are_compacted_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = journal(dir.path(), 3);
        let live = j.blocks().to_vec();
        assert_eq!(live.len(), 3);
        let path = dir.path().join(INDEX_FILE);
        let x = MessageIndex::open(&path);
        let plan = Plan::new(&Expr::parse("message ~ 'm1 '").expect("query")).expect("plan");
        let col = |i: usize| MessageColumn::of(&j.read_block(i).expect("block"), 10);
        for (i, m) in live.iter().enumerate() {
            x.put(m, &col(i));
        }
        // 200 entries of one block again: all but the last are stale.
        for _ in 0..200 {
            x.put(&live[1], &col(1));
        }
        let before = std::fs::metadata(&path).expect("index").len();
        x.compact(&live);
        let after = std::fs::metadata(&path).expect("index").len();
        assert!(after * 50 < before, "{after} of {before}");
        let x = MessageIndex::open(&path);
        assert_eq!(x.entries(), 3);
        assert!(matches!(x.lookup(&live[0], &plan), Lookup::Skip));
        let Lookup::Column(c) = x.lookup(&live[1], &plan) else {
            panic!("block 1 is kept");
        };
        assert_eq!(c, col(1));
        // Few stale entries: left as they are.
        x.compact(&live[..2]);
        assert_eq!(std::fs::metadata(&path).expect("index").len(), after);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_or_fifo_in_its_place_is_neither_read_nor_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = journal(dir.path(), 1);
        let m = j.blocks()[0];
        let c = MessageColumn::of(&j.read_block(0).expect("block"), 10);
        let plan = Plan::new(&Expr::parse("message ~ 'm0'").expect("query")).expect("plan");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me").expect("victim");
        let path = dir.path().join(INDEX_FILE);
        std::os::unix::fs::symlink(&victim, &path).expect("symlink");
        let x = MessageIndex::open(&path);
        x.put(&m, &c);
        assert!(matches!(x.lookup(&m, &plan), Lookup::Unknown));
        assert_eq!(std::fs::read(&victim).expect("victim"), b"keep me");
        std::fs::remove_file(&path).expect("rm");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        // Opening a FIFO for reading would block until a writer came.
        let x = MessageIndex::open(&path);
        x.put(&m, &c);
        assert!(matches!(x.lookup(&m, &plan), Lookup::Unknown));
        assert_eq!(x.entries(), 0);
    }

    #[test]
    fn a_column_claiming_too_much_is_refused_before_it_is_allocated() {
        let c = column(&[r#"{"msg":"a"}"#]);
        let big = vec![b'a'; 2 << 20];
        let mut raw = Vec::new();
        put_varint(&mut raw, 1);
        put_varint(&mut raw, 2 + big.len() as u64);
        raw.extend_from_slice(&big);
        let z = zstd::bulk::compress(&raw, 1).expect("compress");
        assert!(MessageColumn::decode_capped(&z, 1 << 20).is_none());
        assert!(MessageColumn::decode_capped(&z, 4 << 20).is_some());
        assert!(MessageColumn::decode(&c.encode()).is_some());
    }

    #[test]
    fn a_match_never_crosses_two_messages() {
        let c = column(&[
            r#"{"msg":"ab"}"#,
            r#"{"msg":"cd"}"#,
            r#"{"x":1}"#,
            r#"{"msg":"abcd"}"#,
            r#"{"msg":"zab"}"#,
        ]);
        let f = Finder::new("bc");
        let b = c.containing(&f, 0, 5);
        assert_eq!((0..5).filter(|&k| b.get(k)).collect::<Vec<_>>(), vec![3]);
        let f = Finder::new("ab");
        let b = c.containing(&f, 1, 5);
        assert_eq!((0..5).filter(|&k| b.get(k)).collect::<Vec<_>>(), vec![3, 4]);
    }

    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "ab", " ", "\n", "\"", "é", "\\"]),
            0..4,
        )
        .prop_map(|v| v.concat())
    }

    fn line() -> impl Strategy<Value = String> {
        let js = |s: &str| serde_json::to_string(s).expect("string");
        prop_oneof![
            text().prop_map(move |m| format!(r#"{{"app":"x","msg":{}}}"#, js(&m))),
            (text(), text()).prop_map(move |(a, b)| format!(
                r#"{{"message":{},"msg":{}}}"#,
                js(&a),
                js(&b)
            )),
            text().prop_map(move |m| format!(r#"{{"message":7,"msg":{}}}"#, js(&m))),
            text().prop_map(move |m| format!(r#"{{"msg":{},"app":"y","msg":"ab"}}"#, js(&m))),
            Just(r#"{"app":"x"}"#.to_string()),
            Just("not json".to_string()),
            Just("[\"msg\"]".to_string()),
            Just(r#"{"m\u0073g":"ab"}"#.to_string()),
            Just(r#"{"message":"ab","msg":["\udc00"]}"#.to_string()),
            Just(r#"{"msg":"ab","message":{"k":1e400}}"#.to_string()),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            4 => text().prop_map(|t| Expr::Cond { path: vec!["message".into()], op: Op::Contains, value: t }),
            1 => Just(Expr::Cond { path: vec!["app".into()], op: Op::Eq, value: "x".into() }),
            1 => Just(Expr::True),
        ];
        leaf.prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Expr::Not(Box::new(a))),
            ]
        })
    }

    proptest! {
        /// The index agrees with grep itself: an exact plan selects exactly
        /// the lines grep matches, candidates never miss one, in any range.
        #[test]
        fn the_index_agrees_with_grep(lines in prop::collection::vec(line(), 1..40), e in expr(), lo in 0usize..40, hi in 0usize..40) {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let c = column(&refs);
            let back = MessageColumn::decode(&c.encode());
            prop_assert_eq!(back.as_ref(), Some(&c));
            let filter = trigram_filter(&c);
            let m = crate::grep::GrepMatcher::new(e.clone());
            let (lo, hi) = (lo.min(lines.len()), hi.min(lines.len()));
            if let Some(plan) = Plan::new(&e) {
                let sel = plan.select(&c, lo, hi);
                for (k, l) in lines.iter().enumerate() {
                    let want = (lo..hi).contains(&k) && crate::Matcher::matches(&m, l.as_bytes());
                    match &sel {
                        Selected::Exact(b) => prop_assert_eq!(b.get(k), want, "line {:?} expr {:?}", l, e),
                        Selected::Candidates(b) => prop_assert!(!want || b.get(k), "missed {:?} for {:?}", l, e),
                    }
                    // The trigram filter never rules out a block with a match.
                    if want {
                        for &i in &plan.must {
                            prop_assert!(filter_may_hold(&filter, plan.needles[i].needle()), "{:?} in {:?}", e, l);
                        }
                    }
                }
            }
        }
    }
}
