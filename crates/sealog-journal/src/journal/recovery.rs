//! Opening a journal: recovery from a crash, and the checks that refuse
//! a journal that was cut, rolled back or rewritten.
//!
//! Recovery reads every frame header of every segment (block bodies are
//! checked lazily and by the verifiers). The committed end is the end of
//! the last valid checkpoint frame; a torn tail after it was never
//! acknowledged and is cut off with a log line, and so is a last segment
//! whose creation was interrupted. Damage before it is an error naming the
//! seq. Before anything is cut, the result is compared with the realm's
//! signed high-water mark ([`crate::mark`]): a journal that ends before the
//! mark, or whose records do not hash to the mark's root, is refused and
//! nothing on disk is touched.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::{BlockMeta, CommittedEnd, Journal, JournalOptions, SegmentFile};
use crate::checkpoint::{origin_for, SignedCheckpoint, Signer, VerifierKey};
use crate::error::{JournalError, Result};
use crate::fs::{OpenHow, Vfs};
use crate::mark::{self, MarkFile};
use crate::merkle::{Frontier, Hash};
use crate::segment::{
    list_segments, probe_header, FrameKind, FrameRead, FrameReader, HeaderState, SegmentWriter,
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::tree_file::{self, TreeFile, TILE_HEIGHT, TILE_LEAVES};

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
    /// Opens the journal in `dir` on the real filesystem, creating it if
    /// the directory is empty. See [`Journal::open_in`].
    ///
    /// # Errors
    /// As [`Journal::open_in`].
    pub fn open(dir: &Path, realm: &str, signer: Signer, opts: JournalOptions) -> Result<Self> {
        Self::open_in(crate::fs::real(), dir, realm, signer, opts)
    }

    /// Opens the journal in `dir` on `fs` (creating it if empty),
    /// recovering from a crash: a torn tail after the last checkpoint is
    /// cut off and logged; damage before it is an error; a journal behind
    /// or at odds with its signed high-water mark is refused untouched.
    ///
    /// # Errors
    /// [`JournalError::Corrupt`] for damaged committed data,
    /// [`JournalError::Rollback`] and [`JournalError::Fork`] against the
    /// mark, format and I/O errors.
    pub fn open_in(
        fs: Arc<dyn Vfs>,
        dir: &Path,
        realm: &str,
        signer: Signer,
        opts: JournalOptions,
    ) -> Result<Self> {
        crate::fs::create_dir_all_durable(&*fs, dir).map_err(JournalError::io("create", dir))?;
        let verifier = signer.verifier();
        if verifier.name() != origin_for(realm) {
            return Err(JournalError::Batch(format!(
                "signing key is named {:?}, not {:?}",
                verifier.name(),
                origin_for(realm)
            )));
        }
        let marked = mark::read(&*fs, dir, &verifier)?;
        if marked.is_none() && opts.require_mark {
            return Err(JournalError::Missing {
                what: "the realm's high-water mark (head.mark)",
                path: dir.join(mark::MARK_FILE),
            });
        }
        let mut listed = list_segments(&*fs, dir)?;
        // A last segment whose creation was interrupted before its header
        // was durable never held a frame.
        let mut torn_create = None;
        if let Some((_, path)) = listed.last() {
            match probe_header(&*fs, path)? {
                HeaderState::Valid(_) => {}
                HeaderState::Torn => {
                    torn_create = listed.pop().map(|(_, p)| p);
                }
                HeaderState::Damaged(reason) => {
                    return Err(JournalError::Corrupt {
                        seq: listed.last().map_or(0, |(s, _)| *s),
                        reason: format!("segment header: {reason}"),
                        path: path.clone(),
                    })
                }
            }
        }
        let mut blocks = Vec::new();
        let mut st = ScanState::default();
        for (idx, (name_seq, path)) in listed.iter().enumerate() {
            let mut r = FrameReader::open(&*fs, path)?;
            if r.first_seq() != *name_seq || r.first_seq() != st.records {
                let reason = if r.first_seq() != *name_seq {
                    format!(
                        "segment file is named for seq {name_seq} but its header says it starts at seq {}",
                        r.first_seq()
                    )
                } else {
                    format!(
                        "segment starts at seq {} but the journal before it ends at {}",
                        r.first_seq(),
                        st.records
                    )
                };
                return Err(JournalError::Corrupt {
                    seq: st.records,
                    reason,
                    path: path.clone(),
                });
            }
            if st.committed_end.is_none() && idx == 0 {
                st.committed_end = Some((0, SEGMENT_HEADER_LEN));
            }
            let torn = scan_segment(&mut r, idx, &verifier, &mut blocks, &mut st)?;
            if torn && idx + 1 < listed.len() {
                let next = &listed[idx + 1].1;
                if st.committed_end.is_some_and(|(s, _)| s < idx) || has_checkpoint(&*fs, next)? {
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
        // Refuse a journal behind its mark before touching anything.
        if let Some(m) = &marked {
            if st.committed < m.size() {
                return Err(JournalError::Rollback {
                    size: st.committed,
                    marked: m.size(),
                    path: dir.to_path_buf(),
                });
            }
        }
        // A segment with no durable header never held a frame; it goes
        // now (a new first segment may need its name).
        if let Some(path) = torn_create {
            tracing::warn!(path = %path.display(), "removing a segment whose creation was interrupted (no header, nothing written)");
            fs.remove_file(&path)
                .map_err(JournalError::io("remove", &path))?;
            fs.sync_dir(dir)
                .map_err(JournalError::io("fsync directory", dir))?;
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
        let writer = match listed.get(end_seg) {
            Some((seq, path)) => {
                let actual = fs
                    .open(path, OpenHow::Read)
                    .and_then(|f| f.len())
                    .map_err(JournalError::io("stat", path))?;
                if actual > end_off {
                    tracing::warn!(
                        path = %path.display(),
                        bytes = actual - end_off,
                        "truncated torn tail"
                    );
                }
                // Cut later, once the mark checks pass: a refused journal
                // is left exactly as found.
                SegmentWriter::open_at(&*fs, path, *seq, end_off)?
            }
            None => SegmentWriter::create(&*fs, dir, 0)?,
        };
        let mut segments = Vec::new();
        for (_, path) in listed.iter().take(end_seg + 1) {
            let file = if path == writer.path() {
                writer.file()
            } else {
                fs.open(path, OpenHow::Read)
                    .map_err(JournalError::io("open", path))?
            };
            segments.push(SegmentFile {
                file,
                path: path.clone(),
            });
        }
        if segments.is_empty() {
            segments.push(SegmentFile {
                file: writer.file(),
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
        let tree = TreeFile::open(&*fs, &dir.join("tree.hashes"))?;
        let mark = match &marked {
            Some(m) => MarkFile::open(&*fs, dir, m)?,
            None => {
                if st.committed > 0 {
                    tracing::warn!(
                        realm,
                        size = st.committed,
                        "journal has no high-water mark (made before marks existed, or deleted); starting one at its last checkpoint"
                    );
                }
                let signed = match &st.latest {
                    Some(cp) => cp.clone(),
                    // A new journal's mark: the empty tree, signed.
                    None => signer.sign(&crate::checkpoint::Checkpoint {
                        origin: origin_for(realm),
                        size: 0,
                        root: crate::merkle::empty_root(),
                    }),
                };
                MarkFile::create(&*fs, dir, &signed)?
            }
        };
        let committed = CommittedEnd {
            segments: segments.len(),
            len: writer.len(),
            tree_entries: 0,
        };
        let mut j = Self {
            fs,
            dir: dir.to_path_buf(),
            realm: realm.to_string(),
            signer,
            verifier,
            opts,
            segments,
            writer,
            blocks,
            tree,
            tree_degraded: false,
            mark,
            frontier: Frontier::new(),
            latest: st.latest,
            poison: None,
            committed,
            staged: None,
            tree_synced: Instant::now(),
        };
        if let Err(e) = j.recover_tree(st.committed) {
            // Tree hashes are derived data: a full disk must not keep the
            // journal from opening (after a power loss, say). Proofs read
            // the records until `recover()` or a later open rebuilds them.
            if !e.is_storage_full() {
                return Err(e);
            }
            tracing::error!(realm, cause = %e, "tree hashes not rebuilt: the disk is full; proofs read the records until the journal is recovered or reopened");
            j.tree_degraded = true;
        }
        j.committed.tree_entries = j.tree.entries();
        if let Some(cp) = marked.as_ref().and_then(|m| m.signed.as_ref()) {
            if j.root_at(cp.checkpoint.size)? != cp.checkpoint.root {
                return Err(JournalError::Fork {
                    size: cp.checkpoint.size,
                    path: j.dir.clone(),
                });
            }
        }
        // The journal agrees with its mark: now cut what was never
        // acknowledged.
        // Segments after the committed one hold nothing acknowledged.
        let mut removed = false;
        for (_, path) in listed.iter().skip(end_seg + 1) {
            tracing::warn!(path = %path.display(), "removing segment with no committed records");
            j.fs.remove_file(path)
                .map_err(JournalError::io("remove", path))?;
            removed = true;
        }
        if removed {
            j.fs.sync_dir(dir)
                .map_err(JournalError::io("fsync directory", dir))?;
        }
        j.writer.truncate_to(end_off)?;
        if let Some(latest) = j.latest.clone() {
            if marked
                .as_ref()
                .is_some_and(|m| m.size() < latest.checkpoint.size)
            {
                // The checkpoint is durable in the segment; on a full disk
                // the mark catches up with a later commit.
                if let Err(e) = j.mark.record(&latest).and_then(|_| j.mark.maybe_sync(true)) {
                    if !e.is_storage_full() {
                        return Err(e);
                    }
                    tracing::error!(realm, cause = %e, "high-water mark not brought up to the last checkpoint: the disk is full");
                }
            }
        }
        Ok(j)
    }

    /// Rebuilds the frontier and the stored tree hashes for `size` records,
    /// keeping the valid prefix of `tree.hashes`, and checks the result
    /// against the last checkpoint.
    pub(super) fn recover_tree(&mut self, size: u64) -> Result<()> {
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
            for (_, h, leaf) in j.read_items(base, size)? {
                let on_node = |height: u32, index: u64, hash: &Hash| {
                    if height >= TILE_HEIGHT {
                        nodes.push((tree_file::position(height - TILE_HEIGHT, index), *hash));
                    }
                };
                if h == 0 {
                    frontier.push(leaf, on_node);
                } else {
                    frontier.push_subtree(h, leaf, on_node)?;
                }
            }
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
        // The tree is known from here on; only the derived file is left
        // to write.
        self.frontier = frontier;
        self.tree
            .truncate(tree_file::entries_for_tiles(from_tiles))?;
        self.tree.append(&nodes)?;
        self.tree.sync()?;
        Ok(())
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

fn has_checkpoint(fs: &dyn Vfs, path: &Path) -> Result<bool> {
    let mut r = FrameReader::open(fs, path)?;
    Ok(r.find_checkpoint_after(SEGMENT_HEADER_LEN - 1)?.is_some())
}
