//! A block: up to [`MAX_BLOCK_RECORDS`] consecutive leaf lines, compressed
//! together, with a 4-byte prefix of each leaf hash.
//!
//! The block body is storage-neutral (the segment files and a database
//! backend store the same bytes):
//!
//! ```text
//! +----------------+---------------------------+------------------------------+
//! | raw_len u32 LE | count × leaf-hash hint 4B | zstd frame: lines, each + \n |
//! +----------------+---------------------------+------------------------------+
//! ```
//!
//! The hints are not part of the security argument (the signed checkpoints
//! are); they let the verifier name the exact record that changed when only
//! a record was edited. The CRC32C over the body is kept by the container
//! (the segment frame header).
//!
//! # Retained-out records
//!
//! Retention ([`crate::retention`]) rewrites a block whose records it
//! removes. Such a block sets the top bit of `raw_len`, carries a table of
//! the removed runs, and has hints only for the records it still holds:
//!
//! ```text
//! raw_len | 0x8000_0000 u32, table_len u32, table, live × hint 4B, zstd frame
//! table: runs u32, then per run
//!   start u32 (index in the block), len u32, retention id u64,
//!   max_time i64 (latest record time in the run, ns),
//!   pieces u32, then per piece: height u8, hash 32B
//! ```
//!
//! A run's pieces are perfect subtrees (height ≤ 8, so at most a tile)
//! that tile the run in order: what the Merkle tree needs of the removed
//! records, 32 bytes for as many as 256 of them. Each removed record's line
//! in the payload is empty. Only the table marks records removed; nothing a
//! sender writes can.

use std::cell::RefCell;

use crate::merkle::Hash;

thread_local! {
    // zstd contexts are costly to build (allocation and set-up of several
    // hundred KiB); each thread keeps one of each.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Most records in one block.
pub const MAX_BLOCK_RECORDS: usize = 1024;
/// Most uncompressed bytes in one block before it is closed early.
pub const MAX_BLOCK_RAW: usize = 512 * 1024;
/// Largest raw length a reader will decompress (refuses memory bombs).
pub const MAX_DECODED_RAW: usize = 64 * 1024 * 1024;
/// Set in `raw_len` when the block carries a table of retained-out records.
const RETAINED_FLAG: u32 = 0x8000_0000;
/// Tallest kept subtree: a tile (the tree file stores everything above).
pub const MAX_PIECE_HEIGHT: u32 = 8;

/// Records a retention run removed from a block: their span, the record
/// that removed them, and the subtrees the Merkle tree still needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedRun {
    /// Index in the block of the first removed record.
    pub start: u32,
    /// Records removed.
    pub len: u32,
    /// The retention record's id.
    pub id: u64,
    /// Latest record time in the run, ns.
    pub max_time: i64,
    /// Perfect subtrees `(height, hash)` tiling the run in order.
    pub pieces: Vec<(u32, Hash)>,
}

/// An encoded block ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBlock {
    /// Seq of the first record.
    pub first_seq: u64,
    /// Records in the block.
    pub count: u32,
    /// Earliest record time (event time, else `received_at`), ns.
    pub min_time: i64,
    /// Latest record time, ns.
    pub max_time: i64,
    /// CRC32C of `body`.
    pub crc: u32,
    /// The body as laid out in the module docs.
    pub body: Vec<u8>,
}

/// Why a block body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The CRC32C over the body does not match.
    #[error("block checksum mismatch")]
    Checksum,
    /// The body is shorter than its header says.
    #[error("block body is truncated")]
    Truncated,
    /// The raw length is larger than any block sealog writes.
    #[error("block claims {0} uncompressed bytes, more than the limit")]
    TooLarge(usize),
    /// zstd refused the payload.
    #[error("block payload does not decompress: {0}")]
    Decompress(String),
    /// The table of retained-out records is out of order or out of range.
    #[error("block's table of retained-out records is malformed")]
    RetainedTable,
    /// The payload does not hold `count` newline-terminated lines.
    #[error("block holds {found} lines, header says {expected}")]
    LineCount {
        /// From the header.
        expected: u32,
        /// Found in the payload.
        found: usize,
    },
}

/// zstd at `level`, with this thread's context: building one per block
/// cost an allocation and the clearing of its tables every time.
fn compress(raw: &[u8], level: i32) -> Vec<u8> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(l, _)| *l != level) {
            let ctx = zstd::bulk::Compressor::new(level)
                .expect("a zstd context at a level the options accepted");
            *c = Some((level, ctx));
        }
        let (_, ctx) = c.as_mut().expect("set above");
        ctx.compress(raw)
            .expect("zstd compression of an in-memory buffer cannot fail")
    })
}

/// Encodes `lines` (leaf lines, no newlines inside) with their `hashes`.
pub fn encode(
    first_seq: u64,
    lines: &[&[u8]],
    hashes: &[Hash],
    times: (i64, i64),
    level: i32,
) -> EncodedBlock {
    let mut raw = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        raw.extend_from_slice(l);
        raw.push(b'\n');
    }
    encode_raw(first_seq, &raw, hashes, times, level)
}

/// Encodes `raw` (leaf lines, each followed by one newline) with the leaf
/// hash of each line.
pub fn encode_raw(
    first_seq: u64,
    raw: &[u8],
    hashes: &[Hash],
    times: (i64, i64),
    level: i32,
) -> EncodedBlock {
    let compressed = compress(raw, level);
    let mut body = Vec::with_capacity(4 + 4 * hashes.len() + compressed.len());
    body.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    for h in hashes {
        body.extend_from_slice(&h[..4]);
    }
    body.extend_from_slice(&compressed);
    EncodedBlock {
        first_seq,
        count: hashes.len() as u32,
        min_time: times.0,
        max_time: times.1,
        crc: crc32c::crc32c(&body),
        body,
    }
}

/// As [`encode_raw`], for a block some of whose records retention removed:
/// `raw` holds an empty line for each of them, `runs` says which (in
/// order) and keeps their subtrees, `hashes` holds the leaf hash of every
/// record still present (for its hint).
pub fn encode_retained(
    first_seq: u64,
    raw: &[u8],
    hashes: &[Hash],
    runs: &[RetainedRun],
    times: (i64, i64),
    level: i32,
) -> EncodedBlock {
    let removed: u32 = runs.iter().map(|r| r.len).sum();
    if runs.is_empty() {
        return encode_raw(first_seq, raw, hashes, times, level);
    }
    let compressed = compress(raw, level);
    let mut table = Vec::new();
    table.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    for r in runs {
        table.extend_from_slice(&r.start.to_le_bytes());
        table.extend_from_slice(&r.len.to_le_bytes());
        table.extend_from_slice(&r.id.to_le_bytes());
        table.extend_from_slice(&r.max_time.to_le_bytes());
        table.extend_from_slice(&(r.pieces.len() as u32).to_le_bytes());
        for (h, hash) in &r.pieces {
            table.push(*h as u8);
            table.extend_from_slice(hash);
        }
    }
    let mut body = Vec::with_capacity(8 + table.len() + 4 * hashes.len() + compressed.len());
    body.extend_from_slice(&(raw.len() as u32 | RETAINED_FLAG).to_le_bytes());
    body.extend_from_slice(&(table.len() as u32).to_le_bytes());
    body.extend_from_slice(&table);
    for h in hashes {
        body.extend_from_slice(&h[..4]);
    }
    body.extend_from_slice(&compressed);
    EncodedBlock {
        first_seq,
        count: hashes.len() as u32 + removed,
        min_time: times.0,
        max_time: times.1,
        crc: crc32c::crc32c(&body),
        body,
    }
}

/// A decoded block: its lines and hints.
#[derive(Debug, Clone, Default)]
pub struct DecodedBlock {
    raw: Vec<u8>,
    /// End offset (exclusive, before the newline) of each line.
    ends: Vec<u32>,
    /// One per record (zero for a removed one).
    hints: Vec<[u8; 4]>,
    /// Runs of removed records, in order.
    runs: Vec<RetainedRun>,
}

impl DecodedBlock {
    /// Number of lines.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the block holds no lines.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Line `i`, without its newline.
    pub fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize + 1
        };
        &self.raw[start..self.ends[i] as usize]
    }

    /// The stored hint (first 4 bytes of the leaf hash) of line `i`.
    pub fn hint(&self, i: usize) -> [u8; 4] {
        self.hints[i]
    }

    /// All lines in order.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.line(i))
    }

    /// The Merkle tree's view of the block in order: `(height, hash)` for
    /// each record still present (height 0, its leaf hash) and each kept
    /// subtree of removed ones.
    pub fn items(&self) -> Vec<(u32, Hash)> {
        self.items_from(&self.live_leaf_hashes())
    }

    /// [`Self::items`], given [`Self::live_leaf_hashes`] already computed.
    ///
    /// # Panics
    /// When `live` does not hold one hash per record still present.
    pub(crate) fn items_from(&self, live: &[Hash]) -> Vec<(u32, Hash)> {
        let mut out = Vec::with_capacity(self.len());
        let mut live = live.iter();
        let mut runs = self.runs.iter().peekable();
        let mut i = 0usize;
        while i < self.len() {
            match runs.peek() {
                Some(r) if r.start as usize == i => {
                    out.extend_from_slice(&r.pieces);
                    i += r.len as usize;
                    runs.next();
                }
                _ => {
                    out.push((0, *live.next().expect("one hash per live record")));
                    i += 1;
                }
            }
        }
        assert!(live.next().is_none(), "one hash per live record");
        out
    }

    /// The leaf hash of each record still present, in order, hashed as a
    /// batch ([`crate::sha256x8`]).
    pub fn live_leaf_hashes(&self) -> Vec<Hash> {
        let mut out = Vec::with_capacity(self.len());
        let live = (0..self.len())
            .filter(|i| self.runs.is_empty() || !self.is_retained(*i))
            .map(|i| self.line(i));
        crate::sha256x8::hash_all(0, live, &mut out);
        out
    }

    /// Leaf hashes of all records; `None` when retention removed any (their
    /// leaf hashes are no longer known one by one: see [`Self::items`]).
    pub fn leaf_hashes(&self) -> Option<Vec<Hash>> {
        self.runs.is_empty().then(|| self.live_leaf_hashes())
    }

    /// True when record `i` was retained out (its body removed).
    pub fn is_retained(&self, i: usize) -> bool {
        let k = self.runs.partition_point(|r| r.start as usize <= i);
        k > 0 && {
            let r = &self.runs[k - 1];
            i < (r.start + r.len) as usize
        }
    }

    /// The runs of removed records.
    pub fn runs(&self) -> &[RetainedRun] {
        &self.runs
    }
}

/// Decodes a block body holding `count` records, checking `crc` first.
///
/// # Errors
/// [`BlockError`] naming the first problem found.
pub fn decode(body: &[u8], count: u32, crc: u32) -> Result<DecodedBlock, BlockError> {
    if crc32c::crc32c(body) != crc {
        return Err(BlockError::Checksum);
    }
    decode_unchecked(body, count)
}

/// Decodes a block body without checking its CRC: used to locate damage
/// inside a block whose checksum already failed.
///
/// # Errors
/// [`BlockError`] naming the first problem found.
pub fn decode_unchecked(body: &[u8], count: u32) -> Result<DecodedBlock, BlockError> {
    let n = count as usize;
    if body.len() < 4 {
        return Err(BlockError::Truncated);
    }
    let word = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    let raw_len = (word & !RETAINED_FLAG) as usize;
    if raw_len > MAX_DECODED_RAW {
        return Err(BlockError::TooLarge(raw_len));
    }
    let mut runs = Vec::new();
    let mut at = 4;
    if word & RETAINED_FLAG != 0 {
        let table_len = take_u32(body, &mut at)? as usize;
        let table = body.get(at..at + table_len).ok_or(BlockError::Truncated)?;
        at += table_len;
        runs = parse_runs(table, count)?;
    }
    let removed: usize = runs.iter().map(|r| r.len as usize).sum();
    let hints_end = at + 4 * (n - removed);
    if body.len() < hints_end {
        return Err(BlockError::Truncated);
    }
    let mut live_hints = body[at..hints_end]
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]]);
    let mut hints = Vec::with_capacity(n);
    let mut next_run = runs.iter().peekable();
    let mut i = 0usize;
    while i < n {
        match next_run.peek() {
            Some(r) if r.start as usize == i => {
                hints.extend(std::iter::repeat_n([0u8; 4], r.len as usize));
                i += r.len as usize;
                next_run.next();
            }
            _ => {
                hints.push(live_hints.next().ok_or(BlockError::Truncated)?);
                i += 1;
            }
        }
    }
    let payload_at = hints_end;
    let raw = DECOMPRESSOR
        .with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
            }
            d.as_mut()
                .expect("set above")
                .decompress(&body[payload_at..], raw_len)
                .map_err(|e| e.to_string())
        })
        .map_err(BlockError::Decompress)?;
    let mut ends = Vec::with_capacity(n);
    for at in memchr::memchr_iter(b'\n', &raw) {
        ends.push(at as u32);
    }
    if ends.len() != n || raw.last().is_some_and(|b| *b != b'\n') || raw.len() != raw_len {
        return Err(BlockError::LineCount {
            expected: count,
            found: ends.len(),
        });
    }
    let d = DecodedBlock {
        raw,
        ends,
        hints,
        runs,
    };
    // A removed record's line is empty, and only a removed one's is.
    for r in &d.runs {
        if (r.start..r.start + r.len).any(|i| !d.line(i as usize).is_empty()) {
            return Err(BlockError::RetainedTable);
        }
    }
    Ok(d)
}

fn take_u32(b: &[u8], at: &mut usize) -> Result<u32, BlockError> {
    let v = b
        .get(*at..*at + 4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .ok_or(BlockError::Truncated)?;
    *at += 4;
    Ok(v)
}

fn take_u64(b: &[u8], at: &mut usize) -> Result<u64, BlockError> {
    let v = b
        .get(*at..*at + 8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .ok_or(BlockError::Truncated)?;
    *at += 8;
    Ok(v)
}

/// Reads a run table, checking that the runs are in order, inside the
/// block, and that each run's pieces add up to it.
fn parse_runs(t: &[u8], count: u32) -> Result<Vec<RetainedRun>, BlockError> {
    let bad = BlockError::RetainedTable;
    let mut at = 0;
    let n = take_u32(t, &mut at)?;
    if n == 0 || n > count {
        return Err(bad);
    }
    let mut runs: Vec<RetainedRun> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let start = take_u32(t, &mut at)?;
        let len = take_u32(t, &mut at)?;
        let id = take_u64(t, &mut at)?;
        let max_time = take_u64(t, &mut at)? as i64;
        let pieces_n = take_u32(t, &mut at)?;
        let end = start.checked_add(len).ok_or(BlockError::RetainedTable)?;
        if len == 0 || end > count || pieces_n == 0 || pieces_n > len {
            return Err(BlockError::RetainedTable);
        }
        if runs.last().is_some_and(|p| p.start + p.len > start) {
            return Err(BlockError::RetainedTable);
        }
        let mut pieces = Vec::with_capacity(pieces_n as usize);
        let mut covered = 0u64;
        for _ in 0..pieces_n {
            let h = u32::from(*t.get(at).ok_or(BlockError::Truncated)?);
            let hash: Hash = t
                .get(at + 1..at + 33)
                .ok_or(BlockError::Truncated)?
                .try_into()
                .expect("32 bytes");
            at += 33;
            if h > MAX_PIECE_HEIGHT {
                return Err(BlockError::RetainedTable);
            }
            covered += 1 << h;
            pieces.push((h, hash));
        }
        if covered != u64::from(len) {
            return Err(BlockError::RetainedTable);
        }
        runs.push(RetainedRun {
            start,
            len,
            id,
            max_time,
            pieces,
        });
    }
    if at != t.len() {
        return Err(BlockError::RetainedTable);
    }
    Ok(runs)
}

/// The perfect subtrees that tile leaves `[start, end)` in order, none
/// taller than [`MAX_PIECE_HEIGHT`]: each is the largest aligned one that
/// fits where it starts.
pub fn pieces_of(start: u64, end: u64) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let mut h = at.trailing_zeros().min(MAX_PIECE_HEIGHT);
        while at + (1u64 << h) > end {
            h -= 1;
        }
        out.push((at, h));
        at += 1 << h;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    #[test]
    fn round_trip_and_damage() {
        let lines: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_slice()).collect();
        let hashes: Vec<Hash> = refs.iter().map(|l| leaf_hash(l)).collect();
        let b = encode(10, &refs, &hashes, (1, 2), 3);
        let d = decode(&b.body, b.count, b.crc).expect("round trip");
        assert_eq!(d.len(), 100);
        assert_eq!(d.line(42), b"{\"n\":42}");
        assert_eq!(d.leaf_hashes(), Some(hashes.clone()));
        assert_eq!(
            d.hint(7),
            <[u8; 4]>::try_from(&hashes[7][..4]).expect("4 bytes")
        );
        let mut bad = b.body.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert_eq!(
            decode(&bad, b.count, b.crc).err(),
            Some(BlockError::Checksum)
        );
        assert!(decode_unchecked(&b.body, b.count + 1).is_err());
        assert!(!d.is_retained(3));

        // Records 3..9 (seqs 13..19) removed: their pieces keep the tree.
        let mut raw = Vec::new();
        for (i, l) in refs.iter().enumerate() {
            if !(3..9).contains(&i) {
                raw.extend_from_slice(l);
            }
            raw.push(b'\n');
        }
        let pieces: Vec<(u32, Hash)> = pieces_of(13, 19)
            .iter()
            .map(|(at, h)| {
                let from = (*at - 10) as usize;
                (*h, crate::merkle::root_of(&hashes[from..from + (1 << h)]))
            })
            .collect();
        assert_eq!(pieces_of(13, 19), vec![(13, 0), (14, 1), (16, 1), (18, 0)]);
        let run = RetainedRun {
            start: 3,
            len: 6,
            id: 1,
            max_time: 2,
            pieces,
        };
        let live: Vec<Hash> = hashes
            .iter()
            .enumerate()
            .filter(|(i, _)| !(3..9).contains(i))
            .map(|(_, h)| *h)
            .collect();
        let r = encode_retained(10, &raw, &live, std::slice::from_ref(&run), (1, 2), 3);
        assert_eq!(r.count, 100);
        let d = decode(&r.body, r.count, r.crc).expect("round trip");
        assert!(d.is_retained(8) && !d.is_retained(9) && !d.is_retained(2));
        assert_eq!(d.line(3), b"");
        assert_eq!(d.hint(9), <[u8; 4]>::try_from(&hashes[9][..4]).expect("4"));
        assert!(d.leaf_hashes().is_none());
        let items = d.items();
        assert_eq!(items.len(), 100 - 6 + 4);
        // The same tree as before removal.
        let mut full = crate::merkle::Frontier::new();
        let mut kept = crate::merkle::Frontier::new();
        for _ in 0..10 {
            full.push([0; 32], |_, _, _| {});
            kept.push([0; 32], |_, _, _| {});
        }
        for h in &hashes {
            full.push(*h, |_, _, _| {});
        }
        for (h, hash) in items {
            kept.push_subtree(h, hash, |_, _, _| {}).expect("aligned");
        }
        assert_eq!(full.root(), kept.root());
        // A table whose pieces do not add up is refused.
        let mut short = run.clone();
        short.pieces.pop();
        let bad = encode_retained(10, &raw, &live, &[short], (1, 2), 3);
        assert!(decode(&bad.body, bad.count, bad.crc).is_err());
    }
}
