//! Per-commit verification, for forensic inquiries (the Mojaloop KMS's
//! `POST /inquiry`): every commit whose records were sequenced in a time
//! window is checked on its own against the checkpoint signed for it.
//!
//! A commit is the records between two checkpoint frames of the segment
//! files: `[a, b)` with the checkpoint signed for size `b`. It verifies
//! when its blocks decode, every record sits at its seq in this realm, and
//! the root folded from the perfect subtrees left of `a` (the frontier of
//! size `a`) and the commit's leaf hashes is the signed root at `b`.
//!
//! Each commit is judged on its own, so one altered record names its commit
//! and not every later one (whose roots all cover it): the frontier of size
//! `a` is taken from `tree.hashes` where it stores the subtree (a tile of
//! 256 records or more) and recomputed from the records below that, and
//! it is used only after it folds to the root signed for size `a`. Only a
//! commit whose frontier includes a recomputed subtree holding the altered
//! record (the altered record is among the last < 256 before it) cannot be
//! judged on its own: it is reported unverified, saying so.
//!
//! Like [`crate::verify`], this reads the files directly and writes
//! nothing, so it runs beside the live journal; records after the last
//! checkpoint were never acknowledged and belong to no commit.

use std::path::Path;
use std::time::Instant;

use sealog_event::{leaf_prefix, parse_rfc3339};

use crate::block;
use crate::checkpoint::VerifierKey;
use crate::error::Result;
use crate::merkle::{empty_root, leaf_hash, Frontier, Hash};
use crate::segment::{list_segments, FrameKind, FrameRead, FrameReader};
use crate::tree_file::{TreeReader, TILE_HEIGHT};

/// One commit and what checking it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitCheck {
    /// First seq of the commit.
    pub first_seq: u64,
    /// One past its last seq: the size its checkpoint was signed for.
    pub end: u64,
    /// The checkpoint note stored for it.
    pub checkpoint: String,
    /// When its records were sequenced (`received_at` of its first
    /// readable record), if any record is readable. It is not proven:
    /// an unverified commit's time may be altered.
    pub received_at_ns: Option<i64>,
    /// Whether it verified.
    pub verified: bool,
    /// Why not, when it did not.
    pub reason: Option<String>,
}

/// Which commits to report, and until when to check them.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Earliest `received_at`, inclusive (ns).
    pub start_ns: i64,
    /// Latest `received_at`, inclusive (ns).
    pub end_ns: i64,
    /// After this instant no further commit is checked: those left are
    /// reported unverified ("not checked before the deadline").
    pub deadline: Option<Instant>,
}

impl Window {
    fn wants(&self, t: Option<i64>) -> bool {
        // A commit with no readable record cannot be placed in time: it is
        // reported rather than hidden.
        t.is_none_or(|t| t >= self.start_ns && t <= self.end_ns)
    }
}

/// The raw `received_at` text a leaf line carries.
fn received_at_text(line: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = br#","received_at":""#;
    let at = memchr::memmem::find(line, KEY)? + KEY.len();
    let rest = line.get(at..)?;
    let end = memchr::memchr(b'"', rest)?;
    rest.get(..end)
}

/// The commit being read.
struct Open {
    first: u64,
    /// The commit's records as the tree sees them: `(height, hash)`, a leaf
    /// or the kept subtree of records retention removed.
    items: Vec<(u32, Hash)>,
    /// Records read.
    count: u64,
    problem: Option<String>,
    /// The raw `received_at` of its first readable record.
    stamp: Option<Vec<u8>>,
}

impl Open {
    fn at(first: u64) -> Self {
        Self {
            first,
            items: Vec::new(),
            count: 0,
            problem: None,
            stamp: None,
        }
    }

    fn time(&self) -> Option<i64> {
        parse_rfc3339(std::str::from_utf8(self.stamp.as_deref()?).ok()?)
    }

    fn end(&self) -> u64 {
        self.first.saturating_add(self.count)
    }

    /// Records `n` whose hashes are not judged (zeros).
    fn skip(&mut self, n: u32) {
        self.items
            .extend(std::iter::repeat_n((0, [0u8; 32]), n as usize));
        self.count += u64::from(n);
    }
}

/// Pushes a commit's items; false when a kept subtree is out of place.
fn push_items(f: &mut Frontier, items: &[(u32, Hash)]) -> bool {
    for (h, hash) in items {
        if *h == 0 {
            f.push(*hash, |_, _, _| {});
        } else if f.push_subtree(*h, *hash, |_, _, _| {}).is_err() {
            return false;
        }
    }
    true
}

/// Checks every commit of the journal in `dir` whose records were
/// sequenced within `window`, calling `progress(commits checked)`.
///
/// Besides the commits dated in the window, it reports every commit that
/// fails between the first and last of them (an altered record may carry
/// an altered time), anything it could not read (a damaged frame ends the
/// scan: the rest is reported as one unverified range), and, when the
/// realm's signed high-water mark is ahead of the last commit found, the
/// missing range: a journal cut back is not a shorter clean report.
///
/// # Errors
/// Only I/O errors that stop reading; everything wrong with the data is a
/// commit reported unverified.
pub fn check_commits(
    dir: &Path,
    realm: &str,
    key: &VerifierKey,
    window: Window,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<CommitCheck>> {
    let tree = TreeReader::open(&dir.join("tree.hashes"));
    // The high-water mark, read before the segments: the live journal
    // writes a checkpoint frame before its mark, so every size the mark
    // holds now is in the files by the time they are read.
    let mark = crate::mark::read(&crate::fs::RealFs, dir, key)
        .ok()
        .flatten()
        .and_then(|m| m.signed);
    // Every commit with whether its time is in the window.
    let mut all: Vec<(CommitCheck, bool)> = Vec::new();
    // Every record's leaf hash, folded: the frontier as the files are now.
    let mut computed = Frontier::new();
    // The root signed for the size where the current commit starts.
    let mut prev_root = Some(empty_root());
    let mut open = Open::at(0);
    let mut reached = 0u64;
    let mut prefix = Vec::with_capacity(64);
    let segments = list_segments(&crate::fs::RealFs, dir)?;
    'segments: for (idx, (_, path)) in segments.iter().enumerate() {
        let mut r = match FrameReader::open(&crate::fs::RealFs, path) {
            Ok(r) => r,
            Err(e) => {
                open.problem
                    .get_or_insert(format!("{}: {e}", path.display()));
                break;
            }
        };
        loop {
            let frame = match r.next_frame(true)? {
                FrameRead::End => break,
                FrameRead::Bad {
                    offset,
                    reason,
                    torn,
                } => {
                    // A write cut short at the end of the last segment,
                    // with no checkpoint after it, was never acknowledged
                    // (as the verifier says): not a commit, not damage.
                    if torn
                        && idx + 1 == segments.len()
                        && r.find_checkpoint_after(offset)?.is_none()
                    {
                        open = Open::at(open.first);
                        break 'segments;
                    }
                    // Nothing after this frame can be placed: the open commit
                    // and everything after it are reported unverified below.
                    open.problem.get_or_insert(format!(
                        "{}: damaged frame at offset {offset}: {reason}; nothing after it could be read",
                        path.display()
                    ));
                    break 'segments;
                }
                FrameRead::Frame { header, body, .. } => (header, body.unwrap_or_default()),
            };
            let (header, body) = frame;
            let late = window.deadline.is_some_and(|d| Instant::now() >= d);
            match header.kind {
                FrameKind::Block => {
                    let first = open.end();
                    let end = first.saturating_add(u64::from(header.count));
                    if header.seq != first {
                        open.problem.get_or_insert(format!(
                            "block claims first seq {} but {first} records precede it",
                            header.seq
                        ));
                    }
                    // Past the deadline nothing more is judged: a block is
                    // decoded only to date its commit.
                    if late && open.stamp.is_some() {
                        open.skip(header.count);
                        continue;
                    }
                    match block::decode(&body, header.count, header.body_crc) {
                        Ok(d) => {
                            for (i, line) in d.lines().enumerate() {
                                if d.is_retained(i) {
                                    continue;
                                }
                                let stamp = received_at_text(line);
                                match (&open.stamp, stamp) {
                                    (None, Some(t)) => open.stamp = Some(t.to_vec()),
                                    (Some(a), Some(b)) if a.as_slice() != b && !late => {
                                        open.problem.get_or_insert(format!(
                                            "records of one commit carry different received_at times (seq {})",
                                            first.saturating_add(i as u64)
                                        ));
                                    }
                                    _ => {}
                                }
                                if late {
                                    continue;
                                }
                                let seq = first.saturating_add(i as u64);
                                let h = leaf_hash(line);
                                leaf_prefix(realm, seq, &mut prefix);
                                if open.problem.is_none() {
                                    if !line.starts_with(&prefix) {
                                        open.problem = Some(format!("record at seq {seq} does not start with the realm and seq sealog wrote"));
                                    } else if h[..4] != d.hint(i) {
                                        open.problem = Some(format!("record at seq {seq} differs from what was sealed (its leaf hash does not match the one stored with it)"));
                                    }
                                }
                            }
                            if late {
                                open.skip(header.count);
                            } else {
                                open.items.extend(d.items());
                                open.count += d.len() as u64;
                            }
                        }
                        Err(e) => {
                            open.problem.get_or_insert(format!(
                                "block of seqs {first}..{end} is damaged: {e}"
                            ));
                            open.skip(header.count);
                        }
                    }
                }
                FrameKind::Checkpoint => {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let size = header.seq;
                    let commit = std::mem::replace(&mut open, Open::at(size));
                    if size <= commit.first && commit.count == 0 {
                        // A checkpoint with nothing new (a repeated head).
                        prev_root = match key.verify(&text) {
                            Ok(cp) if cp.size == size => Some(cp.root),
                            _ => prev_root,
                        };
                        continue;
                    }
                    let signed = key.verify(&text);
                    let time = commit.time();
                    let (verified, reason) = if late {
                        (
                            false,
                            Some("not checked before the inquiry's deadline".to_string()),
                        )
                    } else {
                        judge(&commit, size, &signed, prev_root, &computed, tree.as_ref())
                    };
                    all.push((
                        CommitCheck {
                            first_seq: commit.first,
                            end: size,
                            checkpoint: text,
                            received_at_ns: time,
                            verified,
                            reason,
                        },
                        window.wants(time),
                    ));
                    progress(all.len());
                    // A kept subtree out of place leaves the frontier short:
                    // later commits then fail to match their checkpoints.
                    let _ = push_items(&mut computed, &commit.items);
                    prev_root = match signed {
                        Ok(cp) if cp.size == size => Some(cp.root),
                        _ => None,
                    };
                    reached = reached.max(size);
                }
            }
        }
    }
    // What could not be read: the open commit, if it holds records or a
    // problem (records after the last checkpoint of an undamaged journal
    // were never acknowledged and are not a commit).
    if let Some(problem) = open.problem.take() {
        let end = open.end().max(open.first.saturating_add(1));
        all.push((
            CommitCheck {
                first_seq: open.first,
                end,
                checkpoint: String::new(),
                received_at_ns: open.time(),
                verified: false,
                reason: Some(problem),
            },
            true,
        ));
    }
    // The realm's high-water mark: the last size it signed. Commits the
    // files no longer reach are missing, not absent from the window.
    {
        if let Some(signed) = mark {
            let size = signed.checkpoint.size;
            let last = all.last().map_or(0, |(c, _)| c.end);
            if size > last.max(reached) {
                all.push((
                    CommitCheck {
                        first_seq: last.max(reached),
                        end: size,
                        checkpoint: signed.text,
                        received_at_ns: None,
                        verified: false,
                        reason: Some(format!(
                            "the realm signed a checkpoint for size {size} (its high-water mark) but its files hold commits only up to {}: records {}..{size} are missing or unreadable",
                            last.max(reached),
                            last.max(reached)
                        )),
                    },
                    true,
                ));
            }
        }
    }
    // Unverified commits between the first and last commit in the window
    // are reported too: an altered record may carry an altered time.
    let first = all.iter().position(|(_, w)| *w);
    let last = all.iter().rposition(|(_, w)| *w);
    Ok(all
        .into_iter()
        .enumerate()
        .filter(|(i, (c, w))| {
            *w || (!c.verified && first.is_some_and(|f| *i > f) && last.is_some_and(|l| *i < l))
        })
        .map(|(_, (c, _))| c)
        .collect())
}

/// Whether `commit` (ending at `size`) is what the checkpoint signed.
fn judge(
    commit: &Open,
    size: u64,
    signed: &std::result::Result<crate::checkpoint::Checkpoint, crate::NoteError>,
    prev_root: Option<Hash>,
    computed: &Frontier,
    tree: Option<&TreeReader>,
) -> (bool, Option<String>) {
    let (a, b) = (commit.first, size);
    let cp = match signed {
        Ok(cp) => cp,
        Err(e) => {
            return (
                false,
                Some(format!("checkpoint for size {b} does not verify: {e}")),
            )
        }
    };
    if cp.size != b {
        return (
            false,
            Some(format!(
                "checkpoint claims size {} but is stored after seq {}",
                cp.size,
                b - 1
            )),
        );
    }
    if commit.count != b - a {
        return (
            false,
            Some(format!(
                "{} records stored between the checkpoints for sizes {a} and {b}",
                commit.count
            )),
        );
    }
    if let Some(p) = &commit.problem {
        return (false, Some(p.clone()));
    }
    // The frontier of size `a`: stored subtrees where `tree.hashes` has
    // them, the recomputed ones below the tile height.
    let stored: Vec<Hash> = computed
        .subtrees()
        .map(|(h, i, hash)| {
            if h >= TILE_HEIGHT {
                if let Some(stored) = tree.and_then(|t| t.node(h, i)) {
                    return stored;
                }
            }
            hash
        })
        .collect();
    let recomputed: Vec<Hash> = computed.subtrees().map(|(_, _, hash)| hash).collect();
    let Some(want) = prev_root else {
        return (
            false,
            Some(format!(
                "the checkpoint before this commit (size {a}) does not verify, so this commit cannot be checked on its own"
            )),
        );
    };
    // Either frontier will do once it folds to the signed root: a damaged
    // stored hash falls back to the records, and altered records before
    // this commit fall back to the stored hashes.
    let frontier = [stored, recomputed]
        .iter()
        .filter_map(|s| Frontier::from_subtrees(a, s).ok())
        .find(|f| f.root() == want);
    let Some(frontier) = frontier else {
        return (
            false,
            Some(format!(
                "records before seq {a} that share a subtree with this commit no longer match the checkpoint signed for size {a}, so this commit cannot be checked on its own"
            )),
        );
    };
    let mut f = frontier;
    if !push_items(&mut f, &commit.items) || f.root() != cp.root {
        return (
            false,
            Some(format!(
                "records {a}..{b} do not match the checkpoint signed for size {b}"
            )),
        );
    }
    (true, None)
}

/// One commit as the segment files hold it: its sealed blocks as written
/// and the checkpoint note signed for its end.
#[derive(Debug)]
pub struct SealedCommit {
    /// First seq of the commit.
    pub first_seq: u64,
    /// Its blocks, byte for byte, with their header fields.
    pub blocks: Vec<block::EncodedBlock>,
    /// The checkpoint for the size at its end.
    pub checkpoint: String,
}

/// Reads the commits of the journal in `dir` in order, handing each to
/// `visit` (for a migration to another store). Records after the last
/// checkpoint were never acknowledged and are not visited; their count is
/// returned. Nothing is checked here beyond the frames' own checksums:
/// callers check each commit against its checkpoint.
///
/// # Errors
/// I/O errors; a damaged frame (anything but a torn, unacknowledged tail);
/// what `visit` returns.
pub fn read_sealed_commits(
    dir: &Path,
    visit: &mut dyn FnMut(SealedCommit) -> Result<()>,
) -> Result<u64> {
    let mut open: Vec<block::EncodedBlock> = Vec::new();
    let mut first = 0u64;
    let segments = list_segments(&crate::fs::RealFs, dir)?;
    for (idx, (_, path)) in segments.iter().enumerate() {
        let mut r = FrameReader::open(&crate::fs::RealFs, path)?;
        loop {
            match r.next_frame(true)? {
                FrameRead::End => break,
                FrameRead::Bad {
                    offset,
                    reason,
                    torn,
                } => {
                    if torn
                        && idx + 1 == segments.len()
                        && r.find_checkpoint_after(offset)?.is_none()
                    {
                        break;
                    }
                    return Err(crate::error::JournalError::Corrupt {
                        seq: first,
                        reason: format!("damaged frame at offset {offset}: {reason}"),
                        path: path.clone(),
                    });
                }
                FrameRead::Frame { header, body, .. } => {
                    let body = body.unwrap_or_default();
                    match header.kind {
                        FrameKind::Block => open.push(block::EncodedBlock {
                            first_seq: header.seq,
                            count: header.count,
                            min_time: header.min_time,
                            max_time: header.max_time,
                            crc: header.body_crc,
                            body,
                        }),
                        FrameKind::Checkpoint => {
                            let blocks = std::mem::take(&mut open);
                            let next =
                                first + blocks.iter().map(|b| u64::from(b.count)).sum::<u64>();
                            let checkpoint = String::from_utf8(body).map_err(|_| {
                                crate::error::JournalError::Corrupt {
                                    seq: next,
                                    reason: "checkpoint frame is not UTF-8".into(),
                                    path: path.clone(),
                                }
                            })?;
                            if !blocks.is_empty() {
                                visit(SealedCommit {
                                    first_seq: first,
                                    blocks,
                                    checkpoint,
                                })?;
                            }
                            first = next;
                        }
                    }
                }
            }
        }
    }
    Ok(open.iter().map(|b| u64::from(b.count)).sum())
}
