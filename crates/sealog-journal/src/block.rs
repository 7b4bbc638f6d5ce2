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

use std::cell::RefCell;

use crate::merkle::{leaf_hash, Hash};

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
    /// The payload does not hold `count` newline-terminated lines.
    #[error("block holds {found} lines, header says {expected}")]
    LineCount {
        /// From the header.
        expected: u32,
        /// Found in the payload.
        found: usize,
    },
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
    let compressed = zstd::bulk::compress(raw, level)
        .expect("zstd compression of an in-memory buffer cannot fail");
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

/// A decoded block: its lines and hints.
#[derive(Debug, Clone, Default)]
pub struct DecodedBlock {
    raw: Vec<u8>,
    /// End offset (exclusive, before the newline) of each line.
    ends: Vec<u32>,
    hints: Vec<[u8; 4]>,
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

    /// Leaf hashes of all lines.
    pub fn leaf_hashes(&self) -> Vec<Hash> {
        self.lines().map(leaf_hash).collect()
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
    let hints_end = 4 + 4 * n;
    if body.len() < hints_end {
        return Err(BlockError::Truncated);
    }
    let raw_len = u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize;
    if raw_len > MAX_DECODED_RAW {
        return Err(BlockError::TooLarge(raw_len));
    }
    let hints = body[4..hints_end]
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    let raw = DECOMPRESSOR
        .with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
            }
            d.as_mut()
                .expect("set above")
                .decompress(&body[hints_end..], raw_len)
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
    Ok(DecodedBlock { raw, ends, hints })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(d.leaf_hashes(), hashes);
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
        assert_eq!(
            decode_unchecked(&b.body[..10], b.count).err(),
            Some(BlockError::Truncated)
        );
    }
}
