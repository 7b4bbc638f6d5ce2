//! Retention runs on an open journal (see [`crate::retention`] for the
//! format and the argument).

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;
use sealog_event::leaf_time;

use super::{BlockMeta, Journal};
use crate::block::RetainedRun;
use crate::block::{self, DecodedBlock};
use crate::error::{JournalError, Result};
use crate::fs::OpenHow;
use crate::merkle::{self, Hash};
use crate::retention::{
    append_note, read_notes, Notes, Outcome, Policy, RetentionRecord, SignedRetention,
    RETENTION_FILE, TMP_SUFFIX,
};
use crate::segment::{push_frame, FrameHeader, FrameKind, FrameRead, FrameReader};

/// Removals planned for one block: (index, record time) ascending.
type BlockPlan = Vec<(u32, i64)>;

impl Journal {
    /// The retention records of this journal.
    ///
    /// # Errors
    /// I/O errors.
    pub fn retention_records(&self) -> Result<Notes> {
        read_notes(&*self.fs, &self.dir, &self.realm, &self.verifier)
    }

    /// Removes the bodies of the committed records `policy` selects, keeping
    /// their leaf hashes, after signing and syncing a retention record (see
    /// the module docs). Refused while a commit is staged or the journal is
    /// poisoned. With `dry_run` nothing is written.
    ///
    /// # Errors
    /// I/O errors (a failure part-way leaves each segment whole, old or new;
    /// the journal should then be reopened).
    pub fn retain(&mut self, policy: &Policy<'_>, now_ns: i64, dry_run: bool) -> Result<Outcome> {
        if self.poison.is_some() {
            return Err(JournalError::Poisoned);
        }
        if self.staged.is_some() {
            return Err(JournalError::Batch(
                "a commit is in progress; retention waits for it".into(),
            ));
        }
        if policy.cutoff_ns > now_ns {
            return Err(JournalError::Batch(
                "a retention cutoff cannot be in the future".into(),
            ));
        }
        let bytes_before = self.segment_bytes()?;
        let plans = self.plan_retention(policy)?;
        let ranges = to_ranges(&self.blocks, &plans);
        let removed: u64 = ranges.iter().map(|(a, b)| b - a).sum();
        let mut out = Outcome {
            removed,
            ranges,
            bytes_before,
            bytes_after: bytes_before,
            ..Outcome::default()
        };
        if dry_run || removed == 0 {
            return Ok(out);
        }
        self.clean_retain_leftovers()?;
        // Records in the segment being appended to move out of its way.
        let last_seg = self.segments.len() - 1;
        if plans
            .keys()
            .any(|&b| self.blocks[b].segment as usize == last_seg)
        {
            self.roll()?;
            self.committed.segments = self.segments.len();
            self.committed.len = self.writer.len();
        }
        let notes = self.retention_records()?;
        if let Some(p) = notes.problems.first() {
            return Err(JournalError::Format {
                path: self.dir.join(RETENTION_FILE),
                reason: format!("refusing to add a retention record: {p}"),
            });
        }
        let id = notes.records.iter().map(|s| s.record.id).max().unwrap_or(0) + 1;
        let record = RetentionRecord {
            id,
            at_ns: now_ns,
            size: self.size(),
            policy: policy.description.clone(),
            cutoff_ns: policy.cutoff_ns,
            removed,
            ranges: out.ranges.clone(),
        };
        let text = self.signer.sign_note(&record.body(&self.realm));
        let signed = SignedRetention { record, text };
        append_note(&*self.fs, &self.dir, notes.valid_len, &signed)?;
        // Rewrite each affected segment.
        let mut by_segment: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for &b in plans.keys() {
            by_segment
                .entry(self.blocks[b].segment)
                .or_default()
                .push(b);
        }
        for (seg, blocks) in by_segment {
            self.rewrite_segment(seg, &blocks, &plans, id)?;
            out.segments_rewritten += 1;
        }
        out.bytes_after = self.segment_bytes()?;
        out.record = Some(signed);
        tracing::info!(
            realm = %self.realm,
            id,
            removed,
            bytes_before,
            bytes_after = out.bytes_after,
            policy = %policy.description,
            "retention removed record bodies; leaf hashes and a signed retention record kept"
        );
        Ok(out)
    }

    fn segment_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for s in &self.segments {
            total += s.file.len().map_err(JournalError::io("stat", &s.path))?;
        }
        Ok(total)
    }

    /// For each block with records to remove: their indexes and times.
    fn plan_retention(&self, policy: &Policy<'_>) -> Result<BTreeMap<usize, BlockPlan>> {
        let candidates: Vec<usize> = (0..self.blocks.len())
            .filter(|&i| self.blocks[i].min_time < policy.cutoff_ns)
            .collect();
        let planned: Vec<Result<Option<(usize, BlockPlan)>>> = candidates
            .par_iter()
            .map(|&i| {
                let d = self.read_block(i)?;
                let plan = plan_block(&d, policy);
                Ok((!plan.is_empty()).then_some((i, plan)))
            })
            .collect();
        let mut plans = BTreeMap::new();
        for p in planned {
            if let Some((i, plan)) = p? {
                plans.insert(i, plan);
            }
        }
        Ok(plans)
    }

    fn clean_retain_leftovers(&self) -> Result<()> {
        let names = self
            .fs
            .list(&self.dir)
            .map_err(JournalError::io("list", &self.dir))?;
        for name in names.iter().filter(|n| n.ends_with(TMP_SUFFIX)) {
            let path = self.dir.join(name);
            tracing::warn!(path = %path.display(), "removing a segment rewrite that an interrupted retention run left");
            self.fs
                .remove_file(&path)
                .map_err(JournalError::io("remove", &path))?;
        }
        Ok(())
    }

    /// Writes segment `seg` anew with the planned records of `blocks`
    /// removed (their subtrees kept), then renames it over the original.
    fn rewrite_segment(
        &mut self,
        seg: u32,
        blocks: &[usize],
        plans: &BTreeMap<usize, BlockPlan>,
        id: u64,
    ) -> Result<()> {
        let path = self.segments[seg as usize].path.clone();
        let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", path.display()));
        let by_first: BTreeMap<u64, usize> = blocks
            .iter()
            .map(|&b| (self.blocks[b].first_seq, b))
            .collect();
        let mut r = FrameReader::from_file(self.segments[seg as usize].file.clone(), &path)?;
        let mut bytes = Vec::with_capacity(r.file_len() as usize);
        bytes.extend_from_slice(&crate::segment::segment_header(r.first_seq()));
        // (block index in self.blocks, body offset, body len, crc)
        let mut moved: Vec<(u64, u64, u32, u32)> = Vec::new();
        loop {
            match r.next_frame(true)? {
                FrameRead::End => break,
                FrameRead::Bad { offset, reason, .. } => {
                    // Only committed frames are rewritten: recovery already
                    // cut anything else, so this is damage.
                    if offset >= self.committed_len_of(seg) {
                        break;
                    }
                    return Err(JournalError::Corrupt {
                        seq: 0,
                        reason: format!("segment frame at offset {offset}: {reason}; retention refuses to rewrite a damaged segment (run `sealog verify`)"),
                        path,
                    });
                }
                FrameRead::Frame { header, body, .. } => {
                    let body = body.unwrap_or_default();
                    match (header.kind, by_first.get(&header.seq)) {
                        (FrameKind::Block, Some(&b)) => {
                            let d = block::decode(&body, header.count, header.body_crc).map_err(
                                |e| JournalError::Corrupt {
                                    seq: header.seq,
                                    reason: format!("block: {e}"),
                                    path: path.clone(),
                                },
                            )?;
                            let enc = rebuild_block(
                                &header,
                                &d,
                                &plans[&b],
                                id,
                                self.opts.compression_level,
                            );
                            let h = FrameHeader::for_block(&enc);
                            moved.push((
                                header.seq,
                                (bytes.len() + crate::segment::FRAME_HEADER_LEN) as u64,
                                h.body_len,
                                enc.crc,
                            ));
                            push_frame(&mut bytes, &h, &enc.body);
                        }
                        (FrameKind::Block, None) => {
                            moved.push((
                                header.seq,
                                (bytes.len() + crate::segment::FRAME_HEADER_LEN) as u64,
                                header.body_len,
                                header.body_crc,
                            ));
                            push_frame(&mut bytes, &header, &body);
                        }
                        (FrameKind::Checkpoint, _) => push_frame(&mut bytes, &header, &body),
                    }
                }
            }
        }
        let file = self
            .fs
            .open(&tmp, OpenHow::CreateTruncate { mode: 0o644 })
            .map_err(JournalError::io("create", &tmp))?;
        file.write_at(&bytes, 0)
            .and_then(|_| file.sync_all())
            .map_err(JournalError::io("write", &tmp))?;
        drop(file);
        self.fs
            .rename(&tmp, &path)
            .map_err(JournalError::io("rename", &tmp))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(JournalError::io("fsync directory", &self.dir))?;
        let file = self
            .fs
            .open(&path, OpenHow::Read)
            .map_err(JournalError::io("open", &path))?;
        self.segments[seg as usize].file = file;
        for (first, off, len, crc) in moved {
            if let Ok(i) = self.blocks.binary_search_by_key(&first, |m| m.first_seq) {
                let m = &mut self.blocks[i];
                m.body_offset = off;
                m.body_len = len;
                m.crc = crc;
            }
        }
        Ok(())
    }

    fn committed_len_of(&self, seg: u32) -> u64 {
        if seg as usize + 1 == self.committed.segments {
            self.committed.len
        } else {
            u64::MAX
        }
    }
}

fn plan_block(d: &DecodedBlock, policy: &Policy<'_>) -> BlockPlan {
    let mut plan = Vec::new();
    for i in 0..d.len() {
        if d.is_retained(i) {
            continue;
        }
        let line = d.line(i);
        let Some(t) = leaf_time(line) else { continue };
        if t >= policy.cutoff_ns {
            continue;
        }
        if (policy.select)(line) {
            plan.push((i as u32, t));
        }
    }
    plan
}

/// The block with the planned records removed: empty lines in the
/// payload, and per run of them the perfect subtrees that tile it.
fn rebuild_block(
    header: &FrameHeader,
    d: &DecodedBlock,
    plan: &BlockPlan,
    id: u64,
    level: i32,
) -> block::EncodedBlock {
    let planned: std::collections::HashMap<u32, i64> = plan.iter().copied().collect();
    // The tree's items per record index, runs already removed included.
    let mut raw = Vec::with_capacity(d.len() * 64);
    let mut live = Vec::new();
    let mut runs: Vec<RetainedRun> = Vec::new();
    let mut old_runs = d.runs().iter().peekable();
    let mut i = 0usize;
    // A new run is gathered as (start, leaf hashes, max time) until it ends.
    let mut open: Option<(u32, Vec<Hash>, i64)> = None;
    let close = |open: &mut Option<(u32, Vec<Hash>, i64)>, runs: &mut Vec<RetainedRun>| {
        if let Some((start, hashes, max_time)) = open.take() {
            let first = header.seq + u64::from(start);
            let pieces = block::pieces_of(first, first + hashes.len() as u64)
                .into_iter()
                .map(|(at, h)| {
                    let from = (at - first) as usize;
                    (h, merkle::root_of(&hashes[from..from + (1usize << h)]))
                })
                .collect();
            runs.push(RetainedRun {
                start,
                len: hashes.len() as u32,
                id,
                max_time,
                pieces,
            });
        }
    };
    while i < d.len() {
        if let Some(r) = old_runs.peek().filter(|r| r.start as usize == i) {
            close(&mut open, &mut runs);
            raw.extend(std::iter::repeat_n(b'\n', r.len as usize));
            i += r.len as usize;
            runs.push((*r).clone());
            old_runs.next();
            continue;
        }
        let line = d.line(i);
        let hash = merkle::leaf_hash(line);
        match planned.get(&(i as u32)) {
            Some(t) => {
                let o = open.get_or_insert_with(|| (i as u32, Vec::new(), i64::MIN));
                o.1.push(hash);
                o.2 = o.2.max(*t);
            }
            None => {
                close(&mut open, &mut runs);
                raw.extend_from_slice(line);
                live.push(hash);
            }
        }
        raw.push(b'\n');
        i += 1;
    }
    close(&mut open, &mut runs);
    block::encode_retained(
        header.seq,
        &raw,
        &live,
        &runs,
        (header.min_time, header.max_time),
        level,
    )
}

fn to_ranges(blocks: &[BlockMeta], plans: &BTreeMap<usize, BlockPlan>) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (&b, plan) in plans {
        let first = blocks[b].first_seq;
        for (i, _) in plan {
            let seq = first + u64::from(*i);
            match ranges.last_mut() {
                Some(r) if r.1 == seq => r.1 = seq + 1,
                _ => ranges.push((seq, seq + 1)),
            }
        }
    }
    ranges
}
