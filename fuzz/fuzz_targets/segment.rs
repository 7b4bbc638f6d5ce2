//! Journal directories built from a list of operations (blocks of small
//! JSON events, signed checkpoints, bad checkpoints, segment rolls), then
//! damaged by structured mutations that keep or recompute the frame CRCs
//! (flip a byte, change a header field, re-encode a block with an edited
//! record, duplicate, drop or reorder frames, truncate, zero, append, damage
//! or rename a segment), beside a `head.mark` and a `tree.hashes` that are
//! valid, missing, stale or damaged. Recovery (`Journal::open_in` on the
//! in-memory `SimFs`) and the offline verifier (`verify_dir`, on a tmpfs
//! copy) must return an error or a report, never panic or hang, and:
//!
//! - an undamaged journal opens at the size of its last checkpoint, a mark
//!   ahead of it is a rollback, a mark with another root a fork, a mark
//!   by another key corrupt; the verifier reports it ok exactly when it is
//!   undamaged and its mark is one the realm signed for it;
//! - whatever opens serves records that hash to its latest checkpoint
//!   (checked record by record when no stored tree hash vouches for them),
//!   and opens again, unchanged, and takes an append;
//! - whatever the verifier passes, recovery opens, at the same size.
//!
//! The `Raw` arm keeps the old behaviour: arbitrary bytes as the segment.
#![no_main]

#[path = "common.rs"]
mod common;

use std::ops::ControlFlow;
use std::path::Path;

use common::{forger, options, real_dir, signer, sim_write, Ev, ORIGIN, REALM, SIM_DIR};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sealog_event::LeafBuilder;
use sealog_journal::block;
use sealog_journal::checkpoint::{Checkpoint, SignedCheckpoint, Signer};
use sealog_journal::fs::Vfs;
use sealog_journal::mark::{MarkFile, MARK_FILE};
use sealog_journal::merkle::{self, leaf_hash, Frontier, Hash};
use sealog_journal::segment::{
    push_frame, segment_header, segment_name, FrameHeader, FrameKind, FRAME_HEADER_LEN,
};
use sealog_journal::sim_fs::SimFs;
use sealog_journal::tree_file::TILE_HEIGHT;
use sealog_journal::verify::{verify_dir, Evidence, Report};
use sealog_journal::{EventRef, Journal, JournalError};

const MAX_OPS: usize = 32;
const MAX_MUTATIONS: usize = 6;
const MAX_RECORDS: usize = 3000;

#[derive(Arbitrary, Debug)]
enum Input {
    Built(Plan),
    /// The old target: arbitrary bytes as the only segment, usually after a
    /// valid segment header.
    Raw {
        header: bool,
        bytes: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Plan {
    ops: Vec<Op>,
    mutations: Vec<Mutation>,
    mark: MarkPlan,
    tree: TreePlan,
    /// Appended (and reopened) after a successful open.
    append: Option<Ev>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A block of up to 8 events.
    Block(Vec<Ev>),
    /// A block of 1..=600 generated events (crosses 256-record tiles).
    Bulk(u16),
    /// A checkpoint for the records so far, signed by the realm's key.
    Checkpoint,
    BadCheckpoint(BadCp),
    /// Starts a new segment file at the records so far.
    Roll,
}

#[derive(Arbitrary, Debug)]
enum BadCp {
    /// Signed by another key under the realm's name.
    Forged,
    /// Signed by the realm's key over this root.
    WrongRoot([u8; 32]),
    /// Signed by the realm's key for another size than its frame's.
    WrongSize(u8),
    /// Another origin, signed by a key of that name.
    OtherOrigin,
    /// A body that is not UTF-8.
    NotUtf8,
    /// Any text.
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Field {
    Seq(i8),
    Count(i8),
    BodyLen(i16),
    Kind,
    Times(i64, i64),
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// Flips a body byte; with `fix_crc` the header's body CRC follows.
    FlipBody {
        frame: u16,
        at: u32,
        xor: u8,
        fix_crc: bool,
    },
    /// Changes a header field (the header CRC is recomputed).
    SetField {
        frame: u16,
        field: Field,
    },
    /// Replaces one record of a block and re-encodes it with valid CRCs;
    /// with `fix_hint` its leaf-hash hint follows too.
    EditRecord {
        frame: u16,
        line: u16,
        ev: Ev,
        fix_hint: bool,
    },
    Duplicate(u16),
    Drop(u16),
    Swap(u16, u16),
    /// Flips a byte of a written frame (header or body), no CRC fixed.
    FlipFrameByte {
        frame: u16,
        at: u32,
        xor: u8,
    },
    Truncate {
        seg: u8,
        at: u32,
    },
    Zero {
        seg: u8,
        at: u32,
        len: u16,
    },
    AppendZeros {
        seg: u8,
        len: u16,
    },
    AppendBytes {
        seg: u8,
        bytes: Vec<u8>,
    },
    SegmentHeader {
        seg: u8,
        at: u8,
        xor: u8,
    },
    DropSegment(u8),
    RenameSegment {
        seg: u8,
        to: u16,
    },
}

impl Mutation {
    /// Applied to the written files rather than to the frame list.
    fn on_bytes(&self) -> bool {
        !matches!(
            self,
            Mutation::FlipBody { .. }
                | Mutation::SetField { .. }
                | Mutation::EditRecord { .. }
                | Mutation::Duplicate(_)
                | Mutation::Drop(_)
                | Mutation::Swap(..)
        )
    }
}

#[derive(Arbitrary, Debug)]
enum MarkPlan {
    None,
    /// A mark of nothing signed.
    Empty,
    /// The k-th checkpoint written.
    At(u8),
    /// The k-th, then the j-th recorded over it (two slots).
    Two(u8, u8),
    /// The k-th, then one byte of the file flipped (one slot survives).
    FlipOne {
        k: u8,
        at: u16,
        xor: u8,
    },
    /// Signed by the realm for more records than the journal holds.
    Ahead(u8),
    /// Signed by the realm for the k-th checkpoint's size, another root.
    Forked {
        k: u8,
        root: [u8; 32],
    },
    /// The k-th checkpoint's size and root, signed by another key.
    OtherKey(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum TreePlan {
    None,
    /// The first `keep` stored hashes of the records as built.
    Valid {
        keep: u8,
    },
    /// As `Valid`, with a byte flipped; `fix` recomputes that entry's CRC
    /// (a wrong hash that looks intact).
    Flip {
        keep: u8,
        at: u16,
        xor: u8,
        fix: bool,
    },
    Raw(Vec<u8>),
}

struct Frame {
    hdr: FrameHeader,
    body: Vec<u8>,
    seg: usize,
}

/// A journal as built, before any mutation.
struct Built {
    /// First seq of each segment.
    segs: Vec<u64>,
    frames: Vec<Frame>,
    leaves: Vec<Vec<u8>>,
    /// The good checkpoints, in order.
    checkpoints: Vec<SignedCheckpoint>,
    /// Records covered by the last good checkpoint.
    committed: u64,
    /// No bad checkpoint was written.
    clean: bool,
}

fn build(ops: &[Op], s: &Signer) -> Built {
    let leaf = LeafBuilder::new(REALM, common::RECEIVED_AT);
    let mut b = Built {
        segs: vec![0],
        frames: Vec::new(),
        leaves: Vec::new(),
        checkpoints: Vec::new(),
        committed: 0,
        clean: true,
    };
    let mut frontier = Frontier::new();
    for op in ops.iter().take(MAX_OPS) {
        let records = b.leaves.len() as u64;
        let seg = b.segs.len() - 1;
        let events: Vec<(Vec<u8>, Option<i64>)> = match op {
            Op::Block(evs) if evs.is_empty() => vec![(b"{}".to_vec(), None)],
            Op::Block(evs) => evs
                .iter()
                .take(8)
                .map(|e| (e.json(), e.time_ns()))
                .collect(),
            Op::Bulk(n) => (0..usize::from(*n) % 600 + 1)
                .map(|i| (format!("{{\"i\":{i}}}").into_bytes(), None))
                .collect(),
            _ => Vec::new(),
        };
        if !events.is_empty() {
            if b.leaves.len() + events.len() > MAX_RECORDS {
                continue;
            }
            let mut raw = Vec::new();
            let mut hashes = Vec::new();
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for (i, (json, t)) in events.iter().enumerate() {
                let at = raw.len();
                leaf.build(records + i as u64, json, &mut raw);
                let h = leaf_hash(&raw[at..]);
                hashes.push(h);
                frontier.push(h, |_, _, _| {});
                b.leaves.push(raw[at..].to_vec());
                raw.push(b'\n');
                let t = t.unwrap_or(common::RECEIVED_AT);
                lo = lo.min(t);
                hi = hi.max(t);
            }
            let enc = block::encode_raw(records, &raw, &hashes, (lo, hi), 1);
            b.frames.push(Frame {
                hdr: FrameHeader::for_block(&enc),
                body: enc.body,
                seg,
            });
            continue;
        }
        let cp = |root: Hash| Checkpoint {
            origin: ORIGIN.into(),
            size: records,
            root,
        };
        let root = frontier.root();
        let body: Vec<u8> = match op {
            Op::Checkpoint => {
                let signed = s.sign(&cp(root));
                b.checkpoints.push(signed.clone());
                b.committed = records;
                signed.text.into_bytes()
            }
            Op::BadCheckpoint(bad) => {
                let text = match bad {
                    BadCp::Forged => forger().sign(&cp(root)).text,
                    BadCp::WrongRoot(r) => s.sign(&cp(*r)).text,
                    BadCp::WrongSize(d) => {
                        let mut c = cp(root);
                        c.size += u64::from(*d) + 1;
                        s.sign(&c).text
                    }
                    BadCp::OtherOrigin => {
                        let other = Signer::new(
                            "sealog/other",
                            ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
                        );
                        let mut c = cp(root);
                        c.origin = "sealog/other".into();
                        other.sign(&c).text
                    }
                    BadCp::NotUtf8 => {
                        let mut t = s.sign(&cp(root)).text.into_bytes();
                        t.insert(3, 0xff);
                        b.clean = false;
                        b.frames.push(Frame {
                            hdr: FrameHeader::for_checkpoint(records, &t),
                            body: t,
                            seg,
                        });
                        continue;
                    }
                    BadCp::Text(t) => t.clone(),
                };
                if matches!(bad, BadCp::WrongRoot(r) if *r == root) {
                    // Not bad after all: the root is the right one.
                    b.checkpoints.push(s.sign(&cp(root)));
                    b.committed = records;
                } else {
                    b.clean = false;
                }
                text.into_bytes()
            }
            Op::Roll => {
                if b.segs.last() != Some(&records) {
                    b.segs.push(records);
                }
                continue;
            }
            Op::Block(_) | Op::Bulk(_) => unreachable!("handled above"),
        };
        b.frames.push(Frame {
            hdr: FrameHeader::for_checkpoint(records, &body),
            body,
            seg,
        });
    }
    b
}

/// Applies a mutation to the frame list.
fn mutate_frames(frames: &mut Vec<Frame>, m: &Mutation) {
    if frames.is_empty() {
        return;
    }
    let n = frames.len();
    let pick = |i: &u16| usize::from(*i) % n;
    match m {
        Mutation::FlipBody {
            frame,
            at,
            xor,
            fix_crc,
        } => {
            let f = &mut frames[pick(frame)];
            if f.body.is_empty() {
                return;
            }
            let at = *at as usize % f.body.len();
            f.body[at] ^= (*xor).max(1);
            if *fix_crc {
                f.hdr.body_crc = crc32c::crc32c(&f.body);
            }
        }
        Mutation::SetField { frame, field } => {
            let h = &mut frames[pick(frame)].hdr;
            match field {
                Field::Seq(d) => h.seq = h.seq.wrapping_add_signed(i64::from(*d)),
                Field::Count(d) => h.count = h.count.wrapping_add_signed(i32::from(*d)),
                Field::BodyLen(d) => h.body_len = h.body_len.wrapping_add_signed(i32::from(*d)),
                Field::Kind => {
                    h.kind = match h.kind {
                        FrameKind::Block => FrameKind::Checkpoint,
                        FrameKind::Checkpoint => FrameKind::Block,
                    }
                }
                Field::Times(lo, hi) => {
                    h.min_time = *lo;
                    h.max_time = *hi;
                }
            }
        }
        Mutation::EditRecord {
            frame,
            line,
            ev,
            fix_hint,
        } => {
            let f = &mut frames[pick(frame)];
            if f.hdr.kind != FrameKind::Block {
                return;
            }
            let Ok(d) = block::decode_unchecked(&f.body, f.hdr.count) else {
                return;
            };
            let i = usize::from(*line) % d.len();
            let mut raw = Vec::new();
            let mut hints: Vec<Hash> = Vec::new();
            for (k, l) in d.lines().enumerate() {
                let at = raw.len();
                if k == i {
                    LeafBuilder::new(REALM, common::RECEIVED_AT).build(
                        f.hdr.seq + k as u64,
                        &ev.json(),
                        &mut raw,
                    );
                } else {
                    raw.extend_from_slice(l);
                }
                let mut h = [0u8; 32];
                if k == i && *fix_hint {
                    h = leaf_hash(&raw[at..]);
                } else {
                    h[..4].copy_from_slice(&d.hint(k));
                }
                hints.push(h);
                raw.push(b'\n');
            }
            let enc =
                block::encode_raw(f.hdr.seq, &raw, &hints, (f.hdr.min_time, f.hdr.max_time), 1);
            f.hdr.body_len = enc.body.len() as u32;
            f.hdr.body_crc = enc.crc;
            f.body = enc.body;
        }
        Mutation::Duplicate(i) => {
            let f = &frames[pick(i)];
            let copy = Frame {
                hdr: f.hdr,
                body: f.body.clone(),
                seg: f.seg,
            };
            frames.insert(pick(i) + 1, copy);
        }
        Mutation::Drop(i) => {
            frames.remove(pick(i));
        }
        Mutation::Swap(a, b) => {
            let (a, b) = (pick(a), pick(b));
            let (sa, sb) = (frames[a].seg, frames[b].seg);
            frames.swap(a, b);
            frames[a].seg = sa;
            frames[b].seg = sb;
        }
        _ => {}
    }
}

struct File {
    name: String,
    bytes: Vec<u8>,
}

/// Writes the segments; returns them and where each frame went.
fn write_segments(segs: &[u64], frames: &[Frame]) -> (Vec<Option<File>>, Vec<(usize, usize)>) {
    let mut files: Vec<Option<File>> = segs
        .iter()
        .map(|s| {
            Some(File {
                name: segment_name(*s),
                bytes: segment_header(*s).to_vec(),
            })
        })
        .collect();
    let mut at = Vec::with_capacity(frames.len());
    for f in frames {
        let bytes = &mut files[f.seg].as_mut().expect("all present").bytes;
        at.push((f.seg, bytes.len()));
        push_frame(bytes, &f.hdr, &f.body);
    }
    (files, at)
}

fn mutate_bytes(files: &mut [Option<File>], at: &[(usize, usize)], m: &Mutation) {
    let n = files.len();
    let seg_of = |s: &u8| usize::from(*s) % n;
    match m {
        Mutation::FlipFrameByte {
            frame,
            at: off,
            xor,
        } => {
            if at.is_empty() {
                return;
            }
            let (seg, start) = at[usize::from(*frame) % at.len()];
            if let Some(f) = files[seg].as_mut() {
                // Within the frame's header or the next 4 KiB of body.
                let span = (f.bytes.len() - start.min(f.bytes.len())).min(FRAME_HEADER_LEN + 4096);
                if span > 0 {
                    f.bytes[start + *off as usize % span] ^= (*xor).max(1);
                }
            }
        }
        Mutation::Truncate { seg, at } => {
            if let Some(f) = files[seg_of(seg)].as_mut() {
                let len = *at as usize % (f.bytes.len() + 1);
                f.bytes.truncate(len);
            }
        }
        Mutation::Zero { seg, at, len } => {
            if let Some(f) = files[seg_of(seg)].as_mut() {
                if f.bytes.is_empty() {
                    return;
                }
                let from = *at as usize % f.bytes.len();
                let to = (from + usize::from(*len) + 1).min(f.bytes.len());
                f.bytes[from..to].fill(0);
            }
        }
        Mutation::AppendZeros { seg, len } => {
            if let Some(f) = files[seg_of(seg)].as_mut() {
                f.bytes
                    .resize(f.bytes.len() + usize::from(*len) % 2048 + 1, 0);
            }
        }
        Mutation::AppendBytes { seg, bytes } => {
            if let Some(f) = files[seg_of(seg)].as_mut() {
                f.bytes.extend_from_slice(&bytes[..bytes.len().min(4096)]);
            }
        }
        Mutation::SegmentHeader { seg, at, xor } => {
            if let Some(f) = files[seg_of(seg)].as_mut() {
                let at = usize::from(*at) % 32;
                if at < f.bytes.len() {
                    f.bytes[at] ^= (*xor).max(1);
                }
            }
        }
        Mutation::DropSegment(seg) => files[seg_of(seg)] = None,
        Mutation::RenameSegment { seg, to } => {
            if let Some(f) = files[seg_of(seg)].as_mut() {
                f.name = segment_name(u64::from(*to));
            }
        }
        _ => {}
    }
}

/// `tree.hashes` holding the first `keep` stored hashes of `leaves`.
fn tree_file(leaves: &[Vec<u8>], keep: u8) -> Vec<u8> {
    let mut f = Frontier::new();
    let mut nodes = Vec::new();
    for l in leaves {
        f.push(leaf_hash(l), |height, _, hash| {
            if height >= TILE_HEIGHT {
                nodes.push(*hash);
            }
        });
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"SLTREE\0\0");
    out.extend_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for (p, h) in nodes.iter().take(usize::from(keep)).enumerate() {
        out.extend_from_slice(h);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&(p as u64).to_le_bytes()), h);
        out.extend_from_slice(&crc.to_le_bytes());
    }
    out
}

/// What open must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Open(u64),
    Rollback,
    Fork,
    Corrupt,
    /// Anything but a panic (and the general oracles).
    Any,
}

/// Builds `head.mark` in the simulated journal directory; returns what it
/// means for an undamaged journal and whether the verifier should pass.
fn write_mark(fs: &SimFs, dir: &Path, plan: &MarkPlan, b: &Built, s: &Signer) -> (Expect, bool) {
    let cps = &b.checkpoints;
    let kth = |k: &u8| (!cps.is_empty()).then(|| &cps[usize::from(*k) % cps.len()]);
    let ok = (Expect::Open(b.committed), true);
    fs.create_dir_all(dir).expect("sim mkdir");
    // A mark that says "nothing signed yet" is the empty tree, signed
    // (unsigned slots are not marks).
    let create = |signed: Option<&SignedCheckpoint>| {
        let empty;
        let signed = match signed {
            Some(cp) => cp,
            None => {
                empty = s.sign(&sealog_journal::checkpoint::Checkpoint {
                    origin: sealog_journal::checkpoint::origin_for(REALM),
                    size: 0,
                    root: merkle::empty_root(),
                });
                &empty
            }
        };
        MarkFile::create(fs, dir, signed).expect("sim mark create")
    };
    let root_of = |size: u64| {
        let hashes: Vec<Hash> = b.leaves[..size as usize]
            .iter()
            .map(|l| leaf_hash(l))
            .collect();
        merkle::root_of(&hashes)
    };
    match plan {
        MarkPlan::None => ok,
        MarkPlan::Empty => {
            create(None);
            ok
        }
        MarkPlan::At(k) => {
            create(kth(k));
            ok
        }
        MarkPlan::Two(k, l) => {
            let mut m = create(kth(k));
            if let Some(cp) = kth(l) {
                m.record(cp).expect("sim mark record");
            }
            ok
        }
        MarkPlan::FlipOne { k, at, xor } => {
            create(kth(k));
            let path = dir.join(MARK_FILE);
            let mut bytes = fs.read_file(&path).expect("mark written");
            let at = usize::from(*at) % bytes.len();
            bytes[at] ^= (*xor).max(1);
            sim_write(fs, dir, MARK_FILE, &bytes);
            ok
        }
        MarkPlan::Ahead(d) => {
            let size = b.committed + u64::from(*d) + 1;
            create(Some(&s.sign(&Checkpoint {
                origin: ORIGIN.into(),
                size,
                root: [*d; 32],
            })));
            (Expect::Rollback, false)
        }
        MarkPlan::Forked { k, root } => {
            let size = kth(k).map_or(0, |c| c.checkpoint.size);
            create(Some(&s.sign(&Checkpoint {
                origin: ORIGIN.into(),
                size,
                root: *root,
            })));
            if *root == root_of(size) {
                ok
            } else {
                (Expect::Fork, false)
            }
        }
        MarkPlan::OtherKey(k) => {
            let size = kth(k).map_or(0, |c| c.checkpoint.size);
            create(Some(&forger().sign(&Checkpoint {
                origin: ORIGIN.into(),
                size,
                root: root_of(size),
            })));
            (Expect::Corrupt, false)
        }
        MarkPlan::Raw(bytes) => {
            sim_write(fs, dir, MARK_FILE, bytes);
            (Expect::Any, false)
        }
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw { header, bytes } => {
            let mut seg = Vec::new();
            if header {
                seg.extend_from_slice(&segment_header(0));
            }
            seg.extend_from_slice(&bytes);
            let fs = SimFs::new();
            let files = vec![(segment_name(0), seg)];
            run(&fs, &files, Expect::Any, None, true, None);
        }
        Input::Built(plan) => built(&plan),
    }
});

fn built(plan: &Plan) {
    let s = signer();
    let mut b = build(&plan.ops, &s);
    let mutations: Vec<&Mutation> = plan.mutations.iter().take(MAX_MUTATIONS).collect();
    let leaves_clean = b.clean && mutations.is_empty();
    let mut frames = std::mem::take(&mut b.frames);
    for m in mutations.iter().filter(|m| !m.on_bytes()) {
        mutate_frames(&mut frames, m);
    }
    let (mut segs, at) = write_segments(&b.segs, &frames);
    for m in mutations.iter().filter(|m| m.on_bytes()) {
        mutate_bytes(&mut segs, &at, m);
    }
    let mut files: Vec<(String, Vec<u8>)> = segs
        .into_iter()
        .flatten()
        .map(|f| (f.name, f.bytes))
        .collect();
    // The tree file, from the records as built.
    let (tree, tree_clean, tree_vouches) = match &plan.tree {
        TreePlan::None => (None, true, false),
        TreePlan::Valid { keep } => (Some(tree_file(&b.leaves, *keep)), true, *keep > 0),
        TreePlan::Flip { keep, at, xor, fix } => {
            let mut t = tree_file(&b.leaves, *keep);
            let at = usize::from(*at) % t.len();
            t[at] ^= (*xor).max(1);
            if *fix && at >= 16 {
                let p = (at - 16) / 36;
                let e = 16 + p * 36;
                let crc =
                    crc32c::crc32c_append(crc32c::crc32c(&(p as u64).to_le_bytes()), &t[e..e + 32]);
                t[e + 32..e + 36].copy_from_slice(&crc.to_le_bytes());
            }
            (Some(t), false, true)
        }
        TreePlan::Raw(bytes) => (Some(bytes.clone()), false, true),
    };
    if let Some(t) = tree {
        files.push(("tree.hashes".into(), t));
    }
    let fs = SimFs::new();
    let dir = Path::new(SIM_DIR);
    let (mark_expect, mark_verifies) = write_mark(&fs, dir, &plan.mark, &b, &s);
    if let Some(m) = fs.read_file(&dir.join(MARK_FILE)) {
        files.push((MARK_FILE.into(), m));
    }
    let (expect, verify_ok) = if leaves_clean && tree_clean {
        (mark_expect, Some(mark_verifies))
    } else {
        (Expect::Any, None)
    };
    // Record-by-record checks hold unless a stored tree hash vouches for
    // records that were altered afterwards (open trusts `tree.hashes` for
    // the tiles it covers and reads only the records after them).
    let strict = !tree_vouches || (leaves_clean && tree_clean);
    run(&fs, &files, expect, verify_ok, strict, plan.append.as_ref());
}

fn stats() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SEALOG_FUZZ_STATS").is_some())
}

/// Opens, verifies and checks the oracles.
fn run(
    fs: &std::sync::Arc<SimFs>,
    files: &[(String, Vec<u8>)],
    expect: Expect,
    verify_ok: Option<bool>,
    strict: bool,
    append: Option<&Ev>,
) {
    let s = signer();
    let key = s.verifier();
    let dir = Path::new(SIM_DIR);
    // The verifier reads the real filesystem: a tmpfs copy.
    let real = real_dir();
    for (name, bytes) in files {
        std::fs::write(real.join(name), bytes).expect("write scratch file");
        if name != MARK_FILE {
            sim_write(fs, dir, name, bytes);
        }
    }
    let report: Report = verify_dir(real, REALM, &key, &Evidence::default(), &|_| {})
        .expect("the verifier reports; it fails only on I/O errors");
    // The per-commit checker (forensic inquiries) on the same files: it
    // reports, never panics, and on a journal the verifier passes every
    // commit verifies.
    let everything = sealog_journal::commits::Window {
        start_ns: i64::MIN,
        end_ns: i64::MAX,
        deadline: None,
    };
    let commits =
        sealog_journal::commits::check_commits(real, REALM, &key, everything, &mut |_| {})
            .expect("the commit checker reports; it fails only on I/O errors");
    if report.ok() {
        assert!(
            commits.iter().all(|c| c.verified),
            "commit checker disagrees with the verifier: {commits:?}"
        );
    }
    let opened = Journal::open_in(fs.clone(), dir, REALM, s.clone(), options());
    if stats() {
        // One line per input, to see how deep a corpus gets:
        // SEALOG_FUZZ_STATS=1 target/.../segment corpus/segment -runs=0
        let outcome = match &opened {
            Ok(j) => format!("open={}", j.size()),
            Err(e) => format!(
                "err={}",
                e.to_string().split(':').next().unwrap_or_default()
            ),
        };
        eprintln!(
            "stats records={} checkpoints={} findings={} expect={expect:?} {outcome}",
            report.records,
            report.checkpoints,
            report.findings.len()
        );
    }
    if let Some(want) = verify_ok {
        assert_eq!(
            report.ok(),
            want,
            "verifier report {:?} on an undamaged journal",
            report.findings
        );
    }
    match (expect, &opened) {
        (Expect::Any, _) => {}
        (Expect::Open(size), Ok(j)) => assert_eq!(j.size(), size, "undamaged journal size"),
        (Expect::Rollback, Err(JournalError::Rollback { .. }))
        | (Expect::Fork, Err(JournalError::Fork { .. }))
        | (Expect::Corrupt, Err(JournalError::Corrupt { .. })) => {}
        (want, got) => panic!(
            "expected {want:?}, open gave {:?}",
            got.as_ref().map(Journal::size)
        ),
    }
    if report.ok() {
        match &opened {
            Ok(j) => assert_eq!(
                j.size(),
                report.committed,
                "verifier and recovery disagree on the committed size"
            ),
            Err(e) => panic!("the verifier passed a journal that recovery refuses: {e}"),
        }
    }
    let Ok(j) = opened else { return };
    let (size, latest) = check_open(&j, strict);
    drop(j);
    // Recovery is idempotent: a second open finds what the first left.
    let j = Journal::open_in(fs.clone(), dir, REALM, s.clone(), options())
        .unwrap_or_else(|e| panic!("reopen after a successful open failed: {e}"));
    assert_eq!(j.size(), size, "reopen changed the size");
    assert_eq!(
        j.latest_checkpoint().map(|c| &c.text),
        latest.as_ref(),
        "reopen changed the latest checkpoint"
    );
    let Some(ev) = append else { return };
    let mut j = j;
    let json = ev.json();
    let r = j
        .append(&[EventRef {
            bytes: &json,
            time_ns: ev.time_ns(),
        }])
        .unwrap_or_else(|e| panic!("append after open failed: {e}"));
    assert_eq!((r.first_seq, r.count), (size, 1));
    let cp = key
        .verify(&r.checkpoint)
        .expect("receipt checkpoint verifies");
    assert_eq!(cp.size, size + 1);
    drop(j);
    let j = Journal::open_in(fs.clone(), dir, REALM, s, options())
        .unwrap_or_else(|e| panic!("reopen after an append failed: {e}"));
    assert_eq!(j.size(), size + 1);
    check_open(&j, strict);
}

/// The oracles on an open journal; returns its size and latest note.
fn check_open(j: &Journal, strict: bool) -> (u64, Option<String>) {
    let size = j.size();
    let latest = j.latest_checkpoint().cloned();
    let want_root = match &latest {
        Some(cp) => {
            assert_eq!(cp.checkpoint.size, size, "latest checkpoint size");
            j.verifier()
                .verify(&cp.text)
                .expect("the latest checkpoint verifies");
            cp.checkpoint.root
        }
        None => {
            assert_eq!(size, 0, "records without a checkpoint");
            merkle::empty_root()
        }
    };
    assert_eq!(j.root_at(size).expect("root_at(size)"), want_root);
    if strict {
        let mut hashes = Vec::new();
        j.read(0, size, &mut |_, line| {
            hashes.push(leaf_hash(line));
            ControlFlow::Continue(())
        })
        .expect("records that open checked read back");
        assert_eq!(hashes.len() as u64, size);
        assert_eq!(
            merkle::root_of(&hashes),
            want_root,
            "records do not hash to the latest checkpoint"
        );
        // Inclusion proofs for a few seqs.
        for seq in [0, size / 2, size.saturating_sub(1)] {
            if seq >= size {
                continue;
            }
            let proof = j.inclusion_proof(seq, size).expect("inclusion proof");
            merkle::verify_inclusion(&hashes[seq as usize], seq, size, &proof, &want_root)
                .expect("inclusion proof verifies");
        }
    }
    (size, latest.map(|c| c.text))
}
