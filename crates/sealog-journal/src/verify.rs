//! The offline verifier: reads a realm's segment files directly (no journal
//! is opened, nothing is repaired or written) and checks them against the
//! realm's public key.
//!
//! It checks every frame and block checksum; that every record sits at the
//! seq it claims and names the realm; each leaf hash against the hint stored
//! with it; every checkpoint's signature, size and root against the tree
//! recomputed from the records; the stored interior hashes; and, given
//! checkpoints or receipts a client kept, that the log still contains and
//! agrees with everything they cover.
//!
//! Precision: a structural change (deleted, inserted, reordered records) and
//! an edit that left the leaf-hash hints alone are named at the exact seq.
//! A raw damaged byte is named at the block it falls in (or the exact record
//! when the block still decompresses). An attacker who rewrites records,
//! hints and tree hashes consistently is still caught, because no one can
//! re-sign the checkpoints: the verifier then names the first seq after the
//! last checkpoint that still matches.

use std::fmt;
use std::path::Path;

use rayon::prelude::*;
use sealog_event::{leaf_prefix, leaf_seq};

use crate::block::{self, BlockError};
use crate::checkpoint::VerifierKey;
use crate::error::{JournalError, Result};
use crate::journal::Receipt;
use crate::merkle::{empty_root, leaf_hash, Frontier, Hash};
use crate::segment::{list_segments, FrameHeader, FrameKind, FrameRead, FrameReader};
use crate::tree_file::{self, TILE_HEIGHT};

/// One problem found, located by seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The first seq affected.
    pub seq: u64,
    /// The end of the affected range (exclusive), when it is a range.
    pub end: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) if end > self.seq.saturating_add(1) => {
                write!(
                    f,
                    "seq {} (range {}..{}): {}",
                    self.seq, self.seq, end, self.reason
                )
            }
            _ => write!(f, "seq {}: {}", self.seq, self.reason),
        }
    }
}

/// What the verifier was given besides the files.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Signed checkpoint notes a client kept.
    pub checkpoints: Vec<String>,
    /// Receipts a client kept.
    pub receipts: Vec<Receipt>,
    /// True when the journal must have a high-water mark (every realm
    /// created with its journal): a missing mark is then a finding.
    pub require_mark: bool,
}

/// The verifier's result.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Records read (including any unacknowledged tail).
    pub records: u64,
    /// Records covered by the last valid checkpoint.
    pub committed: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Client checkpoints and receipts checked.
    pub evidence: u64,
    /// Problems, sorted by seq.
    pub findings: Vec<Finding>,
    /// Remarks that are not failures (e.g. an unacknowledged torn tail).
    pub notes: Vec<String>,
    /// Records whose bodies were removed by retention, by retention record.
    pub retained: Vec<RetainedOut>,
}

/// The records one retention record removed, as found in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedOut {
    /// The retention record's id.
    pub id: u64,
    /// Its policy text.
    pub policy: String,
    /// When it was made, ns.
    pub at_ns: i64,
    /// Tombstones found, as half-open seq ranges.
    pub ranges: Vec<(u64, u64)>,
    /// Records in those ranges.
    pub records: u64,
}

impl fmt::Display for RetainedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .ranges
            .iter()
            .take(5)
            .map(|(a, b)| format!("{a}..{b}"))
            .collect();
        let more = if self.ranges.len() > 5 {
            format!(" and {} more ranges", self.ranges.len() - 5)
        } else {
            String::new()
        };
        write!(
            f,
            "retained out: {} records (seqs {}{more}) by retention record {} made {} under policy \"{}\"",
            self.records,
            shown.join(", "),
            self.id,
            sealog_event::format_rfc3339_nanos(self.at_ns),
            self.policy
        )
    }
}

impl Report {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The first bad seq, if any.
    pub fn first_bad(&self) -> Option<&Finding> {
        self.findings.first()
    }
}

enum Item {
    Block(FrameHeader, Vec<u8>),
    Checkpoint(FrameHeader, Vec<u8>),
}

struct BlockResult {
    /// The tree's items: `(height, hash)`, leaves and kept subtrees.
    items: Vec<(u32, Hash)>,
    findings: Vec<Finding>,
    /// Runs of removed records: (first seq, end seq, retention record id).
    retained: Vec<(u64, u64, u64)>,
    /// Runs naming a retention record not (yet) read: judged at the end
    /// against the notes read again, since a run in progress appends its
    /// record before it rewrites segments.
    pending: Vec<(u64, u64, block::RetainedRun)>,
}

/// Verifies the journal in `dir` for `realm` with `key`. `progress` is
/// called with the number of records checked so far.
///
/// # Errors
/// Only I/O errors that stop reading; everything wrong with the data is a
/// [`Finding`] in the report.
pub fn verify_dir(
    dir: &Path,
    realm: &str,
    key: &VerifierKey,
    evidence: &Evidence,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report> {
    let mut mark_note = None;
    // The mark: a checkpoint the realm signed, kept apart from the
    // segments, so a journal cut back or rolled back fails verification.
    let (mark, mark_problem) = match crate::mark::read(&crate::fs::RealFs, dir, key) {
        Ok(Some(m)) => {
            if m.damaged_slot {
                mark_note = Some(
                    "one of the two high-water mark slots is damaged: expected only after a power loss while it was written; otherwise the mark was tampered with".to_string(),
                );
            }
            // Even the empty tree's mark is checked: a size-0 checkpoint with
            // another root is a statement recovery refuses too.
            (m.signed.map(|s| s.text), None)
        }
        Ok(None) if evidence.require_mark => (
            None,
            Some(format!(
                "{}: the realm's high-water mark is missing (deleted with the journal?)",
                dir.join(crate::mark::MARK_FILE).display()
            )),
        ),
        Ok(None) => (None, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let retention = crate::retention::read_notes(&crate::fs::RealFs, dir, realm, key)?;
    let mut v = Verifier::new(realm, key, evidence, mark, &retention);
    for p in &retention.problems {
        v.finding(0, None, p.clone());
    }
    if retention.torn_tail {
        v.report.notes.push(format!(
            "{}: ends in a partial entry: a retention run interrupted before it removed anything",
            dir.join(crate::retention::RETENTION_FILE).display()
        ));
    }
    if let Some(problem) = mark_problem {
        v.finding(0, None, problem);
    }
    if let Some(n) = mark_note {
        v.report.notes.push(n);
    }
    let segments = list_segments(&crate::fs::RealFs, dir)?;
    'segments: for (idx, (name_seq, path)) in segments.iter().enumerate() {
        let mut r = match FrameReader::open(&crate::fs::RealFs, path) {
            Ok(r) => r,
            Err(JournalError::Format { reason, .. }) => {
                v.finding(
                    v.queued_records,
                    None,
                    format!("{}: {reason}", path.display()),
                );
                break;
            }
            Err(e) => return Err(e),
        };
        if r.first_seq() != v.queued_records {
            v.finding(
                v.queued_records,
                None,
                format!(
                    "segment {} starts at seq {} but {} records precede it",
                    path.display(),
                    r.first_seq(),
                    v.queued_records
                ),
            );
            break;
        }
        if r.first_seq() != *name_seq {
            // Recovery refuses such a segment; its frames are still checked.
            v.finding(
                v.queued_records,
                None,
                format!(
                    "segment {} is named for seq {name_seq} but its header says it starts at seq {}",
                    path.display(),
                    r.first_seq()
                ),
            );
        }
        loop {
            match r.next_frame(true)? {
                FrameRead::End => break,
                FrameRead::Frame { header, body, .. } => {
                    let body = body.unwrap_or_default();
                    match header.kind {
                        FrameKind::Block => v.queue_block(header, body),
                        FrameKind::Checkpoint => v.queue.push(Item::Checkpoint(header, body)),
                    }
                    if v.queue.len() >= 256 {
                        v.flush(progress);
                    }
                }
                FrameRead::Bad {
                    offset,
                    reason,
                    torn,
                } => {
                    let last = idx + 1 == segments.len();
                    match r.find_checkpoint_after(offset)? {
                        None if last && torn => v.report.notes.push(format!(
                            "{}: {reason} at offset {offset} after the last checkpoint: an interrupted write that was never acknowledged",
                            path.display()
                        )),
                        _ => v.finding(
                            v.last_cp.min(v.queued_records),
                            Some(v.queued_records.max(v.last_cp.saturating_add(1))),
                            format!(
                                "{}: damaged frame at offset {offset}: {reason} (not an interrupted write)",
                                path.display()
                            ),
                        ),
                    }
                    break 'segments;
                }
            }
        }
    }
    v.flush(progress);
    if !v.pending.is_empty() {
        let late = crate::retention::read_notes(&crate::fs::RealFs, dir, realm, key)?;
        v.judge_pending(late);
    }
    v.check_tree_file(&dir.join("tree.hashes"));
    Ok(v.finish())
}

/// The interior tree hashes a store other than segment files keeps.
#[allow(missing_debug_implementations)]
pub struct StoredNodes<'a> {
    /// The stored hash at a tree file position, `None` when not stored.
    pub get: &'a mut dyn FnMut(u64) -> Result<Option<Hash>>,
    /// How many the store holds in all.
    pub count: usize,
}

/// A block or checkpoint of a log kept somewhere other than segment files
/// (the PostgreSQL store), in log order.
#[derive(Debug)]
pub enum StoredFrame {
    /// A sealed block as stored: its header fields and body.
    Block(crate::block::EncodedBlock),
    /// A stored row that cannot be a block or checkpoint at all (a count
    /// or checksum out of range): reported, and nothing after it is read.
    Damaged {
        /// What is wrong, and where.
        reason: String,
    },
    /// A signed checkpoint note for the tree of `size` records.
    Checkpoint {
        /// The tree size the store files it under.
        size: u64,
        /// The note.
        text: String,
    },
}

/// Verifies a log read from another store: the same checks as
/// [`verify_dir`] on every block and checkpoint `frames` yields (blocks in
/// seq order, each checkpoint after the blocks it covers), `mark` as the
/// realm's signed high-water mark, and `node` giving the stored interior
/// hash at a tree file position ([`crate::tree_file::position`]).
///
/// Such a store commits blocks, tree hashes and checkpoint together, so
/// unlike segment files it has no honest torn tail: records no checkpoint
/// covers, a missing tree hash and a tree hash no record accounts for are
/// all findings.
///
/// # Errors
/// Only errors that stop reading; everything wrong with the data is a
/// [`Finding`] in the report.
pub fn verify_frames(
    realm: &str,
    key: &VerifierKey,
    evidence: &Evidence,
    mark: Option<String>,
    frames: &mut dyn Iterator<Item = Result<StoredFrame>>,
    nodes: StoredNodes<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report> {
    let StoredNodes {
        get: node,
        count: stored_nodes,
    } = nodes;
    let notes = crate::retention::Notes::default();
    let missing_mark = mark.is_none() && evidence.require_mark;
    let mut v = Verifier::new(realm, key, evidence, mark, &notes);
    if missing_mark {
        v.finding(
            0,
            None,
            "the realm's signed high-water mark (its latest checkpoint) is missing".into(),
        );
    }
    for frame in frames {
        match frame? {
            StoredFrame::Block(b) => v.queue_block(FrameHeader::for_block(&b), b.body),
            StoredFrame::Damaged { reason } => {
                v.finding(v.queued_records, None, reason);
                break;
            }
            StoredFrame::Checkpoint { size, text } => {
                let header = FrameHeader::for_checkpoint(size, text.as_bytes());
                v.queue.push(Item::Checkpoint(header, text.into_bytes()));
            }
        }
        if v.queue.len() >= 256 {
            v.flush(progress);
        }
    }
    v.flush(progress);
    if !v.pending.is_empty() {
        v.judge_pending(crate::retention::Notes::default());
    }
    if v.queued_records > v.last_cp {
        v.finding(
            v.last_cp,
            Some(v.queued_records),
            format!(
                "records {}..{} are stored but no checkpoint covers them: this store commits records and their checkpoint together, so they were added behind its back",
                v.last_cp, v.queued_records
            ),
        );
    }
    v.check_nodes("stored tree hashes", node, true);
    if v.report.findings.is_empty() && stored_nodes > v.nodes.len() {
        let extra = stored_nodes - v.nodes.len();
        v.finding(
            v.queued_records,
            None,
            format!("{extra} stored tree hashes belong to no subtree of the records: planted (they would block later commits)"),
        );
    }
    Ok(v.finish())
}

struct Verifier<'a> {
    realm: &'a str,
    key: &'a VerifierKey,
    evidence: &'a Evidence,
    /// The realm's signed high-water mark, checked like a client checkpoint.
    mark: Option<String>,
    frontier: Frontier,
    queue: Vec<Item>,
    queued_records: u64,
    last_cp: u64,
    /// Sizes whose roots the evidence needs, ascending, with the root found.
    wanted: Vec<(u64, Option<Hash>)>,
    /// Nodes at heights ≥ TILE_HEIGHT: (position, hash, first seq, end seq).
    nodes: Vec<(u64, Hash, u64, u64)>,
    retention: &'a crate::retention::Notes,
    /// The notes read again after the segments, when runs needed them.
    late: Option<crate::retention::Notes>,
    /// Removed runs seen: (retention id, seq ranges).
    retained: std::collections::BTreeMap<u64, Vec<(u64, u64)>>,
    /// Runs waiting for the notes to be read again.
    pending: Vec<(u64, u64, block::RetainedRun)>,
    report: Report,
}

impl<'a> Verifier<'a> {
    fn new(
        realm: &'a str,
        key: &'a VerifierKey,
        evidence: &'a Evidence,
        mark: Option<String>,
        retention: &'a crate::retention::Notes,
    ) -> Self {
        let mut wanted: Vec<(u64, Option<Hash>)> = Vec::new();
        let sizes = mark
            .iter()
            .chain(evidence.checkpoints.iter())
            .map(String::as_str)
            .chain(evidence.receipts.iter().map(|r| r.checkpoint.as_str()))
            .filter_map(|t| key.verify(t).ok().map(|c| c.size));
        for s in sizes {
            wanted.push((s, None));
        }
        wanted.sort_by_key(|w| w.0);
        wanted.dedup_by_key(|w| w.0);
        // No leaf is pushed to reach size 0: its root is known up front.
        if let Some(w) = wanted.first_mut().filter(|w| w.0 == 0) {
            w.1 = Some(empty_root());
        }
        Self {
            realm,
            key,
            evidence,
            mark,
            frontier: Frontier::new(),
            queue: Vec::new(),
            queued_records: 0,
            last_cp: 0,
            wanted,
            nodes: Vec::new(),
            retention,
            late: None,
            retained: std::collections::BTreeMap::new(),
            pending: Vec::new(),
            report: Report::default(),
        }
    }

    /// Queues a block for checking, noting when it is not where the
    /// records before it end.
    fn queue_block(&mut self, header: FrameHeader, body: Vec<u8>) {
        if header.seq != self.queued_records {
            self.finding(
                self.queued_records,
                None,
                format!(
                    "block claims first seq {} but {} records precede it",
                    header.seq, self.queued_records
                ),
            );
        }
        self.queued_records += u64::from(header.count);
        self.queue.push(Item::Block(header, body));
    }

    fn finding(&mut self, seq: u64, end: Option<u64>, reason: String) {
        if self.report.findings.len() < 1000 {
            self.report.findings.push(Finding { seq, end, reason });
        }
    }

    /// Decodes and hashes the queued blocks in parallel, then folds them and
    /// checks the queued checkpoints in order.
    fn flush(&mut self, progress: &(dyn Fn(u64) + Sync)) {
        let items = std::mem::take(&mut self.queue);
        let realm = self.realm;
        let retention = self.retention;
        let results: Vec<Option<BlockResult>> = items
            .par_iter()
            .map(|item| match item {
                Item::Block(h, body) => Some(check_block(realm, h, body, retention)),
                Item::Checkpoint(..) => None,
            })
            .collect();
        for (item, result) in items.into_iter().zip(results) {
            match (item, result) {
                (Item::Block(..), Some(r)) => {
                    for f in r.findings {
                        self.finding(f.seq, f.end, f.reason);
                    }
                    self.push_items(&r.items);
                    for (start, end, id) in r.retained {
                        self.add_retained(start, end, id);
                    }
                    self.pending.extend(r.pending);
                    progress(self.frontier.size());
                }
                (Item::Checkpoint(h, body), _) => self.check_checkpoint(&h, &body),
                (Item::Block(..), None) => {}
            }
        }
    }

    fn add_retained(&mut self, start: u64, end: u64, id: u64) {
        let ranges = self.retained.entry(id).or_default();
        match ranges.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => ranges.push((start, end)),
        }
    }

    /// Judges the runs that named a record the first read of the notes did
    /// not hold, against `late` (the notes read after the segments).
    fn judge_pending(&mut self, late: crate::retention::Notes) {
        for (start, end, run) in std::mem::take(&mut self.pending) {
            match check_run(&run, start, end, &late) {
                Ok(()) => self.add_retained(start, end, run.id),
                Err(reason) => self.finding(start, Some(end), reason),
            }
        }
        self.late = Some(late);
    }

    /// A retention record by id, from either read of the notes.
    fn record(&self, id: u64) -> Option<&crate::retention::RetentionRecord> {
        self.retention
            .get(id)
            .or_else(|| self.late.as_ref().and_then(|n| n.get(id)))
    }

    /// Adds a block's items to the tree: runs of leaves as batches (cut
    /// at every checkpoint size, whose root is wanted), kept subtrees one
    /// by one.
    fn push_items(&mut self, items: &[(u32, Hash)]) {
        let mut at = 0usize;
        let mut leaves = Vec::new();
        while at < items.len() {
            if items[at].0 != 0 {
                self.push_item(items[at].0, items[at].1);
                at += 1;
                continue;
            }
            let size = self.frontier.size();
            let next_wanted = self
                .wanted
                .get(self.wanted.partition_point(|w| w.0 <= size))
                .map_or(u64::MAX, |w| w.0);
            let room = usize::try_from(next_wanted - size).unwrap_or(usize::MAX);
            let run = items[at..].iter().take_while(|(h, _)| *h == 0).count();
            let n = run.min(room);
            leaves.clear();
            leaves.extend(items[at..at + n].iter().map(|(_, h)| *h));
            let first = self.nodes.len();
            let nodes = &mut self.nodes;
            self.frontier.extend(&leaves, |height, index, hash| {
                if height >= TILE_HEIGHT {
                    let pos = tree_file::position(height - TILE_HEIGHT, index);
                    nodes.push((pos, *hash, index << height, (index + 1) << height));
                }
            });
            // `extend` reports level by level; the check of the stored tree
            // wants them in the order they complete (position order).
            self.nodes[first..].sort_unstable_by_key(|n| n.0);
            at += n;
            let size = self.frontier.size();
            if let Ok(i) = self.wanted.binary_search_by_key(&size, |w| w.0) {
                self.wanted[i].1 = Some(self.frontier.root());
            }
        }
    }

    fn push_item(&mut self, height: u32, h: Hash) {
        let nodes = &mut self.nodes;
        let on_node = |height: u32, index: u64, hash: &Hash| {
            if height >= TILE_HEIGHT {
                let pos = tree_file::position(height - TILE_HEIGHT, index);
                nodes.push((pos, *hash, index << height, (index + 1) << height));
            }
        };
        if height == 0 {
            self.frontier.push(h, on_node);
        } else if self.frontier.push_subtree(height, h, on_node).is_err() {
            // Located by the block check; keep the count of records right.
            for _ in 0..1u64 << height {
                self.frontier.push([0; 32], |_, _, _| {});
            }
        }
        let size = self.frontier.size();
        if let Ok(i) = self.wanted.binary_search_by_key(&size, |w| w.0) {
            self.wanted[i].1 = Some(self.frontier.root());
        }
    }

    fn check_checkpoint(&mut self, h: &FrameHeader, body: &[u8]) {
        self.report.checkpoints += 1;
        let (from, size) = (self.last_cp, h.seq);
        let text = match std::str::from_utf8(body) {
            Ok(t) => t,
            Err(_) => {
                self.finding(
                    from,
                    Some(size),
                    format!("checkpoint for size {size} is not UTF-8"),
                );
                return;
            }
        };
        // A size or root mismatch is said only when nothing more precise was
        // found in the range; a bad signature is always said.
        let located = self
            .report
            .findings
            .iter()
            .any(|f| f.seq >= from && f.seq < size);
        match self.key.verify(text) {
            Err(e) => self.finding(
                from,
                Some(size),
                format!("checkpoint for size {size}: {e} (key {})", self.key),
            ),
            Ok(_) if located => {}
            Ok(cp) if cp.size != size || size != self.frontier.size() => self.finding(
                from,
                Some(size),
                format!(
                    "checkpoint claims size {} but {} records precede it",
                    cp.size,
                    self.frontier.size()
                ),
            ),
            Ok(cp) if cp.root != self.frontier.root() => self.finding(
                from,
                Some(size),
                format!(
                    "records {from}..{size} do not match the checkpoint signed for size {size}"
                ),
            ),
            Ok(_) => {}
        }
        self.last_cp = size.max(self.last_cp);
    }

    /// Compares `tree.hashes` with the nodes recomputed from the records.
    /// It is derived data, so a mismatch is reported only when the records
    /// themselves showed nothing wrong: then the tree file is what is damaged.
    fn check_tree_file(&mut self, path: &Path) {
        if !self.report.findings.is_empty() {
            return;
        }
        let Ok(bytes) = std::fs::read(path) else {
            self.report
                .notes
                .push("no tree.hashes file: proofs will be recomputed on open".into());
            return;
        };
        let entries = bytes.get(16..).unwrap_or_default();
        self.check_nodes(
            "tree.hashes",
            &mut |pos| {
                Ok(entries
                    .get(pos as usize * 36..pos as usize * 36 + 32)
                    .and_then(|e| Hash::try_from(e).ok()))
            },
            false,
        );
    }

    /// Compares the stored interior hashes (`get` by tree file position;
    /// `None` when not stored) with the ones the records give. A file may
    /// end early (its tail is rebuilt on open); with `all_stored`, every
    /// hash must be there (a store that writes them with each commit).
    fn check_nodes(
        &mut self,
        what: &str,
        get: &mut dyn FnMut(u64) -> Result<Option<Hash>>,
        all_stored: bool,
    ) {
        if !self.report.findings.is_empty() {
            return;
        }
        let repair = if all_stored {
            "proofs built from it are wrong until it is restored"
        } else {
            "reopening the realm rebuilds it"
        };
        let mut bad = Vec::new();
        for (pos, hash, start, end) in &self.nodes {
            let why = match get(*pos) {
                Ok(Some(e)) if e == *hash => continue,
                Ok(Some(_)) => "differs from the hash of these records".to_string(),
                Ok(None) if all_stored => "is missing".to_string(),
                Ok(None) => break,
                Err(e) => format!("cannot be read ({e})"),
            };
            bad.push((*start, *end, why));
            if bad.len() >= 100 || !all_stored {
                break;
            }
        }
        for (start, end, why) in bad {
            self.finding(
                start,
                Some(end),
                format!("stored tree hash ({what}) over these records {why}; the records match their checkpoints, so the stored hash is damaged: {repair}"),
            );
        }
    }

    fn finish(mut self) -> Report {
        for (id, ranges) in std::mem::take(&mut self.retained) {
            let Some((policy, at_ns)) = self.record(id).map(|r| (r.policy.clone(), r.at_ns)) else {
                continue;
            };
            // A receipt for records since removed still proves they were
            // there (their hashes stay): say so.
            for rc in &self.evidence.receipts {
                let hit = ranges
                    .iter()
                    .filter(|(a, b)| *a <= rc.last_seq && rc.first_seq < *b)
                    .map(|(a, b)| b.min(&(rc.last_seq + 1)) - a.max(&rc.first_seq))
                    .sum::<u64>();
                if hit > 0 {
                    self.report.notes.push(format!(
                        "a receipt for seqs {}..={} holds {hit} records whose bodies retention record {id} removed; their leaf hashes still prove they were stored",
                        rc.first_seq, rc.last_seq
                    ));
                }
            }
            let out = RetainedOut {
                id,
                policy,
                at_ns,
                records: ranges.iter().map(|(a, b)| b - a).sum(),
                ranges,
            };
            self.report.notes.push(out.to_string());
            self.report.retained.push(out);
        }
        let size = self.frontier.size();
        self.report.records = size;
        self.report.committed = self.last_cp;
        if size > self.last_cp {
            self.report.notes.push(format!(
                "records {}..{size} follow the last checkpoint and were never acknowledged",
                self.last_cp
            ));
        }
        let evidence = self.evidence;
        let mark = self.mark.clone();
        let notes = mark
            .iter()
            .map(|t| (t.as_str(), None, "high-water mark"))
            .chain(
                evidence
                    .checkpoints
                    .iter()
                    .map(|t| (t.as_str(), None, "client checkpoint")),
            )
            .chain(
                evidence
                    .receipts
                    .iter()
                    .map(|r| (r.checkpoint.as_str(), Some(r), "receipt")),
            );
        for (text, receipt, what) in notes {
            if receipt.is_some() || what == "client checkpoint" {
                self.report.evidence += 1;
            }
            let cp = match self.key.verify(text) {
                Ok(cp) => cp,
                Err(e) => {
                    self.finding(0, None, format!("{what} does not verify: {e}"));
                    continue;
                }
            };
            if let Some(r) = receipt {
                if r.realm != self.realm
                    || r.count == 0
                    || r.last_seq < r.first_seq
                    || (r.last_seq - r.first_seq).checked_add(1) != Some(r.count)
                    || r.last_seq >= cp.size
                {
                    self.finding(
                        r.first_seq,
                        Some(r.last_seq.saturating_add(1)),
                        format!(
                            "{what} is inconsistent with its own checkpoint (size {})",
                            cp.size
                        ),
                    );
                    continue;
                }
            }
            if cp.size > self.last_cp {
                self.finding(
                    self.last_cp,
                    Some(cp.size),
                    format!(
                        "records {}..{} are missing: a {what} signed for size {} covers them but the log's checkpoints stop at {}",
                        self.last_cp, cp.size, cp.size, self.last_cp
                    ),
                );
                continue;
            }
            let root = self
                .wanted
                .binary_search_by_key(&cp.size, |w| w.0)
                .ok()
                .and_then(|i| self.wanted[i].1);
            // The mark re-states the log's own history: when the records
            // already showed located damage, its root mismatch adds nothing
            // but an imprecise "0..size".
            let redundant = what == "high-water mark" && !self.report.findings.is_empty();
            if root != Some(cp.root) && !redundant {
                self.finding(
                    0,
                    Some(cp.size),
                    format!(
                        "records 0..{} do not match the {what} signed for size {}",
                        cp.size, cp.size
                    ),
                );
            }
        }
        self.report.findings.sort_by_key(|f| (f.seq, f.end));
        self.report
    }
}

/// Checks one block: checksum, decoding, each record's seq and realm, and
/// each leaf hash against its stored hint.
fn check_block(
    realm: &str,
    h: &FrameHeader,
    body: &[u8],
    retention: &crate::retention::Notes,
) -> BlockResult {
    // A header's seq is whatever the file says: near u64::MAX the range
    // saturates rather than overflows.
    let (first, end) = (h.seq, h.seq.saturating_add(u64::from(h.count)));
    let mut findings = Vec::new();
    let decoded = match block::decode(body, h.count, h.body_crc) {
        Ok(d) => d,
        Err(e) => {
            // Locate the damage as well as the bytes allow.
            let exact = match (&e, block::decode_unchecked(body, h.count)) {
                (BlockError::Checksum, Ok(d)) => d
                    .lines()
                    .enumerate()
                    .find(|(i, l)| !d.is_retained(*i) && leaf_hash(l)[..4] != d.hint(*i))
                    .map(|(i, _)| first.saturating_add(i as u64)),
                _ => None,
            };
            findings.push(Finding {
                seq: exact.unwrap_or(first),
                end: Some(end),
                reason: format!("block of seqs {first}..{end} is damaged: {e}"),
            });
            return BlockResult {
                items: vec![(0, [0; 32]); h.count as usize],
                findings,
                retained: Vec::new(),
                pending: Vec::new(),
            };
        }
    };
    let mut prefix = Vec::with_capacity(64);
    let mut retained = Vec::new();
    let mut pending = Vec::new();
    for run in decoded.runs() {
        let start = first.saturating_add(u64::from(run.start));
        let end = start.saturating_add(u64::from(run.len));
        if retention.get(run.id).is_none() {
            pending.push((start, end, run.clone()));
            continue;
        }
        match check_run(run, start, end, retention) {
            Ok(()) => retained.push((start, end, run.id)),
            Err(reason) => findings.push(Finding {
                seq: start,
                end: Some(end),
                reason,
            }),
        }
    }
    // Each leaf is hashed once, in a batch: for its hint here and for the
    // tree in `items`.
    let live = decoded.live_leaf_hashes();
    let mut live_at = 0usize;
    for (i, line) in decoded.lines().enumerate() {
        if decoded.is_retained(i) {
            continue;
        }
        let leaf = live[live_at];
        live_at += 1;
        let seq = first.saturating_add(i as u64);
        leaf_prefix(realm, seq, &mut prefix);
        if !findings.is_empty() {
            // One finding per block: after the first, the rest follow from it.
        } else if !line.starts_with(&prefix) {
            // A record claiming an earlier seq means records were inserted
            // from that seq on; a later one, deleted or reordered from here.
            let (at, reason) = match leaf_seq(line) {
                Some(claimed) if claimed < seq => (
                    claimed,
                    format!("record at position {seq} claims seq {claimed}: records were inserted from seq {claimed}"),
                ),
                Some(claimed) if claimed != seq => (
                    seq,
                    format!("record at position {seq} claims seq {claimed}: records deleted or reordered"),
                ),
                _ => (
                    seq,
                    format!("record at seq {seq} does not start with the realm and seq sealog wrote"),
                ),
            };
            findings.push(Finding {
                seq: at,
                end: None,
                reason,
            });
        } else if leaf[..4] != decoded.hint(i) {
            findings.push(Finding {
                seq,
                end: None,
                reason: "record differs from what was sealed (leaf hash does not match the one stored with it)".into(),
            });
        }
    }
    BlockResult {
        items: decoded.items_from(&live),
        findings,
        retained,
        pending,
    }
}

/// Records removed from a block (seqs `start..end`) are accepted only when
/// a validly signed retention record names every one of them, they are
/// older than its cutoff, and what is kept of them are subtrees in their
/// places.
///
/// # Errors
/// Why the removal is tampering.
pub fn check_run(
    run: &block::RetainedRun,
    start: u64,
    end: u64,
    retention: &crate::retention::Notes,
) -> std::result::Result<(), String> {
    let id = run.id;
    let Some(r) = retention.get(id) else {
        return Err(format!("records' bodies were removed under retention record {id}, but no validly signed retention record {id} exists: a body removed outside retention is tampering"));
    };
    let i = r.ranges.partition_point(|(_, e)| *e <= start);
    if !r
        .ranges
        .get(i)
        .is_some_and(|(a, e)| *a <= start && end <= *e)
    {
        return Err(format!("records' bodies were removed, but retention record {id} does not name these seqs: a body removed outside retention is tampering"));
    }
    if run.max_time >= r.cutoff_ns {
        return Err(format!("records' bodies were removed by retention record {id}, but they are not older than its cutoff"));
    }
    let mut at = start;
    for (h, _) in &run.pieces {
        if !at.is_multiple_of(1 << h) {
            return Err("what was kept of removed records is not a subtree in its place".into());
        }
        at += 1 << h;
    }
    Ok(())
}
