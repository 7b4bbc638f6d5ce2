//! The storage interface the server, the query engine and the CLI use.
//!
//! Everything above the journal (HTTP, listeners, query, proofs, the
//! background verifier) talks to a realm's log through [`LogStore`], held as
//! a `dyn LogStore`, never through [`Journal`] itself; a second backend
//! (PostgreSQL, for the scale-out roles) implements it and must pass the
//! same conformance suite ([`crate::conformance`]).
//!
//! The commit-in-steps methods ([`LogStore::stage_blocks`] to
//! [`LogStore::finish_commit`]) let a caller that shares the store behind a
//! lock release it while the store waits for stable storage. The staged
//! commit ([`StagedCommit`]) is the embedded journal's today; a second
//! backend will widen it when it exists, rather than guessing its shape now.

use std::fmt;
use std::ops::ControlFlow;

use crate::block::DecodedBlock;
use crate::checkpoint::{SignedCheckpoint, VerifierKey};
use crate::error::{JournalError, Result};
use crate::journal::{
    BlockMeta, EventRef, Journal, JournalOptions, Poison, PreparedCommit, Receipt, StagedCommit,
};
use crate::merkle::{self, Hash};
use crate::retention::{Notes, Outcome, Policy};
use crate::tree_file::TILE_LEAVES;

/// A realm's verifiable log, whatever stores it.
pub trait LogStore: Send + Sync + fmt::Debug {
    /// The realm.
    fn realm(&self) -> &str;
    /// Records committed.
    fn size(&self) -> u64;
    /// The key that verifies this log's checkpoints.
    fn verifier(&self) -> &VerifierKey;
    /// The latest signed checkpoint.
    fn latest_checkpoint(&self) -> Option<&SignedCheckpoint>;
    /// Options in force (the compression level batches are prepared with).
    fn options(&self) -> JournalOptions;

    /// Appends `events`; returns only once they are durable.
    ///
    /// # Errors
    /// Storage errors; nothing is acknowledged on error.
    fn append(&mut self, events: &[EventRef<'_>]) -> Result<Receipt>;
    /// First step of a commit in steps: write the batch, not yet visible.
    ///
    /// # Errors
    /// Storage errors (which poison the store), a batch for another seq.
    fn stage_blocks(&mut self, p: PreparedCommit) -> Result<StagedCommit>;
    /// Second step, after [`StagedCommit::sync`]: sign and write the checkpoint.
    ///
    /// # Errors
    /// Storage errors (which poison the store).
    fn stage_checkpoint(&mut self, s: StagedCommit) -> Result<StagedCommit>;
    /// Last step, after the second sync: publish and return the receipt.
    ///
    /// # Errors
    /// A commit not staged here.
    fn finish_commit(&mut self, s: StagedCommit) -> Result<Receipt>;
    /// Gives up a staged commit whose sync failed; poisons the store.
    fn abort_commit(&mut self, s: StagedCommit, cause: &JournalError);
    /// Why the store refuses writes, if it does.
    fn poison(&self) -> Option<&Poison>;
    /// Cuts back to the last acknowledged commit and takes writes again
    /// once a probe write succeeds.
    ///
    /// # Errors
    /// The failure that keeps it poisoned.
    fn recover(&mut self) -> Result<()>;
    /// Makes derived data and the high-water mark durable (clean shutdown).
    ///
    /// # Errors
    /// Storage errors.
    fn flush(&mut self) -> Result<()>;
    /// Syncs the high-water mark if a write to it is due.
    ///
    /// # Errors
    /// Storage errors.
    fn flush_mark(&mut self) -> Result<()>;

    /// Block summaries in seq order (for pruned scans).
    fn blocks(&self) -> &[BlockMeta];
    /// Reads and decodes block `i`, checking it.
    ///
    /// # Errors
    /// Storage errors; [`JournalError::Corrupt`] for a damaged block.
    fn read_block(&self, i: usize) -> Result<DecodedBlock>;
    /// Visits leaf lines of seqs `[from, to)` in order until `visit` breaks.
    ///
    /// # Errors
    /// Out-of-range arguments; storage errors.
    fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<()>;
    /// RFC 9162 inclusion proof of `seq` in the tree of `size` records.
    ///
    /// # Errors
    /// Out-of-range arguments; storage errors.
    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>>;
    /// RFC 9162 consistency proof from `old` to `new`.
    ///
    /// # Errors
    /// Out-of-range arguments; storage errors.
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>>;
    /// The hashes that recompute the root of `size` from records `[from, to)`.
    ///
    /// # Errors
    /// Out-of-range arguments; storage errors.
    fn range_proof(&self, from: u64, to: u64, size: u64) -> Result<Vec<Hash>>;
    /// MTH of the first `size` records.
    ///
    /// # Errors
    /// Out-of-range size; storage errors.
    fn root_at(&self, size: u64) -> Result<Hash>;
    /// The stored hash of the perfect subtree at `height` (≥
    /// [`crate::tree_file::TILE_HEIGHT`]) and `index`, if the store keeps it:
    /// proofs are built from these, so verifiers compare them with the
    /// records.
    ///
    /// # Errors
    /// Storage errors.
    fn stored_node(&self, height: u32, index: u64) -> Result<Option<Hash>>;
    /// Removes the bodies of the committed records `policy` selects,
    /// keeping their leaf hashes and a signed retention record
    /// ([`crate::retention`]); with `dry_run`, only says what it would do.
    ///
    /// # Errors
    /// Storage errors; refused while a commit is staged.
    fn retain(&mut self, policy: &Policy<'_>, now_ns: i64, dry_run: bool) -> Result<Outcome>;
    /// The realm's retention records.
    ///
    /// # Errors
    /// Storage errors.
    fn retention_records(&self) -> Result<Notes>;
}

impl LogStore for Journal {
    fn realm(&self) -> &str {
        Journal::realm(self)
    }
    fn size(&self) -> u64 {
        Journal::size(self)
    }
    fn verifier(&self) -> &VerifierKey {
        Journal::verifier(self)
    }
    fn latest_checkpoint(&self) -> Option<&SignedCheckpoint> {
        Journal::latest_checkpoint(self)
    }
    fn options(&self) -> JournalOptions {
        Journal::options(self)
    }
    fn append(&mut self, events: &[EventRef<'_>]) -> Result<Receipt> {
        Journal::append(self, events)
    }
    fn stage_blocks(&mut self, p: PreparedCommit) -> Result<StagedCommit> {
        Journal::stage_blocks(self, p)
    }
    fn stage_checkpoint(&mut self, s: StagedCommit) -> Result<StagedCommit> {
        Journal::stage_checkpoint(self, s)
    }
    fn finish_commit(&mut self, s: StagedCommit) -> Result<Receipt> {
        Journal::finish_commit(self, s)
    }
    fn abort_commit(&mut self, s: StagedCommit, cause: &JournalError) {
        Journal::abort_commit(self, s, cause)
    }
    fn poison(&self) -> Option<&Poison> {
        Journal::poison(self)
    }
    fn recover(&mut self) -> Result<()> {
        Journal::recover(self)
    }
    fn flush(&mut self) -> Result<()> {
        Journal::sync(self)
    }
    fn flush_mark(&mut self) -> Result<()> {
        Journal::flush_mark(self)
    }
    fn blocks(&self) -> &[BlockMeta] {
        Journal::blocks(self)
    }
    fn read_block(&self, i: usize) -> Result<DecodedBlock> {
        Journal::read_block(self, i)
    }
    fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        Journal::read(self, from, to, visit)
    }
    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>> {
        Journal::inclusion_proof(self, seq, size)
    }
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        Journal::consistency_proof(self, old, new)
    }
    fn range_proof(&self, from: u64, to: u64, size: u64) -> Result<Vec<Hash>> {
        Journal::range_proof(self, from, to, size)
    }
    fn root_at(&self, size: u64) -> Result<Hash> {
        Journal::root_at(self, size)
    }
    fn stored_node(&self, height: u32, index: u64) -> Result<Option<Hash>> {
        Journal::stored_node(self, height, index)
    }
    fn retain(&mut self, policy: &Policy<'_>, now_ns: i64, dry_run: bool) -> Result<Outcome> {
        Journal::retain(self, policy, now_ns, dry_run)
    }
    fn retention_records(&self) -> Result<Notes> {
        Journal::retention_records(self)
    }
}

/// Pieces of the tree over a range: `(first seq, height, hash)`.
pub type Items = Vec<(u64, u32, Hash)>;

/// The MTH of records `[start, end)` as every store answers it: a perfect
/// subtree of at least [`TILE_LEAVES`] records from its stored hash
/// (`node(height, index)`) when the store has it, a range of at most
/// [`TILE_LEAVES`] from the tree's items (`items(from, to)`, as
/// [`push_block_items`] gives them), and otherwise split as RFC 9162 does.
///
/// # Errors
/// Whatever `node` or `items` fail with; pieces that do not tile the range.
pub fn tiled_subtree(
    start: u64,
    end: u64,
    node: &dyn Fn(u32, u64) -> Result<Option<Hash>>,
    items: &dyn Fn(u64, u64) -> Result<Items>,
) -> Result<Hash> {
    let len = end - start;
    if len.is_power_of_two() && start.is_multiple_of(len) && len >= TILE_LEAVES {
        if let Some(hash) = node(len.trailing_zeros(), start / len)? {
            return Ok(hash);
        }
    }
    if len <= TILE_LEAVES {
        return Ok(merkle::root_of_pieces(start, end, &items(start, end)?)?);
    }
    let k = merkle::split_point(len);
    Ok(merkle::node_hash(
        &tiled_subtree(start, start + k, node, items)?,
        &tiled_subtree(start + k, end, node, items)?,
    ))
}

/// Pushes onto `out` the tree's items of block `b` (first seq `first`)
/// that reach into `[from, to)`: `(first seq, height, hash)`, a leaf hash
/// for each record present and the kept subtrees of removed ones.
pub fn push_block_items(
    first: u64,
    b: &DecodedBlock,
    from: u64,
    to: u64,
    out: &mut Vec<(u64, u32, Hash)>,
) {
    let mut at = first;
    for (h, hash) in b.items() {
        let end = at + (1u64 << h);
        if end > from && at < to {
            out.push((at, h, hash));
        }
        at = end;
    }
}
