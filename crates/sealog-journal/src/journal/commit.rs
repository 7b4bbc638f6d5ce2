//! Sealing and committing, and recovering from a failed write.
//!
//! A commit writes its block frames, fdatasyncs, signs and writes one
//! checkpoint frame, fdatasyncs again, and only then publishes the batch
//! and returns its receipt. Any failure before the second fdatasync
//! returns poisons the journal: nothing is acknowledged, and
//! [`Journal::recover`] cuts the segment back to the last finished commit
//! (what was acknowledged) and, once a probe write and sync succeed, takes
//! writes again. Failures after the checkpoint is durable (the derived tree
//! hashes, the high-water mark) never fail the commit: they are logged and
//! repaired later, because the client's receipt is already true.

use std::time::{Duration, Instant};

use rayon::prelude::*;
use sealog_event::{LeafBuilder, MAX_EVENT_BYTES};

use super::{
    BlockMeta, CommittedEnd, EventRef, Journal, PreparedCommit, Receipt, SegmentFile, StagedCommit,
};
use crate::block::{self, MAX_BLOCK_RAW, MAX_BLOCK_RECORDS};
use crate::checkpoint::{origin_for, Checkpoint};
use crate::error::{JournalError, Result};
use crate::segment::{push_frame, FrameHeader, SegmentWriter, FRAME_HEADER_LEN};
use crate::sha256x8;
use crate::tree_file::{self, TILE_HEIGHT};

/// Bytes a recovery probe writes (and then cuts off) to see that the disk
/// takes writes again.
const PROBE_BYTES: usize = 64 * 1024;

/// Seals `events` into blocks as records `first_seq..`, stamped with
/// `received_at_ns`. Pure: runs on rayon's pool and touches no file.
///
/// # Errors
/// [`JournalError::EventTooLarge`] when an event is over
/// [`MAX_EVENT_BYTES`]: refused here, where blocks are built, so no ingest
/// path can store a record that readers would refuse.
pub fn prepare(
    realm: &str,
    first_seq: u64,
    events: &[EventRef<'_>],
    received_at_ns: i64,
    compression_level: i32,
) -> Result<PreparedCommit> {
    if let Some((index, e)) = events
        .iter()
        .enumerate()
        .find(|(_, e)| e.bytes.len() > MAX_EVENT_BYTES)
    {
        return Err(JournalError::EventTooLarge {
            index,
            len: e.bytes.len(),
            max: MAX_EVENT_BYTES,
        });
    }
    let builder = LeafBuilder::new(realm, received_at_ns);
    let blocks = block_cuts(events.iter().map(|e| e.bytes.len()))
        .into_par_iter()
        .map(|range| {
            let seq0 = first_seq + range.start as u64;
            let chunk = &events[range];
            let mut buf = Vec::with_capacity(chunk.iter().map(|e| e.bytes.len() + 96).sum());
            let mut hashes = Vec::with_capacity(chunk.len());
            let mut spans = Vec::with_capacity(chunk.len());
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for (i, e) in chunk.iter().enumerate() {
                let at = buf.len();
                builder.build(seq0 + i as u64, e.bytes, &mut buf);
                spans.push(at..buf.len());
                buf.push(b'\n');
                let t = e.time_ns.unwrap_or(received_at_ns);
                lo = lo.min(t);
                hi = hi.max(t);
            }
            // The leaf hashes, as one batch (several messages at once where
            // the CPU allows: `sha256x8`).
            sha256x8::hash_all(0, spans.iter().map(|r| &buf[r.clone()]), &mut hashes);
            let b = block::encode_raw(seq0, &buf, &hashes, (lo, hi), compression_level);
            (b, hashes)
        })
        .collect();
    Ok(PreparedCommit { first_seq, blocks })
}

/// How [`prepare`] cuts a batch of events of the given lengths into
/// blocks: at most [`MAX_BLOCK_RECORDS`] records, and at most
/// [`MAX_BLOCK_RAW`] counting each event and 96 bytes for the server's
/// fields. Returns each block's range of event indices, in order.
pub fn block_cuts(lens: impl IntoIterator<Item = usize>) -> Vec<std::ops::Range<usize>> {
    let mut cuts = Vec::new();
    let (mut start, mut raw, mut end) = (0usize, 0usize, 0usize);
    for (i, len) in lens.into_iter().enumerate() {
        let n = i - start;
        if n > 0 && (n >= MAX_BLOCK_RECORDS || raw + len > MAX_BLOCK_RAW) {
            cuts.push(start..i);
            start = i;
            raw = 0;
        }
        raw += len + 96;
        end = i + 1;
    }
    if start < end {
        cuts.push(start..end);
    }
    cuts
}

impl Journal {
    /// Seals and commits `events`; returns the receipt once durable.
    ///
    /// # Errors
    /// I/O errors (which poison the journal), an empty batch, an event over
    /// [`MAX_EVENT_BYTES`].
    pub fn append(&mut self, events: &[EventRef<'_>]) -> Result<Receipt> {
        let p = prepare(
            &self.realm,
            self.size(),
            events,
            sealog_event::now_ns(),
            self.opts.compression_level,
        )?;
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
            self.abort_commit(staged, &e);
            return Err(e);
        }
        let staged = self.stage_checkpoint(staged)?;
        if let Err(e) = staged.sync() {
            self.abort_commit(staged, &e);
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
        if self.poison.is_some() {
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
        match self.write_blocks(&p) {
            Ok((metas, handle)) => {
                let mut nodes = Vec::new();
                let mut frontier = self.frontier.clone();
                let leaves: Vec<_> = p
                    .blocks
                    .iter()
                    .flat_map(|(_, h)| h.iter().copied())
                    .collect();
                frontier.extend(&leaves, |height, index, hash| {
                    if height >= TILE_HEIGHT {
                        nodes.push((tree_file::position(height - TILE_HEIGHT, index), *hash));
                    }
                });
                // `extend` reports level by level; the tree file takes
                // nodes in the order they complete, which is position order.
                nodes.sort_unstable_by_key(|(pos, _)| *pos);
                self.staged = Some(p.first_seq);
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
            Err(e) => {
                self.poison_with(&e);
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn write_blocks(
        &mut self,
        p: &PreparedCommit,
    ) -> Result<(Vec<BlockMeta>, Option<crate::segment::SyncHandle>)> {
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
        let handle = if self.opts.durability == super::Durability::Fsync {
            Some(self.writer.sync_handle()?)
        } else {
            None
        };
        Ok((metas, handle))
    }

    /// Second step, after the blocks are synced: signs the checkpoint over
    /// the new tree and writes it.
    ///
    /// # Errors
    /// I/O errors (which poison the journal); a commit not staged here.
    pub fn stage_checkpoint(&mut self, mut s: StagedCommit) -> Result<StagedCommit> {
        self.check_staged(&s, false)?;
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
        if let Err(e) = self.writer.append(&cp_frame) {
            self.poison_with(&e);
            return Err(e);
        }
        s.signed = Some(signed);
        Ok(s)
    }

    /// Last step, after the checkpoint is synced: the batch becomes visible
    /// to readers and its receipt is returned. The commit is durable by
    /// now, so nothing here can fail it: a failure to write the derived
    /// tree hashes or the high-water mark is logged and repaired later.
    ///
    /// # Errors
    /// A commit not staged here or not through [`Journal::stage_checkpoint`].
    pub fn finish_commit(&mut self, s: StagedCommit) -> Result<Receipt> {
        self.check_staged(&s, true)?;
        let Some(signed) = s.signed else {
            return Err(JournalError::Batch("checkpoint not staged".into()));
        };
        self.blocks.extend(s.metas);
        self.frontier = s.frontier;
        self.staged = None;
        if !self.tree_degraded {
            if let Err(e) = self.tree.append(&s.nodes) {
                tracing::error!(realm = %self.realm, cause = %e, "tree hashes not written; proofs read the records until the journal is recovered or reopened");
                self.tree_degraded = true;
            } else if self.opts.durability == super::Durability::Fsync
                && self.tree_synced.elapsed() > Duration::from_secs(1)
            {
                if let Err(e) = self.tree.sync() {
                    tracing::warn!(realm = %self.realm, cause = %e, "tree hashes not synced; they are rebuilt on open if lost");
                }
                self.tree_synced = Instant::now();
            }
        }
        if let Err(e) = self
            .mark
            .record(&signed)
            .and_then(|_| self.mark.maybe_sync(false))
        {
            tracing::error!(realm = %self.realm, cause = %e, "high-water mark not updated; a rollback to before this commit would not be caught by the mark");
        }
        self.committed = CommittedEnd {
            segments: self.segments.len(),
            len: self.writer.len(),
            tree_entries: self.tree.entries(),
        };
        let receipt = Receipt {
            realm: self.realm.clone(),
            first_seq: s.first_seq,
            last_seq: s.first_seq + s.count - 1,
            count: s.count,
            checkpoint: signed.text.clone(),
        };
        self.latest = Some(signed);
        Ok(receipt)
    }

    /// Gives up a staged commit whose sync failed with `cause`. What it
    /// wrote may or may not be on disk, so the journal is poisoned until
    /// [`Journal::recover`] cuts it back to the last finished commit.
    pub fn abort_commit(&mut self, s: StagedCommit, cause: &JournalError) {
        drop(s);
        self.staged = None;
        self.poison_with(cause);
    }

    fn check_staged(&self, s: &StagedCommit, signed: bool) -> Result<()> {
        if self.poison.is_some() {
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

    pub(super) fn roll(&mut self) -> Result<()> {
        self.tree.sync()?;
        self.mark.maybe_sync(true)?;
        let w = SegmentWriter::create(&*self.fs, &self.dir, self.size())?;
        self.segments.push(SegmentFile {
            file: w.file(),
            path: w.path().to_path_buf(),
        });
        self.writer = w;
        Ok(())
    }

    /// Flushes the tree hash file and the high-water mark (called on clean
    /// shutdown and by the server once a second when idle).
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&mut self) -> Result<()> {
        if !self.tree_degraded {
            self.tree.sync()?;
        }
        self.mark.maybe_sync(true)
    }

    /// Syncs the high-water mark if a write to it is pending and the sync
    /// interval has passed (callers tick it while idle).
    ///
    /// # Errors
    /// I/O errors.
    pub fn flush_mark(&mut self) -> Result<()> {
        self.mark.maybe_sync(false)
    }

    /// Recovers a poisoned journal without a restart: drops an unfinished
    /// commit, removes segments created after the last finished commit,
    /// cuts the active segment back to it (nothing after it was ever
    /// acknowledged), then probes the disk with a write and a sync. Only
    /// when all of that succeeds does the journal take writes again. Also
    /// rebuilds tree hashes after a failure to write them.
    ///
    /// # Errors
    /// The I/O error that keeps it poisoned (e.g. the disk is still full).
    pub fn recover(&mut self) -> Result<()> {
        if self.poison.is_none() && !self.tree_degraded {
            return Ok(());
        }
        let result = self.try_recover();
        match &result {
            Ok(()) => {
                if let Some(p) = self.poison.take() {
                    tracing::info!(realm = %self.realm, size = self.size(), was = %p.cause, "journal recovered; taking writes again");
                }
            }
            Err(e) => {
                if self.poison.is_some() {
                    self.poison_with(e);
                }
            }
        }
        result
    }

    fn try_recover(&mut self) -> Result<()> {
        self.staged = None;
        let end = self.committed;
        if self.poison.is_some() {
            self.segments.truncate(end.segments);
            // Segments on disk past the committed ones (a roll that failed
            // half-way, or succeeded for a commit that did not) hold
            // nothing acknowledged.
            let keep: Vec<_> = self.segments.iter().map(|s| s.path.clone()).collect();
            let mut removed = false;
            for (_, path) in crate::segment::list_segments(&*self.fs, &self.dir)? {
                if keep.contains(&path) {
                    continue;
                }
                match self.fs.remove_file(&path) {
                    Ok(()) => removed = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(JournalError::io("remove", path)(e)),
                }
                tracing::warn!(realm = %self.realm, path = %path.display(), "removed a segment holding nothing acknowledged");
            }
            if removed {
                self.fs
                    .sync_dir(&self.dir)
                    .map_err(JournalError::io("fsync directory", self.dir.clone()))?;
            }
            let last = self.segments.last().expect("a journal has a segment");
            if self.writer.path() != last.path {
                let first = crate::segment::list_segments(&*self.fs, &self.dir)?
                    .into_iter()
                    .find(|(_, p)| *p == last.path)
                    .map(|(seq, _)| seq)
                    .ok_or_else(|| JournalError::Format {
                        path: last.path.clone(),
                        reason: "committed segment is missing".into(),
                    })?;
                self.writer = SegmentWriter::reopen(&*self.fs, &last.path, first, end.len)?;
            }
            // The probe: write past the end, sync, cut back, sync.
            let file = self.writer.file();
            let path = self.writer.path().to_path_buf();
            file.write_at(&vec![0u8; PROBE_BYTES], end.len)
                .and_then(|_| file.sync_data())
                .map_err(JournalError::io("probe write", &path))?;
            self.writer.truncate_to(end.len)?;
        }
        if self.tree_degraded {
            self.tree
                .truncate(end.tree_entries.min(self.tree.entries()))?;
            let size = self.size();
            self.recover_tree(size)?;
            self.tree_degraded = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_cut_by_count_then_by_size() {
        assert!(block_cuts(std::iter::empty()).is_empty());
        assert_eq!(
            block_cuts(std::iter::repeat_n(100, 2500)),
            vec![0..1024, 1024..2048, 2048..2500]
        );
        // 4,000-byte events count 4,096 each: 128 fill 512 KiB exactly.
        let big = block_cuts(std::iter::repeat_n(4000, 300));
        assert_eq!(big, vec![0..128, 128..256, 256..300]);
        // One event over the size limit still gets a block of its own.
        assert_eq!(
            block_cuts([10, MAX_BLOCK_RAW + 1, 10]),
            vec![0..1, 1..2, 2..3]
        );
    }
}
