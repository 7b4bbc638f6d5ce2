//! The journal of one realm: sequencing, sealing, durable commit, recovery,
//! reads and proofs over the segment files.
//!
//! A commit is prepared ([`prepare`], pure and parallel: leaf lines, leaf
//! hashes, compressed blocks) and then committed ([`Journal::commit`],
//! sequential: write, fsync, sign, write the checkpoint, fsync). Callers
//! that want to overlap the two run `prepare` for the next batch while the
//! previous one commits; [`Journal::append`] does both in turn.

use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sealog_event::LeafBuilder;
use serde::{Deserialize, Serialize};

use crate::block::{self, EncodedBlock, MAX_BLOCK_RAW, MAX_BLOCK_RECORDS};
use crate::checkpoint::{origin_for, Checkpoint, SignedCheckpoint, Signer, VerifierKey};
use crate::error::{JournalError, Result};
use crate::merkle::{self, leaf_hash, Frontier, Hash, SubtreeSource};
use crate::segment::{
    list_segments, push_frame, FrameHeader, FrameKind, FrameRead, FrameReader, SegmentWriter,
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::tree_file::{self, TreeFile, TILE_HEIGHT, TILE_LEAVES};

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
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            compression_level: 1,
            segment_max_bytes: 256 * 1024 * 1024,
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
    /// Records in the batch.
    pub fn count(&self) -> u64 {
        self.blocks.iter().map(|(b, _)| u64::from(b.count)).sum()
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

/// Seals `events` into blocks as records `first_seq..`, stamped with
/// `received_at_ns`. Pure: runs on rayon's pool and touches no file.
pub fn prepare(
    realm: &str,
    first_seq: u64,
    events: &[EventRef<'_>],
    received_at_ns: i64,
    compression_level: i32,
) -> PreparedCommit {
    let builder = LeafBuilder::new(realm, received_at_ns);
    // Cut the batch into blocks by record count and raw size.
    let mut cuts = Vec::new();
    let (mut start, mut raw) = (0usize, 0usize);
    for (i, e) in events.iter().enumerate() {
        let n = i - start;
        if n > 0 && (n >= MAX_BLOCK_RECORDS || raw + e.bytes.len() > MAX_BLOCK_RAW) {
            cuts.push(start..i);
            start = i;
            raw = 0;
        }
        raw += e.bytes.len() + 96;
    }
    if start < events.len() {
        cuts.push(start..events.len());
    }
    let blocks = cuts
        .into_par_iter()
        .map(|range| {
            let seq0 = first_seq + range.start as u64;
            let chunk = &events[range];
            let mut buf = Vec::with_capacity(chunk.iter().map(|e| e.bytes.len() + 96).sum());
            let mut hashes = Vec::with_capacity(chunk.len());
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for (i, e) in chunk.iter().enumerate() {
                let at = buf.len();
                builder.build(seq0 + i as u64, e.bytes, &mut buf);
                hashes.push(leaf_hash(&buf[at..]));
                buf.push(b'\n');
                let t = e.time_ns.unwrap_or(received_at_ns);
                lo = lo.min(t);
                hi = hi.max(t);
            }
            let b = block::encode_raw(seq0, &buf, &hashes, (lo, hi), compression_level);
            (b, hashes)
        })
        .collect();
    PreparedCommit { first_seq, blocks }
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

#[derive(Debug)]
struct SegmentFile {
    path: PathBuf,
    file: File,
}

/// The open journal of one realm.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    realm: String,
    signer: Signer,
    verifier: VerifierKey,
    opts: JournalOptions,
    segments: Vec<SegmentFile>,
    writer: SegmentWriter,
    blocks: Vec<BlockMeta>,
    tree: TreeFile,
    frontier: Frontier,
    latest: Option<SignedCheckpoint>,
    poisoned: bool,
    /// First seq of the commit staged and not yet finished.
    staged: Option<u64>,
    tree_synced: Instant,
}

/// What recovery found after the last checkpoint.
#[derive(Debug, Default)]
struct ScanState {
    /// Records in blocks seen so far (committed or not).
    records: u64,
    /// Records covered by the last valid checkpoint.
    committed: u64,
    /// Blocks covered by the last valid checkpoint.
    committed_blocks: usize,
    /// (segment index, offset after the last checkpoint frame).
    committed_end: Option<(usize, u64)>,
    latest: Option<SignedCheckpoint>,
}

impl Journal {
    /// Opens the journal in `dir` (creating it if empty), recovering from a
    /// crash: a torn tail after the last checkpoint is cut off and logged;
    /// damage before it is an error.
    ///
    /// # Errors
    /// [`JournalError::Corrupt`] for damaged committed data, format and I/O
    /// errors.
    pub fn open(dir: &Path, realm: &str, signer: Signer, opts: JournalOptions) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(JournalError::io("create", dir))?;
        let verifier = signer.verifier();
        if verifier.name() != origin_for(realm) {
            return Err(JournalError::Batch(format!(
                "signing key is named {:?}, not {:?}",
                verifier.name(),
                origin_for(realm)
            )));
        }
        let listed = list_segments(dir)?;
        let mut blocks = Vec::new();
        let mut st = ScanState::default();
        for (idx, (name_seq, path)) in listed.iter().enumerate() {
            let mut r = FrameReader::open(path)?;
            if r.first_seq() != *name_seq || r.first_seq() != st.records {
                return Err(JournalError::Corrupt {
                    seq: st.records,
                    reason: format!(
                        "segment starts at seq {} but the journal before it ends at {}",
                        r.first_seq(),
                        st.records
                    ),
                    path: path.clone(),
                });
            }
            if st.committed_end.is_none() && idx == 0 {
                st.committed_end = Some((0, SEGMENT_HEADER_LEN));
            }
            let torn = scan_segment(&mut r, idx, &verifier, &mut blocks, &mut st)?;
            if torn && idx + 1 < listed.len() {
                let next = &listed[idx + 1].1;
                if st.committed_end.is_some_and(|(s, _)| s < idx) || has_checkpoint(next)? {
                    return Err(JournalError::Corrupt {
                        seq: st.records,
                        reason: "damaged frame followed by later segments".into(),
                        path: path.clone(),
                    });
                }
            }
            if torn {
                break;
            }
        }
        let (end_seg, end_off) = st.committed_end.unwrap_or((0, SEGMENT_HEADER_LEN));
        if st.records > st.committed || listed.len() > end_seg + 1 {
            tracing::warn!(
                realm,
                committed = st.committed,
                dropped_records = st.records - st.committed,
                "journal tail after the last checkpoint was never acknowledged; truncating it"
            );
        }
        blocks.truncate(st.committed_blocks);
        // Segments after the committed one hold nothing acknowledged.
        for (_, path) in listed.iter().skip(end_seg + 1) {
            tracing::warn!(path = %path.display(), "removing segment with no committed records");
            std::fs::remove_file(path).map_err(JournalError::io("remove", path))?;
        }
        let writer = match listed.get(end_seg) {
            Some((seq, path)) => {
                let actual = std::fs::metadata(path)
                    .map_err(JournalError::io("stat", path))?
                    .len();
                if actual > end_off {
                    tracing::warn!(
                        path = %path.display(),
                        bytes = actual - end_off,
                        "truncated torn tail"
                    );
                }
                SegmentWriter::reopen(path, *seq, end_off)?
            }
            None => SegmentWriter::create(dir, 0)?,
        };
        let mut segments = Vec::new();
        for (_, path) in listed.iter().take(end_seg + 1) {
            segments.push(SegmentFile {
                file: File::open(path).map_err(JournalError::io("open", path))?,
                path: path.clone(),
            });
        }
        if segments.is_empty() {
            segments.push(SegmentFile {
                file: File::open(writer.path()).map_err(JournalError::io("open", writer.path()))?,
                path: writer.path().to_path_buf(),
            });
        }
        if let Some(cp) = &st.latest {
            verifier
                .verify(&cp.text)
                .map_err(|e| JournalError::Corrupt {
                    seq: cp.checkpoint.size,
                    reason: format!("last checkpoint does not verify: {e}"),
                    path: dir.to_path_buf(),
                })?;
        }
        let tree = TreeFile::open(&dir.join("tree.hashes"))?;
        let mut j = Self {
            dir: dir.to_path_buf(),
            realm: realm.to_string(),
            signer,
            verifier,
            opts,
            segments,
            writer,
            blocks,
            tree,
            frontier: Frontier::new(),
            latest: st.latest,
            poisoned: false,
            staged: None,
            tree_synced: Instant::now(),
        };
        j.recover_tree(st.committed)?;
        Ok(j)
    }

    /// Rebuilds the frontier and the stored tree hashes for `size` records,
    /// keeping the valid prefix of `tree.hashes`, and checks the result
    /// against the last checkpoint.
    fn recover_tree(&mut self, size: u64) -> Result<()> {
        let want_tiles = size / TILE_LEAVES;
        let have_tiles = tree_file::tiles_within(self.tree.entries()).min(want_tiles);
        let try_from = |j: &mut Self, tiles: u64| -> Result<(Frontier, Vec<(u64, Hash)>)> {
            let base = tiles * TILE_LEAVES;
            let mut hashes = Vec::new();
            for (h, idx, _) in
                Frontier::from_subtrees(base, &vec![[0; 32]; base.count_ones() as usize])?
                    .subtrees()
            {
                let hash = j
                    .tree
                    .get(tree_file::position(h - TILE_HEIGHT, idx))?
                    .ok_or_else(|| JournalError::Format {
                        path: j.dir.join("tree.hashes"),
                        reason: "missing stored subtree".into(),
                    })?;
                hashes.push(hash);
            }
            let mut frontier = Frontier::from_subtrees(base, &hashes)?;
            let mut nodes = Vec::new();
            j.read(base, size, &mut |_, line| {
                frontier.push(leaf_hash(line), |height, index, hash| {
                    if height >= TILE_HEIGHT {
                        nodes.push((tree_file::position(height - TILE_HEIGHT, index), *hash));
                    }
                });
                ControlFlow::Continue(())
            })?;
            Ok((frontier, nodes))
        };
        let matches = |f: &Frontier, latest: &Option<SignedCheckpoint>| match latest {
            Some(cp) => f.root() == cp.checkpoint.root,
            None => f.size() == 0,
        };
        let (mut frontier, mut nodes, mut from_tiles) = {
            let (f, n) = try_from(self, have_tiles)?;
            (f, n, have_tiles)
        };
        if !matches(&frontier, &self.latest) && have_tiles > 0 {
            tracing::warn!(realm = %self.realm, "stored tree hashes disagree with the last checkpoint; recomputing them from the records");
            let (f, n) = try_from(self, 0)?;
            frontier = f;
            nodes = n;
            from_tiles = 0;
        }
        if !matches(&frontier, &self.latest) {
            return Err(JournalError::Corrupt {
                seq: 0,
                reason: format!(
                    "records 0..{size} do not match the last signed checkpoint; run `sealog verify` to find the first bad seq"
                ),
                path: self.dir.clone(),
            });
        }
        self.tree
            .truncate(tree_file::entries_for_tiles(from_tiles))?;
        self.tree.append(&nodes)?;
        self.tree.sync()?;
        self.frontier = frontier;
        Ok(())
    }

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

    /// True after a failed write: the journal refuses appends until reopened.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Options in force.
    pub fn options(&self) -> JournalOptions {
        self.opts
    }

    /// Block summaries in seq order (for pruned scans).
    pub fn blocks(&self) -> &[BlockMeta] {
        &self.blocks
    }

    /// Seals and commits `events`; returns the receipt once durable.
    ///
    /// # Errors
    /// I/O errors (which poison the journal), or an empty batch.
    pub fn append(&mut self, events: &[EventRef<'_>]) -> Result<Receipt> {
        let p = prepare(
            &self.realm,
            self.size(),
            events,
            sealog_event::now_ns(),
            self.opts.compression_level,
        );
        self.commit(p)
    }

    /// Commits a prepared batch: blocks, fsync, signed checkpoint, fsync.
    ///
    /// The same steps as [`Journal::stage_blocks`], [`StagedCommit::sync`],
    /// [`Journal::stage_checkpoint`], [`StagedCommit::sync`] and
    /// [`Journal::finish_commit`], for a caller that holds the journal alone.
    ///
    /// # Errors
    /// [`JournalError::Poisoned`] after an earlier failure; a batch prepared
    /// for another seq; I/O errors (which poison the journal).
    pub fn commit(&mut self, p: PreparedCommit) -> Result<Receipt> {
        let staged = self.stage_blocks(p)?;
        if let Err(e) = staged.sync() {
            self.abort_commit(staged);
            return Err(e);
        }
        let staged = self.stage_checkpoint(staged)?;
        if let Err(e) = staged.sync() {
            self.abort_commit(staged);
            return Err(e);
        }
        self.finish_commit(staged)
    }

    /// First step of a commit in steps: writes the batch's blocks (not yet
    /// durable, not yet visible to readers) and computes the new tree.
    /// Between steps the caller may release its lock on the journal, so
    /// readers are not held up by the fsyncs; only one commit may be staged
    /// at a time.
    ///
    /// # Errors
    /// As [`Journal::commit`], and when another commit is staged.
    pub fn stage_blocks(&mut self, p: PreparedCommit) -> Result<StagedCommit> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        if self.staged.is_some() {
            return Err(JournalError::Batch("another commit is staged".into()));
        }
        let count = p.count();
        if count == 0 {
            return Err(JournalError::Batch("nothing to append".into()));
        }
        if p.first_seq != self.size() {
            return Err(JournalError::Batch(format!(
                "batch prepared for seq {} but the journal is at {}",
                p.first_seq,
                self.size()
            )));
        }
        self.poisoned = true; // cleared below on success: any early return poisons
        if self.writer.len() >= self.opts.segment_max_bytes {
            self.roll()?;
        }
        let mut bytes = Vec::with_capacity(
            p.blocks
                .iter()
                .map(|(b, _)| b.body.len() + FRAME_HEADER_LEN)
                .sum(),
        );
        let seg = (self.segments.len() - 1) as u32;
        let base = self.writer.len();
        let mut metas = Vec::with_capacity(p.blocks.len());
        for (b, _) in &p.blocks {
            let h = FrameHeader::for_block(b);
            metas.push(BlockMeta {
                first_seq: b.first_seq,
                count: b.count,
                min_time: b.min_time,
                max_time: b.max_time,
                segment: seg,
                body_offset: base + (bytes.len() + FRAME_HEADER_LEN) as u64,
                body_len: h.body_len,
                crc: b.crc,
            });
            push_frame(&mut bytes, &h, &b.body);
        }
        self.writer.append(&bytes)?;
        let handle = if self.opts.durability == Durability::Fsync {
            Some(self.writer.sync_handle()?)
        } else {
            None
        };
        let mut nodes = Vec::new();
        let mut frontier = self.frontier.clone();
        for (_, hashes) in &p.blocks {
            for h in hashes {
                frontier.push(*h, |height, index, hash| {
                    if height >= TILE_HEIGHT {
                        nodes.push((tree_file::position(height - TILE_HEIGHT, index), *hash));
                    }
                });
            }
        }
        self.staged = Some(p.first_seq);
        self.poisoned = false;
        Ok(StagedCommit {
            first_seq: p.first_seq,
            count,
            metas,
            nodes,
            frontier,
            signed: None,
            handle,
        })
    }

    /// Second step, after the blocks are synced: signs the checkpoint over
    /// the new tree and writes it.
    ///
    /// # Errors
    /// I/O errors (which poison the journal); a commit not staged here.
    pub fn stage_checkpoint(&mut self, mut s: StagedCommit) -> Result<StagedCommit> {
        self.check_staged(&s, false)?;
        self.poisoned = true;
        let signed = self.signer.sign(&Checkpoint {
            origin: origin_for(&self.realm),
            size: s.frontier.size(),
            root: s.frontier.root(),
        });
        let mut cp_frame = Vec::with_capacity(FRAME_HEADER_LEN + signed.text.len());
        push_frame(
            &mut cp_frame,
            &FrameHeader::for_checkpoint(s.frontier.size(), signed.text.as_bytes()),
            signed.text.as_bytes(),
        );
        self.writer.append(&cp_frame)?;
        s.signed = Some(signed);
        self.poisoned = false;
        Ok(s)
    }

    /// Last step, after the checkpoint is synced: the batch becomes visible
    /// to readers and its receipt is returned.
    ///
    /// # Errors
    /// I/O errors writing tree hashes (which poison the journal); a commit
    /// not staged here or not through [`Journal::stage_checkpoint`].
    pub fn finish_commit(&mut self, s: StagedCommit) -> Result<Receipt> {
        self.check_staged(&s, true)?;
        let Some(signed) = s.signed else {
            return Err(JournalError::Batch("checkpoint not staged".into()));
        };
        self.poisoned = true;
        self.tree.append(&s.nodes)?;
        if self.opts.durability == Durability::Fsync
            && self.tree_synced.elapsed() > Duration::from_secs(1)
        {
            self.tree.sync()?;
            self.tree_synced = Instant::now();
        }
        self.blocks.extend(s.metas);
        self.frontier = s.frontier;
        let receipt = Receipt {
            realm: self.realm.clone(),
            first_seq: s.first_seq,
            last_seq: s.first_seq + s.count - 1,
            count: s.count,
            checkpoint: signed.text.clone(),
        };
        self.latest = Some(signed);
        self.staged = None;
        self.poisoned = false;
        Ok(receipt)
    }

    /// Gives up a staged commit whose sync failed. What it wrote may or may
    /// not be on disk, so the journal is poisoned: reopening it recovers to
    /// the last durable checkpoint.
    pub fn abort_commit(&mut self, s: StagedCommit) {
        drop(s);
        self.poisoned = true;
    }

    fn check_staged(&self, s: &StagedCommit, signed: bool) -> Result<()> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        if self.staged != Some(s.first_seq) || s.signed.is_some() != signed {
            return Err(JournalError::Batch(format!(
                "staged commit for seq {} is not the one in progress",
                s.first_seq
            )));
        }
        Ok(())
    }

    fn roll(&mut self) -> Result<()> {
        self.tree.sync()?;
        let w = SegmentWriter::create(&self.dir, self.size())?;
        self.segments.push(SegmentFile {
            file: File::open(w.path()).map_err(JournalError::io("open", w.path()))?,
            path: w.path().to_path_buf(),
        });
        self.writer = w;
        Ok(())
    }

    /// Flushes the tree hash file (called on clean shutdown).
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&mut self) -> Result<()> {
        self.tree.sync()
    }

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
        let body = FrameReader::read_at(&seg.file, &seg.path, m.body_offset, m.body_len as usize)?;
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
                if visit(seq, b.line(k)).is_break() {
                    return Ok(());
                }
                seq += 1;
            }
            i += 1;
        }
        Ok(())
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
        let len = end - start;
        if len.is_power_of_two() && start.is_multiple_of(len) && len >= TILE_LEAVES {
            let h = len.trailing_zeros() - TILE_HEIGHT;
            if let Some(hash) = self.tree.get(tree_file::position(h, start / len))? {
                return Ok(hash);
            }
        }
        if len <= TILE_LEAVES {
            let mut leaves = Vec::with_capacity(len as usize);
            self.read(start, end, &mut |_, line| {
                leaves.push(leaf_hash(line));
                ControlFlow::Continue(())
            })?;
            return Ok(merkle::root_of(&leaves));
        }
        let k = merkle::split_point(len);
        Ok(merkle::node_hash(
            &self.subtree(start, start + k)?,
            &self.subtree(start + k, end)?,
        ))
    }
}

/// Scans one segment's frames during open. Returns true when it stopped at
/// a torn tail.
fn scan_segment(
    r: &mut FrameReader,
    idx: usize,
    verifier: &VerifierKey,
    blocks: &mut Vec<BlockMeta>,
    st: &mut ScanState,
) -> Result<bool> {
    let path = r.path().to_path_buf();
    loop {
        let (header, offset, body, bad) = match r.next_frame(false)? {
            FrameRead::End => return Ok(false),
            FrameRead::Frame {
                header,
                offset,
                body,
            } => {
                let bad = match header.kind {
                    FrameKind::Block if header.seq != st.records => {
                        Some(("block seq does not follow the previous block", false))
                    }
                    FrameKind::Checkpoint if header.seq != st.records => Some((
                        "checkpoint size does not match the records before it",
                        false,
                    )),
                    _ => None,
                };
                (Some(header), offset, body, bad)
            }
            FrameRead::Bad {
                offset,
                reason,
                torn,
            } => (None, offset, None, Some((reason, torn))),
        };
        if let Some((reason, torn)) = bad {
            return match r.find_checkpoint_after(offset)? {
                Some(size) => Err(JournalError::Corrupt {
                    seq: st.records,
                    reason: format!(
                        "{reason} at offset {offset}, before a valid checkpoint for size {size}"
                    ),
                    path,
                }),
                None if torn => Ok(true),
                None => Err(JournalError::Corrupt {
                    seq: st.committed,
                    reason: format!(
                        "{reason} at offset {offset} after the last valid checkpoint; this is damage, not an interrupted write (the file does not end inside the frame or in zero fill), so records from seq {} may have been acknowledged. Keep a copy of the segment and run `sealog verify` with any checkpoints or receipts clients hold",
                        st.committed
                    ),
                    path,
                }),
            };
        }
        let Some(header) = header else {
            return Ok(true);
        };
        match header.kind {
            FrameKind::Block => {
                blocks.push(BlockMeta {
                    first_seq: header.seq,
                    count: header.count,
                    min_time: header.min_time,
                    max_time: header.max_time,
                    segment: idx as u32,
                    body_offset: offset + FRAME_HEADER_LEN as u64,
                    body_len: header.body_len,
                    crc: header.body_crc,
                });
                st.records += u64::from(header.count);
            }
            FrameKind::Checkpoint => {
                let text = body
                    .as_deref()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or_else(|| JournalError::Corrupt {
                        seq: header.seq,
                        reason: "checkpoint note is not UTF-8".into(),
                        path: path.clone(),
                    })?;
                let cp = SignedCheckpoint::parse_unverified(text).map_err(|e| {
                    JournalError::Corrupt {
                        seq: header.seq,
                        reason: format!("checkpoint for size {}: {e}", header.seq),
                        path: path.clone(),
                    }
                })?;
                if cp.checkpoint.size != header.seq || cp.checkpoint.origin != verifier.name() {
                    return Err(JournalError::Corrupt {
                        seq: header.seq,
                        reason: "checkpoint note disagrees with its frame (size or origin)".into(),
                        path,
                    });
                }
                st.committed = st.records;
                st.committed_blocks = blocks.len();
                st.committed_end = Some((idx, r.position()));
                st.latest = Some(cp);
            }
        }
    }
}

fn has_checkpoint(path: &Path) -> Result<bool> {
    let mut r = FrameReader::open(path)?;
    Ok(r.find_checkpoint_after(SEGMENT_HEADER_LEN - 1)?.is_some())
}
