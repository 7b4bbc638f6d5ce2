//! Reads and proofs: records by seq, RFC 9162 inclusion, consistency and
//! range proofs over the stored interior hashes.

use std::ops::ControlFlow;

use super::Journal;
use crate::block;
use crate::error::{JournalError, Result};
use crate::merkle::{self, Hash, SubtreeSource};
use crate::segment::FrameReader;
use crate::tree_file::{self, TILE_HEIGHT};

impl Journal {
    /// Index of the block holding `seq`.
    fn block_index(&self, seq: u64) -> Option<usize> {
        let i = self.blocks.partition_point(|b| b.first_seq <= seq);
        let i = i.checked_sub(1)?;
        let b = &self.blocks[i];
        (seq < b.first_seq + u64::from(b.count)).then_some(i)
    }

    /// Reads and decodes block `i` (checking its CRC).
    ///
    /// # Errors
    /// I/O errors; [`JournalError::Corrupt`] when the block is damaged.
    pub fn read_block(&self, i: usize) -> Result<block::DecodedBlock> {
        let m = self.blocks.get(i).ok_or(JournalError::OutOfRange {
            from: i as u64,
            to: i as u64 + 1,
            size: self.blocks.len() as u64,
        })?;
        let seg = &self.segments[m.segment as usize];
        let body = FrameReader::read_at(&*seg.file, &seg.path, m.body_offset, m.body_len as usize)?;
        block::decode(&body, m.count, m.crc).map_err(|e| JournalError::Corrupt {
            seq: m.first_seq,
            reason: format!(
                "block of seqs {}..{}: {e}",
                m.first_seq,
                m.first_seq + u64::from(m.count)
            ),
            path: seg.path.clone(),
        })
    }

    /// Calls `visit(seq, leaf line)` for seqs in `[from, to)` in order until
    /// it breaks.
    ///
    /// # Errors
    /// [`JournalError::OutOfRange`] past the committed size; read errors.
    pub fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        if from > to || to > self.blocks_end() {
            return Err(JournalError::OutOfRange {
                from,
                to,
                size: self.blocks_end(),
            });
        }
        if from == to {
            return Ok(());
        }
        let Some(mut i) = self.block_index(from) else {
            return Ok(());
        };
        let mut seq = from;
        while seq < to && i < self.blocks.len() {
            let b = self.read_block(i)?;
            let first = self.blocks[i].first_seq;
            for k in (seq - first) as usize..b.len() {
                if seq >= to {
                    break;
                }
                // A record retention removed has no body to visit.
                if !b.is_retained(k) && visit(seq, b.line(k)).is_break() {
                    return Ok(());
                }
                seq += 1;
            }
            i += 1;
        }
        Ok(())
    }

    /// The Merkle tree's items over `[from, to)` in order: `(first seq,
    /// height, hash)`, a leaf hash (height 0) for each record present and
    /// the kept subtrees of records retention removed (which may reach
    /// outside the range).
    ///
    /// # Errors
    /// [`JournalError::OutOfRange`] past the committed size; read errors.
    pub fn read_items(&self, from: u64, to: u64) -> Result<Vec<(u64, u32, Hash)>> {
        if from > to || to > self.blocks_end() {
            return Err(JournalError::OutOfRange {
                from,
                to,
                size: self.blocks_end(),
            });
        }
        let mut out = Vec::new();
        let Some(mut i) = self.block_index(from) else {
            return Ok(out);
        };
        while i < self.blocks.len() && self.blocks[i].first_seq < to {
            let b = self.read_block(i)?;
            crate::store::push_block_items(self.blocks[i].first_seq, &b, from, to, &mut out);
            i += 1;
        }
        Ok(out)
    }

    /// Records in committed blocks (equals `size()` once open).
    fn blocks_end(&self) -> u64 {
        self.blocks
            .last()
            .map_or(0, |b| b.first_seq + u64::from(b.count))
    }

    /// The RFC 9162 inclusion proof of `seq` in the tree of `size` records.
    ///
    /// # Errors
    /// Out-of-range arguments; read errors.
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        merkle::inclusion_proof(self, seq, size)
    }

    /// The RFC 9162 consistency proof from `old` to `new`.
    ///
    /// # Errors
    /// Out-of-range arguments; read errors.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        merkle::consistency_proof(self, old, new)
    }

    /// The hashes that recompute the root of `size` from records `[from, to)`.
    ///
    /// # Errors
    /// Out-of-range arguments; read errors.
    pub fn range_proof(&self, from: u64, to: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        merkle::range_proof(self, from, to, size)
    }

    /// MTH of the first `size` records.
    ///
    /// # Errors
    /// Out-of-range size; read errors.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(merkle::empty_root());
        }
        self.subtree(0, size)
    }

    /// The stored hash of the perfect subtree at `height` (≥ the tile
    /// height) and `index`, if `tree.hashes` holds it.
    ///
    /// # Errors
    /// Read errors; a damaged entry.
    pub fn stored_node(&self, height: u32, index: u64) -> Result<Option<Hash>> {
        if height < TILE_HEIGHT || self.tree_degraded {
            return Ok(None);
        }
        self.tree
            .get(tree_file::position(height - TILE_HEIGHT, index))
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size() {
            return Err(JournalError::OutOfRange {
                from: 0,
                to: size,
                size: self.size(),
            });
        }
        Ok(())
    }
}

impl SubtreeSource for Journal {
    type Error = JournalError;

    fn subtree(&self, start: u64, end: u64) -> Result<Hash> {
        crate::store::tiled_subtree(
            start,
            end,
            &|h, i| self.tree.get(tree_file::position(h - TILE_HEIGHT, i)),
            &|a, b| self.read_items(a, b),
        )
    }
}
