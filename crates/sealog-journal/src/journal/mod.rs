//! The journal of one realm: sequencing, sealing, durable commit, recovery,
//! reads and proofs over the segment files.
//!
//! A commit is prepared ([`prepare`], pure and parallel: leaf lines, leaf
//! hashes, compressed blocks) and then committed ([`Journal::commit`],
//! sequential: write, fsync, sign, write the checkpoint, fsync). Callers
//! that want to overlap the two run `prepare` for the next batch while the
//! previous one commits; [`Journal::append`] does both in turn.
//!
//! The code is split by concern: [`recovery`] opens a journal and checks it
//! against its signed high-water mark ([`crate::mark`]); [`commit`] seals
//! and commits, and recovers from a failed write without a restart; [`read`]
//! serves records and proofs.

mod commit;
mod read;
mod recovery;
mod retain;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::block::EncodedBlock;
use crate::checkpoint::{SignedCheckpoint, Signer, VerifierKey};
use crate::error::Result;
use crate::fs::{VFile, Vfs};
use crate::mark::MarkFile;
use crate::merkle::{Frontier, Hash};
use crate::segment::SegmentWriter;
use crate::tree_file::TreeFile;

pub use commit::{block_cuts, prepare};

/// How hard a commit works to reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync the blocks, then the checkpoint, before a receipt (default).
    #[default]
    Fsync,
    /// Leave flushing to the OS. A receipt then only means "written": a
    /// power loss can lose acknowledged records. For tests and comparisons.
    Buffered,
}

/// Tunables of a journal.
#[derive(Debug, Clone, Copy)]
pub struct JournalOptions {
    /// fsync policy.
    pub durability: Durability,
    /// zstd level for blocks.
    pub compression_level: i32,
    /// A segment is closed after the commit that takes it past this size.
    pub segment_max_bytes: u64,
    /// Refuse to open without a high-water mark (set for every realm made
    /// with its journal; a journal from before marks gets one on open).
    pub require_mark: bool,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            compression_level: 1,
            segment_max_bytes: 256 * 1024 * 1024,
            require_mark: false,
        }
    }
}

/// One event to append: its validated JSON object bytes and its own time.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// The JSON object, one line, no surrounding whitespace.
    pub bytes: &'a [u8],
    /// The event's own time in ns, if it has one.
    pub time_ns: Option<i64>,
}

/// Proof that records were committed: their seq range and the signed
/// checkpoint whose tree includes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The realm.
    pub realm: String,
    /// First seq committed.
    pub first_seq: u64,
    /// Last seq committed.
    pub last_seq: u64,
    /// Records committed.
    pub count: u64,
    /// The signed checkpoint note covering them.
    pub checkpoint: String,
}

/// A batch sealed into blocks, ready to commit at `first_seq`.
#[derive(Debug)]
pub struct PreparedCommit {
    first_seq: u64,
    blocks: Vec<(EncodedBlock, Vec<Hash>)>,
}

impl PreparedCommit {
    /// A batch of nothing at `first_seq` (a placeholder; committing it is
    /// refused).
    pub fn empty(first_seq: u64) -> Self {
        Self {
            first_seq,
            blocks: Vec::new(),
        }
    }

    /// The seq the batch was sealed for.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Records in the batch.
    pub fn count(&self) -> u64 {
        self.blocks.iter().map(|(b, _)| u64::from(b.count)).sum()
    }

    /// A batch of blocks sealed before (read from another store, for a
    /// migration), each with the leaf hashes of its records, to commit again
    /// as they are. The blocks must follow each other from `first_seq`.
    ///
    /// # Errors
    /// Blocks that do not follow each other, or hashes that do not match
    /// their counts.
    pub fn from_sealed(first_seq: u64, blocks: Vec<(EncodedBlock, Vec<Hash>)>) -> Result<Self> {
        let mut at = first_seq;
        for (b, hashes) in &blocks {
            if b.first_seq != at || hashes.len() != b.count as usize || b.count == 0 {
                return Err(crate::error::JournalError::Batch(format!(
                    "sealed block at seq {} with {} records ({} hashes) does not follow seq {at}",
                    b.first_seq,
                    b.count,
                    hashes.len()
                )));
            }
            at += u64::from(b.count);
        }
        Ok(Self { first_seq, blocks })
    }

    /// The sealed blocks, each with the leaf hashes of its records (for a
    /// store other than the journal's segment files).
    pub fn into_blocks(self) -> Vec<(EncodedBlock, Vec<Hash>)> {
        self.blocks
    }
}

/// A commit between [`Journal::stage_blocks`] and [`Journal::finish_commit`]:
/// written, not yet visible; [`StagedCommit::sync`] makes what was written
/// so far durable without the journal.
#[derive(Debug)]
pub struct StagedCommit {
    first_seq: u64,
    count: u64,
    metas: Vec<BlockMeta>,
    nodes: Vec<(u64, Hash)>,
    frontier: Frontier,
    signed: Option<SignedCheckpoint>,
    handle: Option<crate::segment::SyncHandle>,
}

impl StagedCommit {
    /// A commit staged by another store (the PostgreSQL one), which keeps
    /// what it staged itself: it has nothing to sync until it commits.
    pub fn elsewhere(first_seq: u64, count: u64) -> Self {
        Self {
            first_seq,
            count,
            metas: Vec::new(),
            nodes: Vec::new(),
            frontier: Frontier::new(),
            signed: None,
            handle: None,
        }
    }

    /// The first seq of the staged batch.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Records in the staged batch.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// fdatasync of the segment written to (nothing with
    /// [`Durability::Buffered`]).
    ///
    /// # Errors
    /// I/O errors; then give the commit up with [`Journal::abort_commit`].
    pub fn sync(&self) -> Result<()> {
        match &self.handle {
            Some(h) => h.sync(),
            None => Ok(()),
        }
    }
}

/// Where a block lives.
#[derive(Debug, Clone, Copy)]
pub struct BlockMeta {
    /// First seq.
    pub first_seq: u64,
    /// Records.
    pub count: u32,
    /// Earliest time, ns.
    pub min_time: i64,
    /// Latest time, ns.
    pub max_time: i64,
    segment: u32,
    body_offset: u64,
    body_len: u32,
    crc: u32,
}

impl BlockMeta {
    /// A block kept by another store (the PostgreSQL one), which says where
    /// its body is.
    pub fn stored_elsewhere(
        first_seq: u64,
        count: u32,
        times: (i64, i64),
        body_len: u32,
        crc: u32,
    ) -> Self {
        Self {
            first_seq,
            count,
            min_time: times.0,
            max_time: times.1,
            segment: u32::MAX,
            body_offset: 0,
            body_len,
            crc,
        }
    }

    /// The CRC32C of the block's body: changes when retention rewrites it.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The length of the block's body: changes when retention rewrites it.
    pub fn body_len(&self) -> u32 {
        self.body_len
    }
}

#[derive(Debug)]
struct SegmentFile {
    path: PathBuf,
    file: Arc<dyn VFile>,
}

/// Why the journal refuses writes until [`Journal::recover`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    /// The failure that poisoned it.
    pub cause: String,
    /// True when the disk (or quota) was full.
    pub storage_full: bool,
}

/// Where the last finished commit ended: what recovery cuts back to.
#[derive(Debug, Clone, Copy)]
struct CommittedEnd {
    /// Segments that hold committed frames.
    segments: usize,
    /// Length of the last of them.
    len: u64,
    /// Tree hash entries written by then.
    tree_entries: u64,
}

/// The open journal of one realm.
#[derive(Debug)]
pub struct Journal {
    fs: Arc<dyn Vfs>,
    dir: PathBuf,
    realm: String,
    signer: Signer,
    verifier: VerifierKey,
    opts: JournalOptions,
    segments: Vec<SegmentFile>,
    writer: SegmentWriter,
    blocks: Vec<BlockMeta>,
    tree: TreeFile,
    /// True after a tree hash write failed: no more are written until the
    /// journal is recovered or reopened (proofs then read the records).
    tree_degraded: bool,
    mark: MarkFile,
    frontier: Frontier,
    latest: Option<SignedCheckpoint>,
    poison: Option<Poison>,
    committed: CommittedEnd,
    /// First seq of the commit staged and not yet finished.
    staged: Option<u64>,
    tree_synced: Instant,
}

impl Journal {
    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Records committed.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The key that verifies this journal's checkpoints.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// The latest signed checkpoint, if anything was committed.
    pub fn latest_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    /// True after a failed write: the journal refuses appends until
    /// [`Journal::recover`] succeeds (or it is reopened).
    pub fn is_poisoned(&self) -> bool {
        self.poison.is_some()
    }

    /// Why the journal is poisoned, if it is.
    pub fn poison(&self) -> Option<&Poison> {
        self.poison.as_ref()
    }

    /// True while tree hashes are not being written after a failure.
    pub fn tree_degraded(&self) -> bool {
        self.tree_degraded
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The filesystem it lives on.
    pub fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.fs
    }

    /// Options in force.
    pub fn options(&self) -> JournalOptions {
        self.opts
    }

    /// Block summaries in seq order (for pruned scans).
    pub fn blocks(&self) -> &[BlockMeta] {
        &self.blocks
    }

    fn poison_with(&mut self, e: &crate::error::JournalError) {
        self.poison = Some(Poison {
            cause: e.to_string(),
            storage_full: e.is_storage_full(),
        });
    }
}
